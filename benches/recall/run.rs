//! The timed passes: the planner, the forced graph walk, hnsw_rs, the exact scan.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use half::f16;
use sat2cap::geo::Point;
use sat2cap::index::hnsw::{
    build_hnsw, calibrate, export_graph, Calibration, GraphView, HnswParams,
};
use sat2cap::query::planner::{search_segment, Plan, PlannerParams, SearchRequest, SegmentIndex};

use crate::args::{Args, Clock};
use crate::data::{bucket_of, recall, Query, BUCKETS};

/// One timed pass of the planner over every query: recall@10, time and plan counters per
/// selectivity bucket.
fn planner_pass(
    seg: &SegmentIndex<'_>,
    queries: &[Query],
    reqs: &[SearchRequest],
    cpu: bool,
) -> Vec<Acc> {
    let mut acc = vec![Acc::default(); BUCKETS.len()];
    for (q, req) in queries.iter().zip(reqs) {
        let b = bucket_of(q.selectivity);
        let t = Clock::start(cpu);
        let Ok((hits, plan)) = search_segment(seg, req) else {
            continue;
        };
        let a = &mut acc[b];
        a.secs += t.secs();
        a.n += 1;
        let rows: Vec<u32> = hits.iter().map(|h| h.row).collect();
        a.recall += recall(&rows, &q.truth);
        if let Plan::Graph {
            ef,
            fell_back,
            scored,
            ..
        } = plan
        {
            a.graph_plans += 1;
            a.ef_sum += ef;
            a.fell_back += usize::from(fell_back);
            a.scored += scored;
        }
    }
    acc
}

#[derive(Default, Clone)]
struct Acc {
    n: usize,
    recall: f64,
    secs: f64,
    panics: usize,
    skipped: usize,
    graph_plans: usize,
    ef_sum: usize,
    fell_back: usize,
    scored: u64,
}

impl Acc {
    fn cell(&self) -> String {
        if self.n == 0 {
            return "-".into();
        }
        let p = if self.panics > 0 {
            format!(" ({} panics)", self.panics)
        } else {
            String::new()
        };
        let p = if self.skipped > 0 {
            format!("{p} ({} of {} queries run)", self.n, self.n + self.skipped)
        } else {
            p
        };
        format!(
            "{:.3} / {:.0}{p}",
            self.recall / self.n as f64,
            self.n as f64 / self.secs.max(1e-12)
        )
    }
}

