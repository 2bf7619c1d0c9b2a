//! Which model made a collection's vectors, recorded with the collection (the collection
//! property [`MODEL_PROPERTY`], JSON; see docs/FORMAT.md), and the checks that keep embeddings
//! of different models apart.
//!
//! A fingerprint names the encoder (`sat2cap-overhead`, `clip-image`, `clip-text`), the
//! dimension, the weights of the tower that computed the vectors (`weights`) and the CLIP
//! weights whose embedding space they live in (`clip`; the same as `weights` for the CLIP
//! towers). Weights are identified by a content checksum of their safetensors file
//! (`crc32c:<hex>:<bytes>`) or, for the seeded random encoders, by `random:seed=<N>:<shapes>`.
//!
//! The rules (what must match):
//! - adding vectors to a collection: the whole fingerprint (encoder, dim, weights, clip);
//! - comparing vectors (a text / image query against a collection, or a tile of one collection
//!   against another collection): the `clip` space. Sat2Cap's overhead tower is trained into
//!   the embedding space of the frozen CLIP towers, so an overhead collection is comparable
//!   with text and ground photos encoded by the CLIP weights it was ingested beside, and by
//!   nothing else: real weights and the random demo weights never mix.

use serde::{Deserialize, Serialize};

use crate::Collection;

use super::JobError;

/// The collection property that holds the fingerprint.
pub const MODEL_PROPERTY: &str = "sat2cap.model";

/// The encoder that computed a collection's vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncoderKind {
    /// The Sat2Cap overhead tower (tiles).
    #[serde(rename = "sat2cap-overhead")]
    Sat2capOverhead,
    /// The frozen CLIP image tower (ground-level photos).
    #[serde(rename = "clip-image")]
    ClipImage,
    /// The frozen CLIP text tower (captions).
    #[serde(rename = "clip-text")]
    ClipText,
}

impl EncoderKind {
    /// The name used on disk and in messages.
    pub fn name(self) -> &'static str {
        match self {
            EncoderKind::Sat2capOverhead => "sat2cap-overhead",
            EncoderKind::ClipImage => "clip-image",
            EncoderKind::ClipText => "clip-text",
        }
    }
}

impl std::fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which model made a collection's vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFingerprint {
    /// The encoder.
    pub encoder: EncoderKind,
    /// Vector dimension.
    pub dim: u32,
    /// The weights of the tower that computed the vectors.
    pub weights: String,
    /// The CLIP weights whose embedding space the vectors live in.
    pub clip: String,
    /// How the inputs were prepared: `resize224` / `crop800+resize224` (overhead tiles),
    /// `squash224` / `clip-crop224` (ground-level photos), `hf-fast` / `ftfy` (text);
    /// `None` in collections made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<String>,
}

#[cfg(feature = "encoders")]
/// The identity of seeded random weights: `random:seed=<seed>:<shapes>`.
pub fn random_weights_id(seed: u64, shapes: &str) -> String {
    format!("random:seed={seed}:{shapes}")
}

#[cfg(feature = "encoders")]
/// The identity of a weights file from its CRC-32C and length: `crc32c:<8 hex>:<bytes>`.
pub fn file_weights_id(crc: u32, len: u64) -> String {
    format!("crc32c:{crc:08x}:{len}")
}

#[cfg(feature = "encoders")]
/// CRC-32C and length of a file, read in 8 MiB blocks.
pub fn checksum_file(path: &std::path::Path) -> std::io::Result<(u32, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 8 << 20];
    let (mut crc, mut len) = (0u32, 0u64);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((crc, len));
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        len += n as u64;
    }
}

/// A weights identity in words: "RANDOM weights (seed 2307, vit-b32)" or
/// "weights crc32c 1a2b3c4d (605157884 bytes)".
pub fn describe_weights(id: &str) -> String {
    if let Some(rest) = id.strip_prefix("random:seed=") {
        let (seed, shapes) = rest.split_once(':').unwrap_or((rest, "?"));
        return format!("RANDOM weights (seed {seed}, {shapes})");
    }
    if let Some(rest) = id.strip_prefix("crc32c:") {
        let (crc, len) = rest.split_once(':').unwrap_or((rest, "?"));
        return format!("weights crc32c {crc} ({len} bytes)");
    }
    format!("weights '{id}'")
}

impl ModelFingerprint {
    /// The fingerprint recorded with `view`: `Ok(None)` if none is recorded (a collection made
    /// before fingerprints, or by `import`); an error if the property is not a fingerprint.
    pub fn of(view: &Collection<'_>) -> Result<Option<ModelFingerprint>, JobError> {
        let Some(text) = view.property(MODEL_PROPERTY) else {
            return Ok(None);
        };
        serde_json::from_str(text).map(Some).map_err(|e| {
            JobError::runtime(format!(
                "collection '{}': unreadable {MODEL_PROPERTY} property ({e})",
                view.name()
            ))
        })
    }

