//! What the job commands share: model flags, error conversion, output.

use std::path::PathBuf;

use clap::Args;
use sat2cap::encoders::{DeviceChoice, GroundResize, Precision, TextNorm};
use sat2cap::jobs::{Embedder, IngestOptions, IngestReport, Match, Model, ModelOptions};

use crate::output::{note, out};
use crate::progress::{Bars, Notes};
use crate::CliError;

/// The note printed once when random weights are used.
pub const RANDOM_NOTE: &str = "note: no model weights given (--weights DIR or SAT2CAP_WEIGHTS): \
using seeded RANDOM encoders. Everything runs, but scores, maps and matches show the pipeline, \
not meaning. Real weights: docs/ENCODERS.md.";

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
    /// How ground-level photos become 224 x 224: `squash` (the whole photo resized, as
    /// Sat2Cap computed its ground embeddings) or `clip-crop` (CLIP's own: shortest side to
    /// 224, centre crop). Recorded with the embeddings.
    #[arg(long, value_name = "MODE", default_value = "squash", value_parser = ground_resize)]
    pub ground_resize: GroundResize,
    /// Take a centred square of at most N px from each overhead tile before resizing it to
    /// 224 (default: the whole tile, as Sat2Cap's evaluation; never pads). Recorded with the
    /// embeddings.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=16_384))]
    pub overhead_crop: Option<u64>,
    /// How text is normalised before tokenising: `hf-fast` (NFC, whitespace, lowercase: the
    /// fast tokenizer Sat2Cap used) or `ftfy` (OpenAI CLIP's cleaning: ftfy, HTML entities).
    /// Recorded with the embeddings.
    #[arg(long, value_name = "MODE", default_value = "hf-fast", value_parser = text_norm)]
    pub text_norm: TextNorm,
}

fn ground_resize(s: &str) -> Result<GroundResize, String> {
    [GroundResize::Squash, GroundResize::ClipCrop]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| "expected squash or clip-crop".to_string())
}

fn text_norm(s: &str) -> Result<TextNorm, String> {
    [TextNorm::HfFast, TextNorm::Ftfy]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| "expected hf-fast or ftfy".to_string())
}

