//! `sat2cap ingest-raster`: GeoTIFF / COG scenes -> chips -> Sat2Cap embeddings.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{ingest_raster, RasterOptions};

use crate::jobs_common::{bars, IngestArgs};
use crate::CliError;

/// Cuts GeoTIFF / COG scenes into chips and encodes each with Sat2Cap, stored with its
/// centre, footprint (in lon/lat) and pixel window.
#[derive(Args, Debug)]
#[command(
    after_help = "Scenes: GeoTIFF or Cloud-Optimized GeoTIFF (striped or tiled, any compression
the tiff crate reads, 8/16/32-bit integer or float bands, nodata from GDAL_NODATA) with a CRS
given by an EPSG code in its GeoKeys (WGS 84, Web Mercator, every UTM zone, and the rest of
the EPSG registry that proj4rs knows).

Chips are squares of --chip-px scene pixels (default 224, what the encoder takes), or of
224 x --gsd metres. Bands: --bands R,G,B (1-based; default 1,2,3, or 1 for one band).
8-bit scenes are used as they are; others are stretched per band between the 2nd and 98th
percentile of a sample of the scene, or mapped from --range MIN,MAX. Chips more than
--max-nodata nodata are skipped. The right and bottom margins narrower than a chip are
not covered (said in the report).

Payload: {\"path\": scene, \"window\": [col, row, w, h], \"crs\": \"EPSG:n\", \"footprint\":
[W,S,E,N] (lon/lat), \"key\"}. A chip's key is its scene and window: re-ingesting a scene
skips its chips (--replace re-encodes them). docs/IO.md has the rules.

Examples:
  sat2cap ingest-raster scene.tif --db my.db --weights ~/sat2cap-weights
  sat2cap ingest-raster s2_*.tif --db my.db --bands 4,3,2 --gsd 1.0 --weights w/
  sat2cap ingest-raster naip.tif --db my.db --range 0,3000 --max-nodata 0.2 --random-weights"
)]
pub struct IngestRasterArgs {
    /// GeoTIFF / COG files.
    #[arg(required = true)]
    scenes: Vec<PathBuf>,
    /// Collection.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Bands for red, green, blue (1-based), or one band for grey.
    #[arg(long, value_delimiter = ',', value_name = "R,G,B")]
    bands: Option<Vec<u16>>,
    /// Chip side in scene pixels.
    #[arg(long, value_name = "PX", conflicts_with = "gsd")]
    chip_px: Option<u32>,
    /// Metres per pixel the chips should have (the chip then covers 224 x GSD metres).
    #[arg(long, value_name = "M")]
    gsd: Option<f64>,
    /// Sample values mapped to black and white, every band.
    #[arg(long, value_name = "MIN,MAX", allow_hyphen_values = true)]
    range: Option<String>,
    /// Skip chips with more than this fraction of nodata pixels (0..=1).
    #[arg(long, default_value_t = 0.5)]
    max_nodata: f64,
    /// Capture time stored with the chips (as for ingest-tiles).
    #[arg(long)]
    datetime: Option<String>,
    #[command(flatten)]
    common: IngestArgs,
}

/// Runs `ingest-raster`.
pub fn run(a: IngestRasterArgs) -> Result<(), CliError> {
    let time = crate::parse_datetime(a.datetime.as_deref())?;
    let (time, wall) = (time.map(|(t, _)| t), time.map(|(_, w)| w));
    for p in &a.scenes {
        if !p.is_file() {
            return Err(CliError::input(format!(
                "{}: {}",
                p.display(),
                if p.exists() {
                    "not a regular file"
                } else {
                    "no such file"
                }
            )));
        }
    }
    let range = match &a.range {
        None => None,
        Some(r) => {
            let v: Vec<&str> = r.split(',').map(str::trim).collect();
            let n = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite());
            match v.as_slice() {
                [lo, hi] => match (n(lo), n(hi)) {
                    (Some(lo), Some(hi)) if lo < hi => Some((lo, hi)),
                    _ => {
                        return Err(CliError::input(format!(
                            "--range '{r}': expected MIN,MAX, two numbers with MIN < MAX"
                        )))
                    }
                },
                _ => return Err(CliError::input(format!("--range '{r}': expected MIN,MAX"))),
            }
        }
    };
    if !(0.0..=1.0).contains(&a.max_nodata) {
        return Err(CliError::input(format!(
            "--max-nodata {} is not in 0..=1",
            a.max_nodata
        )));
    }
    let opts = RasterOptions {
        common: a.common.flags.options(a.collection),
        bands: a.bands,
        chip_px: a.chip_px,
        gsd: a.gsd,
        range,
        max_nodata: a.max_nodata,
        time,
        wall,
    };
    let r = a
        .common
        .run(|model, db| ingest_raster(db, model, &a.scenes, &opts, &bars()))?;
    a.common.finish(&r, "chips")
}
