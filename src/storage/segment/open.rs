//! Opening a segment: every header, table and footer field checked before any view into
//! the bytes is made.

use super::*;

impl Segment {
    /// Validates `bytes` as a segment file named `file` (used in errors).
    pub fn open(bytes: FileBytes, file: impl Into<String>) -> Result<Segment, OpenError> {
        let file = file.into();
        let buf: &[u8] = (*bytes).as_ref();
        // Opening and searching read the file here and there; a pass over it says so.
        crate::storage::advice::random(buf);
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
}
