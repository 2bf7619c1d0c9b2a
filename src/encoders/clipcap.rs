//! ClipCap (Mokady et al. 2021, <https://github.com/rmokady/CLIP_prefix_caption>, HEAD
//! 1ad805a): a mapping network turns a CLIP image embedding into `prefix_length` GPT-2
//! input embeddings, and GPT-2 continues them with a caption.
//!
//! Mapping networks (`clip_project`), as in the reference's `train.py` / `predict.py`:
//!
//! | `mapping_type` | module | checkpoint names |
//! |---|---|---|
//! | `mlp` | `MLP((prefix_size, d * P // 2, d * P))`: Linear, Tanh, Linear | `clip_project.model.0.{weight,bias}`, `clip_project.model.2.{weight,bias}` |
//! | `linear` | `nn.Linear(prefix_size, d * P)` (`predict.py` when `prefix_length > 10`) | `clip_project.{weight,bias}` |
//! | `transformer` | `TransformerMapper(prefix_size, d, P, clip_length, num_layers)` | `clip_project.linear.*`, `clip_project.prefix_const`, `clip_project.transformer.layers.N.{norm1,attn.to_queries,attn.to_keys_values,attn.project,norm2,mlp.fc1,mlp.fc2}.*` |
//!
//! (`d` = GPT-2's width, `P` = `prefix_length`.) The published MLP checkpoints
//! (`coco_weights.pt`, `conceptual_weights.pt`) are `mlp` with `P = 10` and a fine-tuned
//! GPT-2 small; the published transformer checkpoint is `transformer` with `P = 40`,
//! `clip_length = 40`, 8 layers, over RN50x4 CLIP embeddings (`prefix_size = 640`).
//! GPT-2 is `gpt.*` (transformers' `GPT2LMHeadModel`, see [`super::gpt2`]).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::clip::linear3;
use super::gpt2::{Gpt2Config, Gpt2LmHead};
use super::weights::{seeded_random, Loader, WeightsFile};
use super::EncodeError;

/// The transformer mapper's heads (fixed in the reference: `Transformer(dim_embedding, 8,
/// num_layers)`).
pub const MAPPER_HEADS: usize = 8;

/// Which mapping network turns the CLIP embedding into the GPT-2 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingType {
    /// Linear, Tanh, Linear (the published COCO and Conceptual Captions weights).
    Mlp,
    /// One Linear layer.
    Linear,
    /// ClipCap's `TransformerMapper`.
    Transformer,
}

/// A ClipCap model's shapes and inference settings: `<dir>/clipcap/config.json` (every key
/// optional; the defaults are the published MLP checkpoints').
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipCapConfig {
    /// The mapping network (default `mlp`).
    #[serde(default = "default_mapping")]
    pub mapping_type: MappingType,
    /// GPT-2 input embeddings made from one CLIP embedding (default 10).
    #[serde(default = "default_prefix_length")]
    pub prefix_length: usize,
    /// The transformer mapper's number of CLIP tokens (`prefix_length_clip`, default 10).
    #[serde(default = "default_prefix_length")]
    pub clip_length: usize,
    /// The transformer mapper's layers (default 8).
    #[serde(default = "default_num_layers")]
    pub num_layers: usize,
    /// The CLIP embedding's width (default 512: ViT-B/32; 640 for RN50x4).
    #[serde(default = "default_prefix_size")]
    pub prefix_size: usize,
    /// The mapper was trained on L2-normalised embeddings (`train.py --normalize_prefix`;
    /// the transformer notebook divides by the norm): inputs are normalised first.
    #[serde(default)]
    pub normalize_prefix: bool,
    /// The L2 norm that unit vectors (what the database stores) are scaled to before the
    /// mapper, for a mapper trained on raw embeddings; `None`: fed as they are.
    #[serde(default)]
    pub prefix_norm: Option<f32>,
    /// The text that ends a caption (ClipCap's `stop_token`, default `"."`); it must be one
    /// token of the vocabulary.
    #[serde(default = "default_stop")]
    pub stop_token: String,
    /// Apply transformers' `clean_up_tokenization` when decoding (default true, as
    /// transformers 4.10 / 4.11 did in ClipCap's environment).
    #[serde(default = "default_true")]
    pub clean_up_tokenization_spaces: bool,
    /// GPT-2's shapes (default GPT-2 small).
    #[serde(default = "Gpt2Config::gpt2_small")]
    pub gpt2: Gpt2Config,
}

fn default_mapping() -> MappingType {
    MappingType::Mlp
}
fn default_prefix_length() -> usize {
    10
}
fn default_num_layers() -> usize {
    8
}
fn default_prefix_size() -> usize {
    512
}
fn default_stop() -> String {
    ".".into()
}
fn default_true() -> bool {
    true
}

