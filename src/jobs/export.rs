//! Exporting a collection: every live item as one row of a GeoParquet 1.1 file (the
//! schema, the metadata and the rules are in docs/IO.md, "GeoParquet"), streamed a row
//! group at a time from a snapshot, written whole or not at all.

use std::path::{Path, PathBuf};

use super::{JobError, ModelFingerprint};
use crate::io::geoparquet::write::{ExportMeta, Writer};
use crate::io::geoparquet::{GeoParquetError, VectorType};
use crate::{Db, OpenOptions, Progress, Unit};

/// The file formats [`export`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// GeoParquet 1.1 (docs/IO.md).
    GeoParquet,
}

/// Options of [`export`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// The collection.
    pub collection: String,
    /// The file written (replaced when it is a regular file).
    pub out: PathBuf,
    /// The format.
    pub format: ExportFormat,
    /// The vectors' element type: float16 (the stored values, bit for bit) or float32.
    pub vector_type: VectorType,
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    /// The collection.
    pub collection: String,
    /// The file written.
    pub out: String,
    /// Rows written (the collection's live items).
    pub rows: u64,
    /// The vectors' dimension.
    pub dim: usize,
    /// `float16` or `float32`.
    pub vector_type: &'static str,
    /// The model the collection records, in words (`None` when it records none).
    pub model: Option<String>,
    /// The file's size in bytes.
    pub bytes: u64,
}

fn job(e: GeoParquetError) -> JobError {
    if e.input {
        JobError::Input(e.message)
    } else {
        JobError::Runtime(e.message)
    }
}

/// Writes every live item of `opts.collection` of the database in `db_path` (opened
/// read-only: no lock, a consistent snapshot) to `opts.out`.
pub fn export(
    db_path: &Path,
    opts: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport, JobError> {
    let ExportFormat::GeoParquet = opts.format;
    let snap = Db::open(db_path, OpenOptions::read_only())?.snapshot();
    let c = super::collection(&snap, &opts.collection)?;
    let model = ModelFingerprint::of(&c)?.map(|m| m.describe());
    let mut w = Writer::create(
        &opts.out,
        ExportMeta {
            collection: opts.collection.clone(),
            dim: c.dim(),
            vector_type: opts.vector_type,
            properties: c.properties().clone(),
        },
    )
    .map_err(job)?;
    progress.begin("export", Some(c.len() as u64), Unit::Rows);
    for item in c.iter() {
        let item = item.map_err(|e| {
            JobError::runtime(format!(
                "reading collection '{}': {e}; {} not written",
                opts.collection,
                opts.out.display()
            ))
        })?;
        w.push(&item).map_err(job)?;
        if w.rows() % 4096 == 0 {
            progress.advance(4096);
        }
    }
    let rows = w.finish().map_err(job)?;
    progress.end();
    let bytes = std::fs::metadata(&opts.out).map_or(0, |m| m.len());
    Ok(ExportReport {
        collection: opts.collection.clone(),
        out: opts.out.display().to_string(),
        rows,
        dim: c.dim(),
        vector_type: opts.vector_type.name(),
        model,
        bytes,
    })
}
