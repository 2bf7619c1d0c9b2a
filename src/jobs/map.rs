//! Zero-shot maps from a collection of tiles: cosine of each prompt against every tile in a
//! region, min-max scaled over the region, written as PNG + GeoJSON + CSV + world file
//! ([`super::write_map`]). At a date and hour the tiles are re-encoded with the dynamic
//! encoder.

use std::path::PathBuf;

use image::RgbImage;

use super::fingerprint::{check_space, EncoderKind};
use super::map_files::{write_map, MapFiles, MapPanel};
use super::model::Embedder;
use super::tiles::{infer_spacing, TilePayload};
use super::JobError;
use crate::encoders::Meta;
use crate::index::flat::dot_f16_f32;
use crate::map::{Footprint, MapCell};
use crate::{Collection, Filter, Point, Progress, Snapshot, Unit};

/// A tile of the region: where it is, and its image file (from the payload) if known.
#[derive(Debug, Clone)]
pub(crate) struct RegionTile {
    /// Id in the collection.
    pub(crate) id: u64,
    /// Centre and footprint.
    pub(crate) cell: MapCell,
    /// Image file, from the payload.
    pub(crate) path: Option<PathBuf>,
    /// The capture time on the local wall clock, from the payload.
    pub(crate) local: Option<crate::time::DateTime>,
    /// The payload: where the tile's image comes from (a file, or a chip of a scene).
    pub(crate) source: Option<TilePayload>,
}

/// The tiles of `view` whose centre (and time) `region` matches (all when it is empty),
/// ordered by id; `score` left at 0. Tiles without a footprint in their payload get squares
/// of the inferred spacing.
pub(crate) fn region_tiles(
    view: &Collection<'_>,
    region: &Filter,
) -> Result<Vec<RegionTile>, JobError> {
    let tiles = tiles_in(view, region)?;
    if tiles.is_empty() {
        return Err(no_tiles(view.name()));
    }
    Ok(tiles)
}

/// [`region_tiles`], none when no tile matches.
fn tiles_in(view: &Collection<'_>, region: &Filter) -> Result<Vec<RegionTile>, JobError> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for item in view.iter() {
        let item = item.map_err(JobError::runtime)?;
        if !region.matches(item.point, item.time) {
            continue;
        }
        let p = TilePayload::parse(item.payload);
        let footprint = p.as_ref().map(TilePayload::footprint);
        if footprint.is_none() {
            missing.push(out.len());
        }
        out.push(RegionTile {
            id: item.id,
            cell: MapCell {
                id: item.id,
                center: item.point,
                footprint: footprint.unwrap_or(Footprint::around(item.point, 0.0, 0.0)),
                score: 0.0,
            },
            local: p
                .as_ref()
                .and_then(|p| p.local_time.as_deref())
                .and_then(|t| crate::time::parse_wall(t).ok())
                .map(|(_, wall)| wall),
            path: p.as_ref().map(|p| PathBuf::from(&p.path)),
            source: p,
        });
    }
    if !missing.is_empty() {
        let d = infer_spacing(&out.iter().map(|t| t.cell.center).collect::<Vec<_>>()) / 2.0;
        for i in missing {
            out[i].cell.footprint = Footprint::around(out[i].cell.center, d, d);
        }
    }
    out.sort_by_key(|t| t.id);
    Ok(out)
}

/// A tile of a map scored against each query: what one database gives to a map drawn over
/// one database or many (see [`score_tiles`] and [`map_panels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTile {
    /// Id in its collection.
    pub id: u64,
    /// Centre.
    pub center: Point,
    /// The footprint its payload gives; `None` without one ([`map_panels`] then draws a
    /// square of the spacing inferred from all the map's tiles).
    pub footprint: Option<Footprint>,
    /// Cosine against each query, in the order the queries were given.
    pub scores: Vec<f32>,
}

/// The tiles of `collection` whose centre (and time) `region` matches (all when it is
/// empty), each scored against every query (normalised here) with its stored vector, in the
/// collection's order; none when no tile matches. The part of a map one database holds: the
/// panels come from [`map_panels`] over the tiles of every database.
pub fn score_tiles(
    snap: &Snapshot,
    collection: &str,
    region: &Filter,
    queries: &[Vec<f32>],
) -> Result<Vec<ScoredTile>, JobError> {
    let view = super::collection(snap, collection)?;
    super::fingerprint::check_kind(&view, EncoderKind::Sat2capOverhead, "a map")?;
    stored_scores(&view, &tiles_in(&view, region)?, queries)
}

