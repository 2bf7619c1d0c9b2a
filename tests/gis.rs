//! GIS formats and workflows: score rasters read by GDAL, areas of interest and time ranges
//! as users draw them, GeoJSON results, search by example.
//!
//! Tests that check a file with GDAL's own tools (`gdalinfo`, `gdallocationinfo`: Debian's
//! gdal-bin, installed by .ci/run) skip with a note when the tools are missing, and fail
//! instead when `SAT2CAP_REQUIRE_TOOLS` is set (as CI sets it).
#![cfg(feature = "encoders")]

#[path = "common/cli.rs"]
mod cli;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli::{fails, json, ok, tool};
use sat2cap::io::npy::{write_npy, NpyDtype};
use sat2cap::jobs::{write_map, Example, Examples, Footprint, MapCell, MapPanel};
use sat2cap::{Db, NewItem, OpenOptions, Point};

/// A seeded generator of floats in [-0.5, 0.5).
fn noise(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

#[test]
fn map_geotiff_opens_in_gdal_with_its_crs_and_the_csv_values() {
    let dir = tempfile::tempdir().unwrap();
    // 600 x 300 tiles of 0.01 degrees with holes: one full-size image and two overviews.
    let (cols, rows) = (600u32, 300u32);
    let mut rnd = noise(3);
    let mut cells = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            if (r * 7 + c * 3) % 11 == 0 {
                continue;
            }
            let center = Point::new(
                10.0 + 0.005 + 0.01 * f64::from(r),
                -5.0 + 0.005 + 0.01 * f64::from(c),
            )
            .unwrap();
            cells.push(MapCell {
                id: u64::from(r * cols + c),
                center,
                footprint: Footprint::around(center, 0.005, 0.005),
                score: rnd(),
            });
        }
    }
    let scores2: Vec<MapCell> = cells
        .iter()
        .map(|c| MapCell {
            score: -c.score,
            ..c.clone()
        })
        .collect();
    let panels = [
        MapPanel::new("a harbour & <boats>", cells.clone()),
        MapPanel::new("b", scores2),
    ];
    let prefix = dir.path().join("m");
    let files = write_map(&prefix, "t", &panels, None).unwrap();
    assert!(files.tif.is_file() && files.prj.is_file());
    let prj = std::fs::read_to_string(&files.prj).unwrap();
    assert!(prj.starts_with("GEOGCS[\"GCS_WGS_1984\"") && prj.contains("6378137.0,298.257223563"));
    let Some(gdalinfo) = tool("gdalinfo") else {
        return;
    };
    let o = Command::new(gdalinfo)
        .arg("-json")
        .arg(&files.tif)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "gdalinfo warned: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let info = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(info["size"], serde_json::json!([cols, rows]));
    let gt: Vec<f64> = info["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let want = [-5.0, 0.01, 0.0, 13.0, 0.0, -0.01];
    for (g, w) in gt.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "geotransform {gt:?}");
    }
    let wkt = info["coordinateSystem"]["wkt"].as_str().unwrap();
    assert!(wkt.contains("ID[\"EPSG\",4326]"), "{wkt}");
    assert_eq!(info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"], "COG");
    assert_eq!(
        info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"],
        "DEFLATE"
    );
    let bands = info["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 2);
    for (b, name) in bands.iter().zip(["a harbour & <boats>", "b"]) {
        assert_eq!(b["type"], "Float32");
        assert_eq!(b["noDataValue"], "NaN");
        assert_eq!(b["description"], name);
        assert_eq!(b["block"], serde_json::json!([256, 256]));
        let ovr: Vec<_> = b["overviews"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["size"].clone())
            .collect();
        assert_eq!(
            ovr,
            vec![serde_json::json!([300, 150]), serde_json::json!([150, 75])]
        );
    }
    // Sampled values at the CSV's own coordinates equal the CSV's similarity, and a hole is
    // no data.
    let Some(locate) = tool("gdallocationinfo") else {
        return;
    };
    let csv = std::fs::read_to_string(&files.csv).unwrap();
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .step_by(997)
        .map(|l| l.split(',').map(str::to_string).collect())
        .filter(|r: &Vec<String>| r[3] == "b")
        .collect();
    assert!(rows.len() > 50);
    let mut input = String::new();
    for r in &rows {
        input.push_str(&format!("{} {}\n", r[2], r[1]));
    }
    input.push_str("-4.995 10.005\n"); // (r 0, c 0) is a hole
    let mut child = Command::new(locate)
        .args(["-valonly", "-wgs84", "-b", "2"])
        .arg(&files.tif)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let values: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(values.len(), rows.len() + 1);
    for (r, v) in rows.iter().zip(&values) {
        let want: f32 = r[4].parse().unwrap();
        let got: f64 = v.trim().parse().unwrap();
        assert_eq!(got as f32, want, "at lon {} lat {}", r[2], r[1]);
    }
    assert_eq!(values.last().unwrap().trim().to_ascii_lowercase(), "nan");
}

/// 400 rows in 16 dimensions over a 20 x 20 grid of 0.01-degree tiles, times a day apart.
fn imported(dir: &Path) {
    let mut rnd = noise(11);
    let (mut v, mut csv) = (Vec::new(), String::from("id,lat,lon,time,payload\n"));
    for i in 0..400u32 {
        v.extend((0..16).map(|_| rnd()));
        let (r, c) = (i / 20, i % 20);
        let (lat, lon) = (46.0 + 0.01 * f64::from(r), 6.0 + 0.01 * f64::from(c));
        let fp = format!(
            "[{},{},{},{}]",
            lon - 0.005,
            lat - 0.005,
            lon + 0.005,
            lat + 0.005
        );
        csv.push_str(&format!(
            "{i},{lat},{lon},{},\"{{\"\"footprint\"\":{fp}}}\"\n",
            1_685_577_600 + 86_400 * i64::from(i)
        ));
    }
    write_npy(&dir.join("v.npy"), NpyDtype::F32, 16, &v).unwrap();
    std::fs::write(dir.join("p.csv"), csv).unwrap();
    ok(
        dir,
        &[
            "import",
            "--db",
            "db",
            "--collection",
            "c",
            "--vectors",
            "v.npy",
            "--points",
            "p.csv",
        ],
    );
    std::fs::write(dir.join("q.json"), format!("{:?}", &v[..16])).unwrap();
}

#[test]
fn areas_times_and_geojson_results() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    imported(d);
    // A square with a square hole; rows 2..=7 x cols 2..=7 less rows 4..=5 x cols 4..=5.
    std::fs::write(
        d.join("aoi.geojson"),
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"ring"},"geometry":{"type":"Polygon","coordinates":[
            [[6.015,46.015],[6.075,46.015],[6.075,46.075],[6.015,46.075],[6.015,46.015]],
            [[6.035,46.035],[6.055,46.035],[6.055,46.055],[6.035,46.055],[6.035,46.035]]]}}]}"#,
    )
    .unwrap();
    let base = [
        "search",
        "--db",
        "db",
        "--collection",
        "c",
        "--vector",
        "q.json",
        "--k",
        "400",
    ];
    let ids = |extra: &[&str]| -> Vec<u64> {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a.push("--json");
        let mut v: Vec<u64> = json(&ok(d, &a))
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect();
        v.sort_unstable();
        v
    };
    let inside = |i: u64| {
        let (r, c) = (i / 20, i % 20);
        (2..=7).contains(&r)
            && (2..=7).contains(&c)
            && !((4..=5).contains(&r) && (4..=5).contains(&c))
    };
    let want: Vec<u64> = (0..400).filter(|&i| inside(i)).collect();
    assert_eq!(ids(&["--aoi", "aoi.geojson"]), want);
    // Times: ids 10..=19 (a date as T1 runs to the end of that day), then with the area.
    let day = |i: i64| 1_685_577_600 + 86_400 * i;
    let t0 = day(10).to_string();
    assert_eq!(
        ids(&["--between", &t0, "2023-06-20"]),
        (10..=19).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&[
            "--between",
            "2023-06-01T02:00:00+02:00",
            "2023-06-21T00:00:00Z"
        ]),
        (0..=20).collect::<Vec<_>>()
    );
    let both = ids(&[
        "--aoi",
        "aoi.geojson",
        "--between",
        "2023-06-01",
        "2023-07-31",
    ]);
    assert_eq!(
        both,
        want.iter()
            .copied()
            .filter(|&i| i <= 60)
            .collect::<Vec<_>>()
    );
    // A query batch keeps every line to the command's area and times as well as to the
    // line's own filter.
    let q: Vec<f32> =
        serde_json::from_str(&std::fs::read_to_string(d.join("q.json")).unwrap()).unwrap();
    let q = serde_json::to_string(&q).unwrap();
    std::fs::write(
        d.join("batch.jsonl"),
        format!(
            "{{\"id\":1,\"k\":400,\"vector\":{q}}}\n\
             {{\"id\":2,\"k\":400,\"vector\":{q},\"filter\":{{\"bbox\":[6.0,46.0,6.045,46.1]}}}}\n"
        ),
    )
    .unwrap();
    ok(
        d,
        &[
            "query",
            "--db",
            "db",
            "--collection",
            "c",
            "--batch",
            "batch.jsonl",
            "--out",
            "r.jsonl",
            "--aoi",
            "aoi.geojson",
            "--between",
            "2023-06-01",
            "2023-07-31",
        ],
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(d.join("r.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sorted = |v: &serde_json::Value| {
        let mut ids: Vec<u64> = v["neighbors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(sorted(&lines[0]), both);
    let west: Vec<u64> = both.iter().copied().filter(|&i| i % 20 <= 4).collect();
    assert!(!west.is_empty() && west.len() < both.len());
    assert_eq!(sorted(&lines[1]), west);
    // GeoJSON out: footprints, [lon, lat], ranks, scores best first, RFC 3339 times.
    let mut a = base[..7].to_vec();
    a.extend_from_slice(&[
        "--k",
        "5",
        "--format",
        "geojson",
        "--lon",
        "6.1",
        "--lat",
        "46.1",
        "--radius-km",
        "2",
    ]);
    let fc = json(&ok(d, &a));
    assert_eq!(fc["type"], "FeatureCollection");
    let fs = fc["features"].as_array().unwrap();
    assert_eq!(fs.len(), 5);
    for (i, f) in fs.iter().enumerate() {
        let p = &f["properties"];
        assert_eq!(p["rank"], i + 1);
        let id = p["id"].as_u64().unwrap();
        let (lat, lon) = (
            46.0 + 0.01 * (id / 20) as f64,
            6.0 + 0.01 * (id % 20) as f64,
        );
        let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
        assert_eq!(f["geometry"]["type"], "Polygon");
        assert!(
            (ring[0][0].as_f64().unwrap() - (lon - 0.005)).abs() < 1e-9,
            "{f}"
        );
        assert!(
            (ring[0][1].as_f64().unwrap() - (lat - 0.005)).abs() < 1e-9,
            "{f}"
        );
        assert!(p["time"].as_str().unwrap().ends_with('Z'));
        if i > 0 {
            assert!(fs[i - 1]["properties"]["score"].as_f64() >= p["score"].as_f64());
        }
    }
    assert_eq!(
        fs[0]["properties"]["time"].as_str().unwrap().len(),
        "2023-06-01T00:00:00Z".len()
    );
    // Bad areas and times name the flag, the file and the place in it.
    std::fs::write(
        d.join("bad.geojson"),
        r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,95],[0,0]]]}"#,
    )
    .unwrap();
    for (extra, want) in [
        (
            &["--aoi", "bad.geojson"][..],
            &["--aoi", "bad.geojson", "coordinates[0]", "latitude 95"][..],
        ),
        (&["--aoi", "missing.geojson"], &["--aoi", "missing.geojson"]),
        (
            &["--between", "2023-07-01", "2023-06-01"],
            &["--between", "after"],
        ),
        (
            &["--between", "yesterday", "2023-06-01"],
            &["--between T0 'yesterday'"],
        ),
        (&["--format", "shapefile"], &["--format"]),
    ] {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        fails(d, &a, want);
    }
}

