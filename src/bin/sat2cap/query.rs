//! `sat2cap query`: run a batch of JSONL queries, write JSONL results.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{query_batch, BatchOptions, BatchOutput};
use sat2cap::Filter;

use crate::output::{err_line, note, out};
use crate::place_args::{AreaArgs, PointArgs};
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Run a batch of queries (one JSON object a line) against a collection and write one
/// result line per query, in input order. Opens the database read-only (no lock).
///
/// Input line: {"id": .., "k": 10, "vector": [..], "filter": null | {"bbox": [w, s, e, n]} |
/// {"radius": {"lat": .., "lon": .., "km": ..}} | {"polygon": [[lon, lat], ..]} |
/// {"time": [t0, t1]}} (no "vector" with --vectors). Output line: {"id": .., "neighbors":
/// [ids], "scores": [..]}.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap query --db ./db --collection places --batch queries.jsonl --out results.jsonl --threads 4
  sat2cap query --db ./db --collection places --batch q.jsonl --out r.jsonl --exact --json
  sat2cap query --db ./db --collection places --batch q.jsonl --out - | jq -c .neighbors
  make-queries | sat2cap query --db ./db --collection places --batch - --out r.jsonl
  sat2cap query --db ./db --collection places --batch q.jsonl --vectors q.npy --out r.jsonl
  sat2cap query --db ./db --collection overhead --batch q.jsonl --out r.jsonl --aoi lake.geojson \
      --between 2023-06-01 2023-08-31

--json prints {queries, seconds, queries_per_s, prepare_seconds, read_seconds, write_seconds,
total_seconds, end_to_end_queries_per_s, resident_bytes, out} on stdout (on stderr, one
line, when the results go to stdout with --out -): `seconds` and
`queries_per_s` are the searches alone, `total_seconds` everything after the database was
opened (reading, opening the segments, searching, writing; a --warm-up pass not counted,
and with it what the first searches build, such as a filter's spatial index).")]
pub struct QueryArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Collection name.
    #[arg(long)]
    collection: String,
    /// Query batch (JSONL); `-` reads it from stdin (a pipe or a redirected file).
    #[arg(long)]
    batch: PathBuf,
    /// The query vectors as an .npy (f32 or f16, the collection's dimension): row i is the
    /// vector of the batch's i-th query line, and the lines give no "vector" (faster to
    /// read than vectors written as JSON numbers; a line's "vector": null is no vector).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Results (JSONL), written to a temporary file and renamed at the end; `-` writes
    /// them to stdout once the last query is answered (nothing when a query fails).
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (default: all cores; at most 4 x the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Exact scan (recall 1.0) instead of the graph.
    #[arg(long)]
    exact: bool,
    /// Graph beam width (default: the library default).
    #[arg(long, value_parser = crate::ef_value)]
    ef: Option<usize>,
    /// How far graph walks go, as a multiple of the data's hop slack (default 1; in (0,
    /// 64]): below 1 faster and may miss more, above 1 slower and misses less. Not with
    /// --ef.
    #[arg(long, value_parser = crate::effort_value, allow_negative_numbers = true, conflicts_with = "ef")]
    effort: Option<f32>,
    /// Print the summary as JSON on stdout (on stderr with --out -).
    #[arg(long)]
    json: bool,
    /// Answer the whole batch once, untimed, before the timed pass (for benchmarks: the
    /// summary then gives steady-state queries/s, with the pages of the memory-mapped
    /// segments the batch touches already faulted in). The results written are the timed
    /// pass's, identical to the first.
    #[arg(long)]
    warm_up: bool,
    /// Copy the collection's int8 vectors (dim + 8 bytes a row) into memory, in huge pages
    /// where the kernel gives them, before the first query: walks and scans then miss the
    /// TLB far less (faster on large collections and batches), for the copy's size in
    /// memory and one read of it (counted in the preparing time).
    #[arg(long)]
    resident: bool,
    /// Every query also keeps to these (as well as its line's own filter).
    #[command(flatten)]
    area: AreaArgs,
    #[command(flatten)]
    point: PointArgs,
}

/// Runs the command.
pub fn run(a: QueryArgs) -> Result<(), CliError> {
    let filter = a.point.add_to(a.area.add_to(Filter::new())?)?;
    let snap = crate::open_snapshot(&a.db)?;
    let opts = BatchOptions {
        collection: a.collection,
        // Through /dev/stdin: opened like any input, named in errors, and refused as the
        // destination when stdin is the results file.
        input: match a.batch.as_os_str() == "-" && cfg!(unix) {
            true => PathBuf::from("/dev/stdin"),
            false => a.batch,
        },
        vectors: a.vectors,
        output: match a.out.as_os_str() == "-" {
            true => BatchOutput::Stdout,
            false => BatchOutput::File(a.out),
        },
        threads: a.threads,
        exact: a.exact,
        ef: a.ef,
        effort: a.effort,
        warm_up: a.warm_up,
        resident: a.resident,
        filter,
    };
    let r = query_batch(&snap, &opts, &Bars::new(Notes::Stderr))?;
    if a.json {
        let summary = serde_json::json!({
                "queries": r.queries,
                "seconds": r.seconds,
                "queries_per_s": r.queries_per_s,
                "prepare_seconds": r.prepare_seconds,
                "read_seconds": r.read_seconds,
                "write_seconds": r.write_seconds,
                "total_seconds": r.total_seconds,
                "end_to_end_queries_per_s": r.end_to_end_queries_per_s,
                "resident_bytes": r.resident_bytes,
                "out": r.out.display().to_string(),
        });
        match opts.output {
            BatchOutput::Stdout => err_line(&summary.to_string()),
            BatchOutput::File(_) => out!("{summary}"),
        }
    }
    note!(
        "queries: {}, searches: {:.3} s ({:.1} queries/s); whole batch: {:.3} s ({:.1} \
         queries/s: reading {:.3} s, preparing {:.3} s, writing {:.3} s)",
        r.queries,
        r.seconds,
        r.queries_per_s,
        r.total_seconds,
        r.end_to_end_queries_per_s,
        r.read_seconds,
        r.prepare_seconds,
        r.write_seconds
    );
    match (opts.resident, r.resident_bytes) {
        (false, _) => {}
        (true, 0) => note!("--resident: nothing copied (no int8 vectors, not on Linux, or the memory could not be mapped): the segments were read from their files"),
        (true, b) => note!("--resident: {:.1} MiB of int8 vectors held in memory", b as f64 / (1u64 << 20) as f64),
    }
    Ok(())
}
