//! `sat2cap ingest-text`: a caption bank -> CLIP text embeddings.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{ingest_captions, read_captions};
use sat2cap::OpenOptions;

use crate::jobs_common::{bars, finish_ingest, IngestFlags, ModelArgs};
use crate::CliError;

/// Stores a caption bank (one caption per line; `#` lines are comments) for `describe`.
#[derive(Args, Debug)]
#[command(
    after_help = "Captions have no place: they are stored at the dummy point (0, 0), without
time, payload {\"caption\": text}. A caption's key is its text: captions already in the
collection are skipped; --replace re-encodes them. The collection records the model that
made it; another model is refused (--force-model).

Examples:
  sat2cap ingest-text captions.txt --db my.db --weights ~/sat2cap-weights
  sat2cap ingest-text more-captions.txt --db my.db --random-weights --json"
)]
pub struct IngestTextArgs {
    /// Text file, one caption per line.
    file: PathBuf,
    /// Database folder (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// Collection.
    #[arg(long, default_value = sat2cap::jobs::CAPTIONS)]
    collection: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ingest: IngestFlags,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `ingest-text`.
pub fn run(a: IngestTextArgs) -> Result<(), CliError> {
    let captions = read_captions(&a.file)?;
    let model = a.model.load(a.json)?;
    let mut db = crate::open_db(&a.db, OpenOptions::create_if_missing())?;
    let opts = a.ingest.options(a.collection);
    let r = ingest_captions(&mut db, &model, &captions, &opts, &bars())?;
    finish_ingest(&r, "captions", a.json)
}
