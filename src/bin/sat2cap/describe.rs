//! `sat2cap describe`: the captions of the caption bank closest to a tile.

use std::path::PathBuf;

use clap::Args;
use sat2cap::query::filter::Filter;

use crate::jobs_common::{print_json, tile_query, ModelArgs};
use crate::CliError;

/// Top-k captions (from `ingest-text`) for an overhead tile.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  sat2cap describe 12 --db my.db
  sat2cap describe tiles/46.52_6.63.jpg --db my.db --k 3 --json --weights ~/sat2cap-weights")]
pub struct DescribeArgs {
    /// Tile id or overhead image file.
    tile: String,
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Number of captions.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Overhead collection.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Caption collection.
    #[arg(long, default_value = sat2cap::jobs::CAPTIONS)]
    captions: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(serde::Serialize)]
struct Caption {
    id: u64,
    score: f32,
    caption: String,
}

/// Runs `describe`.
pub fn run(a: DescribeArgs) -> Result<(), CliError> {
    let snap = sat2cap::jobs::open_snapshot(&a.db)?;
    let cv = sat2cap::jobs::collection(&snap, &a.captions)?;
    let (q, _) = tile_query(&a.tile, &snap, &a.collection, cv, &a.model)?;
    let hits = sat2cap::jobs::topk::top_k(cv, &q, a.k.max(1), &Filter::new())?;
    let caps: Vec<Caption> = hits
        .into_iter()
        .map(|h| Caption {
            id: h.id,
            score: h.score,
            caption: h
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|v| {
                    v.get("caption")
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default(),
        })
        .collect();
    if a.json {
        return print_json(&caps);
    }
    for (i, c) in caps.iter().enumerate() {
        println!("{:>2}. {:.4}  {}", i + 1, c.score, c.caption);
    }
    Ok(())
}
