//! Runs the fuzz-target bodies (`sat2cap::storage::fuzzing`) on every file of
//! `fuzz/corpus/<target>/` plus a bounded number of seeded random and mutated inputs, so the
//! fuzz targets are exercised by plain `cargo test`.
//! `SAT2CAP_WRITE_CORPUS=1 cargo test --test fuzz_replay write_seed_corpus` regenerates the
//! committed seed corpus of the storage targets; the io targets (`npy_header`, `npy_file`,
//! `points_csv`, `query_jsonl`, `time_parse`, bodies in `sat2cap::fuzzing`) have hand-made
//! seeds plus what cargo-fuzz runs produced.

use std::path::PathBuf;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::Point;
use sat2cap::storage::fuzzing;
use sat2cap::storage::{Db, DbOptions, Directory, MemDirectory, NewItem};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// Valid files: (segments, manifests, tombstones) from a few small databases.
type Files = Vec<Vec<u8>>;

fn valid_files() -> (Files, Files, Files) {
    let (mut s, mut m, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for dim in [1usize, 3, 16] {
        let mem = MemDirectory::new();
        let mut db = Db::create_in(Arc::new(mem.clone()), DbOptions::default()).unwrap();
        db.create_collection("c", dim).unwrap();
        db.create_collection("other", 2).unwrap();
        for id in 0..(dim as u64 + 2) {
            let v: Vec<f32> = (0..dim).map(|j| (j as f32 + id as f32) - 1.5).collect();
            let p = "x".repeat(id as usize);
            db.add(
                "c",
                NewItem {
                    id: id * 5,
                    vector: &v,
                    point: Point::new(-90.0 + id as f64, 179.0).unwrap(),
                    time: (id % 2 == 1).then_some(-(id as i64)),
                    payload: (dim > 1 && id % 2 == 0).then_some(p.as_str()),
                },
            )
            .unwrap();
        }
        db.commit().unwrap();
        db.delete("c", 5).unwrap();
        db.commit().unwrap();
        for name in mem.list().unwrap() {
            let b = (*mem.read(&name).unwrap()).as_ref().to_vec();
            if name.ends_with(".s2seg") {
                s.push(b);
            } else if name.ends_with(".s2tomb") {
                t.push(b);
            } else if name == "MANIFEST" {
                m.push(b);
            }
        }
    }
    (s, m, t)
}

fn mutate(r: &mut ChaCha8Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..r.random_range(1..4) {
        match r.random_range(0..4) {
            0 if !b.is_empty() => {
                let i = r.random_range(0..b.len());
                b[i] ^= 1 << r.random_range(0..8);
            }
            1 if !b.is_empty() => {
                let n = r.random_range(0..b.len());
                b.truncate(n);
            }
            2 if b.len() >= 8 => {
                // Overwrite a u64 with an extreme value.
                let i = r.random_range(0..b.len() - 7);
                let v = [0u64, 1, u64::MAX, u64::MAX / 2, 1 << 32][r.random_range(0..5)];
                b[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => b.push(r.random()),
        }
    }
    b
}

fn replay(target: &str, f: fn(&[u8]), valid: &[Vec<u8>], seed: u64, rounds: usize) {
    let files = corpus(target);
    assert!(!files.is_empty(), "no committed corpus for {target}");
    for c in &files {
        f(c);
    }
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    for v in valid {
        f(v);
    }
    let bases: Vec<&Vec<u8>> = valid.iter().chain(files.iter()).collect();
    for _ in 0..rounds {
        let base = bases[r.random_range(0..bases.len())];
        f(&mutate(&mut r, base));
    }
    for _ in 0..rounds / 10 {
        let n = r.random_range(0..300);
        let b: Vec<u8> = (0..n).map(|_| r.random()).collect();
        f(&b);
    }
}

#[test]
fn replay_segment_open() {
    let (s, _, _) = valid_files();
    replay("segment_open", fuzzing::segment_open, &s, 1, 3000);
}

#[test]
fn replay_manifest_parse() {
    let (_, m, _) = valid_files();
    replay("manifest_parse", fuzzing::manifest_parse, &m, 2, 3000);
}

#[test]
fn replay_tombstone_parse() {
    let (_, _, t) = valid_files();
    replay("tombstone_parse", fuzzing::tombstone_parse, &t, 3, 3000);
}

#[test]
fn replay_db_ops() {
    replay("db_ops", fuzzing::db_ops, &[], 4, 60);
}

/// The committed corpus of `target` as bases for mutation (the io targets have hand-made
/// seeds: valid files plus known-bad ones).
fn replay_io(target: &str, f: fn(&[u8]), seed: u64, rounds: usize) {
    replay(target, f, &[], seed, rounds);
}

#[test]
fn replay_npy_header() {
    replay_io("npy_header", sat2cap::fuzzing::npy_header, 5, 3000);
}

#[test]
fn replay_npy_file() {
    replay_io("npy_file", sat2cap::fuzzing::npy_file, 6, 600);
}

#[test]
fn replay_points_csv() {
    replay_io("points_csv", sat2cap::fuzzing::points_csv, 7, 3000);
}

#[test]
fn replay_query_jsonl() {
    replay_io("query_jsonl", sat2cap::fuzzing::query_jsonl, 8, 3000);
}

#[test]
fn replay_time_parse() {
    replay_io("time_parse", sat2cap::fuzzing::time_parse, 9, 3000);
}

#[test]
fn write_seed_corpus() {
    if std::env::var("SAT2CAP_WRITE_CORPUS").is_err() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let (s, m, t) = valid_files();
    let mut r = ChaCha8Rng::seed_from_u64(99);
    for (target, files) in [
        ("segment_open", s),
        ("manifest_parse", m),
        ("tombstone_parse", t),
    ] {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for (i, f) in files.iter().enumerate().take(3) {
            std::fs::write(d.join(format!("valid-{i}")), f).unwrap();
            std::fs::write(d.join(format!("mutated-{i}")), mutate(&mut r, f)).unwrap();
        }
    }
    let d = root.join("db_ops");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..4 {
        let b: Vec<u8> = (0..200).map(|_| r.random()).collect();
        std::fs::write(d.join(format!("random-{i}")), b).unwrap();
    }
}
