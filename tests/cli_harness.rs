//! Drives the real `sat2cap` binary: import -> info / verify -> query, and bad inputs.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

use sat2cap::index::flat::dot_f16_f32;
use sat2cap::io::npy::{write_npy, NpyDtype};
use sat2cap::io::query_jsonl::ResultLine;
use sat2cap::query::filter::{BBox, Filter, Radius};
use sat2cap::testing::synth::{generate, query_near};
use sat2cap::{Db, IndexOptions, OpenOptions};

const DIM: usize = 16;
const N: usize = 3_000;

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sat2cap"))
        .args(args)
        .output()
        .expect("run sat2cap")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes vectors.npy (f16) and points.csv for `N` synthetic rows; returns the data.
fn write_inputs(dir: &Path) -> sat2cap::testing::synth::SynthData {
    let d = generate(N, DIM, 8, 11);
    let rows: Vec<f32> = d.vectors.iter().map(|x| x.to_f32()).collect();
    write_npy(&dir.join("v.npy"), NpyDtype::F16, DIM, &rows).unwrap();
    let mut csv = String::from("id,lat,lon,name\n");
    for (i, pt) in d.points.iter().enumerate() {
        csv.push_str(&format!("{},{},{},place {i}\n", i * 3, pt.lat(), pt.lon()));
    }
    std::fs::write(dir.join("p.csv"), csv).unwrap();
    d
}

fn import(dir: &Path, db: &Path, extra: &[&str]) -> Output {
    let (v, pts) = (dir.join("v.npy"), dir.join("p.csv"));
    let mut args = vec![
        "import",
        "--db",
        p(db),
        "--collection",
        "places",
        "--vectors",
        p(&v),
        "--points",
        p(&pts),
    ];
    args.extend_from_slice(extra);
    bin(&args)
}

