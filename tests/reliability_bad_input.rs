//! Bad input to the public API: one test per row of the bad-input table in
//! `docs/RELIABILITY.md`, each asserting the exact typed error (and that nothing changed).
//! Bad bytes in files are covered by `tests/reliability_hostile.rs`.

use std::sync::Arc;

use sat2cap::geo::{GeoError, Point};
use sat2cap::storage::{SectionBuildError, SectionBuilder, Segment};
use sat2cap::testing::MemDirectory;
use sat2cap::{
    CommitError, Db, IndexOptions, NewItem, OpenError, OpenOptions, ReadError, WriteError,
    MAX_PAYLOAD_BYTES,
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
    let mut db = Db::open(
        tmp.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
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
    let e = Db::open(
        t.path(),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap_err();
    assert!(matches!(e, OpenError::AlreadyExists { .. }), "{e}");
}

#[test]
fn bad_create_where_a_file_is() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("file");
    std::fs::write(&f, b"x").unwrap();
    let e = Db::open(&f, OpenOptions::create_new().indexes(IndexOptions::none())).unwrap_err();
    assert!(matches!(e, OpenError::NotAFolder { .. }), "{e}");
    assert!(
        e.to_string()
            .ends_with(" exists and is not a folder (a database is a folder)"),
        "{e}"
    );
}

#[test]
fn bad_open_of_a_folder_without_database() {
    let t = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open(
            t.path(),
            OpenOptions::read_write().indexes(IndexOptions::none())
        )
        .unwrap_err(),
        OpenError::NotFound { .. }
    ));
    assert!(matches!(
        Db::open(t.path(), OpenOptions::read_only())
            .map(|d| d.snapshot())
            .unwrap_err(),
        OpenError::NotFound { .. }
    ));
    // A folder that does not exist: the same error, not an I/O error on the lock file
    // (regression: `Db::open` said "I/O error on <path>/LOCK: No such file or directory").
    let missing = t.path().join("missing");
    for e in [
        Db::open(
            &missing,
            OpenOptions::read_write().indexes(IndexOptions::none()),
        )
        .unwrap_err(),
        Db::open(&missing, OpenOptions::read_only())
            .map(|d| d.snapshot())
            .unwrap_err(),
    ] {
        assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
    }
    assert!(!missing.exists(), "opening created the folder");
}

#[test]
fn bad_second_writer() {
    let (t, _db) = db();
    assert!(matches!(
        Db::open(
            t.path(),
            OpenOptions::read_write().indexes(IndexOptions::none())
        )
        .unwrap_err(),
        OpenError::WriterLocked { .. }
    ));
    // Readers take no lock.
    assert!(Db::open(t.path(), OpenOptions::read_only())
        .map(|d| d.snapshot())
        .is_ok());
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
    s.verify(&sat2cap::Silent).unwrap();
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
    assert_eq!(s.collection("c").unwrap().tombstone_sets(), 0);
}

