//! The user-facing search API: top-k over every segment of a collection, with filters,
//! tombstones and replaced ids excluded, merged into one ranked list.
//!
//! ```
//! use sat2cap::geo::Point;
//! use sat2cap::{default_db_options, Db, NewItem};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut db = Db::create(dir.path(), default_db_options()).unwrap();
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
//! graph layout) is computed once per segment file, on the first query that touches it, and
//! kept in the segment's [`DerivedSlot`](crate::storage::DerivedSlot): segments are shared
//! between snapshots, so later snapshots reuse it too.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use crate::geo::Point;
use crate::index::flat::Hit;
use crate::index::hnsw::{
    CalibratedEf, GraphLayout, GraphView, HnswParams, HnswSectionBuilder, CALIBRATION_KIND,
    SECTION_KIND,
};
use crate::index::quant::{QuantLayout, QuantSectionBuilder, QUANT_KIND};
use crate::index::spatial::SpatialIndex;
use crate::query::filter::{BBox, Filter, Polygon, Radius, TimeRange};
use crate::query::planner::{
    normalise_query, search_geo_ranked, search_segment, GeoRank, Plan, PlannerParams,
    RoutingSample, SearchRequest, SegmentIndex, NO_TIME,
};
use crate::query::QueryError;
use crate::storage::{CollectionView, DbOptions, Segment, SegmentView};

/// Default number of results.
pub const DEFAULT_K: usize = 10;

/// Default graph beam width of a search (before the planner widens it for filters) in
/// segments whose graph has no calibration section; a calibrated segment uses its own
/// calibrated `ef` instead (see [`crate::index::hnsw::calibrate`]). `.ef(n)` and
/// `.planner(..)` override both.
///
/// Chosen on geonames-minilm (144,563 x 384, m = 16, ef_construction = 200): see
/// docs/BENCHMARKS.md, "Search (through the database)".
pub const DEFAULT_EF_SEARCH: usize = 512;

/// HNSW build parameters used by [`default_db_options`].
pub const DEFAULT_HNSW: HnswParams = HnswParams {
    m: 16,
    ef_construction: 200,
    ef_search: DEFAULT_EF_SEARCH,
};

/// Database options with the default indexes: an HNSW graph in every segment of at least
/// [`DEFAULT_MIN_GRAPH_ROWS`] rows (smaller segments are scanned exactly), and the int8 copy
/// of the vectors ([`QuantSectionBuilder`]) that exact scans read instead of the f16 vectors
/// (same answers, about half the bytes).
pub fn default_db_options() -> DbOptions {
    DbOptions {
        section_builders: vec![
            Arc::new(HnswSectionBuilder {
                params: DEFAULT_HNSW,
                min_rows: DEFAULT_MIN_GRAPH_ROWS,
                calibration: None,
            }),
            Arc::new(QuantSectionBuilder),
        ],
        ..Default::default()
    }
}

/// Segments below this many rows get no graph under [`default_db_options`].
pub const DEFAULT_MIN_GRAPH_ROWS: usize = 1_000;

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

/// A search being set up; see [`CollectionView::search`].
#[derive(Debug, Clone)]
pub struct SearchBuilder<'c> {
    coll: &'c CollectionView,
    query: Vec<f32>,
    k: usize,
    filter: Filter,
    exact: bool,
    ef: Option<usize>,
    geo: Option<GeoRank>,
    params: PlannerParams,
    /// Whether `.planner(..)` set the knobs (then its `ef_search` beats calibration).
    planner_set: bool,
    error: Option<QueryError>,
}

impl CollectionView {
    /// Starts a top-k search for `query` (`dim` finite values, not all zero; normalised).
    /// Defaults: `k` = [`DEFAULT_K`], no filter, approximate (graph where a segment has one).
    pub fn search(&self, query: &[f32]) -> SearchBuilder<'_> {
        SearchBuilder {
            coll: self,
            query: query.to_vec(),
            k: DEFAULT_K,
            filter: Filter::new(),
            exact: false,
            ef: None,
            geo: None,
            params: PlannerParams {
                ef_search: DEFAULT_EF_SEARCH,
                ..PlannerParams::default()
            },
            planner_set: false,
            error: None,
        }
    }
}

