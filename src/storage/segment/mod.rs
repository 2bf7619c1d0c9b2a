//! Segment files: one immutable file per collection per commit (see docs/FORMAT.md).
//!
//! Layout (all integers little-endian):
//! ```text
//! 0                 header (64 bytes): magic "S2CAPSEG", version, flags, dim, metric, rows,
//!                   n_sections, reserved, table_offset, generation, header_crc, reserved
//! 64                sections, each starting at a multiple of 64, zero padding between
//! table_offset      section table: n_sections x 32-byte entries
//!                   (kind u32, reserved u32, offset u64, len u64, crc32c u32, reserved u32)
//! table_offset+32n  footer (32 bytes): table_offset u64, n_sections u32, meta_crc u32,
//!                   file_len u64, magic "S2CSEGFT"
//! ```

use std::ops::Range;

mod encode;
mod open;
mod verify;
pub use verify::UNIT_TOLERANCE;

pub(crate) use encode::{encode_segment, RowData};

use half::f16;

use super::directory::FileBytes;
use super::error::{CorruptError, OpenError};
use super::format::{mul, Bytes};
use crate::geo::Point;

/// Magic number at the start of a segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"S2CAPSEG";
/// Magic number at the end of a segment file.
pub const SEGMENT_FOOTER_MAGIC: [u8; 8] = *b"S2CSEGFT";
/// The segment format version this build writes.
pub const SEGMENT_VERSION: u32 = 2;
/// The oldest segment format version this build reads.
pub const SEGMENT_MIN_VERSION: u32 = 1;
/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: u64 = 64;
/// Size of one section-table entry.
pub const SECTION_ENTRY_LEN: u64 = 32;
/// Size of the segment footer.
pub const SEGMENT_FOOTER_LEN: u64 = 32;
/// Alignment of every section's start offset.
pub const SECTION_ALIGN: u64 = 64;
/// Largest supported dimension.
pub const MAX_DIM: usize = 4096;
/// Most sections one segment may hold.
pub const MAX_SECTIONS: u32 = 1024;
/// Metric code for cosine similarity (the only metric in version 1).
pub const METRIC_COSINE: u32 = 0;
/// On-disk value of a missing timestamp.
pub const NO_TIME: i64 = i64::MIN;

/// Section kinds. Kinds below [`FIRST_INDEX`](kind::FIRST_INDEX) belong to the storage engine;
/// kinds from 100 up are index sections, opaque to storage and added by
/// [`SectionBuilder`]s.
pub mod kind {
    /// fp16 vectors, row-major, `rows * dim * 2` bytes.
    pub const VECTORS: u32 = 1;
    /// `u64` ids, unique, `rows * 8` bytes; strictly increasing unless [`ID_ORDER`] is present.
    pub const IDS: u32 = 2;
    /// `(lat f64, lon f64)` per row, `rows * 16` bytes.
    pub const POINTS: u32 = 3;
    /// `i64` unix seconds per row (`i64::MIN` = none), `rows * 8` bytes; optional.
    pub const TIMES: u32 = 4;
    /// `u64` payload offsets, `(rows + 1) * 8` bytes; optional, with the next two.
    pub const PAYLOAD_OFFSETS: u32 = 5;
    /// Payload bytes (UTF-8), indexed by [`PAYLOAD_OFFSETS`].
    pub const PAYLOAD_BYTES: u32 = 6;
    /// Payload presence bitmap, `ceil(rows / 8)` bytes, bit `r % 8` of byte `r / 8`.
    pub const PAYLOAD_PRESENT: u32 = 7;
    /// `u32` rows in increasing id order, `rows * 4` bytes (format version 2); present only
    /// when the rows are stored in another order (the writer's spatial order).
    pub const ID_ORDER: u32 = 8;
    /// First kind reserved for index sections (the index layer's: 100 the HNSW graph, 103
    /// the int8 copy of the vectors; a kind the reader does not know is left unread).
    pub const FIRST_INDEX: u32 = 100;
}

/// One entry of a segment's section table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionInfo {
    /// Section kind (see [`kind`]).
    pub kind: u32,
    /// Byte offset in the file (multiple of 64).
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32C of the section's bytes.
    pub crc32c: u32,
}

/// Extra sections returned by a [`SectionBuilder`]: `(kind, bytes)` pairs.
pub type ExtraSections = Vec<(u32, Vec<u8>)>;

/// The error type of a [`SectionBuilder`].
pub type SectionBuildError = Box<dyn std::error::Error + Send + Sync>;

/// Adds extra sections (kind >= 100) to every segment a commit or compaction writes.
///
/// Registered in [`StoreOptions`](crate::storage::StoreOptions). `build` sees the finished base
/// segment (vectors, ids, points, ...) through the ordinary read API; rows are in their
/// final order (see [`RowOrder`](crate::storage::RowOrder)) and row numbers are final, so an
/// index can refer to rows by number.
pub trait SectionBuilder: Send + Sync {
    /// Returns `(kind, bytes)` pairs; every kind must be >= 100 and unique within a segment.
    fn build(
        &self,
        collection: &str,
        segment: &Segment,
    ) -> Result<ExtraSections, SectionBuildError>;
}

