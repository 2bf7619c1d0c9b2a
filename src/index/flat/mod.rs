//! Exact scan: f16 x f32 dot products with f32 accumulation.
//!
//! Vectors are L2-normalised, so cosine similarity is the dot product. The kernels are plain
//! safe Rust written so that the compiler vectorises them: the f16 -> f32 conversion is
//! branch-free bit arithmetic (exact for every f16, including subnormals, infinities and NaN)
//! and the dot product keeps 16 independent accumulators.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use half::f16;

mod dot;

pub use dot::{dot_f16_f16, dot_f16_f32, dots_f16_f32, prefetch, prefetch_bytes, row_vector};

use crate::storage::advice::InOrder;
#[cfg(any(test, feature = "testing"))]
pub use dot::{dot_f16_f16_portable, dot_f16_f32_portable, f16_bits_to_f32};

/// One search result: a row of the segment and its similarity to the query (higher is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row number inside the segment.
    pub row: u32,
    /// Similarity score (cosine for vector search; the blended score for geo-ranked search).
    pub score: f32,
}

impl Hit {
    /// Result order: higher score first, then lower row; total even with NaN scores.
    pub fn rank_cmp(&self, other: &Hit) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.row.cmp(&other.row))
    }
}

/// Heap entry ordered so that the heap's maximum is the WORST hit.
#[derive(Clone, Copy)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// A bounded collector of the best `k` hits (higher score, then lower row, wins).
///
/// Made with [`keeping_ties`](TopK::keeping_ties), it also keeps every hit that lost only on
/// the row tie-break: the hits tied with the `k`-th score. A caller that breaks ties by
/// something other than row (the collection search breaks them by id, and a segment's rows
/// need not be in id order) picks among them.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    ties: Option<Vec<Hit>>,
}

impl TopK {
    /// An empty collector keeping at most `k` hits.
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
            ties: None,
        }
    }

    /// An empty collector keeping the best `k` hits and the hits tied with the `k`-th score.
    pub fn keeping_ties(k: usize) -> TopK {
        TopK {
            ties: Some(Vec::new()),
            ..TopK::new(k)
        }
    }

    /// Offers a hit; keeps it if it is among the best `k` so far (or tied with the `k`-th,
    /// when keeping ties).
    #[inline]
    pub fn push(&mut self, hit: Hit) {
        // A NaN or infinite score (a damaged row) never ranks, let alone first.
        if self.k == 0 || !hit.score.is_finite() {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
        } else {
            let lost = match self.heap.peek_mut() {
                Some(mut top) if hit.rank_cmp(&top.0) == Ordering::Less => {
                    std::mem::replace(&mut *top, Worst(hit)).0
                }
                _ => hit,
            };
            if self.ties.is_some() {
                self.set_aside(lost);
            }
        }
    }

    /// Keeps `lost` (a hit outside the best `k`) if it ties with the `k`-th score; drops
    /// the kept ties the `k`-th score has risen above.
    #[inline]
    fn set_aside(&mut self, lost: Hit) {
        let (Some(ties), Some(worst)) = (self.ties.as_mut(), self.heap.peek()) else {
            return;
        };
        let bar = worst.0.score;
        if lost.score.total_cmp(&bar) == Ordering::Equal {
            if ties
                .first()
                .is_some_and(|t| t.score.total_cmp(&bar) != Ordering::Equal)
            {
                ties.clear();
            }
            ties.push(lost);
        } else if ties
            .first()
            .is_some_and(|t| t.score.total_cmp(&bar) != Ordering::Equal)
        {
            ties.clear();
        }
    }

    /// The `k` this collector keeps.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of hits held.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no hit is held.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The worst hit held, when `k` hits are held (the bar a new hit must beat).
    pub fn threshold(&self) -> Option<Hit> {
        if self.heap.len() >= self.k {
            self.heap.peek().map(|w| w.0)
        } else {
            None
        }
    }

    /// The hits, best first (with the kept ties after the `k`-th).
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.into_iter().map(|w| w.0).collect();
        if let (Some(ties), Some(bar)) = (self.ties, v.iter().max_by(|a, b| a.rank_cmp(b))) {
            let bar = bar.score;
            v.extend(
                ties.into_iter()
                    .filter(|t| t.score.total_cmp(&bar) == Ordering::Equal),
            );
        }
        v.sort_by(Hit::rank_cmp);
        v
    }
}