pub(crate) fn run(
    name: &str,
    vectors: &[f16],
    dim: usize,
    points: &[Point],
    queries: &[Query],
    args: &Args,
) {
    let n = vectors.len() / dim;
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef,
    };
    let cache = args.graph_cache.as_ref().map(|d| {
        let tag: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        d.join(format!(
            "{tag}-{n}x{dim}-m{}-efc{}.graph",
            args.m, args.ef_construction
        ))
    });
    let cached = cache
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .filter(|b| GraphView::parse(b, n as u32).is_ok());
    let t = Instant::now();
    let (hnsw, bytes) = match cached {
        Some(b) => (None, b),
        None => {
            let hnsw = match build_hnsw(vectors, dim, &params) {
                Ok(h) => h,
                Err(e) => return eprintln!("{name}: build failed: {e}"),
            };
            let bytes = match export_graph(&hnsw, n as u32, dim as u32, &params) {
                Ok(b) => b,
                Err(e) => return eprintln!("{name}: export failed: {e}"),
            };
            if let Some(p) = &cache {
                if let Err(e) = std::fs::write(p, &bytes) {
                    eprintln!("{name}: cannot cache the graph: {e}");
                }
            }
            (Some(hnsw), bytes)
        }
    };
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let view = match GraphView::parse(&bytes, n as u32) {
        Ok(v) => v,
        Err(e) => return eprintln!("{name}: parse failed: {e}"),
    };
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    if args.build_only {
        println!(
            "{name}: n = {n}, dim = {dim}: build {build_s:.1} s ({} threads), parse {parse_ms:.1} ms",
            rayon::current_num_threads()
        );
        return;
    }
    let mut ef = args.ef;
    let mut cal_note = String::new();
    if args.ef_auto {
        let t = Instant::now();
        match calibrate(&view, vectors, dim, &Calibration::default()) {
            Some(c) => {
                ef = c.ef as usize;
                cal_note = format!(
                    "calibrated ef {} (self-query recall@{} {:.3} >= target {:.2}? sample {}, {:.1} s)",
                    c.ef,
                    c.k,
                    c.recall_ppm as f64 / 1e6,
                    c.target_ppm as f64 / 1e6,
                    c.sample,
                    t.elapsed().as_secs_f64()
                );
            }
            None => cal_note = "calibration skipped (graph too small)".into(),
        }
    }
    let pp = PlannerParams {
        ef_search: ef,
        max_ef_widening: args.max_ef_widening,
        flat_max_rows: args.flat_max_rows,
        flat_max_fraction: args.flat_max_fraction,
        walk_budget: args.walk_budget,
        far_gap: args.far_gap,
        routing_stride: args.routing_stride,
        ..PlannerParams::default()
    };
    let seg = match SegmentIndex::new(vectors, dim, points, None, Some(view.clone())) {
        Ok(s) => s.with_params(pp),
        Err(e) => return eprintln!("{name}: {e}"),
    };
    let t = Instant::now();
    let _ = seg.rtree();
    let rtree_ms = t.elapsed().as_secs_f64() * 1e3;
    let forced = (!args.skip_forced)
        .then(|| SegmentIndex::new(vectors, dim, points, None, Some(view.clone())))
        .and_then(Result::ok)
        .map(|s| {
            s.with_params(PlannerParams {
                flat_max_rows: 0,
                flat_max_fraction: 0.0,
                walk_budget: f64::INFINITY,
                far_gap: f32::INFINITY,
                ..pp
            })
        });
    let _ = forced.as_ref().map(|s| s.rtree());
    println!(
        "\n## {name}: n = {n}, dim = {dim}, m = {}, ef_construction = {}, ef = {}",
        args.m, args.ef_construction, args.ef
    );
    println!(
        "build {build_s:.1} s (hnsw_rs parallel_insert, {} threads; ~0 when cached), graph section {:.1} MiB, parse+validate {parse_ms:.1} ms, R-tree {rtree_ms:.1} ms\n",
        rayon::current_num_threads(),
        bytes.len() as f64 / (1 << 20) as f64
    );
    if !cal_note.is_empty() {
        println!("{cal_note}\n");
    }
    println!(
        "planner: flat if <= max({}, {} * n) rows, ef widening cap {}x",
        pp.flat_max_rows, pp.flat_max_fraction, pp.max_ef_widening
    );
    // Warm-up: fault in the vectors, graph and scratch before timing anything.
    for q in queries.iter().take(50) {
        let req = SearchRequest::new(q.vector.clone(), 10).with_filter(q.filter.clone());
        let _ = search_segment(&seg, &req);
        let _ = search_segment(&seg, &req.clone().exact(true));
    }
    let cpu = args.clock == "cpu";
    let mut graph_only = vec![Acc::default(); BUCKETS.len()];
    let mut theirs = vec![Acc::default(); BUCKETS.len()];
    let mut exact = vec![Acc::default(); BUCKETS.len()];
    // One pass per method over all queries (so no method runs on caches warmed by another
    // method's visit of the same query).
    let reqs: Vec<SearchRequest> = queries
        .iter()
        .map(|q| SearchRequest::new(q.vector.clone(), 10).with_filter(q.filter.clone()))
        .collect();
    let rows_of =
        |hits: &[sat2cap::index::flat::Hit]| -> Vec<u32> { hits.iter().map(|h| h.row).collect() };
    eprintln!("{name}: (a) planner pass");
    let ours = planner_pass(&seg, queries, &reqs, cpu);
    eprintln!("{name}: (a') graph-walk-only pass");
    let dump = args.dump_walks;
    let mut ef_used = vec![ef; queries.len()];
    if let Some(f) = &forced {
        for (i, (q, req)) in queries.iter().zip(&reqs).enumerate() {
            let b = bucket_of(q.selectivity);
            let t = Clock::start(cpu);
            let Ok((hits, plan)) = search_segment(f, req) else {
                continue;
            };
            let g = &mut graph_only[b];
            g.secs += t.secs();
            g.n += 1;
            g.recall += recall(&rows_of(&hits), &q.truth);
            if let Plan::Graph {
                ef,
                scored,
                matched,
                ..
            } = plan
            {
                g.ef_sum += ef;
                g.graph_plans += 1;
                g.scored += scored;
                ef_used[i] = ef;
                if dump && q.selectivity < 1.0 {
                    let unf = search_segment(f, &SearchRequest::new(q.vector.clone(), 1))
                        .map(|(h, _)| h.first().map_or(f32::NAN, |h| h.score))
                        .unwrap_or(f32::NAN);
                    let tscore = |r: u32| {
                        sat2cap::index::flat::dot_f16_f32(
                            sat2cap::index::flat::row_vector(vectors, dim, r),
                            &req.query,
                        )
                    };
                    eprintln!(
                        "DUMP sel {:.4} recall {:.2} scored {scored} matched {matched} local {:.3} unfiltered_top1 {unf:.4} walk_top1 {:.4} truth_top1 {:.4} truth_10th {:.4}",
                        q.selectivity,
                        recall(&rows_of(&hits), &q.truth),
                        matched as f64 / scored.max(1) as f64,
                        hits.first().map_or(f32::NAN, |h| h.score),
                        q.truth.first().map_or(f32::NAN, |&r| tscore(r)),
                        q.truth.last().map_or(f32::NAN, |&r| tscore(r)),
                    );
                }
            }
        }
    }
    eprintln!("{name}: (b) hnsw_rs pass");
    for (i, q) in queries.iter().enumerate() {
        let b = bucket_of(q.selectivity);
        // hnsw_rs search_filter on the same graph, with the ef our graph walk used.
        let Some(hnsw) = &hnsw else { break };
        if theirs[b].secs > args.their_budget_s {
            theirs[b].skipped += 1;
            continue;
        }
        let norm = q
            .vector
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(1e-30);
        let qh: Vec<f16> = q.vector.iter().map(|&x| f16::from_f32(x / norm)).collect();
        let filter = &q.filter;
        let pred = |id: &usize| points.get(*id).is_some_and(|&p| filter.matches(p, None));
        let t = Clock::start(cpu);
        let res = catch_unwind(AssertUnwindSafe(|| {
            if filter.is_empty() {
                hnsw.search_filter(&qh, 10, ef_used[i], None)
            } else {
                hnsw.search_filter(&qh, 10, ef_used[i], Some(&pred))
            }
        }));
        let th = &mut theirs[b];
        th.secs += t.secs();
        th.n += 1;
        match res {
            Ok(nb) => {
                let rows: Vec<u32> = nb.iter().map(|x| x.d_id as u32).collect();
                th.recall += recall(&rows, &q.truth);
            }
            Err(_) => th.panics += 1,
        }
    }
    eprintln!("{name}: (c) exact pass");
    for (q, req) in queries.iter().zip(&reqs) {
        let b = bucket_of(q.selectivity);
        let req = req.clone().exact(true);
        let t = Clock::start(cpu);
        let Ok((hits, _)) = search_segment(&seg, &req) else {
            continue;
        };
        let e = &mut exact[b];
        e.secs += t.secs();
        e.n += 1;
        e.recall += recall(&rows_of(&hits), &q.truth);
    }
    println!(
        "queries/s by {} time, single thread",
        if cpu {
            "this thread's CPU"
        } else {
            "wall-clock"
        }
    );
    println!("| selectivity | queries | ours (planner): recall@10 / QPS | plan graph% / walk fell back to exact% (mean ef, mean rows scored by walks) | ours graph walk only: recall / QPS (mean rows scored) | hnsw_rs search_filter: recall / QPS | exact scan: recall / QPS |");
    println!("|---|---|---|---|---|---|---|");
    for (b, &s) in BUCKETS.iter().enumerate() {
        let a = &ours[b];
        if a.n == 0 {
            continue;
        }
        let mean_ef = |x: &Acc| x.ef_sum.checked_div(x.graph_plans).unwrap_or(0);
        let mean_scored = |x: &Acc| x.scored.checked_div(x.graph_plans as u64).unwrap_or(0);
        println!(
            "| {:.2}% | {} | {} | {:.0}% / {:.0}% ({}, {}) | {} (ef {}, {}) | {} | {} |",
            s * 100.0,
            a.n,
            a.cell(),
            100.0 * a.graph_plans as f64 / a.n as f64,
            100.0 * a.fell_back as f64 / a.n as f64,
            mean_ef(a),
            mean_scored(a),
            graph_only[b].cell(),
            mean_ef(&graph_only[b]),
            mean_scored(&graph_only[b]),
            theirs[b].cell(),
            exact[b].cell()
        );
    }
    let variants: Vec<(String, PlannerParams)> = args
        .also_walk_budgets
        .iter()
        .map(|&wb| {
            (
                format!("walk budget {wb}"),
                PlannerParams {
                    walk_budget: wb,
                    ..pp
                },
            )
        })
        .chain(
            args.also_far_gaps
                .iter()
                .map(|&g| (format!("far gap {g}"), PlannerParams { far_gap: g, ..pp })),
        )
        .chain(
            args.also_efs
                .iter()
                .map(|&e| (format!("ef {e}"), PlannerParams { ef_search: e, ..pp })),
        )
        .chain(args.also_routing_strides.iter().map(|&r| {
            (
                format!("routing stride {r}"),
                PlannerParams {
                    routing_stride: r,
                    ..pp
                },
            )
        }))
        .collect();
    if !variants.is_empty() {
        let mut rows: Vec<String> = BUCKETS
            .iter()
            .map(|s| format!("| {:.2}% |", s * 100.0))
            .collect();
        let mut head = String::from("| selectivity |");
        for (label, params) in &variants {
            head.push_str(&format!(" {label}: recall / QPS (fell back %) |"));
            let Ok(seg_b) = SegmentIndex::new(vectors, dim, points, None, Some(view.clone()))
            else {
                break;
            };
            let seg_b = seg_b.with_params(*params).with_rtree(seg.rtree());
            let acc = planner_pass(&seg_b, queries, &reqs, cpu);
            for (b, a) in acc.iter().enumerate() {
                let fb = 100.0 * a.fell_back as f64 / a.n.max(1) as f64;
                rows[b].push_str(&format!(" {} ({fb:.0}%) |", a.cell()));
            }
        }
        println!(
            "
{head}
|{}",
            "---|".repeat(variants.len() + 1)
        );
        for (b, r) in rows.iter().enumerate() {
            if ours[b].n > 0 {
                println!("{r}");
            }
        }
    }
    if args.sweep {
        if let Ok(view) = GraphView::parse(&bytes, n as u32) {
            sweep(vectors, dim, points, &view, queries, args.clock == "cpu");
        }
    }
}

