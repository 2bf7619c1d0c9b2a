//! Ingest jobs: overhead tiles, ground-level photos, a caption bank. Each encodes its inputs
//! in batches, reports bad inputs one by one (the rest go on) and commits ONCE at the end, so
//! an interrupted or failed job leaves the database as it was.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;

use crate::encoders::Encoders;
use crate::geo::Point;
use crate::storage::Db;
use crate::NewItem;

use super::tiles::{scan_tiles, TilePayload};
use super::JobError;

/// What an ingest did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestReport {
    /// Items added (committed).
    pub added: usize,
    /// Inputs that failed: `(what, why)`.
    pub failed: Vec<(String, String)>,
    /// Files skipped because their name places them nowhere.
    pub skipped: Vec<String>,
    /// Ids given to the new items (first..=last), if any.
    pub ids: Option<(u64, u64)>,
}

/// An input that failed: `(what, why)`.
pub type Failure = (String, String);

/// Files encoded per batch (progress granularity).
const BATCH: usize = 16;

/// Ensures `coll` exists with `dim`, returning the next free id.
fn prepare(db: &mut Db, coll: &str, dim: usize) -> Result<u64, JobError> {
    let snap = db.snapshot();
    match snap.collection(coll) {
        Ok(v) => {
            if v.dim() != dim {
                return Err(JobError::input(format!(
                    "collection '{coll}' has dimension {}, the encoder gives {dim}",
                    v.dim()
                )));
            }
            let mut next = 0u64;
            for item in v.iter() {
                let item = item.map_err(JobError::runtime)?;
                next = next.max(item.id.saturating_add(1));
            }
            Ok(next)
        }
        Err(_) => {
            db.create_collection(coll, dim).map_err(JobError::runtime)?;
            Ok(0)
        }
    }
}

fn commit(db: &mut Db, report: &mut IngestReport, first: u64) -> Result<(), JobError> {
    if report.added > 0 || db.pending_len() > 0 {
        db.commit()
            .map_err(|e| JobError::runtime(format!("commit failed: {e}")))?;
    }
    if report.added > 0 {
        report.ids = Some((first, first + report.added as u64 - 1));
    }
    Ok(())
}

fn read_all(paths: &[PathBuf]) -> Vec<Result<Vec<u8>, String>> {
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| e.to_string()))
        .collect()
}

/// Encodes files (overhead or ground), one result per file.
fn encode_files(
    enc: &Encoders,
    paths: &[PathBuf],
    overhead: bool,
) -> Vec<Result<Vec<f32>, String>> {
    let bytes = read_all(paths);
    let ok: Vec<&[u8]> = bytes
        .iter()
        .filter_map(|b| b.as_ref().ok().map(Vec::as_slice))
        .collect();
    let mut encoded = if overhead {
        enc.encode_overhead_bytes(&ok, None)
    } else {
        enc.encode_ground_bytes(&ok)
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
fn strip_index(m: &str) -> String {
    match m.split_once(": ") {
        Some((h, rest)) if h.starts_with("image ") => rest.to_string(),
        _ => m.to_string(),
    }
}

/// Encodes one image file: overhead (Sat2Cap) or ground (CLIP).
pub fn encode_image_file(
    enc: &Encoders,
    path: &Path,
    overhead: bool,
) -> Result<Vec<f32>, JobError> {
    if !path.is_file() {
        return Err(JobError::input(format!("no image file {}", path.display())));
    }
    encode_files(enc, &[path.to_path_buf()], overhead)
        .pop()
        .unwrap_or_else(|| Err("not encoded".into()))
        .map_err(|e| JobError::input(format!("{}: {e}", path.display())))
}

/// Options of [`ingest_tiles`].
#[derive(Debug, Clone, Default)]
pub struct TileOptions {
    /// Collection (default `overhead`).
    pub collection: String,
    /// Capture time stored with every tile (unix seconds).
    pub time: Option<i64>,
    /// Footprint side for `{lat}_{lon}` names (inferred if `None`).
    pub tile_deg: Option<f64>,
}

/// Ingests the overhead tiles under `dir` (naming: see [`super::tiles`]). The stored vector is
/// the Sat2Cap embedding WITHOUT metadata; maps at a date re-encode with the dynamic encoder.
pub fn ingest_tiles(
    db: &mut Db,
    enc: &Encoders,
    dir: &Path,
    opts: &TileOptions,
    progress: &ProgressBar,
) -> Result<IngestReport, JobError> {
    // Absolute paths in payloads, so `--mosaic` finds the tiles from any working folder.
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (tiles, skipped) = scan_tiles(dir, opts.tile_deg)?;
    let mut report = IngestReport {
        skipped: skipped.iter().map(|p| p.display().to_string()).collect(),
        ..IngestReport::default()
    };
    if tiles.is_empty() {
        return Err(JobError::input(format!(
            "no tiles in {} (expected {{lat}}_{{lon}}.jpg|png or z/x/y.jpg|png)",
            dir.display()
        )));
    }
    let dim = enc.config().overhead.projection_dim;
    let first = prepare(db, &opts.collection, dim)?;
    let mut id = first;
    progress.set_length(tiles.len() as u64);
    for chunk in tiles.chunks(BATCH) {
        let paths: Vec<PathBuf> = chunk.iter().map(|t| t.path.clone()).collect();
        for (t, r) in chunk.iter().zip(encode_files(enc, &paths, true)) {
            match r {
                Ok(v) => {
                    let f = t.footprint;
                    let payload = serde_json::to_string(&TilePayload {
                        path: t.path.display().to_string(),
                        footprint: [f.west, f.south, f.east, f.north],
                    })
                    .map_err(JobError::runtime)?;
                    db.add(
                        &opts.collection,
                        NewItem {
                            id,
                            vector: &v,
                            point: t.center,
                            time: opts.time,
                            payload: Some(&payload),
                        },
                    )
                    .map_err(JobError::runtime)?;
                    id += 1;
                    report.added += 1;
                }
                Err(e) => report.failed.push((t.path.display().to_string(), e)),
            }
        }
        progress.inc(chunk.len() as u64);
    }
    commit(db, &mut report, first)?;
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
}

/// Reads `path,lat,lon[,datetime]` rows (header required). Bad rows are returned as
/// `(row description, why)`; the good ones go on.
pub fn read_ground_csv(
    csv_path: &Path,
    photo_dir: &Path,
) -> Result<(Vec<GroundRow>, Vec<Failure>), JobError> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(csv_path)
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
    for (i, rec) in r.records().enumerate() {
        let line = format!("{} row {}", csv_path.display(), i + 2);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad.push((line, e.to_string()));
                continue;
            }
        };
        let get = |c: usize| rec.get(c).unwrap_or("");
        let parsed = (|| -> Result<GroundRow, String> {
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
            })
        })();
        match parsed {
            Ok(g) => rows.push(g),
            Err(e) => bad.push((line, e)),
        }
    }
    Ok((rows, bad))
}

