//! Hostile use: one test (at least) per class of docs/RELIABILITY.md "Hostile use", each
//! driving the built `sat2cap` binary the way a careless user or an attacker would: closed
//! pipes and full disks, counters at their maximum, outputs that are links, FIFOs and
//! folders, imports that fail half-way, duplicate ids, claims checked against `info`, bad
//! values, damaged segments, symlink loops and FIFOs in walks, the antimeridian and the
//! poles, `k` and `ef` at their edges, and messages that must not mislead.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sat2cap::io::npy::{write_npy, NpyDtype};
use sat2cap::storage::{FileEntry, Manifest};
use sat2cap::{Db, OpenOptions};

// ---- helpers --------------------------------------------------------------------------

fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sat2cap"));
    c.args(args)
        .current_dir(dir)
        .env("SAT2CAP_TINY_MODEL", "1")
        .env_remove("SAT2CAP_WEIGHTS");
    c
}

/// Runs to the end, failing the test if it takes longer than 120 s (a hang).
fn finish(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("output"),
            Ok(None) if start.elapsed() > Duration::from_secs(120) => {
                let _ = child.kill();
                panic!("{what}: still running after 120 s (a hang)");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let child = cmd(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sat2cap");
    finish(child, &format!("sat2cap {args:?}"))
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// No panic, no abort: exit code `code` and a stderr line containing every `want`.
fn expect(o: &Output, code: i32, want: &[&str]) -> String {
    let e = err(o);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    for w in want {
        assert!(e.contains(w), "missing {w:?} in: {e}");
    }
    e
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    expect(&o, 0, &[]);
    out(&o)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Row `i` of the test vectors (dimension `dim`, never zero).
fn vector(i: usize, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|j| ((i * 31 + j * 17) % 13) as f32 - 6.5)
        .collect()
}

/// Writes `name.npy` (rows from `vector`, `f` may damage them) and `name.csv` with ids
/// `0..n` at points spread over the globe.
fn inputs(dir: &Path, name: &str, n: usize, dim: usize, f: impl Fn(usize, &mut Vec<f32>)) {
    let mut flat = Vec::with_capacity(n * dim);
    for i in 0..n {
        let mut v = vector(i, dim);
        f(i, &mut v);
        flat.extend_from_slice(&v);
    }
    write_npy(&dir.join(format!("{name}.npy")), NpyDtype::F32, dim, &flat).unwrap();
    let mut csv = String::from("id,lat,lon\n");
    for i in 0..n {
        let lat = (i % 179) as f64 - 89.0;
        let lon = (i * 7 % 359) as f64 - 179.0;
        csv.push_str(&format!("{i},{lat},{lon}\n"));
    }
    std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
}

fn import_args<'a>(db: &'a str, coll: &'a str, name: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut a = vec![
        "import".to_string(),
        "--db".into(),
        db.into(),
        "--collection".into(),
        coll.into(),
        "--vectors".into(),
        format!("{name}.npy"),
        "--points".into(),
        format!("{name}.csv"),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn import(dir: &Path, db: &str, coll: &str, name: &str, extra: &[&str]) -> Output {
    let a = import_args(db, coll, name, extra);
    run(dir, &a.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A folder holding `db` with collection `c`: 20 rows of dimension 8 (from `inputs` "v").
fn imported() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    inputs(t.path(), "v", 20, 8, |_, _| {});
    expect(&import(t.path(), "db", "c", "v", &[]), 0, &[]);
    t
}

fn info(dir: &Path, db: &str) -> serde_json::Value {
    json(&ok(dir, &["info", "--db", db, "--json"]))
}

fn query_line(id: usize, k: usize, v: &[f32], filter: serde_json::Value) -> String {
    serde_json::json!({"id": id, "k": k, "vector": v, "filter": filter}).to_string()
}

fn query(dir: &Path, batch: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "query",
        "--db",
        "db",
        "--collection",
        "c",
        "--batch",
        batch,
        "--out",
        "r.jsonl",
    ];
    a.extend_from_slice(extra);
    run(dir, &a)
}

fn tmp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".sat2cap-") && n.ends_with(".tmp"))
        .collect()
}

fn mkfifo(path: &Path) {
    let s = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(s.success());
}

/// Overhead tiles `{lat}_{lon}.png` (64 px) rendered into `dir`.
fn tiles(dir: &Path, names: &[(f64, f64)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, (lat, lon)) in names.iter().enumerate() {
        let class = sat2cap::jobs::LandClass::ALL[i % 4];
        sat2cap::jobs::render_overhead(class, i as u64, 64)
            .save(dir.join(format!("{lat:.2}_{lon:.2}.png")))
            .unwrap();
    }
}

// ---- 1. Output failures never panic ---------------------------------------------------

