//! Fuzz bodies of the storage engine's files (segments, manifests, tombstones) and of a
//! model-checked sequence of database operations over the fault-injecting directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::storage::{
    decode_tombstones, encode_tombstones, AlignedBytes, Directory, Manifest, NewItem, Segment,
};
use crate::testing::{MemDirectory, RebootMode};
use crate::{Db, IndexOptions, OpenOptions, Point, Silent, Snapshot};

/// Opens `data` as a segment; if it opens, reads every row and runs `verify`.
pub fn segment_open(data: &[u8]) {
    let Ok(seg) = Segment::open(Arc::new(AlignedBytes::from_slice(data)), "fuzz") else {
        return;
    };
    let n = seg.len();
    assert_eq!(seg.vectors().len(), n * seg.dim());
    assert_eq!(seg.ids().len(), n);
    for row in 0..n.min(4096) {
        assert_eq!(seg.vector(row).len(), seg.dim());
        let _ = seg.id(row);
        let _ = seg.point(row);
        let _ = seg.time(row);
        let _ = seg.payload(row);
    }
    let _ = seg.vector(n);
    let _ = seg.payload(n);
    // Id lookups go through the id-order section when there is one (never trusted to be a
    // permutation before `verify`).
    let _ = (seg.id_order().map(<[u32]>::len), seg.id_range());
    for row in 0..n.min(256) {
        if let Some(id) = seg.id(row) {
            let _ = seg.row_of(id);
        }
        let _ = seg.id_at_rank(row);
    }
    let _ = seg.ids_between(0, u64::MAX).take(4096).count();
    let _ = seg.ids_between(u64::MAX, 0).count();
    for s in seg.sections() {
        assert_eq!(seg.section(s.kind).map(<[u8]>::len), Some(s.len as usize));
    }
    let _ = seg.verify();
    let _ = crate::search::verify_sections(&seg);
}

/// Parses `data` as a manifest; a manifest that parses must re-encode to the same bytes.
pub fn manifest_parse(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data, "fuzz") {
        assert_eq!(m.encode(), data, "manifest encoding is not canonical");
    }
}

/// Parses `data` as a tombstone file; one that parses must re-encode to the same bytes.
pub fn tombstone_parse(data: &[u8]) {
    if let Ok(ids) = decode_tombstones(data, "fuzz") {
        assert_eq!(encode_tombstones(&ids), data);
    }
}

type Model = BTreeMap<u64, (Vec<u16>, (f64, f64), Option<i64>, Option<String>)>;

fn observed(db: &Snapshot) -> Model {
    let mut out = Model::new();
    if let Ok(c) = db.collection("c") {
        for it in c.iter() {
            let Ok(it) = it else {
                panic!("corrupt item in a clean database")
            };
            let prev = out.insert(
                it.id,
                (
                    it.vector.iter().map(|x| x.to_bits()).collect(),
                    (it.point.lat(), it.point.lon()),
                    it.time,
                    it.payload.map(str::to_string),
                ),
            );
            assert!(prev.is_none(), "id {} is live twice", it.id);
        }
    }
    out
}

/// Model-based: interprets `data` as operations (add, delete, commit, compact, crash and
/// reboot) on an in-memory database and compares every committed state with a model.
pub fn db_ops(data: &[u8]) {
    let mem = MemDirectory::new();
    let no_index = |o: OpenOptions| o.indexes(IndexOptions::none());
    let Ok(mut db) = Db::open_in(Arc::new(mem.clone()), no_index(OpenOptions::create_new())) else {
        panic!("create failed")
    };
    let mut dir = mem;
    if db.create_collection("c", 4).is_err() || db.commit().is_err() {
        panic!("setup failed");
    }
    let mut committed = Model::new();
    let mut pending = committed.clone();
    for chunk in data.chunks(4).take(256) {
        let op = chunk[0] % 8;
        let id = u64::from(chunk.get(1).copied().unwrap_or(0) % 16);
        let x = f32::from(chunk.get(2).copied().unwrap_or(1)) - 128.0;
        match op {
            0..=2 => {
                let v = [x, 1.0, -0.5, 0.25];
                let item = NewItem {
                    id,
                    vector: &v,
                    point: Point::new(f64::from(x) / 2.0, f64::from(x) * 1.5)
                        .unwrap_or_else(|_| unreachable!()),
                    time: (op == 1).then_some(i64::from(x as i32) * 1000),
                    payload: (op == 2).then_some("p"),
                };
                if db.add("c", item).is_ok() {
                    let norm = v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
                    pending.insert(
                        id,
                        (
                            v.iter()
                                .map(|a| half::f16::from_f64(f64::from(*a) / norm).to_bits())
                                .collect(),
                            (item.point.lat(), item.point.lon()),
                            item.time,
                            item.payload.map(str::to_string),
                        ),
                    );
                }
            }
            3 | 4 => {
                if db.delete("c", id).is_ok() {
                    pending.remove(&id);
                }
            }
            5 => {
                if db.commit().is_ok() {
                    committed = pending.clone();
                }
            }
            6 => {
                if db.compact("c").is_ok() {
                    committed = pending.clone();
                }
            }
            _ => {
                // Crash at a chosen mutating operation of the next commit, then reboot.
                dir.crash_at(Some(u64::from(chunk.get(3).copied().unwrap_or(0) % 12)));
                let before = committed.clone();
                let ok = db.commit().is_ok();
                drop(db);
                let mode = if id % 2 == 0 {
                    RebootMode::DurableEntriesOnly
                } else {
                    RebootMode::AllEntries
                };
                dir = dir.reboot(mode);
                let d: Arc<dyn Directory> = Arc::new(dir.clone());
                let Ok(reopened) = Db::open_in(d, no_index(OpenOptions::read_write())) else {
                    panic!("reopen after crash failed")
                };
                db = reopened;
                let now = observed(&db.snapshot());
                if ok {
                    assert_eq!(now, pending, "a returned commit was lost");
                } else {
                    assert!(now == before || now == pending, "crash left a mixed state");
                }
                committed = now;
                pending = committed.clone();
            }
        }
        assert_eq!(observed(&db.snapshot()), committed);
    }
    if db.snapshot().verify(&Silent).is_err() {
        panic!("verify failed on a clean database");
    }
}
