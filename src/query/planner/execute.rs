//! The execute stage: the exact scans, the graph walks and their fallback, over the plan the
//! choose stage made.

use super::choose::Choice;
use super::enumerate::RowSet;
use super::segment::SegmentIndex;
use super::{
    check_walk_knobs, normalise_query, FlatReason, GeoRank, Plan, SearchRequest, FILTER_SEEDS,
    SMALL_PROBE,
};
use crate::index::flat::{dot_f16_f32, row_vector, top_k_bits_into, top_k_into, Hit};
use crate::index::hnsw::{search_bounded, Effort, GraphView, WalkOutcome};
use crate::index::quant::{top_k_bits_quantized, Int8Rows};
use crate::query::filter::{Cardinality, Filter};
use crate::query::QueryError;

/// Searches one segment: validates the request, estimates, plans, runs, and reports the plan.
pub fn search_segment(
    seg: &SegmentIndex<'_>,
    req: &SearchRequest,
) -> Result<(Vec<Hit>, Plan), QueryError> {
    let q = normalise_query(&req.query, seg.dim)?;
    if req.k == 0 {
        return Err(QueryError::ZeroK);
    }
    check_walk_knobs(req.ef, req.effort)?;
    if !req.filter.is_empty() {
        seg.need_points("a filter")?;
    }
    let n = seg.n as usize;
    let k = req.k.min(n);
    let filter = &req.filter;
    if n == 0 {
        let plan = Plan::Flat {
            candidates: 0,
            reason: FlatReason::Requested,
            estimate: Cardinality::exactly(0),
        };
        return Ok((Vec::new(), plan));
    }
    let estimate = seg.estimate(filter);
    let run = Run {
        seg,
        q: &q,
        k,
        estimate: estimate.rows,
    };
    let route = seg.route(&estimate);
    let choice = seg.choose(req, &estimate.rows, k);
    let graph = match choice {
        Choice::Flat(_) => None,
        _ => seg.graph()?,
    };
    let probe = match (choice, graph) {
        (Choice::Flat(reason), _) => {
            let mut set = RowSet::new(seg.n);
            seg.collect_all(filter, route, &mut set);
            return run.flat(&set, reason);
        }
        (Choice::Walk, Some(graph)) => {
            let effort = seg.effort(graph, req, k)?;
            return run.walk(graph, effort);
        }
        (Choice::Count { probe }, Some(_)) => probe,
        // Walking and counting need a graph; the choice made none without one.
        (_, None) => {
            let mut set = RowSet::new(seg.n);
            seg.collect_all(filter, route, &mut set);
            return run.flat(&set, FlatReason::NoGraph);
        }
    };
    // One enumeration (block rectangles, R-tree or a metadata scan, every condition tested
    // exactly), into a bitset plus a row list. A short probe first when the estimate leaves
    // room for a tiny set: it ends there, without the count.
    let mut set = RowSet::new(seg.n);
    let threshold = seg.thresholds(k).threshold;
    if probe && seg.collect(filter, SMALL_PROBE.min(threshold), route, &mut set) {
        return run.flat(&set, FlatReason::FewCandidates);
    }
    // Carries on from the probe (rows it found are skipped, not re-tested).
    seg.collect_all(filter, route, &mut set);
    if let Some(reason) = seg.after_count(&set, k) {
        return run.flat(&set, reason);
    }
    match graph {
        Some(graph) => run.filtered_walk(graph, req, &set),
        None => run.flat(&set, FlatReason::NoGraph),
    }
}

/// One query over one segment: the normalised query and `k`, and the estimate the plan
/// reports.
struct Run<'s, 'a> {
    seg: &'s SegmentIndex<'a>,
    q: &'s [f32],
    k: usize,
    estimate: Cardinality,
}

impl Run<'_, '_> {
    /// The exact scan over an enumerated set: a few rows are sorted and read one by one;
    /// otherwise the bitset drives the scan, block by block (see `top_k_bits_into`), on the
    /// int8 copy when the segment has one.
    fn flat(&self, set: &RowSet, reason: FlatReason) -> Result<(Vec<Hit>, Plan), QueryError> {
        let seg = self.seg;
        let (q, k) = (self.q, self.k);
        let tiny = set.is_tiny();
        let hits = match (tiny, if tiny { None } else { seg.scan_quant()? }) {
            (true, _) => {
                let rows = set.sorted_rows().into_iter();
                top_k_into(seg.vectors, seg.dim, q, rows, seg.collector(k))
            }
            (false, Some(quant)) => {
                let (v, dim, bits) = (seg.vectors, seg.dim, &set.bits);
                top_k_bits_quantized(v, dim, q, seg.n, bits, &quant, seg.collector(k))
                    .map_err(|e| seg.corrupt("int8 section", e))?
            }
            (false, None) => {
                top_k_bits_into(seg.vectors, seg.dim, q, seg.n, &set.bits, seg.collector(k))
            }
        };
        let plan = Plan::Flat {
            candidates: set.rows.len() as u64,
            reason,
            estimate: self.estimate,
        };
        Ok((hits, plan))
    }

