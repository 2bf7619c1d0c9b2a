//! `sat2cap describe`: the captions of the caption bank closest to a tile.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::SearchJob;
use sat2cap::Filter;

use crate::jobs_common::{print_json, run_search, tile_input, ModelArgs};
use crate::output::out;
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
    #[arg(long, default_value_t = 5, value_parser = crate::k_value)]
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
    let snap = crate::open_snapshot(&a.db)?;
    let job = SearchJob {
        collection: a.captions,
        query: tile_input(&a.tile, &a.collection)?,
        filter: Filter::new(),
        near_query_km: None,
        k: a.k,
        holds: Some(sat2cap::jobs::EncoderKind::ClipText),
    };
    let hits = run_search(&snap, &job, &a.model, true)?;
    let caps: Vec<Caption> = hits
        .into_iter()
        .map(|h| Caption {
            id: h.id,
            score: h.score,
            caption: h.caption().unwrap_or_default(),
        })
        .collect();
    if a.json {
        return print_json(&caps);
    }
    for (i, c) in caps.iter().enumerate() {
        out!("{:>2}. {:.4}  {}", i + 1, c.score, c.caption);
    }
    Ok(())
}