#[test]
fn search_by_example_leaves_the_examples_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    imported(d);
    let s = |extra: &[&str]| -> Vec<u64> {
        let mut a = vec![
            "search",
            "--db",
            "db",
            "--collection",
            "c",
            "--k",
            "10",
            "--json",
        ];
        a.extend_from_slice(extra);
        json(&ok(d, &a))
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect()
    };
    let hits = s(&["--like", "5", "17"]);
    assert_eq!(hits.len(), 10);
    assert!(!hits.contains(&5) && !hits.contains(&17));
    // A GeoJSON file of examples: a point (the tile nearest to it is id 21), a labelled
    // negative polygon (ids 0 and 1); the same as the ids.
    std::fs::write(
        d.join("ex.geojson"),
        r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[6.0101,46.0099]}},
          {"type":"Feature","properties":{"label":"unlike"},"geometry":{"type":"Polygon","coordinates":[[[5.995,45.995],[6.015,45.995],[6.015,46.004],[5.995,46.004],[5.995,45.995]]]}}]}"#,
    )
    .unwrap();
    let by_file = s(&["--like", "ex.geojson"]);
    assert_eq!(by_file, s(&["--like", "21", "--unlike", "0", "1"]));
    assert!(![21, 0, 1].iter().any(|i| by_file.contains(i)));
    // With a filter, and errors that say what is wrong.
    let boxed = s(&["--like", "21", "--bbox", "6.0,46.0,6.05,46.05"]);
    assert!(boxed.iter().all(|&i| i / 20 <= 5 && i % 20 <= 5 && i != 21));
    for (extra, want) in [
        (&["--like", "9999"][..], &["9999", "no item"][..]),
        (
            &["--like", "3", "--unlike", "3"],
            &["both a positive and a negative"],
        ),
        (&["--unlike", "3"], &["--unlike needs --like"]),
        (
            &["--like", "nothing.geojson"],
            &["neither a stored id nor a GeoJSON file"],
        ),
        (&["--like", "3", "--unlike-weight", "2"], &["0..=1"]),
    ] {
        let mut a = vec!["search", "--db", "db", "--collection", "c"];
        a.extend_from_slice(extra);
        fails(d, &a, want);
    }
}

