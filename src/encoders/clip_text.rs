//! CLIP text tower with projection (`CLIPTextModelWithProjection`).
//!
//! Ported from transformers' `modeling_clip.py` (release 5.24.0, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py>): `CLIPTextEmbeddings`,
//! `CLIPTextTransformer`, `CLIPTextModelWithProjection`. Checkpoint names:
//! `text_model.embeddings.{token_embedding, position_embedding}.weight`,
//! `text_model.encoder.layers.N.*`, `text_model.final_layer_norm`, `text_projection.weight`.
//!
//! Pooling: the hidden state at the FIRST position holding `eos_token_id` (transformers'
//! branch for `eos_token_id != 2`; for real CLIP token ids this equals its legacy
//! `argmax(input_ids)` branch, because 49407 is the largest id).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::clip::ClipEncoder;
use super::config::ClipTextConfig;

/// Token + position embeddings (`CLIPTextEmbeddings`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L221>).
#[derive(Module, Debug)]
pub struct ClipTextEmbeddings<B: Backend> {
    /// `[vocab, hidden]`.
    pub token_embedding: Embedding<B>,
    /// `[max_positions, hidden]`.
    pub position_embedding: Embedding<B>,
}

/// The text transformer (transformers 5.x `CLIPTextModel`, formerly `CLIPTextTransformer`;
/// <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L484>, forward #L503, causal mask #L533, end-token pooling #L551).
#[derive(Module, Debug)]
pub struct ClipTextTransformer<B: Backend> {
    /// Embeddings.
    pub embeddings: ClipTextEmbeddings<B>,
    /// The layers (run with a causal mask).
    pub encoder: ClipEncoder<B>,
    /// Final LayerNorm.
    pub final_layer_norm: LayerNorm<B>,
}

/// CLIP text tower plus `text_projection` (`CLIPTextModelWithProjection`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L825>).
#[derive(Module, Debug)]
pub struct ClipTextModel<B: Backend> {
    /// The transformer.
    pub text_model: ClipTextTransformer<B>,
    /// `Linear(hidden, projection_dim, bias = False)`.
    pub text_projection: Linear<B>,
}

/// Why a batch of token ids cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenIdsError {
    /// Rows have different lengths, or a row is empty or longer than the context.
    BadLength(String),
    /// An id is outside the vocabulary.
    OutOfVocab {
        /// Row.
        row: usize,
        /// The id.
        id: u32,
    },
    /// A row holds no end-of-text id, so there is no position to pool at.
    NoEndToken {
        /// Row.
        row: usize,
    },
}

impl std::fmt::Display for TokenIdsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadLength(m) => write!(f, "bad token id batch: {m}"),
            Self::OutOfVocab { row, id } => write!(f, "row {row}: token id {id} outside vocab"),
            Self::NoEndToken { row } => write!(f, "row {row}: no end-of-text token"),
        }
    }
}

impl<B: Backend> ClipTextModel<B> {
    /// A model with burn's default (random) initialisation, shaped by `config`.
    pub fn init(config: &ClipTextConfig, device: &B::Device) -> Self {
        let d = config.hidden_size;
        Self {
            text_model: ClipTextTransformer {
                embeddings: ClipTextEmbeddings {
                    token_embedding: EmbeddingConfig::new(config.vocab_size, d).init(device),
                    position_embedding: EmbeddingConfig::new(config.max_position_embeddings, d)
                        .init(device),
                },
                encoder: ClipEncoder::new(
                    config.num_hidden_layers,
                    d,
                    config.intermediate_size,
                    config.num_attention_heads,
                    config.layer_norm_eps,
                    device,
                ),
                final_layer_norm: LayerNormConfig::new(d)
                    .with_epsilon(config.layer_norm_eps)
                    .init(device),
            },
            text_projection: LinearConfig::new(d, config.projection_dim)
                .with_bias(false)
                .init(device),
        }
    }

    /// Vocabulary size (rows of the token embedding).
    pub fn vocab_size(&self) -> usize {
        self.text_model.embeddings.token_embedding.weight.dims()[0]
    }

    /// Context length (rows of the position embedding).
    pub fn context_length(&self) -> usize {
        self.text_model.embeddings.position_embedding.weight.dims()[0]
    }

    /// Encodes rows of token ids (all the same length, each holding `eos_token_id`) to
    /// UNnormalised text embeddings `[batch, projection_dim]` (`text_embeds`).
    pub fn forward_ids(
        &self,
        ids: &[Vec<u32>],
        eos_token_id: u32,
        device: &B::Device,
    ) -> Result<Tensor<B, 2>, TokenIdsError> {
        let b = ids.len();
        let s = ids.first().map(|r| r.len()).unwrap_or(0);
        if b == 0 || s == 0 || s > self.context_length() {
            return Err(TokenIdsError::BadLength(format!(
                "{b} rows of length {s}, context {}",
                self.context_length()
            )));
        }
        let vocab = self.vocab_size();
        let mut ends = Vec::with_capacity(b);
        for (row, r) in ids.iter().enumerate() {
            if r.len() != s {
                return Err(TokenIdsError::BadLength(format!(
                    "row {row} has length {}, row 0 has {s}",
                    r.len()
                )));
            }
            if let Some(&id) = r.iter().find(|&&id| id as usize >= vocab) {
                return Err(TokenIdsError::OutOfVocab { row, id });
            }
            // CLIPTextTransformer.forward (eos_token_id != 2 branch): first eos position.
            let pos = r
                .iter()
                .position(|&id| id == eos_token_id)
                .ok_or(TokenIdsError::NoEndToken { row })?;
            ends.push(pos);
        }
        // Each sequence is read at its end token, and with the causal mask no position sees
        // a later one: the positions after the last end token in the batch change nothing,
        // so they are not computed (a short prompt costs its own length, not 77).
        let s = ends.iter().max().map_or(s, |&e| e + 1);
        let flat: Vec<i64> = ids
            .iter()
            .flat_map(|r| r[..s].iter().map(|&id| i64::from(id)))
            .collect();
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [b, s]), device);
        let tm = &self.text_model;
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, device).reshape([1, s]);
        let x = tm.embeddings.token_embedding.forward(input)
            + tm.embeddings.position_embedding.forward(positions);
        let layers = &tm.encoder.layers;
        let Some((last, rest)) = layers.split_last() else {
            return Err(TokenIdsError::BadLength(
                "a text tower without layers".into(),
            ));
        };
        let mut x = x;
        for layer in rest {
            x = layer.forward(x, true);
        }
        // The last layer only at the end tokens: nothing reads its other positions.
        let rows: Vec<i64> = ends
            .iter()
            .enumerate()
            .map(|(i, &e)| (i * s + e) as i64)
            .collect();
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [b]), device);
        let blocked: Vec<bool> = ends
            .iter()
            .flat_map(|&e| (0..s).map(move |j| j > e))
            .collect();
        let mask = Tensor::<B, 4, Bool>::from_data(TensorData::new(blocked, [b, 1, 1, s]), device);
        let x = last.forward_rows(x, rows, Some(mask));
        let d = x.dims()[2];
        let pooled = tm.final_layer_norm.forward(x).reshape([b, d]);
        Ok(self.text_projection.forward(pooled))
    }
}
