//! The seam between the jobs and the encoders ([`Embedder`]), and the built-in encoders
//! behind it ([`Model`]): real weights from a folder, or seeded random weights (labelled as
//! such everywhere: their embeddings show the pipeline, not meaning).
//!
//! Adding an encoder (another CLIP size, a multispectral overhead model) is a type that
//! implements [`Embedder`], and a way to choose it where the caller builds its model (for
//! the built-in ones, [`ModelOptions`] and [`Model::load`]); the jobs need no change.
//!
//! [`ModelOptions::tiny`] selects the tiny shapes of the parity tests (64 px images, width
//! 64 / 16, 2 layers, still 512-d outputs), so that integration tests run the real binary
//! in seconds (random weights, or tiny checkpoints such as `tests/data/encoders/tiny`).
//! Never for real use.

use std::path::{Path, PathBuf};

use image::ImageEncoder;

use crate::encoders::{
    ClipTextConfig, ClipVisionConfig, DeviceChoice, EncodeError, Encoders, EncodersConfig,
    GroundResize, Image, Meta, OverheadPreprocess, Precision, TextNorm,
};

use super::fingerprint::{
    checksum_file, file_weights_id, random_weights_id, EncoderKind, ModelFingerprint,
};
use super::JobError;

/// What the jobs need from an encoder: embeddings of texts, ground-level photos and
/// overhead tiles (image files as bytes), and the identity of the model behind each, which
/// collections record and queries are checked against.
pub trait Embedder: Send + Sync {
    /// The identity of the vectors `encoder` makes.
    fn fingerprint(&self, encoder: EncoderKind) -> ModelFingerprint;
    /// L2-normalised text embeddings, one per text.
    fn embed_text(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError>;
    /// L2-normalised embeddings of ground-level photos (encoded image files); a bad file is
    /// an error for that file only.
    fn embed_ground(&self, files: &[&[u8]]) -> Vec<Result<Vec<f32>, EncodeError>>;
    /// L2-normalised embeddings of overhead tiles (encoded image files), with the date, hour
    /// and place of each when `meta` is given (see [`Embedder::has_dynamic`]).
    fn embed_overhead(
        &self,
        files: &[&[u8]],
        meta: Option<&[Meta]>,
    ) -> Vec<Result<Vec<f32>, EncodeError>>;
    /// Whether overhead embeddings can take metadata.
    fn has_dynamic(&self) -> bool;
    /// Whether the weights are seeded random (embeddings then mean nothing).
    fn is_random(&self) -> bool;
    /// One line for the user: which weights, on which device, in which precision.
    fn describe(&self) -> String;
    /// Makes image files ready for [`Embedder::embed_prepared`] without running a model:
    /// ingest prepares the next batch (decoding, resizing) while the model runs on this one.
    /// The default keeps the bytes; one result per file.
    fn prepare(&self, files: &[&[u8]], overhead: bool) -> Vec<Result<Prepared, EncodeError>> {
        let _ = overhead;
        files
            .iter()
            .map(|f| Ok(Prepared::File(f.to_vec())))
            .collect()
    }
    /// Makes decoded images ready for [`Embedder::embed_prepared`] (for pixels that were
    /// never a file: chips cut from a scene). The default writes each as a PNG file; one
    /// result per image.
    fn prepare_images(
        &self,
        images: &[Image],
        overhead: bool,
    ) -> Vec<Result<Prepared, EncodeError>> {
        let _ = overhead;
        images
            .iter()
            .map(|i| Ok(Prepared::File(png_bytes(i)?)))
            .collect()
    }
    /// Embeds what [`Embedder::prepare`] made (overhead tiles without metadata, or
    /// ground-level photos), one result per item.
    fn embed_prepared(
        &self,
        items: &[Prepared],
        overhead: bool,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        let files: Option<Vec<&[u8]>> = items
            .iter()
            .map(|p| match p {
                Prepared::File(f) => Some(f.as_slice()),
                Prepared::Pixels(_) => None,
            })
            .collect();
        match (files, overhead) {
            (Some(f), true) => self.embed_overhead(&f, None),
            (Some(f), false) => self.embed_ground(&f),
            (None, _) => items
                .iter()
                .map(|_| {
                    Err(EncodeError::Input(
                        "pixel tensors this encoder did not prepare".into(),
                    ))
                })
                .collect(),
        }
    }
}

/// `img` as PNG file bytes.
pub(crate) fn png_bytes(img: &Image) -> Result<Vec<u8>, EncodeError> {
    let (w, h) = (u32::try_from(img.width()), u32::try_from(img.height()));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err(EncodeError::Input("image too large".into()));
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_rgb8(), w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| EncodeError::Input(format!("writing a PNG: {e}")))?;
    Ok(out)
}

