//! Readers and writers for the outside formats the CLI and harnesses use: `.npy` vector
//! files, point CSVs and batch-query JSONL. Every reader validates what it reads and returns
//! a typed error naming the file, line or byte offset; none panics on any input.

pub mod geojson;
pub mod geoparquet;
pub mod input;
pub mod npy;
pub mod output;
pub mod points_csv;
pub mod query_jsonl;
#[cfg(feature = "encoders")]
pub mod raster;
pub mod text;
