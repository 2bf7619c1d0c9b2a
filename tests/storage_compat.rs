//! Files written by each released format version stay readable: `tests/data/v1/` holds a
//! database written with manifest version 1, `tests/data/v2/` one written with manifest
//! version 2 (collection properties), `tests/data/v3/` one written with segment version 2
//! (rows in spatial order, with an id-order section). The writer below writes the CURRENT
//! folder ([`CURRENT`]); run it only when adding a NEW version folder (never over an
//! existing one): `SAT2CAP_WRITE_COMPAT=1 cargo test --test storage_compat`.

use std::path::PathBuf;

use sat2cap::geo::Point;
use sat2cap::{Db, IndexOptions, NewItem, OpenOptions};

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

/// The fixture folder the current format writes: bump it (and add a test that opens the new
/// folder) whenever a file kind's version changes.
const CURRENT: u32 = 3;

fn dir_of(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/v{version}/db"))
}

/// The properties of the version-2 fixture's collection.
const V2_PROPS: [(&str, &str); 2] = [
    ("note", "written by manifest version 2"),
    ("sat2cap.model", r#"{"encoder":"clip-text","dim":8}"#),
];

#[test]
fn write_current_fixture() {
    if std::env::var("SAT2CAP_WRITE_COMPAT").is_err() {
        return;
    }
    let dir = dir_of(CURRENT);
    assert!(
        !dir.exists(),
        "{} exists: never regenerate it",
        dir.display()
    );
    let mut db = Db::open(
        &dir,
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.create_collection("tiles", 8).unwrap();
    for (k, v) in V2_PROPS {
        db.set_property("tiles", k, Some(v)).unwrap();
    }
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
    let _ = std::fs::remove_file(dir.join("LOCK"));
}

#[test]
fn opens_v1_database() {
    let snap = check_content(&dir_of(1));
    assert_eq!(snap.storage().manifest().version, 1);
    assert!(snap.collection("tiles").unwrap().properties().is_empty());
}

#[test]
fn opens_v2_database() {
    let snap = check_content(&dir_of(2));
    assert_eq!(snap.storage().manifest().version, 2);
    let c = snap.collection("tiles").unwrap();
    let props: Vec<(&str, &str)> = c
        .properties()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(props, V2_PROPS);
}

#[test]
fn opens_v3_database() {
    let snap = check_content(&dir_of(3));
    assert_eq!(snap.storage().manifest().version, 2);
    let c = snap.collection("tiles").unwrap();
    assert_eq!(c.properties().len(), V2_PROPS.len());
    let seg = &c.storage().segments()[0];
    assert!(
        seg.id_order().is_some(),
        "segment version 2, rows in spatial order"
    );
    let ids: Vec<u64> = (0..20).map(|r| seg.id(r).unwrap()).collect();
    assert_ne!(ids, (0..20).collect::<Vec<u64>>());
    // Older fixtures store rows by id, without the section.
    let old = check_content(&dir_of(1));
    assert!(old.collection("tiles").unwrap().storage().segments()[0]
        .id_order()
        .is_none());
}

/// A writer opening a version-1 database rewrites its manifest at the current version on the
/// next commit; the data stays as it was and properties can be set.
#[test]
fn v1_database_upgrades_on_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("db");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(dir_of(1)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let mut db = Db::open(
        &copy,
        OpenOptions::read_write().indexes(IndexOptions::none()),
    )
    .unwrap();
    db.set_property("tiles", "k", Some("v")).unwrap();
    assert_eq!(db.commit().unwrap(), 3);
    drop(db);
    let snap = Db::open(&copy, OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    assert_eq!(
        snap.storage().manifest().version,
        sat2cap::storage::MANIFEST_VERSION
    );
    assert_eq!(snap.collection("tiles").unwrap().property("k"), Some("v"));
    // The items are unchanged (only the manifest was rewritten).
    let _ = check_content(&copy);
}

/// Checks the 19 items every fixture holds; returns the snapshot.
fn check_content(dir: &std::path::Path) -> sat2cap::Snapshot {
    let snap = Db::open(dir, OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    snap.verify(&sat2cap::Silent).unwrap();
    assert!(snap.generation() >= 2);
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
    snap
}