#[test]
fn output_failures_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    inputs(d, "v", 50, 8, |_, _| {});
    // A full disk under stdout: the import is committed, and says so.
    let a = import_args("db", "c", "v", &["--json"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let full = || File::options().write(true).open("/dev/full").unwrap();
    let o = cmd(d, &a).stdout(full()).output().unwrap();
    expect(
        &o,
        1,
        &[
            "cannot write the output",
            "No space left on device",
            "the import of 50 rows into 'c' committed all the same",
        ],
    );
    assert_eq!(info(d, "db")["collections"][0]["live"], 50);
    // A closed pipe (`| head -c0`): exit 1 with the reason, not a panic.
    std::fs::write(
        d.join("q.jsonl"),
        query_line(1, 3, &vector(1, 8), serde_json::Value::Null),
    )
    .unwrap();
    for args in [
        &["info", "--db", "db"][..],
        &["info", "--db", "db", "--json"],
        &["verify", "--db", "db"],
        &[
            "query",
            "--db",
            "db",
            "--collection",
            "c",
            "--batch",
            "q.jsonl",
            "--out",
            "r.jsonl",
            "--json",
        ],
        &[
            "query",
            "--db",
            "db",
            "--collection",
            "c",
            "--batch",
            "q.jsonl",
            "--out",
            "-",
        ],
    ] {
        // The reading end is closed before the command starts.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let child = cmd(d, args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = finish(child, "closed pipe");
        expect(&o, 1, &["cannot write the output", "Broken pipe"]);
        let o = cmd(d, args).stdout(full()).output().unwrap();
        expect(&o, 1, &["cannot write the output"]);
    }
    // A full stderr: the exit code still tells.
    let o = cmd(d, &["info", "--db", "nope"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = cmd(d, &["compact", "--db", "db"])
        .stdout(full())
        .stderr(full())
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{:?}", o.status);
}

// ---- 2. Counters never wrap ------------------------------------------------------------

fn edit_manifest(db: &Path, f: impl Fn(&mut Manifest)) -> Vec<u8> {
    let p = db.join("MANIFEST");
    let mut m = Manifest::decode(&std::fs::read(&p).unwrap(), "MANIFEST").unwrap();
    f(&mut m);
    let bytes = m.encode();
    std::fs::write(&p, &bytes).unwrap();
    bytes
}

#[test]
fn counters_never_wrap() {
    let t = imported();
    let d = t.path();
    inputs(d, "w", 5, 8, |_, _| {});
    let original = std::fs::read(d.join("db/MANIFEST")).unwrap();
    for (what, edit) in [
        (
            "the manifest generation is at its maximum",
            &(|m: &mut Manifest| m.generation = u64::MAX) as &dyn Fn(&mut Manifest),
        ),
        (
            "the next file number is at its maximum",
            &|m: &mut Manifest| m.next_file_no = u64::MAX,
        ),
    ] {
        let before = edit_manifest(&d.join("db"), edit);
        for o in [
            import(d, "db", "more", "w", &[]),
            import(d, "db", "c", "w", &["--upsert", "--no-compact"]),
        ] {
            expect(&o, 1, &[what, "nothing was imported"]);
        }
        assert_eq!(std::fs::read(d.join("db/MANIFEST")).unwrap(), before);
        ok(d, &["verify", "--db", "db"]);
        let i = info(d, "db");
        assert_eq!(i["collections"].as_array().unwrap().len(), 1);
        assert_eq!(i["collections"][0]["live"], 20);
        std::fs::write(d.join("db/MANIFEST"), &original).unwrap();
    }
    // Ingest's next id: a collection holding id u64::MAX takes no new item.
    std::fs::write(d.join("caps.txt"), "a lake\n").unwrap();
    ok(
        d,
        &["ingest-text", "caps.txt", "--db", "db", "--random-weights"],
    );
    let mut db = Db::open(d.join("db"), OpenOptions::read_write()).unwrap();
    let dim = db.snapshot().collection("captions").unwrap().dim();
    let v = vector(3, dim);
    let item = sat2cap::NewItem {
        id: u64::MAX,
        vector: &v,
        point: sat2cap::Point::new(0.0, 0.0).unwrap(),
        time: None,
        payload: Some(r#"{"caption":"the last"}"#),
    };
    db.add("captions", item).unwrap();
    db.commit().unwrap();
    drop(db);
    std::fs::write(d.join("caps2.txt"), "a forest\n").unwrap();
    let o = run(
        d,
        &["ingest-text", "caps2.txt", "--db", "db", "--random-weights"],
    );
    expect(&o, 1, &["no new id left"]);
    let i = info(d, "db");
    let caps = i["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "captions")
        .unwrap()
        .clone();
    assert_eq!(caps["live"], 2);
}

// ---- 3. Outputs never destroy what is not theirs ---------------------------------------

#[test]
fn outputs_never_destroy_what_is_not_theirs() {
    let t = imported();
    let d = t.path();
    std::fs::write(
        d.join("q.jsonl"),
        query_line(1, 3, &vector(1, 8), serde_json::Value::Null),
    )
    .unwrap();
    std::fs::write(d.join("precious.txt"), "keep me").unwrap();
    std::os::unix::fs::symlink("precious.txt", d.join("link.jsonl")).unwrap();
    std::fs::create_dir(d.join("folder.jsonl")).unwrap();
    mkfifo(&d.join("fifo.jsonl"));
    for (out, kind) in [
        ("link.jsonl", "a symlink"),
        ("folder.jsonl", "a directory"),
        ("fifo.jsonl", "a FIFO"),
        ("/dev/null", "a device"),
    ] {
        let o = run(
            d,
            &[
                "query",
                "--db",
                "db",
                "--collection",
                "c",
                "--batch",
                "q.jsonl",
                "--out",
                out,
            ],
        );
        expect(&o, 2, &[out, kind, "refusing to replace it"]);
    }
    assert_eq!(
        std::fs::read_to_string(d.join("precious.txt")).unwrap(),
        "keep me"
    );
    assert!(std::fs::symlink_metadata(d.join("link.jsonl"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(d.join("folder.jsonl").is_dir());
    // A regular file is replaced whole; another name linked to it keeps the old content.
    std::fs::write(d.join("r.jsonl"), "old\n").unwrap();
    std::fs::hard_link(d.join("r.jsonl"), d.join("r-old.jsonl")).unwrap();
    expect(&query(d, "q.jsonl", &[]), 0, &[]);
    assert_eq!(
        std::fs::read_to_string(d.join("r-old.jsonl")).unwrap(),
        "old\n"
    );
    assert!(std::fs::read_to_string(d.join("r.jsonl"))
        .unwrap()
        .contains("neighbors"));
    assert!(tmp_files(d).is_empty(), "{:?}", tmp_files(d));

    // A map whose CSV destination is a folder: refused before any work, no file written.
    let tdir = d.join("tiles");
    tiles(&tdir, &[(46.50, 6.60), (46.51, 6.60), (46.50, 6.61)]);
    ok(
        d,
        &["ingest-tiles", "tiles", "--db", "db", "--random-weights"],
    );
    std::fs::create_dir(d.join("m.csv")).unwrap();
    let o = run(
        d,
        &[
            "map",
            "a lake",
            "--db",
            "db",
            "--out",
            "m",
            "--random-weights",
        ],
    );
    expect(&o, 2, &["m.csv", "a directory"]);
    for ext in ["png", "geojson", "pgw"] {
        assert!(!d.join(format!("m.{ext}")).exists(), "m.{ext} written");
    }
    assert!(tmp_files(d).is_empty());

    // The demo works only in a new, empty or its own folder.
    let user = d.join("mine");
    std::fs::create_dir(&user).unwrap();
    std::fs::write(user.join("notes.txt"), "mine").unwrap();
    std::fs::create_dir(user.join("tiles")).unwrap();
    std::fs::write(user.join("tiles/keep.jpg"), "mine").unwrap();
    let o = run(
        d,
        &["demo", "--out", "mine", "--grid", "2", "--tile-px", "32"],
    );
    expect(&o, 2, &["not empty and was not made by the demo"]);
    assert_eq!(
        std::fs::read_to_string(user.join("tiles/keep.jpg")).unwrap(),
        "mine"
    );
}

// ---- 4. All or nothing -------------------------------------------------------------------

#[test]
fn imports_are_all_or_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Row 1,500 of 2,000 is NaN: a first import leaves no database ...
    inputs(d, "bad", 2000, 8, |i, v| {
        if i == 1500 {
            v[2] = f32::NAN;
        }
    });
    let o = import(d, "db", "c", "bad", &["--batch", "100"]);
    expect(
        &o,
        2,
        &["bad.npy row 1500 (id 1500, bad.csv line 1502): component 2 is NaN"],
    );
    assert!(
        !d.join("db").exists(),
        "a failed first import leaves nothing"
    );
    // ... nor anything in a folder that was there (empty) before.
    std::fs::create_dir(d.join("empty")).unwrap();
    expect(&import(d, "empty", "c", "bad", &[]), 2, &["row 1500"]);
    assert_eq!(std::fs::read_dir(d.join("empty")).unwrap().count(), 0);
    // Into an existing database: unchanged, to the byte.
    inputs(d, "v", 20, 8, |_, _| {});
    expect(&import(d, "db", "c", "v", &[]), 0, &[]);
    let before = std::fs::read(d.join("db/MANIFEST")).unwrap();
    expect(
        &import(d, "db", "c2", "bad", &["--batch", "100"]),
        2,
        &["row 1500"],
    );
    expect(
        &import(d, "db", "c", "bad", &["--upsert"]),
        2,
        &["row 1500"],
    );
    assert_eq!(std::fs::read(d.join("db/MANIFEST")).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(d.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".s2seg")).count(),
        1,
        "{names:?}"
    );

    // Batch boundaries: every row lands once, one segment per batch.
    inputs(d, "g", 60, 8, |_, _| {});
    for (batch, segments) in [(1usize, 60usize), (7, 9), (59, 2), (60, 1), (61, 1)] {
        let db = format!("b{batch}");
        let b = batch.to_string();
        let o = import(d, &db, "c", "g", &["--batch", &b, "--no-compact", "--json"]);
        expect(&o, 0, &[]);
        let r = json(&out(&o));
        assert_eq!(
            (r["rows"].as_u64(), r["segments"].as_u64()),
            (Some(60), Some(segments as u64))
        );
        let snap = Db::open(d.join(&db), OpenOptions::read_only())
            .unwrap()
            .snapshot();
        let c = snap.collection("c").unwrap();
        assert_eq!(c.len(), 60);
        for id in 0..60u64 {
            assert!(c.contains(id), "batch {batch}: id {id} missing");
        }
    }

    // An ingest with one bad caption: nothing added, no database.
    let long = "x".repeat(5000);
    std::fs::write(d.join("caps.txt"), format!("a lake\n{long}\n")).unwrap();
    let o = run(
        d,
        &[
            "ingest-text",
            "caps.txt",
            "--db",
            "capdb",
            "--random-weights",
        ],
    );
    expect(
        &o,
        2,
        &["caps.txt:2: caption of 5000 bytes, the limit is 4096"],
    );
    assert!(!d.join("capdb").exists());
}

// ---- 5. Duplicate ids ----------------------------------------------------------------

#[test]
fn duplicate_ids_are_an_error_unless_upsert() {
    let t = imported();
    let d = t.path();
    inputs(d, "dup", 10, 8, |_, _| {});
    let csv = std::fs::read_to_string(d.join("dup.csv")).unwrap();
    // Line 9 (row 7) takes the id of line 4 (row 2).
    let csv = csv.replacen("\n7,", "\n2,", 1);
    std::fs::write(d.join("dup.csv"), csv).unwrap();
    let o = import(d, "new", "c", "dup", &[]);
    expect(
        &o,
        2,
        &["dup.csv: id 2 appears on line 4 and on line 9 (ids must be unique)"],
    );
    assert!(!d.join("new").exists());
    // Ids already stored: refused, naming the first line; --upsert replaces them.
    let before = std::fs::read(d.join("db/MANIFEST")).unwrap();
    let o = import(d, "db", "c", "v", &[]);
    expect(
        &o,
        2,
        &[
            "v.csv line 2: id 0 is already in collection 'c'",
            "--upsert",
        ],
    );
    assert_eq!(std::fs::read(d.join("db/MANIFEST")).unwrap(), before);
    let r = json(&out(&import(d, "db", "c", "v", &["--upsert", "--json"])));
    assert_eq!(
        (r["replaced"].as_u64(), r["live"].as_u64()),
        (Some(20), Some(20))
    );
}

// ---- 6. What is reported is true -----------------------------------------------------

#[test]
fn the_import_summary_matches_info() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    inputs(d, "small", 20, 8, |_, _| {});
    inputs(d, "big", 1200, 8, |_, _| {});
    for (db, name, extra, graphs, int8s, segs) in [
        ("a", "small", &[][..], 0u64, 1u64, 1u64),
        ("b", "big", &[][..], 1, 1, 1),
        ("c", "big", &["--no-int8"][..], 1, 0, 1),
        ("d", "big", &["--no-compact", "--batch", "500"][..], 0, 3, 3),
        (
            "e",
            "big",
            &["--no-compact", "--batch", "1000"][..],
            1,
            2,
            2,
        ),
    ] {
        let mut extra = extra.to_vec();
        extra.push("--json");
        let o = import(d, db, "c", name, &extra);
        let e = expect(&o, 0, &[]);
        let r = json(&out(&o));
        assert_eq!(
            (
                r["graph_segments"].as_u64(),
                r["int8_segments"].as_u64(),
                r["segments"].as_u64()
            ),
            (Some(graphs), Some(int8s), Some(segs)),
            "{db}: {r}"
        );
        let segments = info(d, db)["collections"][0]["segments"].clone();
        let segments = segments.as_array().unwrap();
        assert_eq!(segments.len() as u64, segs, "{db}");
        let g = segments.iter().filter(|s| s["graph"] == true).count() as u64;
        let q = segments.iter().filter(|s| s["int8"] == true).count() as u64;
        assert_eq!(
            (g, q),
            (graphs, int8s),
            "{db}: info disagrees with the summary"
        );
        if graphs == 0 {
            assert!(e.contains("no HNSW graph (too few rows"), "{db}: {e}");
        }
    }
}

// ---- 7. Bad values: exit 2 and a message to act on -------------------------------------

#[test]
fn bad_values_get_exit_2_and_name_the_place() {
    let t = imported();
    let d = t.path();
    inputs(d, "five", 3, 5, |_, _| {});
    expect(
        &import(d, "db", "c", "five", &[]),
        2,
        &["collection 'c' has dimension 8, the vectors have 5"],
    );
    inputs(d, "wide", 2, 5000, |_, _| {});
    expect(
        &import(d, "db", "w", "wide", &[]),
        2,
        &["wide.npy: rows of 5000 values; the dimension must be in 1..=4096"],
    );
    inputs(d, "inf", 4, 8, |i, v| {
        if i == 3 {
            v[6] = f32::INFINITY;
        }
    });
    expect(
        &import(d, "db", "c2", "inf", &[]),
        2,
        &["inf.npy row 3 (id 3, inf.csv line 5): component 6 is inf (vectors must be finite)"],
    );
    for name in ["bad\tname", " lead", ""] {
        expect(
            &import(d, "db", name, "v", &[]),
            2,
            &["invalid collection name"],
        );
    }
    // A payload over its limit, named by line.
    let big = "p".repeat(70_000);
    std::fs::write(
        d.join("pay.csv"),
        format!("id,lat,lon,payload\n100,1,2,ok\n101,1,2,{big}\n"),
    )
    .unwrap();
    write_npy(
        &d.join("pay.npy"),
        NpyDtype::F32,
        8,
        &[vector(1, 8), vector(2, 8)].concat(),
    )
    .unwrap();
    expect(
        &import(d, "db", "c", "pay", &[]),
        2,
        &["pay.csv line 3): payload is 70000 bytes, the limit is 65536"],
    );
    // A byte-order mark is dropped (CSV and JSONL).
    std::fs::write(d.join("bom.csv"), "\u{feff}id,lat,lon\n200,1,2\n201,3,4\n").unwrap();
    write_npy(
        &d.join("bom.npy"),
        NpyDtype::F32,
        8,
        &[vector(5, 8), vector(6, 8)].concat(),
    )
    .unwrap();
    expect(&import(d, "db", "c", "bom", &[]), 0, &[]);
    let line = query_line(1, 2, &vector(5, 8), serde_json::Value::Null);
    std::fs::write(d.join("bom.jsonl"), format!("\u{feff}{line}\n")).unwrap();
    expect(&query(d, "bom.jsonl", &[]), 0, &[]);
    // A number beyond f32 in a query: said, with its line.
    std::fs::write(
        d.join("big.jsonl"),
        format!("{line}\n{{\"id\":2,\"k\":1,\"vector\":[1e39,0,0,0,0,0,0,1]}}\n"),
    )
    .unwrap();
    expect(
        &query(d, "big.jsonl", &[]),
        2,
        &["big.jsonl: line 2: vector component 0 is outside the f32 range"],
    );
    // Bad flags are blamed on the flag, before any input is read.
    for (flag, value, want) in [
        ("--ef", "0", "must be in 1..=65536"),
        ("--ef", "70000", "must be in 1..=65536"),
        ("--ef", "x", "expected a whole number"),
        ("--effort", "0", "must be a number in (0, 64]"),
        ("--effort", "64.5", "must be a number in (0, 64]"),
        ("--effort", "NaN", "must be a number in (0, 64]"),
        ("--effort", "inf", "must be a number in (0, 64]"),
        ("--effort", "x", "invalid float literal"),
        ("--effort", "-0.5", "must be a number in (0, 64]"),
        ("--threads", "100000", "must be in 1..="),
        ("--threads", "0", "must be in 1..="),
    ] {
        let o = query(d, "no-such-file.jsonl", &[flag, value]);
        expect(&o, 2, &[flag, want]);
    }
    let o = query(d, "no-such-file.jsonl", &["--ef", "8", "--effort", "0.5"]);
    expect(&o, 2, &["--ef", "--effort", "cannot be used with"]);
    for sub in [
        &["search", "--text", "a lake"][..],
        &["ground", "0"],
        &["describe", "0"],
    ] {
        let mut a = sub.to_vec();
        a.extend_from_slice(&["--db", "db", "--k", "0", "--random-weights"]);
        expect(&run(d, &a), 2, &["--k", "must be at least 1"]);
    }
}

// ---- 8. verify checks what a query relies on -------------------------------------------

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The offset of section `kind` of a segment file.
fn section(b: &[u8], kind: u32) -> usize {
    let (t, n) = (u64_at(b, 40) as usize, u32_at(b, 32) as usize);
    let e = (0..n)
        .map(|i| t + 32 * i)
        .find(|&e| u32_at(b, e) == kind)
        .expect("section");
    u64_at(b, e + 8) as usize
}

/// Where the codes of the int8 section start (20 rows: a 64-byte header, 20 scales and 20
/// L1 norms, each block 64-aligned).
fn int8_codes(b: &[u8]) -> usize {
    let align = |x: usize| x.div_ceil(64) * 64;
    let l1 = align(64 + 4 * 20);
    section(b, 103) + align(l1 + 4 * 20)
}

/// Damages the one segment of `db` with `f`, then re-seals every checksum (segment and
/// manifest), so that only the damage remains: what a bad disk controller or an attacker
/// with write access leaves.
fn damage(db: &Path, f: impl Fn(&mut Vec<u8>)) {
    let seg: PathBuf = std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "s2seg"))
        .unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    f(&mut b);
    let (t, n) = (u64_at(&b, 40) as usize, u32_at(&b, 32) as usize);
    for i in 0..n {
        let e = t + 32 * i;
        let (off, len) = (u64_at(&b, e + 8) as usize, u64_at(&b, e + 16) as usize);
        let c = crc32c::crc32c(&b[off..off + len]);
        b[e + 24..e + 28].copy_from_slice(&c.to_le_bytes());
    }
    let meta = crc32c::crc32c_append(crc32c::crc32c(&b[..64]), &b[t..t + 32 * n]);
    let foot = b.len() - 32;
    b[foot + 12..foot + 16].copy_from_slice(&meta.to_le_bytes());
    std::fs::write(&seg, &b).unwrap();
    edit_manifest(db, |m| {
        for c in &mut m.collections {
            for s in &mut c.segments {
                *s = FileEntry { crc: meta, ..*s };
            }
        }
    });
}

#[test]
fn verify_fails_before_a_query_goes_wrong() {
    // An int8 code outside -127..=127, a code far from its value, a zero scale, a row that
    // is not unit length (id 0, the query's own vector: it would score 2).
    type Damage = fn(&mut Vec<u8>);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "code",
            |b| {
                let c = int8_codes(b);
                b[c + 3] = 0x80;
            },
            "is -128",
        ),
        (
            "far",
            |b| {
                let c = int8_codes(b);
                b[c + 1] ^= 0x40;
            },
            "more than half the scale",
        ),
        (
            "scale",
            |b| {
                let q = section(b, 103);
                b[q + 64..q + 68].fill(0);
            },
            "not a positive finite number",
        ),
        (
            "norm",
            |b| {
                let v = section(b, 1);
                let row = (0..20)
                    .find(|&r| {
                        let ids = section(b, 2);
                        u64_at(b, ids + 8 * r) == 0
                    })
                    .unwrap_or(0);
                for j in 0..8 {
                    let at = v + (row * 8 + j) * 2;
                    let x = half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32() * 2.0;
                    b[at..at + 2].copy_from_slice(&half::f16::from_f32(x).to_le_bytes());
                }
            },
            "is not 1 (rows are unit length)",
        ),
    ];
    for (name, f, want) in cases {
        let t = imported();
        let d = t.path();
        damage(&d.join("db"), f);
        // Opens (the cheap checks pass), but verify finds it.
        let o = run(d, &["verify", "--db", "db"]);
        expect(&o, 1, &[want]);
        // A query never returns an impossible score.
        std::fs::write(
            d.join("q.jsonl"),
            query_line(0, 20, &vector(0, 8), serde_json::Value::Null),
        )
        .unwrap();
        for exact in [&[][..], &["--exact"]] {
            let o = query(d, "q.jsonl", exact);
            if name == "norm" {
                // The damaged row is the query's own: it would score 2.
                expect(&o, 1, &["above the cosine's maximum 1", "sat2cap verify"]);
            } else if name == "scale" {
                // The scan of the 20 rows reads every row's factors from the int8 copy.
                expect(
                    &o,
                    1,
                    &["int8 section", "row 0", "not a positive finite number"],
                );
            } else {
                expect(&o, 0, &[]);
            }
            if o.status.success() {
                let r = json(&std::fs::read_to_string(d.join("r.jsonl")).unwrap());
                for s in r["scores"].as_array().unwrap() {
                    let s = s.as_f64().unwrap_or(f64::NAN);
                    assert!(s <= 1.001, "{name}: score {s}");
                }
            } else {
                expect(&o, 1, &[]);
            }
        }
    }
}

/// Row `i` of [`imported_distinct`].
fn distinct(i: usize) -> Vec<f32> {
    (0..8u64)
        .map(|j| {
            // splitmix64 of (i, j)
            let mut z = (i as u64 * 8 + j).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % 2_001) as f32 / 100.0 - 10.0
        })
        .collect()
}

