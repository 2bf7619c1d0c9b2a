//! Text outputs of a map: GeoJSON footprints and the PNG's world file, as values the caller
//! writes wherever it writes (see `jobs::write_map`, which stages every output).

use super::{Footprint, MapCell, RenderedMap};

/// The GeoJSON Feature of one cell: its footprint as a Polygon (split at the antimeridian
/// into a MultiPolygon when it crosses it) with `id`, `lat`, `lon`, `similarity`,
/// `norm_similarity` and `prompt` properties.
pub fn geojson_feature(prompt: &str, cell: &MapCell, norm: f32) -> serde_json::Value {
    let ring = |w: f64, s: f64, e: f64, n: f64| {
        serde_json::json!([[[w, s], [e, s], [e, n], [w, n], [w, s]]])
    };
    let f = &cell.footprint;
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
            "id": cell.id,
            "lat": cell.center.lat(),
            "lon": cell.center.lon(),
            "similarity": cell.score,
            "norm_similarity": norm,
            "prompt": prompt,
        },
    })
}

/// The text of an ESRI world file (`.pgw`) placing the first panel's map area of `map`:
/// pixel size, rotation terms, and the centre of the image's upper-left pixel, in degrees
/// (EPSG:4326).
pub fn world_file(map: &RenderedMap) -> String {
    let Footprint {
        west, north, south, ..
    } = map.region;
    let (w, h) = map.map_size_px;
    let px = map.region.width_deg() / f64::from(w.max(1));
    let py = (north - south) / f64::from(h.max(1));
    let (ox, oy) = map.map_origin_px;
    let x = west - f64::from(ox) * px + px / 2.0;
    let y = north + f64::from(oy) * py - py / 2.0;
    format!("{px:.12}\n0.0\n0.0\n{:.12}\n{x:.12}\n{y:.12}\n", -py)
}
