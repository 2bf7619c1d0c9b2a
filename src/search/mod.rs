//! The user-facing search API: top-k over every segment of a collection, with filters,
//! tombstones and replaced ids excluded, merged into one ranked list.
//!
//! ```
//! use sat2cap::{Db, NewItem, OpenOptions, Point};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut db = Db::open(dir.path(), OpenOptions::create_new()).unwrap();
//! db.create_collection("tiles", 2).unwrap();
//! for (id, v, lat) in [(1u64, [1.0f32, 0.0], 10.0), (2, [0.0, 1.0], 20.0), (3, [0.7, 0.7], 30.0)] {
//!     let point = Point::new(lat, 0.0).unwrap();
//!     db.add("tiles", NewItem { id, vector: &v, point, time: None, payload: None }).unwrap();
//! }
//! db.commit().unwrap();
//! let snap = db.snapshot();
//! let tiles = snap.collection("tiles").unwrap();
//! let res = tiles.search(&[1.0, 0.1]).k(2).within_bbox(-1.0, 15.0, 1.0, 35.0).run().unwrap();
//! assert_eq!(res.ids(), vec![3, 2]);
//! ```
//!
//! Per-segment derived data (validated points, the time column, the R-tree, the parsed
//! graph layout) is computed once per segment file, on the first query that touches it
//! ([`prepared`]), and kept with the segment in every snapshot that shares it.

mod prepared;

#[cfg(feature = "testing")]
pub use prepared::verify_sections;
#[cfg(not(feature = "testing"))]
pub(crate) use prepared::verify_sections;
pub(crate) use prepared::Derived;
pub use prepared::Prepared;

use crate::db::Collection;
use crate::geo::Point;
use crate::index::flat::Hit;
use crate::index::hnsw::{GraphView, HINTS_KIND, SECTION_KIND};
use crate::query::filter::{BBox, Filter, Polygon, Predicate, Radius, TimeRange};
use crate::query::planner::{
    check_walk_knobs, normalise_query, search_geo_ranked, search_segment, GeoRank, Plan,
    PlannerParams, SearchRequest, SegmentIndex,
};
use crate::query::QueryError;
use crate::storage::SegmentView;

/// Default number of results.
pub const DEFAULT_K: usize = 10;

/// Beam width of a walk that has neither an `ef` of its own ([`SearchBuilder::ef`]) nor a
/// hop slack to go by (a graph without edges), before the planner widens it for filters.
///
/// By default a walk is not a beam of fixed width: it keeps the best `k` rows and expands
/// every candidate within the graph's hop slack of the `k`-th (how far one hop along the
/// graph moves a score, for queries like the data: a quantile of `|q . (a - b)|` over
/// sampled graph edges `(a, b)` and rows `q`, worked out once per segment), so that the
/// effort follows the data and the query.
pub const DEFAULT_EF_SEARCH: usize = 512;

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The item's id.
    pub id: u64,
    /// Cosine similarity (or the blended score of a geo-ranked search).
    pub score: f32,
    /// Location.
    pub point: Point,
    /// Unix seconds, UTC.
    pub time: Option<i64>,
    /// Payload string.
    pub payload: Option<String>,
}

/// What one segment did for a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    /// The segment file (as the directory describes it).
    pub file: String,
    /// Rows in the segment.
    pub rows: usize,
    /// Live rows (not deleted, not replaced).
    pub live: usize,
    /// Whether the segment has a graph section.
    pub has_graph: bool,
    /// The path the planner took.
    pub plan: Plan,
}

/// Results of [`SearchBuilder::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// Best first; ties broken by lower id.
    pub hits: Vec<SearchHit>,
    /// One entry per searched segment (segments without live rows are skipped).
    pub explain: Vec<SegmentPlan>,
}

impl SearchResults {
    /// The ids of the hits, best first.
    pub fn ids(&self) -> Vec<u64> {
        self.hits.iter().map(|h| h.id).collect()
    }
}

/// A search being set up; see [`Collection::search`].
#[derive(Debug, Clone)]
pub struct SearchBuilder<'c> {
    coll: Collection<'c>,
    query: Vec<f32>,
    k: usize,
    filter: Filter,
    exact: bool,
    ef: Option<usize>,
    effort: Option<f32>,
    geo: Option<GeoRank>,
    params: PlannerParams,
    error: Option<QueryError>,
}

