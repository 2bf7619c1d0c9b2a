//! Crash safety: a fault-injecting in-memory directory crashes at every mutating operation
//! (write / fsync / rename / folder fsync / remove) of commits and compactions; after a
//! "reboot" that keeps only durable bytes the database must show exactly the last committed
//! state (or the new one, for a crash inside the commit that was in flight).
//! Plus a real-process test: a child ingesting and committing is SIGKILLed at seeded moments.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::storage::Directory;
use sat2cap::testing::{MemDirectory, RebootMode};
use sat2cap::{Db, IndexOptions, NewItem, OpenOptions};

type Model = BTreeMap<u64, (Vec<u16>, Option<i64>, Option<String>)>;

fn observe(snap: &sat2cap::Snapshot) -> Model {
    let Ok(c) = snap.collection("c") else {
        return Model::new();
    };
    c.iter()
        .map(|it| {
            let it = it.unwrap();
            (
                it.id,
                (
                    it.vector.iter().map(|x| x.to_bits()).collect(),
                    it.time,
                    it.payload.map(String::from),
                ),
            )
        })
        .collect()
}

fn vector(id: u64, round: u64) -> Vec<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(id ^ (round << 32));
    (0..6).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

fn expect(id: u64, round: u64) -> (Vec<u16>, Option<i64>, Option<String>) {
    let v = vector(id, round);
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (
        v.iter()
            .map(|x| half::f16::from_f64(f64::from(*x) / n).to_bits())
            .collect(),
        id.is_multiple_of(2).then_some(id as i64 * 10),
        id.is_multiple_of(3).then(|| format!("p{id}r{round}")),
    )
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Commit(u64),
    Compact,
}

/// The workload: 5 commits (adds, replaces, deletes), a compaction, 2 more commits, and a
/// second compaction. Applies `step` to `db`, and to `model`.
fn apply(db: &mut Db, step: Step, model: &mut Model) -> bool {
    match step {
        Step::Commit(round) => {
            let mut r = ChaCha8Rng::seed_from_u64(round);
            if round == 0 {
                db.create_collection("c", 6).unwrap();
            }
            for _ in 0..12 {
                let id = r.random_range(0..20u64);
                if round > 0 && r.random_bool(0.3) {
                    db.delete("c", id).unwrap();
                    model.remove(&id);
                } else {
                    let v = vector(id, round);
                    let e = expect(id, round);
                    db.add(
                        "c",
                        NewItem {
                            id,
                            vector: &v,
                            point: Point::new(1.0, id as f64).unwrap(),
                            time: e.1,
                            payload: e.2.as_deref(),
                        },
                    )
                    .unwrap();
                    model.insert(id, e);
                }
            }
            db.commit().is_ok()
        }
        Step::Compact => db.compact("c").is_ok(),
    }
}

const STEPS: [Step; 9] = [
    Step::Commit(0),
    Step::Commit(1),
    Step::Commit(2),
    Step::Commit(3),
    Step::Commit(4),
    Step::Compact,
    Step::Commit(5),
    Step::Commit(6),
    Step::Compact,
];

