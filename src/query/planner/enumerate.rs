//! Enumerating the rows that pass a filter, once per query, into a [`RowSet`]: through the
//! block rectangles (rows in a spatial order), the R-tree (other row orders, narrow
//! filters), or one pass over the row metadata (time-only filters, tombstones).

use super::segment::SegmentIndex;
use super::{LINEAR_ABOVE, SCATTERED_ROW_COST, SMALL_PROBE};
use crate::index::flat::DENSE_BLOCK_FROM;
use crate::index::spatial::Rect;
use crate::query::filter::{Cover, Filter};

/// How an enumeration goes through a filter's rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Route<'f> {
    /// Every row's metadata (no condition on location).
    Rows,
    /// The block rectangles, every block judged by every condition.
    Blocks,
    /// The R-tree over the driving condition's cover while it has found at most
    /// 1/[`LINEAR_ABOVE`] of the rows, then the blocks.
    TreeThenBlocks(&'f Cover),
}

impl SegmentIndex<'_> {
    /// Every row passing the filter (and alive), sorted.
    pub(super) fn candidates(&self, filter: &Filter, route: Route<'_>) -> Vec<u32> {
        let mut set = RowSet::new(self.n);
        self.collect_all(filter, route, &mut set);
        set.sorted_rows()
    }

    /// Adds every row passing the filter (and alive) to `set` (which may hold rows of an
    /// earlier, limited [`SegmentIndex::collect`]).
    ///
    /// A spatial filter goes through the block rectangles ([`SegmentIndex::collect_blocks`]),
    /// or, when `route` says so (rows not stored in a spatial order and few rows expected),
    /// through the R-tree while that has found at most 1/[`LINEAR_ABOVE`] of the rows; past
    /// that, the R-tree's per-node and per-row costs exceed one pass over every row, and the
    /// set is rebuilt by the block pass, where every block then tests its rows. Any other
    /// filter tests every row.
    pub(super) fn collect_all(&self, filter: &Filter, route: Route<'_>, set: &mut RowSet) {
        if let Route::TreeThenBlocks(cover) = route {
            let switch = (self.n as usize / LINEAR_ABOVE).max(SMALL_PROBE);
            if self.collect_tree(filter, cover, switch, set) {
                return;
            }
            set.clear();
            self.collect(filter, usize::MAX, Route::Blocks, set);
            return;
        }
        self.collect(filter, usize::MAX, route, set);
    }

    /// Adds the rows passing the filter (and alive) to `set`, stopping once the set holds
    /// more than `limit` rows; rows already in the set are skipped before any predicate is
    /// tested, so a second, unlimited call after a limited one only tests the rows it had
    /// not reached. A spatial filter goes through `route`; any other filter tests every row.
    /// Returns whether the enumeration ran to the end.
    pub(super) fn collect(
        &self,
        filter: &Filter,
        limit: usize,
        route: Route<'_>,
        set: &mut RowSet,
    ) -> bool {
        match route {
            Route::Rows => {
                for row in 0..self.n {
                    if !set.contains(row) && self.passes(filter, row) {
                        set.insert(row);
                        if set.rows.len() > limit {
                            return false;
                        }
                    }
                }
                true
            }
            Route::Blocks => self.collect_blocks(filter, limit, set),
            Route::TreeThenBlocks(cover) => self.collect_tree(filter, cover, limit, set),
        }
    }

    /// [`SegmentIndex::collect`] through the R-tree over `cover`: rows under tree nodes that
    /// every spatial condition covers skip the geometry (not the time and liveness tests);
    /// the others are tested in full, radii on the rows' unit vectors.
    fn collect_tree(&self, filter: &Filter, cover: &Cover, limit: usize, set: &mut RowSet) -> bool {
        let tree = self.rtree();
        let covers = |r: &Rect| filter.covers_rect(r);
        let units = tree.unit_vectors(self.points);
        let rest = filter.non_spatial_mask();
        for r in cover.rects() {
            let done = tree.visit_in(self.points, r, &covers, &mut |row, covered| {
                if set.contains(row) {
                    return true;
                }
                let ok = if covered {
                    self.passes_masked(filter, row, units, rest)
                } else {
                    self.passes_unit(filter, row, units)
                };
                if ok {
                    set.insert(row);
                }
                set.rows.len() <= limit
            });
            if !done {
                return false;
            }
        }
        true
    }

    /// [`SegmentIndex::collect`] through the block rectangles
    /// ([`crate::index::spatial::BlockRects`]): each block (or group of blocks) is judged
    /// by every condition ([`Filter::block_mask`]); a block some condition rules out is
    /// skipped, a block every condition takes whole is added whole (tombstones still tested
    /// per row), and the rows of the others are tested against the conditions still open
    /// for them, by that condition's batch test when only one is ([`Filter::single`]: the
    /// radius tests 64 rows at a time), radii on precomputed unit vectors.
    fn collect_blocks(&self, filter: &Filter, limit: usize, set: &mut RowSet) -> bool {
        let tree = self.rtree();
        let units = tree.unit_vectors(self.points);
        let spatial = !filter.non_spatial_mask();
        // An empty set at the start: the runs are disjoint, so no row is met twice.
        let fresh = set.rows.is_empty();
        let plain = self.live.is_none();
        let test = |r: &Rect| filter.block_mask(r);
        let whole = |mask: &u64| mask & spatial == 0;
        tree.blocks().visit(test, whole, |start, end, mask| {
            let (a, b) = (start as usize, end as usize);
            if filter.passes_whole(mask) && plain && fresh {
                set.insert_run(start, end);
            } else if let (Some(p), true, Some(units)) = (filter.single(mask), plain, units) {
                // A group of unit vectors at a time (a run may span groups).
                for (a, us) in units.pieces(a, b) {
                    let b = a + us.len();
                    let points = self.points.get(a..b).unwrap_or(&[]);
                    let times = self.times.and_then(|t| t.get(a..b));
                    p.scan(a as u32, points, us, times, super::NO_TIME, |row| {
                        if !set.contains(row) {
                            set.insert(row);
                        }
                    });
                }
            } else {
                for row in start..end {
                    if !set.contains(row) && self.passes_masked(filter, row, units, mask) {
                        set.insert(row);
                    }
                }
            }
            set.rows.len() <= limit
        })
    }
}

