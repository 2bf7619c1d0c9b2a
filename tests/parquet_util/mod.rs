//! Shared by tests/gis_parquet*.rs: running the binary, a database with every kind of value,
//! and Parquet files written with arrow-rs (as other tools, or broken).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use sat2cap::io::geoparquet::wkb;
use sat2cap::{Db, NewItem, OpenOptions, Point};

#[path = "../common/cli.rs"]
mod cli;
pub use cli::{ok, sat2cap};

/// Exit 2, one line on stderr holding every `want`.
pub fn fails(dir: &Path, args: &[&str], want: &[&str]) {
    let o = sat2cap(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "sat2cap {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for w in want {
        assert!(err.contains(w), "sat2cap {args:?}: '{w}' not in {err}");
    }
}

/// A seeded generator of floats in [-0.5, 0.5).
pub fn noise(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

pub const MODEL: &str = r#"{"encoder":"sat2cap-overhead","dim":8,"weights":"crc32c:0badf00d:1234","clip":"crc32c:12345678:99","preprocess":"resize224"}"#;

/// A collection `c` of 600 8-d items with every kind of value: ids up to 2^64-1, points on
/// the poles and the antimeridian, no / negative / far times, no / empty / text / JSON
/// payloads, footprints (one across the antimeridian), heavy-tailed vectors; and two
/// properties, one the model.
pub fn rich_db(path: &Path) {
    let mut rnd = noise(7);
    let mut db = Db::open(path, OpenOptions::create_if_missing()).unwrap();
    db.create_collection("c", 8).unwrap();
    db.set_property("c", "sat2cap.model", Some(MODEL)).unwrap();
    db.set_property("c", "note", Some("a, \"quoted\" note"))
        .unwrap();
    for i in 0..600u64 {
        let v: Vec<f32> = (0..8)
            .map(|_| (rnd() * (rnd() * 10.0).exp()) as f32)
            .collect();
        let (lat, lon) = match i {
            0 => (90.0, 0.0),
            1 => (-90.0, -180.0),
            2 => (12.5, 179.999_999),
            _ => (46.0 + 0.01 * (i / 25) as f64, 6.0 + 0.013 * (i % 25) as f64),
        };
        let fp = |w: f64, s: f64, e: f64, n: f64| {
            format!(r#"{{"footprint":[{w},{s},{e},{n}],"key":"t{i}"}}"#)
        };
        let payload = match i % 6 {
            _ if i == 2 => Some(fp(179.99, 12.49, -179.99, 12.51)),
            0 => None,
            1 => Some(String::new()),
            2 => Some(format!("plain text ünïcödé {i}")),
            _ => Some(fp(lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005)),
        };
        let time = match i % 5 {
            0 => None,
            1 => Some(-86_400 * i as i64),
            2 => Some(253_402_300_799), // 9999-12-31T23:59:59Z
            _ => Some(1_685_577_600 + 3_600 * i as i64),
        };
        let id = match i {
            0 => u64::MAX,
            1 => 0,
            _ => i * 7919,
        };
        db.add(
            "c",
            NewItem {
                id,
                vector: &v,
                point: Point::new(lat, lon).unwrap(),
                time,
                payload: payload.as_deref(),
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
}

pub type Rows = BTreeMap<u64, (Vec<u16>, u64, u64, Option<i64>, Option<String>)>;

/// Every item of `coll` (vector bits, lat / lon bits, time, payload) and its properties.
pub fn contents(db: &Path, coll: &str) -> (Rows, BTreeMap<String, String>) {
    let snap = Db::open(db, OpenOptions::read_only()).unwrap().snapshot();
    let c = snap.collection(coll).unwrap();
    let rows = c
        .iter()
        .map(|i| {
            let i = i.unwrap();
            let bits = i.vector.iter().map(|x| x.to_bits()).collect();
            let p = (i.point.lat().to_bits(), i.point.lon().to_bits());
            (
                i.id,
                (bits, p.0, p.1, i.time, i.payload.map(str::to_string)),
            )
        })
        .collect();
    (rows, c.properties().clone())
}

/// Writes `columns` as a Parquet file with the file metadata `kv`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, kv: &[(&str, String)]) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    for (k, v) in kv {
        w.append_key_value_metadata(KeyValue::new(k.to_string(), v.clone()));
    }
    w.close().unwrap();
}

pub fn geo_meta(crs: Option<&str>) -> (&'static str, String) {
    let crs = crs.map_or(String::new(), |c| format!(r#","crs":{c}"#));
    (
        "geo",
        format!(
            r#"{{"version":"1.1.0","primary_column":"geometry","columns":{{"geometry":{{"encoding":"WKB","geometry_types":[]{crs}}}}}}}"#
        ),
    )
}

pub fn points(n: usize, bad: Option<(usize, &[u8])>) -> ArrayRef {
    let mut b = BinaryBuilder::new();
    for i in 0..n {
        match bad {
            Some((j, bytes)) if j == i => b.append_value(bytes),
            _ => {
                let mut p = Vec::new();
                wkb::write_point(&mut p, 6.0 + i as f64 * 0.01, 46.0);
                b.append_value(&p);
            }
        }
    }
    Arc::new(b.finish())
}

/// List vectors of `dim` floats, `short` rows one shorter, `nan` rows with a NaN.
pub fn vectors(n: usize, dim: usize, short: Option<usize>, nan: Option<usize>) -> ArrayRef {
    let mut b = ListBuilder::new(Float32Builder::new());
    for i in 0..n {
        let len = if short == Some(i) { dim - 1 } else { dim };
        for j in 0..len {
            let x = if nan == Some(i) && j == 3 {
                f32::NAN
            } else {
                1.0 + (i * j) as f32
            };
            b.values().append_value(x);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}
