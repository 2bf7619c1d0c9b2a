//! Recall and single-thread QPS by selectivity bucket: our planner + in-place graph search,
//! our graph walk alone, hnsw_rs `search_filter` on the same graph, and the exact scan.
//!
//! ```text
//! cargo run --release --no-default-features --bin bench_recall -- \
//!     --data /work/shared/data/geonames-minilm --synth-n 100000
//! ```

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use half::f16;
use sat2cap::geo::{haversine_km, Point};
use sat2cap::index::flat::top_k;
use sat2cap::index::hnsw::{
    build_hnsw, calibrate, export_graph, Calibration, GraphView, HnswParams,
};
use sat2cap::index::synth::{generate, generate_low_rank, query_near};
use sat2cap::query::filter::{BBox, Filter, Radius};
use sat2cap::query::planner::{search_segment, Plan, PlannerParams, SearchRequest, SegmentIndex};

#[derive(Parser, Debug)]
#[command(about = "Recall@10 and QPS by selectivity bucket")]
struct Args {
    /// geonames-minilm folder (skipped with a notice if absent).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Synthetic rows (0 skips the synthetic set).
    #[arg(long, default_value_t = 100_000)]
    synth_n: usize,
    /// Synthetic dimension.
    #[arg(long, default_value_t = 512)]
    synth_dim: usize,
    /// Synthetic generator: `low-rank` (`index::synth::generate_low_rank`, the realistic one)
    /// or `isotropic` (`index::synth::generate`, near-tied neighbours; see its docs).
    #[arg(long, default_value = "low-rank", value_parser = ["low-rank", "isotropic"])]
    synth_kind: String,
    /// Write the synthetic set (vectors, points, queries with filters, exact truth) to this
    /// folder in the geonames-minilm layout, for `benches/peers/run.py --dataset geonames
    /// --data DIR` (so the peers get the very same data), then go on.
    #[arg(long)]
    export_synth: Option<PathBuf>,
    /// Synthetic queries per bucket.
    #[arg(long, default_value_t = 100)]
    synth_queries: usize,
    /// HNSW m.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW ef_construction.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Search ef.
    #[arg(long, default_value_t = 64)]
    ef: usize,
    /// Calibrate the beam on the graph (`index::hnsw::calibrate`, as the database does at
    /// commit) and use the calibrated ef instead of `--ef` (the hnsw_rs pass gets the same).
    #[arg(long)]
    ef_auto: bool,
    /// Planner: most the beam is widened for restrictive filters (multiple of ef).
    #[arg(long, default_value_t = PlannerParams::default().max_ef_widening)]
    max_ef_widening: usize,
    /// Seconds of hnsw_rs search time per bucket after which its remaining queries in that
    /// bucket are skipped (its filtered search can take 100 ms+ a query); the table says how
    /// many it ran.
    #[arg(long, default_value_t = 15.0)]
    their_budget_s: f64,
    /// Also sweep the forced graph walk over ef x widening (slow).
    #[arg(long)]
    sweep: bool,
    /// Folder where exported graph sections are kept between runs (`<name>-<n>x<dim>-m<m>-efc<efc>.graph`).
    /// A cached graph skips the build and the hnsw_rs pass (which needs the hnsw_rs object).
    #[arg(long)]
    graph_cache: Option<PathBuf>,
    /// Time queries by this thread's CPU time (`cpu`, default: robust to other processes
    /// sharing the cores) or by wall-clock time (`wall`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "wall"])]
    clock: String,
    /// Only build (and export) the graphs, print the build times, skip the queries.
    #[arg(long)]
    build_only: bool,
    /// Planner: flat-scan threshold in rows.
    #[arg(long, default_value_t = PlannerParams::default().flat_max_rows)]
    flat_max_rows: u32,
    /// Planner: flat-scan threshold as a fraction of the rows.
    #[arg(long, default_value_t = PlannerParams::default().flat_max_fraction)]
    flat_max_fraction: f64,
    /// Planner: most rows a filtered walk may score, as a fraction of the matching rows,
    /// before the exact scan answers instead (the forced-walk column has no budget).
    #[arg(long, default_value_t = PlannerParams::default().walk_budget)]
    walk_budget: f64,
    /// Also run the planner with each of these walk budgets (comma-separated) and print
    /// recall@10 / QPS per bucket for each, next to each other.
    #[arg(long, value_delimiter = ',')]
    also_walk_budgets: Vec<f64>,
    /// Planner: score gap between the best row a filtered walk met and the best it returns
    /// above which the exact scan answers (the forced-walk column never falls back).
    #[arg(long, default_value_t = PlannerParams::default().far_gap)]
    far_gap: f32,
    /// Also run the planner with each of these far gaps (comma-separated).
    #[arg(long, value_delimiter = ',')]
    also_far_gaps: Vec<f32>,
    /// Planner: routing sample stride of an unfiltered walk (0 = off).
    #[arg(long, default_value_t = PlannerParams::default().routing_stride)]
    routing_stride: usize,
    /// Also run the planner with each of these routing strides (comma-separated).
    #[arg(long, value_delimiter = ',')]
    also_routing_strides: Vec<usize>,
    /// Also run the planner with each of these beams (comma-separated).
    #[arg(long, value_delimiter = ',')]
    also_efs: Vec<usize>,
    /// Skip the graph-walk-only pass (slow at 1M for narrow filters).
    #[arg(long)]
    skip_forced: bool,
    /// Print one line per filtered query of the forced-walk pass to stderr (recall, rows
    /// scored and matched, best unfiltered score, the walk's and the truth's best scores).
    #[arg(long)]
    dump_walks: bool,
}