/// A full disk at any write of a spill or a commit: it fails, no file it wrote is left
/// behind (half-written ones included), the database is as it was, nothing pending is lost,
/// and the same work commits whole once there is room again.
#[test]
fn full_disk_leaves_no_partial_files() {
    use sat2cap::storage::Directory;
    let segs = |m: &MemDirectory| {
        let mut v: Vec<String> = m
            .list()
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".s2seg"))
            .collect();
        v.sort();
        v
    };
    let mut failures = 0;
    for fail_at in 0..12u64 {
        let mem = MemDirectory::new();
        let mut db = Db::open_in(Arc::new(mem.clone()), OpenOptions::create_new()).unwrap();
        db.create_collection("c", 3).unwrap();
        db.add("c", item(&[1.0, 0.0, 0.0])).unwrap();
        db.commit().unwrap();
        let before = segs(&mem);
        let generation = db.snapshot().generation();
        for id in 10..20u64 {
            let v = [1.0, id as f32, 0.5];
            db.add("c", NewItem { id, ..item(&v) }).unwrap();
        }
        mem.fail_once_at(fail_at);
        let spilled = db.spill();
        for id in 20..25u64 {
            let v = [0.5, id as f32, 1.0];
            db.add("c", NewItem { id, ..item(&v) }).unwrap();
        }
        match spilled.and_then(|()| db.commit().map(|_| ())) {
            // The failure fell after the commit's rename (a garbage removal): committed.
            Ok(()) => {
                assert_eq!(db.snapshot().collection("c").unwrap().len(), 16);
                continue;
            }
            Err(e) => assert!(
                e.to_string().contains("injected full disk"),
                "{fail_at}: {e}"
            ),
        }
        failures += 1;
        if db.create_collection("probe", 3) == Err(WriteError::Poisoned) {
            // The failure hit the manifest's rename: the writer is poisoned, and reopening
            // shows the old or the new generation, whole, with nothing stray.
            drop(db);
            let db = Db::open_in(Arc::new(mem.clone()), OpenOptions::read_write()).unwrap();
            let n = db.snapshot().collection("c").unwrap().len();
            assert!(n == 1 || n == 16, "{fail_at}: {n}");
            db.snapshot().verify(&sat2cap::Silent).unwrap();
            assert!(
                !mem.list().unwrap().iter().any(|n| n == "MANIFEST.tmp"),
                "{fail_at}"
            );
            continue;
        }
        assert_eq!(db.snapshot().generation(), generation, "{fail_at}");
        assert!(
            !mem.list().unwrap().iter().any(|n| n == "MANIFEST.tmp"),
            "{fail_at}"
        );
        // Only a spill that succeeded before the failing commit keeps its (unpublished) file.
        let kept = usize::from(db.spilled_rows() > 0);
        assert_eq!(
            segs(&mem).len(),
            before.len() + kept,
            "{fail_at}: {:?}",
            segs(&mem)
        );
        // Room again: the same work commits whole.
        db.spill().unwrap();
        db.commit().unwrap();
        assert_eq!(
            db.snapshot().collection("c").unwrap().len(),
            16,
            "{fail_at}"
        );
        drop(db);
        let snap = Db::open_in(Arc::new(mem.clone()), OpenOptions::read_only())
            .unwrap()
            .snapshot();
        snap.verify(&sat2cap::Silent).unwrap();
        let used: Vec<String> = snap
            .collection("c")
            .unwrap()
            .segments()
            .into_iter()
            .map(|s| s.file)
            .collect();
        for n in segs(&mem) {
            assert!(
                used.iter().any(|u| u.ends_with(n.as_str())),
                "{fail_at}: {n} left behind"
            );
        }
    }
    assert!(
        failures >= 6,
        "only {failures} of the injected failures hit the spill or commit"
    );
}

