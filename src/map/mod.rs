//! Zero-shot maps: scores of one prompt against every tile of a region, scaled and drawn as a
//! PNG heatmap (with title, legend and a world file), a GeoJSON FeatureCollection of tile
//! footprints and a float32 Cloud-Optimized GeoTIFF of the raw scores (the CSV is written by
//! the map job).
//!
//! Scaling follows the Sat2Cap reference: `norm = (s - min) / (max - min)` over the region.
//! When every score is equal there is no contrast to show; every cell then gets `0.5`.

mod geotiff;
mod grid;
mod render;
mod write;
mod xyz;

pub use geotiff::{encode_cog, WGS84_PRJ};
pub use grid::{score_raster, Grid};
pub use render::{render_panels, Panel, RenderOptions, RenderedMap};
pub use write::{geojson_feature, world_file};
pub use xyz::{imagery_layer, score_layer, viewer_html, LEAFLET_CSS, LEAFLET_JS, LEAFLET_LICENSE};

use crate::geo::Point;

/// A tile's footprint in degrees. `west > east` means it crosses the antimeridian.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    /// Western edge, degrees.
    pub west: f64,
    /// Southern edge, degrees.
    pub south: f64,
    /// Eastern edge, degrees.
    pub east: f64,
    /// Northern edge, degrees.
    pub north: f64,
}

impl Footprint {
    /// A box of `half_lat_deg` / `half_lon_deg` degrees either side of `center`: latitude
    /// clamped to the poles, longitude wrapped across the antimeridian (`west > east` then),
    /// the whole circle when `half_lon_deg >= 180`.
    pub fn around(center: Point, half_lat_deg: f64, half_lon_deg: f64) -> Footprint {
        if half_lon_deg >= 180.0 {
            return Footprint {
                west: -180.0,
                south: (center.lat() - half_lat_deg).max(-90.0),
                east: 180.0,
                north: (center.lat() + half_lat_deg).min(90.0),
            };
        }
        let (w, e) = (center.lon() - half_lon_deg, center.lon() + half_lon_deg);
        Footprint {
            west: if w >= -180.0 { w } else { w + 360.0 },
            south: (center.lat() - half_lat_deg).max(-90.0),
            east: if e <= 180.0 { e } else { e - 360.0 },
            north: (center.lat() + half_lat_deg).min(90.0),
        }
    }

    /// Width in degrees of longitude (handles the antimeridian).
    pub fn width_deg(&self) -> f64 {
        if self.west <= self.east {
            self.east - self.west
        } else {
            self.east + 360.0 - self.west
        }
    }
}

/// One tile of a map with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct MapCell {
    /// The tile's id in its collection.
    pub id: u64,
    /// Centre of the tile.
    pub center: Point,
    /// Footprint of the tile.
    pub footprint: Footprint,
    /// Cosine similarity with the prompt.
    pub score: f32,
}

/// Min-max scaling over a region, as the reference does; all-equal scores give `0.5` each.
/// Non-finite scores are not expected (cosines of validated vectors) and map to `0.0`.
pub fn min_max_scale(scores: &[f32]) -> Vec<f32> {
    let finite = scores.iter().copied().filter(|s| s.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    let span = hi - lo;
    scores
        .iter()
        .map(|&s| {
            if !s.is_finite() {
                0.0
            } else if span > 0.0 {
                ((s - lo) / span).clamp(0.0, 1.0)
            } else {
                0.5
            }
        })
        .collect()
}

/// The region to draw, `[west, south, east, north]` in degrees (west > east crosses the
/// antimeridian): the given bbox, or the union of the cells' footprints.
pub fn region_of(cells: &[MapCell]) -> Option<Footprint> {
    let first = cells.first()?;
    // Unwrap longitudes relative to the first cell so a region across the dateline stays compact.
    let base = first.footprint.west;
    let unwrap = |lon: f64| {
        if lon < base - 180.0 {
            lon + 360.0
        } else if lon > base + 180.0 {
            lon - 360.0
        } else {
            lon
        }
    };
    let mut r = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for c in cells {
        let w = unwrap(c.footprint.west);
        let e = w + c.footprint.width_deg();
        r.0 = r.0.min(w);
        r.1 = r.1.min(c.footprint.south);
        r.2 = r.2.max(e);
        r.3 = r.3.max(c.footprint.north);
    }
    Some(Footprint {
        west: crate::geo::wrap_lon(r.0),
        south: r.1,
        east: if r.2 - r.0 >= 360.0 {
            crate::geo::wrap_lon(r.0) + 360.0
        } else {
            crate::geo::wrap_lon(r.2)
        },
        north: r.3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_matches_reference() {
        assert_eq!(min_max_scale(&[1.0, 3.0, 2.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(min_max_scale(&[0.2, 0.2]), vec![0.5, 0.5]);
        assert_eq!(min_max_scale(&[]), Vec::<f32>::new());
    }

    #[test]
    fn region_across_the_dateline() {
        let cell = |lon: f64| MapCell {
            id: 0,
            center: Point::new(0.0, lon).unwrap(),
            footprint: Footprint::around(Point::new(0.0, lon).unwrap(), 0.5, 0.5),
            score: 0.0,
        };
        let r = region_of(&[cell(179.0), cell(-179.0)]).unwrap();
        assert_eq!((r.west, r.east), (178.5, -178.5));
        assert!((r.width_deg() - 3.0).abs() < 1e-9);
    }
}
