//! R-tree over row locations (rstar), in plain lon/lat degrees.
//!
//! The tree answers "which rows lie in these lon/lat rectangles"; the exact spherical
//! predicates (antimeridian boxes, haversine radius, polygons) live in
//! [`crate::query::filter`], which turns each predicate into a few covering rectangles.
//! Bulk loading 1M points takes well under a second, so segments build it at open.

use rstar::primitives::GeomWithData;
use rstar::{ParentNode, RTree, RTreeNode, AABB};

use crate::geo::Point;

/// A closed lon/lat rectangle in degrees, `lon_min <= lon_max` (never crossing the
/// antimeridian; callers split such regions in two).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Western edge, degrees.
    pub lon_min: f64,
    /// Southern edge, degrees.
    pub lat_min: f64,
    /// Eastern edge, degrees.
    pub lon_max: f64,
    /// Northern edge, degrees.
    pub lat_max: f64,
}

impl Rect {
    /// The whole sphere.
    pub const WORLD: Rect = Rect {
        lon_min: -180.0,
        lat_min: -90.0,
        lon_max: 180.0,
        lat_max: 90.0,
    };

    /// Whether `(lon, lat)` lies in the closed rectangle.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        lon >= self.lon_min && lon <= self.lon_max && lat >= self.lat_min && lat <= self.lat_max
    }
}

type Entry = GeomWithData<[f64; 2], u32>;

/// Rows whose unit vectors are computed together ([`SpatialIndex::unit_vectors`]).
pub const UNIT_GROUP: usize = 256;

/// The unit vectors of a segment's rows, computed a group of [`UNIT_GROUP`] rows at a time
/// on first use ([`SpatialIndex::unit_vectors`]).
#[derive(Clone, Copy)]
pub struct Units<'a> {
    groups: &'a [std::sync::OnceLock<Box<[[f32; 3]]>>],
    points: &'a [Point],
}

impl<'a> Units<'a> {
    /// The unit vectors of rows `group * UNIT_GROUP ..`, computed now if they were not.
    fn group(&self, group: usize) -> Option<&'a [[f32; 3]]> {
        let cell = self.groups.get(group)?;
        let start = group * UNIT_GROUP;
        let points = self
            .points
            .get(start..(start + UNIT_GROUP).min(self.points.len()))?;
        Some(cell.get_or_init(|| {
            points
                .iter()
                .map(|&p| crate::geo::unit_vector_f32(p))
                .collect()
        }))
    }

    /// The unit vector of `row`.
    #[inline]
    pub fn get(&self, row: u32) -> Option<[f32; 3]> {
        let row = row as usize;
        self.group(row / UNIT_GROUP)?.get(row % UNIT_GROUP).copied()
    }

    /// The unit vectors of rows `start..end` in the slices of their groups: `(first row,
    /// vectors)` pieces, in order, covering the range.
    pub fn pieces(
        &self,
        start: usize,
        end: usize,
    ) -> impl Iterator<Item = (usize, &'a [[f32; 3]])> + 'a {
        let this = *self;
        let end = end.min(self.points.len());
        std::iter::successors((start < end).then_some(start), move |&a| {
            let next = (a / UNIT_GROUP + 1) * UNIT_GROUP;
            (next < end).then_some(next)
        })
        .filter_map(move |a| {
            let g = a / UNIT_GROUP;
            let b = end.min((g + 1) * UNIT_GROUP);
            let units = this.group(g)?;
            Some((a, units.get(a - g * UNIT_GROUP..b - g * UNIT_GROUP)?))
        })
    }
}

/// The spatial index of a segment's row locations: the [`BlockRects`] of the rows in storage
/// order, and, when those are not compact (rows not stored in a spatial order), an R-tree
/// whose entries are `([lon, lat], row)`.
pub struct SpatialIndex {
    /// The R-tree: bulk-loaded at build when the blocks are not compact, else on first use
    /// (from the points handed to the call that needs it).
    tree: std::sync::OnceLock<RTree<Entry>>,
    len: u32,
    /// Unit vectors of the same points ([`crate::geo::unit_vector`], f32), made on first use,
    /// [`UNIT_GROUP`] rows at a time: a query near one place computes a few groups, not
    /// every row's trigonometry.
    units: Vec<std::sync::OnceLock<Box<[[f32; 3]]>>>,
    /// Bounding rectangles of runs of consecutive rows.
    blocks: BlockRects,
    /// Whether `blocks` is compact (computed once, at build).
    compact: bool,
}

impl std::fmt::Debug for SpatialIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpatialIndex({} points)", self.len)
    }
}

