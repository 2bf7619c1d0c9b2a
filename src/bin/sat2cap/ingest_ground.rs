//! `sat2cap ingest-ground`: ground-level photos -> CLIP image embeddings.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::ingest_ground;

use crate::jobs_common::{bars, IngestArgs};
use crate::CliError;

/// Encodes ground-level photos with CLIP and stores them with place and time.
#[derive(Args, Debug)]
#[command(
    after_help = "The CSV has a header naming path,lat,lon[,datetime]; paths are relative to DIR.
A bad row or unreadable image fails the job (exit 2, nothing added) unless --skip-bad: then
each is reported with its line and skipped. Paths leading outside DIR (../, absolute, a
symlink out) are refused unless --allow-outside. A photo's key is its
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
    /// Collection.
    #[arg(long, default_value = sat2cap::jobs::GROUND)]
    collection: String,
    /// Allow CSV paths that lead outside DIR (`../`, absolute paths, symlinks out of it).
    #[arg(long)]
    allow_outside: bool,
    #[command(flatten)]
    common: IngestArgs,
}

/// Runs `ingest-ground`.
pub fn run(a: IngestGroundArgs) -> Result<(), CliError> {
    if !a.dir.is_dir() {
        return Err(CliError::input(format!(
            "photo folder {} does not exist",
            a.dir.display()
        )));
    }
    if !a.meta.exists() {
        return Err(CliError::input(format!(
            "no metadata CSV {}",
            a.meta.display()
        )));
    }
    let mut opts = a.common.flags.options(a.collection);
    opts.allow_outside = a.allow_outside;
    let r = a
        .common
        .run(|model, db| ingest_ground(db, model, &a.dir, &a.meta, &opts, &bars()))?;
    a.common.finish(&r, "photos")
}
