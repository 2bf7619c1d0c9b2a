//! A batch of JSONL vector queries against one collection, answered in parallel, written as
//! JSONL results in input order (see [`crate::io::query_jsonl`] for the line formats).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use super::map_files::output_error;
use super::JobError;
use crate::io::npy::NpyReader;
use crate::io::output::Staged;
use crate::io::query_jsonl::{parse_query_head, parse_query_line, QueryLine, ResultLine};
use crate::{Filter, Progress, QueryError, Snapshot, Unit};

/// Options of [`query_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOptions {
    /// The collection queried.
    pub collection: String,
    /// The queries: one JSON object a line.
    pub input: PathBuf,
    /// The query vectors as an `.npy` (f32 or f16, the collection's dimension), row `i`
    /// for the `i`-th query line (blank lines are not queries), whose lines then give no
    /// `vector`: read as stored, where a vector written as JSON text costs more to read than
    /// a small query costs to answer. `None`: each line gives its vector.
    pub vectors: Option<PathBuf>,
    /// Where the results go, one line per query in input order.
    pub output: BatchOutput,
    /// Worker threads (`None`: all cores; at most 4 x the cores).
    pub threads: Option<usize>,
    /// Exact scans (recall 1.0) instead of graph walks.
    pub exact: bool,
    /// Graph beam width (`None`: the search default).
    pub ef: Option<usize>,
    /// How far walks go, as a multiple of each segment's hop slack (`None`: 1; see
    /// [`crate::SearchBuilder::effort`]). Not with `ef`.
    pub effort: Option<f32>,
    /// Answer the whole batch once, untimed, before the timed pass (steady-state figures,
    /// with the pages the batch touches already read); the results are the timed pass's.
    pub warm_up: bool,
    /// Copy the segments' int8 sections into memory (huge pages) before the first query
    /// ([`crate::Collection::make_resident`]), within `prepare_seconds`: faster walks and
    /// scans for a batch of many queries, at the cost of the sections' size in memory.
    pub resident: bool,
    /// A filter every query must pass as well as its own (the empty filter: none).
    pub filter: Filter,
}

/// Where [`query_batch`] writes its results.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOutput {
    /// A file, written whole or not at all: to a new temporary file in the same folder,
    /// synced and renamed over the destination at the end (one that is not a regular file
    /// is refused before any query runs).
    File(PathBuf),
    /// Standard output, after the last query is answered (nothing written when a query
    /// fails; a write that fails, such as into a closed pipe, is the batch's error).
    Stdout,
}

/// What [`query_batch`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BatchReport {
    /// Queries answered.
    pub queries: usize,
    /// Seconds of the timed pass (the searches alone: not parsing, not writing).
    pub seconds: f64,
    /// Queries per second of the timed pass.
    pub queries_per_s: f64,
    /// Seconds spent opening the segments before the first query (what every search
    /// needs, and the resident copies when asked for; what only some need, such as a
    /// filter's spatial index, is made by the first that does, within the searches).
    pub prepare_seconds: f64,
    /// Seconds spent reading and parsing the query lines.
    pub read_seconds: f64,
    /// Seconds spent writing the results (a file's: writing, syncing and renaming it).
    pub write_seconds: f64,
    /// Seconds of the whole batch after the database was opened: reading, preparing, the
    /// searches (the timed pass only), writing.
    pub total_seconds: f64,
    /// Queries per second of the whole batch (`queries / total_seconds`).
    pub end_to_end_queries_per_s: f64,
    /// Bytes of memory the resident int8 copies hold (0 without `resident`).
    pub resident_bytes: u64,
    /// The results file (`-` for standard output).
    pub out: PathBuf,
}

