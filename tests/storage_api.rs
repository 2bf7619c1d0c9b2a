//! Storage API: round trips, replace/delete, compaction, reopen, validation, snapshots,
//! index-section hook, writer lock (in-process and across two processes).

use std::path::Path;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::storage::{kind, ExtraSections, SectionBuildError, SectionBuilder, Segment};
use sat2cap::{
    CommitError, Db, IndexOptions, NewItem, OpenError, OpenOptions, WriteError, MAX_PAYLOAD_BYTES,
};

fn vec_for(id: u64, dim: usize, salt: u64) -> Vec<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(id * 1_000_003 + salt);
    (0..dim).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

fn item<'a>(id: u64, v: &'a [f32], payload: Option<&'a str>, time: Option<i64>) -> NewItem<'a> {
    NewItem {
        id,
        vector: v,
        point: Point::new((id % 180) as f64 - 89.5, (id * 7 % 360) as f64 - 180.0).unwrap(),
        time,
        payload,
    }
}

fn normalised_f16(v: &[f32]) -> Vec<half::f16> {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter()
        .map(|x| half::f16::from_f64(f64::from(*x) / n))
        .collect()
}

#[test]
fn round_trip_every_field_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dim = 37;
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("a", dim).unwrap();
    db.create_collection("b", 1).unwrap();
    let vs: Vec<Vec<f32>> = (0..300).map(|i| vec_for(i, dim, 1)).collect();
    let payloads: Vec<String> = (0..300).map(|i| format!("item-{i}-é")).collect();
    // Insert in scrambled order; some with time, some with payload, one empty payload.
    for i in (0..300u64).rev() {
        let p = match i % 3 {
            0 => None,
            1 => Some(payloads[i as usize].as_str()),
            _ => Some(""),
        };
        let t = i
            .is_multiple_of(2)
            .then_some(1_600_000_000 + i as i64 * 3600 - 10_000_000_000);
        db.add("a", item(i * 3, &vs[i as usize], p, t)).unwrap();
    }
    db.add("b", item(5, &[-2.0], None, None)).unwrap();
    let g = db.commit().unwrap();
    assert_eq!(g, 1);
    drop(db);
    for snap in [
        Db::open(tmp.path(), OpenOptions::read_only())
            .map(|d| d.snapshot())
            .unwrap(),
        Db::open(
            tmp.path(),
            OpenOptions::read_write().indexes(IndexOptions::none()),
        )
        .unwrap()
        .snapshot(),
    ] {
        snap.verify(&sat2cap::Silent).unwrap();
        assert_eq!(snap.generation(), 1);
        let a = snap.collection("a").unwrap();
        assert_eq!((a.len(), a.dim()), (300, dim));
        for i in 0..300u64 {
            let it = snap.get("a", i * 3).unwrap().unwrap();
            assert_eq!(it.vector, &normalised_f16(&vs[i as usize])[..]);
            assert_eq!(it.point, item(i * 3, &[], None, None).point);
            let t = i
                .is_multiple_of(2)
                .then_some(1_600_000_000 + i as i64 * 3600 - 10_000_000_000);
            assert_eq!(it.time, t);
            let p = match i % 3 {
                0 => None,
                1 => Some(payloads[i as usize].as_str()),
                _ => Some(""),
            };
            assert_eq!(it.payload, p);
            assert!(snap.get("a", i * 3 + 1).unwrap().is_none());
        }
        // Segment read API: ids (in spatial row order, ranked by the id order), vectors in
        // place, row accessors.
        let seg = &a.storage().segments()[0];
        assert_eq!(seg.ids().len(), 300);
        let by_rank: Vec<u64> = (0..300).map(|r| seg.id_at_rank(r).unwrap()).collect();
        assert_eq!(by_rank, (0..300).map(|i| i * 3).collect::<Vec<u64>>());
        assert_eq!(seg.id_range(), Some((0, 897)));
        assert_eq!(seg.ids_between(4, 10).collect::<Vec<_>>(), [6, 9]);
        assert_eq!(seg.ids_between(897, u64::MAX).collect::<Vec<_>>(), [897]);
        for (row, id) in seg.ids().iter().enumerate() {
            assert_eq!(seg.row_of(*id), Some(row));
            assert_eq!(seg.row_of(*id + 1), None);
        }
        let keys: Vec<(u32, u64)> = (0..300)
            .map(|r| {
                (
                    sat2cap::geo::hilbert_key(seg.point(r).unwrap()),
                    seg.id(r).unwrap(),
                )
            })
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "rows in Hilbert order"
        );
        assert!(seg.id_order().is_some(), "the points are not in id order");
        assert_eq!(seg.vectors().len(), 300 * dim);
        assert_eq!(seg.vector(4), &seg.vectors()[4 * dim..5 * dim]);
        assert!(seg.has_times());
        assert_eq!(
            seg.vectors().as_ptr() as usize % 64,
            0,
            "vector block is 64-byte aligned"
        );
        let b = snap.get("b", 5).unwrap().unwrap();
        assert_eq!(b.vector[0].to_f32(), -1.0);
        assert!(snap.get("nope", 1).is_err());
    }
}

