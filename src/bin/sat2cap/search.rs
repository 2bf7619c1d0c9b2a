//! `sat2cap search`: top-k by text, image or vector, with bbox / radius filters.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{read_vector, QueryInput, SearchJob};
use sat2cap::{Filter, Radius};

use crate::jobs_common::{print_matches, run_search, ModelArgs};
use crate::CliError;

/// The k items most similar to a text, an image or a vector, optionally inside a box or
/// within a radius.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  sat2cap search --db my.db --text \"people fishing on a boat\" --k 5
  sat2cap search --db my.db --text \"a forest\" --bbox 6.58,46.49,6.68,46.55 --json
  sat2cap search --db my.db --image photo.jpg --near 46.52,6.63 --radius-km 2
  sat2cap search --db my.db --collection ground --vector q.npy

The query encoder must come from the same CLIP weights as the collection (recorded at
ingest, shown by `sat2cap info`): another model's query is refused. --vector is not checked.")]
pub struct SearchArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Collection to search.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Query text (CLIP text encoder).
    #[arg(long, group = "q")]
    text: Option<String>,
    /// Query image (a ground-level photo, CLIP; --overhead-image for Sat2Cap).
    #[arg(long, group = "q")]
    image: Option<PathBuf>,
    /// Encode --image as an overhead tile (Sat2Cap) instead of a ground photo.
    #[arg(long)]
    overhead_image: bool,
    /// Query vector: a .npy file (its first row), or a file holding a JSON array of numbers.
    #[arg(long, group = "q")]
    vector: Option<PathBuf>,
    /// Only items inside W,S,E,N (degrees; W > E crosses the antimeridian).
    #[arg(long, allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Only items within --radius-km of LAT,LON.
    #[arg(long, allow_hyphen_values = true, requires = "radius_km")]
    near: Option<String>,
    /// Radius in km for --near.
    #[arg(long, requires = "near")]
    radius_km: Option<f64>,
    /// Number of results.
    #[arg(long, default_value_t = 10, value_parser = crate::k_value)]
    k: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `search`.
pub fn run(a: SearchArgs) -> Result<(), CliError> {
    if a.overhead_image && a.image.is_none() {
        return Err(CliError::input(
            "--overhead-image says how to encode --image: give --image FILE with it",
        ));
    }
    let mut filter = Filter::new();
    if let Some(b) = &a.bbox {
        filter = filter.bbox(crate::parse_bbox(b)?);
    }
    if let (Some(n), Some(r)) = (&a.near, a.radius_km) {
        let (lat, lon) = crate::parse_lat_lon(n, "--near")?;
        filter = filter.radius(
            Radius::new(lat, lon, r).map_err(|e| CliError::input(format!("bad radius: {e}")))?,
        );
    }
    let snap = crate::open_snapshot(&a.db)?;
    let query = if let Some(t) = &a.text {
        QueryInput::Text(t.clone())
    } else if let Some(p) = &a.image {
        QueryInput::Image {
            path: p.clone(),
            overhead: a.overhead_image,
        }
    } else if let Some(p) = &a.vector {
        QueryInput::Vector(read_vector(p)?)
    } else {
        return Err(CliError::input("give a query: --text, --image or --vector"));
    };
    let job = SearchJob {
        collection: a.collection,
        query,
        filter,
        near_query_km: None,
        k: a.k,
        holds: None,
    };
    let hits = run_search(&snap, &job, &a.model, a.json)?;
    print_matches(&hits, a.json)
}