/// Exact top-`k` over the given rows by dot product with `query`.
///
/// Rows out of range for `vectors` are skipped; `query` should have length `dim`. Ties are
/// broken by lower row. The result is sorted best first and has at most `k` hits.
#[cfg(feature = "testing")]
pub fn top_k(
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    rows: impl Iterator<Item = u32>,
    k: usize,
) -> Vec<Hit> {
    top_k_into(vectors, dim, query, rows, TopK::new(k))
}

/// [`top_k`] into the collector `top` (one [`keeping_ties`](TopK::keeping_ties), say).
pub fn top_k_into(
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    rows: impl Iterator<Item = u32>,
    mut top: TopK,
) -> Vec<Hit> {
    if dim == 0 {
        return Vec::new();
    }
    let mut gather = Gather::new(vectors, dim, query);
    for row in rows {
        gather.push(row, &mut top);
    }
    gather.finish(&mut top);
    top.into_sorted()
}

/// Scores scattered rows one by one, each prefetched [`Gather::AHEAD`] rows before it is
/// scored (the hardware prefetcher does not follow scattered rows). Rows out of range are
/// skipped.
struct Gather<'a> {
    vectors: &'a [f16],
    dim: usize,
    query: &'a [f32],
    /// Rows prefetched, not yet scored; `u32::MAX` marks an empty slot (no segment has that
    /// row; it would be skipped anyway).
    ring: [u32; Gather::AHEAD],
    at: usize,
}

impl<'a> Gather<'a> {
    const AHEAD: usize = 4;

    fn new(vectors: &'a [f16], dim: usize, query: &'a [f32]) -> Gather<'a> {
        Gather {
            vectors,
            dim,
            query,
            ring: [u32::MAX; Gather::AHEAD],
            at: 0,
        }
    }

    #[inline]
    fn score(&self, row: u32, top: &mut TopK) {
        let v = row_vector(self.vectors, self.dim, row);
        if row != u32::MAX && v.len() == self.dim {
            top.push(Hit {
                row,
                score: dot_f16_f32(v, self.query),
            });
        }
    }

    /// Prefetches `row` and scores the row prefetched `AHEAD` pushes ago.
    #[inline]
    fn push(&mut self, row: u32, top: &mut TopK) {
        prefetch(row_vector(self.vectors, self.dim, row), usize::MAX);
        let due = std::mem::replace(&mut self.ring[self.at % Gather::AHEAD], row);
        self.at += 1;
        self.score(due, top);
    }

    /// Scores the rows still pending; order does not matter (ties are broken by row).
    fn finish(self, top: &mut TopK) {
        for row in self.ring {
            self.score(row, top);
        }
    }
}

/// A 64-row block of a [`top_k_bits_into`] scan with at least this many members is read
/// whole, in order (the dense scan); sparser blocks read their members one by one. At
/// 1M x 512, reading 25% of the rows one by one took as long as reading them all in order.
pub const DENSE_BLOCK_FROM: u32 = 16;

/// Exact top-`k` over the rows whose bits are set in `bits` (bit `r % 64` of word `r / 64`,
/// rows `0..n`), into `top`. Blocks of 64 rows without a member are skipped; blocks with
/// at least [`DENSE_BLOCK_FROM`] members are read whole, in storage order, which the hardware
/// prefetcher follows; the members of sparser blocks are prefetched a few rows ahead and
/// read one by one. So a set whose rows lie in contiguous runs (the spatial row order keeps
/// a region's rows together) is read as a few sequential streams, and a scattered one as
/// the plain gather of [`top_k`]. Same results as [`top_k`] over the members.
pub fn top_k_bits_into(
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    n: u32,
    bits: &[u64],
    mut top: TopK,
) -> Vec<Hit> {
    if dim == 0 {
        return Vec::new();
    }
    let mut gather = Gather::new(vectors, dim, query);
    let mut ahead = ReadAhead::new();
    for (word, &w) in (0u32..).zip(bits) {
        let base = word.saturating_mul(64);
        if w == 0 || base >= n {
            continue;
        }
        ahead.at(bits, word as usize, vectors, dim);
        if w.count_ones() >= DENSE_BLOCK_FROM {
            let end = base.saturating_add(64).min(n);
            let block = row_vector_run(vectors, dim, base, end);
            for (i, v) in (0u32..).zip(block.chunks_exact(dim)) {
                let score = dot_f16_f32(v, query);
                if w >> i & 1 == 1 {
                    top.push(Hit {
                        row: base + i,
                        score,
                    });
                }
            }
            continue;
        }
        for row in members(w, base, n) {
            gather.push(row, &mut top);
        }
    }
    gather.finish(&mut top);
    top.into_sorted()
}

