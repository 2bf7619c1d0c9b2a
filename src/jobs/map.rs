//! Zero-shot maps from a collection of tiles: cosine of a prompt against every tile in a
//! region, min-max scaled over the region, written as PNG + GeoJSON + CSV + world file.

use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::index::flat::dot_f16_f32;
use crate::map::{
    min_max_scale, region_of, render_panels, write_geojson, write_world_file, Footprint, MapCell,
    RenderOptions,
};
use crate::query::filter::BBox;
use crate::storage::CollectionView;

use super::tiles::{infer_spacing, TilePayload};
use super::JobError;

/// A tile of the region: where it is, and its image file (from the payload) if known.
#[derive(Debug, Clone)]
pub struct RegionTile {
    /// Id in the collection.
    pub id: u64,
    /// Centre and footprint.
    pub cell: MapCell,
    /// Image file, from the payload.
    pub path: Option<PathBuf>,
}

/// The tiles of `view` whose centre lies in `bbox` (all if `None`), ordered by id; `score`
/// left at 0. Tiles without a footprint in their payload get squares of the inferred spacing.
pub fn region_tiles(
    view: &CollectionView,
    bbox: Option<&BBox>,
) -> Result<Vec<RegionTile>, JobError> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for item in view.iter() {
        let item = item.map_err(JobError::runtime)?;
        if bbox.is_some_and(|b| !b.contains(item.point)) {
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
            path: p.map(|p| PathBuf::from(p.path)),
        });
    }
    if !missing.is_empty() {
        let d = infer_spacing(&out.iter().map(|t| t.cell.center).collect::<Vec<_>>()) / 2.0;
        for i in missing {
            out[i].cell.footprint = Footprint::around(out[i].cell.center, d, d);
        }
    }
    out.sort_by_key(|t| t.id);
    if out.is_empty() {
        return Err(JobError::input(format!(
            "no tiles of collection '{}' in the region",
            view.name()
        )));
    }
    Ok(out)
}

/// Cosine of `query` (normalised here) against each tile's stored vector.
pub fn score_stored(
    view: &CollectionView,
    tiles: &[RegionTile],
    query: &[f32],
) -> Result<Vec<MapCell>, JobError> {
    let n = query
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    let q: Vec<f32> = query.iter().map(|x| x / n).collect();
    tiles
        .iter()
        .map(|t| {
            let item = view
                .get(t.id)
                .map_err(JobError::runtime)?
                .ok_or_else(|| JobError::runtime(format!("tile {} vanished", t.id)))?;
            Ok(MapCell {
                score: dot_f16_f32(item.vector, &q),
                ..t.cell.clone()
            })
        })
        .collect()
}

/// Cosines of `query` against given tile vectors (e.g. re-encoded with metadata).
pub fn score_vectors(tiles: &[RegionTile], vectors: &[Vec<f32>], query: &[f32]) -> Vec<MapCell> {
    tiles
        .iter()
        .zip(vectors)
        .map(|(t, v)| MapCell {
            score: v.iter().zip(query).map(|(a, b)| a * b).sum(),
            ..t.cell.clone()
        })
        .collect()
}

/// The files a map wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MapFiles {
    /// The PNG (panels side by side).
    pub png: PathBuf,
    /// GeoJSON, one feature per tile (first prompt's scores; `panels`: every prompt's).
    pub geojson: PathBuf,
    /// CSV `id,lat,lon,prompt,similarity,norm_similarity`, one row per tile and panel.
    pub csv: PathBuf,
    /// World file of the PNG's first panel.
    pub pgw: PathBuf,
    /// Image size.
    pub width: u32,
    /// Image size.
    pub height: u32,
}

