//! Importing precomputed embeddings: a 2-D `.npy` of vectors (f16 or f32) and a CSV of
//! points (`id,lat,lon[,time][,payload]`, row i describing vector row i).
//!
//! All or nothing: every row is checked before the database is touched (lengths, values,
//! payloads, duplicate ids, ids already stored), the rows are then spilled to segment files
//! every `batch` rows and published by ONE commit. A failure leaves the database as it was;
//! a first import that fails leaves no database behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::JobError;
use crate::io::npy::NpyReader;
use crate::io::points_csv::{PointRow, PointsReader};
use crate::storage::{check_item, valid_collection_name, MAX_DIM};
use crate::{Db, IndexOptions, NewItem, OpenOptions, Progress, Unit, WriteError};

/// Options of [`import`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The collection (created when missing).
    pub collection: String,
    /// The vectors: a 2-D `.npy` of f16 or f32, one row per item.
    pub vectors: PathBuf,
    /// The points: a CSV with a header naming at least `id,lat,lon`.
    pub points: PathBuf,
    /// Rows held in memory before they are written to a segment file (>= 1); every row is
    /// published by one commit at the end.
    pub batch: usize,
    /// The indexes of the segments written.
    pub indexes: IndexOptions,
    /// Merge the segments into one at the end (its indexes built once, over all rows);
    /// without it every `batch` rows are a segment with its own indexes.
    pub compact: bool,
    /// Replace the items whose ids are already in the collection (without it, such an id is
    /// an error and nothing is imported).
    pub upsert: bool,
}

/// What [`import`] did, as read back from the database after the commit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// The collection.
    pub collection: String,
    /// Rows imported.
    pub rows: u64,
    /// Of them, rows that replaced an item with the same id (`upsert`).
    pub replaced: u64,
    /// Their dimension.
    pub dim: usize,
    /// Whether the segments were merged into one.
    pub compacted: bool,
    /// Live items in the collection afterwards.
    pub live: u64,
    /// The collection's segments afterwards.
    pub segments: usize,
    /// Of them, segments with an HNSW graph (segments below the graph's `min_rows` have
    /// none: they are scanned exactly).
    pub graph_segments: usize,
    /// Of them, segments with the int8 copy of their vectors.
    pub int8_segments: usize,
    /// Whether this import created the database.
    pub created: bool,
}

/// The rows of the point CSV, with no id twice.
fn read_points(path: &Path) -> Result<Vec<PointRow>, JobError> {
    let reader = PointsReader::open(path).map_err(JobError::input)?;
    let rows = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(JobError::input)?;
    let mut first: HashMap<u64, u64> = HashMap::with_capacity(rows.len());
    for r in &rows {
        if let Some(line) = first.insert(r.id, r.line) {
            return Err(JobError::input(format!(
                "{}: id {} appears on line {line} and on line {} (ids must be unique)",
                path.display(),
                r.id,
                r.line
            )));
        }
    }
    Ok(rows)
}

/// Where row `i` comes from, for messages.
fn row_at(opts: &ImportOptions, i: usize, p: &PointRow) -> String {
    format!(
        "{} row {i} (id {}, {} line {})",
        opts.vectors.display(),
        p.id,
        opts.points.display(),
        p.line
    )
}

/// Checks every vector row against `points` without keeping it: a bad row is named by its
/// row, id and CSV line.
fn check_rows(
    opts: &ImportOptions,
    points: &[PointRow],
    dim: usize,
    progress: &dyn Progress,
) -> Result<(), JobError> {
    let mut npy = NpyReader::open(&opts.vectors).map_err(JobError::input)?;
    let mut v = Vec::with_capacity(dim);
    progress.begin("check rows", Some(points.len() as u64), Unit::Rows);
    for (i, p) in points.iter().enumerate() {
        if !npy.read_row(&mut v).map_err(JobError::input)? {
            return Err(JobError::input(format!(
                "{}: ended after {i} rows",
                opts.vectors.display()
            )));
        }
        let item = item_of(p, &v);
        check_item(dim, &item).map_err(|e| {
            let what = match e {
                WriteError::NonFinite { index } => format!(
                    "component {index} is {} (vectors must be finite)",
                    v[index]
                ),
                e => e.to_string(),
            };
            JobError::input(format!("{}: {what}", row_at(opts, i, p)))
        })?;
        if i % 4096 == 4095 {
            progress.advance(4096);
        }
    }
    progress.end();
    Ok(())
}

fn item_of<'a>(p: &'a PointRow, v: &'a [f32]) -> NewItem<'a> {
    NewItem {
        id: p.id,
        vector: v,
        point: p.point,
        time: p.time,
        payload: p.payload.as_deref(),
    }
}

