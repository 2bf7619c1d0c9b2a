//! `sat2cap eval-retrieval`: overhead -> ground retrieval, R@1/5/10 and median rank.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{eval_retrieval, EvalOptions};

use crate::jobs_common::{bars, print_json, ModelArgs};
use crate::output::{note, out};
use crate::CliError;

/// Each overhead tile queries a gallery of the paired ground photos; the rank of its own pair
/// gives recall@1/5/10 and the median rank, without and (when the dynamic encoder is loaded
/// and the rows carry lat, lon, datetime) with metadata.
#[derive(Args, Debug)]
#[command(
    after_help = "pairs.csv: header overhead,ground[,lat,lon,datetime]; paths relative to the CSV's
folder; a path leading outside it is skipped unless --allow-outside. A bad row or
unreadable image drops that pair (reported with its CSV line); the rest go on.

Examples:
  sat2cap eval-retrieval --pairs pairs.csv --weights ~/sat2cap-weights
  sat2cap eval-retrieval --pairs demo-out/pairs.csv --gallery 64 --random-weights --json"
)]
pub struct EvalArgs {
    /// CSV of pairs.
    #[arg(long)]
    pairs: PathBuf,
    /// Gallery size (the first N valid pairs).
    #[arg(long, default_value_t = 10_000)]
    gallery: usize,
    /// Allow image paths leading outside the CSV's folder (`../`, absolute, symlinks out).
    #[arg(long)]
    allow_outside: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `eval-retrieval`.
pub fn run(a: EvalArgs) -> Result<(), CliError> {
    if a.gallery == 0 {
        return Err(CliError::input("--gallery must be at least 1"));
    }
    let opts = EvalOptions {
        pairs: a.pairs.clone(),
        gallery: a.gallery,
        allow_outside: a.allow_outside,
    };
    let r = eval_retrieval(|| Ok(a.model.load(a.json)?), &opts, &bars())?;
    if a.json {
        return print_json(&r.rows);
    }
    if let Some(why) = &r.no_metadata_row {
        note!("note: {why}: only the no-metadata row is printed");
    }
    let n = r.rows.first().map_or(0, |row| row.metrics.gallery);
    out!("gallery {n} | queries {n}");
    out!("| metadata | R@1 | R@5 | R@10 | median rank |");
    out!("|---|---:|---:|---:|---:|");
    for row in &r.rows {
        let m = &row.metrics;
        out!(
            "| {} | {:.3} | {:.3} | {:.3} | {} |",
            if row.metadata { "yes" } else { "no" },
            m.r_at_1,
            m.r_at_5,
            m.r_at_10,
            m.median_rank
        );
    }
    Ok(())
}
