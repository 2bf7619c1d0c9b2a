//! Validated filters, exact on the sphere, combined with AND.
//!
//! - [`BBox`]: `west, south, east, north` in degrees. `west > east` means the box crosses the
//!   antimeridian (e.g. `170, -10, -170, 10`). Longitudes are accepted in `[-180, 180]`;
//!   edges are inclusive, and `east = 180` also takes points stored at `-180` (same meridian).
//! - [`Radius`]: great-circle (haversine) distance `<= radius_km` from a centre; the covering
//!   rectangles handle circles that contain a pole (full longitude range) or cross the dateline.
//! - [`Polygon`]: one ring of `(lon, lat)` vertices, even-odd rule, edges straight in the
//!   lon/lat plane (plate carrée, not great circles). Dateline: consecutive vertices are
//!   unwrapped so that every edge takes the shorter way around (`|Δlon| <= 180`), so a ring
//!   given as `170 → -170` crosses the antimeridian rather than circling the globe. Rings are
//!   not allowed to enclose a pole (a ring around a pole covers the band it traces, not the
//!   cap). Points exactly on an edge may fall either way.
//! - [`TimeRange`]: inclusive `[t0, t1]` over optional timestamps; rows without a time never
//!   match a time filter.

use crate::geo::{haversine_km, Point, EARTH_RADIUS_KM};
use crate::index::spatial::Rect;

use super::QueryError;

fn check_lat(lat: f64) -> Result<f64, QueryError> {
    if lat.is_finite() && (-90.0..=90.0).contains(&lat) {
        Ok(lat)
    } else {
        Err(QueryError::Latitude(lat))
    }
}

fn check_lon(lon: f64) -> Result<f64, QueryError> {
    if lon.is_finite() && (-180.0..=180.0).contains(&lon) {
        Ok(lon)
    } else {
        Err(QueryError::Longitude(lon))
    }
}

