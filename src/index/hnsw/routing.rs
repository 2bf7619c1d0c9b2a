//! The routing sample of graph walks ([`RoutingSample`]), and the walk hints section
//! that stores it with the graph's hop slack ([`HINTS_KIND`]).
//!
//! # Walk hints section (kind [`HINTS_KIND`], version 2; version 1 is read too)
//!
//! What a segment's first walk would otherwise work out from the vectors and the graph:
//! the hop slack ([`hop_slack`](super::hop_slack)) and the routing sample taken with
//! [`ROUTING_STRIDE`], with the sample rows' int8 copy, so that the seed pool a query scores
//! in full is read from one place instead of rows spread over the segment's int8 section.
//! Written next to the graph by [`HnswSectionBuilder`](super::HnswSectionBuilder); a
//! segment without it (written by an earlier build) has the slack and sample worked out on
//! first use, with the same values, and its seed pool scored on the segment's int8 rows.
//! Little-endian:
//!
//! ```text
//! 0   magic    b"S2WH"
//! 4   version  2 (1: as 2 without the int8 rows)
//! 8   flags    bit 0: the slack is present; other bits 0
//! 12  slack    f32, finite and >= 0 (0 when absent)
//! 16  stride   u32, the routing stride the sample was taken with (0: no sample)
//! 20  dims     u32, leading components kept per sample row (min(dim, ROUTING_DIMS); 0 when
//!              the sample is empty)
//! 24  count    u32, sample rows (<= the segment's rows)
//! 28  reserved u32 = 0
//! 32  rows     count x u32, each < the segment's rows
//! 32 + 4 count  prefixes  count x dims x f16 (IEEE half bits), finite
//! P   int8     version 2 with count > 0 only: P = the end of the prefixes rounded up to
//!              a multiple of 64 (zero bytes between), then the int8 copy of the sample
//!              rows in order, laid out as an int8 section of count x dim (kind 103,
//!              `crate::index::quant::build_quantized` of those rows), every scale and
//!              norm sound
//! ```
//!
//! The section ends exactly after the int8 rows (after the prefixes when there are none).

use half::f16;

use super::search::fetched_ahead;
use crate::index::flat::{dots_f16_f32, row_vector, Hit, TopK};
use crate::index::quant::{build_quantized, codes_at, section_len, QuantView};

/// Section kind of the walk hints (index layer).
pub const HINTS_KIND: u32 = 104;

/// Walk hints section magic.
const MAGIC: [u8; 4] = *b"S2WH";

