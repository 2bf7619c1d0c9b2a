//! Ingest jobs: overhead tiles, ground-level photos, a caption bank. Each encodes its inputs
//! in batches and commits ONCE at the end, so an interrupted or failed job leaves the
//! database as it was. A bad input (an unreadable image, a bad CSV row) fails the job,
//! naming it, unless [`IngestOptions::skip_bad`] is set: then it is reported in
//! [`IngestReport::failed`] and the rest go on.

use std::path::{Path, PathBuf};

use std::collections::{HashMap, HashSet};

use super::fingerprint::{
    check_ingest, EncoderKind, IngestModelCheck, ModelFingerprint, MODEL_PROPERTY,
};
use super::model::Embedder;
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

/// Files encoded per batch (progress granularity).
const BATCH: usize = 16;

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
    seen: HashSet<String>,
    existed: bool,
    record: bool,
}

/// Where an input goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    New,
    Replace(u64),
}

impl Target {
    /// The slot of an input with `key`, or `None` to skip it (present without `replace`, or a
    /// repeat within this run).
    fn slot(&mut self, key: &str, replace: bool, report: &mut IngestReport) -> Option<Slot> {
        if !self.seen.insert(key.to_string()) {
            report.repeated += 1;
            return None;
        }
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
                return Err(JobError::runtime(format!(
                    "collection '{coll}' holds id {}: no new id is left",
                    u64::MAX
                )))
            }
            Slot::New => self.next_id,
            Slot::Replace(id) => id,
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
        seen: HashSet::new(),
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

/// Encodes files (overhead or ground), one result per file.
fn encode_files(
    enc: &dyn Embedder,
    paths: &[PathBuf],
    overhead: bool,
) -> Vec<Result<Vec<f32>, String>> {
    let bytes = read_all(paths);
    let ok: Vec<&[u8]> = bytes
        .iter()
        .filter_map(|b| b.as_ref().ok().map(Vec::as_slice))
        .collect();
    let mut encoded = if overhead {
        enc.embed_overhead(&ok, None)
    } else {
        enc.embed_ground(&ok)
    }
    .into_iter();
    bytes
        .into_iter()
        .map(|b| match b {
            Err(e) => Err(e),
            Ok(_) => match encoded.next() {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(strip_index(&e.to_string())),
                None => Err("not encoded".into()),
            },
        })
        .collect()
}

/// "image 3: bad" -> "bad" (the batch index means nothing to the user).
pub(crate) fn strip_index(m: &str) -> String {
    match m.split_once(": ") {
        Some((h, rest)) if h.starts_with("image ") => rest.to_string(),
        _ => m.to_string(),
    }
}

/// Options of [`ingest_tiles`].
#[derive(Debug, Clone, Default)]
pub struct TileOptions {
    /// Collection (default `overhead`), `--replace`, `--force-model`.
    pub common: IngestOptions,
    /// Capture time stored with every tile (unix seconds).
    pub time: Option<i64>,
    /// Footprint side for `{lat}_{lon}` names (inferred if `None`).
    pub tile_deg: Option<f64>,
}

/// Ingests the overhead tiles under `dir`, named `{lat}_{lon}.jpg|png` (the footprint from
/// `tile_deg` or the smallest spacing between tiles) or laid out as an XYZ folder
/// `z/x/y.jpg|png` (web-mercator bounds). The stored vector is the Sat2Cap embedding WITHOUT
/// metadata; maps at a date re-encode with the dynamic encoder. A tile's key is its path
/// under `dir` without extension: tiles already present are skipped (or replaced with
/// `replace`).
pub fn ingest_tiles(
    db: &mut Db,
    enc: &dyn Embedder,
    dir: &Path,
    opts: &TileOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, JobError> {
    // Absolute paths in payloads, so `--mosaic` finds the tiles from any working folder.
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (tiles, skipped) = scan_tiles(dir, opts.tile_deg)?;
    let mut report = IngestReport {
        skipped: skipped
            .iter()
            .map(|(p, why)| (p.display().to_string(), why.to_string()))
            .collect(),
        ..IngestReport::default()
    };
    if tiles.is_empty() {
        let mut seen: Vec<String> = report
            .skipped
            .iter()
            .take(5)
            .map(|(p, why)| format!("{p}: {why}"))
            .collect();
        if report.skipped.len() > 5 {
            seen.push(format!("and {} more", report.skipped.len() - 5));
        }
        let listed = if seen.is_empty() {
            String::new()
        } else {
            format!("; skipped: {}", seen.join("; "))
        };
        return Err(JobError::input(format!(
            "no tiles in {} (expected {{lat}}_{{lon}}.jpg|png or z/x/y.jpg|png){listed}",
            dir.display()
        )));
    }
    let coll = &opts.common.collection;
    let model = enc.fingerprint(EncoderKind::Sat2capOverhead);
    let derive = |p: &str| {
        Path::new(p)
            .strip_prefix(dir)
            .ok()
            .map(|_| tile_key(dir, Path::new(p)))
    };
    let mut target = prepare(db, &opts.common, &model, &|p| {
        payload_key(p, "path", &derive)
    })?;
    let mut todo = Vec::new();
    for t in &tiles {
        let key = tile_key(dir, &t.path);
        if let Some(slot) = target.slot(&key, opts.common.replace, &mut report) {
            todo.push((t, key, slot));
        }
    }
    progress.begin("encode tiles", Some(todo.len() as u64), Unit::Items);
    for chunk in todo.chunks(BATCH) {
        let paths: Vec<PathBuf> = chunk.iter().map(|(t, _, _)| t.path.clone()).collect();
        for ((t, key, slot), r) in chunk.iter().zip(encode_files(enc, &paths, true)) {
            match r {
                Ok(v) => {
                    let f = t.footprint;
                    let payload = serde_json::to_string(&TilePayload {
                        path: t.path.display().to_string(),
                        footprint: [f.west, f.south, f.east, f.north],
                        key: Some(key.clone()),
                    })
                    .map_err(JobError::runtime)?;
                    let item = NewItem {
                        id: 0,
                        vector: &v,
                        point: t.center,
                        time: opts.time,
                        payload: Some(&payload),
                    };
                    target.add(db, coll, *slot, item, &mut report)?;
                }
                Err(e) => opts
                    .common
                    .bad(&mut report, t.path.display().to_string(), e)?,
            }
        }
        progress.advance(chunk.len() as u64);
    }
    progress.end();
    commit(db, &target, &mut report, &model)?;
    Ok(report)
}

/// One row of a ground-photo metadata CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundRow {
    /// Image file (relative paths are under the photo folder).
    pub path: PathBuf,
    /// Where it was taken.
    pub point: Point,
    /// When (unix seconds), if given.
    pub time: Option<i64>,
    /// Where it is listed: `FILE line N`.
    pub line: String,
}

/// Reads `path,lat,lon[,datetime]` rows (header required). Bad rows are returned as
/// `(row description, why)`; the good ones go on.
pub fn read_ground_csv(
    csv_path: &Path,
    photo_dir: &Path,
) -> Result<(Vec<GroundRow>, Vec<Failure>), JobError> {
    let mut r = crate::io::text::csv_reader(csv_path)
        .map_err(|e| JobError::input(format!("cannot read {}: {e}", csv_path.display())))?;
    let headers = r
        .headers()
        .map_err(|e| JobError::input(format!("{}: {e}", csv_path.display())))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(cp), Some(clat), Some(clon)) = (col("path"), col("lat"), col("lon")) else {
        return Err(JobError::input(format!(
            "{}: header must name columns path,lat,lon[,datetime]",
            csv_path.display()
        )));
    };
    let cdt = col("datetime");
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for rec in r.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => match e.position() {
                Some(p) => {
                    bad.push((format!("{} line {}", csv_path.display(), p.line()), e.to_string()));
                    continue;
                }
                // An I/O error (or a line over the limit): the rest cannot be read.
                None => {
                    return Err(JobError::input(format!("{}: {e}", csv_path.display())));
                }
            },
        };
        let line = format!(
            "{} line {}",
            csv_path.display(),
            rec.position().map_or(0, |p| p.line())
        );
        let get = |c: usize| rec.get(c).unwrap_or("");
        let parsed = (|| -> Result<GroundRow, String> {
            if let Some(why) = crate::io::text::record_problem(&rec, headers.len()) {
                return Err(why);
            }
            let p = get(cp);
            if p.is_empty() {
                return Err("empty path".into());
            }
            let lat: f64 = get(clat)
                .parse()
                .map_err(|_| format!("bad lat '{}'", get(clat)))?;
            let lon: f64 = get(clon)
                .parse()
                .map_err(|_| format!("bad lon '{}'", get(clon)))?;
            let point = Point::new(lat, lon).map_err(|e| e.to_string())?;
            let time = match cdt.map(get).filter(|s| !s.is_empty()) {
                Some(s) => Some(crate::time::parse(s).map_err(|e| e.to_string())?),
                None => None,
            };
            Ok(GroundRow {
                path: photo_dir.join(p),
                point,
                time,
                line: line.clone(),
            })
        })();
        match parsed {
            Ok(g) => rows.push(g),
            Err(e) => bad.push((line, e)),
        }
    }
    Ok((rows, bad))
}

