//! `sat2cap info`: what a database holds.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::ModelFingerprint;
use serde_json::json;

use crate::output::out;
use crate::CliError;

/// Show the collections, their sizes, the model that made each one's vectors, and their
/// segments (read-only; takes no lock).
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap info --db ./db
  sat2cap info --db ./db --json      # {generation, collections: [{name, dim, live, model, ...}]}")]
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
    let snap = crate::open_snapshot(&a.db)?;
    let mut cols = Vec::new();
    for name in snap.collection_names() {
        let c = snap.collection(name).map_err(CliError::runtime)?;
        let segs: Vec<_> = c
            .segments()
            .iter()
            .map(|s| {
                json!({
                    "file": s.file,
                    "generation": s.generation,
                    "rows": s.rows,
                    "live": s.live,
                    "bytes": s.bytes,
                    "graph": s.graph,
                    "int8": s.int8,
                })
            })
            .collect();
        // A property that is not a fingerprint is shown as an error string, not a failure:
        // `info` must work on any database it can open.
        let model = match ModelFingerprint::of(&c) {
            Ok(Some(m)) => json!({
                "encoder": m.encoder.name(),
                "dim": m.dim,
                "weights": m.weights,
                "clip": m.clip,
                "description": m.describe(),
            }),
            Ok(None) => serde_json::Value::Null,
            Err(e) => json!({ "error": e.to_string() }),
        };
        cols.push(json!({
            "name": name,
            "dim": c.dim(),
            "live": c.len(),
            "model": model,
            "properties": c.properties(),
            "segments": segs,
            "tombstone_sets": c.tombstone_sets(),
        }));
    }
    if a.json {
        let v = json!({ "generation": snap.generation(), "collections": cols });
        out!("{v}");
        return Ok(());
    }
    out!("generation {}", snap.generation());
    for c in &cols {
        out!(
            "collection {}: dim {}, {} live items, {} segments, {} tombstone sets",
            c["name"].as_str().unwrap_or(""),
            c["dim"],
            c["live"],
            c["segments"].as_array().map_or(0, Vec::len),
            c["tombstone_sets"]
        );
        let model = &c["model"];
        let line = if let Some(d) = model["description"].as_str() {
            d.to_string()
        } else if let Some(e) = model["error"].as_str() {
            e.to_string()
        } else {
            "not recorded (made before model fingerprints, or by `import`)".to_string()
        };
        out!("  model: {line}");
        for s in c["segments"].as_array().into_iter().flatten() {
            out!(
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
