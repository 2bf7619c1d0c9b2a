//! `sat2cap import`: load vectors (.npy) and points (.csv) into a collection.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{import, ImportOptions};
use sat2cap::{GraphOptions, IndexOptions};

use crate::output::out;
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Import vectors and points into a collection (creates the database and collection if
/// missing), commit in batches, build the HNSW graph and compact to one segment.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap import --db ./db --collection places --vectors vectors.f16.npy --points places.csv
  sat2cap import --db ./db --collection places --vectors v.npy --points p.csv --json

--json prints {collection, rows, dim, compacted, seconds} on stdout.")]
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
    /// Rows per commit.
    #[arg(long, default_value_t = 100_000)]
    batch: usize,
    /// HNSW: max neighbours per node (level 0 keeps 2m).
    #[arg(long, default_value_t = GraphOptions::default().m)]
    m: usize,
    /// HNSW: beam width while building.
    #[arg(long, default_value_t = GraphOptions::default().ef_construction)]
    ef_construction: usize,
    /// Keep the batch segments (each with its own graph) instead of compacting to one.
    #[arg(long)]
    no_compact: bool,
    /// Do not store the int8 copy of the vectors (dim + 8 bytes a row). With it, exact scans
    /// (filtered queries, --exact) read the copy instead of the f16 vectors and rescore from
    /// f16 only the rows that may rank: the same answers, about half the bytes read.
    #[arg(long)]
    no_int8: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: ImportArgs) -> Result<(), CliError> {
    if a.batch == 0 {
        return Err(CliError::input("--batch must be at least 1"));
    }
    let opts = ImportOptions {
        collection: a.collection,
        vectors: a.vectors,
        points: a.points,
        batch: a.batch,
        indexes: IndexOptions {
            graph: Some(GraphOptions {
                m: a.m,
                ef_construction: a.ef_construction,
                ..GraphOptions::default()
            }),
            int8: !a.no_int8,
        },
        compact: !a.no_compact,
    };
    let start = std::time::Instant::now();
    let r = import(&a.db, &opts, &Bars::new(Notes::Stderr))?;
    if a.json {
        out!(
            "{}",
            serde_json::json!({
                "collection": r.collection,
                "rows": r.rows,
                "dim": r.dim,
                "compacted": r.compacted,
                "seconds": start.elapsed().as_secs_f64(),
            })
        );
    }
    eprintln!(
        "imported {} rows of dimension {} into '{}'",
        r.rows, r.dim, r.collection
    );
    Ok(())
}
