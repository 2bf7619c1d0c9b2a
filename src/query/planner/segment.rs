//! [`SegmentIndex`]: the indexes of one segment over borrowed slices, and the per-row tests
//! of a filter against them.

use std::sync::OnceLock;

use half::f16;

use super::{PlannerParams, SearchRequest, NO_TIME, ROUTING_KEEP};
use crate::geo::Point;
use crate::index::flat::TopK;
use crate::index::hnsw::{
    hints_header, hop_slack, routing_seeds, Effort, GraphView, RoutingSample,
};
use crate::index::quant::{Int8Rows, QuantView};
use crate::index::spatial::{SpatialIndex, Units};
use crate::query::filter::{Filter, Row, SegmentStats, TimeStats};
use crate::query::QueryError;

/// A graph parsed (and validated) only when a walk needs it: a batch of small filtered
/// queries, answered by exact scans, never pays for it.
pub type DeferredGraph<'a> = dyn Fn() -> Result<GraphView<'a>, QueryError> + Sync + 'a;

/// The indexes of one segment, over borrowed slices (memory-mapped in production).
///
/// Row `i` has vector `vectors[i*dim..(i+1)*dim]` (L2-normalised f16), location `points[i]`,
/// timestamp `times[i]` ([`NO_TIME`] when unknown; no column = no row has a time), and is live
/// unless the `live` closure says otherwise (tombstones). The R-tree is built on first use.
pub struct SegmentIndex<'a> {
    pub(super) vectors: &'a [f16],
    pub(super) dim: usize,
    pub(super) n: u32,
    pub(super) points: &'a [Point],
    /// False for an index made by [`SegmentIndex::without_points`] (`points` empty).
    pub(super) has_points: bool,
    pub(super) times: Option<&'a [i64]>,
    pub(super) graph: Option<GraphView<'a>>,
    /// Where the graph comes from when it is parsed on first use ([`Self::with_deferred_graph`]).
    pub(super) deferred_graph: Option<&'a DeferredGraph<'a>>,
    pub(super) resolved_graph: OnceLock<Result<GraphView<'a>, QueryError>>,
    /// Where the graph with its upper levels comes from, when the deferred graph is level
    /// 0 alone ([`Self::with_deferred_levels`]): for a walk without seeds, which descends.
    pub(super) deferred_levels: Option<&'a DeferredGraph<'a>>,
    pub(super) resolved_levels: OnceLock<Result<GraphView<'a>, QueryError>>,
    pub(super) live: Option<&'a (dyn Fn(u32) -> bool + Sync)>,
    pub(super) rtree: OnceLock<SpatialIndex>,
    pub(super) shared_rtree: Option<&'a SpatialIndex>,
    pub(super) routing: OnceLock<RoutingSample>,
    pub(super) shared_routing: Option<&'a OnceLock<RoutingSample>>,
    pub(super) slack: OnceLock<Option<f32>>,
    pub(super) shared_slack: Option<&'a OnceLock<Option<f32>>>,
    pub(super) keep_ties: bool,
    pub(super) quant: Option<QuantView<'a>>,
    /// Whether the int8 copy's factors are sound, found by the first scan on it (or kept by
    /// the caller across queries: [`Self::with_int8_check_cache`]).
    pub(super) quant_factors: OnceLock<Result<(), String>>,
    pub(super) shared_quant_factors: Option<&'a OnceLock<Result<(), String>>>,
    pub(super) params: PlannerParams,
    /// The span of the rows' times, when the caller keeps it across queries (else worked
    /// out by the first estimate that needs it).
    pub(super) time_stats: OnceLock<TimeStats>,
    /// What errors name the segment by ([`Self::with_source`]; empty: nothing).
    pub(super) source: &'a str,
    /// The segment's walk hints section ([`Self::with_walk_hints`]).
    pub(super) hints: Option<&'a [u8]>,
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
        SegmentIndex::checked(vectors, dim, Some(points), times, graph)
    }

    /// [`SegmentIndex::new`] without the rows' points, for the searches that read none
    /// (neither a filter nor a geographic ranking): [`search_segment`](super::search_segment)
    /// refuses a filtered request over it, and [`search_geo_ranked`](super::search_geo_ranked)
    /// any.
    pub(crate) fn without_points(
        vectors: &'a [f16],
        dim: usize,
        times: Option<&'a [i64]>,
    ) -> Result<SegmentIndex<'a>, QueryError> {
        SegmentIndex::checked(vectors, dim, None, times, None)
    }

    fn checked(
        vectors: &'a [f16],
        dim: usize,
        points: Option<&'a [Point]>,
        times: Option<&'a [i64]>,
        graph: Option<GraphView<'a>>,
    ) -> Result<SegmentIndex<'a>, QueryError> {
        let bad = |s: String| Err(QueryError::Segment(s));
        let n = match crate::index::row_count(vectors.len(), dim) {
            Ok(n) => n,
            Err(e) => return bad(e.to_string()),
        };
        if let Some(p) = points.filter(|p| p.len() != n as usize) {
            return bad(format!("{} points for {n} rows", p.len()));
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
            points: points.unwrap_or(&[]),
            has_points: points.is_some(),
            times,
            graph,
            deferred_graph: None,
            resolved_graph: OnceLock::new(),
            deferred_levels: None,
            resolved_levels: OnceLock::new(),
            live: None,
            rtree: OnceLock::new(),
            shared_rtree: None,
            routing: OnceLock::new(),
            shared_routing: None,
            slack: OnceLock::new(),
            shared_slack: None,
            keep_ties: false,
            quant: None,
            quant_factors: OnceLock::new(),
            shared_quant_factors: None,
            params: PlannerParams::default(),
            time_stats: OnceLock::new(),
            source: "",
            hints: None,
        })
    }

    /// Gives the exact scans an int8 copy of the vectors (the segment's
    /// [`QUANT_KIND`](crate::index::quant::QUANT_KIND) section): they then score the members
    /// on it and rescore only the rows that may rank from the f16 vectors, with the same
    /// answer ([`top_k_bits_quantized`](crate::index::quant::top_k_bits_quantized)). A copy of another shape is ignored.
    pub fn with_quantized(mut self, quant: QuantView<'a>) -> SegmentIndex<'a> {
        if quant.rows() == self.n as usize && quant.dim() == self.dim {
            self.quant = Some(quant);
        }
        self
    }

    /// Keeps the check of the int8 copy's factors ([`QuantView::check_factors`], made by the
    /// first scan on it) in `cache`, which the caller keeps with this segment.
    pub(crate) fn with_int8_check_cache(
        mut self,
        cache: &'a OnceLock<Result<(), String>>,
    ) -> SegmentIndex<'a> {
        self.shared_quant_factors = Some(cache);
        self
    }

    /// The int8 copy for a scan: its factors checked, once per segment (an error names a
    /// damaged row); `None` without a copy.
    pub(super) fn scan_quant(&self) -> Result<Option<QuantView<'a>>, QueryError> {
        let Some(quant) = self.quant else {
            return Ok(None);
        };
        let cell = self.shared_quant_factors.unwrap_or(&self.quant_factors);
        match quant.check_factors_once(cell) {
            Ok(checked) => Ok(Some(checked)),
            Err(e) => Err(self.corrupt("int8 section", e)),
        }
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
    pub(super) fn collector(&self, k: usize) -> TopK {
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

    /// Gives the segment a graph that `parse` produces on first use (when the index was
    /// made without one): the planner plans as if the graph were there and parses it only
    /// for a walk. A graph of another shape is an error then.
    pub fn with_deferred_graph(mut self, parse: &'a DeferredGraph<'a>) -> SegmentIndex<'a> {
        if self.graph.is_none() {
            self.deferred_graph = Some(parse);
        }
        self
    }

    /// With [`Self::with_deferred_graph`] giving level 0 alone
    /// ([`GraphView::open_level0`]): `parse` gives the graph with its upper levels, which
    /// only a walk without seeds reads (it descends through them).
    pub(crate) fn with_deferred_levels(mut self, parse: &'a DeferredGraph<'a>) -> SegmentIndex<'a> {
        self.deferred_levels = Some(parse);
        self
    }

    /// The int8 scorer a walk steers by ([`PlannerParams::int8_walk`] and an int8 copy),
    /// for the normalised query `q`.
    pub(super) fn walk_rows(&self, q: &[f32]) -> Option<Int8Rows<'a>> {
        let quant = self.quant.filter(|_| self.params.int8_walk)?;
        // Rows checked one by one as the walk reads them, unless a scan checked them all.
        let cell = self.shared_quant_factors.unwrap_or(&self.quant_factors);
        Some(match cell.get() {
            Some(Ok(())) => Int8Rows::new(quant.with_factors_checked(), q),
            _ => Int8Rows::new(quant, q),
        })
    }

    /// The error of a search that needs the rows' points over an index made without them
    /// ([`SegmentIndex::without_points`]); `Ok` when it has them.
    pub(super) fn need_points(&self, what: &str) -> Result<(), QueryError> {
        if self.has_points {
            return Ok(());
        }
        Err(QueryError::Segment(format!(
            "{}{}{what} needs the rows' points, which this index was made without",
            self.source,
            if self.source.is_empty() { "" } else { ": " }
        )))
    }

    /// Names the segment (its file) in the errors of damaged data found while searching.
    pub fn with_source(mut self, source: &'a str) -> SegmentIndex<'a> {
        self.source = source;
        self
    }

    /// Gives the walks the segment's walk hints section
    /// ([`HINTS_KIND`](crate::index::hnsw::HINTS_KIND)): the hop slack and routing sample
    /// are then read from it instead of worked out from the vectors and the graph (a
    /// damaged section is an error of the walks that read it).
    pub fn with_walk_hints(mut self, bytes: &'a [u8]) -> SegmentIndex<'a> {
        self.hints = Some(bytes);
        self
    }

    /// The error for damage found in `section` of this segment while searching.
    pub(super) fn corrupt(&self, section: &str, e: impl std::fmt::Display) -> QueryError {
        match self.source {
            "" => QueryError::Corrupt(format!("{section}: {e}")),
            file => QueryError::Corrupt(format!("{file}: {section}: {e}")),
        }
    }

    /// Whether the segment has a graph (parsed or not yet).
    pub(super) fn has_graph(&self) -> bool {
        self.graph.is_some() || self.deferred_graph.is_some()
    }

    /// The graph, parsed now if it was deferred; `None` without one.
    pub(super) fn graph(&self) -> Result<Option<&GraphView<'a>>, QueryError> {
        if let Some(g) = &self.graph {
            return Ok(Some(g));
        }
        match self.deferred_graph {
            Some(parse) => self.resolve(&self.resolved_graph, parse).map(Some),
            None => Ok(None),
        }
    }

    /// The graph for a walk that descends from its entry (one without seeds): with its
    /// upper levels, parsed now if they were deferred ([`Self::with_deferred_levels`]).
    pub(super) fn graph_with_levels(&self) -> Result<Option<&GraphView<'a>>, QueryError> {
        match (&self.graph, self.deferred_levels) {
            (None, Some(parse)) => self.resolve(&self.resolved_levels, parse).map(Some),
            _ => self.graph(),
        }
    }

    fn resolve<'s>(
        &'s self,
        cell: &'s OnceLock<Result<GraphView<'a>, QueryError>>,
        parse: &DeferredGraph<'a>,
    ) -> Result<&'s GraphView<'a>, QueryError> {
        let (n, dim) = (self.n, self.dim);
        let view = cell.get_or_init(|| {
            let g = parse()?;
            if g.n() != n || g.dim() as usize != dim {
                return Err(QueryError::Segment(format!(
                    "graph covers {} rows of dim {}, segment has {n} of dim {dim}",
                    g.n(),
                    g.dim()
                )));
            }
            Ok(g)
        });
        view.as_ref().map_err(Clone::clone)
    }

    /// Keeps the hop slack of the graph ([`crate::index::hnsw::hop_slack`]) in `cache`,
    /// owned by the caller across queries. The cache must only ever hold the slack of this
    /// same graph and vectors.
    pub fn with_slack_cache(mut self, cache: &'a OnceLock<Option<f32>>) -> SegmentIndex<'a> {
        self.shared_slack = Some(cache);
        self
    }

    /// How far a walk goes: a beam of the request's `ef` when it gives one (or the planner
    /// knobs ask for beams), else the graph's hop slack (worked out on first use) times the
    /// request's effort.
    pub(super) fn effort(
        &self,
        graph: &GraphView<'_>,
        req: &SearchRequest,
        k: usize,
    ) -> Result<Effort, QueryError> {
        let ef = req.ef;
        if let (None, true) = (ef, self.params.hop_slack) {
            let cell = self.shared_slack.unwrap_or(&self.slack);
            let slack = match (cell.get(), self.hints) {
                (Some(s), _) => *s,
                (None, Some(bytes)) => {
                    let header = hints_header(bytes, self.n, self.dim)
                        .map_err(|e| self.corrupt("walk hints section", e))?;
                    *cell.get_or_init(|| header.slack)
                }
                (None, None) => *cell.get_or_init(|| hop_slack(graph, self.vectors, self.dim)),
            };
            if let Some(s) = slack {
                // A huge stored slack times the effort stays finite (a walk treats an
                // infinite slack as none).
                let scaled = (s * req.effort.unwrap_or(1.0)).min(f32::MAX);
                return Ok(Effort::Slack(scaled));
            }
        }
        Ok(Effort::Beam(ef.unwrap_or(self.params.ef_search).max(k)))
    }

    /// The best routing rows for `query` ([`PlannerParams::routing_stride`]): of the pool
    /// ranked by leading components, those `member` passes (a selective filter leaves few or
    /// none), scored as the walk scores them (`int8`: the walk's own scorer, which keeps the
    /// damage it meets for the walk's check); the sample is read from the walk hints or
    /// built on first use (a cached or stored sample of another stride is not used).
    pub(super) fn routing_seeds(
        &self,
        query: &[f32],
        int8: Option<&Int8Rows<'_>>,
        member: impl Fn(u32) -> bool,
    ) -> Result<Vec<u32>, QueryError> {
        let stride = self.params.routing_stride;
        if stride == 0 {
            return Ok(Vec::new());
        }
        let build = || RoutingSample::build(self.vectors, self.dim, self.n, stride);
        let cell = self.shared_routing.unwrap_or(&self.routing);
        let sample = match (cell.get(), self.hints) {
            (Some(sample), _) => sample,
            (None, Some(bytes)) => {
                let header = hints_header(bytes, self.n, self.dim)
                    .map_err(|e| self.corrupt("walk hints section", e))?;
                let whole = &bytes[..header.read_whole(bytes.len())];
                let _in_order = crate::storage::advice::InOrder::new(whole);
                if header.stride == stride {
                    let stored = RoutingSample::from_hints(bytes, self.n, self.dim)
                        .map_err(|e| self.corrupt("walk hints section", e))?;
                    cell.get_or_init(|| stored)
                } else {
                    cell.get_or_init(build)
                }
            }
            (None, None) => cell.get_or_init(build),
        };
        // A sample of another stride is built for this query; the stored one is scored on
        // its own int8 copy in the walk hints, for the same query, when it has one.
        let built;
        let (sample, own) = if sample.stride == stride {
            let own = match (int8, self.hints.and_then(|h| sample.int8_rows(h, self.dim))) {
                (Some(int8), Some(view)) => {
                    let view = view.map_err(|e| self.corrupt("walk hints section", e))?;
                    Some(int8.over(view))
                }
                _ => None,
            };
            (sample, own)
        } else {
            built = build();
            (&built, None)
        };
        Ok(routing_seeds(
            sample,
            self.vectors,
            self.dim,
            query,
            int8,
            own.as_ref(),
            member,
            ROUTING_KEEP,
        ))
    }

    /// Gives the estimates the span of the rows' times, computed once per segment by the
    /// caller (it must describe these rows' `times`).
    pub(crate) fn with_time_stats(self, stats: TimeStats) -> SegmentIndex<'a> {
        let _ = self.time_stats.set(stats);
        self
    }

    /// What the estimates know about the segment: rows, block rectangles, time span.
    pub(super) fn stats(&self) -> SegmentStats<'_> {
        let times = self
            .times
            .map(|t| *self.time_stats.get_or_init(|| TimeStats::of(t, NO_TIME)));
        SegmentStats {
            rows: u64::from(self.n),
            blocks: Some(self.rtree().blocks()),
            compact: self.rtree().blocks_compact(),
            times: Some(times.unwrap_or(TimeStats {
                count: 0,
                min: i64::MAX,
                max: i64::MIN,
            })),
        }
    }

    /// Sets the planner knobs.
    pub fn with_params(mut self, params: PlannerParams) -> SegmentIndex<'a> {
        self.params = params;
        self
    }

    /// Number of rows.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> u32 {
        self.n
    }

    /// Whether the segment has no rows.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The R-tree, built on first call (empty for an index without its points).
    pub fn rtree(&self) -> &SpatialIndex {
        if let Some(t) = self.shared_rtree {
            return t;
        }
        self.rtree.get_or_init(|| SpatialIndex::build(self.points))
    }

    pub(super) fn time(&self, row: u32) -> Option<i64> {
        self.times
            .and_then(|t| t.get(row as usize).copied())
            .filter(|&t| t != NO_TIME)
    }

    /// Whether `row` is alive and passes `filter`.
    pub(super) fn passes(&self, filter: &Filter, row: u32) -> bool {
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
    pub(super) fn passes_unit(&self, filter: &Filter, row: u32, units: Option<Units<'_>>) -> bool {
        let unit = units.and_then(|u| u.get(row));
        match (unit, self.points.get(row as usize)) {
            (Some(u), Some(&p)) => {
                self.live.is_none_or(|l| l(row)) && filter.matches_unit(p, u, self.time(row))
            }
            _ => self.passes(filter, row),
        }
    }

    /// Whether `row` is alive and passes the conditions of `filter` in `mask` (a block test
    /// found the others true for every row of its block: see [`Filter::block_mask`]).
    #[inline]
    pub(super) fn passes_masked(
        &self,
        filter: &Filter,
        row: u32,
        units: Option<Units<'_>>,
        mask: u64,
    ) -> bool {
        if self.live.is_some_and(|l| !l(row)) {
            return false;
        }
        if filter.passes_whole(mask) {
            return true;
        }
        let Some(&point) = self.points.get(row as usize) else {
            return false;
        };
        let r = Row {
            point,
            unit: units.and_then(|u| u.get(row)),
            time: self.time(row),
        };
        filter.matches_masked(r, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::filter::BBox;
    use crate::query::planner::{search_geo_ranked, search_segment, GeoRank, SearchRequest};

    #[test]
    fn an_index_without_points_answers_unfiltered_and_refuses_what_needs_them() {
        let vectors: Vec<f16> = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8]
            .iter()
            .map(|&x| f16::from_f32(x))
            .collect();
        let idx = SegmentIndex::without_points(&vectors, 2, None)
            .unwrap()
            .with_source("seg-1");
        let req = SearchRequest::new(vec![1.0, 0.1], 2);
        let (hits, _) = search_segment(&idx, &req).unwrap();
        assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), [0, 2]);
        let bbox = BBox::new(-1.0, -1.0, 1.0, 1.0).unwrap();
        let filtered = req.clone().with_filter(Filter::new().bbox(bbox));
        let e = search_segment(&idx, &filtered).unwrap_err().to_string();
        assert!(e.contains("seg-1: a filter needs the rows' points"), "{e}");
        let rank = GeoRank::new(Point::new(0.0, 0.0).unwrap(), 0.5, 10.0).unwrap();
        let e = search_geo_ranked(&idx, &req, &rank)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a geographic ranking needs the rows' points"),
            "{e}"
        );
    }
}