#[test]
fn bad_poisoned_writer() {
    let mem = MemDirectory::new();
    let mut db = Db::open_in(
        Arc::new(mem.clone()),
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .unwrap();
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
    match Db::open(path, OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap_err()
    {
        OpenError::Corrupt(c) => assert!(c.file.ends_with(".s2seg"), "{c}"),
        e => panic!("{e}"),
    }
    std::fs::write(&seg, &orig).unwrap();
    // A tombstone file of the wrong size: Corrupt.
    let tomb = list(".s2tomb");
    let tb = std::fs::read(&tomb).unwrap();
    std::fs::write(&tomb, &tb[..tb.len() - 1]).unwrap();
    assert!(matches!(
        Db::open(
            path,
            OpenOptions::read_write().indexes(IndexOptions::none())
        )
        .unwrap_err(),
        OpenError::Corrupt(_)
    ));
    // A missing segment: Io (NotFound), for the writer and for readers.
    std::fs::write(&tomb, &tb).unwrap();
    std::fs::remove_file(&seg).unwrap();
    for e in [
        Db::open(
            path,
            OpenOptions::read_write().indexes(IndexOptions::none()),
        )
        .unwrap_err(),
        Db::open(path, OpenOptions::read_only())
            .map(|d| d.snapshot())
            .unwrap_err(),
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
        Db::open(path, OpenOptions::read_only())
            .map(|d| d.snapshot())
            .unwrap_err(),
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
        let opts = OpenOptions::create_new()
            .indexes(IndexOptions::none())
            .section_builder(Arc::new(b));
        let mut db = Db::open(t.path(), opts).unwrap();
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

// ---- The CLI: the exact one-line error of each row of the CLI table in docs/RELIABILITY.md.
// Commands run inside a temporary folder with relative paths, so messages are exact.

mod cli {
    use std::path::Path;
    use std::process::{Command, Output};

    pub fn run(dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sat2cap"))
            .args(args)
            .current_dir(dir)
            .env("SAT2CAP_TINY_MODEL", "1")
            .env_remove("SAT2CAP_WEIGHTS")
            .output()
            .expect("run sat2cap")
    }

    /// The command must exit with `code` and print exactly `sat2cap: <want>` as its error
    /// line (the last line; lines before it may only be the encoders' notes).
    pub fn fails(dir: &Path, args: &[&str], code: i32, want: &str) {
        let o = run(dir, args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(code), "sat2cap {args:?}: {err}");
        let mut lines: Vec<&str> = err.lines().collect();
        let last = lines.pop().unwrap_or("");
        assert_eq!(last, format!("sat2cap: {want}"), "sat2cap {args:?}");
        for l in lines {
            assert!(
                l.starts_with("encoders: ") || l.starts_with("note: "),
                "sat2cap {args:?}: extra stderr line {l:?}"
            );
        }
    }

    /// Inputs for `import`: v.npy (20 x 4 f32), p.csv (20 rows) and bad variants.
    pub fn inputs(dir: &Path) {
        let rows: Vec<f32> = (0..80).map(|i| (i % 7) as f32 + 0.5).collect();
        sat2cap::io::npy::write_npy(
            &dir.join("v.npy"),
            sat2cap::io::npy::NpyDtype::F32,
            4,
            &rows,
        )
        .unwrap();
        let mut csv = String::from("id,lat,lon\n");
        for i in 0..20 {
            csv.push_str(&format!("{i},{i},{}\n", i * 2));
        }
        std::fs::write(dir.join("p.csv"), csv).unwrap();
        std::fs::write(dir.join("short.csv"), "id,lat,lon\n0,0,0\n1,1,1\n").unwrap();
        std::fs::write(dir.join("badrow.csv"), "id,lat,lon\n0,1,2\n1,abc,2\n").unwrap();
        std::fs::write(dir.join("lat91.csv"), "id,lat,lon\n0,1,2\n1,91,2\n").unwrap();
        std::fs::write(dir.join("bad.npy"), "hello, not numpy").unwrap();
    }

    /// A temporary folder with the inputs and a database `db` holding collection `c`.
    pub fn imported() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        inputs(t.path());
        let o = run(
            t.path(),
            &[
                "import",
                "--db",
                "db",
                "--collection",
                "c",
                "--vectors",
                "v.npy",
                "--points",
                "p.csv",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t
    }

    pub fn import(points: &str, vectors: &str) -> [String; 9] {
        [
            "import",
            "--db",
            "db",
            "--collection",
            "c",
            "--vectors",
            vectors,
            "--points",
            points,
        ]
        .map(str::to_string)
    }

    pub fn query(batch: &str, line: &str) -> (tempfile::TempDir, Vec<String>) {
        let t = imported();
        std::fs::write(t.path().join(batch), line).unwrap();
        let args = [
            "query",
            "--db",
            "db",
            "--collection",
            "c",
            "--batch",
            batch,
            "--out",
            "o.jsonl",
        ]
        .map(str::to_string)
        .to_vec();
        (t, args)
    }

    pub fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
}

#[test]
fn cli_import_missing_file() {
    let t = tempfile::tempdir().unwrap();
    cli::inputs(t.path());
    let a = cli::import("p.csv", "nope.npy");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "nope.npy: No such file or directory (os error 2)",
    );
    assert!(
        !t.path().join("db").exists(),
        "nothing created on bad input"
    );
}

#[test]
fn cli_import_not_an_npy_file() {
    let t = tempfile::tempdir().unwrap();
    cli::inputs(t.path());
    let a = cli::import("p.csv", "bad.npy");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        r"bad.npy: bad .npy header at byte 0: missing \x93NUMPY magic",
    );
}

#[test]
fn cli_import_row_count_mismatch() {
    let t = tempfile::tempdir().unwrap();
    cli::inputs(t.path());
    let a = cli::import("short.csv", "v.npy");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "v.npy has 20 rows but short.csv has 2 data rows",
    );
}

#[test]
fn cli_import_bad_csv_value() {
    let t = tempfile::tempdir().unwrap();
    cli::inputs(t.path());
    let a = cli::import("badrow.csv", "v.npy");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        r#"badrow.csv:3: lat "abc" is not a number"#,
    );
    let a = cli::import("lat91.csv", "v.npy");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "lat91.csv:3: latitude 91 is outside [-90, 90]",
    );
}

#[test]
fn cli_import_db_is_a_file() {
    let t = tempfile::tempdir().unwrap();
    cli::inputs(t.path());
    let mut a = cli::import("p.csv", "v.npy");
    a[2] = "p.csv".into();
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "p.csv exists and is not a folder (a database is a folder)",
    );
}

