//! Importing precomputed embeddings: a 2-D `.npy` of vectors (f16 or f32) and a CSV of
//! points (`id,lat,lon[,time][,payload]`, row i describing vector row i).

use std::path::{Path, PathBuf};

use super::JobError;
use crate::io::npy::NpyReader;
use crate::io::points_csv::{PointRow, PointsReader};
use crate::{Db, IndexOptions, NewItem, OpenOptions, Progress, Unit};

/// Options of [`import`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The collection (created when missing).
    pub collection: String,
    /// The vectors: a 2-D `.npy` of f16 or f32, one row per item.
    pub vectors: PathBuf,
    /// The points: a CSV with a header naming at least `id,lat,lon`.
    pub points: PathBuf,
    /// Rows per commit (>= 1).
    pub batch: usize,
    /// The indexes of the segments written.
    pub indexes: IndexOptions,
    /// Merge the batch segments into one at the end (its indexes built once, over all
    /// rows); without it every batch segment gets its own.
    pub compact: bool,
}

/// What [`import`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// The collection.
    pub collection: String,
    /// Rows imported.
    pub rows: u64,
    /// Their dimension.
    pub dim: usize,
    /// Whether the segments were merged into one.
    pub compacted: bool,
}

fn read_points(path: &Path) -> Result<Vec<PointRow>, JobError> {
    let reader = PointsReader::open(path).map_err(JobError::input)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(JobError::input)
}

/// Imports vectors and points into `opts.collection` of the database in `db_path`
/// (created when missing), committing every `opts.batch` rows, then (with `compact`)
/// merging the segments and building their indexes once.
pub fn import(
    db_path: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport, JobError> {
    if opts.batch == 0 {
        return Err(JobError::input("the batch must hold at least 1 row"));
    }
    if let Some(g) = opts.indexes.graph {
        let p = crate::index::hnsw::HnswParams {
            m: g.m,
            ef_construction: g.ef_construction,
            ..Default::default()
        };
        p.validate().map_err(JobError::input)?;
    }
    let mut npy = NpyReader::open(&opts.vectors).map_err(JobError::input)?;
    let (rows, dim) = (npy.header().rows, npy.header().cols);
    let points = read_points(&opts.points)?;
    if points.len() as u64 != rows {
        return Err(JobError::input(format!(
            "{} has {rows} rows but {} has {} data rows",
            opts.vectors.display(),
            opts.points.display(),
            points.len()
        )));
    }
    let open = |indexes: IndexOptions| {
        Ok::<_, JobError>(Db::open(
            db_path,
            OpenOptions::create_if_missing().indexes(indexes),
        )?)
    };
    // Batch commits skip the indexes when compaction will build them over the merged rows.
    let mut db = open(if opts.compact {
        IndexOptions::none()
    } else {
        opts.indexes
    })?;
    match db.snapshot().collection(&opts.collection) {
        Ok(c) if c.dim() != dim => {
            return Err(JobError::input(format!(
                "collection '{}' has dimension {}, the vectors have {dim}",
                opts.collection,
                c.dim()
            )))
        }
        Ok(_) => {}
        Err(_) => db
            .create_collection(&opts.collection, dim)
            .map_err(JobError::runtime)?,
    }
    progress.begin("import", Some(rows), Unit::Rows);
    let mut v = Vec::with_capacity(dim);
    for (i, p) in points.iter().enumerate() {
        let more = npy.read_row(&mut v).map_err(JobError::input)?;
        if !more {
            return Err(JobError::input(format!(
                "{}: ended after {i} rows",
                opts.vectors.display()
            )));
        }
        let item = NewItem {
            id: p.id,
            vector: &v,
            point: p.point,
            time: p.time,
            payload: p.payload.as_deref(),
        };
        db.add(&opts.collection, item)
            .map_err(|e| JobError::input(format!("row {i} (id {}): {e}", p.id)))?;
        if db.pending_len() >= opts.batch {
            db.commit().map_err(JobError::runtime)?;
        }
        progress.advance(1);
    }
    db.commit().map_err(JobError::runtime)?;
    progress.end();
    if opts.compact {
        drop(db);
        let mut db = open(opts.indexes)?;
        let live = db
            .snapshot()
            .collection(&opts.collection)
            .map_or(rows, |c| c.len() as u64);
        progress.begin("compact + indexes", Some(live), Unit::Rows);
        db.compact(&opts.collection).map_err(JobError::runtime)?;
        progress.advance(live);
        progress.end();
    }
    Ok(ImportReport {
        collection: opts.collection.clone(),
        rows,
        dim,
        compacted: opts.compact,
    })
}