/// Tells the kernel how a bitset scan reads its rows (see [`crate::storage::advice`]): at
/// a member word not yet covered, the run of member words from there (up to
/// [`ReadAhead::WINDOW`] bytes of rows), when it spans at least [`ReadAhead::MIN_RUN`]
/// bytes and its first or last row had to be read from disk, is read [`InOrder`] while the scan is
/// in it: its pages come in with the mapping's read-around, not one by one as a search's
/// scattered reads do. Shorter runs and lone rows are read where they lie. Each word is
/// looked at about once, and a run in memory costs four clock reads.
pub(crate) struct ReadAhead<'a> {
    /// Words below this one are covered (marked, or part of a short run).
    covered: usize,
    /// The run read in order now (empty: none).
    marked: InOrder<'a>,
}

impl<'a> ReadAhead<'a> {
    /// Most bytes marked at once.
    const WINDOW: usize = 8 << 20;
    /// Fewest bytes a run must span to be marked.
    const MIN_RUN: usize = 256 << 10;

    pub(crate) fn new() -> ReadAhead<'a> {
        ReadAhead {
            covered: 0,
            marked: InOrder::new::<u8>(&[]),
        }
    }

    /// Called at member word `word` of `bits` over `rows` (`per_row` values a row).
    #[inline]
    pub(crate) fn at<T: bytemuck::Pod>(
        &mut self,
        bits: &[u64],
        word: usize,
        rows: &'a [T],
        per_row: usize,
    ) {
        if word < self.covered {
            return;
        }
        // The scan has left the run marked, if any.
        self.marked = InOrder::new::<u8>(&[]);
        let row_bytes = per_row.saturating_mul(std::mem::size_of::<T>()).max(1);
        let max_words = (Self::WINDOW / row_bytes / 64).max(1);
        let run = bits[word..]
            .iter()
            .take(max_words)
            .take_while(|&&w| w != 0)
            .count();
        self.covered = word + run.max(1);
        let at = |w: usize| w.saturating_mul(64).saturating_mul(per_row).min(rows.len());
        let run = &rows[at(word)..at(word + run)];
        let long = std::mem::size_of_val(run) >= Self::MIN_RUN;
        if long && crate::storage::advice::ends_read_waited(run) {
            self.marked = InOrder::new(run);
        }
    }
}

/// The rows of bitset word `w` (rows `base..base + 64`), ascending, below `n`.
#[inline]
pub(crate) fn members(w: u64, base: u32, n: u32) -> impl Iterator<Item = u32> {
    let mut w = w;
    std::iter::from_fn(move || {
        if w == 0 {
            return None;
        }
        let row = base.saturating_add(w.trailing_zeros());
        w &= w - 1;
        (row < n).then_some(row)
    })
}

