//! `sat2cap ingest-text`: a caption bank -> CLIP text embeddings.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{ingest_captions, read_captions};

use crate::jobs_common::{bars, IngestArgs};
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
    /// Collection.
    #[arg(long, default_value = sat2cap::jobs::CAPTIONS)]
    collection: String,
    #[command(flatten)]
    common: IngestArgs,
}

/// Runs `ingest-text`.
pub fn run(a: IngestTextArgs) -> Result<(), CliError> {
    let captions = read_captions(&a.file)?;
    let opts = a.common.flags.options(a.collection);
    let r = a
        .common
        .run(|model, db| ingest_captions(db, model, &captions, &opts, &bars()))?;
    a.common.finish(&r, "captions")
}