#[test]
fn crash_at_every_operation_of_commits_and_compactions() {
    // Count operations of a clean run (create included).
    let clean = MemDirectory::new();
    clean.crash_at(None);
    {
        let mut db = Db::open_in(
            Arc::new(clean.clone()),
            OpenOptions::create_new().indexes(IndexOptions::none()),
        )
        .unwrap();
        let mut m = Model::new();
        for s in STEPS {
            assert!(apply(&mut db, s, &mut m));
        }
    }
    let total = clean.ops();
    let log = clean.log();
    assert!(log.iter().any(|l| l.starts_with("rename MANIFEST.tmp")));
    assert!(
        log.iter().any(|l| l.starts_with("remove seg-")),
        "compaction collected garbage"
    );
    assert!(total > 60, "workload too small: {total} ops");

    let (mut saw_old, mut saw_new) = (0, 0);
    for crash in 0..total {
        for mode in [RebootMode::DurableEntriesOnly, RebootMode::AllEntries] {
            let mem = MemDirectory::new();
            mem.crash_at(Some(crash));
            let mut committed: Option<Model> = None; // None: the database was never created
            let mut attempt = Model::new();
            let mut crashed_step = None;
            match Db::open_in(
                Arc::new(mem.clone()),
                OpenOptions::create_new().indexes(IndexOptions::none()),
            ) {
                Err(_) => crashed_step = Some("create"),
                Ok(mut db) => {
                    committed = Some(Model::new());
                    for s in STEPS {
                        let ok = apply(&mut db, s, &mut attempt);
                        if ok && !mem.crashed() {
                            committed = Some(attempt.clone());
                        } else if ok {
                            // The crash hit garbage collection after the commit point:
                            // the commit returned, so it must survive.
                            committed = Some(attempt.clone());
                            crashed_step = Some("gc");
                            break;
                        } else {
                            crashed_step = Some("commit");
                            break;
                        }
                    }
                }
            }
            assert!(mem.crashed(), "crash point {crash} was not reached");
            let rebooted = mem.reboot(mode);
            let dir: Arc<dyn Directory> = Arc::new(rebooted.clone());
            let Some(committed) = committed else {
                // Crash during create: either no database or an empty one.
                match Db::open_in(dir, OpenOptions::read_write().indexes(IndexOptions::none())) {
                    Err(sat2cap::storage::OpenError::NotFound { .. }) => {}
                    Ok(db) => assert!(db.snapshot().collection_names().next().is_none()),
                    Err(e) => panic!("crash {crash} {mode:?} during create: {e}"),
                }
                continue;
            };
            let mut db = Db::open_in(
                dir.clone(),
                OpenOptions::read_write().indexes(IndexOptions::none()),
            )
            .unwrap_or_else(|e| panic!("crash {crash} {mode:?}: reopen failed: {e}"));
            let snap = db.snapshot();
            snap.verify(&sat2cap::Silent).unwrap();
            let got = observe(&snap);
            if got == committed {
                saw_old += 1;
            } else if crashed_step == Some("commit") && got == attempt {
                saw_new += 1;
            } else {
                panic!(
                    "crash at op {crash} ({:?}) {mode:?}: state is neither the committed nor the attempted one",
                    mem.log().last()
                );
            }
            // Garbage from the interrupted commit was removed at open.
            let refs: usize = snap
                .storage()
                .manifest()
                .collections
                .iter()
                .map(|c| c.segments.len() + c.tombstones.len())
                .sum();
            let files = rebooted
                .list()
                .unwrap()
                .into_iter()
                .filter(|n| n.ends_with(".s2seg") || n.ends_with(".s2tomb"))
                .count();
            assert_eq!(
                files, refs,
                "crash {crash} {mode:?}: unreferenced files left after open"
            );
            // The database keeps working after recovery.
            if snap.collection("c").is_err() {
                db.create_collection("c", 6).unwrap();
            }
            let v = vector(99, 99);
            db.add(
                "c",
                NewItem {
                    id: 99,
                    vector: &v,
                    point: Point::new(0.0, 0.0).unwrap(),
                    time: None,
                    payload: None,
                },
            )
            .unwrap();
            db.commit().unwrap();
            drop(db);
            let again = Db::open_in(Arc::new(rebooted.clone()), OpenOptions::read_only())
                .map(|d| d.snapshot())
                .unwrap();
            assert_eq!(
                again.collection("c").unwrap().len(),
                got.len() + usize::from(!got.contains_key(&99))
            );
        }
    }
    // Both outcomes of an interrupted commit occur (the test is not vacuous).
    println!("{total} crash points x 2 reboot modes: {saw_old} old state, {saw_new} new state");
    println!("operations of the clean run: {log:#?}");
    assert!(saw_old > 0 && saw_new > 0, "old {saw_old}, new {saw_new}");
}

#[test]
fn model_based_ops_with_crashes() {
    let mut r = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..30 {
        let data: Vec<u8> = (0..r.random_range(0..400)).map(|_| r.random()).collect();
        sat2cap::testing::fuzz::db_ops(&data);
    }
}

const KILL_CHILD_ENV: &str = "SAT2CAP_KILL_CHILD_DIR";
const BATCH: u64 = 20;

fn kill_vector(id: u64) -> Vec<f32> {
    (0..8)
        .map(|j| ((id * 31 + j) % 17) as f32 - 8.0 + 0.5)
        .collect()
}

