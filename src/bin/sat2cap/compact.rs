//! `sat2cap compact`: merge each collection's segments into one (rebuilding its graph).

use std::path::PathBuf;

use clap::Args;
use sat2cap::{default_db_options, Db};

use crate::CliError;

/// Merge the segments of one collection (or of every collection) into one, dropping
/// deleted and replaced rows, and rebuild the HNSW graph.
#[derive(Args)]
#[command(after_help = "Example:\n  sat2cap compact --db ./db --collection places")]
pub struct CompactArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Only this collection (default: all).
    #[arg(long)]
    collection: Option<String>,
}

/// Runs the command.
pub fn run(a: CompactArgs) -> Result<(), CliError> {
    let mut db = Db::open_with(&a.db, default_db_options()).map_err(CliError::runtime)?;
    let names: Vec<String> = match a.collection {
        Some(c) => {
            db.snapshot().collection(&c).map_err(CliError::input)?;
            vec![c]
        }
        None => db
            .snapshot()
            .collection_names()
            .map(str::to_string)
            .collect(),
    };
    for n in names {
        let g = db.compact(&n).map_err(CliError::runtime)?;
        eprintln!("compacted '{n}' (generation {g})");
    }
    Ok(())
}