/// The rule for negatives, checked on generated sets: three classes in 32 dimensions, two
/// of them confusable; five examples of one class and three of its confusable neighbour.
/// Half-weighted negatives must find more of the class than the positives alone on every
/// seed, and more than full-weighted ones on average (which turn two close centroids into
/// their noisy difference); no example is ever returned.
#[test]
fn negatives_help_on_confusable_classes() {
    let mut gains = Vec::new();
    for seed in 1..=5u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path().join("db"), OpenOptions::create_if_missing()).unwrap();
        db.create_collection("c", 32).unwrap();
        let mut rnd = noise(seed);
        // Class 0 and 1 share their main axis and differ on a second one; class 2 is apart.
        let centre = |class: u64| -> Vec<f32> {
            let mut v = vec![0f32; 32];
            match class {
                0 => (v[0], v[1]) = (1.0, 0.25),
                1 => (v[0], v[1]) = (1.0, -0.25),
                _ => v[2] = 1.0,
            }
            v
        };
        for id in 0..3000u64 {
            let c = centre(id % 3);
            let v: Vec<f32> = c.iter().map(|x| x + 0.6 * rnd()).collect();
            let point = Point::new(0.0, 0.0).unwrap();
            db.add(
                "c",
                NewItem {
                    id,
                    vector: &v,
                    point,
                    time: None,
                    payload: None,
                },
            )
            .unwrap();
        }
        db.commit().unwrap();
        let snap = db.snapshot();
        let like: Vec<Example> = [0u64, 3, 6, 9, 12].map(Example::Id).to_vec();
        let unlike: Vec<Example> = [1u64, 4, 7].map(Example::Id).to_vec();
        let hits = |ex: Examples| -> Vec<u64> {
            let job = sat2cap::jobs::SearchJob {
                collection: "c".into(),
                query: sat2cap::jobs::QueryInput::Examples(ex),
                filter: sat2cap::Filter::new(),
                near_query_km: None,
                k: 500,
                holds: None,
            };
            sat2cap::jobs::search(&snap, None, &job, &sat2cap::Silent)
                .unwrap()
                .matches
                .iter()
                .map(|m| m.id)
                .collect()
        };
        let precision =
            |ids: &[u64]| ids.iter().filter(|&&i| i % 3 == 0).count() as f64 / ids.len() as f64;
        let plain = hits(Examples::new(like.clone(), vec![]));
        let with = hits(Examples::new(like.clone(), unlike.clone()));
        let full = hits(Examples {
            unlike_weight: 1.0,
            ..Examples::new(like.clone(), unlike.clone())
        });
        for (ids, left_out) in [
            (&plain, &[0, 3, 6, 9, 12][..]),
            (&with, &[0, 3, 6, 9, 12, 1, 4, 7]),
            (&full, &[0, 3, 6, 9, 12, 1, 4, 7]),
        ] {
            assert_eq!(ids.len(), 500);
            assert!(!left_out.iter().any(|i| ids.contains(i)));
        }
        gains.push((precision(&plain), precision(&with), precision(&full)));
    }
    eprintln!("precision@500 (positives alone, negatives at 0.5, at 1.0) per seed: {gains:?}");
    let mean =
        |f: fn(&(f64, f64, f64)) -> f64| gains.iter().map(f).sum::<f64>() / gains.len() as f64;
    assert!(
        gains.iter().all(|(p, w, _)| w > p) && mean(|g| g.1) > mean(|g| g.2),
        "precision@500 positives alone / with negatives at 0.5 / at 1.0: {gains:?}"
    );
}