impl SpatialIndex {
    /// Builds the index of `points` (row `i` at `points[i]`): the block rectangles, and the
    /// R-tree unless the blocks are compact. Rows beyond `u32::MAX` are ignored (segments
    /// never hold that many).
    pub fn build(points: &[Point]) -> SpatialIndex {
        let points = &points[..points.len().min(u32::MAX as usize)];
        SpatialIndex::with_blocks(points, BlockRects::build(points))
    }

    /// [`SpatialIndex::build`] over points read in place from a file, which checks each
    /// one as it reads it for the rectangles: `None` when any is not a valid point, or when
    /// there are more than `u32::MAX` (one pass over the points instead of a check and then
    /// the build).
    pub fn build_if_valid(points: &[Point]) -> Option<SpatialIndex> {
        let blocks = BlockRects::build_if_valid(points)?;
        Some(SpatialIndex::with_blocks(points, blocks))
    }

    fn with_blocks(points: &[Point], blocks: BlockRects) -> SpatialIndex {
        let compact = blocks.is_compact();
        let tree = std::sync::OnceLock::new();
        if !compact {
            let _ = tree.set(bulk_load(points));
        }
        SpatialIndex {
            tree,
            len: points.len() as u32,
            units: (0..points.len().div_ceil(UNIT_GROUP))
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            blocks,
            compact,
        }
    }

    /// The block rectangles of the rows.
    pub fn blocks(&self) -> &BlockRects {
        &self.blocks
    }

    /// Whether the block rectangles are compact (rows stored in a spatial order: see
    /// [`BlockRects::is_compact`]).
    pub fn blocks_compact(&self) -> bool {
        self.compact
    }

    /// Whether spatial filters go through the block rectangles: they are compact and no
    /// R-tree was built (once one is, it is used).
    pub fn uses_blocks(&self) -> bool {
        self.compact && self.tree.get().is_none()
    }

    /// The R-tree, bulk-loaded from `points` (the points the index was built over) if it was
    /// not yet; `None` when `points` has another length and no tree was built.
    fn tree(&self, points: &[Point]) -> Option<&RTree<Entry>> {
        if points.len() != self.len as usize {
            return self.tree.get();
        }
        Some(self.tree.get_or_init(|| bulk_load(points)))
    }

    /// The unit vectors of `points` (the points the index was built over), each group of
    /// [`UNIT_GROUP`] rows computed on its first use and kept with the index (12 bytes a
    /// row); `None` when `points` has another length. Radius filters test rows with them, in
    /// linear scans and under R-tree nodes the circle does not cover
    /// ([`crate::query::filter::Radius::contains_unit`]), instead of trigonometry per row.
    pub fn unit_vectors<'a>(&'a self, points: &'a [Point]) -> Option<Units<'a>> {
        (points.len() == self.len as usize).then_some(Units {
            groups: &self.units,
            points,
        })
    }

    /// Number of points.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the tree is empty.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(row, covered)` for every row whose location lies in `rect` (closed), in tree
    /// order (`points` are the points the index was built over, for an R-tree not built yet;
    /// with other points and no tree, nothing is visited). `covers` is asked about whole tree nodes (their bounding rectangles, inside
    /// `rect`): when it answers true, the rows under the node are passed with `covered =
    /// true` without further tests, and the caller may skip its own exact test for them; so
    /// `covers` must only answer true for rectangles whose every point passes that test.
    /// The walk stops as soon as `f` returns false; returns whether it ran to the end.
    pub fn visit_in<C, F>(&self, points: &[Point], rect: &Rect, covers: &C, f: &mut F) -> bool
    where
        C: Fn(&Rect) -> bool,
        F: FnMut(u32, bool) -> bool,
    {
        match self.tree(points) {
            Some(t) => visit(t.root(), rect, covers, f),
            None => true,
        }
    }

    /// Rows whose location lies in `rect` (closed), in tree order (`points` as in
    /// [`visit_in`](SpatialIndex::visit_in)).
    #[cfg(test)]
    pub fn rows_in(&self, points: &[Point], rect: &Rect) -> Vec<u32> {
        let env = AABB::from_corners([rect.lon_min, rect.lat_min], [rect.lon_max, rect.lat_max]);
        self.tree(points)
            .map(|t| t.locate_in_envelope(&env).map(|e| e.data).collect())
            .unwrap_or_default()
    }
}

fn bulk_load(points: &[Point]) -> RTree<Entry> {
    let entries: Vec<Entry> = points
        .iter()
        .zip(0..u32::MAX)
        .map(|(p, row)| GeomWithData::new([p.lon(), p.lat()], row))
        .collect();
    RTree::bulk_load(entries)
}

/// How the rows in a rectangle relate to a region, as far as the rectangle tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// No row lies in the region.
    Outside,
    /// Some rows may lie in the region: test each.
    Partial,
    /// Every row surely lies in the region.
    Covered,
}