#[test]
fn replace_delete_compact() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 8).unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for round in 0..6u64 {
        for _ in 0..40 {
            let id = rng.random_range(0..60u64);
            if rng.random_bool(0.25) {
                db.delete("c", id).unwrap();
                model.remove(&id);
            } else {
                let v = vec_for(id, 8, round);
                db.add("c", item(id, &v, Some("x"), None)).unwrap();
                model.insert(id, normalised_f16(&v));
            }
        }
        db.commit().unwrap();
        let check = |snap: &sat2cap::Snapshot| {
            let c = snap.collection("c").unwrap();
            assert_eq!(c.len(), model.len());
            for id in 0..60 {
                let got = c.get(id).unwrap().map(|i| i.vector.to_vec());
                assert_eq!(got.as_ref(), model.get(&id), "id {id}");
            }
            let live: Vec<u64> = c.iter().map(|i| i.unwrap().id).collect();
            let mut sorted = live.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), live.len(), "each id live once");
        };
        check(&db.snapshot());
        if round == 3 {
            let before_files = std::fs::read_dir(tmp.path()).unwrap().count();
            let g = db.compact("c").unwrap();
            let snap = db.snapshot();
            assert_eq!(snap.generation(), g);
            let c = snap.collection("c").unwrap();
            assert_eq!(c.storage().segments().len(), 1);
            assert_eq!(
                c.storage().segments()[0].len(),
                model.len(),
                "compaction dropped dead rows"
            );
            assert!(snap.storage().manifest().collections[0]
                .tombstones
                .is_empty());
            check(&snap);
            let after_files = std::fs::read_dir(tmp.path()).unwrap().count();
            assert!(after_files < before_files, "old segments were collected");
        }
    }
    drop(db);
    let snap = Db::open(tmp.path(), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    snap.verify(&sat2cap::Silent).unwrap();
    assert_eq!(snap.collection("c").unwrap().len(), model.len());
}

