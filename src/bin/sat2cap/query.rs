//! `sat2cap query`: run a batch of JSONL queries, write JSONL results.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;
use sat2cap::io::query_jsonl::{parse_query_line, QueryLine, ResultLine};
use sat2cap::query::filter::Filter;

use crate::CliError;

/// Run a batch of queries (one JSON object a line) against a collection and write one
/// result line per query, in input order. Opens the database read-only (no lock).
///
/// Input line: {"id": .., "k": 10, "vector": [..], "filter": null | {"bbox": [w, s, e, n]} |
/// {"radius": {"lat": .., "lon": .., "km": ..}} | {"polygon": [[lon, lat], ..]} |
/// {"time": [t0, t1]}}. Output line: {"id": .., "neighbors": [ids], "scores": [..]}.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap query --db ./db --collection places --batch queries.jsonl --out results.jsonl --threads 4
  sat2cap query --db ./db --collection places --batch q.jsonl --out r.jsonl --exact --json

--json prints {queries, seconds, queries_per_s, prepare_seconds, out} on stdout.")]
pub struct QueryArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Collection name.
    #[arg(long)]
    collection: String,
    /// Query batch (JSONL).
    #[arg(long)]
    batch: PathBuf,
    /// Results (JSONL), written to a temporary file and renamed at the end.
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Exact scan (recall 1.0) instead of the graph.
    #[arg(long)]
    exact: bool,
    /// Graph beam width (default: the library default).
    #[arg(long)]
    ef: Option<usize>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Answer the whole batch once, untimed, before the timed pass (for benchmarks: the
    /// summary then gives steady-state queries/s, with the pages of the memory-mapped
    /// segments the batch touches already faulted in). The results written are the timed
    /// pass's, identical to the first.
    #[arg(long)]
    warm_up: bool,
}

/// Runs the command.
pub fn run(a: QueryArgs) -> Result<(), CliError> {
    let snap = crate::open_snapshot(&a.db)?;
    // The same message as every other command's for an unknown collection.
    let coll = sat2cap::jobs::collection(&snap, &a.collection).map_err(CliError::input)?;
    let file = std::fs::File::open(&a.batch)
        .map_err(|e| CliError::input(format!("{}: {e}", a.batch.display())))?;
    let mut queries: Vec<(u64, QueryLine, Filter)> = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let no = i as u64 + 1;
        let line = line.map_err(|e| CliError::input(format!("{}:{no}: {e}", a.batch.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let q = parse_query_line(&line, no)
            .map_err(|e| CliError::input(format!("{}: {e}", a.batch.display())))?;
        let f = match &q.filter {
            Some(f) => f
                .to_filter()
                .map_err(|e| CliError::input(format!("{}:{no}: {e}", a.batch.display())))?,
            None => Filter::new(),
        };
        queries.push((no, q, f));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()
        .map_err(CliError::runtime)?;
    let prep = Instant::now();
    coll.prepare()
        .map_err(|e| CliError::runtime(format!("collection '{}': {e}", a.collection)))?;
    let prep = prep.elapsed().as_secs_f64();
    let pass = |pb: &indicatif::ProgressBar| -> Result<Vec<ResultLine>, CliError> {
        pool.install(|| {
            queries
                .par_iter()
                .map(|(no, q, f)| {
                    let mut s = coll
                        .search(&q.vector)
                        .k(q.k)
                        .filter(f.clone())
                        .exact(a.exact);
                    if let Some(ef) = a.ef {
                        s = s.ef(ef);
                    }
                    let r = s
                        .run()
                        .map_err(|e| CliError::input(format!("{}:{no}: {e}", a.batch.display())))?;
                    pb.inc(1);
                    Ok(ResultLine {
                        id: q.id.clone(),
                        neighbors: r.hits.iter().map(|h| h.id).collect(),
                        scores: r.hits.iter().map(|h| h.score).collect(),
                    })
                })
                .collect()
        })
    };
    if a.warm_up {
        let pb = crate::progress::bar("warm-up");
        pb.set_length(queries.len() as u64);
        pass(&pb)?;
        pb.finish_and_clear();
    }
    let pb = crate::progress::bar("queries");
    pb.set_length(queries.len() as u64);
    let start = Instant::now();
    let results = pass(&pb);
    pb.finish_and_clear();
    let results = results?;
    let secs = start.elapsed().as_secs_f64();
    let mut tmp_name = a.out.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
        for r in &results {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &a.out)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::runtime(format!("{}: {e}", a.out.display())));
    }
    let n = results.len();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "queries": n,
                "seconds": secs,
                "queries_per_s": n as f64 / secs.max(1e-9),
                "prepare_seconds": prep,
                "out": a.out.display().to_string(),
            })
        );
    }
    eprintln!(
        "queries: {n}, seconds: {secs:.3}, queries/s: {:.1} (segments prepared in {prep:.3} s)",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}
