//! Validated filters, exact on the sphere: a [`Filter`] is a conjunction (AND) of
//! [`Predicate`]s, each of one kind:
//!
//! - [`BBox`]: `west, south, east, north` in degrees, across the antimeridian when
//!   `west > east`;
//! - [`Radius`]: great-circle (haversine) distance `<= radius_km` from a centre, caps over a
//!   pole or across the dateline included;
//! - [`Polygon`]: one ring of `(lon, lat)` vertices (even-odd rule, plate carrée edges);
//! - [`TimeRange`]: inclusive `[t0, t1]` over the rows' optional times (a row without a
//!   time never passes one).
//!
//! Each kind brings, in its own file, what the planner asks of it, dispatched here by one
//! exhaustive `match` per question (so a new kind is a compile error until every question
//! has its answer):
//! - the exact test of a row ([`Predicate::matches`]);
//! - the block test: whether no row, some rows or every row of a lon/lat rectangle passes
//!   (`coverage`), which lets a scan skip or take whole blocks of rows stored together;
//! - the rectangles that cover it (`cover`; spatial kinds), where an enumeration starts;
//! - the cardinality estimate over a segment (`estimate`: min / expected / max rows);
//! - optionally a batch test of a run of rows (`scan`; the radius tests 64 rows at a time).

mod area;
mod bbox;
mod polygon;
mod radius;
mod stats;
mod time;
mod time_of_day;

pub use area::Area;
pub use bbox::BBox;
pub use polygon::Polygon;
pub use radius::Radius;
pub use stats::Cardinality;
pub(crate) use stats::{SegmentStats, TimeStats};
pub use time::TimeRange;
pub use time_of_day::TimeOfDay;

use crate::geo::Point;
use crate::index::spatial::{Coverage, Rect};

use super::QueryError;

/// A condition on location (box, radius, polygon, area): the rectangles its points lie in,
/// and from them its block test and its cardinality estimate.
pub(crate) trait Spatial {
    /// Rectangles (none crossing the antimeridian) whose union holds every point that
    /// passes (with a slight outward margin where rounding could matter).
    fn cover(&self) -> &Cover;

    /// Whether every location in `rect` (not crossing the antimeridian) surely passes;
    /// `false` when unsure (its rows are then tested one by one).
    fn holds_whole(&self, _rect: &Rect) -> bool {
        false
    }

    /// The block test: whether no row, some rows or every row of a rectangle passes.
    fn coverage(&self, rect: &Rect) -> Coverage {
        self.cover().coverage(rect, |r| self.holds_whole(r))
    }

    /// How many rows of a segment may pass (from its block rectangles).
    fn estimate(&self, stats: &SegmentStats<'_>) -> Cardinality {
        stats.spatial_estimate(self.cover(), |r| self.coverage(r))
    }
}

pub(super) fn check_lat(lat: f64) -> Result<f64, QueryError> {
    if lat.is_finite() && (-90.0..=90.0).contains(&lat) {
        Ok(lat)
    } else {
        Err(QueryError::Latitude(lat))
    }
}

pub(super) fn check_lon(lon: f64) -> Result<f64, QueryError> {
    if lon.is_finite() && (-180.0..=180.0).contains(&lon) {
        Ok(lon)
    } else {
        Err(QueryError::Longitude(lon))
    }
}

/// Up to two lon/lat rectangles (none crossing the antimeridian) whose union covers a
/// region: what a spatial predicate gives an enumeration to start from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cover {
    rects: [Rect; 2],
    len: u8,
}

impl Cover {
    pub(crate) fn one(r: Rect) -> Cover {
        Cover {
            rects: [r, r],
            len: 1,
        }
    }

    pub(crate) fn two(a: Rect, b: Rect) -> Cover {
        Cover {
            rects: [a, b],
            len: 2,
        }
    }

    /// The rectangles.
    pub(crate) fn rects(&self) -> &[Rect] {
        &self.rects[..usize::from(self.len)]
    }

    /// Whether `rect` shares a point with the cover.
    pub(crate) fn meets(&self, rect: &Rect) -> bool {
        self.rects().iter().any(|r| {
            r.lon_min <= rect.lon_max
                && rect.lon_min <= r.lon_max
                && r.lat_min <= rect.lat_max
                && rect.lat_min <= r.lat_max
        })
    }

    /// The block test of a spatial condition with this cover: outside when the cover misses
    /// `rect`, covered when a cover rectangle holds it and `covers` (the condition's exact
    /// "every point passes" test, asked only then) agrees, partial otherwise.
    pub(crate) fn coverage(&self, rect: &Rect, covers: impl FnOnce(&Rect) -> bool) -> Coverage {
        if !self.meets(rect) {
            Coverage::Outside
        } else if self.encloses(rect) && covers(rect) {
            Coverage::Covered
        } else {
            Coverage::Partial
        }
    }