#[test]
fn bad_items_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    assert_eq!(
        db.create_collection("", 4),
        Err(WriteError::InvalidName(String::new()))
    );
    assert_eq!(
        db.create_collection("x", 0),
        Err(WriteError::InvalidDimension(0))
    );
    assert_eq!(
        db.create_collection("x", 4097),
        Err(WriteError::InvalidDimension(4097))
    );
    db.create_collection("x", 4096).unwrap();
    db.create_collection("c", 3).unwrap();
    assert_eq!(
        db.create_collection("c", 3),
        Err(WriteError::CollectionExists("c".into()))
    );
    let add =
        |db: &mut Db, v: &[f32], p: Option<&str>, t: Option<i64>| db.add("c", item(1, v, p, t));
    assert_eq!(
        add(&mut db, &[1.0, 2.0], None, None),
        Err(WriteError::WrongDimension {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        add(&mut db, &[1.0, f32::NAN, 0.0], None, None),
        Err(WriteError::NonFinite { index: 1 })
    );
    assert_eq!(
        add(&mut db, &[f32::INFINITY, 0.0, 0.0], None, None),
        Err(WriteError::NonFinite { index: 0 })
    );
    assert_eq!(
        add(&mut db, &[0.0; 3], None, None),
        Err(WriteError::ZeroNorm)
    );
    // Huge values must not overflow the norm.
    add(&mut db, &[f32::MAX, f32::MAX, 0.0], None, None).unwrap();
    // One big component and a tiny one: the tiny one flushes to zero but the vector is fine;
    // a 4096-d vector of equal tiny parts is fine too. All-zero after rounding is impossible
    // for a unit vector of dim <= 4096 (max component >= 1/64), so Fp16Zero is a guard only.
    let big = vec![1e-30f32; 4096];
    db.add("x", item(1, &big, None, None)).unwrap();
    let long = "y".repeat(MAX_PAYLOAD_BYTES + 1);
    assert_eq!(
        add(&mut db, &[1.0, 0.0, 0.0], Some(&long), None),
        Err(WriteError::PayloadTooLarge {
            len: MAX_PAYLOAD_BYTES + 1,
            max: MAX_PAYLOAD_BYTES
        })
    );
    assert_eq!(
        add(&mut db, &[1.0, 0.0, 0.0], None, Some(i64::MIN)),
        Err(WriteError::ReservedTime)
    );
    assert_eq!(
        db.add("zzz", item(1, &[1.0], None, None)),
        Err(WriteError::UnknownCollection("zzz".into()))
    );
    assert_eq!(
        db.delete("zzz", 1),
        Err(WriteError::UnknownCollection("zzz".into()))
    );
    db.commit().unwrap();
    let s = db.snapshot();
    assert_eq!(s.collection("c").unwrap().len(), 1);
    assert_eq!(s.collection("x").unwrap().len(), 1);
    // create on an existing database, open on an empty folder.
    let e = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::WriterLocked { .. } | OpenError::AlreadyExists { .. }
        ),
        "{e}"
    );
    drop(db);
    assert!(matches!(
        Db::open(
            tmp.path(),
            OpenOptions::create_new().indexes(IndexOptions::none())
        ),
        Err(OpenError::AlreadyExists { .. })
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open(
            empty.path(),
            OpenOptions::read_write().indexes(IndexOptions::none())
        ),
        Err(OpenError::NotFound { .. })
    ));
    assert!(matches!(
        Db::open(empty.path(), OpenOptions::read_only()).map(|d| d.snapshot()),
        Err(OpenError::NotFound { .. })
    ));
}

#[test]
fn snapshot_isolation_while_another_thread_commits_and_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 16).unwrap();
    for id in 0..100 {
        db.add("c", item(id, &vec_for(id, 16, 0), None, None))
            .unwrap();
    }
    db.commit().unwrap();
    let old = db.snapshot();
    let old_vecs: Vec<Vec<half::f16>> = (0..100)
        .map(|id| old.get("c", id).unwrap().unwrap().vector.to_vec())
        .collect();
    let source = db.snapshot_source();
    // A reader that opens the folder from scratch (no shared handle) while files are
    // being collected: it must always get a complete, valid snapshot.
    let path = tmp.path().to_path_buf();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let opener = std::thread::spawn(move || {
        let mut opens = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) || opens == 0 {
            let s = Db::open(&path, OpenOptions::read_only())
                .map(|d| d.snapshot())
                .unwrap();
            let c = s.collection("c").unwrap();
            assert_eq!(c.iter().count(), c.len());
            assert!(c.len() >= 85);
            opens += 1;
        }
        opens
    });
    let writer = std::thread::spawn(move || {
        for round in 1..=10u64 {
            for id in 0..100 {
                if id % 7 == round % 7 {
                    db.delete("c", id).unwrap();
                } else {
                    db.add("c", item(id, &vec_for(id, 16, round), None, None))
                        .unwrap();
                }
            }
            db.commit().unwrap();
            if round % 3 == 0 {
                db.compact("c").unwrap();
            }
        }
        db
    });
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let old = old.clone();
            let old_vecs = old_vecs.clone();
            let source = source.clone();
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < 200 {
                    // The old snapshot never changes, even after its files are collected.
                    for id in 0..100u64 {
                        assert_eq!(
                            old.get("c", id).unwrap().unwrap().vector,
                            &old_vecs[id as usize][..]
                        );
                    }
                    // A fresh snapshot is always internally consistent.
                    let s = source.snapshot();
                    let c = s.collection("c").unwrap();
                    assert_eq!(c.iter().count(), c.len());
                    seen += 1;
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    let db = writer.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(opener.join().unwrap() > 0);
    old.verify(&sat2cap::Silent).unwrap();
    assert_eq!(old.collection("c").unwrap().len(), 100);
    let now = db.snapshot();
    assert_eq!(now.generation(), 1 + 10 + 3);
    assert_eq!(
        now.collection("c").unwrap().len(),
        (0..100).filter(|id| id % 7 != 10 % 7).count()
    );
}

