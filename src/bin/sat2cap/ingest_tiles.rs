//! `sat2cap ingest-tiles`: overhead tiles -> Sat2Cap embeddings.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{ingest_tiles, TileOptions};

use crate::jobs_common::{bars, IngestArgs};
use crate::CliError;

/// Encodes overhead tiles with Sat2Cap and stores them with centre, footprint and time.
#[derive(Args, Debug)]
#[command(
    after_help = "Tiles: {lat}_{lon}.(jpg|png) (reference naming; footprint = --tile-deg or the
smallest spacing between tiles) or an XYZ folder z/x/y.(jpg|png) (web-mercator bounds).
Payload: {\"path\", \"footprint\": [W,S,E,N], \"key\"}. One commit at the end.
A tile's key is its path under DIR without extension ({lat}_{lon} or z/x/y): tiles already
in the collection are skipped (\"N already present, skipped\"); --replace re-encodes them.
The collection records the model that made it; another model is refused (--force-model).

Examples:
  sat2cap ingest-tiles tiles/ --db my.db --weights ~/sat2cap-weights
  sat2cap ingest-tiles xyz/ --db my.db --datetime 2023-06-21T12:00:00 --random-weights
  sat2cap ingest-tiles tiles/ --db my.db --weights ~/sat2cap-weights --replace --json"
)]
pub struct IngestTilesArgs {
    /// Folder of tiles.
    dir: PathBuf,
    /// Collection.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Capture time stored with the tiles (e.g. 2023-06-21T12:00:00, or with a UTC offset:
    /// 2023-06-21T14:00:00+02:00). Time filters compare the instant; maps at the tiles' own
    /// time give the dynamic encoder the local date and hour as written.
    #[arg(long)]
    datetime: Option<String>,
    /// Footprint side in degrees for {lat}_{lon} names.
    #[arg(long)]
    tile_deg: Option<f64>,
    #[command(flatten)]
    common: IngestArgs,
}

/// Runs `ingest-tiles`.
pub fn run(a: IngestTilesArgs) -> Result<(), CliError> {
    let time = crate::parse_datetime(a.datetime.as_deref())?;
    let (time, wall) = (time.map(|(t, _)| t), time.map(|(_, w)| w));
    if !a.dir.is_dir() {
        return Err(CliError::input(format!(
            "tile folder {} does not exist",
            a.dir.display()
        )));
    }
    if let Some(d) = a
        .tile_deg
        .filter(|d| !(d.is_finite() && (1e-6..=10.0).contains(d)))
    {
        return Err(CliError::input(format!(
            "--tile-deg {} outside [1e-6, 10]",
            // Tiny and huge values in scientific notation, as they were most likely typed.
            if d != 0.0 && !(1e-4..1e6).contains(&d.abs()) {
                format!("{d:e}")
            } else {
                d.to_string()
            }
        )));
    }
    let opts = TileOptions {
        common: a.common.flags.options(a.collection),
        time,
        wall,
        tile_deg: a.tile_deg,
        part: None,
    };
    let r = a
        .common
        .run(|model, db| ingest_tiles(db, model, &a.dir, &opts, &bars()))?;
    a.common.finish(&r, "tiles")
}
