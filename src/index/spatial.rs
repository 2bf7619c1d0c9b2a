//! R-tree over row locations (rstar), in plain lon/lat degrees.
//!
//! The tree answers "which rows lie in these lon/lat rectangles"; the exact spherical
//! predicates (antimeridian boxes, haversine radius, polygons) live in
//! [`crate::query::filter`], which turns each predicate into a few covering rectangles.
//! Bulk loading 1M points takes well under a second, so segments build it at open.

use rstar::primitives::GeomWithData;
use rstar::{ParentNode, RTree, RTreeNode, AABB};

use crate::geo::Point;

/// A closed lon/lat rectangle in degrees, `lon_min <= lon_max` (never crossing the
/// antimeridian; callers split such regions in two).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Western edge, degrees.
    pub lon_min: f64,
    /// Southern edge, degrees.
    pub lat_min: f64,
    /// Eastern edge, degrees.
    pub lon_max: f64,
    /// Northern edge, degrees.
    pub lat_max: f64,
}

impl Rect {
    /// The whole sphere.
    pub const WORLD: Rect = Rect {
        lon_min: -180.0,
        lat_min: -90.0,
        lon_max: 180.0,
        lat_max: 90.0,
    };

    /// Whether `(lon, lat)` lies in the closed rectangle.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        lon >= self.lon_min && lon <= self.lon_max && lat >= self.lat_min && lat <= self.lat_max
    }
}

type Entry = GeomWithData<[f64; 2], u32>;

/// An R-tree of row locations; entries are `([lon, lat], row)`.
pub struct SpatialIndex {
    tree: RTree<Entry>,
    len: u32,
    /// Unit vectors of the same points ([`crate::geo::unit_vector`], f32), made on first use.
    units: std::sync::OnceLock<Vec<[f32; 3]>>,
}

impl std::fmt::Debug for SpatialIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpatialIndex({} points)", self.len)
    }
}

impl SpatialIndex {
    /// Bulk-loads the tree; row `i` is at `points[i]`. Rows beyond `u32::MAX` are ignored
    /// (segments never hold that many).
    pub fn build(points: &[Point]) -> SpatialIndex {
        let entries: Vec<Entry> = points
            .iter()
            .zip(0..u32::MAX)
            .map(|(p, row)| GeomWithData::new([p.lon(), p.lat()], row))
            .collect();
        let len = entries.len() as u32;
        SpatialIndex {
            tree: RTree::bulk_load(entries),
            len,
            units: std::sync::OnceLock::new(),
        }
    }

    /// The unit vectors of `points` (the points the tree was built over), computed on the
    /// first call and kept with the tree (12 bytes a row); `None` when `points` has another
    /// length than the tree. Radius filters test rows with them, in linear scans and under
    /// R-tree nodes the circle does not cover
    /// ([`crate::query::filter::Radius::contains_unit`]), instead of trigonometry per row.
    pub fn unit_vectors(&self, points: &[Point]) -> Option<&[[f32; 3]]> {
        if points.len() != self.len as usize {
            return None;
        }
        let units = self.units.get_or_init(|| {
            points
                .iter()
                .map(|&p| crate::geo::unit_vector_f32(p))
                .collect()
        });
        Some(units)
    }

    /// Number of points.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(row, covered)` for every row whose location lies in `rect` (closed), in tree
    /// order. `covers` is asked about whole tree nodes (their bounding rectangles, inside
    /// `rect`): when it answers true, the rows under the node are passed with `covered =
    /// true` without further tests, and the caller may skip its own exact test for them; so
    /// `covers` must only answer true for rectangles whose every point passes that test.
    /// The walk stops as soon as `f` returns false; returns whether it ran to the end.
    pub fn visit_in<C, F>(&self, rect: &Rect, covers: &C, f: &mut F) -> bool
    where
        C: Fn(&Rect) -> bool,
        F: FnMut(u32, bool) -> bool,
    {
        visit(self.tree.root(), rect, covers, f)
    }

