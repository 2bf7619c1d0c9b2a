//! GeoParquet with other tools: pyarrow and geopandas read the export as GeoParquet 1.1 (its
//! schema, metadata, CRS, geometries and values) and write files that `sat2cap import
//! --geoparquet` reads; `ogrinfo` reads the export when GDAL has its Parquet driver.
//!
//! The Python checks run the interpreter in `SAT2CAP_PYTHON` (else `python3`), which needs
//! pyarrow, geopandas and shapely; without them they skip with a note, and fail instead when
//! `SAT2CAP_REQUIRE_TOOLS` is set (as CI sets it). DuckDB is checked too when that Python
//! has it. Debian's gdal-bin 3.6 has no Parquet driver: the `ogrinfo` check then skips with
//! a note (whatever `SAT2CAP_REQUIRE_TOOLS` says).
#![cfg(feature = "cli")]

mod parquet_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use parquet_util::*;

/// The Python with pyarrow, geopandas and shapely, or `None` (with a note) when there is
/// none and none is required.
fn python() -> Option<PathBuf> {
    let py =
        std::env::var_os("SAT2CAP_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let found = Command::new(&py)
        .args(["-c", "import pyarrow, geopandas, shapely"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(py);
    }
    assert!(
        std::env::var_os("SAT2CAP_REQUIRE_TOOLS").is_none(),
        "{} has no pyarrow / geopandas / shapely and SAT2CAP_REQUIRE_TOOLS is set: \
         pip install pyarrow geopandas shapely, and set SAT2CAP_PYTHON",
        py.display()
    );
    eprintln!(
        "note: {} lacks pyarrow / geopandas / shapely (set SAT2CAP_PYTHON); the check is skipped",
        py.display()
    );
    None
}

/// Runs `script` with `args`; its stdout.
fn run(py: &Path, dir: &Path, script: &str, args: &[&str]) -> String {
    let o = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Reads c.parquet (float16) and c32.parquet (float32) against want.json (the database's
/// items as Rust reads them).
const READ_EXPORT: &str = r#"
import json, sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq, geopandas as gpd, shapely
want = json.load(open("want.json"))
items = {w["id"]: w for w in want["items"]}
f = pq.ParquetFile("c.parquet")
s = f.schema_arrow
assert s.field("id").type == pa.uint64(), s
assert s.field("lon").type == pa.float64() and s.field("lat").type == pa.float64(), s
assert s.field("time").type == pa.timestamp("ms", tz="UTC"), s
assert s.field("payload").type == pa.string(), s
assert s.field("embedding").type == pa.list_(pa.field("item", pa.float16(), nullable=False), 8), s
assert s.field("geometry").type == pa.binary(), s
assert [c.name for c in s.field("bbox").type] == ["xmin", "ymin", "xmax", "ymax"], s
md = f.metadata.metadata
geo = json.loads(md[b"geo"])
assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry", geo
g = geo["columns"]["geometry"]
assert g["encoding"] == "WKB" and "crs" not in g, g
assert g["geometry_types"] == ["Point", "Polygon", "MultiPolygon"], g
assert g["covering"]["bbox"]["xmin"] == ["bbox", "xmin"], g
meta = json.loads(md[b"sat2cap"])
assert meta["dim"] == 8 and meta["rows"] == 600 and meta["collection"] == "c", meta
assert meta["embedding"] == {"column": "embedding", "type": "float16", "normalisation": "l2"}, meta
assert meta["model"]["encoder"] == "sat2cap-overhead" and meta["model"]["dim"] == 8, meta
assert meta["properties"] == want["properties"], meta
df = gpd.read_parquet("c.parquet")
assert df.crs.equals("OGC:CRS84") and df.crs.to_epsg() in (None, 4326), df.crs
assert len(df) == 600 and set(df["id"]) == set(items)
assert shapely.is_valid(df.geometry.values).all()
t = pq.read_table("c.parquet")
bbox = t.column("bbox").to_pylist()
for k, row in enumerate(df.itertuples()):
    w = items[row.id]
    assert (row.lon, row.lat) == (w["lon"], w["lat"]), (row, w)
    bits = np.array(row.embedding, dtype=np.float16).view(np.uint16).tolist()
    assert bits == w["bits"], (row.id, bits, w["bits"])
    secs = None if row.time is None or str(row.time) == "NaT" else int(row.time.timestamp())
    assert secs == w["time"], (row.id, row.time, w["time"])
    p = None if row.payload is None or (isinstance(row.payload, float)) else row.payload
    assert p == w["payload"], (row.id, row.payload, w["payload"])
    geom = row.geometry
    fp = json.loads(p).get("footprint") if p and p.startswith("{") else None
    if fp is None:
        assert geom.geom_type == "Point" and (geom.x, geom.y) == (w["lon"], w["lat"]), geom
        assert bbox[k] == {"xmin": w["lon"], "ymin": w["lat"], "xmax": w["lon"], "ymax": w["lat"]}
    elif fp[0] < fp[2]:
        assert geom.geom_type == "Polygon" and geom.bounds == tuple(fp), (geom, fp)
        assert shapely.is_ccw(geom.exterior), geom
        assert list(bbox[k].values()) == fp
    else:
        assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2, geom
        assert geom.geoms[0].bounds == (fp[0], fp[1], 180.0, fp[3]), geom
        assert geom.geoms[1].bounds == (-180.0, fp[1], fp[2], fp[3]), geom
        assert list(bbox[k].values()) == [-180.0, fp[1], 180.0, fp[3]]
t32 = pq.read_table("c32.parquet")
assert t32.schema.field("embedding").type.value_type == pa.float32()
a = np.array(t.column("embedding").to_pylist(), dtype=np.float16).astype(np.float32)
b = np.array(t32.column("embedding").to_pylist(), dtype=np.float32)
assert (a == b).all()
try:
    import duckdb
    n, top = duckdb.connect().execute("select count(*), max(id) from read_parquet('c.parquet')").fetchall()[0]
    assert (n, top) == (600, 2**64 - 1), (n, top)
    print("duckdb ok")
except ImportError:
    pass
print("ok")
"#;

#[test]
fn pyarrow_and_geopandas_read_the_export() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rich_db(&d.join("db"));
    ok(
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
    );
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
    let (rows, props) = contents(&d.join("db"), "c");
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(id, (bits, lat, lon, time, payload))| {
            serde_json::json!({"id": id, "bits": bits, "lat": f64::from_bits(*lat),
                "lon": f64::from_bits(*lon), "time": time, "payload": payload})
        })
        .collect();
    let want = serde_json::json!({"items": items, "properties": props});
    std::fs::write(d.join("want.json"), want.to_string()).unwrap();
    let out = run(&py, d, READ_EXPORT, &[]);
    assert!(out.ends_with("ok\n"), "{out}");
}

/// Writes files as other tools do: geopandas (points, no id, `vector` of float64, zoned
/// times, an extra column), pyarrow (lon / lat, fixed-size float32, int64 seconds, zstd),
/// geopandas polygons with the bbox covering and named columns.
const WRITE_OTHERS: &str = r#"
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq, geopandas as gpd, shapely
rng = np.random.default_rng(5)
v = [rng.standard_normal(4) for _ in range(3)]
times = pd.to_datetime(["2023-06-01T10:00:00", None, "1969-12-31T23:59:59"], format="ISO8601").tz_localize("Europe/Zurich")
g = gpd.GeoDataFrame({"name": ["a", "b", "c"], "vector": v, "time": times},
    geometry=[shapely.Point(6.5, 46.25), shapely.Point(-179.5, 0), shapely.Point(179.75, -10)], crs="EPSG:4326")
g.to_parquet("gpd.parquet")
t = pa.table({
    "id": pa.array([5, 6, 7], pa.int64()),
    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(v).astype(np.float32)), 4),
    "lat": [1.5, 2.5, 3.5], "lon": [10.0, 20.0, 30.0],
    "time": pa.array([0, None, 86400], pa.int64()),
    "payload": pa.array(['{"k": 1}', None, "text"], pa.large_string()),
})
pq.write_table(t, "pa.parquet", compression="zstd")
p = gpd.GeoDataFrame({"tile_id": np.array([40, 41], dtype=np.uint32),
    "clip": [np.float32([1, 0, 0, 0]), np.float32([0, 0, 3, 4])],
    "label": ["x", "y"], "day": pd.to_datetime(["2020-01-02", "2020-01-03"])},
    geometry=[shapely.box(6, 46, 7, 47), shapely.box(-10, -5, -8, -3)], crs="OGC:CRS84")