    /// Whether one rectangle of the cover holds all of `rect`.
    fn encloses(&self, rect: &Rect) -> bool {
        self.rects().iter().any(|r| {
            r.lon_min <= rect.lon_min
                && rect.lon_max <= r.lon_max
                && r.lat_min <= rect.lat_min
                && rect.lat_max <= r.lat_max
        })
    }

    /// The share of `rect`'s area the cover overlaps (`1` for a rectangle of no area that it
    /// meets): the expected share of a block's rows inside, rows spread evenly.
    fn overlap(&self, rect: &Rect) -> f64 {
        let area = |r: &Rect| (r.lon_max - r.lon_min).max(0.0) * (r.lat_max - r.lat_min).max(0.0);
        let whole = area(rect);
        if whole.is_nan() || whole <= 0.0 {
            return if self.meets(rect) { 1.0 } else { 0.0 };
        }
        let shared: f64 = self
            .rects()
            .iter()
            .map(|r| {
                area(&Rect {
                    lon_min: r.lon_min.max(rect.lon_min),
                    lat_min: r.lat_min.max(rect.lat_min),
                    lon_max: r.lon_max.min(rect.lon_max),
                    lat_max: r.lat_max.min(rect.lat_max),
                })
            })
            .sum();
        (shared / whole).clamp(0.0, 1.0)
    }
}

/// Rectangles covering longitudes `[a, b]` (unwrapped, `a <= b`) between two latitudes.
pub(super) fn lon_span_cover(a: f64, b: f64, lat_min: f64, lat_max: f64) -> Cover {
    let r = |lon_min, lon_max| Rect {
        lon_min,
        lat_min,
        lon_max,
        lat_max,
    };
    if (b - a).is_nan() || b - a >= 360.0 {
        return Cover::one(r(-180.0, 180.0));
    }
    let wa = crate::geo::wrap_lon(a);
    let end = wa + (b - a);
    if end < 180.0 {
        Cover::one(r(wa, end))
    } else if end == 180.0 {
        // Points stored at -180 sit on the 180 meridian.
        Cover::two(r(wa, 180.0), r(-180.0, -180.0))
    } else {
        Cover::two(r(wa, 180.0), r(-180.0, end - 360.0))
    }
}

/// One condition on a row's location or time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Predicate {
    /// Inside a box.
    BBox(BBox),
    /// Within a great-circle distance of a point.
    Radius(Radius),
    /// Inside a polygon ring.
    Polygon(Polygon),
    /// Inside an area: polygons with holes.
    Area(Area),
    /// A time in a range.
    Time(TimeRange),
    /// A time in a window of the day.
    TimeOfDay(TimeOfDay),
}

impl From<TimeOfDay> for Predicate {
    fn from(t: TimeOfDay) -> Predicate {
        Predicate::TimeOfDay(t)
    }
}

impl From<Area> for Predicate {
    fn from(a: Area) -> Predicate {
        Predicate::Area(a)
    }
}

impl From<BBox> for Predicate {
    fn from(b: BBox) -> Predicate {
        Predicate::BBox(b)
    }
}

impl From<Radius> for Predicate {
    fn from(r: Radius) -> Predicate {
        Predicate::Radius(r)
    }
}

impl From<Polygon> for Predicate {
    fn from(p: Polygon) -> Predicate {
        Predicate::Polygon(p)
    }
}

impl From<TimeRange> for Predicate {
    fn from(t: TimeRange) -> Predicate {
        Predicate::Time(t)
    }
}

/// A row as the predicates see it: its location, the location's unit vector when the
/// caller has it (radius tests then need no trigonometry), its time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub point: Point,
    pub unit: Option<[f32; 3]>,
    pub time: Option<i64>,
}

impl Predicate {
    /// The exact test of a row.
    #[inline]
    pub fn matches(&self, point: Point, time: Option<i64>) -> bool {
        self.test(Row {
            point,
            unit: None,
            time,
        })
    }

    /// The exact test of a row, with its unit vector when known.
    #[inline]
    pub(crate) fn test(&self, row: Row) -> bool {
        match self {
            Predicate::BBox(b) => b.contains(row.point),
            Predicate::Radius(r) => match row.unit {
                Some(u) => r.contains_unit(row.point, u),
                None => r.contains(row.point),
            },
            Predicate::Polygon(p) => p.contains(row.point),
            Predicate::Area(a) => a.contains(row.point),
            Predicate::Time(t) => t.contains(row.time),
            Predicate::TimeOfDay(t) => t.contains(row.time),
        }
    }

