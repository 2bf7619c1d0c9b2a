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

use half::f16;

use super::directory::FileBytes;
use super::error::{CommitError, CorruptError, OpenError, WriteError};
use super::format::{mul, Bytes, Put};
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
    /// First kind reserved for index sections (the index layer's: 100 the HNSW graph, 102
    /// its calibration, 103 the int8 copy of the vectors).
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
/// Registered in [`DbOptions`](crate::storage::DbOptions). `build` sees the finished base
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

/// One row to be written (vector already normalised and rounded to fp16).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowData {
    pub id: u64,
    pub vector: Vec<f16>,
    pub point: Point,
    pub time: Option<i64>,
    pub payload: Option<String>,
}

/// Serialises rows (unique ids, in storage order) and extra sections into a segment file
/// image. Rows not in id order get an [`ID_ORDER`](kind::ID_ORDER) section.
pub(crate) fn encode_segment(
    dim: usize,
    generation: u64,
    rows: &[RowData],
    extra: &[(u32, Vec<u8>)],
) -> Result<Vec<u8>, CommitError> {
    let n = rows.len();
    let mut sections: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut vectors = Vec::with_capacity(n * dim * 2);
    let mut ids = Vec::with_capacity(n * 8);
    let mut points = Vec::with_capacity(n * 16);
    for r in rows {
        if r.vector.len() != dim {
            return Err(CommitError::TooLarge(format!(
                "row {} has {} components, expected {dim}",
                r.id,
                r.vector.len()
            )));
        }
        vectors.extend_from_slice(bytemuck::cast_slice::<f16, u8>(&r.vector));
        ids.put_u64(r.id);
        points.extend_from_slice(&r.point.lat().to_le_bytes());
        points.extend_from_slice(&r.point.lon().to_le_bytes());
    }
    sections.push((kind::VECTORS, vectors));
    sections.push((kind::IDS, ids));
    sections.push((kind::POINTS, points));
    if rows.windows(2).any(|w| w[0].id >= w[1].id) {
        let too_many =
            || CommitError::TooLarge(format!("{n} rows in one spatially ordered segment"));
        let mut order: Vec<u32> = (0..u32::try_from(n).map_err(|_| too_many())?).collect();
        order.sort_unstable_by_key(|&r| rows[r as usize].id);
        if let Some(w) = order
            .windows(2)
            .find(|w| rows[w[0] as usize].id == rows[w[1] as usize].id)
        {
            return Err(WriteError::DuplicateId(rows[w[0] as usize].id).into());
        }
        let mut b = Vec::with_capacity(n * 4);
        for r in order {
            b.extend_from_slice(&r.to_le_bytes());
        }
        sections.push((kind::ID_ORDER, b));
    }
    if rows.iter().any(|r| r.time.is_some()) {
        let mut t = Vec::with_capacity(n * 8);
        for r in rows {
            t.extend_from_slice(&r.time.unwrap_or(NO_TIME).to_le_bytes());
        }
        sections.push((kind::TIMES, t));
    }
    if rows.iter().any(|r| r.payload.is_some()) {
        let mut offsets = Vec::with_capacity((n + 1) * 8);
        let mut bytes = Vec::new();
        let mut present = vec![0u8; n.div_ceil(8)];
        offsets.put_u64(0);
        for (i, r) in rows.iter().enumerate() {
            if let Some(p) = &r.payload {
                bytes.extend_from_slice(p.as_bytes());
                present[i / 8] |= 1 << (i % 8);
            }
            offsets.put_u64(bytes.len() as u64);
        }
        sections.push((kind::PAYLOAD_OFFSETS, offsets));
        sections.push((kind::PAYLOAD_BYTES, bytes));
        sections.push((kind::PAYLOAD_PRESENT, present));
    }
    for (k, b) in extra {
        if *k < kind::FIRST_INDEX || sections.iter().any(|(s, _)| s == k) {
            return Err(CommitError::SectionBuilder(format!(
                "section kind {k} is reserved or duplicated (index kinds are >= 100 and unique)"
            )));
        }
        sections.push((*k, b.clone()));
    }
    if sections.len() > MAX_SECTIONS as usize {
        return Err(CommitError::TooLarge(format!(
            "{} sections",
            sections.len()
        )));
    }

    let mut out = vec![0u8; SEGMENT_HEADER_LEN as usize];
    let mut table = Vec::with_capacity(sections.len() * SECTION_ENTRY_LEN as usize);
    for (k, b) in &sections {
        out.pad_to(SECTION_ALIGN as usize);
        let off = out.len() as u64;
        out.extend_from_slice(b);
        table.put_u32(*k);
        table.put_u32(0);
        table.put_u64(off);
        table.put_u64(b.len() as u64);
        table.put_u32(crc32c::crc32c(b));
        table.put_u32(0);
    }
    out.pad_to(SECTION_ALIGN as usize);
    let table_offset = out.len() as u64;
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    header.extend_from_slice(&SEGMENT_MAGIC);
    header.put_u32(SEGMENT_VERSION);
    header.put_u32(0);
    header.put_u32(dim as u32);
    header.put_u32(METRIC_COSINE);
    header.put_u64(n as u64);
    header.put_u32(sections.len() as u32);
    header.put_u32(0);
    header.put_u64(table_offset);
    header.put_u64(generation);
    let hcrc = crc32c::crc32c(&header);
    header.put_u32(hcrc);
    header.put_u32(0);
    out[..SEGMENT_HEADER_LEN as usize].copy_from_slice(&header);
    out.extend_from_slice(&table);
    let meta_crc = crc32c::crc32c_append(crc32c::crc32c(&header), &table);
    let file_len = out.len() as u64 + SEGMENT_FOOTER_LEN;
    out.put_u64(table_offset);
    out.put_u32(sections.len() as u32);
    out.put_u32(meta_crc);
    out.put_u64(file_len);
    out.extend_from_slice(&SEGMENT_FOOTER_MAGIC);
    Ok(out)
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
    /// Validates `bytes` as a segment file named `file` (used in errors).
    pub fn open(bytes: FileBytes, file: impl Into<String>) -> Result<Segment, OpenError> {
        let file = file.into();
        let buf: &[u8] = (*bytes).as_ref();
        let b = Bytes::new(buf, &file);
        let len = buf.len() as u64;
        if len < SEGMENT_HEADER_LEN + SEGMENT_FOOTER_LEN {
            return Err(b
                .err(0, format!("file is {len} bytes, too short for a segment"))
                .into());
        }
        if !(buf.as_ptr() as usize).is_multiple_of(8) {
            return Err(b.err(0, "buffer is not 8-byte aligned").into());
        }
        if b.array::<8>(0, "magic")? != SEGMENT_MAGIC {
            return Err(b.err(0, "bad magic: not a sat2cap segment").into());
        }
        let version = b.u32(8, "version")?;
        let hcrc = b.u32(56, "header crc")?;
        let header = b.slice(0, 56, "header")?;
        if crc32c::crc32c(header) != hcrc {
            return Err(b.err(56, "header checksum mismatch").into());
        }
        if !(SEGMENT_MIN_VERSION..=SEGMENT_VERSION).contains(&version) {
            return Err(OpenError::UnsupportedVersion {
                file,
                found: version,
                min: SEGMENT_MIN_VERSION,
                max: SEGMENT_VERSION,
            });
        }
        if b.u32(12, "flags")? != 0 {
            return Err(b.err(12, "unknown flags").into());
        }
        let dim = b.u32(16, "dim")? as usize;
        if dim == 0 || dim > MAX_DIM {
            return Err(b
                .err(16, format!("dimension {dim} outside 1..={MAX_DIM}"))
                .into());
        }
        if b.u32(20, "metric")? != METRIC_COSINE {
            return Err(b.err(20, "unknown metric").into());
        }
        let rows = b.u64(24, "rows")?;
        let n_sections = b.u32(32, "n_sections")?;
        if b.u32(36, "reserved")? != 0 || b.u32(60, "reserved")? != 0 {
            return Err(b.err(36, "reserved header field is not zero").into());
        }
        if n_sections > MAX_SECTIONS {
            return Err(b
                .err(32, format!("{n_sections} sections (limit {MAX_SECTIONS})"))
                .into());
        }
        let table_offset = b.u64(40, "table_offset")?;
        let generation = b.u64(48, "generation")?;
        // Footer.
        let foot = len - SEGMENT_FOOTER_LEN;
        if b.array::<8>(foot + 24, "footer magic")? != SEGMENT_FOOTER_MAGIC {
            return Err(b
                .err(foot + 24, "bad footer magic (truncated file?)")
                .into());
        }
        if b.u64(foot + 16, "file_len")? != len {
            return Err(b
                .err(foot + 16, "file length in footer does not match")
                .into());
        }
        if b.u64(foot, "footer table_offset")? != table_offset {
            return Err(b
                .err(foot, "footer and header disagree on table offset")
                .into());
        }
        if b.u32(foot + 8, "footer n_sections")? != n_sections {
            return Err(b
                .err(foot + 8, "footer and header disagree on section count")
                .into());
        }
        let table_len = u64::from(n_sections) * SECTION_ENTRY_LEN;
        if table_offset < SEGMENT_HEADER_LEN
            || !table_offset.is_multiple_of(SECTION_ALIGN)
            || table_offset.checked_add(table_len) != Some(foot)
        {
            return Err(b
                .err(
                    40,
                    format!("section table offset {table_offset} is inconsistent"),
                )
                .into());
        }
        let table = b.slice(table_offset, table_len, "section table")?;
        let meta_crc = b.u32(foot + 12, "meta crc")?;
        let full_header = b.slice(0, SEGMENT_HEADER_LEN, "header")?;
        if crc32c::crc32c_append(crc32c::crc32c(full_header), table) != meta_crc {
            return Err(b
                .err(foot + 12, "header/section table checksum mismatch")
                .into());
        }
        let mut sections = Vec::with_capacity(n_sections as usize);
        for i in 0..u64::from(n_sections) {
            let e = table_offset + i * SECTION_ENTRY_LEN;
            let s = SectionInfo {
                kind: b.u32(e, "section kind")?,
                offset: b.u64(e + 8, "section offset")?,
                len: b.u64(e + 16, "section length")?,
                crc32c: b.u32(e + 24, "section crc")?,
            };
            if b.u32(e + 4, "reserved")? != 0 || b.u32(e + 28, "reserved")? != 0 {
                return Err(b.err(e, "reserved section field is not zero").into());
            }
            if s.kind < kind::FIRST_INDEX
                && !(kind::VECTORS..=kind::PAYLOAD_PRESENT).contains(&s.kind)
                && !(s.kind == kind::ID_ORDER && version >= 2)
            {
                return Err(b.err(e, format!("unknown section kind {}", s.kind)).into());
            }
            if sections.iter().any(|x: &SectionInfo| x.kind == s.kind) {
                return Err(b
                    .err(e, format!("duplicate section kind {}", s.kind))
                    .into());
            }
            let end = s.offset.checked_add(s.len);
            if s.offset < SEGMENT_HEADER_LEN
                || !s.offset.is_multiple_of(SECTION_ALIGN)
                || end.is_none_or(|end| end > table_offset)
            {
                return Err(b
                    .err(
                        e + 8,
                        format!("section {} has bad bounds {}+{}", s.kind, s.offset, s.len),
                    )
                    .into());
            }
            sections.push(s);
        }
        let mut sorted = sections.clone();
        sorted.sort_by_key(|s| s.offset);
        for w in sorted.windows(2) {
            if w[0].offset + w[0].len > w[1].offset {
                return Err(b
                    .err(
                        w[1].offset,
                        format!("sections {} and {} overlap", w[0].kind, w[1].kind),
                    )
                    .into());
            }
        }
        let find = |k: u32| sections.iter().find(|s| s.kind == k).copied();
        let need = |k: u32, expect: Option<u64>, what: &str| -> Result<Range<usize>, OpenError> {
            let s =
                find(k).ok_or_else(|| b.err(table_offset, format!("missing {what} section")))?;
            let expect = expect.ok_or_else(|| b.err(24, "row count overflows"))?;
            if s.len != expect {
                return Err(b
                    .err(
                        s.offset,
                        format!("{what} section is {} bytes, expected {expect}", s.len),
                    )
                    .into());
            }
            Ok(range(&s))
        };
        let vectors = need(kind::VECTORS, mul(rows, dim as u64 * 2), "vectors")?;
        let ids = need(kind::IDS, mul(rows, 8), "ids")?;
        let points = need(kind::POINTS, mul(rows, 16), "points")?;
        let times = match find(kind::TIMES) {
            None => None,
            Some(_) => Some(need(kind::TIMES, mul(rows, 8), "times")?),
        };
        let has = [
            kind::PAYLOAD_OFFSETS,
            kind::PAYLOAD_BYTES,
            kind::PAYLOAD_PRESENT,
        ]
        .map(|k| find(k).is_some());
        let payload = match has {
            [false, false, false] => None,
            [true, true, true] => {
                let offs = need(
                    kind::PAYLOAD_OFFSETS,
                    rows.checked_add(1).and_then(|r| mul(r, 8)),
                    "payload offsets",
                )?;
                let pres = need(
                    kind::PAYLOAD_PRESENT,
                    Some(rows.div_ceil(8)),
                    "payload presence",
                )?;
                let bytes_sec = find(kind::PAYLOAD_BYTES)
                    .ok_or_else(|| b.err(table_offset, "missing payload bytes"))?;
                Some((offs, pres, range(&bytes_sec)))
            }
            _ => return Err(b.err(table_offset, "payload sections incomplete").into()),
        };
        let id_order = match find(kind::ID_ORDER) {
            None => None,
            Some(_) => Some(need(kind::ID_ORDER, mul(rows, 4), "id order")?),
        };
        if rows > u64::from(u32::MAX) && id_order.is_some() {
            return Err(b.err(24, "too many rows for an id order section").into());
        }
        let seg = Segment {
            bytes: bytes.clone(),
            dim,
            rows: rows as usize, // fits: rows * 8 <= file length
            generation,
            meta_crc,
            table_offset,
            sections,
            vectors,
            ids,
            points,
            times,
            payload,
            id_order,
            file: file.clone(),
        };
        // Alignment of the typed views (always true for a page- or 8-aligned buffer).
        if bytemuck::try_cast_slice::<u8, f16>(&seg.buf()[seg.vectors.clone()]).is_err()
            || bytemuck::try_cast_slice::<u8, u64>(&seg.buf()[seg.ids.clone()]).is_err()
            || bytemuck::try_cast_slice::<u8, f64>(&seg.buf()[seg.points.clone()]).is_err()
            || seg.id_order.as_ref().is_some_and(|r| {
                bytemuck::try_cast_slice::<u8, u32>(&seg.buf()[r.clone()]).is_err()
            })
        {
            return Err(CorruptError::new(&file, 0, "sections are not aligned in memory").into());
        }
        Ok(seg)
    }

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
#[cfg(any(test, feature = "testing"))]
    /// The section table.
    pub fn sections(&self) -> &[SectionInfo] {
        &self.sections
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
        match Point::new(lat, lon) {
            Ok(p) if p.lon() == lon => Ok(p),
            _ => Err(self.corrupt(off, format!("invalid point ({lat}, {lon})"))),
        }
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

    /// Checks every byte: section CRCs, zero padding, ids strictly increasing, points valid,
    /// payload offsets monotone and UTF-8, fp16 values finite.
    pub fn verify(&self) -> Result<(), CorruptError> {
        let buf = self.buf();
        let mut sorted = self.sections.clone();
        sorted.sort_by_key(|s| s.offset);
        let mut pos = SEGMENT_HEADER_LEN as usize;
        for s in &sorted {
            let r = range(s);
            if buf[pos..r.start].iter().any(|&x| x != 0) {
                return Err(self.corrupt(pos, "non-zero padding"));
            }
            if crc32c::crc32c(&buf[r.clone()]) != s.crc32c {
                return Err(self.corrupt(r.start, format!("section {} checksum mismatch", s.kind)));
            }
            pos = r.end;
        }
        if buf[pos..self.table_offset as usize].iter().any(|&x| x != 0) {
            return Err(self.corrupt(pos, "non-zero padding"));
        }
        match (self.id_order(), &self.id_order) {
            (Some(order), Some(at)) => {
                let mut seen = vec![0u64; self.rows.div_ceil(64)];
                for (i, r) in order.iter().enumerate() {
                    let r = u32::from_le(*r) as usize;
                    if r >= self.rows || seen[r / 64] & (1 << (r % 64)) != 0 {
                        return Err(self.corrupt(at.start + i * 4, "id order is not a permutation"));
                    }
                    seen[r / 64] |= 1 << (r % 64);
                }
                for rank in 1..self.rows {
                    if self.id_at_rank(rank - 1) >= self.id_at_rank(rank) {
                        return Err(self.corrupt(
                            at.start + rank * 4,
                            "ids not strictly increasing in id order",
                        ));
                    }
                }
            }
            _ => {
                let ids = self.ids();
                for (i, w) in ids.windows(2).enumerate() {
                    if u64::from_le(w[0]) >= u64::from_le(w[1]) {
                        return Err(self
                            .corrupt(self.ids.start + (i + 1) * 8, "ids not strictly increasing"));
                    }
                }
            }
        }
        for row in 0..self.rows {
            self.point(row)?;
            self.payload(row)?;
            let v = self.vector(row);
            if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                return Err(self.corrupt(
                    self.vectors.start + (row * self.dim + j) * 2,
                    "non-finite fp16",
                ));
            }
            if v.iter().all(|x| x.to_f32() == 0.0) {
                return Err(
                    self.corrupt(self.vectors.start + row * self.dim * 2, "all-zero vector")
                );
            }
        }
        if let Some((offs, _, bytes)) = &self.payload {
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[offs.start..offs.start + 8]);
            if u64::from_le_bytes(a) != 0 {
                return Err(self.corrupt(offs.start, "first payload offset is not zero"));
            }
            a.copy_from_slice(&buf[offs.end - 8..offs.end]);
            if u64::from_le_bytes(a) != (bytes.end - bytes.start) as u64 {
                return Err(self.corrupt(offs.end - 8, "last payload offset != payload length"));
            }
        }
        Ok(())
    }
}
