//! `sat2cap classify` and `sat2cap eval-classify`: zero-shot classification of overhead tiles
//! against a label list.

use std::path::PathBuf;

use clap::Args;
use sat2cap::jobs::{eval_classify, Classifier, ClassifyEvalOptions, Labels, DEFAULT_TEMPLATE};

use crate::jobs_common::{bars, print_json, ModelArgs};
use crate::output::{note, out};
use crate::CliError;

/// The labels of `--labels a,b,c` or of a file with one label a line.
#[derive(Args, Debug)]
pub struct LabelArgs {
    /// Labels, comma-separated (e.g. "a lake,a forest,farmland").
    #[arg(long, value_delimiter = ',', conflicts_with = "labels_file")]
    labels: Vec<String>,
    /// A file of labels, one a line (`#` lines are comments).
    #[arg(long, value_name = "FILE")]
    labels_file: Option<PathBuf>,
    /// The prompt each label becomes: `{}` is replaced by the label.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    template: String,
}

impl LabelArgs {
    /// The labels given (`None` when neither flag was).
    fn given(&self) -> Result<Option<Vec<String>>, CliError> {
        if let Some(f) = &self.labels_file {
            return sat2cap::jobs::read_captions(f)
                .map(Some)
                .map_err(CliError::from);
        }
        Ok((!self.labels.is_empty())
            .then(|| self.labels.iter().map(|l| l.trim().to_string()).collect()))
    }
}

/// Classifies overhead tiles (image files) among labels: each label becomes a prompt
/// ("a satellite image of {}" by default), embedded with the CLIP text tower; a tile takes
/// the labels whose prompts score best against its Sat2Cap embedding.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  sat2cap classify tiles/46.52_6.63.jpg --labels \"a lake,a forest,farmland,a town\" --weights w
  sat2cap classify tiles/*.png --labels-file labels.txt --top 3 --json --random-weights")]
pub struct ClassifyArgs {
    /// Overhead tile image files.
    #[arg(required = true)]
    tiles: Vec<PathBuf>,
    #[command(flatten)]
    labels: LabelArgs,
    /// Labels shown per tile.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    top: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `classify`.
pub fn run(a: ClassifyArgs) -> Result<(), CliError> {
    let labels = a
        .labels
        .given()?
        .ok_or_else(|| CliError::input("give --labels or --labels-file"))?;
    let labels = Labels::new(labels, &a.labels.template)?;
    for p in &a.tiles {
        if !p.is_file() {
            return Err(CliError::input(format!(
                "{} is not an image file",
                p.display()
            )));
        }
    }
    let model = a.model.load(a.json)?;
    let classifier = Classifier::new(&model, labels)?;
    let mut results = Vec::new();
    for (path, ranked) in a
        .tiles
        .iter()
        .zip(classifier.classify_files(&model, &a.tiles))
    {
        let ranked = ranked?;
        let top: Vec<(String, f32)> = ranked
            .iter()
            .take(a.top as usize)
            .map(|&(i, s)| (classifier.labels()[i].clone(), s))
            .collect();
        results.push((path.display().to_string(), top));
    }
    if a.json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|(p, top)| {
                serde_json::json!({"tile": p, "labels": top.iter()
                    .map(|(l, s)| serde_json::json!({"label": l, "score": s})).collect::<Vec<_>>()})
            })
            .collect();
        return print_json(&v);
    }
    for (p, top) in &results {
        let shown: Vec<String> = top.iter().map(|(l, s)| format!("{l} ({s:.3})")).collect();
        out!("{p}: {}", shown.join(", "));
    }
    Ok(())
}

/// Zero-shot classification accuracy over a CSV of labelled overhead tiles: top-1 and top-5,
/// overall and per class.
#[derive(Args, Debug)]
#[command(
    after_help = "data.csv: header path,label; paths relative to the CSV's folder (a path leading
outside it is skipped unless --allow-outside). The labels chosen among are --labels /
--labels-file, else every label of the CSV. A bad row or image is left out, reported.

Examples:
  sat2cap eval-classify --data eurosat/test.csv --weights w
  sat2cap eval-classify --data tiles.csv --template \"satellite imagery of a {}\" --json --random-weights"
)]
pub struct EvalClassifyArgs {
    /// CSV of labelled tiles.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    labels: LabelArgs,
    /// Allow image paths leading outside the CSV's folder.
    #[arg(long)]
    allow_outside: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `eval-classify`.
pub fn run_eval(a: EvalClassifyArgs) -> Result<(), CliError> {
    let opts = ClassifyEvalOptions {
        data: a.data.clone(),
        labels: a.labels.given()?,
        template: a.labels.template.clone(),
        allow_outside: a.allow_outside,
    };
    let r = eval_classify(|| Ok(a.model.load(a.json)?), &opts, &bars())?;
    if a.json {
        return print_json(&r);
    }
    if !r.skipped.is_empty() {
        note!("note: {} rows left out (listed above)", r.skipped.len());
    }
    out!(
        "{} tiles, {} labels | top-1 {:.3} | top-5 {:.3} | mean per-class top-1 {:.3}",
        r.tiles,
        r.labels,
        r.top1,
        r.top5,
        r.mean_class_top1
    );
    out!("| label | tiles | top-1 | top-5 |");
    out!("|---|---:|---:|---:|");
    for c in &r.per_class {
        out!(
            "| {} | {} | {:.3} | {:.3} |",
            c.label,
            c.tiles,
            c.top1,
            c.top5
        );
    }
    Ok(())
}