/// Forced graph walk over a grid of (ef, widening cap): recall@10 / QPS per bucket.
fn sweep(
    vectors: &[f16],
    dim: usize,
    points: &[Point],
    view: &GraphView<'_>,
    queries: &[Query],
    cpu: bool,
) {
    println!(
        "\nforced graph walk sweep, buckets >= 10% only: recall@10 / QPS (ef, widening cap)\n"
    );
    let grid = [(64usize, 1usize), (128, 1), (256, 1), (512, 1), (128, 8)];
    let mut header = String::from("| selectivity |");
    for (ef, w) in grid {
        header += &format!(" ef {ef} w {w} |");
    }
    println!("{header}");
    println!("|---{}", "|---".repeat(grid.len()) + "|");
    let mut cells = vec![vec![Acc::default(); grid.len()]; BUCKETS.len()];
    for (g, &(ef, w)) in grid.iter().enumerate() {
        let Ok(seg) = SegmentIndex::new(vectors, dim, points, None, Some(view.clone())) else {
            return;
        };
        let seg = seg.with_params(PlannerParams {
            flat_max_rows: 0,
            flat_max_fraction: 0.0,
            ef_search: ef,
            max_ef_widening: w,
            ..PlannerParams::default()
        });
        let _ = seg.rtree();
        for q in queries {
            let b = bucket_of(q.selectivity);
            if BUCKETS[b] < 0.05 {
                continue;
            }
            let req = SearchRequest::new(q.vector.clone(), 10).with_filter(q.filter.clone());
            let t = Clock::start(cpu);
            if let Ok((hits, _)) = search_segment(&seg, &req) {
                let c = &mut cells[b][g];
                c.secs += t.secs();
                c.n += 1;
                let rows: Vec<u32> = hits.iter().map(|h| h.row).collect();
                c.recall += recall(&rows, &q.truth);
            }
        }
    }
    for (b, &s) in BUCKETS.iter().enumerate() {
        if cells[b][0].n == 0 {
            continue;
        }
        let mut line = format!("| {:.2}% |", s * 100.0);
        for c in &cells[b] {
            line += &format!(" {} |", c.cell());
        }
        println!("{line}");
    }
}