/// `tiles` of `view` scored against `queries` (normalised here) with their stored vectors.
fn stored_scores(
    view: &Collection<'_>,
    tiles: &[RegionTile],
    queries: &[Vec<f32>],
) -> Result<Vec<ScoredTile>, JobError> {
    if let Some((i, q)) = queries
        .iter()
        .enumerate()
        .find(|(_, q)| q.len() != view.dim())
    {
        return Err(JobError::input(format!(
            "query {i} has {} values; collection '{}' holds {}-dimensional vectors",
            q.len(),
            view.name(),
            view.dim()
        )));
    }
    let units: Vec<Vec<f32>> = queries
        .iter()
        .map(|q| {
            let n = q
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::MIN_POSITIVE);
            q.iter().map(|x| x / n).collect()
        })
        .collect();
    tiles
        .iter()
        .map(|t| {
            let item = view
                .get(t.id)
                .map_err(JobError::runtime)?
                .ok_or_else(|| JobError::runtime(format!("tile {} vanished", t.id)))?;
            let mut s = unscored(t);
            s.scores = units.iter().map(|q| dot_f16_f32(item.vector, q)).collect();
            Ok(s)
        })
        .collect()
}

/// A region tile with no score yet: its footprint as its payload gives it.
fn unscored(t: &RegionTile) -> ScoredTile {
    ScoredTile {
        id: t.id,
        center: t.cell.center,
        footprint: t.source.as_ref().map(TilePayload::footprint),
        scores: Vec::new(),
    }
}

/// The panels' hours: `hours`, or one panel set at no particular hour.
fn panel_hours(hours: &[u32]) -> Vec<Option<u32>> {
    if hours.is_empty() {
        vec![None]
    } else {
        hours.iter().map(|&h| Some(h)).collect()
    }
}

/// [`score_tiles`] at a date and hours: the tiles of `collection` in `region`, each
/// re-encoded with `model`'s overhead and dynamic encoders at `time` (its wall-clock date
/// and hour; without it each tile's own time), once per hour of `hours` (none: once, at the
/// time's hour), and scored against every query. `scores` holds, for each hour in order, one
/// score per query ([`map_panels`] with the same `hours` draws them). The tiles' images are
/// read from the paths their payloads name. None when no tile matches.
#[allow(clippy::too_many_arguments)]
pub fn score_tiles_at(
    snap: &Snapshot,
    collection: &str,
    region: &Filter,
    queries: &[Vec<f32>],
    model: &dyn Embedder,
    time: Option<crate::time::DateTime>,
    hours: &[u32],
    progress: &dyn Progress,
) -> Result<Vec<ScoredTile>, JobError> {
    if let Some(h) = hours.iter().find(|&&h| h > 23) {
        return Err(JobError::input(format!("hour {h} is not in 0..=23")));
    }
    if !model.has_dynamic() {
        return Err(no_dynamic());
    }
    let view = super::collection(snap, collection)?;
    super::fingerprint::check_kind(&view, EncoderKind::Sat2capOverhead, "a map")?;
    let tiles = tiles_in(&view, region)?;
    let metas = tile_times(&view, &tiles, time)?;
    reencoded_scores(&tiles, &metas, queries, model, hours, progress)
}

/// `tiles` (with their images and dates, `metas`) re-encoded at each of `hours` and scored
/// against `queries` (unit vectors from the text encoder).
fn reencoded_scores(
    tiles: &[RegionTile],
    metas: &[(TilePayload, Meta)],
    queries: &[Vec<f32>],
    model: &dyn Embedder,
    hours: &[u32],
    progress: &dyn Progress,
) -> Result<Vec<ScoredTile>, JobError> {
    let mut out: Vec<ScoredTile> = tiles.iter().map(unscored).collect();
    let hours = panel_hours(hours);
    progress.begin(
        "re-encode tiles",
        Some((tiles.len() * hours.len()) as u64),
        Unit::Items,
    );
    for h in hours {
        let vs = reencode(model, tiles, metas, h, progress)?;
        for (t, v) in out.iter_mut().zip(&vs) {
            t.scores.extend(
                queries
                    .iter()
                    .map(|q| v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()),
            );
        }
    }
    progress.end();
    Ok(out)
}

