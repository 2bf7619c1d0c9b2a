//! `sat2cap import`: load vectors (.npy) and points (.csv) into a collection.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sat2cap::index::hnsw::{HnswParams, HnswSectionBuilder};
use sat2cap::index::quant::QuantSectionBuilder;
use sat2cap::io::npy::NpyReader;
use sat2cap::io::points_csv::{PointRow, PointsReader};
use sat2cap::search::{DEFAULT_HNSW, DEFAULT_MIN_GRAPH_ROWS};
use sat2cap::storage::{DbOptions, SectionBuilder, MANIFEST_FILE};
use sat2cap::{Db, NewItem};
use std::sync::Arc;

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
    #[arg(long, default_value_t = sat2cap::search::DEFAULT_HNSW.m)]
    m: usize,
    /// HNSW: beam width while building.
    #[arg(long, default_value_t = sat2cap::search::DEFAULT_HNSW.ef_construction)]
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

fn read_points(path: &Path) -> Result<Vec<PointRow>, CliError> {
    let reader = PointsReader::open(path).map_err(CliError::input)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::input)
}

fn open_db(dir: &Path, opts: DbOptions) -> Result<Db, CliError> {
    let r = if dir.join(MANIFEST_FILE).exists() {
        Db::open_with(dir, opts)
    } else {
        Db::create(dir, opts)
    };
    r.map_err(CliError::runtime)
}

/// Runs the command.
pub fn run(a: ImportArgs) -> Result<(), CliError> {
    if a.batch == 0 {
        return Err(CliError::input("--batch must be at least 1"));
    }
    let params = HnswParams {
        m: a.m,
        ef_construction: a.ef_construction,
        ..DEFAULT_HNSW
    };
    params.validate().map_err(CliError::input)?;
    let mut builders: Vec<Arc<dyn SectionBuilder>> = vec![Arc::new(HnswSectionBuilder {
        params,
        min_rows: DEFAULT_MIN_GRAPH_ROWS,
        calibration: None,
    })];
    if !a.no_int8 {
        builders.push(Arc::new(QuantSectionBuilder));
    }
    let indexed = DbOptions {
        section_builders: builders,
        ..Default::default()
    };
    let mut npy = NpyReader::open(&a.vectors).map_err(CliError::input)?;
    let (rows, dim) = (npy.header().rows, npy.header().cols);
    let points = read_points(&a.points)?;
    if points.len() as u64 != rows {
        return Err(CliError::input(format!(
            "{} has {rows} rows but {} has {} data rows",
            a.vectors.display(),
            a.points.display(),
            points.len()
        )));
    }
    // Batch commits skip the graph when compaction will rebuild it over the merged segment.
    let batch_opts = if a.no_compact {
        indexed.clone()
    } else {
        DbOptions::default()
    };
    let mut db = open_db(&a.db, batch_opts)?;
    match db.snapshot().collection(&a.collection) {
        Ok(c) if c.dim() != dim => {
            return Err(CliError::input(format!(
                "collection '{}' has dimension {}, the vectors have {dim}",
                a.collection,
                c.dim()
            )))
        }
        Ok(_) => {}
        Err(_) => db
            .create_collection(&a.collection, dim)
            .map_err(CliError::runtime)?,
    }
    let start = std::time::Instant::now();
    let bar = ProgressBar::new(rows);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows, {per_sec}, ETA {eta}")
            .map_err(CliError::runtime)?,
    );
    bar.set_message("import");
    let mut v = Vec::with_capacity(dim);
    for (i, p) in points.iter().enumerate() {
        let more = npy.read_row(&mut v).map_err(CliError::input)?;
        if !more {
            return Err(CliError::input(format!(
                "{}: ended after {i} rows",
                a.vectors.display()
            )));
        }
        db.add(
            &a.collection,
            NewItem {
                id: p.id,
                vector: &v,
                point: p.point,
                time: p.time,
                payload: p.payload.as_deref(),
            },
        )
        .map_err(|e| CliError::input(format!("row {i} (id {}): {e}", p.id)))?;
        if db.pending_len() >= a.batch {
            db.commit().map_err(CliError::runtime)?;
        }
        bar.inc(1);
    }
    db.commit().map_err(CliError::runtime)?;
    bar.finish_and_clear();
    if !a.no_compact {
        drop(db);
        let t = std::time::Instant::now();
        let mut db = open_db(&a.db, indexed)?;
        let live = db
            .snapshot()
            .collection(&a.collection)
            .map_or(rows, |c| c.len() as u64);
        // One call: the bar shows the elapsed time and, once done, the rate.
        let pb = crate::progress::rows_bar("compact + graph", live);
        db.compact(&a.collection).map_err(CliError::runtime)?;
        pb.inc(live);
        pb.finish_and_clear();
        eprintln!(
            "compacted and built the graph in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "collection": a.collection,
                "rows": rows,
                "dim": dim,
                "compacted": !a.no_compact,
                "seconds": start.elapsed().as_secs_f64(),
            })
        );
    }
    eprintln!(
        "imported {rows} rows of dimension {dim} into '{}'",
        a.collection
    );
    Ok(())
}