/// 3,000 rows of dimension 8, each distinct (a row's own vector finds it first).
fn imported_distinct() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    inputs(t.path(), "v", 3_000, 8, |i, v| *v = distinct(i));
    expect(&import(t.path(), "db", "c", "v", &[]), 0, &[]);
    t
}

#[test]
fn damaged_rows_are_errors_of_the_queries_that_read_them() {
    // A search reads a row's point and its int8 scale where it uses them, not every row's
    // first: a damaged one fails the queries that read it (and `verify`); the others
    // answer, from whole rows.
    let row = 1_234;
    for what in ["point", "scale"] {
        let t = imported_distinct();
        let d = t.path();
        damage(&d.join("db"), |b| match what {
            "point" => {
                let p = section(b, 3) + 16 * row;
                b[p..p + 8].copy_from_slice(&f64::NAN.to_le_bytes());
            }
            _ => {
                let q = section(b, 103) + 64 + 4 * row;
                b[q..q + 4].fill(0);
            }
        });
        let seg = std::fs::read_dir(d.join("db"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "s2seg"))
            .unwrap();
        let b = std::fs::read(seg).unwrap();
        let id = u64_at(&b, section(&b, 2) + 8 * row) as usize;
        let other = (id + 1_500) % 3_000;
        let world = serde_json::json!({"bbox": [-180.0, -90.0, 180.0, 90.0]});
        let lines = [
            // The damaged row's own vector; another row's; another row's over the world.
            query_line(0, 5, &distinct(id), serde_json::Value::Null),
            query_line(1, 5, &distinct(other), serde_json::Value::Null),
            query_line(2, 5, &distinct(other), world),
        ];
        let (message, verify) = match what {
            "point" => ("invalid point", "invalid point"),
            _ => ("int8 section", "not a positive finite number"),
        };
        expect(&run(d, &["verify", "--db", "db"]), 1, &[verify]);
        // Preparing a collection makes what the searches make lazily: it reads the value.
        let db = Db::open(d.join("db"), OpenOptions::read_only()).unwrap();
        let snap = db.snapshot();
        let e = snap
            .collection("c")
            .unwrap()
            .prepare()
            .unwrap_err()
            .to_string();
        assert!(e.contains(message), "{what}: {e}");
        for (i, line) in lines.iter().enumerate() {
            std::fs::write(d.join("q.jsonl"), line).unwrap();
            // Searches read the same bytes from the file or from a resident copy.
            for flags in [
                &[][..],
                &["--exact"],
                &["--resident"],
                &["--exact", "--resident"],
            ] {
                let exact = flags.contains(&"--exact");
                let o = query(d, "q.jsonl", flags);
                // Some(true): reads the damaged value (a point where the row is returned
                // or a filter tests every row; a scale where the exact scan, int8 first,
                // or a walk steered by the int8 copy scores the row); Some(false): cannot;
                // None: a walk that may or may not pass by it.
                let reads = match (what, i) {
                    ("point", 1) => Some(false),
                    ("point", _) | (_, 0) => Some(true),
                    _ if exact => Some(true),
                    _ => None,
                };
                let failed = !o.status.success();
                match reads {
                    Some(true) => assert!(failed, "{what} {line}: answered"),
                    Some(false) => assert!(!failed, "{what} {line}: {}", err(&o)),
                    None => {}
                }
                if failed {
                    expect(&o, 1, &[message]);
                } else {
                    let r = json(&std::fs::read_to_string(d.join("r.jsonl")).unwrap());
                    let ids = r["neighbors"].as_array().unwrap();
                    assert_eq!(ids.len(), 5, "{what} {line}: {r}");
                    assert_eq!(ids[0], serde_json::json!(other), "{what} {line}: {r}");
                    assert!(!ids.contains(&serde_json::json!(id)), "{what} {line}: {r}");
                }
            }
        }
    }
}