fn no_dynamic() -> JobError {
    JobError::input(
        "a date or hour needs the dynamic encoder (geo_encoder.* in the Sat2Cap weights, \
         see docs/ENCODERS.md); the loaded model has none",
    )
}

/// The panels of a map, one per hour of `hours` (none: one) and prompt, from tiles scored
/// against the prompts in that order at each hour (by [`score_tiles`] or [`score_tiles_at`]
/// over one database or many): tiles ordered by id, a tile without a footprint drawn as a
/// square of the spacing inferred from all of them. No tiles, an id given twice or a tile
/// with another number of scores than prompts x hours is an error.
pub fn map_panels(
    collection: &str,
    prompts: &[String],
    hours: &[u32],
    mut tiles: Vec<ScoredTile>,
) -> Result<Vec<MapPanel>, JobError> {
    if tiles.is_empty() {
        return Err(no_tiles(collection));
    }
    let hours = panel_hours(hours);
    let n = prompts.len() * hours.len();
    if let Some(t) = tiles.iter().find(|t| t.scores.len() != n) {
        return Err(JobError::runtime(format!(
            "tile {} has {} scores for {} prompts x {} hours",
            t.id,
            t.scores.len(),
            prompts.len(),
            hours.len()
        )));
    }
    tiles.sort_by_key(|t| t.id);
    if let Some(w) = tiles.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(JobError::runtime(format!(
            "tile {} of collection '{collection}' is given twice",
            w[0].id
        )));
    }
    // Inferred only when some tile needs it.
    let half = if tiles.iter().any(|t| t.footprint.is_none()) {
        infer_spacing(&tiles.iter().map(|t| t.center).collect::<Vec<_>>()) / 2.0
    } else {
        0.0
    };
    let cells: Vec<MapCell> = tiles
        .iter()
        .map(|t| MapCell {
            id: t.id,
            center: t.center,
            footprint: t
                .footprint
                .unwrap_or_else(|| Footprint::around(t.center, half, half)),
            score: 0.0,
        })
        .collect();
    let mut panels = Vec::with_capacity(n);
    for (hi, &hour) in hours.iter().enumerate() {
        for (pi, p) in prompts.iter().enumerate() {
            let i = hi * prompts.len() + pi;
            let cells = cells
                .iter()
                .zip(&tiles)
                .map(|(c, t)| MapCell {
                    score: t.scores[i],
                    ..c.clone()
                })
                .collect();
            panels.push(MapPanel {
                prompt: p.clone(),
                hour,
                cells,
            });
        }
    }
    Ok(panels)
}

fn no_tiles(collection: &str) -> JobError {
    JobError::input(format!(
        "no tiles of collection '{collection}' in the region"
    ))
}

/// Loads tile images (for `--mosaic`), `None` where unreadable.
pub(crate) fn load_tile_images(tiles: &[RegionTile]) -> Vec<Option<RgbImage>> {
    tiles
        .iter()
        .map(|t| {
            // Read as every input is (a FIFO does not block, the size is bounded; a chip cut
            // from its scene again) and decoded within the encoders' limits; a tile that
            // fails is drawn without it.
            let bytes = t.source.as_ref()?.image_bytes().ok()?;
            let img = crate::encoders::Image::decode(&bytes).ok()?;
            let (w, h) = (
                u32::try_from(img.width()).ok()?,
                u32::try_from(img.height()).ok()?,
            );
            let img = RgbImage::from_raw(w, h, img.as_rgb8().to_vec())?;
            Some(image::imageops::thumbnail(&img, 128, 128))
        })
        .collect()
}

/// A zero-shot map of prompts over a region of a tile collection.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRequest {
    /// The tile collection.
    pub collection: String,
    /// One panel per prompt (and per hour).
    pub prompts: Vec<String>,
    /// The region: the tiles whose centre and time it matches (a box, an area of interest,
    /// a radius, a time range; every tile when it is empty).
    pub region: Filter,
    /// The date and hour the dynamic encoder is given, on the local wall clock (as Sat2Cap's
    /// reference feeds it: see [`crate::time::parse_wall`]); re-encodes the tiles.
    pub time: Option<crate::time::DateTime>,
    /// Hours of the day (0..=23), one panel per prompt and hour; re-encodes the tiles, with
    /// the date from `time`, else from each tile's stored time.
    pub hours: Vec<u32>,
    /// Output prefix: `PREFIX.png`, `.geojson`, `.csv`, `.pgw`.
    pub out: PathBuf,
    /// Blend the colours over the tile images (paths from the payloads).
    pub mosaic: bool,
    /// Also write a web map into this folder (XYZ tiles of the scores and the imagery,
    /// `index.html`): see [`super::write_web_map`].
    pub web: Option<PathBuf>,
    /// The web map's basemap: a `{z}/{x}/{y}` tile URL template.
    pub basemap: Option<String>,
}

