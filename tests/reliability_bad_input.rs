//! Bad input to the public API: one test per row of the bad-input table in
//! `docs/RELIABILITY.md`, each asserting the exact typed error (and that nothing changed).
//! Bad bytes in files are covered by `tests/reliability_hostile.rs`.

use std::sync::Arc;

use sat2cap::geo::{GeoError, Point};
use sat2cap::storage::{
    CommitError, Db, DbOptions, MemDirectory, NewItem, OpenError, ReadError, SectionBuildError,
    SectionBuilder, Segment, WriteError, MAX_PAYLOAD_BYTES,
};

fn p() -> Point {
    Point::new(1.0, 2.0).unwrap()
}

fn item(v: &[f32]) -> NewItem<'_> {
    NewItem {
        id: 1,
        vector: v,
        point: p(),
        time: None,
        payload: None,
    }
}

/// A database with committed collection "c" of dimension 3 and one item.
fn db() -> (tempfile::TempDir, Db) {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Db::create(tmp.path(), DbOptions::default()).unwrap();
    db.create_collection("c", 3).unwrap();
    db.add("c", item(&[1.0, 0.0, 0.0])).unwrap();
    db.commit().unwrap();
    (tmp, db)
}

/// The add must be refused with `want`, leaving nothing pending.
fn refused(v: NewItem<'_>, want: WriteError) {
    let (_t, mut db) = db();
    assert_eq!(db.add("c", v), Err(want));
    assert_eq!(db.pending_len(), 0);
}

#[test]
fn bad_create_over_existing_database() {
    let (t, db) = db();
    drop(db);
    let e = Db::create(t.path(), DbOptions::default()).unwrap_err();
    assert!(matches!(e, OpenError::AlreadyExists { .. }), "{e}");
}

#[test]
fn bad_create_where_a_file_is() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("file");
    std::fs::write(&f, b"x").unwrap();
    let e = Db::create(&f, DbOptions::default()).unwrap_err();
    assert!(matches!(e, OpenError::Io { .. }), "{e}");
}

#[test]
fn bad_open_of_a_folder_without_database() {
    let t = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open(t.path()).unwrap_err(),
        OpenError::NotFound { .. }
    ));
    assert!(matches!(
        Db::open_snapshot(t.path()).unwrap_err(),
        OpenError::NotFound { .. }
    ));
}

#[test]
fn bad_second_writer() {
    let (t, _db) = db();
    assert!(matches!(
        Db::open(t.path()).unwrap_err(),
        OpenError::WriterLocked { .. }
    ));
    // Readers take no lock.
    assert!(Db::open_snapshot(t.path()).is_ok());
}

#[test]
fn bad_collection_names() {
    let (_t, mut db) = db();
    assert_eq!(
        db.create_collection("", 3),
        Err(WriteError::InvalidName(String::new()))
    );
    let long = "x".repeat(256);
    assert_eq!(
        db.create_collection(&long, 3),
        Err(WriteError::InvalidName(long.clone()))
    );
    assert_eq!(
        db.create_collection("c", 3),
        Err(WriteError::CollectionExists("c".into()))
    );
    db.create_collection("d", 3).unwrap();
    assert_eq!(
        db.create_collection("d", 5),
        Err(WriteError::CollectionExists("d".into())),
        "a pending collection counts"
    );
}

#[test]
fn bad_dimensions() {
    let (_t, mut db) = db();
    assert_eq!(
        db.create_collection("z", 0),
        Err(WriteError::InvalidDimension(0))
    );
    let over = sat2cap::storage::MAX_DIM + 1;
    assert_eq!(
        db.create_collection("z", over),
        Err(WriteError::InvalidDimension(over))
    );
}

#[test]
fn bad_unknown_collection() {
    let (_t, mut db) = db();
    let v = [1.0, 0.0, 0.0];
    assert_eq!(
        db.add("nope", item(&v)),
        Err(WriteError::UnknownCollection("nope".into()))
    );
    assert_eq!(
        db.delete("nope", 1),
        Err(WriteError::UnknownCollection("nope".into()))
    );
    assert!(matches!(
        db.compact("nope"),
        Err(CommitError::Write(WriteError::UnknownCollection(_)))
    ));
    assert_eq!(
        db.snapshot().collection("nope").unwrap_err(),
        ReadError::UnknownCollection("nope".into())
    );
    assert!(matches!(
        db.snapshot().get("nope", 1),
        Err(ReadError::UnknownCollection(_))
    ));
}