/// Index section kinds no reader of this crate parses (opaque to storage and search).
const SUMMARY: u32 = 160;
const OPAQUE: u32 = 161;

struct Summary;
impl SectionBuilder for Summary {
    fn build(&self, collection: &str, seg: &Segment) -> Result<ExtraSections, SectionBuildError> {
        let mut out = collection.as_bytes().to_vec();
        out.extend_from_slice(&(seg.len() as u64).to_le_bytes());
        out.extend_from_slice(&seg.ids().iter().sum::<u64>().to_le_bytes());
        Ok(vec![(SUMMARY, out), (OPAQUE, vec![7; 3])])
    }
}

struct Bad;
impl SectionBuilder for Bad {
    fn build(&self, _: &str, _: &Segment) -> Result<ExtraSections, SectionBuildError> {
        Ok(vec![(kind::IDS, vec![])])
    }
}

#[test]
fn section_builder_hook_adds_index_sections() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = OpenOptions::create_new()
        .indexes(IndexOptions::none())
        .section_builder(Arc::new(Summary));
    let mut db = Db::open(tmp.path(), opts).unwrap();
    db.create_collection("c", 4).unwrap();
    for id in [3u64, 1, 2] {
        db.add("c", item(id, &[1.0, 0.0, 0.0, id as f32], None, None))
            .unwrap();
    }
    db.commit().unwrap();
    db.add("c", item(10, &[1.0, 0.0, 0.0, 1.0], None, None))
        .unwrap();
    db.commit().unwrap();
    db.compact("c").unwrap();
    drop(db);
    let snap = Db::open(tmp.path(), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    snap.verify(&sat2cap::Silent).unwrap();
    let seg = &snap.collection("c").unwrap().storage().segments()[0];
    let hnsw = seg.section(SUMMARY).unwrap();
    assert_eq!(&hnsw[..1], b"c");
    assert_eq!(u64::from_le_bytes(hnsw[1..9].try_into().unwrap()), 4);
    assert_eq!(u64::from_le_bytes(hnsw[9..17].try_into().unwrap()), 16);
    assert_eq!(seg.section(OPAQUE), Some(&[7u8, 7, 7][..]));
    assert_eq!(seg.section(150), None);

    let mut db = Db::open(
        tmp.path(),
        OpenOptions::read_write()
            .indexes(IndexOptions::none())
            .section_builder(Arc::new(Bad)),
    )
    .unwrap();
    db.add("c", item(11, &[1.0, 0.0, 0.0, 1.0], None, None))
        .unwrap();
    assert!(matches!(db.commit(), Err(CommitError::SectionBuilder(_))));
    drop(db);
    assert_eq!(
        Db::open(tmp.path(), OpenOptions::read_only())
            .map(|d| d.snapshot())
            .unwrap()
            .collection("c")
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn second_writer_in_process_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    assert!(matches!(
        Db::open(
            tmp.path(),
            OpenOptions::read_write().indexes(IndexOptions::none())
        ),
        Err(OpenError::WriterLocked { .. })
    ));
    // Readers need no lock.
    Db::open(tmp.path(), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    drop(db);
    Db::open(
        tmp.path(),
        OpenOptions::read_write().indexes(IndexOptions::none()),
    )
    .unwrap();
}

const CHILD_ENV: &str = "SAT2CAP_LOCK_CHILD_DIR";

/// Child half of `writer_lock_across_two_processes` (does nothing unless the env var is set).
#[test]
fn lock_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    match Db::open(
        &dir,
        OpenOptions::read_write().indexes(IndexOptions::none()),
    ) {
        Err(OpenError::WriterLocked { .. }) => println!("CHILD: locked"),
        Ok(_) => println!("CHILD: opened"),
        Err(e) => println!("CHILD: error {e}"),
    }
}

fn run_child(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    s.lines()
        .find_map(|l| l.find("CHILD:").map(|i| l[i..].to_string()))
        .unwrap_or_else(|| "no child output".to_string())
}

#[test]
fn writer_lock_across_two_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    assert_eq!(run_child(tmp.path()), "CHILD: locked");
    drop(db);
    assert_eq!(run_child(tmp.path()), "CHILD: opened");
}

