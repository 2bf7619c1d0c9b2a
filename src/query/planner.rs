//! The per-segment planner: exact scan for small candidate sets, filtered graph walk above.
//!
//! Plan choice, for a request with a filter (and/or deleted rows):
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
//! Without a filter (and no deleted rows) the graph is walked with `ef`; the beam is seeded,
//! next to the greedy descent's entry, with the best rows of a routing sample (one row in 64,
//! leading components, scored in one sequential read; see
//! [`PlannerParams::routing_stride`]), so that a descent ending in the wrong cluster does not
//! trap the walk.
//!
//! Without a graph, or with `exact` set, every matching row is scanned exactly.

use std::sync::OnceLock;

use half::f16;

use super::filter::Filter;
use super::QueryError;
use crate::geo::{haversine_km, Point};
use crate::index::flat::{
    dot_f16_f32, row_vector, top_k_bits_into, top_k_into, Hit, TopK, DENSE_BLOCK_FROM,
};
use crate::index::hnsw::{search_bounded, GraphView, MAX_EF};
use crate::index::quant::{top_k_bits_quantized, QuantView};
use crate::index::spatial::{Coverage, Rect, SpatialIndex};

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
const SCATTERED_ROW_COST: usize = 64 / DENSE_BLOCK_FROM as usize;

/// At or above this fraction of passing rows the filtered walk keeps the unwidened beam.
pub const WIDEN_BELOW: f64 = 0.5;

/// How many of the enumerated rows (an even sample) seed a filtered graph walk as extra
/// entry points (see [`crate::index::hnsw::search_filtered_seeded`]).
pub const FILTER_SEEDS: usize = 256;

/// How many of the best-scoring routing sample rows ([`PlannerParams::routing_stride`])
/// join an unfiltered walk's beam.
pub const ROUTING_KEEP: usize = 8;

/// Fewest rows in a routing sample (every row of a segment smaller than this).
pub const ROUTING_MIN: usize = 256;

/// Leading vector components a routing sample keeps per row (all of them when fewer).
pub const ROUTING_DIMS: usize = 64;

/// The routing sample of a segment ([`PlannerParams::routing_stride`]): one row in every
/// `stride` (in runs of consecutive rows, one page of vectors per run), first
/// [`ROUTING_DIMS`] components of each, contiguous, so that one query scores thousands
/// of sample rows in one sequential read (at 1M x 512 with stride 64: 15,625 rows, 2 MB).
/// Leading components stand in for the whole vector only to rank entry points; the walk
/// scores the chosen rows in full.
#[derive(Debug, Clone)]
pub struct RoutingSample {
    stride: usize,
    dims: usize,
    rows: Vec<u32>,
    prefix: Vec<f16>,
}

