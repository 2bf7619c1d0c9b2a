//! sat2cap-dist against one database holding every row: sharding keeps every row bit for
//! bit, an exact search over the shards returns exactly the single database's answer (ids,
//! scores, order) for every kind of filter, approximate searches keep their recall, SQL
//! searches within its WHERE clause, plans survive the codecs, bad catalogs are refused, and
//! the same searches on a Ballista cluster (`cluster`) give the same answers.

mod cluster;
mod ingest;
mod map;

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float32Type, UInt64Type};
use datafusion::prelude::SessionContext;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::testing::synth::{generate, SynthData};
use sat2cap::{Db, Item, OpenOptions, Point};
use sat2cap_dist::plan::{search_plan, shard_tasks};
use sat2cap_dist::shard::{shard, ShardOptions};
use sat2cap_dist::{Catalog, SearchSpec};

const DIM: usize = 32;
const NO_TIME: i64 = i64::MIN;

fn build(dir: &Path, n: usize, seed: u64) -> SynthData {
    let data = generate(n, DIM, 24, seed);
    let mut db = Db::open(dir, OpenOptions::create_new()).unwrap();
    db.create_collection("tiles", DIM).unwrap();
    db.set_property("tiles", "model", Some("synthetic-32"))
        .unwrap();
    let payloads: Vec<String> = (0..n).map(|i| format!("tile {i}")).collect();
    for (i, p) in data.points.iter().enumerate() {
        let item = Item {
            id: i as u64 * 7 + 3,
            vector: &data.vectors[i * DIM..(i + 1) * DIM],
            point: *p,
            time: Some(data.times[i]).filter(|&t| t != NO_TIME),
            payload: (i % 3 == 0).then_some(payloads[i].as_str()),
        };
        db.add_f16("tiles", &item).unwrap();
    }
    db.commit().unwrap();
    data
}

struct Fixture {
    _dir: tempfile::TempDir,
    single: Db,
    catalog: Catalog,
    data: SynthData,
}

