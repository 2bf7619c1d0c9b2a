//! Broken GeoParquet files: each is exit 2 with one line naming the file, and the column
//! and row where it applies; a failed first import leaves no database.
#![cfg(feature = "cli")]

mod parquet_util;

use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array};
use arrow_schema::{DataType, Field};
use parquet_util::*;
use sat2cap::io::geoparquet::wkb;

#[test]
fn broken_files_name_the_file_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let imp = |file: &str, extra: &[&str], want: &[&str]| {
        let mut args = vec![
            "import",
            "--db",
            "db",
            "--collection",
            "c",
            "--geoparquet",
            file,
        ];
        args.extend_from_slice(extra);
        fails(d, &args, want);
        assert!(
            !d.join("db").exists(),
            "{file}: a failed first import left a database"
        );
    };
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![10, 11, 12, 13, 14]));
    let geo = geo_meta(None);
    write_parquet(
        &d.join("ok.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    ok(
        d,
        &[
            "import",
            "--db",
            "good",
            "--collection",
            "c",
            "--geoparquet",
            "ok.parquet",
        ],
    );

    std::fs::write(d.join("text.parquet"), "id,lat,lon\n1,2,3\n").unwrap();
    imp(
        "text.parquet",
        &[],
        &["text.parquet: not a readable Parquet file"],
    );
    imp("missing.parquet", &[], &["missing.parquet: cannot read it"]);
    std::fs::create_dir(d.join("folder.parquet")).unwrap();
    imp(
        "folder.parquet",
        &[],
        &["folder.parquet: not a regular file"],
    );
    let whole = std::fs::read(d.join("ok.parquet")).unwrap();
    std::fs::write(d.join("cut.parquet"), &whole[..whole.len() / 2]).unwrap();
    imp(
        "cut.parquet",
        &[],
        &["cut.parquet: not a readable Parquet file"],
    );

    write_parquet(
        &d.join("novec.parquet"),
        vec![("id", ids.clone()), ("geometry", points(5, None))],
        std::slice::from_ref(&geo),
    );
    imp(
        "novec.parquet",
        &[],
        &[
            "novec.parquet: no column 'embedding' (nor 'vector')",
            "the columns are: id, geometry",
        ],
    );
    imp(
        "ok.parquet",
        &["--vector-column", "clip"],
        &["ok.parquet: no column 'clip' (--vector-column)"],
    );
    imp(
        "ok.parquet",
        &["--vector-column", "id"],
        &["column 'id' is of type Int64; vectors are lists"],
    );
    imp(
        "ok.parquet",
        &["--time-column", "geometry"],
        &["column 'geometry' is of type Binary; times are"],
    );

    write_parquet(
        &d.join("ragged.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, Some(3), None)),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "ragged.parquet",
        &[],
        &["ragged.parquet: column 'embedding', row 3: 15 values, expected 16"],
    );
    write_parquet(
        &d.join("nan.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, Some(2))),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "nan.parquet",
        &[],
        &["nan.parquet: column 'embedding', row 2: component 3 is NaN"],
    );

    // The width the metadata says is not the column's.
    let fixed: ArrayRef = Arc::new(
        FixedSizeListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            8,
            Arc::new(Float32Array::from(
                (0..40).map(|x| x as f32 + 1.0).collect::<Vec<_>>(),
            )),
            None,
        )
        .unwrap(),
    );
    let meta = r#"{"format":1,"collection":"c","dim":16,"rows":5,"embedding":{"column":"embedding","type":"float32","normalisation":"l2"},"model":null,"properties":{}}"#.to_string();
    write_parquet(
        &d.join("width.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", fixed),
            ("geometry", points(5, None)),
        ],
        &[geo.clone(), ("sat2cap", meta)],
    );
    imp(
        "width.parquet",
        &[],
        &[
            "width.parquet: column 'embedding' holds 8 values a row",
            "dimension 16",
            "wrong embedding width",
        ],
    );
    // Into an existing collection of another width.
    let fixed: ArrayRef = Arc::new(
        FixedSizeListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            8,
            Arc::new(Float32Array::from(
                (0..40).map(|x| x as f32 + 1.0).collect::<Vec<_>>(),
            )),
            None,
        )
        .unwrap(),
    );
    write_parquet(
        &d.join("w8.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", fixed),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    fails(
        d,
        &["import", "--db", "good", "--collection", "c", "--geoparquet", "w8.parquet"],
        &["collection 'c' has dimension 16; column 'embedding' of w8.parquet holds vectors of 8 values"],
    );

    write_parquet(
        &d.join("wkb.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, Some((2, &[1, 1, 0, 0, 0, 0, 0])))),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "wkb.parquet",
        &[],
        &["wkb.parquet: column 'geometry', row 2: bad WKB: truncated"],
    );
    let mut line = vec![1u8, 2, 0, 0, 0, 1, 0, 0, 0];
    line.extend_from_slice(&[0u8; 16]);
    write_parquet(
        &d.join("line.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, Some((4, &line)))),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "line.parquet",
        &[],
        &["column 'geometry', row 4: a LineString; only Point, Polygon and MultiPolygon"],
    );
    let utm = geo_meta(Some(
        r#"{"name":"WGS 84 / UTM zone 32N","id":{"authority":"EPSG","code":32632}}"#,
    ));
    write_parquet(
        &d.join("utm.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, None)),
        ],
        &[utm],
    );
    imp("utm.parquet", &[], &["utm.parquet: metadata 'geo': geometry column 'geometry' is in the CRS 'WGS 84 / UTM zone 32N'"]);
    let mut far = Vec::new();
    wkb::write_point(&mut far, 500_000.0, 5_100_000.0);
    write_parquet(
        &d.join("far.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, Some((1, &far)))),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "far.parquet",
        &[],
        &[
            "column 'geometry', row 1: longitude 500000, latitude 5100000 is not a place",
            "projected CRS",
        ],
    );

    let dup: ArrayRef = Arc::new(Int64Array::from(vec![10, 11, 12, 11, 14]));
    write_parquet(
        &d.join("dup.parquet"),
        vec![
            ("id", dup),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "dup.parquet",
        &[],
        &["dup.parquet: column 'id': id 11 appears on row 1 and on row 3"],
    );
    let neg: ArrayRef = Arc::new(Int64Array::from(vec![10, -11, 12, 13, 14]));
    write_parquet(
        &d.join("neg.parquet"),
        vec![
            ("id", neg),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "neg.parquet",
        &[],
        &["neg.parquet: column 'id', row 1: id -11 is negative"],
    );
    let nulls: ArrayRef = Arc::new(Int64Array::from(vec![
        Some(10),
        Some(11),
        None,
        Some(13),
        Some(14),
    ]));
    write_parquet(
        &d.join("nullid.parquet"),
        vec![
            ("id", nulls),
            ("embedding", vectors(5, 16, None, None)),
            ("geometry", points(5, None)),
        ],
        std::slice::from_ref(&geo),
    );
    imp(
        "nullid.parquet",
        &[],
        &["nullid.parquet: column 'id', row 2: no id (null)"],
    );
    write_parquet(
        &d.join("noplace.parquet"),
        vec![
            ("id", ids.clone()),
            ("embedding", vectors(5, 16, None, None)),
        ],
        &[],
    );
    imp("noplace.parquet", &[], &["noplace.parquet: no place"]);
}

/// A time Parquet's millisecond timestamps cannot hold stops the export, naming the item;
/// nothing is written.
#[test]
fn times_beyond_parquet_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut db =
        sat2cap::Db::open(d.join("db"), sat2cap::OpenOptions::create_if_missing()).unwrap();
    db.create_collection("c", 2).unwrap();
    for (id, time) in [(1, Some(0)), (2, Some(i64::MAX / 10))] {
        let item = sat2cap::NewItem {
            id,
            vector: &[1.0, 0.0],
            point: sat2cap::Point::new(1.0, 2.0).unwrap(),
            time,
            payload: None,
        };
        db.add("c", item).unwrap();
    }
    db.commit().unwrap();
    drop(db);
    fails(
        d,
        &[
            "export",
            "--db",
            "db",
            "--collection",
            "c",
            "--out",
            "c.parquet",
        ],
        &[
            "item 2: time 922337203685477580",
            "beyond Parquet's millisecond timestamps",
        ],
    );
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("db")]);
}

/// A footer holding an unknown field of 2,000 lists declaring 2^31 - 1 booleans each (12 KB)
/// would hold the Parquet reader for hours: the file is refused within the footer's time
/// budget, exit 2, naming it.
#[test]
fn a_footer_that_would_take_hours_is_refused_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![10, 11, 12]));
    write_parquet(
        &d.join("ok.parquet"),
        vec![
            ("id", ids),
            ("embedding", vectors(3, 16, None, None)),
            ("geometry", points(3, None)),
        ],
        &[geo_meta(None)],
    );
    let bytes = std::fs::read(d.join("ok.parquet")).unwrap();
    let n = bytes.len();
    let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    let footer = &bytes[n - 8 - len..n - 8];
    assert_eq!(
        footer.last(),
        Some(&0),
        "the footer struct ends with its stop byte"
    );
    // Field 100 (full id, zigzag 200), a list of 2,000 lists of booleans, 2^31 - 1 each.
    let mut field = vec![0x09, 0xc8, 0x01, 0xf9, 0xd0, 0x0f];
    for _ in 0..2000 {
        field.extend([0xf1, 0xff, 0xff, 0xff, 0xff, 0x07]);
    }
    let mut bad = bytes[..n - 8 - len].to_vec();
    bad.extend_from_slice(&footer[..len - 1]);
    bad.extend_from_slice(&field);
    bad.push(0);
    bad.extend_from_slice(&((len + field.len()) as u32).to_le_bytes());
    bad.extend_from_slice(b"PAR1");
    std::fs::write(d.join("bomb.parquet"), bad).unwrap();
    let start = std::time::Instant::now();
    fails(
        d,
        &[
            "import",
            "--db",
            "db",
            "--collection",
            "c",
            "--geoparquet",
            "bomb.parquet",
        ],
        &["bomb.parquet", "footer takes more than 10 s"],
    );
    assert!(start.elapsed().as_secs() < 60, "{:?}", start.elapsed());
    assert!(!d.join("db").exists());
}
