//! Captions generated for a tile by ClipCap (`describe --generate`), from the tile's
//! Sat2Cap embedding: a stored tile's vector, or an overhead image file embedded now.
//!
//! Sat2Cap generated its captions this way (mvrl/Sat2Cap `sat2cap/evaluations/clipcap.py`
//! and `embed_to_text.py`): the Conceptual Captions MLP checkpoint, prefix length 10, fed
//! the UNnormalised Sat2Cap overhead embedding (with the dynamic encoder's output added),
//! `generate_beam(..., beam_size=1)`. The database keeps unit vectors only, so the caller
//! chooses the norm a vector is scaled to before the mapper
//! ([`CaptionJob::prefix_norm`], else the model's `config.json` `prefix_norm`, else none:
//! the unit vector as it is).

use std::path::Path;

use super::fingerprint::{
    check_kind, checksum_file, describe_weights, file_weights_id, EncoderKind, ModelFingerprint,
};
use super::lookup::{embed_image_file, QueryInput};
use super::model::{Embedder, ModelOptions, RANDOM_SEED};
use super::JobError;
use crate::encoders::{Captioner, ClipCapConfig, EncodeError, GenerateOptions, Generated};
use crate::{Progress, Snapshot};

/// ClipCap with the identity of its weights.
#[derive(Debug)]
pub struct CaptionModel {
    captioner: Captioner,
    /// `random:seed=N:<shapes>` or `crc32c:<hex>:<bytes>` of the weights file.
    weights: String,
}

impl CaptionModel {
    /// Loads the captioner `opts` asks for: `<weights>/clipcap/` (layout: docs/ENCODERS.md),
    /// or with `random` and no weights SEEDED RANDOM ClipCap (GPT-2 small shapes, or the
    /// tiny test shapes with `tiny`).
    pub fn load(opts: &ModelOptions) -> Result<CaptionModel, JobError> {
        if let Some(dir) = &opts.weights {
            let captioner = Captioner::load(dir, opts.device).map_err(|e| load_error(dir, e))?;
            let file = crate::encoders::clipcap_weights_file(dir)
                .map_err(|e| JobError::input(format!("weights in {}: {e}", dir.display())))?;
            let (crc, len) = checksum_file(&file)
                .map_err(|e| JobError::runtime(format!("reading {}: {e}", file.display())))?;
            return Ok(CaptionModel {
                captioner,
                weights: file_weights_id(crc, len),
            });
        }
        if !opts.random {
            return Err(JobError::input(
                "no model weights given, and random weights were not asked for",
            ));
        }
        let (config, shapes) = if opts.tiny {
            (ClipCapConfig::tiny(), "clipcap-tiny")
        } else {
            (ClipCapConfig::default(), "clipcap-gpt2")
        };
        let captioner =
            Captioner::random(RANDOM_SEED, opts.device, config).map_err(JobError::runtime)?;
        Ok(CaptionModel {
            captioner,
            weights: super::fingerprint::random_weights_id(RANDOM_SEED, shapes),
        })
    }

    /// The captioner.
    pub fn captioner(&self) -> &Captioner {
        &self.captioner
    }

    /// Whether its weights are seeded random (its captions then mean nothing).
    pub fn is_random(&self) -> bool {
        self.weights.starts_with("random:")
    }

    /// One line for the user: which weights, which mapper, on which device.
    pub fn describe(&self) -> String {
        let c = self.captioner.config();
        format!(
            "ClipCap ({:?} mapper, prefix {}, GPT-2 {} layers x {}), {} on {}",
            c.mapping_type,
            c.prefix_length,
            c.gpt2.n_layer,
            c.gpt2.n_embd,
            describe_weights(&self.weights),
            self.captioner.device_name()
        )
    }
}

fn load_error(dir: &Path, e: EncodeError) -> JobError {
    let bad_input = match &e {
        EncodeError::Weights(w) => w.is_bad_input(),
        EncodeError::Tokenizer(_) | EncodeError::Input(_) => true,
        _ => false,
    };
    let m = format!("loading the captioner from {}: {e}", dir.display());
    if bad_input {
        JobError::input(m)
    } else {
        JobError::runtime(m)
    }
}

/// What to caption and how.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionJob {
    /// A stored tile ([`QueryInput::TileId`]) or an overhead image file
    /// ([`QueryInput::Image`] with `overhead`).
    pub tile: QueryInput,
    /// Greedy or beam search, and the most tokens.
    pub generate: GenerateOptions,
    /// The norm the (unit) embedding is scaled to before the mapper; `None`: the model's
    /// `prefix_norm`, else as it is.
    pub prefix_norm: Option<f32>,
}

