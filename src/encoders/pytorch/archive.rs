//! The zip container of `torch.save` files: [`Archive`], its central directory read whole
//! (zip64 included), entries read on demand, checked against their CRC-32; and [`zip`], an
//! archive writer for tests and the fuzz target.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use super::{bad, show, PtError, Result};

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Deflate cannot expand data more than about 1032 : 1.
const MAX_DEFLATE_RATIO: u64 = 1032;

pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(super) fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// One entry of the central directory.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    pub(super) size: u64,
    /// Offset of the local header.
    header: u64,
}

/// A zip archive read through `R`, its central directory in memory, entries read on demand.
pub struct Archive<R> {
    reader: R,
    len: u64,
    /// Where the central directory starts: every entry's data ends before it.
    central: u64,
    pub(super) entries: BTreeMap<String, Entry>,
}

impl<R: Read + Seek> Archive<R> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return bad(format!(
                "{} bytes at offset {offset} lie beyond the end of the file ({} bytes): truncated?",
                buf.len(),
                self.len
            ));
        }
        self.reader
            .seek(SeekFrom::Start(offset))
            .map_err(PtError::Io)?;
        self.reader.read_exact(buf).map_err(PtError::Io)
    }

    /// Reads the central directory of a zip archive of `len` bytes.
    pub fn open(reader: R, len: u64) -> Result<Self> {
        let mut a = Archive {
            reader,
            len,
            central: 0,
            entries: BTreeMap::new(),
        };
        if len == 0 {
            return bad("the file is empty");
        }
        let tail_len = len.min(22 + 0xffff);
        let mut tail = vec![0u8; tail_len as usize];
        a.read_at(len - tail_len, &mut tail)?;
        let eocd = (0..=tail.len().saturating_sub(22)).rev().find(|&i| {
            le32(&tail, i) == EOCD_SIG && i + 22 + usize::from(le16(&tail, i + 20)) <= tail.len()
        });
        let Some(i) = eocd else {
            let mut head = [0u8; 9];
            let n = (len as usize).min(9);
            a.read_at(0, &mut head[..n])?;
            return if head[0] == 0x80 {
                bad("a PyTorch file in the legacy (before 1.6, not zip) format, which is not supported: load it with torch.load and save it again with torch.save")
            } else if le32(&head, 0) == LOCAL_SIG {
                bad("a truncated zip archive: the end of central directory record is missing")
            } else if n == 9 && head[8] == b'{' && le64(&head, 0) <= len - 8 {
                bad("not a zip archive (the format torch.save writes) but a safetensors file: name it model.safetensors")
            } else {
                bad("not a zip archive (the format torch.save writes)")
            };
        };
        let eocd_pos = len - tail_len + i as u64;
        let e = &tail[i..];
        let (disk, cd_disk) = (le16(e, 4), le16(e, 6));
        let mut entries_disk = u64::from(le16(e, 8));
        let mut count = u64::from(le16(e, 10));
        let mut cd_size = u64::from(le32(e, 12));
        let mut cd_offset = u64::from(le32(e, 16));
        let mut limit = eocd_pos;
        let zip64 = count == 0xffff
            || entries_disk == 0xffff
            || cd_size == 0xffff_ffff
            || cd_offset == 0xffff_ffff;
        if zip64 {
            if eocd_pos < 20 {
                return bad("zip64 sizes without a zip64 end of central directory locator");
            }
            let mut loc = [0u8; 20];
            a.read_at(eocd_pos - 20, &mut loc)?;
            if le32(&loc, 0) != EOCD64_LOCATOR_SIG {
                return bad("zip64 sizes without a zip64 end of central directory locator");
            }
            let at = le64(&loc, 8);
            if at.checked_add(56).is_none_or(|end| end > eocd_pos - 20) {
                return bad("the zip64 end of central directory record lies outside the file");
            }
            let mut rec = [0u8; 56];
            a.read_at(at, &mut rec)?;
            if le32(&rec, 0) != EOCD64_SIG {
                return bad("the zip64 end of central directory record is missing");
            }
            if le32(&rec, 16) != 0 || le32(&rec, 20) != 0 {
                return bad("a multi-disk zip archive, which is not supported");
            }
            entries_disk = le64(&rec, 24);
            count = le64(&rec, 32);
            cd_size = le64(&rec, 40);
            cd_offset = le64(&rec, 48);
            limit = at;
        } else if disk != 0 || cd_disk != 0 {
            return bad("a multi-disk zip archive, which is not supported");
        }
        if entries_disk != count {
            return bad("a multi-disk zip archive, which is not supported");
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > limit) {
            return bad(format!(
                "the central directory ({cd_size} bytes at {cd_offset}) lies outside the file: truncated or not a zip archive"
            ));
        }
        if count.checked_mul(46).is_none_or(|n| n > cd_size) {
            return bad(format!(
                "the central directory claims {count} entries in {cd_size} bytes"
            ));
        }
        a.central = cd_offset;
        let mut cd = vec![0u8; cd_size as usize];
        a.read_at(cd_offset, &mut cd)?;
        let mut p = 0usize;
        for n in 0..count {
            let h = cd.get(p..p + 46).unwrap_or_default();
            if h.len() < 46 || le32(h, 0) != CENTRAL_SIG {
                return bad(format!("central directory entry {n} is corrupt"));
            }
            let flags = le16(h, 8);
            let method = le16(h, 10);
            let crc = le32(h, 16);
            let mut compressed = u64::from(le32(h, 20));
            let mut size = u64::from(le32(h, 24));
            let name_len = usize::from(le16(h, 28));
            let extra_len = usize::from(le16(h, 30));
            let comment_len = usize::from(le16(h, 32));
            let start_disk = le16(h, 34);
            let mut header = u64::from(le32(h, 42));
            let name_at = p + 46;
            let extra_at = name_at + name_len;
            let end = extra_at + extra_len + comment_len;
            let (Some(name), Some(extra)) = (cd.get(name_at..extra_at), cd.get(extra_at..end))
            else {
                return bad(format!("central directory entry {n} runs past its end"));
            };
            let extra = &extra[..extra_len];
            let Ok(name) = std::str::from_utf8(name) else {
                return bad(format!(
                    "central directory entry {n}: the name is not UTF-8"
                ));
            };
            let name = name.to_string();
            if size == 0xffff_ffff || compressed == 0xffff_ffff || header == 0xffff_ffff {
                // The zip64 extended information: the saturated fields, in this order.
                let mut q = 0usize;
                let mut field = None;
                while q + 4 <= extra.len() {
                    let (id, sz) = (le16(extra, q), usize::from(le16(extra, q + 2)));
                    if id == 1 {
                        field = extra.get(q + 4..q + 4 + sz);
                        break;
                    }
                    q += 4 + sz;
                }
                let Some(field) = field else {
                    return bad(format!(
                        "entry {}: zip64 sizes without zip64 extended information",
                        show(&name)
                    ));
                };
                let mut r = 0usize;
                for v in [&mut size, &mut compressed, &mut header] {
                    if *v == 0xffff_ffff {
                        if r + 8 > field.len() {
                            return bad(format!(
                                "entry {}: short zip64 extended information",
                                show(&name)
                            ));
                        }
                        *v = le64(field, r);
                        r += 8;
                    }
                }
            } else if start_disk != 0 {
                return bad("a multi-disk zip archive, which is not supported");
            }
            if header.checked_add(30).is_none_or(|e| e > cd_offset) {
                return bad(format!(
                    "entry {}: its local header lies outside the file",
                    show(&name)
                ));
            }
            if compressed > cd_offset {
                return bad(format!(
                    "entry {}: {compressed} compressed bytes do not fit in the file",
                    show(&name)
                ));
            }
            let entry = Entry {
                flags,
                method,
                crc,
                compressed,
                size,
                header,
            };
            if a.entries.insert(name.clone(), entry).is_some() {
                return bad(format!("entry {} appears twice", show(&name)));
            }
            p = end;
        }
        Ok(a)
    }

    /// The names of the archive's entries, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The uncompressed size of an entry.
    pub(super) fn size(&self, name: &str) -> Option<u64> {
        self.entries.get(name).map(|e| e.size)
    }

    /// Reads one entry whole, checked against its CRC-32.
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>> {
        let Some(e) = self.entries.get(name).cloned() else {
            return bad(format!("no entry {}", show(name)));
        };
        let shown = show(name);
        if e.flags & 1 != 0 {
            return bad(format!(
                "entry {shown} is encrypted, which is not supported"
            ));
        }
        let mut local = [0u8; 30];
        self.read_at(e.header, &mut local)?;
        if le32(&local, 0) != LOCAL_SIG {
            return bad(format!("entry {shown}: its local header is corrupt"));
        }
        let name_len = u64::from(le16(&local, 26));
        let extra_len = u64::from(le16(&local, 28));
        let mut local_name = vec![0u8; name_len as usize];
        let data = e.header + 30;
        if data + name_len > self.central {
            return bad(format!(
                "entry {shown}: its local header lies outside the file"
            ));
        }
        self.read_at(data, &mut local_name)?;
        if local_name != name.as_bytes() {
            return bad(format!(
                "entry {shown}: the local header names another file"
            ));
        }
        let data = data + name_len + extra_len;
        if data
            .checked_add(e.compressed)
            .is_none_or(|end| end > self.central)
        {
            return bad(format!(
                "entry {shown}: its data ({} bytes at {data}) runs into the central directory: truncated?",
                e.compressed
            ));
        }
        let out = match e.method {
            0 => {
                if e.compressed != e.size {
                    return bad(format!(
                        "entry {shown}: stored, but {} bytes in the archive and {} uncompressed",
                        e.compressed, e.size
                    ));
                }
                let mut out = vec![0u8; e.size as usize];
                self.read_at(data, &mut out)?;
                out
            }
            8 => {
                if e.size
                    > e.compressed
                        .saturating_mul(MAX_DEFLATE_RATIO)
                        .saturating_add(64)
                {
                    return bad(format!(
                        "entry {shown}: {} compressed bytes cannot inflate to {}",
                        e.compressed, e.size
                    ));
                }
                self.reader
                    .seek(SeekFrom::Start(data))
                    .map_err(PtError::Io)?;
                let src = (&mut self.reader).take(e.compressed);
                let mut dec = flate2::read::DeflateDecoder::new(src).take(e.size + 1);
                // Grown as data really inflates: a size that lies allocates nothing.
                let mut out = Vec::with_capacity((e.size as usize).min(1 << 24));
                if let Err(err) = dec.read_to_end(&mut out) {
                    return bad(format!("entry {shown}: corrupt deflate data: {err}"));
                }
                if out.len() as u64 != e.size {
                    return bad(format!(
                        "entry {shown}: inflates to {}{} bytes, the directory says {}",
                        out.len().min(e.size as usize),
                        if out.len() as u64 > e.size { "+" } else { "" },
                        e.size
                    ));
                }
                out
            }
            m => {
                return bad(format!(
                "entry {shown} uses compression method {m} (only stored and deflate are supported)"
            ))
            }
        };
        // A CRC of 0 over data is how writers that skip checksums leave it
        // (torch.serialization.config.save.compute_crc32 = False).
        if e.crc != 0 || out.is_empty() {
            let mut crc = flate2::Crc::new();
            crc.update(&out);
            if crc.sum() != e.crc {
                return bad(format!(
                    "entry {shown} fails its CRC-32 check: the file is corrupt"
                ));
            }
        }
        Ok(out)
    }
}