impl RoutingSample {
    /// The sample of `n` rows of `vectors` (`dim` wide) for `routing_stride` (0: empty).
    pub fn build(vectors: &[f16], dim: usize, n: u32, routing_stride: usize) -> RoutingSample {
        let dims = dim.min(ROUTING_DIMS);
        let rows: Vec<u32> = if routing_stride == 0 || n == 0 || dims == 0 {
            Vec::new()
        } else {
            let n = n as usize;
            let size = (n / routing_stride).max(ROUTING_MIN).min(n);
            // Runs of consecutive rows, one 4 KiB page of vectors each, spread evenly: the
            // first query after open faults in one page per run instead of one per row.
            let run = (4096 / (2 * dim)).clamp(1, 16);
            let runs = size.div_ceil(run);
            let step = n / runs;
            (0..runs)
                .flat_map(|r| {
                    let start = r * step;
                    start..(start + run.min(step)).min(n)
                })
                .take(size)
                .map(|row| row as u32)
                .collect()
        };
        let mut prefix = Vec::with_capacity(rows.len() * dims);
        let mut kept = Vec::with_capacity(rows.len());
        for &row in &rows {
            let v = row_vector(vectors, dim, row);
            if v.len() == dim {
                prefix.extend_from_slice(&v[..dims]);
                kept.push(row);
            }
        }
        RoutingSample {
            stride: routing_stride,
            dims,
            rows: kept,
            prefix,
        }
    }

#[cfg(any(test, feature = "testing"))]
    /// Rows in the sample.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

#[cfg(any(test, feature = "testing"))]
    /// Whether the sample is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `keep` sample rows whose leading components score best against `query`'s.
    pub fn best(&self, query: &[f32], keep: usize) -> Vec<u32> {
        let Some(q) = query.get(..self.dims).filter(|q| !q.is_empty()) else {
            return Vec::new();
        };
        let mut best = TopK::new(keep);
        for (&row, v) in self.rows.iter().zip(self.prefix.chunks_exact(self.dims)) {
            best.push(Hit {
                row,
                score: dot_f16_f32(v, q),
            });
        }
        best.into_sorted().iter().map(|h| h.row).collect()
    }
}

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
    /// Smallest beam of a filtered walk. A calibrated `ef` can be small (16 on easy data);
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
    /// Routing sample of an unfiltered walk: one row in every `routing_stride` (at least
    /// [`ROUTING_MIN`] rows; 0 turns it off), kept as a contiguous copy of each sample
    /// row's first [`ROUTING_DIMS`] components ([`RoutingSample`], built on first use).
    /// Each query scores the whole sample on those components, and the best
    /// [`ROUTING_KEEP`] rows join the walk's level-0 beam next to the greedy descent's
    /// entry. A descent can end in a part of the data the query's neighbours are not
    /// linked to (on clustered data, another cluster: every neighbour then scores alike and
    /// greedy steps have no direction); a sample row of the query's own cluster gives the
    /// beam a way in. Measured at 1M x 512 (3,333 clusters): without it, 3 of 50 queries
    /// found nothing of their top 10.
    pub routing_stride: usize,
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
            routing_stride: 64,
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
    },
    /// Filtered graph walk.
    Graph {
        /// Beam width used.
        ef: usize,
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
    },
}

/// Why [`Plan::Flat`] was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatReason {
    /// The request asked for exact search.
    Requested,
    /// The segment has no graph.
    NoGraph,
    /// The candidate count was under the flat threshold.
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
}

impl SearchRequest {
#[cfg(any(test, feature = "testing"))]
    /// Unfiltered approximate top-`k`.
    pub fn new(query: Vec<f32>, k: usize) -> SearchRequest {
        SearchRequest {
            query,
            k,
            filter: Filter::default(),
            exact: false,
            ef: None,
        }
    }

#[cfg(any(test, feature = "testing"))]
    /// Sets the filter.
    pub fn with_filter(mut self, filter: Filter) -> SearchRequest {
        self.filter = filter;
        self
    }

#[cfg(any(test, feature = "testing"))]
    /// Forces (or not) the exact scan.
    pub fn exact(mut self, exact: bool) -> SearchRequest {
        self.exact = exact;
        self
    }

#[cfg(any(test, feature = "testing"))]
    /// Overrides the beam width.
    pub fn with_ef(mut self, ef: usize) -> SearchRequest {
        self.ef = Some(ef);
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

/// The indexes of one segment, over borrowed slices (memory-mapped in production).
///
/// Row `i` has vector `vectors[i*dim..(i+1)*dim]` (L2-normalised f16), location `points[i]`,
/// timestamp `times[i]` ([`NO_TIME`] when unknown; no column = no row has a time), and is live
/// unless the `live` closure says otherwise (tombstones). The R-tree is built on first use.
pub struct SegmentIndex<'a> {
    vectors: &'a [f16],
    dim: usize,
    n: u32,
    points: &'a [Point],
    times: Option<&'a [i64]>,
    graph: Option<GraphView<'a>>,
    live: Option<&'a (dyn Fn(u32) -> bool + Sync)>,
    rtree: OnceLock<SpatialIndex>,
    shared_rtree: Option<&'a SpatialIndex>,
    routing: OnceLock<RoutingSample>,
    shared_routing: Option<&'a OnceLock<RoutingSample>>,
    keep_ties: bool,
    quant: Option<QuantView<'a>>,
    params: PlannerParams,
}

impl std::fmt::Debug for SegmentIndex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentIndex")
            .field("n", &self.n)
            .field("dim", &self.dim)
            .field("graph", &self.graph.is_some())
            .field("params", &self.params)
            .finish()
    }
}

