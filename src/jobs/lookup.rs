//! Top-k lookups: a text, an image, a tile or a vector against a collection, with a filter
//! (search, the ground photos a tile predicts, the captions closest to a tile).

use std::path::{Path, PathBuf};

use super::examples::Examples;
use super::fingerprint::{check_collections, check_kind, check_space, EncoderKind};
use super::model::Embedder;
use super::tiles::parse_lat_lon_name;
use super::JobError;
use crate::{Collection, Filter, Progress, Radius, Snapshot};

/// One result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Match {
    /// Item id.
    pub id: u64,
    /// Cosine similarity with the query.
    pub score: f32,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Unix seconds, if any.
    pub time: Option<i64>,
    /// The payload, if any.
    pub payload: Option<String>,
}

impl Match {
    /// The caption of a caption-bank item (its payload's `caption`).
    pub fn caption(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(self.payload.as_deref()?).ok()?;
        Some(v.get("caption")?.as_str()?.to_string())
    }
}

/// Matches as a GeoJSON FeatureCollection (RFC 7946), best first: each feature's geometry
/// is the item's footprint (a Polygon, where its payload has `"footprint": [w, s, e, n]`;
/// cut in two at the antimeridian when `w > e`) or its point, `[lon, lat]`; its properties are `id`, `score`, `rank` (1 = best), `time`
/// (RFC 3339, UTC; null without one) and `payload` (the stored JSON as JSON, other text as
/// a string).
pub fn matches_geojson(matches: &[Match]) -> serde_json::Value {
    use serde_json::{json, Value};
    let features: Vec<Value> = matches
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let payload: Value = m.payload.as_deref().map_or(Value::Null, |p| {
                serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_string()))
            });
            let footprint = payload
                .get("footprint")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
                .filter(|b| b.len() == 4 && b.iter().all(|x| x.is_finite()));
            let ring =
                |w: f64, s: f64, e: f64, n: f64| json!([[[w, s], [e, s], [e, n], [w, n], [w, s]]]);
            let geometry = match footprint {
                // A footprint across the antimeridian is cut there (RFC 7946 §3.1.9).
                Some(b) if b[0] > b[2] => json!({"type": "MultiPolygon", "coordinates": [
                    ring(b[0], b[1], 180.0, b[3]), ring(-180.0, b[1], b[2], b[3])
                ]}),
                Some(b) => json!({"type": "Polygon", "coordinates": ring(b[0], b[1], b[2], b[3])}),
                None => json!({"type": "Point", "coordinates": [m.lon, m.lat]}),
            };
            let time = m
                .time
                .map(|t| format!("{}Z", crate::time::format_wall(crate::time::from_unix(t))));
            json!({
                "type": "Feature",
                "id": m.id,
                "geometry": geometry,
                "properties": {
                    "id": m.id, "score": m.score, "rank": i + 1, "time": time, "payload": payload,
                },
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// What a [`SearchJob`] looks up.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryInput {
    /// A text, embedded by the CLIP text tower.
    Text(String),
    /// An image file: a ground-level photo (CLIP image tower) or, with `overhead`, a tile
    /// (Sat2Cap overhead tower).
    Image {
        /// The file.
        path: PathBuf,
        /// Embed it as an overhead tile.
        overhead: bool,
    },
    /// A stored tile (its vector and place) of collection `from`.
    TileId {
        /// The tile's id.
        id: u64,
        /// Its collection.
        from: String,
    },
    /// A vector as given (no model check).
    Vector(Vec<f32>),
    /// Examples of the searched collection (see [`Examples`]): the results are like the
    /// positives, unlike the negatives, and never the examples themselves.
    Examples(Examples),
}

impl QueryInput {
    /// Whether answering it needs an [`Embedder`].
    pub fn needs_embedder(&self) -> bool {
        matches!(self, QueryInput::Text(_) | QueryInput::Image { .. })
    }
}

/// A top-k lookup in one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchJob {
    /// The collection searched.
    pub collection: String,
    /// The query.
    pub query: QueryInput,
    /// Only items passing this filter.
    pub filter: Filter,
    /// Only items within this many km of the query's own place (a stored tile, or an image
    /// file named `{lat}_{lon}`); an input error when the query has no place.
    pub near_query_km: Option<f64>,
    /// Number of results (>= 1).
    pub k: usize,
    /// What the searched collection must hold (photos for `ground`, captions for
    /// `describe`), checked against the model it records; `None`: anything.
    pub holds: Option<EncoderKind>,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchReport {
    /// Best first, ties by lower id.
    pub matches: Vec<Match>,
}

/// Embeds one image file with `model`: a tile (Sat2Cap) or a ground-level photo (CLIP).
pub(crate) fn embed_image_file(
    model: &dyn Embedder,
    path: &Path,
    overhead: bool,
) -> Result<Vec<f32>, JobError> {
    let bytes = read_image_file(path)?;
    let mut r = if overhead {
        model.embed_overhead(&[&bytes], None)
    } else {
        model.embed_ground(&[&bytes])
    };
    match r.pop() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(image_error(path, &e)),
        None => Err(JobError::runtime(format!(
            "{}: not encoded",
            path.display()
        ))),
    }
}