/// A zip archive of `entries`, stored, with CRCs, like torch.save's (`zip64`: with every size
/// and offset in zip64 records).
#[cfg(any(test, feature = "testing"))]
pub fn zip(entries: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let off = out.len() as u32;
        out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        central.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.sum().to_le_bytes());
        let (sz, o) = if zip64 {
            (u32::MAX, u32::MAX)
        } else {
            (data.len() as u32, off)
        };
        central.extend_from_slice(&sz.to_le_bytes());
        central.extend_from_slice(&sz.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(if zip64 { 28u16 } else { 0 }).to_le_bytes());
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&o.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        if zip64 {
            central.extend_from_slice(&1u16.to_le_bytes());
            central.extend_from_slice(&24u16.to_le_bytes());
            central.extend_from_slice(&(data.len() as u64).to_le_bytes());
            central.extend_from_slice(&(data.len() as u64).to_le_bytes());
            central.extend_from_slice(&u64::from(off).to_le_bytes());
        }
    }
    let cd_off = out.len() as u64;
    out.extend_from_slice(&central);
    let n = entries.len() as u64;
    if zip64 {
        let rec = out.len() as u64;
        out.extend_from_slice(&EOCD64_SIG.to_le_bytes());
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u64).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&EOCD64_LOCATOR_SIG.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&rec.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(&EOCD_SIG.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let (c, s, o) = if zip64 {
        (0xffff, u32::MAX, u32::MAX)
    } else {
        (n as u16, central.len() as u32, cd_off as u32)
    };
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(&s.to_le_bytes());
    out.extend_from_slice(&o.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}