/// A stopwatch on this thread's CPU time or on the wall clock.
#[derive(Clone, Copy)]
enum Clock {
    Cpu(cpu_time::ThreadTime),
    Wall(Instant),
}

impl Clock {
    fn start(cpu: bool) -> Clock {
        if cpu {
            Clock::Cpu(cpu_time::ThreadTime::now())
        } else {
            Clock::Wall(Instant::now())
        }
    }

    fn secs(&self) -> f64 {
        match self {
            Clock::Cpu(t) => t.elapsed().as_secs_f64(),
            Clock::Wall(t) => t.elapsed().as_secs_f64(),
        }
    }
}

struct Query {
    vector: Vec<f32>,
    filter: Filter,
    selectivity: f64,
    truth: Vec<u32>,
}

const BUCKETS: [f64; 6] = [1.0, 0.5, 0.1, 0.01, 0.001, 0.0001];

fn bucket_of(s: f64) -> usize {
    let mut best = 0;
    for (i, b) in BUCKETS.iter().enumerate() {
        if (s.max(1e-9).ln() - b.ln()).abs() < (s.max(1e-9).ln() - BUCKETS[best].ln()).abs() {
            best = i;
        }
    }
    best
}

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

fn recall(got: &[u32], truth: &[u32]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let t: HashSet<u32> = truth.iter().copied().collect();
    got.iter().filter(|r| t.contains(r)).count() as f64 / truth.len() as f64
}

