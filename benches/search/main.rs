//! Recall@10 and single-thread queries/s by filter kind and selectivity bucket, through the
//! two paths a user takes: the library (`Collection::search`, default settings) and the CLI
//! batch (`sat2cap query --threads 1 --warm-up`), on a database made by `sat2cap import`,
//! for query sets in the geonames-minilm layout (`queries.dev.jsonl` + `truth.dev.jsonl`).
//! `--make-heldout` writes a held-out set (see `heldout.rs`).
//!
//! With `--sat2cap`, each bucket's queries go through the CLI as one batch four ways (results
//! to a file, to stdout, to a file with the lines written ten times over, and to stdout with
//! the vectors in an `.npy`), three rounds in turn with the library's passes over the same
//! queries (once each after an untimed pass, as the CLI's `--warm-up` pass does, and over
//! and over), each figure the median of its three.
//!
//! ```text
//! cargo run --release -p sat2cap-bench --bin bench_search -- --make-heldout \
//!     --data /work/shared/data/geonames-minilm --out target/heldout
//! cargo run --release -p sat2cap-bench --bin bench_search -- --db target/geo.db \
//!     --queries /work/shared/data/geonames-minilm --queries target/heldout \
//!     --sat2cap target/release/sat2cap
//! ```

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use sat2cap::io::query_jsonl::FilterJson;
use sat2cap::{Db, Filter, OpenOptions};

mod heldout;

#[derive(Parser)]
struct Args {
    /// Write a held-out query set for `--data` into `--out`, then stop.
    #[arg(long)]
    make_heldout: bool,
    /// A geonames-layout folder (vectors.f16.npy, places.csv), for `--make-heldout`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where `--make-heldout` writes.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Held-out queries per bucket.
    #[arg(long, default_value_t = 100)]
    per_bucket: usize,
    /// Held-out seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The database (made by `sat2cap import`).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Its collection.
    #[arg(long, default_value = "places")]
    collection: String,
    /// Query-set folders (each with queries.dev.jsonl and truth.dev.jsonl).
    #[arg(long)]
    queries: Vec<PathBuf>,
    /// The `sat2cap` binary, for the CLI pass (skipped without it).
    #[arg(long)]
    sat2cap: Option<PathBuf>,
    /// Beam width for every query (default: the library's own choice).
    #[arg(long)]
    ef: Option<usize>,
    /// Walk effort for every query (a multiple of the hop slack; default: 1).
    #[arg(long, conflicts_with = "ef")]
    effort: Option<f32>,
    /// Make the collection's int8 copy resident (`Collection::make_resident`, and
    /// `sat2cap query --resident`) before the queries.
    #[arg(long)]
    resident: bool,
}

struct Query {
    line: String,
    vector: Vec<f32>,
    k: usize,
    filter: Filter,
    kind: &'static str,
    bucket: usize,
    truth: Vec<u64>,
}

const BUCKETS: [f64; 6] = heldout::BUCKETS;

fn bucket_of(s: f64) -> usize {
    let d = |b: f64| (s.max(1e-9).ln() - b.ln()).abs();
    (0..BUCKETS.len())
        .min_by(|&a, &b| d(BUCKETS[a]).total_cmp(&d(BUCKETS[b])))
        .unwrap_or(0)
}

