//! [`Captioner`]: ClipCap loaded from a weights folder (or seeded random), on the CPU or
//! CUDA, with GPT-2's vocabulary to decode what it generates.
//!
//! ```text
//! <dir>/clipcap/model.safetensors   ClipCap's state dict (gpt.*, clip_project.*), or
//! <dir>/clipcap/pytorch_model.bin   the same as a torch.save file, or
//! <dir>/clipcap/<any>.pt            the one published file as it is (coco_weights.pt,
//!                                   conceptual_weights.pt)
//! <dir>/clipcap/vocab.json          GPT-2's vocabulary (required: ids -> text)
//! <dir>/clipcap/config.json         optional: ClipCapConfig (default: the published MLP
//!                                   checkpoints' shapes)
//! ```

use std::path::Path;

use super::clipcap::{ClipCapConfig, ClipCapModel};
use super::device::DeviceChoice;
use super::engine::{cpu_name, guard, resolve, Resolved};
use super::generate::Generated;
use super::gpt2_tokenizer::Gpt2Decoder;
use super::weights::{clipcap_weights_file, WeightsFile};
use super::{CpuBackend, EncodeError};

/// The largest `config.json` read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// ClipCap's `entry_length`: the most tokens a caption gets (67).
pub const DEFAULT_MAX_TOKENS: usize = 67;

/// How to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// `None`: greedy (ClipCap's `generate2`); `Some(b)`: beam search of width `b`
    /// (`generate_beam`; Sat2Cap's evaluation used `Some(1)`, ClipCap's default is 5).
    pub beam: Option<usize>,
    /// The most tokens per caption, the stop token included (default 67).
    pub max_tokens: usize,
}

