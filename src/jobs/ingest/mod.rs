//! Ingest jobs: overhead tiles, GeoTIFF scenes, ground-level photos, a caption bank. Each
//! encodes its inputs in batches and commits ONCE at the end, so an interrupted or failed
//! job leaves the database as it was. A bad input (an unreadable image, a bad CSV row) fails the job,
//! naming it, unless [`IngestOptions::skip_bad`] is set: then it is reported in
//! [`IngestReport::failed`] and the rest go on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod captions;
mod ground;
mod raster;
mod tiles;

pub use captions::{ingest_captions, read_captions};
pub use ground::ingest_ground;
pub(crate) use raster::chip_image;
pub use raster::{ingest_raster, RasterOptions, DEFAULT_CHIP_PX};
pub use tiles::{ingest_tiles, TileOptions, TilePart};

use super::fingerprint::{
    check_ingest, EncoderKind, IngestModelCheck, ModelFingerprint, MODEL_PROPERTY,
};
use super::model::{Embedder, Prepared};
use super::tiles::{scan_tiles, tile_key, TilePayload};
use super::JobError;
use crate::{Db, NewItem, Point, Progress, Unit};

/// What an ingest did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestReport {
    /// New items added (committed).
    pub added: usize,
    /// Items whose key was already present, re-encoded and replaced (`--replace`).
    pub replaced: usize,
    /// Items whose key was already in the collection, skipped.
    pub present: usize,
    /// Inputs repeating a key given earlier in the same input, skipped.
    pub repeated: usize,
    /// Inputs that failed: `(what, why)`.
    pub failed: Vec<(String, String)>,
    /// Files skipped, and why (a name that places them nowhere, not a regular file).
    pub skipped: Vec<Failure>,
    /// Ids given to the new items (first..=last), if any.
    pub ids: Option<(u64, u64)>,
    /// The model recorded with the collection.
    pub model: Option<ModelFingerprint>,
}

/// An input that failed: `(what, why)`.
pub type Failure = (String, String);

/// Files encoded per batch: the encoders' largest batch (one model call each).
const BATCH: usize = 32;

/// How an ingest treats keys already present and a collection made by another model.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Collection.
    pub collection: String,
    /// Re-encode and replace items whose key is already present (default: skip them and
    /// count them in [`IngestReport::present`]).
    pub replace: bool,
    /// Add to a collection made by a different model (or recording none) and record this
    /// model for it; only for weights known to be the same model (e.g. re-saved as f16).
    pub force_model: bool,
    /// Skip bad inputs (reporting each in [`IngestReport::failed`]) instead of failing the
    /// job at the first one.
    pub skip_bad: bool,
    /// Ground photos: allow CSV paths that lead outside the photo folder (`../`, absolute
    /// paths, symlinks out of it); refused by default.
    pub allow_outside: bool,
}

impl IngestOptions {
    /// Records a bad input: an error (the job fails, nothing committed) unless
    /// `skip_bad`, then it goes into `report.failed`.
    fn bad(&self, report: &mut IngestReport, what: String, why: String) -> Result<(), JobError> {
        if self.skip_bad {
            report.failed.push((what, why));
            Ok(())
        } else {
            Err(JobError::input(format!(
                "{what}: {why} (nothing was added; --skip-bad skips bad inputs and reports them)"
            )))
        }
    }
}

/// The collection an ingest writes to: its next free id, the ids of its keys, and whether it
/// existed before.
struct Target {
    next_id: u64,
    /// The collection holds `u64::MAX`: no id is free above it.
    exhausted: bool,
    keys: HashMap<String, u64>,
    /// The keys given so far in this run, each with the input that gave it first.
    seen: HashMap<String, String>,
    existed: bool,
    record: bool,
}

/// Where an input goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    New,
    /// New, with this id.
    Given(u64),
    Replace(u64),
}