/// A latitude/longitude box, possibly crossing the antimeridian.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    west: f64,
    south: f64,
    east: f64,
    north: f64,
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
        if south == north || west == east {
            return Err(QueryError::EmptyBBox);
        }
        Ok(BBox {
            west,
            south,
            east,
            north,
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

    /// Whether every location in `rect` (not crossing the antimeridian) is inside the box.
    pub fn covers_rect(&self, rect: &Rect) -> bool {
        let lat_ok = rect.lat_min >= self.south && rect.lat_max <= self.north;
        let lon_ok = if self.west <= self.east {
            rect.lon_min >= self.west && rect.lon_max <= self.east
        } else {
            rect.lon_min >= self.west || rect.lon_max <= self.east
        };
        lat_ok && lon_ok
    }

    /// Rectangles (not crossing the antimeridian) whose union covers the box.
    pub fn rects(&self) -> Vec<Rect> {
        let r = |lon_min, lon_max| Rect {
            lon_min,
            lat_min: self.south,
            lon_max,
            lat_max: self.north,
        };
        let mut out = if self.west <= self.east {
            vec![r(self.west, self.east)]
        } else {
            vec![r(self.west, 180.0), r(-180.0, self.east)]
        };
        if self.west <= self.east && self.east == 180.0 {
            // Points stored at -180 sit on the 180 meridian.
            out.push(r(-180.0, -180.0));
        }
        out
    }
}

/// Points within a great-circle distance of a centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Radius {
    center: Point,
    radius_km: f64,
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

    /// [`Radius::contains`] for a point whose unit vector ([`crate::geo::unit_vector`], in
    /// f32) is `u`: a squared chord clearly below or above the radius's decides with six
    /// multiplications; points within a thin band of the boundary get the exact haversine
    /// test, so the answer is always the same as [`Radius::contains`]'s.
    #[inline]
    pub fn contains_unit(&self, p: Point, u: [f32; 3]) -> bool {
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

    /// Calls `emit(row)`, in ascending order, for every row whose point `points[row]` (unit
    /// vector `units[row]`) is within the radius: the answers of
    /// [`Radius::contains_unit`], computed 64 rows at a time (the squared chords of a block
    /// in one vectorisable loop, the verdicts as bit masks). Rows past the shorter slice
    /// are not visited.
    pub fn scan_units(&self, points: &[Point], units: &[[f32; 3]], mut emit: impl FnMut(u32)) {
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

    /// Whether every location in `rect` (not crossing the antimeridian) is surely within the
    /// radius. When the rectangle holds the centre's antipodal meridian: false. Otherwise the
    /// farthest point lies on a meridian edge, at a corner or at the edge's interior extremum
    /// (checked too: a corners-only test wrongly covered rectangles near the antipodal
    /// meridian, found by the `filter_plan` fuzz target); each must be inside with a relative
    /// margin of 1e-9, far above haversine rounding.
    pub fn covers_rect(&self, rect: &Rect) -> bool {
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

    /// Rectangles covering the spherical cap (a slight outward margin absorbs rounding).
    pub fn rects(&self) -> Vec<Rect> {
        const MARGIN_DEG: f64 = 1e-6;
        let delta = self.radius_km / EARTH_RADIUS_KM; // angular radius, radians
        if delta >= std::f64::consts::PI {
            return vec![Rect::WORLD];
        }
        let (lat, lon) = (self.center.lat(), self.center.lon());
        let delta_deg = delta.to_degrees();
        let lat_min = lat - delta_deg - MARGIN_DEG;
        let lat_max = lat + delta_deg + MARGIN_DEG;
        if lat_max >= 90.0 || lat_min <= -90.0 {
            // The cap contains a pole: every longitude is reached.
            return vec![Rect {
                lon_min: -180.0,
                lat_min: lat_min.max(-90.0),
                lon_max: 180.0,
                lat_max: lat_max.min(90.0),
            }];
        }
        // Widest longitude offset of a cap not containing a pole: asin(sin δ / cos φ).
        let s = delta.sin() / lat.to_radians().cos();
        if s.is_nan() || s >= 1.0 {
            return vec![Rect {
                lon_min: -180.0,
                lat_min,
                lon_max: 180.0,
                lat_max,
            }];
        }
        let dlon = s.asin().to_degrees() + MARGIN_DEG;
        lon_span_rects(lon - dlon, lon + dlon, lat_min, lat_max)
    }
}

/// Rectangles covering longitudes `[a, b]` (unwrapped, `a <= b`) between two latitudes.
fn lon_span_rects(a: f64, b: f64, lat_min: f64, lat_max: f64) -> Vec<Rect> {
    let r = |lon_min, lon_max| Rect {
        lon_min,
        lat_min,
        lon_max,
        lat_max,
    };
    if (b - a).is_nan() || b - a >= 360.0 {
        return vec![r(-180.0, 180.0)];
    }
    let wa = crate::geo::wrap_lon(a);
    let end = wa + (b - a);
    if end < 180.0 {
        vec![r(wa, end)]
    } else if end == 180.0 {
        // Points stored at -180 sit on the 180 meridian.
        vec![r(wa, 180.0), r(-180.0, -180.0)]
    } else {
        vec![r(wa, 180.0), r(-180.0, end - 360.0)]
    }
}

/// A simple polygon ring in `(lon, lat)` degrees (see the module docs for the rules).
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    /// Unwrapped ring: consecutive longitudes differ by at most 180.
    ring: Vec<(f64, f64)>,
    lon_min: f64,
    lon_max: f64,
    lat_min: f64,
    lat_max: f64,
}

impl Polygon {
    /// Validates a ring of at least 3 `(lon, lat)` vertices (the closing vertex may be
    /// repeated or omitted); latitudes in `[-90, 90]`, longitudes finite.
    pub fn new(ring: &[(f64, f64)]) -> Result<Polygon, QueryError> {
        let mut v: Vec<(f64, f64)> = Vec::with_capacity(ring.len());
        for &(lon, lat) in ring {
            check_lat(lat)?;
            if !lon.is_finite() {
                return Err(QueryError::Longitude(lon));
            }
            let lon = crate::geo::wrap_lon(lon);
            let lon = match v.last() {
                Some(&(prev, _)) => {
                    let mut d = lon - prev;
                    d -= 360.0 * (d / 360.0).round();
                    prev + d
                }
                None => lon,
            };
            v.push((lon, lat));
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

    /// Rectangles covering the ring's bounding box (split at the antimeridian).
    pub fn rects(&self) -> Vec<Rect> {
        lon_span_rects(self.lon_min, self.lon_max, self.lat_min, self.lat_max)
    }
}

/// Inclusive time range over row timestamps (seconds or any i64 unit the caller uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    t0: i64,
    t1: i64,
}

impl TimeRange {
    /// Validates `t0 <= t1`.
    pub fn new(t0: i64, t1: i64) -> Result<TimeRange, QueryError> {
        if t0 > t1 {
            return Err(QueryError::TimeRange { t0, t1 });
        }
        Ok(TimeRange { t0, t1 })
    }

    /// Whether an optional timestamp lies in `[t0, t1]` (`None` never does).
    pub fn contains(&self, t: Option<i64>) -> bool {
        t.is_some_and(|t| t >= self.t0 && t <= self.t1)
    }
}

/// A conjunction of optional predicates; the empty filter matches every row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Bounding box.
    pub bbox: Option<BBox>,
    /// Great-circle radius.
    pub radius: Option<Radius>,
    /// Polygon.
    pub polygon: Option<Polygon>,
    /// Time range.
    pub time: Option<TimeRange>,
}

impl Filter {
    /// The empty filter.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Adds (replaces) the bounding box.
    pub fn bbox(mut self, b: BBox) -> Filter {
        self.bbox = Some(b);
        self
    }

    /// Adds (replaces) the radius.
    pub fn radius(mut self, r: Radius) -> Filter {
        self.radius = Some(r);
        self
    }

    /// Adds (replaces) the polygon.
    pub fn polygon(mut self, p: Polygon) -> Filter {
        self.polygon = Some(p);
        self
    }

    /// Adds (replaces) the time range.
    pub fn time(mut self, t: TimeRange) -> Filter {
        self.time = Some(t);
        self
    }

    /// Whether no predicate is set.
    pub fn is_empty(&self) -> bool {
        self.bbox.is_none()
            && self.radius.is_none()
            && self.polygon.is_none()
            && self.time.is_none()
    }

    /// Whether any spatial predicate is set.
    pub fn is_spatial(&self) -> bool {
        self.bbox.is_some() || self.radius.is_some() || self.polygon.is_some()
    }

    /// Exact test of a row's location and time against every predicate.
    #[inline]
    pub fn matches(&self, p: Point, t: Option<i64>) -> bool {
        self.bbox.is_none_or(|b| b.contains(p))
            && self.radius.is_none_or(|r| r.contains(p))
            && self.polygon.as_ref().is_none_or(|g| g.contains(p))
            && self.time.is_none_or(|tr| tr.contains(t))
    }

    /// [`Filter::matches`] for a row whose unit vector ([`crate::geo::unit_vector`], in f32)
    /// is `u`: the same answer, with the radius tested by [`Radius::contains_unit`].
    #[inline]
    pub fn matches_unit(&self, p: Point, u: [f32; 3], t: Option<i64>) -> bool {
        self.bbox.is_none_or(|b| b.contains(p))
            && self.radius.is_none_or(|r| r.contains_unit(p, u))
            && self.polygon.as_ref().is_none_or(|g| g.contains(p))
            && self.time.is_none_or(|tr| tr.contains(t))
    }

    /// Whether every location in `rect` surely passes every spatial predicate (false when
    /// unsure, and always false with a polygon). Lets an enumeration skip the exact test for
    /// whole R-tree nodes; the time predicate is not considered.
    pub fn covers_rect(&self, rect: &Rect) -> bool {
        self.polygon.is_none()
            && self.bbox.is_none_or(|b| b.covers_rect(rect))
            && self.radius.is_none_or(|r| r.covers_rect(rect))
    }

    /// Covering rectangles of the most selective-looking spatial predicate (the one with the
    /// smallest rectangle area), or `None` when no spatial predicate is set.
    pub fn candidate_rects(&self) -> Option<Vec<Rect>> {
        let area = |rs: &[Rect]| -> f64 {
            rs.iter()
                .map(|r| (r.lon_max - r.lon_min).max(0.0) * (r.lat_max - r.lat_min).max(0.0))
                .sum()
        };
        let mut options: Vec<Vec<Rect>> = Vec::new();
        if let Some(b) = &self.bbox {
            options.push(b.rects());
        }
        if let Some(r) = &self.radius {
            options.push(r.rects());
        }
        if let Some(p) = &self.polygon {
            options.push(p.rects());
        }
        options
            .into_iter()
            .min_by(|a, b| area(a).total_cmp(&area(b)))
    }
}
