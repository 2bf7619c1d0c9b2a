//! R-tree over row locations (rstar), in plain lon/lat degrees.
//!
//! The tree answers "which rows lie in these lon/lat rectangles"; the exact spherical
//! predicates (antimeridian boxes, haversine radius, polygons) live in
//! [`crate::query::filter`], which turns each predicate into a few covering rectangles.
//! Bulk loading 1M points takes well under a second, so segments build it at open.

use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};

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
        }
    }

    /// Number of points.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows whose location lies in `rect` (closed), in tree order.
    pub fn rows_in(&self, rect: &Rect) -> impl Iterator<Item = u32> + '_ {
        let env = AABB::from_corners([rect.lon_min, rect.lat_min], [rect.lon_max, rect.lat_max]);
        self.tree.locate_in_envelope(&env).map(|e| e.data)
    }
}