#[test]
fn bad_vector_length() {
    refused(
        item(&[1.0, 2.0]),
        WriteError::WrongDimension {
            expected: 3,
            got: 2,
        },
    );
    refused(
        item(&[]),
        WriteError::WrongDimension {
            expected: 3,
            got: 0,
        },
    );
}

#[test]
fn bad_vector_nan_and_infinity() {
    refused(
        item(&[1.0, f32::NAN, 0.0]),
        WriteError::NonFinite { index: 1 },
    );
    refused(
        item(&[f32::INFINITY, 0.0, 0.0]),
        WriteError::NonFinite { index: 0 },
    );
    refused(
        item(&[0.0, 0.0, f32::NEG_INFINITY]),
        WriteError::NonFinite { index: 2 },
    );
}

#[test]
fn bad_vector_zero_norm() {
    refused(item(&[0.0, 0.0, 0.0]), WriteError::ZeroNorm);
    refused(item(&[0.0, -0.0, 0.0]), WriteError::ZeroNorm);
}

#[test]
fn extreme_but_valid_vectors_are_accepted() {
    // Not bad input: f32::MAX and subnormals normalise fine (the norm is taken in f64).
    let (_t, mut db) = db();
    db.add("c", item(&[f32::MAX, f32::MAX, -f32::MAX])).unwrap();
    db.add(
        "c",
        NewItem {
            id: 2,
            ..item(&[1e-45, 0.0, 0.0])
        },
    )
    .unwrap();
    db.commit().unwrap();
    let s = db.snapshot();
    assert_eq!(s.get("c", 2).unwrap().unwrap().vector[0].to_f32(), 1.0);
    s.verify().unwrap();
}

#[test]
fn bad_payload_too_large() {
    let big = "x".repeat(MAX_PAYLOAD_BYTES + 1);
    let v = [1.0, 0.0, 0.0];
    refused(
        NewItem {
            payload: Some(&big),
            ..item(&v)
        },
        WriteError::PayloadTooLarge {
            len: MAX_PAYLOAD_BYTES + 1,
            max: MAX_PAYLOAD_BYTES,
        },
    );
    // The limit itself is fine.
    let (_t, mut db) = db();
    let ok = "y".repeat(MAX_PAYLOAD_BYTES);
    db.add(
        "c",
        NewItem {
            payload: Some(&ok),
            ..item(&v)
        },
    )
    .unwrap();
}

#[test]
fn bad_reserved_time() {
    let v = [1.0, 0.0, 0.0];
    refused(
        NewItem {
            time: Some(i64::MIN),
            ..item(&v)
        },
        WriteError::ReservedTime,
    );
}

#[test]
fn bad_points() {
    assert_eq!(Point::new(91.0, 0.0), Err(GeoError::Latitude(91.0)));
    assert_eq!(Point::new(-90.5, 0.0), Err(GeoError::Latitude(-90.5)));
    assert!(matches!(Point::new(f64::NAN, 0.0), Err(GeoError::Latitude(x)) if x.is_nan()));
    assert_eq!(
        Point::new(0.0, f64::INFINITY),
        Err(GeoError::Longitude(f64::INFINITY))
    );
    // Longitudes wrap: not an error.
    assert_eq!(Point::new(0.0, 540.0).unwrap().lon(), -180.0);
}

#[test]
fn bad_absent_id_is_none_not_an_error() {
    let (_t, mut db) = db();
    assert!(db.snapshot().get("c", 999).unwrap().is_none());
    // Deleting an absent id is a no-op commit: nothing is deleted, no tombstone written.
    db.delete("c", 999).unwrap();
    db.commit().unwrap();
    let s = db.snapshot();
    assert_eq!(s.collection("c").unwrap().len(), 1);
    assert!(s.collection("c").unwrap().tombstones().is_empty());
}

#[test]
fn bad_poisoned_writer() {
    let mem = MemDirectory::new();
    let mut db = Db::create_in(Arc::new(mem.clone()), DbOptions::default()).unwrap();
    db.create_collection("c", 3).unwrap();
    db.commit().unwrap();
    db.add("c", item(&[1.0, 0.0, 0.0])).unwrap();
    // Ops of this commit: write seg, sync seg, sync dir, write tmp, sync tmp, rename (5).
    mem.crash_at(Some(5));
    assert!(matches!(db.commit(), Err(CommitError::Io { .. })));
    mem.crash_at(None);
    let v = [1.0, 0.0, 0.0];
    assert_eq!(db.add("c", item(&v)), Err(WriteError::Poisoned));
    assert_eq!(db.delete("c", 1), Err(WriteError::Poisoned));
    assert_eq!(db.create_collection("e", 1), Err(WriteError::Poisoned));
    assert!(matches!(
        db.commit(),
        Err(CommitError::Write(WriteError::Poisoned))
    ));
}