#[test]
fn cli_import_into_a_locked_database() {
    let t = cli::imported();
    let _writer = sat2cap::Db::open(
        t.path().join("db"),
        OpenOptions::read_write().indexes(IndexOptions::none()),
    )
    .unwrap();
    let a = cli::import("p.csv", "v.npy");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        1,
        "the database at db is locked by another writer",
    );
}

#[test]
fn cli_query_malformed_line() {
    let (t, a) = cli::query(
        "bad.jsonl",
        "{\"id\":1,\"k\":3,\"vector\":[1,2,3,4]}\n{\"id\":2,\"k\":\n",
    );
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "bad.jsonl: line 2: EOF while parsing a value at line 1 column 12",
    );
    assert!(!t.path().join("o.jsonl").exists());
}

#[test]
fn cli_query_wrong_dimension() {
    let (t, a) = cli::query("dim.jsonl", "{\"id\":1,\"k\":3,\"vector\":[1,2]}\n");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "dim.jsonl:1: query has 2 dimensions, the collection has 4",
    );
}

#[test]
fn cli_query_bbox_out_of_range() {
    let (t, a) = cli::query(
        "bbox.jsonl",
        "{\"id\":1,\"k\":3,\"vector\":[1,2,3,4],\"filter\":{\"bbox\":[0,95,10,96]}}\n",
    );
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "bbox.jsonl:1: latitude 95 is outside [-90, 90]",
    );
}

#[test]
fn cli_query_bad_time() {
    let (t, a) = cli::query(
        "time.jsonl",
        "{\"id\":1,\"k\":3,\"vector\":[1,2,3,4],\"filter\":{\"time\":[\"yesterday\",5]}}\n",
    );
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "time.jsonl:1: bad date/time \"yesterday\": date is not YYYY-MM-DD (use unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)",
    );
}

#[test]
fn cli_query_k_zero() {
    let (t, a) = cli::query("k0.jsonl", "{\"id\":1,\"k\":0,\"vector\":[1,2,3,4]}\n");
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "k0.jsonl:1: k must be at least 1",
    );
}

#[test]
fn cli_query_unknown_collection() {
    let (t, mut a) = cli::query("ok.jsonl", "{\"id\":1,\"k\":3,\"vector\":[1,2,3,4]}\n");
    a[4] = "nope".into();
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "unknown collection 'nope' (the database has: c)",
    );
}

#[test]
fn cli_query_missing_batch_or_output_folder() {
    let (t, mut a) = cli::query("ok.jsonl", "{\"id\":1,\"k\":3,\"vector\":[1,2,3,4]}\n");
    a[6] = "nofile.jsonl".into();
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "nofile.jsonl: No such file or directory (os error 2)",
    );
    a[6] = "ok.jsonl".into();
    a[8] = "nodir/o.jsonl".into();
    cli::fails(
        t.path(),
        &cli::refs(&a),
        2,
        "output folder nodir does not exist",
    );
}

#[test]
fn cli_missing_database_folder() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("ok.jsonl"),
        "{\"id\":1,\"k\":3,\"vector\":[1,2,3,4]}\n",
    )
    .unwrap();
    let want = "no database at nodb (no MANIFEST there)";
    for args in [
        &[
            "query",
            "--db",
            "nodb",
            "--collection",
            "c",
            "--batch",
            "ok.jsonl",
            "--out",
            "o",
        ][..],
        &["info", "--db", "nodb"],
        &["verify", "--db", "nodb"],
        // Regression: `compact` said "I/O error on nodb/LOCK: No such file or directory".
        &["compact", "--db", "nodb"],
    ] {
        cli::fails(t.path(), args, 2, want);
    }
    assert!(!t.path().join("nodb").exists());
}

#[test]
fn cli_verify_damaged_segment() {
    let t = cli::imported();
    let db = t.path().join("db");
    let seg = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "s2seg"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    cli::fails(
        t.path(),
        &["verify", "--db", "db"],
        1,
        "corrupt file: db/seg-0000000000000001.s2seg at offset 56: header checksum mismatch",
    );
}

#[cfg(feature = "encoders")]
mod cli_encoders {
    use super::cli;

