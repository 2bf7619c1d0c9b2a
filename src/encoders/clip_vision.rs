//! CLIP vision tower with projection (`CLIPVisionModelWithProjection`).
//!
//! Ported from transformers' `modeling_clip.py` (release 5.24.0, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py>): `CLIPVisionEmbeddings`,
//! `CLIPVisionTransformer`, `CLIPVisionModelWithProjection`. Checkpoint names:
//! `vision_model.embeddings.{class_embedding, patch_embedding.weight, position_embedding.weight}`,
//! `vision_model.pre_layrnorm` (sic), `vision_model.encoder.layers.N.*`,
//! `vision_model.post_layernorm`, `visual_projection.weight` (no bias).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::clip::ClipEncoder;
use super::config::ClipVisionConfig;

/// Patch + class + position embeddings (`CLIPVisionEmbeddings`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L138>; forward #L202).
#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings<B: Backend> {
    /// The learned class token, `[hidden]`.
    pub class_embedding: Param<Tensor<B, 1>>,
    /// `Conv2d(3, hidden, kernel = stride = patch, bias = False)`.
    pub patch_embedding: Conv2d<B>,
    /// `[num_positions, hidden]`.
    pub position_embedding: Embedding<B>,
}

impl<B: Backend> ClipVisionEmbeddings<B> {
    /// `pixels`: `[batch, 3, image, image]` -> `[batch, 1 + patches, hidden]`.
    pub fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, _, _, _] = pixels.dims();
        // CLIPVisionEmbeddings.forward: patch_embeds.flatten(2).transpose(1, 2)
        let patches = self.patch_embedding.forward(pixels); // [b, d, g, g]
        let [_, d, gh, gw] = patches.dims();
        let patches = patches.reshape([b, d, gh * gw]).swap_dims(1, 2); // [b, n, d]
        let cls = self
            .class_embedding
            .val()
            .reshape([1, 1, d])
            .expand([b, 1, d]);
        let x = Tensor::cat(vec![cls, patches], 1);
        let n = gh * gw + 1;
        let device = x.device();
        let positions = Tensor::<B, 1, Int>::arange(0..n as i64, &device).reshape([1, n]);
        x + self.position_embedding.forward(positions)
    }
}

/// The vision transformer (transformers 5.x `CLIPVisionModel`, formerly
/// `CLIPVisionTransformer`; <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L584>, forward #L603).
#[derive(Module, Debug)]
pub struct ClipVisionTransformer<B: Backend> {
    /// Embeddings.
    pub embeddings: ClipVisionEmbeddings<B>,
    /// LayerNorm before the encoder (HF spelling `pre_layrnorm`).
    pub pre_layrnorm: LayerNorm<B>,
    /// The layers.
    pub encoder: ClipEncoder<B>,
    /// LayerNorm applied to the pooled class token.
    pub post_layernorm: LayerNorm<B>,
}

/// CLIP vision tower plus `visual_projection` (`CLIPVisionModelWithProjection`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L889>).
#[derive(Module, Debug)]
pub struct ClipVisionModel<B: Backend> {
    /// The transformer.
    pub vision_model: ClipVisionTransformer<B>,
    /// `Linear(hidden, projection_dim, bias = False)`.
    pub visual_projection: Linear<B>,
}

impl<B: Backend> ClipVisionModel<B> {
    /// A model with burn's default (random) initialisation, shaped by `config`.
    /// Load weights before use (see [`super::weights`]).
    pub fn init(config: &ClipVisionConfig, device: &B::Device) -> Self {
        let d = config.hidden_size;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let p = config.patch_size;
        Self {
            vision_model: ClipVisionTransformer {
                embeddings: ClipVisionEmbeddings {
                    class_embedding: Param::from_tensor(Tensor::random(
                        [d],
                        burn::tensor::Distribution::Normal(0.0, 0.02),
                        device,
                    )),
                    patch_embedding: Conv2dConfig::new([3, d], [p, p])
                        .with_stride([p, p])
                        .with_bias(false)
                        .init(device),
                    position_embedding: EmbeddingConfig::new(config.num_positions(), d)
                        .init(device),
                },
                pre_layrnorm: ln(),
                encoder: ClipEncoder::new(
                    config.num_hidden_layers,
                    d,
                    config.intermediate_size,
                    config.num_attention_heads,
                    config.layer_norm_eps,
                    device,
                ),
                post_layernorm: ln(),
            },
            visual_projection: LinearConfig::new(d, config.projection_dim)
                .with_bias(false)
                .init(device),
        }
    }

    /// `pixels`: normalised `[batch, 3, image, image]` -> UNnormalised image embeddings
    /// `[batch, projection_dim]` (`image_embeds`).
    pub fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        let vm = &self.vision_model;
        let x = vm.embeddings.forward(pixels);
        let x = vm.pre_layrnorm.forward(x);
        // CLIPVisionTransformer.forward: pooled_output = last_hidden_state[:, 0, :]. Nothing
        // reads the last layer's other positions, so it runs at the class token only.
        let [b, s, d] = x.dims();
        let pooled = match vm.encoder.layers.split_last() {
            Some((last, rest)) => {
                let x = rest.iter().fold(x, |x, layer| layer.forward(x, false));
                let device = x.device();
                let rows = Tensor::<B, 1, Int>::arange_step(0..(b * s) as i64, s, &device);
                last.forward_rows(x, rows, None).reshape([b, d])
            }
            None => x.slice([0..b, 0..1, 0..d]).reshape([b, d]),
        };
        let pooled = vm.post_layernorm.forward(pooled);
        self.visual_projection.forward(pooled)
    }
}
