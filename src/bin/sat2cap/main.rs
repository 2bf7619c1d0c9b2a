//! The `sat2cap` command-line tool: one module per command.
//!
//! Exit codes (also in every command's `--help`, the table in docs/RELIABILITY.md): 0
//! success, 1 a runtime failure (I/O, full disk, closed pipe, corrupt file, locked database),
//! 2 bad usage or bad input (clap's own code for usage errors).

use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sat2cap::jobs::JobError;
use sat2cap::{Db, OpenError, OpenOptions};

#[cfg(feature = "encoders")]
mod classify;
mod compact;
#[cfg(feature = "encoders")]
mod demo;
#[cfg(feature = "encoders")]
mod describe;
#[cfg(feature = "encoders")]
mod eval_retrieval;
#[cfg(feature = "encoders")]
mod eval_text;
mod export;
#[cfg(feature = "encoders")]
mod ground;
mod import;
mod info;
#[cfg(feature = "encoders")]
mod ingest_ground;
#[cfg(feature = "encoders")]
mod ingest_raster;
#[cfg(feature = "encoders")]
mod ingest_text;
#[cfg(feature = "encoders")]
mod ingest_tiles;
#[cfg(feature = "encoders")]
mod jobs_common;
#[cfg(feature = "encoders")]
mod map;
mod output;
mod place_args;
mod progress;
mod query;
#[cfg(feature = "encoders")]
mod search;
mod verify;

/// An embedded database for Sat2Cap embeddings, with its encoders built in.
#[derive(Parser)]
#[command(name = "sat2cap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Import(import::ImportArgs),
    Export(export::ExportArgs),
    Query(query::QueryArgs),
    Info(info::InfoArgs),
    Verify(verify::VerifyArgs),
    Compact(compact::CompactArgs),
    /// The end-to-end demo on a synthetic region (no weights or network needed).
    #[cfg(feature = "encoders")]
    Demo(demo::DemoArgs),
    /// Encode overhead tiles (Sat2Cap) into a collection.
    #[cfg(feature = "encoders")]
    IngestTiles(ingest_tiles::IngestTilesArgs),
    /// Cut GeoTIFF / COG scenes into chips and encode them (Sat2Cap).
    #[cfg(feature = "encoders")]
    IngestRaster(ingest_raster::IngestRasterArgs),
    /// Encode ground-level photos (CLIP) listed in a CSV.
    #[cfg(feature = "encoders")]
    IngestGround(ingest_ground::IngestGroundArgs),
    /// Encode a caption bank (CLIP text), one caption per line.
    #[cfg(feature = "encoders")]
    IngestText(ingest_text::IngestTextArgs),
    /// Top-k by text, image, vector or examples, with place and time filters.
    #[cfg(feature = "encoders")]
    Search(search::SearchArgs),
    /// Zero-shot map of prompts over a region (PNG, GeoJSON, CSV, world file).
    #[cfg(feature = "encoders")]
    Map(map::MapArgs),
    /// The ground-level photos an overhead tile predicts.
    #[cfg(feature = "encoders")]
    Ground(ground::GroundArgs),
    /// The captions closest to an overhead tile.
    #[cfg(feature = "encoders")]
    Describe(describe::DescribeArgs),
    /// Overhead <-> ground retrieval: R@1/5/10 and median rank, both directions.
    #[cfg(feature = "encoders")]
    EvalRetrieval(eval_retrieval::EvalArgs),
    /// Zero-shot classification of overhead tiles against a label list.
    #[cfg(feature = "encoders")]
    Classify(classify::ClassifyArgs),
    /// Zero-shot classification accuracy over a CSV of labelled tiles.
    #[cfg(feature = "encoders")]
    EvalClassify(classify::EvalClassifyArgs),
    /// Caption <-> image retrieval: R@1/5/10 and median rank, both directions.
    #[cfg(feature = "encoders")]
    EvalTextRetrieval(eval_text::EvalTextArgs),
}

/// A failure a command reports: a one-line message and an exit code.
pub struct CliError {
    /// The message, printed as `sat2cap: <message>`.
    pub message: String,
    /// The process exit code.
    pub code: u8,
}

impl CliError {
    /// A runtime failure (exit code 1).
    pub fn runtime(message: impl std::fmt::Display) -> CliError {
        CliError {
            message: message.to_string(),
            code: 1,
        }
    }