    /// A folder with a database `edb` holding collection `captions` (tiny random encoders).
    fn captions() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("caps.txt"), "a lake\na town\n").unwrap();
        std::fs::write(t.path().join("bad.png"), "not an image").unwrap();
        std::fs::write(
            t.path().join("bomb.png"),
            sat2cap::testing::fuzz::encoders::png_declaring(12_000, 12_000),
        )
        .unwrap();
        let o = cli::run(
            t.path(),
            &["ingest-text", "caps.txt", "--db", "edb", "--random-weights"],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t
    }

    fn search(extra: &[&str]) -> Vec<String> {
        let mut a = vec![
            "search",
            "--db",
            "edb",
            "--collection",
            "captions",
            "--random-weights",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_string).collect()
    }

    #[test]
    fn cli_search_and_map_bbox_out_of_range() {
        let t = captions();
        let a = search(&["--text", "x", "--bbox", "0,95,10,96"]);
        cli::fails(
            t.path(),
            &cli::refs(&a),
            2,
            "bad --bbox '0,95,10,96': latitude 95 is outside [-90, 90]",
        );
        let a = search(&["--text", "x", "--bbox", "10,0,20"]);
        cli::fails(
            t.path(),
            &cli::refs(&a),
            2,
            "expected --bbox W,S,E,N (4 comma-separated numbers), got '10,0,20' (3 values)",
        );
        cli::fails(
            t.path(),
            &[
                "map",
                "a lake",
                "--db",
                "edb",
                "--bbox",
                "6.5,46.4,6.7,95",
                "--out",
                "m",
                "--random-weights",
            ],
            2,
            "bad --bbox '6.5,46.4,6.7,95': latitude 95 is outside [-90, 90]",
        );
        assert!(!t.path().join("m.png").exists());
    }

    #[test]
    fn cli_search_unknown_collection_or_database() {
        let t = captions();
        let mut a = search(&["--text", "x"]);
        a[4] = "nope".into();
        cli::fails(
            t.path(),
            &cli::refs(&a),
            2,
            "unknown collection 'nope' (the database has: captions)",
        );
        let mut a = search(&["--text", "x"]);
        a[2] = "nodb".into();
        cli::fails(
            t.path(),
            &cli::refs(&a),
            2,
            "no database at nodb (no MANIFEST there)",
        );
    }

    #[test]
    fn cli_search_unreadable_missing_or_huge_image() {
        let t = captions();
        let a = search(&["--image", "bad.png"]);
        cli::fails(
            t.path(),
            &cli::refs(&a),
            2,
            "bad.png: cannot decode image: The image format could not be determined",
        );
        let a = search(&["--image", "nope.png"]);
        cli::fails(t.path(), &cli::refs(&a), 2, "no image file nope.png");
        let a = search(&["--image", "bomb.png"]);
        cli::fails(
            t.path(),
            &cli::refs(&a),
            2,
            "bomb.png: image too large: Memory limit exceeded (limits: 16384 px a side, 256 MiB decoded)",
        );
    }

    #[test]
    fn cli_map_bad_hour() {
        let t = captions();
        cli::fails(
            t.path(),
            &[
                "map",
                "a lake",
                "--db",
                "edb",
                "--hours",
                "6,25",
                "--datetime",
                "2023-06-21T00:00:00",
                "--out",
                "m",
                "--random-weights",
            ],
            2,
            "--hours: 25 is not an hour (0..=23)",
        );
    }

    #[test]
    fn cli_ingest_missing_inputs_or_weights() {
        let t = captions();
        cli::fails(
            t.path(),
            &["ingest-tiles", "nosuch", "--db", "edb", "--random-weights"],
            2,
            "tile folder nosuch does not exist",
        );
        cli::fails(
            t.path(),
            &["ingest-tiles", ".", "--db", "edb"],
            2,
            "no model weights: pass --weights DIR (or set SAT2CAP_WEIGHTS), or --random-weights to run the pipeline with seeded random encoders",
        );
        cli::fails(
            t.path(),
            &[
                "ingest-text",
                "nocaps.txt",
                "--db",
                "edb",
                "--random-weights",
            ],
            2,
            "cannot read nocaps.txt: No such file or directory (os error 2)",
        );
    }

    #[test]
    fn cli_ingest_into_a_locked_database() {
        let t = captions();
        let _writer =
            sat2cap::Db::open(t.path().join("edb"), sat2cap::OpenOptions::read_write()).unwrap();
        cli::fails(
            t.path(),
            &["ingest-text", "caps.txt", "--db", "edb", "--random-weights"],
            1,
            "the database at edb is locked by another writer",
        );
    }
}
