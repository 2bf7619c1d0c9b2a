//! `sat2cap import`: load vectors (.npy) and points (.csv), or a GeoParquet file, into a
//! collection.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{import, ImportOptions, ImportSource, ParquetColumns};
use sat2cap::{GraphOptions, IndexOptions};

use crate::output::{note, out};
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Import vectors and points (.npy + CSV) or a GeoParquet file into a collection (creates
/// the database and collection if missing): every row is checked first, then written and
/// committed once; the segments are then compacted to one with its HNSW graph and int8 copy.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["vectors", "geoparquet"])))]
#[command(after_help = "Examples:
  sat2cap import --db ./db --collection places --vectors vectors.f16.npy --points places.csv
  sat2cap import --db ./db --collection places --vectors v.npy --points p.csv --json
  sat2cap import --db ./db --collection overhead --geoparquet tiles.parquet
  sat2cap import --db ./db --collection c --geoparquet other.parquet --vector-column clip

A GeoParquet file exported by `sat2cap export` imports bit for bit, with the model that
made its vectors. From other tools: the vectors are a list of floats (column `embedding` or
`vector`), the place a WKB Point (a polygon's bounding-box centre) or `lon`/`lat` columns;
`id` (else row numbers), `time` and `payload` columns are optional; other columns are
listed and ignored (docs/IO.md, \"GeoParquet\").

--json prints {collection, rows, replaced, dim, compacted, live, segments, graph_segments,
int8_segments, created, seconds} on stdout (read back from the database after the commit);
from a GeoParquet file also ignored_columns, ids_are_row_numbers and model when they apply.")]
pub struct ImportArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Collection name.
    #[arg(long)]
    collection: String,
    /// Vectors: a 2-D .npy of f16 or f32, one row per item.
    #[arg(long, requires = "points", conflicts_with = "geoparquet")]
    vectors: Option<PathBuf>,
    /// Points: CSV with a header holding at least id,lat,lon (row i describes vector row i).
    #[arg(long, requires = "vectors", conflicts_with = "geoparquet")]
    points: Option<PathBuf>,
    /// A GeoParquet (or Parquet) file of items, instead of --vectors and --points.
    #[arg(long, value_name = "FILE")]
    geoparquet: Option<PathBuf>,
    /// GeoParquet: the column of vectors (default: embedding, else vector).
    #[arg(long, requires = "geoparquet", value_name = "NAME")]
    vector_column: Option<String>,
    /// GeoParquet: the column of ids, integers (default: id; without one, ids are row
    /// numbers from 0).
    #[arg(long, requires = "geoparquet", value_name = "NAME")]
    id_column: Option<String>,
    /// GeoParquet: the column of times, timestamps or unix seconds (default: time).
    #[arg(long, requires = "geoparquet", value_name = "NAME")]
    time_column: Option<String>,
    /// GeoParquet: the column of payloads, strings (default: payload).
    #[arg(long, requires = "geoparquet", value_name = "NAME")]
    payload_column: Option<String>,
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
    let source = match (a.geoparquet, a.vectors, a.points) {
        (Some(path), _, _) => ImportSource::GeoParquet {
            path,
            columns: ParquetColumns {
                vector: a.vector_column,
                id: a.id_column,
                time: a.time_column,
                payload: a.payload_column,
            },
        },
        (None, Some(vectors), Some(points)) => ImportSource::NpyCsv { vectors, points },
        _ => {
            return Err(CliError::input(
                "give --vectors FILE.npy and --points FILE.csv, or --geoparquet FILE",
            ))
        }
    };
    let opts = ImportOptions {
        collection: a.collection,
        source,
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
    if let Some(m) = &r.model {
        note!("model recorded for '{}': {m}", r.collection);
    }
    if r.ids_are_row_numbers {
        note!("the file has no id column: the ids are its row numbers (from 0)");
    }
    if !r.ignored_columns.is_empty() {
        note!(
            "columns not read: {} (put what you need into the payload column)",
            r.ignored_columns.join(", ")
        );
    }
    Ok(())
}
