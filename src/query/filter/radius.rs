//! [`Radius`]: points within a great-circle (haversine) distance of a centre.

use super::{check_lat, lon_span_cover, Cover, Spatial};
use crate::geo::{haversine_km, Point, EARTH_RADIUS_KM};
use crate::index::spatial::Rect;
use crate::query::QueryError;

/// Points within a great-circle distance of a centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Radius {
    center: Point,
    radius_km: f64,
    /// Rectangles covering the spherical cap.
    cover: Cover,
    /// Latitude difference (degrees, with margin) beyond which a point is surely outside.
    max_dlat_deg: f64,
    /// The centre on the unit sphere ([`crate::geo::unit_vector`]), in f32.
    unit: [f32; 3],
    /// Squared chord of the radius on the unit sphere, `4 sin²(δ/2)`; above 4 (a radius of
    /// half the circumference or more) every point is inside.
    chord2: f64,
}

/// Absolute band around [`Radius`]'s squared-chord threshold inside which
/// [`Radius::contains_unit`] defers to the exact haversine test: f32 unit vectors put the
/// squared chord within ~4e-6 of its exact value.
const CHORD2_BAND: f64 = 1e-5;

impl Radius {
    /// Validates the centre (`lat` in `[-90, 90]`, `lon` finite, wrapped) and
    /// `radius_km >= 0`, finite.
    pub fn new(lat: f64, lon: f64, radius_km: f64) -> Result<Radius, QueryError> {
        check_lat(lat)?;
        if !lon.is_finite() {
            return Err(QueryError::Longitude(lon));
        }
        if !radius_km.is_finite() || radius_km < 0.0 {
            return Err(QueryError::Radius(radius_km));
        }
        let center = Point::new(lat, lon).map_err(|_| QueryError::Latitude(lat))?;
        let delta = radius_km / EARTH_RADIUS_KM;
        let max_dlat_deg = delta.to_degrees() * (1.0 + 1e-7) + 1e-7;
        let chord2 = if delta >= std::f64::consts::PI {
            f64::INFINITY
        } else {
            4.0 * (delta / 2.0).sin().powi(2)
        };
        Ok(Radius {
            center,
            radius_km,
            cover: cap_cover(center, radius_km),
            max_dlat_deg,
            unit: crate::geo::unit_vector_f32(center),
            chord2,
        })
    }

    /// The centre.
    pub fn center(&self) -> Point {
        self.center
    }

    /// The radius in kilometres.
    pub fn radius_km(&self) -> f64 {
        self.radius_km
    }

    /// Exact membership: haversine distance `<= radius_km`.
    #[inline]
    pub fn contains(&self, p: Point) -> bool {
        // The great-circle distance is at least R * |Δlat|: most far rows are rejected here
        // without trigonometry (the margin keeps this a strict superset of the exact test).
        if (p.lat() - self.center.lat()).abs() > self.max_dlat_deg {
            return false;
        }
        haversine_km(self.center, p) <= self.radius_km
    }

    white_box! {
    /// [`Radius::contains`] for a point whose unit vector ([`crate::geo::unit_vector`], in
    /// f32) is `u`: a squared chord clearly below or above the radius's decides with six
    /// multiplications; points within a thin band of the boundary get the exact haversine
    /// test, so the answer is always the same as [`Radius::contains`]'s.
    #[inline]
    fn contains_unit(&self, p: Point, u: [f32; 3]) -> bool {
        let (lo, hi) = self.chord2_band();
        let c2 = self.chord2_to(u);
        if c2 < lo {
            true
        } else if c2 > hi {
            false
        } else {
            self.contains(p)
        }
    }
    }

    /// Squared chord (f32) from the centre's unit vector to `u`.
    #[inline]
    fn chord2_to(&self, u: [f32; 3]) -> f32 {
        let d = [
            u[0] - self.unit[0],
            u[1] - self.unit[1],
            u[2] - self.unit[2],
        ];
        d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    }

    /// The unit-vector test's thresholds: a squared chord below the first is inside, above
    /// the second outside, in between (or NaN) the haversine decides. The band (1e-5 either
    /// side) is far wider than f32 rounding of the chords or of these thresholds.
    fn chord2_band(&self) -> (f32, f32) {
        (
            (self.chord2 - CHORD2_BAND) as f32,
            (self.chord2 + CHORD2_BAND) as f32,
        )
    }