    /// Bad input from the user (exit code 2).
    pub fn input(message: impl std::fmt::Display) -> CliError {
        CliError {
            message: message.to_string(),
            code: 2,
        }
    }
}

/// Appended to the help of the tool and of every command.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 runtime failure (I/O, full disk, closed \
pipe, corrupt or locked database, encoder failure); 2 bad usage or bad input (unknown flag, \
flag out of range, missing file, bad value, unknown collection, model mismatch, an output that \
is a link, FIFO, device or folder).";

impl From<JobError> for CliError {
    fn from(e: JobError) -> CliError {
        match e {
            JobError::Input(m) => CliError::input(m),
            JobError::ModelMismatch { message, forceable } => CliError::input(if forceable {
                format!(
                    "{message} (--force-model records this model for it, only for weights known \
                     to be the same model)"
                )
            } else {
                message
            }),
            e => CliError::runtime(e),
        }
    }
}

impl From<CliError> for JobError {
    /// For a job's loader: bad input stays bad input, the rest is a runtime failure.
    fn from(e: CliError) -> JobError {
        match e.code {
            2 => JobError::Input(e.message),
            _ => JobError::Runtime(e.message),
        }
    }
}

/// Opens the database in `path` as `opts` says, with the library's own message on failure:
/// a missing database is bad input (2), anything else a runtime failure (1).
pub fn open_db(path: &Path, opts: OpenOptions) -> Result<Db, CliError> {
    Db::open(path, opts).map_err(|e| match e {
        OpenError::NotFound { .. }
        | OpenError::NotADatabase { .. }
        | OpenError::NotAFolder { .. }
        | OpenError::DanglingLink { .. } => CliError::input(e),
        e => CliError::runtime(e),
    })
}

/// The latest snapshot of the database in `path`, opened read-only (no lock).
pub fn open_snapshot(path: &Path) -> Result<sat2cap::Snapshot, CliError> {
    Ok(open_db(path, OpenOptions::read_only())?.snapshot())
}

/// `--k`: the number of results, at least 1 (more than a collection holds returns all of
/// it). One rule in every command.
pub fn k_value(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(k) => Ok(k),
        Err(e) => Err(format!("{e} (expected a whole number >= 1)")),
    }
}

/// `--ef`: the graph beam width, in `1..=65536` (raised to k by the search).
pub fn ef_value(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(ef) if (1..=sat2cap::MAX_EF).contains(&ef) => Ok(ef),
        Ok(_) => Err(format!("must be in 1..={}", sat2cap::MAX_EF)),
        Err(e) => Err(format!(
            "{e} (expected a whole number in 1..={})",
            sat2cap::MAX_EF
        )),
    }
}

/// Parses a walk effort: a number in `(0, MAX_EFFORT]` ([`sat2cap::effort_valid`]).
pub fn effort_value(s: &str) -> Result<f32, String> {
    let range = format!("a number in (0, {}]", sat2cap::MAX_EFFORT);
    match s.parse::<f32>() {
        Ok(e) if sat2cap::effort_valid(e) => Ok(e),
        Ok(_) => Err(format!("must be {range}")),
        Err(e) => Err(format!("{e} (expected {range})")),
    }
}

/// Parses `W,S,E,N` into a box (degrees; west > east crosses the antimeridian).
pub fn parse_bbox(s: &str) -> Result<sat2cap::BBox, CliError> {
    let v = parse_floats(s, 4, "--bbox W,S,E,N")?;
    sat2cap::BBox::new(v[0], v[1], v[2], v[3])
        .map_err(|e| CliError::input(format!("bad --bbox '{s}': {e}")))
}

/// Parses `--datetime` (see `sat2cap::time::parse` for the forms): the instant and the
/// local wall-clock time as written (`sat2cap::time::parse_wall`).
#[cfg(feature = "encoders")]
pub fn parse_datetime(s: Option<&str>) -> Result<Option<(i64, sat2cap::time::DateTime)>, CliError> {
    s.map(sat2cap::time::parse_wall)
        .transpose()
        .map_err(|e| CliError::input(format!("bad --datetime: {e}")))
}

fn parse_floats(s: &str, n: usize, what: &str) -> Result<Vec<f64>, CliError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != n {
        return Err(CliError::input(format!(
            "expected {what} ({n} comma-separated numbers), got '{s}' ({} values)",
            parts.len()
        )));
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| match p.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            Ok(_) => Err(CliError::input(format!(
                "{what}: value {} ('{p}') is not a finite number",
                i + 1
            ))),
            Err(_) => Err(CliError::input(format!(
                "{what}: value {} ('{p}') is not a number",
                i + 1
            ))),
        })
        .collect()
}