// ---- 9. Walks and inputs are bounded ---------------------------------------------------

#[test]
fn walks_and_inputs_are_bounded() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let td = d.join("tiles");
    tiles(&td, &[(46.50, 6.60), (46.51, 6.60), (46.50, 6.61)]);
    // A symlink loop, a second link to the folder, a link to a tile, a FIFO named as a tile.
    std::os::unix::fs::symlink("..", td.join("loop")).unwrap();
    std::os::unix::fs::symlink(".", td.join("again")).unwrap();
    std::os::unix::fs::symlink("46.50_6.60.png", td.join("46.90_6.90.png")).unwrap();
    mkfifo(&td.join("46.70_6.70.png"));
    let o = run(
        d,
        &[
            "ingest-tiles",
            "tiles",
            "--db",
            "db",
            "--random-weights",
            "--json",
        ],
    );
    let e = expect(&o, 0, &["46.70_6.70.png: not a regular file"]);
    let r = json(&out(&o));
    assert_eq!(r["added"], 3, "{e}");
    // Photo paths leading outside the folder: refused unless --allow-outside.
    let pd = d.join("photos");
    std::fs::create_dir(&pd).unwrap();
    sat2cap::jobs::render_ground(sat2cap::jobs::LandClass::ALL[0], 1, 48, 32)
        .save(d.join("secret.png"))
        .unwrap();
    sat2cap::jobs::render_ground(sat2cap::jobs::LandClass::ALL[1], 2, 48, 32)
        .save(pd.join("p.png"))
        .unwrap();
    std::os::unix::fs::symlink("../secret.png", pd.join("sneaky.png")).unwrap();
    for (row, want) in [
        ("../secret.png", "../secret.png leads outside"),
        ("sneaky.png", "sneaky.png resolves to"),
    ] {
        std::fs::write(
            pd.join("m.csv"),
            format!("path,lat,lon\np.png,1,2\n{row},1,2\n"),
        )
        .unwrap();
        let a = [
            "ingest-ground",
            "photos",
            "--meta",
            "photos/m.csv",
            "--db",
            "db",
            "--random-weights",
        ];
        expect(&run(d, &a), 2, &[want, "--allow-outside"]);
        let mut a = a.to_vec();
        a.push("--allow-outside");
        ok(d, &a);
    }
    // A thread count from the environment is bounded like --threads.
    let o = cmd(d, &["info", "--db", "db"])
        .env("RAYON_NUM_THREADS", "100000")
        .output()
        .unwrap();
    expect(
        &o,
        2,
        &["RAYON_NUM_THREADS=\"100000\": must be a whole number in 1..="],
    );
    // A named pipe nobody writes to, as an input: read as empty, no hang.
    mkfifo(&d.join("caps.fifo"));
    let o = run(
        d,
        &["ingest-text", "caps.fifo", "--db", "db", "--random-weights"],
    );
    expect(&o, 2, &["no captions in caps.fifo"]);
    // A 17 MiB line: a clear error.
    let t2 = imported();
    let d2 = t2.path();
    let line = query_line(1, 2, &vector(1, 8), serde_json::Value::Null);
    let huge = format!("{line}\n{{\"id\":\"{}\"}}\n", "x".repeat(17 << 20));
    std::fs::write(d2.join("huge.jsonl"), huge).unwrap();
    expect(
        &query(d2, "huge.jsonl", &[]),
        2,
        &["line 2 is longer than 16777216 bytes"],
    );
    std::fs::write(
        d2.join("huge.csv"),
        format!("id,lat,lon,payload\n1,2,3,{}\n", "y".repeat(17 << 20)),
    )
    .unwrap();
    write_npy(&d2.join("huge.npy"), NpyDtype::F32, 8, &vector(1, 8)).unwrap();
    expect(
        &import(d2, "db", "c", "huge", &[]),
        2,
        &["line 2 is longer than 16777216 bytes"],
    );
}

// ---- 10. Geography at the edges --------------------------------------------------------

