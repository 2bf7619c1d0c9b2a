//! `sat2cap import`: load vectors (.npy) and points (.csv) into a collection.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{import, ImportOptions};
use sat2cap::{GraphOptions, IndexOptions};

use crate::output::{note, out};
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Import vectors and points into a collection (creates the database and collection if
/// missing): every row is checked first, then written and committed once; the segments
/// are then compacted to one with its HNSW graph and int8 copy.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap import --db ./db --collection places --vectors vectors.f16.npy --points places.csv
  sat2cap import --db ./db --collection places --vectors v.npy --points p.csv --json

--json prints {collection, rows, replaced, dim, compacted, live, segments, graph_segments,
int8_segments, created, seconds} on stdout (read back from the database after the commit).")]
pub struct ImportArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Collection name.
    #[arg(long)]
    collection: String,
    /// Vectors: a 2-D .npy of f16 or f32, one row per item.
    #[arg(long)]
    vectors: PathBuf,
    /// Points: CSV with a header holding at least id,lat,lon (row i describes vector row i).
    #[arg(long)]
    points: PathBuf,
    /// Rows held in memory before they are written to a segment file. Every row is
    /// published by one commit at the end: a failed import changes nothing.
    #[arg(long, default_value_t = 100_000)]
    batch: usize,
    /// HNSW: max neighbours per node (level 0 keeps 2m), 2..=128.
    #[arg(long, default_value_t = GraphOptions::default().m as u64,
          value_parser = clap::value_parser!(u64).range(2..=128))]
    m: u64,
    /// HNSW: beam width while building, --m..=4096.
    #[arg(long, default_value_t = GraphOptions::default().ef_construction as u64,
          value_parser = clap::value_parser!(u64).range(2..=4096))]
    ef_construction: u64,
    /// Keep the batch segments (each with its own graph) instead of compacting to one.
    #[arg(long)]
    no_compact: bool,
    /// Do not store the int8 copy of the vectors (dim + 8 bytes a row). With it, exact scans
    /// (filtered queries, --exact) read the copy instead of the f16 vectors and rescore from
    /// f16 only the rows that may rank: the same answers, about half the bytes read.
    #[arg(long)]
    no_int8: bool,
    /// Replace the items whose ids are already in the collection (without it such an id
    /// is an error, exit 2, and nothing is imported).
    #[arg(long)]
    upsert: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: ImportArgs) -> Result<(), CliError> {
    if a.batch == 0 {
        return Err(CliError::input("--batch must be at least 1"));
    }
    if a.ef_construction < a.m {
        return Err(CliError::input(format!(
            "--ef-construction {} must be at least --m {}",
            a.ef_construction, a.m
        )));
    }
    let opts = ImportOptions {
        collection: a.collection,
        vectors: a.vectors,
        points: a.points,
        batch: a.batch,
        indexes: IndexOptions {
            graph: Some(GraphOptions {
                m: a.m as usize,
                ef_construction: a.ef_construction as usize,
                ..GraphOptions::default()
            }),
            int8: !a.no_int8,
        },
        compact: !a.no_compact,
        upsert: a.upsert,
    };
    let start = std::time::Instant::now();
    let r = import(&a.db, &opts, &Bars::new(Notes::Stderr))?;
    crate::output::committed(format!(
        "the import of {} rows into '{}'",
        r.rows, r.collection
    ));
    if a.json {
        let mut v = serde_json::to_value(&r).map_err(CliError::runtime)?;
        v["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
        out!("{v}");
    }
    let graph = match (r.graph_segments, r.segments) {
        (_, 0) => "no segments (no rows)".to_string(),
        (g, n) if g == n => "with its HNSW graph".to_string(),
        (0, _) => "no HNSW graph (too few rows: exact scans)".to_string(),
        (g, n) => format!("HNSW graph in {g} of {n} segments"),
    };
    let int8 = if r.segments == 0 {
        "nothing stored"
    } else if r.int8_segments == r.segments {
        "int8 copy"
    } else if r.int8_segments == 0 {
        "no int8 copy"
    } else {
        "int8 copy in some segments"
    };
    note!(
        "imported {} rows of dimension {} into '{}' ({} replaced): {} live in {} segment(s), {graph}, {int8}",
        r.rows, r.dim, r.collection, r.replaced, r.live, r.segments
    );
    Ok(())
}
