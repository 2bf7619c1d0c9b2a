//! Text outputs of a map: GeoJSON footprints, CSV rows and the PNG's world file.

use std::io::Write;
use std::path::Path;

use super::{Footprint, MapCell, RenderedMap};

/// Writes a GeoJSON FeatureCollection: one Polygon feature per cell (its footprint, split at
/// the antimeridian into a MultiPolygon when it crosses it) with `id`, `similarity` and
/// `norm_similarity` properties, plus `prompt`.
pub fn write_geojson(
    path: &Path,
    prompt: &str,
    cells: &[MapCell],
    norm: &[f32],
) -> std::io::Result<()> {
    let ring = |w: f64, s: f64, e: f64, n: f64| {
        serde_json::json!([[[w, s], [e, s], [e, n], [w, n], [w, s]]])
    };
    let features: Vec<serde_json::Value> = cells
        .iter()
        .zip(norm)
        .map(|(c, &t)| {
            let f = &c.footprint;
            let geometry = if f.west <= f.east {
                serde_json::json!({"type": "Polygon", "coordinates": ring(f.west, f.south, f.east, f.north)})
            } else {
                serde_json::json!({"type": "MultiPolygon", "coordinates": [
                    ring(f.west, f.south, 180.0, f.north),
                    ring(-180.0, f.south, f.east, f.north),
                ]})
            };
            serde_json::json!({
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "id": c.id,
                    "lat": c.center.lat(),
                    "lon": c.center.lon(),
                    "similarity": c.score,
                    "norm_similarity": t,
                    "prompt": prompt,
                },
            })
        })
        .collect();
    let doc = serde_json::json!({"type": "FeatureCollection", "features": features});
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer(&mut f, &doc)?;
    f.write_all(b"\n")?;
    f.flush()
}

/// Writes an ESRI world file (`.pgw`) placing the first panel's map area of `map`: pixel size,
/// rotation terms, and the centre of the image's upper-left pixel, in degrees (EPSG:4326).
pub fn write_world_file(path: &Path, map: &RenderedMap) -> std::io::Result<()> {
    let Footprint {
        west, north, south, ..
    } = map.region;
    let (w, h) = map.map_size_px;
    let px = map.region.width_deg() / f64::from(w.max(1));
    let py = (north - south) / f64::from(h.max(1));
    let (ox, oy) = map.map_origin_px;
    let x = west - f64::from(ox) * px + px / 2.0;
    let y = north + f64::from(oy) * py - py / 2.0;
    std::fs::write(
        path,
        format!("{px:.12}\n0.0\n0.0\n{:.12}\n{x:.12}\n{y:.12}\n", -py),
    )
}
