//! Command-line flags and the query clock.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use sat2cap::query::planner::PlannerParams;

#[derive(Parser, Debug)]
#[command(about = "Recall@10 and QPS by selectivity bucket")]
pub(crate) struct Args {
    /// geonames-minilm folder (skipped with a notice if absent).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Synthetic rows (0 skips the synthetic set).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) synth_n: usize,
    /// Synthetic dimension.
    #[arg(long, default_value_t = 512)]
    pub(crate) synth_dim: usize,
    /// Synthetic generator: `low-rank` (`testing::synth::generate_low_rank`, the realistic one)
    /// or `isotropic` (`testing::synth::generate`, near-tied neighbours; see its docs).
    #[arg(long, default_value = "low-rank", value_parser = ["low-rank", "isotropic"])]
    pub(crate) synth_kind: String,
    /// Write the synthetic set (vectors, points, queries with filters, exact truth) to this
    /// folder in the geonames-minilm layout, for `benches/peers/run.py --dataset geonames
    /// --data DIR` (so the peers get the very same data), then go on.
    #[arg(long)]
    pub(crate) export_synth: Option<PathBuf>,
    /// Synthetic queries per bucket.
    #[arg(long, default_value_t = 100)]
    pub(crate) synth_queries: usize,
    /// HNSW m.
    #[arg(long, default_value_t = 16)]
    pub(crate) m: usize,
    /// HNSW ef_construction.
    #[arg(long, default_value_t = 200)]
    pub(crate) ef_construction: usize,
    /// Search ef.
    #[arg(long, default_value_t = 64)]
    pub(crate) ef: usize,
    /// Calibrate the beam on the graph (`index::hnsw::calibrate`, as the database does at
    /// commit) and use the calibrated ef instead of `--ef` (the hnsw_rs pass gets the same).
    #[arg(long)]
    pub(crate) ef_auto: bool,
    /// Planner: most the beam is widened for restrictive filters (multiple of ef).
    #[arg(long, default_value_t = PlannerParams::default().max_ef_widening)]
    pub(crate) max_ef_widening: usize,
    /// Seconds of hnsw_rs search time per bucket after which its remaining queries in that
    /// bucket are skipped (its filtered search can take 100 ms+ a query); the table says how
    /// many it ran.
    #[arg(long, default_value_t = 15.0)]
    pub(crate) their_budget_s: f64,
    /// Also sweep the forced graph walk over ef x widening (slow).
    #[arg(long)]
    pub(crate) sweep: bool,
    /// Folder where exported graph sections are kept between runs (`<name>-<n>x<dim>-m<m>-efc<efc>.graph`).
    /// A cached graph skips the build and the hnsw_rs pass (which needs the hnsw_rs object).
    #[arg(long)]
    pub(crate) graph_cache: Option<PathBuf>,
    /// Time queries by this thread's CPU time (`cpu`, default: robust to other processes
    /// sharing the cores) or by wall-clock time (`wall`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "wall"])]
    pub(crate) clock: String,
    /// Only build (and export) the graphs, print the build times, skip the queries.
    #[arg(long)]
    pub(crate) build_only: bool,
    /// Planner: flat-scan threshold in rows.
    #[arg(long, default_value_t = PlannerParams::default().flat_max_rows)]
    pub(crate) flat_max_rows: u32,
    /// Planner: flat-scan threshold as a fraction of the rows.
    #[arg(long, default_value_t = PlannerParams::default().flat_max_fraction)]
    pub(crate) flat_max_fraction: f64,
    /// Planner: most rows a filtered walk may score, as a fraction of the matching rows,
    /// before the exact scan answers instead (the forced-walk column has no budget).
    #[arg(long, default_value_t = PlannerParams::default().walk_budget)]
    pub(crate) walk_budget: f64,
    /// Also run the planner with each of these walk budgets (comma-separated) and print
    /// recall@10 / QPS per bucket for each, next to each other.
    #[arg(long, value_delimiter = ',')]
    pub(crate) also_walk_budgets: Vec<f64>,
    /// Planner: score gap between the best row a filtered walk met and the best it returns
    /// above which the exact scan answers (the forced-walk column never falls back).
    #[arg(long, default_value_t = PlannerParams::default().far_gap)]
    pub(crate) far_gap: f32,
    /// Also run the planner with each of these far gaps (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) also_far_gaps: Vec<f32>,
    /// Planner: routing sample stride of an unfiltered walk (0 = off).
    #[arg(long, default_value_t = PlannerParams::default().routing_stride)]
    pub(crate) routing_stride: usize,
    /// Also run the planner with each of these routing strides (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) also_routing_strides: Vec<usize>,
    /// Also run the planner with each of these beams (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) also_efs: Vec<usize>,
    /// Skip the graph-walk-only pass (slow at 1M for narrow filters).
    #[arg(long)]
    pub(crate) skip_forced: bool,
    /// Print one line per filtered query of the forced-walk pass to stderr (recall, rows
    /// scored and matched, best unfiltered score, the walk's and the truth's best scores).
    #[arg(long)]
    pub(crate) dump_walks: bool,
}

/// A stopwatch on this thread's CPU time or on the wall clock.
#[derive(Clone, Copy)]
pub(crate) enum Clock {
    Cpu(cpu_time::ThreadTime),
    Wall(Instant),
}

impl Clock {
    pub(crate) fn start(cpu: bool) -> Clock {
        if cpu {
            Clock::Cpu(cpu_time::ThreadTime::now())
        } else {
            Clock::Wall(Instant::now())
        }
    }

    pub(crate) fn secs(&self) -> f64 {
        match self {
            Clock::Cpu(t) => t.elapsed().as_secs_f64(),
            Clock::Wall(t) => t.elapsed().as_secs_f64(),
        }
    }
}
