//! Fuzz-target bodies for the GIS inputs: GeoJSON areas and examples (`geojson_area`) and
//! GeoTIFF scenes (`geotiff_scene`).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::geo::Point;
use crate::io::geojson::{parse_area, parse_examples, Place};
use crate::io::raster::Scene;

/// Any bytes as an area of interest and as a file of examples: an error, or an area whose
/// membership tests run on a grid of points without panicking (and that holds a vertex of
/// its first ring's box or not, consistently with itself).
pub fn geojson_area(data: &[u8]) {
    if let Ok(area) = parse_area(data) {
        probe(&area);
    }
    if let Ok(examples) = parse_examples(data) {
        for e in examples {
            match e.place {
                Place::Point(p) => assert!(p.lat().abs() <= 90.0 && p.lon().abs() <= 180.0),
                Place::Area(a) => probe(&a),
            }
        }
    }
}

fn probe(area: &crate::Area) {
    assert!(!area.parts().is_empty());
    for lat in [-90.0, -45.0, 0.0, 0.5, 45.0, 90.0] {
        for lon in [-180.0, -90.0, 0.0, 0.5, 90.0, 179.999] {
            let p = Point::new(lat, lon).expect("a valid point");
            let _ = area.contains(p);
        }
    }
}

/// Any bytes as a GeoTIFF file: an error, or a scene whose first rows read (every band up to
/// three) as `width x rows x bands` samples, or an error; never a panic, never more memory
/// than the reader's chunk limit.
pub fn geotiff_scene(data: &[u8]) {
    let path = std::env::temp_dir().join(format!(
        "sat2cap-fuzz-{}-{}.tif",
        std::process::id(),
        SCENE_NO.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    scene_path(&path);
    let _ = std::fs::remove_file(&path);
}

/// Numbers the temporary files of concurrent runs.
static SCENE_NO: AtomicU64 = AtomicU64::new(0);

fn scene_path(path: &std::path::Path) {
    let Ok(mut scene) = Scene::open(path) else {
        return;
    };
    assert!(scene.width > 0 && scene.height > 0 && scene.bands > 0);
    let bands: Vec<u16> = (0..scene.bands.min(3)).collect();
    let rows = scene.height.min(4);
    // Very wide scenes would make the output buffer large: a fuzz input says nothing about
    // memory, so only narrow ones are read.
    if u64::from(scene.width) * u64::from(rows) * bands.len() as u64 > 1 << 22 {
        return;
    }
    if let Ok(v) = scene.read_rows(0, rows, &bands) {
        assert_eq!(v.len(), scene.width as usize * rows as usize * bands.len());
    }
    let _ = scene
        .crs
        .to_lon_lat(scene.transform.0[0], scene.transform.0[3]);
}