impl Target {
    /// The slot of the input `what` with `key`, or `None` to skip it (present without
    /// `replace`, or a repeat within this run: counted, and said in the report's `skipped`
    /// with the input that gave the key first).
    fn slot(
        &mut self,
        key: &str,
        what: &str,
        replace: bool,
        report: &mut IngestReport,
    ) -> Option<Slot> {
        if let Some(first) = self.seen.get(key) {
            report.repeated += 1;
            let why = if first == what {
                "given earlier in the same input".to_string()
            } else {
                format!("same key '{key}' as {first}")
            };
            report.skipped.push((what.to_string(), why));
            return None;
        }
        self.seen.insert(key.to_string(), what.to_string());
        match self.keys.get(key) {
            Some(&id) if replace => Some(Slot::Replace(id)),
            Some(_) => {
                report.present += 1;
                None
            }
            None => Some(Slot::New),
        }
    }

    /// Adds an item in `slot`.
    fn add(
        &mut self,
        db: &mut Db,
        coll: &str,
        slot: Slot,
        item: NewItem<'_>,
        report: &mut IngestReport,
    ) -> Result<(), JobError> {
        let id = match slot {
            Slot::New if self.exhausted => {
                let why = match report.ids {
                    // Every id above the highest held was given to this run's new items.
                    Some((first, _)) => format!(
                        "ids {first}..={} went to this ingest's first {} new items and none \
                         is left for more",
                        u64::MAX,
                        report.added
                    ),
                    None => format!("it holds id {}, the highest there is", u64::MAX),
                };
                return Err(JobError::runtime(format!(
                    "collection '{coll}' has no new id left: {why} (nothing was added)"
                )));
            }
            Slot::New => self.next_id,
            Slot::Given(id) | Slot::Replace(id) => id,
        };
        db.add(coll, NewItem { id, ..item })
            .map_err(JobError::runtime)?;
        match slot {
            Slot::New => {
                match self.next_id.checked_add(1) {
                    Some(n) => self.next_id = n,
                    None => self.exhausted = true,
                }
                report.added += 1;
                report.ids = Some(report.ids.map_or((id, id), |(a, _)| (a, id)));
            }
            Slot::Given(_) => {
                report.added += 1;
                report.ids = Some(report.ids.map_or((id, id), |(a, b)| (a.min(id), b.max(id))));
            }
            Slot::Replace(_) => report.replaced += 1,
        }
        Ok(())
    }
}