/// An image made ready for a model by [`Embedder::prepare`].
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    /// The file's bytes, as given.
    File(Vec<u8>),
    /// The model's input: a pixel tensor `[3, S, S]`, flattened.
    Pixels(Vec<f32>),
}

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
        /// Identity (CRC-32C and size) of the CLIP weights file the encoders were loaded
        /// from (`clip/model.safetensors` or `clip/pytorch_model.bin`).
        clip: String,
        /// Identity of the Sat2Cap weights file (`sat2cap/model.safetensors`,
        /// `sat2cap/pytorch_model.bin` or the `*.ckpt`).
        sat2cap: String,
    },
    /// Seeded random ViT-B/32 (or the tiny test shapes).
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
            preprocess: None,
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

impl<T: Embedder + ?Sized> Embedder for &T {
    fn fingerprint(&self, encoder: EncoderKind) -> ModelFingerprint {
        (**self).fingerprint(encoder)
    }
    fn embed_text(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        (**self).embed_text(texts)
    }
    fn embed_ground(&self, files: &[&[u8]]) -> Vec<Result<Vec<f32>, EncodeError>> {
        (**self).embed_ground(files)
    }
    fn embed_overhead(
        &self,
        files: &[&[u8]],
        meta: Option<&[Meta]>,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        (**self).embed_overhead(files, meta)
    }
    fn has_dynamic(&self) -> bool {
        (**self).has_dynamic()
    }
    fn is_random(&self) -> bool {
        (**self).is_random()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn prepare(&self, files: &[&[u8]], overhead: bool) -> Vec<Result<Prepared, EncodeError>> {
        (**self).prepare(files, overhead)
    }
    fn embed_prepared(
        &self,
        items: &[Prepared],
        overhead: bool,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        (**self).embed_prepared(items, overhead)
    }
}

/// Which encoders [`Model::load`] loads.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// The weights folder (layout: docs/ENCODERS.md); `None`: random weights if `random`.
    pub weights: Option<PathBuf>,
    /// Without `weights`, use seeded random encoders (else loading is an input error that
    /// says how to choose).
    pub random: bool,
    /// The tiny test shapes (see the module docs).
    pub tiny: bool,
    /// Where the models run.
    pub device: DeviceChoice,
    /// Weights and activations precision.
    pub precision: Precision,
    /// How ground-level photos are resized (default: Sat2Cap's squash to 224 x 224).
    pub ground_resize: GroundResize,
    /// A centred square crop of overhead tiles before resizing (default none: the whole tile).
    pub overhead_crop: Option<usize>,
    /// How text is normalised (default: the fast tokenizer Sat2Cap used).
    pub text_norm: TextNorm,
}

impl Default for ModelOptions {
    /// No weights, not random (loading then says how to choose), ViT-B/32, CPU, f32.
    fn default() -> Self {
        ModelOptions {
            weights: None,
            random: false,
            tiny: false,
            device: DeviceChoice::Cpu,
            precision: Precision::F32,
            ground_resize: GroundResize::default(),
            overhead_crop: None,
            text_norm: TextNorm::default(),
        }
    }
}

impl ModelOptions {
    /// Seeded random ViT-B/32 encoders on the CPU (demos and examples).
    pub fn random() -> Self {
        ModelOptions {
            random: true,
            ..ModelOptions::default()
        }
    }
}

