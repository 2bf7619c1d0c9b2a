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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    let w = (lon + 180.0).rem_euclid(360.0) - 180.0;
    // rem_euclid can round up to exactly 360 for tiny negative inputs.
    if w >= 180.0 {
        w - 360.0
    } else {
        w
    }
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