impl MapRequest {
    /// Checks what can be checked before any tile is read: hours in `0..=23`, at least one
    /// prompt, no prompt or hour given twice, at most 32 panels, outputs that
    /// may be written.
    pub fn check(&self) -> Result<(), JobError> {
        if let Some(h) = self.hours.iter().find(|&&h| h > 23) {
            return Err(JobError::input(format!("hour {h} is not in 0..=23")));
        }
        if self.prompts.is_empty() {
            return Err(JobError::input("no prompt"));
        }
        for (i, h) in self.hours.iter().enumerate() {
            if self.hours[..i].contains(h) {
                return Err(JobError::input(format!("hour {h} is given twice")));
            }
        }
        for (i, p) in self.prompts.iter().enumerate() {
            if self.prompts[..i].contains(p) {
                return Err(JobError::input(format!("prompt \"{p}\" is given twice")));
            }
        }
        let panels = self.prompts.len() * self.hours.len().max(1);
        if panels > MAX_PANELS {
            return Err(JobError::input(format!(
                "{} prompt(s) x {} hour(s) = {panels} panels; a map holds at most {MAX_PANELS} \
                 (panels of 512 px side by side: at most {} px wide)",
                self.prompts.len(),
                self.hours.len().max(1),
                MAX_PANELS * 512
            )));
        }
        super::map_files::check_map_outputs(&self.out)?;
        if let Some(dir) = &self.web {
            super::map_files::check_web_map_dir(dir)?;
        }
        Ok(())
    }

    /// Writes the map of `panels` where the request says (`images`: the tiles' images, in
    /// the panels' cell order, for the mosaic and the web map's imagery); the title says
    /// when the weights are `random`. The web map first: when it fails, nothing is written.
    fn write(
        &self,
        random: bool,
        panels: &[MapPanel],
        images: Option<&[Option<RgbImage>]>,
    ) -> Result<MapReport, JobError> {
        let title = if random {
            "zero-shot map (RANDOM weights: pipeline only)"
        } else {
            "sat2cap zero-shot map"
        };
        let web = match &self.web {
            Some(dir) => {
                let imagery = images.filter(|i| i.iter().any(Option::is_some));
                let basemap = self.basemap.as_deref();
                Some(super::map_files::write_web_map(
                    dir, title, panels, imagery, basemap,
                )?)
            }
            None => None,
        };
        let files = write_map(&self.out, title, panels, images.filter(|_| self.mosaic))?;
        Ok(MapReport {
            files,
            tiles: panels.first().map_or(0, |p| p.cells.len()),
            panels: panels.len(),
            web,
        })
    }

    /// Writes the map of `panels` (from [`map_panels`], e.g. over many databases) where the
    /// request says, without tile imagery (`mosaic` is an error); the title says when the
    /// weights are `random`.
    pub fn write_panels(&self, random: bool, panels: &[MapPanel]) -> Result<MapReport, JobError> {
        if self.mosaic {
            return Err(JobError::input(
                "a mosaic needs the tiles' images, which these panels do not carry",
            ));
        }
        self.write(random, panels, None)
    }
}

/// What a map job did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MapReport {
    /// The files written.
    #[serde(flatten)]
    pub files: MapFiles,
    /// Tiles in the region.
    pub tiles: usize,
    /// Panels drawn.
    pub panels: usize,
    /// The web map's folder, when one was asked for.
    pub web: Option<PathBuf>,
}

/// The most panels (prompts x hours) one map draws: 32 panels of 512 px make a PNG of
/// 16,384 px, the largest image side the tool reads.
pub const MAX_PANELS: usize = 32;

/// Tiles re-encoded per batch.
const MAP_BATCH: usize = 16;

