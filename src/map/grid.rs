//! The regular grid under a map's tiles: the score raster a GeoTIFF holds.
//!
//! The pixel is the tiles' own size (the median footprint width and height), the grid's
//! corner the region's north-west corner, so that on a tile grid each tile is one pixel
//! (or a block of pixels where tiles are larger than the median) and each pixel centre
//! lies in exactly one tile. A pixel takes the score of the tile whose footprint holds its
//! centre (the later tile by id where footprints overlap), NaN where none does.

use super::geotiff::{Raster, MAX_RASTER_PIXELS};
use super::{region_of, MapCell};

/// The raster of `panels` (name, cells; every panel the same tiles in the same order).
pub fn score_raster(panels: &[(String, &[MapCell])]) -> Result<Raster, String> {
    let (_, first) = panels.first().ok_or("no panel")?;
    let region = region_of(first).ok_or("no tiles")?;
    let mut widths: Vec<f64> = first.iter().map(|c| c.footprint.width_deg()).collect();
    let mut heights: Vec<f64> = first
        .iter()
        .map(|c| c.footprint.north - c.footprint.south)
        .collect();
    let px = median(&mut widths);
    let py = median(&mut heights);
    if !(px > 0.0 && py > 0.0) {
        return Err("the tiles have no size to make pixels of (zero-width footprints)".into());
    }
    let cols = (region.width_deg() / px - 1e-6).ceil().max(1.0);
    let rows = ((region.north - region.south) / py - 1e-6).ceil().max(1.0);
    let values = cols * rows * panels.len() as f64;
    if values > MAX_RASTER_PIXELS as f64 {
        return Err(format!(
            "the region is {cols} x {rows} tiles wide; a raster of it would hold more than \
             {MAX_RASTER_PIXELS} values: narrow it (--bbox, --aoi)"
        ));
    }
    let (width, height) = (cols as u32, rows as u32);
    let n = width as usize * height as usize;
    // Longitudes relative to the western edge, unwrapped east across the antimeridian.
    let east_of = |lon: f64| (lon - region.west).rem_euclid(360.0);
    let mut bands = Vec::with_capacity(panels.len());
    for (name, cells) in panels {
        if cells.len() != first.len() {
            return Err(format!(
                "panel '{name}' has {} tiles, not {}",
                cells.len(),
                first.len()
            ));
        }
        let mut v = vec![f32::NAN; n];
        for c in cells.iter() {
            let f = &c.footprint;
            let x0 = east_of(f.west);
            // A footprint of the whole circle starts at the grid's edge.
            let x0 = if f.width_deg() >= 360.0 { 0.0 } else { x0 };
            let x1 = x0 + f.width_deg();
            let (c0, c1) = span(x0 / px, x1 / px, width);
            let (r0, r1) = span(
                (region.north - f.north) / py,
                (region.north - f.south) / py,
                height,
            );
            for r in r0..r1 {
                let row = &mut v[r * width as usize..(r + 1) * width as usize];
                row[c0..c1].fill(c.score);
            }
        }
        bands.push((name.clone(), v));
    }
    Ok(Raster {
        width,
        height,
        west: region.west,
        north: region.north,
        px,
        py,
        bands,
    })
}

/// The pixels whose centres lie in `[a, b)` (pixel units), at least the one holding the
/// middle, within `0..len`.
fn span(a: f64, b: f64, len: u32) -> (usize, usize) {
    let len = len as usize;
    let lo = (a - 0.5).ceil().max(0.0) as usize;
    let hi = ((b - 0.5).ceil().max(0.0) as usize).min(len);
    if lo < hi {
        return (lo, hi);
    }
    let mid = (((a + b) / 2.0).floor().max(0.0) as usize).min(len.saturating_sub(1));
    (mid, mid + 1)
}

fn median(v: &mut Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Point;
    use crate::map::Footprint;

    fn cell(id: u64, lat: f64, lon: f64, score: f32) -> MapCell {
        let center = Point::new(lat, lon).unwrap();
        MapCell {
            id,
            center,
            footprint: Footprint::around(center, 0.005, 0.005),
            score,
        }
    }

    #[test]
    fn one_pixel_per_tile_and_nan_between() {
        // A 3 x 2 grid of 0.01-degree tiles with one missing.
        let mut cells = Vec::new();
        for (i, (lat, lon)) in [
            (46.5, 6.6),
            (46.5, 6.61),
            (46.5, 6.62),
            (46.51, 6.6),
            (46.51, 6.62),
        ]
        .into_iter()
        .enumerate()
        {
            cells.push(cell(i as u64, lat, lon, i as f32));
        }
        let r = score_raster(&[("p".into(), &cells[..])]).unwrap();
        assert_eq!((r.width, r.height), (3, 2));
        assert!((r.px - 0.01).abs() < 1e-9 && (r.west - 6.595).abs() < 1e-9);
        // Row 0 is the northern one.
        assert_eq!(r.get(0, 0, 0), Some(3.0));
        assert!(r.get(0, 1, 0).unwrap().is_nan());
        assert_eq!(r.get(0, 2, 1), Some(2.0));
    }

    #[test]
    fn across_the_antimeridian() {
        let cells = [cell(0, 0.0, 179.995, 1.0), cell(1, 0.0, -179.995, 2.0)];
        let r = score_raster(&[("p".into(), &cells[..])]).unwrap();
        assert_eq!((r.width, r.height), (2, 1));
        assert!((r.west - 179.99).abs() < 1e-9);
        assert_eq!((r.get(0, 0, 0), r.get(0, 1, 0)), (Some(1.0), Some(2.0)));
    }
}
