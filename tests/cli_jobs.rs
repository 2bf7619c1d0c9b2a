//! The user's jobs end to end, driving the real `sat2cap` binary on small generated data with
//! seeded random TINY encoders (`SAT2CAP_TINY_MODEL=1`, see `sat2cap::jobs::model`).
#![cfg(feature = "encoders")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sat2cap::jobs::{render_ground, render_overhead, LandClass};
use sat2cap::{IndexOptions, OpenOptions};

fn sat2cap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sat2cap"))
        .args(args)
        .env("SAT2CAP_TINY_MODEL", "1")
        .env_remove("SAT2CAP_WEIGHTS")
        .output()
        .expect("run sat2cap")
}

fn ok(args: &[&str]) -> String {
    let o = sat2cap(args);
    assert!(
        o.status.success(),
        "sat2cap {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// Runs a command that must fail with `code`; returns stderr (one line).
fn fails(args: &[&str], code: i32) -> String {
    let o = sat2cap(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(code), "sat2cap {args:?}: {err}");
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(
        last.starts_with("sat2cap: ") || last.starts_with("error:"),
        "{err}"
    );
    last
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// 3 x 3 tiles named {lat}_{lon}.png, 9 photos + photos.csv (one bad row), one bad image,
/// captions, pairs.csv.
fn make_data(root: &Path) -> (PathBuf, PathBuf) {
    let tiles = root.join("tiles");
    let photos = root.join("photos");
    std::fs::create_dir_all(&tiles).unwrap();
    std::fs::create_dir_all(&photos).unwrap();
    let mut csv = String::from("path,lat,lon,datetime\n");
    let mut pairs = String::from("overhead,ground,lat,lon,datetime\n");
    let mut i = 0;
    for r in 0..3 {
        for c in 0..3 {
            let (lat, lon) = (46.50 + 0.01 * r as f64, 6.60 + 0.01 * c as f64);
            let class = LandClass::ALL[i % 4];
            let name = format!("{lat:.2}_{lon:.2}.png");
            render_overhead(class, i as u64, 64)
                .save(tiles.join(&name))
                .unwrap();
            let g = format!("p{i}.png");
            render_ground(class, i as u64, 48, 32)
                .save(photos.join(&g))
                .unwrap();
            csv.push_str(&format!("{g},{lat},{lon},2023-06-21T12:00:00\n"));
            pairs.push_str(&format!(
                "tiles/{name},photos/{g},{lat},{lon},2023-06-21T12:00:00\n"
            ));
            i += 1;
        }
    }
    std::fs::write(photos.join("photos.csv"), csv).unwrap();
    std::fs::write(root.join("pairs.csv"), pairs).unwrap();
    std::fs::write(
        root.join("captions.txt"),
        "# a caption bank\na lake\na forest\nfields\na town\n",
    )
    .unwrap();
    (tiles, photos)
}

/// Adds an unreadable image with a valid name to the tiles of [`make_data`], and a CSV row
/// with a bad latitude (line 11) to its photos.
fn add_bad_inputs(tiles: &Path, photos: &Path) {
    std::fs::write(tiles.join("46.53_6.63.png"), b"not a png").unwrap();
    let csv = photos.join("photos.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("p0.png,123.0,6.6,2023-06-21T12:00:00\n");
    std::fs::write(csv, text).unwrap();
}

#[test]
fn demo_runs_end_to_end_and_writes_a_map() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let o = out.to_str().unwrap();
    let stdout = ok(&["demo", "--out", o, "--grid", "4", "--tile-px", "64"]);
    assert_eq!(stdout.matches("RANDOM encoders").count(), 1, "{stdout}");
    assert!(
        stdout.contains("| step | items | seconds | items/s |"),
        "{stdout}"
    );
    assert!(stdout.contains("retrieval"), "{stdout}");
    let png = image::open(out.join("map.png")).expect("PNG decodes");
    let geo = json(&std::fs::read_to_string(out.join("map.geojson")).unwrap());
    let features = geo["features"].as_array().unwrap();
    assert_eq!(features.len(), 16, "one feature per tile");
    assert_eq!(
        features[0]["properties"]["panels"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let csv = std::fs::read_to_string(out.join("map.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 16,
        "header + 2 prompts x 16 tiles"
    );
    // Two panels side by side: wider than tall.
    assert!(
        png.width() > 2 * 512 && png.height() > 100,
        "{}x{}",
        png.width(),
        png.height()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("map.pgw"))
            .unwrap()
            .lines()
            .count(),
        6
    );
    // Running it again replaces the database instead of failing.
    ok(&["demo", "--out", o, "--grid", "2", "--tile-px", "64"]);
}

#[test]
fn ingest_map_search_ground_describe_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiles, photos) = make_data(tmp.path());
    add_bad_inputs(&tiles, &photos);
    let db = tmp.path().join("db");
    let (db, tiles, photos) = (
        db.to_str().unwrap(),
        tiles.to_str().unwrap(),
        photos.to_str().unwrap(),
    );
    let csv = tmp.path().join("photos/photos.csv");
    let rw = "--random-weights";

    // Without weights and without --random-weights: refused, nothing created.
    let e = fails(&["ingest-tiles", tiles, "--db", db], 2);
    assert!(e.contains("--weights"), "{e}");
    assert!(!Path::new(db).exists());

    // One bad image: the job fails naming it (exit 2), and no database is left behind ...
    let e = fails(&["ingest-tiles", tiles, "--db", db, rw], 2);
    assert!(
        e.contains("46.53_6.63.png: cannot decode image") && e.contains("--skip-bad"),
        "{e}"
    );
    assert!(
        !Path::new(db).exists(),
        "a failed first ingest leaves nothing"
    );
    // ... or, with --skip-bad, it is reported and the other 9 stored.
    let o = sat2cap(&[
        "ingest-tiles",
        tiles,
        "--db",
        db,
        rw,
        "--json",
        "--skip-bad",
        "--datetime",
        "2023-06-21T12:00:00",
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("46.53_6.63.png"));
    let r = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(r["added"], 9);
    assert_eq!(r["failed"].as_array().unwrap().len(), 1);

    // One bad CSV row: the job fails naming its line, the database keeps what it had ...
    let meta = csv.to_str().unwrap();
    let e = fails(
        &["ingest-ground", photos, "--meta", meta, "--db", db, rw],
        2,
    );
    assert!(e.contains("photos.csv line 11: latitude 123"), "{e}");
    assert!(!e.contains("no such"), "{e}");
    // ... or, with --skip-bad, it is reported and the other 9 stored.
    let o = sat2cap(&[
        "ingest-ground",
        photos,
        "--meta",
        meta,
        "--db",
        db,
        rw,
        "--json",
        "--skip-bad",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 11"));
    assert_eq!(json(&String::from_utf8_lossy(&o.stdout))["added"], 9);
    let caps = tmp.path().join("captions.txt");
    assert!(
        ok(&["ingest-text", caps.to_str().unwrap(), "--db", db, rw]).contains("added 4 captions")
    );

    // Map of two prompts over a box holding 6 of the 9 tiles.
    let prefix = tmp.path().join("m");
    let p = prefix.to_str().unwrap();
    let files = json(&ok(&[
        "map",
        "a lake",
        "a town",
        "--db",
        db,
        "--bbox",
        "6.595,46.495,6.615,46.515",
        "--out",
        p,
        "--mosaic",
        rw,
        "--json",
    ]));
    let png = image::open(format!("{p}.png")).unwrap();
    assert_eq!(
        (png.width(), png.height()),
        (
            files["width"].as_u64().unwrap() as u32,
            files["height"].as_u64().unwrap() as u32
        )
    );
    let geo = json(&std::fs::read_to_string(format!("{p}.geojson")).unwrap());
    let feats = geo["features"].as_array().unwrap();
    assert_eq!(feats.len(), 4, "tiles centred inside the box");
    for f in feats {
        let n = f["properties"]["norm_similarity"].as_f64().unwrap();
        let s = f["properties"]["similarity"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&n) && (-1.001..=1.001).contains(&s));
    }
    let rows = std::fs::read_to_string(format!("{p}.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2 * 4);

    // Search with a bbox: every hit inside, sorted by score.
    let hits = json(&ok(&[
        "search",
        "--db",
        db,
        "--text",
        "a forest",
        "--bbox",
        "6.605,46.505,6.625,46.525",
        "--k",
        "10",
        rw,
        "--json",
    ]));
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 4);
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    assert!(hits
        .iter()
        .all(|h| h["lon"].as_f64().unwrap() >= 6.605 && h["lat"].as_f64().unwrap() >= 46.505));
    // Radius filter.
    let hits = json(&ok(&[
        "search",
        "--db",
        db,
        "--text",
        "x",
        "--lon",
        "6.60",
        "--lat",
        "46.50",
        "--radius-km",
        "0.5",
        rw,
        "--json",
    ]));
    assert_eq!(hits.as_array().unwrap().len(), 1);

    // Overhead -> ground within 1.2 km of tile 0 (46.50, 6.60): photos 0, 1 (1.1 km... ) only nearby ones.
    let g = json(&ok(&[
        "ground",
        "0",
        "--db",
        db,
        "--radius-km",
        "1.0",
        "--k",
        "9",
        rw,
        "--json",
    ]));
    let g = g.as_array().unwrap();
    assert!(!g.is_empty() && g.len() < 9, "{g:?}");
    // describe: two captions from the bank.
    let d = json(&ok(&[
        "describe", "0", "--db", db, "--k", "2", rw, "--json",
    ]));
    assert_eq!(d.as_array().unwrap().len(), 2);
    assert!(d[0]["caption"].as_str().unwrap().len() > 2);

    // Retrieval: 9 pairs; random encoders include a (random) dynamic encoder -> two rows.
    let pairs = tmp.path().join("pairs.csv");
    let e = json(&ok(&[
        "eval-retrieval",
        "--pairs",
        pairs.to_str().unwrap(),
        rw,
        "--json",
    ]));
    let e = e.as_array().unwrap();
    // Without and with metadata, each both ways.
    let shape: Vec<(bool, &str)> = e
        .iter()
        .map(|r| {
            (
                r["metadata"].as_bool().unwrap(),
                r["direction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (false, "overhead->ground"),
            (false, "ground->overhead"),
            (true, "overhead->ground"),
            (true, "ground->overhead")
        ]
    );
    for r in e {
        assert_eq!(r["gallery"], 9);
        for k in ["r_at_1", "r_at_5", "r_at_10"] {
            assert!((0.0..=1.0).contains(&r[k].as_f64().unwrap()));
        }
        assert_eq!(
            r["r_at_10"], 1.0,
            "gallery of 9: the pair is always in the top 10"
        );
        let m = r["median_rank"].as_f64().unwrap();
        assert!((1.0..=9.0).contains(&m), "{m}");
    }
    // A date and hour for every pair changes the embeddings with metadata only.
    let d = json(&ok(&[
        "eval-retrieval",
        "--pairs",
        pairs.to_str().unwrap(),
        "--date-time",
        "2012-01-05T03:00:00+09:00",
        rw,
        "--json",
    ]));
    assert_eq!(d[0], e[0]);
    assert_eq!(d.as_array().unwrap().len(), 4);
    let e = fails(
        &[
            "eval-retrieval",
            "--pairs",
            pairs.to_str().unwrap(),
            "--date-time",
            "noon",
            rw,
        ],
        2,
    );
    assert!(e.contains("--date-time"), "{e}");

    // Zero-shot classification of tiles, and its accuracy over a labelled CSV.
    let mut tiles: Vec<String> = std::fs::read_dir(tmp.path().join("tiles"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| !p.contains("46.53_6.63.png")) // the one that does not decode
        .collect();
    tiles.sort();
    let mut args = vec!["classify"];
    args.extend(tiles.iter().take(2).map(String::as_str));
    args.extend([
        "--labels",
        "a lake,a forest,a town",
        "--top",
        "2",
        rw,
        "--json",
    ]);
    let c = json(&ok(&args));
    assert_eq!(c.as_array().unwrap().len(), 2);
    assert_eq!(c[0]["labels"].as_array().unwrap().len(), 2);
    let mut csv = String::from("path,label\n");
    for (i, t) in tiles.iter().take(6).enumerate() {
        csv.push_str(&format!(
            "tiles/{},{}\n",
            t.rsplit('/').next().unwrap(),
            ["lake", "forest"][i % 2]
        ));
    }
    csv.push_str("tiles/missing.jpg,lake\n");
    std::fs::write(tmp.path().join("labels.csv"), csv).unwrap();
    let r = json(&ok(&[
        "eval-classify",
        "--data",
        tmp.path().join("labels.csv").to_str().unwrap(),
        rw,
        "--json",
    ]));
    assert_eq!(
        (r["tiles"].as_u64(), r["labels"].as_u64()),
        (Some(6), Some(2))
    );
    assert_eq!(
        r["top5"], 1.0,
        "two labels: the true one is always in the top 5"
    );
    assert_eq!(r["skipped"].as_array().unwrap().len(), 1);
    let e = fails(
        &[
            "eval-classify",
            "--data",
            tmp.path().join("labels.csv").to_str().unwrap(),
            "--labels",
            "lake",
            rw,
        ],
        2,
    );
    assert!(e.contains("'forest' is not among the labels"), "{e}");

    // Caption <-> image retrieval over ground photos.
    let mut csv = String::from("image,caption\n");
    for i in 0..5 {
        csv.push_str(&format!("photos/p{i}.png,photo number {i}\n"));
    }
    std::fs::write(tmp.path().join("captions.csv"), csv).unwrap();
    let r = json(&ok(&[
        "eval-text-retrieval",
        "--pairs",
        tmp.path().join("captions.csv").to_str().unwrap(),
        rw,
        "--json",
    ]));
    for d in ["text_to_image", "image_to_text"] {
        assert_eq!(r[d]["gallery"], 5);
        assert_eq!(r[d]["r_at_5"], 1.0);
    }

    // Bad inputs: one-line errors, right exit codes, nothing half-written.
    let e = fails(&["ingest-tiles", "/no/such/folder", "--db", db, rw], 2);
    assert!(e.contains("does not exist"), "{e}");
    let e = fails(
        &[
            "map",
            "a lake",
            "--db",
            db,
            "--bbox",
            "6.5,46.4,6.7,95",
            "--out",
            p,
            rw,
        ],
        2,
    );
    assert!(e.contains("bbox"), "{e}");
    let q = tmp.path().join("never");
    fails(
        &[
            "map",
            "a lake",
            "--db",
            db,
            "--bbox",
            "1,1,2,2",
            "--out",
            q.to_str().unwrap(),
            rw,
        ],
        2,
    );
    assert!(!tmp.path().join("never.png").exists());
    let e = fails(
        &[
            "search",
            "--db",
            db,
            "--collection",
            "nope",
            "--text",
            "x",
            rw,
        ],
        2,
    );
    assert!(e.contains("unknown collection 'nope'"), "{e}");
    // Maps at hours of a date (dynamic encoder, re-encoding the tiles): one panel per hour.
    let h = tmp.path().join("hours");
    let f = json(&ok(&[
        "map",
        "a lake",
        "--db",
        db,
        "--datetime",
        "2023-06-21T00:00:00",
        "--hours",
        "6,18",
        "--out",
        h.to_str().unwrap(),
        rw,
        "--json",
    ]));
    assert!(image::open(f["png"].as_str().unwrap()).is_ok());
    let geo = json(&std::fs::read_to_string(h.with_extension("geojson")).unwrap());
    assert_eq!(geo["features"].as_array().unwrap().len(), 9);
    assert_eq!(
        geo["features"][0]["properties"]["panels"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let rows = std::fs::read_to_string(h.with_extension("csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2 * 9);
    // The prompt as given; the hour in its own column.
    let mut r = csv::Reader::from_reader(rows.as_bytes());
    let header = r.headers().unwrap().clone();
    assert_eq!((&header[3], &header[4]), ("prompt", "hour"));
    let hours: std::collections::BTreeSet<(String, String)> = r
        .records()
        .map(|rec| rec.unwrap())
        .map(|rec| (rec[3].to_string(), rec[4].to_string()))
        .collect();
    assert_eq!(hours.len(), 2);
    assert!(hours.iter().all(|(p, _)| p == "a lake"), "{hours:?}");
    assert!(hours.iter().any(|(_, h)| h == "6") && hours.iter().any(|(_, h)| h == "18"));
    let e = fails(
        &[
            "map",
            "a lake",
            "--db",
            db,
            "--hours",
            "6,25",
            "--out",
            h.to_str().unwrap(),
            rw,
        ],
        2,
    );
    assert!(e.contains("25"), "{e}");
    let e = fails(&["ground", "999", "--db", db, rw], 2);
    assert!(e.contains("999"), "{e}");
    // A database locked by another writer.
    let held = sat2cap::Db::open(db, OpenOptions::read_write().indexes(IndexOptions::none()))
        .expect("open");
    let e = fails(&["ingest-text", caps.to_str().unwrap(), "--db", db, rw], 1);
    assert!(e.contains("locked"), "{e}");
    drop(held);
    // Reading while nobody writes still works and saw no half-written commit.
    let n = json(&ok(&[
        "search",
        "--db",
        db,
        "--collection",
        "captions",
        "--text",
        "x",
        "--k",
        "100",
        rw,
        "--json",
    ]));
    assert_eq!(n.as_array().unwrap().len(), 4);
}

fn tiny_weights() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoders/tiny")
}

/// Runs `args`; returns its parsed JSON stdout (it must succeed).
fn ok_json(args: &[&str]) -> serde_json::Value {
    json(&ok(args))
}

fn collection_info<'a>(info: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    info["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no collection {name} in {info}"))
}

#[test]
fn reingest_skips_or_replaces_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiles, photos) = make_data(tmp.path());
    let db = tmp.path().join("db");
    let (db, tiles, photos) = (
        db.to_str().unwrap(),
        tiles.to_str().unwrap(),
        photos.to_str().unwrap(),
    );
    let csv = tmp.path().join("photos/photos.csv");
    let csv = csv.to_str().unwrap();
    let caps = tmp.path().join("captions.txt");
    let caps = caps.to_str().unwrap();
    let rw = "--random-weights";

    let r = ok_json(&["ingest-tiles", tiles, "--db", db, rw, "--json"]);
    assert_eq!(
        (r["added"].as_u64(), r["present"].as_u64()),
        (Some(9), Some(0))
    );
    assert_eq!(r["ids"], serde_json::json!([0, 8]));
    // The same tiles again: nothing added, a report, exit 0.
    let out = ok(&["ingest-tiles", tiles, "--db", db, rw]);
    assert!(
        out.contains("added 0 tiles; 9 already present, skipped"),
        "{out}"
    );
    let r = ok_json(&["ingest-tiles", tiles, "--db", db, rw, "--json"]);
    assert_eq!(
        (
            r["added"].as_u64(),
            r["present"].as_u64(),
            r["replaced"].as_u64()
        ),
        (Some(9 - 9), Some(9), Some(0))
    );
    assert_eq!(r["failed"].as_array().unwrap().len(), 0);
    // --replace: re-encoded under the same ids, still 9 tiles.
    let r = ok_json(&["ingest-tiles", tiles, "--db", db, rw, "--replace", "--json"]);
    assert_eq!(
        (r["added"].as_u64(), r["replaced"].as_u64()),
        (Some(0), Some(9))
    );
    // A copy of one tile under a new name is new; the same name in another folder is the
    // same key.
    let more = tmp.path().join("more");
    std::fs::create_dir_all(&more).unwrap();
    std::fs::copy(
        Path::new(tiles).join("46.50_6.60.png"),
        more.join("46.50_6.60.png"),
    )
    .unwrap();
    std::fs::copy(
        Path::new(tiles).join("46.50_6.60.png"),
        more.join("46.55_6.60.png"),
    )
    .unwrap();
    let r = ok_json(&[
        "ingest-tiles",
        more.to_str().unwrap(),
        "--db",
        db,
        rw,
        "--json",
    ]);
    assert_eq!(
        (r["added"].as_u64(), r["present"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(r["ids"], serde_json::json!([9, 9]));

    // Photos: keyed by their path in the CSV.
    let g = |extra: &[&str]| {
        let mut a = vec![
            "ingest-ground",
            photos,
            "--meta",
            csv,
            "--db",
            db,
            rw,
            "--json",
        ];
        a.extend_from_slice(extra);
        ok_json(&a)
    };
    assert_eq!(g(&[])["added"], 9);
    let r = g(&[]);
    assert_eq!(
        (r["added"].as_u64(), r["present"].as_u64()),
        (Some(0), Some(9))
    );
    assert_eq!(g(&["--replace"])["replaced"], 9);

    // Captions: keyed by their text; a repeat within the file counts once.
    std::fs::write(
        tmp.path().join("captions.txt"),
        "a lake\na forest\na lake\nfields\na town\n",
    )
    .unwrap();
    let r = ok_json(&["ingest-text", caps, "--db", db, rw, "--json"]);
    assert_eq!(
        (
            r["added"].as_u64(),
            r["present"].as_u64(),
            r["repeated"].as_u64()
        ),
        (Some(4), Some(0), Some(1))
    );
    let out = ok(&["ingest-text", caps, "--db", db, rw]);
    assert!(
        out.contains("4 already present, skipped") && out.contains("1 repeated in the input"),
        "{out}"
    );

    let info = ok_json(&["info", "--db", db, "--json"]);
    for (name, live) in [("overhead", 10), ("ground", 9), ("captions", 4)] {
        assert_eq!(collection_info(&info, name)["live"], live, "{name}");
    }
    // Search sees each caption once.
    let hits = ok_json(&[
        "search",
        "--db",
        db,
        "--collection",
        "captions",
        "--text",
        "a lake",
        "--k",
        "10",
        rw,
        "--json",
    ]);
    assert_eq!(hits.as_array().unwrap().len(), 4);
}

#[test]
fn the_model_is_recorded_and_other_models_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiles, photos) = make_data(tmp.path());
    let db = tmp.path().join("db");
    let (db, tiles, photos) = (
        db.to_str().unwrap(),
        tiles.to_str().unwrap(),
        photos.to_str().unwrap(),
    );
    let csv = tmp.path().join("photos/photos.csv");
    let csv = csv.to_str().unwrap();
    let caps = tmp.path().join("captions.txt");
    let caps = caps.to_str().unwrap();
    let rw = "--random-weights";
    let real = tiny_weights();
    let real = real.to_str().unwrap();

    ok(&["ingest-tiles", tiles, "--db", db, rw]);
    ok(&["ingest-ground", photos, "--meta", csv, "--db", db, rw]);
    ok(&["ingest-text", caps, "--db", db, rw]);
    // info records the model of each collection.
    let info = ok_json(&["info", "--db", db, "--json"]);
    let random = "random:seed=2307:tiny";
    for (name, encoder) in [
        ("overhead", "sat2cap-overhead"),
        ("ground", "clip-image"),
        ("captions", "clip-text"),
    ] {
        let m = &collection_info(&info, name)["model"];
        assert_eq!(m["encoder"], encoder, "{m}");
        assert_eq!(m["dim"], 512);
        assert_eq!(
            (m["weights"].as_str(), m["clip"].as_str()),
            (Some(random), Some(random))
        );
    }
    let text = ok(&["info", "--db", db]);
    assert!(
        text.contains("model: sat2cap-overhead, 512-d, RANDOM weights (seed 2307, tiny)"),
        "{text}"
    );

    // Real (tiny test) weights: adding to a random-weights collection is refused.
    let e = fails(&["ingest-text", caps, "--db", db, "--weights", real], 2);
    assert!(
        e.contains("collection 'captions' was made by a different model")
            && e.contains("RANDOM weights (seed 2307, tiny)")
            && e.contains("weights crc32c"),
        "{e}"
    );
    let e = fails(&["ingest-tiles", tiles, "--db", db, "--weights", real], 2);
    assert!(e.contains("different model"), "{e}");
    // Another encoder into a collection: refused too.
    let e = fails(
        &[
            "ingest-text",
            caps,
            "--db",
            db,
            "--collection",
            "overhead",
            rw,
        ],
        2,
    );
    assert!(
        e.contains("it holds sat2cap-overhead embeddings, this makes clip-text embeddings"),
        "{e}"
    );
    // ... even with --force-model (it covers other weights of the same encoder only).
    let e = fails(
        &[
            "ingest-text",
            caps,
            "--db",
            db,
            "--collection",
            "overhead",
            rw,
            "--force-model",
        ],
        2,
    );
    assert!(e.contains("sat2cap-overhead embeddings"), "{e}");
    // Queries from another model's CLIP space: refused.
    let e = fails(
        &["search", "--db", db, "--text", "a lake", "--weights", real],
        2,
    );
    assert!(
        e.contains("CLIP space") && e.contains("text encoder"),
        "{e}"
    );
    let out = tmp.path().join("m");
    let e = fails(
        &[
            "map",
            "a lake",
            "--db",
            db,
            "--out",
            out.to_str().unwrap(),
            "--weights",
            real,
        ],
        2,
    );
    assert!(e.contains("CLIP space"), "{e}");
    assert!(!tmp.path().join("m.png").exists());
    let tile = Path::new(tiles).join("46.50_6.60.png");
    let e = fails(
        &[
            "describe",
            tile.to_str().unwrap(),
            "--db",
            db,
            "--weights",
            real,
        ],
        2,
    );
    assert!(e.contains("CLIP space"), "{e}");
    // Tile of one collection against a collection of another model.
    ok(&[
        "ingest-ground",
        photos,
        "--meta",
        csv,
        "--db",
        db,
        "--collection",
        "ground2",
        "--weights",
        real,
    ]);
    let e = fails(&["ground", "0", "--db", db, "--ground", "ground2", rw], 2);
    assert!(
        e.contains("collection 'ground2'") && e.contains("CLIP space"),
        "{e}"
    );
    // The same model still works.
    ok(&["search", "--db", db, "--text", "a lake", rw, "--json"]);
    ok(&["ground", "0", "--db", db, rw, "--json"]);

    // --force-model records the new model.
    let r = ok_json(&[
        "ingest-text",
        caps,
        "--db",
        db,
        "--weights",
        real,
        "--force-model",
        "--replace",
        "--json",
    ]);
    assert_eq!(r["replaced"], 4);
    let info = ok_json(&["info", "--db", db, "--json"]);
    let m = &collection_info(&info, "captions")["model"];
    assert!(m["weights"].as_str().unwrap().starts_with("crc32c:"), "{m}");
    assert_eq!(m["weights"], m["clip"]);

    // A collection without a recorded model (made by `import`): adding is refused without
    // --force-model, searching works with a warning.
    let v: Vec<f32> = (0..3 * 512).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let npy = tmp.path().join("v.npy");
    sat2cap::io::npy::write_npy(&npy, sat2cap::io::npy::NpyDtype::F32, 512, &v).unwrap();
    let pts = tmp.path().join("p.csv");
    std::fs::write(&pts, "id,lat,lon\n0,1,1\n1,2,2\n2,3,3\n").unwrap();
    ok(&[
        "import",
        "--db",
        db,
        "--collection",
        "legacy",
        "--vectors",
        npy.to_str().unwrap(),
        "--points",
        pts.to_str().unwrap(),
    ]);
    let e = fails(
        &[
            "ingest-text",
            caps,
            "--db",
            db,
            "--collection",
            "legacy",
            rw,
        ],
        2,
    );
    assert!(
        e.contains("records no model") && e.contains("--force-model"),
        "{e}"
    );
    let o = sat2cap(&[
        "search",
        "--db",
        db,
        "--collection",
        "legacy",
        "--text",
        "x",
        rw,
        "--json",
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("records no model"));
    assert_eq!(
        json(&String::from_utf8_lossy(&o.stdout))
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let r = ok_json(&[
        "ingest-text",
        caps,
        "--db",
        db,
        "--collection",
        "legacy",
        rw,
        "--force-model",
        "--json",
    ]);
    assert_eq!(r["added"], 4);
    let info = ok_json(&["info", "--db", db, "--json"]);
    assert_eq!(
        collection_info(&info, "legacy")["model"]["encoder"],
        "clip-text"
    );
    ok(&["verify", "--db", db]);
}

/// Writes a weights folder: the tiny CLIP checkpoint and the tiny Sat2Cap one WITHOUT its
/// dynamic encoder (no geo_encoder.* tensors).
fn weights_without_dynamic(root: &Path) -> PathBuf {
    let w = root.join("weights");
    std::fs::create_dir_all(w.join("clip")).unwrap();
    std::fs::create_dir_all(w.join("sat2cap")).unwrap();
    std::fs::copy(
        tiny_weights().join("clip/model.safetensors"),
        w.join("clip/model.safetensors"),
    )
    .unwrap();
    let bytes = std::fs::read(tiny_weights().join("sat2cap/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let all = st.tensors();
    assert!(all.iter().any(|(n, _)| n.starts_with("geo_encoder.")));
    let kept: Vec<_> = all
        .into_iter()
        .filter(|(n, _)| !n.starts_with("geo_encoder."))
        .collect();
    let out = safetensors::serialize(kept, None).unwrap();
    std::fs::write(w.join("sat2cap/model.safetensors"), out).unwrap();
    w
}

#[test]
fn map_at_a_date_without_the_dynamic_encoder_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiles, _) = make_data(tmp.path());
    let w = weights_without_dynamic(tmp.path());
    let (db, w) = (tmp.path().join("db"), w.to_str().unwrap());
    let db = db.to_str().unwrap();
    let o = sat2cap(&[
        "ingest-tiles",
        tiles.to_str().unwrap(),
        "--db",
        db,
        "--weights",
        w,
        "--datetime",
        "2023-06-21T12:00:00",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = tmp.path().join("m");
    let out = out.to_str().unwrap();
    for extra in [
        &["--datetime", "2023-06-21T00:00:00"][..],
        &["--hours", "6,18"][..],
    ] {
        let mut args = vec!["map", "a lake", "--db", db, "--out", out, "--weights", w];
        args.extend_from_slice(extra);
        let e = fails(&args, 2);
        assert!(
            e.contains("need the dynamic encoder") && e.contains("geo_encoder"),
            "{e}"
        );
        assert!(!tmp.path().join("m.png").exists(), "nothing written");
    }
    // Without a date the same weights map the stored embeddings.
    let f = ok_json(&[
        "map",
        "a lake",
        "--db",
        db,
        "--out",
        out,
        "--weights",
        w,
        "--json",
    ]);
    assert!(image::open(f["png"].as_str().unwrap()).is_ok());
}

#[test]
fn every_command_has_help_with_examples_and_exit_codes() {
    for c in [
        "ingest-tiles",
        "ingest-ground",
        "ingest-text",
        "search",
        "map",
        "ground",
        "describe",
        "eval-retrieval",
        "classify",
        "eval-classify",
        "eval-text-retrieval",
        "info",
        "verify",
        "compact",
        "import",
        "query",
        "demo",
    ] {
        let help = ok(&[c, "--help"]);
        assert!(help.contains("Example"), "{c}: {help}");
        assert!(
            help.contains("Exit codes: 0 success; 1 runtime"),
            "{c}: {help}"
        );
    }
    assert!(ok(&["--help"]).contains("Exit codes"));
    // Usage errors: clap's exit code 2.
    assert_eq!(
        sat2cap(&["search", "--no-such-flag"]).status.code(),
        Some(2)
    );
    // A missing database is bad input (2) for the read-only commands.
    for c in ["info", "verify", "compact"] {
        let e = fails(&[c, "--db", "/no/such/db"], 2);
        assert!(e.contains("no database at /no/such/db"), "{c}: {e}");
    }
}

#[test]
fn json_outputs_of_verify_and_compact() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, _) = make_data(tmp.path());
    let db = tmp.path().join("db");
    let db = db.to_str().unwrap();
    let caps = tmp.path().join("captions.txt");
    let caps = caps.to_str().unwrap();
    ok(&["ingest-text", caps, "--db", db, "--random-weights"]);
    std::fs::write(tmp.path().join("captions.txt"), "one more\n").unwrap();
    ok(&["ingest-text", caps, "--db", db, "--random-weights"]);
    let v = ok_json(&["verify", "--db", db, "--json"]);
    assert_eq!(
        (
            v["ok"].as_bool(),
            v["segments"].as_u64(),
            v["rows"].as_u64()
        ),
        (Some(true), Some(2), Some(5))
    );
    let c = ok_json(&["compact", "--db", db, "--json"]);
    assert_eq!(c[0]["collection"], "captions");
    assert_eq!(c[0]["rows"], 5);
    let v = ok_json(&["verify", "--db", db, "--json"]);
    assert_eq!(v["segments"], 1);
    // The model survives compaction.
    let info = ok_json(&["info", "--db", db, "--json"]);
    assert_eq!(
        collection_info(&info, "captions")["model"]["encoder"],
        "clip-text"
    );
}

/// Published PyTorch files as they are: a folder of `clip/pytorch_model.bin` and a Lightning
/// `sat2cap/*.ckpt` runs the jobs from the command line, and the collection records those
/// files as its model.
#[test]
fn a_folder_of_pytorch_files_runs_the_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiles, _) = make_data(tmp.path());
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoders/pytorch");
    let w = weights.to_str().unwrap();
    let db = tmp.path().join("db");
    let db = db.to_str().unwrap();
    let caps = tmp.path().join("captions.txt");
    ok(&[
        "ingest-text",
        caps.to_str().unwrap(),
        "--db",
        db,
        "--weights",
        w,
    ]);
    ok(&[
        "ingest-tiles",
        tiles.to_str().unwrap(),
        "--db",
        db,
        "--weights",
        w,
    ]);
    let hits = json(&ok(&[
        "search",
        "--db",
        db,
        "--text",
        "a lake",
        "--k",
        "3",
        "--weights",
        w,
        "--json",
    ]));
    assert_eq!(hits.as_array().unwrap().len(), 3);
    let info = ok_json(&["info", "--db", db, "--json"]);
    let model = &collection_info(&info, "overhead")["model"];
    assert!(model.to_string().contains("crc32c"), "{model}");
    // Random weights are another model: refused.
    let e = fails(
        &["search", "--db", db, "--text", "a lake", "--random-weights"],
        2,
    );
    assert!(
        e.contains("the weights the collection was ingested with"),
        "{e}"
    );
}