/// An image that did not encode, named by its file.
pub(crate) fn image_error(path: &Path, e: &crate::encoders::EncodeError) -> JobError {
    JobError::input(format!(
        "{}: {}",
        path.display(),
        super::ingest::strip_index(&e.to_string())
    ))
}

/// The bytes of an image file: a folder, FIFO or device is named for what it is, the size
/// is bounded.
pub(crate) fn read_image_file(path: &Path) -> Result<Vec<u8>, JobError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(JobError::input(format!(
                "{} is a folder, not an image file",
                path.display()
            )))
        }
        Ok(m) if !m.is_file() => {
            return Err(JobError::input(format!(
                "{} is not a regular file (a FIFO or a device), not an image file",
                path.display()
            )))
        }
        _ => {}
    }
    crate::io::input::read_whole(path, crate::io::input::MAX_WHOLE_FILE)
        .map_err(|e| JobError::input(format!("image file {}: {e}", path.display())))
}

/// Runs a lookup. `model` embeds texts and images (required for those queries, see
/// [`QueryInput::needs_embedder`]); every query but a plain vector is checked against the
/// model the collection records, and a collection that records none is said through
/// `progress` (the query's model cannot be checked).
pub fn search(
    snap: &Snapshot,
    model: Option<&dyn Embedder>,
    job: &SearchJob,
    progress: &dyn Progress,
) -> Result<SearchReport, JobError> {
    if job.k == 0 {
        return Err(JobError::input("k must be at least 1"));
    }
    let target = super::collection(snap, &job.collection)?;
    if let Some(kind) = job.holds {
        check_kind(&target, kind, "this lookup")?;
    }
    if let QueryInput::TileId { from, .. } = &job.query {
        let tiles = super::collection(snap, from)?;
        check_kind(&tiles, EncoderKind::Sat2capOverhead, "a tile id")?;
    }
    let warn = |w: Option<String>| w.iter().for_each(|w| progress.note(w));
    let need =
        || model.ok_or_else(|| JobError::input("this query needs an encoder, and none was given"));
    let mut exclude = std::collections::BTreeSet::new();
    let (query, place) = match &job.query {
        QueryInput::Text(t) => {
            let m = need()?;
            let clip = m.fingerprint(EncoderKind::ClipText).clip;
            warn(check_space(&target, &clip, "the query's text encoder")?);
            let v = m
                .embed_text(&[t.as_str()])
                .map_err(JobError::runtime)?
                .pop()
                .ok_or_else(|| JobError::runtime("text not encoded"))?;
            (v, None)
        }
        QueryInput::Image { path, overhead } => {
            let m = need()?;
            let (kind, what) = if *overhead {
                (EncoderKind::Sat2capOverhead, "the query's Sat2Cap encoder")
            } else {
                (EncoderKind::ClipImage, "the query's image encoder")
            };
            warn(check_space(&target, &m.fingerprint(kind).clip, what)?);
            if !path.exists() {
                return Err(JobError::input(format!("no image file {}", path.display())));
            }
            let v = embed_image_file(m, path, *overhead)?;
            let place = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(parse_lat_lon_name);
            (v, place)
        }
        QueryInput::TileId { id, from } => {
            let view = super::collection(snap, from)?;
            warn(check_collections(&view, &target)?);
            let item = view
                .get(*id)
                .map_err(JobError::runtime)?
                .ok_or_else(|| JobError::input(format!("no tile with id {id} in '{from}'")))?;
            let v = item.vector.iter().map(|h| h.to_f32()).collect();
            (v, Some(item.point))
        }
        QueryInput::Vector(v) => (v.clone(), None),
        QueryInput::Examples(ex) => {
            let (q, ids) = super::examples::example_query(&target, ex)?;
            exclude = ids;
            (q, None)
        }
    };
    let mut filter = job.filter.clone();
    if let Some(km) = job.near_query_km {
        let p = place.ok_or_else(|| {
            JobError::input(
                "a radius around the query needs its place: a stored tile, or a file named {lat}_{lon}",
            )
        })?;
        let r = Radius::new(p.lat(), p.lon(), km)
            .map_err(|e| JobError::input(format!("bad radius: {e}")))?;
        filter = filter.radius(r);
    }
    let mut matches = top_k(
        &target,
        &query,
        job.k.saturating_add(exclude.len()),
        &filter,
    )?;
    matches.retain(|m| !exclude.contains(&m.id));
    matches.truncate(job.k);
    Ok(SearchReport { matches })
}

