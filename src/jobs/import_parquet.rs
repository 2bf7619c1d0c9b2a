//! Importing a (Geo)Parquet file: `sat2cap export`'s own, which imports back bit for bit
//! (vectors, points, times, payloads, ids and the collection's properties), or another
//! tool's with a compatible schema (docs/IO.md, "GeoParquet").
//!
//! The same structure as the `.npy` + CSV import: every row is read and checked first (one
//! pass over the file, a batch of rows at a time), then read again and written, spilled
//! every `batch` rows and published by one commit.
//!
//! Vectors: a vector whose every value is exactly an fp16 value (a float16 column, or a
//! float32 export) is added as fp16 ([`Db::add_f16`](crate::Db::add_f16)), which keeps it
//! bit for bit when it has unit length within fp16 rounding; any other is normalised in f64
//! and rounded to fp16 as `add` does (float64 columns are normalised in f64 before they are
//! narrowed).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::f16;

use super::import::{finish, first_indexes, ImportOptions, ImportReport};
use super::{JobError, ModelFingerprint, ParquetColumns, MODEL_PROPERTY};
use crate::io::geoparquet::read::{Row, Source};
use crate::io::geoparquet::GeoParquetError;
use crate::storage::{check_item, check_item_f16, MAX_DIM};
use crate::{Db, Item, NewItem, OpenOptions, Point, Progress, Unit, WriteError};

fn job(e: GeoParquetError) -> JobError {
    if e.input {
        JobError::Input(e.message)
    } else {
        JobError::Runtime(e.message)
    }
}

/// A row's vector, ready for the writer.
enum Vector {
    /// Every value is an fp16 value: added as fp16.
    F16(Vec<f16>),
    /// Added as f32 (normalised by the writer).
    F32(Vec<f32>),
}

/// The vector of `values`, or the index and value of a component that is not finite.
fn vector_of(values: &[f64], normalise_first: bool) -> Result<Vector, (usize, f64)> {
    if let Some(i) = values.iter().position(|x| !x.is_finite()) {
        return Err((i, values[i]));
    }
    if values.iter().all(|&x| f16::from_f64(x).to_f64() == x) {
        return Ok(Vector::F16(
            values.iter().map(|&x| f16::from_f64(x)).collect(),
        ));
    }
    if normalise_first {
        // Scaled by the largest magnitude first, so that no sum of squares overflows.
        let max = values.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if max > 0.0 {
            let norm = max * values.iter().map(|x| (x / max).powi(2)).sum::<f64>().sqrt();
            return Ok(Vector::F32(
                values.iter().map(|x| (x / norm) as f32).collect(),
            ));
        }
    }
    Ok(Vector::F32(values.iter().map(|&x| x as f32).collect()))
}

/// Adds (or checks, when `db` is `None`) one row.
fn put(
    db: Option<(&mut Db, &str)>,
    dim: usize,
    row: &Row,
    point: Point,
    vector: &Vector,
) -> Result<(), WriteError> {
    let payload = row.payload.as_deref();
    match vector {
        Vector::F16(v) => {
            let item = Item {
                id: row.id,
                vector: v,
                point,
                time: row.time,
                payload,
            };
            match db {
                Some((db, c)) => db.add_f16(c, &item),
                None => check_item_f16(dim, &item),
            }
        }
        Vector::F32(v) => {
            let item = NewItem {
                id: row.id,
                vector: v,
                point,
                time: row.time,
                payload,
            };
            match db {
                Some((db, c)) => db.add(c, item),
                None => check_item(dim, &item),
            }
        }
    }
}

/// The row's place (the reader gives every row one).
fn place(src: &Source, row: &Row) -> Result<Point, JobError> {
    row.point
        .ok_or_else(|| job(src.err(format!("row {}: no place", row.index))))
}

/// The one-line message of a row's error, naming the column it is about.
fn row_error(src: &Source, row: &Row, e: WriteError, dim: usize) -> JobError {
    let cols = src.columns();
    let (column, what) = match e {
        WriteError::PayloadTooLarge { .. } => (cols.payload.clone(), e.to_string()),
        WriteError::ReservedTime => (cols.time.clone(), e.to_string()),
        WriteError::WrongDimension { got, .. } => (
            Some(src.vector_column().to_string()),
            format!("{got} values, expected {dim} (the width of the vectors)"),
        ),
        e => (Some(src.vector_column().to_string()), e.to_string()),
    };
    let at = match column {
        Some(c) => format!("column '{c}', row {}", row.index),
        None => format!("row {}", row.index),
    };
    JobError::input(format!("{}: {at}: {what}", src.path().display()))
}

