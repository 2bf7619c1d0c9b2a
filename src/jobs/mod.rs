//! The user's jobs end to end, as typed functions: what the `sat2cap` tool runs, for programs
//! that want the same without the command line.
//!
//! | job | function | needs |
//! |---|---|---|
//! | import vectors + points (`.npy` + CSV) | [`import`] | |
//! | import a GeoParquet file | [`import`] with [`ImportSource::GeoParquet`] | |
//! | export a collection as GeoParquet | [`export`] | |
//! | answer a JSONL batch of vector queries | [`query_batch`] | |
//! | top-k by a stored or given vector | [`search`] with [`QueryInput::Vector`] | |
//! | draw a map from scored cells | [`write_map`] | |
//! | ingest overhead tiles, ground photos, captions | [`ingest_tiles`], [`ingest_ground`], [`ingest_captions`] | encoders |
//! | ingest GeoTIFF / COG scenes as chips | [`ingest_raster`] | encoders |
//! | top-k by text or image | [`search`] | encoders |
//! | top-k like some stored items and unlike others | [`search`] with [`QueryInput::Examples`] | encoders |
//! | zero-shot map of prompts over a region | [`map`] | encoders |
//! | ground photos / captions for a tile | [`search`] with [`QueryInput::TileId`] | encoders |
//! | captions generated for a tile (ClipCap) | [`generate_captions`] | encoders |
//! | overhead <-> ground retrieval metrics (Sat2Cap's Table 1) | [`eval_retrieval`] | encoders |
//! | zero-shot classification of tiles, and its accuracy | [`Classifier`], [`eval_classify`] | encoders |
//! | caption <-> image retrieval metrics | [`eval_text_retrieval`] | encoders |
//! | the demo | [`run_demo`] | encoders |
//!
//! Jobs that embed take an [`Embedder`] (the seam between the jobs and the encoders; the
//! built-in one is [`Model`]); jobs that run long report through a [`Progress`](crate::Progress).
//! None of them prints, reads environment variables or exits.
//!
//! Conventions (documented in the README and the tool's `--help`):
//! - Collections: [`OVERHEAD`] (Sat2Cap tile embeddings), [`GROUND`] (CLIP image embeddings
//!   of ground-level photos), [`CAPTIONS`] (CLIP text embeddings of a caption bank).
//! - Payloads are JSON: tiles `{"path", "footprint": [west, south, east, north], "key"}`
//!   (and `"local_time"` when ingested with a capture time),
//!   ground photos `{"path", "key"}`, captions `{"caption"}`. Captions have no place: they
//!   are stored at the point (0, 0) with no time.
//! - Each collection records the model that made its vectors ([`ModelFingerprint`]);
//!   adding to it or comparing with it checks that model.
//! - Errors are [`JobError`]: `Input` (the input is wrong), `ModelMismatch` (a collection
//!   holds another model's embeddings) or `Runtime` (I/O, storage, encoders), one line each.

internal! {
    mod batch;
    #[cfg(feature = "encoders")]
    mod captions;
    #[cfg(feature = "encoders")]
    mod examples;
    mod fingerprint;
    mod export;
    mod import;
    mod import_parquet;
    mod map_files;
    #[cfg(feature = "encoders")]
    mod classify;
    #[cfg(feature = "encoders")]
    mod demo;
    #[cfg(feature = "encoders")]
    mod eval;
    #[cfg(feature = "encoders")]
    mod eval_text;
    #[cfg(feature = "encoders")]
    mod ingest;
    #[cfg(feature = "encoders")]
    mod lookup;
    #[cfg(feature = "encoders")]
    mod map;
    #[cfg(feature = "encoders")]
    mod model;
    #[cfg(feature = "encoders")]
    mod tiles;
}

pub use crate::io::geoparquet::read::Columns as ParquetColumns;
pub use crate::io::geoparquet::VectorType;
pub use crate::io::text::one_line;
pub use crate::map::{Footprint, MapCell};
pub use batch::{query_batch, BatchOptions, BatchOutput, BatchReport};
#[cfg(feature = "encoders")]
pub use examples::{
    read_examples, Example, Examples, MAX_AREA_EXAMPLES, MAX_EXAMPLE_KM, UNLIKE_WEIGHT,
};
pub use export::{export, ExportFormat, ExportOptions, ExportReport};
pub use fingerprint::{EncoderKind, ModelFingerprint, MODEL_PROPERTY};
pub use import::{import, ImportOptions, ImportReport, ImportSource};
pub use map_files::{write_map, write_web_map, MapFiles, MapPanel};