impl Default for GenerateOptions {
    /// Greedy, 67 tokens.
    fn default() -> Self {
        Self {
            beam: None,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

enum CapEngine {
    Cpu(Box<ClipCapModel<CpuBackend>>),
    #[cfg(feature = "cuda")]
    Cuda(Box<ClipCapModel<burn::backend::Cuda>>),
}

macro_rules! on_engine {
    ($self:expr, $m:ident => $body:expr) => {
        match &$self.engine {
            CapEngine::Cpu($m) => $body,
            #[cfg(feature = "cuda")]
            CapEngine::Cuda($m) => $body,
        }
    };
}

/// A ClipCap captioner: CLIP-space embeddings in, captions out. `Send + Sync`; f32.
pub struct Captioner {
    engine: CapEngine,
    decoder: Gpt2Decoder,
    config: ClipCapConfig,
    stop: u32,
    device_name: String,
}

impl std::fmt::Debug for Captioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captioner")
            .field("device", &self.device_name)
            .field("mapping", &self.config.mapping_type)
            .finish()
    }
}

/// `<dir>/clipcap/config.json`, or the defaults when there is none.
pub fn read_clipcap_config(dir: &Path) -> Result<ClipCapConfig, EncodeError> {
    let path = dir.join("clipcap/config.json");
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClipCapConfig::default()),
        Err(e) => return Err(EncodeError::Input(format!("{}: {e}", path.display()))),
    };
    if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
        return Err(EncodeError::Input(format!(
            "{}: not a regular file of at most {MAX_CONFIG_BYTES} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| EncodeError::Input(format!("{}: {e}", path.display())))?;
    ClipCapConfig::from_json(&text)
        .map_err(|e| EncodeError::Input(format!("{}: {e}", path.display())))
}

impl Captioner {
    /// Loads ClipCap from `<dir>/clipcap/` (layout in the module docs) onto `device`.
    pub fn load(dir: &Path, device: DeviceChoice) -> Result<Self, EncodeError> {
        Self::load_with_config(dir, device, read_clipcap_config(dir)?)
    }

    /// [`Captioner::load`] with an explicit configuration (`config.json` is not read).
    pub fn load_with_config(
        dir: &Path,
        device: DeviceChoice,
        config: ClipCapConfig,
    ) -> Result<Self, EncodeError> {
        config.validate().map_err(EncodeError::Input)?;
        let vocab = dir.join("clipcap/vocab.json");
        let decoder = Gpt2Decoder::from_vocab_json(
            &vocab,
            config.gpt2.vocab_size,
            config.clean_up_tokenization_spaces,
        )?;
        let file = WeightsFile::open_any(&clipcap_weights_file(dir)?)?;
        let (engine, device_name) = match resolve(device)? {
            Resolved::Cpu(why) => (
                CapEngine::Cpu(Box::new(ClipCapModel::load(
                    &file,
                    config.clone(),
                    Default::default(),
                )?)),
                cpu_name(why),
            ),
            #[cfg(feature = "cuda")]
            Resolved::Cuda(d) => (
                CapEngine::Cuda(Box::new(guard("cuda load", || {
                    ClipCapModel::load(&file, config.clone(), d.clone())
                })?)),
                format!("cuda ({d:?})"),
            ),
        };
        Self::new(engine, decoder, config, device_name)
    }

    /// ClipCap of `config`'s shapes with SEEDED RANDOM weights (demos and tests: what it
    /// writes means nothing). Without a vocabulary, ids 0..=255 decode as GPT-2's byte
    /// tokens and the others as `<id>`.
    pub fn random(
        seed: u64,
        device: DeviceChoice,
        config: ClipCapConfig,
    ) -> Result<Self, EncodeError> {
        config.validate().map_err(EncodeError::Input)?;
        let decoder = Gpt2Decoder::byte_level(config.gpt2.vocab_size);
        let (engine, device_name) = match resolve(device)? {
            Resolved::Cpu(why) => (
                CapEngine::Cpu(Box::new(ClipCapModel::random(
                    seed,
                    config.clone(),
                    Default::default(),
                )?)),
                cpu_name(why),
            ),
            #[cfg(feature = "cuda")]
            Resolved::Cuda(d) => (
                CapEngine::Cuda(Box::new(guard("cuda init", || {
                    ClipCapModel::random(seed, config.clone(), d.clone())
                })?)),
                format!("cuda ({d:?})"),
            ),
        };
        Self::new(engine, decoder, config, device_name)
    }

    fn new(
        engine: CapEngine,
        decoder: Gpt2Decoder,
        config: ClipCapConfig,
        device_name: String,
    ) -> Result<Self, EncodeError> {
        let stop = decoder.token_id(&config.stop_token).ok_or_else(|| {
            EncodeError::Input(format!(
                "the stop token {:?} is not one token of the vocabulary",
                config.stop_token
            ))
        })?;
        Ok(Self {
            engine,
            decoder,
            config,
            stop,
            device_name,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClipCapConfig {
        &self.config
    }

    /// The device in use, in words.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The id of the stop token.
    pub fn stop_token_id(&self) -> u32 {
        self.stop
    }

    /// The decoder.
    pub fn decoder(&self) -> &Gpt2Decoder {
        &self.decoder
    }

    /// Captions for one CLIP-space embedding (`prefix_size` values, as given: scaling a unit
    /// vector is the caller's choice, see [`ClipCapConfig::prefix_norm`]): one for greedy,
    /// `beam` best first for beam search.
    pub fn caption(
        &self,
        embedding: &[f32],
        opts: &GenerateOptions,
    ) -> Result<Vec<Generated>, EncodeError> {
        let stop = self.stop;
        let runs: Vec<(Vec<u32>, Option<f32>)> = match opts.beam {
            None => {
                let t = on_engine!(self, m => guard("greedy", || m.greedy(embedding, opts.max_tokens, stop)))?;
                vec![(t, None)]
            }
            Some(b) => on_engine!(self, m => guard("beam", || m.beam(embedding, b, opts.max_tokens, stop)))?
                .into_iter()
                .map(|(t, s)| (t, Some(s)))
                .collect(),
        };
        runs.into_iter()
            .map(|(tokens, score)| {
                Ok(Generated {
                    text: self.decoder.decode(&tokens)?,
                    tokens,
                    score,
                })
            })
            .collect()
    }

    /// The GPT-2 prefix of `embedding` (`[prefix_length * n_embd]`, row-major).
    pub fn prefix(&self, embedding: &[f32]) -> Result<Vec<f32>, EncodeError> {
        on_engine!(self, m => guard("prefix", || {
            m.prefix(embedding)?
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| EncodeError::Backend(format!("{e:?}")))
        }))
    }

    /// The logits after the prefix and after each of `tokens`; `cached`: incrementally over
    /// the key/value cache (as generation runs), else the whole sequence at once.
    pub fn logits(
        &self,
        embedding: &[f32],
        tokens: &[u32],
        cached: bool,
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        on_engine!(self, m => guard("logits", || m.logits(embedding, tokens, cached)))
    }
}