fn load(dir: &Path) -> Result<Vec<Query>, String> {
    let read = |name: &str| -> Result<Vec<String>, String> {
        let f = std::fs::File::open(dir.join(name))
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
        std::io::BufReader::new(f)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())
    };
    let mut truth = BTreeMap::new();
    for l in read("truth.dev.jsonl")? {
        let v: serde_json::Value = serde_json::from_str(&l).map_err(|e| e.to_string())?;
        let ids: Vec<u64> = v["neighbors"]
            .as_array()
            .ok_or("neighbors")?
            .iter()
            .filter_map(|x| x.as_u64())
            .collect();
        truth.insert(v["id"].as_u64().ok_or("id")?, ids);
    }
    let mut out = Vec::new();
    for line in read("queries.dev.jsonl")? {
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        let id = v["id"].as_u64().ok_or("id")?;
        let vector: Vec<f32> = v["vector"]
            .as_array()
            .ok_or("vector")?
            .iter()
            .filter_map(|x| x.as_f64().map(|x| x as f32))
            .collect();
        let fj: Option<FilterJson> =
            serde_json::from_value(v["filter"].clone()).map_err(|e| e.to_string())?;
        let kind = match &fj {
            None => "none",
            Some(f) if f.bbox.is_some() => "bbox",
            Some(_) => "radius",
        };
        let filter = match &fj {
            Some(f) => f.to_filter().map_err(|e| e.to_string())?,
            None => Filter::new(),
        };
        out.push(Query {
            line,
            vector,
            k: v["k"].as_u64().unwrap_or(10) as usize,
            filter,
            kind,
            bucket: bucket_of(v["selectivity"].as_f64().unwrap_or(1.0)),
            truth: truth.get(&id).cloned().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Rounds of library and CLI passes a cell takes when the CLI is measured.
const REPS: usize = 3;

/// Seconds a library pass over a group lasts at least (the group repeated).
const LIB_PASS_S: f64 = 0.05;

/// The median of `v` (the upper one of an even count); NaN when empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn recall(got: &[u64], truth: &[u64]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let t: HashSet<u64> = truth.iter().copied().collect();
    got.iter().filter(|x| t.contains(x)).count() as f64 / truth.len() as f64
}

#[derive(Default)]
struct Cell {
    n: usize,
    recall: f64,
    worst: f64,
    secs: f64,
    /// The library's queries/s on this group measured beside the CLI passes as the CLI
    /// measures its own (each query once, after one untimed pass, wall clock; the median
    /// of [`REPS`]): what the CLI columns are compared with.
    lib_beside: Option<f64>,
    /// The library's queries/s on the group repeated for [`LIB_PASS_S`] (median of
    /// [`REPS`]): its ceiling, with all the group reads in the caches.
    lib_hot: Option<f64>,
    cli_qps: Option<f64>,
    cli_recall: Option<f64>,
    /// The CLI's whole batch (reading, preparing, searching, writing) in queries/s: the
    /// group as it is, and its lines written ten times over.
    cli_batch: Option<[f64; 4]>,
}

fn main() {
    let a = Args::parse();
    if a.make_heldout {
        let (Some(data), Some(out)) = (&a.data, &a.out) else {
            eprintln!("--make-heldout needs --data and --out");
            std::process::exit(2);
        };
        let t = Instant::now();
        let (vectors, dim, points) = match read_geonames(data) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{}: {e}", data.display());
                std::process::exit(1);
            }
        };
        let q = heldout::generate(&vectors, dim, &points, a.per_bucket, a.seed);
        if let Err(e) = heldout::write(out, data, &q, a.seed) {
            eprintln!("{}: {e}", out.display());
            std::process::exit(1);
        }
        eprintln!(
            "{} held-out queries in {:.1} s -> {}",
            q.len(),
            t.elapsed().as_secs_f64(),
            out.display()
        );
        return;
    }
    let Some(db_path) = &a.db else {
        eprintln!("give --db (or --make-heldout)");
        std::process::exit(2);
    };
    let t = Instant::now();
    let snap = match Db::open(db_path, OpenOptions::read_only()) {
        Ok(db) => db.snapshot(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let Ok(coll) = snap.collection(&a.collection) else {
        eprintln!("no collection {}", a.collection);
        std::process::exit(1);
    };
    if let Err(e) = coll.prepare() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    if a.resident {
        match coll.make_resident() {
            Ok(r) => eprintln!(
                "resident: {} MiB in {} segment(s), huge pages {}",
                r.bytes >> 20,
                r.segments,
                if r.huge_pages { "on" } else { "off" }
            ),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    eprintln!("opened and prepared in {:.3} s", t.elapsed().as_secs_f64());
    println!("| set | filter | bucket | queries | recall@10 (library) | worst | q/s library | q/s library, group repeated | q/s CLI batch | CLI / library | CLI whole batch q/s: file / stdout / file x10 / .npy vectors | CLI whole batch per query / library per query: file / stdout / file x10 / .npy vectors |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for dir in &a.queries {
        let qs = match load(dir) {
            Ok(q) => q,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                continue;
            }
        };
        let set = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let run = |q: &Query| {
            let mut s = coll.search(&q.vector).k(q.k).filter(q.filter.clone());
            if let Some(ef) = a.ef {
                s = s.ef(ef);
            }
            if let Some(e) = a.effort {
                s = s.effort(e);
            }
            s.run()
                .map(|r| r.hits.iter().map(|h| h.id).collect::<Vec<u64>>())
        };
        // Warm: every page the set touches is read once before the timed pass.
        for q in &qs {
            let _ = run(q);
        }
        let mut cells: BTreeMap<(&str, usize), Cell> = BTreeMap::new();
        for q in &qs {
            let t = cpu_time::ThreadTime::now();
            let got = run(q).unwrap_or_default();
            let secs = t.elapsed().as_secs_f64();
            let r = recall(&got, &q.truth);
            let c = cells.entry((q.kind, q.bucket)).or_insert(Cell {
                worst: 1.0,
                ..Cell::default()
            });
            c.n += 1;
            c.recall += r;
            c.worst = c.worst.min(r);
            c.secs += secs;
        }
        if let Some(bin) = &a.sat2cap {
            for (key, cell) in cells.iter_mut() {
                let group: Vec<&Query> = qs.iter().filter(|q| (q.kind, q.bucket) == *key).collect();
                let knobs = (a.ef, a.effort, a.resident);
                let pass = |copies, out| {
                    cli_pass(bin, db_path, &a.collection, &group, knobs, (copies, out))
                };
                // Library and CLI passes in turn, REPS times, each figure the median of its
                // REPS: a machine whose speed drifts during the run drifts under both.
                let mut runs: [Vec<f64>; 7] = Default::default();
                for _ in 0..REPS {
                    // As the CLI's timed pass: each query once, after one untimed pass.
                    for q in &group {
                        let _ = run(q);
                    }
                    // Wall clock, as the CLI's summary times its searches.
                    let t = Instant::now();
                    for q in &group {
                        let _ = run(q);
                    }
                    let once = group.len() as f64 / t.elapsed().as_secs_f64().max(1e-12);
                    // The group over and over: everything it reads stays in the caches.
                    let t = Instant::now();
                    let mut answered = 0usize;
                    while answered == 0 || t.elapsed().as_secs_f64() < LIB_PASS_S {
                        for q in &group {
                            let _ = run(q);
                        }
                        answered += group.len();
                    }
                    let hot = answered as f64 / t.elapsed().as_secs_f64().max(1e-12);
                    match (
                        pass(1, Out::File),
                        pass(1, Out::Stdout),
                        pass(10, Out::File),
                        pass(1, Out::NpyStdout),
                    ) {
                        (Ok(p), Ok(s), Ok(p10), Ok(npy)) => {
                            cell.cli_recall = Some(p.recall);
                            if (npy.recall - p.recall).abs() > 1e-9 {
                                eprintln!("note: {key:?}: --vectors recall {} differs", npy.recall);
                            }
                            let got = [
                                once,
                                hot,
                                p.qps,
                                p.batch_qps,
                                s.batch_qps,
                                p10.batch_qps,
                                npy.batch_qps,
                            ];
                            for (v, x) in runs.iter_mut().zip(got) {
                                v.push(x);
                            }
                        }
                        (Err(e), _, _, _)
                        | (_, Err(e), _, _)
                        | (_, _, Err(e), _)
                        | (_, _, _, Err(e)) => {
                            eprintln!("CLI pass {key:?}: {e}")
                        }
                    }
                }
                if runs[0].len() == REPS {
                    let [once, hot, cli, file, stdout, x10, npy] = runs.map(median);
                    cell.lib_beside = Some(once);
                    cell.lib_hot = Some(hot);
                    cell.cli_qps = Some(cli);
                    cell.cli_batch = Some([file, stdout, x10, npy]);
                }
            }
        }
        for ((kind, b), c) in &cells {
            let lib_qps = c.lib_beside.unwrap_or(c.n as f64 / c.secs.max(1e-12));
            let cli = c.cli_qps.map_or("-".to_string(), |x| format!("{x:.0}"));
            let hot = c.lib_hot.map_or("-".to_string(), |x| format!("{x:.0}"));
            let ratio = c
                .cli_qps
                .map_or("-".to_string(), |x| format!("{:.2}", x / lib_qps));
            if let Some(cr) = c.cli_recall {
                if (cr - c.recall / c.n as f64).abs() > 1e-9 {
                    eprintln!(
                        "note: {set} {kind} {}: CLI recall {cr:.4} differs from the library's",
                        BUCKETS[*b]
                    );
                }
            }
            let (whole, whole_ratio) = c.cli_batch.map_or(("-".into(), "-".into()), |qps| {
                let show = |f: &dyn Fn(f64) -> String| {
                    qps.iter().map(|&x| f(x)).collect::<Vec<_>>().join(" / ")
                };
                (
                    show(&|x| format!("{x:.0}")),
                    show(&|x| format!("{:.2}", lib_qps / x)),
                )
            });
            println!(
                "| {set} | {kind} | {} | {} | {:.3} | {:.1} | {lib_qps:.0} | {hot} | {cli} | {ratio} | {whole} | {whole_ratio} |",
                pct(BUCKETS[*b]),
                c.n,
                c.recall / c.n as f64,
                c.worst,
            );
        }
    }
}

fn pct(b: f64) -> String {
    if b >= 1.0 {
        "~100%".into()
    } else {
        format!("{}%", b * 100.0)
    }
}

/// What one CLI pass measured.
struct CliPass {
    /// The searches' steady-state queries/s.
    qps: f64,
    /// The whole batch's queries/s (`end_to_end_queries_per_s`).
    batch_qps: f64,
    /// Recall@10 of what it wrote (its first copy of the group).
    recall: f64,
}

/// Where a CLI pass writes its results.
#[derive(Clone, Copy, PartialEq)]
enum Out {
    /// A file (`--out r.jsonl`: written whole, synced and renamed).
    File,
    /// Standard output (`--out -`), a pipe this process reads.
    Stdout,
    /// Standard output, the vectors in an `.npy` (`--vectors`, f32) and the lines
    /// without them.
    NpyStdout,
}

/// `sat2cap query --threads 1 --warm-up` over `group` (with `--ef`, `--resident` when
/// given), its lines written `copies` times, the results to a file or to stdout.
fn cli_pass(
    bin: &Path,
    db: &Path,
    coll: &str,
    group: &[&Query],
    (ef, effort, resident): (Option<usize>, Option<f32>, bool),
    (copies, to): (usize, Out),
) -> Result<CliPass, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let batch = dir.path().join("q.jsonl");
    let out = dir.path().join("r.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&batch).map_err(|e| e.to_string())?);
    let npy = dir.path().join("q.npy");
    for _ in 0..copies {
        for q in group {
            if to == Out::NpyStdout {
                let mut v: serde_json::Value =
                    serde_json::from_str(&q.line).map_err(|e| e.to_string())?;
                v.as_object_mut()
                    .ok_or("a line is not an object")?
                    .remove("vector");
                writeln!(f, "{v}").map_err(|e| e.to_string())?;
            } else {
                writeln!(f, "{}", q.line).map_err(|e| e.to_string())?;
            }
        }
    }
    f.flush().map_err(|e| e.to_string())?;
    drop(f);
    if to == Out::NpyStdout {
        let rows: Vec<f32> = (0..copies)
            .flat_map(|_| group.iter().flat_map(|q| q.vector.iter().copied()))
            .collect();
        let dim = group.first().map_or(1, |q| q.vector.len());
        sat2cap::io::npy::write_npy(&npy, sat2cap::io::npy::NpyDtype::F32, dim, &rows)
            .map_err(|e| e.to_string())?;
    }
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "query",
        "--collection",
        coll,
        "--threads",
        "1",
        "--warm-up",
        "--json",
    ])
    .arg("--db")
    .arg(db)
    .arg("--batch")
    .arg(&batch)
    .arg("--out");
    match to {
        Out::File => cmd.arg(&out),
        Out::Stdout => cmd.arg("-"),
        Out::NpyStdout => cmd.arg("-").arg("--vectors").arg(&npy),
    };
    if resident {
        cmd.arg("--resident");
    }
    if let Some(ef) = ef {
        cmd.args(["--ef", &ef.to_string()]);
    }
    if let Some(e) = effort {
        cmd.args(["--effort", &e.to_string()]);
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).to_string());
    }
    // The summary is stdout's JSON, or stderr's JSON line when the results are on stdout.
    let (summary, text) = match to {
        Out::File => (
            o.stdout.clone(),
            std::fs::read_to_string(&out).map_err(|e| e.to_string())?,
        ),
        Out::Stdout | Out::NpyStdout => {
            let err = String::from_utf8_lossy(&o.stderr);
            let line = err
                .lines()
                .find(|l| l.starts_with('{'))
                .ok_or("no summary")?;
            (
                line.as_bytes().to_vec(),
                String::from_utf8(o.stdout).map_err(|e| e.to_string())?,
            )
        }
    };
    let summary: serde_json::Value = serde_json::from_slice(&summary).map_err(|e| e.to_string())?;
    let qps = summary["queries_per_s"]
        .as_f64()
        .ok_or("no queries_per_s")?;
    let batch_qps = summary["end_to_end_queries_per_s"]
        .as_f64()
        .ok_or("no end_to_end_queries_per_s")?;
    let mut total = 0.0;
    for (line, q) in text.lines().zip(group) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let got: Vec<u64> = v["neighbors"]
            .as_array()
            .ok_or("neighbors")?
            .iter()
            .filter_map(|x| x.as_u64())
            .collect();
        total += recall(&got, &q.truth);
    }
    Ok(CliPass {
        qps,
        batch_qps,
        recall: total / group.len().max(1) as f64,
    })
}