/// Ingests ground-level photos listed in `meta_csv` (paths relative to `dir`) with CLIP.
pub fn ingest_ground(
    db: &mut Db,
    enc: &Encoders,
    dir: &Path,
    meta_csv: &Path,
    collection: &str,
    progress: &ProgressBar,
) -> Result<IngestReport, JobError> {
    if !dir.is_dir() {
        return Err(JobError::input(format!(
            "photo folder {} does not exist",
            dir.display()
        )));
    }
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let (rows, bad) = read_ground_csv(meta_csv, dir)?;
    let mut report = IngestReport {
        failed: bad,
        ..IngestReport::default()
    };
    if rows.is_empty() {
        return Err(JobError::input(format!(
            "no usable rows in {} ({} bad)",
            meta_csv.display(),
            report.failed.len()
        )));
    }
    let first = prepare(db, collection, enc.config().ground.projection_dim)?;
    let mut id = first;
    progress.set_length(rows.len() as u64);
    for chunk in rows.chunks(BATCH) {
        let paths: Vec<PathBuf> = chunk.iter().map(|g| g.path.clone()).collect();
        for (g, r) in chunk.iter().zip(encode_files(enc, &paths, false)) {
            match r {
                Ok(v) => {
                    let payload =
                        serde_json::json!({"path": g.path.display().to_string()}).to_string();
                    db.add(
                        collection,
                        NewItem {
                            id,
                            vector: &v,
                            point: g.point,
                            time: g.time,
                            payload: Some(&payload),
                        },
                    )
                    .map_err(JobError::runtime)?;
                    id += 1;
                    report.added += 1;
                }
                Err(e) => report.failed.push((g.path.display().to_string(), e)),
            }
        }
        progress.inc(chunk.len() as u64);
    }
    commit(db, &mut report, first)?;
    Ok(report)
}

/// The captions of a caption-bank file: one per non-empty line, `#` lines are comments.
pub fn read_captions(path: &Path) -> Result<Vec<String>, JobError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JobError::input(format!("cannot read {}: {e}", path.display())))?;
    let v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if v.is_empty() {
        return Err(JobError::input(format!(
            "no captions in {}",
            path.display()
        )));
    }
    Ok(v)
}

/// Ingests captions (CLIP text embeddings) at the dummy point (0, 0), no time, payload
/// `{"caption": text}`.
pub fn ingest_captions(
    db: &mut Db,
    enc: &Encoders,
    captions: &[String],
    collection: &str,
    progress: &ProgressBar,
) -> Result<IngestReport, JobError> {
    let mut report = IngestReport::default();
    let first = prepare(db, collection, enc.config().text.projection_dim)?;
    let mut id = first;
    let origin = Point::new(0.0, 0.0).map_err(JobError::runtime)?;
    progress.set_length(captions.len() as u64);
    for chunk in captions.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let vs = enc.encode_text(&refs).map_err(JobError::runtime)?;
        for (c, v) in chunk.iter().zip(vs) {
            let payload = serde_json::json!({ "caption": c }).to_string();
            db.add(
                collection,
                NewItem {
                    id,
                    vector: &v,
                    point: origin,
                    time: None,
                    payload: Some(&payload),
                },
            )
            .map_err(JobError::runtime)?;
            id += 1;
            report.added += 1;
        }
        progress.inc(chunk.len() as u64);
    }
    commit(db, &mut report, first)?;
    Ok(report)
}