/// Imports vectors and points into `opts.collection` of the database in `db_path`
/// (created when missing): checks everything first, then writes the rows and commits once
/// (and, with `compact`, merges the segments and builds their indexes in a second commit).
pub fn import(
    db_path: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport, JobError> {
    if opts.batch == 0 {
        return Err(JobError::input("the batch must hold at least 1 row"));
    }
    if !valid_collection_name(&opts.collection) {
        return Err(JobError::input(WriteError::InvalidName(
            opts.collection.clone(),
        )));
    }
    if let Some(g) = opts.indexes.graph {
        let p = crate::index::hnsw::HnswParams {
            m: g.m,
            ef_construction: g.ef_construction,
            ..Default::default()
        };
        p.validate().map_err(JobError::input)?;
    }
    let npy = NpyReader::open(&opts.vectors).map_err(JobError::input)?;
    let (rows, dim) = (npy.header().rows, npy.header().cols);
    drop(npy);
    if dim == 0 || dim > MAX_DIM {
        return Err(JobError::input(format!(
            "{}: rows of {dim} values; the dimension must be in 1..={MAX_DIM}",
            opts.vectors.display()
        )));
    }
    let points = read_points(&opts.points)?;
    if points.len() as u64 != rows {
        return Err(JobError::input(format!(
            "{} has {rows} rows but {} has {} data rows",
            opts.vectors.display(),
            opts.points.display(),
            points.len()
        )));
    }
    check_rows(opts, &points, dim, progress)?;

    let created = !db_path.join(crate::storage::MANIFEST_FILE).exists();
    // The batch segments skip the indexes when compaction will build them over all rows
    // (rows that fit one batch make one segment, which compaction would leave as it is).
    let first = if opts.compact && points.len() > opts.batch {
        IndexOptions::none()
    } else {
        opts.indexes
    };
    let replaced = super::with_database(
        db_path,
        OpenOptions::create_if_missing().indexes(first),
        |db| write_rows(db, opts, &points, dim, progress),
    )?;
    if opts.compact {
        let mut db = Db::open(db_path, OpenOptions::read_write().indexes(opts.indexes))?;
        let live = db
            .snapshot()
            .collection(&opts.collection)
            .map_or(rows, |c| c.len() as u64);
        progress.begin("compact + indexes", Some(live), Unit::Rows);
        db.compact(&opts.collection).map_err(|e| {
            JobError::runtime(format!(
                "the {rows} rows are imported and committed, but compacting them failed: {e}"
            ))
        })?;
        progress.advance(live);
        progress.end();
    }
    let snap = Db::open(db_path, OpenOptions::read_only())?.snapshot();
    let c = super::collection(&snap, &opts.collection)?;
    let segs = c.segments();
    Ok(ImportReport {
        collection: opts.collection.clone(),
        rows,
        replaced,
        dim,
        compacted: opts.compact,
        live: c.len() as u64,
        segments: segs.len(),
        graph_segments: segs.iter().filter(|s| s.graph).count(),
        int8_segments: segs.iter().filter(|s| s.int8).count(),
        created,
    })
}

/// Creates the collection if needed, checks the ids already stored, writes every row
/// (spilling every `batch`) and commits once. Returns the number of rows that replaced
/// stored items.
fn write_rows(
    db: &mut Db,
    opts: &ImportOptions,
    points: &[PointRow],
    dim: usize,
    progress: &dyn Progress,
) -> Result<u64, JobError> {
    let coll = &opts.collection;
    let mut replaced = 0;
    match db.snapshot().collection(coll) {
        Ok(c) if c.dim() != dim => {
            return Err(JobError::input(format!(
                "collection '{coll}' has dimension {}, the vectors have {dim}",
                c.dim()
            )))
        }
        Ok(c) => {
            for p in points {
                if c.contains(p.id) {
                    if !opts.upsert {
                        return Err(JobError::input(format!(
                            "{} line {}: id {} is already in collection '{coll}' (--upsert \
                             replaces such items; nothing was imported)",
                            opts.points.display(),
                            p.line,
                            p.id
                        )));
                    }
                    replaced += 1;
                }
            }
        }
        Err(_) => db
            .create_collection(coll, dim)
            .map_err(JobError::input)?,
    }
    let mut npy = NpyReader::open(&opts.vectors).map_err(JobError::input)?;
    let mut v = Vec::with_capacity(dim);
    // Rows added since the last spill.
    let mut held = 0;
    progress.begin("import", Some(points.len() as u64), Unit::Rows);
    for (i, p) in points.iter().enumerate() {
        let more = npy.read_row(&mut v).map_err(JobError::input)?;
        if !more {
            return Err(JobError::input(format!(
                "{}: ended after {i} rows (the file changed during the import; nothing was \
                 imported)",
                opts.vectors.display()
            )));
        }
        db.add(coll, item_of(p, &v)).map_err(|e| {
            JobError::input(format!(
                "{}: {e} (the file changed during the import; nothing was imported)",
                row_at(opts, i, p)
            ))
        })?;
        held += 1;
        if held == opts.batch {
            held = 0;
            db.spill().map_err(|e| {
                JobError::runtime(format!("writing rows up to row {i}: {e}; nothing was imported"))
            })?;
        }
        progress.advance(1);
    }
    db.commit()
        .map_err(|e| JobError::runtime(format!("commit failed: {e}; nothing was imported")))?;
    progress.end();
    Ok(replaced)
}
