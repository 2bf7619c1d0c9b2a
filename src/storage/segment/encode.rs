//! Writing a segment: rows and extra sections into a file image (the byte layout is in the
//! parent module).

use super::*;
use crate::storage::error::{CommitError, WriteError};
use crate::storage::format::Put;

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
pub(crate) fn encode_segment<R: std::borrow::Borrow<RowData>>(
    dim: usize,
    generation: u64,
    rows: &[R],
    extra: &[(u32, Vec<u8>)],
) -> Result<Vec<u8>, CommitError> {
    let rows: Vec<&RowData> = rows.iter().map(R::borrow).collect();
    let n = rows.len();
    let mut sections: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut vectors = Vec::with_capacity(n * dim * 2);
    let mut ids = Vec::with_capacity(n * 8);
    let mut points = Vec::with_capacity(n * 16);
    for r in &rows {
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
        for r in &rows {
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
    // The row sections, then the extra ones, read in place (not copied before the image).
    let mut sections: Vec<(u32, &[u8])> = sections.iter().map(|(k, b)| (*k, &b[..])).collect();
    for (k, b) in extra {
        if *k < kind::FIRST_INDEX || sections.iter().any(|(s, _)| s == k) {
            return Err(CommitError::SectionBuilder(format!(
                "section kind {k} is reserved or duplicated (index kinds are >= 100 and unique)"
            )));
        }
        sections.push((*k, b));
    }
    if sections.len() > MAX_SECTIONS as usize {
        return Err(CommitError::TooLarge(format!(
            "{} sections",
            sections.len()
        )));
    }

    // The image's exact length, so that it is allocated once (a growing buffer would hold
    // up to twice the image while it doubles).
    let align = SECTION_ALIGN as usize;
    let body = sections
        .iter()
        .fold(SEGMENT_HEADER_LEN as usize, |at, (_, b)| {
            at.next_multiple_of(align) + b.len()
        });
    let image = body.next_multiple_of(align)
        + sections.len() * SECTION_ENTRY_LEN as usize
        + SEGMENT_FOOTER_LEN as usize;
    let mut out = Vec::with_capacity(image);
    out.resize(SEGMENT_HEADER_LEN as usize, 0);
    let mut table = Vec::with_capacity(sections.len() * SECTION_ENTRY_LEN as usize);
    for &(k, b) in &sections {
        out.pad_to(SECTION_ALIGN as usize);
        let off = out.len() as u64;
        out.extend_from_slice(b);
        table.put_u32(k);
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
    debug_assert_eq!(
        out.len(),
        image,
        "the segment image's length, worked out before"
    );
    Ok(out)
}
