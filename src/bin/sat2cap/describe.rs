//! `sat2cap describe`: the captions of the caption bank closest to a tile, or (`--generate`)
//! captions written for it by ClipCap.

use std::path::PathBuf;

use clap::Args;
use sat2cap::encoders::GenerateOptions;
use sat2cap::jobs::{CaptionJob, CaptionModel, SearchJob};
use sat2cap::Filter;

use crate::jobs_common::{bars, print_json, run_search, tile_input, ModelArgs};
use crate::output::{note, out};
use crate::CliError;

/// Top-k captions (from `ingest-text`) for an overhead tile; with `--generate`, captions
/// generated for it by ClipCap instead (weights in `<weights>/clipcap/`: docs/ENCODERS.md).
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  sat2cap describe 12 --db my.db
  sat2cap describe tiles/46.52_6.63.jpg --db my.db --k 3 --json --weights ~/sat2cap-weights
  sat2cap describe 12 --db my.db --generate --weights ~/sat2cap-weights
  sat2cap describe 12 --db my.db --generate --beam 5 --max-tokens 30 --json")]
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
    /// Generate captions with ClipCap (greedy; `--beam N` for beam search) instead of
    /// looking them up in the caption bank.
    #[arg(long, conflicts_with_all = ["k", "captions"])]
    generate: bool,
    /// Beam search of width N (ClipCap's generate_beam: N captions, best first); without it,
    /// greedy decoding.
    #[arg(long, value_name = "N", requires = "generate",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    beam: Option<u64>,
    /// The most tokens per generated caption, the final "." included (ClipCap: 67).
    #[arg(long, value_name = "N", requires = "generate", default_value_t = 67,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    max_tokens: u64,
    /// Scale the tile's (unit) embedding to this L2 norm before the mapping network (for a
    /// mapper trained on raw CLIP embeddings; default: the model's config.json
    /// `prefix_norm`, else the unit vector as stored).
    #[arg(long, value_name = "X", requires = "generate", value_parser = positive)]
    prefix_norm: Option<f32>,
    #[command(flatten)]
    model: ModelArgs,
}

fn positive(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("expected a positive number".into()),
    }
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
    if a.generate {
        return generate(&a, &snap);
    }
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

/// `describe --generate`.
fn generate(a: &DescribeArgs, snap: &sat2cap::Snapshot) -> Result<(), CliError> {
    let tile = tile_input(&a.tile, &a.collection)?;
    if let sat2cap::jobs::QueryInput::TileId { from, .. } = &tile {
        sat2cap::jobs::collection(snap, from)?;
    }
    let opts = a.model.options()?;
    let embedder = if tile.needs_embedder() {
        Some(a.model.load(a.json)?)
    } else {
        None
    };
    let model = CaptionModel::load(&opts)?;
    if !a.json {
        note!("captioner: {}", model.describe());
    }
    if model.is_random() {
        note!(
            "note: the captioner has seeded RANDOM weights (no --weights DIR with clipcap/): \
             its captions show the pipeline, not meaning."
        );
    }
    let job = CaptionJob {
        tile,
        generate: GenerateOptions {
            beam: a.beam.map(|b| b as usize),
            max_tokens: a.max_tokens as usize,
        },
        prefix_norm: a.prefix_norm,
    };
    let embedder = embedder.as_ref().map(|m| m as &dyn sat2cap::jobs::Embedder);
    let report = sat2cap::jobs::generate_captions(snap, embedder, &model, &job, &bars())?;
    if a.json {
        return print_json(&report);
    }
    let label = if report.random {
        "  (RANDOM weights)"
    } else {
        ""
    };
    for (i, c) in report.captions.iter().enumerate() {
        let text = crate::one_line(&c.text);
        match c.score {
            Some(s) => out!("{:>2}. {s:>8.4}  {text}{label}", i + 1),
            None => out!("{text}{label}"),
        }
    }
    Ok(())
}
