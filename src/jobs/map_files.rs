//! The files of a map: `PREFIX.png` (one heatmap panel per prompt), `.geojson`, `.csv`, the
//! PNG's world file `.pgw` and its CRS `.prj`, and `.tif` (the raw scores, one float32 band
//! per panel, a Cloud-Optimized GeoTIFF in EPSG:4326), written all or none.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::JobError;
use crate::io::output::{commit_all, OutputError, Staged};
use crate::map::{
    geojson_feature, min_max_scale, region_of, render_panels, world_file, MapCell, RenderOptions,
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
    /// The world file's CRS (ESRI WKT of EPSG:4326).
    pub prj: PathBuf,
    /// The scores as a GeoTIFF: one float32 band per panel, NaN where no tile lies.
    pub tif: PathBuf,
    /// Image size.
    pub width: u32,
    /// Image size.
    pub height: u32,
}

impl std::fmt::Display for MapFiles {
    /// `PNG (W x H px), GEOJSON, CSV, PGW, PRJ, TIF`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} x {} px), {}, {}, {}, {}, {}",
            self.png.display(),
            self.width,
            self.height,
            self.geojson.display(),
            self.csv.display(),
            self.pgw.display(),
            self.prj.display(),
            self.tif.display()
        )
    }
}

/// One panel of a map: a prompt (at an hour of the day, for the dynamic encoder) and its
/// scored tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct MapPanel {
    /// The prompt, as the user wrote it (the GeoJSON and CSV carry it verbatim).
    pub prompt: String,
    /// The hour of the day the tiles were encoded at, if one was asked for.
    pub hour: Option<u32>,
    /// The scored tiles.
    pub cells: Vec<MapCell>,
}

impl MapPanel {
    /// A panel of `prompt` without an hour.
    pub fn new(prompt: impl Into<String>, cells: Vec<MapCell>) -> MapPanel {
        MapPanel {
            prompt: prompt.into(),
            hour: None,
            cells,
        }
    }

    /// The caption drawn over the panel: the prompt in quotes, and its hour.
    pub fn caption(&self) -> String {
        match self.hour {
            Some(h) => format!("\"{}\" at {h:02}:00", self.prompt),
            None => format!("\"{}\"", self.prompt),
        }
    }
}