    /// One walk of the graph from `seeds` on level 0 (without seeds it descends from the
    /// entry, through the upper levels: `graph` is then the graph with them), steered by
    /// `int8` (the segment's int8 copy, when it has one: the scorer that chose the seeds);
    /// the damage met in the graph's lists or the copy's factors, by the walk or by the
    /// choice of its seeds, is the error.
    fn walk_from<F: Fn(u32) -> bool>(
        &self,
        graph: &GraphView<'_>,
        effort: Effort,
        filter: Option<F>,
        seeds: &[u32],
        int8: Option<&Int8Rows<'_>>,
        max_scored: usize,
    ) -> Result<WalkOutcome, QueryError> {
        let seg = self.seg;
        let graph = match seeds.is_empty() {
            true => seg.graph_with_levels()?.unwrap_or(graph),
            false => graph,
        };
        let (v, dim, q) = (seg.vectors, seg.dim, self.q);
        let walk = search_bounded(
            graph, v, dim, q, self.k, effort, filter, seeds, max_scored, int8,
        );
        if let Some(e) = walk.damage {
            return Err(seg.corrupt("graph section", e));
        }
        if let Some(e) = int8.and_then(Int8Rows::damage) {
            return Err(seg.corrupt("int8 section", e));
        }
        Ok(walk)
    }

    /// The unfiltered walk, its beam seeded with the best rows of the routing sample.
    fn walk(&self, graph: &GraphView<'_>, effort: Effort) -> Result<(Vec<Hit>, Plan), QueryError> {
        let seg = self.seg;
        let int8 = seg.walk_rows(self.q);
        let seeds = seg.routing_seeds(self.q, int8.as_ref(), |_| true)?;
        let none = None::<fn(u32) -> bool>;
        let walk = self.walk_from(graph, effort, none, &seeds, int8.as_ref(), usize::MAX)?;
        // Every row is live and passes: a walk that returns fewer than `k` rows could not
        // reach them all (a graph damaged or degenerate), and the exact scan answers.
        let fell_back = walk.hits.len() < self.k;
        let hits = if fell_back {
            let all = Filter::new();
            let mut set = RowSet::new(seg.n);
            seg.collect_all(&all, seg.route(&seg.estimate(&all)), &mut set);
            self.flat(&set, FlatReason::FewCandidates)?.0
        } else {
            walk.hits
        };
        let (ef, slack) = effort_shown(effort, self.k);
        let plan = Plan::Graph {
            ef,
            slack,
            estimated_selectivity: 1.0,
            fell_back,
            scored: walk.scored,
            matched: walk.matched,
            estimate: self.estimate,
        };
        Ok((hits, plan))
    }

    /// The walk with the enumerated set as its filter (membership is one load and a shift),
    /// seeded with the routing pool's best passing rows and an even sample of the set,
    /// within a budget of scored rows; the exact scan
    /// over the set replaces its answer when it comes back short, runs past the budget or
    /// finds only far rows.
    fn filtered_walk(
        &self,
        graph: &GraphView<'_>,
        req: &SearchRequest,
        set: &RowSet,
    ) -> Result<(Vec<Hit>, Plan), QueryError> {
        let seg = self.seg;
        let k = self.k;
        let count = set.rows.len();
        let s = (count as f64 / f64::from(seg.n)).min(1.0);
        // A beam is widened for restrictive filters; a walk bounded by slack widens itself
        // (until it holds `k` matching rows it expands every candidate).
        let effort = match seg.effort(graph, req, k)? {
            Effort::Beam(ef) => Effort::Beam(seg.filtered_ef(ef, s)),
            slack => slack,
        };
        let bits = &set.bits;
        let member = |row: u32| {
            bits.get(row as usize / 64)
                .is_some_and(|w| w >> (row % 64) & 1 == 1)
        };
        // Entry points inside the matching region: the best matching rows of the routing
        // sample (where a wide filter passes some of its best rows), then an even sample of
        // the enumerated rows.
        let int8 = seg.walk_rows(self.q);
        let mut seeds = seg.routing_seeds(self.q, int8.as_ref(), member)?;
        let stride = (count / FILTER_SEEDS).max(1);
        seeds.extend(set.rows.iter().step_by(stride).take(FILTER_SEEDS));
        let budget =
            (count as f64 * seg.params.walk_budget.max(0.0)).min(usize::MAX as f64) as usize;
        let max_scored = budget.max(effort_shown(effort, k).0);
        let walk = self.walk_from(
            graph,
            effort,
            Some(member),
            &seeds,
            int8.as_ref(),
            max_scored,
        )?;
        let far = walk
            .hits
            .first()
            .is_some_and(|h| walk.best_score - h.score > seg.params.far_gap);
        let fell_back = !walk.complete || walk.hits.len() < k || far;
        let hits = if fell_back {
            // The walk came back short, ran past its budget or found only far rows: settle
            // it with the exact scan over the rows already enumerated.
            self.flat(set, FlatReason::FewCandidates)?.0
        } else {
            walk.hits
        };
        let (ef, slack) = effort_shown(effort, k);
        let plan = Plan::Graph {
            ef,
            slack,
            estimated_selectivity: s,
            fell_back,
            scored: walk.scored,
            matched: walk.matched,
            estimate: self.estimate,
        };
        Ok((hits, plan))
    }
}

/// The beam width and slack a plan reports for `effort`.
fn effort_shown(effort: Effort, k: usize) -> (usize, Option<f32>) {
    match effort {
        Effort::Beam(ef) => (ef, None),
        Effort::Slack(s) => (k, Some(s)),
    }
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
    seg.need_points("a geographic ranking")?;
    let estimate = seg.estimate(&req.filter);
    let rows = seg.candidates(&req.filter, seg.route(&estimate));
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
        estimate: estimate.rows,
    };
    Ok((top.into_sorted(), plan))
}
