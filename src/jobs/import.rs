//! Importing precomputed embeddings: a 2-D `.npy` of vectors (f16 or f32) and a CSV of
//! points (`id,lat,lon[,time][,payload]`, row i describing vector row i), or a GeoParquet
//! file (`sat2cap export`'s, or another tool's of a compatible schema; see
//! [`import_parquet`](super::import_parquet) and docs/IO.md).
//!
//! All or nothing: every row is checked before the database is touched (lengths, values,
//! payloads, duplicate ids, ids already stored), the rows are then spilled to segment files
//! every `batch` rows and published by ONE commit. A failure leaves the database as it was;
//! a first import that fails leaves no database behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{JobError, ParquetColumns};
use crate::io::npy::NpyReader;
use crate::io::points_csv::{PointRow, PointsReader};
use crate::storage::{check_item, valid_collection_name, MAX_DIM};
use crate::{Db, IndexOptions, NewItem, OpenOptions, Progress, Unit, WriteError};

/// Options of [`import`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The collection (created when missing).
    pub collection: String,
    /// What is imported.
    pub source: ImportSource,
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

/// The files [`import`] reads.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportSource {
    /// A 2-D `.npy` of f16 or f32 vectors, one row per item, and a CSV of points with a
    /// header naming at least `id,lat,lon` (row i describing vector row i).
    NpyCsv {
        /// The vectors.
        vectors: PathBuf,
        /// The points.
        points: PathBuf,
    },
    /// A (Geo)Parquet file of items, and which of its columns to read.
    GeoParquet {
        /// The file.
        path: PathBuf,
        /// Its columns (defaults: `embedding` or `vector`, `id`, `time`, `payload`).
        columns: ParquetColumns,
    },
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
    /// Columns of a Parquet file that were not read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_columns: Vec<String>,
    /// Whether the ids are row numbers (a Parquet file without an id column).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ids_are_row_numbers: bool,
    /// The model recorded for the collection from the file's metadata, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
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

/// The `.npy` and CSV of an import.
struct Files<'a> {
    vectors: &'a Path,
    points: &'a Path,
}

/// Where row `i` comes from, for messages.
fn row_at(f: &Files<'_>, i: usize, p: &PointRow) -> String {
    format!(
        "{} row {i} (id {}, {} line {})",
        f.vectors.display(),
        p.id,
        f.points.display(),
        p.line
    )
}

/// Checks every vector row against `points` without keeping it: a bad row is named by its
/// row, id and CSV line.
fn check_rows(
    f: &Files<'_>,
    points: &[PointRow],
    dim: usize,
    progress: &dyn Progress,
) -> Result<(), JobError> {
    let mut npy = NpyReader::open(f.vectors).map_err(JobError::input)?;
    let mut v = Vec::with_capacity(dim);
    progress.begin("check rows", Some(points.len() as u64), Unit::Rows);
    for (i, p) in points.iter().enumerate() {
        if !npy.read_row(&mut v).map_err(JobError::input)? {
            return Err(JobError::input(format!(
                "{}: ended after {i} rows",
                f.vectors.display()
            )));
        }
        let item = item_of(p, &v);
        check_item(dim, &item).map_err(|e| {
            let what = match e {
                WriteError::NonFinite { index } => {
                    format!("component {index} is {} (vectors must be finite)", v[index])
                }
                e => e.to_string(),
            };
            JobError::input(format!("{}: {what}", row_at(f, i, p)))
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

/// Imports the items of `opts.source` into `opts.collection` of the database in `db_path`
/// (created when missing): checks everything first, then writes the rows and commits once
/// (and, with `compact`, merges the segments and builds their indexes in a second commit).
pub fn import(
    db_path: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport, JobError> {
    check_options(opts)?;
    match &opts.source {
        ImportSource::NpyCsv { vectors, points } => {
            let files = Files { vectors, points };
            import_npy(db_path, opts, &files, progress)
        }
        ImportSource::GeoParquet { path, columns } => {
            super::import_parquet::import_parquet(db_path, opts, path, columns, progress)
        }
    }
}

/// The checks of the options every source shares.
fn check_options(opts: &ImportOptions) -> Result<(), JobError> {
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
    Ok(())
}

/// The indexes of the batch segments: none when compaction will build them over all rows
/// (rows that fit one batch make one segment, which compaction would leave as it is).
pub(super) fn first_indexes(opts: &ImportOptions, rows: u64) -> IndexOptions {
    if opts.compact && rows > opts.batch as u64 {
        IndexOptions::none()
    } else {
        opts.indexes
    }
}

fn import_npy(
    db_path: &Path,
    opts: &ImportOptions,
    f: &Files<'_>,
    progress: &dyn Progress,
) -> Result<ImportReport, JobError> {
    let npy = NpyReader::open(f.vectors).map_err(JobError::input)?;
    let (rows, dim) = (npy.header().rows, npy.header().cols);
    drop(npy);
    if dim == 0 || dim > MAX_DIM {
        return Err(JobError::input(format!(
            "{}: rows of {dim} values; the dimension must be in 1..={MAX_DIM}",
            f.vectors.display()
        )));
    }
    let points = read_points(f.points)?;
    if points.len() as u64 != rows {
        return Err(JobError::input(format!(
            "{} has {rows} rows but {} has {} data rows",
            f.vectors.display(),
            f.points.display(),
            points.len()
        )));
    }
    check_rows(f, &points, dim, progress)?;

    let created = !db_path.join(crate::storage::MANIFEST_FILE).exists();
    let replaced = super::with_database(
        db_path,
        OpenOptions::create_if_missing().indexes(first_indexes(opts, rows)),
        |db| write_rows(db, opts, f, &points, dim, progress),
    )?;
    finish(db_path, opts, rows, dim, replaced, created, progress)
}

/// Compacts when asked, then reads the collection back for the report.
pub(super) fn finish(
    db_path: &Path,
    opts: &ImportOptions,
    rows: u64,
    dim: usize,
    replaced: u64,
    created: bool,
    progress: &dyn Progress,
) -> Result<ImportReport, JobError> {
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
        ignored_columns: Vec::new(),
        ids_are_row_numbers: false,
        model: None,
    })
}

/// Creates the collection if needed, checks the ids already stored, writes every row
/// (spilling every `batch`) and commits once. Returns the number of rows that replaced
/// stored items.
fn write_rows(
    db: &mut Db,
    opts: &ImportOptions,
    f: &Files<'_>,
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
                            f.points.display(),
                            p.line,
                            p.id
                        )));
                    }
                    replaced += 1;
                }
            }
        }
        Err(_) => db.create_collection(coll, dim).map_err(JobError::input)?,
    }
    let mut npy = NpyReader::open(f.vectors).map_err(JobError::input)?;
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
                f.vectors.display()
            )));
        }
        db.add(coll, item_of(p, &v)).map_err(|e| {
            JobError::input(format!(
                "{}: {e} (the file changed during the import; nothing was imported)",
                row_at(f, i, p)
            ))
        })?;
        held += 1;
        if held == opts.batch {
            held = 0;
            db.spill().map_err(|e| {
                JobError::runtime(format!(
                    "writing rows up to row {i}: {e}; nothing was imported"
                ))
            })?;
        }
        progress.advance(1);
    }
    db.commit()
        .map_err(|e| JobError::runtime(format!("commit failed: {e}; nothing was imported")))?;
    progress.end();
    Ok(replaced)
}