/// The vectors, dimension and points of a geonames-layout folder.
fn read_geonames(dir: &Path) -> Result<(Vec<half::f16>, usize, Vec<sat2cap::geo::Point>), String> {
    let mut r = sat2cap::io::npy::NpyReader::open(&dir.join("vectors.f16.npy"))
        .map_err(|e| e.to_string())?;
    let (n, dim) = (r.header().rows as usize, r.header().cols);
    let mut vectors = Vec::with_capacity(n * dim);
    let mut row = Vec::new();
    while r.read_row(&mut row).map_err(|e| e.to_string())? {
        vectors.extend(row.iter().map(|&x| half::f16::from_f32(x)));
    }
    let csv = std::fs::read_to_string(dir.join("places.csv")).map_err(|e| e.to_string())?;
    let mut points = vec![None; n];
    for line in csv.lines().skip(1) {
        let mut it = line.split(',');
        let (Some(id), Some(lat), Some(lon)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let (Ok(id), Ok(lat), Ok(lon)) = (id.parse::<usize>(), lat.parse(), lon.parse()) {
            if id < n {
                points[id] = sat2cap::geo::Point::new(lat, lon).ok();
            }
        }
    }
    let points = points
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or("places.csv misses rows")?;
    Ok((vectors, dim, points))
}
