//! An int8 copy of a segment's vectors, for exact scans that read half the bytes.
//!
//! Each row `x` (f16, `dim` wide) is stored as a scale `s = max|x_i| / 127`, the codes
//! `c_i = round(x_i / s)` (i8, `|x_i - s c_i| <= s / 2`), and `l1 = sum |x_i|` rounded up.
//! A query `q` (f32, normalised) is quantised to `d_i = round(q_i / t)` with
//! `t = max|q_i| / 2047`, so that the integer dot product `sum c_i d_i` fits an `i32` at every
//! supported dimension. Then `s t sum c_i d_i` is within
//!
//! ```text
//! B = s / 2 * |q|_1 + t / 2 * (l1 + dim * s / 2) + slack
//! ```
//!
//! of the f16 score `sum q_i x_i` (`q_i x_i - t d_i s c_i = q_i (x_i - s c_i) +
//! s c_i (q_i - t d_i)`, and `s |c_i| <= |x_i| + s / 2`); `slack` covers the rounding of the
//! f32 sums on both sides. [`top_k_bits_quantized`] scores every member with the codes, keeps
//! the rows whose upper bound reaches the `k`-th best lower bound, and scores those again
//! from the f16 vectors: the answer is the exact scan's, rows and scores, while the pass
//! over all members reads `dim + 8` bytes a row instead of `2 dim`.
//!
//! Section layout (kind [`QUANT_KIND`], little-endian): a 64-byte header (`magic "S2CI8\0\0\0"`,
//! `version u32 = 1`, `dim u32`, `rows u64`, zero padding), then `rows` f32 scales, `rows`
//! f32 L1 norms, then the codes, `rows * dim` i8, each block starting at a multiple of 64.

use half::f16;

use super::flat::{
    dot_f16_f32, members, prefetch_bytes, row_vector, Hit, ReadAhead, TopK, DENSE_BLOCK_FROM,
};
use std::sync::OnceLock;

mod kernels;
#[cfg(test)]
use kernels::dot_i8_i16_portable;
pub use kernels::{dot_i8_i16, dots_i8_i16};

use crate::storage::advice::InOrder;
use crate::storage::{ExtraSections, SectionBuildError, SectionBuilder, Segment};

/// Section kind of the int8 copy (index layer).
pub const QUANT_KIND: u32 = 103;

const MAGIC: [u8; 8] = *b"S2CI8\0\0\0";
const VERSION: u32 = 1;
const HEADER: usize = 64;
/// Largest query code: `dim * 127 * QUERY_MAX` stays below `i32::MAX` up to dim 4096.
const QUERY_MAX: f32 = 2047.0;

fn align64(x: usize) -> usize {
    x.div_ceil(64) * 64
}

/// Byte offsets of the scales, norms and codes in a section of `rows` x `dim`.
fn layout(rows: usize, dim: usize) -> Option<(usize, usize, usize, usize)> {
    let scales = HEADER;
    let l1 = align64(scales.checked_add(rows.checked_mul(4)?)?);
    let codes = align64(l1.checked_add(rows.checked_mul(4)?)?);
    let end = codes.checked_add(rows.checked_mul(dim)?)?;
    Some((scales, l1, codes, end))
}

/// Length in bytes of the int8 section of `rows` x `dim` (`None`: it overflows).
pub fn section_len(rows: usize, dim: usize) -> Option<usize> {
    layout(rows, dim).map(|(_, _, _, end)| end)
}

/// Where the codes start in an int8 section of `rows` rows (after the header, scales and
/// norms; `None`: it overflows).
pub fn codes_at(rows: usize) -> Option<usize> {
    layout(rows, 0).map(|(_, _, codes, _)| codes)
}