impl Default for ClipCapConfig {
    /// The published MLP checkpoints: `mlp`, prefix 10 over 512-d CLIP ViT-B/32
    /// embeddings, GPT-2 small, stop at `"."`.
    fn default() -> Self {
        Self {
            mapping_type: MappingType::Mlp,
            prefix_length: 10,
            clip_length: 10,
            num_layers: 8,
            prefix_size: 512,
            normalize_prefix: false,
            prefix_norm: None,
            stop_token: default_stop(),
            clean_up_tokenization_spaces: true,
            gpt2: Gpt2Config::gpt2_small(),
        }
    }
}

impl ClipCapConfig {
    /// The tiny shapes of the parity tests (tools/make_clipcap_goldens.py): `mlp`, prefix 4
    /// over 512-d embeddings, GPT-2 [`Gpt2Config::tiny`].
    pub fn tiny() -> Self {
        Self {
            prefix_length: 4,
            gpt2: Gpt2Config::tiny(),
            ..Self::default()
        }
    }

    /// Reads `config.json` (unknown keys are errors).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let c: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the shapes.
    pub fn validate(&self) -> Result<(), String> {
        self.gpt2.validate()?;
        let d = self.gpt2.n_embd;
        let sizes = [self.prefix_length, self.prefix_size, self.clip_length];
        if sizes.iter().any(|&s| s == 0 || s > 4096) {
            return Err(format!(
                "ClipCap sizes out of range: prefix_length {}, prefix_size {}, clip_length {}",
                self.prefix_length, self.prefix_size, self.clip_length
            ));
        }
        if self.prefix_length >= self.gpt2.n_positions {
            return Err(format!(
                "prefix_length {} leaves no position of GPT-2's {} for a caption",
                self.prefix_length, self.gpt2.n_positions
            ));
        }
        if self.mapping_type == MappingType::Transformer
            && (!d.is_multiple_of(MAPPER_HEADS) || self.num_layers == 0 || self.num_layers > 64)
        {
            return Err(format!(
                "transformer mapper: width {d} must divide into {MAPPER_HEADS} heads, layers 1..=64 (got {})",
                self.num_layers
            ));
        }
        if let Some(n) = self.prefix_norm {
            if !(n.is_finite() && n > 0.0) {
                return Err(format!("prefix_norm {n} must be a positive number"));
            }
        }
        Ok(())
    }
}

/// `MLP.model`: the `nn.Sequential` of Linear (index 0), Tanh (1, no parameters), Linear (2).
#[derive(Module, Debug)]
pub struct MlpLayers<B: Backend> {
    /// `model.0`.
    pub l0: Linear<B>,
    /// `model.2`.
    pub l2: Linear<B>,
}

/// ClipCap's `MLP`.
#[derive(Module, Debug)]
pub struct MlpMapper<B: Backend> {
    /// The layers.
    pub model: MlpLayers<B>,
}

/// `MultiHeadAttention` of the transformer mapper (self-attention, no masks, queries and
/// keys / values without bias).
#[derive(Module, Debug)]
pub struct MapperAttention<B: Backend> {
    /// `d -> d`, no bias.
    pub to_queries: Linear<B>,
    /// `d -> 2 d` (keys, then values), no bias.
    pub to_keys_values: Linear<B>,
    /// `d -> d`.
    pub project: Linear<B>,
}

/// `MlpTransformer`: `fc2(relu(fc1(x)))`.
#[derive(Module, Debug)]
pub struct MapperMlp<B: Backend> {
    /// `d -> 2 d` (`mlp_ratio` 2).
    pub fc1: Linear<B>,
    /// `2 d -> d`.
    pub fc2: Linear<B>,
}

/// `TransformerLayer`: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct MapperLayer<B: Backend> {
    /// LayerNorm before attention.
    pub norm1: LayerNorm<B>,
    /// Attention.
    pub attn: MapperAttention<B>,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm<B>,
    /// MLP.
    pub mlp: MapperMlp<B>,
}

/// `Transformer`.
#[derive(Module, Debug)]
pub struct MapperTransformer<B: Backend> {
    /// The layers.
    pub layers: Vec<MapperLayer<B>>,
}

/// ClipCap's `TransformerMapper`.
#[derive(Module, Debug)]
pub struct TransformerMapper<B: Backend> {
    /// `prefix_size -> clip_length * d`.
    pub linear: Linear<B>,
    /// Learned prefix `[prefix_length, d]`.
    pub prefix_const: Param<Tensor<B, 2>>,
    /// The transformer.
    pub transformer: MapperTransformer<B>,
}