/// Opens (or creates) `opts.collection` for `model`'s vectors: checks the dimension and the
/// model (see [`check_ingest`]) and reads the keys of the items present (`key_of` a payload).
fn prepare(
    db: &mut Db,
    opts: &IngestOptions,
    model: &ModelFingerprint,
    key_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Target, JobError> {
    let coll = &opts.collection;
    let snap = db.snapshot();
    let mut t = Target {
        next_id: 0,
        exhausted: false,
        keys: HashMap::new(),
        seen: HashMap::new(),
        existed: true,
        record: true,
    };
    match snap.collection(coll) {
        Ok(v) => {
            if v.dim() != model.dim as usize {
                return Err(JobError::input(format!(
                    "collection '{coll}' has dimension {}, the encoder gives {}",
                    v.dim(),
                    model.dim
                )));
            }
            t.record = check_ingest(&v, model, opts.force_model)? == IngestModelCheck::Record;
            for item in v.iter() {
                let item = item.map_err(JobError::runtime)?;
                match item.id.checked_add(1) {
                    Some(n) => t.next_id = t.next_id.max(n),
                    None => t.exhausted = true,
                }
                if let Some(k) = item.payload.and_then(key_of) {
                    t.keys.insert(k, item.id);
                }
            }
        }
        Err(_) => {
            db.create_collection(coll, model.dim as usize)
                .map_err(JobError::runtime)?;
            t.existed = false;
        }
    }
    if t.record {
        db.set_property(coll, MODEL_PROPERTY, Some(&model.to_json()))
            .map_err(JobError::runtime)?;
    }
    Ok(t)
}

/// Commits once at the end: when something was added or replaced, or when an existing
/// collection gets its model recorded. A new collection nothing could be added to is not
/// created.
fn commit(
    db: &mut Db,
    t: &Target,
    report: &mut IngestReport,
    model: &ModelFingerprint,
) -> Result<(), JobError> {
    if report.added + report.replaced > 0 || (t.existed && t.record) {
        db.commit()
            .map_err(|e| JobError::runtime(format!("commit failed: {e}")))?;
    }
    report.model = Some(model.clone());
    Ok(())
}

/// A payload's stored key (`"key"`), else the value of `fallback` passed to `derive`.
fn payload_key(
    payload: &str,
    fallback: &str,
    derive: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    if let Some(k) = v.get("key").and_then(|k| k.as_str()) {
        return Some(k.to_string());
    }
    derive(v.get(fallback)?.as_str()?)
}

/// An image file an ingest encodes: where it is, its key, how the report names it (when its
/// key repeats, and when it fails to encode), and its row's location, time and payload.
struct FileRow {
    /// The id it must have (`None`: the next free one).
    id: Option<u64>,
    path: PathBuf,
    key: String,
    name: String,
    failed: String,
    point: Point,
    time: Option<i64>,
    payload: String,
}

/// Encodes the files of `files` that `target` takes (see [`Target::slot`]) a batch at a time
/// with the overhead (`overhead`) or the ground encoder, adds a row for each file that
/// encodes and reports each that does not, then commits once.
#[allow(clippy::too_many_arguments)]
fn ingest_files(
    db: &mut Db,
    enc: &dyn Embedder,
    opts: &IngestOptions,
    model: &ModelFingerprint,
    mut target: Target,
    files: Vec<FileRow>,
    overhead: bool,
    report: &mut IngestReport,
    progress: &dyn Progress,
) -> Result<(), JobError> {
    let mut todo = Vec::new();
    for f in files {
        if let Some(slot) = target.slot(&f.key, &f.name, opts.replace, report) {
            let slot = match (slot, f.id) {
                (Slot::New, Some(id)) => Slot::Given(id),
                (s, _) => s,
            };
            todo.push((f, slot));
        }
    }
    let label = if overhead {
        "encode tiles"
    } else {
        "encode photos"
    };
    progress.begin(label, Some(todo.len() as u64), Unit::Items);
    encode_pipelined(
        enc,
        &todo,
        |(f, _)| f.path.as_path(),
        overhead,
        BATCH,
        |chunk, results| {
            for ((f, slot), r) in chunk.iter().zip(results) {
                match r {
                    Ok(v) => {
                        let item = NewItem {
                            id: 0,
                            vector: &v,
                            point: f.point,
                            time: f.time,
                            payload: Some(&f.payload),
                        };
                        target.add(db, &opts.collection, *slot, item, report)?;
                    }
                    Err(e) => opts.bad(report, f.failed.clone(), e)?,
                }
            }
            progress.advance(chunk.len() as u64);
            Ok(())
        },
    )?;
    progress.end();
    commit(db, &target, report, model)
}

/// Reads each file whole; only regular files (a FIFO or a device would block or never end).
fn read_all(paths: &[PathBuf]) -> Vec<Result<Vec<u8>, String>> {
    paths
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) if !m.is_file() => Err("not a regular file".to_string()),
            Ok(_) => crate::io::input::read_whole(p, crate::io::input::MAX_WHOLE_FILE)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

/// Batches in flight between the worker that reads and prepares files and the model: the
/// worker stays at most this many batches ahead (the pixel tensors of a batch of 32 are
/// about 19 MB).
const AHEAD: usize = 2;

/// Encodes the files of `items` (overhead tiles or ground photos) a batch of `batch` at a
/// time and hands each batch's results, one per item in order, to `each`. A worker thread
/// reads and prepares (decodes, resizes) the next batches while the model encodes this
/// one (see [`encode_stream`]).
fn encode_pipelined<T: Sync>(
    enc: &dyn Embedder,
    items: &[T],
    path: impl Fn(&T) -> &Path + Sync,
    overhead: bool,
    batch: usize,
    mut each: impl FnMut(&[T], Vec<Result<Vec<f32>, String>>) -> Result<(), JobError>,
) -> Result<(), JobError> {
    let batch = batch.max(1);
    let produce = |send: &mut dyn FnMut(Ready<usize>) -> bool| {
        for (c, chunk) in items.chunks(batch).enumerate() {
            let paths: Vec<PathBuf> = chunk.iter().map(|t| path(t).to_path_buf()).collect();
            let bytes = read_all(&paths);
            let ok: Vec<&[u8]> = bytes
                .iter()
                .filter_map(|b| b.as_ref().ok().map(Vec::as_slice))
                .collect();
            let mut prepared = enc.prepare(&ok, overhead).into_iter();
            let ready = bytes
                .iter()
                .map(|b| match b {
                    Err(e) => Err(e.clone()),
                    Ok(_) => match prepared.next() {
                        Some(Ok(p)) => Ok(p),
                        Some(Err(e)) => Err(strip_index(&e.to_string())),
                        None => Err("not prepared".into()),
                    },
                })
                .collect();
            let first = c * batch;
            if !send(((first..first + chunk.len()).collect(), ready)) {
                break;
            }
        }
        Ok(())
    };
    encode_stream(enc, overhead, produce, |idx, results| {
        let first = idx.first().copied().unwrap_or(0);
        each(&items[first..first + idx.len()], results)
    })
}

/// A batch made ready by the worker: its items and what [`Embedder::prepare`] made of each.
type Ready<T> = (Vec<T>, Vec<Result<Prepared, String>>);

/// Encodes what `produce` makes ready, batch by batch, handing each batch's results (one
/// per item, in order) to `each`. `produce` runs on a worker thread and passes each batch
/// to the function it is given, which returns false once the model side has stopped; the
/// worker stays at most [`AHEAD`] batches ahead of the model (back-pressure), and an error
/// from either side stops both.
pub(crate) fn encode_stream<T: Send>(
    enc: &dyn Embedder,
    overhead: bool,
    produce: impl FnOnce(&mut dyn FnMut(Ready<T>) -> bool) -> Result<(), JobError> + Send,
    mut each: impl FnMut(&[T], Vec<Result<Vec<f32>, String>>) -> Result<(), JobError>,
) -> Result<(), JobError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Ready<T>, JobError>>(AHEAD);
        scope.spawn(move || {
            let mut send = |r: Ready<T>| tx.send(Ok(r)).is_ok();
            if let Err(e) = produce(&mut send) {
                let _ = tx.send(Err(e));
            }
        });
        // The channel closes when the worker is done.
        while let Ok(msg) = rx.recv() {
            let (items, ready) = msg?;
            let mut ok: Vec<Prepared> = Vec::with_capacity(ready.len());
            let slots: Vec<Result<(), String>> =
                ready.into_iter().map(|r| r.map(|p| ok.push(p))).collect();
            let mut encoded = enc.embed_prepared(&ok, overhead).into_iter();
            let results = slots
                .into_iter()
                .map(|r| match r {
                    Err(e) => Err(e),
                    Ok(()) => match encoded.next() {
                        Some(Ok(v)) => Ok(v),
                        Some(Err(e)) => Err(strip_index(&e.to_string())),
                        None => Err("not encoded".into()),
                    },
                })
                .collect();
            each(&items, results)?;
        }
        Ok(())
    })
}

/// "image 3: bad" -> "bad" (the batch index means nothing to the user).
pub(crate) fn strip_index(m: &str) -> String {
    match m.split_once(": ") {
        Some((h, rest)) if h.starts_with("image ") => rest.to_string(),
        _ => m.to_string(),
    }
}