fn fixture(n: usize, level: u8, seed: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = build(&dir.path().join("all.db"), n, seed);
    let opts = ShardOptions {
        collection: None,
        level,
    };
    let catalog = shard(
        &dir.path().join("all.db"),
        &dir.path().join("sharded"),
        &opts,
        &sat2cap::Silent,
    )
    .unwrap();
    let single = Db::open(dir.path().join("all.db"), OpenOptions::read_only()).unwrap();
    Fixture {
        _dir: dir,
        single,
        catalog,
        data,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// (id, score bits) of result batches, in order.
fn rows(batches: &[RecordBatch]) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    for b in batches {
        let id = b.column_by_name("id").unwrap().as_primitive::<UInt64Type>();
        let score = b
            .column_by_name("score")
            .unwrap()
            .as_primitive::<Float32Type>();
        for i in 0..b.num_rows() {
            out.push((id.value(i), score.value(i).to_bits()));
        }
    }
    out
}

fn single_rows(db: &Db, spec: &SearchSpec) -> Vec<(u64, u32)> {
    let snap = db.snapshot();
    let coll = snap.collection("tiles").unwrap();
    spec.run(&coll)
        .unwrap()
        .hits
        .iter()
        .map(|h| (h.id, h.score.to_bits()))
        .collect()
}

fn dist_rows(rt: &tokio::runtime::Runtime, cat: &Catalog, spec: &SearchSpec) -> Vec<(u64, u32)> {
    let ctx = SessionContext::new();
    let plan = search_plan(cat, spec.clone()).unwrap();
    let batches = rt
        .block_on(datafusion::physical_plan::collect(plan, ctx.task_ctx()))
        .unwrap();
    rows(&batches)
}

/// A query near a stored row: its vector plus noise.
fn query(rng: &mut ChaCha8Rng, data: &SynthData) -> Vec<f32> {
    let n = data.points.len();
    let r = rng.random_range(0..n);
    data.vectors[r * DIM..(r + 1) * DIM]
        .iter()
        .map(|v| v.to_f32() + rng.random_range(-0.08..0.08))
        .collect()
}

/// Random conditions of every kind: none, boxes (across the antimeridian too), radii (over
/// the poles too), polygons, areas of interest (two polygons, one with a hole), time ranges
/// and their combinations.
fn conditions(rng: &mut ChaCha8Rng, i: usize, spec: &mut SearchSpec) {
    match i % 8 {
        0 => {}
        1 => {
            let w = rng.random_range(-180.0..180.0);
            let s = rng.random_range(-90.0..60.0);
            spec.region.bbox = Some([
                w,
                s,
                w + rng.random_range(1.0..90.0),
                s + rng.random_range(1.0..30.0),
            ]);
            if spec.region.bbox.unwrap()[2] > 180.0 {
                spec.region.bbox.as_mut().unwrap()[2] -= 360.0;
            }
        }
        2 => spec.region.bbox = Some([170.0, -60.0, -170.0, 70.0]),
        3 => {
            spec.region.radius = Some([
                rng.random_range(-90.0..90.0),
                rng.random_range(-180.0..180.0),
                rng.random_range(50.0..4000.0),
            ])
        }
        4 => spec.region.radius = Some([89.0, 10.0, 600.0]),
        5 => {
            let (x, y) = (
                rng.random_range(-170.0..140.0),
                rng.random_range(-70.0..40.0),
            );
            spec.region.polygon = Some(vec![(x, y), (x + 30.0, y + 5.0), (x + 10.0, y + 25.0)]);
        }
        6 => {
            let (x, y) = (
                rng.random_range(-175.0..120.0),
                rng.random_range(-70.0..30.0),
            );
            let sq = |x0: f64, y0: f64, d: f64| {
                format!(
                    "[[{x0},{y0}],[{},{y0}],[{},{}],[{x0},{}],[{x0},{y0}]]",
                    x0 + d,
                    x0 + d,
                    y0 + d,
                    y0 + d
                )
            };
            spec.region.aoi = Some(format!(
                r#"{{"type":"MultiPolygon","coordinates":[[{},{}],[{}]]}}"#,
                sq(x, y, 40.0),
                sq(x + 10.0, y + 10.0, 15.0),
                sq(x + 50.0, y - 20.0, 10.0)
            ));
        }
        _ => {
            spec.region.time = Some([1_400_000_000, 1_600_000_000]);
            spec.region.bbox = Some([-180.0, -10.0, 180.0, 90.0]);
        }
    }
}

#[test]
fn sharding_keeps_every_row_bit_for_bit() {
    let f = fixture(6000, 3, 11);
    assert!(
        f.catalog.shards.len() > 8,
        "{} shards",
        f.catalog.shards.len()
    );
    assert_eq!(f.catalog.rows, 6000);
    assert_eq!(
        f.catalog.properties.get("model").map(String::as_str),
        Some("synthetic-32")
    );
    let reopened = Catalog::open(&f.catalog.dir).unwrap();
    assert_eq!(reopened.shards, f.catalog.shards);
    let snap = f.single.snapshot();
    let all = snap.collection("tiles").unwrap();
    let mut seen = 0;
    for i in 0..f.catalog.shards.len() {
        let db = f.catalog.open_shard(i).unwrap();
        let s = db.snapshot();
        let coll = s.collection("tiles").unwrap();
        assert_eq!(coll.property("model"), Some("synthetic-32"));
        let region = sat2cap::BBox::new(
            f.catalog.shards[i].region[0],
            f.catalog.shards[i].region[1],
            f.catalog.shards[i].region[2],
            f.catalog.shards[i].region[3],
        )
        .unwrap();
        for item in coll.iter() {
            let item = item.unwrap();
            let orig = all.get(item.id).unwrap().unwrap();
            assert_eq!(item, orig);
            assert!(
                region.contains(item.point),
                "{:?} outside {region:?}",
                item.point
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 6000);
}

#[test]
fn exact_search_over_shards_is_the_single_database_answer() {
    let f = fixture(20_000, 3, 12);
    let rt = runtime();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut pruned, mut nonempty) = (0, 0);
    for i in 0..140 {
        let mut spec = SearchSpec::new(query(&mut rng, &f.data), [1, 10, 100][i % 3]);
        spec.exact = true;
        conditions(&mut rng, i, &mut spec);
        let want = single_rows(&f.single, &spec);
        let got = dist_rows(&rt, &f.catalog, &spec);
        assert_eq!(got, want, "query {i}: {spec:?}");
        nonempty += usize::from(!want.is_empty());
        pruned +=
            usize::from(shard_tasks(&f.catalog, &spec).unwrap().len() < f.catalog.shards.len());
    }
    assert!(nonempty > 100, "only {nonempty} searches found rows");
    assert!(pruned > 50, "only {pruned} searches pruned a shard");
}

/// Time conditions prune the shards whose rows' times they miss, and the answers stay the
/// single database's: each search asks for a short span around one row's time.
#[test]
fn time_conditions_prune_shards_and_keep_the_answer() {
    let f = fixture(6_000, 3, 19);
    assert!(f.catalog.shards.iter().all(|s| s.times.is_some()));
    let rt = runtime();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (mut pruned, mut found) = (0, 0);
    for i in 0..40i64 {
        let t = loop {
            let t = f.data.times[rng.random_range(0..f.data.times.len())];
            if t != NO_TIME {
                break t;
            }
        };
        let mut spec = SearchSpec::new(query(&mut rng, &f.data), 10);
        spec.exact = true;
        spec.region.time = Some([t - i * 3600, t + i * 3600]);
        let want = single_rows(&f.single, &spec);
        assert_eq!(
            dist_rows(&rt, &f.catalog, &spec),
            want,
            "query {i}: {spec:?}"
        );
        found += usize::from(!want.is_empty());
        pruned +=
            usize::from(shard_tasks(&f.catalog, &spec).unwrap().len() < f.catalog.shards.len());
    }
    assert_eq!(found, 40);
    assert!(pruned > 20, "only {pruned} of 40 searches pruned a shard");
}

#[test]
fn approximate_search_over_shards_keeps_recall() {
    let f = fixture(20_000, 2, 13);
    let rt = runtime();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (mut found, mut wanted) = (0usize, 0usize);
    for i in 0..70 {
        let mut spec = SearchSpec::new(query(&mut rng, &f.data), 10);
        conditions(&mut rng, i, &mut spec);
        let got = dist_rows(&rt, &f.catalog, &spec);
        spec.exact = true;
        let want = single_rows(&f.single, &spec);
        let want_ids: std::collections::HashSet<u64> = want.iter().map(|r| r.0).collect();
        found += got.iter().filter(|r| want_ids.contains(&r.0)).count();
        wanted += want.len();
    }
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.97, "recall@10 {recall}");
    // Walks twice as far as the data's slack on every shard: no worse.
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (mut further, mut wanted2) = (0usize, 0usize);
    for i in 0..70 {
        let mut spec = SearchSpec::new(query(&mut rng, &f.data), 10);
        conditions(&mut rng, i, &mut spec);
        spec.effort = Some(2.0);
        let got = dist_rows(&rt, &f.catalog, &spec);
        spec.effort = None;
        spec.exact = true;
        let want = single_rows(&f.single, &spec);
        let want_ids: std::collections::HashSet<u64> = want.iter().map(|r| r.0).collect();
        further += got.iter().filter(|r| want_ids.contains(&r.0)).count();
        wanted2 += want.len();
    }
    assert_eq!(wanted2, wanted);
    assert!(
        further >= found,
        "effort 2: {further} of {wanted} against {found}"
    );
}

fn sql_rows(rt: &tokio::runtime::Runtime, ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    rt.block_on(async { ctx.sql(sql).await?.collect().await })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn sql_searches_within_its_where_clause() {
    let f = fixture(8000, 2, 14);
    let rt = runtime();
    let ctx = SessionContext::new();
    sat2cap_dist::table::register(&ctx, Arc::new(f.catalog.clone()), None).unwrap();
    let snap = f.single.snapshot();
    let coll = snap.collection("tiles").unwrap();
    let example = 7 * 1234 + 3;
    let vector: Vec<f32> = coll
        .get(example)
        .unwrap()
        .unwrap()
        .vector
        .iter()
        .map(|v| v.to_f32())
        .collect();
    for (clause, bbox, time) in [
        ("", None, None),
        (
            "WHERE lat BETWEEN -10 AND 50.5 AND lon >= -30 AND lon < 100",
            Some([-30.0, -10.0, 100f64.next_down(), 50.5]),
            None,
        ),
        (
            "WHERE time >= 1500000000 AND 40 > lat",
            None::<[f64; 4]>,
            Some([1_500_000_000, i64::MAX]),
        ),
        // A range open at 180 holds no row stored at -180.
        (
            "WHERE lon >= 150",
            Some([150.0, -90.0, 180f64.next_down(), 90.0]),
            None,
        ),
        // A time condition covering every instant still drops the rows without a time.
        (
            "WHERE time <= 9223372036854775807",
            None,
            Some([i64::MIN, i64::MAX]),
        ),
    ] {
        let sql = format!("SELECT id, score FROM sat2cap_search({example}, 25, true) {clause} ORDER BY score DESC, id");
        let got = rows(&sql_rows(&rt, &ctx, &sql));
        let mut spec = SearchSpec::new(vector.clone(), 25);
        spec.exact = true;
        spec.region.bbox = bbox;
        spec.region.time = time;
        if clause.contains("40 > lat") {
            spec.region.bbox = Some([-180.0, -90.0, 180.0, 40f64.next_down()]);
        }
        assert_eq!(got, single_rows(&f.single, &spec), "{sql}");
        assert_eq!(got.len(), 25, "{sql}");
    }
    // A single latitude is not searched within: it filters the k rows afterwards.
    let one = sql_rows(
        &rt,
        &ctx,
        &format!("SELECT id FROM sat2cap_search({example}, 5) WHERE lat = 12.5"),
    );
    assert_eq!(one.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    // An empty range is no rows, not an error.
    let none = sql_rows(
        &rt,
        &ctx,
        &format!("SELECT id FROM sat2cap_search({example}, 5) WHERE lat > 10 AND lat < 5"),
    );
    assert_eq!(none.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    // Shard metadata is a table.
    let n = sql_rows(&rt, &ctx, "SELECT sum(rows) AS n FROM shards");
    let n = n[0].column(0).as_primitive::<UInt64Type>().value(0);
    assert_eq!(n, 8000);
    // Bad calls are plan errors naming the function.
    for bad in [
        "SELECT * FROM sat2cap_search('a text', 5)",
        "SELECT * FROM sat2cap_search(1, 0)",
        "SELECT * FROM sat2cap_search(1)",
        "SELECT * FROM sat2cap_search(999999999, 5)",
    ] {
        let e = rt
            .block_on(async { ctx.sql(bad).await?.collect().await })
            .unwrap_err();
        assert!(e.to_string().contains("sat2cap_search"), "{bad}: {e}");
    }
}

#[test]
fn plans_survive_the_codecs() {
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };
    let f = fixture(3000, 2, 15);
    let rt = runtime();
    let ctx = SessionContext::new();
    let codec = sat2cap_dist::codec::PhysicalCodec::default();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for i in 0..14 {
        let mut spec = SearchSpec::new(query(&mut rng, &f.data), 10);
        spec.exact = true;
        conditions(&mut rng, i, &mut spec);
        let plan = search_plan(&f.catalog, spec.clone()).unwrap();
        let bytes = physical_plan_to_bytes_with_extension_codec(plan, &codec).unwrap();
        let back =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
        let got = rows(
            &rt.block_on(datafusion::physical_plan::collect(back, ctx.task_ctx()))
                .unwrap(),
        );
        assert_eq!(got, single_rows(&f.single, &spec));
    }
    // A map plan: the same tiles and scores after the round trip.
    let spec = sat2cap_dist::MapSpec {
        queries: vec![query(&mut rng, &f.data), query(&mut rng, &f.data)],
        region: sat2cap_dist::Region {
            bbox: Some([-120.0, -40.0, 60.0, 50.0]),
            ..Default::default()
        },
        at: None,
    };
    let plan = sat2cap_dist::plan::map_plan(&f.catalog, spec.clone()).unwrap();
    let direct = rt
        .block_on(datafusion::physical_plan::collect(
            plan.clone(),
            ctx.task_ctx(),
        ))
        .unwrap();
    let bytes = physical_plan_to_bytes_with_extension_codec(plan, &codec).unwrap();
    let back =
        physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
    assert_eq!(back.name(), "ShardMapExec");
    let again = rt
        .block_on(datafusion::physical_plan::collect(back, ctx.task_ctx()))
        .unwrap();
    // Partitions may come in another order: compare by id.
    let tiles = |b| {
        let mut t = sat2cap_dist::exec::tiles_of(b, 2).unwrap();
        t.sort_by_key(|t| t.id);
        t
    };
    let (a, b) = (tiles(&direct), tiles(&again));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn bad_catalogs_are_refused_with_the_file_and_field() {
    let f = fixture(1500, 1, 16);
    let file = f.catalog.dir.join("catalog.json");
    let good = std::fs::read_to_string(&file).unwrap();
    let cases: [(&str, Edit); 10] = [
        (
            "is not a span of times",
            json_edit(|c| c["shards"][0]["times"] = serde_json::json!([5, 4])),
        ),
        (
            "must be a relative path",
            Box::new(|s: &str| s.replacen("\"shards/", "\"../shards/", 1)),
        ),
        (
            "not supported yet",
            Box::new(|s: &str| s.replacen("\"shards/", "\"s3://bucket/shards/", 1)),
        ),
        (
            "field `rows`",
            Box::new(|s: &str| s.replacen("\"rows\": 1500", "\"rows\": 1501", 1)),
        ),
        (
            "unknown field",
            Box::new(|s: &str| s.replacen("\"dim\"", "\"extra\": 1, \"dim\"", 1)),
        ),
        (
            "catalog version 9",
            Box::new(|s: &str| s.replacen("\"version\": 1", "\"version\": 9", 1)),
        ),
        ("line 1", Box::new(|_: &str| "{".to_string())),
        (
            "names a folder already listed",
            json_edit(|c| {
                let p = c["shards"][0]["path"]
                    .as_str()
                    .unwrap()
                    .replacen('/', "//", 1);
                c["shards"][1]["path"] = p.into();
            }),
        ),
        (
            "no `extent`",
            json_edit(|c| c["shards"][0]["extent"] = serde_json::Value::Null),
        ),
        (
            "`rows` is 0",
            json_edit(|c| {
                let r = c["shards"][0]["rows"].as_u64().unwrap();
                c["shards"][0]["rows"] = 0.into();
                c["rows"] = (c["rows"].as_u64().unwrap() - r).into();
            }),
        ),
    ];
    for (want, edit) in cases {
        let bad = edit(&good);
        assert_ne!(bad, good, "{want}: the edit did nothing");
        std::fs::write(&file, &bad).unwrap();
        let e = Catalog::open(&f.catalog.dir).unwrap_err().to_string();
        assert!(
            e.contains(want) && e.contains("catalog.json"),
            "{want}: {e}"
        );
    }
    std::fs::write(&file, &good).unwrap();
    // A shard that does not hold what the catalog says is an error, not fewer results.
    let mut cat = Catalog::open(&f.catalog.dir).unwrap();
    cat.shards[0].rows += 1;
    cat.rows += 1;
    let spec = SearchSpec {
        exact: true,
        ..SearchSpec::new(vec![1.0; DIM], 5)
    };
    let rt = runtime();
    let plan = search_plan(&cat, spec).unwrap();
    let e = rt
        .block_on(datafusion::physical_plan::collect(
            plan,
            SessionContext::new().task_ctx(),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("catalog says"), "{e}");
    // Sharding refuses an existing output and a level past the deepest.
    let src = f.catalog.dir.parent().unwrap().join("all.db");
    let opts = ShardOptions {
        collection: None,
        level: 3,
    };
    let e = shard(&src, &f.catalog.dir, &opts, &sat2cap::Silent).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let opts = ShardOptions {
        collection: None,
        level: 24,
    };
    let e = shard(
        &src,
        &f.catalog.dir.with_file_name("deep"),
        &opts,
        &sat2cap::Silent,
    )
    .unwrap_err();
    assert!(e.to_string().contains("deeper"), "{e}");
    let _ = Point::new(0.0, 0.0);
}

/// A change to a catalog file's text.
type Edit = Box<dyn Fn(&str) -> String>;

/// A change to a catalog file's JSON.
fn json_edit(f: impl Fn(&mut serde_json::Value) + 'static) -> Edit {
    Box::new(move |s: &str| {
        let mut c: serde_json::Value = serde_json::from_str(s).unwrap();
        f(&mut c);
        serde_json::to_string_pretty(&c).unwrap()
    })
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sat2cap-dist"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command line: shard, info, search and sql give the library's answers; bad input is
/// one line and exit 2; a closed pipe is exit 1 without a panic.
#[test]
fn the_command_line_shards_searches_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("all.db");
    build(&src, 5000, 17);
    let out = dir.path().join("sharded");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let r = cli(&["shard", "--by", "quadkey", "--level", "2", s, o]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stdout).contains("5000 rows of 'tiles'"),
        "{}",
        text(&r.stdout)
    );
    let r = cli(&["info", o]);
    assert!(
        r.status.success() && text(&r.stdout).contains("5000 rows in"),
        "{}",
        text(&r.stdout)
    );

    // search --like with a box across the antimeridian, exact: the single database's ids.
    let like = 7 * 42 + 3;
    let r = cli(&[
        "search",
        o,
        "--like",
        &like.to_string(),
        "--k",
        "15",
        "--bbox",
        "150,-80,-150,80",
        "--exact",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let ids: Vec<u64> = text(&r.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let db = Db::open(&src, OpenOptions::read_only()).unwrap();
    let snap = db.snapshot();
    let coll = snap.collection("tiles").unwrap();
    let v: Vec<f32> = coll
        .get(like)
        .unwrap()
        .unwrap()
        .vector
        .iter()
        .map(|x| x.to_f32())
        .collect();
    let want = coll
        .search(&v)
        .k(15)
        .within_bbox(150.0, -80.0, -150.0, 80.0)
        .exact(true)
        .run()
        .unwrap();
    assert_eq!(ids, want.ids());
    assert_eq!(ids.len(), 15);

    // sql over the shards table.
    let r = cli(&[
        "sql",
        o,
        "SELECT count(*) AS n, sum(rows) AS r FROM shards",
        "--format",
        "csv",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(text(&r.stdout).ends_with(",5000\n"), "{}", text(&r.stdout));

    // Bad input: exit 2, one line naming what is wrong.
    for (args, want) in [
        (
            vec!["search", "/nonexistent/catalog", "--like", "1"],
            "/nonexistent/catalog",
        ),
        (
            vec!["search", o, "--like", "1", "--bbox", "1,2,3"],
            "expected 4",
        ),
        (
            vec!["search", o, "--like", "1", "--bbox", "0,95,1,96"],
            "atitude",
        ),
        (vec!["search", o, "--like", "999999999"], "no item has id"),
        (
            vec!["search", o, "--like", "3", "--k", "0"],
            "k must be at least 1",
        ),
        (
            vec!["search", o, "--like", "3", "--effort", "0"],
            "effort 0 is not a number in (0, 64]",
        ),
        (
            vec!["search", o, "--like", "3", "--effort", "-1"],
            "effort -1 is not a number in (0, 64]",
        ),
        (
            vec!["search", o, "--like", "3", "--effort", "0.5", "--ef", "8"],
            "cannot be used with",
        ),
        (vec!["sql", o, "SELEC 1"], "SELEC"),
        (vec!["shard", "--level", "2", s, o], "already exists"),
        (
            vec!["shard", "--level", "30", s, "/tmp/never-made-sat2cap-dist"],
            "deeper",
        ),
    ] {
        let r = cli(&args);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }

    // An empty SQL result in CSV is the header of its own columns.
    let r = cli(&[
        "sql",
        o,
        "SELECT name, rows FROM shards WHERE rows > 1000000000",
        "--format",
        "csv",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout), "name,rows\n");
    let r = cli(&[
        "search",
        o,
        "--like",
        "3",
        "--explain",
        "--scheduler",
        "df://127.0.0.1:9",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    // A closed pipe: exit 1, no panic.
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sat2cap-dist"))
        .args(["search", o, "--like", "3", "--k", "5000", "--exact"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        !err.contains("panicked") && err.contains("writing the output"),
        "{err}"
    );
}

/// A FIFO where the catalog should be is refused at once, not read forever.
#[cfg(unix)]
#[test]
fn a_fifo_catalog_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("catalog.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let e = Catalog::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

/// Damaged catalogs never panic: 3,000 random mutations of a valid catalog file (bytes
/// flipped, inserted and cut, numbers and names changed) each open to an error naming the
/// file or to a catalog whose every shard entry passes the checks (rows add up, extents are
/// boxes, paths stay inside the folder).
#[test]
fn damaged_catalogs_are_errors_never_panics() {
    let f = fixture(1500, 2, 23);
    let file = f.catalog.dir.join("catalog.json");
    let good = std::fs::read(&file).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (mut refused, mut opened) = (0, 0);
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..b.len());
            match rng.random_range(0..5) {
                0 => b[at] ^= 1 << rng.random_range(0..8),
                1 => b[at] = b"0123456789-.,:[]{}\"e"[rng.random_range(0..19)],
                2 => b.insert(at, b"0-9\"/.:"[rng.random_range(0..7)]),
                3 => b.truncate(at.max(1)),
                _ => {
                    b.remove(at);
                }
            }
            if b.is_empty() {
                break;
            }
        }
        std::fs::write(&file, &b).unwrap();
        match std::panic::catch_unwind(|| Catalog::open(&f.catalog.dir)) {
            Err(_) => panic!("a panic on {:?}", String::from_utf8_lossy(&b)),
            Ok(Err(e)) => {
                assert!(e.to_string().contains("catalog.json"), "{e}");
                refused += 1;
            }
            Ok(Ok(c)) => {
                assert_eq!(c.shards.iter().map(|s| s.rows).sum::<u64>(), c.rows);
                for s in &c.shards {
                    assert!(s.rows > 0 && s.extent.is_some());
                    assert!(c
                        .shard_path(c.shards.iter().position(|x| x == s).unwrap())
                        .starts_with(&c.dir));
                }
                opened += 1;
            }
        }
    }
    std::fs::write(&file, &good).unwrap();
    assert!(refused > 2000, "only {refused} refused ({opened} opened)");
}
