//! The manifest: the one file that says which files make up the database (see docs/FORMAT.md).
//!
//! ```text
//! 0    magic "S2CMANIF" (8), version u32, flags u32 (0), generation u64, next_file_no u64
//! 32   n_collections u32, then per collection:
//!        name_len u32, name (UTF-8), dim u32, metric u32, n_segments u32, n_tombstones u32,
//!        [version >= 2: n_properties u32]
//!        n_segments   x (file_no u64, generation u64, rows u64, size u64, meta_crc u32, 0 u32)
//!        n_tombstones x (file_no u64, generation u64, count u64, size u64, crc u32, 0 u32)
//!        [version >= 2: n_properties x (key_len u32, key, value_len u32, value), keys
//!         strictly increasing (bytewise)]
//! L-16 total_len u64, crc32c u32 (of bytes 0..L-8), magic "MEND"
//! ```
//!
//! Version 1 (no collection properties) is still read; a manifest keeps the version it was
//! read with until a commit rewrites it at [`MANIFEST_VERSION`].

use std::collections::BTreeMap;

use super::error::{CorruptError, OpenError};
use super::format::{Bytes, Put};
use super::segment::{MAX_DIM, METRIC_COSINE};

/// Magic number at the start of a manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"S2CMANIF";
/// Magic number at the end of a manifest.
pub const MANIFEST_END_MAGIC: [u8; 4] = *b"MEND";
/// The manifest format version this build writes.
pub const MANIFEST_VERSION: u32 = 2;
/// The oldest manifest format version this build reads (1: no collection properties).
pub const MANIFEST_MIN_VERSION: u32 = 1;
/// Largest collection property key, in bytes.
pub const MAX_PROPERTY_KEY: usize = 255;
/// Largest collection property value, in bytes.
pub const MAX_PROPERTY_VALUE: usize = 64 * 1024;
/// Most properties per collection.
pub const MAX_PROPERTIES: usize = 256;
/// File name of the current manifest.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// File name a new manifest is written under before it is renamed into place.
pub const MANIFEST_TMP_FILE: &str = "MANIFEST.tmp";

const HEADER_LEN: u64 = 32;
const FOOTER_LEN: u64 = 16;
const ENTRY_LEN: u64 = 40;
const MAX_NAME: usize = 255;

/// One file in the manifest (a segment or a tombstone file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    /// File number; the name is derived from it (`seg-<16 hex>.s2seg` / `tomb-<16 hex>.s2tomb`).
    pub file_no: u64,
    /// Generation (commit number) that wrote it.
    pub generation: u64,
    /// Rows (segments) or ids (tombstones).
    pub count: u64,
    /// File size in bytes.
    pub size: u64,
    /// Segment: CRC of header + section table. Tombstones: the file's CRC.
    pub crc: u32,
}

/// A collection's schema and files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionEntry {
    /// Name, 1..=255 bytes of UTF-8.
    pub name: String,
    /// Dimension, 1..=4096.
    pub dim: u32,
    /// Metric code (0 = cosine).
    pub metric: u32,
    /// Segments, oldest generation first.
    pub segments: Vec<FileEntry>,
    /// Tombstone files, oldest generation first.
    pub tombstones: Vec<FileEntry>,
    /// Small key -> value strings stored with the schema (manifest version >= 2), e.g. which
    /// model made the collection's vectors. Keys 1..=255 bytes, values <= 64 KiB, <= 256.
    pub properties: BTreeMap<String, String>,
}

/// The decoded manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Format version it was read with (or will be written with); see [`MANIFEST_VERSION`].
    pub version: u32,
    /// Commit number; 0 for a new database.
    pub generation: u64,
    /// Next unused file number.
    pub next_file_no: u64,
    /// Collections, in creation order.
    pub collections: Vec<CollectionEntry>,
}

/// Name of segment file number `n`.
pub fn segment_file_name(n: u64) -> String {
    format!("seg-{n:016x}.s2seg")
}

/// Name of tombstone file number `n`.
pub fn tombstone_file_name(n: u64) -> String {
    format!("tomb-{n:016x}.s2tomb")
}

/// Whether `name` is a file a commit may leave that no manifest references yet (the
/// garbage collector's to remove): the temporary manifest, segment and tombstone files.
pub fn is_garbage_candidate(name: &str) -> bool {
    name == MANIFEST_TMP_FILE
        || (name.starts_with("seg-") && name.ends_with(".s2seg"))
        || (name.starts_with("tomb-") && name.ends_with(".s2tomb"))
}

/// Whether `name` is one of the files the storage engine keeps in a database folder.
pub fn is_own_file(name: &str) -> bool {
    name == MANIFEST_FILE || name == super::directory::LOCK_FILE || is_garbage_candidate(name)
}