#[test]
fn handles_are_send_and_sync_and_accessors_take_any_row() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Db>();
    send_sync::<sat2cap::Snapshot>();
    send_sync::<sat2cap::storage::SegmentView>();
    send_sync::<sat2cap::SnapshotSource>();
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 2).unwrap();
    db.add("c", item(1, &[1.0, 1.0], Some("p"), Some(5)))
        .unwrap();
    db.commit().unwrap();
    let snap = db.snapshot();
    let seg = &snap.collection("c").unwrap().storage().segments()[0];
    for row in [1, 2, 1 << 40, usize::MAX] {
        assert!(seg.vector(row).is_empty());
        assert_eq!(seg.id(row), None);
        assert!(seg.point(row).is_err());
        assert_eq!(seg.time(row), None);
        assert_eq!(seg.payload(row), Ok(None));
        assert!(seg.is_deleted(row));
    }
    assert_eq!((seg.time(0), seg.payload(0)), (Some(5), Ok(Some("p"))));
}

#[test]
fn collection_properties_commit_compact_reopen_and_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 4).unwrap();
    // Set in the same commit that creates the collection.
    db.set_property("c", "model", Some("m1")).unwrap();
    db.set_property("c", "gone", Some("x")).unwrap();
    db.set_property("c", "gone", None).unwrap();
    let v = vec_for(1, 4, 0);
    db.add("c", item(1, &v, None, None)).unwrap();
    assert_eq!(db.commit().unwrap(), 1);
    let snap = db.snapshot();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.property("model"), Some("m1"));
    assert_eq!(c.property("gone"), None);
    assert_eq!(c.properties().len(), 1);
    // A property change alone is a commit (new generation, no new files).
    db.set_property("c", "model", Some("m2")).unwrap();
    db.set_property("c", "extra", Some("")).unwrap();
    assert_eq!(db.pending_len(), 2);
    assert_eq!(db.commit().unwrap(), 2);
    assert_eq!(
        db.snapshot()
            .collection("c")
            .unwrap()
            .storage()
            .segments()
            .len(),
        1
    );
    // Compaction keeps them.
    db.add("c", item(2, &v, None, None)).unwrap();
    db.commit().unwrap();
    db.compact("c").unwrap();
    drop(db);
    let snap = Db::open(tmp.path(), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    let c = snap.collection("c").unwrap();
    assert_eq!(
        c.properties()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        vec![("extra", ""), ("model", "m2")]
    );
    assert_eq!(
        snap.storage().manifest().version,
        sat2cap::storage::MANIFEST_VERSION
    );

    // Limits: refused, nothing pending.
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::read_write().indexes(IndexOptions::none()),
    )
    .unwrap();
    let bad = |db: &mut Db, k: &str, v: &str| {
        let e = db.set_property("c", k, Some(v)).unwrap_err();
        assert!(matches!(e, WriteError::InvalidProperty(_)), "{e}");
    };
    bad(&mut db, "", "v");
    bad(&mut db, &"k".repeat(256), "v");
    bad(&mut db, "k", &"v".repeat(64 * 1024 + 1));
    assert_eq!(
        db.set_property("nope", "k", Some("v")),
        Err(WriteError::UnknownCollection("nope".into()))
    );
    assert_eq!(db.pending_len(), 0);
    for i in 0..254 {
        db.set_property("c", &format!("p{i:03}"), Some("v"))
            .unwrap();
    }
    bad(&mut db, "one-too-many", "v");
    db.commit().unwrap();
    assert_eq!(
        db.snapshot().collection("c").unwrap().properties().len(),
        256
    );
    // Longest key and value round-trip.
    db.set_property("c", "p000", None).unwrap();
    db.set_property("c", &"k".repeat(255), Some(&"v".repeat(64 * 1024)))
        .unwrap();
    db.commit().unwrap();
    drop(db);
    let snap = Db::open(tmp.path(), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    let c = snap.collection("c").unwrap();
    assert_eq!(c.property(&"k".repeat(255)).map(str::len), Some(64 * 1024));
}