#[test]
fn geography_at_the_edges() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Tiles either side of the antimeridian: footprints of their real size.
    tiles(
        &d.join("am"),
        &[(10.0, 179.99), (10.0, -179.99), (10.02, 179.99)],
    );
    ok(d, &["ingest-tiles", "am", "--db", "db", "--random-weights"]);
    let snap = Db::open(d.join("db"), OpenOptions::read_only())
        .unwrap()
        .snapshot();
    for item in snap.collection("overhead").unwrap().iter() {
        let item = item.unwrap();
        let p = sat2cap::jobs::tiles::TilePayload::parse(item.payload).unwrap();
        let f = p.footprint();
        assert!((f.width_deg() - 0.02).abs() < 1e-9, "{f:?}");
        assert!((f.north - f.south - 0.02).abs() < 1e-9, "{f:?}");
    }
    // Points at the poles and on the antimeridian, filters across both: the answers are
    // brute force's.
    let pts: Vec<(f64, f64)> = vec![
        (90.0, 0.0),
        (89.99, 180.0),
        (89.9, -90.0),
        (-90.0, 45.0),
        (-89.95, 179.999),
        (0.0, 179.999),
        (0.0, -179.999),
        (0.5, 180.0),
        (-0.5, -180.0),
        (0.0, 179.0),
        (0.0, -179.0),
        (45.0, 0.0),
    ];
    let mut csv = String::from("id,lat,lon\n");
    let mut flat = Vec::new();
    for (i, (lat, lon)) in pts.iter().enumerate() {
        csv.push_str(&format!("{i},{lat},{lon}\n"));
        flat.extend(vector(i, 8));
    }
    std::fs::write(d.join("edge.csv"), csv).unwrap();
    write_npy(&d.join("edge.npy"), NpyDtype::F32, 8, &flat).unwrap();
    expect(&import(d, "db", "c", "edge", &[]), 0, &[]);
    let inside_box =
        |lat: f64, lon: f64| (-1.0..=1.0).contains(&lat) && (lon >= 179.5 || lon <= -179.5);
    type Truth = Box<dyn Fn(f64, f64) -> bool>;
    let filters: Vec<(serde_json::Value, Truth)> = vec![
        (
            serde_json::json!({"bbox": [179.5, -1.0, -179.5, 1.0]}),
            Box::new(inside_box),
        ),
        (
            serde_json::json!({"radius": {"lat": 89.95, "lon": 90.0, "km": 20.0}}),
            Box::new(|lat, lon| {
                sat2cap::haversine_km(
                    sat2cap::Point::new(89.95, 90.0).unwrap(),
                    sat2cap::Point::new(lat, lon).unwrap(),
                ) <= 20.0
            }),
        ),
        (
            serde_json::json!({"radius": {"lat": -90.0, "lon": 0.0, "km": 10.0}}),
            Box::new(|lat, lon| {
                sat2cap::haversine_km(
                    sat2cap::Point::new(-90.0, 0.0).unwrap(),
                    sat2cap::Point::new(lat, lon).unwrap(),
                ) <= 10.0
            }),
        ),
        (
            serde_json::json!({"bbox": [-180.0, 89.0, 180.0, 90.0]}),
            Box::new(|lat, _| lat >= 89.0),
        ),
    ];
    let batch: Vec<String> = filters
        .iter()
        .enumerate()
        .map(|(i, (f, _))| query_line(i, 100, &vector(1, 8), f.clone()))
        .collect();
    std::fs::write(d.join("edge.jsonl"), batch.join("\n")).unwrap();
    for extra in [&[][..], &["--exact"]] {
        let o = run(
            d,
            &[
                &[
                    "query",
                    "--db",
                    "db",
                    "--collection",
                    "c",
                    "--batch",
                    "edge.jsonl",
                    "--out",
                    "r.jsonl",
                ][..],
                extra,
            ]
            .concat(),
        );
        expect(&o, 0, &[]);
        let text = std::fs::read_to_string(d.join("r.jsonl")).unwrap();
        for (line, (f, want)) in text.lines().zip(&filters) {
            let mut got: Vec<u64> = json(line)["neighbors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            got.sort_unstable();
            let truth: Vec<u64> = pts
                .iter()
                .enumerate()
                .filter(|(_, (lat, lon))| {
                    let p = sat2cap::Point::new(*lat, *lon).unwrap();
                    want(p.lat(), p.lon())
                })
                .map(|(i, _)| i as u64)
                .collect();
            assert_eq!(got, truth, "{f}");
        }
    }
}

// ---- 11. Consistent parameters --------------------------------------------------------

#[test]
fn k_and_ef_follow_one_rule() {
    let t = imported();
    let d = t.path();
    let v = vector(4, 8);
    // k = 0 in a query line: the line is named; in the library: QueryError::ZeroK.
    std::fs::write(
        d.join("k0.jsonl"),
        query_line(1, 0, &v, serde_json::Value::Null),
    )
    .unwrap();
    expect(
        &query(d, "k0.jsonl", &[]),
        2,
        &["k0.jsonl:1:", "k must be at least 1"],
    );
    let snap = Db::open(d.join("db"), OpenOptions::read_only())
        .unwrap()
        .snapshot();
    let c = snap.collection("c").unwrap();
    assert_eq!(
        c.search(&v).k(0).run().unwrap_err(),
        sat2cap::QueryError::ZeroK
    );
    // A huge k returns everything, once; ef below k is raised to k.
    assert_eq!(c.search(&v).k(usize::MAX).run().unwrap().hits.len(), 20);
    assert_eq!(c.search(&v).k(10).ef(1).run().unwrap().hits.len(), 10);
    std::fs::write(
        d.join("big.jsonl"),
        format!(
            "{}\n{}\n",
            query_line(1, 1_000_000, &v, serde_json::Value::Null),
            query_line(2, 10, &v, serde_json::Value::Null)
        ),
    )
    .unwrap();
    for extra in [&["--ef", "1"][..], &["--effort", "0.01"], &["--exact"], &[]] {
        expect(&query(d, "big.jsonl", extra), 0, &[]);
        let text = std::fs::read_to_string(d.join("r.jsonl")).unwrap();
        let n: Vec<usize> = text
            .lines()
            .map(|l| json(l)["neighbors"].as_array().unwrap().len())
            .collect();
        assert_eq!(n, [20, 10], "{extra:?}");
    }
}

// ---- 12. Misleading messages -----------------------------------------------------------

#[test]
fn messages_do_not_mislead() {
    let t = imported();
    let d = t.path();
    // A folder where MANIFEST belongs.
    std::fs::create_dir(d.join("odd")).unwrap();
    std::fs::create_dir(d.join("odd/MANIFEST")).unwrap();
    let o = run(d, &["info", "--db", "odd"]);
    let e = expect(&o, 1, &["odd/MANIFEST", "is a directory, not a file"]);
    assert!(!e.contains("No such device"), "{e}");
    // A FIFO where MANIFEST belongs: an error, not a hang.
    std::fs::create_dir(d.join("fifo")).unwrap();
    mkfifo(&d.join("fifo/MANIFEST"));
    expect(
        &run(d, &["info", "--db", "fifo"]),
        1,
        &["is not a regular file"],
    );
    // The first bad line of a parallel batch, every time.
    let mut lines = Vec::new();
    for i in 0..300 {
        let dim = if i == 39 || i == 249 { 5 } else { 8 };
        lines.push(query_line(i, 3, &vector(i, dim), serde_json::Value::Null));
    }
    std::fs::write(d.join("two-bad.jsonl"), lines.join("\n")).unwrap();
    for _ in 0..5 {
        let o = query(d, "two-bad.jsonl", &["--threads", "8"]);
        expect(&o, 2, &["two-bad.jsonl:40:"]);
    }
    // An .npy header read as the dict it is.
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 8), 'shape': (2, 8), }";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.extend(std::iter::repeat_n(0u8, 64));
    std::fs::write(d.join("twice.npy"), b).unwrap();
    std::fs::copy(d.join("v.csv"), d.join("twice.csv")).unwrap();
    expect(
        &import(d, "db", "t", "twice", &[]),
        2,
        &["key 'shape' appears twice"],
    );
}

// ---- Second round: what a held-out probe of the same classes found ---------------------