/// Whether the file `path` (named `name`, one of the storage engine's names) can be what an
/// interrupted first create left: a regular file, empty or starting with the magic of its
/// kind (a lock file may hold anything). A user's file that only has such a name is not,
/// and is never removed as garbage.
pub fn is_leftover(path: &std::path::Path, name: &str) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    if name == super::directory::LOCK_FILE || meta.len() == 0 {
        return true;
    }
    let magic: &[u8] = if name.ends_with(".s2seg") {
        &super::segment::SEGMENT_MAGIC
    } else if name.ends_with(".s2tomb") {
        &super::tombstone::TOMBSTONE_MAGIC
    } else {
        &MANIFEST_MAGIC
    };
    let mut head = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head));
    matches!(read, Ok(n) if head[..n] == magic[..n])
}

/// A `len u32` + UTF-8 string of at most `max` bytes at `*pos`; advances `*pos`.
fn read_string(
    b: &Bytes<'_>,
    pos: &mut u64,
    max: usize,
    what: &str,
) -> Result<String, CorruptError> {
    let len = u64::from(b.u32(*pos, what)?);
    if len > max as u64 {
        return Err(b.err(*pos, format!("{what} of {len} bytes (limit {max})")));
    }
    let s = std::str::from_utf8(b.slice(*pos + 4, len, what)?)
        .map_err(|_| b.err(*pos + 4, format!("{what} is not UTF-8")))?
        .to_string();
    *pos += 4 + len;
    Ok(s)
}

fn put_entry(out: &mut Vec<u8>, e: &FileEntry) {
    out.put_u64(e.file_no);
    out.put_u64(e.generation);
    out.put_u64(e.count);
    out.put_u64(e.size);
    out.put_u32(e.crc);
    out.put_u32(0);
}

/// Checks a property key and value against the limits; the error says what is wrong.
pub fn check_property(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_PROPERTY_KEY {
        return Err(format!(
            "property key of {} bytes (must be 1..={MAX_PROPERTY_KEY})",
            key.len()
        ));
    }
    if value.len() > MAX_PROPERTY_VALUE {
        return Err(format!(
            "property '{key}' value of {} bytes (limit {MAX_PROPERTY_VALUE})",
            value.len()
        ));
    }
    Ok(())
}

impl Default for Manifest {
    /// An empty manifest (generation 0) at the current version.
    fn default() -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            generation: 0,
            next_file_no: 1,
            collections: Vec::new(),
        }
    }
}

