//! `sat2cap demo`: the end-to-end demo on a synthetic region (or the user's tiles).

use std::path::PathBuf;

use clap::Args;
use sat2cap::encoders::{DeviceChoice, Precision};
use sat2cap::jobs::{run_demo, DemoOptions, ModelOptions};

use crate::jobs_common::{print_json, tiny_requested, weights_dir, RANDOM_NOTE};
use crate::output::out;
use crate::progress::{Bars, Notes};
use crate::CliError;

/// Runs the whole pipeline on a synthetic region over Lausanne: render, encode, store, map,
/// search, overhead-to-ground lookup; prints a timing table. No weights or network needed.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  sat2cap demo                          # random encoders, writes ./demo-out
  sat2cap demo --weights ~/sat2cap-weights --out /tmp/demo
  sat2cap demo --tiles my_tiles/        # your {lat}_{lon}.jpg or z/x/y.png tiles
  sat2cap demo --json > report.json     # {model, db, map, timings, seconds}; text on stderr")]
pub struct DemoArgs {
    /// Output folder (database in OUT/demo.db, replaced each run; map in OUT/map.*).
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Weights folder (default: $SAT2CAP_WEIGHTS; without: seeded random encoders).
    #[arg(long, value_name = "DIR")]
    weights: Option<PathBuf>,
    /// Your own overhead tiles instead of the synthetic region.
    #[arg(long, value_name = "DIR")]
    tiles: Option<PathBuf>,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Synthetic grid side (tiles per row / column).
    #[arg(long, default_value_t = 8, hide = true, value_parser = clap::value_parser!(u32).range(2..=64))]
    grid: u32,
    /// Synthetic tile side in pixels.
    #[arg(long, default_value_t = 800, hide = true, value_parser = clap::value_parser!(u32).range(32..=2048))]
    tile_px: u32,
    /// Print the report (model, database, map files, timings) as JSON on stdout; the
    /// narration goes to stderr.
    #[arg(long)]
    json: bool,
}

/// Runs `demo`.
pub fn run(a: DemoArgs) -> Result<(), CliError> {
    let weights = weights_dir(a.weights.as_deref());
    let random = weights.is_none();
    let opts = DemoOptions {
        out: a.out,
        model: ModelOptions {
            weights,
            random,
            tiny: tiny_requested(),
            device: a.device,
            precision: Precision::F32,
            ..ModelOptions::default()
        },
        tiles: a.tiles,
        grid: a.grid,
        tile_px: a.tile_px,
    };
    let start = std::time::Instant::now();
    let json = a.json;
    let notes = Bars::new(if json {
        Notes::StderrPlain
    } else {
        Notes::Stdout
    });
    if random {
        sat2cap::Progress::note(&notes, RANDOM_NOTE);
    }
    let report = run_demo(&opts, &notes)?;
    if json {
        return print_json(&serde_json::json!({
            "model": report.model.to_string(),
            "db": report.db.display().to_string(),
            "map": report.map,
            "timings": report.timings,
            "seconds": start.elapsed().as_secs_f64(),
        }));
    }
    out!("");
    out!("| step | items | seconds | items/s |");
    out!("|---|---:|---:|---:|");
    for t in &report.timings {
        let rate = if t.items > 0 && t.seconds > 0.0 {
            format!("{:.1}", t.items as f64 / t.seconds)
        } else {
            "-".into()
        };
        out!("| {} | {} | {:.2} | {rate} |", t.step, t.items, t.seconds);
    }
    out!("| total | | {:.2} | |", start.elapsed().as_secs_f64());
    out!("");
    out!(
        "database: {}   model: {}",
        report.db.display(),
        report.model
    );
    Ok(())
}
