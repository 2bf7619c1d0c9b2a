//! Encoders: CLIP ViT-B/32 text and image towers and the Sat2Cap overhead + dynamic encoder,
//! in burn 0.21 (CPU: burn Flex; GPU: feature `cuda`).
//!
//! Weights folder layout read by [`Encoders::load`] (each tower takes the first of its files
//! that exists; [`find_weights`] says which):
//!
//! ```text
//! <dir>/clip/model.safetensors     openai/clip-vit-base-patch32 `model.safetensors` (CLIPModel:
//!                                  text_model.*, vision_model.*, text_projection.weight,
//!                                  visual_projection.weight, logit_scale [ignored])
//! <dir>/clip/pytorch_model.bin     or the same as a PyTorch state dict (torch.save)
//! <dir>/clip/vocab.json            optional, with merges.txt: HF tokenizer files; when absent
//! <dir>/clip/merges.txt            the BPE vocabulary embedded in this crate is used
//! <dir>/sat2cap/model.safetensors  overhead tower: vision_model.*, visual_projection.weight
//!                                  (MVRL/Sat2Cap, CLIPVisionModelWithProjection) and, when
//!                                  converted from the training checkpoint with
//!                                  tools/convert_sat2cap_ckpt.py, geo_encoder.fc{1,2}.{weight,bias}
//! <dir>/sat2cap/pytorch_model.bin  or the same as a PyTorch state dict
//! <dir>/sat2cap/*.ckpt             or (exactly one) the Sat2Cap PyTorch Lightning training
//!                                  checkpoint, read directly: its state_dict's
//!                                  imo_encoder.vision_model.* and geo_encoder.*, renamed
//! ```
//!
//! PyTorch files are read by a reader of our own that never executes anything in them (see
//! docs/ENCODERS.md). Loading is strict (a missing or misshaped tensor is a
//! [`WeightsError`]); without `geo_encoder.*` tensors the dynamic encoder is absent and
//! [`Encoders::encode_overhead`] with metadata is an error.
//!
//! All outputs are L2-normalised 512-d vectors. [`Encoders`] is `Send + Sync`: the models
//! are immutable after loading and each call builds its own tensors, so many threads may
//! encode at once (burn's CPU backend parallelises each call internally as well).
//!
//! ```no_run
//! use sat2cap::encoders::{DeviceChoice, Encoders, Meta};
//! # fn main() -> Result<(), sat2cap::encoders::EncodeError> {
//! let enc = Encoders::load(std::path::Path::new("weights"), DeviceChoice::Auto)?;
//! let text = enc.encode_text(&["a busy city street lined with skyscrapers"])?;
//! let tile = std::fs::read("tile.jpg").unwrap_or_default();
//! let meta = Meta { lat: 40.7, lon: -74.0, year: 2012, month: 6, day: 1, hour: 14 };
//! let tiles = enc.encode_overhead_bytes(&[&tile], Some(&[meta]));
//! # Ok(()) }
//! ```

internal! {
    mod activation;
    mod attention;
    mod captioner;
    mod clip;
    mod clipcap;
    mod clip_text;
    mod clip_vision;
    mod config;
    mod device;
    mod dynamic;
    mod engine;
    mod fix_text;
    mod flex;
    mod generate;
    mod gpt2;
    mod gpt2_tokenizer;
    mod preprocess;
    mod pytorch;
    mod tokenizer;
    mod weights;
}

use std::path::Path;

pub use captioner::{read_clipcap_config, Captioner, GenerateOptions, DEFAULT_MAX_TOKENS};
pub use clipcap::{ClipCapConfig, MappingType};
pub use config::{ClipTextConfig, ClipVisionConfig, GeoNetConfig};
pub use device::{DeviceChoice, Precision};
pub use dynamic::{InvalidMeta, Meta};
pub use generate::Generated;
pub use gpt2::Gpt2Config;
pub use gpt2_tokenizer::Gpt2Decoder;
pub use preprocess::{
    GroundResize, Image, ImageError, OverheadPreprocess, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE,
};
pub use tokenizer::{ClipTokenizer, TextNorm, TokenizerError};
pub use weights::{clipcap_weights_file, find_weights, WeightsError, WeightsFiles};

