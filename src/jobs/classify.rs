//! Zero-shot classification of overhead tiles against a list of labels: each label becomes a
//! prompt (`"a satellite image of {}"` by default), the prompts are embedded with the CLIP
//! text tower, and a tile takes the labels whose prompts score best against its Sat2Cap
//! embedding. [`eval_classify`] measures top-1 and top-5 accuracy, overall and per class,
//! over a CSV of labelled tiles.
//!
//! Sat2Cap's own zero-shot script (mvrl/Sat2Cap `sat2cap/evaluations/zero_shot.py`) writes
//! `"satellite imagery of a(n) {label}"`, the label's underscores as spaces: pass
//! `--template "satellite imagery of a {}"` to follow it.

use std::path::PathBuf;

use super::eval::{listed_path, listing_folder};
use super::lookup::{image_error, read_image_file};
use super::model::Embedder;
use super::JobError;
use crate::{Progress, Unit};

/// The default prompt template: `{}` is replaced by the label.
pub const DEFAULT_TEMPLATE: &str = "a satellite image of {}";

/// Labels and how they become prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// The labels, each once.
    pub labels: Vec<String>,
    /// A prompt template holding `{}` once (the label goes there).
    pub template: String,
}

impl Labels {
    /// Checks the labels (at least one, none empty, none twice) and the template.
    pub fn new(labels: Vec<String>, template: &str) -> Result<Labels, JobError> {
        if labels.is_empty() {
            return Err(JobError::input("no labels"));
        }
        for (i, l) in labels.iter().enumerate() {
            if l.trim().is_empty() {
                return Err(JobError::input(format!("label {} is empty", i + 1)));
            }
            if labels[..i].contains(l) {
                return Err(JobError::input(format!("label '{l}' is given twice")));
            }
        }
        if template.matches("{}").count() != 1 {
            return Err(JobError::input(format!(
                "template '{template}' must hold {{}} exactly once (the label goes there)"
            )));
        }
        Ok(Labels {
            labels,
            template: template.to_string(),
        })
    }

    /// The prompt of each label.
    pub fn prompts(&self) -> Vec<String> {
        self.labels
            .iter()
            .map(|l| self.template.replacen("{}", l, 1))
            .collect()
    }
}

/// The labels of one tile, best first: `(label index, cosine)`.
pub type Ranked = Vec<(usize, f32)>;

/// The label prompts embedded once, for scoring many tiles.
pub struct Classifier {
    labels: Labels,
    prompts: Vec<Vec<f32>>,
}

impl Classifier {
    /// Embeds the prompts of `labels` with `model`'s text tower.
    pub fn new(model: &dyn Embedder, labels: Labels) -> Result<Classifier, JobError> {
        let prompts = labels.prompts();
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let prompts = model.embed_text(&refs).map_err(JobError::runtime)?;
        Ok(Classifier { labels, prompts })
    }

    /// The labels.
    pub fn labels(&self) -> &[String] {
        &self.labels.labels
    }

    /// The labels of overhead tile image files (embedded with `model`, a batch at a time),
    /// each best first; an unreadable or undecodable file is an error for that file.
    pub fn classify_files(
        &self,
        model: &dyn Embedder,
        paths: &[PathBuf],
    ) -> Vec<Result<Ranked, JobError>> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(BATCH) {
            let files: Vec<Result<Vec<u8>, JobError>> =
                chunk.iter().map(|p| read_image_file(p)).collect();
            let read: Vec<&[u8]> = files.iter().filter_map(|f| f.as_deref().ok()).collect();
            let mut vs = model.embed_overhead(&read, None).into_iter();
            for (p, f) in chunk.iter().zip(files) {
                out.push(f.and_then(|_| match vs.next() {
                    Some(Ok(v)) => Ok(self.rank(&v)),
                    Some(Err(e)) => Err(image_error(p, &e)),
                    None => Err(JobError::runtime(format!("{}: not encoded", p.display()))),
                }));
            }
        }
        out
    }

    /// Every label for the tile embedding `v`, best first (ties by label order).
    pub fn rank(&self, v: &[f32]) -> Ranked {
        let mut r: Ranked = self
            .prompts
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.iter().zip(v).map(|(a, b)| a * b).sum::<f32>()))
            .collect();
        r.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        r
    }
}

/// Options of [`eval_classify`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyEvalOptions {
    /// CSV with a header naming `path,label`; paths relative to the CSV's folder.
    pub data: PathBuf,
    /// The labels to choose among (`None`: the CSV's labels, in order of first appearance).
    pub labels: Option<Vec<String>>,
    /// The prompt template ([`DEFAULT_TEMPLATE`]).
    pub template: String,
    /// Allow image paths leading outside the CSV's folder.
    pub allow_outside: bool,
}

/// Accuracy of one class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassAccuracy {
    /// The label.
    pub label: String,
    /// Tiles of this class.
    pub tiles: usize,
    /// Fraction of them whose best label is theirs.
    pub top1: f64,
    /// Fraction with theirs among the best five.
    pub top5: f64,
}

/// What [`eval_classify`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassifyReport {
    /// Tiles classified.
    pub tiles: usize,
    /// Labels chosen among.
    pub labels: usize,
    /// Fraction whose best label is the true one.
    pub top1: f64,
    /// Fraction with the true label among the best five.
    pub top5: f64,
    /// Mean of the per-class top-1 accuracies (classes of unequal size count alike).
    pub mean_class_top1: f64,
    /// Per class, in label order.
    pub per_class: Vec<ClassAccuracy>,
    /// Rows left out: `(which, why)`.
    pub skipped: Vec<(String, String)>,
}