    white_box! {
    /// Calls `emit(row)`, in ascending order, for every row whose point `points[row]` (unit
    /// vector `units[row]`) is within the radius: the answers of
    /// [`Radius::contains_unit`], computed 64 rows at a time (the squared chords of a block
    /// in one vectorisable loop, the verdicts as bit masks). Rows past the shorter slice
    /// are not visited.
    fn scan_units(
        &self,
        points: &[Point],
        units: &[[f32; 3]],
        mut emit: impl FnMut(u32),
    ) {
        let (lo, hi) = self.chord2_band();
        for (b, (ps, us)) in points.chunks(64).zip(units.chunks(64)).enumerate() {
            let mut c2 = [f32::NAN; 64];
            for (x, &u) in c2.iter_mut().zip(us) {
                *x = self.chord2_to(u);
            }
            let len = ps.len().min(us.len());
            let (mut inside, mut outside) = (0u64, 0u64);
            for (i, &x) in c2.iter().enumerate().take(len) {
                inside |= u64::from(x < lo) << i;
                outside |= u64::from(x > hi) << i;
            }
            let valid = u64::MAX.checked_shr(64 - len as u32).unwrap_or(0);
            // Neither below nor above (the band, or NaN): the haversine decides.
            let band = valid & !inside & !outside;
            let mut todo = inside | band;
            while todo != 0 {
                let i = todo.trailing_zeros() as usize;
                todo &= todo - 1;
                let keep = inside >> i & 1 == 1 || ps.get(i).is_some_and(|&p| self.contains(p));
                if keep {
                    emit((b * 64 + i) as u32);
                }
            }
        }
    }
    }

    white_box! {
    /// Whether every location in `rect` (not crossing the antimeridian) is surely within the
    /// radius. When the rectangle holds the centre's antipodal meridian: false. Otherwise the
    /// farthest point lies on a meridian edge, at a corner or at the edge's interior extremum
    /// (checked too: a corners-only test wrongly covered rectangles near the antipodal
    /// meridian, found by the `filter_plan` fuzz target); each must be inside with a relative
    /// margin of 1e-9, far above haversine rounding.
    fn covers_rect(&self, rect: &Rect) -> bool {
        let anti = crate::geo::wrap_lon(self.center.lon() + 180.0);
        if (rect.lon_min <= anti && anti <= rect.lon_max)
            || (anti == 180.0 && rect.lon_min <= -180.0)
        {
            return false;
        }
        let limit = self.radius_km * (1.0 - 1e-9) - 1e-9;
        let inside = |lat: f64, lon: f64| {
            Point::new(lat, lon).is_ok_and(|p| haversine_km(self.center, p) <= limit)
        };
        // For a fixed latitude the distance grows with |dlon|, so (the antipodal meridian
        // being outside the rectangle) the farthest points lie on the two meridian edges.
        // Along a meridian, cos(distance) = R cos(lat - a) with
        // a = atan2(sin lat_c, cos lat_c cos dlon): besides the corners, its minimum (the
        // farthest point) may sit inside the edge, at lat = a +- 180 degrees.
        let (sin_c, cos_c) = self.center.lat().to_radians().sin_cos();
        [rect.lon_min, rect.lon_max].iter().all(|&lon| {
            let dlon = (lon - self.center.lon()).to_radians();
            let a = sin_c.atan2(cos_c * dlon.cos()).to_degrees();
            let far = if a > 0.0 { a - 180.0 } else { a + 180.0 };
            inside(rect.lat_min, lon)
                && inside(rect.lat_max, lon)
                && !(rect.lat_min < far && far < rect.lat_max && !inside(far, lon))
        })
    }
    }
}

/// Rectangles covering the spherical cap of `radius_km` around `center`.
fn cap_cover(center: Point, radius_km: f64) -> Cover {
    const MARGIN_DEG: f64 = 1e-6;
    let delta = radius_km / EARTH_RADIUS_KM; // angular radius, radians
    if delta >= std::f64::consts::PI {
        return Cover::one(Rect::WORLD);
    }
    let (lat, lon) = (center.lat(), center.lon());
    let delta_deg = delta.to_degrees();
    let lat_min = lat - delta_deg - MARGIN_DEG;
    let lat_max = lat + delta_deg + MARGIN_DEG;
    if lat_max >= 90.0 || lat_min <= -90.0 {
        // The cap contains a pole: every longitude is reached.
        return Cover::one(Rect {
            lon_min: -180.0,
            lat_min: lat_min.max(-90.0),
            lon_max: 180.0,
            lat_max: lat_max.min(90.0),
        });
    }
    // Widest longitude offset of a cap not containing a pole: asin(sin δ / cos φ).
    let s = delta.sin() / lat.to_radians().cos();
    if s.is_nan() || s >= 1.0 {
        return Cover::one(Rect {
            lon_min: -180.0,
            lat_min,
            lon_max: 180.0,
            lat_max,
        });
    }
    let dlon = s.asin().to_degrees() + MARGIN_DEG;
    lon_span_cover(lon - dlon, lon + dlon, lat_min, lat_max)
}

impl Spatial for Radius {
    fn cover(&self) -> &Cover {
        &self.cover
    }

    fn holds_whole(&self, rect: &Rect) -> bool {
        self.covers_rect(rect)
    }
}