/// Writes `PREFIX.{png,geojson,csv,pgw,prj,tif}` for `panels`. With `tiles` (images
/// in the cells' order) the colours are blended over them. All six or none: each is written
/// to a new temporary file beside it and renamed at the end; a destination that is not a
/// regular file, or one of a database's files, is refused before anything is written.
pub fn write_map(
    prefix: &Path,
    title: &str,
    panels: &[MapPanel],
    tiles: Option<&[Option<RgbImage>]>,
) -> Result<MapFiles, JobError> {
    let first = panels.first().ok_or_else(|| JobError::input("no prompt"))?;
    let region = region_of(&first.cells).ok_or(JobError::input("no tiles in the region"))?;
    let norms: Vec<Vec<f32>> = panels
        .iter()
        .map(|p| min_max_scale(&p.cells.iter().map(|c| c.score).collect::<Vec<_>>()))
        .collect();
    let ps: Vec<crate::map::Panel<'_>> = panels
        .iter()
        .zip(&norms)
        .map(|(p, norm)| crate::map::Panel {
            caption: p.caption(),
            cells: &p.cells,
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
    let tif_bytes = score_tiff(panels)?;
    let files = MapFiles::at(prefix, rendered.image.width(), rendered.image.height());
    let mut staged = Vec::new();
    for p in files.paths() {
        staged.push(Staged::new(p).map_err(output_error)?);
    }
    let [png, geojson, csv, pgw, prj, tif] = &mut staged[..] else {
        return Err(JobError::runtime("six outputs"));
    };
    let fail = |p: &Path, source: std::io::Error| {
        output_error(OutputError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    {
        let mut w = std::io::BufWriter::new(png.file().map_err(output_error)?);
        rendered
            .image
            .write_to(&mut w, image::ImageFormat::Png)
            .map_err(|x| JobError::runtime(format!("writing {}: {x}", files.png.display())))?;
        w.flush().map_err(|x| fail(&files.png, x))?;
    }
    write_geojson_panels(geojson.file().map_err(output_error)?, panels, &norms)
        .map_err(|x| fail(&files.geojson, x))?;
    write_csv_panels(csv.file().map_err(output_error)?, panels, &norms)
        .map_err(|x| fail(&files.csv, x))?;
    pgw.write_all(world_file(&rendered).as_bytes())
        .map_err(output_error)?;
    prj.write_all(crate::map::WGS84_PRJ.as_bytes())
        .map_err(output_error)?;
    tif.write_all(&tif_bytes).map_err(output_error)?;
    commit_all(staged).map_err(output_error)?;
    Ok(files)
}

impl MapFiles {
    /// The four files of `prefix`, for an image of `width` x `height` pixels.
    fn at(prefix: &Path, width: u32, height: u32) -> MapFiles {
        let with = |ext: &str| {
            let mut s = prefix.as_os_str().to_owned();
            s.push(".");
            s.push(ext);
            PathBuf::from(s)
        };
        MapFiles {
            png: with("png"),
            geojson: with("geojson"),
            csv: with("csv"),
            pgw: with("pgw"),
            prj: with("prj"),
            tif: with("tif"),
            width,
            height,
        }
    }

    /// The six paths: PNG, GeoJSON, CSV, world file, its CRS, GeoTIFF.
    fn paths(&self) -> [&Path; 6] {
        [
            &self.png,
            &self.geojson,
            &self.csv,
            &self.pgw,
            &self.prj,
            &self.tif,
        ]
    }
}

/// Checks that the six outputs of `prefix` can be written (a folder that exists, no
/// destination that is not a regular file) before a map's work begins.
#[cfg(feature = "encoders")]
pub fn check_map_outputs(prefix: &Path) -> Result<(), JobError> {
    let shown = prefix.display().to_string();
    if shown.ends_with('/') || prefix.file_name().is_none() {
        return Err(JobError::input(format!(
            "--out {shown}: a map's outputs are PREFIX.png, .geojson, .csv, .pgw, .prj and \
             .tif: give a file prefix, not a folder"
        )));
    }
    if std::fs::symlink_metadata(prefix).is_ok_and(|m| !m.is_file()) {
        return Err(JobError::input(format!(
            "--out {shown} exists and is not a regular file: give a new file prefix"
        )));
    }
    for p in MapFiles::at(prefix, 0, 0).paths() {
        crate::io::output::check(p).map_err(output_error)?;
    }
    Ok(())
}

/// Checks that none of the six outputs of `prefix` is one of `inputs`.
#[cfg(feature = "encoders")]
pub fn check_map_inputs<'a>(
    prefix: &Path,
    inputs: impl Iterator<Item = &'a Path> + Clone,
) -> Result<(), JobError> {
    for p in MapFiles::at(prefix, 0, 0).paths() {
        crate::io::output::check_not_input(p, inputs.clone()).map_err(output_error)?;
    }
    Ok(())
}

/// The GeoTIFF of the panels' raw scores: one band per panel, described by its prompt (and
/// hour).
fn score_tiff(panels: &[MapPanel]) -> Result<Vec<u8>, JobError> {
    let named: Vec<(String, &[crate::map::MapCell])> = panels
        .iter()
        .map(|p| {
            let name = match p.hour {
                Some(h) => format!("{} at {h:02}:00", p.prompt),
                None => p.prompt.clone(),
            };
            (name, &p.cells[..])
        })
        .collect();
    let raster = crate::map::score_raster(&named).map_err(JobError::input)?;
    crate::map::encode_cog(&raster).map_err(JobError::input)
}

/// The file that marks a folder as a web map this tool wrote (and may replace).
const WEB_MAP_MARK: &str = ".sat2cap-web-map";

/// Checks that `dir` can take a web map: new, or one this tool wrote before.
pub(crate) fn check_web_map_dir(dir: &Path) -> Result<(), JobError> {
    match std::fs::symlink_metadata(dir) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() && dir.join(WEB_MAP_MARK).is_file() => Ok(()),
        Ok(_) => Err(JobError::input(format!(
            "--xyz {}: exists and is not a web map this tool wrote: give a new folder",
            dir.display()
        ))),
    }
}

/// Writes a web map of `panels` into the folder `dir`: `scores-N/{z}/{x}/{y}.png` per panel,
/// `imagery/...` when `images` are given (in the cells' order), `index.html` (the viewer,
/// over `basemap` if given), Leaflet beside it. Written into a new folder beside `dir` and
/// renamed to it at the end (a web map written before is replaced; nothing else is).
pub fn write_web_map(
    dir: &Path,
    title: &str,
    panels: &[MapPanel],
    images: Option<&[Option<RgbImage>]>,
    basemap: Option<&str>,
) -> Result<PathBuf, JobError> {
    check_web_map_dir(dir)?;
    let first = panels.first().ok_or_else(|| JobError::input("no prompt"))?;
    let grid = crate::map::Grid::of(&first.cells, 1).map_err(JobError::input)?;
    let index = grid.cell_index(&first.cells);
    let mut layers = Vec::new();
    if let Some(images) = images {
        layers.push(
            crate::map::imagery_layer(&grid, &index, &first.cells, images)
                .map_err(JobError::runtime)?,
        );
    }
    for (i, p) in panels.iter().enumerate() {
        let name = match p.hour {
            Some(h) => format!("{} at {h:02}:00", p.prompt),
            None => p.prompt.clone(),
        };
        layers.push(
            crate::map::score_layer(&grid, &index, &p.cells, &name, &format!("scores-{}", i + 1))
                .map_err(JobError::runtime)?,
        );
    }
    let name = dir
        .file_name()
        .ok_or_else(|| JobError::input(format!("--xyz {}: not a folder name", dir.display())))?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    let io =
        |p: &Path, e: std::io::Error| JobError::runtime(format!("writing {}: {e}", p.display()));
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        let put = |rel: &str, bytes: &[u8]| {
            let p = tmp.join(rel);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
            }
            std::fs::write(&p, bytes).map_err(|e| io(&p, e))
        };
        for l in &layers {
            for ((z, x, y), png) in &l.tiles {
                put(&format!("{}/{z}/{x}/{y}.png", l.folder), png)?;
            }
        }
        put(
            "index.html",
            crate::map::viewer_html(title, &grid, &layers, basemap).as_bytes(),
        )?;
        put("leaflet.js", crate::map::LEAFLET_JS.as_bytes())?;
        put("leaflet.css", crate::map::LEAFLET_CSS.as_bytes())?;
        put(
            "LEAFLET-LICENSE.txt",
            crate::map::LEAFLET_LICENSE.as_bytes(),
        )?;
        put(
            WEB_MAP_MARK,
            b"written by sat2cap map --xyz; the tool may replace this folder\n",
        )?;
        // The web map written before, if any, makes way.
        let old = parent.join(format!(
            "{}.old-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let had = dir.exists();
        if had {
            std::fs::rename(dir, &old).map_err(|e| io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
        if had {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| dir.to_path_buf())
}

/// A failed output: a bad destination is bad input, the rest a runtime failure.
pub(crate) fn output_error(e: OutputError) -> JobError {
    if e.is_input() {
        JobError::input(e)
    } else {
        JobError::runtime(e)
    }
}

/// One GeoJSON feature per tile: the first panel's properties, plus (with several prompts)
/// `panels`, every prompt's scores.
fn write_geojson_panels(
    out: &mut std::fs::File,
    panels: &[MapPanel],
    norms: &[Vec<f32>],
) -> std::io::Result<()> {
    let first = &panels[0];
    let features: Vec<serde_json::Value> = first
        .cells
        .iter()
        .zip(&norms[0])
        .enumerate()
        .map(|(i, (c, &t))| {
            let mut f = geojson_feature(&first.prompt, c, t);
            if let Some(p) = f.get_mut("properties").and_then(|p| p.as_object_mut()) {
                if let Some(h) = first.hour {
                    p.insert("hour".into(), h.into());
                }
                if panels.len() > 1 {
                    let per: Vec<serde_json::Value> = panels
                        .iter()
                        .zip(norms)
                        .map(|(panel, norm)| {
                            let mut v = serde_json::json!({"prompt": panel.prompt,
                                "similarity": panel.cells.get(i).map(|c| c.score),
                                "norm_similarity": norm.get(i)});
                            if let (Some(h), Some(o)) = (panel.hour, v.as_object_mut()) {
                                o.insert("hour".into(), h.into());
                            }
                            v
                        })
                        .collect();
                    p.insert("panels".into(), serde_json::Value::Array(per));
                }
            }
            f
        })
        .collect();
    let doc = serde_json::json!({"type": "FeatureCollection", "features": features});
    let mut w = std::io::BufWriter::new(out);
    serde_json::to_writer(&mut w, &doc)?;
    w.write_all(b"\n")?;
    w.flush()?;
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .flush()
}

/// CSV: `id,lat,lon,prompt,similarity,norm_similarity` (and `hour` when the panels have
/// one), one row per tile and panel; the prompt as the user wrote it.
fn write_csv_panels(
    out: &mut std::fs::File,
    panels: &[MapPanel],
    norms: &[Vec<f32>],
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
    let hours = panels.iter().any(|p| p.hour.is_some());
    let mut header = vec!["id", "lat", "lon", "prompt"];
    if hours {
        header.push("hour");
    }
    header.extend(["similarity", "norm_similarity"]);
    w.write_record(&header)?;
    for (panel, norm) in panels.iter().zip(norms) {
        for (c, t) in panel.cells.iter().zip(norm) {
            let mut row = vec![
                c.id.to_string(),
                c.center.lat().to_string(),
                c.center.lon().to_string(),
                panel.prompt.clone(),
            ];
            if hours {
                row.push(panel.hour.map_or(String::new(), |h| h.to_string()));
            }
            row.extend([c.score.to_string(), t.to_string()]);
            w.write_record(&row)?;
        }
    }
    w.flush()?;
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .flush()
}