/// Bounding rectangles of the rows in storage order: one per block of [`BlockRects::BLOCK`]
/// consecutive rows, and one per group of [`BlockRects::GROUP`] blocks. When rows are stored
/// along a space-filling curve (the segment's spatial row order) a block covers a small
/// patch of ground, so a region's rows are found by testing rectangles instead of rows: a
/// block outside the region is skipped, one inside it is taken whole, and only the blocks
/// on the region's edge test their rows. In any other row order the rectangles are large
/// and every block is tested row by row (the plain linear pass, plus one rectangle test per
/// block). Rectangles are in plain lon/lat and never cross the antimeridian.
#[derive(Debug, Clone)]
pub struct BlockRects {
    n: u32,
    blocks: Vec<Rect>,
    groups: Vec<Rect>,
}

/// The rectangle that holds nothing (the identity of [`grow`]).
const EMPTY: Rect = Rect {
    lon_min: f64::INFINITY,
    lat_min: f64::INFINITY,
    lon_max: f64::NEG_INFINITY,
    lat_max: f64::NEG_INFINITY,
};

/// The smallest rectangle holding `a` and `b`.
fn grow(a: Rect, b: Rect) -> Rect {
    Rect {
        lon_min: a.lon_min.min(b.lon_min),
        lat_min: a.lat_min.min(b.lat_min),
        lon_max: a.lon_max.max(b.lon_max),
        lat_max: a.lat_max.max(b.lat_max),
    }
}

/// The rectangle of `points`, and whether every one of them is valid (a latitude in
/// `[-90, 90]`, a longitude in `[-180, 180)`, neither NaN): the test and the bounds of every
/// point without a branch, so that the loop runs over pairs of lanes (hence the comparisons
/// joined by `&`, not `RangeInclusive::contains`, which joins them by `&&`).
#[allow(clippy::manual_range_contains)]
fn block_rect(points: &[Point]) -> (Rect, bool) {
    let mut r = EMPTY;
    let mut valid = true;
    for p in points {
        let (lat, lon) = (p.lat(), p.lon());
        // Every comparison is false for NaN.
        valid &= (lat >= -90.0) & (lat <= 90.0) & (lon >= -180.0) & (lon < 180.0);
        r.lat_min = if lat < r.lat_min { lat } else { r.lat_min };
        r.lat_max = if lat > r.lat_max { lat } else { r.lat_max };
        r.lon_min = if lon < r.lon_min { lon } else { r.lon_min };
        r.lon_max = if lon > r.lon_max { lon } else { r.lon_max };
    }
    (r, valid)
}

impl BlockRects {
    /// Rows per block (a bitset word).
    pub const BLOCK: usize = 64;
    /// Blocks per group.
    pub const GROUP: usize = 64;

    /// Whether the blocks are compact: their rectangles add up to at most 16 times the
    /// lon/lat world (in a random row order each block spans most of the world, so the sum
    /// is about the block count; in a spatial order the blocks tile the occupied ground).
    /// Then a region's rows are found from the rectangles alone, without an R-tree.
    pub fn is_compact(&self) -> bool {
        let area: f64 = self
            .blocks
            .iter()
            .map(|r| (r.lon_max - r.lon_min) / 360.0 * ((r.lat_max - r.lat_min) / 180.0))
            .sum();
        area <= 16.0
    }

    /// The rectangles of `points` (rows beyond `u32::MAX` are ignored).
    pub fn build(points: &[Point]) -> BlockRects {
        let points = &points[..points.len().min(u32::MAX as usize)];
        let blocks = points
            .chunks(Self::BLOCK)
            .map(|c| block_rect(c).0)
            .collect();
        BlockRects::from_blocks(points.len(), blocks)
    }

    /// [`BlockRects::build`] of points that may be invalid (read in place from a file):
    /// `None` when one is not a point [`Point::new`] would make, or when there are more
    /// than `u32::MAX` (the rows past it would go unchecked). The check and the rectangles
    /// are one pass.
    pub fn build_if_valid(points: &[Point]) -> Option<BlockRects> {
        if points.len() > u32::MAX as usize {
            return None;
        }
        let mut blocks = Vec::with_capacity(points.len().div_ceil(Self::BLOCK));
        for c in points.chunks(Self::BLOCK) {
            let (rect, valid) = block_rect(c);
            blocks.push(valid.then_some(rect)?);
        }
        Some(BlockRects::from_blocks(points.len(), blocks))
    }

    fn from_blocks(n: usize, blocks: Vec<Rect>) -> BlockRects {
        let groups = blocks
            .chunks(Self::GROUP)
            .map(|c| c.iter().copied().fold(EMPTY, grow))
            .collect();
        BlockRects {
            n: n as u32,
            blocks,
            groups,
        }
    }

