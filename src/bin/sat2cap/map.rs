//! `sat2cap map`: zero-shot maps of one or more prompts over a region.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{map, Embedder, MapRequest};

use crate::jobs_common::{bars, print_json, ModelArgs};
use crate::output::out;
use crate::place_args::AreaArgs;
use crate::CliError;

/// Cosine of each prompt against every tile in the box, min-max scaled over the region:
/// PREFIX.tif (float32 COG of the scores), PREFIX.png (one panel per prompt / hour) with
/// PREFIX.pgw + .prj, PREFIX.geojson, PREFIX.csv; with --xyz a web map folder.
#[derive(Args, Debug)]
#[command(
    after_help = "With --datetime or --hours the tiles are re-encoded with the dynamic encoder
(needs Sat2Cap weights with geo_encoder.*; an error otherwise). --hours takes its date from
--datetime, else from each tile's stored time.

Examples:
  sat2cap map \"people fishing on a boat\" \"a busy street\" --db my.db \\
      --bbox 6.59,46.49,6.68,46.55 --out maps/lausanne --mosaic
  sat2cap map \"a crowded beach\" --db my.db --bbox 6.59,46.49,6.68,46.55 \\
      --datetime 2023-07-01T00:00:00 --hours 6,12,18 --out maps/beach --weights w/
  sat2cap map \"a marina\" --db my.db --aoi lake.geojson --out maps/lake --xyz maps/lake-web"
)]
pub struct MapArgs {
    /// One or more prompts (one panel each).
    #[arg(required = true)]
    prompts: Vec<String>,
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// The region (default: every tile): the tiles inside the box and the area of interest,
    /// taken in the time range.
    #[command(flatten)]
    area: AreaArgs,
    /// Date and time for the dynamic encoder.
    #[arg(long)]
    datetime: Option<String>,
    /// Hours of the day, comma-separated (one panel per prompt and hour).
    #[arg(long, value_delimiter = ',')]
    hours: Vec<u32>,
    /// Output prefix (PREFIX.tif, .png, .pgw, .prj, .geojson, .csv).
    #[arg(long)]
    out: PathBuf,
    /// Blend the colours over the tile images (paths from the payloads).
    #[arg(long)]
    mosaic: bool,
    /// Also write a web map into this folder: XYZ tiles of the scores (one layer per
    /// panel) and of the tile imagery, and index.html (Leaflet, vendored: opens offline).
    #[arg(long, value_name = "DIR")]
    xyz: Option<PathBuf>,
    /// Basemap of the web map: a tile URL template such as
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png or a local folder's tiles/{z}/{x}/{y}.png.
    #[arg(long, value_name = "URL", requires = "xyz")]
    basemap: Option<String>,
    /// Collection of tiles.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Print the written files as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `map`.
pub fn run(a: MapArgs) -> Result<(), CliError> {
    let region = a.area.add_to(sat2cap::Filter::new())?;
    // GeoNet takes the date and hour as written (the local wall clock), as Sat2Cap's.
    let time = crate::parse_datetime(a.datetime.as_deref())?.map(|(_, wall)| wall);
    if let Some(h) = a.hours.iter().find(|&&h| h > 23) {
        return Err(CliError::input(format!(
            "--hours: {h} is not an hour (0..=23)"
        )));
    }
    let snap = crate::open_snapshot(&a.db)?;
    sat2cap::jobs::collection(&snap, &a.collection)?;
    let dynamic = time.is_some() || !a.hours.is_empty();
    let (model, json) = (&a.model, a.json);
    let load = || {
        let m = model.load(json)?;
        if dynamic && !m.has_dynamic() {
            return Err(CliError::input(
                "--datetime/--hours need the dynamic encoder (geo_encoder.* in the Sat2Cap \
                 weights, see docs/ENCODERS.md); the loaded model has none",
            )
            .into());
        }
        Ok(m)
    };
    let req = MapRequest {
        collection: a.collection.clone(),
        prompts: a.prompts.clone(),
        region,
        time,
        hours: a.hours.clone(),
        out: a.out.clone(),
        mosaic: a.mosaic,
        web: a.xyz.clone(),
        basemap: a.basemap.clone(),
    };
    let r = map(&snap, load, &req, &bars())?;
    if a.json {
        return print_json(&r);
    }
    out!("{} tiles, {} panel(s): {}", r.tiles, r.panels, r.files);
    if let Some(w) = &r.web {
        out!("web map: {}", w.join("index.html").display());
    }
    Ok(())
}
