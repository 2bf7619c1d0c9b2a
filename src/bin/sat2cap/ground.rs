//! `sat2cap ground`: the ground-level photos an overhead tile predicts.

use std::path::PathBuf;

use clap::Args;
use sat2cap::query::filter::{Filter, Radius};

use crate::jobs_common::{print_matches, tile_query, ModelArgs};
use crate::CliError;

/// Overhead-to-ground lookup: the tile's Sat2Cap embedding against the ground collection.
#[derive(Args, Debug)]
#[command(
    after_help = "TILE_OR_ID: an id in the overhead collection, or an overhead image file.

Examples:
  sat2cap ground 12 --db my.db --radius-km 3
  sat2cap ground tiles/46.52_6.63.jpg --db my.db --k 5 --weights ~/sat2cap-weights"
)]
pub struct GroundArgs {
    /// Tile id or overhead image file.
    tile: String,
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Only photos within this many km of the tile's centre.
    #[arg(long)]
    radius_km: Option<f64>,
    /// Number of results.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Overhead collection.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Ground collection.
    #[arg(long, default_value = sat2cap::jobs::GROUND)]
    ground: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `ground`.
pub fn run(a: GroundArgs) -> Result<(), CliError> {
    let snap = sat2cap::jobs::open_snapshot(&a.db)?;
    let gv = sat2cap::jobs::collection(&snap, &a.ground)?;
    let (q, point) = tile_query(&a.tile, &snap, &a.collection, gv, &a.model)?;
    let mut filter = Filter::new();
    if let Some(r) = a.radius_km {
        let p = point.ok_or_else(|| {
            CliError::input("--radius-km needs the tile's place: give an id or a {lat}_{lon} file")
        })?;
        filter = filter.radius(
            Radius::new(p.lat(), p.lon(), r)
                .map_err(|e| CliError::input(format!("bad radius: {e}")))?,
        );
    }
    let hits = sat2cap::jobs::topk::top_k(gv, &q, a.k.max(1), &filter)?;
    print_matches(&hits, a.json)
}
