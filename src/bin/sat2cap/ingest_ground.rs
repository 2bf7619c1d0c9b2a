//! `sat2cap ingest-ground`: ground-level photos -> CLIP image embeddings.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::ingest_ground;
use sat2cap::OpenOptions;

use crate::jobs_common::{bars, finish_ingest, IngestFlags, ModelArgs};
use crate::CliError;

/// Encodes ground-level photos with CLIP and stores them with place and time.
#[derive(Args, Debug)]
#[command(
    after_help = "The CSV has a header naming path,lat,lon[,datetime]; paths are relative to DIR.
A bad row or unreadable image is reported and skipped; the rest go on. A photo's key is its
path as listed: photos already in the collection are skipped; --replace re-encodes them.
The collection records the model that made it; another model is refused (--force-model).

Examples:
  sat2cap ingest-ground photos/ --meta photos.csv --db my.db --weights ~/sat2cap-weights
  sat2cap ingest-ground photos/ --meta photos.csv --db my.db --random-weights --json"
)]
pub struct IngestGroundArgs {
    /// Folder of photos.
    dir: PathBuf,
    /// CSV: path,lat,lon[,datetime].
    #[arg(long)]
    meta: PathBuf,
    /// Database folder (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// Collection.
    #[arg(long, default_value = sat2cap::jobs::GROUND)]
    collection: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ingest: IngestFlags,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `ingest-ground`.
pub fn run(a: IngestGroundArgs) -> Result<(), CliError> {
    if !a.dir.is_dir() {
        return Err(CliError::input(format!(
            "photo folder {} does not exist",
            a.dir.display()
        )));
    }
    if !a.meta.is_file() {
        return Err(CliError::input(format!(
            "no metadata CSV {}",
            a.meta.display()
        )));
    }
    let model = a.model.load(a.json)?;
    let mut db = crate::open_db(&a.db, OpenOptions::create_if_missing())?;
    let opts = a.ingest.options(a.collection);
    let r = ingest_ground(&mut db, &model, &a.dir, &a.meta, &opts, &bars())?;
    finish_ingest(&r, "photos", a.json)
}