fn read_npy_f16(path: &Path) -> Result<(Vec<f16>, usize, usize), String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an npy file".into());
    }
    let (hlen, hstart) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = String::from_utf8_lossy(bytes.get(hstart..hstart + hlen).ok_or("short header")?);
    if !header.contains("'<f2'") || header.contains("'fortran_order': True") {
        return Err(format!("unsupported npy header {header}"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let [n, d] = dims[..] else {
        return Err(format!("shape {shape}"));
    };
    let data = bytes.get(hstart + hlen..).ok_or("no data")?;
    if data.len() != n * d * 2 {
        return Err("data length".into());
    }
    let v = data
        .chunks_exact(2)
        .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    Ok((v, n, d))
}

/// Vectors, dimension, locations and queries of a data set.
type Loaded = (Vec<f16>, usize, Vec<Point>, Vec<Query>);

fn load_geonames(dir: &Path) -> Result<Loaded, String> {
    let (vectors, n, dim) = read_npy_f16(&dir.join("vectors.f16.npy"))?;
    let csv = std::fs::read_to_string(dir.join("places.csv")).map_err(|e| e.to_string())?;
    let mut points = vec![None; n];
    for line in csv.lines().skip(1) {
        let mut it = line.split(',');
        let (Some(id), Some(lat), Some(lon)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(id), Ok(lat), Ok(lon)) = (id.parse::<usize>(), lat.parse(), lon.parse()) else {
            continue;
        };
        if id < n {
            points[id] = Point::new(lat, lon).ok();
        }
    }
    let points: Vec<Point> = points
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or("places.csv misses rows")?;
    let truth_file = std::fs::File::open(dir.join("truth.dev.jsonl")).map_err(|e| e.to_string())?;
    let mut truth = BTreeMap::new();
    for line in BufReader::new(truth_file).lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let ids: Vec<u32> = v["neighbors"]
            .as_array()
            .ok_or("neighbors")?
            .iter()
            .filter_map(|x| x.as_u64().map(|x| x as u32))
            .collect();
        truth.insert(v["id"].as_u64().ok_or("id")?, ids);
    }
    let qf = std::fs::File::open(dir.join("queries.dev.jsonl")).map_err(|e| e.to_string())?;
    let mut queries = Vec::new();
    for line in BufReader::new(qf).lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let id = v["id"].as_u64().ok_or("id")?;
        let vector: Vec<f32> = v["vector"]
            .as_array()
            .ok_or("vector")?
            .iter()
            .filter_map(|x| x.as_f64().map(|x| x as f32))
            .collect();
        let f = &v["filter"];
        let filter = if let Some(b) = f.get("bbox").and_then(|b| b.as_array()) {
            let e: Vec<f64> = b.iter().filter_map(|x| x.as_f64()).collect();
            if e.len() != 4 {
                return Err("bbox".into());
            }
            Filter::new().bbox(BBox::new(e[0], e[1], e[2], e[3]).map_err(|e| e.to_string())?)
        } else if let Some(r) = f.get("radius") {
            let g = |k: &str| r[k].as_f64().ok_or(format!("radius.{k}"));
            Filter::new()
                .radius(Radius::new(g("lat")?, g("lon")?, g("km")?).map_err(|e| e.to_string())?)
        } else {
            Filter::new()
        };
        queries.push(Query {
            vector,
            filter,
            selectivity: v["selectivity"].as_f64().unwrap_or(1.0),
            truth: truth.get(&id).cloned().unwrap_or_default(),
        });
    }
    Ok((vectors, dim, points, queries))
}

