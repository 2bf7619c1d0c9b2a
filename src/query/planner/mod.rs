//! The per-segment planner: exact scan for small candidate sets, filtered graph walk above.
//! Three stages, one file each: [`estimate`] (how many rows may pass, from the filter's own
//! estimates and the segment's block rectangles and time span), [`choose`] (the plan, from
//! the estimate and then from the exact count), [`execute`] (the scans and walks), with the
//! candidate enumeration in [`enumerate`].
//!
//! Plan choice, for a request with a filter (and/or deleted rows):
//! 0. The estimate bounds the candidate count (min / expected / max). A maximum at or under
//!    the flat threshold settles the exact scan before any row is read; the expected count
//!    picks the enumeration (which spatial condition drives it; for rows not stored in a
//!    spatial order, the R-tree or one pass over every row).
//! 1. The candidates are enumerated once, through the R-tree (spatial filters) or by scanning
//!    row metadata (time-only filters, tombstones), testing every predicate exactly, into a
//!    per-query bitset over the segment plus a row list. A short probe (256 rows) runs first
//!    and the full enumeration carries on from it, so tiny sets never pay for a full count.
//!    When the segment stores its rows in a spatial order, the block rectangles (64 rows
//!    each) answer spatial filters without an R-tree. Otherwise, once the R-tree has yielded
//!    more than 1/32 of the rows, one pass over every row replaces it (radii tested on
//!    precomputed unit vectors, no trigonometry per row).
//! 2. At or under the flat threshold `max(flat_max_rows, flat_max_fraction * n)` the rows are
//!    scanned exactly ([`Plan::Flat`], recall 1.0), 64-row block by block: blocks with a
//!    quarter of their rows or more read whole and in order, the members of sparser blocks
//!    one by one. A larger set is scanned exactly too when it lies in long runs of rows
//!    (spatial row order): its scan cost, in rows read in order with a row read out of order
//!    counting 4, is then under 4 times the threshold ([`FlatReason::Contiguous`]). When the
//!    segment has an int8 copy of its vectors, the scan reads that instead and rescores from
//!    the f16 vectors only the rows that may rank (same answer; [`crate::index::quant`]).
//! 3. Above it, the graph is walked with the bitset as the filter (membership is one load and
//!    a shift per visited node; no geometry in the walk) ([`Plan::Graph`]), with a beam of
//!    at least `filtered_ef_min`, seeded with an even sample of the matching rows. Below
//!    [`WIDEN_BELOW`] of the rows passing, `ef` is widened to `ef / sqrt(selectivity)`
//!    (capped at `ef * max_ef_widening`); at or above it the beam keeps `ef`. The exact scan
//!    over the enumerated rows replaces the walk's answer (`fell_back`) when the walk
//!    - returns fewer than `k` rows;
//!    - scores more rows than `walk_budget` times the candidate count (its cost then nears
//!      the exact scan's, which reads rows in order and is several times cheaper per row);
//!    - or returns a best row scoring more than `far_gap` below the best row it met: the
//!      filter excludes the query's own neighbourhood, so its top-k are far rows, nearly
//!      tied, that a walk from the query's side misses (on a 1M x 512 set at 50%
//!      selectivity such walks reached recall@10 0.79).
//!
//! Without a filter (and no deleted rows) the graph is walked with `ef`, from the graph's
//! entry and the best rows of a routing sample (one row in 64, leading components, scored in
//! one sequential read; see [`PlannerParams::routing_stride`]) on level 0: no descent through
//! the upper levels, which can end in a cluster the query's neighbours are not linked to.
//!
//! Without a graph, or with `exact` set, every matching row is scanned exactly.

mod choose;
mod enumerate;
mod estimate;
mod execute;
mod segment;

pub use execute::{search_geo_ranked, search_segment};
pub use segment::SegmentIndex;

use super::filter::{Cardinality, Filter};
use super::QueryError;
use crate::geo::{haversine_km, Point};
use crate::index::hnsw::{effort_valid, MAX_EF};

/// Rows enumerated before the planner pays for a selectivity sample.
const SMALL_PROBE: usize = 256;

/// A spatial enumeration leaves the R-tree for a linear pass once it has found more than
/// `1 / LINEAR_ABOVE` of the segment's rows.
const LINEAR_ABOVE: usize = 32;

/// What reading one row out of order costs, in rows read in order: at 1M x 512, reading 25%
/// of the rows one by one took as long as reading all of them in order. The flat threshold
/// counts rows read one by one; a candidate set in long runs (rows in spatial order) is
/// scanned exactly while its scan cost (`RowSet::scan_cost`) stays under this many times
/// the threshold.
const SCATTERED_ROW_COST: usize = 64 / crate::index::flat::DENSE_BLOCK_FROM as usize;

/// At or above this fraction of passing rows the filtered walk keeps the unwidened beam.
pub const WIDEN_BELOW: f64 = 0.5;

