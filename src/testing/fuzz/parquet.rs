//! Fuzz bodies of GeoParquet: WKB geometries (`io::geoparquet::wkb`) and whole Parquet files
//! through the import's reader (`io::geoparquet::read`), with its metadata checks.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::io::geoparquet::read::{check_geo_text, Columns, Row, Source};
use crate::io::geoparquet::{wkb, Sat2capMeta};

/// Reads `data` as WKB: an error in one line, or a shape whose coordinates are finite (an
/// area's bounding box ordered, its centre inside it or across the antimeridian within
/// [-180, 180] when the box is in degrees). Then the first 32 bytes as four f64: a point and
/// a box written from them read back as they were.
pub fn wkb_geometry(data: &[u8]) {
    match wkb::read(data) {
        Err(m) => assert!(!m.contains('\n'), "{m}"),
        Ok(wkb::Shape::Point(Some((x, y)))) => assert!(x.is_finite() && y.is_finite()),
        Ok(s @ wkb::Shape::Area { bbox, .. }) => {
            if let Some(b) = bbox {
                assert!(b.iter().all(|v| v.is_finite()) && b[0] <= b[2] && b[1] <= b[3]);
                let (x, y) = s.area_centre().expect("an area with vertices has a centre");
                assert!(y >= b[1] && y <= b[3], "{y} outside {b:?}");
                let degrees = b[0] >= -180.0 && b[2] <= 180.0;
                if degrees {
                    assert!((-180.0..=180.0).contains(&x), "{x} from {b:?}");
                }
            }
        }
        Ok(_) => {}
    }
    if data.len() >= 32 {
        let f = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&data[i * 8..i * 8 + 8]);
            f64::from_le_bytes(a)
        };
        let (w, s, e, n) = (f(0), f(1), f(2), f(3));
        if [w, s, e, n].iter().all(|v| v.is_finite()) {
            let mut b = Vec::new();
            wkb::write_point(&mut b, w, s);
            assert_eq!(wkb::read(&b), Ok(wkb::Shape::Point(Some((w, s)))));
            b.clear();
            wkb::write_box(&mut b, w, s, e, n);
            match wkb::read(&b) {
                Ok(wkb::Shape::Area {
                    multi: false,
                    bbox: Some(got),
                    ..
                }) => assert_eq!(got, [w.min(e), s.min(n), w.max(e), s.max(n)]),
                r => panic!("box read back as {r:?}"),
            }
        }
    }
}

static FILE_NO: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to a temporary file and imports-reads it with the default columns: an
/// error in one line naming the file, or rows that each read or fail in one line, every
/// vector of the file's width and every place in degrees. UTF-8 data also goes through the
/// `geo` and `sat2cap` metadata checks.
pub fn geoparquet_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = check_geo_text(text);
        let _ = Sat2capMeta::parse(text);
    }
    let path = std::env::temp_dir().join(format!(
        "sat2cap-fuzz-{}-{}.parquet",
        std::process::id(),
        FILE_NO.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    read_file(&path);
    let _ = std::fs::remove_file(&path);
}

fn read_file(path: &Path) {
    let shown = path.display().to_string();
    let one_line = |m: &str| {
        assert!(!m.contains('\n'), "{m}");
        assert!(m.starts_with(&shown), "{m} does not name {shown}");
    };
    let src = match Source::open(path, &Columns::default()) {
        Ok(s) => s,
        Err(e) => return one_line(&e.message),
    };
    let mut rows = match src.rows() {
        Ok(r) => r,
        Err(e) => return one_line(&e.message),
    };
    let mut row = Row::default();
    for n in 0..10_000u64 {
        match rows.next_row(&mut row) {
            Ok(false) => return,
            Ok(true) => {
                assert_eq!(row.index, n);
                // A list column may be ragged (the import checks widths); a fixed-size
                // one is not.
                if let Some(w) = src.fixed_width() {
                    assert_eq!(row.vector.len(), w);
                }
                let p = row.point.expect("a row read has a place");
                assert!((-90.0..=90.0).contains(&p.lat()) && (-180.0..180.0).contains(&p.lon()));
            }
            Err(e) => return one_line(&e.message),
        }
    }
}