/// The vectors of rows `start..end`, clipped to what `vectors` holds.
fn row_vector_run(vectors: &[f16], dim: usize, start: u32, end: u32) -> &[f16] {
    let a = (start as usize).saturating_mul(dim).min(vectors.len());
    let b = (end as usize).saturating_mul(dim).min(vectors.len());
    vectors.get(a..b.max(a)).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_is_exact_for_every_f16() {
        for bits in 0..=u16::MAX {
            let want = f16::from_bits(bits).to_f32();
            let got = f16_bits_to_f32(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#x}");
            } else {
                assert_eq!(want.to_bits(), got.to_bits(), "{bits:#x}");
            }
        }
    }

    #[test]
    fn dot_matches_naive() {
        for n in [0usize, 1, 7, 16, 17, 33, 384, 515] {
            let a: Vec<f16> = (0..n)
                .map(|i| f16::from_f32((i as f32 * 0.37).sin()))
                .collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x.to_f32() * y).sum();
            assert!((dot_f16_f32(&a, &b) - naive).abs() < 1e-3, "{n}");
            let bh: Vec<f16> = b.iter().map(|&x| f16::from_f32(x)).collect();
            let naive: f32 = a
                .iter()
                .zip(&bh)
                .map(|(x, y)| x.to_f32() * y.to_f32())
                .sum();
            assert!((dot_f16_f16(&a, &bh) - naive).abs() < 1e-3, "{n}");
        }
    }

    #[test]
    fn batched_dots_are_the_row_dots_bit_for_bit() {
        for dim in [1usize, 7, 16, 33, 64, 384] {
            let rows: Vec<f16> = (0..dim * 50)
                .map(|i| f16::from_f32(((i * 37 % 101) as f32 - 50.0) / 61.0))
                .collect();
            let q: Vec<f32> = (0..dim)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 17.0)
                .collect();
            let mut out = vec![1.0];
            dots_f16_f32(&rows, dim, &q, &mut out);
            assert_eq!(out.len(), 50);
            for (r, s) in rows.chunks_exact(dim).zip(&out) {
                assert_eq!(s.to_bits(), dot_f16_f32(r, &q).to_bits(), "dim {dim}");
            }
        }
        let mut out = vec![1.0];
        dots_f16_f32(&[], 0, &[], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn keeping_ties_returns_the_rows_tied_with_the_kth() {
        let run = |scores: &[f32], k| {
            let mut top = TopK::keeping_ties(k);
            for (row, &score) in (0u32..).zip(scores) {
                top.push(Hit { row, score });
            }
            top.into_sorted()
                .iter()
                .map(|h| h.row)
                .collect::<Vec<u32>>()
        };
        assert_eq!(run(&[0.5, 0.9, 0.5, 0.5], 2), [1, 0, 2, 3]);
        // The bar rises past the ties set aside: they go.
        assert_eq!(run(&[0.5, 0.5, 0.5, 0.8, 0.8], 2), [3, 4]);
        assert_eq!(run(&[0.5, 0.5, 0.5, 0.8], 2), [3, 0, 1, 2]);
        // An evicted hit tied with the new bar is kept.
        assert_eq!(run(&[0.7, 0.5, 0.7, 0.9], 2), [3, 0, 2]);
        assert_eq!(run(&[0.5, 0.5, 0.9, 0.5, 0.7, 0.5], 2), [2, 4]);
        assert_eq!(run(&[0.5, 0.5], 0), Vec::<u32>::new());
        // A NaN or infinite score (a damaged row) never ranks.
        assert_eq!(run(&[f32::NAN, f32::NAN, 0.1], 1), [2]);
        assert_eq!(run(&[f32::INFINITY, 0.1, f32::NEG_INFINITY], 2), [1]);
        // Without ties kept: the best k by score, then row.
        let mut top = TopK::new(2);
        for row in 0..4 {
            top.push(Hit { row, score: 0.5 });
        }
        assert_eq!(top.into_sorted().len(), 2);
    }

    #[test]
    fn top_k_is_sorted_and_ties_by_row() {
        let v: Vec<f16> = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.5]
            .iter()
            .map(|&x| f16::from_f32(x))
            .collect();
        let hits = top_k(&v, 2, &[1.0, 0.0], 0..4, 3);
        let rows: Vec<u32> = hits.iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![0, 2, 3]);
        assert!(top_k(&v, 2, &[1.0, 0.0], 0..4, 0).is_empty());
        assert_eq!(top_k(&v, 2, &[1.0, 0.0], [9u32, 1].into_iter(), 5).len(), 1);
    }

    /// The bitset (bit `r % 64` of word `r / 64`) of the rows `0..rows` that are members.
    fn bitset(rows: u32, member: impl Fn(u32) -> bool) -> Vec<u64> {
        let mut bits = vec![0u64; (rows as usize).div_ceil(64)];
        for r in (0..rows).filter(|&r| member(r)) {
            bits[r as usize / 64] |= 1 << (r % 64);
        }
        bits
    }

    /// `n` rows of `dim` deterministic pseudo-random values, and a query.
    fn scan_fixture(n: u32, dim: usize) -> (Vec<f16>, Vec<f32>) {
        let v = (0..n as usize * dim)
            .map(|i| f16::from_f32(((i * 7919 % 1013) as f32 / 1013.0) - 0.5))
            .collect();
        let q = (0..dim).map(|i| (i as f32 * 0.7).cos()).collect();
        (v, q)
    }

    type Member = Box<dyn Fn(u32) -> bool>;

    /// Asserts that the bitset scan of each set's members (a bitset over `held` rows, of
    /// which the first `n` have vectors) returns the plain scan's answer, for each `k`.
    fn assert_scans_agree(n: u32, held: u32, dim: usize, sets: &[(&str, Member)], ks: &[usize]) {
        let (v, q) = scan_fixture(n, dim);
        for (name, member) in sets {
            let bits = bitset(held, member);
            for &k in ks {
                let want = top_k(&v, dim, &q, (0..n).filter(|&r| member(r)), k);
                let got = top_k_bits_into(&v, dim, &q, held, &bits, TopK::new(k));
                assert_eq!(got, want, "{name} k {k}");
            }
        }
    }

    #[test]
    fn bitset_scan_equals_scan_over_the_members() {
        // Scattered members, runs (whole blocks, blocks cut by a run's ends), everything,
        // nothing, and members past the last row.
        let sets: Vec<(&str, Member)> = vec![
            ("every 3rd", Box::new(|r| r % 3 == 1)),
            ("every 70th", Box::new(|r| r % 70 == 5)),
            (
                "runs",
                Box::new(|r| (100..260).contains(&r) || (300..317).contains(&r)),
            ),
            ("dense mix", Box::new(|r| r % 64 < 20 || r % 5 == 0)),
            ("all", Box::new(|_| true)),
            ("none", Box::new(|_| false)),
        ];
        assert_scans_agree(700, 790, 24, &sets, &[0, 1, 10, 1000]);
        let (v, q) = scan_fixture(700, 24);
        assert!(top_k_bits_into(&v, 0, &q, 700, &[!0], TopK::new(10)).is_empty());
    }

    /// Runs long enough to be asked for ahead (`ReadAhead`), short ones and gaps: the
    /// scan's answers are those of the plain scan.
    #[test]
    fn bitset_scan_with_long_runs_equals_scan_over_the_members() {
        let sets: Vec<(&str, Member)> = vec![
            ("all", Box::new(|_| true)),
            ("long runs", Box::new(|r| r % 5000 < 3000)),
            ("a short run", Box::new(|r| (64..200).contains(&r))),
            ("every 2nd", Box::new(|r| r % 2 == 0)),
        ];
        assert_scans_agree(12_000, 12_000, 64, &sets, &[10]);
    }

    /// A run is asked for once, up to the window; words inside it are not looked at again;
    /// runs past the rows held are clipped, never out of bounds.
    #[test]
    fn read_ahead_covers_each_run_once() {
        // Rows of 4 KiB: a window (8 MiB) is 32 words, MIN_RUN (256 KiB) one word.
        let per_row = 2048;
        let rows = vec![f16::ONE; 40 * 64 * per_row];
        let mut bits = vec![!0u64; 40];
        bits[35] = 0;
        let mut ahead = ReadAhead::new();
        ahead.at(&bits, 0, &rows, per_row);
        assert_eq!(ahead.covered, 32);
        ahead.at(&bits, 5, &rows, per_row);
        assert_eq!(ahead.covered, 32);
        // A run past the rows held is clipped.
        let mut ahead = ReadAhead::new();
        ahead.at(&bits, 32, &rows[..(32 * 64 + 10) * per_row], per_row);
        assert_eq!(ahead.covered, 35);
        ahead.at(&bits, 36, &rows, per_row);
        assert_eq!(ahead.covered, 40);
        // A lone member word in small rows: covered, not looked at.
        let mut ahead = ReadAhead::new();
        ahead.at(&[0, 1, 0], 1, &rows[..64 * 3], 1);
        assert_eq!(ahead.covered, 2);
    }
}