/// Walk hints section version written (1 is read too: no int8 rows).
const VERSION: u32 = 2;

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
    /// Where the sample rows' int8 copy starts in the walk hints section this sample was
    /// read from, its scales and norms checked ([`RoutingSample::from_hints`]); `None` for a
    /// sample built from the vectors or read from a version 1 section.
    int8_at: Option<usize>,
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
            // An empty sample keeps no components (as its walk hints say).
            dims: if kept.is_empty() { 0 } else { dims },
            rows: kept,
            prefix,
            int8_at: None,
        }
    }

    /// The int8 copy of the sample rows of `vectors` (`dim` wide), in sample order: what
    /// the walk hints store after the prefixes.
    fn int8_copy(&self, vectors: &[f16], dim: usize) -> Vec<u8> {
        let rows: Vec<f16> = (self.rows.iter())
            .flat_map(|&r| row_vector(vectors, dim, r).iter().copied())
            .collect();
        build_quantized(&rows, dim)
    }

    /// The sample rows' int8 copy in `hints`, the walk hints section this sample was read
    /// from (`dim` wide; row `i` is sample row `i`): `None` when the sample has none
    /// ([`RoutingSample::build`], a version 1 section); an error when `hints` is not that
    /// section.
    pub fn int8_rows<'h>(
        &self,
        hints: &'h [u8],
        dim: usize,
    ) -> Option<Result<QuantView<'h>, String>> {
        let at = self.int8_at?;
        let bytes = hints.get(at..).unwrap_or(&[]);
        Some(
            QuantView::parse(bytes, self.rows.len(), dim)
                .map(QuantView::with_factors_checked)
                .map_err(|e| format!("the sample's int8 rows at offset {at}: {e}")),
        )
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
    /// row over the whole vector, given the row's place in the sample and the row; `None`
    /// leaves the row out), best first: the `keep * ROUTING_POOL_PER_SEED` best by their
    /// leading components (as [`best`](Self::best) ranks them; about the best that many,
    /// see [`POOL_BAR_RANK`]) are scored so, each asked for (`ask`, a hint to load it) a few
    /// rows before it is scored, as a walk asks for its rows.
    pub fn seeds(
        &self,
        query: &[f32],
        keep: usize,
        score: impl Fn(u32, u32) -> Option<f32>,
        ask: impl Fn(u32, u32),
    ) -> Vec<u32> {
        let pool: Vec<u32> =
            (self.scored_pool(query, keep.saturating_mul(ROUTING_POOL_PER_SEED), true))
                .iter()
                .map(|h| h.row)
                .collect();
        let row = |i: u32| self.rows[i as usize];
        let mut best = TopK::new(keep);
        fetched_ahead(
            &pool,
            |i| ask(i, row(i)),
            |i| {
                if let Some(score) = score(i, row(i)).filter(|s| !s.is_nan()) {
                    best.push(Hit { row: row(i), score });
                }
            },
        );
        best.into_sorted().iter().map(|h| h.row).collect()
    }

    /// The `keep` sample rows whose leading components score best against `query`'s.
    #[cfg(any(test, feature = "testing"))]
    pub fn best(&self, query: &[f32], keep: usize) -> Vec<u32> {
        let mut best = self.scored_pool(query, keep, false);
        for h in &mut best {
            h.row = self.rows[h.row as usize];
        }
        best.sort_unstable_by(|a, b| a.rank_cmp(b));
        best.iter().map(|h| h.row).collect()
    }

    /// The `keep` sample rows whose leading components score best against `query`'s, in
    /// no order, by their places in the sample, with those scores; with `about`, roughly
    /// those (at most `keep`; see [`POOL_BAR_RANK`]).
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
        let mut hits: Vec<Hit> = (scores.iter().enumerate())
            .filter(|&(_, &score)| score >= bar)
            .map(|(i, &score)| Hit {
                row: i as u32,
                score,
            })
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
    /// Where the sample rows' int8 copy starts (version 2 with rows).
    int8_at: Option<usize>,
}

impl HintsHeader {
    /// The bytes of the section a first walk reads whole: all but the int8 codes, whose
    /// rows are read where a query scores them.
    pub fn read_whole(&self, section_len: usize) -> usize {
        self.int8_at
            .and_then(|at| at.checked_add(codes_at(self.count)?))
            .map_or(section_len, |end| end.min(section_len))
    }
}

