//! The files of a map: `PREFIX.png` (one heatmap panel per prompt), `.geojson`, `.csv` and
//! the PNG's world file `.pgw`, written all or none.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::JobError;
use crate::map::{
    min_max_scale, region_of, render_panels, write_geojson, write_world_file, MapCell,
    RenderOptions,
};

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

impl std::fmt::Display for MapFiles {
    /// `PNG (W x H px), GEOJSON, CSV, PGW`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} x {} px), {}, {}, {}",
            self.png.display(),
            self.width,
            self.height,
            self.geojson.display(),
            self.csv.display(),
            self.pgw.display()
        )
    }
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
