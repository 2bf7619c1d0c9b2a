//! Concurrency: 8 reader threads read while one writer adds, deletes, commits and compacts for
//! `SAT2CAP_CONC_SECS` seconds (default 5). Before each commit / compaction the writer records
//! the digest of the content the new generation must have; every read must come from one
//! consistent snapshot: the digest of everything a reader iterates equals the recorded digest
//! of the snapshot's generation, point lookups agree with the scan, no read returns an error.
//!
//! Half the readers take snapshots from the writer (`SnapshotSource`, generations never go
//! backwards); the other half open the folder from disk (`Db::open_snapshot`, racing the
//! writer's renames and garbage collection). Every reader also keeps its previous snapshot and
//! re-reads it after the writer moved on: it must be unchanged (files removed by compaction
//! stay mapped).
//!
//! Every read also runs a search through the public builder (`CollectionView::search`), with
//! a random filter (bbox, antimeridian bbox, radius, time range, combinations, or none), once
//! exact and once planned. The writer builds HNSW graphs in segments of 64+ rows and the
//! planner runs with small flat thresholds, so planned searches walk graphs. Checked against
//! the writer's model of the snapshot's generation: the exact result equals a brute force
//! over that model (ids and score bits, best first then lower id); the planned result has
//! `min(k, matching)` distinct live ids, each passing the filter with its exact score, sorted,
//! and equals the exact result when no segment walked a graph or `k` covers every match.
//!
//! Long run: `SAT2CAP_CONC_SECS=60 cargo test --release --no-default-features --test
//! reliability_concurrency -- --nocapture`

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::index::flat::dot_f16_f32;
use sat2cap::query::filter::{BBox, Filter, Radius, TimeRange};
use sat2cap::query::planner::{normalise_query, Plan, PlannerParams};
use sat2cap::{Db, GraphOptions, IndexOptions, NewItem, OpenOptions, SearchResults, Snapshot};

const DIM: usize = 16;
const READERS: usize = 8;
const ID_SPACE: u64 = 400;

type Stored = (Vec<u16>, (u64, u64), Option<i64>, Option<String>);
type Content = BTreeMap<u64, Stored>;
/// generation -> (digest, live count, content) it must show.
type History = Arc<RwLock<HashMap<u64, (u64, usize, Arc<Content>)>>>;

/// Planner knobs small enough that segments of a few hundred rows take the graph path.
const PLANNER: PlannerParams = PlannerParams {
    flat_max_rows: 8,
    flat_max_fraction: 0.02,
    ef_search: 16,
    max_ef_widening: 8,
    filtered_ef_min: 16,
    walk_budget: 0.25,
    far_gap: 0.3,
    routing_stride: 64,
    hop_slack: true,
    int8_walk: true,
};

/// Graphs in every segment of 64+ rows (compactions, the larger commits).
fn options() -> OpenOptions {
    OpenOptions::create_new().indexes(IndexOptions {
        graph: Some(GraphOptions {
            m: 8,
            ef_construction: 32,
            min_rows: 64,
        }),
        int8: false,
    })
}

fn announce(history: &History, generation: u64, model: &Content) {
    history.write().unwrap().insert(
        generation,
        (digest(model), model.len(), Arc::new(model.clone())),
    );
}

fn digest(c: &Content) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.hash(&mut h);
    h.finish()
}

/// Reads everything live in collection "c" of `snap`, checking point lookups on the way.
fn read_all(snap: &Snapshot, r: &mut ChaCha8Rng) -> Content {
    let c = snap.collection("c").unwrap_or_else(|e| panic!("{e}"));
    let mut out = Content::new();
    for it in c.iter() {
        let it = it.unwrap_or_else(|e| panic!("read error: {e}"));
        out.insert(
            it.id,
            (
                it.vector.iter().map(|x| x.to_bits()).collect(),
                (it.point.lat().to_bits(), it.point.lon().to_bits()),
                it.time,
                it.payload.map(str::to_string),
            ),
        );
    }
    assert_eq!(out.len(), c.len(), "iter and len disagree");
    for _ in 0..8 {
        let id = r.random_range(0..ID_SPACE);
        let got = c.get(id).unwrap_or_else(|e| panic!("get: {e}"));
        assert_eq!(got.is_some(), out.contains_key(&id), "get({id}) vs iter");
    }
    out
}

