//! GeoParquet out and in: `sat2cap export --format geoparquet` then `sat2cap import
//! --geoparquet` gives the same items bit for bit (vectors, points, times, payloads, ids, the
//! collection's properties), in float16 and float32, a row group at a time; files of other
//! layouts import. Broken files: tests/gis_parquet_errors.rs; other tools' readers and
//! writers (pyarrow, geopandas, ogrinfo): tests/gis_parquet_tools.rs.
#![cfg(feature = "cli")]

mod parquet_util;

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array};
use parquet_util::*;
use sat2cap::io::geoparquet::wkb;
use sat2cap::jobs::{
    export, import, ExportFormat, ExportOptions, ImportOptions, ImportSource, ParquetColumns,
    VectorType,
};
use sat2cap::{Db, IndexOptions, NewItem, OpenOptions, Point, Silent};

#[test]
fn export_imports_back_bit_for_bit_in_f16_and_f32() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rich_db(&d.join("db"));
    let want = contents(&d.join("db"), "c");
    assert_eq!(want.0.len(), 600);
    let out = ok(
        d,
        &[
            "export",
            "--db",
            "db",
            "--collection",
            "c",
            "--format",
            "geoparquet",
            "--out",
            "c.parquet",
            "--json",
        ],
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["rows"], 600);
    assert_eq!(r["vector_type"], "float16");
    ok(
        d,
        &[
            "export",
            "--db",
            "db",
            "--collection",
            "c",
            "--out",
            "c32.parquet",
            "--vector-type",
            "f32",
        ],
    );
    for (file, db) in [("c.parquet", "back16"), ("c32.parquet", "back32")] {
        let out = ok(
            d,
            &[
                "import",
                "--db",
                db,
                "--collection",
                "c",
                "--geoparquet",
                file,
                "--json",
            ],
        );
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["rows"], 600, "{out}");
        assert!(r.get("ignored_columns").is_none(), "{out}");
        assert!(
            r["model"].as_str().unwrap().contains("sat2cap-overhead"),
            "{out}"
        );
        let got = contents(&d.join(db), "c");
        assert!(got.0 == want.0, "{file}: the items differ");
        assert_eq!(got.1, want.1, "{file}: the properties differ");
    }
    // Exporting the imported collection writes the same file, byte for byte.
    ok(
        d,
        &[
            "export",
            "--db",
            "back16",
            "--collection",
            "c",
            "--out",
            "again.parquet",
        ],
    );
    assert!(
        std::fs::read(d.join("again.parquet")).unwrap()
            == std::fs::read(d.join("c.parquet")).unwrap()
    );
    // A model the collection does not hold is refused; the same model adds with --upsert.
    fails(
        d,
        &[
            "import",
            "--db",
            "back16",
            "--collection",
            "c",
            "--geoparquet",
            "c.parquet",
        ],
        &[
            "c.parquet",
            "row ",
            "is already in collection 'c'",
            "--upsert",
        ],
    );
    ok(
        d,
        &[
            "import",
            "--db",
            "back16",
            "--collection",
            "c",
            "--geoparquet",
            "c.parquet",
            "--upsert",
        ],
    );
    let mut db = Db::open(d.join("back16"), OpenOptions::read_write()).unwrap();
    db.set_property(
        "c",
        "sat2cap.model",
        Some(&MODEL.replace("0badf00d", "0badf00e")),
    )
    .unwrap();
    db.commit().unwrap();
    drop(db);
    fails(
        d,
        &[
            "import",
            "--db",
            "back16",
            "--collection",
            "c",
            "--geoparquet",
            "c.parquet",
            "--upsert",
        ],
        &[
            "c.parquet holds vectors of sat2cap-overhead",
            "0badf00d",
            "0badf00e",
        ],
    );
    // Outputs that are not files, and unknown collections.
    fails(
        d,
        &["export", "--db", "db", "--collection", "c", "--out", "db"],
        &["db", "directory"],
    );
    fails(
        d,
        &[
            "export",
            "--db",
            "db",
            "--collection",
            "c",
            "--out",
            "db/MANIFEST",
        ],
        &["MANIFEST"],
    );
    fails(
        d,
        &[
            "export",
            "--db",
            "db",
            "--collection",
            "nope",
            "--out",
            "x.parquet",
        ],
        &["unknown collection 'nope'"],
    );
    assert!(!d.join("x.parquet").exists());
}

