//! Text <-> image retrieval: a CSV pairs images (ground-level photos, or overhead tiles with
//! `--overhead`) with captions; each caption queries the gallery of images (text -> image)
//! and each image the gallery of captions (image -> text). Recall@1/5/10 and the median rank
//! of the true pair, ties by average rank (see [`super::eval`]).

use std::path::PathBuf;

use super::eval::{listed_path, listing_folder, paired_metrics, RetrievalMetrics};
use super::lookup::{image_error, read_image_file};
use super::model::Embedder;
use super::JobError;
use crate::{Progress, Unit};

/// Options of [`eval_text_retrieval`].
#[derive(Debug, Clone, PartialEq)]
pub struct TextEvalOptions {
    /// CSV with a header naming `image,caption`; paths relative to the CSV's folder.
    pub pairs: PathBuf,
    /// Gallery size: the first this many usable pairs (>= 1).
    pub gallery: usize,
    /// The images are overhead tiles (Sat2Cap encoder) instead of ground-level photos.
    pub overhead: bool,
    /// Allow image paths leading outside the CSV's folder.
    pub allow_outside: bool,
}

/// What [`eval_text_retrieval`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TextEvalReport {
    /// Captions querying images.
    pub text_to_image: RetrievalMetrics,
    /// Images querying captions.
    pub image_to_text: RetrievalMetrics,
    /// Pairs left out: `(which, why)`.
    pub skipped: Vec<(String, String)>,
}

/// Pairs embedded a batch at a time.
const BATCH: usize = 32;

/// Measures caption <-> image retrieval over the pairs of `opts.pairs`, with the model
/// `load` returns (loaded once the CSV has been read). A bad row or image leaves that pair
/// out (said through `progress`, listed in the report).
pub fn eval_text_retrieval<E: Embedder>(
    load: impl FnOnce() -> Result<E, JobError>,
    opts: &TextEvalOptions,
    progress: &dyn Progress,
) -> Result<TextEvalReport, JobError> {
    if opts.gallery == 0 {
        return Err(JobError::input("the gallery must hold at least 1 pair"));
    }
    let base = listing_folder(&opts.pairs);
    let table = crate::io::text::CsvTable::open(&opts.pairs).map_err(JobError::input)?;
    let (Some(ci), Some(cc)) = (table.column("image"), table.column("caption")) else {
        return Err(JobError::input(format!(
            "{}: header must name image,caption",
            opts.pairs.display()
        )));
    };
    let mut rows: Vec<(String, PathBuf, String)> = Vec::new();
    let mut skipped = table
        .rows(|line, rec| {
            let (i, c) = (rec.get(ci).unwrap_or(""), rec.get(cc).unwrap_or(""));
            if i.is_empty() || c.trim().is_empty() {
                return Err("empty image or caption".into());
            }
            rows.push((
                line.to_string(),
                listed_path(&base, i, opts.allow_outside)?,
                c.to_string(),
            ));
            Ok(())
        })
        .map_err(JobError::input)?;
    for (what, why) in &skipped {
        progress.note(&format!("skipped {what}: {why}"));
    }
    if rows.is_empty() {
        return Err(JobError::input(format!(
            "no usable pairs in {}",
            opts.pairs.display()
        )));
    }
    let model = load()?;
    let (mut images, mut texts) = (Vec::new(), Vec::new());
    progress.begin(
        "pairs",
        Some(rows.len().min(opts.gallery) as u64),
        Unit::Items,
    );
    let mut next = 0;
    while images.len() < opts.gallery && next < rows.len() {
        let take = (opts.gallery - images.len()).min(BATCH);
        let chunk = &rows[next..(next + take).min(rows.len())];
        next += chunk.len();
        let mut ok = Vec::new();
        for (line, path, caption) in chunk {
            match read_image_file(path) {
                Ok(b) => ok.push((line, path, caption.as_str(), b)),
                Err(e) => {
                    progress.note(&format!("skipped {line}: {e}"));
                    skipped.push((line.clone(), e.to_string()));
                    progress.advance(1);
                }
            }
        }
        let bytes: Vec<&[u8]> = ok.iter().map(|(_, _, _, b)| b.as_slice()).collect();
        let captions: Vec<&str> = ok.iter().map(|(_, _, c, _)| *c).collect();
        let vs = if opts.overhead {
            model.embed_overhead(&bytes, None)
        } else {
            model.embed_ground(&bytes)
        };
        let ts = model.embed_text(&captions).map_err(JobError::runtime)?;
        for (((line, path, _, _), v), t) in ok.iter().zip(vs).zip(ts) {
            match v {
                Ok(v) => {
                    images.push(v);
                    texts.push(t);
                }
                Err(e) => {
                    let e = image_error(path, &e);
                    progress.note(&format!("skipped {line}: {e}"));
                    skipped.push(((*line).clone(), e.to_string()));
                }
            }
            progress.advance(1);
        }
    }
    progress.end();
    if images.is_empty() {
        return Err(JobError::input(format!(
            "no usable pairs in {}",
            opts.pairs.display()
        )));
    }
    Ok(TextEvalReport {
        text_to_image: paired_metrics(&texts, &images),
        image_to_text: paired_metrics(&images, &texts),
        skipped,
    })
}
