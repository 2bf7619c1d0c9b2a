//! Fuzz bodies of the import and batch-query formats: `.npy`, point CSV, query JSONL.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::io::npy::{parse_header, NpyReader};
use crate::io::points_csv::PointsReader;
use crate::io::query_jsonl::{parse_query_head, parse_query_line};

/// Parses `data` as the start of an `.npy` file; a header that parses must be consistent.
pub fn npy_header(data: &[u8]) {
    if let Ok(h) = parse_header(data) {
        assert!(h.cols > 0, "a header with 0 columns was accepted");
        assert!(
            h.data_offset as usize <= data.len(),
            "data offset past the bytes"
        );
    }
}

static NPY_FILE_NO: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to a temporary file and reads it with [`NpyReader`]: if it opens, every
/// promised row reads back with the promised number of columns.
pub fn npy_file(data: &[u8]) {
    let path = std::env::temp_dir().join(format!(
        "sat2cap-fuzz-{}-{}.npy",
        std::process::id(),
        NPY_FILE_NO.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    npy_path(&path);
    let _ = std::fs::remove_file(&path);
}

fn npy_path(path: &Path) {
    let Ok(mut r) = NpyReader::open(path) else {
        return;
    };
    let (rows, cols) = (r.header().rows, r.header().cols);
    let mut row = Vec::new();
    let mut n = 0u64;
    loop {
        match r.read_row(&mut row) {
            Ok(true) => {
                assert_eq!(row.len(), cols);
                n += 1;
            }
            Ok(false) => break,
            Err(e) => panic!("row {n} of {rows} failed after a successful open: {e}"),
        }
    }
    assert_eq!(n, rows);
}

/// Reads `data` as a point CSV: every row either is an error or is a valid point.
pub fn points_csv(data: &[u8]) {
    let Ok(reader) = PointsReader::new(data, Path::new("fuzz.csv")) else {
        return;
    };
    for row in reader.take(10_000) {
        let Ok(row) = row else { continue };
        let (lat, lon) = (row.point.lat(), row.point.lon());
        assert!((-90.0..=90.0).contains(&lat), "lat {lat}");
        assert!((-180.0..180.0).contains(&lon), "lon {lon}");
        assert!(row.payload.as_deref() != Some(""), "empty payload kept");
    }
}

/// Reads `data` (after its first byte, which picks a line limit of 1..=256 bytes) through
/// the guarded text reader: every line it yields is within the limit, a leading BOM is
/// gone, and after a line over the limit it yields no more lines.
pub fn text_lines(data: &[u8]) {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max) + 1;
    let Ok(r) = crate::io::text::guarded(rest, max) else {
        return;
    };
    let mut too_long = false;
    for (no, line) in crate::io::text::lines(r).take(100_000) {
        match line {
            Ok(l) => {
                assert!(!too_long, "line {no} read after a line over the limit");
                assert!(
                    l.len() <= max,
                    "line {no} of {} bytes, limit {max}",
                    l.len()
                );
                if no == 1 && rest.starts_with(BOM) && l.starts_with('\u{feff}') {
                    assert!(rest[3..].starts_with(BOM), "the leading BOM was kept");
                }
            }
            Err(e) if e.to_string().contains("longer than") => {
                if too_long {
                    break;
                }
                too_long = true;
            }
            Err(_) => {}
        }
    }
}

/// Parses `data` (if UTF-8) as one query JSONL line: a line that parses has a finite vector,
/// and its time bounds either convert or give a typed error; read as a line whose vector
/// is given apart (`--vectors`), it keeps that vector, and is refused when it has its own.
pub fn query_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The same line read as one whose vector comes from a vectors file: it keeps that
    // vector, and a line that parses with a vector of its own is refused.
    let given = vec![0.25f32, -1.0];
    let head = parse_query_head(text, 1, given.clone());
    if let Ok(h) = &head {
        assert_eq!(h.vector, given, "the given vector was not kept");
    }
    let Ok(q) = parse_query_line(text, 1) else {
        return;
    };
    assert!(
        head.is_err(),
        "a line with its own vector read as one without"
    );
    assert!(
        q.vector.iter().all(|x| x.is_finite()),
        "non-finite vector accepted: {:?}",
        q.vector
    );
    if let Some(f) = q.filter {
        for t in f.time.iter().flatten() {
            let _ = t.seconds();
        }
    }
}
