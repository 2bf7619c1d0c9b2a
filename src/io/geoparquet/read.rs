//! Reading items from a Parquet file: sat2cap's own GeoParquet export, or a file of another
//! tool with a compatible schema (docs/IO.md, "GeoParquet": which columns are read, their
//! types, and how a place is found). [`Source::open`] checks the schema and the metadata;
//! [`Source::rows`] streams the rows a batch at a time, each checked as it is read.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;

use super::meta::{Layout, Place, VectorKind};
use super::source_file::{check_dictionaries, SourceFile};
use super::{wkb, GeoParquetError, Sat2capMeta};
use crate::geo::Point;

/// Rows per batch read.
const BATCH_ROWS: usize = 4096;

/// The columns to read, by name; `None` takes the default (docs/IO.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// The vectors (default `embedding`, else `vector`).
    pub vector: Option<String>,
    /// The ids (default `id`; without one, ids are row numbers).
    pub id: Option<String>,
    /// The times (default `time`; without one, no times).
    pub time: Option<String>,
    /// The payloads (default `payload`; without one, no payloads).
    pub payload: Option<String>,
}

/// One row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// Its number in the file, from 0.
    pub index: u64,
    /// The id (the row number when the file has no id column).
    pub id: u64,
    /// The vector's values as the file holds them (exactly, in f64).
    pub vector: Vec<f64>,
    /// The place.
    pub point: Option<Point>,
    /// Unix seconds.
    pub time: Option<i64>,
    /// The payload.
    pub payload: Option<String>,
}

/// An open Parquet file of items.
#[derive(Debug)]
pub struct Source {
    path: PathBuf,
    layout: Layout,
    /// Rows in the file.
    pub rows: u64,
    /// The vectors' dimension (`None` for a file of no rows whose vector column does not
    /// say it).
    pub dim: Option<usize>,
    /// sat2cap's metadata, when the file has it.
    pub meta: Option<Sat2capMeta>,
}

impl Source {
    /// Opens `path` and checks its schema and metadata against `cols`.
    pub fn open(path: &Path, cols: &Columns) -> Result<Source, GeoParquetError> {
        let builder = builder(path)?;
        let (layout, meta) = Layout::of(path, &builder, cols)?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let mut src = Source {
            path: path.to_path_buf(),
            layout,
            rows,
            dim: None,
            meta,
        };
        src.dim = match src.layout.vector.fixed {
            Some(n) => Some(n),
            // A variable-length list: the first row's length.
            None if rows > 0 => {
                let mut r = src.rows_of(true)?;
                let mut row = Row::default();
                r.next_row(&mut row)?;
                Some(row.vector.len())
            }
            None => None,
        };
        if let (Some(m), Some(dim)) = (&src.meta, src.dim) {
            if m.embedding.column == src.layout.vector.name && m.dim as usize != dim {
                return Err(src.err(format!(
                    "column '{}' holds {dim} values a row but the file's sat2cap metadata \
                     says dimension {} (wrong embedding width)",
                    src.layout.vector.name, m.dim
                )));
            }
        }
        Ok(src)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The vector column's name.
    pub fn vector_column(&self) -> &str {
        &self.layout.vector.name
    }

    /// The width of a fixed-size-list vector column (`None` for a list column).
    #[cfg(feature = "testing")]
    pub fn fixed_width(&self) -> Option<usize> {
        self.layout.vector.fixed
    }

    /// Whether the vector column holds float64 values.
    pub fn is_f64(&self) -> bool {
        self.layout.vector.kind == VectorKind::F64
    }

    /// The columns read: the vector column and the id, time and payload columns the file
    /// has.
    pub fn columns(&self) -> Columns {
        let l = &self.layout;
        Columns {
            vector: Some(l.vector.name.clone()),
            id: l.id.clone(),
            time: l.time.clone(),
            payload: l.payload.clone(),
        }
    }

    /// Columns of the file that are not read.
    pub fn ignored(&self) -> &[String] {
        &self.layout.ignored
    }

    /// Whether ids are row numbers (no id column).
    pub fn ids_are_rows(&self) -> bool {
        self.layout.id.is_none()
    }

    /// A one-line error about the file.
    pub fn err(&self, m: impl std::fmt::Display) -> GeoParquetError {
        GeoParquetError::input(format!("{}: {m}", self.path.display()))
    }

    /// Every row, from the first.
    pub fn rows(&self) -> Result<Rows<'_>, GeoParquetError> {
        self.rows_of(false)
    }