use engine::Engine;

/// burn's CPU backend used by the encoders.
#[cfg(feature = "testing")]
pub type CpuBackend = burn::backend::Flex;
/// burn's CPU backend used by the encoders.
#[cfg(not(feature = "testing"))]
pub(crate) type CpuBackend = burn::backend::Flex;

/// Errors from loading or running the encoders.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A weights file is unreadable or does not match the model.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The tokenizer files are unreadable or malformed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// An image could not be decoded or is unusable.
    #[error("image {index}: {source}")]
    Image {
        /// Position in the batch.
        index: usize,
        /// Cause.
        source: ImageError,
    },
    /// Metadata out of range.
    #[error("metadata {index}: {source}")]
    Meta {
        /// Position in the batch.
        index: usize,
        /// Cause.
        source: InvalidMeta,
    },
    /// Metadata was given but no dynamic encoder is loaded.
    #[error("metadata given, but no dynamic encoder (geo_encoder.*) was loaded")]
    NoDynamicEncoder,
    /// Inputs of inconsistent lengths or invalid configuration.
    #[error("invalid input: {0}")]
    Input(String),
    /// The requested device cannot be used.
    #[error("device unavailable: {0}")]
    Device(String),
    /// The backend failed (a panic inside burn / cubecl, caught).
    #[error("backend failure: {0}")]
    Backend(String),
}

/// Shapes and settings of all encoders.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodersConfig {
    /// Text tower.
    pub text: ClipTextConfig,
    /// Ground-level image tower (frozen CLIP).
    pub ground: ClipVisionConfig,
    /// Overhead image tower (Sat2Cap).
    pub overhead: ClipVisionConfig,
    /// Dynamic encoder.
    pub geo: GeoNetConfig,
    /// Overhead preprocessing.
    pub overhead_preprocess: OverheadPreprocess,
    /// How ground-level photos are resized (default: Sat2Cap's bilinear squash).
    pub ground_resize: GroundResize,
    /// How text is normalised before tokenising (default: the fast tokenizer's).
    pub text_norm: TextNorm,
    /// Largest batch sent to the model at once (>= 1).
    pub max_batch: usize,
    /// Weights / activations precision (default f32).
    pub precision: Precision,
}

impl EncodersConfig {
    /// Sat2Cap with CLIP ViT-B/32 towers, max batch 32.
    pub fn vit_b32() -> Self {
        Self {
            text: ClipTextConfig::vit_b32(),
            ground: ClipVisionConfig::vit_b32(),
            overhead: ClipVisionConfig::vit_b32(),
            geo: GeoNetConfig::sat2cap(),
            overhead_preprocess: OverheadPreprocess::default(),
            ground_resize: GroundResize::default(),
            text_norm: TextNorm::default(),
            max_batch: 32,
            precision: Precision::F32,
        }
    }

    fn validate(&self) -> Result<(), EncodeError> {
        self.text.validate().map_err(EncodeError::Input)?;
        self.ground.validate().map_err(EncodeError::Input)?;
        self.overhead.validate().map_err(EncodeError::Input)?;
        if self.max_batch == 0 {
            return Err(EncodeError::Input("max_batch must be >= 1".into()));
        }
        let crop = self.overhead_preprocess.crop.unwrap_or(0);
        if crop > 16_384 || self.ground.image_size > 4096 || self.overhead.image_size > 4096 {
            return Err(EncodeError::Input(format!(
                "preprocessing sizes out of range: crop {crop} (max 16384), image sizes {} / {} (max 4096)",
                self.ground.image_size, self.overhead.image_size
            )));
        }
        if self.geo.output != self.overhead.projection_dim {
            return Err(EncodeError::Input(format!(
                "GeoNet output {} != overhead projection {}",
                self.geo.output, self.overhead.projection_dim
            )));
        }
        Ok(())
    }
}

