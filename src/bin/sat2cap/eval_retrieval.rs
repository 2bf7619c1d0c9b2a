//! `sat2cap eval-retrieval`: overhead <-> ground retrieval, R@1/5/10 and median rank, both
//! directions.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{eval_retrieval, EvalOptions};

use crate::jobs_common::{bars, print_json, ModelArgs};
use crate::output::{note, out};
use crate::CliError;

/// Each overhead tile queries the gallery of the paired ground photos (overhead -> ground),
/// and each photo the gallery of tiles (ground -> overhead); the rank of the true pair
/// gives recall@1/5/10 and the median rank, without and (when the dynamic encoder is loaded
/// and the rows carry lat, lon, datetime, or --date-time gives the date) with metadata.
#[derive(Args, Debug)]
#[command(
    after_help = "pairs.csv: header overhead,ground[,lat,lon,datetime]; paths relative to the CSV's
folder; a path leading outside it is skipped unless --allow-outside. A bad row or
unreadable image drops that pair (reported with its CSV line); the rest go on.

Ranks: the average rank among gallery items that score the same (1 + higher + equal/2);
R@k counts pairs ranked at most k. Sat2Cap's Table 1 (mvrl/Sat2Cap metrics.py) reports
R@k overhead -> ground and the median rank ground -> overhead: the table marks them.
Times with a UTC offset give the dynamic encoder the local date and hour as written.

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
    /// Embed every pair at this date and hour (the reference's --date_time), each at its
    /// own lat, lon; e.g. 2012-06-15T14:00:00.
    #[arg(long)]
    date_time: Option<String>,
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
    let date_time = sat2cap::time::parse_wall_opt(a.date_time.as_deref())
        .map_err(|e| CliError::input(format!("bad --date-time: {e}")))?;
    let opts = EvalOptions {
        pairs: a.pairs.clone(),
        gallery: a.gallery,
        allow_outside: a.allow_outside,
        date_time,
    };
    let r = eval_retrieval(|| Ok(a.model.load(a.json)?), &opts, &bars())?;
    if a.json {
        return print_json(&r.rows);
    }
    if let Some(why) = &r.no_metadata_row {
        note!("note: {why}: only the no-metadata row is printed");
    }
    let n = r.rows.first().map_or(0, |row| row.metrics.gallery);
    out!("gallery {n} | queries {n} | ranks: average among ties");
    out!("| metadata | direction | R@1 | R@5 | R@10 | median rank |");
    out!("|---|---|---:|---:|---:|---:|");
    for row in &r.rows {
        let m = &row.metrics;
        // Table 1 of the paper: R@k from overhead -> ground, the median from ground -> overhead.
        let (r_mark, med_mark) = match row.direction {
            sat2cap::jobs::Direction::OverheadToGround => ("*", ""),
            sat2cap::jobs::Direction::GroundToOverhead => ("", "*"),
        };
        out!(
            "| {} | {} | {:.3}{r_mark} | {:.3}{r_mark} | {:.3}{r_mark} | {}{med_mark} |",
            if row.metadata { "yes" } else { "no" },
            row.direction,
            m.r_at_1,
            m.r_at_5,
            m.r_at_10,
            m.median_rank
        );
    }
    out!("* the figures Sat2Cap's Table 1 reports (R@k overhead -> ground, median rank ground -> overhead)");
    Ok(())
}