    fn rows_of(&self, vector_only: bool) -> Result<Rows<'_>, GeoParquetError> {
        let b = builder(&self.path)?;
        let names = if vector_only {
            vec![self.layout.vector.name.as_str()]
        } else {
            self.layout.names()
        };
        let roots: Vec<usize> = b
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| names.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(b.parquet_schema(), roots);
        let batch = if vector_only { 1 } else { BATCH_ROWS };
        let reader = catch_panics(|| b.with_projection(mask).with_batch_size(batch).build())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| self.err(format!("not a readable Parquet file ({e})")))?;
        Ok(Rows {
            src: self,
            reader,
            batch: None,
            at: 0,
            next: 0,
            vector_only,
        })
    }
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<SourceFile>, GeoParquetError> {
    let shown = path.display();
    let m = std::fs::metadata(path)
        .map_err(|e| GeoParquetError::input(format!("{shown}: cannot read it ({e})")))?;
    if !m.is_file() {
        return Err(GeoParquetError::input(format!(
            "{shown}: not a regular file (a Parquet file is read from its end: give a file)"
        )));
    }
    let file = File::open(path)
        .map_err(|e| GeoParquetError::input(format!("{shown}: cannot read it ({e})")))?;
    // The Arrow schema is taken from the Parquet schema alone: the `ARROW:schema` metadata
    // is decoded by arrow-ipc, which panics on some damaged values (found by the
    // `geoparquet_file` fuzz target), and adds nothing the reader needs (a fixed-size list
    // reads as a list, whose widths are checked row by row).
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let budget = footer_budget(&file);
    let unreadable =
        |e: String| GeoParquetError::input(format!("{shown}: not a readable Parquet file ({e})"));
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sat2cap-parquet-footer".into())
        .spawn(move || {
            let r = catch_panics(|| {
                let again = file.try_clone().map_err(|e| e.to_string())?;
                let b = ParquetRecordBatchReaderBuilder::try_new_with_options(
                    SourceFile(file),
                    options,
                )
                .map_err(|e| e.to_string())?;
                check_dictionaries(again, b.metadata())?;
                Ok(b)
            })
            .and_then(|r| r);
            let _ = tx.send(r);
        })
        .map_err(|e| GeoParquetError::runtime(format!("{shown}: cannot start a reader ({e})")))?;
    match rx.recv_timeout(budget) {
        Ok(r) => r.map_err(unreadable),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(unreadable(format!(
            "its footer takes more than {} s to read: damaged (the Parquet reader walks some \
             damaged footers for hours)",
            budget.as_secs()
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(unreadable("the reader stopped without an answer".into()))
        }
    }
}

/// The longest the footer of `file` may take to read: 10 s, and 1 s more per MiB of footer
/// (a sound footer reads at well over 10 MiB/s). parquet 59 skips a list of booleans
/// without reading a byte per element, so a few bytes declaring lists of 2^31 booleans in
/// an unknown footer field hold it for seconds each, and 12 KB of them for hours. Past the
/// budget the file is refused; the thread reading it is left to finish on its own (it ends
/// with the process).
fn footer_budget(file: &File) -> std::time::Duration {
    use std::io::{Read, Seek, SeekFrom};
    let footer = (|| -> std::io::Result<u64> {
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::End(-8))?;
        let mut tail = [0u8; 8];
        f.read_exact(&mut tail)?;
        Ok(u64::from(u32::from_le_bytes([
            tail[0], tail[1], tail[2], tail[3],
        ])))
    })()
    .unwrap_or(0);
    std::time::Duration::from_secs(10 + footer / (1 << 20))
}

thread_local! {
    /// Set while [`catch_panics`] runs a call into the Parquet reader on this thread.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, a call into the Parquet / Arrow readers, turning a panic into an error: they
/// panic (`assert!`, `unimplemented!`) on some damaged files, which the `geoparquet_file`
/// fuzz target finds, and a damaged input file must be a one-line error, not a crash. A
/// process-wide panic hook, installed once, stays silent for the panics caught here and
/// hands every other panic to the hook that was there before. (Under `panic = "abort"`, as
/// cargo-fuzz builds, such a panic still aborts: the fuzzer reports it.)
fn catch_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was = CATCHING.with(|g| g.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|g| g.set(was));
    r.map_err(|p| {
        let m = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        format!(
            "damaged: the Parquet reader failed: {}",
            m.replace('\n', " ")
        )
    })
}

/// The rows of a [`Source`], a batch at a time.
pub struct Rows<'a> {
    src: &'a Source,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    /// The next row in `batch`.
    at: usize,
    /// The next row's number in the file.
    next: u64,
    vector_only: bool,
}