/// How many of the enumerated rows (an even sample) seed a filtered graph walk as extra
/// entry points (see [`crate::index::hnsw::search_filtered_seeded`]).
pub const FILTER_SEEDS: usize = 256;

/// How many of the best-scoring routing sample rows ([`PlannerParams::routing_stride`])
/// join a walk's beam (of a filtered walk, those of the pool that pass the filter).
pub const ROUTING_KEEP: usize = 8;

/// Timestamp value meaning "no time known" in a segment's time column.
pub const NO_TIME: i64 = i64::MIN;

/// Planner knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannerParams {
    /// Candidate sets up to this many rows are always scanned exactly.
    pub flat_max_rows: u32,
    /// Candidate sets up to this fraction of the segment are scanned exactly.
    pub flat_max_fraction: f64,
    /// Default graph beam width.
    pub ef_search: usize,
    /// Most the beam may be widened for a restrictive filter, as a multiple of `ef`.
    pub max_ef_widening: usize,
    /// Smallest beam of a filtered walk. A small `ef` (16 on easy data) is not enough:
    /// when the filter region lies away from the query's neighbourhood, the matching rows
    /// the walk meets are far and nearly tied, and a beam that small misses some of them.
    pub filtered_ef_min: usize,
    /// Most rows a filtered walk may score, as a fraction of the rows passing the filter;
    /// past it the walk stops and the exact scan over those rows answers (recall 1.0).
    pub walk_budget: f64,
    /// When the best row a filtered walk returns scores more than this below the best row
    /// it met (matching or not), the filter excludes the query's neighbourhood: its top-k
    /// are far rows, nearly tied, that a walk from the query's side misses; the exact scan
    /// answers instead.
    pub far_gap: f32,
    /// Routing sample of the walks: one row in every `routing_stride` (at least
    /// 256 rows; 0 turns it off), kept as a contiguous copy of each sample row's first 64
    /// components ([`RoutingSample`](crate::index::hnsw::RoutingSample), built on first
    /// use, or read from the segment's walk hints section when it was taken with the same
    /// stride).
    /// Each query scores the whole sample on those components, the best
    /// `ROUTING_KEEP * ROUTING_POOL_PER_SEED` of them again in full, and the best
    /// [`ROUTING_KEEP`] of those start the walk's level-0 beam with the graph's entry, in place
    /// of the greedy descent through the upper levels (which 0 brings back). A descent can
    /// end in a part of the data the query's neighbours are not linked to (on clustered
    /// data, another cluster: every neighbour then scores alike and greedy steps have no
    /// direction); a sample row of the query's own cluster gives the beam a way in.
    /// Measured at 1M x 512 (3,333 clusters): with the descent alone, 3 of 50 queries found
    /// nothing of their top 10.
    pub routing_stride: usize,
    /// Walks without an explicit `ef` keep the best `k` rows and expand every candidate
    /// within the segment's hop slack of the `k`-th ([`crate::index::hnsw::hop_slack`]):
    /// the effort comes from the data and the query instead of from `ef_search`. Off, they
    /// are beams of width `ef_search`. The search builder turns it on; off by default here,
    /// so that knobs set by hand mean what they say.
    pub hop_slack: bool,
    /// Walks steer by the int8 copy when the segment has one: each row scored on its
    /// codes (half the bytes of its f16 vector), and only the rows whose error bound
    /// reaches the results scored again from the f16 vectors, so every score returned is
    /// the f16 one.
    pub int8_walk: bool,
}

impl Default for PlannerParams {
    fn default() -> Self {
        PlannerParams {
            flat_max_rows: 2_000,
            flat_max_fraction: 0.2,
            ef_search: 64,
            max_ef_widening: 8,
            filtered_ef_min: 64,
            walk_budget: 0.25,
            far_gap: 0.3,
            routing_stride: crate::index::hnsw::ROUTING_STRIDE,
            hop_slack: false,
            int8_walk: true,
        }
    }
}

/// Which path a search took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// Exact scan over the rows that pass the filter.
    Flat {
        /// Rows scanned.
        candidates: u64,
        /// Why the exact scan ran.
        reason: FlatReason,
        /// The estimate of the rows passing the filter, made before any was read.
        estimate: Cardinality,
    },
    /// Filtered graph walk.
    Graph {
        /// Beam width used (rows kept: `k` for a walk bounded by slack).
        ef: usize,
        /// The score slack the walk was bounded by (the segment's hop slack: see
        /// [`DEFAULT_EF_SEARCH`](crate::DEFAULT_EF_SEARCH)); `None` for a beam of width
        /// `ef`.
        slack: Option<f32>,
        /// Fraction of rows passing the filter, counted exactly by the enumeration
        /// (1.0 without a filter).
        estimated_selectivity: f64,
        /// The walk came back short, or reached its budget of scored rows, and the exact
        /// scan over the rows passing the filter replaced it.
        fell_back: bool,
        /// Rows the walk scored on level 0, seeds included.
        scored: u64,
        /// How many of the scored rows passed the filter.
        matched: u64,
        /// The estimate of the rows passing the filter, made before any was read.
        estimate: Cardinality,
    },
}

