//! Recall and single-thread QPS by selectivity bucket: our planner + in-place graph search,
//! our graph walk alone, hnsw_rs `search_filter` on the same graph, and the exact scan.
//!
//! ```text
//! cargo run --release -p sat2cap-bench --bin bench_recall -- \
//!     --data /work/shared/data/geonames-minilm --synth-n 100000
//! ```

use std::time::Instant;

use clap::Parser;
use sat2cap::geo::Point;
use sat2cap::testing::synth::{generate, generate_low_rank};

use args::Args;
use data::{export_synth, load_geonames, synth_queries};
use run::run;

mod args;
mod data;
mod run;

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