/// A validated, immutable segment file, read in place (memory-mapped in production).
///
/// Opening checks the header, section table, footer and every size and alignment, but does
/// not read the column data; [`verify`](Segment::verify) checks every byte.
pub struct Segment {
    bytes: FileBytes,
    file: String,
    dim: usize,
    rows: usize,
    generation: u64,
    meta_crc: u32,
    table_offset: u64,
    sections: Vec<SectionInfo>,
    vectors: Range<usize>,
    ids: Range<usize>,
    points: Range<usize>,
    times: Option<Range<usize>>,
    payload: Option<(Range<usize>, Range<usize>, Range<usize>)>,
    id_order: Option<Range<usize>>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("file", &self.file)
            .field("dim", &self.dim)
            .field("rows", &self.rows)
            .field("generation", &self.generation)
            .field("sections", &self.sections)
            .finish()
    }
}

fn range(s: &SectionInfo) -> Range<usize> {
    // Validated at open: offset + len <= file length, which is a usize.
    s.offset as usize..(s.offset + s.len) as usize
}

impl Segment {
    fn buf(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    fn corrupt(&self, offset: usize, what: impl Into<String>) -> CorruptError {
        CorruptError::new(&self.file, offset as u64, what)
    }

    /// The file name this segment was read from.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// Number of rows (deleted and shadowed rows included; see the snapshot's views).
    pub fn len(&self) -> usize {
        self.rows
    }
    /// Whether the segment has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The generation (commit number) that wrote this segment.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// File size in bytes.
    pub fn file_len(&self) -> u64 {
        self.buf().len() as u64
    }
    /// CRC-32C of the header and section table (recorded in the manifest).
    pub fn meta_crc(&self) -> u32 {
        self.meta_crc
    }
    /// The section table.
    pub fn sections(&self) -> &[SectionInfo] {
        &self.sections
    }
    /// Reads this segment's file from end to end (compaction, export, verify) until the
    /// guard is dropped: with the usual read-around meanwhile. Otherwise it is read at
    /// scattered places (open, searches): a missing page is read alone (see
    /// [`crate::storage::advice`]).
    pub(crate) fn whole_read(&self) -> super::advice::InOrder<'_> {
        super::advice::InOrder::new(self.buf())
    }
    /// The bytes of the section of `kind`, if present (index sections are kinds >= 100).
    pub fn section(&self, kind: u32) -> Option<&[u8]> {
        let s = self.sections.iter().find(|s| s.kind == kind)?;
        self.buf().get(range(s))
    }
    /// All vectors, row-major (`len() * dim()` values), in place.
    pub fn vectors(&self) -> &[f16] {
        // Length and alignment were checked at open.
        bytemuck::try_cast_slice(&self.buf()[self.vectors.clone()]).unwrap_or(&[])
    }
    /// The vector of `row` (empty if `row` is out of range).
    pub fn vector(&self, row: usize) -> &[f16] {
        let start = row.saturating_mul(self.dim);
        self.vectors()
            .get(start..start.saturating_add(self.dim))
            .unwrap_or(&[])
    }
    /// All ids, in row order (little-endian words). In a valid file they are unique, and
    /// strictly increasing unless [`id_order`](Segment::id_order) is present; `verify`
    /// checks both.
    pub fn ids(&self) -> &[u64] {
        bytemuck::try_cast_slice(&self.buf()[self.ids.clone()]).unwrap_or(&[])
    }
    /// The id of `row`.
    pub fn id(&self, row: usize) -> Option<u64> {
        self.ids().get(row).map(|v| u64::from_le(*v))
    }
    /// The rows in increasing id order (little-endian words), when the rows are stored in
    /// another order (the writer's spatial order); `None` when row order is id order.
    pub fn id_order(&self) -> Option<&[u32]> {
        let r = self.id_order.as_ref()?;
        Some(bytemuck::try_cast_slice(&self.buf()[r.clone()]).unwrap_or(&[]))
    }
    /// The row holding the `rank`-th smallest id (`rank` itself when rows are in id order).
    fn row_at_rank(&self, rank: usize) -> Option<usize> {
        match self.id_order() {
            None => (rank < self.rows).then_some(rank),
            Some(order) => order.get(rank).map(|r| u32::from_le(*r) as usize),
        }
    }
    /// The `rank`-th smallest id of this segment.
    pub fn id_at_rank(&self, rank: usize) -> Option<u64> {
        self.id(self.row_at_rank(rank)?)
    }
    /// The number of ids below `id` (a binary search over the ranks; in a corrupt file,
    /// whose ids are not ordered as the header says, some rank, never a panic).
    fn rank_of(&self, id: u64) -> usize {
        let (mut lo, mut hi) = (0, self.rows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.id_at_rank(mid).is_some_and(|x| x < id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    /// The row holding `id` in this segment (binary search), if any.
    pub fn row_of(&self, id: u64) -> Option<usize> {
        let rank = self.rank_of(id);
        (self.id_at_rank(rank) == Some(id))
            .then(|| self.row_at_rank(rank))
            .flatten()
    }
    /// The smallest and the largest id, if the segment has rows.
    pub fn id_range(&self) -> Option<(u64, u64)> {
        Some((
            self.id_at_rank(0)?,
            self.id_at_rank(self.rows.checked_sub(1)?)?,
        ))
    }
    /// The ids in `lo..=hi`, increasing.
    pub fn ids_between(&self, lo: u64, hi: u64) -> impl Iterator<Item = u64> + '_ {
        let a = self.rank_of(lo);
        let b = if hi == u64::MAX {
            self.rows
        } else {
            self.rank_of(hi + 1)
        };
        (a..b.max(a)).filter_map(|rank| self.id_at_rank(rank))
    }
    /// The point of `row`; an error if the stored coordinates are invalid (corrupt file).
    pub fn point(&self, row: usize) -> Result<Point, CorruptError> {
        let off = self.points.start.saturating_add(row.saturating_mul(16));
        let b = Bytes::new(&self.buf()[self.points.clone()], &self.file);
        let rel = (row as u64).saturating_mul(16);
        let lat = f64::from_le_bytes(b.array(rel, "lat").map_err(|e| self.corrupt(off, e.what))?);
        let lon = f64::from_le_bytes(
            b.array(rel + 8, "lon")
                .map_err(|e| self.corrupt(off, e.what))?,
        );
        Point::from_stored(lat, lon)
            .ok_or_else(|| self.corrupt(off, format!("invalid point ({lat}, {lon})")))
    }

    /// Every row's point, validated as [`Segment::point`] validates one (in one pass over
    /// the section: what search keeps per segment).
    pub fn points(&self) -> Result<Vec<Point>, CorruptError> {
        let section = &self.buf()[self.points.clone()];
        let decoded: Option<Vec<Point>> = section
            .chunks_exact(16)
            .take(self.len())
            .map(|b| {
                let lat = f64::from_le_bytes(b[..8].try_into().unwrap_or_default());
                let lon = f64::from_le_bytes(b[8..].try_into().unwrap_or_default());
                Point::from_stored(lat, lon)
            })
            .collect();
        match decoded {
            Some(points) if points.len() == self.len() => Ok(points),
            // A bad or missing row: the first one, named as `point` names it.
            _ => match (0..self.len()).try_for_each(|row| self.point(row).map(drop)) {
                Err(e) => Err(e),
                Ok(()) => Err(self.corrupt(self.points.start, "points section does not decode")),
            },
        }
    }

    /// The points section in place, as [`Point`]s (little-endian hosts; the section's
    /// alignment is checked at open), NOT validated: the caller checks every row
    /// (`SpatialIndex::build_if_valid`) before use. `None` where the bytes cannot be viewed so.
    pub(crate) fn points_in_place(&self) -> Option<&[Point]> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let points: &[Point] = bytemuck::try_cast_slice(&self.buf()[self.points.clone()]).ok()?;
        (points.len() == self.len()).then_some(points)
    }

    /// The time column in place (little-endian hosts; [`NO_TIME`] where a row has no
    /// time), `None` without one or where the bytes cannot be viewed so.
    pub(crate) fn times_in_place(&self) -> Option<&[i64]> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let times: &[i64] = bytemuck::try_cast_slice(&self.buf()[self.times.clone()?]).ok()?;
        (times.len() == self.len()).then_some(times)
    }

