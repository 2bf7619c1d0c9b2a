//! `sat2cap ground`: the ground-level photos an overhead tile predicts.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::SearchJob;
use sat2cap::Filter;

use crate::jobs_common::{
    print_matches_as, run_search, tile_input, ModelArgs, OutputArgs, OutputFormat,
};
use crate::place_args::AreaArgs;
use crate::CliError;

/// Overhead-to-ground lookup: the tile's Sat2Cap embedding against the ground collection.
#[derive(Args, Debug)]
#[command(
    after_help = "TILE_OR_ID: an id in the overhead collection, or an overhead image file.

Examples:
  sat2cap ground 12 --db my.db --radius-km 3
  sat2cap ground 12 --db my.db --between 2023-06-01 2023-08-31 --format geojson
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
    #[arg(long, default_value_t = 5, value_parser = crate::k_value)]
    k: usize,
    /// Overhead collection.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Ground collection.
    #[arg(long, default_value = sat2cap::jobs::GROUND)]
    ground: String,
    #[command(flatten)]
    area: AreaArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `ground`.
pub fn run(a: GroundArgs) -> Result<(), CliError> {
    let format = a.output.format();
    let snap = crate::open_snapshot(&a.db)?;
    let job = SearchJob {
        collection: a.ground,
        query: tile_input(&a.tile, &a.collection)?,
        filter: a.area.add_to(Filter::new())?,
        near_query_km: a.radius_km,
        k: a.k,
        holds: Some(sat2cap::jobs::EncoderKind::ClipImage),
    };
    let hits = run_search(&snap, &job, &a.model, format != OutputFormat::Table)?;
    print_matches_as(&hits, format)
}