#[cfg(feature = "encoders")]
pub use captions::{generate_captions, CaptionJob, CaptionModel, CaptionReport};
#[cfg(feature = "encoders")]
pub use classify::{
    eval_classify, ClassAccuracy, Classifier, ClassifyEvalOptions, ClassifyReport, Labels, Ranked,
    DEFAULT_TEMPLATE,
};
#[cfg(feature = "encoders")]
pub use demo::scene::{render_ground, render_overhead, LandClass, Region, SceneTile, LAUSANNE};
#[cfg(feature = "encoders")]
pub use demo::{run_demo, DemoOptions, DemoReport, StepTiming};
#[cfg(feature = "encoders")]
pub use eval::{eval_retrieval, Direction, EvalOptions, EvalReport, EvalRow, RetrievalMetrics};
#[cfg(feature = "encoders")]
pub use eval_text::{eval_text_retrieval, TextEvalOptions, TextEvalReport};
#[cfg(feature = "encoders")]
pub use ingest::{
    ingest_captions, ingest_ground, ingest_raster, ingest_tiles, read_captions, IngestOptions,
    IngestReport, RasterOptions, TileOptions, TilePart, DEFAULT_CHIP_PX,
};
#[cfg(feature = "encoders")]
pub use lookup::{
    matches_geojson, read_vector, search, Match, QueryInput, SearchJob, SearchReport,
};
#[cfg(feature = "encoders")]
pub use map::{map, map_panels, score_tiles, score_tiles_at, MapReport, MapRequest, ScoredTile};
#[cfg(feature = "encoders")]
pub use model::{Embedder, Model, ModelOptions, ModelSource, Prepared, RANDOM_SEED};
#[cfg(feature = "encoders")]
pub use tiles::{scan_tiles, TileFile};

use crate::{Area, Collection, Snapshot};

/// The area of interest in a GeoJSON file: the union of its Polygons and MultiPolygons
/// (holes kept), [lon, lat] positions (RFC 7946); errors name the file and the JSON path.
pub fn read_area(path: &std::path::Path) -> Result<Area, JobError> {
    crate::io::geojson::read_area(path).map_err(JobError::input)
}

/// The area of interest in GeoJSON text, as [`read_area`] reads a file; errors name the
/// JSON path.
pub fn parse_area(geojson: &[u8]) -> Result<Area, JobError> {
    crate::io::geojson::parse_area(geojson).map_err(JobError::input)
}

/// Default collection of overhead tiles.
pub const OVERHEAD: &str = "overhead";
/// Default collection of ground-level photos.
pub const GROUND: &str = "ground";
/// Default collection of the caption bank.
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
    /// Adding to a collection would mix embeddings of different models (bad input).
    #[error("{message}")]
    ModelMismatch {
        /// What differs, in words.
        message: String,
        /// Whether [`IngestOptions::force_model`] would accept it (other weights of the same
        /// encoder, or a collection that records no model).
        forceable: bool,
    },
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

impl From<crate::OpenError> for JobError {
    /// No database where one is expected, or a folder that is not one, is bad input; the
    /// rest (I/O, corruption, a locked database) a runtime failure.
    fn from(e: crate::OpenError) -> JobError {
        match e {
            crate::OpenError::NotFound { .. }
            | crate::OpenError::NotADatabase { .. }
            | crate::OpenError::NotAFolder { .. }
            | crate::OpenError::DanglingLink { .. }
            | crate::OpenError::AlreadyExists { .. } => JobError::input(e),
            e => JobError::runtime(e),
        }
    }
}

/// Runs `job` on the database in `path` opened with `opts` (which may create it). When the
/// job fails, a database this call created is removed again (the storage engine's files,
/// and the folder when this call made it and it is left empty): a failed first job leaves
/// nothing behind.
pub fn with_database<T>(
    path: &std::path::Path,
    opts: crate::OpenOptions,
    job: impl FnOnce(&mut crate::Db) -> Result<T, JobError>,
) -> Result<T, JobError> {
    let folder_existed = path.exists();
    let created = !path.join(crate::storage::MANIFEST_FILE).exists();
    let mut db = crate::Db::open(path, opts)?;
    let r = job(&mut db);
    drop(db);
    if r.is_err() && created {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                let own = e
                    .file_name()
                    .to_str()
                    .is_some_and(crate::storage::is_own_file);
                if own && e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        if !folder_existed {
            let _ = std::fs::remove_dir(path);
        }
    }
    r
}

/// The collection `name` of `snap`, or an input error naming the collections there are.
pub fn collection<'s>(snap: &'s Snapshot, name: &str) -> Result<Collection<'s>, JobError> {
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
