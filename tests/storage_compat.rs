//! Files written by each released format version stay readable: `tests/data/v1/` holds a
//! database written by format version 1 (regenerate only when adding a NEW version folder:
//! `SAT2CAP_WRITE_COMPAT=1 cargo test --test storage_compat`).

use std::path::PathBuf;

use sat2cap::geo::Point;
use sat2cap::storage::{Db, DbOptions, NewItem};

fn expected(id: u64) -> (Vec<f32>, Point, Option<i64>, Option<String>) {
    let v: Vec<f32> = (0..8).map(|j| ((id + j) % 5) as f32 - 1.5).collect();
    let p = Point::new(id as f64 - 10.0, 170.0 + id as f64).unwrap();
    (
        v,
        p,
        id.is_multiple_of(2).then_some(id as i64 * 86_400),
        id.is_multiple_of(3).then(|| format!("v1-{id}")),
    )
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/db")
}

#[test]
fn write_v1_fixture() {
    if std::env::var("SAT2CAP_WRITE_COMPAT").is_err() {
        return;
    }
    let _ = std::fs::remove_dir_all(dir());
    let mut db = Db::create(dir(), DbOptions::default()).unwrap();
    db.create_collection("tiles", 8).unwrap();
    for id in 0..20 {
        let (v, p, t, pl) = expected(id);
        db.add(
            "tiles",
            NewItem {
                id,
                vector: &v,
                point: p,
                time: t,
                payload: pl.as_deref(),
            },
        )
        .unwrap();
    }
    db.commit().unwrap();
    db.delete("tiles", 3).unwrap();
    db.commit().unwrap();
    drop(db);
    let _ = std::fs::remove_file(dir().join("LOCK"));
}

#[test]
fn opens_v1_database() {
    let snap = Db::open_snapshot(dir()).unwrap();
    snap.verify().unwrap();
    assert_eq!(snap.generation(), 2);
    let c = snap.collection("tiles").unwrap();
    assert_eq!(c.len(), 19);
    assert!(c.get(3).unwrap().is_none());
    for id in (0..20).filter(|&i| i != 3) {
        let (v, p, t, pl) = expected(id);
        let it = c.get(id).unwrap().unwrap();
        let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let want: Vec<half::f16> = v
            .iter()
            .map(|x| half::f16::from_f64(f64::from(*x) / n))
            .collect();
        assert_eq!(it.vector, &want[..]);
        assert_eq!((it.point, it.time, it.payload), (p, t, pl.as_deref()));
    }
}
