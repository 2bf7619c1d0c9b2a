//! The routing sample of graph walks ([`RoutingSample`]), and the walk hints section
//! that stores it with the graph's hop slack ([`HINTS_KIND`]).
//!
//! # Walk hints section (kind [`HINTS_KIND`], version 1)
//!
//! What a segment's first walk would otherwise work out from the vectors and the graph:
//! the hop slack ([`hop_slack`](super::hop_slack)) and the routing sample taken with
//! [`ROUTING_STRIDE`]. Written next to the graph by
//! [`HnswSectionBuilder`](super::HnswSectionBuilder); a segment without it (written by an
//! earlier build) has both worked out on first use, with the same values. Little-endian:
//!
//! ```text
//! 0   magic    b"S2WH"
//! 4   version  1
//! 8   flags    bit 0: the slack is present; other bits 0
//! 12  slack    f32, finite and >= 0 (0 when absent)
//! 16  stride   u32, the routing stride the sample was taken with (0: no sample)
//! 20  dims     u32, leading components kept per sample row (min(dim, ROUTING_DIMS); 0 when
//!              the sample is empty)
//! 24  count    u32, sample rows (<= the segment's rows)
//! 28  reserved u32 = 0
//! 32  rows     count x u32, each < the segment's rows
//! 32 + 4 count  prefixes  count x dims x f16 (IEEE half bits), finite
//! ```
//!
//! The section ends exactly after the prefixes.

use half::f16;

use super::search::fetched_ahead;
use crate::index::flat::{dots_f16_f32, row_vector, Hit, TopK};

/// Section kind of the walk hints (index layer).
pub const HINTS_KIND: u32 = 104;

/// Walk hints section magic.
const MAGIC: [u8; 4] = *b"S2WH";

/// Walk hints section version written and read.
const VERSION: u32 = 1;

/// Walk hints header size in bytes.
const HEADER_LEN: usize = 32;

/// Fewest rows in a routing sample (every row of a segment smaller than this).
pub const ROUTING_MIN: usize = 256;

/// Leading vector components a routing sample keeps per row (all of them when fewer).
pub const ROUTING_DIMS: usize = 64;

/// The routing stride of the default planner, which the walk hints section stores a
/// sample of.
pub const ROUTING_STRIDE: usize = 64;

/// How many sample rows per kept seed [`RoutingSample::seeds`] ranks by their leading
/// components and then scores in full: the leading components of a sentence or CLIP
/// embedding carry a small part of its direction, so the best rows by them are a pool
/// holding the best rows by the whole vector, not that ranking itself.
pub const ROUTING_POOL_PER_SEED: usize = 32;

/// A pool of `p` rows (at least `2 * POOL_BAR_RANK`) is cut at a bar read off one sample
/// score in every `p / POOL_BAR_RANK`: the `1.25 * POOL_BAR_RANK`-th best of those, so that
/// the rows over it are a few more than the pool (which then keeps the best `p` of them),
/// instead of a selection over every score: at 1M rows (15,625 sample rows) that selection
/// took half an unfiltered query. The rank is large enough that the bar seldom lets fewer
/// than `p` rows over it, and then a few fewer.
const POOL_BAR_RANK: usize = 32;

/// The routing sample of a segment
/// ([`PlannerParams::routing_stride`](crate::query::planner::PlannerParams::routing_stride)):
/// one row in every `stride` (at least 256 rows; in runs of consecutive rows, one page of
/// vectors per run), the first 64 components of each, contiguous, so that one query scores thousands
/// of sample rows in one sequential read (at 1M x 512 with stride 64: 15,625 rows, 2 MB).
/// Leading components stand in for the whole vector only to rank entry points; the walk
/// scores the chosen rows in full.
#[derive(Debug, Clone)]
pub struct RoutingSample {
    pub(crate) stride: usize,
    dims: usize,
    rows: Vec<u32>,
    prefix: Vec<f16>,
}

impl RoutingSample {
    /// The sample of `n` rows of `vectors` (`dim` wide) for `routing_stride` (0: empty).
    pub fn build(vectors: &[f16], dim: usize, n: u32, routing_stride: usize) -> RoutingSample {
        let dims = dim.min(ROUTING_DIMS);
        let rows: Vec<u32> = if routing_stride == 0 || n == 0 || dims == 0 {
            Vec::new()
        } else {
            let n = n as usize;
            let size = (n / routing_stride).max(ROUTING_MIN).min(n);
            // Runs of consecutive rows, one 4 KiB page of vectors each, spread evenly: the
            // first query after open faults in one page per run instead of one per row.
            let run = (4096 / (2 * dim)).clamp(1, 16);
            let runs = size.div_ceil(run);
            let step = n / runs;
            (0..runs)
                .flat_map(|r| {
                    let start = r * step;
                    start..(start + run.min(step)).min(n)
                })
                .take(size)
                .map(|row| row as u32)
                .collect()
        };
        let mut prefix = Vec::with_capacity(rows.len() * dims);
        let mut kept = Vec::with_capacity(rows.len());
        for &row in &rows {
            let v = row_vector(vectors, dim, row);
            if v.len() == dim {
                prefix.extend_from_slice(&v[..dims]);
                kept.push(row);
            }
        }
        RoutingSample {
            stride: routing_stride,
            dims,
            rows: kept,
            prefix,
        }
    }