impl<B: Backend> MapperLayer<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, d] = x.dims();
        let (h, hd) = (MAPPER_HEADS, d / MAPPER_HEADS);
        let y = self.norm1.forward(x.clone());
        let q = linear3(&self.attn.to_queries, y.clone())
            .reshape([b, n, h, hd])
            .swap_dims(1, 2);
        // keys_values.reshape(b, m, 2, h, hd): the first d columns are keys.
        let kv = linear3(&self.attn.to_keys_values, y);
        let k = kv
            .clone()
            .slice([0..b, 0..n, 0..d])
            .reshape([b, n, h, hd])
            .swap_dims(1, 2);
        let v = kv
            .slice([0..b, 0..n, d..2 * d])
            .reshape([b, n, h, hd])
            .swap_dims(1, 2);
        let att = softmax(q.matmul(k.swap_dims(2, 3)) * (hd as f64).powf(-0.5), 3);
        let out = att.matmul(v).swap_dims(1, 2).reshape([b, n, d]);
        let x = x + linear3(&self.attn.project, out);
        let m = self.norm2.forward(x.clone());
        x + linear3(&self.mlp.fc2, relu(linear3(&self.mlp.fc1, m)))
    }
}

/// The parts of a ClipCap checkpoint, each a module whose field paths are its names.
#[derive(Module, Debug)]
pub struct GptPart<B: Backend> {
    /// `gpt.*`.
    pub gpt: Gpt2LmHead<B>,
}

/// `clip_project` as an MLP.
#[derive(Module, Debug)]
pub struct MlpPart<B: Backend> {
    /// `clip_project.model.{0,2}.*`.
    pub clip_project: MlpMapper<B>,
}

/// `clip_project` as one Linear layer.
#[derive(Module, Debug)]
pub struct LinearPart<B: Backend> {
    /// `clip_project.*`.
    pub clip_project: Linear<B>,
}

/// `clip_project` as a transformer mapper.
#[derive(Module, Debug)]
pub struct TransformerPart<B: Backend> {
    /// `clip_project.*`.
    pub clip_project: TransformerMapper<B>,
}

/// The mapping network.
#[derive(Debug)]
pub enum Mapper<B: Backend> {
    /// See [`MappingType::Mlp`].
    Mlp(MlpPart<B>),
    /// See [`MappingType::Linear`].
    Linear(LinearPart<B>),
    /// See [`MappingType::Transformer`].
    Transformer(TransformerPart<B>),
}

/// Checkpoint names of the MLP's `nn.Sequential` children.
pub fn mlp_name(n: &str) -> String {
    n.replace("clip_project.model.l0.", "clip_project.model.0.")
        .replace("clip_project.model.l2.", "clip_project.model.2.")
}

/// ClipCap on one backend.
#[derive(Debug)]
pub struct ClipCapModel<B: Backend> {
    /// GPT-2.
    pub gpt: GptPart<B>,
    /// The mapping network.
    pub mapper: Mapper<B>,
    /// Shapes and settings.
    pub config: ClipCapConfig,
    /// Where it runs.
    pub device: B::Device,
}

/// A mapping network of `c`'s shapes (parameters to be loaded or randomised).
pub fn init_mapper<B: Backend>(c: &ClipCapConfig, device: &B::Device) -> Mapper<B> {
    let d = c.gpt2.n_embd;
    let (p, ps) = (c.prefix_length, c.prefix_size);
    let lin = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
    match c.mapping_type {
        MappingType::Mlp => Mapper::Mlp(MlpPart {
            clip_project: MlpMapper {
                model: MlpLayers {
                    l0: lin(ps, d * p / 2),
                    l2: lin(d * p / 2, d * p),
                },
            },
        }),
        MappingType::Linear => Mapper::Linear(LinearPart {
            clip_project: lin(ps, d * p),
        }),
        MappingType::Transformer => {
            let no_bias =
                |i: usize, o: usize| LinearConfig::new(i, o).with_bias(false).init(device);
            let ln = || LayerNormConfig::new(d).init(device);
            let layer = || MapperLayer {
                norm1: ln(),
                attn: MapperAttention {
                    to_queries: no_bias(d, d),
                    to_keys_values: no_bias(d, 2 * d),
                    project: lin(d, d),
                },
                norm2: ln(),
                mlp: MapperMlp {
                    fc1: lin(d, 2 * d),
                    fc2: lin(2 * d, d),
                },
            };
            Mapper::Transformer(TransformerPart {
                clip_project: TransformerMapper {
                    linear: lin(ps, c.clip_length * d),
                    prefix_const: Param::from_tensor(Tensor::zeros([p, d], device)),
                    transformer: MapperTransformer {
                        layers: (0..c.num_layers).map(|_| layer()).collect(),
                    },
                },
            })
        }
    }
}