impl<'c> SearchBuilder<'c> {
    /// A search of `coll` for `query`. Defaults: `k` = [`DEFAULT_K`], no filter,
    /// approximate (a graph walk where a segment has a graph and the planner chooses it).
    pub(crate) fn new(coll: Collection<'c>, query: &[f32]) -> SearchBuilder<'c> {
        SearchBuilder {
            coll,
            query: query.to_vec(),
            k: DEFAULT_K,
            filter: Filter::new(),
            exact: false,
            ef: None,
            effort: None,
            geo: None,
            params: PlannerParams {
                ef_search: DEFAULT_EF_SEARCH,
                hop_slack: true,
                ..PlannerParams::default()
            },
            error: None,
        }
    }

    fn keep<T>(mut self, r: Result<T, QueryError>, set: impl FnOnce(&mut Self, T)) -> Self {
        match r {
            Ok(v) => set(&mut self, v),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Number of results wanted (`>= 1`; more than the collection holds returns them all).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Only items inside the box (degrees; `west > east` crosses the antimeridian).
    pub fn within_bbox(self, west: f64, south: f64, east: f64, north: f64) -> Self {
        let b = BBox::new(west, south, east, north);
        self.keep(b, |s, b| s.add(b))
    }

    /// Only items within `radius_km` (great-circle) of `(lat, lon)`.
    pub fn within_radius(self, lat: f64, lon: f64, radius_km: f64) -> Self {
        let r = Radius::new(lat, lon, radius_km);
        self.keep(r, |s, r| s.add(r))
    }

    /// Only items inside the polygon, a ring of `(lon, lat)` vertices.
    pub fn within_polygon(self, ring: &[(f64, f64)]) -> Self {
        let p = Polygon::new(ring);
        self.keep(p, |s, p| s.add(p))
    }

    /// Only items with a time in `[t0, t1]` (unix seconds, inclusive).
    pub fn between(self, t0: i64, t1: i64) -> Self {
        let t = TimeRange::new(t0, t1);
        self.keep(t, |s, t| s.add(t))
    }

    /// Only items passing `p` too (AND with the conditions set so far).
    pub fn and(mut self, p: impl Into<Predicate>) -> Self {
        self.add(p);
        self
    }

    fn add(&mut self, p: impl Into<Predicate>) {
        self.filter = std::mem::take(&mut self.filter).and(p);
    }

    /// Replaces the whole filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Forces the exact scan (recall 1.0) in every segment.
    pub fn exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Walks the graph as a beam of this width (`1..=65536`, raised to `k`) instead of as
    /// far as the data's hop slack says (the default; see [`DEFAULT_EF_SEARCH`]): a
    /// smaller `ef` is faster and may miss more, a larger one slower.
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Walks the graph `effort` times as far as the data's hop slack says (`(0, 64]`; the
    /// default is 1): each segment's walk expands every candidate within `effort` times its
    /// hop slack of the `k`-th best row. Below 1 is faster and may miss more, above 1
    /// slower; the scale is the data's own, so one effort means the same on every
    /// segment. Not with [`ef`](Self::ef) (a beam); a segment whose graph has no slack (no
    /// edges) walks its default beam.
    pub fn effort(mut self, effort: f32) -> Self {
        self.effort = Some(effort);
        self
    }

    /// Planner knobs (flat thresholds, widening); `ef_search` here is the default beam.
    #[cfg(feature = "testing")]
    pub fn planner(mut self, params: PlannerParams) -> Self {
        self.params = params;
        self
    }

    /// Ranks by `alpha * cosine + (1 - alpha) * exp(-d_km / scale_km)` around `(lat, lon)`
    /// (an exact scan over the rows that pass the filter).
    pub fn geo_ranked(self, lat: f64, lon: f64, alpha: f64, scale_km: f64) -> Self {
        let r = Point::new(lat, lon)
            .map_err(|_| {
                if lat.is_finite() && (-90.0..=90.0).contains(&lat) {
                    QueryError::Longitude(lon)
                } else {
                    QueryError::Latitude(lat)
                }
            })
            .and_then(|c| GeoRank::new(c, alpha, scale_km));
        self.keep(r, |s, g| s.geo = Some(g))
    }

    /// Runs the search over every segment and merges the results.
    pub fn run(self) -> Result<SearchResults, QueryError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        normalise_query(&self.query, self.coll.dim())?;
        if self.k == 0 {
            return Err(QueryError::ZeroK);
        }
        check_walk_knobs(self.ef, self.effort)?;
        let req = SearchRequest {
            query: self.query,
            k: self.k,
            filter: self.filter,
            exact: self.exact,
            ef: self.ef,
            effort: self.effort,
        };
        // (score, id, segment, row) of every per-segment hit.
        let mut all: Vec<(f32, u64, usize, u32)> = Vec::new();
        let mut explain = Vec::new();
        let segments = self.coll.view().segments();
        if self.coll.segment_parts().count() != segments.len() {
            return Err(QueryError::Segment(format!(
                "collection '{}': the snapshot's prepared data does not match its segments",
                self.coll.name()
            )));
        }
        let mut derived = Vec::with_capacity(segments.len());
        for (si, (sv, prepared)) in self.coll.segment_parts().enumerate() {
            let d = prepared.get(sv)?;
            derived.push(d.clone());
            if sv.live_len() == 0 {
                continue;
            }
            let (hits, plan) = search_one(sv, &d, &req, self.geo.as_ref(), self.params)?;
            for Hit { row, score } in hits {
                if let Some(id) = sv.id(row as usize) {
                    all.push((score, id, si, row));
                }
            }
            explain.push(SegmentPlan {
                file: sv.file().to_string(),
                rows: sv.len(),
                live: sv.live_len(),
                has_graph: d.graph.is_some(),
                plan,
            });
        }
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(req.k);
        // Rows are unit length, so no cosine exceeds 1 (beyond fp16 rounding): a higher or
        // non-finite score is a damaged row, reported, never returned.
        let limit = 1.0 + crate::storage::UNIT_TOLERANCE as f32;
        if let Some(&(score, id, si, _)) = all.iter().find(|h| h.0.is_nan() || h.0 > limit) {
            return Err(QueryError::Corrupt(format!(
                "{}: item {id} scores {score}, above the cosine's maximum 1: its vector is \
                 damaged (run `sat2cap verify`)",
                segments[si].file()
            )));
        }
        let mut hits = Vec::with_capacity(all.len());
        for (score, id, si, row) in all {
            let sv = &segments[si];
            let r = row as usize;
            let point = derived[si].point(sv, r)?;
            let payload = sv
                .payload(r)
                .map_err(|e| QueryError::Corrupt(e.to_string()))?
                .map(str::to_string);
            hits.push(SearchHit {
                id,
                score,
                point,
                time: sv.time(r),
                payload,
            });
        }
        Ok(SearchResults { hits, explain })
    }
}

fn search_one(
    sv: &SegmentView,
    d: &Derived,
    req: &SearchRequest,
    geo: Option<&GeoRank>,
    params: PlannerParams,
) -> Result<(Vec<Hit>, Plan), QueryError> {
    // The graph is parsed by the first walk that needs it (see `Derived::graph_layout`):
    // level 0 alone, or with the upper levels for a walk without seeds.
    let view = |levels: bool| -> Result<GraphView<'_>, QueryError> {
        let layout = d
            .graph_layout(sv, levels)
            .ok_or_else(|| QueryError::Segment(format!("{}: no graph section", sv.file())))??;
        let bytes = sv.section(SECTION_KIND).unwrap_or(&[]);
        layout.view(bytes).ok_or_else(|| {
            QueryError::Corrupt(format!("{}: graph section changed size", sv.file()))
        })
    };
    let (graph, graph_levels) = (|| view(false), || view(true));
    let live = |r: u32| !sv.is_deleted(r as usize);
    // Only a filter or a geographic ranking reads the points (and the time span).
    let mut idx = if req.filter.is_empty() && geo.is_none() {
        SegmentIndex::without_points(sv.vectors(), sv.dim(), d.times(sv))?
    } else {
        let (points, rtree) = d.spatial(sv)?;
        let idx = SegmentIndex::new(sv.vectors(), sv.dim(), points, d.times(sv), None)?;
        match d.time_stats(sv) {
            Some(t) => idx.with_time_stats(t),
            None => idx,
        }
        .with_rtree(rtree)
    };
    idx = idx
        .with_routing_cache(&d.routing)
        .with_slack_cache(&d.slack)
        .with_params(params)
        .with_source(sv.file());
    if d.graph.is_some() {
        idx = idx
            .with_deferred_graph(&graph)
            .with_deferred_levels(&graph_levels);
        if let Some(hints) = sv.section(HINTS_KIND) {
            idx = idx.with_walk_hints(hints);
        }
    }
    if sv.live_len() < sv.len() {
        idx = idx.with_live(&live);
    }
    if let Some(q) = d.quant_view(sv)? {
        idx = idx
            .with_quantized(q)
            .with_int8_check_cache(&d.quant_factors);
    }
    if sv.id_order().is_some() {
        // Rows are not in id order: the exact paths hand over the rows tied at the k-th
        // score, and the merge below breaks the tie by id.
        idx = idx.with_ties_kept();
    }
    match geo {
        Some(g) => search_geo_ranked(&idx, req, g),
        None => search_segment(&idx, req),
    }
}