    /// Rows in the sample.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the sample is empty.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `keep` sample rows that score best against the query by `score` (its score of a
    /// row over the whole vector; `None` leaves the row out), best first: the
    /// `keep * ROUTING_POOL_PER_SEED` best by their leading components (as
    /// [`best`](Self::best) ranks them; about the best that many, see [`POOL_BAR_RANK`])
    /// are scored so, each asked for (`ask`, a hint to load it) a few rows before it is
    /// scored, as a walk asks for its rows.
    pub fn seeds(
        &self,
        query: &[f32],
        keep: usize,
        score: impl Fn(u32) -> Option<f32>,
        ask: impl Fn(u32),
    ) -> Vec<u32> {
        let pool: Vec<u32> =
            (self.scored_pool(query, keep.saturating_mul(ROUTING_POOL_PER_SEED), true))
                .iter()
                .map(|h| h.row)
                .collect();
        let mut best = TopK::new(keep);
        fetched_ahead(&pool, ask, |row| {
            if let Some(score) = score(row).filter(|s| !s.is_nan()) {
                best.push(Hit { row, score });
            }
        });
        best.into_sorted().iter().map(|h| h.row).collect()
    }

    /// The `keep` sample rows whose leading components score best against `query`'s.
    #[cfg(any(test, feature = "testing"))]
    pub fn best(&self, query: &[f32], keep: usize) -> Vec<u32> {
        let mut best = self.scored_pool(query, keep, false);
        best.sort_unstable_by(|a, b| a.rank_cmp(b));
        best.iter().map(|h| h.row).collect()
    }

    /// The `keep` sample rows whose leading components score best against `query`'s, in
    /// no order, with those scores; with `about`, roughly those (at most `keep`; see
    /// [`POOL_BAR_RANK`]).
    fn scored_pool(&self, query: &[f32], keep: usize, about: bool) -> Vec<Hit> {
        let Some(q) = query.get(..self.dims).filter(|q| !q.is_empty()) else {
            return Vec::new();
        };
        if keep == 0 {
            return Vec::new();
        }
        let mut scores = Vec::with_capacity(self.rows.len());
        dots_f16_f32(&self.prefix, self.dims, q, &mut scores);
        // A bar a little below the `keep`-th best score, read off every `step`-th score:
        // then one comparison a row instead of a selection over all of them (which cost
        // more than the dot products on a large sample). NaN scores never pass it.
        let step = keep / POOL_BAR_RANK;
        let mut bar = f32::NEG_INFINITY;
        if about && step >= 2 && scores.len() > keep {
            let mut every: Vec<f32> = scores.iter().step_by(step).copied().collect();
            let rank = (POOL_BAR_RANK * 5 / 4).clamp(1, every.len());
            every.select_nth_unstable_by(rank - 1, |a, b| b.total_cmp(a));
            // Scores that are not numbers or infinite (damaged rows of a sample built from
            // the vectors) leave the pool to the exact selection.
            bar = Some(every[rank - 1])
                .filter(|b| b.is_finite())
                .unwrap_or(f32::NEG_INFINITY);
        }
        let mut hits: Vec<Hit> = (self.rows.iter().zip(&scores))
            .filter(|&(_, &score)| score >= bar)
            .map(|(&row, &score)| Hit { row, score })
            .collect();
        if hits.len() > keep {
            hits.select_nth_unstable_by(keep - 1, |a, b| a.rank_cmp(b));
            hits.truncate(keep);
        }
        hits
    }
}

/// The header of a walk hints section: what [`hints_header`] read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HintsHeader {
    /// The graph's hop slack (`None`: the graph has none, no edges).
    pub slack: Option<f32>,
    /// The routing stride of the stored sample (0: none).
    pub stride: usize,
    dims: usize,
    count: usize,
}