/// The tiny test configuration (see the module docs).
fn tiny_config() -> EncodersConfig {
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

/// The built-in encoders (CLIP text and image towers, Sat2Cap overhead + dynamic encoder)
/// with the identity of their weights.
#[derive(Debug)]
pub struct Model {
    encoders: Encoders,
    source: ModelSource,
}

impl Model {
    /// Loads the encoders `opts` asks for.
    pub fn load(opts: &ModelOptions) -> Result<Model, JobError> {
        let base = if opts.tiny {
            tiny_config()
        } else {
            EncodersConfig::vit_b32()
        };
        let cfg = EncodersConfig {
            precision: opts.precision,
            ground_resize: opts.ground_resize,
            text_norm: opts.text_norm,
            overhead_preprocess: OverheadPreprocess {
                crop: opts.overhead_crop,
                ..base.overhead_preprocess.clone()
            },
            ..base
        };
        if let Some(dir) = &opts.weights {
            if !dir.is_dir() {
                return Err(JobError::input(if dir.exists() {
                    format!("weights folder {} is not a folder", dir.display())
                } else {
                    format!("weights folder {} does not exist", dir.display())
                }));
            }
            let encoders = Encoders::load_with_config(dir, opts.device, cfg).map_err(|e| {
                let bad_input = matches!(&e, EncodeError::Weights(w) if w.is_bad_input())
                    || matches!(&e, EncodeError::Tokenizer(_));
                let m = format!("loading weights from {}: {e}", dir.display());
                if bad_input {
                    JobError::input(m)
                } else {
                    JobError::runtime(m)
                }
            })?;
            // The files the encoders were loaded from (safetensors, pytorch_model.bin or a
            // Lightning checkpoint: see `find_weights`).
            let files = crate::encoders::find_weights(dir)
                .map_err(|e| JobError::input(format!("weights in {}: {e}", dir.display())))?;
            let id = |p: &Path| {
                checksum_file(p)
                    .map(|(crc, len)| file_weights_id(crc, len))
                    .map_err(|e| JobError::runtime(format!("reading {}: {e}", p.display())))
            };
            let (clip, sat2cap) = (id(&files.clip)?, id(&files.sat2cap)?);
            let source = ModelSource::Weights {
                dir: dir.clone(),
                clip,
                sat2cap,
            };
            return Ok(Model { encoders, source });
        }
        if !opts.random {
            return Err(JobError::input(
                "no model weights given, and random weights were not asked for",
            ));
        }
        let encoders = Encoders::random_with_config(RANDOM_SEED, opts.device, cfg)
            .map_err(JobError::runtime)?;
        let source = ModelSource::Random {
            seed: RANDOM_SEED,
            tiny: opts.tiny,
        };
        Ok(Model { encoders, source })
    }

    /// The encoders.
    pub fn encoders(&self) -> &Encoders {
        &self.encoders
    }

    /// Which weights are loaded.
    pub fn source(&self) -> &ModelSource {
        &self.source
    }
}

impl Embedder for Model {
    fn fingerprint(&self, encoder: EncoderKind) -> ModelFingerprint {
        let c = self.encoders.config();
        let (dim, preprocess) = match encoder {
            EncoderKind::Sat2capOverhead => {
                let mut p = c.overhead_preprocess.clone();
                p.size = c.overhead.image_size;
                (c.overhead.projection_dim, p.name())
            }
            EncoderKind::ClipImage => (
                c.ground.projection_dim,
                format!("{}{}", c.ground_resize.name(), c.ground.image_size),
            ),
            EncoderKind::ClipText => (c.text.projection_dim, c.text_norm.name().to_string()),
        };
        ModelFingerprint {
            preprocess: Some(preprocess),
            ..self.source.fingerprint(encoder, dim)
        }
    }

    fn embed_text(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        self.encoders.encode_text(texts)
    }

    fn embed_ground(&self, files: &[&[u8]]) -> Vec<Result<Vec<f32>, EncodeError>> {
        self.encoders.encode_ground_bytes(files)
    }

    fn embed_overhead(
        &self,
        files: &[&[u8]],
        meta: Option<&[Meta]>,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        self.encoders.encode_overhead_bytes(files, meta)
    }

    fn has_dynamic(&self) -> bool {
        self.encoders.has_dynamic()
    }

    fn prepare_images(
        &self,
        images: &[Image],
        overhead: bool,
    ) -> Vec<Result<Prepared, EncodeError>> {
        let px = if overhead {
            self.encoders.overhead_pixels(images)
        } else {
            self.encoders.ground_pixels(images)
        };
        px.into_iter().map(|p| Ok(Prepared::Pixels(p))).collect()
    }

    fn prepare(&self, files: &[&[u8]], overhead: bool) -> Vec<Result<Prepared, EncodeError>> {
        self.encoders
            .prepare_bytes(files, overhead)
            .into_iter()
            .map(|r| r.map(Prepared::Pixels))
            .collect()
    }

    fn embed_prepared(
        &self,
        items: &[Prepared],
        overhead: bool,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        let pixels: Option<Vec<Vec<f32>>> = items
            .iter()
            .map(|p| match p {
                Prepared::Pixels(px) => Some(px.clone()),
                Prepared::File(_) => None,
            })
            .collect();
        let Some(pixels) = pixels else {
            let files: Vec<&[u8]> = items
                .iter()
                .map(|p| match p {
                    Prepared::File(f) => f.as_slice(),
                    Prepared::Pixels(_) => &[],
                })
                .collect();
            return if overhead {
                self.embed_overhead(&files, None)
            } else {
                self.embed_ground(&files)
            };
        };
        let r = if overhead {
            self.encoders.encode_overhead_pixels(&pixels, None)
        } else {
            self.encoders.encode_ground_pixels(&pixels)
        };
        match r {
            Ok(vs) => vs.into_iter().map(Ok).collect(),
            Err(e) => {
                let m = e.to_string();
                items
                    .iter()
                    .map(|_| Err(EncodeError::Backend(m.clone())))
                    .collect()
            }
        }
    }

    fn is_random(&self) -> bool {
        matches!(self.source, ModelSource::Random { .. })
    }

    fn describe(&self) -> String {
        format!(
            "{} on {}, {}",
            self.source,
            self.encoders.device_name(),
            self.encoders.precision()
        )
    }
}