/// Writes `PREFIX.{png,geojson,csv,pgw}` for `panels` (caption, cells). With `tiles` (images
/// in the cells' order) the colours are blended over them. Written to temporary names and
/// renamed at the end, so a failure leaves no half-written outputs.
pub fn write_map(
    prefix: &Path,
    title: &str,
    panels: &[(String, Vec<MapCell>)],
    tiles: Option<&[Option<RgbImage>]>,
) -> Result<MapFiles, JobError> {
    let first = panels.first().ok_or_else(|| JobError::input("no prompt"))?;
    let region = region_of(&first.1).ok_or(JobError::input("no tiles in the region"))?;
    let norms: Vec<Vec<f32>> = panels
        .iter()
        .map(|(_, c)| min_max_scale(&c.iter().map(|c| c.score).collect::<Vec<_>>()))
        .collect();
    let ps: Vec<crate::map::Panel<'_>> = panels
        .iter()
        .zip(&norms)
        .map(|((caption, cells), norm)| crate::map::Panel {
            caption: caption.clone(),
            cells,
            norm,
            tiles,
        })
        .collect();
    let opts = RenderOptions {
        panel_width: 512,
        title: title.to_string(),
        heat_alpha: 0.6,
    };
    let rendered = render_panels(region, &ps, &opts).map_err(JobError::input)?;
    let with = |ext: &str| {
        let mut s = prefix.as_os_str().to_owned();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    let tmp = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    };
    let files = MapFiles {
        png: with("png"),
        geojson: with("geojson"),
        csv: with("csv"),
        pgw: with("pgw"),
        width: rendered.image.width(),
        height: rendered.image.height(),
    };
    if let Some(parent) = prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(JobError::input(format!(
                "output folder {} does not exist",
                parent.display()
            )));
        }
    }
    let result = (|| -> Result<(), String> {
        let e = |p: &Path, e: &dyn std::fmt::Display| format!("writing {}: {e}", p.display());
        rendered
            .image
            .save_with_format(tmp(&files.png), image::ImageFormat::Png)
            .map_err(|x| e(&files.png, &x))?;
        // One GeoJSON feature per tile and panel; `prompt` carries the panel caption.
        write_geojson_panels(&tmp(&files.geojson), panels, &norms)
            .map_err(|x| e(&files.geojson, &x))?;
        write_csv_panels(&tmp(&files.csv), panels, &norms).map_err(|x| e(&files.csv, &x))?;
        write_world_file(&tmp(&files.pgw), &rendered).map_err(|x| e(&files.pgw, &x))?;
        for p in [&files.png, &files.geojson, &files.csv, &files.pgw] {
            std::fs::rename(tmp(p), p).map_err(|x| e(p, &x))?;
        }
        Ok(())
    })();
    if let Err(m) = result {
        for p in [&files.png, &files.geojson, &files.csv, &files.pgw] {
            let _ = std::fs::remove_file(tmp(p));
        }
        return Err(JobError::runtime(m));
    }
    Ok(files)
}

fn write_geojson_panels(
    path: &Path,
    panels: &[(String, Vec<MapCell>)],
    norms: &[Vec<f32>],
) -> std::io::Result<()> {
    write_geojson(path, &panels[0].0, &panels[0].1, &norms[0])?;
    if panels.len() == 1 {
        return Ok(());
    }
    // One feature per tile: the first panel's properties, plus `panels` with every prompt's.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    if let Some(fs) = v.get_mut("features").and_then(|f| f.as_array_mut()) {
        for (i, f) in fs.iter_mut().enumerate() {
            let per: Vec<serde_json::Value> = panels
                .iter()
                .zip(norms)
                .map(|((caption, cells), norm)| {
                    serde_json::json!({"prompt": caption,
                        "similarity": cells.get(i).map(|c| c.score),
                        "norm_similarity": norm.get(i)})
                })
                .collect();
            if let Some(p) = f.get_mut("properties").and_then(|p| p.as_object_mut()) {
                p.insert("panels".into(), serde_json::Value::Array(per));
            }
        }
    }
    std::fs::write(path, serde_json::to_vec(&v)?)
}

/// CSV: `id,lat,lon,prompt,similarity,norm_similarity`, one row per tile and panel.
fn write_csv_panels(
    path: &Path,
    panels: &[(String, Vec<MapCell>)],
    norms: &[Vec<f32>],
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "id",
        "lat",
        "lon",
        "prompt",
        "similarity",
        "norm_similarity",
    ])?;
    for ((caption, cells), norm) in panels.iter().zip(norms) {
        for (c, t) in cells.iter().zip(norm) {
            w.write_record([
                c.id.to_string(),
                c.center.lat().to_string(),
                c.center.lon().to_string(),
                caption.clone(),
                c.score.to_string(),
                t.to_string(),
            ])?;
        }
    }
    w.flush()
}

/// Loads tile images (for `--mosaic`), `None` where unreadable.
pub fn load_tile_images(tiles: &[RegionTile]) -> Vec<Option<RgbImage>> {
    tiles
        .iter()
        .map(|t| {
            let p = t.path.as_ref()?;
            let img = image::open(p).ok()?.to_rgb8();
            Some(image::imageops::thumbnail(&img, 128, 128))
        })
        .collect()
}