/// Errors and generated captions are printed through the library's escaper (one line, no
/// terminal escape sequence).
pub(crate) use sat2cap::jobs::one_line;

/// Sizes the shared worker pool: all cores, or `RAYON_NUM_THREADS` when it is set, which must
/// then be in 1..=4 x the cores (a typo there must not start thousands of threads).
fn thread_pool() -> Result<(), CliError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = match std::env::var("RAYON_NUM_THREADS") {
        Err(_) => cores,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=4 * cores).contains(&n) => n,
            _ => {
                return Err(CliError::input(format!(
                "RAYON_NUM_THREADS={v:?}: must be a whole number in 1..={} (4 x the {cores} cores)",
                4 * cores
            )))
            }
        },
    };
    // Fails only when a pool exists already, which then is the one used.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    Ok(())
}

/// A database file is read through a memory map: when another process truncates it while
/// this one reads, the read is a bus error (SIGBUS), which would kill the process without a
/// word. This handler says what happened in one line and exits 1 (a runtime failure);
/// nothing the command was writing is left half-done (outputs are staged, commits are
/// atomic).
#[cfg(unix)]
fn on_bus_error() {
    extern "C" fn handler(_: libc::c_int) {
        const MSG: &[u8] = b"sat2cap: a database file was truncated or replaced by another \
process while this one read it (bus error); run `sat2cap verify` once it is quiet\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe; MSG is a static buffer.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(1);
        }
    }
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid; the
    // handler only calls async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    on_bus_error();
    let cmd = Cli::command().after_help(EXIT_CODES).mut_subcommands(|sc| {
        let help = match sc.get_after_help() {
            Some(h) => format!("{h}\n\n{EXIT_CODES}"),
            None => EXIT_CODES.to_string(),
        };
        // `--k -1` reaches the flag's own check, which names it, instead of reading as an
        // unknown flag `-1`.
        sc.after_help(help).allow_negative_numbers(true)
    });
    let parsed = cmd
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        // Help and version go to stdout: a failed write there is exit 1, like any output.
        Err(e) if !e.use_stderr() => {
            let text = e.render().to_string();
            output::line(text.trim_end_matches('\n'));
            return match output::finish() {
                Ok(()) => ExitCode::SUCCESS,
                Err(m) => {
                    output::err_line(&format!("sat2cap: {m}"));
                    ExitCode::from(1)
                }
            };
        }
        Err(e) => e.exit(),
    };
    let result: Result<(), CliError> = thread_pool().and_then(|()| match cli.command {
        Command::Import(a) => import::run(a),
        Command::Export(a) => export::run(a),
        Command::Query(a) => query::run(a),
        Command::Info(a) => info::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Compact(a) => compact::run(a),
        #[cfg(feature = "encoders")]
        Command::Demo(a) => demo::run(a),
        #[cfg(feature = "encoders")]
        Command::IngestTiles(a) => ingest_tiles::run(a),
        #[cfg(feature = "encoders")]
        Command::IngestRaster(a) => ingest_raster::run(a),
        #[cfg(feature = "encoders")]
        Command::IngestGround(a) => ingest_ground::run(a),
        #[cfg(feature = "encoders")]
        Command::IngestText(a) => ingest_text::run(a),
        #[cfg(feature = "encoders")]
        Command::Search(a) => search::run(a),
        #[cfg(feature = "encoders")]
        Command::Map(a) => map::run(a),
        #[cfg(feature = "encoders")]
        Command::Ground(a) => ground::run(a),
        #[cfg(feature = "encoders")]
        Command::Describe(a) => describe::run(a),
        #[cfg(feature = "encoders")]
        Command::EvalRetrieval(a) => eval_retrieval::run(a),
        #[cfg(feature = "encoders")]
        Command::Classify(a) => classify::run(a),
        #[cfg(feature = "encoders")]
        Command::EvalClassify(a) => classify::run_eval(a),
        #[cfg(feature = "encoders")]
        Command::EvalTextRetrieval(a) => eval_text::run(a),
    });
    let result = result.and_then(|()| output::finish().map_err(CliError::runtime));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::err_line(&format!("sat2cap: {}", one_line(&e.message)));
            ExitCode::from(e.code)
        }
    }
}
