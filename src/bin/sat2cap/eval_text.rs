//! `sat2cap eval-text-retrieval`: caption <-> image retrieval, R@1/5/10 and median rank.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{eval_text_retrieval, TextEvalOptions};

use crate::jobs_common::{bars, print_json, ModelArgs};
use crate::output::{note, out};
use crate::CliError;

/// Each caption queries the gallery of paired images (text -> image) and each image the
/// gallery of captions (image -> text); the rank of the true pair gives recall@1/5/10 and
/// the median rank (average rank among ties).
#[derive(Args, Debug)]
#[command(
    after_help = "pairs.csv: header image,caption; paths relative to the CSV's folder (a path leading
outside it is skipped unless --allow-outside). Images are ground-level photos (CLIP), or
overhead tiles (Sat2Cap) with --overhead. A bad row or image drops that pair, reported.

Examples:
  sat2cap eval-text-retrieval --pairs captions.csv --weights w
  sat2cap eval-text-retrieval --pairs tiles.csv --overhead --gallery 1000 --json --random-weights"
)]
pub struct EvalTextArgs {
    /// CSV of image,caption pairs.
    #[arg(long)]
    pairs: PathBuf,
    /// Gallery size (the first N valid pairs).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    gallery: u64,
    /// The images are overhead tiles.
    #[arg(long)]
    overhead: bool,
    /// Allow image paths leading outside the CSV's folder.
    #[arg(long)]
    allow_outside: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `eval-text-retrieval`.
pub fn run(a: EvalTextArgs) -> Result<(), CliError> {
    let opts = TextEvalOptions {
        pairs: a.pairs.clone(),
        gallery: usize::try_from(a.gallery).unwrap_or(usize::MAX),
        overhead: a.overhead,
        allow_outside: a.allow_outside,
    };
    let r = eval_text_retrieval(|| Ok(a.model.load(a.json)?), &opts, &bars())?;
    if a.json {
        return print_json(&r);
    }
    if !r.skipped.is_empty() {
        note!("note: {} pairs left out (listed above)", r.skipped.len());
    }
    let n = r.text_to_image.gallery;
    out!("gallery {n} | queries {n} | ranks: average among ties");
    out!("| direction | R@1 | R@5 | R@10 | median rank |");
    out!("|---|---:|---:|---:|---:|");
    for (d, m) in [
        ("text -> image", &r.text_to_image),
        ("image -> text", &r.image_to_text),
    ] {
        out!(
            "| {d} | {:.3} | {:.3} | {:.3} | {} |",
            m.r_at_1,
            m.r_at_5,
            m.r_at_10,
            m.median_rank
        );
    }
    Ok(())
}