#[test]
fn import_then_query_matches_exact_search() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = write_inputs(dir);
    let db = dir.join("db");
    let o = import(dir, &db, &["--batch", "1000"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = bin(&["info", "--db", p(&db), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &info["collections"][0];
    assert_eq!(c["name"], "places");
    assert_eq!(c["live"], N);
    assert_eq!(c["segments"].as_array().unwrap().len(), 1, "compacted");
    assert_eq!(c["segments"][0]["graph"], true);
    let o = bin(&["verify", "--db", p(&db)]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Queries: unfiltered, bbox, radius.
    let mut lines = String::new();
    let mut filters = Vec::new();
    for i in 0..30usize {
        let q = query_near(&d, i % 8, i as u64);
        let pt = d.points[i * 7];
        let (json, f) = match i % 3 {
            0 => ("null".to_string(), Filter::new()),
            1 => {
                let (w, s, e, n) = (
                    pt.lon() - 20.0,
                    pt.lat() - 10.0,
                    pt.lon() + 20.0,
                    pt.lat() + 10.0,
                );
                let b = BBox::new(w.max(-180.0), s.max(-90.0), e.min(180.0), n.min(90.0)).unwrap();
                let [w, s, e, n] = b.edges();
                (
                    format!("{{\"bbox\":[{w},{s},{e},{n}]}}"),
                    Filter::new().bbox(b),
                )
            }
            _ => (
                format!(
                    "{{\"radius\":{{\"lat\":{},\"lon\":{},\"km\":800}}}}",
                    pt.lat(),
                    pt.lon()
                ),
                Filter::new().radius(Radius::new(pt.lat(), pt.lon(), 800.0).unwrap()),
            ),
        };
        let v: Vec<String> = q.iter().map(|x| x.to_string()).collect();
        lines.push_str(&format!(
            "{{\"id\":\"q{i}\",\"k\":10,\"vector\":[{}],\"filter\":{json}}}\n",
            v.join(",")
        ));
        filters.push((q, f));
    }
    let qf = dir.join("q.jsonl");
    std::fs::write(&qf, &lines).unwrap();

    // Brute force over the stored (fp16) vectors, ties by lower id.
    let snap = Db::open(&db, OpenOptions::read_only())
        .map(|d| d.snapshot())
        .unwrap();
    let coll = snap.collection("places").unwrap();
    let truth: Vec<Vec<u64>> = filters
        .iter()
        .map(|(q, f)| {
            let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
            let qn: Vec<f32> = q.iter().map(|x| x / n).collect();
            let mut all: Vec<(f32, u64)> = coll
                .iter()
                .map(|r| r.unwrap())
                .filter(|it| f.matches(it.point, it.time))
                .map(|it| (dot_f16_f32(it.vector, &qn), it.id))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            all.into_iter().take(10).map(|x| x.1).collect()
        })
        .collect();

    // `sat2cap query` of the 30 queries into `out`, with `extra` flags.
    let query = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "query",
            "--db",
            p(&db),
            "--collection",
            "places",
            "--batch",
            p(&qf),
            "--out",
            p(out),
            "--threads",
            "2",
        ];
        args.extend_from_slice(extra);
        bin(&args)
    };
    for exact in [true, false] {
        let out = dir.join(format!("r{exact}.jsonl"));
        let o = query(&out, if exact { &["--exact"] } else { &[] });
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("queries/s"), "{}", stderr(&o));
        let text = std::fs::read_to_string(&out).unwrap();
        let res: Vec<ResultLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(res.len(), 30);
        let (mut found, mut wanted) = (0, 0);
        for (i, r) in res.iter().enumerate() {
            assert_eq!(r.id, serde_json::json!(format!("q{i}")), "input order");
            assert_eq!(r.neighbors.len(), r.scores.len());
            assert!(r.neighbors.iter().all(|id| id % 3 == 0), "ids from the CSV");
            if exact {
                assert_eq!(r.neighbors, truth[i], "query {i}");
            }
            let got: HashSet<_> = r.neighbors.iter().collect();
            found += truth[i].iter().filter(|x| got.contains(x)).count();
            wanted += truth[i].len();
        }
        assert!(
            found as f64 >= 0.95 * wanted as f64,
            "recall {found}/{wanted}"
        );
    }
    // --warm-up answers the batch twice and writes the timed pass; --resident reads the
    // int8 vectors from a copy in memory: the same file either way.
    let plain = std::fs::read(dir.join("rfalse.jsonl")).unwrap();
    let out = dir.join("again.jsonl");
    let query_with = |flag: &str| {
        let o = query(&out, &["--json", flag]);
        assert!(o.status.success(), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("queries: 30,"), "{}", stderr(&o));
        assert_eq!(std::fs::read(&out).unwrap(), plain, "{flag}");
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (summary, stderr(&o))
    };
    let (warm, _) = query_with("--warm-up");
    assert_eq!(warm["resident_bytes"], 0, "{warm}");
    let (resident, notes) = query_with("--resident");
    if cfg!(target_os = "linux") {
        assert!(
            resident["resident_bytes"].as_u64().unwrap() > 0,
            "{resident}"
        );
        assert!(
            notes.contains("MiB of int8 vectors held in memory"),
            "{notes}"
        );
    }
}

#[test]
fn bad_inputs_give_one_line_errors_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_inputs(dir);
    let db = dir.join("db");
    let one_line = |o: &Output, code: i32, needle: &str| {
        let e = stderr(o);
        assert_eq!(o.status.code(), Some(code), "{e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(e.starts_with("sat2cap: "), "{e}");
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    // Missing vectors file.
    let o = bin(&[
        "import",
        "--db",
        p(&db),
        "--collection",
        "c",
        "--vectors",
        p(&dir.join("nope.npy")),
        "--points",
        p(&dir.join("p.csv")),
    ]);
    one_line(&o, 2, "nope.npy");
    assert!(
        !db.join("MANIFEST").exists(),
        "nothing created on bad input"
    );
    // Mismatched counts.
    let short: String = std::fs::read_to_string(dir.join("p.csv"))
        .unwrap()
        .lines()
        .take(10)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("short.csv"), short).unwrap();
    let o = bin(&[
        "import",
        "--db",
        p(&db),
        "--collection",
        "c",
        "--vectors",
        p(&dir.join("v.npy")),
        "--points",
        p(&dir.join("short.csv")),
    ]);
    one_line(&o, 2, "9 data rows");
    // A bad CSV row.
    std::fs::write(dir.join("bad.csv"), "id,lat,lon\n0,1,2\n1,abc,2\n").unwrap();
    let o = bin(&[
        "import",
        "--db",
        p(&db),
        "--collection",
        "c",
        "--vectors",
        p(&dir.join("v.npy")),
        "--points",
        p(&dir.join("bad.csv")),
    ]);
    one_line(&o, 2, "bad.csv:3");

    // A good import, then a locked database.
    let o = import(dir, &db, &["--no-compact"]);
    assert!(o.status.success(), "{}", stderr(&o));
    {
        let _writer =
            Db::open(&db, OpenOptions::read_write().indexes(IndexOptions::none())).unwrap();
        let o = import(dir, &db, &[]);
        one_line(&o, 1, "locked");
        // Queries read without the lock.
        let qf = dir.join("ok.jsonl");
        let v = vec!["0.5"; DIM].join(",");
        std::fs::write(
            &qf,
            format!("{{\"id\":1,\"k\":3,\"vector\":[{v}],\"filter\":null}}\n"),
        )
        .unwrap();
        let out = dir.join("ok.out");
        let o = bin(&[
            "query",
            "--db",
            p(&db),
            "--collection",
            "places",
            "--batch",
            p(&qf),
            "--out",
            p(&out),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Results on stdout (`--out -`): the lines the file gets, on one thread or several;
    // the --json summary goes to stderr as one line. The same queries with their vectors
    // in an .npy (`--vectors`, f32 or f16) and lines without them: the same lines again.
    let vectors: Vec<Vec<f32>> = (0..40)
        .map(|i| {
            (0..DIM)
                .map(|d| ((i * 7 + d * 3) % 11) as f32 - 5.0)
                .collect()
        })
        .collect();
    let head = |i: usize| {
        let filter = match i % 3 {
            0 => "null",
            1 => "{\"bbox\":[-180,-90,180,90]}",
            _ => "{\"radius\":{\"lat\":10,\"lon\":20,\"km\":3000}}",
        };
        format!("\"id\":{i},\"k\":5,\"filter\":{filter}")
    };
    let qf = dir.join("many.jsonl");
    let lines: String = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("{{{},\"vector\":[{}]}}\n", head(i), v.join(","))
        })
        .collect();
    std::fs::write(&qf, lines).unwrap();
    let heads = dir.join("heads.jsonl");
    let text: String = (0..40).map(|i| format!("{{{}}}\n", head(i))).collect();
    // A blank line is not a query: it takes no row.
    std::fs::write(&heads, text.replacen('\n', "\n\n", 1)).unwrap();
    let flat: Vec<f32> = vectors.concat();
    for (name, dtype, rows) in [
        ("v32.npy", NpyDtype::F32, &flat[..]),
        ("v16.npy", NpyDtype::F16, &flat[..]),
        ("short.npy", NpyDtype::F32, &flat[..39 * DIM]),
        (
            "nan.npy",
            NpyDtype::F32,
            &[&flat[..DIM], &[f32::NAN; DIM][..], &flat[2 * DIM..]].concat()[..],
        ),
    ] {
        write_npy(&dir.join(name), dtype, DIM, rows).unwrap();
    }
    write_npy(
        &dir.join("wide.npy"),
        NpyDtype::F32,
        DIM + 1,
        &vec![1.0; 40 * (DIM + 1)],
    )
    .unwrap();
    let out = dir.join("many.out");
    let query = |batch: &Path, extra: &[&str]| {
        let mut a = vec![
            "query",
            "--db",
            p(&db),
            "--collection",
            "places",
            "--batch",
            p(batch),
        ];
        a.extend_from_slice(extra);
        bin(&a)
    };
    let o = query(&qf, &["--out", p(&out), "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = std::fs::read_to_string(&out).unwrap();
    assert_eq!(file.lines().count(), 40);
    for threads in ["1", "3"] {
        let o = query(&qf, &["--out", "-", "--threads", threads, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            file,
            "--threads {threads}"
        );
        let summary = stderr(&o);
        let line = summary.lines().find(|l| l.starts_with('{')).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (v["queries"].as_u64(), v["out"].as_str()),
            (Some(40), Some("-"))
        );
        // The batch from stdin (`--batch -`), a pipe here.
        let mut child = Command::new(env!("CARGO_BIN_EXE_sat2cap"))
            .args([
                "query",
                "--db",
                p(&db),
                "--collection",
                "places",
                "--batch",
                "-",
            ])
            .args(["--out", "-", "--threads", threads])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let text = std::fs::read(&qf).unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &text));
        let o = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), file, "--batch -");
        for npy in ["v32.npy", "v16.npy"] {
            let o = query(
                &heads,
                &[
                    "--vectors",
                    p(&dir.join(npy)),
                    "--out",
                    "-",
                    "--threads",
                    threads,
                ],
            );
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(String::from_utf8_lossy(&o.stdout), file, "{npy}");
        }
    }
    // Rows and lines that do not pair: exit 2 naming the files, nothing written.
    for (batch, npy, needle) in [
        (&heads, "short.npy", "short.npy: 39 rows, and line 41 of"),
        (&heads, "nan.npy", "nan.npy: row 2 (the query of"),
        (
            &heads,
            "wide.npy",
            "wide.npy: vectors of 17 dimensions; the collection's have 16",
        ),
        (
            &qf,
            "v32.npy",
            "many.jsonl: line 1: the line gives a vector and the vectors file gives one too",
        ),
    ] {
        let o = query(batch, &["--vectors", p(&dir.join(npy)), "--out", "-"]);
        one_line(&o, 2, needle);
        assert!(o.stdout.is_empty(), "{npy}: nothing on stdout");
    }
    // The blank line moved the second query to line 3.
    let o = query(
        &heads,
        &["--vectors", p(&dir.join("nan.npy")), "--out", "-"],
    );
    assert!(
        stderr(&o).contains("heads.jsonl:3): component 0 is not a finite number"),
        "{}",
        stderr(&o)
    );
    // The vectors file is an input: never the results' destination.
    let v32 = dir.join("v32.npy");
    let before = std::fs::read(&v32).unwrap();
    let o = query(&heads, &["--vectors", p(&v32), "--out", p(&v32)]);
    one_line(&o, 2, "is also an input of this command");
    assert_eq!(std::fs::read(&v32).unwrap(), before);
    // A pipe is not an .npy file: named as such, not as a file of 0 bytes.
    #[cfg(unix)]
    {
        let fifo = dir.join("v.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let o = query(&heads, &["--vectors", p(&fifo), "--out", "-"]);
            one_line(&o, 2, "not a regular file");
        }
    }
    let few = dir.join("few.jsonl");
    std::fs::write(
        &few,
        (0..39)
            .map(|i| format!("{{{}}}\n", head(i)))
            .collect::<String>(),
    )
    .unwrap();
    let o = query(
        &few,
        &["--vectors", p(&dir.join("v32.npy")), "--out", p(&out)],
    );
    one_line(&o, 2, "v32.npy: 40 rows, and");
    assert!(String::from_utf8_lossy(&o.stderr).contains("few.jsonl has 39 queries"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        file,
        "the old results kept"
    );
    // A bad JSONL line (line 2): exit 2, the line named, nothing written.
    let v = vec!["0.5"; DIM].join(",");
    let qf = dir.join("bad.jsonl");
    std::fs::write(
        &qf,
        format!("{{\"id\":1,\"k\":3,\"vector\":[{v}],\"filter\":null}}\n{{\"id\":2,\"k\":\n"),
    )
    .unwrap();
    let out = dir.join("bad.out");
    let o = bin(&[
        "query",
        "--db",
        p(&db),
        "--collection",
        "places",
        "--batch",
        p(&qf),
        "--out",
        p(&out),
    ]);
    one_line(&o, 2, "line 2");
    assert!(!out.exists());
    let o = bin(&[
        "query",
        "--db",
        p(&db),
        "--collection",
        "places",
        "--batch",
        p(&qf),
        "--out",
        "-",
    ]);
    one_line(&o, 2, "line 2");
    assert!(o.stdout.is_empty(), "nothing on stdout");
    // Bad values: wrong dimension, latitude 91, k = 0.
    for (line, needle) in [
        ("{\"id\":1,\"k\":3,\"vector\":[1,2],\"filter\":null}".to_string(), "dimensions"),
        (
            format!("{{\"id\":1,\"k\":3,\"vector\":[{v}],\"filter\":{{\"radius\":{{\"lat\":91,\"lon\":0,\"km\":5}}}}}}"),
            "latitude",
        ),
        (format!("{{\"id\":1,\"k\":0,\"vector\":[{v}],\"filter\":null}}"), "k must be"),
    ] {
        std::fs::write(&qf, format!("{line}\n")).unwrap();
        let o = bin(&[
            "query", "--db", p(&db), "--collection", "places", "--batch", p(&qf), "--out", p(&out),
        ]);
        one_line(&o, 2, needle);
        assert!(!out.exists());
    }
    // Unknown collection.
    let o = bin(&[
        "query",
        "--db",
        p(&db),
        "--collection",
        "nope",
        "--batch",
        p(&qf),
        "--out",
        p(&out),
    ]);
    one_line(&o, 2, "nope");
    // Help with an example, for every command.
    for c in ["import", "query", "info", "verify", "compact"] {
        let o = bin(&[c, "--help"]);
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Example"),
            "{c}"
        );
    }
    // Compact and verify the multi-segment import.
    let o = bin(&["compact", "--db", p(&db)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bin(&["verify", "--db", p(&db)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Verify fails (exit 1) on a damaged segment file.
    let seg = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "s2seg"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let o = bin(&["verify", "--db", p(&db)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