/// Checks a full read of `snap` and one random search; returns whether the planned search
/// walked a graph in some segment.
fn check(snap: &Snapshot, history: &History, r: &mut ChaCha8Rng) -> bool {
    let g = snap.generation();
    let content = read_all(snap, r);
    let Some((want, n, model)) = history.read().unwrap().get(&g).cloned() else {
        panic!("generation {g} was never announced by the writer")
    };
    assert_eq!(content.len(), n, "generation {g}: live count");
    assert_eq!(
        digest(&content),
        want,
        "generation {g}: content is not that generation's"
    );
    search_against_model(snap, &model, r)
}

fn random_filter(r: &mut ChaCha8Rng) -> Filter {
    let bbox = |r: &mut ChaCha8Rng| {
        let (s, n) = (r.random_range(-90.0..0.0), r.random_range(0.0..=90.0));
        let (w, e) = if r.random_bool(0.3) {
            // Across the antimeridian.
            (r.random_range(0.0..180.0), r.random_range(-180.0..0.0))
        } else {
            let w = r.random_range(-180.0..170.0);
            (w, r.random_range(w + 1.0..=180.0))
        };
        BBox::new(w, s, e, n).unwrap()
    };
    let radius = |r: &mut ChaCha8Rng| {
        Radius::new(
            r.random_range(-90.0..=90.0),
            r.random_range(-180.0..180.0),
            r.random_range(100.0..8_000.0),
        )
        .unwrap()
    };
    let time = |r: &mut ChaCha8Rng| {
        let t0 = r.random_range(0..2_000_000_000i64);
        TimeRange::new(t0, r.random_range(t0..=2_000_000_000)).unwrap()
    };
    let mut f = Filter::new();
    match r.random_range(0..7) {
        0 => {}
        1 => f = f.bbox(bbox(r)),
        2 => f = f.radius(radius(r)),
        3 => f = f.time(time(r)),
        4 => f = f.bbox(bbox(r)).time(time(r)),
        5 => f = f.radius(radius(r)).time(time(r)),
        _ => f = f.bbox(bbox(r)).radius(radius(r)),
    }
    f
}

fn pairs(res: &SearchResults) -> Vec<(u64, u32)> {
    res.hits.iter().map(|h| (h.id, h.score.to_bits())).collect()
}

