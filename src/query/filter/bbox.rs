//! [`BBox`]: a latitude/longitude box, possibly crossing the antimeridian.

use super::{check_lat, check_lon, Cover, Spatial};
use crate::geo::Point;
use crate::index::spatial::Rect;
use crate::query::QueryError;

/// A latitude/longitude box, `west, south, east, north` in degrees. `west > east` means the
/// box crosses the antimeridian (e.g. `170, -10, -170, 10`). Longitudes are accepted in
/// `[-180, 180]`; edges are inclusive, and `east = 180` also takes points stored at `-180`
/// (the same meridian).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    west: f64,
    south: f64,
    east: f64,
    north: f64,
    /// Rectangles (none crossing the antimeridian) whose union is the box.
    cover: Cover,
}

impl BBox {
    /// Validates: all finite, latitudes in `[-90, 90]`, longitudes in `[-180, 180]`,
    /// `south <= north` (else [`QueryError::InvertedBBox`]), non-zero width and height
    /// (else [`QueryError::EmptyBBox`]). `west > east` crosses the antimeridian.
    pub fn new(west: f64, south: f64, east: f64, north: f64) -> Result<BBox, QueryError> {
        check_lon(west)?;
        check_lon(east)?;
        check_lat(south)?;
        check_lat(north)?;
        if south > north {
            return Err(QueryError::InvertedBBox { south, north });
        }
        // Width measured eastward from west to east, across the antimeridian when
        // west > east: [180, .., -180, ..] is as empty as [10, .., 10, ..].
        let width = if west <= east {
            east - west
        } else {
            east + 360.0 - west
        };
        if south == north || width == 0.0 {
            return Err(QueryError::EmptyBBox);
        }
        let r = |lon_min, lon_max| Rect {
            lon_min,
            lat_min: south,
            lon_max,
            lat_max: north,
        };
        let cover = if west > east {
            Cover::two(r(west, 180.0), r(-180.0, east))
        } else if east == 180.0 {
            // Points stored at -180 sit on the 180 meridian.
            Cover::two(r(west, east), r(-180.0, -180.0))
        } else {
            Cover::one(r(west, east))
        };
        Ok(BBox {
            west,
            south,
            east,
            north,
            cover,
        })
    }

    /// `[west, south, east, north]`.
    pub fn edges(&self) -> [f64; 4] {
        [self.west, self.south, self.east, self.north]
    }

    /// Whether the box crosses the antimeridian.
    pub fn crosses_antimeridian(&self) -> bool {
        self.west > self.east
    }

    /// Exact membership test.
    #[inline]
    pub fn contains(&self, p: Point) -> bool {
        let (lat, lon) = (p.lat(), p.lon());
        if lat < self.south || lat > self.north {
            return false;
        }
        let lon_ok = |lon: f64| {
            if self.west <= self.east {
                lon >= self.west && lon <= self.east
            } else {
                lon >= self.west || lon <= self.east
            }
        };
        lon_ok(lon) || (lon == -180.0 && lon_ok(180.0))
    }

    white_box! {
    /// Whether every location in `rect` (not crossing the antimeridian) is inside the box.
    fn covers_rect(&self, rect: &Rect) -> bool {
        let lat_ok = rect.lat_min >= self.south && rect.lat_max <= self.north;
        let lon_ok = if self.west <= self.east {
            rect.lon_min >= self.west && rect.lon_max <= self.east
        } else {
            rect.lon_min >= self.west || rect.lon_max <= self.east
        };
        lat_ok && lon_ok
    }
    }
}

impl Spatial for BBox {
    fn cover(&self) -> &Cover {
        &self.cover
    }

    fn holds_whole(&self, rect: &Rect) -> bool {
        self.covers_rect(rect)
    }
}
