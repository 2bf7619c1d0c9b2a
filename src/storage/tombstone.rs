//! Tombstone files: the ids one commit deleted from one collection (see docs/FORMAT.md).
//!
//! ```text
//! 0   magic "S2CTOMB1" (8), version u32, reserved u32 (0), count u64, crc32c u32, reserved u32
//! 32  count x id u64, strictly increasing
//! ```
//! The CRC covers bytes 0..24 and the ids.

use super::error::OpenError;
use super::format::{Bytes, Put};

/// Magic number of a tombstone file.
pub const TOMBSTONE_MAGIC: [u8; 8] = *b"S2CTOMB1";
/// The tombstone format version this build writes and reads.
pub const TOMBSTONE_VERSION: u32 = 1;
const HEADER_LEN: u64 = 32;

/// Serialises sorted, unique ids.
pub fn encode_tombstones(ids: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + ids.len() * 8);
    out.extend_from_slice(&TOMBSTONE_MAGIC);
    out.put_u32(TOMBSTONE_VERSION);
    out.put_u32(0);
    out.put_u64(ids.len() as u64);
    let mut body = Vec::with_capacity(ids.len() * 8);
    for &id in ids {
        body.put_u64(id);
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out), &body);
    out.put_u32(crc);
    out.put_u32(0);
    out.extend_from_slice(&body);
    out
}

/// Parses and fully validates a tombstone file (it is small: checked whole at open).
pub fn decode_tombstones(buf: &[u8], file: &str) -> Result<Vec<u64>, OpenError> {
    let b = Bytes::new(buf, file);
    if (buf.len() as u64) < HEADER_LEN {
        return Err(b.err(0, "tombstone file too short").into());
    }
    if b.array::<8>(0, "magic")? != TOMBSTONE_MAGIC {
        return Err(b.err(0, "bad magic: not a sat2cap tombstone file").into());
    }
    let count = b.u64(16, "count")?;
    let body_len = count
        .checked_mul(8)
        .filter(|l| HEADER_LEN.checked_add(*l) == Some(buf.len() as u64))
        .ok_or_else(|| b.err(16, format!("count {count} does not match the file size")))?;
    let body = b.slice(HEADER_LEN, body_len, "ids")?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(b.slice(0, 24, "header")?), body);
    if crc != b.u32(24, "crc")? {
        return Err(b.err(24, "tombstone checksum mismatch").into());
    }
    let version = b.u32(8, "version")?;
    if version != TOMBSTONE_VERSION {
        return Err(OpenError::UnsupportedVersion {
            file: file.to_string(),
            found: version,
            min: TOMBSTONE_VERSION,
            max: TOMBSTONE_VERSION,
        });
    }
    if b.u32(12, "reserved")? != 0 || b.u32(28, "reserved")? != 0 {
        return Err(b.err(12, "reserved field is not zero").into());
    }
    let mut ids = Vec::with_capacity(count as usize);
    for i in 0..count {
        let id = b.u64(HEADER_LEN + i * 8, "id")?;
        if ids.last().is_some_and(|&l| l >= id) {
            return Err(b
                .err(HEADER_LEN + i * 8, "ids not strictly increasing")
                .into());
        }
        ids.push(id);
    }
    Ok(ids)
}
