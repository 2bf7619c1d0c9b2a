//! `sat2cap info`: what a database holds.

use std::path::PathBuf;

use clap::Args;
use sat2cap::index::hnsw::SECTION_KIND;
use sat2cap::Db;
use serde_json::json;

use crate::CliError;

/// Show the collections, their sizes and segments (read-only; takes no lock).
#[derive(Args)]
#[command(after_help = "Example:\n  sat2cap info --db ./db --json")]
pub struct InfoArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: InfoArgs) -> Result<(), CliError> {
    let snap = Db::open_snapshot(&a.db).map_err(CliError::runtime)?;
    let mut cols = Vec::new();
    for name in snap.collection_names() {
        let c = snap.collection(name).map_err(CliError::runtime)?;
        let segs: Vec<_> = c
            .segments()
            .iter()
            .map(|s| {
                json!({
                    "file": s.file(),
                    "generation": s.generation(),
                    "rows": s.len(),
                    "live": s.live_len(),
                    "bytes": s.file_len(),
                    "graph": s.section(SECTION_KIND).is_some(),
                })
            })
            .collect();
        cols.push(json!({
            "name": name,
            "dim": c.dim(),
            "live": c.len(),
            "segments": segs,
            "tombstone_sets": c.tombstones().len(),
        }));
    }
    if a.json {
        let v = json!({ "generation": snap.generation(), "collections": cols });
        println!("{v}");
        return Ok(());
    }
    println!("generation {}", snap.generation());
    for c in &cols {
        println!(
            "collection {}: dim {}, {} live items, {} segments, {} tombstone sets",
            c["name"].as_str().unwrap_or(""),
            c["dim"],
            c["live"],
            c["segments"].as_array().map_or(0, Vec::len),
            c["tombstone_sets"]
        );
        for s in c["segments"].as_array().into_iter().flatten() {
            println!(
                "  {}: generation {}, {} rows ({} live), {} bytes, graph: {}",
                s["file"].as_str().unwrap_or(""),
                s["generation"],
                s["rows"],
                s["live"],
                s["bytes"],
                s["graph"]
            );
        }
    }
    Ok(())
}
