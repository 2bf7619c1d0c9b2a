//! A tile folder encoded into shards, one task a quadkey tile: the catalog holds exactly the
//! rows a single `ingest-tiles` into one database gives (ids, locations, times, payloads,
//! vectors), and a failed run leaves no folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sat2cap::jobs::TileOptions;
use sat2cap::jobs::{ingest_tiles, render_overhead, IngestOptions, LandClass, Model, ModelOptions};
use sat2cap::{Db, OpenOptions};
use sat2cap_dist::Catalog;

use super::text;

/// Rows as (id, lat, lon, time, payload, vector bits).
type Rows = BTreeMap<u64, (u64, u64, Option<i64>, Option<String>, Vec<u16>)>;

/// 6 x 6 tiles of 0.01 degrees named `{lat}_{lon}.png` around (0, 0), so that quadkeys of
/// every level split them, a file that is not an image (ignored) and a tile whose key
/// repeats another's.
pub fn tile_folder(root: &Path) -> PathBuf {
    let dir = root.join("tiles");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..36u64 {
        let (r, c) = ((i / 6) as f64, (i % 6) as f64);
        let (lat, lon) = (-0.025 + 0.01 * r, -0.025 + 0.01 * c);
        let class = LandClass::ALL[(i % 4) as usize];
        render_overhead(class, i, 64)
            .save(dir.join(format!("{lat:.3}_{lon:.3}.png")))
            .unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not a tile").unwrap();
    // A second file with the key of another: skipped by every ingest, taking no id.
    std::fs::copy(dir.join("0.005_0.005.png"), dir.join("0.005_0.005.jpg")).unwrap();
    dir
}

fn rows_of(db: &Db, collection: &str, rows: &mut Rows) {
    let snap = db.snapshot();
    let coll = snap.collection(collection).unwrap();
    for item in coll.iter() {
        let item = item.unwrap();
        let row = (
            item.point.lat().to_bits(),
            item.point.lon().to_bits(),
            item.time,
            item.payload.map(str::to_string),
            item.vector.iter().map(|v| v.to_bits()).collect(),
        );
        assert!(rows.insert(item.id, row).is_none(), "id {} twice", item.id);
    }
}

/// The rows of every shard of a catalog.
pub fn catalog_rows(cat: &Catalog) -> Rows {
    let mut rows = Rows::new();
    for i in 0..cat.shards.len() {
        rows_of(&cat.open_shard(i).unwrap(), &cat.collection, &mut rows);
    }
    rows
}

/// The rows a single ingest of `dir` into a new database gives.
fn single_rows(dir: &Path, db_dir: &Path, wall: Option<&str>) -> Rows {
    let model = Model::load(&ModelOptions {
        random: true,
        tiny: true,
        ..ModelOptions::default()
    })
    .unwrap();
    let (time, wall) = match wall.map(|w| sat2cap::time::parse_wall(w).unwrap()) {
        Some((t, w)) => (Some(t), Some(w)),
        None => (None, None),
    };
    let mut db = Db::open(db_dir, OpenOptions::create_new()).unwrap();
    let opts = TileOptions {
        common: IngestOptions {
            collection: "overhead".into(),
            ..IngestOptions::default()
        },
        time,
        wall,
        tile_deg: None,
        part: None,
    };
    let r = ingest_tiles(&mut db, &model, dir, &opts, &sat2cap::Silent).unwrap();
    assert_eq!(r.added, 36);
    let mut rows = Rows::new();
    rows_of(&db, "overhead", &mut rows);
    rows
}

/// `sat2cap-dist ingest-tiles` with the tiny random model.
pub fn dist_ingest(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sat2cap-dist"))
        .arg("ingest-tiles")
        .args(args)
        .env("SAT2CAP_TINY_MODEL", "1")
        .output()
        .unwrap()
}

#[test]
fn an_ingest_into_shards_holds_the_single_ingest_rows() {
    let root = tempfile::tempdir().unwrap();
    let dir = tile_folder(root.path());
    let d = dir.to_str().unwrap();
    for (name, wall) in [("plain", None), ("dated", Some("2023-06-21T12:00:00"))] {
        let want = single_rows(&dir, &root.path().join(format!("{name}.db")), wall);
        let out = root.path().join(format!("{name}-sharded"));
        let o = out.to_str().unwrap();
        let mut args = vec![d, o, "--level", "6", "--random-weights", "--json"];
        if let Some(w) = wall {
            args.extend(["--datetime", w]);
        }
        let r = dist_ingest(&args);
        assert!(r.status.success(), "{}", text(&r.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(summary["rows"], 36);
        let cat = Catalog::open(&out).unwrap();
        assert!(cat.shards.len() >= 4, "{} shards", cat.shards.len());
        assert_eq!(cat.shards.iter().all(|s| s.times.is_some()), wall.is_some());
        assert!(cat.properties.contains_key(sat2cap::jobs::MODEL_PROPERTY));
        let got = catalog_rows(&cat);
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            (0..36).collect::<Vec<_>>()
        );
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_failed_ingest_leaves_no_catalog() {
    let root = tempfile::tempdir().unwrap();
    let dir = tile_folder(root.path());
    let d = dir.to_str().unwrap();
    let out = root.path().join("out");
    let o = out.to_str().unwrap();
    // A tile that does not decode fails its shard's task, and so the whole ingest.
    std::fs::write(dir.join("0.015_0.015.png"), b"not a png").unwrap();
    let r = dist_ingest(&[d, o, "--level", "6", "--random-weights"]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("0.015_0.015.png"),
        "{}",
        text(&r.stderr)
    );
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // With --skip-bad it is left out and said; the other 35 tiles are written.
    let r = dist_ingest(&[
        d,
        o,
        "--level",
        "6",
        "--random-weights",
        "--skip-bad",
        "--json",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("left out: "),
        "{}",
        text(&r.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(summary["rows"], 35);
    assert_eq!(summary["failed"].as_array().unwrap().len(), 1);
    let rows = catalog_rows(&Catalog::open(&out).unwrap());
    assert_eq!(rows.len(), 35);
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_file(dir.join("0.015_0.015.png")).unwrap();
    for (args, want) in [
        (vec![d, o, "--level", "6"], "--random-weights"),
        (
            vec![d, o, "--level", "30", "--random-weights"],
            "--level 30",
        ),
        (
            vec!["/nonexistent/tiles", o, "--level", "2", "--random-weights"],
            "/nonexistent/tiles",
        ),
        (
            vec![
                d,
                o,
                "--level",
                "2",
                "--random-weights",
                "--datetime",
                "noon",
            ],
            "--datetime",
        ),
        (
            vec![d, d, "--level", "2", "--random-weights"],
            "already exists",
        ),
    ] {
        let r = dist_ingest(&args);
        let e = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!out.exists());
    }
}
