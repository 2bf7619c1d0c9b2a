//! `sat2cap search`: top-k by text, image, vector or examples, with place and time filters.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{read_vector, Example, Examples, QueryInput, SearchJob};
use sat2cap::Filter;

use crate::jobs_common::{print_matches_as, run_search, ModelArgs, OutputArgs, OutputFormat};
use crate::place_args::{AreaArgs, PointArgs};
use crate::CliError;

/// The k items most similar to a text, an image, a vector or a set of examples, optionally
/// inside a box, an area of interest, a radius and a time range.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  sat2cap search --db my.db --text \"people fishing on a boat\" --k 5
  sat2cap search --db my.db --text \"a forest\" --bbox 6.58,46.49,6.68,46.55 --format geojson
  sat2cap search --db my.db --image photo.jpg --lon 6.63 --lat 46.52 --radius-km 2
  sat2cap search --db my.db --text \"a marina\" --aoi lake.geojson \\
      --between 2023-06-01T00:00:00Z 2023-08-31
  sat2cap search --db my.db --like 12 40 marinas.geojson --unlike 7
  sat2cap search --db my.db --collection ground --vector q.npy

--like / --unlike take stored ids of the searched collection, or GeoJSON files of examples:
a Point is the item nearest to it, a Polygon every item inside; a feature's \"label\"
property (like / unlike) puts it on that side whatever the flag. The query is
mean(like) - 0.5 x mean(unlike) (--unlike-weight changes the 0.5; docs/IO.md says why), and
the examples themselves are left out of the results.

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
    /// Positive examples: stored ids, or GeoJSON files of points and polygons.
    #[arg(long, group = "q", num_args = 1.., value_name = "ID_OR_GEOJSON")]
    like: Vec<String>,
    /// Negative examples: stored ids, or GeoJSON files.
    #[arg(long, num_args = 1.., value_name = "ID_OR_GEOJSON")]
    unlike: Vec<String>,
    /// Weight of the negative examples' mean, in 0..=1.
    #[arg(long, default_value_t = sat2cap::jobs::UNLIKE_WEIGHT)]
    unlike_weight: f32,
    #[command(flatten)]
    area: AreaArgs,
    #[command(flatten)]
    point: PointArgs,
    /// Number of results.
    #[arg(long, default_value_t = 10, value_parser = crate::k_value)]
    k: usize,
    #[command(flatten)]
    output: OutputArgs,
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
    if !a.unlike.is_empty() && a.like.is_empty() {
        return Err(CliError::input(
            "--unlike needs --like: the results are like some examples and unlike others",
        ));
    }
    let filter = a.point.add_to(a.area.add_to(Filter::new())?)?;
    let format = a.output.format();
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
    } else if !a.like.is_empty() {
        let (mut like, mut unlike) = (Vec::new(), Vec::new());
        for (values, side) in [(&a.like, true), (&a.unlike, false)] {
            for v in values {
                let (l, u) = example_arg(v, side)?;
                like.extend(l);
                unlike.extend(u);
            }
        }
        QueryInput::Examples(Examples {
            like,
            unlike,
            unlike_weight: a.unlike_weight,
        })
    } else {
        return Err(CliError::input(
            "give a query: --text, --image, --vector or --like",
        ));
    };
    let job = SearchJob {
        collection: a.collection,
        query,
        filter,
        near_query_km: None,
        k: a.k,
        holds: None,
    };
    let hits = run_search(&snap, &job, &a.model, format != OutputFormat::Table)?;
    print_matches_as(&hits, format)
}

/// One `--like` / `--unlike` value: a stored id, or a GeoJSON file of examples.
fn example_arg(v: &str, like: bool) -> Result<(Vec<Example>, Vec<Example>), CliError> {
    let flag = if like { "--like" } else { "--unlike" };
    if let Ok(id) = v.trim().parse::<u64>() {
        let e = vec![Example::Id(id)];
        return Ok(if like { (e, vec![]) } else { (vec![], e) });
    }
    let path = std::path::Path::new(v);
    if !path.exists() {
        return Err(CliError::input(format!(
            "{flag} '{v}' is neither a stored id nor a GeoJSON file"
        )));
    }
    sat2cap::jobs::read_examples(path, like).map_err(|e| CliError::input(format!("{flag} {e}")))
}