impl Rows<'_> {
    /// Reads the next row into `row`; `false` after the last.
    pub fn next_row(&mut self, row: &mut Row) -> Result<bool, GeoParquetError> {
        loop {
            if let Some(b) = &self.batch {
                if self.at < b.num_rows() {
                    break;
                }
            }
            let next = catch_panics(|| self.reader.next()).and_then(|b| match b {
                Some(Err(e)) => Err(e.to_string()),
                b => Ok(b.and_then(Result::ok)),
            });
            match next {
                Ok(None) => return Ok(false),
                Err(e) => {
                    return Err(self
                        .src
                        .err(format!("reading the rows from row {}: {e}", self.next)))
                }
                Ok(Some(b)) => {
                    self.batch = Some(b);
                    self.at = 0;
                }
            }
        }
        let Some(batch) = self.batch.as_ref() else {
            return Ok(false);
        };
        let (i, index) = (self.at, self.next);
        self.at += 1;
        self.next += 1;
        row.index = index;
        let l = &self.src.layout;
        let at = |c: &str, m: String| self.src.err(format!("column '{c}', row {index}: {m}"));
        let col = |name: &str| batch.column_by_name(name);
        let Some(v) = col(&l.vector.name) else {
            return Err(at(&l.vector.name, "missing from the batch".into()));
        };
        read_vector(v.as_ref(), i, &mut row.vector).map_err(|m| at(&l.vector.name, m))?;
        if self.vector_only {
            return Ok(true);
        }
        row.id = match &l.id {
            None => index,
            Some(name) => match col(name) {
                Some(a) => read_id(a.as_ref(), i).map_err(|m| at(name, m))?,
                None => return Err(at(name, "missing from the batch".into())),
            },
        };
        row.time = match &l.time {
            Some(name) => match col(name) {
                Some(a) => read_time(a.as_ref(), i).map_err(|m| at(name, m))?,
                None => None,
            },
            None => None,
        };
        row.payload = match &l.payload {
            Some(name) => match col(name) {
                Some(a) => read_text(a.as_ref(), i),
                None => None,
            },
            None => None,
        };
        row.point = Some(self.place(batch, i, index)?);
        Ok(true)
    }

    /// The row's point: a Point geometry; a (Multi)Polygon's `lon` / `lat` columns or else
    /// the centre of its bounding box; without a geometry the `lon` / `lat` columns.
    fn place(&self, b: &RecordBatch, i: usize, index: u64) -> Result<Point, GeoParquetError> {
        let l = &self.src.layout;
        let at = |c: &str, m: String| self.src.err(format!("column '{c}', row {index}: {m}"));
        let lonlat = |need: bool| -> Result<Option<(f64, f64)>, GeoParquetError> {
            let Some((lon, lat)) = &l.lonlat else {
                return Ok(None);
            };
            let get = |name: &str| match b.column_by_name(name) {
                Some(a) => read_float(a.as_ref(), i).map_err(|m| at(name, m)),
                None => Ok(None),
            };
            match (get(lon)?, get(lat)?) {
                (Some(x), Some(y)) => Ok(Some((x, y))),
                _ if need => Err(at(lon, format!("'{lon}' or '{lat}' is null"))),
                _ => Ok(None),
            }
        };
        let (x, y, from) = match &l.place {
            Place::LonLat => {
                let (x, y) = lonlat(true)?.unwrap_or_default();
                (x, y, l.lonlat.as_ref().map_or("lon", |p| p.0.as_str()))
            }
            Place::Wkb(g) => {
                let a = b.column_by_name(g);
                let bytes = a.and_then(|a| read_bytes(a.as_ref(), i));
                match bytes {
                    None => match lonlat(false)? {
                        Some((x, y)) => (x, y, g.as_str()),
                        None => return Err(at(g, "no geometry (null)".into())),
                    },
                    Some(bytes) => {
                        let shape = wkb::read(bytes).map_err(|m| at(g, format!("bad WKB: {m}")))?;
                        match shape {
                            wkb::Shape::Point(Some((x, y))) => (x, y, g.as_str()),
                            wkb::Shape::Point(None) => {
                                return Err(at(g, "the point is empty".into()))
                            }
                            wkb::Shape::Other(t) => {
                                return Err(at(
                                    g,
                                    format!(
                                        "a {t}; only Point, Polygon and MultiPolygon \
                                         geometries give a place"
                                    ),
                                ))
                            }
                            area => match lonlat(false)? {
                                Some((x, y)) => (x, y, g.as_str()),
                                None => match area.area_centre() {
                                    Some((x, y)) => (x, y, g.as_str()),
                                    None => {
                                        return Err(at(g, "the polygon has no vertices".into()))
                                    }
                                },
                            },
                        }
                    }
                }
            }
        };
        if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
            return Err(at(
                from,
                format!(
                    "longitude {x}, latitude {y} is not a place in degrees (longitude in \
                     [-180, 180], latitude in [-90, 90]); is the geometry in a projected CRS?"
                ),
            ));
        }
        Point::new(y, x).map_err(|e| at(from, e.to_string()))
    }
}

