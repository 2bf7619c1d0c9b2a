//! Hostile files: `tests/data/hostile/` holds crafted files (lengths that overflow, offsets past
//! the end, overlapping sections, NaN-filled vectors, huge counts, future versions, valid
//! checksums over bad content, ...). The test enumerates the folder and requires, for every
//! file, the typed error of the table below: a file without a row, or a row without a file,
//! fails the test. The prefix of a name picks the parser: `seg-` (`Segment::open`, then
//! `verify`), `man-` (`Manifest::decode`), `tomb-` (`decode_tombstones`), `npy-`
//! (`NpyReader::open` + every row), `csv-` (`PointsReader`), `jsonl-` (`parse_query_line`),
//! `time-` (`time::parse`).
//!
//! The files are generated from valid ones by `write_hostile_files`
//! (`SAT2CAP_WRITE_HOSTILE=1 cargo test --no-default-features --test reliability_hostile`),
//! re-sealing checksums where the point is to test the checks behind them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sat2cap::geo::Point;
use sat2cap::io::npy::{NpyError, NpyReader};
use sat2cap::io::points_csv::{CsvError, PointsReader};
use sat2cap::io::query_jsonl::parse_query_line;
use sat2cap::storage::{decode_tombstones, AlignedBytes, Directory, Manifest, Segment};

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile")
}