/// Draws the map `req` asks for with the text encoder of the model `load` returns (and, at
/// a date or hour, its overhead + dynamic encoder). The request, the collection and the
/// region's tiles are checked before the model is loaded; nothing is written unless every
/// panel could be scored. A collection that records no model is said through `progress`.
pub fn map<E: Embedder>(
    snap: &Snapshot,
    load: impl FnOnce() -> Result<E, JobError>,
    req: &MapRequest,
    progress: &dyn Progress,
) -> Result<MapReport, JobError> {
    req.check()?;
    let dynamic = req.time.is_some() || !req.hours.is_empty();
    let view = super::collection(snap, &req.collection)?;
    super::fingerprint::check_kind(&view, EncoderKind::Sat2capOverhead, "a map")?;
    let tiles = region_tiles(&view, &req.region)?;
    // No output may be one of the tiles (the mosaic reads them; every payload names one).
    super::map_files::check_map_inputs(&req.out, tiles.iter().filter_map(|t| t.path.as_deref()))?;
    // Every tile's image and date are checked before the model loads.
    let metas = if dynamic {
        tile_times(&view, &tiles, req.time)?
    } else {
        Vec::new()
    };
    let model = load()?;
    let clip = model.fingerprint(EncoderKind::ClipText).clip;
    if let Some(w) = check_space(&view, &clip, "the prompts' text encoder")? {
        progress.note(&w);
    }
    if dynamic && !model.has_dynamic() {
        return Err(no_dynamic());
    }
    let prompts: Vec<&str> = req.prompts.iter().map(String::as_str).collect();
    let qs = model.embed_text(&prompts).map_err(JobError::runtime)?;
    let scored = if dynamic {
        reencoded_scores(&tiles, &metas, &qs, &model, &req.hours, progress)?
    } else {
        stored_scores(&view, &tiles, &qs)?
    };
    let panels = map_panels(&req.collection, &req.prompts, &req.hours, scored)?;
    let images = (req.mosaic || req.web.is_some()).then(|| load_tile_images(&tiles));
    req.write(model.is_random(), &panels, images.as_deref())
}

/// The image file and the dynamic encoder's input (without the hour) of every tile, checked
/// before anything is encoded: the date from `time`, else from the tile's stored time.
fn tile_times(
    view: &Collection<'_>,
    tiles: &[RegionTile],
    time: Option<crate::time::DateTime>,
) -> Result<Vec<(TilePayload, Meta)>, JobError> {
    tiles
        .iter()
        .map(|t| {
            let path = t.source.clone().ok_or_else(|| {
                JobError::input(format!("tile {} has no image path in its payload", t.id))
            })?;
            // The date asked for, else the tile's own: its local wall clock when it was
            // ingested with one, else its stored instant in UTC.
            let stored = || {
                let item = view.get(t.id).ok().flatten()?;
                item.time.map(crate::time::from_unix)
            };
            let d = time.or(t.local).or_else(stored).ok_or_else(|| {
                JobError::input(format!("tile {} has no stored time: give a date", t.id))
            })?;
            let meta = Meta {
                lat: t.cell.center.lat(),
                lon: t.cell.center.lon(),
                year: d.year,
                month: d.month,
                day: d.day,
                hour: d.hour,
            };
            Ok((path, meta))
        })
        .collect()
}

/// The tiles embedded with their metadata, at `hour` when given.
fn reencode(
    model: &dyn Embedder,
    tiles: &[RegionTile],
    metas: &[(TilePayload, Meta)],
    hour: Option<u32>,
    progress: &dyn Progress,
) -> Result<Vec<Vec<f32>>, JobError> {
    let mut vs: Vec<Vec<f32>> = Vec::with_capacity(tiles.len());
    for chunk in metas.chunks(MAP_BATCH) {
        let bytes: Vec<Vec<u8>> = chunk
            .iter()
            .map(|(p, _)| p.image_bytes().map_err(JobError::runtime))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let ms: Vec<Meta> = chunk
            .iter()
            .map(|(_, m)| Meta {
                hour: hour.unwrap_or(m.hour),
                ..*m
            })
            .collect();
        for ((p, _), r) in chunk.iter().zip(model.embed_overhead(&refs, Some(&ms))) {
            vs.push(r.map_err(|e| JobError::runtime(format!("{}: {e}", p.path)))?);
        }
        progress.advance(chunk.len() as u64);
    }
    Ok(vs)
}
