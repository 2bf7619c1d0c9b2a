//! What the job commands share: model flags, progress bars, error conversion, output.

use std::path::PathBuf;

use clap::Args;
use sat2cap::encoders::{DeviceChoice, Encoders, Precision};
use sat2cap::jobs::fingerprint::{check_collections, check_space};
use sat2cap::jobs::model::{self, ModelSource};
use sat2cap::jobs::JobError;

use crate::CliError;

impl From<JobError> for CliError {
    fn from(e: JobError) -> CliError {
        match e {
            JobError::Input(m) => CliError::input(m),
            e => CliError::runtime(e),
        }
    }
}

/// Which encoders to run.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Weights folder (layout: docs/ENCODERS.md); default: $SAT2CAP_WEIGHTS.
    #[arg(long, value_name = "DIR")]
    pub weights: Option<PathBuf>,
    /// Without weights, use seeded random encoders (the pipeline runs; results mean nothing).
    #[arg(long)]
    pub random_weights: bool,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Encoder precision: f32 (reference parity) or f16 (half-precision weights and
    /// activations; embeddings within cosine 0.999 of f32).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

impl ModelArgs {
    /// Loads the encoders, saying once on stderr when they are random.
    pub fn load(&self, quiet: bool) -> Result<(Encoders, ModelSource), CliError> {
        let (e, s) = model::load_with_precision(
            self.weights.as_deref(),
            self.random_weights,
            self.device,
            self.precision,
        )?;
        if !quiet {
            eprintln!("encoders: {s} on {}, {}", e.device_name(), e.precision());
        }
        if matches!(s, ModelSource::Random { .. }) {
            eprintln!("{}", model::RANDOM_NOTE);
        }
        Ok((e, s))
    }
}

/// How an ingest treats items already present and a collection made by another model.
#[derive(Args, Debug, Clone)]
pub struct IngestFlags {
    /// Re-encode and replace items whose key is already in the collection (default: skip
    /// them and say how many).
    #[arg(long)]
    pub replace: bool,
    /// Add to a collection made by a different model (or recording none) and record this
    /// model for it. Only for weights known to be the same model (e.g. re-saved as f16).
    #[arg(long)]
    pub force_model: bool,
}

impl IngestFlags {
    /// The library options for `collection`.
    pub fn options(&self, collection: String) -> sat2cap::jobs::ingest::IngestOptions {
        sat2cap::jobs::ingest::IngestOptions {
            collection,
            replace: self.replace,
            force_model: self.force_model,
        }
    }
}

/// Prints a warning (one line, stderr) when there is one.
pub fn warn(w: Option<String>) {
    if let Some(w) = w {
        eprintln!("sat2cap: {w}");
    }
}

pub use crate::progress::bar;

/// Prints a value as pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(CliError::runtime)?;
    println!("{s}");
    Ok(())
}

/// Prints an ingest report; an error when nothing could be added.
pub fn finish_ingest(
    r: &sat2cap::jobs::ingest::IngestReport,
    what: &str,
    json: bool,
) -> Result<(), CliError> {
    for (item, why) in &r.failed {
        eprintln!("sat2cap: skipped {item}: {why}");
    }
    for s in &r.skipped {
        eprintln!("sat2cap: skipped {s}: name gives no location");
    }
    if json {
        print_json(r)?;
    } else {
        let ids = r
            .ids
            .map(|(a, b)| format!(" (ids {a}..={b})"))
            .unwrap_or_default();
        let mut line = format!("added {} {what}{ids}", r.added);
        if r.replaced > 0 {
            line.push_str(&format!("; {} replaced", r.replaced));
        }
        if r.present > 0 {
            line.push_str(&format!(
                "; {} already present, skipped (--replace re-encodes them)",
                r.present
            ));
        }
        line.push_str(&format!("; {} failed", r.failed.len()));
        println!("{line}");
    }
    if r.added + r.replaced + r.present == 0 {
        return Err(CliError::input(format!("no {what} could be added")));
    }
    Ok(())
}

/// Resolves `TILE_OR_ID` for a lookup in `target`: a number is an item id of `collection`
/// (its stored vector and place); anything else is an overhead image file (encoded; place
/// from a `{lat}_{lon}` name). Refuses a query from another model's CLIP space than
/// `target`'s (see `sat2cap::jobs::fingerprint`).
pub fn tile_query(
    arg: &str,
    snap: &sat2cap::Snapshot,
    collection: &str,
    target: &sat2cap::storage::CollectionView,
    model: &ModelArgs,
) -> Result<(Vec<f32>, Option<sat2cap::geo::Point>), CliError> {
    if let Ok(id) = arg.parse::<u64>() {
        let view = sat2cap::jobs::collection(snap, collection)?;
        warn(check_collections(view, target)?);
        let item = view
            .get(id)
            .map_err(CliError::runtime)?
            .ok_or_else(|| CliError::input(format!("no tile with id {id} in '{collection}'")))?;
        return Ok((
            item.vector.iter().map(|h| h.to_f32()).collect(),
            Some(item.point),
        ));
    }
    let path = std::path::Path::new(arg);
    if !path.is_file() {
        return Err(CliError::input(format!(
            "'{arg}' is neither a tile id nor an image file"
        )));
    }
    let (enc, source) = model.load(true)?;
    warn(check_space(
        target,
        &source.clip_id(),
        "the query tile's Sat2Cap encoder",
    )?);
    let v = sat2cap::jobs::ingest::encode_image_file(&enc, path, true)?;
    let point = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(sat2cap::jobs::tiles::parse_lat_lon_name);
    Ok((v, point))
}

/// Prints matches as a table (or JSON).
pub fn print_matches(hits: &[sat2cap::jobs::topk::Match], json: bool) -> Result<(), CliError> {
    if json {
        return print_json(&hits);
    }
    println!(
        "{:>4}  {:>8}  {:>8}  {:>10}  {:>11}  payload",
        "rank", "id", "cosine", "lat", "lon"
    );
    for (i, h) in hits.iter().enumerate() {
        println!(
            "{:>4}  {:>8}  {:>8.4}  {:>10.5}  {:>11.5}  {}",
            i + 1,
            h.id,
            h.score,
            h.lat,
            h.lon,
            h.payload.as_deref().unwrap_or("")
        );
    }
    if hits.is_empty() {
        println!("(no matches)");
    }
    Ok(())
}