/// Imports the rows of the Parquet file `path` (see the module's documentation).
pub fn import_parquet(
    db_path: &Path,
    opts: &ImportOptions,
    path: &Path,
    columns: &ParquetColumns,
    progress: &dyn Progress,
) -> Result<ImportReport, JobError> {
    let src = Source::open(path, columns).map_err(job)?;
    let rows = src.rows;
    let dim = src
        .dim
        .or(src.meta.as_ref().map(|m| m.dim as usize))
        .ok_or_else(|| {
            src.err(format!(
                "no rows, and column '{}' does not say the vectors' dimension: nothing to \
                 import",
                src.vector_column()
            ))
        })
        .map_err(job)?;
    if dim == 0 || dim > MAX_DIM {
        return Err(job(src.err(format!(
            "column '{}' holds vectors of {dim} values; the dimension must be in 1..={MAX_DIM}",
            src.vector_column()
        ))));
    }
    let properties = properties_of(&src, dim)?;
    let ids = check_rows(&src, dim, progress)?;
    let created = !db_path.join(crate::storage::MANIFEST_FILE).exists();
    let replaced = super::with_database(
        db_path,
        OpenOptions::create_if_missing().indexes(first_indexes(opts, rows)),
        |db| write_rows(db, opts, &src, dim, &ids, &properties, progress),
    )?;
    let mut report = finish(db_path, opts, rows, dim, replaced, created, progress)?;
    report.ignored_columns = src.ignored().to_vec();
    report.ids_are_row_numbers = src.ids_are_rows();
    report.model = properties
        .get(MODEL_PROPERTY)
        .and_then(|m| serde_json::from_str::<ModelFingerprint>(m).ok())
        .map(|m| m.describe());
    Ok(report)
}

/// The collection properties the file's `sat2cap` metadata carries, its model checked
/// against the vectors' dimension.
fn properties_of(src: &Source, dim: usize) -> Result<BTreeMap<String, String>, JobError> {
    let Some(meta) = &src.meta else {
        return Ok(BTreeMap::new());
    };
    if let Some(m) = meta.properties.get(MODEL_PROPERTY) {
        let fp: ModelFingerprint = serde_json::from_str(m).map_err(|e| {
            job(src.err(format!(
                "metadata 'sat2cap': property {MODEL_PROPERTY} is not a model ({e})"
            )))
        })?;
        if fp.dim as usize != dim {
            return Err(job(src.err(format!(
                "column '{}' holds {dim} values a row but the model in the metadata ({}) \
                 makes {} (wrong embedding width)",
                src.vector_column(),
                fp.describe(),
                fp.dim
            ))));
        }
    }
    Ok(meta.properties.clone())
}

/// Reads and checks every row; returns each id's row.
fn check_rows(
    src: &Source,
    dim: usize,
    progress: &dyn Progress,
) -> Result<HashMap<u64, u64>, JobError> {
    let mut ids: HashMap<u64, u64> = HashMap::new();
    let mut rows = src.rows().map_err(job)?;
    let mut row = Row::default();
    progress.begin("check rows", Some(src.rows), Unit::Rows);
    let mut n = 0u64;
    while rows.next_row(&mut row).map_err(job)? {
        let v = vector_of(&row.vector, src.is_f64()).map_err(|(j, x)| {
            job(src.err(format!(
                "column '{}', row {}: component {j} is {x} (vectors must be finite)",
                src.vector_column(),
                row.index
            )))
        })?;
        put(None, dim, &row, place(src, &row)?, &v).map_err(|e| row_error(src, &row, e, dim))?;
        if let Some(first) = ids.insert(row.id, row.index) {
            let c = src.columns().id.clone().unwrap_or_else(|| "id".into());
            return Err(job(src.err(format!(
                "column '{c}': id {} appears on row {first} and on row {} (ids must be \
                 unique)",
                row.id, row.index
            ))));
        }
        n += 1;
        if n.is_multiple_of(4096) {
            progress.advance(4096);
        }
    }
    progress.end();
    if n != src.rows {
        return Err(job(
            src.err(format!("{n} rows read, the footer says {}", src.rows))
        ));
    }
    Ok(ids)
}

