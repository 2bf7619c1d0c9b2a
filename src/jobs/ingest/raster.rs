//! Ingest of GeoTIFF / COG scenes: each scene cut into square chips of a chosen ground
//! size, three bands mapped to 8-bit RGB, chips that are mostly nodata skipped, the rest
//! embedded with the overhead encoder and stored with their place, footprint (reprojected
//! to lon/lat) and pixel window. The scene is read a row of chips at a time on a worker
//! thread while the model encodes the previous batch: memory stays bounded by one row of
//! chips whatever the scene's size.

use super::*;
use crate::encoders::Image;
use crate::io::raster::Scene;

/// Options of [`ingest_raster`].
#[derive(Debug, Clone)]
pub struct RasterOptions {
    /// Collection (default `overhead`), `--replace`, `--force-model`, `--skip-bad`.
    pub common: IngestOptions,
    /// The three bands (1-based) mapped to red, green and blue; a single band is grey.
    /// `None`: 1,2,3 (or 1 for a one-band scene).
    pub bands: Option<Vec<u16>>,
    /// Chip side in scene pixels (default [`DEFAULT_CHIP_PX`]).
    pub chip_px: Option<u32>,
    /// Ground sample distance the chips should have, metres per pixel: the chip side is
    /// then `224 x gsd / the scene's pixel size` scene pixels (the encoder resizes each chip
    /// to 224). Exclusive with `chip_px`.
    pub gsd: Option<f64>,
    /// Sample values mapped to 0 and 255 (every band); `None`: 8-bit scenes as they are,
    /// others stretched per band between the 2nd and 98th percentiles of a sample.
    pub range: Option<(f64, f64)>,
    /// Chips with more than this fraction of nodata pixels are skipped.
    pub max_nodata: f64,
    /// Capture time stored with every chip (unix seconds).
    pub time: Option<i64>,
    /// The same on the local wall clock (recorded in the payload).
    pub wall: Option<crate::time::DateTime>,
}

impl Default for RasterOptions {
    fn default() -> RasterOptions {
        RasterOptions {
            common: IngestOptions::default(),
            bands: None,
            chip_px: None,
            gsd: None,
            range: None,
            max_nodata: 0.5,
            time: None,
            wall: None,
        }
    }
}

/// The chip side the Sat2Cap encoder takes: 224 px.
pub const DEFAULT_CHIP_PX: u32 = 224;

/// Rows sampled (spread over the scene) for the percentile stretch.
const STRETCH_ROWS: u32 = 16;

/// A chip ready to store.
struct Chip {
    key: String,
    window: [u32; 4],
    center: Point,
    footprint: [f64; 4],
    slot: Slot,
}

