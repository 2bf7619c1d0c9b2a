//! The user's jobs end to end, as library functions the CLI (and examples) call: ingesting
//! tiles, ground photos and captions; zero-shot maps; top-k lookups; retrieval evaluation;
//! and the self-contained demo.
//!
//! Conventions shared by the jobs (and documented in the README / `--help`):
//! - Collections: `overhead` (Sat2Cap tile embeddings), `ground` (CLIP image embeddings of
//!   ground-level photos), `captions` (CLIP text embeddings of a caption bank).
//! - Payloads are JSON: tiles `{"path", "footprint": [west, south, east, north]}`, ground
//!   photos `{"path"}`, captions `{"caption": text}`. Captions have no place: they are stored
//!   at the dummy point (0, 0) with no time; only their payload and vector matter.
//! - Errors are [`JobError`]: `Input` (the user's input is wrong: exit code 2 in the CLI) or
//!   `Runtime` (I/O, storage, encoders: exit code 1), one line each.

pub mod eval;
pub mod fingerprint;
pub mod map;
pub mod tiles;
pub mod topk;

#[cfg(feature = "encoders")]
pub mod demo;
#[cfg(feature = "encoders")]
pub mod ingest;
#[cfg(feature = "encoders")]
pub mod model;

use std::path::Path;

use crate::storage::{Db, OpenError};

/// Default collection names.
pub const OVERHEAD: &str = "overhead";
/// Ground-level photos collection.
pub const GROUND: &str = "ground";
/// Caption bank collection.
pub const CAPTIONS: &str = "captions";

/// Why a job failed: one line, with whether it was the user's input or the machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Bad input (missing folder, bad CSV, bad bbox, unknown collection, ...).
    #[error("{0}")]
    Input(String),
    /// A runtime failure (I/O, storage, encoders, locked database).
    #[error("{0}")]
    Runtime(String),
}

impl JobError {
    /// A bad-input error.
    pub fn input(m: impl std::fmt::Display) -> JobError {
        JobError::Input(m.to_string())
    }
    /// A runtime error.
    pub fn runtime(m: impl std::fmt::Display) -> JobError {
        JobError::Runtime(m.to_string())
    }
}

/// Opens the database in `path` for writing, creating it when the folder is missing or empty.
pub fn open_or_create(path: &Path) -> Result<Db, JobError> {
    let empty = match std::fs::read_dir(path) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(JobError::runtime(format!("{}: {e}", path.display()))),
    };
    // HNSW graphs are built at commit for large segments (`default_db_options`).
    let r = if empty {
        Db::create(path, crate::default_db_options())
    } else {
        Db::open_with(path, crate::default_db_options())
    };
    r.map_err(|e| open_error(path, e))
}

/// Opens a read-only snapshot of the database in `path`.
pub fn open_snapshot(path: &Path) -> Result<crate::Snapshot, JobError> {
    if !path.exists() {
        return Err(JobError::input(format!(
            "no database at {}: create one with an ingest command first",
            path.display()
        )));
    }
    Db::open_snapshot(path).map_err(|e| open_error(path, e))
}

fn open_error(path: &Path, e: OpenError) -> JobError {
    JobError::runtime(format!("cannot open database {}: {e}", path.display()))
}

/// Looks up a collection, with a clear error naming the ones that exist.
pub fn collection<'a>(
    snap: &'a crate::Snapshot,
    name: &str,
) -> Result<&'a crate::storage::CollectionView, JobError> {
    snap.collection(name).map_err(|_| {
        let names: Vec<&str> = snap.collection_names().collect();
        JobError::input(format!(
            "unknown collection '{name}' (the database has: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })
}

/// Parses `W,S,E,N` into a bbox (degrees; west > east crosses the antimeridian).
pub fn parse_bbox(s: &str) -> Result<crate::query::filter::BBox, JobError> {
    let v = parse_floats(s, 4, "--bbox W,S,E,N")?;
    crate::query::filter::BBox::new(v[0], v[1], v[2], v[3])
        .map_err(|e| JobError::input(format!("bad --bbox '{s}': {e}")))
}

/// Parses `LAT,LON`.
pub fn parse_lat_lon(s: &str) -> Result<(f64, f64), JobError> {
    let v = parse_floats(s, 2, "LAT,LON")?;
    crate::geo::Point::new(v[0], v[1])
        .map_err(|e| JobError::input(format!("bad point '{s}': {e}")))?;
    Ok((v[0], v[1]))
}

fn parse_floats(s: &str, n: usize, what: &str) -> Result<Vec<f64>, JobError> {
    let v: Result<Vec<f64>, _> = s.split(',').map(|p| p.trim().parse::<f64>()).collect();
    match v {
        Ok(v) if v.len() == n && v.iter().all(|x| x.is_finite()) => Ok(v),
        _ => Err(JobError::input(format!(
            "expected {what} ({n} comma-separated numbers), got '{s}'"
        ))),
    }
}
