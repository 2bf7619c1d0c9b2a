//! Crash soak: a writer process (this test binary re-executed as `soak_child`) adds, replaces,
//! deletes, commits and compacts in a seeded random order over two collections and is
//! SIGKILLed at seeded random moments. After every kill the parent reopens the folder as the
//! writer (which collects garbage), and checks against a model:
//!
//! - the generation on disk is the last one the child reported as returned ("committed G"),
//!   or the one it had announced and not yet finished ("about to commit / compact G"): never
//!   older, never a mix;
//! - every item of that generation is there bit for bit (fp16 vector bits, lat/lon bits, time,
//!   payload), nothing else is live (deletes and replacements honoured), ids live once;
//! - `verify` passes and no unreferenced segment / tombstone file is left.
//!
//! What each commit does is a pure function of (seed, generation), so the parent computes the
//! expected content from the child's announcements alone.
//!
//! `SAT2CAP_SOAK_KILLS` (default 100) sets the number of kills, `SAT2CAP_SOAK_SEED` the seed.
//! Long run (see docs/RELIABILITY.md):
//! `SAT2CAP_SOAK_KILLS=2000 cargo test --release --no-default-features --test reliability_soak -- --nocapture`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::{Db, IndexOptions, NewItem, OpenOptions};

const CHILD_DIR_ENV: &str = "SAT2CAP_SOAK_CHILD_DIR";
const CHILD_SEED_ENV: &str = "SAT2CAP_SOAK_CHILD_SEED";
/// Collections and their dimensions.
const COLLECTIONS: [(&str, usize); 2] = [("tiles", 8), ("ground", 3)];
/// Ids are drawn from `0..ID_SPACE`, so replacements and deletes of live ids are common.
const ID_SPACE: u64 = 120;

/// What an item is on disk: fp16 bits, lat/lon bits, time, payload.
type Stored = (Vec<u16>, (u64, u64), Option<i64>, Option<String>);
/// Content of a database: (collection, id) -> item.
type Content = BTreeMap<(String, u64), Stored>;

/// One operation of a commit.
enum Op {
    Add {
        coll: usize,
        id: u64,
        vector: Vec<f32>,
        point: Point,
        time: Option<i64>,
        payload: Option<String>,
    },
    Delete {
        coll: usize,
        id: u64,
    },
}

/// The operations of the commit that produces generation `generation`: a pure function.
fn ops_for(seed: u64, generation: u64) -> Vec<Op> {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = r.random_range(1..=24);
    (0..n)
        .map(|_| {
            let coll = r.random_range(0..COLLECTIONS.len());
            let id = r.random_range(0..ID_SPACE);
            if r.random_bool(0.3) {
                return Op::Delete { coll, id };
            }
            let dim = COLLECTIONS[coll].1;
            let vector = (0..dim).map(|_| r.random_range(-1.0f32..1.0)).collect();
            let point = Point::new(r.random_range(-90.0..=90.0), r.random_range(-180.0..180.0))
                .unwrap_or_else(|e| panic!("{e}"));
            let time = r
                .random_bool(0.7)
                .then(|| r.random_range(-4_000_000_000i64..4_000_000_000));
            let payload = r.random_bool(0.6).then(|| {
                let len = r.random_range(0..40);
                // Multi-byte UTF-8 included.
                (0..len)
                    .map(|i| ['a', 'é', '北', '🛰', ' '][(i + id as usize) % 5])
                    .collect()
            });
            Op::Add {
                coll,
                id,
                vector,
                point,
                time,
                payload,
            }
        })
        .collect()
}

/// The fp16 bits `Db::add` stores for `v` (L2-normalised in f64, rounded to fp16).
fn stored_bits(v: &[f32]) -> Vec<u16> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| f16::from_f64(f64::from(*x) / norm).to_bits())
        .collect()
}

/// Applies the operations of one commit to the model (last operation per id wins).
fn apply_model(content: &mut Content, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Add {
                coll,
                id,
                vector,
                point,
                time,
                payload,
            } => {
                content.insert(
                    (COLLECTIONS[*coll].0.to_string(), *id),
                    (
                        stored_bits(vector),
                        (point.lat().to_bits(), point.lon().to_bits()),
                        *time,
                        payload.clone(),
                    ),
                );
            }
            Op::Delete { coll, id } => {
                content.remove(&(COLLECTIONS[*coll].0.to_string(), *id));
            }
        }
    }
}

/// Everything live in a snapshot, failing on duplicates or read errors.
fn observe(snap: &sat2cap::Snapshot) -> Content {
    let mut out = Content::new();
    for (name, _) in COLLECTIONS {
        let c = snap.collection(name).unwrap();
        for it in c.iter() {
            let it = it.unwrap();
            let prev = out.insert(
                (name.to_string(), it.id),
                (
                    it.vector.iter().map(|x| x.to_bits()).collect(),
                    (it.point.lat().to_bits(), it.point.lon().to_bits()),
                    it.time,
                    it.payload.map(str::to_string),
                ),
            );
            assert!(prev.is_none(), "{name}/{} is live twice", it.id);
            // Point lookup agrees with the scan.
            assert_eq!(c.get(it.id).unwrap().as_ref(), Some(&it));
        }
    }
    out
}

