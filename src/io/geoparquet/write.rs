//! Writing a collection's items as GeoParquet: rows buffered [`ROW_GROUP_ROWS`] at a time,
//! each buffer one row group, the metadata (`geo`, `sat2cap`) in the footer once every row
//! is written (so that the geometry types and the bounding box are the rows' own). The file
//! is a [`Staged`] output: whole or not at all.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float16Array, Float32Array, Float64Array, RecordBatch,
    StructArray, TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use half::f16;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{
    col, footprint_of, wkb, EmbeddingMeta, GeoParquetError, Sat2capMeta, VectorType,
    GEOPARQUET_VERSION, GEO_KEY, META_FORMAT, ROW_GROUP_ROWS, SAT2CAP_KEY,
};
use crate::io::output::Staged;
use crate::storage::Item;

/// What the file says about its rows.
#[derive(Debug, Clone)]
pub struct ExportMeta {
    /// The collection exported.
    pub collection: String,
    /// The vectors' dimension.
    pub dim: usize,
    /// The element type written.
    pub vector_type: VectorType,
    /// The collection's properties (all of them go into the `sat2cap` metadata).
    pub properties: BTreeMap<String, String>,
}

/// The Arrow schema of a file of `dim`-d vectors of `vector_type`.
pub fn schema(dim: usize, vector_type: VectorType) -> SchemaRef {
    let element = match vector_type {
        VectorType::F16 => DataType::Float16,
        VectorType::F32 => DataType::Float32,
    };
    let coord = |n: &str| Field::new(n, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        Field::new(col::ID, DataType::UInt64, false),
        coord(col::LON),
        coord(col::LAT),
        Field::new(
            col::TIME,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new(col::PAYLOAD, DataType::Utf8, true),
        Field::new(
            col::EMBEDDING,
            DataType::FixedSizeList(Arc::new(Field::new_list_field(element, false)), dim as i32),
            false,
        ),
        Field::new(col::GEOMETRY, DataType::Binary, false),
        Field::new(col::BBOX, DataType::Struct(bbox_fields()), false),
    ]))
}

fn bbox_fields() -> Fields {
    ["xmin", "ymin", "xmax", "ymax"]
        .into_iter()
        .map(|n| Field::new(n, DataType::Float64, false))
        .collect()
}

/// A GeoParquet file being written.
pub struct Writer {
    dest: PathBuf,
    staged: Staged,
    writer: ArrowWriter<BufWriter<std::fs::File>>,
    schema: SchemaRef,
    meta: ExportMeta,
    rows: Rows,
    written: u64,
    /// Point, Polygon, MultiPolygon written.
    types: [bool; 3],
    /// The file's bounding box.
    bbox: Option<[f64; 4]>,
}

/// The rows held until the next row group.
#[derive(Default)]
struct Rows {
    ids: Vec<u64>,
    lon: Vec<f64>,
    lat: Vec<f64>,
    time: Vec<Option<i64>>,
    payload: Vec<Option<String>>,
    vectors: Vec<f16>,
    geometry: Vec<u8>,
    ends: Vec<usize>,
    bbox: [Vec<f64>; 4],
}

