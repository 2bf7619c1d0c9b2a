//! Fuzz-target bodies, one per parser of outside bytes: the storage engine's files
//! ([`storage`]), the import and batch-query formats (`.npy`, point CSV, query JSONL;
//! [`formats`], feature `jobs`), date/time text, the HNSW graph section and the query
//! planner ([`query`]), safetensors, images and the tokenizer ([`encoders`], feature
//! `encoders`), PyTorch files ([`pytorch`], feature `encoders`), GeoJSON areas and GeoTIFF
//! scenes ([`gis`], feature `encoders`), GeoParquet files and WKB ([`parquet`], feature
//! `jobs`). They are shared by `fuzz/` (cargo-fuzz) and `tests/fuzz_replay.rs`.
//! Each function must never panic on any input, except to report a real bug.

#[cfg(feature = "encoders")]
pub mod encoders;
#[cfg(feature = "jobs")]
pub mod formats;
#[cfg(feature = "encoders")]
pub mod gis;
#[cfg(feature = "jobs")]
pub mod parquet;
#[cfg(feature = "jobs")]
pub mod plan;
#[cfg(feature = "encoders")]
pub mod pytorch;
pub mod query;
pub mod storage;

#[cfg(feature = "encoders")]
pub use encoders::{image_preprocess, safetensors_load, tokenizer};
#[cfg(feature = "jobs")]
pub use formats::{npy_file, npy_header, points_csv, query_jsonl, text_lines};
#[cfg(feature = "encoders")]
pub use gis::{geojson_area, geotiff_scene};
#[cfg(feature = "jobs")]
pub use parquet::{geoparquet_file, wkb_geometry};
#[cfg(feature = "jobs")]
pub use plan::filter_plan;
#[cfg(feature = "encoders")]
pub use pytorch::pytorch_load;
pub use query::graph_section;
pub use storage::{db_ops, manifest_parse, segment_open, tombstone_parse};

/// Parses `data` (if UTF-8) as a date/time; a parsed time's calendar fields convert back to
/// the same seconds (within the years `DateTime` represents). Also converts the first 8 bytes
/// as unix seconds both ways.
pub fn time_parse(data: &[u8]) {
    if data.len() >= 8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[..8]);
        round_trip(i64::from_le_bytes(b));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = crate::time::parse(text) {
        round_trip(t);
    }
}

fn round_trip(t: i64) {
    let dt = crate::time::from_unix(t);
    // Years outside i32 saturate in `from_unix`; those cannot round-trip.
    if dt.year > i32::MIN && dt.year < i32::MAX {
        assert_eq!(crate::time::to_unix(dt), Ok(t), "{dt:?}");
    }
}