/// One random search on `snap`, exact and planned, checked against the writer's `model` of
/// the snapshot's generation. Returns whether the planned search walked a graph.
fn search_against_model(snap: &Snapshot, model: &Content, r: &mut ChaCha8Rng) -> bool {
    let coll = snap.collection("c").unwrap_or_else(|e| panic!("{e}"));
    let query: Vec<f32> = (0..DIM).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let k = [1, 5, 10, 50, 1000][r.random_range(0..5)];
    let filter = random_filter(r);
    // Brute force over the model.
    let q = normalise_query(&query, DIM).unwrap();
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .filter(|(_, (_, (lat, lon), t, _))| {
            let p = Point::new(f64::from_bits(*lat), f64::from_bits(*lon)).unwrap();
            filter.matches(p, *t)
        })
        .map(|(&id, (bits, _, _, _))| {
            let v: Vec<f16> = bits.iter().map(|&b| f16::from_bits(b)).collect();
            (id, dot_f16_f32(&v, &q))
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let scores: HashMap<u64, u32> = all.iter().map(|&(id, s)| (id, s.to_bits())).collect();
    let want: Vec<(u64, u32)> = all
        .iter()
        .take(k)
        .map(|&(id, s)| (id, s.to_bits()))
        .collect();

    let search = || coll.search(&query).k(k).filter(filter.clone());
    let exact = search()
        .exact(true)
        .run()
        .unwrap_or_else(|e| panic!("exact search: {e}"));
    assert_eq!(
        pairs(&exact),
        want,
        "generation {}: exact search vs model",
        snap.generation()
    );

    let planned = search()
        .planner(PLANNER)
        .run()
        .unwrap_or_else(|e| panic!("planned search: {e}"));
    let g = snap.generation();
    assert_eq!(
        planned.hits.len(),
        k.min(all.len()),
        "generation {g}: {:?}",
        planned.explain
    );
    let mut seen = std::collections::HashSet::new();
    for h in &planned.hits {
        assert!(seen.insert(h.id), "generation {g}: id {} twice", h.id);
        assert_eq!(
            scores.get(&h.id),
            Some(&h.score.to_bits()),
            "generation {g}: id {} not live, failing the filter, or not its exact score",
            h.id
        );
        assert!(filter.matches(h.point, h.time));
    }
    assert!(
        planned
            .hits
            .windows(2)
            .all(|w| w[0].score > w[1].score || (w[0].score == w[1].score && w[0].id < w[1].id)),
        "generation {g}: not sorted"
    );
    let walked = planned.explain.iter().any(|p| {
        matches!(
            p.plan,
            Plan::Graph {
                fell_back: false,
                ..
            }
        )
    });
    if !walked || k >= all.len() {
        assert_eq!(
            pairs(&planned),
            want,
            "generation {g}: {:?}",
            planned.explain
        );
    }
    walked
}

#[test]
fn readers_see_consistent_snapshots_while_writer_commits_and_compacts() {
    let secs: f64 = std::env::var("SAT2CAP_CONC_SECS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(5.0);
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(tmp.path(), options()).unwrap();
    db.create_collection("c", DIM).unwrap();
    let history: History = Arc::new(RwLock::new(HashMap::new()));
    let mut model = Content::new();
    announce(&history, 1, &model);
    assert_eq!(db.commit().unwrap(), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let graph_walks = Arc::new(AtomicU64::new(0));
    let source = db.snapshot_source();
    let mut readers = Vec::new();
    for t in 0..READERS {
        let (history, stop, reads, source) =
            (history.clone(), stop.clone(), reads.clone(), source.clone());
        let graph_walks = graph_walks.clone();
        let path = tmp.path().to_path_buf();
        readers.push(std::thread::spawn(move || {
            let mut r = ChaCha8Rng::seed_from_u64(100 + t as u64);
            let mut last_gen = 0;
            let mut previous: Option<Snapshot> = None;
            let mut gens = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let snap = if t % 2 == 0 {
                    let s = source.snapshot();
                    assert!(s.generation() >= last_gen, "generation went backwards");
                    last_gen = s.generation();
                    s
                } else {
                    Db::open(&path, OpenOptions::read_only())
                        .map(|d| d.snapshot())
                        .unwrap_or_else(|e| panic!("open_snapshot: {e}"))
                };
                let mut walked = check(&snap, &history, &mut r);
                if let Some(old) = previous.take() {
                    // An older snapshot still reads exactly its own generation.
                    walked |= check(&old, &history, &mut r);
                }
                if walked {
                    graph_walks.fetch_add(1, Ordering::Relaxed);
                }
                gens.insert(snap.generation());
                previous = Some(snap);
                reads.fetch_add(1, Ordering::Relaxed);
            }
            gens.len()
        }));
    }

    // The writer.
    let mut r = ChaCha8Rng::seed_from_u64(7);
    let started = Instant::now();
    let (mut commits, mut compactions) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs_f64(secs) {
        let next = db.snapshot().generation() + 1;
        if r.random_bool(0.1) {
            announce(&history, next, &model);
            if db.compact("c").unwrap() == next {
                compactions += 1;
            }
            continue;
        }
        for _ in 0..r.random_range(1..30) {
            let id = r.random_range(0..ID_SPACE);
            if r.random_bool(0.25) {
                db.delete("c", id).unwrap();
                model.remove(&id);
                continue;
            }
            let v: Vec<f32> = (0..DIM).map(|_| r.random_range(-1.0f32..1.0)).collect();
            let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            let point =
                Point::new(r.random_range(-90.0..=90.0), r.random_range(-180.0..180.0)).unwrap();
            let time = r
                .random_bool(0.5)
                .then(|| r.random_range(0..2_000_000_000i64));
            let payload = r.random_bool(0.5).then(|| format!("item {id} gen {next}"));
            db.add(
                "c",
                NewItem {
                    id,
                    vector: &v,
                    point,
                    time,
                    payload: payload.as_deref(),
                },
            )
            .unwrap();
            model.insert(
                id,
                (
                    v.iter()
                        .map(|x| f16::from_f64(f64::from(*x) / norm).to_bits())
                        .collect(),
                    (point.lat().to_bits(), point.lon().to_bits()),
                    time,
                    payload,
                ),
            );
        }
        announce(&history, next, &model);
        assert_eq!(db.commit().unwrap(), next);
        commits += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<usize> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    let reads = reads.load(Ordering::Relaxed);
    let graph_walks = graph_walks.load(Ordering::Relaxed);
    println!(
        "concurrency: {secs} s, {READERS} readers, {reads} snapshot reads (each a full scan + \
         8 lookups + an exact and a planned search, plus the same on the previous snapshot; \
         {graph_walks} of them walked a graph), writer {commits} commits and {compactions} \
         compactions; distinct generations seen per reader: {seen:?}"
    );
    assert!(graph_walks > 0, "no planned search walked a graph");
    assert!(
        commits > 0 && compactions > 0,
        "the writer did not exercise both paths"
    );
    assert!(
        seen.iter().all(|&n| n > 1),
        "a reader saw a single generation: it did not race the writer"
    );
    db.snapshot().verify(&sat2cap::Silent).unwrap();
}