/// Ingests the chips of each scene in `scenes` (see the module docs); a chip's key is its
/// scene's path and pixel window, so re-ingesting a scene skips (or, with `replace`,
/// replaces) its chips.
pub fn ingest_raster(
    db: &mut Db,
    enc: &dyn Embedder,
    scenes: &[PathBuf],
    opts: &RasterOptions,
    progress: &dyn Progress,
) -> Result<IngestReport, JobError> {
    if opts.chip_px.is_some() && opts.gsd.is_some() {
        return Err(JobError::input(
            "give a chip size in pixels or a ground sample distance, not both",
        ));
    }
    if !(0.0..=1.0).contains(&opts.max_nodata) {
        return Err(JobError::input(format!(
            "max nodata fraction {} is not in 0..=1",
            opts.max_nodata
        )));
    }
    if let Some((lo, hi)) = opts.range {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(JobError::input(format!(
                "range {lo}..{hi}: the low end must be below the high end"
            )));
        }
    }
    // Every scene opens (header, CRS) before anything is encoded.
    let mut opened = Vec::with_capacity(scenes.len());
    for p in scenes {
        let path = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let scene =
            Scene::open(&path).map_err(|e| JobError::input(format!("{}: {e}", p.display())))?;
        let bands = pick_bands(&scene, opts.bands.as_deref())
            .map_err(|e| JobError::input(format!("{}: {e}", p.display())))?;
        let side = chip_side(&scene, opts)
            .map_err(|e| JobError::input(format!("{}: {e}", p.display())))?;
        opened.push((scene, bands, side));
    }
    let coll = &opts.common.collection;
    let model = enc.fingerprint(EncoderKind::Sat2capOverhead);
    let mut target = prepare(db, &opts.common, &model, &|p| {
        payload_key(p, "key", &|_| None)
    })?;
    let mut report = IngestReport::default();
    let total: u64 = opened
        .iter()
        .map(|(s, _, side)| u64::from(s.width / side) * u64::from(s.height / side))
        .sum();
    progress.begin("encode chips", Some(total), Unit::Items);
    for (mut scene, bands, side) in opened {
        let name = scene.path().display().to_string();
        let stretch = stretch(&mut scene, &bands, opts)
            .map_err(|e| JobError::input(format!("{name}: {e}")))?;
        let crs = format!("EPSG:{}", scene.crs.epsg);
        let bands1: Vec<u16> = bands.iter().map(|b| b + 1).collect();
        let stretch_pairs: Vec<[f32; 2]> = stretch.iter().map(|&(lo, hi)| [lo, hi]).collect();
        // Slots first: which chips are new, replaced or skipped as present.
        let (across, down) = (scene.width / side, scene.height / side);
        let mut slots = Vec::with_capacity((across * down) as usize);
        for r in 0..down {
            for c in 0..across {
                let key = format!("{name}#{},{},{side}", c * side, r * side);
                slots.push(
                    target
                        .slot(&key, &key, opts.common.replace, &mut report)
                        .map(|s| (key, s)),
                );
            }
        }
        let mut nodata = 0u64;
        let produce = |send: &mut dyn FnMut(super::Ready<Chip>) -> bool| -> Result<(), JobError> {
            let mut batch: (Vec<Chip>, Vec<Image>) = (Vec::new(), Vec::new());
            for r in 0..down {
                // Nothing to read in a row whose chips are all present already.
                if slots[(r * across) as usize..((r + 1) * across) as usize]
                    .iter()
                    .all(Option::is_none)
                {
                    continue;
                }
                let rows = scene.read_rows(r * side, side, &bands).map_err(|e| {
                    JobError::input(format!(
                        "{name}: rows {}..{}: {e}",
                        r * side,
                        (r + 1) * side
                    ))
                })?;
                for c in 0..across {
                    let Some((key, slot)) = &slots[(r * across + c) as usize] else {
                        continue;
                    };
                    let Some(rgb) = chip_rgb(
                        &scene,
                        &rows,
                        c * side,
                        side,
                        &bands,
                        &stretch,
                        opts.max_nodata,
                    ) else {
                        nodata += 1;
                        continue;
                    };
                    let (center, footprint) =
                        place(&scene, c * side, r * side, side).map_err(|e| {
                            JobError::input(format!(
                                "{name}: chip at column {}, row {}: {e}",
                                c * side,
                                r * side
                            ))
                        })?;
                    let img = Image::from_rgb8(side as usize, side as usize, rgb)
                        .map_err(JobError::runtime)?;
                    batch.0.push(Chip {
                        key: key.clone(),
                        window: [c * side, r * side, side, side],
                        center,
                        footprint,
                        slot: *slot,
                    });
                    batch.1.push(img);
                    if batch.0.len() == BATCH && !flush(enc, &mut batch, send) {
                        return Ok(());
                    }
                }
            }
            if !batch.0.is_empty() {
                flush(enc, &mut batch, send);
            }
            Ok(())
        };
        encode_stream(enc, true, produce, |chips, results| {
            for (chip, r) in chips.iter().zip(results) {
                match r {
                    Ok(v) => {
                        let payload = serde_json::json!({
                            "path": name, "window": chip.window, "crs": crs,
                            "footprint": chip.footprint, "key": chip.key,
                            "bands": bands1, "stretch": stretch_pairs,
                            "local_time": opts.wall.map(crate::time::format_wall),
                        });
                        let payload = payload.to_string();
                        let item = NewItem {
                            id: 0,
                            vector: &v,
                            point: chip.center,
                            time: opts.time,
                            payload: Some(&payload),
                        };
                        target.add(db, coll, chip.slot, item, &mut report)?;
                    }
                    Err(e) => opts.common.bad(&mut report, chip.key.clone(), e)?,
                }
            }
            progress.advance(chips.len() as u64);
            Ok(())
        })?;
        if nodata > 0 {
            report.skipped.push((
                name.clone(),
                format!(
                    "{nodata} chips more than {:.0}% nodata",
                    opts.max_nodata * 100.0
                ),
            ));
        }
        let (mx, my) = (scene.width % side, scene.height % side);
        if mx + my > 0 {
            report.skipped.push((
                name.clone(),
                format!("the last {mx} columns and {my} rows (narrower than a chip of {side} px)"),
            ));
        }
    }
    progress.end();
    commit(db, &target, &mut report, &model)?;
    Ok(report)
}