/// Builds the int8 section of `vectors` (`dim` wide, finite f16).
pub fn build_quantized(vectors: &[f16], dim: usize) -> Vec<u8> {
    let rows = vectors.len().checked_div(dim).unwrap_or(0);
    let Some((so, lo, co, end)) = layout(rows, dim) else {
        return Vec::new();
    };
    let mut out = vec![0u8; end];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(dim as u32).to_le_bytes());
    out[16..24].copy_from_slice(&(rows as u64).to_le_bytes());
    for (r, x) in vectors.chunks_exact(dim).enumerate() {
        let max = x.iter().map(|v| v.to_f32().abs()).fold(0f32, f32::max);
        let s = if max > 0.0 && max.is_finite() {
            max / 127.0
        } else {
            0.0
        };
        let l1: f64 = x.iter().map(|v| f64::from(v.to_f32().abs())).sum();
        // Rounded up, so that the stored norm never understates the bound.
        let l1 = (l1 * (1.0 + 1e-6)) as f32;
        out[so + 4 * r..so + 4 * r + 4].copy_from_slice(&s.to_le_bytes());
        out[lo + 4 * r..lo + 4 * r + 4].copy_from_slice(&l1.to_le_bytes());
        let codes = &mut out[co + r * dim..co + (r + 1) * dim];
        for (c, v) in codes.iter_mut().zip(x) {
            let q = if s > 0.0 {
                (f64::from(v.to_f32()) / f64::from(s))
                    .round()
                    .clamp(-127.0, 127.0)
            } else {
                0.0
            };
            *c = (q as i8) as u8;
        }
    }
    out
}

/// A validated int8 section, read in place.
#[derive(Debug, Clone, Copy)]
pub struct QuantView<'a> {
    dim: usize,
    scales: &'a [f32],
    l1: &'a [f32],
    codes: &'a [i8],
    /// Whether every row's factors were found sound ([`QuantView::check_factors`]).
    factors_checked: bool,
}

/// The shape of a validated int8 section, kept across queries: [`QuantLayout::view`] makes
/// the per-query view without reading the section again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantLayout {
    rows: usize,
    dim: usize,
}

impl QuantLayout {
    /// Validates `bytes` (see [`QuantView::parse`]) and keeps its shape.
    pub fn parse(bytes: &[u8], rows: usize, dim: usize) -> Result<QuantLayout, String> {
        QuantView::parse(bytes, rows, dim).map(|_| QuantLayout { rows, dim })
    }

    /// The view of `bytes`, the section validated by [`QuantLayout::parse`] (the same
    /// immutable bytes); `None` if their length or alignment changed.
    pub fn view<'a>(&self, bytes: &'a [u8]) -> Option<QuantView<'a>> {
        let (so, lo, co, end) = layout(self.rows, self.dim)?;
        if bytes.len() != end {
            return None;
        }
        Some(QuantView {
            dim: self.dim,
            scales: bytemuck::try_cast_slice(&bytes[so..so + self.rows * 4]).ok()?,
            l1: bytemuck::try_cast_slice(&bytes[lo..lo + self.rows * 4]).ok()?,
            codes: bytemuck::cast_slice(&bytes[co..end]),
            factors_checked: false,
        })
    }
}