#[test]
fn manifest_properties_decode_is_strict() {
    use sat2cap::storage::Manifest;
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("c", 4).unwrap();
    db.set_property("c", "aa", Some("1")).unwrap();
    db.set_property("c", "ab", Some("2")).unwrap();
    db.commit().unwrap();
    drop(db);
    let good = std::fs::read(tmp.path().join("MANIFEST")).unwrap();
    let m = Manifest::decode(&good, "m").unwrap();
    assert_eq!(m.encode(), good, "canonical");
    let reseal = |b: &mut Vec<u8>| {
        let foot = b.len() - 16;
        let c = crc32c::crc32c(&b[..foot + 8]);
        b[foot + 8..foot + 12].copy_from_slice(&c.to_le_bytes());
    };
    let find = |b: &[u8], s: &[u8]| b.windows(s.len()).position(|w| w == s).unwrap();
    // Keys out of order ("ab" before "aa").
    let mut b = good.clone();
    let (i, j) = (find(&b, b"aa"), find(&b, b"ab"));
    b[i + 1] = b'b';
    b[j + 1] = b'a';
    reseal(&mut b);
    let e = Manifest::decode(&b, "m").unwrap_err().to_string();
    assert!(e.contains("not strictly increasing"), "{e}");
    // A value that is not UTF-8.
    let mut b = good.clone();
    let i = find(&b, b"ab");
    b[i + 2 + 4] = 0xFF;
    reseal(&mut b);
    let e = Manifest::decode(&b, "m").unwrap_err().to_string();
    assert!(e.contains("not UTF-8"), "{e}");
    // A key length that runs past the end.
    let mut b = good.clone();
    let i = find(&b, b"aa");
    b[i - 4..i].copy_from_slice(&200u32.to_le_bytes());
    reseal(&mut b);
    assert!(Manifest::decode(&b, "m").is_err());
}

/// `CreateIfMissing` creates over what an interrupted first create leaves (the lock file, a
/// temporary manifest, unreferenced segment files: removed by the first commit), opens a
/// database, and refuses a folder of other files instead of taking it over.
#[test]
fn create_if_missing_over_leftovers_but_not_over_foreign_files() {
    let t = tempfile::tempdir().unwrap();
    // What an interrupted create leaves: the first bytes of a real manifest and segment
    // (their headers are written first), and the lock file.
    let real = t.path().join("real");
    let mut db = Db::open(&real, OpenOptions::create_if_missing()).unwrap();
    db.create_collection("c", 2).unwrap();
    db.add(
        "c",
        NewItem {
            id: 1,
            vector: &[1.0, 0.0],
            point: Point::new(0.0, 0.0).unwrap(),
            time: None,
            payload: None,
        },
    )
    .unwrap();
    db.commit().unwrap();
    drop(db);
    let seg = std::fs::read_dir(&real)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "s2seg"))
        .unwrap();
    let half = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        b[..b.len() / 2].to_vec()
    };
    let left = t.path().join("left");
    std::fs::create_dir(&left).unwrap();
    std::fs::write(left.join("LOCK"), b"").unwrap();
    std::fs::write(left.join("MANIFEST.tmp"), half(&real.join("MANIFEST"))).unwrap();
    std::fs::write(left.join("seg-0000000000000001.s2seg"), half(&seg)).unwrap();
    let mut db = Db::open(&left, OpenOptions::create_if_missing()).unwrap();
    db.create_collection("c", 2).unwrap();
    db.commit().unwrap();
    drop(db);
    let mut names: Vec<String> = std::fs::read_dir(&left)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["LOCK", "MANIFEST"], "the leftovers are gone");
    let db = Db::open(&left, OpenOptions::create_if_missing()).unwrap();
    assert_eq!(
        db.snapshot().collection("c").unwrap().dim(),
        2,
        "opened, not re-created"
    );
    drop(db);

    let foreign = t.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    let e = Db::open(&foreign, OpenOptions::create_if_missing()).unwrap_err();
    assert!(matches!(e, OpenError::NotADatabase { .. }), "{e}");
    assert!(e.to_string().contains("holds other files"), "{e}");
    assert!(matches!(
        Db::open(&foreign, OpenOptions::read_write()).unwrap_err(),
        OpenError::NotFound { .. }
    ));
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing written"
    );
}