impl<'a> SegmentIndex<'a> {
    /// Checks that the slices agree: `vectors.len() == n * dim`, `points.len() == n`,
    /// `times.len() == n`, and the graph (if any) covers `n` rows of `dim`.
    pub fn new(
        vectors: &'a [f16],
        dim: usize,
        points: &'a [Point],
        times: Option<&'a [i64]>,
        graph: Option<GraphView<'a>>,
    ) -> Result<SegmentIndex<'a>, QueryError> {
        let bad = |s: String| Err(QueryError::Segment(s));
        let n = match crate::index::row_count(vectors.len(), dim) {
            Ok(n) => n,
            Err(e) => return bad(e.to_string()),
        };
        if points.len() != n as usize {
            return bad(format!("{} points for {n} rows", points.len()));
        }
        if let Some(t) = times {
            if t.len() != n as usize {
                return bad(format!("{} timestamps for {n} rows", t.len()));
            }
        }
        if let Some(g) = &graph {
            if g.n() != n || g.dim() as usize != dim {
                return bad(format!(
                    "graph covers {} rows of dim {}, segment has {n} of dim {dim}",
                    g.n(),
                    g.dim()
                ));
            }
        }
        Ok(SegmentIndex {
            vectors,
            dim,
            n,
            points,
            times,
            graph,
            live: None,
            rtree: OnceLock::new(),
            shared_rtree: None,
            routing: OnceLock::new(),
            shared_routing: None,
            keep_ties: false,
            quant: None,
            params: PlannerParams::default(),
        })
    }

    /// Gives the exact scans an int8 copy of the vectors (the segment's
    /// [`QUANT_KIND`](crate::index::quant::QUANT_KIND) section): they then score the members
    /// on it and rescore only the rows that may rank from the f16 vectors, with the same
    /// answer ([`top_k_bits_quantized`]). A copy of another shape is ignored.
    pub fn with_quantized(mut self, quant: QuantView<'a>) -> SegmentIndex<'a> {
        if quant.rows() == self.n as usize && quant.dim() == self.dim {
            self.quant = Some(quant);
        }
        self
    }

    /// Makes the exact paths return, past the best `k`, every row tied with the `k`-th
    /// score (see [`TopK::keeping_ties`]): for a caller that breaks ties by something else
    /// than row, such as the collection search over a segment whose rows are not in id
    /// order.
    pub fn with_ties_kept(mut self) -> SegmentIndex<'a> {
        self.keep_ties = true;
        self
    }

    /// The collector of the exact paths' best `k`.
    fn collector(&self, k: usize) -> TopK {
        if self.keep_ties {
            TopK::keeping_ties(k)
        } else {
            TopK::new(k)
        }
    }

    /// Sets the liveness test (false = deleted row, never returned).
    pub fn with_live(mut self, live: &'a (dyn Fn(u32) -> bool + Sync)) -> SegmentIndex<'a> {
        self.live = Some(live);
        self
    }

    /// Uses an R-tree built earlier over the same `points` (kept across queries by the
    /// caller) instead of building one on first use. A tree over a different row count is
    /// ignored.
    pub fn with_rtree(mut self, tree: &'a SpatialIndex) -> SegmentIndex<'a> {
        if tree.len() == self.n {
            self.shared_rtree = Some(tree);
        }
        self
    }

    /// Keeps the routing sample ([`RoutingSample`]) in `cache`, owned by the caller across
    /// queries, instead of in this index. The cache must only ever hold a sample of these
    /// same vectors.
    pub fn with_routing_cache(mut self, cache: &'a OnceLock<RoutingSample>) -> SegmentIndex<'a> {
        self.shared_routing = Some(cache);
        self
    }

    /// The best routing rows for `query` ([`PlannerParams::routing_stride`]); the sample
    /// is built on first use (a cached sample of another stride is not used).
    fn routing_seeds(&self, query: &[f32]) -> Vec<u32> {
        let stride = self.params.routing_stride;
        if stride == 0 {
            return Vec::new();
        }
        let build = || RoutingSample::build(self.vectors, self.dim, self.n, stride);
        let cell = self.shared_routing.unwrap_or(&self.routing);
        let sample = cell.get_or_init(build);
        if sample.stride == stride {
            sample.best(query, ROUTING_KEEP)
        } else {
            build().best(query, ROUTING_KEEP)
        }
    }

    /// Sets the planner knobs.
    pub fn with_params(mut self, params: PlannerParams) -> SegmentIndex<'a> {
        self.params = params;
        self
    }

#[cfg(any(test, feature = "testing"))]
    /// Number of rows.
    pub fn len(&self) -> u32 {
        self.n
    }

#[cfg(any(test, feature = "testing"))]
    /// Whether the segment has no rows.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The R-tree, built on first call.
    pub fn rtree(&self) -> &SpatialIndex {
        if let Some(t) = self.shared_rtree {
            return t;
        }
        self.rtree.get_or_init(|| SpatialIndex::build(self.points))
    }

    fn time(&self, row: u32) -> Option<i64> {
        self.times
            .and_then(|t| t.get(row as usize).copied())
            .filter(|&t| t != NO_TIME)
    }

    fn passes(&self, filter: &Filter, row: u32) -> bool {
        if let Some(live) = self.live {
            if !live(row) {
                return false;
            }
        }
        if filter.is_empty() {
            return true;
        }
        match self.points.get(row as usize) {
            Some(&p) => filter.matches(p, self.time(row)),
            None => false,
        }
    }

    /// [`SegmentIndex::passes`], with radii tested on the rows' unit vectors
    /// ([`Filter::matches_unit`]: one dot product, the haversine only near the boundary)
    /// when `units` is given.
    #[inline]
    fn passes_unit(&self, filter: &Filter, row: u32, units: Option<&[[f32; 3]]>) -> bool {
        let unit = units.and_then(|u| u.get(row as usize));
        match (unit, self.points.get(row as usize)) {
            (Some(&u), Some(&p)) => {
                self.live.is_none_or(|l| l(row)) && filter.matches_unit(p, u, self.time(row))
            }
            _ => self.passes(filter, row),
        }
    }

    /// [`SegmentIndex::passes`] for a row whose location is known to pass every spatial
    /// predicate.
    fn passes_except_space(&self, filter: &Filter, row: u32) -> bool {
        if let Some(live) = self.live {
            if !live(row) {
                return false;
            }
        }
        filter.time.is_none_or(|t| t.contains(self.time(row)))
    }

    /// Every row passing the filter (and alive), sorted.
    fn candidates(&self, filter: &Filter) -> Vec<u32> {
        let mut set = RowSet::new(self.n);
        self.collect_all(filter, &mut set);
        set.sorted_rows()
    }

    /// Adds every row passing the filter (and alive) to `set` (which may hold rows of an
    /// earlier, limited [`SegmentIndex::collect`]).
    ///
    /// A spatial filter over rows stored in a spatial order (compact block rectangles, see
    /// [`SpatialIndex::uses_blocks`]) is answered by one pass over the block rectangles
    /// ([`SegmentIndex::collect_blocks`]). Otherwise it goes through the R-tree while that
    /// has found at most 1/[`LINEAR_ABOVE`] of the rows; past that, the R-tree's per-node and
    /// per-row costs exceed one pass over every row, and the set is rebuilt by the same block
    /// pass, where every block then tests its rows.
    fn collect_all(&self, filter: &Filter, set: &mut RowSet) {
        let Some(rects) = filter.candidate_rects() else {
            self.collect(filter, usize::MAX, set);
            return;
        };
        let tree = self.rtree();
        if !tree.uses_blocks() {
            let switch = (self.n as usize / LINEAR_ABOVE).max(SMALL_PROBE);
            if self.collect(filter, switch, set) {
                return;
            }
        }
        set.clear();
        self.collect_blocks(filter, &rects, usize::MAX, set);
    }

    /// Adds the rows passing the filter (and alive) to `set`, stopping once the set holds
    /// more than `limit` rows; rows already in the set are skipped before any predicate is
    /// tested, so a second, unlimited call after a limited one only tests the rows it had
    /// not reached. A spatial filter goes through the block rectangles when rows are stored
    /// in a spatial order, else through the R-tree; any other filter tests every row.
    /// Returns whether the enumeration ran to the end.
    fn collect(&self, filter: &Filter, limit: usize, set: &mut RowSet) -> bool {
        let Some(rects) = filter.candidate_rects() else {
            for row in 0..self.n {
                if !set.contains(row) && self.passes(filter, row) {
                    set.insert(row);
                    if set.rows.len() > limit {
                        return false;
                    }
                }
            }
            return true;
        };
        let tree = self.rtree();
        if tree.uses_blocks() {
            return self.collect_blocks(filter, &rects, limit, set);
        }
        let covers = |r: &Rect| filter.covers_rect(r);
        // Rows the tree cannot vouch for: radii tested on the unit vectors when the filter
        // has one.
        let units = filter
            .radius
            .is_some()
            .then(|| tree.unit_vectors(self.points))
            .flatten();
        for r in &rects {
            // Rows under covered tree nodes skip the geometry, not the time and liveness
            // tests.
            let done = tree.visit_in(self.points, r, &covers, &mut |row, covered| {
                if set.contains(row) {
                    return true;
                }
                let ok = if covered {
                    self.passes_except_space(filter, row)
                } else {
                    self.passes_unit(filter, row, units)
                };
                if ok {
                    set.insert(row);
                }
                set.rows.len() <= limit
            });
            if !done {
                return false;
            }
        }
        true
    }

    /// [`SegmentIndex::collect`] through the block rectangles
    /// ([`crate::index::spatial::BlockRects`]) of the filter's covering `rects`: blocks
    /// outside them are skipped, blocks the filter covers are taken whole (time and liveness
    /// still tested per row), and the other blocks test their rows, radii on precomputed unit
    /// vectors (no trigonometry per row; 64 rows at a time for a lone radius filter).
    fn collect_blocks(
        &self,
        filter: &Filter,
        rects: &[Rect],
        limit: usize,
        set: &mut RowSet,
    ) -> bool {
        let tree = self.rtree();
        let units = tree.unit_vectors(self.points);
        let covers = |r: &Rect| filter.covers_rect(r);
        let plain = filter.time.is_none() && self.live.is_none();
        let radius_only = filter.bbox.is_none() && filter.polygon.is_none() && plain;
        // An empty set at the start: the runs are disjoint, so no row is met twice.
        let fresh = set.rows.is_empty();
        tree.blocks().visit(rects, covers, |start, end, coverage| {
            let (a, b) = (start as usize, end as usize);
            match (coverage, &filter.radius, units) {
                (Coverage::Covered, _, _) if plain && fresh => set.insert_run(start, end),
                (Coverage::Covered, _, _) => {
                    for row in start..end {
                        if !set.contains(row) && self.passes_except_space(filter, row) {
                            set.insert(row);
                        }
                    }
                }
                (Coverage::Partial, Some(r), Some(units)) if radius_only && fresh => {
                    let ps = self.points.get(a..b).unwrap_or(&[]);
                    let us = units.get(a..b).unwrap_or(&[]);
                    r.scan_units(ps, us, |i| set.insert(start + i));
                }
                (Coverage::Partial, _, _) => {
                    for row in start..end {
                        if !set.contains(row) && self.passes_unit(filter, row, units) {
                            set.insert(row);
                        }
                    }
                }
            }
            set.rows.len() <= limit
        })
    }
}

/// A per-query set of rows: a bitset over the segment (membership in O(1) for the graph walk)
/// plus the rows in insertion order (for the exact scan).
struct RowSet {
    bits: Vec<u64>,
    rows: Vec<u32>,
}

impl RowSet {
    fn new(n: u32) -> RowSet {
        RowSet {
            bits: vec![0; (n as usize).div_ceil(64)],
            rows: Vec::new(),
        }
    }

    #[inline]
    fn contains(&self, row: u32) -> bool {
        self.bits
            .get(row as usize / 64)
            .is_some_and(|w| w >> (row % 64) & 1 == 1)
    }

    /// What the exact scan of the set costs, in rows read in order: a 64-row block with at
    /// least [`DENSE_BLOCK_FROM`] members is read whole (64), the members of sparser blocks
    /// one by one at [`SCATTERED_ROW_COST`] each (see [`top_k_bits_into`]).
    fn scan_cost(&self) -> usize {
        self.bits
            .iter()
            .map(|w| match w.count_ones() {
                c if c >= DENSE_BLOCK_FROM => 64,
                c => c as usize * SCATTERED_ROW_COST,
            })
            .sum()
    }

    /// Whether the set has so few rows that sorting them beats reading the bitset: sorting
    /// m rows costs about m log m steps, reading the bitset one per word; below one row in
    /// 16 words.
    fn is_tiny(&self) -> bool {
        self.rows.len().saturating_mul(16) < self.bits.len()
    }

    /// The rows in ascending order: an exact scan then reads the vectors in storage order,
    /// which the hardware prefetcher follows (the R-tree enumerates rows in tree order).
    fn sorted_rows(&self) -> Vec<u32> {
        if self.is_tiny() {
            let mut rows = self.rows.clone();
            rows.sort_unstable();
            return rows;
        }
        let mut rows = Vec::with_capacity(self.rows.len());
        for (i, &w) in self.bits.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                rows.push(i as u32 * 64 + w.trailing_zeros());
                w &= w - 1;
            }
        }
        rows
    }

    /// Empties the set.
    fn clear(&mut self) {
        self.bits.fill(0);
        self.rows.clear();
    }

    /// Adds the rows `start..end`, none of them in the set yet.
    fn insert_run(&mut self, start: u32, end: u32) {
        let end = end.min(self.bits.len() as u32 * 64);
        let mut row = start;
        while row < end {
            let bit = row % 64;
            let take = (64 - bit).min(end - row);
            let mask = u64::MAX.checked_shr(64 - take).unwrap_or(0) << bit;
            self.bits[row as usize / 64] |= mask;
            row += take;
        }
        self.rows.extend(start..end.max(start));
    }

    /// Adds `row` (callers check [`RowSet::contains`] first); rows beyond the bitset are
    /// ignored.
    #[inline]
    fn insert(&mut self, row: u32) {
        if let Some(w) = self.bits.get_mut(row as usize / 64) {
            *w |= 1 << (row % 64);
            self.rows.push(row);
        }
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
    let norm = query
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm.is_nan() || norm <= 0.0 || !norm.is_finite() {
        return Err(QueryError::ZeroVector);
    }
    Ok(query
        .iter()
        .map(|&x| (f64::from(x) / norm) as f32)
        .collect())
}

