//! [`Polygon`]: points inside one ring of `(lon, lat)` vertices.

use super::{check_lat, lon_span_cover, Cover, Spatial};
use crate::geo::Point;
use crate::query::QueryError;

/// One ring of `(lon, lat)` vertices, even-odd rule, edges straight in the lon/lat plane
/// (plate carrée, not great circles). Dateline: consecutive vertices are unwrapped so that
/// every edge takes the shorter way around (`|Δlon| <= 180`), so a ring given as
/// `170 → -170` crosses the antimeridian rather than circling the globe. Rings are not
/// allowed to enclose a pole (a ring around a pole covers the band it traces, not the cap).
/// Points exactly on an edge may fall either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    /// Unwrapped ring: consecutive longitudes differ by at most 180.
    ring: Vec<(f64, f64)>,
    lon_min: f64,
    lon_max: f64,
    lat_min: f64,
    lat_max: f64,
    /// Rectangles covering the ring's bounding box (split at the antimeridian).
    cover: Cover,
}

impl Polygon {
    /// Validates a ring of at least 3 `(lon, lat)` vertices (the closing vertex may be
    /// repeated or omitted); latitudes in `[-90, 90]`, longitudes finite.
    pub fn new(ring: &[(f64, f64)]) -> Result<Polygon, QueryError> {
        // The signed longitude step from `a` to `b` the shorter way round.
        let step = |a: f64, b: f64| {
            let mut d = b - a;
            d -= 360.0 * (d / 360.0).round();
            d
        };
        let mut v: Vec<(f64, f64)> = Vec::with_capacity(ring.len());
        for (i, &(lon, lat)) in ring.iter().enumerate() {
            check_lat(lat)?;
            if !lon.is_finite() {
                return Err(QueryError::Longitude(lon));
            }
            let lon = crate::geo::wrap_lon(lon);
            let lon = match v.last() {
                Some(&(prev, plat)) => {
                    let d = step(prev, lon);
                    // Half a turn either way: which way the edge goes is a guess.
                    if d.abs() == 180.0 && plat.abs() != 90.0 && lat.abs() != 90.0 {
                        return Err(QueryError::PolygonHalfTurn(i));
                    }
                    prev + d
                }
                None => lon,
            };
            // Repeated vertices add nothing.
            if v.last() != Some(&(lon, lat)) {
                v.push((lon, lat));
            }
        }
        if v.len() > 1 {
            let (f, l) = (v[0], v[v.len() - 1]);
            if (f.0 - l.0).rem_euclid(360.0) == 0.0 && f.1 == l.1 {
                v.pop();
            }
        }
        if v.len() < 3 {
            return Err(QueryError::PolygonTooSmall(v.len()));
        }
        // Around the ring and back to its start: a ring that winds round the globe encloses
        // a pole, which a lon/lat ring cannot describe (its inside would be the band it
        // traces).
        let (first, last) = (v[0], v[v.len() - 1]);
        let back = step(last.0, first.0);
        if back.abs() == 180.0 && first.1.abs() != 90.0 && last.1.abs() != 90.0 {
            return Err(QueryError::PolygonHalfTurn(v.len()));
        }
        if (last.0 + back - first.0).abs() > 180.0 {
            return Err(QueryError::PolygonAroundPole);
        }
        let lon_min = v.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let lon_max = v.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let lat_min = v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let lat_max = v.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        Ok(Polygon {
            ring: v,
            lon_min,
            lon_max,
            lat_min,
            lat_max,
            cover: lon_span_cover(lon_min, lon_max, lat_min, lat_max),
        })
    }

    fn pip(&self, x: f64, y: f64) -> bool {
        if x < self.lon_min || x > self.lon_max || y < self.lat_min || y > self.lat_max {
            return false;
        }
        let mut inside = false;
        let n = self.ring.len();
        let mut j = n - 1;
        for i in 0..n {
            let (xi, yi) = self.ring[i];
            let (xj, yj) = self.ring[j];
            if (yi > y) != (yj > y) {
                let t = (y - yi) / (yj - yi);
                if x < xi + t * (xj - xi) {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }

    /// Exact membership (even-odd rule on the unwrapped ring; the point's longitude is tried
    /// at every 360° shift that meets the ring's longitude span).
    pub fn contains(&self, p: Point) -> bool {
        let (lon, lat) = (p.lon(), p.lat());
        let mut shift = ((self.lon_min - lon) / 360.0).ceil() * 360.0;
        while lon + shift <= self.lon_max {
            if self.pip(lon + shift, lat) {
                return true;
            }
            shift += 360.0;
        }
        false
    }

    /// The ring's bounding box: `(lon_min, lon_max, lat_min, lat_max)`, longitudes unwrapped
    /// (the span may run past 180).
    pub(crate) fn bounds(&self) -> (f64, f64, f64, f64) {
        (self.lon_min, self.lon_max, self.lat_min, self.lat_max)
    }
}

impl Spatial for Polygon {
    fn cover(&self) -> &Cover {
        &self.cover
    }
}
