//! `sat2cap compact`: merge each collection's segments into one (rebuilding its graph).

use std::path::PathBuf;

use clap::Args;
use sat2cap::{OpenOptions, Progress, Unit};

use crate::output::out;
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Merge the segments of one collection (or of every collection) into one, dropping
/// deleted and replaced rows, and rebuild the HNSW graph.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap compact --db ./db --collection places
  sat2cap compact --db ./db --json   # [{collection, generation, rows}]")]
pub struct CompactArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Only this collection (default: all).
    #[arg(long)]
    collection: Option<String>,
    /// Print what was compacted as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: CompactArgs) -> Result<(), CliError> {
    let mut db = crate::open_db(&a.db, OpenOptions::read_write())?;
    let names: Vec<String> = match a.collection {
        Some(c) => {
            sat2cap::jobs::collection(&db.snapshot(), &c)?;
            vec![c]
        }
        None => db
            .snapshot()
            .collection_names()
            .map(str::to_string)
            .collect(),
    };
    let snap = db.snapshot();
    let rows: Vec<u64> = names
        .iter()
        .map(|n| snap.collection(n).map_or(0, |c| c.len() as u64))
        .collect();
    drop(snap);
    let bars = Bars::new(Notes::Stdout);
    bars.begin("compact", Some(rows.iter().sum()), Unit::Rows);
    let mut done = Vec::new();
    for (n, r) in names.iter().zip(rows) {
        let g = db.compact(n).map_err(CliError::runtime)?;
        crate::output::committed(format!("the compaction of '{n}'"));
        bars.advance(r);
        done.push(serde_json::json!({"collection": n, "generation": g, "rows": r}));
        if !a.json {
            bars.note(&format!("compacted '{n}': {r} rows (generation {g})"));
        }
    }
    bars.end();
    if a.json {
        out!("{}", serde_json::Value::Array(done));
    }
    Ok(())
}