/// Answers the queries in `opts.input` and writes their results to `opts.output`.
pub fn query_batch(
    snap: &Snapshot,
    opts: &BatchOptions,
    progress: &dyn Progress,
) -> Result<BatchReport, JobError> {
    let threads = match opts.threads {
        None => 0,
        Some(n) if (1..=max_threads()).contains(&n) => n,
        Some(n) => {
            return Err(JobError::input(format!(
                "--threads {n}: must be in 1..={} (4 x the {} cores)",
                max_threads(),
                max_threads() / 4
            )))
        }
    };
    // The library's own check of the walk knobs (the command line's flags are checked as
    // they are parsed).
    crate::check_walk_knobs(opts.ef, opts.effort).map_err(|e| JobError::input(e.to_string()))?;
    let begin = Instant::now();
    let coll = super::collection(snap, &opts.collection)?;
    if let BatchOutput::File(out) = &opts.output {
        crate::io::output::check(out).map_err(output_error)?;
        let inputs = std::iter::once(opts.input.as_path()).chain(opts.vectors.as_deref());
        crate::io::output::check_not_input(out, inputs).map_err(output_error)?;
    }
    let input = &opts.input;
    // The lines before the first unreadable one; that line's error is reported unless a
    // query before it fails (the error names the first bad line either way).
    let read = Instant::now();
    let vectors = match &opts.vectors {
        None => None,
        Some(path) => Some(open_vectors(path, coll.dim())?),
    };
    let (queries, unreadable) = read_queries(input, &opts.filter, vectors)?;
    let read = read.elapsed().as_secs_f64();
    // One thread answers on this one (no pool to start, no hand-over); more share a pool.
    let pool = match threads {
        1 => None,
        n => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(JobError::runtime)?,
        ),
    };
    let prep = Instant::now();
    let corrupt = |e| JobError::runtime(format!("collection '{}': {e}", opts.collection));
    coll.open_segments().map_err(corrupt)?;
    let resident_bytes = match opts.resident {
        true => coll.make_resident().map_err(corrupt)?.bytes,
        false => 0,
    };
    let prep = prep.elapsed().as_secs_f64();
    let answer = |(no, q, f): &(u64, QueryLine, Filter)| -> Result<ResultLine, JobError> {
        let mut s = coll
            .search(&q.vector)
            .k(q.k)
            .filter(f.clone())
            .exact(opts.exact);
        if let Some(ef) = opts.ef {
            s = s.ef(ef);
        }
        if let Some(e) = opts.effort {
            s = s.effort(e);
        }
        let r = s.run().map_err(|e| {
            let m = format!("{}:{no}: {e}", input.display());
            // A damaged segment is the database's fault, not the query's.
            match e {
                QueryError::Corrupt(_) | QueryError::Segment(_) => JobError::runtime(m),
                _ => JobError::input(m),
            }
        })?;
        progress.advance(1);
        Ok(ResultLine {
            id: q.id.clone(),
            neighbors: r.hits.iter().map(|h| h.id).collect(),
            scores: r.hits.iter().map(|h| h.score).collect(),
        })
    };
    // Every query answered, then the first failure in input order: the line an error
    // names does not depend on the threads' timing.
    let pass = || -> Result<Vec<ResultLine>, JobError> {
        let all: Vec<Result<ResultLine, JobError>> = match &pool {
            None => queries.iter().map(answer).collect(),
            Some(pool) => pool.install(|| queries.par_iter().map(answer).collect()),
        };
        all.into_iter().collect()
    };
    let mut warm = 0.0;
    if opts.warm_up && unreadable.is_none() {
        progress.begin("warm-up", Some(queries.len() as u64), Unit::Items);
        let t = Instant::now();
        let r = pass();
        warm = t.elapsed().as_secs_f64();
        progress.end();
        r?;
    }
    progress.begin("queries", Some(queries.len() as u64), Unit::Items);
    let start = Instant::now();
    let results = pass();
    let secs = start.elapsed().as_secs_f64();
    progress.end();
    let results = results?;
    if let Some(e) = unreadable {
        return Err(e);
    }
    let write = Instant::now();
    match &opts.output {
        BatchOutput::File(out) => write_results(out, &results)?,
        BatchOutput::Stdout => print_results(&results)?,
    }
    let write = write.elapsed().as_secs_f64();
    let n = results.len();
    let total = (begin.elapsed().as_secs_f64() - warm).max(1e-9);
    Ok(BatchReport {
        queries: n,
        seconds: secs,
        queries_per_s: n as f64 / secs.max(1e-9),
        prepare_seconds: prep,
        read_seconds: read,
        write_seconds: write,
        total_seconds: total,
        end_to_end_queries_per_s: n as f64 / total,
        resident_bytes,
        out: match &opts.output {
            BatchOutput::File(out) => out.clone(),
            BatchOutput::Stdout => PathBuf::from("-"),
        },
    })
}

/// The most worker threads a batch takes: 4 x the cores this process may use.
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 4
}

/// The queries of a JSONL file with their line numbers and filters.
/// A batch's queries up to its first unreadable line, and that line's error.
type Queries = (Vec<(u64, QueryLine, Filter)>, Option<JobError>);

