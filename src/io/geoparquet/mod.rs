//! GeoParquet 1.1 files of a collection's items (`sat2cap export --format geoparquet`, `sat2cap
//! import --geoparquet`): one row per item with its id, place (WKB geometry, `lon`, `lat`,
//! the `bbox` covering), time, payload and vector, and two file-level metadata keys: `geo`
//! (the GeoParquet metadata) and `sat2cap` (the collection, its model and properties).
//! The schema and every rule are in docs/IO.md ("GeoParquet"); [`write`] writes it and
//! [`read`] reads it back, or any Parquet file of a compatible schema from other tools.
//! WKB is [`wkb`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::io::text::one_line;

mod meta;
pub mod read;
mod source_file;
pub mod wkb;
pub mod write;

/// The file metadata key of the GeoParquet metadata.
pub const GEO_KEY: &str = "geo";
/// The file metadata key of sat2cap's own metadata ([`Sat2capMeta`]).
pub const SAT2CAP_KEY: &str = "sat2cap";
/// The GeoParquet version written.
pub const GEOPARQUET_VERSION: &str = "1.1.0";
/// The version of the `sat2cap` metadata written (and the only one read).
pub const META_FORMAT: u32 = 1;
/// Rows per row group written (and the most rows the writer holds at once).
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Column names written.
pub mod col {
    /// The item's id, uint64.
    pub const ID: &str = "id";
    /// Longitude of the item's point, float64 degrees.
    pub const LON: &str = "lon";
    /// Latitude of the item's point, float64 degrees.
    pub const LAT: &str = "lat";
    /// The item's time, timestamp (ms, UTC).
    pub const TIME: &str = "time";
    /// The payload, string.
    pub const PAYLOAD: &str = "payload";
    /// The vector, fixed-size list of float16 or float32.
    pub const EMBEDDING: &str = "embedding";
    /// The geometry, WKB.
    pub const GEOMETRY: &str = "geometry";
    /// The geometry's bounding box, struct of xmin, ymin, xmax, ymax (float64).
    pub const BBOX: &str = "bbox";
}

/// The element type of an exported vector column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorType {
    /// float16: the stored values, bit for bit.
    #[serde(rename = "float16")]
    F16,
    /// float32: the stored fp16 values widened (exactly).
    #[serde(rename = "float32")]
    F32,
}

impl VectorType {
    /// `float16` / `float32`.
    pub fn name(self) -> &'static str {
        match self {
            VectorType::F16 => "float16",
            VectorType::F32 => "float32",
        }
    }
}

/// What the `sat2cap` metadata key holds (JSON): which collection the rows came from and
/// which model made their vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sat2capMeta {
    /// [`META_FORMAT`].
    pub format: u32,
    /// The collection exported.
    pub collection: String,
    /// The vectors' dimension.
    pub dim: u32,
    /// Rows written.
    pub rows: u64,
    /// The vector column.
    pub embedding: EmbeddingMeta,
    /// The model that made the vectors (`sat2cap.model` parsed), or null when the collection
    /// records none.
    pub model: Option<serde_json::Value>,
    /// Every property of the collection, verbatim (`sat2cap.model` among them).
    pub properties: BTreeMap<String, String>,
}

/// The vector column, as [`Sat2capMeta`] describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingMeta {
    /// Its name.
    pub column: String,
    /// `float16` or `float32`.
    #[serde(rename = "type")]
    pub vector_type: VectorType,
    /// `l2`: every vector has unit length (within fp16 rounding).
    pub normalisation: String,
}

impl Sat2capMeta {
    /// Parses the metadata value; an error says what is wrong in it.
    pub fn parse(text: &str) -> Result<Sat2capMeta, String> {
        let m: Sat2capMeta = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if m.format != META_FORMAT {
            return Err(format!(
                "format {} (this build reads {META_FORMAT})",
                m.format
            ));
        }
        Ok(m)
    }
}

/// Why a GeoParquet file could not be written or read: one line naming the file (and the
/// column and row where it applies).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct GeoParquetError {
    /// The message.
    pub message: String,
    /// Whether the input (the file, a value, a destination) is at fault, rather than the
    /// machine (I/O).
    pub input: bool,
}

impl GeoParquetError {
    /// A bad-input error.
    pub fn input(message: impl std::fmt::Display) -> GeoParquetError {
        GeoParquetError {
            message: one_line(&message.to_string()),
            input: true,
        }
    }

    /// A runtime (I/O) error.
    pub fn runtime(message: impl std::fmt::Display) -> GeoParquetError {
        GeoParquetError {
            message: one_line(&message.to_string()),
            input: false,
        }
    }
}

/// The footprint `[w, s, e, n]` a payload holds (`"footprint"`, as tiles and raster chips
/// store it), when it is a valid box: four finite numbers, `-90 <= s < n <= 90`, `w` in
/// `[-180, 180)`, `e` in `(-180, 180]`, `w != e` (`w > e` crosses the antimeridian).
pub fn footprint_of(payload: Option<&str>) -> Option<[f64; 4]> {
    /// The numbers are read from their text (Rust's correctly rounded parse), so that the
    /// geometry has exactly the payload's values.
    #[derive(Deserialize)]
    struct Payload<'a> {
        #[serde(borrow)]
        footprint: Vec<&'a serde_json::value::RawValue>,
    }
    let p = payload?;
    if !p.contains("\"footprint\"") {
        return None;
    }
    let a = serde_json::from_str::<Payload<'_>>(p).ok()?.footprint;
    if a.len() != 4 {
        return None;
    }
    let mut b = [0.0f64; 4];
    for (o, x) in b.iter_mut().zip(&a) {
        let text = x.get();
        // Numbers only (a quoted "1" is not one).
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return None;
        }
        *o = text.parse().ok()?;
    }
    let [w, s, e, n] = b;
    let ok = b.iter().all(|x| x.is_finite())
        && (-90.0..=90.0).contains(&s)
        && (-90.0..=90.0).contains(&n)
        && s < n
        && (-180.0..180.0).contains(&w)
        && e > -180.0
        && e <= 180.0
        && w != e;
    ok.then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprints() {
        let f = |s: &str| footprint_of(Some(s));
        assert_eq!(f(r#"{"footprint":[1,2,3,4]}"#), Some([1.0, 2.0, 3.0, 4.0]));
        assert_eq!(
            f(r#"{"footprint":[179.5,2,-179.5,4]}"#),
            Some([179.5, 2.0, -179.5, 4.0])
        );
        for bad in [
            r#"{"footprint":[1,2,3]}"#,
            r#"{"footprint":[1,4,3,2]}"#,
            r#"{"footprint":[1,2,1,4]}"#,
            r#"{"footprint":[180,2,3,4]}"#,
            r#"{"footprint":[1,2,3,95]}"#,
            r#"{"footprint":"x"}"#,
            "not json \"footprint\"",
            r#"{"footprint":["1",2,3,4]}"#,
        ] {
            assert_eq!(f(bad), None, "{bad}");
        }
        assert_eq!(footprint_of(None), None);
        // Exactly the text's values.
        assert_eq!(
            f(r#"{"footprint":[6.242,46.025,6.252,46.035000000000004],"key":"x"}"#),
            Some([6.242, 46.025, 6.252, 46.035000000000004])
        );
    }
}