/// The walk hints section of a segment whose rows are `vectors` (`dim` wide), with hop
/// slack `slack` and routing sample `sample` (taken from those vectors).
pub fn write_hints(
    slack: Option<f32>,
    sample: &RoutingSample,
    vectors: &[f16],
    dim: usize,
) -> Vec<u8> {
    let count = sample.rows.len();
    let int8 = if count == 0 {
        Vec::new()
    } else {
        sample.int8_copy(vectors, dim)
    };
    let mut out =
        Vec::with_capacity(HEADER_LEN + 4 * count + 2 * sample.prefix.len() + 64 + int8.len());
    out.extend_from_slice(&MAGIC);
    for v in [VERSION, u32::from(slack.is_some())] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&slack.unwrap_or(0.0).to_le_bytes());
    for v in [sample.stride, sample.dims, count, 0] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for &r in &sample.rows {
        out.extend_from_slice(&r.to_le_bytes());
    }
    for x in &sample.prefix {
        out.extend_from_slice(&x.to_bits().to_le_bytes());
    }
    if !int8.is_empty() {
        out.resize(out.len().next_multiple_of(64), 0);
        out.extend_from_slice(&int8);
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
/// rows, prefixes and int8 rows are checked by [`RoutingSample::from_hints`]).
pub fn hints_header(bytes: &[u8], rows: u32, dim: usize) -> Result<HintsHeader, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err("bad magic at offset 0".into());
    }
    let version = u32_at(bytes, 4);
    if !(1..=VERSION).contains(&version) {
        return Err(format!(
            "version {version} at offset 4 (this build reads 1 to {VERSION})"
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
    let prefixes_end =
        HEADER_LEN as u64 + 4 * u64::from(count) + 2 * u64::from(count) * u64::from(dims);
    let int8_at = (version >= 2 && count > 0).then(|| prefixes_end.next_multiple_of(64));
    let int8_len = match int8_at {
        None => Some(0),
        Some(_) => section_len(count as usize, dim).map(|l| l as u64),
    };
    let len = int8_len.and_then(|l| int8_at.unwrap_or(prefixes_end).checked_add(l));
    if len != Some(bytes.len() as u64) {
        return Err(match len {
            Some(len) => format!("{} bytes, the header says {len}", bytes.len()),
            None => format!("{count} sample rows of dim {dim} overflow a length"),
        });
    }
    // Both offsets are within the section's length, so they fit a usize.
    let (prefixes_end, int8_at) = (prefixes_end as usize, int8_at.map(|a| a as usize));
    if let Some(at) = int8_at {
        if let Some(i) = bytes[prefixes_end..at].iter().position(|&b| b != 0) {
            return Err(format!(
                "padding byte at offset {} is not 0",
                prefixes_end + i
            ));
        }
    }
    let (count, dims) = (count as usize, dims as usize);
    Ok(HintsHeader {
        slack: (flags == 1).then_some(slack),
        stride: stride as usize,
        dims,
        count,
        int8_at,
    })
}

impl RoutingSample {
    /// The routing sample stored in a walk hints section of a segment of `rows` x `dim`,
    /// checked: the header ([`hints_header`]), every row `< rows`, every prefix value
    /// finite, the int8 rows' header and every scale and norm sound (their codes against
    /// the vectors: [`RoutingSample::matches`]).
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
        let prefix: Vec<f16> = bytes[at..at + 2 * h.count * h.dims]
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        if let Some(i) = prefix.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "sample value at offset {} is not finite",
                at + 2 * i
            ));
        }
        let sample = RoutingSample {
            stride: h.stride,
            dims: h.dims,
            rows: sample_rows,
            prefix,
            int8_at: h.int8_at,
        };
        if let Some(view) = sample.int8_rows(bytes, dim) {
            view?
                .check_factors()
                .map_err(|e| format!("the sample's int8 rows: {e}"))?;
        }
        Ok(sample)
    }

    /// Whether this sample, read from the walk hints section `hints`, is the one
    /// [`RoutingSample::build`] takes from `vectors` (`dim` wide, `n` rows) with its stride,
    /// and its int8 rows (if any) are those rows' int8 copy: what `verify` checks of a
    /// stored sample.
    pub fn matches(&self, hints: &[u8], vectors: &[f16], dim: usize, n: u32) -> bool {
        let built = RoutingSample::build(vectors, dim, n, self.stride);
        let int8_matches = match self.int8_at {
            None => true,
            Some(at) => hints.get(at..) == Some(&built.int8_copy(vectors, dim)[..]),
        };
        built.rows == self.rows
            && built.dims == self.dims
            && built
                .prefix
                .iter()
                .map(|x| x.to_bits())
                .eq(self.prefix.iter().map(|x| x.to_bits()))
            && int8_matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::quant::Int8Rows;
    use rand::{Rng, SeedableRng};

    fn vectors(rng: &mut rand_chacha::ChaCha8Rng, n: usize, dim: usize) -> Vec<f16> {
        (0..n * dim)
            .map(|_| f16::from_f32(rng.random_range(-1.0f32..1.0)))
            .collect()
    }

    /// The section's int8 rows are the segment int8 copy's rows of the sample, byte for
    /// byte; a version 1 section (no int8 rows) is read with the same sample; `matches`
    /// sees a changed code.
    #[test]
    fn the_hints_hold_the_sample_rows_int8_copy() {
        use crate::index::quant::{build_quantized, QuantView};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (n, dim) in [(5_000usize, 48usize), (300, 100), (40_000, 16)] {
            let v = vectors(&mut rng, n, dim);
            let sample = RoutingSample::build(&v, dim, n as u32, 64);
            let hints = write_hints(Some(0.1), &sample, &v, dim);
            let read = RoutingSample::from_hints(&hints, n as u32, dim).unwrap();
            assert!(read.matches(&hints, &v, dim, n as u32));
            let own = read.int8_rows(&hints, dim).unwrap().unwrap();
            let all_bytes = build_quantized(&v, dim);
            let all = QuantView::parse(&all_bytes, n, dim).unwrap();
            assert_eq!(own.rows(), sample.len());
            let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let (a, b) = (Int8Rows::new(all, &q), Int8Rows::new(own, &q));
            for (i, &row) in sample.rows.iter().enumerate() {
                let (x, y) = (a.approx(row).unwrap(), b.approx(i as u32).unwrap());
                assert_eq!(
                    (x.0.to_bits(), x.1.to_bits()),
                    (y.0.to_bits(), y.1.to_bits())
                );
            }
            // The same section as version 1 writes it: the header, rows and prefixes.
            let prefixes_end = HEADER_LEN + 4 * sample.len() + 2 * sample.len() * sample.dims;
            let mut v1 = hints[..prefixes_end].to_vec();
            v1[4..8].copy_from_slice(&1u32.to_le_bytes());
            let old = RoutingSample::from_hints(&v1, n as u32, dim).unwrap();
            assert!(old.int8_rows(&v1, dim).is_none());
            assert_eq!((&old.rows, old.stride), (&read.rows, read.stride));
            assert!(old.matches(&v1, &v, dim, n as u32));
            // A version 2 section cut after its prefixes, or a version 1 with int8 rows.
            assert!(RoutingSample::from_hints(&hints[..prefixes_end], n as u32, dim).is_err());
            let mut long_v1 = hints.clone();
            long_v1[4..8].copy_from_slice(&1u32.to_le_bytes());
            assert!(RoutingSample::from_hints(&long_v1, n as u32, dim).is_err());
            // A code changed: readable, not the vectors' copy.
            let mut changed = hints.clone();
            let last = changed.len() - 1;
            changed[last] = if changed[last] == 5 { 6 } else { 5 };
            let read = RoutingSample::from_hints(&changed, n as u32, dim).unwrap();
            assert!(!read.matches(&changed, &v, dim, n as u32));
        }
    }

    /// Damage to the int8 rows that no search can rest on is refused when the section is
    /// read, naming where: a scale or norm that is not a positive finite number, the rows'
    /// header, a padding byte.
    #[test]
    fn damaged_int8_rows_of_the_hints_are_refused() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let (n, dim) = (5_000usize, 40usize);
        let v = vectors(&mut rng, n, dim);
        let sample = RoutingSample::build(&v, dim, n as u32, 64);
        let hints = write_hints(None, &sample, &v, dim);
        let prefixes_end = HEADER_LEN + 4 * sample.len() + 2 * sample.len() * sample.dims;
        let at = prefixes_end.next_multiple_of(64);
        assert!(at > prefixes_end, "this shape has padding");
        let scale_of = |i: usize| at + 64 + 4 * i;
        let l1_of = |i: usize| at + (64 + 4 * sample.len()).next_multiple_of(64) + 4 * i;
        for (edit, want) in [
            (
                (scale_of(7), f32::NAN.to_le_bytes()),
                "the sample's int8 rows: row 7",
            ),
            ((scale_of(0), (-1.0f32).to_le_bytes()), "row 0"),
            ((l1_of(3), f32::INFINITY.to_le_bytes()), "row 3"),
            ((at, *b"XXXX"), "bad magic"),
            ((at + 12, 41u32.to_le_bytes()), "shape"),
            ((prefixes_end, [0, 0, 1, 0]), "padding byte"),
        ] {
            let mut bad = hints.clone();
            bad[edit.0..edit.0 + 4].copy_from_slice(&edit.1);
            let e = RoutingSample::from_hints(&bad, n as u32, dim).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

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