    /// The block test over a rectangle of locations. A predicate on time cannot tell from
    /// locations: every block is [`Coverage::Partial`] to it.
    pub(crate) fn coverage(&self, rect: &Rect) -> Coverage {
        match self {
            Predicate::BBox(b) => b.coverage(rect),
            Predicate::Radius(r) => r.coverage(rect),
            Predicate::Polygon(p) => p.coverage(rect),
            Predicate::Area(a) => a.coverage(rect),
            Predicate::Time(_) | Predicate::TimeOfDay(_) => Coverage::Partial,
        }
    }

    /// The rectangles covering the rows it can pass (`None`: not a spatial predicate).
    pub(crate) fn cover(&self) -> Option<&Cover> {
        match self {
            Predicate::BBox(b) => Some(b.cover()),
            Predicate::Radius(r) => Some(r.cover()),
            Predicate::Polygon(p) => Some(p.cover()),
            Predicate::Area(a) => Some(a.cover()),
            Predicate::Time(_) | Predicate::TimeOfDay(_) => None,
        }
    }

    /// How many rows of a segment may pass.
    pub(crate) fn estimate(&self, stats: &SegmentStats<'_>) -> Cardinality {
        match self {
            Predicate::BBox(b) => b.estimate(stats),
            Predicate::Radius(r) => r.estimate(stats),
            Predicate::Polygon(p) => p.estimate(stats),
            Predicate::Area(a) => a.estimate(stats),
            Predicate::Time(t) => t.estimate(stats),
            Predicate::TimeOfDay(t) => t.estimate(stats),
        }
    }

    /// Calls `emit(start + i)`, in ascending order, for every row `i` of the run whose
    /// location is `points[i]` (unit vector `units[i]`) and time `times[i]` that passes
    /// (the same answers as [`Predicate::test`], in batches where a kind has a faster way).
    pub(crate) fn scan(
        &self,
        start: u32,
        points: &[Point],
        units: &[[f32; 3]],
        times: Option<&[i64]>,
        no_time: i64,
        mut emit: impl FnMut(u32),
    ) {
        if let Predicate::Radius(r) = self {
            if units.len() >= points.len() {
                return r.scan_units(points, units, |i| emit(start + i));
            }
        }
        for (i, &point) in points.iter().enumerate() {
            let time = times
                .and_then(|t| t.get(i).copied())
                .filter(|&t| t != no_time);
            let row = Row {
                point,
                unit: units.get(i).copied(),
                time,
            };
            if self.test(row) {
                emit(start + i as u32);
            }
        }
    }
}

/// Predicates past this many in one filter are tested on every row (the block masks hold
/// one bit per predicate).
const MASKED: usize = 64;

/// A conjunction of predicates; the empty filter matches every row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    predicates: Vec<Predicate>,
}

impl Filter {
    /// The empty filter.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// The filter with `p` as one more condition (AND).
    pub fn and(mut self, p: impl Into<Predicate>) -> Filter {
        self.predicates.push(p.into());
        self
    }

    /// [`Filter::and`] a box.
    pub fn bbox(self, b: BBox) -> Filter {
        self.and(b)
    }

    /// [`Filter::and`] a radius.
    pub fn radius(self, r: Radius) -> Filter {
        self.and(r)
    }

    /// [`Filter::and`] a polygon.
    pub fn polygon(self, p: Polygon) -> Filter {
        self.and(p)
    }

    /// [`Filter::and`] a time range.
    pub fn time(self, t: TimeRange) -> Filter {
        self.and(t)
    }