    /// Rows whose location lies in `rect` (closed), in tree order.
    pub fn rows_in(&self, rect: &Rect) -> impl Iterator<Item = u32> + '_ {
        let env = AABB::from_corners([rect.lon_min, rect.lat_min], [rect.lon_max, rect.lat_max]);
        self.tree.locate_in_envelope(&env).map(|e| e.data)
    }
}

fn env_rect(env: &AABB<[f64; 2]>) -> Rect {
    let (lo, hi) = (env.lower(), env.upper());
    Rect {
        lon_min: lo[0],
        lat_min: lo[1],
        lon_max: hi[0],
        lat_max: hi[1],
    }
}

fn visit<C, F>(node: &ParentNode<Entry>, rect: &Rect, covers: &C, f: &mut F) -> bool
where
    C: Fn(&Rect) -> bool,
    F: FnMut(u32, bool) -> bool,
{
    for child in node.children() {
        match child {
            RTreeNode::Leaf(e) => {
                let [lon, lat] = *e.geom();
                if rect.contains(lon, lat) && !f(e.data, false) {
                    return false;
                }
            }
            RTreeNode::Parent(p) => {
                let env = env_rect(&p.envelope());
                let disjoint = env.lon_min > rect.lon_max
                    || env.lon_max < rect.lon_min
                    || env.lat_min > rect.lat_max
                    || env.lat_max < rect.lat_min;
                if disjoint {
                    continue;
                }
                let inside = env.lon_min >= rect.lon_min
                    && env.lon_max <= rect.lon_max
                    && env.lat_min >= rect.lat_min
                    && env.lat_max <= rect.lat_max;
                let go_on = if inside && covers(&env) {
                    emit_all(p, f)
                } else {
                    visit(p, rect, covers, f)
                };
                if !go_on {
                    return false;
                }
            }
        }
    }
    true
}

fn emit_all<F: FnMut(u32, bool) -> bool>(node: &ParentNode<Entry>, f: &mut F) -> bool {
    for child in node.children() {
        let go_on = match child {
            RTreeNode::Leaf(e) => f(e.data, true),
            RTreeNode::Parent(p) => emit_all(p, f),
        };
        if !go_on {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `visit_in` reports exactly the rows `rows_in` does, and `covered` only where the
    /// `covers` callback allowed it.
    #[test]
    fn visit_matches_rows_in() {
        let points: Vec<Point> = (0..5000)
            .filter_map(|i| {
                let lat = ((i * 37) % 1800) as f64 / 10.0 - 90.0;
                let lon = ((i * 91) % 3600) as f64 / 10.0 - 180.0;
                Point::new(lat, lon).ok()
            })
            .collect();
        let tree = SpatialIndex::build(&points);
        let rect = Rect {
            lon_min: -100.0,
            lat_min: -30.0,
            lon_max: 60.0,
            lat_max: 45.0,
        };
        let mut want: Vec<u32> = tree.rows_in(&rect).collect();
        want.sort_unstable();
        let north = |r: &Rect| r.lat_min >= 0.0;
        let mut got = Vec::new();
        let mut covered = 0;
        let done = tree.visit_in(&rect, &north, &mut |row, c| {
            got.push(row);
            if c {
                covered += 1;
                assert!(points[row as usize].lat() >= 0.0);
            }
            true
        });
        assert!(done);
        got.sort_unstable();
        assert_eq!(got, want);
        assert!(covered > 0, "some nodes are covered");
        let mut none = 0;
        tree.visit_in(&rect, &|_: &Rect| false, &mut |_, c| {
            none += usize::from(c);
            true
        });
        assert_eq!(none, 0);
        let mut seen = 0;
        assert!(!tree.visit_in(&rect, &north, &mut |_, _| {
            seen += 1;
            seen < 3
        }));
        assert_eq!(seen, 3, "stops when told");
    }
}