/// The web map: XYZ tiles of the scores and the imagery and a viewer that opens offline; a
/// headless Chromium screenshot of it shows the map (the score colours inside the region,
/// the dark page around it), not a blank page.
#[test]
fn the_web_map_opens_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["demo", "--out", "demo"]);
    ok(
        d,
        &[
            "map",
            "a forest",
            "a lake",
            "--db",
            "demo/demo.db",
            "--out",
            "m",
            "--xyz",
            "web",
            "--random-weights",
        ],
    );
    let web = d.join("web");
    for f in [
        "index.html",
        "leaflet.js",
        "leaflet.css",
        "LEAFLET-LICENSE.txt",
    ] {
        assert!(web.join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(web.join("index.html")).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the viewer fetches nothing"
    );
    for layer in ["imagery", "scores-1", "scores-2"] {
        let n = walk(&web.join(layer))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .count();
        assert!(n > 0, "{layer}: no tiles");
    }
    // Again into the same folder: replaced; into a folder of other files: refused.
    ok(
        d,
        &[
            "map",
            "a forest",
            "--db",
            "demo/demo.db",
            "--out",
            "m",
            "--xyz",
            "web",
            "--random-weights",
        ],
    );
    assert!(!web.join("scores-2").exists());
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/notes.txt"), "mine").unwrap();
    fails(
        d,
        &[
            "map",
            "a forest",
            "--db",
            "demo/demo.db",
            "--out",
            "m2",
            "--xyz",
            "mine",
            "--random-weights",
        ],
        &["--xyz", "not a web map this tool wrote"],
    );
    assert!(d.join("mine/notes.txt").is_file() && !d.join("m2.png").exists());
    let Some(chromium) = tool("chromium") else {
        return;
    };
    let shot = d.join("shot.png");
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--window-size=900,700",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", web.join("index.html").display()))
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    let mut colours = std::collections::HashSet::new();
    let (mut page, mut inside) = (0, 0);
    for p in img.pixels() {
        colours.insert(p.0);
        match p.0 {
            [0x22, 0x22, 0x22] => page += 1,
            _ => inside += 1,
        }
    }
    // The page's dark background around a map of many colours (tiles, legend, controls).
    assert!(
        page > 10_000 && inside > 20_000 && colours.len() > 100,
        "page {page}, map {inside}, {} colours",
        colours.len()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