    /// The conditions, in the order they were added.
    pub fn predicates(&self) -> &[Predicate] {
        &self.predicates
    }

    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.predicates.is_empty()
    }

    /// Whether a condition is on location.
    pub fn is_spatial(&self) -> bool {
        self.predicates.iter().any(|p| p.cover().is_some())
    }

    /// Whether a row located in `region` may pass: `false` only when a condition on
    /// location surely misses every point of the box (conditions on time cannot tell, so
    /// they never rule a region out). A catalog of databases, each holding the rows of one
    /// region, skips the databases this is `false` for.
    pub fn may_pass_within(&self, region: &BBox) -> bool {
        region.cover().rects().iter().any(|r| {
            self.predicates
                .iter()
                .all(|p| p.coverage(r) != Coverage::Outside)
        })
    }

    /// Whether a row with a time in `min..=max` may pass: `false` only when a time range
    /// condition misses the whole span (conditions on location or time of day cannot tell).
    /// A catalog of databases skips the databases whose rows' times this is `false` for.
    pub fn may_pass_during(&self, min: i64, max: i64) -> bool {
        self.predicates.iter().all(|p| match p {
            Predicate::Time(t) => {
                let (t0, t1) = t.bounds();
                t0 <= max && min <= t1
            }
            _ => true,
        })
    }

    /// Exact test of a row's location and time against every condition.
    #[inline]
    pub fn matches(&self, point: Point, time: Option<i64>) -> bool {
        self.predicates.iter().all(|p| p.matches(point, time))
    }

    /// [`Filter::matches`], with the radius tested on the row's unit vector `u`
    /// ([`crate::geo::unit_vector_f32`]): the same answer.
    #[inline]
    pub(crate) fn matches_unit(&self, point: Point, u: [f32; 3], time: Option<i64>) -> bool {
        let row = Row {
            point,
            unit: Some(u),
            time,
        };
        self.predicates.iter().all(|p| p.test(row))
    }

    /// Tests `row` against the conditions whose bit is set in `mask` (and those past the
    /// 64th, which have none).
    #[inline]
    pub(crate) fn matches_masked(&self, row: Row, mask: u64) -> bool {
        let mut m = mask;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if !self.predicates.get(i).is_none_or(|p| p.test(row)) {
                return false;
            }
        }
        self.predicates
            .get(MASKED..)
            .unwrap_or(&[])
            .iter()
            .all(|p| p.test(row))
    }

    /// The block test of the whole filter over a rectangle: `None` when some condition
    /// passes no row there, else the mask of the conditions its rows must still be tested
    /// against (bit `i` for condition `i`; `0`: every row passes on location, time
    /// conditions excepted as they are always in the mask).
    pub(crate) fn block_mask(&self, rect: &Rect) -> Option<u64> {
        let mut mask = 0u64;
        for (i, p) in self.predicates.iter().enumerate() {
            match p.coverage(rect) {
                Coverage::Outside => return None,
                Coverage::Covered => {}
                Coverage::Partial if i < MASKED => mask |= 1 << i,
                Coverage::Partial => {}
            }
        }
        Some(mask)
    }

    /// Whether a mask from [`Filter::block_mask`] leaves nothing to test on a row.
    pub(crate) fn passes_whole(&self, mask: u64) -> bool {
        mask == 0 && self.predicates.len() <= MASKED
    }

    /// The mask of the conditions not on location (what rows of a rectangle every spatial
    /// condition covers must still be tested against).
    pub(crate) fn non_spatial_mask(&self) -> u64 {
        self.predicates
            .iter()
            .enumerate()
            .filter(|(i, p)| *i < MASKED && p.cover().is_none())
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    white_box! {
    /// Whether every location in `rect` surely passes every spatial condition (the time
    /// conditions are not considered).
    fn covers_rect(&self, rect: &Rect) -> bool {
        self.predicates
            .iter()
            .filter(|p| p.cover().is_some())
            .all(|p| p.coverage(rect) == Coverage::Covered)
    }
    }

    /// The predicate with a bit in `mask` when it is the only one and nothing else needs
    /// testing (its own batch test then answers for the run).
    pub(crate) fn single(&self, mask: u64) -> Option<&Predicate> {
        (mask.count_ones() == 1 && self.predicates.len() <= MASKED)
            .then(|| self.predicates.get(mask.trailing_zeros() as usize))
            .flatten()
    }

    /// How many rows of a segment may pass every condition (the bounds of a conjunction:
    /// at least the sum of the minimums less what they may miss, at most the smallest
    /// maximum; the expectation of independent conditions), and the cover of the spatial
    /// condition expected to pass the fewest rows, where an enumeration starts (`None` when
    /// no condition is on location). Each condition estimates itself once.
    pub(crate) fn estimate(&self, stats: &SegmentStats<'_>) -> (Cardinality, Option<&Cover>) {
        let n = stats.rows;
        let (mut min_sum, mut max, mut share) = (0u64, n, 1.0f64);
        let mut driver: Option<(&Cover, f64)> = None;
        for p in &self.predicates {
            let c = p.estimate(stats);
            min_sum = min_sum.saturating_add(c.min);
            max = max.min(c.max);
            share *= if n > 0 { c.expected / n as f64 } else { 0.0 };
            if let Some(cover) = p.cover() {
                if driver.is_none_or(|(_, e)| c.expected < e) {
                    driver = Some((cover, c.expected));
                }
            }
        }
        let others = (self.predicates.len() as u64)
            .saturating_sub(1)
            .saturating_mul(n);
        let min = min_sum.saturating_sub(others).min(max);
        let rows = Cardinality::between(min, max, share * n as f64);
        (rows, driver.map(|(c, _)| c))
    }
}
