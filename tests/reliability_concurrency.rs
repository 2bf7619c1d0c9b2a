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
//! TODO(query layer): add `search` (filtered and unfiltered) to the readers once `src/query`
//! lands: results must be a subset of the snapshot's live ids, with exact scores.
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
use sat2cap::storage::{Db, DbOptions, NewItem};
use sat2cap::Snapshot;

const DIM: usize = 16;
const READERS: usize = 8;
const ID_SPACE: u64 = 400;

type Stored = (Vec<u16>, (u64, u64), Option<i64>, Option<String>);
type Content = BTreeMap<u64, Stored>;
/// generation -> (digest, live count) of the content it must show.
type History = Arc<RwLock<HashMap<u64, (u64, usize)>>>;

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

fn check(snap: &Snapshot, history: &History, r: &mut ChaCha8Rng) {
    let g = snap.generation();
    let content = read_all(snap, r);
    let Some(&(want, n)) = history.read().unwrap().get(&g) else {
        panic!("generation {g} was never announced by the writer")
    };
    assert_eq!(content.len(), n, "generation {g}: live count");
    assert_eq!(
        digest(&content),
        want,
        "generation {g}: content is not that generation's"
    );
}

#[test]
fn readers_see_consistent_snapshots_while_writer_commits_and_compacts() {
    let secs: f64 = std::env::var("SAT2CAP_CONC_SECS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(5.0);
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::create(tmp.path(), DbOptions::default()).unwrap();
    db.create_collection("c", DIM).unwrap();
    let history: History = Arc::new(RwLock::new(HashMap::new()));
    let mut model = Content::new();
    history
        .write()
        .unwrap()
        .insert(1, (digest(&model), model.len()));
    assert_eq!(db.commit().unwrap(), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let source = db.snapshot_source();
    let mut readers = Vec::new();
    for t in 0..READERS {
        let (history, stop, reads, source) =
            (history.clone(), stop.clone(), reads.clone(), source.clone());
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
                    Db::open_snapshot(&path).unwrap_or_else(|e| panic!("open_snapshot: {e}"))
                };
                check(&snap, &history, &mut r);
                if let Some(old) = previous.take() {
                    // An older snapshot still reads exactly its own generation.
                    check(&old, &history, &mut r);
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
            history
                .write()
                .unwrap()
                .insert(next, (digest(&model), model.len()));
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
        history
            .write()
            .unwrap()
            .insert(next, (digest(&model), model.len()));
        assert_eq!(db.commit().unwrap(), next);
        commits += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<usize> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    let reads = reads.load(Ordering::Relaxed);
    println!(
        "concurrency: {secs} s, {READERS} readers, {reads} snapshot reads (each a full scan + \
         8 lookups, plus a re-read of the previous snapshot), writer {commits} commits and \
         {compactions} compactions; distinct generations seen per reader: {seen:?}"
    );
    assert!(
        commits > 0 && compactions > 0,
        "the writer did not exercise both paths"
    );
    assert!(
        seen.iter().all(|&n| n > 1),
        "a reader saw a single generation: it did not race the writer"
    );
    db.snapshot().verify().unwrap();
}