#[test]
fn outputs_never_replace_database_files_and_are_checked_first() {
    let t = imported();
    let d = t.path();
    std::fs::write(
        d.join("q.jsonl"),
        query_line(1, 3, &vector(1, 8), serde_json::Value::Null),
    )
    .unwrap();
    let before = std::fs::read(d.join("db/MANIFEST")).unwrap();
    let seg = std::fs::read_dir(d.join("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .find(|n| n.ends_with(".s2seg"))
        .unwrap();
    for out in [
        "db/MANIFEST".to_string(),
        format!("db/{seg}"),
        "db/LOCK".into(),
    ] {
        let o = run(
            d,
            &[
                "query",
                "--db",
                "db",
                "--collection",
                "c",
                "--batch",
                "q.jsonl",
                "--out",
                &out,
            ],
        );
        expect(&o, 2, &["is a file of the database in db"]);
    }
    assert_eq!(std::fs::read(d.join("db/MANIFEST")).unwrap(), before);
    ok(d, &["verify", "--db", "db"]);
    // A stray file in a database folder changes nothing for its writers.
    std::fs::write(d.join("db/README.txt"), "notes").unwrap();
    inputs(d, "w", 5, 8, |i, v| v[0] += i as f32);
    let csv = std::fs::read_to_string(d.join("w.csv"))
        .unwrap()
        .replace("\n0,", "\n100,");
    let csv = csv
        .replace("\n1,", "\n101,")
        .replace("\n2,", "\n102,")
        .replace("\n3,", "\n103,");
    std::fs::write(d.join("w.csv"), csv.replace("\n4,", "\n104,")).unwrap();
    expect(&import(d, "db", "c", "w", &[]), 0, &[]);
    assert_eq!(info(d, "db")["collections"][0]["live"], 25);
    // The demo checks every file it writes at its top level before any work.
    let mine = d.join("demo-out");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join(".sat2cap-demo"), "").unwrap();
    std::os::unix::fs::symlink("../db/README.txt", mine.join("map.png")).unwrap();
    let o = run(
        d,
        &[
            "demo",
            "--out",
            "demo-out",
            "--grid",
            "2",
            "--tile-px",
            "32",
        ],
    );
    expect(&o, 2, &["map.png", "a symlink"]);
    assert!(!mine.join("demo.db").exists() && !mine.join("tiles").exists());
    // A map prefix that is a folder, or ends in '/'; too many panels; a repeated hour.
    let tdir = d.join("tiles");
    tiles(&tdir, &[(46.50, 6.60), (46.51, 6.60)]);
    ok(
        d,
        &["ingest-tiles", "tiles", "--db", "db", "--random-weights"],
    );
    std::fs::create_dir(d.join("maps")).unwrap();
    for out in ["maps/", "maps"] {
        let o = run(
            d,
            &["map", "x", "--db", "db", "--out", out, "--random-weights"],
        );
        expect(&o, 2, &["--out"]);
    }
    let many: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
    let mut a: Vec<&str> = vec!["map"];
    a.extend(many.iter().map(String::as_str));
    a.extend_from_slice(&["--db", "db", "--out", "m", "--random-weights"]);
    expect(&run(d, &a), 2, &["33 panels; a map holds at most 32"]);
    let o = run(
        d,
        &[
            "map",
            "x",
            "--hours",
            "6,6",
            "--db",
            "db",
            "--out",
            "m",
            "--random-weights",
        ],
    );
    expect(&o, 2, &["hour 6 is given twice"]);
    // Help and version are output too.
    let full = || File::options().write(true).open("/dev/full").unwrap();
    for args in [&["--help"][..], &["--version"], &["info", "--help"]] {
        let o = cmd(d, args).stdout(full()).output().unwrap();
        expect(&o, 1, &["cannot write the output"]);
    }
}

#[test]
fn csv_rows_are_whole_or_refused() {
    let t = imported();
    let d = t.path();
    inputs(d, "p", 4, 8, |_, _| {});
    let rows = "id,lat,lon,payload\n50,1,2,ok\n51,1,2,{\"a\":1,\"b\":2}\n52,1,2,x\n53,1,2,y\n";
    std::fs::write(d.join("p.csv"), rows).unwrap();
    let o = import(d, "db", "c", "p", &[]);
    expect(
        &o,
        2,
        &["p.csv:3: 5 fields, the header has 4 (quote a field that holds a comma)"],
    );
    let rows = "id,lat,lon,payload\n50,1,2,ok\n51,1,2,\"open\n52,1,2,x\n53,1,2,y\n";
    std::fs::write(d.join("p.csv"), rows).unwrap();
    let o = import(d, "db", "c", "p", &[]);
    expect(
        &o,
        2,
        &["p.csv:3: a field runs over several lines (an unterminated quote?)"],
    );
    // Quoted, the same payload is whole.
    let rows =
        "id,lat,lon,payload\n50,1,2,ok\n51,1,2,\"{\"\"a\"\":1,\"\"b\"\":2}\"\n52,1,2,x\n53,1,2,y\n";
    std::fs::write(d.join("p.csv"), rows).unwrap();
    expect(&import(d, "db", "c", "p", &[]), 0, &[]);
    let snap = Db::open(d.join("db"), OpenOptions::read_only())
        .unwrap()
        .snapshot();
    let item = snap.collection("c").unwrap().get(51).unwrap().unwrap();
    assert_eq!(item.payload, Some(r#"{"a":1,"b":2}"#));
}

#[test]
fn vectors_polygons_and_boxes_at_their_edges() {
    let t = imported();
    let d = t.path();
    // search --vector takes what a query line takes, and names what it refuses.
    for (v, good) in [
        ("[3e38,3e38,3e38,3e38,3e38,3e38,3e38,3e38]", true),
        ("[1e-45,0,0,0,0,0,0,0]", true),
    ] {
        std::fs::write(d.join("v.json"), format!("\u{feff}{v}")).unwrap();
        let o = run(
            d,
            &[
                "search",
                "--db",
                "db",
                "--collection",
                "c",
                "--vector",
                "v.json",
                "--k",
                "3",
            ],
        );
        expect(&o, if good { 0 } else { 2 }, &[]);
    }
    std::fs::write(d.join("v.json"), "[1e39,0,0,0,0,0,0,1]").unwrap();
    let o = run(
        d,
        &[
            "search",
            "--db",
            "db",
            "--collection",
            "c",
            "--vector",
            "v.json",
        ],
    );
    expect(
        &o,
        2,
        &["v.json: component 0 (1e39) is outside the f32 range"],
    );
    // Polygons that cannot mean what they seem: refused, naming why.
    let v = vector(1, 8);
    for (ring, want) in [
        (
            serde_json::json!([[-180, 85], [0, 85], [180, 85], [180, 90], [-180, 90]]),
            "spans exactly 180 degrees",
        ),
        (
            serde_json::json!([[-170, 80], [-10, 80], [10, 80], [170, 80]]),
            "winds around the globe",
        ),
        (
            serde_json::json!([[0, 0], [0, 0], [0, 0]]),
            "polygon has 1 distinct vertices",
        ),
    ] {
        let line = query_line(1, 3, &v, serde_json::json!({ "polygon": ring }));
        std::fs::write(d.join("poly.jsonl"), line).unwrap();
        expect(&query(d, "poly.jsonl", &[]), 2, &["poly.jsonl:1:", want]);
    }
    // A box of zero width is empty whichever way it is written.
    for b in [
        [180.0, -10.0, -180.0, 10.0],
        [-180.0, -10.0, -180.0, 10.0],
        [180.0, -10.0, 180.0, 10.0],
    ] {
        let line = query_line(1, 3, &v, serde_json::json!({ "bbox": b }));
        std::fs::write(d.join("box.jsonl"), line).unwrap();
        expect(&query(d, "box.jsonl", &[]), 2, &["bounding box is empty"]);
    }
}

#[test]
fn ingest_inputs_are_named_and_bounded() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Captions repeated within one file are repeats, not "already present".
    std::fs::write(d.join("c.txt"), "a cat\na cat\n").unwrap();
    let r = json(&ok(
        d,
        &[
            "ingest-text",
            "c.txt",
            "--db",
            "db",
            "--random-weights",
            "--json",
        ],
    ));
    assert_eq!(
        (
            r["added"].as_u64(),
            r["present"].as_u64(),
            r["repeated"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    // A map, a ground lookup and a caption lookup refuse a collection of the wrong kind.
    expect(
        &run(
            d,
            &[
                "map",
                "x",
                "--db",
                "db",
                "--collection",
                "captions",
                "--out",
                "m",
                "--random-weights",
            ],
        ),
        2,
        &["holds clip-text embeddings; a map needs sat2cap-overhead"],
    );
    // A photo path that climbs and comes back stays inside; one per-photo failure names its line.
    let pd = d.join("photos");
    std::fs::create_dir_all(pd.join("sub")).unwrap();
    sat2cap::jobs::render_ground(sat2cap::jobs::LandClass::ALL[0], 1, 48, 32)
        .save(pd.join("a.png"))
        .unwrap();
    std::fs::write(
        pd.join("m.csv"),
        "path,lat,lon\nsub/../a.png,1,2\nmissing.png,1,2\n",
    )
    .unwrap();
    let a = [
        "ingest-ground",
        "photos",
        "--meta",
        "photos/m.csv",
        "--db",
        "db",
        "--random-weights",
    ];
    expect(&run(d, &a), 2, &["m.csv line 3 (", "missing.png"]);
    let mut a = a.to_vec();
    a.push("--skip-bad");
    let e = expect(&run(d, &a), 0, &["m.csv line 3"]);
    assert!(!e.contains("leads outside"), "{e}");
    // Tiles: only names that place nothing, listed; a tile side too small to be a tile.
    let xyz = d.join("xyz");
    std::fs::create_dir_all(xyz.join("1/2")).unwrap();
    std::fs::write(xyz.join("1/2/0.png"), "x").unwrap();
    expect(
        &run(
            d,
            &["ingest-tiles", "xyz", "--db", "db", "--random-weights"],
        ),
        2,
        &["no tiles in", "0.png: name gives no place"],
    );
    tiles(&d.join("t"), &[(10.0, 10.0)]);
    expect(
        &run(
            d,
            &[
                "ingest-tiles",
                "t",
                "--db",
                "db",
                "--tile-deg",
                "1e-300",
                "--random-weights",
            ],
        ),
        2,
        &["--tile-deg 1e-300 outside [1e-6, 10]"],
    );
    // Special files as weights and as images are named for what they are, never read.
    std::fs::create_dir_all(d.join("w/clip")).unwrap();
    mkfifo(&d.join("w/clip/model.safetensors"));
    let o = run(
        d,
        &[
            "search",
            "--db",
            "db",
            "--collection",
            "captions",
            "--text",
            "x",
            "--weights",
            "w",
        ],
    );
    expect(&o, 2, &["not a regular file"]);
    let o = cmd(
        d,
        &[
            "search",
            "--db",
            "db",
            "--collection",
            "captions",
            "--text",
            "x",
        ],
    )
    .env("SAT2CAP_WEIGHTS", "/dev/null")
    .output()
    .unwrap();
    expect(&o, 2, &["weights folder /dev/null is not a folder"]);
    let o = run(
        d,
        &[
            "search",
            "--db",
            "db",
            "--collection",
            "captions",
            "--image",
            "photos",
            "--random-weights",
        ],
    );
    expect(&o, 2, &["photos is a folder, not an image file"]);
    // An evaluation reads no file outside its CSV's folder unless allowed.
    std::fs::create_dir(d.join("ev")).unwrap();
    std::fs::write(
        d.join("ev/pairs.csv"),
        "overhead,ground\n../t/10.00_10.00.png,/etc/hostname\n",
    )
    .unwrap();
    let o = run(
        d,
        &[
            "eval-retrieval",
            "--pairs",
            "ev/pairs.csv",
            "--random-weights",
        ],
    );
    expect(
        &o,
        2,
        &[
            "pairs.csv line 2: ",
            "leads outside",
            "--allow-outside",
            "no usable pairs",
        ],
    );
}

#[test]
fn the_first_bad_line_of_a_batch_is_named_whatever_kind_it_is() {
    let t = imported();
    let d = t.path();
    let mut lines = Vec::new();
    for i in 0..300 {
        let dim = if i == 99 { 3 } else { 8 };
        lines.push(query_line(i, 3, &vector(i, dim), serde_json::Value::Null));
    }
    lines[199] = "{bad".to_string();
    std::fs::write(d.join("mixed.jsonl"), lines.join("\n")).unwrap();
    for _ in 0..3 {
        expect(
            &query(d, "mixed.jsonl", &["--threads", "8"]),
            2,
            &["mixed.jsonl:100:"],
        );
    }
    lines[99] = query_line(99, 3, &vector(99, 8), serde_json::Value::Null);
    std::fs::write(d.join("mixed.jsonl"), lines.join("\n")).unwrap();
    expect(
        &query(d, "mixed.jsonl", &[]),
        2,
        &["mixed.jsonl: line 200:"],
    );
}

// ---- Outputs that are inputs, planted lock files, flags and files named ----------------

#[test]
fn an_output_is_never_an_input() {
    let t = imported();
    let d = t.path();
    let line = query_line(1, 3, &vector(1, 8), serde_json::Value::Null);
    std::fs::write(d.join("q.jsonl"), &line).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    // The batch as its own output, by its name or another path to it (or a hard link).
    std::fs::hard_link(d.join("q.jsonl"), d.join("q-link.jsonl")).unwrap();
    for out in ["q.jsonl", "./sub/../q.jsonl", "q-link.jsonl"] {
        let o = run(
            d,
            &[
                "query",
                "--db",
                "db",
                "--collection",
                "c",
                "--batch",
                "q.jsonl",
                "--out",
                out,
            ],
        );
        expect(&o, 2, &[out, "also an input", "q.jsonl"]);
        assert_eq!(std::fs::read_to_string(d.join("q.jsonl")).unwrap(), line);
    }
    // An output folder that is a file.
    std::fs::write(d.join("precious.txt"), "keep me").unwrap();
    let o = run(
        d,
        &[
            "query",
            "--db",
            "db",
            "--collection",
            "c",
            "--batch",
            "q.jsonl",
            "--out",
            "precious.txt/r.jsonl",
        ],
    );
    expect(&o, 2, &["precious.txt is not a folder"]);
    assert_eq!(
        std::fs::read_to_string(d.join("precious.txt")).unwrap(),
        "keep me"
    );

    // A map whose PNG would be one of the tiles the database points to.
    let tdir = d.join("tiles");
    tiles(&tdir, &[(30.0, 30.0), (30.01, 30.0), (30.0, 30.01)]);
    ok(
        d,
        &["ingest-tiles", "tiles", "--db", "db", "--random-weights"],
    );
    let tile = std::fs::read(tdir.join("30.00_30.00.png")).unwrap();
    for mosaic in [false, true] {
        let mut a = vec![
            "map",
            "a lake",
            "--db",
            "db",
            "--out",
            "tiles/30.00_30.00",
            "--random-weights",
        ];
        if mosaic {
            a.push("--mosaic");
        }
        expect(&run(d, &a), 2, &["30.00_30.00.png", "also an input"]);
        assert_eq!(std::fs::read(tdir.join("30.00_30.00.png")).unwrap(), tile);
        assert!(!tdir.join("30.00_30.00.csv").exists());
    }
    // A tile that became a FIFO is drawn without its image: the mosaic does not wait on it.
    std::fs::remove_file(tdir.join("30.01_30.00.png")).unwrap();
    mkfifo(&tdir.join("30.01_30.00.png"));
    let o = run(
        d,
        &[
            "map",
            "a lake",
            "--db",
            "db",
            "--out",
            "m",
            "--mosaic",
            "--random-weights",
        ],
    );
    expect(&o, 0, &[]);
    assert!(d.join("m.png").is_file());
}

#[test]
fn a_planted_lock_file_is_refused() {
    let t = imported();
    let d = t.path();
    inputs(d, "w", 5, 8, |_, _| {});
    let before = std::fs::read(d.join("db/MANIFEST")).unwrap();
    // LOCK as a symlink to a file that does not exist (a writer following it would make
    // it), then to a FIFO-like non-file: refused, nothing made, the database unchanged.
    std::fs::remove_file(d.join("db/LOCK")).ok();
    std::os::unix::fs::symlink(d.join("made-by-lock"), d.join("db/LOCK")).unwrap();
    let o = import(d, "db", "c", "w", &["--upsert"]);
    expect(&o, 1, &["LOCK", "is a symlink"]);
    assert!(!d.join("made-by-lock").exists());
    std::fs::remove_file(d.join("db/LOCK")).unwrap();
    std::fs::create_dir(d.join("db/LOCK")).unwrap();
    let o = import(d, "db", "c", "w", &["--upsert"]);
    expect(&o, 1, &["LOCK", "not a regular file"]);
    assert_eq!(std::fs::read(d.join("db/MANIFEST")).unwrap(), before);
    std::fs::remove_dir(d.join("db/LOCK")).unwrap();
    expect(&import(d, "db", "c", "w", &["--upsert"]), 0, &[]);
}

#[test]
fn flags_files_and_lines_are_named() {
    let t = imported();
    let d = t.path();
    // A negative value reaches the flag's own check, which names the flag.
    expect(
        &run(
            d,
            &[
                "search",
                "--db",
                "db",
                "--collection",
                "c",
                "--vector",
                "v.npy",
                "--k",
                "-1",
            ],
        ),
        2,
        &["--k"],
    );
    expect(
        &run(
            d,
            &[
                "search",
                "--db",
                "db",
                "--collection",
                "c",
                "--vector",
                "v.npy",
                "--lon",
                "1",
                "--lat",
                "1",
                "--radius-km",
                "-5",
            ],
        ),
        2,
        &["radius"],
    );
    expect(
        &query(d, "q.jsonl", &["--threads", "-1"]),
        2,
        &["--threads"],
    );
    // Graph parameters are blamed on their flags.
    expect(&import(d, "db2", "c", "v", &["--m", "0"]), 2, &["--m"]);
    expect(
        &import(d, "db2", "c", "v", &["--m", "1000000"]),
        2,
        &["--m"],
    );
    expect(
        &import(d, "db2", "c", "v", &["--ef-construction", "4"]),
        2,
        &["--ef-construction", "--m"],
    );
    assert!(!d.join("db2").exists());
    // A query vector with an infinity names its file.
    let mut v = vec![1.0f32; 8];
    v[3] = f32::INFINITY;
    write_npy(&d.join("inf.npy"), NpyDtype::F16, 8, &v).unwrap();
    expect(
        &run(
            d,
            &[
                "search",
                "--db",
                "db",
                "--collection",
                "c",
                "--vector",
                "inf.npy",
            ],
        ),
        2,
        &["inf.npy", "component 3"],
    );
    // A header naming a column twice, and an .npy with bytes after its rows.
    inputs(d, "h", 3, 8, |_, _| {});
    std::fs::write(
        d.join("h.csv"),
        "id,latitude,lon,lat\n0,1,1,2\n1,1,1,2\n2,1,1,2\n",
    )
    .unwrap();
    expect(
        &import(d, "db3", "c", "h", &[]),
        2,
        &["h.csv:1", "both name the column 'lat'"],
    );
    inputs(d, "x", 3, 8, |_, _| {});
    let mut b = std::fs::read(d.join("x.npy")).unwrap();
    b.extend_from_slice(&[0; 32]);
    std::fs::write(d.join("x.npy"), b).unwrap();
    expect(
        &import(d, "db3", "c", "x", &[]),
        2,
        &["x.npy", "its header promises 96"],
    );
    assert!(!d.join("db3").exists());
    // Line numbers are the editor's: CRLF, lone CR and blank lines before the bad row.
    inputs(d, "l", 3, 8, |_, _| {});
    for (text, line) in [
        ("id,lat,lon\r\n0,1,1\r\n1,1,1\r\n2,95,1\r\n", "l.csv:4"),
        ("id,lat,lon\r0,1,1\r1,1,1\r2,95,1\r", "l.csv:4"),
        ("id,lat,lon\n0,1,1\n\n\n1,1,1\n2,95,1\n", "l.csv:6"),
    ] {
        std::fs::write(d.join("l.csv"), text).unwrap();
        expect(&import(d, "db3", "c", "l", &[]), 2, &[line, "latitude 95"]);
    }
    std::fs::write(
        d.join("l.csv"),
        "id,lat,lon\r\n0,1,1\r\n\r\n1,1,1\r\n0,2,2\r\n",
    )
    .unwrap();
    expect(
        &import(d, "db3", "c", "l", &[]),
        2,
        &["id 0", "line 2", "line 5"],
    );
    // Two tiles with one key: the one skipped is named with the one kept.
    let tdir = d.join("tiles");
    tiles(&tdir, &[(10.0, 10.0), (10.01, 10.0)]);
    std::fs::copy(tdir.join("10.00_10.00.png"), tdir.join("10.00_10.00.jpg")).unwrap();
    let o = run(
        d,
        &["ingest-tiles", "tiles", "--db", "dbt", "--random-weights"],
    );
    let e = expect(&o, 0, &["same key '10.00_10.00'"]);
    assert!(
        e.contains("10.00_10.00.jpg") && e.contains("10.00_10.00.png"),
        "{e}"
    );
}

#[test]
fn many_rows_with_one_vector_are_all_found() {
    // 1,500 rows, only 13 distinct vectors (the formula of `vector`), one segment with a
    // graph: a k of the collection's size returns all of them, and the rows tied at the
    // top are found however many share the vector.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    inputs(d, "v", 1_500, 8, |_, _| {});
    expect(&import(d, "db", "c", "v", &[]), 0, &[]);
    let q = vector(5, 8);
    std::fs::write(
        d.join("q.jsonl"),
        query_line(1, 1_500, &q, serde_json::Value::Null),
    )
    .unwrap();
    expect(&query(d, "q.jsonl", &[]), 0, &[]);
    let r = json(&std::fs::read_to_string(d.join("r.jsonl")).unwrap());
    assert_eq!(r["neighbors"].as_array().unwrap().len(), 1_500);
    std::fs::write(
        d.join("q.jsonl"),
        query_line(1, 200, &q, serde_json::Value::Null),
    )
    .unwrap();
    expect(&query(d, "q.jsonl", &[]), 0, &[]);
    let graph = json(&std::fs::read_to_string(d.join("r.jsonl")).unwrap());
    expect(&query(d, "q.jsonl", &["--exact"]), 0, &[]);
    let exact = json(&std::fs::read_to_string(d.join("r.jsonl")).unwrap());
    let top = |v: &serde_json::Value| {
        v["scores"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.as_f64().unwrap() > 0.999)
            .count()
    };
    assert!(top(&exact) > 100, "{}", top(&exact));
    assert_eq!(top(&graph), top(&exact));
}

#[test]
fn paths_names_and_flags_that_are_not_what_they_seem() {
    let t = imported();
    let d = t.path();
    std::fs::write(
        d.join("q.jsonl"),
        query_line(1, 3, &vector(1, 8), serde_json::Value::Null),
    )
    .unwrap();
    // An output ending in '/' names a folder: refused before any query runs.
    for out in ["nodir/", "r.jsonl/"] {
        let o = run(
            d,
            &[
                "query",
                "--db",
                "db",
                "--collection",
                "c",
                "--batch",
                "q.jsonl",
                "--out",
                out,
            ],
        );
        expect(&o, 2, &[out, "names a folder"]);
    }
    // A database path that is a symlink to nothing.
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
    expect(
        &import(d, "dangling", "c", "v", &[]),
        2,
        &["dangling", "symlink", "does not exist"],
    );
    assert!(!d.join("nowhere").exists());
    // A folder holding a user's file with a database file's name is not a database's
    // leftovers: refused, the file kept.
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/seg-0000000000000001.s2seg"), "mine").unwrap();
    expect(&import(d, "mine", "c", "v", &[]), 2, &["mine"]);
    assert_eq!(
        std::fs::read_to_string(d.join("mine/seg-0000000000000001.s2seg")).unwrap(),
        "mine"
    );
    // A collection name of invisible characters, or with a bidirectional control.
    for name in ["\u{200b}", "a\u{202e}b", "\u{feff}\u{200d}"] {
        expect(
            &import(d, "db", name, "v", &[]),
            2,
            &["invalid collection name"],
        );
    }
    // The point flags name themselves; NaN is not a finite number; all three are needed;
    // the old lat-first --near says what to write instead.
    for (flags, want) in [
        (
            &["--lon", "NaN", "--lat", "6.6", "--radius-km", "5"][..],
            &["--lon", "not a finite number"][..],
        ),
        (
            &["--lon", "0", "--lat", "91", "--radius-km", "5"],
            &["--lat 91", "latitude 91"],
        ),
        (
            &["--lon", "0", "--lat", "1"],
            &["--lon, --lat and --radius-km"],
        ),
        (
            &["--near", "46.5,6.6", "--radius-km", "5"],
            &["--near", "--lat 46.5 and --lon 6.6"],
        ),
    ] {
        let mut args = vec![
            "search",
            "--db",
            "db",
            "--collection",
            "c",
            "--vector",
            "v.npy",
        ];
        args.extend_from_slice(flags);
        expect(&run(d, &args), 2, want);
    }
    // A zero query vector names its file; --overhead-image needs --image.
    write_npy(&d.join("zeros.npy"), NpyDtype::F32, 8, &[0.0; 8]).unwrap();
    std::fs::write(d.join("zeros.json"), "[0, 0, 0, 0, 0, 0, 0, 0]").unwrap();
    for f in ["zeros.npy", "zeros.json"] {
        let o = run(
            d,
            &["search", "--db", "db", "--collection", "c", "--vector", f],
        );
        expect(&o, 2, &[f, "all zeros"]);
    }
    let o = run(
        d,
        &[
            "search",
            "--db",
            "db",
            "--collection",
            "c",
            "--vector",
            "v.npy",
            "--overhead-image",
        ],
    );
    expect(&o, 2, &["--image"]);
    // An error naming a path with a line break stays one line.
    let o = run(d, &["info", "--db", "no\ndb"]);
    let e = expect(&o, 2, &["no\\ndb"]);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    // A weights folder without its files is the user's input (exit 2).
    std::fs::create_dir(d.join("empty-weights")).unwrap();
    let o = run(
        d,
        &[
            "search",
            "--db",
            "db",
            "--collection",
            "c",
            "--text",
            "x",
            "--weights",
            "empty-weights",
        ],
    );
    expect(&o, 2, &["empty-weights"]);
    // Captions and batches whose lines end in a lone CR.
    std::fs::write(d.join("cr.txt"), "a cat\ra dog\ra cow\r").unwrap();
    let r = json(&ok(
        d,
        &[
            "ingest-text",
            "cr.txt",
            "--db",
            "dbc",
            "--random-weights",
            "--json",
        ],
    ));
    assert_eq!(r["added"].as_u64(), Some(3));
    let lines: Vec<String> = (1..4)
        .map(|i| query_line(i, 2, &vector(i, 8), serde_json::Value::Null))
        .collect();
    std::fs::write(d.join("cr.jsonl"), lines.join("\r")).unwrap();
    expect(&query(d, "cr.jsonl", &[]), 0, &[]);
    assert_eq!(
        std::fs::read_to_string(d.join("r.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn a_map_writes_its_prompts_as_given() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    tiles(&d.join("tiles"), &[(46.5, 6.6), (46.51, 6.6), (46.5, 6.61)]);
    ok(
        d,
        &["ingest-tiles", "tiles", "--db", "db", "--random-weights"],
    );
    ok(
        d,
        &[
            "map",
            "a lake",
            "a \"quoted\" field, with a comma",
            "--db",
            "db",
            "--out",
            "m",
            "--random-weights",
        ],
    );
    let mut r = csv::Reader::from_path(d.join("m.csv")).unwrap();
    let prompts: std::collections::BTreeSet<String> =
        r.records().map(|rec| rec.unwrap()[3].to_string()).collect();
    let want: std::collections::BTreeSet<String> = ["a lake", "a \"quoted\" field, with a comma"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(prompts, want);
    let g = json(&std::fs::read_to_string(d.join("m.geojson")).unwrap());
    assert_eq!(g["features"][0]["properties"]["prompt"], "a lake");
}

#[test]
fn a_demo_already_writing_a_folder_keeps_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = d.join("demo");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join(".sat2cap-demo"), "made by sat2cap demo\n").unwrap();
    let lock = File::create(out.join(".sat2cap-demo.lock")).unwrap();
    lock.try_lock().unwrap();
    let o = run(
        d,
        &["demo", "--out", "demo", "--grid", "2", "--tile-px", "32"],
    );
    expect(&o, 1, &["another sat2cap demo is writing into"]);
    drop(lock);
    expect(
        &run(
            d,
            &["demo", "--out", "demo", "--grid", "2", "--tile-px", "32"],
        ),
        0,
        &[],
    );
}