impl<B: Backend> ClipCapModel<B> {
    /// Loads every tensor of `file` strictly: `gpt.*` and `clip_project.*` as the module
    /// docs list them; `gpt.lm_head.weight` (tied) may be present if it equals
    /// `gpt.transformer.wte.weight`; the buffers older transformers saved
    /// (`gpt.transformer.h.N.attn.bias`, `.attn.masked_bias`) are accepted and not used.
    pub fn load(
        file: &WeightsFile,
        config: ClipCapConfig,
        device: B::Device,
    ) -> Result<Self, EncodeError> {
        config.validate().map_err(EncodeError::Input)?;
        let mut loader = Loader::new(file);
        let gpt = loader.load(GptPart {
            gpt: Gpt2LmHead::init(&config.gpt2, &device),
        });
        let mapper = match init_mapper::<B>(&config, &device) {
            Mapper::Mlp(m) => Mapper::Mlp(loader.load_renamed(m, &mlp_name)),
            Mapper::Linear(m) => Mapper::Linear(loader.load(m)),
            Mapper::Transformer(m) => Mapper::Transformer(loader.load(m)),
        };
        loader.tied("gpt.lm_head.weight", "gpt.transformer.wte.weight");
        for i in 0..config.gpt2.n_layer {
            loader.ignore(&format!("gpt.transformer.h.{i}.attn.bias"));
            loader.ignore(&format!("gpt.transformer.h.{i}.attn.masked_bias"));
        }
        loader.finish()?;
        Ok(Self {
            gpt,
            mapper,
            config,
            device,
        })
    }

    /// Seeded random weights (LayerNorms 1 / 0): for demos and tests only.
    pub fn random(
        seed: u64,
        config: ClipCapConfig,
        device: B::Device,
    ) -> Result<Self, EncodeError> {
        config.validate().map_err(EncodeError::Input)?;
        let gpt = seeded_random(
            GptPart {
                gpt: Gpt2LmHead::init(&config.gpt2, &device),
            },
            seed,
        );
        let gpt = GptPart {
            gpt: gpt.gpt.reset_norms(&config.gpt2, &device),
        };
        let mapper = match init_mapper::<B>(&config, &device) {
            Mapper::Mlp(m) => Mapper::Mlp(seeded_random(m, seed ^ 1)),
            Mapper::Linear(m) => Mapper::Linear(seeded_random(m, seed ^ 1)),
            Mapper::Transformer(m) => Mapper::Transformer(seeded_random(m, seed ^ 1)),
        };
        Ok(Self {
            gpt,
            mapper,
            config,
            device,
        })
    }

    /// The GPT-2 prefix of one CLIP embedding (`prefix_size` values, normalised first when
    /// the config says so): `[1, prefix_length, n_embd]`.
    pub fn prefix(&self, embedding: &[f32]) -> Result<Tensor<B, 3>, EncodeError> {
        let c = &self.config;
        if embedding.len() != c.prefix_size {
            return Err(EncodeError::Input(format!(
                "the captioner takes {}-d embeddings, not {}-d",
                c.prefix_size,
                embedding.len()
            )));
        }
        if let Some(i) = embedding.iter().position(|x| !x.is_finite()) {
            return Err(EncodeError::Input(format!(
                "embedding component {i} is {}, not a finite number",
                embedding[i]
            )));
        }
        let mut e = embedding.to_vec();
        if c.normalize_prefix {
            // prefix / prefix.norm(2, -1), in f32 as the reference.
            let n = e.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                e.iter_mut().for_each(|x| *x /= n);
            }
        }
        let x = Tensor::<B, 2>::from_data(TensorData::new(e, [1, c.prefix_size]), &self.device);
        let (p, d) = (c.prefix_length, c.gpt2.n_embd);
        Ok(match &self.mapper {
            Mapper::Mlp(m) => {
                let l = &m.clip_project.model;
                l.l2.forward(l.l0.forward(x).tanh()).reshape([1, p, d])
            }
            Mapper::Linear(m) => m.clip_project.forward(x).reshape([1, p, d]),
            Mapper::Transformer(m) => {
                let t = &m.clip_project;
                let cl = c.clip_length;
                let x = t.linear.forward(x).reshape([1, cl, d]);
                let pc = t.prefix_const.val().unsqueeze::<3>();
                let mut y = Tensor::cat(vec![x, pc], 1);
                for layer in &t.transformer.layers {
                    y = layer.forward(y);
                }
                y.slice([0..1, cl..cl + p, 0..d])
            }
        })
    }
}