/// What a hostile file must produce.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `OpenError::Corrupt` at open (or decode) whose message contains the text.
    Corrupt(&'static str),
    /// Opens (cheap checks pass), then `verify` fails with a `CorruptError` containing the text.
    VerifyCorrupt(&'static str),
    /// `OpenError::UnsupportedVersion` with this version found.
    Unsupported(u32),
    /// `NpyError::Header` containing the text.
    NpyHeader(&'static str),
    /// `NpyError::WrongLength`.
    NpyWrongLength,
    /// `CsvError::Row` containing the text.
    CsvRow(&'static str),
    /// `CsvError::MissingColumn` of this column.
    CsvMissing(&'static str),
    /// `JsonlError` containing the text.
    Jsonl(&'static str),
    /// `TimeError` containing the text.
    Time(&'static str),
}

use sat2cap::testing::MemDirectory;
use sat2cap::{Db, IndexOptions, NewItem, OpenError, OpenOptions};
use Expect::*;

/// The expected-error table: every file in the folder has exactly one row.
const TABLE: &[(&str, Expect)] = &[
    // Segments: framing.
    ("seg-empty", Corrupt("too short for a segment")),
    ("seg-truncated", Corrupt("bad footer magic")),
    ("seg-bad-magic", Corrupt("bad magic")),
    ("seg-header-crc", Corrupt("header checksum mismatch")),
    ("seg-future-version", Unsupported(3)),
    ("seg-flags", Corrupt("unknown flags")),
    ("seg-dim-zero", Corrupt("dimension 0 outside")),
    ("seg-dim-huge", Corrupt("dimension 4294967295 outside")),
    ("seg-metric", Corrupt("unknown metric")),
    ("seg-rows-overflow", Corrupt("row count overflows")),
    ("seg-rows-huge", Corrupt("vectors section is")),
    ("seg-sections-huge", Corrupt("sections (limit 1024)")),
    (
        "seg-footer-len",
        Corrupt("file length in footer does not match"),
    ),
    ("seg-footer-count", Corrupt("disagree on section count")),
    ("seg-table-unaligned", Corrupt("section table offset")),
    ("seg-table-past-end", Corrupt("section table offset")),
    (
        "seg-meta-crc",
        Corrupt("header/section table checksum mismatch"),
    ),
    // Segments: section table (checksums re-sealed).
    ("seg-section-past-end", Corrupt("bad bounds")),
    ("seg-section-len-overflow", Corrupt("bad bounds")),
    ("seg-section-unaligned", Corrupt("bad bounds")),
    ("seg-sections-overlap", Corrupt("overlap")),
    ("seg-duplicate-kind", Corrupt("duplicate section kind")),
    ("seg-unknown-kind", Corrupt("unknown section kind 9")),
    ("seg-missing-vectors", Corrupt("missing vectors section")),
    (
        "seg-payload-incomplete",
        Corrupt("payload sections incomplete"),
    ),
    ("seg-ids-short", Corrupt("ids section is")),
    ("seg-reserved", Corrupt("reserved section field")),
    // Segments: content (valid checksums over bad content, or bad section checksums).
    ("seg-section-crc", VerifyCorrupt("checksum mismatch")),
    ("seg-nan-vector", VerifyCorrupt("non-finite fp16")),
    ("seg-inf-vector", VerifyCorrupt("non-finite fp16")),
    ("seg-zero-vector", VerifyCorrupt("all-zero vector")),
    (
        "seg-not-unit",
        VerifyCorrupt("is not 1 (rows are unit length)"),
    ),
    // The int8 copy (index section 103): what the exact scan's bound rests on.
    (
        "seg-int8-scale-zero",
        VerifyCorrupt("not a positive finite number"),
    ),
    (
        "seg-int8-scale-nan",
        VerifyCorrupt("not a positive finite number"),
    ),
    (
        "seg-int8-code-128",
        VerifyCorrupt("is -128, outside -127..=127"),
    ),
    (
        "seg-int8-code-off",
        VerifyCorrupt("more than half the scale"),
    ),
    ("seg-int8-l1-low", VerifyCorrupt("stored L1 norm")),
    (
        "seg-ids-unsorted",
        VerifyCorrupt("ids not strictly increasing"),
    ),
    // The id-order section (format version 2).
    ("seg-id-order-in-v1", Corrupt("unknown section kind 8")),
    ("seg-id-order-short", Corrupt("id order section is")),
    ("seg-id-order-repeats", VerifyCorrupt("not a permutation")),
    ("seg-id-order-past-rows", VerifyCorrupt("not a permutation")),
    (
        "seg-id-order-unsorted",
        VerifyCorrupt("ids not strictly increasing in id order"),
    ),
    ("seg-nan-point", VerifyCorrupt("invalid point")),
    ("seg-lat-out-of-range", VerifyCorrupt("invalid point")),
    (
        "seg-payload-offset-past-end",
        VerifyCorrupt("out of bounds"),
    ),
    (
        "seg-payload-offsets-reversed",
        VerifyCorrupt("out of bounds"),
    ),
    ("seg-payload-not-utf8", VerifyCorrupt("not UTF-8")),
    ("seg-padding", VerifyCorrupt("non-zero padding")),
    // Manifests.
    ("man-empty", Corrupt("too short")),
    ("man-truncated", Corrupt("bad end magic")),
    ("man-crc", Corrupt("manifest checksum mismatch")),
    ("man-total-len", Corrupt("length in footer does not match")),
    ("man-future-version", Unsupported(99)),
    (
        "man-huge-counts",
        Corrupt("file counts exceed the manifest size"),
    ),
    (
        "man-huge-collections",
        Corrupt("run past the end of the file"),
    ),
    ("man-name-len-huge", Corrupt("collection name length")),
    ("man-name-not-utf8", Corrupt("not UTF-8")),
    ("man-duplicate-collection", Corrupt("duplicate collection")),
    ("man-dim-zero", Corrupt("dimension 0 outside")),
    ("man-file-no-reused", Corrupt("invalid or reused")),
    ("man-file-no-future", Corrupt("invalid or reused")),
    ("man-generation-future", Corrupt("generation 99 invalid")),
    ("man-trailing", Corrupt("trailing bytes")),
    // Tombstones.
    ("tomb-short", Corrupt("too short")),
    (
        "tomb-count-overflow",
        Corrupt("does not match the file size"),
    ),
    ("tomb-crc", Corrupt("tombstone checksum mismatch")),
    ("tomb-future-version", Unsupported(2)),
    ("tomb-unsorted", Corrupt("ids not strictly increasing")),
    // .npy vector files.
    ("npy-empty", NpyHeader("magic")),
    ("npy-version-9", NpyHeader("unsupported format version 9")),
    ("npy-header-len-huge", NpyHeader("implausible")),
    ("npy-header-past-end", NpyHeader("past the end")),
    ("npy-big-endian", NpyHeader("not supported")),
    ("npy-fortran", NpyHeader("Fortran")),
    ("npy-3d", NpyHeader("not 2-D")),
    ("npy-zero-cols", NpyHeader("dimension 0")),
    ("npy-zero-rows-huge-cols", NpyHeader("implausible")),
    ("npy-rows-overflow", NpyWrongLength),
    ("npy-truncated", NpyWrongLength),
    // Point CSVs.
    ("csv-missing-lat", CsvMissing("lat")),
    ("csv-lat-91", CsvRow("latitude")),
    ("csv-nan-lon", CsvRow("longitude")),
    ("csv-id-negative", CsvRow("not an unsigned integer")),
    ("csv-id-overflow", CsvRow("not an unsigned integer")),
    ("csv-bad-time", CsvRow("bad date/time")),
    ("csv-short-row", CsvRow("no 'lon' field")),
    // Query JSONL lines.
    ("jsonl-f32-overflow", Jsonl("outside the f32 range")),
    ("jsonl-negative-k", Jsonl("invalid value")),
    ("jsonl-unknown-filter", Jsonl("unknown field")),
    ("jsonl-deep-nesting", Jsonl("recursion limit")),
    // Date/time text.
    ("time-feb-30", Time("day outside the month")),
    ("time-hour-24", Time("time of day out of range")),
    ("time-offset-bad", Time("offset")),
    ("time-year-5-digits", Time("date is not YYYY-MM-DD")),
];

/// Runs the parser the name's prefix picks; returns a description of the outcome or panics
/// (test failure) when the outcome is not `expect`.
fn check(path: &Path, expect: Expect) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(path).unwrap();
    let text = || String::from_utf8_lossy(&bytes).to_string();
    let fail = |got: String| -> ! { panic!("{name}: expected {expect:?}, got {got}") };
    let open_err = |r: Result<(), OpenError>| match (r, expect) {
        (Err(OpenError::Corrupt(c)), Corrupt(s)) if c.what.contains(s) => {}
        (Err(OpenError::UnsupportedVersion { found, .. }), Unsupported(v)) if found == v => {}
        (r, _) => fail(format!("{r:?}")),
    };
    match name.split('-').next().unwrap() {
        "seg" => {
            let r = Segment::open(Arc::new(AlignedBytes::from_slice(&bytes)), name.clone());
            match (r, expect) {
                (Ok(seg), VerifyCorrupt(s)) => match seg
                    .verify()
                    .and_then(|()| sat2cap::search::verify_sections(&seg))
                {
                    Err(c) if c.what.contains(s) => {
                        // Reading the bad rows gives errors or values, never a panic.
                        for row in 0..seg.len() {
                            let _ = (seg.point(row), seg.payload(row), seg.vector(row));
                        }
                    }
                    other => fail(format!("verify: {other:?}")),
                },
                (Ok(_), _) => fail("opened".into()),
                (Err(e), _) => open_err(Err(e)),
            }
        }
        "man" => open_err(Manifest::decode(&bytes, &name).map(|_| ())),
        "tomb" => open_err(decode_tombstones(&bytes, &name).map(|_| ())),
        "npy" => {
            let r = NpyReader::open(path).and_then(|mut r| {
                let mut row = Vec::new();
                while r.read_row(&mut row)? {}
                Ok(())
            });
            match (r, expect) {
                (Err(NpyError::Header { what, .. }), NpyHeader(s)) if what.contains(s) => {}
                (Err(NpyError::WrongLength { .. }), NpyWrongLength) => {}
                (r, _) => fail(format!("{r:?}")),
            }
        }
        "csv" => {
            let r: Result<Vec<_>, CsvError> =
                PointsReader::new(bytes.as_slice(), path).and_then(|r| r.collect());
            match (r, expect) {
                (Err(CsvError::Row { what, .. }), CsvRow(s)) if what.contains(s) => {}
                (Err(CsvError::MissingColumn { column, .. }), CsvMissing(c)) if column == c => {}
                (r, _) => fail(format!("{r:?}")),
            }
        }
        "jsonl" => match (parse_query_line(&text(), 1), expect) {
            (Err(e), Jsonl(s)) if e.what.contains(s) => {}
            (r, _) => fail(format!("{r:?}")),
        },
        "time" => match (sat2cap::time::parse(&text()), expect) {
            (Err(e), Time(s)) if e.what.contains(s) => {}
            (r, _) => fail(format!("{r:?}")),
        },
        other => panic!("{name}: unknown prefix {other}"),
    }
}

#[test]
fn every_hostile_file_gives_its_typed_error() {
    let mut names: Vec<String> = std::fs::read_dir(folder())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let missing: Vec<&str> = TABLE
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !names.iter().any(|x| x == n))
        .collect();
    assert!(missing.is_empty(), "table rows without a file: {missing:?}");
    for name in &names {
        let Some((_, expect)) = TABLE.iter().find(|(n, _)| n == name) else {
            panic!("{name} has no row in the expected-error table");
        };
        check(&folder().join(name), *expect);
    }
    println!("{} hostile files, each with its typed error", names.len());
}

// ---- generator ----------------------------------------------------------------------------

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes every checksum of a segment (header, sections in bounds, meta), so only the
/// deliberate damage remains.
fn reseal_segment(b: &mut [u8]) {
    let h = crc32c::crc32c(&b[..56]);
    put32(b, 56, h);
    let (t, n) = (u64_at(b, 40) as usize, u32_at(b, 32) as usize);
    let Some(table_end) = n.checked_mul(32).and_then(|l| l.checked_add(t)) else {
        return;
    };
    if table_end + 32 > b.len() {
        return;
    }
    for i in 0..n {
        let e = t + 32 * i;
        let (off, len) = (u64_at(b, e + 8), u64_at(b, e + 16));
        if let Some(end) = off.checked_add(len).filter(|&x| x <= b.len() as u64) {
            let c = crc32c::crc32c(&b[off as usize..end as usize]);
            put32(b, e + 24, c);
        }
    }
    let meta = crc32c::crc32c_append(crc32c::crc32c(&b[..64]), &b[t..table_end]);
    let foot = b.len() - 32;
    put32(b, foot + 12, meta);
}

/// Table entry offset of the section with `kind`.
fn entry(b: &[u8], kind: u32) -> usize {
    let (t, n) = (u64_at(b, 40) as usize, u32_at(b, 32) as usize);
    (0..n)
        .map(|i| t + 32 * i)
        .find(|&e| u32_at(b, e) == kind)
        .unwrap()
}
fn section_off(b: &[u8], kind: u32) -> usize {
    u64_at(b, entry(b, kind) + 8) as usize
}

fn reseal_manifest(b: &mut [u8]) {
    let foot = b.len() - 16;
    let c = crc32c::crc32c(&b[..foot + 8]);
    put32(b, foot + 8, c);
}

fn reseal_tomb(b: &mut [u8]) {
    let c = crc32c::crc32c_append(crc32c::crc32c(&b[..24]), &b[32..]);
    put32(b, 24, c);
}

/// A valid segment with the int8 copy of its vectors (8 rows, dim 16).
fn valid_int8_segment() -> Vec<u8> {
    let mem = MemDirectory::new();
    let indexes = IndexOptions {
        graph: None,
        int8: true,
    };
    let mut db = Db::open_in(
        Arc::new(mem.clone()),
        OpenOptions::create_new().indexes(indexes),
    )
    .unwrap();
    db.create_collection("c", 16).unwrap();
    for id in 0..8u64 {
        let v: Vec<f32> = (0..16)
            .map(|i| ((i * 7 + id as usize * 3) % 11) as f32 - 4.5)
            .collect();
        let item = NewItem {
            id,
            vector: &v,
            point: Point::new(id as f64, id as f64).unwrap(),
            time: None,
            payload: None,
        };
        db.add("c", item).unwrap();
    }
    db.commit().unwrap();
    let name = mem
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".s2seg"))
        .unwrap();
    (*mem.read(&name).unwrap()).as_ref().to_vec()
}

/// A valid segment (4 rows, dim 4, times and payloads), manifest and tombstone file.
fn valid_files() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mem = MemDirectory::new();
    let mut db = Db::open_in(
        Arc::new(mem.clone()),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("tiles", 4).unwrap();
    db.create_collection("ground", 2).unwrap();
    for id in [3u64, 5, 8, 13] {
        let v = [id as f32, 1.0, -2.0, 0.5];
        let p = format!("tile {id} é");
        db.add(
            "tiles",
            NewItem {
                id,
                vector: &v,
                // Id 3 lies east of the others, so the rows are stored out of id order (3
                // comes last on the Hilbert curve) and the segment has an id-order section.
                point: Point::new(id as f64, if id == 3 { 170.0 } else { -(id as f64) }).unwrap(),
                time: Some(id as i64 * 1000),
                payload: Some(&p),
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
    db.delete("tiles", 5).unwrap();
    db.delete("tiles", 13).unwrap();
    db.commit().unwrap();
    let get = |suffix: &str| {
        let name = mem
            .list()
            .unwrap()
            .into_iter()
            .find(|n| n.ends_with(suffix))
            .unwrap();
        (*mem.read(&name).unwrap()).as_ref().to_vec()
    };
    (get(".s2seg"), get("MANIFEST"), get(".s2tomb"))
}

fn npy(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY".to_vec();
    b.extend_from_slice(&[major, 0]);
    if major == 1 {
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    b.extend_from_slice(dict.as_bytes());
    b.extend_from_slice(data);
    b
}

fn hostile_files() -> Vec<(&'static str, Vec<u8>)> {
    let (seg, man, tomb) = valid_files();
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    // `f` damages a copy; `sealed` also recomputes the checksums afterwards.
    let mut s = |name, f: &dyn Fn(&mut Vec<u8>), sealed: bool| {
        let mut b = seg.clone();
        f(&mut b);
        if sealed {
            reseal_segment(&mut b);
        }
        out.push((name, b));
    };
    s("seg-empty", &|b| b.clear(), false);
    s("seg-truncated", &|b| b.truncate(b.len() - 10), false);
    s("seg-bad-magic", &|b| b[0] = b'X', false);
    s("seg-header-crc", &|b| b[16] ^= 1, false);
    s("seg-future-version", &|b| put32(b, 8, 3), true);
    s("seg-flags", &|b| put32(b, 12, 1), true);
    s("seg-dim-zero", &|b| put32(b, 16, 0), true);
    s("seg-dim-huge", &|b| put32(b, 16, u32::MAX), true);
    s("seg-metric", &|b| put32(b, 20, 7), true);
    s("seg-rows-overflow", &|b| put64(b, 24, u64::MAX), true);
    s("seg-rows-huge", &|b| put64(b, 24, 1 << 40), true);
    s(
        "seg-sections-huge",
        &|b| {
            put32(b, 32, u32::MAX);
            let foot = b.len() - 32;
            put32(b, foot + 8, u32::MAX);
        },
        true,
    );
    s(
        "seg-footer-len",
        &|b| {
            let foot = b.len() - 32;
            put64(b, foot + 16, u64::MAX);
        },
        true,
    );
    s(
        "seg-footer-count",
        &|b| {
            let foot = b.len() - 32;
            put32(b, foot + 8, 3);
        },
        true,
    );
    s(
        "seg-table-unaligned",
        &|b| {
            let t = u64_at(b, 40) + 8;
            put64(b, 40, t);
            let foot = b.len() - 32;
            put64(b, foot, t);
        },
        true,
    );
    s(
        "seg-table-past-end",
        &|b| {
            put64(b, 40, u64::MAX - 63);
            let foot = b.len() - 32;
            put64(b, foot, u64::MAX - 63);
        },
        true,
    );
    s(
        "seg-meta-crc",
        &|b| {
            let at = u64_at(b, 40) as usize + 8;
            b[at] ^= 1;
        },
        false,
    );
    s(
        "seg-section-past-end",
        &|b| {
            let at = entry(b, 1) + 8;
            put64(b, at, 1 << 40);
        },
        true,
    );
    s(
        "seg-section-len-overflow",
        &|b| {
            let at = entry(b, 6) + 16;
            put64(b, at, u64::MAX);
        },
        true,
    );
    s(
        "seg-section-unaligned",
        &|b| {
            let e = entry(b, 2);
            let v = u64_at(b, e + 8) + 8;
            put64(b, e + 8, v);
        },
        true,
    );
    s(
        "seg-sections-overlap",
        &|b| {
            let v = section_off(b, 1) as u64;
            let at = entry(b, 2) + 8;
            put64(b, at, v);
        },
        true,
    );
    s(
        "seg-duplicate-kind",
        &|b| {
            let at = entry(b, 2);
            put32(b, at, 1);
        },
        true,
    );
    s(
        "seg-unknown-kind",
        &|b| {
            let at = entry(b, 4);
            put32(b, at, 9);
        },
        true,
    );
    s(
        "seg-missing-vectors",
        &|b| {
            let at = entry(b, 1);
            put32(b, at, 100);
        },
        true,
    );
    s(
        "seg-payload-incomplete",
        &|b| {
            let at = entry(b, 7);
            put32(b, at, 150);
        },
        true,
    );
    s(
        "seg-ids-short",
        &|b| {
            let e = entry(b, 2);
            let v = u64_at(b, e + 16) - 8;
            put64(b, e + 16, v);
        },
        true,
    );
    s(
        "seg-reserved",
        &|b| {
            let at = entry(b, 3) + 4;
            put32(b, at, 1);
        },
        true,
    );
    s(
        "seg-section-crc",
        &|b| {
            let at = section_off(b, 3);
            b[at] ^= 1;
        },
        false,
    );
    s(
        "seg-nan-vector",
        &|b| {
            let v = section_off(b, 1);
            for i in 0..4 {
                b[v + 2 * i..v + 2 * i + 2].copy_from_slice(&0x7E00u16.to_le_bytes());
            }
        },
        true,
    );
    s(
        "seg-inf-vector",
        &|b| {
            let v = section_off(b, 1) + 8;
            b[v..v + 2].copy_from_slice(&0x7C00u16.to_le_bytes());
        },
        true,
    );
    s(
        "seg-zero-vector",
        &|b| {
            let v = section_off(b, 1) + 8;
            b[v..v + 8].fill(0);
        },
        true,
    );
    s(
        "seg-not-unit",
        &|b| {
            // Row 0 at twice its length: finite, not zero, checksums re-sealed.
            let v = section_off(b, 1);
            for i in 0..4 {
                let at = v + 2 * i;
                let x = half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32() * 2.0;
                b[at..at + 2].copy_from_slice(&half::f16::from_f32(x).to_le_bytes());
            }
        },
        true,
    );
    s(
        "seg-ids-unsorted",
        &|b| {
            let i = section_off(b, 2);
            put64(b, i + 8, 1);
        },
        true,
    );
    s("seg-id-order-in-v1", &|b| put32(b, 8, 1), true);
    s(
        "seg-id-order-short",
        &|b| {
            let at = entry(b, 8) + 16;
            put64(b, at, 12);
        },
        true,
    );
    s(
        "seg-id-order-repeats",
        &|b| {
            let o = section_off(b, 8);
            let first = u32_at(b, o);
            put32(b, o + 4, first);
        },
        true,
    );
    s(
        "seg-id-order-past-rows",
        &|b| {
            let o = section_off(b, 8);
            put32(b, o + 8, 4);
        },
        true,
    );
    s(
        "seg-id-order-unsorted",
        &|b| {
            let o = section_off(b, 8);
            let (a, c) = (u32_at(b, o), u32_at(b, o + 4));
            put32(b, o, c);
            put32(b, o + 4, a);
        },
        true,
    );
    s(
        "seg-nan-point",
        &|b| {
            let p = section_off(b, 3) + 16;
            put64(b, p, f64::NAN.to_bits());
        },
        true,
    );
    s(
        "seg-lat-out-of-range",
        &|b| {
            let p = section_off(b, 3);
            put64(b, p, 91f64.to_bits());
        },
        true,
    );
    s(
        "seg-payload-offset-past-end",
        &|b| {
            let o = section_off(b, 5);
            put64(b, o + 8, u64::MAX);
        },
        true,
    );
    s(
        "seg-payload-offsets-reversed",
        &|b| {
            let o = section_off(b, 5);
            let (x, y) = (u64_at(b, o + 8), u64_at(b, o + 16));
            put64(b, o + 8, y);
            put64(b, o + 16, x);
        },
        true,
    );
    s(
        "seg-payload-not-utf8",
        &|b| {
            let p = section_off(b, 6);
            b[p] = 0xFF;
        },
        true,
    );
    s(
        "seg-padding",
        &|b| {
            let e = entry(b, 2);
            let end = (u64_at(b, e + 8) + u64_at(b, e + 16)) as usize;
            b[end] = 1; // ids end before the 64-byte boundary of the next section
        },
        true,
    );

    let mut m = |name, f: &dyn Fn(&mut Vec<u8>), sealed: bool| {
        let mut b = man.clone();
        f(&mut b);
        if sealed {
            reseal_manifest(&mut b);
        }
        out.push((name, b));
    };
    // Layout: header 36 bytes, then "ground" (sorted as created: tiles first? see name_at).
    m("man-empty", &|b| b.clear(), false);
    m("man-truncated", &|b| b.truncate(b.len() - 3), false);
    m("man-crc", &|b| b[20] ^= 1, false);
    m(
        "man-total-len",
        &|b| {
            let foot = b.len() - 16;
            put64(b, foot, 12);
        },
        false,
    );
    m("man-future-version", &|b| put32(b, 8, 99), true);
    // First collection: name_len at 36, name, dim, metric, n_segments, n_tombstones,
    // n_properties (manifest version 2; the generated database sets no properties).
    let n0 = u32_at(&man, 36) as usize;
    let c0 = 40 + n0;
    m("man-huge-counts", &|b| put32(b, c0 + 8, u32::MAX), true);
    m("man-huge-collections", &|b| put32(b, 32, u32::MAX), true);
    m("man-name-len-huge", &|b| put32(b, 36, u32::MAX), true);
    m("man-name-not-utf8", &|b| b[40] = 0xFF, true);
    m(
        "man-duplicate-collection",
        &|b| {
            // Rename the second collection to the first's name (same length needed).
            let first = b[40..40 + n0].to_vec();
            let n_seg = u32_at(b, c0 + 8) as usize;
            let n_tomb = u32_at(b, c0 + 12) as usize;
            let second = c0 + 20 + 40 * (n_seg + n_tomb);
            let n1 = u32_at(b, second) as usize;
            let mut name = first.clone();
            name.resize(n1, b'x');
            if n1 == n0 {
                b[second + 4..second + 4 + n1].copy_from_slice(&first);
            } else {
                // Different lengths: give the first collection the second's name instead.
                let sec = b[second + 4..second + 4 + n1].to_vec();
                let mut bb = b[..36].to_vec();
                bb.extend_from_slice(&(n1 as u32).to_le_bytes());
                bb.extend_from_slice(&sec);
                bb.extend_from_slice(&b[40 + n0..]);
                let total = bb.len() as u64;
                let foot = bb.len() - 16;
                put64(&mut bb, foot, total);
                *b = bb;
            }
        },
        true,
    );
    m("man-dim-zero", &|b| put32(b, c0, 0), true);
    // First file entry of the first collection (it has a segment).
    let e0 = c0 + 20;
    m(
        "man-file-no-reused",
        &|b| {
            let f = u64_at(b, e0);
            put64(b, e0 + 40, f);
        },
        true,
    );
    m("man-file-no-future", &|b| put64(b, e0, 1 << 40), true);
    m("man-generation-future", &|b| put64(b, e0 + 8, 99), true);
    m(
        "man-trailing",
        &|b| {
            let foot = b.len() - 16;
            let mut bb = b[..foot].to_vec();
            bb.extend_from_slice(&[0; 8]);
            bb.extend_from_slice(&b[foot..]);
            let total = bb.len() as u64;
            let f = bb.len() - 16;
            put64(&mut bb, f, total);
            *b = bb;
        },
        true,
    );

    let mut t = |name, f: &dyn Fn(&mut Vec<u8>), sealed: bool| {
        let mut b = tomb.clone();
        f(&mut b);
        if sealed {
            reseal_tomb(&mut b);
        }
        out.push((name, b));
    };
    t("tomb-short", &|b| b.truncate(20), false);
    t("tomb-count-overflow", &|b| put64(b, 16, u64::MAX), false);
    t("tomb-crc", &|b| b[33] ^= 1, false);
    t("tomb-future-version", &|b| put32(b, 8, 2), true);
    t(
        "tomb-unsorted",
        &|b| {
            let (x, y) = (u64_at(b, 32), u64_at(b, 40));
            put64(b, 32, y);
            put64(b, 40, x);
        },
        true,
    );

    let d = |descr: &str, fortran: &str, shape: &str| {
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n")
    };
    let f32s: Vec<u8> = [1f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    out.push(("npy-empty", Vec::new()));
    out.push(("npy-version-9", npy(9, &d("<f4", "False", "(1, 4)"), &f32s)));
    out.push(("npy-header-len-huge", {
        let mut b = npy(2, &d("<f4", "False", "(1, 4)"), &f32s);
        put32(&mut b, 8, u32::MAX);
        b
    }));
    out.push(("npy-header-past-end", {
        let mut b = npy(1, &d("<f4", "False", "(1, 4)"), &[]);
        b.truncate(b.len() - 5);
        b
    }));
    out.push((
        "npy-big-endian",
        npy(1, &d(">f4", "False", "(1, 4)"), &f32s),
    ));
    out.push(("npy-fortran", npy(1, &d("<f4", "True", "(1, 4)"), &f32s)));
    out.push(("npy-3d", npy(1, &d("<f4", "False", "(1, 2, 2)"), &f32s)));
    out.push(("npy-zero-cols", npy(1, &d("<f4", "False", "(1, 0)"), &[])));
    out.push((
        "npy-zero-rows-huge-cols",
        npy(1, &d("<f4", "False", "(0, 1000000000000000000)"), &[]),
    ));
    out.push((
        "npy-rows-overflow",
        npy(1, &d("<f2", "False", "(18446744073709551615, 4)"), &f32s),
    ));
    out.push(("npy-truncated", npy(1, &d("<f4", "False", "(2, 4)"), &f32s)));

    for (name, text) in [
        ("csv-missing-lat", "id,lon\n1,2\n"),
        ("csv-lat-91", "id,lat,lon\n1,2,3\n2,91,0\n"),
        ("csv-nan-lon", "id,lat,lon\n1,0,NaN\n"),
        ("csv-id-negative", "id,lat,lon\n-1,0,0\n"),
        ("csv-id-overflow", "id,lat,lon\n18446744073709551616,0,0\n"),
        ("csv-bad-time", "id,lat,lon,time\n1,0,0,2021-02-30\n"),
        ("csv-short-row", "id,lat,lon\n1,2\n"),
        (
            "jsonl-f32-overflow",
            r#"{"id":1,"k":1,"vector":[0.5,1e39]}"#,
        ),
        ("jsonl-negative-k", r#"{"id":1,"k":-1,"vector":[1]}"#),
        (
            "jsonl-unknown-filter",
            r#"{"id":1,"k":1,"vector":[1],"filter":{"circle":1}}"#,
        ),
        ("time-feb-30", "2021-02-30"),
        ("time-hour-24", "2021-01-01T24:00"),
        ("time-offset-bad", "2021-01-01T10:00:00+5"),
        ("time-year-5-digits", "99999-01-01"),
    ] {
        out.push((name, text.as_bytes().to_vec()));
    }
    // The int8 copy: header 64 bytes, 8 scales (f32), 8 L1 norms (each block 64-aligned),
    // then 8 x 16 codes.
    let int8 = valid_int8_segment();
    let mut q = |name, f: &dyn Fn(&mut Vec<u8>, usize)| {
        let mut b = int8.clone();
        let at = section_off(&b, 103);
        f(&mut b, at);
        reseal_segment(&mut b);
        out.push((name, b));
    };
    q("seg-int8-scale-zero", &|b, at| put32(b, at + 64 + 4, 0));
    q("seg-int8-scale-nan", &|b, at| {
        put32(b, at + 64, f32::NAN.to_bits())
    });
    q("seg-int8-code-128", &|b, at| b[at + 192 + 3] = 0x80);
    q("seg-int8-code-off", &|b, at| {
        let c = b[at + 192 + 5] as i8;
        b[at + 192 + 5] = c.saturating_add(if c > 0 { -3 } else { 3 }) as u8;
    });
    q("seg-int8-l1-low", &|b, at| {
        put32(b, at + 128, 0.1f32.to_bits())
    });
    let deep = format!(
        r#"{{"id":{}{},"k":1,"vector":[1]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    out.push(("jsonl-deep-nesting", deep.into_bytes()));
    out
}

#[test]
fn write_hostile_files() {
    if std::env::var("SAT2CAP_WRITE_HOSTILE").is_err() {
        return;
    }
    let dir = folder();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in hostile_files() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The generator and the table agree (so regenerating cannot silently drop a case).
#[test]
fn generator_covers_the_table() {
    let names: Vec<&str> = hostile_files().iter().map(|(n, _)| *n).collect();
    for (n, _) in TABLE {
        assert!(names.contains(n), "{n} is not generated");
    }
    assert_eq!(names.len(), TABLE.len());
}
