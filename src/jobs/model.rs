//! Choosing the encoders a job runs: real weights from a folder, or seeded random weights
//! (labelled as such everywhere: their embeddings show the pipeline, not meaning).
//!
//! Test hook: with the environment variable `SAT2CAP_TINY_MODEL=1`, the encoders (random, or
//! loaded from `--weights`, e.g. `tests/data/encoders/tiny`) use the tiny shapes of the parity
//! tests (64 px images, width 64 / 16, 2 layers, still 512-d outputs) so that integration
//! tests run the real binary in seconds. Never for real use.

use std::path::{Path, PathBuf};

use crate::encoders::config::{ClipTextConfig, ClipVisionConfig};
use crate::encoders::{DeviceChoice, Encoders, EncodersConfig, OverheadPreprocess, Precision};

use super::fingerprint::{
    checksum_file, file_weights_id, random_weights_id, EncoderKind, ModelFingerprint,
};
use super::JobError;

/// The seed of the random encoders: every command uses the same one, so a database built
/// with random weights can be queried consistently.
pub const RANDOM_SEED: u64 = 2307;

/// Which weights are in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// Loaded from a folder.
    Weights {
        /// The folder.
        dir: PathBuf,
        /// Identity of `clip/model.safetensors` (see [`super::fingerprint`]).
        clip: String,
        /// Identity of `sat2cap/model.safetensors`.
        sat2cap: String,
    },
    /// Seeded random ViT-B/32 (or tiny, under `SAT2CAP_TINY_MODEL`).
    Random {
        /// The seed.
        seed: u64,
        /// Tiny test shapes.
        tiny: bool,
    },
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Weights { dir, .. } => write!(f, "weights from {}", dir.display()),
            ModelSource::Random { seed, tiny } => write!(
                f,
                "RANDOM {}weights (seed {seed})",
                if *tiny { "tiny test " } else { "" }
            ),
        }
    }
}

impl ModelSource {
    /// Identity of the CLIP weights (text and ground-image towers).
    pub fn clip_id(&self) -> String {
        match self {
            ModelSource::Weights { clip, .. } => clip.clone(),
            ModelSource::Random { seed, tiny } => random_weights_id(*seed, shapes(*tiny)),
        }
    }

    /// Identity of the Sat2Cap weights (overhead tower and dynamic encoder).
    pub fn sat2cap_id(&self) -> String {
        match self {
            ModelSource::Weights { sat2cap, .. } => sat2cap.clone(),
            ModelSource::Random { seed, tiny } => random_weights_id(*seed, shapes(*tiny)),
        }
    }

    /// The fingerprint of the vectors `encoder` makes with these weights (dimension `dim`).
    pub fn fingerprint(&self, encoder: EncoderKind, dim: usize) -> ModelFingerprint {
        let weights = match encoder {
            EncoderKind::Sat2capOverhead => self.sat2cap_id(),
            EncoderKind::ClipImage | EncoderKind::ClipText => self.clip_id(),
        };
        ModelFingerprint {
            encoder,
            dim: u32::try_from(dim).unwrap_or(u32::MAX),
            weights,
            clip: self.clip_id(),
        }
    }
}

fn shapes(tiny: bool) -> &'static str {
    if tiny {
        "tiny"
    } else {
        "vit-b32"
    }
}

/// The note printed once when random weights are used.
pub const RANDOM_NOTE: &str = "note: no model weights given (--weights DIR or SAT2CAP_WEIGHTS): \
using seeded RANDOM encoders. Everything runs, but scores, maps and matches show the pipeline, \
not meaning. Real weights: docs/ENCODERS.md.";

/// The tiny test configuration (see the module docs).
pub fn tiny_config() -> EncodersConfig {
    EncodersConfig {
        text: ClipTextConfig::tiny(),
        ground: ClipVisionConfig::tiny(),
        overhead: ClipVisionConfig::tiny(),
        overhead_preprocess: OverheadPreprocess {
            crop: None,
            size: 64,
            ..OverheadPreprocess::default()
        },
        max_batch: 8,
        ..EncodersConfig::vit_b32()
    }
}

/// Whether `SAT2CAP_TINY_MODEL` asks for the tiny test shapes.
pub fn tiny_requested() -> bool {
    std::env::var("SAT2CAP_TINY_MODEL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The weights folder from `--weights` or `SAT2CAP_WEIGHTS`.
pub fn weights_dir(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("SAT2CAP_WEIGHTS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Loads the encoders: from `weights` if given, else random when `allow_random`, else an
/// input error saying how to choose.
pub fn load(
    weights: Option<&Path>,
    allow_random: bool,
    device: DeviceChoice,
) -> Result<(Encoders, ModelSource), JobError> {
    load_with_precision(weights, allow_random, device, Precision::F32)
}

/// [`load`] in the given precision (f16: see [`Precision`]).
pub fn load_with_precision(
    weights: Option<&Path>,
    allow_random: bool,
    device: DeviceChoice,
    precision: Precision,
) -> Result<(Encoders, ModelSource), JobError> {
    if let Some(dir) = weights_dir(weights) {
        if !dir.is_dir() {
            return Err(JobError::input(format!(
                "weights folder {} does not exist",
                dir.display()
            )));
        }
        // The test hook loads tiny test checkpoints (tests/data/encoders/tiny) too.
        let base = if tiny_requested() {
            tiny_config()
        } else {
            EncodersConfig::vit_b32()
        };
        let cfg = EncodersConfig { precision, ..base };
        let e = Encoders::load_with_config(&dir, device, cfg).map_err(|e| {
            JobError::runtime(format!("loading weights from {}: {e}", dir.display()))
        })?;
        let id = |rel: &str| {
            let p = dir.join(rel);
            checksum_file(&p)
                .map(|(crc, len)| file_weights_id(crc, len))
                .map_err(|e| JobError::runtime(format!("reading {}: {e}", p.display())))
        };
        let (clip, sat2cap) = (
            id("clip/model.safetensors")?,
            id("sat2cap/model.safetensors")?,
        );
        return Ok((e, ModelSource::Weights { dir, clip, sat2cap }));
    }
    if !allow_random {
        return Err(JobError::input(
            "no model weights: pass --weights DIR (or set SAT2CAP_WEIGHTS), or --random-weights \
             to run the pipeline with seeded random encoders",
        ));
    }
    let tiny = tiny_requested();
    let mut cfg = if tiny {
        tiny_config()
    } else {
        EncodersConfig::vit_b32()
    };
    cfg.precision = precision;
    let e = Encoders::random_with_config(RANDOM_SEED, device, cfg).map_err(JobError::runtime)?;
    Ok((
        e,
        ModelSource::Random {
            seed: RANDOM_SEED,
            tiny,
        },
    ))
}