/// More rows than a row group: written as several, read back a batch at a time.
#[test]
fn large_collections_stream_in_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 70_000u64;
    let mut db = Db::open(
        d.join("db"),
        OpenOptions::create_if_missing().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("big", 2).unwrap();
    for i in 0..n {
        let a = i as f32 * 0.001;
        db.add(
            "big",
            NewItem {
                id: i,
                vector: &[a.cos(), a.sin()],
                point: Point::new(
                    -60.0 + (i % 1200) as f64 * 0.1,
                    -170.0 + (i / 1200) as f64 * 0.5,
                )
                .unwrap(),
                time: Some(i as i64),
                payload: None,
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
    drop(db);
    let out = d.join("big.parquet");
    let opts = ExportOptions {
        collection: "big".into(),
        out: out.clone(),
        format: ExportFormat::GeoParquet,
        vector_type: VectorType::F16,
    };
    assert_eq!(export(&d.join("db"), &opts, &Silent).unwrap().rows, n);
    let file = std::fs::File::open(&out).unwrap();
    let meta = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    let groups: Vec<i64> = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(groups, vec![65_536, 70_000 - 65_536]);
    let imp = ImportOptions {
        collection: "big".into(),
        source: ImportSource::GeoParquet {
            path: out,
            columns: ParquetColumns::default(),
        },
        batch: 30_000,
        indexes: IndexOptions::none(),
        compact: false,
        upsert: false,
    };
    let r = import(&d.join("back"), &imp, &Silent).unwrap();
    assert_eq!((r.rows, r.segments), (n, 3));
    assert!(contents(&d.join("back"), "big") == contents(&d.join("db"), "big"));
}

/// Other layouts: no geometry but lon / lat, no id column (row numbers), a polygon's centre,
/// int64 times, float64 vectors normalised in f64.
#[test]
fn other_layouts_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lon: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![6.5, -179.5, 179.5]));
    let lat: ArrayRef = Arc::new(arrow_array::Float32Array::from(vec![46.25f32, 0.0, -10.0]));
    let t: ArrayRef = Arc::new(Int64Array::from(vec![Some(0), None, Some(-5)]));
    let mut v = ListBuilder::new(arrow_array::builder::Float64Builder::new());
    for row in [[3e300, 4e300], [1e-300, 0.0], [-2.0, 0.0]] {
        v.values().append_slice(&row);
        v.append(true);
    }
    write_parquet(
        &d.join("lonlat.parquet"),
        vec![
            ("vector", Arc::new(v.finish()) as ArrayRef),
            ("longitude", lon),
            ("latitude", lat),
            ("time", t),
        ],
        &[],
    );
    let out = ok(
        d,
        &[
            "import",
            "--db",
            "db",
            "--collection",
            "c",
            "--geoparquet",
            "lonlat.parquet",
            "--json",
        ],
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["ids_are_row_numbers"], true, "{out}");
    let (rows, props) = contents(&d.join("db"), "c");
    assert!(props.is_empty());
    let f = |b: u16| half::f16::from_bits(b).to_f32();
    let r0 = &rows[&0];
    let h = |x: f64| half::f16::from_f64(x).to_f32();
    assert_eq!((f(r0.0[0]), f(r0.0[1])), (h(0.6), h(0.8)));
    assert_eq!(
        (f64::from_bits(r0.1), f64::from_bits(r0.2), r0.3),
        (46.25, 6.5, Some(0))
    );
    assert_eq!((f(rows[&1].0[0]), rows[&1].3), (1.0, None));
    assert_eq!((f(rows[&2].0[0]), rows[&2].3), (-1.0, Some(-5)));

    // A polygon across the antimeridian: the centre of its box, taken across it.
    let mut b = BinaryBuilder::new();
    let mut g = Vec::new();
    wkb::write_cut_box(&mut g, 179.0, 10.0, -178.0, 12.0);
    b.append_value(&g);
    g.clear();
    wkb::write_box(&mut g, 6.0, 46.0, 7.0, 47.0);
    b.append_value(&g);
    write_parquet(
        &d.join("poly.parquet"),
        vec![
            ("embedding", vectors(2, 4, None, None)),
            ("geometry", Arc::new(b.finish()) as ArrayRef),
            ("class", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ],
        &[geo_meta(Some(
            r#"{"id":{"authority":"OGC","code":"CRS84"}}"#,
        ))],
    );
    let out = ok(
        d,
        &[
            "import",
            "--db",
            "db2",
            "--collection",
            "c",
            "--geoparquet",
            "poly.parquet",
            "--json",
        ],
    );
    assert!(out.contains(r#""ignored_columns":["class"]"#), "{out}");
    let (rows, _) = contents(&d.join("db2"), "c");
    let p = |r: &(Vec<u16>, u64, u64, Option<i64>, Option<String>)| {
        (f64::from_bits(r.1), f64::from_bits(r.2))
    };
    assert_eq!(p(&rows[&0]), (11.0, -179.5));
    assert_eq!(p(&rows[&1]), (46.5, 6.5));
}
