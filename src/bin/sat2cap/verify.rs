//! `sat2cap verify`: check every byte of every file.

use std::path::PathBuf;

use clap::Args;
use sat2cap::index::hnsw::{GraphView, SECTION_KIND};
use sat2cap::Db;

use crate::CliError;

/// Check the manifest, tombstones and every segment: checksums of every section, format
/// invariants (ids increasing, valid points, finite vectors, payload offsets) and the HNSW
/// graph sections. Exits 1 on the first failure.
#[derive(Args)]
#[command(after_help = "Example:\n  sat2cap verify --db ./db")]
pub struct VerifyArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
}

/// Runs the command.
pub fn run(a: VerifyArgs) -> Result<(), CliError> {
    let snap = Db::open_snapshot(&a.db).map_err(CliError::runtime)?;
    snap.verify().map_err(CliError::runtime)?;
    let (mut segs, mut rows) = (0usize, 0usize);
    for name in snap.collection_names() {
        let c = snap.collection(name).map_err(CliError::runtime)?;
        for s in c.segments() {
            if let Some(bytes) = s.section(SECTION_KIND) {
                let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
                GraphView::parse(bytes, n)
                    .map_err(|e| CliError::runtime(format!("{}: graph section: {e}", s.file())))?;
            }
            segs += 1;
            rows += s.len();
        }
    }
    println!(
        "ok: generation {}, {segs} segments, {rows} rows",
        snap.generation()
    );
    Ok(())
}