/// The walk hints section of a segment of `rows` x `dim` with hop slack `slack` and routing
/// sample `sample`.
pub fn write_hints(slack: Option<f32>, sample: &RoutingSample) -> Vec<u8> {
    let count = sample.rows.len();
    let mut out = Vec::with_capacity(HEADER_LEN + 4 * count + 2 * sample.prefix.len());
    out.extend_from_slice(&MAGIC);
    for v in [VERSION, u32::from(slack.is_some())] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&slack.unwrap_or(0.0).to_le_bytes());
    let dims = if count == 0 { 0 } else { sample.dims };
    for v in [sample.stride, dims, count, 0] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for &r in &sample.rows {
        out.extend_from_slice(&r.to_le_bytes());
    }
    for x in &sample.prefix {
        out.extend_from_slice(&x.to_bits().to_le_bytes());
    }
    out
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Checks the header of a walk hints section for a segment of `rows` x `dim`: magic,
/// version, flags, the slack, the sample's shape and the section's exact length (O(1): the
/// rows and prefixes are checked by [`RoutingSample::from_hints`]).
pub fn hints_header(bytes: &[u8], rows: u32, dim: usize) -> Result<HintsHeader, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err("bad magic at offset 0".into());
    }
    let version = u32_at(bytes, 4);
    if version != VERSION {
        return Err(format!(
            "version {version} at offset 4 (this build reads {VERSION})"
        ));
    }
    let flags = u32_at(bytes, 8);
    if flags > 1 {
        return Err(format!("unknown flags {flags:#x} at offset 8"));
    }
    let slack = f32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default());
    if !(slack.is_finite() && slack >= 0.0) || (flags == 0 && slack != 0.0) {
        return Err(format!("slack {slack} at offset 12"));
    }
    let (stride, dims, count) = (u32_at(bytes, 16), u32_at(bytes, 20), u32_at(bytes, 24));
    if u32_at(bytes, 28) != 0 {
        return Err("reserved field at offset 28 is not 0".into());
    }
    let want_dims = if count == 0 { 0 } else { dim.min(ROUTING_DIMS) };
    if dims as usize != want_dims {
        return Err(format!(
            "{dims} components a row at offset 20, expected {want_dims}"
        ));
    }
    if count > rows || (stride == 0 && count > 0) {
        return Err(format!(
            "{count} sample rows at offset 24 (stride {stride}, segment of {rows} rows)"
        ));
    }
    // count < 2^32 and dims <= 64: no overflow in u64.
    let len = HEADER_LEN as u64 + 4 * u64::from(count) + 2 * u64::from(count) * u64::from(dims);
    if bytes.len() as u64 != len {
        return Err(format!("{} bytes, the header says {len}", bytes.len()));
    }
    let (count, dims) = (count as usize, dims as usize);
    Ok(HintsHeader {
        slack: (flags == 1).then_some(slack),
        stride: stride as usize,
        dims,
        count,
    })
}

impl RoutingSample {
    /// The routing sample stored in a walk hints section of a segment of `rows` x `dim`,
    /// checked: the header ([`hints_header`]), every row `< rows`, every prefix value
    /// finite.
    pub fn from_hints(bytes: &[u8], rows: u32, dim: usize) -> Result<RoutingSample, String> {
        let h = hints_header(bytes, rows, dim)?;
        let row_bytes = &bytes[HEADER_LEN..HEADER_LEN + 4 * h.count];
        let sample_rows: Vec<u32> = row_bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = sample_rows.iter().position(|&r| r >= rows) {
            return Err(format!(
                "sample row {} at offset {} is not a row of the segment",
                sample_rows[i],
                HEADER_LEN + 4 * i
            ));
        }
        let at = HEADER_LEN + 4 * h.count;
        let prefix: Vec<f16> = bytes[at..]
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        if let Some(i) = prefix.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "sample value at offset {} is not finite",
                at + 2 * i
            ));
        }
        Ok(RoutingSample {
            stride: h.stride,
            dims: h.dims,
            rows: sample_rows,
            prefix,
        })
    }

    /// Whether this sample is the one [`RoutingSample::build`] takes from `vectors` (`dim`
    /// wide, `n` rows) with its stride: what `verify` checks of a stored sample.
    pub fn matches(&self, vectors: &[f16], dim: usize, n: u32) -> bool {
        let built = RoutingSample::build(vectors, dim, n, self.stride);
        built.rows == self.rows
            && built.dims == self.dims
            && built
                .prefix
                .iter()
                .map(|x| x.to_bits())
                .eq(self.prefix.iter().map(|x| x.to_bits()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A pool cut at the bar read off every `step`-th score is about its size and holds
    /// the best rows: none below the `2 keep`-th best score, every one of the best
    /// `keep / 4`; a pool too small for a bar is the exact selection.
    #[test]
    fn a_pool_is_about_the_best_rows() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let dim = 8;
        for (n, keep) in [
            (40_000u32, 64usize),
            (40_000, 256),
            (3_000, 256),
            (3_000, 32),
        ] {
            let vectors: Vec<f16> = (0..n as usize * dim)
                .map(|_| f16::from_f32(rng.random_range(-1.0f32..1.0)))
                .collect();
            let sample = RoutingSample::build(&vectors, dim, n, 1);
            for _ in 0..20 {
                let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let mut exact = sample.scored_pool(&q, sample.len(), false);
                exact.sort_by(|a, b| a.rank_cmp(b));
                let pool = sample.scored_pool(&q, keep, true);
                assert!(pool.len() <= keep, "{} of {keep}", pool.len());
                if keep / POOL_BAR_RANK < 2 {
                    assert_eq!(pool.len(), keep);
                }
                assert!(pool.len() >= keep / 2, "{} of {keep}", pool.len());
                let floor = exact[2 * keep - 1].score;
                assert!(pool.iter().all(|h| h.score >= floor));
                let rows: std::collections::HashSet<u32> = pool.iter().map(|h| h.row).collect();
                assert!(exact[..keep / 4].iter().all(|h| rows.contains(&h.row)));
            }
        }
    }
}