impl Writer {
    /// Creates the staged output for `dest` (refusing what [`Staged::new`] refuses).
    pub fn create(dest: &Path, meta: ExportMeta) -> Result<Writer, GeoParquetError> {
        if meta.dim == 0 || meta.dim > i32::MAX as usize {
            return Err(GeoParquetError::input(format!("dimension {}", meta.dim)));
        }
        let mut staged = Staged::new(dest).map_err(|e| GeoParquetError {
            input: e.is_input(),
            message: e.to_string(),
        })?;
        let file = staged
            .file()
            .and_then(|f| f.try_clone().map_err(|e| staged_io(dest, e)))
            .map_err(|e| GeoParquetError::runtime(e.to_string()))?;
        let schema = schema(meta.dim, meta.vector_type);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            Some(props),
        )
        .map_err(|e| GeoParquetError::runtime(format!("{}: {e}", dest.display())))?;
        Ok(Writer {
            dest: dest.to_path_buf(),
            staged,
            writer,
            schema,
            meta,
            rows: Rows::default(),
            written: 0,
            types: [false; 3],
            bbox: None,
        })
    }

    /// Adds an item (its vector must have the file's dimension); writes a row group every
    /// [`ROW_GROUP_ROWS`] rows.
    pub fn push(&mut self, item: &Item<'_>) -> Result<(), GeoParquetError> {
        if item.vector.len() != self.meta.dim {
            return Err(GeoParquetError::runtime(format!(
                "item {}: {} components, the collection has {}",
                item.id,
                item.vector.len(),
                self.meta.dim
            )));
        }
        let time = match item.time {
            None => None,
            Some(t) => Some(t.checked_mul(1000).ok_or_else(|| {
                GeoParquetError::input(format!(
                    "item {}: time {t} (unix seconds) is beyond Parquet's millisecond \
                     timestamps (years within about ±292 million)",
                    item.id
                ))
            })?),
        };
        let r = &mut self.rows;
        let (lon, lat) = (item.point.lon(), item.point.lat());
        let b = match footprint_of(item.payload) {
            Some([w, s, e, n]) if w < e => {
                wkb::write_box(&mut r.geometry, w, s, e, n);
                self.types[1] = true;
                [w, s, e, n]
            }
            Some([w, s, e, n]) => {
                wkb::write_cut_box(&mut r.geometry, w, s, e, n);
                self.types[2] = true;
                // Both parts: the covering spans every longitude (see docs/IO.md).
                [-180.0, s, 180.0, n]
            }
            None => {
                wkb::write_point(&mut r.geometry, lon, lat);
                self.types[0] = true;
                [lon, lat, lon, lat]
            }
        };
        r.ends.push(r.geometry.len());
        for (v, x) in r.bbox.iter_mut().zip(b) {
            v.push(x);
        }
        let fb = self.bbox.get_or_insert(b);
        *fb = [
            fb[0].min(b[0]),
            fb[1].min(b[1]),
            fb[2].max(b[2]),
            fb[3].max(b[3]),
        ];
        r.ids.push(item.id);
        r.lon.push(lon);
        r.lat.push(lat);
        r.time.push(time);
        r.payload.push(item.payload.map(str::to_string));
        r.vectors.extend_from_slice(item.vector);
        if r.ids.len() >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.written + self.rows.ids.len() as u64
    }

    fn flush(&mut self) -> Result<(), GeoParquetError> {
        if self.rows.ids.is_empty() {
            return Ok(());
        }
        let r = std::mem::take(&mut self.rows);
        let n = r.ids.len();
        let batch = self.batch(r)?;
        self.writer.write(&batch).map_err(|e| self.failed(e))?;
        self.writer.flush().map_err(|e| self.failed(e))?;
        self.written += n as u64;
        Ok(())
    }

    fn failed(&self, e: impl std::fmt::Display) -> GeoParquetError {
        GeoParquetError::runtime(format!("writing {}: {e}", self.dest.display()))
    }

    fn batch(&self, r: Rows) -> Result<RecordBatch, GeoParquetError> {
        let element = match self.schema.field(5).data_type() {
            DataType::FixedSizeList(f, _) => f.clone(),
            _ => unreachable!("the schema's vector column is a fixed-size list"),
        };
        let values: ArrayRef = match self.meta.vector_type {
            VectorType::F16 => Arc::new(Float16Array::from(r.vectors)),
            VectorType::F32 => Arc::new(Float32Array::from(
                r.vectors.iter().map(|x| x.to_f32()).collect::<Vec<f32>>(),
            )),
        };
        let vectors = FixedSizeListArray::try_new(element, self.meta.dim as i32, values, None)
            .map_err(|e| self.failed(e))?;
        let mut payload = StringBuilder::new();
        for p in &r.payload {
            payload.append_option(p.as_deref());
        }
        let mut geometry = BinaryBuilder::with_capacity(r.ends.len(), r.geometry.len());
        let mut start = 0;
        for &end in &r.ends {
            geometry.append_value(&r.geometry[start..end]);
            start = end;
        }
        let [xmin, ymin, xmax, ymax] = r.bbox;
        let bbox = StructArray::try_new(
            bbox_fields(),
            [xmin, ymin, xmax, ymax]
                .into_iter()
                .map(|v| Arc::new(Float64Array::from(v)) as ArrayRef)
                .collect(),
            None,
        )
        .map_err(|e| self.failed(e))?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(r.ids)),
            Arc::new(Float64Array::from(r.lon)),
            Arc::new(Float64Array::from(r.lat)),
            Arc::new(TimestampMillisecondArray::from(r.time).with_timezone("UTC")),
            Arc::new(payload.finish()),
            Arc::new(vectors),
            Arc::new(geometry.finish()),
            Arc::new(bbox),
        ];
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| self.failed(e))
    }

    /// The GeoParquet metadata of the rows written.
    fn geo_json(&self) -> String {
        let names = ["Point", "Polygon", "MultiPolygon"];
        let types: Vec<&str> = names
            .iter()
            .zip(self.types)
            .filter(|(_, seen)| *seen)
            .map(|(n, _)| *n)
            .collect();
        let bbox_path = |f: &str| serde_json::json!([col::BBOX, f]);
        let mut column = serde_json::json!({
            "encoding": "WKB",
            "geometry_types": types,
            "orientation": "counterclockwise",
            "covering": {"bbox": {
                "xmin": bbox_path("xmin"), "ymin": bbox_path("ymin"),
                "xmax": bbox_path("xmax"), "ymax": bbox_path("ymax"),
            }},
        });
        if let Some(b) = self.bbox {
            column["bbox"] = serde_json::json!(b);
        }
        serde_json::json!({
            "version": GEOPARQUET_VERSION,
            "primary_column": col::GEOMETRY,
            "columns": {col::GEOMETRY: column},
        })
        .to_string()
    }

    /// Writes the last row group and the footer, then renames the file into place.
    /// Returns the rows written.
    pub fn finish(mut self) -> Result<u64, GeoParquetError> {
        self.flush()?;
        let model = self
            .meta
            .properties
            .get("sat2cap.model")
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok());
        let meta = Sat2capMeta {
            format: META_FORMAT,
            collection: self.meta.collection.clone(),
            dim: self.meta.dim as u32,
            rows: self.written,
            embedding: EmbeddingMeta {
                column: col::EMBEDDING.to_string(),
                vector_type: self.meta.vector_type,
                normalisation: "l2".to_string(),
            },
            model,
            properties: self.meta.properties.clone(),
        };
        let sat2cap = serde_json::to_string(&meta).map_err(|e| self.failed(e))?;
        let geo = self.geo_json();
        self.writer
            .append_key_value_metadata(KeyValue::new(GEO_KEY.to_string(), geo));
        self.writer
            .append_key_value_metadata(KeyValue::new(SAT2CAP_KEY.to_string(), sat2cap));
        let rows = self.written;
        let dest = self.dest.clone();
        let buf = self
            .writer
            .into_inner()
            .map_err(|e| GeoParquetError::runtime(format!("writing {}: {e}", dest.display())))?;
        buf.into_inner()
            .map_err(|e| staged_io(&dest, e.into_error()))
            .map_err(|e| GeoParquetError::runtime(e.to_string()))?;
        self.staged.commit().map_err(|e| GeoParquetError {
            input: e.is_input(),
            message: e.to_string(),
        })?;
        Ok(rows)
    }
}

fn staged_io(dest: &Path, source: std::io::Error) -> crate::io::output::OutputError {
    crate::io::output::OutputError::Io {
        path: dest.display().to_string(),
        source,
    }
}