impl CollectionView {
    /// Computes now what the first query would compute lazily for each segment (validated
    /// points, time column, R-tree, parsed graph layout), so that query timings and latency
    /// start warm. Already-prepared segments cost nothing; a corrupt segment is an error.
    pub fn prepare(&self) -> Result<(), QueryError> {
        for s in self.segments() {
            derived_of(s)?;
        }
        Ok(())
    }
}

impl<'c> SearchBuilder<'c> {
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
        self.keep(b, |s, b| s.filter.bbox = Some(b))
    }

    /// Only items within `radius_km` (great-circle) of `(lat, lon)`.
    pub fn within_radius(self, lat: f64, lon: f64, radius_km: f64) -> Self {
        let r = Radius::new(lat, lon, radius_km);
        self.keep(r, |s, r| s.filter.radius = Some(r))
    }

    /// Only items inside the polygon, a ring of `(lon, lat)` vertices.
    pub fn within_polygon(self, ring: &[(f64, f64)]) -> Self {
        let p = Polygon::new(ring);
        self.keep(p, |s, p| s.filter.polygon = Some(p))
    }

    /// Only items with a time in `[t0, t1]` (unix seconds, inclusive).
    pub fn between(self, t0: i64, t1: i64) -> Self {
        let t = TimeRange::new(t0, t1);
        self.keep(t, |s, t| s.filter.time = Some(t))
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

    /// Graph beam width (`1..=65536`; default [`DEFAULT_EF_SEARCH`], raised to `k`).
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Planner knobs (flat thresholds, widening); `ef_search` here is the default beam.
    pub fn planner(mut self, params: PlannerParams) -> Self {
        self.params = params;
        self.planner_set = true;
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
        if let Some(ef) = self.ef {
            if !(1..=crate::index::hnsw::MAX_EF).contains(&ef) {
                return Err(QueryError::Ef(ef));
            }
        }
        let req = SearchRequest {
            query: self.query,
            k: self.k,
            filter: self.filter,
            exact: self.exact,
            ef: self.ef,
        };
        // (score, id, segment, row) of every per-segment hit.
        let mut all: Vec<(f32, u64, usize, u32)> = Vec::new();
        let mut explain = Vec::new();
        let mut derived = Vec::with_capacity(self.coll.segments().len());
        for (si, sv) in self.coll.segments().iter().enumerate() {
            let d = derived_of(sv)?;
            derived.push(d.clone());
            if sv.live_len() == 0 {
                continue;
            }
            let mut params = self.params;
            if let (Some(ef), false) = (d.calibrated_ef, self.planner_set) {
                params.ef_search = ef;
            }
            let (hits, plan) = search_one(sv, &d, &req, self.geo.as_ref(), params)?;
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
        let mut hits = Vec::with_capacity(all.len());
        for (score, id, si, row) in all {
            let sv = &self.coll.segments()[si];
            let d = &derived[si];
            let r = row as usize;
            let payload = sv
                .payload(r)
                .map_err(|e| QueryError::Corrupt(e.to_string()))?
                .map(str::to_string);
            hits.push(SearchHit {
                id,
                score,
                point: d.points[r],
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
    let graph = match (&d.graph, sv.section(SECTION_KIND)) {
        (Some(layout), Some(bytes)) => Some(layout.view(bytes).ok_or_else(|| {
            QueryError::Corrupt(format!("{}: graph section changed size", sv.file()))
        })?),
        _ => None,
    };
    let live = |r: u32| !sv.is_deleted(r as usize);
    let mut idx = SegmentIndex::new(sv.vectors(), sv.dim(), &d.points, d.times.as_deref(), graph)?
        .with_rtree(&d.rtree)
        .with_routing_cache(&d.routing)
        .with_params(params);
    if sv.live_len() < sv.len() {
        idx = idx.with_live(&live);
    }
    let quant = match (&d.quant, sv.section(QUANT_KIND)) {
        (Some(layout), Some(bytes)) => Some(layout.view(bytes).ok_or_else(|| {
            QueryError::Corrupt(format!("{}: int8 section changed size", sv.file()))
        })?),
        _ => None,
    };
    if let Some(q) = quant {
        idx = idx.with_quantized(q);
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

/// What a query needs from a segment beyond its raw columns, computed once per segment.
struct Derived {
    points: Vec<Point>,
    times: Option<Vec<i64>>,
    rtree: SpatialIndex,
    /// The routing sample of unfiltered walks, built by the first one.
    routing: OnceLock<RoutingSample>,
    graph: Option<GraphLayout>,
    /// The int8 copy of the vectors, when the segment has one (validated).
    quant: Option<QuantLayout>,
    /// The calibrated beam of the graph, when the segment has a calibration section.
    calibrated_ef: Option<usize>,
}

fn derived_of(seg: &Segment) -> Result<Arc<Derived>, QueryError> {
    let any: Arc<dyn Any + Send + Sync> = seg
        .derived()
        .get_or_init(|| {
            let d: Result<Arc<Derived>, QueryError> = compute_derived(seg).map(Arc::new);
            Arc::new(d) as Arc<dyn Any + Send + Sync>
        })
        .clone();
    match any.downcast_ref::<Result<Arc<Derived>, QueryError>>() {
        Some(Ok(d)) => Ok(d.clone()),
        Some(Err(e)) => Err(e.clone()),
        None => Err(QueryError::Corrupt(format!(
            "{}: derived-data slot holds another type",
            seg.file()
        ))),
    }
}

fn compute_derived(seg: &Segment) -> Result<Derived, QueryError> {
    let n = seg.len();
    let n32 = u32::try_from(n)
        .map_err(|_| QueryError::Segment(format!("{}: {n} rows exceed u32", seg.file())))?;
    let mut points = Vec::with_capacity(n);
    for row in 0..n {
        points.push(
            seg.point(row)
                .map_err(|e| QueryError::Corrupt(e.to_string()))?,
        );
    }
    let times = seg
        .has_times()
        .then(|| (0..n).map(|r| seg.time(r).unwrap_or(NO_TIME)).collect());
    let graph = match seg.section(SECTION_KIND) {
        None => None,
        Some(bytes) => {
            let view = GraphView::parse(bytes, n32)
                .map_err(|e| QueryError::Corrupt(format!("{}: graph section: {e}", seg.file())))?;
            if view.dim() as usize != seg.dim() {
                return Err(QueryError::Corrupt(format!(
                    "{}: graph has dim {}, segment {}",
                    seg.file(),
                    view.dim(),
                    seg.dim()
                )));
            }
            Some(view.layout(bytes))
        }
    };
    let calibrated_ef = match seg.section(CALIBRATION_KIND) {
        None => None,
        Some(bytes) => {
            let c = CalibratedEf::parse(bytes).map_err(|e| {
                QueryError::Corrupt(format!("{}: calibration section: {e}", seg.file()))
            })?;
            Some(c.ef as usize)
        }
    };
    let quant = match seg.section(QUANT_KIND) {
        None => None,
        Some(bytes) => Some(
            QuantLayout::parse(bytes, n, seg.dim())
                .map_err(|e| QueryError::Corrupt(format!("{}: int8 section: {e}", seg.file())))?,
        ),
    };
    let rtree = SpatialIndex::build(&points);
    Ok(Derived {
        points,
        times,
        rtree,
        quant,
        routing: OnceLock::new(),
        graph,
        calibrated_ef,
    })
}