impl Manifest {
    /// Serialises the manifest at `self.version` (version 2 if any collection has properties,
    /// which version 1 cannot hold).
    pub fn encode(&self) -> Vec<u8> {
        let has_props = self.collections.iter().any(|c| !c.properties.is_empty());
        let version = if has_props {
            self.version.max(2)
        } else {
            self.version.clamp(MANIFEST_MIN_VERSION, MANIFEST_VERSION)
        };
        let mut out = Vec::new();
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.put_u32(version);
        out.put_u32(0);
        out.put_u64(self.generation);
        out.put_u64(self.next_file_no);
        out.put_u32(self.collections.len() as u32);
        for c in &self.collections {
            out.put_u32(c.name.len() as u32);
            out.extend_from_slice(c.name.as_bytes());
            out.put_u32(c.dim);
            out.put_u32(c.metric);
            out.put_u32(c.segments.len() as u32);
            out.put_u32(c.tombstones.len() as u32);
            if version >= 2 {
                out.put_u32(c.properties.len() as u32);
            }
            for e in c.segments.iter().chain(&c.tombstones) {
                put_entry(&mut out, e);
            }
            if version >= 2 {
                for (k, v) in &c.properties {
                    out.put_u32(k.len() as u32);
                    out.extend_from_slice(k.as_bytes());
                    out.put_u32(v.len() as u32);
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
        let total = out.len() as u64 + FOOTER_LEN;
        out.put_u64(total);
        let crc = crc32c::crc32c(&out);
        out.put_u32(crc);
        out.extend_from_slice(&MANIFEST_END_MAGIC);
        out
    }

    /// Parses and validates a manifest; `file` names it in errors.
    pub fn decode(buf: &[u8], file: &str) -> Result<Manifest, OpenError> {
        let b = Bytes::new(buf, file);
        let len = buf.len() as u64;
        if len < HEADER_LEN + 4 + FOOTER_LEN {
            return Err(b
                .err(0, format!("manifest is {len} bytes, too short"))
                .into());
        }
        if b.array::<8>(0, "magic")? != MANIFEST_MAGIC {
            return Err(b.err(0, "bad magic: not a sat2cap manifest").into());
        }
        let foot = len - FOOTER_LEN;
        if b.array::<4>(foot + 12, "end magic")? != MANIFEST_END_MAGIC {
            return Err(b.err(foot + 12, "bad end magic (truncated file?)").into());
        }
        if b.u64(foot, "total_len")? != len {
            return Err(b
                .err(foot, "length in footer does not match the file")
                .into());
        }
        let crc = b.u32(foot + 8, "crc")?;
        if crc32c::crc32c(b.slice(0, foot + 8, "body")?) != crc {
            return Err(b.err(foot + 8, "manifest checksum mismatch").into());
        }
        let version = b.u32(8, "version")?;
        if !(MANIFEST_MIN_VERSION..=MANIFEST_VERSION).contains(&version) {
            return Err(OpenError::UnsupportedVersion {
                file: file.to_string(),
                found: version,
                min: MANIFEST_MIN_VERSION,
                max: MANIFEST_VERSION,
            });
        }
        if b.u32(12, "flags")? != 0 {
            return Err(b.err(12, "unknown flags").into());
        }
        let generation = b.u64(16, "generation")?;
        let next_file_no = b.u64(24, "next_file_no")?;
        let n_coll = b.u32(32, "n_collections")?;
        let mut pos = 36u64;
        let mut collections: Vec<CollectionEntry> = Vec::new();
        let mut seen_files = std::collections::BTreeSet::new();
        for _ in 0..n_coll {
            let name_len = u64::from(b.u32(pos, "name length")?);
            if name_len == 0 || name_len > MAX_NAME as u64 {
                return Err(b
                    .err(pos, format!("collection name length {name_len}"))
                    .into());
            }
            let name = std::str::from_utf8(b.slice(pos + 4, name_len, "name")?)
                .map_err(|_| b.err(pos + 4, "collection name is not UTF-8"))?
                .to_string();
            if collections.iter().any(|c| c.name == name) {
                return Err(b.err(pos, format!("duplicate collection {name:?}")).into());
            }
            pos += 4 + name_len;
            let dim = b.u32(pos, "dim")?;
            if dim == 0 || dim as usize > MAX_DIM {
                return Err(b
                    .err(pos, format!("dimension {dim} outside 1..={MAX_DIM}"))
                    .into());
            }
            let metric = b.u32(pos + 4, "metric")?;
            if metric != METRIC_COSINE {
                return Err(b.err(pos + 4, format!("unknown metric {metric}")).into());
            }
            let n_seg = u64::from(b.u32(pos + 8, "n_segments")?);
            let n_tomb = u64::from(b.u32(pos + 12, "n_tombstones")?);
            pos += 16;
            let n_props = if version >= 2 {
                let n = u64::from(b.u32(pos, "n_properties")?);
                if n > MAX_PROPERTIES as u64 {
                    return Err(b
                        .err(pos, format!("{n} properties (limit {MAX_PROPERTIES})"))
                        .into());
                }
                pos += 4;
                n
            } else {
                0
            };
            // Bound the counts by the bytes left before allocating anything.
            let need = (n_seg + n_tomb) * ENTRY_LEN;
            if need > foot.saturating_sub(pos) {
                return Err(b
                    .err(pos - 8, "file counts exceed the manifest size")
                    .into());
            }
            let mut read = |n: u64, what: &str| -> Result<Vec<FileEntry>, CorruptError> {
                let mut v: Vec<FileEntry> = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let e = FileEntry {
                        file_no: b.u64(pos, "file_no")?,
                        generation: b.u64(pos + 8, "generation")?,
                        count: b.u64(pos + 16, "count")?,
                        size: b.u64(pos + 24, "size")?,
                        crc: b.u32(pos + 32, "crc")?,
                    };
                    if b.u32(pos + 36, "reserved")? != 0 {
                        return Err(b.err(pos + 36, "reserved field is not zero"));
                    }
                    if e.file_no >= next_file_no || !seen_files.insert(e.file_no) {
                        return Err(b.err(
                            pos,
                            format!("{what} file number {} invalid or reused", e.file_no),
                        ));
                    }
                    if e.generation == 0 || e.generation > generation {
                        return Err(b.err(
                            pos + 8,
                            format!("{what} generation {} invalid", e.generation),
                        ));
                    }
                    if v.last().is_some_and(|l| l.generation >= e.generation) {
                        return Err(b.err(pos + 8, format!("{what} generations not increasing")));
                    }
                    v.push(e);
                    pos += ENTRY_LEN;
                }
                Ok(v)
            };
            let segments = read(n_seg, "segment")?;
            let tombstones = read(n_tomb, "tombstone")?;
            let mut properties = BTreeMap::new();
            for _ in 0..n_props {
                let at = pos;
                let key = read_string(&b, &mut pos, MAX_PROPERTY_KEY, "property key")?;
                let value = read_string(&b, &mut pos, MAX_PROPERTY_VALUE, "property value")?;
                if key.is_empty() {
                    return Err(b.err(at, "empty property key").into());
                }
                if properties
                    .keys()
                    .next_back()
                    .is_some_and(|k: &String| *k >= key)
                {
                    return Err(b
                        .err(
                            at,
                            format!("property keys not strictly increasing at {key:?}"),
                        )
                        .into());
                }
                properties.insert(key, value);
            }
            collections.push(CollectionEntry {
                name,
                dim,
                metric,
                segments,
                tombstones,
                properties,
            });
        }
        if pos != foot {
            return Err(b
                .err(pos, "trailing bytes after the last collection")
                .into());
        }
        Ok(Manifest {
            version,
            generation,
            next_file_no,
            collections,
        })
    }
}
