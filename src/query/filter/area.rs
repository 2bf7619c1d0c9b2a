//! [`Area`]: points inside one or more polygons with holes, as GeoJSON draws an area of
//! interest (a Polygon, a MultiPolygon, the polygons of a FeatureCollection).

use super::{lon_span_cover, Cover, Polygon, Spatial};
use crate::geo::Point;
use crate::index::spatial::Rect;

/// One or more polygons, each an outer ring less its holes; a point is inside when it is
/// inside some part's outer ring and in none of that part's holes. Rings follow
/// [`Polygon`]'s rules (edges straight in lon/lat, each the shorter way round, so a part
/// cut at the antimeridian as RFC 7946 asks and a ring drawn across it uncut both work).
/// The parts of a multi-polygon should not overlap (as GeoJSON requires); where they do,
/// a point in either is inside.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    parts: Vec<(Polygon, Vec<Polygon>)>,
    cover: Cover,
}

impl Area {
    /// The area of `parts` (outer ring, holes); `None` without a part.
    pub fn new(parts: Vec<(Polygon, Vec<Polygon>)>) -> Option<Area> {
        if parts.is_empty() {
            return None;
        }
        let cover = union_cover(parts.iter().map(|(outer, _)| outer.bounds()));
        Some(Area { parts, cover })
    }

    /// The parts: each an outer ring and its holes.
    pub fn parts(&self) -> &[(Polygon, Vec<Polygon>)] {
        &self.parts
    }

    /// Exact membership.
    pub fn contains(&self, p: Point) -> bool {
        self.parts
            .iter()
            .any(|(outer, holes)| outer.contains(p) && !holes.iter().any(|h| h.contains(p)))
    }
}

/// A cover (at most two rectangles) of the union of boxes `(lon_min, lon_max, lat_min,
/// lat_max)` with unwrapped longitudes: the longitude intervals folded into `[-180, 180]`
/// and merged; more than two merged intervals take one rectangle from the first start to
/// the last end.
fn union_cover(boxes: impl Iterator<Item = (f64, f64, f64, f64)>) -> Cover {
    let (mut lat_min, mut lat_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for (a, b, s, n) in boxes {
        lat_min = lat_min.min(s);
        lat_max = lat_max.max(n);
        for r in lon_span_cover(a, b, s, n).rects() {
            spans.push((r.lon_min, r.lon_max));
        }
    }
    spans.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let rect = |(a, b): (f64, f64)| Rect {
        lon_min: a,
        lat_min,
        lon_max: b,
        lat_max,
    };
    match merged.as_slice() {
        [one] => Cover::one(rect(*one)),
        [x, y] => Cover::two(rect(*x), rect(*y)),
        many => {
            let first = many.first().map_or(-180.0, |m| m.0);
            let last = many.last().map_or(180.0, |m| m.1);
            Cover::one(rect((first, last)))
        }
    }
}

impl Spatial for Area {
    fn cover(&self) -> &Cover {
        &self.cover
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::spatial::Coverage;

    fn ring(v: &[(f64, f64)]) -> Polygon {
        Polygon::new(v).unwrap()
    }

    #[test]
    fn holes_and_parts() {
        let outer = ring(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]);
        let hole = ring(&[(4.0, 4.0), (6.0, 4.0), (6.0, 6.0), (4.0, 6.0)]);
        // The second part straddles the antimeridian, cut in two as RFC 7946 asks.
        let east = ring(&[(170.0, -5.0), (180.0, -5.0), (180.0, 5.0), (170.0, 5.0)]);
        let west = ring(&[(-180.0, -5.0), (-170.0, -5.0), (-170.0, 5.0), (-180.0, 5.0)]);
        let a = Area::new(vec![(outer, vec![hole]), (east, vec![]), (west, vec![])]).unwrap();
        let p = |lat: f64, lon: f64| Point::new(lat, lon).unwrap();
        assert!(a.contains(p(2.0, 2.0)));
        assert!(!a.contains(p(5.0, 5.0)), "in the hole");
        assert!(a.contains(p(0.0, 175.0)) && a.contains(p(0.0, -175.0)));
        assert!(!a.contains(p(0.0, 100.0)) && !a.contains(p(20.0, 2.0)));
        assert!(Area::new(Vec::new()).is_none());
        // The cover holds every part.
        for (lat, lon) in [(2.0, 2.0), (0.0, 175.0), (0.0, -175.0)] {
            let r = Rect {
                lon_min: lon,
                lat_min: lat,
                lon_max: lon,
                lat_max: lat,
            };
            assert_ne!(a.coverage(&r), Coverage::Outside, "{lat},{lon}");
        }
    }
}