/// The loaded encoders. See the module docs for the weights layout.
pub struct Encoders {
    engine: Engine,
    tokenizer: ClipTokenizer,
    config: EncodersConfig,
    device_name: String,
}

impl std::fmt::Debug for Encoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoders")
            .field("device", &self.device_name)
            .field("dynamic", &self.has_dynamic())
            .finish()
    }
}

impl Encoders {
    /// Loads ViT-B/32 encoders from `dir` (layout in the module docs) onto `device`.
    pub fn load(dir: &Path, device: DeviceChoice) -> Result<Self, EncodeError> {
        Self::load_with_config(dir, device, EncodersConfig::vit_b32())
    }

    /// Like [`Encoders::load`], with explicit shapes (e.g. the tiny test models).
    pub fn load_with_config(
        dir: &Path,
        device: DeviceChoice,
        config: EncodersConfig,
    ) -> Result<Self, EncodeError> {
        config.validate()?;
        let vocab = dir.join("clip/vocab.json");
        let merges = dir.join("clip/merges.txt");
        let tokenizer = if vocab.is_file() && merges.is_file() {
            ClipTokenizer::from_files(&vocab, &merges)?
        } else {
            ClipTokenizer::embedded()?
        }
        .with_norm(config.text_norm);
        let (engine, device_name) = Engine::load(dir, device, &config)?;
        Ok(Self {
            engine,
            tokenizer,
            config,
            device_name,
        })
    }

    /// ViT-B/32 encoders with SEEDED RANDOM weights, for demos, tests and benchmarks only:
    /// their embeddings mean nothing. The same seed gives the same weights.
    pub fn random(seed: u64, device: DeviceChoice) -> Result<Self, EncodeError> {
        Self::random_with_config(seed, device, EncodersConfig::vit_b32())
    }

    /// [`Encoders::random`] with explicit shapes.
    pub fn random_with_config(
        seed: u64,
        device: DeviceChoice,
        config: EncodersConfig,
    ) -> Result<Self, EncodeError> {
        config.validate()?;
        let (engine, device_name) = Engine::random(seed, device, &config)?;
        Ok(Self {
            engine,
            tokenizer: ClipTokenizer::embedded()?.with_norm(config.text_norm),
            config,
            device_name,
        })
    }

    /// The precision the models run in.
    pub fn precision(&self) -> Precision {
        self.config.precision
    }

    /// The device in use, in words (e.g. "cpu (burn flex)").
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Whether the dynamic encoder (GeoNet) is loaded.
    pub fn has_dynamic(&self) -> bool {
        self.engine.has_dynamic()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// The configuration.
    pub fn config(&self) -> &EncodersConfig {
        &self.config
    }

    /// Encodes texts to L2-normalised text embeddings.
    pub fn encode_text(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        self.encode_token_ids(&ids)
    }

    /// Encodes rows of token ids (each holding the end token) to L2-normalised embeddings.
    pub fn encode_token_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let ctx = self.config.text.max_position_embeddings;
        if let Some(first) = ids.first() {
            if let Some((row, r)) = ids
                .iter()
                .enumerate()
                .find(|(_, r)| r.is_empty() || r.len() > ctx || r.len() != first.len())
            {
                return Err(EncodeError::Input(format!(
                    "token row {row} has length {} (row 0: {}, context {ctx})",
                    r.len(),
                    first.len()
                )));
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.config.max_batch) {
            out.extend(self.engine.text(chunk, self.config.text.eos_token_id)?);
        }
        Ok(out.into_iter().map(l2_normalise).collect())
    }

    /// Ground-level CLIP pixel tensors (`[3, S, S]` flattened) for images.
    pub fn ground_pixels(&self, images: &[Image]) -> Vec<Vec<f32>> {
        let s = self.config.ground.image_size;
        images
            .iter()
            .map(|i| preprocess::ground_pixels(i, s, self.config.ground_resize))
            .collect()
    }

    /// Overhead pixel tensors (`[3, S, S]` flattened) for images.
    pub fn overhead_pixels(&self, images: &[Image]) -> Vec<Vec<f32>> {
        let mut p = self.config.overhead_preprocess.clone();
        p.size = self.config.overhead.image_size;
        images
            .iter()
            .map(|i| preprocess::overhead_pixels(i, &p))
            .collect()
    }

    /// Encodes ground-level images with frozen CLIP: L2-normalised embeddings.
    pub fn encode_ground(&self, images: &[Image]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let s = self.config.ground.image_size;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.config.max_batch) {
            let pixels = self.ground_pixels(chunk);
            out.extend(self.engine.ground(pixels, s)?);
        }
        Ok(out.into_iter().map(l2_normalise).collect())
    }