/// The weights folder from `flag` or `SAT2CAP_WEIGHTS`.
pub fn weights_dir(flag: Option<&std::path::Path>) -> Option<PathBuf> {
    flag.map(std::path::Path::to_path_buf).or_else(|| {
        std::env::var_os("SAT2CAP_WEIGHTS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Whether `SAT2CAP_TINY_MODEL` asks for the tiny test shapes (integration tests only).
pub fn tiny_requested() -> bool {
    std::env::var("SAT2CAP_TINY_MODEL").is_ok_and(|v| !v.is_empty() && v != "0")
}

impl ModelArgs {
    /// The library's options: the flags, `SAT2CAP_WEIGHTS` and `SAT2CAP_TINY_MODEL`.
    pub fn options(&self) -> Result<ModelOptions, CliError> {
        let weights = weights_dir(self.weights.as_deref());
        if weights.is_none() && !self.random_weights {
            return Err(CliError::input(
                "no model weights: pass --weights DIR (or set SAT2CAP_WEIGHTS), or \
                 --random-weights to run the pipeline with seeded random encoders",
            ));
        }
        Ok(ModelOptions {
            weights,
            random: self.random_weights,
            tiny: tiny_requested(),
            device: self.device,
            precision: self.precision,
            ground_resize: self.ground_resize,
            overhead_crop: self.overhead_crop.map(|c| c as usize),
            text_norm: self.text_norm,
        })
    }

    /// Loads the encoders, saying on stderr which ones (unless `quiet`) and, always, when
    /// they are random.
    pub fn load(&self, quiet: bool) -> Result<Model, CliError> {
        let m = Model::load(&self.options()?)?;
        // With `--device auto` the device chosen (and why not the GPU) is always said.
        if !quiet || self.device == DeviceChoice::Auto {
            note!("encoders: {}", m.describe());
        }
        if m.is_random() {
            note!("{RANDOM_NOTE}");
        }
        Ok(m)
    }
}

/// What every ingest command takes besides its inputs and collection.
#[derive(Args, Debug, Clone)]
pub struct IngestArgs {
    /// Database folder (created if missing).
    #[arg(long)]
    pub db: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub flags: IngestFlags,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl IngestArgs {
    /// Loads the encoders, then runs `job` on the database (created if missing; removed
    /// again when the job fails and this call created it).
    pub fn run(
        &self,
        job: impl FnOnce(&Model, &mut sat2cap::Db) -> Result<IngestReport, sat2cap::jobs::JobError>,
    ) -> Result<IngestReport, CliError> {
        let model = self.model.load(self.json)?;
        let opts = sat2cap::OpenOptions::create_if_missing();
        Ok(sat2cap::jobs::with_database(&self.db, opts, |db| {
            job(&model, db)
        })?)
    }

    /// Prints the report (see [`finish_ingest`]).
    pub fn finish(&self, r: &IngestReport, what: &str) -> Result<(), CliError> {
        finish_ingest(r, what, self.json)
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
    /// Skip bad inputs (an unreadable image, a bad CSV row), reporting each on stderr with
    /// its file and line, instead of failing the job at the first one (exit 2, nothing
    /// added).
    #[arg(long)]
    pub skip_bad: bool,
}

impl IngestFlags {
    /// The library options for `collection`.
    pub fn options(&self, collection: String) -> IngestOptions {
        IngestOptions {
            collection,
            replace: self.replace,
            force_model: self.force_model,
            skip_bad: self.skip_bad,
            allow_outside: false,
        }
    }
}

/// Bars for a command's progress; warnings go to stderr.
pub fn bars() -> Bars {
    Bars::new(Notes::Stderr)
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(CliError::runtime)?;
    out!("{s}");
    Ok(())
}

/// Prints an ingest report; an error when nothing could be added.
pub fn finish_ingest(r: &IngestReport, what: &str, json: bool) -> Result<(), CliError> {
    if r.added + r.replaced > 0 {
        crate::output::committed(format!("{} {what} added, {} replaced", r.added, r.replaced));
    }
    for (item, why) in &r.failed {
        note!("sat2cap: skipped {item}: {why}");
    }
    for (s, why) in &r.skipped {
        note!("sat2cap: skipped {s}: {why}");
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
        if r.repeated > 0 {
            line.push_str(&format!("; {} repeated in the input, skipped", r.repeated));
        }
        line.push_str(&format!("; {} failed", r.failed.len()));
        out!("{line}");
    }
    if r.added + r.replaced + r.present + r.repeated == 0 {
        return Err(CliError::input(format!("no {what} could be added")));
    }
    Ok(())
}

/// `TILE_OR_ID`: a number is a tile id of `from`; anything else an overhead image file.
pub fn tile_input(arg: &str, from: &str) -> Result<sat2cap::jobs::QueryInput, CliError> {
    if let Ok(id) = arg.parse::<u64>() {
        return Ok(sat2cap::jobs::QueryInput::TileId {
            id,
            from: from.to_string(),
        });
    }
    let path = std::path::Path::new(arg);
    if !path.is_file() {
        return Err(CliError::input(format!(
            "'{arg}' is neither a tile id nor an image file"
        )));
    }
    Ok(sat2cap::jobs::QueryInput::Image {
        path: path.to_path_buf(),
        overhead: true,
    })
}

/// Runs a lookup, loading the encoders only when the query needs them, after the
/// collections are known to exist.
pub fn run_search(
    snap: &sat2cap::Snapshot,
    job: &sat2cap::jobs::SearchJob,
    model: &ModelArgs,
    quiet: bool,
) -> Result<Vec<Match>, CliError> {
    sat2cap::jobs::collection(snap, &job.collection)?;
    if let sat2cap::jobs::QueryInput::TileId { from, .. } = &job.query {
        sat2cap::jobs::collection(snap, from)?;
    }
    let loaded = if job.query.needs_embedder() {
        Some(model.load(quiet)?)
    } else {
        None
    };
    let model = loaded.as_ref().map(|m| m as &dyn Embedder);
    Ok(sat2cap::jobs::search(snap, model, job, &bars())?.matches)
}

/// How a command prints its matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// A JSON array of matches.
    Json,
    /// A GeoJSON FeatureCollection.
    GeoJson,
}

/// `--format`.
pub fn output_format(s: &str) -> Result<OutputFormat, String> {
    match s {
        "table" => Ok(OutputFormat::Table),
        "json" => Ok(OutputFormat::Json),
        "geojson" => Ok(OutputFormat::GeoJson),
        _ => Err("expected table, json or geojson".into()),
    }
}

/// `--format` and its shorthand `--json`, for the commands that print matches.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Output: table, json (an array of matches) or geojson (a FeatureCollection).
    #[arg(long, default_value = "table", value_parser = output_format)]
    format: OutputFormat,
    /// Print JSON (the same as --format json).
    #[arg(long)]
    json: bool,
}

impl OutputArgs {
    /// The format asked for.
    pub fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.format
        }
    }
}

/// Prints matches as `format` says.
pub fn print_matches_as(hits: &[Match], format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Table => print_matches(hits, false),
        OutputFormat::Json => print_matches(hits, true),
        // One line: GeoJSON is read by tools, and coordinates one per line would triple it.
        OutputFormat::GeoJson => {
            out!("{}", sat2cap::jobs::matches_geojson(hits));
            Ok(())
        }
    }
}

/// Prints matches as a table (or JSON).
pub fn print_matches(hits: &[Match], json: bool) -> Result<(), CliError> {
    if json {
        return print_json(&hits);
    }
    out!(
        "{:>4}  {:>8}  {:>8}  {:>10}  {:>11}  payload",
        "rank",
        "id",
        "cosine",
        "lat",
        "lon"
    );
    for (i, h) in hits.iter().enumerate() {
        out!(
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
        out!("(no matches)");
    }
    Ok(())
}