/// Child half of `sigkill_during_ingest`: ingests batches forever, printing "committed N"
/// after each returned commit (N = number of ids 0..N now committed).
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(KILL_CHILD_ENV) else {
        return;
    };
    let mut db = match Db::open(
        &dir,
        OpenOptions::read_write().indexes(IndexOptions::none()),
    ) {
        Ok(db) => db,
        Err(sat2cap::storage::OpenError::NotFound { .. }) => {
            let mut db = Db::open(
                &dir,
                OpenOptions::create_new().indexes(IndexOptions::none()),
            )
            .unwrap();
            db.create_collection("c", 8).unwrap();
            db.commit().unwrap();
            db
        }
        Err(e) => panic!("{e}"),
    };
    if db.snapshot().collection("c").is_err() {
        db.create_collection("c", 8).unwrap();
        db.commit().unwrap();
    }
    let mut next = db.snapshot().collection("c").unwrap().len() as u64;
    loop {
        for id in next..next + BATCH {
            let v = kill_vector(id);
            let p = format!("{id}");
            db.add(
                "c",
                NewItem {
                    id,
                    vector: &v,
                    point: Point::new(0.5, 0.5).unwrap(),
                    time: Some(id as i64),
                    payload: Some(&p),
                },
            )
            .unwrap();
        }
        next += BATCH;
        db.commit().unwrap();
        if next.is_multiple_of(BATCH * 10) {
            db.compact("c").unwrap();
        }
        println!("committed {next}");
    }
}

#[test]
fn sigkill_during_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut durable = 0u64;
    let started = Instant::now();
    let kills = 50;
    for round in 0..kills {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(KILL_CHILD_ENV, tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test kill_child ... " in front of the first line.
                if let Some(n) = line.split("committed ").nth(1) {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Wait for a seeded number of commits (0..4), then a seeded delay, then SIGKILL.
        let want = rng.random_range(0..4u32);
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen < want && Instant::now() < deadline {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(100)) {
                durable = durable.max(n);
                seen += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            durable = durable.max(n);
        }
        let snap = match Db::open(tmp.path(), OpenOptions::read_only()).map(|d| d.snapshot()) {
            Ok(s) => s,
            Err(sat2cap::storage::OpenError::NotFound { .. }) if durable == 0 => continue,
            Err(e) => panic!("round {round}: {e}"),
        };
        snap.verify(&sat2cap::Silent)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let Ok(c) = snap.collection("c") else {
            assert_eq!(durable, 0);
            continue;
        };
        assert!(
            c.len() as u64 >= durable,
            "round {round}: {} < {durable}",
            c.len()
        );
        assert_eq!(c.len() as u64 % BATCH, 0, "commits are atomic");
        for id in 0..c.len() as u64 {
            let it = c
                .get(id)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: id {id} lost"));
            assert_eq!(it.time, Some(id as i64));
            assert_eq!(it.payload, Some(id.to_string().as_str()));
        }
    }
    assert!(durable > 0, "the child never committed");
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn failed_commit_keeps_pending_or_poisons() {
    let mem = MemDirectory::new();
    let mut db = Db::open_in(
        Arc::new(mem.clone()),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 6).unwrap();
    let v = vector(1, 1);
    let it = NewItem {
        id: 1,
        vector: &v,
        point: Point::new(0.0, 0.0).unwrap(),
        time: None,
        payload: None,
    };
    db.add("c", it).unwrap();
    // I/O failure at the first write: nothing changed, the pending work is kept.
    mem.crash_at(Some(0));
    assert!(db.commit().is_err());
    assert_eq!(db.snapshot().generation(), 0);
    assert_eq!(db.pending_len(), 2);
    mem.crash_at(None);
    assert_eq!(db.commit().unwrap(), 1);
    assert_eq!(db.snapshot().get("c", 1).unwrap().unwrap().id, 1);
    // Failure at the rename (ops: write seg, sync seg, sync_dir, write tmp, sync tmp,
    // rename = op 5): the writer is poisoned.
    db.add("c", NewItem { id: 2, ..it }).unwrap();
    mem.crash_at(Some(5));
    assert!(db.commit().is_err());
    assert!(mem.log().last().unwrap().starts_with("sync MANIFEST.tmp"));
    mem.crash_at(None);
    assert!(matches!(
        db.add("c", it),
        Err(sat2cap::storage::WriteError::Poisoned)
    ));
    assert!(db.commit().is_err());
}