    /// The timestamp of `row` (unix seconds, UTC), if it has one.
    pub fn time(&self, row: usize) -> Option<i64> {
        let r = self.times.clone()?;
        let start = r.start.checked_add(row.checked_mul(8)?)?;
        if start + 8 > r.end {
            return None;
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.buf()[start..start + 8]);
        let t = i64::from_le_bytes(a);
        (t != NO_TIME).then_some(t)
    }
    /// Whether the segment stores timestamps.
    pub fn has_times(&self) -> bool {
        self.times.is_some()
    }
    /// The payload of `row`, if it has one; an error if offsets or UTF-8 are corrupt.
    pub fn payload(&self, row: usize) -> Result<Option<&str>, CorruptError> {
        let Some((offs, pres, bytes)) = &self.payload else {
            return Ok(None);
        };
        if row >= self.rows {
            return Ok(None);
        }
        let buf = self.buf();
        if buf[pres.start + row / 8] & (1 << (row % 8)) == 0 {
            return Ok(None);
        }
        let at = offs.start + row * 8;
        let rd = |p: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[p..p + 8]);
            u64::from_le_bytes(a)
        };
        let (s, e) = (rd(at), rd(at + 8));
        let blen = (bytes.end - bytes.start) as u64;
        if s > e || e > blen {
            return Err(self.corrupt(at, format!("payload offsets {s}..{e} out of bounds")));
        }
        let slice = &buf[bytes.start + s as usize..bytes.start + e as usize];
        std::str::from_utf8(slice)
            .map(Some)
            .map_err(|_| self.corrupt(bytes.start + s as usize, "payload is not UTF-8"))
    }
}
