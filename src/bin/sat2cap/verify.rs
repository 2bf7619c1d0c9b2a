//! `sat2cap verify`: check every byte of every file.

use std::path::PathBuf;

use clap::Args;
use sat2cap::index::hnsw::{GraphView, SECTION_KIND};

use crate::progress::bytes_bar;
use crate::CliError;

/// Check the manifest, tombstones and every segment: checksums of every section, format
/// invariants (ids increasing, valid points, finite vectors, payload offsets) and the HNSW
/// graph sections. Exits 1 on the first failure.
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
    let total: u64 = snap
        .collection_names()
        .filter_map(|n| snap.collection(n).ok())
        .flat_map(|c| c.segments().iter().map(|s| s.file_len()))
        .sum();
    let pb = bytes_bar("verify", total);
    let (mut segs, mut rows) = (0usize, 0usize);
    for name in snap.collection_names() {
        let c = snap.collection(name).map_err(CliError::runtime)?;
        for s in c.segments() {
            s.segment().verify().map_err(CliError::runtime)?;
            pb.inc(s.file_len());
            if let Some(bytes) = s.section(SECTION_KIND) {
                let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
                GraphView::parse(bytes, n)
                    .map_err(|e| CliError::runtime(format!("{}: graph section: {e}", s.file())))?;
            }
            segs += 1;
            rows += s.len();
        }
    }
    pb.finish_and_clear();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "generation": snap.generation(),
                "segments": segs,
                "rows": rows,
            })
        );
        return Ok(());
    }
    println!(
        "ok: generation {}, {segs} segments, {rows} rows",
        snap.generation()
    );
    Ok(())
}
