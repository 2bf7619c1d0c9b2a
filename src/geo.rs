//! Points on the sphere: validation, normalisation and great-circle distance.
//!
//! Latitudes are degrees in `[-90, 90]`; longitudes are degrees, wrapped into `[-180, 180)`
//! on construction (so `190` becomes `-170`). Anything non-finite is an error.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in kilometres (IUGG), used by [`haversine_km`].
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Why a coordinate was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// Latitude outside `[-90, 90]` or not finite.
    #[error("latitude {0} is outside [-90, 90]")]
    Latitude(f64),
    /// Longitude not finite.
    #[error("longitude {0} is not a finite number")]
    Longitude(f64),
}

/// A validated location: latitude in `[-90, 90]`, longitude in `[-180, 180)`, degrees.
///
/// Laid out as a segment's points section stores a row (`lat f64, lon f64`), so that on
/// little-endian hosts search reads the section in place once it has checked every row.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bytemuck::Pod, bytemuck::Zeroable,
)]
#[repr(C)]
pub struct Point {
    lat: f64,
    lon: f64,
}

impl Point {
    /// Validates `lat` and wraps `lon` into `[-180, 180)`.
    pub fn new(lat: f64, lon: f64) -> Result<Point, GeoError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::Latitude(lat));
        }
        if !lon.is_finite() {
            return Err(GeoError::Longitude(lon));
        }
        Ok(Point {
            lat,
            lon: wrap_lon(lon),
        })
    }

    /// The point `(lat, lon)` as stored (latitude in `[-90, 90]`, longitude already in
    /// `[-180, 180)`), or `None` for any other pair: what [`Point::new`] accepts without
    /// wrapping, checked with two range tests.
    #[inline]
    pub(crate) fn from_stored(lat: f64, lon: f64) -> Option<Point> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..180.0).contains(&lon))
            .then_some(Point { lat, lon })
    }

    /// Whether the point is one [`Point::new`] makes (what the check of points read in
    /// place from a file, `BlockRects::build_if_valid`, is tested against).
    #[cfg(test)]
    pub(crate) fn is_valid(&self) -> bool {
        Point::from_stored(self.lat, self.lon).is_some()
    }

    /// Latitude in degrees, `[-90, 90]`.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees, `[-180, 180)`.
    pub fn lon(&self) -> f64 {
        self.lon
    }
}

/// Wraps a finite longitude into `[-180, 180)`.
pub fn wrap_lon(lon: f64) -> f64 {
    if (-180.0..180.0).contains(&lon) {
        return lon;
    }
    let w = (lon + 180.0).rem_euclid(360.0) - 180.0;
    // rem_euclid can round up to exactly 360 for tiny negative inputs.
    if w >= 180.0 {
        w - 360.0
    } else {
        w
    }
}

/// Bits per axis of [`hilbert_key`]: cells of 360/65536 degrees (about 600 m) of longitude.
const HILBERT_BITS: u32 = 16;

/// The position of `p` along a Hilbert curve over the longitude/latitude rectangle (a grid of
/// 2^16 x 2^16 cells). Points close on the curve are close on the ground, and a region's
/// cells fall into few runs of the curve: the order in which segments store their rows.
pub fn hilbert_key(p: Point) -> u32 {
    let side = f64::from(1u32 << HILBERT_BITS);
    let cell = |v: f64| (v * side).clamp(0.0, side - 1.0) as u32;
    hilbert_d(
        cell((p.lon + 180.0) / 360.0),
        cell((p.lat + 90.0) / 180.0),
        HILBERT_BITS,
    )
}

/// The Hilbert-curve index of cell `(x, y)` of a `2^bits x 2^bits` grid (`bits` in 1..=16).
fn hilbert_d(mut x: u32, mut y: u32, bits: u32) -> u32 {
    let mut d = 0u32;
    let mut s = 1u32 << (bits - 1);
    while s > 0 {
        let rx = u32::from(x & s != 0);
        let ry = u32::from(y & s != 0);
        d += s * s * ((3 * rx) ^ ry);
        // Turn the quadrant so that the sub-curve enters and leaves where its neighbours do.
        if ry == 0 {
            if rx == 1 {
                x = s.wrapping_sub(1).wrapping_sub(x) & (s - 1);
                y = s.wrapping_sub(1).wrapping_sub(y) & (s - 1);
            }
            std::mem::swap(&mut x, &mut y);
        }
        x &= s - 1;
        y &= s - 1;
        s /= 2;
    }
    d
}

/// Great-circle distance in kilometres (haversine; exact at the poles and across the dateline).
pub fn haversine_km(a: Point, b: Point) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

/// The point on the unit sphere: `[cos lat cos lon, cos lat sin lon, sin lat]`. The squared
/// chord between two such vectors is `4 h`, with `h` the haversine term of [`haversine_km`].
pub fn unit_vector(p: Point) -> [f64; 3] {
    let (sin_lat, cos_lat) = p.lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = p.lon.to_radians().sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// [`unit_vector`] rounded to f32 (what the wide-filter scans test radii on).
pub fn unit_vector_f32(p: Point) -> [f32; 3] {
    unit_vector(p).map(|x| x as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hilbert_curve_visits_every_cell_once_moving_one_step_at_a_time() {
        for bits in 1..=5 {
            let side = 1u32 << bits;
            let mut at = vec![None; (side * side) as usize];
            for x in 0..side {
                for y in 0..side {
                    let d = hilbert_d(x, y, bits) as usize;
                    assert!(at[d].is_none(), "bits {bits}: index {d} twice");
                    at[d] = Some((x, y));
                }
            }
            let cells: Vec<(u32, u32)> = at.into_iter().map(|c| c.unwrap()).collect();
            for w in cells.windows(2) {
                let step = w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1);
                assert_eq!(step, 1, "bits {bits}: {:?} -> {:?}", w[0], w[1]);
            }
        }
        let corner = |lat, lon| hilbert_key(Point::new(lat, lon).unwrap());
        assert_eq!(corner(-90.0, -180.0), 0);
        // The last cell of the bottom row: the curve ends at the bottom right corner.
        assert_eq!(corner(-90.0, 179.999_999), u32::MAX);
    }

    #[test]
    fn validates_and_wraps() {
        assert!(Point::new(91.0, 0.0).is_err());
        assert!(Point::new(f64::NAN, 0.0).is_err());
        assert!(Point::new(0.0, f64::INFINITY).is_err());
        assert_eq!(Point::new(10.0, 190.0).unwrap().lon(), -170.0);
        assert_eq!(Point::new(10.0, 180.0).unwrap().lon(), -180.0);
        assert_eq!(Point::new(10.0, -540.0).unwrap().lon(), -180.0);
        assert_eq!(Point::new(-90.0, 0.0).unwrap().lat(), -90.0);
    }

    #[test]
    fn haversine_known_values() {
        let p = |la, lo| Point::new(la, lo).unwrap();
        // Across the dateline: 1 degree of longitude at the equator.
        let d = haversine_km(p(0.0, 179.5), p(0.0, -179.5));
        assert!((d - 111.195).abs() < 0.01, "{d}");
        // Pole to pole is half the circumference, whatever the longitudes.
        let d = haversine_km(p(90.0, 10.0), p(-90.0, -123.0));
        assert!(
            (d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6,
            "{d}"
        );
        // Any two longitudes at the pole are the same place.
        assert!(haversine_km(p(90.0, 0.0), p(90.0, 90.0)) < 1e-9);
    }
}