/// Creates the collection (with the file's properties) if needed, checks the ids already
/// stored and the model, writes every row (spilling every `batch`) and commits once.
/// Returns the rows that replaced stored items.
fn write_rows(
    db: &mut Db,
    opts: &ImportOptions,
    src: &Source,
    dim: usize,
    ids: &HashMap<u64, u64>,
    properties: &BTreeMap<String, String>,
    progress: &dyn Progress,
) -> Result<u64, JobError> {
    let coll = &opts.collection;
    let mut replaced = 0;
    let file = src.path().display();
    match db.snapshot().collection(coll) {
        Ok(c) if c.dim() != dim => {
            return Err(JobError::input(format!(
                "collection '{coll}' has dimension {}; column '{}' of {file} holds vectors of \
                 {dim} values",
                c.dim(),
                src.vector_column()
            )))
        }
        Ok(c) => {
            let theirs = ModelFingerprint::of(&c)?;
            let ours = properties
                .get(MODEL_PROPERTY)
                .and_then(|m| serde_json::from_str::<ModelFingerprint>(m).ok());
            if let (Some(t), Some(o)) = (&theirs, &ours) {
                if t != o {
                    return Err(JobError::ModelMismatch {
                        message: format!(
                            "{file} holds vectors of {}; collection '{coll}' holds vectors \
                             of {} (import into another collection; nothing was imported)",
                            o.describe(),
                            t.describe()
                        ),
                        forceable: false,
                    });
                }
            }
            let mut stored: Vec<(u64, u64)> = ids
                .iter()
                .filter(|(id, _)| c.contains(**id))
                .map(|(&id, &row)| (row, id))
                .collect();
            stored.sort_unstable();
            if let Some(&(row, id)) = stored.first() {
                if !opts.upsert {
                    return Err(JobError::input(format!(
                        "{file}: row {row}: id {id} is already in collection '{coll}' \
                         (--upsert replaces such items; nothing was imported)"
                    )));
                }
            }
            replaced = stored.len() as u64;
        }
        Err(_) => {
            db.create_collection(coll, dim).map_err(JobError::input)?;
            for (k, v) in properties {
                db.set_property(coll, k, Some(v)).map_err(|e| {
                    JobError::input(format!("{file}: metadata 'sat2cap': property '{k}': {e}"))
                })?;
            }
        }
    }
    let mut rows = src.rows().map_err(job)?;
    let mut row = Row::default();
    let changed = "(the file changed during the import; nothing was imported)";
    let (mut held, mut n) = (0, 0u64);
    progress.begin("import", Some(src.rows), Unit::Rows);
    while rows.next_row(&mut row).map_err(job)? {
        let v = vector_of(&row.vector, src.is_f64()).map_err(|(j, _)| {
            JobError::input(format!(
                "{file}: row {}: component {j} is not finite {changed}",
                row.index
            ))
        })?;
        put(Some((db, coll)), dim, &row, place(src, &row)?, &v)
            .map_err(|e| JobError::input(format!("{file}: row {}: {e} {changed}", row.index)))?;
        held += 1;
        n += 1;
        if held == opts.batch {
            held = 0;
            db.spill().map_err(|e| {
                JobError::runtime(format!(
                    "writing rows up to row {}: {e}; nothing was imported",
                    row.index
                ))
            })?;
        }
        progress.advance(1);
    }
    if n != src.rows {
        return Err(JobError::input(format!(
            "{file}: {n} rows read, {} checked {changed}",
            src.rows
        )));
    }
    db.commit()
        .map_err(|e| JobError::runtime(format!("commit failed: {e}; nothing was imported")))?;
    progress.end();
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vector the engine stores is already in stored form: read back as f16 (or as its
    /// exact f32 widening) it is added unchanged, even where normalising it again would move
    /// a component by one fp16 step.
    #[test]
    fn stored_vectors_add_back_bit_for_bit() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let dims = [2usize, 3, 5, 8, 16, 64, 512];
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(dir.path().join("db"), OpenOptions::create_if_missing()).unwrap();
        for d in dims {
            db.create_collection(&format!("d{d}"), d).unwrap();
        }
        let (mut want, mut moved_by_renormalising) = (Vec::new(), 0);
        for id in 0..3000u64 {
            let dim = dims[id as usize % dims.len()];
            // Heavy tails: one component often dominates.
            let v: Vec<f32> = (0..dim)
                .map(|_| (rnd() * (rnd() * 12.0).exp()) as f32)
                .collect();
            let stored = stored_form(&v);
            let wide: Vec<f64> = stored.iter().map(|x| f64::from(x.to_f32())).collect();
            if stored_form(&wide.iter().map(|&x| x as f32).collect::<Vec<_>>()) != stored {
                moved_by_renormalising += 1;
            }
            let Ok(Vector::F16(h)) = vector_of(&wide, false) else {
                panic!("a stored vector is not taken as fp16");
            };
            let item = Item {
                id,
                vector: &h,
                point: Point::new(0.0, 0.0).unwrap(),
                time: None,
                payload: None,
            };
            db.add_f16(&format!("d{dim}"), &item).unwrap();
            want.push((dim, stored));
        }
        db.commit().unwrap();
        let snap = db.snapshot();
        for (id, (dim, stored)) in want.iter().enumerate() {
            let got = snap.get(&format!("d{dim}"), id as u64).unwrap().unwrap();
            assert_eq!(got.vector, &stored[..], "id {id}");
        }
        // The reason for `add_f16`: plain re-normalising does move some.
        assert!(moved_by_renormalising > 0);
    }

    /// What `add` stores for `v`.
    fn stored_form(v: &[f32]) -> Vec<f16> {
        let norm = crate::index::norm_f64(v);
        v.iter()
            .map(|&x| f16::from_f64(f64::from(x) / norm))
            .collect()
    }
}