/// The `k` items of `view` most similar (cosine) to `query` among those `filter` matches,
/// best first (ties by smaller id).
pub(crate) fn top_k(
    view: &Collection<'_>,
    query: &[f32],
    k: usize,
    filter: &Filter,
) -> Result<Vec<Match>, JobError> {
    // The library checks the query (length, finite values, a norm computed in f64, so
    // f32::MAX and subnormal components are fine), as for a batch query.
    let res = view
        .search(query)
        .k(k)
        .filter(filter.clone())
        .run()
        .map_err(|e| match e {
            crate::QueryError::Corrupt(_) | crate::QueryError::Segment(_) => {
                JobError::runtime(format!("collection '{}': {e}", view.name()))
            }
            e => JobError::input(format!("collection '{}': {e}", view.name())),
        })?;
    Ok(res
        .hits
        .into_iter()
        .map(|h| Match {
            id: h.id,
            score: h.score,
            lat: h.point.lat(),
            lon: h.point.lon(),
            time: h.time,
            payload: h.payload,
        })
        .collect())
}

/// Reads a query vector from a file: a `.npy` (its first row) or a JSON array of numbers.
pub fn read_vector(path: &Path) -> Result<Vec<f32>, JobError> {
    if path.extension().is_some_and(|e| e == "npy") {
        let mut r = crate::io::npy::NpyReader::open(path)
            .map_err(|e| JobError::input(format!("{}: {e}", path.display())))?;
        let mut v = Vec::new();
        return match r.read_row(&mut v) {
            Ok(true) => match v.iter().position(|x| !x.is_finite()) {
                Some(i) => Err(JobError::input(format!(
                    "{}: component {i} of the first row is {}, not a finite number",
                    path.display(),
                    v[i]
                ))),
                None => nonzero(path, v),
            },
            Ok(false) => Err(JobError::input(format!("{}: no rows", path.display()))),
            Err(e) => Err(JobError::input(format!("{}: {e}", path.display()))),
        };
    }
    let bytes = crate::io::input::read_whole(path, crate::io::input::MAX_WHOLE_FILE)
        .map_err(|e| JobError::input(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| JobError::input(format!("{}: not UTF-8 text", path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    // Parsed as f64 first: a number beyond the f32 range is named, not made infinite.
    let v = serde_json::from_str::<Vec<f64>>(text).map_err(|e| {
        JobError::input(format!(
            "{}: expected a JSON array of numbers: {e}",
            path.display()
        ))
    })?;
    let v = v
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = x as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(JobError::input(format!(
                    "{}: component {i} ({x:e}) is outside the f32 range",
                    path.display()
                )))
            }
        })
        .collect::<Result<Vec<f32>, JobError>>()?;
    nonzero(path, v)
}

/// `v`, unless it is all zeros (no direction to search in): an error naming `path`.
fn nonzero(path: &Path, v: Vec<f32>) -> Result<Vec<f32>, JobError> {
    if v.is_empty() {
        return Err(JobError::input(format!(
            "{}: the vector is empty (0 components)",
            path.display()
        )));
    }
    if v.iter().all(|&x| x == 0.0) {
        return Err(JobError::input(format!(
            "{}: the vector is all zeros (it has no direction to search in)",
            path.display()
        )));
    }
    Ok(v)
}