/// A per-query set of rows: a bitset over the segment (membership in O(1) for the graph walk)
/// plus the rows in insertion order (for the exact scan).
pub(super) struct RowSet {
    pub(super) bits: Vec<u64>,
    pub(super) rows: Vec<u32>,
}

impl RowSet {
    pub(super) fn new(n: u32) -> RowSet {
        RowSet {
            bits: vec![0; (n as usize).div_ceil(64)],
            rows: Vec::new(),
        }
    }

    #[inline]
    pub(super) fn contains(&self, row: u32) -> bool {
        self.bits
            .get(row as usize / 64)
            .is_some_and(|w| w >> (row % 64) & 1 == 1)
    }

    /// What the exact scan of the set costs, in rows read in order: a 64-row block with at
    /// least [`DENSE_BLOCK_FROM`] members is read whole (64), the members of sparser blocks
    /// one by one at [`SCATTERED_ROW_COST`] each (see
    /// [`top_k_bits_into`](crate::index::flat::top_k_bits_into)).
    pub(super) fn scan_cost(&self) -> usize {
        self.bits
            .iter()
            .map(|w| match w.count_ones() {
                c if c >= DENSE_BLOCK_FROM => 64,
                c => c as usize * SCATTERED_ROW_COST,
            })
            .sum()
    }

    /// Whether the set has so few rows that sorting them beats reading the bitset: sorting
    /// m rows costs about m log m steps, reading the bitset one per word; below one row in
    /// 16 words.
    pub(super) fn is_tiny(&self) -> bool {
        self.rows.len().saturating_mul(16) < self.bits.len()
    }

    /// The rows in ascending order: an exact scan then reads the vectors in storage order,
    /// which the hardware prefetcher follows (the R-tree enumerates rows in tree order).
    pub(super) fn sorted_rows(&self) -> Vec<u32> {
        if self.is_tiny() {
            let mut rows = self.rows.clone();
            rows.sort_unstable();
            return rows;
        }
        let mut rows = Vec::with_capacity(self.rows.len());
        for (i, &w) in self.bits.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                rows.push(i as u32 * 64 + w.trailing_zeros());
                w &= w - 1;
            }
        }
        rows
    }

    /// Empties the set.
    pub(super) fn clear(&mut self) {
        self.bits.fill(0);
        self.rows.clear();
    }

    /// Adds the rows `start..end`, none of them in the set yet.
    pub(super) fn insert_run(&mut self, start: u32, end: u32) {
        let end = end.min(self.bits.len() as u32 * 64);
        let mut row = start;
        while row < end {
            let bit = row % 64;
            let take = (64 - bit).min(end - row);
            let mask = u64::MAX.checked_shr(64 - take).unwrap_or(0) << bit;
            self.bits[row as usize / 64] |= mask;
            row += take;
        }
        self.rows.extend(start..end.max(start));
    }

    /// Adds `row` (callers check [`RowSet::contains`] first); rows beyond the bitset are
    /// ignored.
    #[inline]
    pub(super) fn insert(&mut self, row: u32) {
        if let Some(w) = self.bits.get_mut(row as usize / 64) {
            *w |= 1 << (row % 64);
            self.rows.push(row);
        }
    }
}