/// The chip `window` of the scene at `path` as ingest made it: `bands` (1-based) mapped
/// through `stretch` to 8-bit RGB (nodata black).
pub(crate) fn chip_image(
    path: &Path,
    window: [u32; 4],
    bands: &[u16],
    stretch: &[[f32; 2]],
) -> Result<Image, String> {
    let [col, row, w, h] = window;
    if w != h || bands.len() != stretch.len() || !(bands.len() == 1 || bands.len() == 3) {
        return Err(format!(
            "{}: a chip window or band list that ingest does not write",
            path.display()
        ));
    }
    let mut scene = Scene::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if col.checked_add(w).is_none_or(|e| e > scene.width) {
        return Err(format!(
            "{}: the chip's window is outside the scene",
            path.display()
        ));
    }
    let bands0: Vec<u16> = bands.iter().map(|b| b.saturating_sub(1)).collect();
    let rows = scene
        .read_rows(row, h, &bands0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let pairs: Vec<(f32, f32)> = stretch.iter().map(|p| (p[0], p[1])).collect();
    let rgb = chip_rgb(&scene, &rows, col, w, &bands0, &pairs, 1.0).ok_or("no pixels")?;
    Image::from_rgb8(w as usize, w as usize, rgb).map_err(|e| e.to_string())
}

/// Prepares and sends a batch; false when the model side has stopped.
fn flush(
    enc: &dyn Embedder,
    batch: &mut (Vec<Chip>, Vec<Image>),
    send: &mut dyn FnMut(super::Ready<Chip>) -> bool,
) -> bool {
    let (chips, images) = std::mem::take(batch);
    let ready = enc
        .prepare_images(&images, true)
        .into_iter()
        .map(|r| r.map_err(|e| strip_index(&e.to_string())))
        .collect();
    send((chips, ready))
}

/// The 0-based bands to read: the given 1-based ones, or 1,2,3 (1 for a one-band scene).
fn pick_bands(scene: &Scene, given: Option<&[u16]>) -> Result<Vec<u16>, String> {
    let bands: Vec<u16> = match given {
        Some(b) => b.to_vec(),
        None if scene.bands >= 3 => vec![1, 2, 3],
        None => vec![1],
    };
    if !(bands.len() == 1 || bands.len() == 3) {
        return Err(format!(
            "{} bands given; give 3 (red, green, blue) or 1 (grey)",
            bands.len()
        ));
    }
    if let Some(b) = bands.iter().find(|&&b| b == 0 || b > scene.bands) {
        return Err(format!("band {b}: the scene has bands 1..={}", scene.bands));
    }
    Ok(bands.iter().map(|b| b - 1).collect())
}

/// The chip side in scene pixels.
fn chip_side(scene: &Scene, opts: &RasterOptions) -> Result<u32, String> {
    let side = match (opts.chip_px, opts.gsd) {
        (Some(px), _) => px,
        (None, Some(gsd)) => {
            if !(gsd.is_finite() && gsd > 0.0) {
                return Err(format!(
                    "ground sample distance {gsd} is not a positive number"
                ));
            }
            let res = pixel_metres(scene)?;
            (f64::from(DEFAULT_CHIP_PX) * gsd / res)
                .round()
                .clamp(0.0, 1e9) as u32
        }
        (None, None) => DEFAULT_CHIP_PX,
    };
    if !(8..=16_384).contains(&side) {
        return Err(format!("a chip of {side} px (8..=16384 px; check --chip-px / --gsd against the scene's pixel size)"));
    }
    if side > scene.width || side > scene.height {
        return Err(format!(
            "the scene ({} x {} px) is smaller than one chip of {side} px",
            scene.width, scene.height
        ));
    }
    Ok(side)
}

/// The scene's pixel size in metres (the mean of its width and height; for a geographic
/// CRS at the scene's centre).
fn pixel_metres(scene: &Scene) -> Result<f64, String> {
    let (w, h) = scene.transform.pixel_size();
    if !scene.crs.is_geographic() {
        // Projected CRSs here are in metres (UTM, Web Mercator) or say their unit in the
        // proj string; proj4rs gives coordinates in metres after its unit conversion.
        return Ok((w + h) / 2.0);
    }
    let (_, lat) = scene
        .transform
        .apply(f64::from(scene.width) / 2.0, f64::from(scene.height) / 2.0);
    let m = crate::geo::EARTH_RADIUS_KM * 1000.0 * std::f64::consts::PI / 180.0;
    Ok((w * lat.to_radians().cos() + h) / 2.0 * m)
}

/// Per-band `(low, high)` mapped to 0 and 255.
fn stretch(
    scene: &mut Scene,
    bands: &[u16],
    opts: &RasterOptions,
) -> Result<Vec<(f32, f32)>, String> {
    if let Some((lo, hi)) = opts.range {
        return Ok(vec![(lo as f32, hi as f32); bands.len()]);
    }
    if scene.bits == 8 && !scene.float {
        return Ok(vec![(0.0, 255.0); bands.len()]);
    }
    let mut samples: Vec<Vec<f32>> = vec![Vec::new(); bands.len()];
    let n = STRETCH_ROWS.min(scene.height);
    let step = (scene.width / 2048).max(1) as usize;
    for i in 0..n {
        let row = (u64::from(i) * u64::from(scene.height - 1) / u64::from(n.max(2) - 1)) as u32;
        let v = scene.read_rows(row, 1, bands)?;
        for px in v.chunks(bands.len()).step_by(step) {
            if !scene.is_nodata(px) {
                for (b, s) in px.iter().enumerate() {
                    samples[b].push(*s);
                }
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut s| {
            if s.is_empty() {
                return (0.0, 1.0);
            }
            s.sort_by(f32::total_cmp);
            let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
            let (lo, hi) = (at(0.02), at(0.98));
            if hi > lo {
                (lo, hi)
            } else {
                (lo, lo + 1.0)
            }
        })
        .collect())
}

/// The chip at column `c0` of a row of chips as 8-bit RGB, or `None` when more than
/// `max_nodata` of it is nodata.
fn chip_rgb(
    scene: &Scene,
    rows: &[f32],
    c0: u32,
    side: u32,
    bands: &[u16],
    stretch: &[(f32, f32)],
    max_nodata: f64,
) -> Option<Vec<u8>> {
    let (w, nb, side) = (scene.width as usize, bands.len(), side as usize);
    let mut rgb = Vec::with_capacity(side * side * 3);
    let mut missing = 0usize;
    for y in 0..side {
        let line = &rows[(y * w + c0 as usize) * nb..(y * w + c0 as usize + side) * nb];
        for px in line.chunks(nb) {
            if scene.is_nodata(px) {
                missing += 1;
                rgb.extend_from_slice(&[0, 0, 0]);
                continue;
            }
            let byte = |b: usize| {
                let (lo, hi) = stretch[b];
                ((px[b] - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8
            };
            if nb == 1 {
                let g = byte(0);
                rgb.extend_from_slice(&[g, g, g]);
            } else {
                rgb.extend_from_slice(&[byte(0), byte(1), byte(2)]);
            }
        }
    }
    (missing as f64 <= max_nodata * (side * side) as f64).then_some(rgb)
}

/// A chip's centre and its footprint `[west, south, east, north]` in lon/lat: the bounding
/// box of its edges reprojected (9 points a side, so a UTM chip's curved edges are held).
fn place(scene: &Scene, col: u32, row: u32, side: u32) -> Result<(Point, [f64; 4]), String> {
    let at = |dx: f64, dy: f64| {
        let (x, y) = scene
            .transform
            .apply(f64::from(col) + dx, f64::from(row) + dy);
        scene.crs.to_lon_lat(x, y)
    };
    let s = f64::from(side);
    let (clon, clat) = at(s / 2.0, s / 2.0)?;
    let center = Point::new(clat, clon).map_err(|e| e.to_string())?;
    let mut lons = Vec::with_capacity(32);
    let (mut south, mut north) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..=8 {
        let t = s * f64::from(i) / 8.0;
        for (dx, dy) in [(t, 0.0), (t, s), (0.0, t), (s, t)] {
            let (lon, lat) = at(dx, dy)?;
            // Unwrapped around the centre, so a chip across the antimeridian stays small.
            let mut d = lon - clon;
            if d > 180.0 {
                d -= 360.0;
            } else if d < -180.0 {
                d += 360.0;
            }
            lons.push(clon + d);
            south = south.min(lat);
            north = north.max(lat);
        }
    }
    let west = lons.iter().copied().fold(f64::INFINITY, f64::min);
    let east = lons.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Ok((
        center,
        [
            crate::geo::wrap_lon(west),
            south,
            crate::geo::wrap_lon(east),
            north,
        ],
    ))
}