fn synth_queries(data: &sat2cap::index::synth::SynthData, per_bucket: usize) -> Vec<Query> {
    let n = data.points.len();
    let mut out = Vec::new();
    for (b, &frac) in BUCKETS.iter().enumerate() {
        for i in 0..per_bucket {
            let vector = query_near(data, i * 13 + b, (b * 100_000 + i) as u64);
            let filter = if frac >= 1.0 {
                Filter::new()
            } else {
                // A circle around a data point holding about frac * n rows.
                let c = data.points[(i * 7919 + b * 31) % n];
                let mut d: Vec<f64> = data.points.iter().map(|&p| haversine_km(c, p)).collect();
                let target = ((n as f64 * frac) as usize).clamp(1, n);
                d.select_nth_unstable_by(target - 1, f64::total_cmp);
                let inner = d[target - 1];
                // Halfway to the next farther row, so that no row sits on the boundary (where
                // another haversine implementation could round the other way).
                let outer = d[target..].iter().copied().fold(f64::INFINITY, f64::min);
                let km = if outer.is_finite() && outer > inner {
                    (inner + outer) / 2.0
                } else {
                    inner
                };
                match Radius::new(c.lat(), c.lon(), km) {
                    Ok(r) => Filter::new().radius(r),
                    Err(_) => continue,
                }
            };
            let keep: Vec<u32> = (0..n as u32)
                .filter(|&r| filter.matches(data.points[r as usize], None))
                .collect();
            let truth = top_k(&data.vectors, data.dim, &vector, keep.iter().copied(), 10)
                .iter()
                .map(|h| h.row)
                .collect();
            out.push(Query {
                vector,
                filter,
                selectivity: keep.len() as f64 / n as f64,
                truth,
            });
        }
    }
    out
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

fn run(name: &str, vectors: &[f16], dim: usize, points: &[Point], queries: &[Query], args: &Args) {
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

/// Writes `data` and `queries` in the geonames-minilm layout (see its README).
fn export_synth(
    dir: &Path,
    data: &sat2cap::index::synth::SynthData,
    queries: &[Query],
) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let n = data.points.len();
    let header = format!(
        "{{'descr': '<f2', 'fortran_order': False, 'shape': ({n}, {}), }}",
        data.dim
    );
    let pad = 64 - (10 + header.len() + 1) % 64;
    let mut npy = Vec::with_capacity(128 + data.vectors.len() * 2);
    npy.extend_from_slice(b"\x93NUMPY\x01\x00");
    let hlen = (header.len() + pad % 64 + 1) as u16;
    npy.extend_from_slice(&hlen.to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend(std::iter::repeat_n(b' ', pad % 64));
    npy.push(b'\n');
    for v in &data.vectors {
        npy.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    std::fs::write(dir.join("vectors.f16.npy"), npy)?;
    let mut csv = std::io::BufWriter::new(std::fs::File::create(dir.join("places.csv"))?);
    writeln!(csv, "id,lat,lon,name,admin1,admin2,cc")?;
    for (i, p) in data.points.iter().enumerate() {
        writeln!(csv, "{i},{:.6},{:.6},synth{i},,,", p.lat(), p.lon())?;
    }
    csv.flush()?;
    let mut qf = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.dev.jsonl"))?);
    let mut tf = std::io::BufWriter::new(std::fs::File::create(dir.join("truth.dev.jsonl"))?);
    for (id, q) in queries.iter().enumerate() {
        let filter = match &q.filter.radius {
            Some(r) => {
                serde_json::json!({"radius": {"lat": r.center().lat(), "lon": r.center().lon(), "km": r.radius_km()}})
            }
            None => serde_json::Value::Null,
        };
        let line = serde_json::json!({"id": id, "text": "", "k": 10, "filter": filter,
            "selectivity": q.selectivity, "vector": q.vector});
        writeln!(qf, "{line}")?;
        writeln!(
            tf,
            "{}",
            serde_json::json!({"id": id, "neighbors": q.truth})
        )?;
    }
    qf.flush()?;
    tf.flush()
}

fn main() {
    let args = Args::parse();
    if let Some(dir) = &args.data {
        if dir.join("vectors.f16.npy").exists() {
            match load_geonames(dir) {
                Ok((v, dim, p, q)) => run("geonames-minilm", &v, dim, &p, &q, &args),
                Err(e) => eprintln!("geonames-minilm: cannot load: {e}"),
            }
        } else {
            println!(
                "notice: {} not found, skipping geonames-minilm",
                dir.display()
            );
        }
    }
    if args.synth_n > 0 {
        let t = Instant::now();
        let clusters = (args.synth_n / 300).max(8);
        let mut data = if args.synth_kind == "isotropic" {
            generate(args.synth_n, args.synth_dim, clusters, 42)
        } else {
            generate_low_rank(args.synth_n, args.synth_dim, clusters, 42)
        };
        // Points as written to places.csv (6 decimals), so that exported files and this run
        // filter the very same coordinates.
        for p in data.points.iter_mut() {
            let r = |x: f64| (x * 1e6).round() / 1e6;
            if let Ok(q) = Point::new(r(p.lat()), r(p.lon())) {
                *p = q;
            }
        }
        let queries = if args.build_only {
            Vec::new()
        } else {
            synth_queries(&data, args.synth_queries)
        };
        eprintln!(
            "synthetic data + truth in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        if let Some(dir) = &args.export_synth {
            match export_synth(dir, &data, &queries) {
                Ok(()) => eprintln!("synthetic set written to {}", dir.display()),
                Err(e) => eprintln!("cannot write the synthetic set: {e}"),
            }
        }
        let name = format!("synthetic {} clustered geo-correlated", args.synth_kind);
        run(
            &name,
            &data.vectors,
            data.dim,
            &data.points,
            &queries,
            &args,
        );
    }
}
