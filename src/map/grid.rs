//! The regular grid under a map's tiles: the score raster a GeoTIFF holds.
//!
//! The pixel is the tiles' own size (the median footprint width and height), the grid's
//! corner the region's north-west corner, so that on a tile grid each tile is one pixel
//! (or a block of pixels where tiles are larger than the median) and each pixel centre
//! lies in exactly one tile. A pixel takes the score of the tile whose footprint holds its
//! centre (the later tile by id where footprints overlap), NaN where none does.

use super::geotiff::{Raster, MAX_RASTER_PIXELS};
use super::{region_of, MapCell};

/// A regular lon/lat grid: `width x height` pixels of `px x py` degrees from the
/// north-west corner `(west, north)` (`west` may be followed by longitudes past 180 when the
/// grid crosses the antimeridian).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Western edge.
    pub west: f64,
    /// Northern edge.
    pub north: f64,
    /// Pixel width, degrees.
    pub px: f64,
    /// Pixel height, degrees.
    pub py: f64,
}

impl Grid {
    /// The grid under `cells` (see the module docs), holding at most `bands` values a pixel
    /// within [`MAX_RASTER_PIXELS`].
    pub fn of(cells: &[MapCell], bands: usize) -> Result<Grid, String> {
        let region = region_of(cells).ok_or("no tiles")?;
        let mut widths: Vec<f64> = cells.iter().map(|c| c.footprint.width_deg()).collect();
        let mut heights: Vec<f64> = cells
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
        if cols * rows * bands.max(1) as f64 > MAX_RASTER_PIXELS as f64 {
            return Err(format!(
                "the region is {cols} x {rows} tiles wide; a raster of it would hold more than \
                 {MAX_RASTER_PIXELS} values: narrow it (--bbox, --aoi)"
            ));
        }
        Ok(Grid {
            width: cols as u32,
            height: rows as u32,
            west: region.west,
            north: region.north,
            px,
            py,
        })
    }

    /// Pixels in all.
    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// For each pixel, the index in `cells` of the cell whose footprint holds its centre
    /// (the later one where they overlap), `u32::MAX` for none.
    pub fn cell_index(&self, cells: &[MapCell]) -> Vec<u32> {
        let mut v = vec![u32::MAX; self.pixels()];
        // Longitudes relative to the western edge, unwrapped east across the antimeridian.
        let east_of = |lon: f64| (lon - self.west).rem_euclid(360.0);
        for (i, c) in cells.iter().enumerate() {
            let f = &c.footprint;
            // A footprint of the whole circle starts at the grid's edge.
            let x0 = if f.width_deg() >= 360.0 {
                0.0
            } else {
                east_of(f.west)
            };
            let x1 = x0 + f.width_deg();
            let (c0, c1) = span(x0 / self.px, x1 / self.px, self.width);
            let (r0, r1) = span(
                (self.north - f.north) / self.py,
                (self.north - f.south) / self.py,
                self.height,
            );
            for r in r0..r1 {
                let row = &mut v[r * self.width as usize..(r + 1) * self.width as usize];
                row[c0..c1].fill(i as u32);
            }
        }
        v
    }

    /// The pixel holding `(lon, lat)`, if any.
    pub fn pixel(&self, lon: f64, lat: f64) -> Option<usize> {
        let x = (lon - self.west).rem_euclid(360.0) / self.px;
        let y = (self.north - lat) / self.py;
        if !(x >= 0.0 && y >= 0.0 && x < f64::from(self.width) && y < f64::from(self.height)) {
            return None;
        }
        Some(y as usize * self.width as usize + x as usize)
    }
}

/// The raster of `panels` (name, cells; every panel the same tiles in the same order).
pub fn score_raster(panels: &[(String, &[MapCell])]) -> Result<Raster, String> {
    let (_, first) = panels.first().ok_or("no panel")?;
    let grid = Grid::of(first, panels.len())?;
    let index = grid.cell_index(first);
    let mut bands = Vec::with_capacity(panels.len());
    for (name, cells) in panels {
        if cells.len() != first.len() {
            return Err(format!(
                "panel '{name}' has {} tiles, not {}",
                cells.len(),
                first.len()
            ));
        }
        let v = index
            .iter()
            .map(|&i| cells.get(i as usize).map_or(f32::NAN, |c| c.score))
            .collect();
        bands.push((name.clone(), v));
    }
    Ok(Raster { grid, bands })
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
        assert_eq!((r.grid.width, r.grid.height), (3, 2));
        assert!((r.grid.px - 0.01).abs() < 1e-9 && (r.grid.west - 6.595).abs() < 1e-9);
        // Row 0 is the northern one.
        assert_eq!(r.get(0, 0, 0), Some(3.0));
        assert!(r.get(0, 1, 0).unwrap().is_nan());
        assert_eq!(r.get(0, 2, 1), Some(2.0));
    }

    #[test]
    fn across_the_antimeridian() {
        let cells = [cell(0, 0.0, 179.995, 1.0), cell(1, 0.0, -179.995, 2.0)];
        let r = score_raster(&[("p".into(), &cells[..])]).unwrap();
        assert_eq!((r.grid.width, r.grid.height), (2, 1));
        assert!((r.grid.west - 179.99).abs() < 1e-9);
        assert_eq!((r.get(0, 0, 0), r.get(0, 1, 0)), (Some(1.0), Some(2.0)));
    }
}