    /// The group rectangles with the number of rows under each.
    pub fn groups(&self) -> impl Iterator<Item = (Rect, u32)> + '_ {
        let rows = (Self::BLOCK * Self::GROUP) as u32;
        self.groups.iter().enumerate().map(move |(g, r)| {
            let start = (g as u32).saturating_mul(rows);
            (*r, rows.min(self.n.saturating_sub(start)))
        })
    }

    /// The block rectangles of group `g` with the number of rows under each.
    pub fn blocks_of(&self, g: usize) -> impl Iterator<Item = (Rect, u32)> + '_ {
        let first = g.saturating_mul(Self::GROUP).min(self.blocks.len());
        let last = (first + Self::GROUP).min(self.blocks.len());
        self.blocks[first..last]
            .iter()
            .enumerate()
            .map(move |(i, r)| {
                let start = ((first + i) * Self::BLOCK) as u32;
                (*r, (Self::BLOCK as u32).min(self.n.saturating_sub(start)))
            })
    }

    /// Calls `f(start, end, verdict)` for runs of rows `start..end` (ascending, disjoint,
    /// adjacent runs of the same verdict merged) whose rectangle `test` did not rule out.
    /// `test` judges a rectangle of row locations: `None` when no row there can pass, else
    /// a verdict; a group's verdict stands for all its blocks when `whole` says so (every
    /// block of it would get the same), else each block is judged. The visit stops when `f`
    /// returns false; returns whether it ran to the end.
    pub fn visit<V: Copy + PartialEq>(
        &self,
        test: impl Fn(&Rect) -> Option<V>,
        whole: impl Fn(&V) -> bool,
        mut f: impl FnMut(u32, u32, V) -> bool,
    ) -> bool {
        let mut run: Option<(u32, u32, V)> = None;
        // Extends the pending run, or hands it to `f` and starts the next; false = stop.
        let mut emit = |start: u32, end: u32, v: V| match &mut run {
            Some((_, e, rv)) if *e == start && *rv == v => {
                *e = end;
                true
            }
            _ => match run.replace((start, end, v)) {
                Some((s, e, rv)) => f(s, e, rv),
                None => true,
            },
        };
        let block_end = |b: usize| ((b + 1) * Self::BLOCK).min(self.n as usize) as u32;
        for (g, grect) in self.groups.iter().enumerate() {
            let first = g * Self::GROUP;
            let last = (first + Self::GROUP).min(self.blocks.len());
            let Some(gv) = test(grect) else {
                continue;
            };
            if whole(&gv) {
                let start = (first * Self::BLOCK) as u32;
                if !emit(start, block_end(last - 1), gv) {
                    return false;
                }
                continue;
            }
            for (b, brect) in self.blocks[first..last].iter().enumerate() {
                let b = first + b;
                let Some(v) = test(brect) else {
                    continue;
                };
                if !emit((b * Self::BLOCK) as u32, block_end(b), v) {
                    return false;
                }
            }
        }
        match run {
            Some((s, e, v)) => f(s, e, v),
            None => true,
        }
    }
}

fn env_rect(env: &AABB<[f64; 2]>) -> Rect {
    let (lo, hi) = (env.lower(), env.upper());
    Rect {
        lon_min: lo[0],
        lat_min: lo[1],
        lon_max: hi[0],
        lat_max: hi[1],
    }
}

fn visit<C, F>(node: &ParentNode<Entry>, rect: &Rect, covers: &C, f: &mut F) -> bool
where
    C: Fn(&Rect) -> bool,
    F: FnMut(u32, bool) -> bool,
{
    for child in node.children() {
        match child {
            RTreeNode::Leaf(e) => {
                let [lon, lat] = *e.geom();
                if rect.contains(lon, lat) && !f(e.data, false) {
                    return false;
                }
            }
            RTreeNode::Parent(p) => {
                let env = env_rect(&p.envelope());
                let disjoint = env.lon_min > rect.lon_max
                    || env.lon_max < rect.lon_min
                    || env.lat_min > rect.lat_max
                    || env.lat_max < rect.lat_min;
                if disjoint {
                    continue;
                }
                let inside = env.lon_min >= rect.lon_min
                    && env.lon_max <= rect.lon_max
                    && env.lat_min >= rect.lat_min
                    && env.lat_max <= rect.lat_max;
                let go_on = if inside && covers(&env) {
                    emit_all(p, f)
                } else {
                    visit(p, rect, covers, f)
                };
                if !go_on {
                    return false;
                }
            }
        }
    }
    true
}

fn emit_all<F: FnMut(u32, bool) -> bool>(node: &ParentNode<Entry>, f: &mut F) -> bool {
    for child in node.children() {
        let go_on = match child {
            RTreeNode::Leaf(e) => f(e.data, true),
            RTreeNode::Parent(p) => emit_all(p, f),
        };
        if !go_on {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