    /// The JSON stored in the property.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// In words, for `info` and messages.
    pub fn describe(&self) -> String {
        if self.weights == self.clip {
            format!(
                "{}, {}-d, {}",
                self.encoder,
                self.dim,
                describe_weights(&self.weights)
            )
        } else {
            format!(
                "{}, {}-d, {}, CLIP {}",
                self.encoder,
                self.dim,
                describe_weights(&self.weights),
                describe_weights(&self.clip)
            )
        }
    }

    /// The first field that differs from `other`, in words (`None` if they are equal).
    pub fn difference(&self, other: &ModelFingerprint) -> Option<String> {
        if self.encoder != other.encoder {
            return Some(format!(
                "it holds {} embeddings, this makes {} embeddings",
                self.encoder, other.encoder
            ));
        }
        if self.dim != other.dim {
            return Some(format!(
                "it holds {}-d vectors, this model makes {}-d vectors",
                self.dim, other.dim
            ));
        }
        if self.weights != other.weights {
            return Some(format!(
                "it was made with {}, this run uses {}",
                describe_weights(&self.weights),
                describe_weights(&other.weights)
            ));
        }
        if self.clip != other.clip {
            return Some(format!(
                "it lives in the CLIP space of {}, this run uses {}",
                describe_weights(&self.clip),
                describe_weights(&other.clip)
            ));
        }
        None
    }
}

#[cfg(feature = "encoders")]
/// What an ingest must do about the collection's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestModelCheck {
    /// The collection records this model already.
    Same,
    /// Record the model (a new or empty collection, or `--force-model`).
    Record,
}

#[cfg(feature = "encoders")]
/// Checks that `model` may add vectors to the existing collection `view` (the whole
/// fingerprint must match). `force` accepts other weights of the same encoder (and a
/// collection that records no model): the caller then records `model`.
pub fn check_ingest(
    view: &Collection<'_>,
    model: &ModelFingerprint,
    force: bool,
) -> Result<IngestModelCheck, JobError> {
    let name = view.name();
    match ModelFingerprint::of(view)? {
        Some(stored) => match stored.difference(model) {
            None => Ok(IngestModelCheck::Same),
            // Another encoder is never the same model: --force-model does not cover it.
            Some(_) if force && stored.encoder == model.encoder => Ok(IngestModelCheck::Record),
            Some(why) => Err(JobError::ModelMismatch {
                message: format!(
                    "collection '{name}' was made by a different model ({why}): embeddings of \
                     different models must not mix; use the weights it was made with or \
                     another collection"
                ),
                forceable: stored.encoder == model.encoder,
            }),
        },
        None if view.is_empty() || force => Ok(IngestModelCheck::Record),
        None => Err(JobError::ModelMismatch {
            message: format!(
                "collection '{name}' holds {} vectors but records no model (made before model \
                 fingerprints, or by `import`); forcing records {} for it",
                view.len(),
                model.describe()
            ),
            forceable: true,
        }),
    }
}

#[cfg(feature = "encoders")]
/// Checks that collection `view` holds embeddings of `kind` when it records its model
/// (`needed_by` names the job, for the message); a collection that records none passes.
pub fn check_kind(
    view: &Collection<'_>,
    kind: EncoderKind,
    needed_by: &str,
) -> Result<(), JobError> {
    match ModelFingerprint::of(view)? {
        Some(f) if f.encoder != kind => Err(JobError::input(format!(
            "collection '{}' holds {} embeddings; {needed_by} needs {kind} embeddings",
            view.name(),
            f.encoder
        ))),
        _ => Ok(()),
    }
}

#[cfg(feature = "encoders")]
/// Checks that vectors in the CLIP space `clip` (`what` says whose, e.g. "the query's text
/// encoder") may be compared with the collection `view`. Returns a warning (to print) when the
/// collection records no model, so that nothing can be checked.
pub fn check_space(
    view: &Collection<'_>,
    clip: &str,
    what: &str,
) -> Result<Option<String>, JobError> {
    let name = view.name();
    match ModelFingerprint::of(view)? {
        Some(stored) if stored.clip == clip => Ok(None),
        Some(stored) => Err(JobError::input(format!(
            "collection '{name}' lives in the CLIP space of {} but {what} uses {}: their \
             scores would be meaningless (use the weights the collection was ingested with)",
            describe_weights(&stored.clip),
            describe_weights(clip)
        ))),
        None => Ok(Some(unchecked(name))),
    }
}

#[cfg(feature = "encoders")]
/// Checks that the vectors of collection `from` may be compared with those of `to` (same CLIP
/// space). Returns a warning when either records no model.
pub fn check_collections(
    from: &Collection<'_>,
    to: &Collection<'_>,
) -> Result<Option<String>, JobError> {
    match ModelFingerprint::of(from)? {
        Some(f) => check_space(
            to,
            &f.clip,
            &format!("collection '{}' (the query)", from.name()),
        ),
        None => Ok(Some(unchecked(from.name()))),
    }
}

#[cfg(feature = "encoders")]
fn unchecked(name: &str) -> String {
    format!(
        "warning: collection '{name}' records no model (made before model fingerprints, or by \
         `import`): cannot check that the query comes from the same model"
    )
}
