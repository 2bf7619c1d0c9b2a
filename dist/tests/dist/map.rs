//! Maps over shards: each shard scores its tiles, the tiles are gathered and drawn as one
//! map, and the files are byte for byte those the single-database map job writes.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::jobs::{map, MapRequest, Model, ModelOptions};
use sat2cap::{BBox, Db, Filter, NewItem, OpenOptions, Point};
use sat2cap_dist::shard::{shard, ShardOptions};
use sat2cap_dist::{Catalog, MapSpec, Region};

use super::{runtime, text};

/// The tiny text encoder's width.
const DIM: usize = 512;
/// The map's outputs, one per extension.
pub const OUTPUTS: [&str; 6] = ["png", "tif", "geojson", "csv", "pgw", "prj"];

/// A 24 x 24 grid of 0.01-degree tiles around (0, 0), so that quadkeys of every level split
/// it; every fifth tile has no payload (its footprint is inferred), the others name theirs.
/// Sharded at level 5 into `dir/sharded`.
pub fn map_fixture(dir: &Path) -> (PathBuf, Catalog) {
    let src = dir.join("all.db");
    let mut db = Db::open(&src, OpenOptions::create_new()).unwrap();
    db.create_collection("overhead", DIM).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for i in 0..576u64 {
        let (r, c) = ((i / 24) as f64, (i % 24) as f64);
        let (lat, lon) = (-0.115 + 0.01 * r, -0.115 + 0.01 * c);
        let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
        let payload = format!(
            r#"{{"path":"/nowhere/{i}.png","footprint":[{},{},{},{}]}}"#,
            lon - 0.005,
            lat - 0.005,
            lon + 0.005,
            lat + 0.005
        );
        let item = NewItem {
            id: 1000 + i * 3,
            vector: &v,
            point: Point::new(lat, lon).unwrap(),
            time: Some(1_700_000_000 + i as i64 * 3600),
            payload: (i % 5 != 0).then_some(payload.as_str()),
        };
        db.add("overhead", item).unwrap();
    }
    db.commit().unwrap();
    drop(db);
    let opts = ShardOptions {
        collection: None,
        level: 5,
    };
    let cat = shard(&src, &dir.join("sharded"), &opts, &sat2cap::Silent).unwrap();
    assert!(cat.shards.len() >= 4, "{} shards", cat.shards.len());
    (src, cat)
}

fn tiny_model() -> Model {
    Model::load(&ModelOptions {
        random: true,
        tiny: true,
        ..ModelOptions::default()
    })
    .unwrap()
}

/// The single-database map job's files for `prompts` within `region`, under `out`.
pub fn single_map(db: &Path, prompts: &[&str], region: Filter, out: &Path) {
    let db = Db::open(db, OpenOptions::read_only()).unwrap();
    let req = MapRequest {
        collection: "overhead".into(),
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        region,
        time: None,
        hours: Vec::new(),
        out: out.to_path_buf(),
        mosaic: false,
        web: None,
        basemap: None,
    };
    map(&db.snapshot(), || Ok(tiny_model()), &req, &sat2cap::Silent).unwrap();
}

/// `sat2cap-dist map` with the tiny random model.
pub fn dist_map(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sat2cap-dist"))
        .arg("map")
        .args(args)
        .arg("--random-weights")
        .env("SAT2CAP_TINY_MODEL", "1")
        .output()
        .unwrap()
}

/// Every output of the map at prefix `a` equals that at prefix `b`, byte for byte.
pub fn same_files(a: &Path, b: &Path) {
    for ext in OUTPUTS {
        let (fa, fb) = (a.with_extension(ext), b.with_extension(ext));
        let (x, y) = (std::fs::read(&fa).unwrap(), std::fs::read(&fb).unwrap());
        assert!(!x.is_empty(), "{} is empty", fa.display());
        assert!(x == y, "{} and {} differ", fa.display(), fb.display());
    }
}

#[test]
fn a_map_over_shards_is_the_single_database_map() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (src, cat) = map_fixture(d);
    let catalog = cat.dir.to_str().unwrap().to_string();
    let prompts = ["a lake", "people fishing on a boat"];
    // Every tile, a box that holds some shards' tiles and rules the others out, and an
    // area of interest with a hole.
    let aoi = r#"{"type":"Polygon","coordinates":[[[-0.2,-0.2],[0.03,-0.2],[0.03,0.03],[-0.2,0.03],[-0.2,-0.2]],[[-0.05,-0.05],[0.0,-0.05],[0.0,0.0],[-0.05,0.0],[-0.05,-0.05]]]}"#;
    let aoi_file = d.join("aoi.geojson");
    std::fs::write(&aoi_file, aoi).unwrap();
    let area = sat2cap::jobs::parse_area(aoi.as_bytes()).unwrap();
    let bbox = [-0.2, -0.2, -0.031, 0.048];
    let cases = [
        ("all", Filter::new(), vec![]),
        (
            "box",
            Filter::new().bbox(BBox::new(bbox[0], bbox[1], bbox[2], bbox[3]).unwrap()),
            vec![
                "--bbox".to_string(),
                format!("{},{},{},{}", bbox[0], bbox[1], bbox[2], bbox[3]),
            ],
        ),
        (
            "aoi",
            Filter::new().and(area),
            vec!["--aoi".to_string(), aoi_file.to_str().unwrap().to_string()],
        ),
    ];
    for (name, region, extra) in cases {
        let want = d.join(format!("single-{name}"));
        single_map(&src, &prompts, region, &want);
        let got = d.join(format!("dist-{name}"));
        let out = got.to_str().unwrap();
        let mut args = vec![
            catalog.as_str(),
            prompts[0],
            prompts[1],
            "--out",
            out,
            "--json",
        ];
        args.extend(extra.iter().map(String::as_str));
        let r = dist_map(&args);
        assert!(r.status.success(), "{}", text(&r.stderr));
        let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(report["panels"], 2);
        let tiles = report["tiles"].as_u64().unwrap();
        assert_eq!(tiles == 576, name == "all", "{tiles} tiles");
        same_files(&want, &got);
    }
    // The library's map over shards returns each tile once, with the single database's
    // scores.
    let model = tiny_model();
    let queries = sat2cap::jobs::Embedder::embed_text(&model, &prompts).unwrap();
    let spec = MapSpec {
        queries: queries.clone(),
        region: Region::default(),
        at: None,
    };
    let rt = runtime();
    let ctx = datafusion::prelude::SessionContext::new();
    let mut got = rt
        .block_on(sat2cap_dist::plan::map(&cat, spec, ctx.task_ctx()))
        .unwrap();
    got.sort_by_key(|t| t.id);
    let db = Db::open(&src, OpenOptions::read_only()).unwrap();
    let mut want =
        sat2cap::jobs::score_tiles(&db.snapshot(), "overhead", &Filter::new(), &queries).unwrap();
    want.sort_by_key(|t| t.id);
    assert_eq!(got, want);
    assert_eq!(
        got.iter().filter(|t| t.footprint.is_none()).count(),
        576 / 5 + 1
    );
}