/// Tiles embedded a batch at a time.
const BATCH: usize = 32;

/// Classifies every tile of the CSV `opts.data` among the labels and measures the accuracy,
/// with the model `load` returns (loaded once the CSV has been read). A bad row or image is
/// left out, said through `progress` and listed; a label of the CSV that is not among
/// `opts.labels` is an error.
pub fn eval_classify<E: Embedder>(
    load: impl FnOnce() -> Result<E, JobError>,
    opts: &ClassifyEvalOptions,
    progress: &dyn Progress,
) -> Result<ClassifyReport, JobError> {
    let base = listing_folder(&opts.data);
    let table = crate::io::text::CsvTable::open(&opts.data).map_err(JobError::input)?;
    let (Some(cp), Some(cl)) = (table.column("path"), table.column("label")) else {
        return Err(JobError::input(format!(
            "{}: header must name path,label",
            opts.data.display()
        )));
    };
    let mut rows: Vec<(String, PathBuf, String)> = Vec::new();
    let mut skipped = table
        .rows(|line, rec| {
            let (p, l) = (rec.get(cp).unwrap_or(""), rec.get(cl).unwrap_or(""));
            if p.is_empty() || l.is_empty() {
                return Err("empty path or label".into());
            }
            rows.push((
                line.to_string(),
                listed_path(&base, p, opts.allow_outside)?,
                l.to_string(),
            ));
            Ok(())
        })
        .map_err(JobError::input)?;
    for (what, why) in &skipped {
        progress.note(&format!("skipped {what}: {why}"));
    }
    let labels = match &opts.labels {
        Some(l) => l.clone(),
        None => {
            let mut l: Vec<String> = Vec::new();
            for (_, _, label) in &rows {
                if !l.contains(label) {
                    l.push(label.clone());
                }
            }
            l
        }
    };
    let labels = Labels::new(labels, &opts.template)?;
    if let Some((line, _, l)) = rows.iter().find(|(_, _, l)| !labels.labels.contains(l)) {
        return Err(JobError::input(format!(
            "{line}: label '{l}' is not among the labels given"
        )));
    }
    if rows.is_empty() {
        return Err(JobError::input(format!(
            "no usable rows in {}",
            opts.data.display()
        )));
    }
    let model = load()?;
    let classifier = Classifier::new(&model, labels)?;
    let n_labels = classifier.labels().len();
    // Per class: (tiles, top-1 hits, top-5 hits).
    let mut per = vec![(0usize, 0usize, 0usize); n_labels];
    progress.begin("classify tiles", Some(rows.len() as u64), Unit::Items);
    for chunk in rows.chunks(BATCH) {
        let mut ok = Vec::new();
        for (line, path, label) in chunk {
            match read_image_file(path) {
                Ok(b) => ok.push((line, path, label, b)),
                Err(e) => {
                    progress.note(&format!("skipped {line}: {e}"));
                    skipped.push((line.clone(), e.to_string()));
                }
            }
        }
        let bytes: Vec<&[u8]> = ok.iter().map(|(_, _, _, b)| b.as_slice()).collect();
        for ((line, path, label, _), v) in ok.iter().zip(model.embed_overhead(&bytes, None)) {
            match v {
                Ok(v) => {
                    let truth = classifier
                        .labels()
                        .iter()
                        .position(|l| l == *label)
                        .unwrap_or(0);
                    let ranked = classifier.rank(&v);
                    let at = ranked
                        .iter()
                        .position(|(i, _)| *i == truth)
                        .unwrap_or(usize::MAX);
                    let c = &mut per[truth];
                    c.0 += 1;
                    c.1 += usize::from(at == 0);
                    c.2 += usize::from(at < 5);
                }
                Err(e) => {
                    let e = image_error(path, &e);
                    progress.note(&format!("skipped {line}: {e}"));
                    skipped.push(((*line).clone(), e.to_string()));
                }
            }
        }
        progress.advance(chunk.len() as u64);
    }
    progress.end();
    let tiles: usize = per.iter().map(|c| c.0).sum();
    if tiles == 0 {
        return Err(JobError::input(format!(
            "no usable tiles in {}",
            opts.data.display()
        )));
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<ClassAccuracy> = classifier
        .labels()
        .iter()
        .zip(&per)
        .map(|(l, c)| ClassAccuracy {
            label: l.clone(),
            tiles: c.0,
            top1: frac(c.1, c.0),
            top5: frac(c.2, c.0),
        })
        .collect();
    let present: Vec<&ClassAccuracy> = per_class.iter().filter(|c| c.tiles > 0).collect();
    Ok(ClassifyReport {
        tiles,
        labels: n_labels,
        top1: frac(per.iter().map(|c| c.1).sum(), tiles),
        top5: frac(per.iter().map(|c| c.2).sum(), tiles),
        mean_class_top1: present.iter().map(|c| c.top1).sum::<f64>() / present.len().max(1) as f64,
        per_class,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_templates_are_checked() {
        let l = |v: &[&str], t: &str| Labels::new(v.iter().map(|s| s.to_string()).collect(), t);
        assert_eq!(
            l(&["lake", "forest"], DEFAULT_TEMPLATE).unwrap().prompts(),
            ["a satellite image of lake", "a satellite image of forest"]
        );
        assert!(l(&[], DEFAULT_TEMPLATE).is_err());
        assert!(l(&["a", "a"], DEFAULT_TEMPLATE).is_err());
        assert!(l(&["a", " "], DEFAULT_TEMPLATE).is_err());
        assert!(l(&["a"], "no slot").is_err());
        assert!(l(&["a"], "{} and {}").is_err());
    }
}