impl<'a> QuantView<'a> {
    /// Checks `bytes` as the int8 section of `rows` x `dim`: header and exact length.
    /// The rows' scales and norms are checked before a search relies on them (a walk's
    /// [`Int8Rows::approx`] row by row, the scan [`top_k_bits_quantized`] all of them:
    /// [`QuantView::check_factors`]) and by [`QuantView::check_rows`], so a damaged one is
    /// an error, never a wrong answer.
    /// `bytes` must be 4-byte aligned (sections are 64-byte aligned).
    pub fn parse(bytes: &'a [u8], rows: usize, dim: usize) -> Result<QuantView<'a>, String> {
        let (_, _, _, end) = layout(rows, dim).ok_or("size overflows")?;
        if bytes.len() != end {
            return Err(format!("{} bytes, expected {end}", bytes.len()));
        }
        if bytes[..8] != MAGIC {
            return Err("bad magic".into());
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if u32_at(8) != VERSION {
            return Err(format!(
                "version {} (this build reads {VERSION})",
                u32_at(8)
            ));
        }
        if u32_at(12) as usize != dim
            || u64::from_le_bytes(bytes[16..24].try_into().unwrap_or_default()) != rows as u64
        {
            return Err("shape does not match the segment".into());
        }
        QuantLayout { rows, dim }
            .view(bytes)
            .ok_or_else(|| "section is not aligned in memory".into())
    }

    /// The scale and norm of `row`, when both are what the bounds rest on (a positive
    /// finite scale, a finite non-negative norm); else why not.
    fn factors(&self, row: usize) -> Result<(f32, f32), String> {
        match (self.scales.get(row), self.l1.get(row)) {
            (Some(&s), Some(&l1)) if sound(s, l1) => Ok((s, l1)),
            (Some(s), Some(l1)) => Err(format!(
                "row {row}: scale {s} or norm {l1} is not a positive finite number"
            )),
            _ => Err(format!("row {row} is past the copy's {} rows", self.rows())),
        }
    }

    /// This view with every row's scale and norm checked (read whole, in order): what the
    /// scan needs ([`top_k_bits_quantized`] checks a view that is not). The error names
    /// the first damaged row.
    pub fn check_factors(self) -> Result<QuantView<'a>, String> {
        let _in_order = (InOrder::new(self.scales), InOrder::new(self.l1));
        if !factors_sound(self.scales, self.l1) {
            let bad = (0..self.rows()).find_map(|r| self.factors(r).err());
            return Err(bad.unwrap_or_else(|| "a scale or norm is damaged".into()));
        }
        Ok(self.with_factors_checked())
    }

    /// [`QuantView::check_factors`] made once for this section: its outcome kept in
    /// `cell`, which the caller keeps with the section.
    pub(crate) fn check_factors_once(
        self,
        cell: &OnceLock<Result<(), String>>,
    ) -> Result<QuantView<'a>, String> {
        match cell.get_or_init(|| self.check_factors().map(drop)) {
            Ok(()) => Ok(self.with_factors_checked()),
            Err(e) => Err(e.clone()),
        }
    }