fn read_vector(a: &dyn Array, i: usize, out: &mut Vec<f64>) -> Result<(), String> {
    out.clear();
    if a.is_null(i) {
        return Err("no vector (null)".into());
    }
    let (values, start, len) = match a.data_type() {
        DataType::FixedSizeList(..) => {
            let l = a.as_fixed_size_list();
            (
                l.values(),
                l.value_offset(i) as usize,
                l.value_length() as usize,
            )
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            let o = l.value_offsets();
            (l.values(), o[i] as usize, (o[i + 1] - o[i]) as usize)
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            let o = l.value_offsets();
            (l.values(), o[i] as usize, (o[i + 1] - o[i]) as usize)
        }
        t => return Err(format!("type {t} is not a list of floats")),
    };
    if values.null_count() > 0 {
        if let Some(j) = (start..start + len).find(|&j| values.is_null(j)) {
            return Err(format!("value {} of the vector is null", j - start));
        }
    }
    let range = start..start + len;
    match values.data_type() {
        DataType::Float16 => out.extend(
            values.as_primitive::<Float16Type>().values()[range]
                .iter()
                .map(|x| f64::from(x.to_f32())),
        ),
        DataType::Float32 => out.extend(
            values.as_primitive::<Float32Type>().values()[range]
                .iter()
                .map(|&x| f64::from(x)),
        ),
        DataType::Float64 => {
            out.extend_from_slice(&values.as_primitive::<Float64Type>().values()[range])
        }
        t => return Err(format!("a list of {t}, not of floats")),
    }
    Ok(())
}

fn read_id(a: &dyn Array, i: usize) -> Result<u64, String> {
    if a.is_null(i) {
        return Err("no id (null)".into());
    }
    let v: i128 = match a.data_type() {
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).into(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt16 => a.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        t => return Err(format!("type {t} is not an integer")),
    };
    u64::try_from(v).map_err(|_| format!("id {v} is negative (ids are 0..=2^64-1)"))
}

fn read_time(a: &dyn Array, i: usize) -> Result<Option<i64>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    let per_second = |v: i64, n: i64| v.div_euclid(n);
    Ok(Some(match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            per_second(a.as_primitive::<TimestampMillisecondType>().value(i), 1_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => per_second(
            a.as_primitive::<TimestampMicrosecondType>().value(i),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => per_second(
            a.as_primitive::<TimestampNanosecondType>().value(i),
            1_000_000_000,
        ),
        DataType::Date32 => i64::from(a.as_primitive::<Date32Type>().value(i)) * 86_400,
        DataType::Date64 => per_second(a.as_primitive::<Date64Type>().value(i), 1_000),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        t => {
            return Err(format!(
                "type {t} is not a timestamp, a date or unix seconds"
            ))
        }
    }))
}

fn read_text(a: &dyn Array, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        _ => return None,
    })
}

fn read_bytes(a: &dyn Array, i: usize) -> Option<&[u8]> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Binary => Some(a.as_binary::<i32>().value(i)),
        DataType::LargeBinary => Some(a.as_binary::<i64>().value(i)),
        DataType::BinaryView => Some(a.as_binary_view().value(i)),
        _ => None,
    }
}

fn read_float(a: &dyn Array, i: usize) -> Result<Option<f64>, String> {
    if a.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i),
        DataType::Float32 => a.as_primitive::<Float32Type>().value(i).into(),
        t => return Err(format!("type {t} is not a float")),
    }))
}

/// The check of the `geo` metadata, for the fuzz target: `Ok` or the message.
#[cfg(feature = "testing")]
pub fn check_geo_text(text: &str) -> Result<(), String> {
    super::meta::check_geo(text).map(|_| ())
}