p.to_parquet("poly.parquet", write_covering_bbox=True, compression="zstd", schema_version="1.1.0")
print("ok")
"#;

#[test]
fn files_geopandas_and_pyarrow_write_import() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(&py, d, WRITE_OTHERS, &[]);
    assert!(out.ends_with("ok\n"), "{out}");
    let pt = |r: &(Vec<u16>, u64, u64, Option<i64>, Option<String>)| {
        (f64::from_bits(r.1), f64::from_bits(r.2), r.3, r.4.clone())
    };
    let j = ok(
        d,
        &[
            "import",
            "--db",
            "a",
            "--collection",
            "c",
            "--geoparquet",
            "gpd.parquet",
            "--json",
        ],
    );
    assert!(
        j.contains(r#""ids_are_row_numbers":true"#) && j.contains(r#""ignored_columns":["name"]"#),
        "{j}"
    );
    let (a, _) = contents(&d.join("a"), "c");
    assert_eq!(pt(&a[&0]), (46.25, 6.5, Some(1_685_606_400), None));
    assert_eq!(pt(&a[&1]), (0.0, -179.5, None, None));
    assert_eq!(pt(&a[&2]), (-10.0, 179.75, Some(-3_601), None));

    ok(
        d,
        &[
            "import",
            "--db",
            "b",
            "--collection",
            "c",
            "--geoparquet",
            "pa.parquet",
        ],
    );
    let (b, _) = contents(&d.join("b"), "c");
    assert_eq!(pt(&b[&5]), (1.5, 10.0, Some(0), Some(r#"{"k": 1}"#.into())));
    assert_eq!(pt(&b[&6]), (2.5, 20.0, None, None));
    assert_eq!(pt(&b[&7]), (3.5, 30.0, Some(86_400), Some("text".into())));
    // The same vectors from float64 (geopandas) and float32 (pyarrow) store alike.
    assert_eq!(a[&0].0, b[&5].0);

    let args = [
        "import",
        "--db",
        "p",
        "--collection",
        "c",
        "--geoparquet",
        "poly.parquet",
        "--id-column",
        "tile_id",
        "--vector-column",
        "clip",
        "--payload-column",
        "label",
        "--time-column",
        "day",
        "--json",
    ];
    let j = ok(d, &args);
    assert!(!j.contains("ignored_columns"), "{j}");
    let (p, _) = contents(&d.join("p"), "c");
    assert_eq!(
        pt(&p[&40]),
        (46.5, 6.5, Some(1_577_923_200), Some("x".into()))
    );
    assert_eq!(
        pt(&p[&41]),
        (-4.0, -9.0, Some(1_578_009_600), Some("y".into()))
    );
    let f = |b: u16| half::f16::from_bits(b).to_f32();
    assert_eq!(
        p[&41].0.iter().map(|&b| f(b)).collect::<Vec<_>>(),
        [0.0, 0.0, 0.6, 0.8]
            .iter()
            .map(|&x| half::f16::from_f32(x).to_f32())
            .collect::<Vec<_>>()
    );
}

#[test]
fn ogrinfo_reads_the_export_when_gdal_has_parquet() {
    let has = Command::new("ogrinfo")
        .arg("--formats")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Parquet"));
    if !has {
        eprintln!("note: ogrinfo missing or without the Parquet driver (Debian's gdal-bin 3.6 has none); skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rich_db(&d.join("db"));
    ok(
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
    );
    let o = Command::new("ogrinfo")
        .args(["-ro", "-so", "-al", "c.parquet"])
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("Feature Count: 600"), "{text}");
    assert!(text.contains("payload: String"), "{text}");
}