#[test]
fn bad_maps_are_refused_before_a_shard_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, cat) = map_fixture(d);
    let catalog = cat.dir.to_str().unwrap();
    let out = d.join("m");
    let out = out.to_str().unwrap();
    for (args, want) in [
        (
            vec![catalog, "a", "a", "--out", out],
            "prompt \"a\" is given twice",
        ),
        (
            vec![catalog, "a", "--out", out, "--bbox", "50,50,51,51"],
            "no tiles of collection 'overhead' in the region",
        ),
        (
            vec![catalog, "a", "--out", out, "--bbox", "1,95,2,96"],
            "--bbox",
        ),
        (
            vec![
                catalog,
                "a",
                "--out",
                out,
                "--aoi",
                "/nonexistent/aoi.geojson",
            ],
            "--aoi /nonexistent/aoi.geojson",
        ),
        (
            vec![catalog, "a", "--out", "/nonexistent/dir/m"],
            "/nonexistent/dir",
        ),
    ] {
        let r = dist_map(&args);
        let e = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    for ext in OUTPUTS {
        assert!(!d.join(format!("m.{ext}")).exists());
    }
}

/// At a date and hours each shard's tiles are re-encoded with the dynamic encoder where the
/// shard lives: the files equal the single-database map's at the same date and hours.
#[test]
fn a_map_at_a_date_and_hours_is_the_single_database_map() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let tiles = super::ingest::tile_folder(d);
    let src = d.join("all.db");
    {
        let mut db = Db::open(&src, OpenOptions::create_new()).unwrap();
        let (t, w) = sat2cap::time::parse_wall("2023-06-21T12:00:00").unwrap();
        let opts = sat2cap::jobs::TileOptions {
            common: sat2cap::jobs::IngestOptions {
                collection: "overhead".into(),
                ..Default::default()
            },
            time: Some(t),
            wall: Some(w),
            tile_deg: None,
            part: None,
        };
        sat2cap::jobs::ingest_tiles(&mut db, &tiny_model(), &tiles, &opts, &sat2cap::Silent)
            .unwrap();
    }
    let opts = ShardOptions {
        collection: None,
        level: 6,
    };
    let cat = shard(&src, &d.join("sharded"), &opts, &sat2cap::Silent).unwrap();
    assert!(cat.shards.len() >= 4);
    let catalog = cat.dir.to_str().unwrap();
    let prompts = ["a lake", "a town"];
    for (name, datetime, hours) in [
        ("dated", Some("2023-01-05T08:00:00"), vec![]),
        ("hours", None, vec![6u32, 18]),
    ] {
        let want = d.join(format!("single-{name}"));
        let db = Db::open(&src, OpenOptions::read_only()).unwrap();
        let req = MapRequest {
            collection: "overhead".into(),
            prompts: prompts.iter().map(|p| p.to_string()).collect(),
            region: Filter::new(),
            time: datetime.map(|t| sat2cap::time::parse_wall(t).unwrap().1),
            hours: hours.clone(),
            out: want.clone(),
            mosaic: false,
            web: None,
            basemap: None,
        };
        map(&db.snapshot(), || Ok(tiny_model()), &req, &sat2cap::Silent).unwrap();
        let got = d.join(format!("dist-{name}"));
        let hours_arg = hours
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            catalog,
            prompts[0],
            prompts[1],
            "--out",
            got.to_str().unwrap(),
            "--json",
        ];
        if let Some(t) = datetime {
            args.extend(["--datetime", t]);
        }
        if !hours.is_empty() {
            args.extend(["--hours", hours_arg.as_str()]);
        }
        let r = dist_map(&args);
        assert!(r.status.success(), "{}", text(&r.stderr));
        let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(report["panels"], 2 * hours.len().max(1));
        assert_eq!(report["tiles"], 36);
        same_files(&want, &got);
    }
    // The stored vectors give another map than the re-encoded ones.
    let stored = d.join("dist-stored");
    let r = dist_map(&[
        catalog,
        prompts[0],
        prompts[1],
        "--out",
        stored.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let csv = |p: &Path| std::fs::read(p.with_extension("csv")).unwrap();
    assert_ne!(csv(&stored), csv(&d.join("dist-dated")));
}