/// What [`generate_captions`] made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptionReport {
    /// The tile, in words (`tile 12 of 'overhead'` or the file).
    pub input: String,
    /// `greedy` or `beam`.
    pub search: &'static str,
    /// The beam width, for beam search.
    pub beam: Option<usize>,
    /// The most tokens per caption.
    pub max_tokens: usize,
    /// The norm the embedding was scaled to (`None`: fed as stored, a unit vector).
    pub prefix_norm: Option<f32>,
    /// Whether the captioner's weights are seeded random.
    pub random: bool,
    /// Greedy: one caption; beam search: `beam` captions, best first.
    pub captions: Vec<Generated>,
}

/// Generates captions for a tile with `model`. `embedder` embeds an image file (required for
/// [`QueryInput::Image`]); a stored tile's collection must hold Sat2Cap overhead embeddings
/// when it records its model, and random and real weights never mix (an input error);
/// a collection that records no model is said through `progress`.
pub fn generate_captions(
    snap: &Snapshot,
    embedder: Option<&dyn Embedder>,
    model: &CaptionModel,
    job: &CaptionJob,
    progress: &dyn Progress,
) -> Result<CaptionReport, JobError> {
    let mix = |embeddings_random: bool, whose: &str| {
        if embeddings_random != model.is_random() {
            let (e, c) = if embeddings_random {
                ("RANDOM", "real")
            } else {
                ("real", "RANDOM")
            };
            return Err(JobError::input(format!(
                "{whose} comes from {e} weights but the captioner has {c} weights: random and \
                 real weights never mix (use --random-weights for both, or real weights for both)"
            )));
        }
        Ok(())
    };
    let (vector, input) = match &job.tile {
        QueryInput::TileId { id, from } => {
            let view = super::collection(snap, from)?;
            check_kind(&view, EncoderKind::Sat2capOverhead, "a generated caption")?;
            match ModelFingerprint::of(&view)? {
                Some(f) => mix(
                    f.weights.starts_with("random:"),
                    &format!("collection '{from}'"),
                )?,
                None => progress.note(&format!(
                    "warning: collection '{from}' records no model: cannot check that it holds \
                     Sat2Cap embeddings in the CLIP space ClipCap was trained on"
                )),
            }
            let item = view
                .get(*id)
                .map_err(JobError::runtime)?
                .ok_or_else(|| JobError::input(format!("no tile with id {id} in '{from}'")))?;
            let v: Vec<f32> = item.vector.iter().map(|h| h.to_f32()).collect();
            (v, format!("tile {id} of '{from}'"))
        }
        QueryInput::Image {
            path,
            overhead: true,
        } => {
            let m = embedder.ok_or_else(|| {
                JobError::input("an image file needs an encoder, and none was given")
            })?;
            mix(m.is_random(), "the tile encoder")?;
            if !path.exists() {
                return Err(JobError::input(format!("no image file {}", path.display())));
            }
            (embed_image_file(m, path, true)?, path.display().to_string())
        }
        other => {
            return Err(JobError::input(format!(
                "captions are generated for a stored tile or an overhead image file, not {other:?}"
            )))
        }
    };
    let captioner = model.captioner();
    let prefix_norm = job.prefix_norm.or(captioner.config().prefix_norm);
    if let Some(n) = prefix_norm {
        if !(n.is_finite() && n > 0.0) {
            return Err(JobError::input(format!(
                "prefix norm {n} must be a positive number"
            )));
        }
    }
    let vector = scale(vector, prefix_norm);
    let captions = captioner
        .caption(&vector, &job.generate)
        .map_err(|e| match e {
            EncodeError::Input(m) => JobError::input(m),
            e => JobError::runtime(e),
        })?;
    Ok(CaptionReport {
        input,
        search: if job.generate.beam.is_some() {
            "beam"
        } else {
            "greedy"
        },
        beam: job.generate.beam,
        max_tokens: job.generate.max_tokens,
        prefix_norm,
        random: model.is_random(),
        captions,
    })
}

/// `v` scaled to L2 norm `norm` (as it is without one, or when it is all zeros).
fn scale(mut v: Vec<f32>, norm: Option<f32>) -> Vec<f32> {
    let Some(target) = norm else {
        return v;
    };
    let n = crate::index::norm_f64(&v);
    if n > 0.0 {
        let k = f64::from(target) / n;
        v.iter_mut().for_each(|x| *x = (f64::from(*x) * k) as f32);
    }
    v
}