/// Child: open the database, then forever: announce, commit the generation's operations,
/// report; now and then announce and run a compaction of one collection.
#[test]
fn soak_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    let mut db = Db::open(
        &dir,
        OpenOptions::read_write().indexes(IndexOptions::none()),
    )
    .unwrap();
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ db.snapshot().generation());
    loop {
        let g = db.snapshot().generation() + 1;
        if r.random_bool(0.15) {
            let coll = COLLECTIONS[r.random_range(0..COLLECTIONS.len())].0;
            println!("@@ about-compact {g}");
            let got = db.compact(coll).unwrap();
            if got == g {
                println!("@@ committed {g}");
            } else {
                assert_eq!(got, g - 1);
                println!("@@ unchanged {got}");
            }
            continue;
        }
        println!("@@ about-commit {g}");
        for op in ops_for(seed, g) {
            match op {
                Op::Add {
                    coll,
                    id,
                    vector,
                    point,
                    time,
                    payload,
                } => db
                    .add(
                        COLLECTIONS[coll].0,
                        NewItem {
                            id,
                            vector: &vector,
                            point,
                            time,
                            payload: payload.as_deref(),
                        },
                    )
                    .unwrap(),
                Op::Delete { coll, id } => db.delete(COLLECTIONS[coll].0, id).unwrap(),
            }
        }
        assert_eq!(db.commit().unwrap(), g);
        println!("@@ committed {g}");
    }
}

/// The parent's view: the last generation the child reported as returned, and the one in
/// flight (announced, not finished), each with its expected content.
struct Model {
    seed: u64,
    confirmed: (u64, Content),
    in_flight: Option<(u64, Content)>,
}

impl Model {
    fn line(&mut self, line: &str) {
        let Some(msg) = line.split("@@ ").nth(1) else {
            return;
        };
        let (what, g) = msg.split_once(' ').unwrap();
        let g: u64 = g.trim().parse().unwrap();
        match what {
            "about-commit" | "about-compact" => {
                assert_eq!(g, self.confirmed.0 + 1, "child announced {what} {g}");
                let mut next = self.confirmed.1.clone();
                if what == "about-commit" {
                    apply_model(&mut next, &ops_for(self.seed, g));
                }
                self.in_flight = Some((g, next));
            }
            "committed" => {
                let f = self.in_flight.take().unwrap();
                assert_eq!(f.0, g);
                self.confirmed = f;
            }
            "unchanged" => {
                assert_eq!(g, self.confirmed.0);
                self.in_flight = None;
            }
            other => panic!("unknown child line {other}"),
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|s| s.parse().unwrap_or_else(|_| panic!("{name}={s:?}")))
        .unwrap_or(default)
}

fn files_on_disk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.ends_with(".s2seg") || n.ends_with(".s2tomb") || n == "MANIFEST.tmp"
        })
        .count()
}

#[test]
fn sigkill_soak_against_model() {
    let kills = env_u64("SAT2CAP_SOAK_KILLS", 100);
    let seed = env_u64("SAT2CAP_SOAK_SEED", 20_261_128);
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut db = Db::open(
            tmp.path(),
            OpenOptions::create_new().indexes(IndexOptions::none()),
        )
        .unwrap();
        for (name, dim) in COLLECTIONS {
            db.create_collection(name, dim).unwrap();
        }
        assert_eq!(db.commit().unwrap(), 1);
    }
    let mut model = Model {
        seed,
        confirmed: (1, Content::new()),
        in_flight: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let (mut saw_confirmed, mut saw_in_flight, mut commits_reported) = (0u64, 0u64, 0u64);
    for round in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "soak_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, tmp.path())
            .env(CHILD_SEED_ENV, seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("@@ ") && tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill after a seeded number of child lines (0 = possibly during open / GC), plus a
        // seeded delay, so kills land in every phase: open, add, segment write, fsyncs,
        // manifest rename, garbage collection.
        let want = rng.random_range(0..6u32);
        let delay = Duration::from_micros(rng.random_range(0..15_000));
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen < want && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                model.line(&line);
                seen += 1;
            }
        }
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        reader.join().unwrap();
        // Everything the child wrote before it died is still in the pipe.
        for line in rx.try_iter() {
            model.line(&line);
        }
        assert!(
            status.code().is_none(),
            "round {round}: the child exited by itself ({status}): it failed"
        );
        commits_reported = model.confirmed.0;

        // Reopen as the writer: recovery + garbage collection, then check.
        let db = Db::open(
            tmp.path(),
            OpenOptions::read_write().indexes(IndexOptions::none()),
        )
        .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let snap = db.snapshot();
        snap.verify(&sat2cap::Silent)
            .unwrap_or_else(|e| panic!("round {round}: verify: {e}"));
        let g = snap.generation();
        let got = observe(&snap);
        if g == model.confirmed.0 {
            assert!(
                got == model.confirmed.1,
                "round {round}: generation {g} content differs from the model"
            );
            saw_confirmed += 1;
        } else {
            let Some((fg, fc)) = model.in_flight.take() else {
                panic!(
                    "round {round}: disk shows generation {g}, last returned {}",
                    model.confirmed.0
                )
            };
            assert_eq!(g, fg, "round {round}: generation on disk");
            assert!(
                got == fc,
                "round {round}: in-flight generation {g} content differs from the model"
            );
            model.confirmed = (fg, fc);
            saw_in_flight += 1;
        }
        model.in_flight = None;
        let refs: usize = snap
            .storage()
            .manifest()
            .collections
            .iter()
            .map(|c| c.segments.len() + c.tombstones.len())
            .sum();
        assert_eq!(
            files_on_disk(tmp.path()),
            refs,
            "round {round}: garbage left after open"
        );
        drop(snap);
        drop(db);
    }
    let secs = started.elapsed().as_secs_f64();
    let live = model.confirmed.1.len();
    println!(
        "soak: {kills} kills in {secs:.1} s, seed {seed}; final generation {commits_reported} \
         ({live} live items); after a kill the disk showed the last returned generation \
         {saw_confirmed} times, the in-flight one {saw_in_flight} times"
    );
    assert_eq!(saw_confirmed + saw_in_flight, kills);
    assert!(
        kills == 0 || model.confirmed.0 > 1,
        "the child never committed: the soak tested nothing"
    );
}