    /// Encodes ground-level pixel tensors (each `[3, S, S]` flattened, as from
    /// [`Encoders::ground_pixels`]): L2-normalised embeddings. For benchmarks and callers
    /// that preprocess themselves.
    pub fn encode_ground_pixels(&self, pixels: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let s = self.config.ground.image_size;
        check_pixels(pixels, s)?;
        let mut out = Vec::with_capacity(pixels.len());
        for chunk in pixels.chunks(self.config.max_batch) {
            out.extend(self.engine.ground(chunk.to_vec(), s)?);
        }
        Ok(out.into_iter().map(l2_normalise).collect())
    }

    /// Checks the metadata of `n` overhead inputs (`noun` names them in the error): one row
    /// per input, a dynamic encoder to use them, and every row valid (a bad row is named by
    /// its index).
    fn check_meta(&self, meta: Option<&[Meta]>, n: usize, noun: &str) -> Result<(), EncodeError> {
        let Some(m) = meta else { return Ok(()) };
        if m.len() != n {
            return Err(EncodeError::Input(format!(
                "{n} {noun} but {} metadata rows",
                m.len()
            )));
        }
        if !self.has_dynamic() {
            return Err(EncodeError::NoDynamicEncoder);
        }
        for (index, row) in m.iter().enumerate() {
            row.validate()
                .map_err(|source| EncodeError::Meta { index, source })?;
        }
        Ok(())
    }

    /// Encodes overhead images with Sat2Cap; with `meta` (one per image) the dynamic
    /// encoder's output is added before normalisation. L2-normalised embeddings.
    pub fn encode_overhead(
        &self,
        images: &[Image],
        meta: Option<&[Meta]>,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        self.check_meta(meta, images.len(), "images")?;
        let s = self.config.overhead.image_size;
        let mb = self.config.max_batch;
        let mut out = Vec::with_capacity(images.len());
        for (ci, chunk) in images.chunks(mb).enumerate() {
            let pixels = self.overhead_pixels(chunk);
            let rows = meta.map(|m| &m[ci * mb..ci * mb + chunk.len()]);
            out.extend(self.engine.overhead(pixels, s, rows)?);
        }
        Ok(out.into_iter().map(l2_normalise).collect())
    }

