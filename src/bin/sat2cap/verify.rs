//! `sat2cap verify`: check every byte of every file.

use std::path::PathBuf;

use clap::Args;

use crate::output::out;
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Check the manifest, tombstones and every segment: checksums of every section, format
/// invariants (ids increasing, valid points, finite unit-length vectors, payload offsets),
/// the HNSW graph sections and the int8 copy against the vectors it copies. Exits 1 on the
/// first failure.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap verify --db ./db
  sat2cap verify --db ./db --json    # {ok, generation, segments, rows}")]
pub struct VerifyArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Print the result as JSON (a failure is still one line on stderr, exit 1).
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: VerifyArgs) -> Result<(), CliError> {
    let snap = crate::open_snapshot(&a.db)?;
    let r = snap
        .verify(&Bars::new(Notes::Stderr))
        .map_err(CliError::runtime)?;
    if a.json {
        out!(
            "{}",
            serde_json::json!({
                "ok": true,
                "generation": r.generation,
                "segments": r.segments,
                "rows": r.rows,
            })
        );
        return Ok(());
    }
    out!(
        "ok: generation {}, {} segments, {} rows",
        r.generation,
        r.segments,
        r.rows
    );
    Ok(())
}