    /// This view, its factors known sound: by a [`QuantView::check_factors`] of the same
    /// section that the caller remembers.
    pub(crate) fn with_factors_checked(mut self) -> QuantView<'a> {
        self.factors_checked = true;
        self
    }

    /// Checks every row against the f16 vectors it copies (`vector(row)`): codes in
    /// `-127..=127`, `|x_i - s c_i| <= s / 2` for every component and `l1 >= sum |x_i|`,
    /// the two facts the scan's bound rests on. O(rows x dim): `verify` runs it.
    pub fn check_rows<'v>(&self, vector: impl Fn(usize) -> &'v [f16]) -> Result<(), String> {
        let _in_order = (InOrder::new(self.scales), InOrder::new(self.l1));
        for r in 0..self.rows() {
            let (s, l1) = self.factors(r)?;
            let x = vector(r);
            let c = self.codes(r as u32);
            if x.len() != c.len() {
                return Err(format!("row {r}: {} codes for {} values", c.len(), x.len()));
            }
            if let Some(i) = c.iter().position(|&c| c == i8::MIN) {
                return Err(format!("row {r}: code {i} is -128, outside -127..=127"));
            }
            let sum: f64 = x.iter().map(|v| f64::from(v.to_f32()).abs()).sum();
            if f64::from(l1) < sum * (1.0 - 1e-6) {
                return Err(format!(
                    "row {r}: stored L1 norm {l1} is below the row's {sum}"
                ));
            }
            let half = f64::from(s) / 2.0 * (1.0 + 1e-5);
            for (i, (v, &c)) in x.iter().zip(c).enumerate() {
                let err = (f64::from(v.to_f32()) - f64::from(s) * f64::from(c)).abs();
                if err > half {
                    return Err(format!(
                        "row {r}: code {i} ({c} x scale {s}) is {err} from the value {}, more \
                         than half the scale",
                        v.to_f32()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rows covered.
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Where the codes start (white-box tests: which bytes a view reads).
    #[cfg(feature = "testing")]
    pub(crate) fn codes_address(&self) -> usize {
        self.codes.as_ptr() as usize
    }

    /// The codes of `row` (empty when out of range).
    fn codes(&self, row: u32) -> &'a [i8] {
        let a = (row as usize).saturating_mul(self.dim);
        self.codes.get(a..a.saturating_add(self.dim)).unwrap_or(&[])
    }
}

/// A query quantised for [`QuantView`] rows.
#[derive(Clone)]
struct QuantQuery {
    codes: Vec<i16>,
    scale: f32,
    /// Bound on the f32 rounding of the sums (the f16 scan's and this one's).
    slack: f32,
    /// The bound `B` (module docs) of a row with scale `s` and norm `l1` is
    /// `s per_scale + l1 per_l1`, before the slack.
    per_scale: f32,
    per_l1: f32,
}

impl QuantQuery {
    fn new(q: &[f32]) -> QuantQuery {
        let max = q.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let scale = if max > 0.0 && max.is_finite() {
            max / QUERY_MAX
        } else {
            0.0
        };
        let codes = q
            .iter()
            .map(|&v| {
                if scale > 0.0 {
                    (f64::from(v) / f64::from(scale))
                        .round()
                        .clamp(-2047.0, 2047.0) as i16
                } else {
                    0
                }
            })
            .collect();
        let l1: f32 = q.iter().map(|v| v.abs()).sum();
        // The f16 scan sums dim products in f32: at most dim * 2^-24 relative to sum |q x|
        // <= |q|_1 max|x| <= |q|_1. Doubled, for this side's float products, plus a floor.
        let slack = 2.0 * q.len() as f32 * f32::EPSILON * l1.max(1.0) + 1e-6;
        let l1 = l1 * (1.0 + 1e-6);
        // B = s / 2 |q|_1 + t / 2 (l1 + dim s / 2), with its rounding margin.
        let per_scale = (l1 / 2.0 + scale * q.len() as f32 / 4.0) * (1.0 + 1e-5);
        QuantQuery {
            codes,
            scale,
            slack,
            per_scale,
            per_l1: scale / 2.0 * (1.0 + 1e-5),
        }
    }

    /// (lower, upper) bounds on the f16 score of a row with these codes (the query's
    /// width), scale and norm.
    #[inline]
    fn bounds(&self, codes: &[i8], s: f32, l1: f32) -> (f32, f32) {
        self.bounds_of(dot_i8_i16(codes, &self.codes), s, l1)
    }

    /// [`QuantQuery::bounds`] from the integer dot product `dot` of the codes.
    #[inline]
    fn bounds_of(&self, dot: i32, s: f32, l1: f32) -> (f32, f32) {
        let approx = (f64::from(dot) * f64::from(s) * f64::from(self.scale)) as f32;
        let b = self.half_width(s, l1);
        (approx - b, approx + b)
    }

    /// The bound `B` (module docs) of a row with scale `s` and norm `l1`.
    #[inline]
    fn half_width(&self, s: f32, l1: f32) -> f32 {
        s * self.per_scale + l1 * self.per_l1 + self.slack
    }
}

/// A query's scorer over the int8 copy, for graph walks: each row's approximate score and
/// the bound `B` (module docs) on how far it lies from the f16 score. A walk steers by the
/// approximate scores (half the bytes a row) and scores from the f16 vectors only the rows
/// whose bound reaches its results.
pub struct Int8Rows<'a> {
    view: QuantView<'a>,
    query: QuantQuery,
    /// The first row met whose scale or norm is damaged, and how.
    damage: std::cell::RefCell<Option<String>>,
}

impl<'a> Int8Rows<'a> {
    /// The scorer of `query` (normalised, `view.dim()` wide) over `view`.
    pub fn new(view: QuantView<'a>, query: &[f32]) -> Int8Rows<'a> {
        Int8Rows {
            view,
            query: QuantQuery::new(query),
            damage: std::cell::RefCell::new(None),
        }
    }

    /// The scorer of the same query over the rows of `view` (same dim): another copy made
    /// by [`build_quantized`], such as the routing sample's in the walk hints.
    pub fn over<'b>(&self, view: QuantView<'b>) -> Int8Rows<'b> {
        Int8Rows {
            view,
            query: self.query.clone(),
            damage: std::cell::RefCell::new(None),
        }
    }

    /// `(approximate score, bound)` of `row`; `None` for a row the copy does not hold or
    /// whose scale or norm is damaged (then kept for [`Int8Rows::damage`]: a walk that met
    /// one has no answer).
    #[inline]
    pub fn approx(&self, row: u32) -> Option<(f32, f32)> {
        let (s, l1) = self.sound_factors(row)?;
        let codes = self.view.codes(row);
        if codes.len() != self.view.dim || codes.is_empty() {
            return None;
        }
        let (lo, hi) = self.query.bounds(codes, s, l1);
        Some(((lo + hi) / 2.0, (hi - lo) / 2.0))
    }

    /// The bound `B` of `row` alone (what [`Int8Rows::approx`] gives beside its score,
    /// from the row's scale and norm, without its codes); `None` for a row the copy does not
    /// hold or whose scale or norm is damaged (kept for [`Int8Rows::damage`]).
    #[inline]
    pub fn bound(&self, row: u32) -> Option<f32> {
        let (s, l1) = self.sound_factors(row)?;
        Some(self.query.half_width(s, l1))
    }

    /// The scale and norm of `row`; `None` for a row the copy does not hold or whose
    /// factors no bound can rest on (kept for [`Int8Rows::damage`]).
    #[inline]
    fn sound_factors(&self, row: u32) -> Option<(f32, f32)> {
        let r = row as usize;
        let (s, l1) = (*self.view.scales.get(r)?, *self.view.l1.get(r)?);
        if !(self.view.factors_checked || sound(s, l1)) {
            self.damaged(r);
            return None;
        }
        Some((s, l1))
    }

    /// Keeps why the factors of `row` are damaged (the first row met so).
    #[cold]
    fn damaged(&self, row: usize) {
        if let Err(e) = self.view.factors(row) {
            self.damage.borrow_mut().get_or_insert(e);
        }
    }

    /// The damage [`Int8Rows::approx`] met (the first): a scale or norm that no bound can
    /// rest on.
    pub fn damage(&self) -> Option<String> {
        self.damage.borrow().clone()
    }

    /// Starts loading what [`Int8Rows::approx`] reads of `row` into cache: its codes, scale
    /// and norm (a hint only).
    #[inline]
    pub fn prefetch(&self, row: u32) {
        let r = row as usize;
        prefetch_codes(self.view.codes(row));
        prefetch_bytes(bytemuck::cast_slice(
            self.view.scales.get(r..=r).unwrap_or(&[]),
        ));
        prefetch_bytes(bytemuck::cast_slice(self.view.l1.get(r..=r).unwrap_or(&[])));
    }

    /// Starts reading the codes of `row` from disk (see [`crate::storage::advice::read_soon`]).
    pub(crate) fn read_soon(&self, row: u32) {
        crate::storage::advice::read_soon(self.view.codes(row));
    }
}

/// The exact top-`k` of [`super::flat::top_k_bits_into`] (same rows, same scores, into the
/// same kind of collector), with the pass over the members made on the int8 copy `quant`
/// (dense 64-row blocks by the block kernel, [`dots_i8_i16`]) and only the rows that may
/// rank rescored from the f16 `vectors` (see the module docs). The bounds rest on every
/// row's scale and norm: a view whose factors are not checked yet is checked first
/// ([`QuantView::check_factors`], O(rows)), and the error names a damaged row.
pub fn top_k_bits_quantized(
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    n: u32,
    bits: &[u64],
    quant: &QuantView<'_>,
    top: TopK,
) -> Result<Vec<Hit>, String> {
    let quant = match quant.factors_checked {
        true => *quant,
        false => quant.check_factors()?,
    };
    Ok(scan_quantized(vectors, dim, query, n, bits, &quant, top))
}

/// [`top_k_bits_quantized`] over a view whose factors are checked.
fn scan_quantized(
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    n: u32,
    bits: &[u64],
    quant: &QuantView<'_>,
    mut top: TopK,
) -> Vec<Hit> {
    let k = top.k();
    if dim == 0 || quant.dim != dim || k == 0 {
        return top.into_sorted();
    }
    let qq = QuantQuery::new(query);
    // The k best lower bounds so far; a row whose upper bound is below the k-th of them
    // (`bar`) cannot rank (k rows surely score more), now or later (the bar only rises).
    let mut lows = TopK::new(k);
    let mut bar = f32::NEG_INFINITY;
    let mut maybe: Vec<(u32, f32)> = Vec::new();
    let mut dots = [0i32; 64];
    let mut ahead = ReadAhead::new();
    for (word, &w) in (0u32..).zip(bits) {
        let base = word.saturating_mul(64);
        if w == 0 || base >= n {
            continue;
        }
        ahead.at(bits, word as usize, quant.codes, dim);
        block_dots(quant.codes, dim, &qq.codes, w, base, n, &mut dots);
        for row in members(w, base, n) {
            let r = row as usize;
            let (Some(&s), Some(&l1)) = (quant.scales.get(r), quant.l1.get(r)) else {
                continue;
            };
            let (lo, hi) = qq.bounds_of(dots[(row - base) as usize], s, l1);
            if hi >= bar {
                maybe.push((row, hi));
                lows.push(Hit { row, score: lo });
                if let Some(th) = lows.threshold() {
                    bar = th.score;
                }
                if maybe.len() >= 4 * k + 1024 {
                    maybe.retain(|&(_, hi)| hi >= bar);
                }
            }
        }
    }
    for (row, hi) in maybe {
        let v = row_vector(vectors, dim, row);
        if hi >= bar && v.len() == dim {
            top.push(Hit {
                row,
                score: dot_f16_f32(v, query),
            });
        }
    }
    top.into_sorted()
}

/// Whether every scale is a positive finite number and every norm a finite non-negative
/// one (what [`QuantView::factors`] asks of one row), without a branch per row (a pass the
/// compiler vectorises).
#[inline]
fn factors_sound(scales: &[f32], l1: &[f32]) -> bool {
    scales
        .iter()
        .zip(l1)
        .fold(true, |ok, (&s, &l)| ok & sound(s, l))
}

/// Whether a scale is a positive finite number and a norm a finite non-negative one (NaN
/// fails every comparison).
#[inline(always)]
fn sound(s: f32, l1: f32) -> bool {
    (s > 0.0) & (s < f32::INFINITY) & (0.0..f32::INFINITY).contains(&l1)
}

/// The dot products of the members of block `w` (rows `base..`, codes `width` wide in
/// `codes`) with `q`, into `dots[row - base]`: the whole block by the block kernel when it
/// is dense, else member by member, their codes fetched first.
#[inline]
fn block_dots(
    codes: &[i8],
    width: usize,
    q: &[i16],
    w: u64,
    base: u32,
    n: u32,
    dots: &mut [i32; 64],
) {
    let len = (n - base).min(64) as usize;
    let start = base as usize * width;
    let block = codes.get(start..start + len * width).unwrap_or(&[]);
    if w.count_ones() >= DENSE_BLOCK_FROM {
        dots_i8_i16(block, width, q, &mut dots[..len]);
        return;
    }
    let row_codes = |i: usize| block.get(i * width..(i + 1) * width).unwrap_or(&[]);
    members(w, base, n).for_each(|row| prefetch_codes(row_codes((row - base) as usize)));
    for row in members(w, base, n) {
        let i = (row - base) as usize;
        dots[i] = dot_i8_i16(row_codes(i), q);
    }
}

/// Starts loading the codes `c` into cache (a hint only).
#[inline]
fn prefetch_codes(c: &[i8]) {
    prefetch_bytes(bytemuck::cast_slice(c));
}

/// Adds the int8 copy ([`QUANT_KIND`]) to every segment a commit or compaction writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuantSectionBuilder;

impl SectionBuilder for QuantSectionBuilder {
    fn build(
        &self,
        _collection: &str,
        segment: &Segment,
    ) -> Result<ExtraSections, SectionBuildError> {
        if segment.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![(
            QUANT_KIND,
            build_quantized(segment.vectors(), segment.dim()),
        )])
    }
}

#[cfg(test)]
mod tests;