    /// Decodes and preprocesses image files into model inputs (pixel tensors `[3, S, S]`
    /// flattened), without running a model: for a worker that prepares the next batch while
    /// the model runs on this one. A bad file is an error for that file only.
    pub fn prepare_bytes(
        &self,
        files: &[&[u8]],
        overhead: bool,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        files
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                let img =
                    Image::decode(bytes).map_err(|source| EncodeError::Image { index, source })?;
                let one = std::slice::from_ref(&img);
                let mut px = if overhead {
                    self.overhead_pixels(one)
                } else {
                    self.ground_pixels(one)
                };
                px.pop()
                    .ok_or_else(|| EncodeError::Input("no pixels".into()))
            })
            .collect()
    }

    /// Encodes overhead pixel tensors (as from [`Encoders::prepare_bytes`]) with Sat2Cap,
    /// with `meta` (one per tensor) through the dynamic encoder: L2-normalised embeddings.
    pub fn encode_overhead_pixels(
        &self,
        pixels: &[Vec<f32>],
        meta: Option<&[Meta]>,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        let s = self.config.overhead.image_size;
        check_pixels(pixels, s)?;
        self.check_meta(meta, pixels.len(), "pixel tensors")?;
        let mb = self.config.max_batch;
        let mut out = Vec::with_capacity(pixels.len());
        for (ci, chunk) in pixels.chunks(mb).enumerate() {
            let rows = meta.map(|m| &m[ci * mb..ci * mb + chunk.len()]);
            out.extend(self.engine.overhead(chunk.to_vec(), s, rows)?);
        }
        Ok(out.into_iter().map(l2_normalise).collect())
    }

    /// Decodes and encodes ground-level image files; a bad file is an error for that file
    /// only, the others are still encoded.
    pub fn encode_ground_bytes(&self, files: &[&[u8]]) -> Vec<Result<Vec<f32>, EncodeError>> {
        self.per_file(files, None, |imgs, _| self.encode_ground(imgs))
    }

    /// Decodes and encodes overhead image files (with optional metadata, one per file); a bad
    /// file or bad metadata row is an error for that item only.
    pub fn encode_overhead_bytes(
        &self,
        files: &[&[u8]],
        meta: Option<&[Meta]>,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        if let Some(m) = meta {
            if m.len() != files.len() {
                let msg = format!("{} files but {} metadata rows", files.len(), m.len());
                return files
                    .iter()
                    .map(|_| Err(EncodeError::Input(msg.clone())))
                    .collect();
            }
        }
        self.per_file(files, meta, |imgs, m| self.encode_overhead(imgs, m))
    }

    fn per_file(
        &self,
        files: &[&[u8]],
        meta: Option<&[Meta]>,
        run: impl Fn(&[Image], Option<&[Meta]>) -> Result<Vec<Vec<f32>>, EncodeError>,
    ) -> Vec<Result<Vec<f32>, EncodeError>> {
        let mut results: Vec<Option<Result<Vec<f32>, EncodeError>>> =
            (0..files.len()).map(|_| None).collect();
        let mut good = Vec::new();
        let mut good_meta = Vec::new();
        let mut good_idx = Vec::new();
        for (index, bytes) in files.iter().enumerate() {
            if let Some(m) = meta {
                if let Err(source) = m[index].validate() {
                    results[index] = Some(Err(EncodeError::Meta { index, source }));
                    continue;
                }
            }
            match Image::decode(bytes) {
                Ok(img) => {
                    good.push(img);
                    good_idx.push(index);
                    if let Some(m) = meta {
                        good_meta.push(m[index]);
                    }
                }
                Err(source) => results[index] = Some(Err(EncodeError::Image { index, source })),
            }
        }
        let m = meta.map(|_| good_meta.as_slice());
        match run(&good, m) {
            Ok(vecs) => {
                for (i, v) in good_idx.into_iter().zip(vecs) {
                    results[i] = Some(Ok(v));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for i in good_idx {
                    results[i] = Some(Err(EncodeError::Backend(msg.clone())));
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EncodeError::Input("not encoded".into()))))
            .collect()
    }
}

/// `v / ||v||` (a zero vector stays zero).
/// Checks that each pixel tensor holds `3 x s x s` values (a bad one is named by its index).
fn check_pixels(pixels: &[Vec<f32>], s: usize) -> Result<(), EncodeError> {
    match pixels
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() != 3 * s * s)
    {
        Some((i, p)) => Err(EncodeError::Input(format!(
            "pixel tensor {i} has {} values, expected 3 x {s} x {s}",
            p.len()
        ))),
        None => Ok(()),
    }
}

fn l2_normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = crate::index::norm_f64(&v);
    if n > 0.0 {
        for x in &mut v {
            *x = (f64::from(*x) / n) as f32;
        }
    }
    v
}