/// Why [`Plan::Flat`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatReason {
    /// The request asked for exact search.
    Requested,
    /// The segment has no graph.
    NoGraph,
    /// The candidate count was under the flat threshold (or the estimate's maximum was).
    FewCandidates,
    /// The candidates lie in long runs of consecutive rows (rows stored in spatial order,
    /// spatial filter): the exact scan reads them as sequential streams, and its cost (rows
    /// read in order, a row read out of order counting 4) was under 4 times the flat
    /// threshold although the count was over it.
    Contiguous,
}

/// One request against a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Query vector: `dim` finite values, not all zero; normalised by the planner.
    pub query: Vec<f32>,
    /// Results wanted, `>= 1`; clamped to the segment's row count.
    pub k: usize,
    /// Predicates, combined with AND.
    pub filter: Filter,
    /// Force the exact scan.
    pub exact: bool,
    /// Beam width override (`1..=65536`).
    pub ef: Option<usize>,
    /// How far a walk bounded by slack goes, as a multiple of the segment's hop slack (`(0,
    /// 64]`; `None`: 1). Not with `ef`. Planner knobs that walk beams instead
    /// ([`PlannerParams::hop_slack`] false) leave it unused.
    pub effort: Option<f32>,
}

impl SearchRequest {
    /// Unfiltered approximate top-`k`.
    #[cfg(any(test, feature = "testing"))]
    pub fn new(query: Vec<f32>, k: usize) -> SearchRequest {
        SearchRequest {
            query,
            k,
            filter: Filter::default(),
            exact: false,
            ef: None,
            effort: None,
        }
    }

    /// Sets the filter.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_filter(mut self, filter: Filter) -> SearchRequest {
        self.filter = filter;
        self
    }

    /// Forces (or not) the exact scan.
    #[cfg(any(test, feature = "testing"))]
    pub fn exact(mut self, exact: bool) -> SearchRequest {
        self.exact = exact;
        self
    }

    /// Overrides the beam width.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_ef(mut self, ef: usize) -> SearchRequest {
        self.ef = Some(ef);
        self
    }

    /// Sets the walk's effort (a multiple of the hop slack).
    #[cfg(any(test, feature = "testing"))]
    pub fn with_effort(mut self, effort: f32) -> SearchRequest {
        self.effort = Some(effort);
        self
    }
}

/// Geo-ranked search: `score = alpha * cos + (1 - alpha) * exp(-d_km / scale_km)`, where
/// `d_km` is the haversine distance from `center`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoRank {
    center: Point,
    alpha: f64,
    scale_km: f64,
}

impl GeoRank {
    /// Validates `alpha` in `[0, 1]` and `scale_km > 0`, both finite.
    pub fn new(center: Point, alpha: f64, scale_km: f64) -> Result<GeoRank, QueryError> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(QueryError::GeoRank(format!("alpha {alpha} not in [0, 1]")));
        }
        if !scale_km.is_finite() || scale_km <= 0.0 {
            return Err(QueryError::GeoRank(format!("scale_km {scale_km} not > 0")));
        }
        Ok(GeoRank {
            center,
            alpha,
            scale_km,
        })
    }

    /// The blended score of a row with cosine `cos` at location `p`.
    pub fn score(&self, cos: f32, p: Point) -> f32 {
        let d = haversine_km(self.center, p);
        (self.alpha * f64::from(cos) + (1.0 - self.alpha) * (-d / self.scale_km).exp()) as f32
    }
}

/// Checks a request's walk knobs: a beam width `ef` in `1..=MAX_EF`, an effort in `(0,
/// MAX_EFFORT]` ([`effort_valid`]), not both.
pub fn check_walk_knobs(ef: Option<usize>, effort: Option<f32>) -> Result<(), QueryError> {
    match (ef, effort) {
        (Some(ef), _) if !(1..=MAX_EF).contains(&ef) => Err(QueryError::Ef(ef)),
        (_, Some(e)) if !effort_valid(e) => Err(QueryError::Effort(e)),
        (Some(_), Some(_)) => Err(QueryError::EfAndEffort),
        _ => Ok(()),
    }
}

/// Validates and L2-normalises a query vector.
pub fn normalise_query(query: &[f32], dim: usize) -> Result<Vec<f32>, QueryError> {
    if query.len() != dim {
        return Err(QueryError::Dimension {
            expected: dim,
            got: query.len(),
        });
    }
    if let Some(index) = query.iter().position(|x| !x.is_finite()) {
        return Err(QueryError::NonFinite { index });
    }
    let norm = crate::index::norm_f64(query);
    if norm.is_nan() || norm <= 0.0 || !norm.is_finite() {
        return Err(QueryError::ZeroVector);
    }
    Ok(query
        .iter()
        .map(|&x| (f64::from(x) / norm) as f32)
        .collect())
}
