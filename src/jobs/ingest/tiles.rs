//! Ingest of overhead tiles: a folder of `{lat}_{lon}` or `z/x/y` images.

use super::*;

/// Options of [`ingest_tiles`].
#[derive(Debug, Clone, Default)]
pub struct TileOptions {
    /// Collection (default `overhead`), `--replace`, `--force-model`.
    pub common: IngestOptions,
    /// Capture time stored with every tile (unix seconds).
    pub time: Option<i64>,
    /// The same time on the local wall clock, as written (what the dynamic encoder is given:
    /// see [`crate::time::parse_wall`]); recorded in each tile's payload.
    pub wall: Option<crate::time::DateTime>,
    /// Footprint side for `{lat}_{lon}` names (inferred if `None`).
    pub tile_deg: Option<f64>,
    /// Ingest only one part of the folder, into a new collection (see [`TilePart`]);
    /// `None`: every tile, new ones taking the ids after the collection's highest.
    pub part: Option<TilePart>,
}

/// One part of a tile folder that several databases split between them: only the tiles
/// whose centre `keep` accepts are ingested, each with its position among the folder's tiles
/// (in the order [`ingest_tiles`] reads them, from 0; a tile repeating an earlier tile's key
/// is skipped and not counted) as its id, so that no two parts give one id and together
/// they hold the ids a single ingest of the folder into a new collection gives (when no tile
/// fails). The collection must be new.
#[derive(Clone)]
pub struct TilePart {
    /// Whether the tile with this centre belongs to the part.
    pub keep: std::sync::Arc<dyn Fn(Point) -> bool + Send + Sync>,
}

impl std::fmt::Debug for TilePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TilePart { .. }")
    }
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
    let model = enc.fingerprint(EncoderKind::Sat2capOverhead);
    let derive = |p: &str| {
        Path::new(p)
            .strip_prefix(dir)
            .ok()
            .map(|_| tile_key(dir, Path::new(p)))
    };
    if opts.part.is_some() {
        let coll = &opts.common.collection;
        if let Ok(c) = db.snapshot().collection(coll) {
            if !c.is_empty() {
                return Err(JobError::input(format!(
                    "collection '{coll}' holds items: a part of a tile folder goes into a new \
                     collection (its ids are the tiles' positions in the folder)"
                )));
            }
        }
    }
    let target = prepare(db, &opts.common, &model, &|p| {
        payload_key(p, "path", &derive)
    })?;
    // A part's ids: the position of each tile among the folder's tiles with a key not
    // given before (a repeat, `a.png` beside `a.jpg`, is skipped and takes none).
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<Option<u64>> = tiles
        .iter()
        .map(|t| seen.insert(tile_key(dir, &t.path)).then_some(()))
        .scan(0u64, |next, first| {
            Some(first.map(|()| {
                *next += 1;
                *next - 1
            }))
        })
        .collect();
    let files = tiles
        .iter()
        .zip(ids)
        .filter(|(t, _)| opts.part.as_ref().is_none_or(|p| (p.keep)(t.center)))
        .map(|(t, id)| {
            let key = tile_key(dir, &t.path);
            let f = t.footprint;
            let payload = serde_json::to_string(&TilePayload {
                path: t.path.display().to_string(),
                footprint: [f.west, f.south, f.east, f.north],
                key: Some(key.clone()),
                local_time: opts.wall.map(crate::time::format_wall),
                window: None,
                bands: None,
                stretch: None,
            })
            .map_err(JobError::runtime)?;
            let name = t.path.display().to_string();
            Ok(FileRow {
                id: opts.part.as_ref().and(id),
                path: t.path.clone(),
                key,
                failed: name.clone(),
                name,
                point: t.center,
                time: opts.time,
                payload,
            })
        })
        .collect::<Result<_, JobError>>()?;
    ingest_files(
        db,
        enc,
        &opts.common,
        &model,
        target,
        files,
        true,
        &mut report,
        progress,
    )?;
    Ok(report)
}