/// The vectors file of a batch, checked against the collection's dimension.
fn open_vectors(path: &Path, dim: usize) -> Result<(PathBuf, NpyReader), JobError> {
    let r = NpyReader::open(path).map_err(|e| JobError::input(e.to_string()))?;
    if r.header().cols != dim {
        return Err(JobError::input(format!(
            "{}: vectors of {} dimensions; the collection's have {dim}",
            path.display(),
            r.header().cols
        )));
    }
    Ok((path.to_path_buf(), r))
}

/// The queries of a JSONL file with their line numbers and filters, up to the first line
/// that does not parse (returned as the error beside them); with `vectors`, each line's
/// vector is the file's next row, and the rows must be as many as the queries.
fn read_queries(
    input: &Path,
    base: &Filter,
    mut vectors: Option<(PathBuf, NpyReader)>,
) -> Result<Queries, JobError> {
    let file = crate::io::text::open(input)
        .map_err(|e| JobError::input(format!("{}: {e}", input.display())))?;
    let mut queries = Vec::new();
    let mut row = Vec::new();
    for (no, line) in crate::io::text::lines(file) {
        let bad =
            |e: &dyn std::fmt::Display| JobError::input(format!("{}:{no}: {e}", input.display()));
        let line = match line {
            Ok(l) => l,
            Err(e) => return Ok((queries, Some(bad(&e)))),
        };
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match &mut vectors {
            None => parse_query_line(&line, no),
            Some((path, npy)) => {
                let i = queries.len();
                match npy.read_row(&mut row) {
                    Ok(true) => {}
                    Ok(false) => {
                        let e = format!(
                            "{}: {} rows, and line {no} of {} is query {}: one row a query",
                            path.display(),
                            npy.header().rows,
                            input.display(),
                            i + 1
                        );
                        return Ok((queries, Some(JobError::input(e))));
                    }
                    // The file passed its checks when it was opened: a failing read is the
                    // machine's.
                    Err(e) => return Ok((queries, Some(JobError::runtime(e.to_string())))),
                }
                if let Some(c) = row.iter().position(|x| !x.is_finite()) {
                    let e = format!(
                        "{}: row {} (the query of {}:{no}): component {c} is not a finite number",
                        path.display(),
                        i + 1,
                        input.display()
                    );
                    return Ok((queries, Some(JobError::input(e))));
                }
                parse_query_head(&line, no, row.clone())
            }
        };
        let q = match parsed {
            Ok(q) => q,
            Err(e) => {
                let e = JobError::input(format!("{}: {e}", input.display()));
                return Ok((queries, Some(e)));
            }
        };
        let f = match q.filter.as_ref().map(|f| f.to_filter()) {
            None => base.clone(),
            Some(Ok(f)) => f
                .predicates()
                .iter()
                .fold(base.clone(), |all, p| all.and(p.clone())),
            Some(Err(e)) => return Ok((queries, Some(bad(&e)))),
        };
        queries.push((no, q, f));
    }
    if let Some((path, npy)) = &vectors {
        if npy.header().rows != queries.len() as u64 {
            let e = format!(
                "{}: {} rows, and {} has {} queries: one row a query",
                path.display(),
                npy.header().rows,
                input.display(),
                queries.len()
            );
            // Known before any search: no line of the batch is to blame.
            return Err(JobError::input(e));
        }
    }
    Ok((queries, None))
}

/// The result lines, one JSON object a line.
fn result_lines(w: &mut impl Write, results: &[ResultLine]) -> std::io::Result<()> {
    for r in results {
        serde_json::to_writer(&mut *w, r)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Writes the result lines to standard output.
fn print_results(results: &[ResultLine]) -> Result<(), JobError> {
    let mut w = BufWriter::new(std::io::stdout().lock());
    result_lines(&mut w, results)
        .map_err(|e| JobError::runtime(format!("cannot write the output: {e}")))
}

/// Writes the result lines to a new temporary file beside `out`, syncs it and renames it
/// over `out` (see [`crate::io::output`]); on failure `out` is untouched.
fn write_results(out: &Path, results: &[ResultLine]) -> Result<(), JobError> {
    let mut staged = Staged::new(out).map_err(output_error)?;
    {
        let file = staged.file().map_err(output_error)?;
        let mut w = BufWriter::new(file);
        let written = result_lines(&mut w, results);
        drop(w);
        written.map_err(|e| output_error(staged.error(e)))?;
    }
    staged.commit().map_err(output_error)
}
