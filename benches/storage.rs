//! Storage benchmark: ingest + commit throughput, file size per vector, open time at two
//! database sizes, RSS after open. Prints a markdown table.
//!
//! ```text
//! SAT2CAP_BENCH_N=1000000 SAT2CAP_BENCH_DIM=512 CARGO_TARGET_DIR=... \
//!     cargo bench -p sat2cap-bench --bench storage
//! ```
//! `SAT2CAP_BENCH_N` (default 200000) is the large size; the small size is N/10.
//! `SAT2CAP_BENCH_BATCH` (default 100000) is the number of items per commit.
//! Open time and RSS are measured in a fresh child process (this binary re-executed), so the
//! ingest's memory does not count.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::{Db, IndexOptions, NewItem, OpenOptions};

const CHILD: &str = "SAT2CAP_BENCH_OPEN_CHILD";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (RSS, RssAnon, RssFile) in KiB: statm's resident pages, and /proc/self/status's split
/// into private memory and mapped file pages (page cache shared with the OS).
fn rss_kib() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (pages * 4, field("RssAnon:"), field("RssFile:"))
}

/// Child: open the database `reps` times, print median open time and RSS before/after.
fn open_child(path: &str) {
    let before = rss_kib();
    let mut times = Vec::new();
    let mut keep = None;
    for _ in 0..21 {
        let t = Instant::now();
        let snap = Db::open(path, OpenOptions::read_only())
            .map(|d| d.snapshot())
            .expect("open");
        times.push(t.elapsed());
        keep = Some(snap);
    }
    let after = rss_kib();
    let snap = keep.expect("opened");
    let n = snap.collection("c").map(|c| c.len()).unwrap_or(0);
    times.sort();
    println!(
        "OPEN {} {} {} {}/{}/{} {}/{}/{}",
        n,
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        before.0,
        before.1,
        before.2,
        after.0,
        after.1,
        after.2
    );
}

struct Ingest {
    n: usize,
    add: Duration,
    commit: Duration,
    seg_bytes: u64,
}

fn ingest(path: &Path, n: usize, dim: usize, batch: usize) -> Ingest {
    let mut db = Db::open(
        path,
        OpenOptions::create_new().indexes(IndexOptions::none()),
    )
    .expect("create");
    db.create_collection("c", dim).expect("collection");
    db.commit().expect("commit");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut v = vec![0f32; dim];
    let (mut add, mut commit) = (Duration::ZERO, Duration::ZERO);
    let mut id = 0u64;
    while (id as usize) < n {
        let end = (id as usize + batch).min(n) as u64;
        let t = Instant::now();
        for i in id..end {
            for x in v.iter_mut() {
                *x = rng.random_range(-1.0f32..1.0);
            }
            let p = Point::new(
                rng.random_range(-90.0..90.0),
                rng.random_range(-180.0..180.0),
            )
            .expect("point");
            db.add(
                "c",
                NewItem {
                    id: i,
                    vector: &v,
                    point: p,
                    time: Some(1_600_000_000 + i as i64),
                    payload: None,
                },
            )
            .expect("add");
        }
        add += t.elapsed();
        let t = Instant::now();
        db.commit().expect("commit");
        commit += t.elapsed();
        id = end;
    }
    let seg_bytes = std::fs::read_dir(path)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".s2seg"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    Ingest {
        n,
        add,
        commit,
        seg_bytes,
    }
}

fn main() {
    if let Ok(p) = std::env::var(CHILD) {
        open_child(&p);
        return;
    }
    let n = env("SAT2CAP_BENCH_N", 200_000);
    let dim = env("SAT2CAP_BENCH_DIM", 512);
    let batch = env("SAT2CAP_BENCH_BATCH", 100_000);
    let root =
        tempfile::tempdir_in(std::env::var("SAT2CAP_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .expect("tempdir");
    println!("## Storage (n = {n}, dim = {dim}, {batch} items per commit)\n");
    println!("| database | items | add (s) | commit (s) | items/s (add+commit) | MB/s written | bytes/vector | target 2*dim+32 | open min (ms) | open median (ms) | RSS/anon/file before open (KiB) | RSS/anon/file after open (KiB) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in [n / 10, n] {
        let path = root.path().join(format!("db-{size}"));
        let r = ingest(&path, size, dim, batch);
        let total = (r.add + r.commit).as_secs_f64();
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env(CHILD, &path)
            .output()
            .expect("child");
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        let f: Vec<String> = line
            .lines()
            .find(|l| l.starts_with("OPEN "))
            .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
            .unwrap_or_default();
        let get = |i: usize| f.get(i).cloned().unwrap_or_else(|| "?".into());
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.1} | {} | {:.3} | {:.3} | {} | {} |",
            path.file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default(),
            r.n,
            r.add.as_secs_f64(),
            r.commit.as_secs_f64(),
            r.n as f64 / total,
            r.seg_bytes as f64 / 1e6 / total,
            r.seg_bytes as f64 / r.n as f64,
            2 * dim + 32,
            get(1).parse::<f64>().unwrap_or(f64::NAN),
            get(2).parse::<f64>().unwrap_or(f64::NAN),
            get(3),
            get(4),
        );
        assert_eq!(get(0), r.n.to_string(), "reopened database has every item");
    }
}
