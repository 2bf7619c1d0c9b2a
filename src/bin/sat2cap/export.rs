//! `sat2cap export`: write a collection as a GeoParquet file.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use sat2cap::jobs::{export, ExportFormat, ExportOptions, VectorType};

use crate::output::{note, out};
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Write every item of a collection to a GeoParquet 1.1 file: id, place (the tile's
/// footprint polygon, or its point), lon, lat, time, payload and the vector, with the model
/// that made the vectors in the file's metadata (docs/IO.md, "GeoParquet"). geopandas,
/// QGIS / GDAL (with its Parquet driver), DuckDB and LanceDB read it; `sat2cap import
/// --geoparquet` reads it back bit for bit.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap export --db ./db --collection overhead --format geoparquet --out tiles.parquet
  sat2cap export --db ./db --collection overhead --out tiles.parquet --vector-type f32
  python -c \"import geopandas; print(geopandas.read_parquet('tiles.parquet').head())\"

--json prints {collection, out, rows, dim, vector_type, model, bytes, seconds} on stdout.")]
pub struct ExportArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Collection name.
    #[arg(long)]
    collection: String,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Geoparquet)]
    format: Format,
    /// Output file (replaced if it is a regular file; written whole or not at all).
    #[arg(long)]
    out: PathBuf,
    /// Element type of the vectors: f16 (the stored values, bit for bit) or f32 (the same
    /// values widened, for tools without float16).
    #[arg(long, value_enum, default_value_t = Element::F16)]
    vector_type: Element,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// GeoParquet 1.1 (WKB geometries, the `geo` metadata).
    Geoparquet,
}

#[derive(Clone, Copy, ValueEnum)]
enum Element {
    /// float16.
    F16,
    /// float32.
    F32,
}

/// Runs the command.
pub fn run(a: ExportArgs) -> Result<(), CliError> {
    let Format::Geoparquet = a.format;
    let opts = ExportOptions {
        collection: a.collection,
        out: a.out,
        format: ExportFormat::GeoParquet,
        vector_type: match a.vector_type {
            Element::F16 => VectorType::F16,
            Element::F32 => VectorType::F32,
        },
    };
    let start = std::time::Instant::now();
    let r = export(&a.db, &opts, &Bars::new(Notes::Stderr))?;
    if a.json {
        let mut v = serde_json::to_value(&r).map_err(CliError::runtime)?;
        v["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
        out!("{v}");
    }
    note!(
        "exported {} rows of '{}' ({}-d {} vectors; model: {}) to {} ({} bytes)",
        r.rows,
        r.collection,
        r.dim,
        r.vector_type,
        r.model.as_deref().unwrap_or("none recorded"),
        r.out,
        r.bytes
    );
    Ok(())
}