#[test]
fn bad_corrupt_or_missing_files_at_open() {
    let (t, mut db) = db();
    db.delete("c", 1).unwrap();
    db.commit().unwrap();
    drop(db);
    let path = t.path();
    let list = |suffix: &str| {
        std::fs::read_dir(path)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap()
    };
    // A flipped bit in a segment's header: Corrupt (naming the file).
    let seg = list(".s2seg");
    let orig = std::fs::read(&seg).unwrap();
    let mut b = orig.clone();
    b[20] ^= 1;
    std::fs::write(&seg, &b).unwrap();
    match Db::open_snapshot(path).unwrap_err() {
        OpenError::Corrupt(c) => assert!(c.file.ends_with(".s2seg"), "{c}"),
        e => panic!("{e}"),
    }
    std::fs::write(&seg, &orig).unwrap();
    // A tombstone file of the wrong size: Corrupt.
    let tomb = list(".s2tomb");
    let tb = std::fs::read(&tomb).unwrap();
    std::fs::write(&tomb, &tb[..tb.len() - 1]).unwrap();
    assert!(matches!(Db::open(path).unwrap_err(), OpenError::Corrupt(_)));
    // A missing segment: Io (NotFound), for the writer and for readers.
    std::fs::write(&tomb, &tb).unwrap();
    std::fs::remove_file(&seg).unwrap();
    for e in [
        Db::open(path).unwrap_err(),
        Db::open_snapshot(path).unwrap_err(),
    ] {
        match e {
            OpenError::Io { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            e => panic!("{e}"),
        }
    }
    // A manifest from the future: UnsupportedVersion.
    let man = path.join("MANIFEST");
    let mut m = std::fs::read(&man).unwrap();
    m[8..12].copy_from_slice(&7u32.to_le_bytes());
    let foot = m.len() - 16;
    let crc = crc32c::crc32c(&m[..foot + 8]);
    m[foot + 8..foot + 12].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&man, &m).unwrap();
    assert!(matches!(
        Db::open_snapshot(path).unwrap_err(),
        OpenError::UnsupportedVersion { found: 7, .. }
    ));
}

struct Builder(u32, bool);
impl SectionBuilder for Builder {
    fn build(&self, _: &str, _: &Segment) -> Result<Vec<(u32, Vec<u8>)>, SectionBuildError> {
        if self.1 {
            return Err("graph build failed".into());
        }
        Ok(vec![(self.0, vec![1, 2, 3])])
    }
}

#[test]
fn bad_section_builders() {
    for (b, what) in [
        (Builder(3, false), "reserved or duplicated"),
        (Builder(99, false), "reserved or duplicated"),
        (Builder(100, true), "graph build failed"),
    ] {
        let t = tempfile::tempdir().unwrap();
        let opts = DbOptions {
            section_builders: vec![Arc::new(b)],
        };
        let mut db = Db::create(t.path(), opts).unwrap();
        db.create_collection("c", 3).unwrap();
        db.add("c", item(&[1.0, 0.0, 0.0])).unwrap();
        match db.commit() {
            Err(CommitError::SectionBuilder(m)) => assert!(m.contains(what), "{m}"),
            other => panic!("{other:?}"),
        }
        // Nothing changed, the work is kept.
        assert_eq!(db.snapshot().generation(), 0);
        assert_eq!(
            db.pending_len(),
            2,
            "the new collection and the add are still pending"
        );
    }
}

#[test]
fn bad_outside_text_inputs() {
    use sat2cap::io::query_jsonl::parse_query_line;
    // One representative per parser; the full set is tests/data/hostile.
    assert!(parse_query_line(r#"{"id":1,"k":1,"vector":[1e39]}"#, 3)
        .unwrap_err()
        .what
        .contains("outside the f32 range"));
    assert_eq!(parse_query_line("{", 9).unwrap_err().line, 9);
    assert_eq!(
        sat2cap::time::parse("2021-02-29").unwrap_err().what,
        "day outside the month"
    );
    assert_eq!(sat2cap::time::parse("").unwrap_err().what, "empty");
}