/// Searches one segment: validates the request, plans, runs, and reports the plan.
pub fn search_segment(
    seg: &SegmentIndex<'_>,
    req: &SearchRequest,
) -> Result<(Vec<Hit>, Plan), QueryError> {
    let q = normalise_query(&req.query, seg.dim)?;
    if req.k == 0 {
        return Err(QueryError::ZeroK);
    }
    if let Some(ef) = req.ef {
        if !(1..=MAX_EF).contains(&ef) {
            return Err(QueryError::Ef(ef));
        }
    }
    let n = seg.n as usize;
    let k = req.k.min(n);
    let filter = &req.filter;
    // The exact scan over an enumerated set: a few rows are sorted and read one by one;
    // otherwise the bitset drives the scan, block by block (see `top_k_bits_into`).
    let flat_set = |set: &RowSet, reason| {
        let count = set.rows.len();
        let hits = match (set.is_tiny(), &seg.quant) {
            (true, _) => {
                let rows = set.sorted_rows().into_iter();
                top_k_into(seg.vectors, seg.dim, &q, rows, seg.collector(k))
            }
            (false, Some(quant)) => {
                let (v, dim, bits) = (seg.vectors, seg.dim, &set.bits);
                top_k_bits_quantized(v, dim, &q, seg.n, bits, quant, seg.collector(k))
            }
            (false, None) => {
                top_k_bits_into(seg.vectors, seg.dim, &q, seg.n, &set.bits, seg.collector(k))
            }
        };
        let plan = Plan::Flat {
            candidates: count as u64,
            reason,
        };
        (hits, plan)
    };
    if n == 0 {
        let plan = Plan::Flat {
            candidates: 0,
            reason: FlatReason::Requested,
        };
        return Ok((Vec::new(), plan));
    }
    let unfiltered = filter.is_empty() && seg.live.is_none();
    let graph = match (&seg.graph, req.exact) {
        (Some(g), false) => g,
        (g, _) => {
            let reason = if req.exact {
                FlatReason::Requested
            } else {
                debug_assert!(g.is_none());
                FlatReason::NoGraph
            };
            let mut set = RowSet::new(seg.n);
            seg.collect_all(filter, &mut set);
            return Ok(flat_set(&set, reason));
        }
    };
    let base_ef = req.ef.unwrap_or(seg.params.ef_search).max(k);
    if unfiltered {
        let seeds = seg.routing_seeds(&q);
        let walk = search_bounded(
            graph,
            seg.vectors,
            seg.dim,
            &q,
            k,
            base_ef,
            None::<fn(u32) -> bool>,
            &seeds,
            usize::MAX,
        );
        let hits = walk.hits;
        let plan = Plan::Graph {
            ef: base_ef,
            estimated_selectivity: 1.0,
            fell_back: false,
            scored: walk.scored,
            matched: walk.matched,
        };
        return Ok((hits, plan));
    }
    let flat_cap =
        (seg.params.flat_max_rows as usize).max((seg.params.flat_max_fraction * n as f64) as usize);
    let threshold = flat_cap.max(k);
    // One enumeration (R-tree + exact predicates, or a metadata scan), into a bitset plus a
    // row list. A short probe first: tiny candidate sets end there, without the count.
    let mut set = RowSet::new(seg.n);
    let probe = SMALL_PROBE.min(threshold);
    if seg.collect(filter, probe, &mut set) {
        return Ok(flat_set(&set, FlatReason::FewCandidates));
    }
    // Carries on from the probe (rows it found are skipped, not re-tested).
    seg.collect_all(filter, &mut set);
    let count = set.rows.len();
    if count <= threshold {
        return Ok(flat_set(&set, FlatReason::FewCandidates));
    }
    if set.scan_cost() <= flat_cap.saturating_mul(SCATTERED_ROW_COST) {
        return Ok(flat_set(&set, FlatReason::Contiguous));
    }
    let s = (count as f64 / n as f64).min(1.0);
    // Widen the beam for restrictive filters only: at or above WIDEN_BELOW of the rows pass,
    // the walk meets matching rows about as often as the unfiltered one meets rows.
    let base_ef = base_ef.max(seg.params.filtered_ef_min).min(MAX_EF);
    let ef = if s >= WIDEN_BELOW {
        base_ef
    } else {
        let widened = (base_ef as f64 / s.sqrt()).ceil() as usize;
        widened
            .min(base_ef.saturating_mul(seg.params.max_ef_widening.max(1)))
            .clamp(base_ef, MAX_EF)
    };
    let bits = &set.bits;
    let member = |row: u32| {
        bits.get(row as usize / 64)
            .is_some_and(|w| w >> (row % 64) & 1 == 1)
    };
    // Entry points inside the matching region: an even sample of the enumerated rows.
    let stride = (count / FILTER_SEEDS).max(1);
    let seeds: Vec<u32> = set
        .rows
        .iter()
        .step_by(stride)
        .take(FILTER_SEEDS)
        .copied()
        .collect();
    let budget = (count as f64 * seg.params.walk_budget.max(0.0)).min(usize::MAX as f64) as usize;
    let walk = search_bounded(
        graph,
        seg.vectors,
        seg.dim,
        &q,
        k,
        ef,
        Some(member),
        &seeds,
        budget.max(ef),
    );
    let far = walk
        .hits
        .first()
        .is_some_and(|h| walk.best_score - h.score > seg.params.far_gap);
    let fell_back = !walk.complete || walk.hits.len() < k || far;
    let hits = if fell_back {
        // The walk came back short, ran past its budget or found only far rows: settle it
        // with the exact scan over the rows already enumerated.
        flat_set(&set, FlatReason::FewCandidates).0
    } else {
        walk.hits
    };
    let plan = Plan::Graph {
        ef,
        estimated_selectivity: s,
        fell_back,
        scored: walk.scored,
        matched: walk.matched,
    };
    Ok((hits, plan))
}

/// Geo-ranked top-`k` by [`GeoRank::score`] over every row that passes the filter
/// (an exact scan: the blend is not a metric the graph can walk).
pub fn search_geo_ranked(
    seg: &SegmentIndex<'_>,
    req: &SearchRequest,
    rank: &GeoRank,
) -> Result<(Vec<Hit>, Plan), QueryError> {
    let q = normalise_query(&req.query, seg.dim)?;
    if req.k == 0 {
        return Err(QueryError::ZeroK);
    }
    let rows = seg.candidates(&req.filter);
    let mut top = seg.collector(req.k.min(seg.n as usize));
    for &row in &rows {
        let v = row_vector(seg.vectors, seg.dim, row);
        let Some(&p) = seg.points.get(row as usize) else {
            continue;
        };
        if v.len() == seg.dim {
            let score = rank.score(dot_f16_f32(v, &q), p);
            top.push(Hit { row, score });
        }
    }
    let plan = Plan::Flat {
        candidates: rows.len() as u64,
        reason: FlatReason::Requested,
    };
    Ok((top.into_sorted(), plan))
}
