//! Queries over one segment: validated filters ([`filter`]) and the planner that picks an
//! exact scan or a filtered graph walk ([`planner`]).
//!
//! ```
//! use half::f16;
//! use sat2cap::geo::Point;
//! use sat2cap::query::filter::{BBox, Filter};
//! use sat2cap::query::planner::{search_segment, Plan, SearchRequest, SegmentIndex};
//!
//! let vectors: Vec<f16> = [1.0f32, 0.0, 0.0, 1.0, 0.6, 0.8]
//!     .iter().map(|&x| f16::from_f32(x)).collect();
//! let points = vec![
//!     Point::new(10.0, 179.5).unwrap(),
//!     Point::new(10.0, -179.5).unwrap(),
//!     Point::new(10.0, 0.0).unwrap(),
//! ];
//! let seg = SegmentIndex::new(&vectors, 2, &points, None, None).unwrap();
//! // A box across the antimeridian: west 179, east -179.
//! let filter = Filter::new().bbox(BBox::new(179.0, 0.0, -179.0, 20.0).unwrap());
//! let req = SearchRequest::new(vec![1.0, 0.0], 10).with_filter(filter);
//! let (hits, plan) = search_segment(&seg, &req).unwrap();
//! assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 1]);
//! assert!(matches!(plan, Plan::Flat { .. }));
//! ```

pub mod filter;
pub mod planner;

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query vector has the wrong length.
    #[error("query has {got} dimensions, the collection has {expected}")]
    Dimension {
        /// Segment dimension.
        expected: usize,
        /// Query length.
        got: usize,
    },
    /// The query vector holds NaN or infinity.
    #[error("query value {index} is not finite")]
    NonFinite {
        /// First bad position.
        index: usize,
    },
    /// The query vector is all zeros (cannot be normalised).
    #[error("query vector has zero length")]
    ZeroVector,
    /// `k` is zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// `ef` outside `1..=MAX_EF`.
    #[error("ef {0} is not in 1..=65536")]
    Ef(usize),
    /// A walk effort that is not a number in `(0, MAX_EFFORT]`.
    #[error("effort {0} is not a number in (0, 64]")]
    Effort(f32),
    /// Both `ef` and an effort: a walk is a beam of `ef` rows or goes as far as the effort
    /// times the hop slack, not both.
    #[error(
        "ef and effort are both set: a walk is either a beam of ef rows or bounded by the effort"
    )]
    EfAndEffort,
    /// A latitude outside `[-90, 90]` or not finite.
    #[error("latitude {0} is outside [-90, 90]")]
    Latitude(f64),
    /// A longitude that is not finite or outside the accepted range.
    #[error("longitude {0} is not a finite number in [-180, 180]")]
    Longitude(f64),
    /// `south > north`.
    #[error("bounding box is inverted: south {south} > north {north}")]
    InvertedBBox {
        /// Southern edge.
        south: f64,
        /// Northern edge.
        north: f64,
    },
    /// A bounding box with zero width or height.
    #[error("bounding box is empty (zero width or height)")]
    EmptyBBox,
    /// Radius negative or not finite.
    #[error("radius {0} km is not a finite number >= 0")]
    Radius(f64),
    /// A polygon ring with fewer than 3 distinct vertices.
    #[error("polygon has {0} distinct vertices, needs at least 3")]
    PolygonTooSmall(usize),
    /// A polygon edge (ending at vertex `0`, counted from 0; the ring's length for the
    /// closing edge) spans exactly 180 degrees of longitude, so its direction is ambiguous.
    #[error(
        "polygon edge to vertex {0} spans exactly 180 degrees of longitude: its direction is \
         ambiguous (add a vertex on the way)"
    )]
    PolygonHalfTurn(usize),
    /// A polygon ring that winds around the globe (it encloses a pole).
    #[error(
        "polygon ring winds around the globe (it encloses a pole): a lon/lat ring cannot; for \
         a polar cap use a box up to latitude 90"
    )]
    PolygonAroundPole,
    /// `t0 > t1`.
    #[error("time range is inverted: {t0} > {t1}")]
    TimeRange {
        /// Start.
        t0: i64,
        /// End.
        t1: i64,
    },
    /// An end of a time-of-day window outside `0..86400` seconds.
    #[error("time of day {0} s is not in 0..86400")]
    TimeOfDay(i64),
    /// Geo-ranking blend parameters out of range.
    #[error("geo ranking: {0}")]
    GeoRank(String),
    /// A segment's derived data (points, graph section) failed validation.
    #[error("corrupt segment: {0}")]
    Corrupt(String),
    /// The segment's slices or graph do not agree with each other.
    #[error("segment is inconsistent: {0}")]
    Segment(String),
}