/// Ingests ground-level photos listed in `meta_csv` (paths relative to `dir`) with CLIP. A
/// photo's key is its path under `dir`: photos already present are skipped (or replaced).
pub fn ingest_ground(
    db: &mut Db,
    enc: &dyn Embedder,
    dir: &Path,
    meta_csv: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, JobError> {
    if !dir.is_dir() {
        return Err(JobError::input(format!(
            "photo folder {} does not exist",
            dir.display()
        )));
    }
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (listed, bad) = read_ground_csv(meta_csv, dir)?;
    let mut report = IngestReport::default();
    for (what, why) in bad {
        opts.bad(&mut report, what, why)?;
    }
    let mut rows = Vec::with_capacity(listed.len());
    for g in listed {
        match crate::io::input::outside(dir, &g.path) {
            Some(why) if !opts.allow_outside => opts.bad(
                &mut report,
                g.line.clone(),
                format!("{why} (--allow-outside allows it)"),
            )?,
            _ => rows.push(g),
        }
    }
    if rows.is_empty() {
        return Err(JobError::input(format!(
            "no usable rows in {} ({} bad)",
            meta_csv.display(),
            report.failed.len()
        )));
    }
    let coll = &opts.collection;
    let model = enc.fingerprint(EncoderKind::ClipImage);
    let derive = |p: &str| Some(photo_key(dir, Path::new(p)));
    let mut target = prepare(db, opts, &model, &|p| payload_key(p, "path", &derive))?;
    let mut todo = Vec::new();
    for g in &rows {
        let key = photo_key(dir, &g.path);
        if let Some(slot) = target.slot(&key, opts.replace, &mut report) {
            todo.push((g, key, slot));
        }
    }
    progress.begin("encode photos", Some(todo.len() as u64), Unit::Items);
    for chunk in todo.chunks(BATCH) {
        let paths: Vec<PathBuf> = chunk.iter().map(|(g, _, _)| g.path.clone()).collect();
        for ((g, key, slot), r) in chunk.iter().zip(encode_files(enc, &paths, false)) {
            match r {
                Ok(v) => {
                    let payload =
                        serde_json::json!({"path": g.path.display().to_string(), "key": key})
                            .to_string();
                    let item = NewItem {
                        id: 0,
                        vector: &v,
                        point: g.point,
                        time: g.time,
                        payload: Some(&payload),
                    };
                    target.add(db, coll, *slot, item, &mut report)?;
                }
                Err(e) => opts.bad(
                    &mut report,
                    format!("{} ({})", g.line, g.path.display()),
                    e,
                )?,
            }
        }
        progress.advance(chunk.len() as u64);
    }
    progress.end();
    commit(db, &target, &mut report, &model)?;
    Ok(report)
}

/// The stable key of a photo: its path under the photo folder, `/`-separated (the path as
/// written in the CSV, normalised), or the whole path when it lies outside the folder.
pub fn photo_key(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let parts: Vec<_> = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if rel.is_absolute() {
        rel.display().to_string()
    } else {
        parts.join("/")
    }
}

/// The longest caption, in bytes (CLIP reads the first 77 tokens of it).
pub const MAX_CAPTION_BYTES: usize = 4096;

/// The captions of a caption-bank file: one per non-empty line, `#` lines are comments (a
/// byte-order mark at the start is dropped). A line that is not UTF-8 or longer than
/// 4096 bytes is an error naming it.
pub fn read_captions(path: &Path) -> Result<Vec<String>, JobError> {
    let input = crate::io::text::open(path)
        .map_err(|e| JobError::input(format!("cannot read {}: {e}", path.display())))?;
    let mut v = Vec::new();
    for (no, line) in crate::io::text::lines(input) {
        let line = line.map_err(|e| JobError::input(format!("{}:{no}: {e}", path.display())))?;
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.len() > MAX_CAPTION_BYTES {
            return Err(JobError::input(format!(
                "{}:{no}: caption of {} bytes, the limit is {MAX_CAPTION_BYTES}",
                path.display(),
                l.len()
            )));
        }
        v.push(l.to_string());
    }
    if v.is_empty() {
        return Err(JobError::input(format!(
            "no captions in {}",
            path.display()
        )));
    }
    Ok(v)
}

/// Ingests captions (CLIP text embeddings) at the dummy point (0, 0), no time, payload
/// `{"caption": text}`. A caption's key is its text: captions already present are skipped
/// (or replaced).
pub fn ingest_captions(
    db: &mut Db,
    enc: &dyn Embedder,
    captions: &[String],
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, JobError> {
    let mut report = IngestReport::default();
    let coll = &opts.collection;
    let model = enc.fingerprint(EncoderKind::ClipText);
    let mut target = prepare(db, opts, &model, &|p| {
        payload_key(p, "caption", &|c| Some(c.to_string()))
    })?;
    let origin = Point::new(0.0, 0.0).map_err(JobError::runtime)?;
    let mut todo = Vec::new();
    for c in captions {
        if let Some(slot) = target.slot(c, opts.replace, &mut report) {
            todo.push((c, slot));
        }
    }
    progress.begin("encode captions", Some(todo.len() as u64), Unit::Items);
    for chunk in todo.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(|(c, _)| c.as_str()).collect();
        let vs = enc.embed_text(&refs).map_err(JobError::runtime)?;
        for ((c, slot), v) in chunk.iter().zip(vs) {
            let payload = serde_json::json!({ "caption": c }).to_string();
            let item = NewItem {
                id: 0,
                vector: &v,
                point: origin,
                time: None,
                payload: Some(&payload),
            };
            target.add(db, coll, *slot, item, &mut report)?;
        }
        progress.advance(chunk.len() as u64);
    }
    progress.end();
    commit(db, &target, &mut report, &model)?;
    Ok(report)
}
