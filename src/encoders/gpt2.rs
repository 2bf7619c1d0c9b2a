//! GPT-2 (the language model of ClipCap), inference only, with a key/value cache for
//! generation.
//!
//! Ported from transformers' `modeling_gpt2.py` at release 5.24.0 (`GPT2Attention`,
//! `GPT2MLP`, `GPT2Block`, `GPT2Model`, `GPT2LMHeadModel`; `Conv1D` in `pytorch_utils.py`):
//! <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/gpt2/modeling_gpt2.py>.
//! Field names mirror the checkpoint's (`transformer.h.N.attn.c_attn`, `ln_1`, `mlp.c_fc`,
//! `wte`, `wpe`, `ln_f`), so the strict loader needs no renames. What the port keeps:
//!
//! - `Conv1D` layers hold their weight as `[in, out]` (transformers' layout, unlike
//!   `nn.Linear`): [`Conv1D`] stores it as it is in the file, no transposition.
//! - pre-LN blocks, LayerNorm epsilon `layer_norm_epsilon` (1e-5), `gelu_new` (the tanh
//!   approximation, burn's `gelu_approximate`), attention scaled by `head_dim ** -0.5`,
//!   causal; positions `past_length ..` added to the input embeddings (`inputs_embeds` are
//!   accepted as they are, as ClipCap feeds its prefix).
//! - the LM head is tied to `wte` (`lm_head.weight` is `transformer.wte.weight`); logits are
//!   computed for the last position only.
//!
//! Left out (inference only, or not used by GPT-2 small): dropout, attention masks for
//! padding, cross-attention, `scale_attn_by_inverse_layer_idx`, `reorder_and_upcast_attn`.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::activation::{gelu_approximate, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

/// Hyper-parameters of GPT-2 (transformers' `GPT2Config` names).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpt2Config {
    /// Vocabulary size (50257).
    pub vocab_size: usize,
    /// Largest number of positions (1024).
    pub n_positions: usize,
    /// Width (768).
    pub n_embd: usize,
    /// Number of blocks (12).
    pub n_layer: usize,
    /// Number of attention heads (12); must divide `n_embd`.
    pub n_head: usize,
    /// MLP inner width; `None`: `4 * n_embd` (as transformers).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// LayerNorm epsilon (1e-5).
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
}

fn default_eps() -> f64 {
    1e-5
}

impl Gpt2Config {
    /// GPT-2 small (`gpt2` on the Hugging Face hub), the model ClipCap fine-tunes.
    pub fn gpt2_small() -> Self {
        Self {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            layer_norm_epsilon: 1e-5,
        }
    }

    /// The tiny shapes of the parity tests (tools/make_clipcap_goldens.py): vocabulary 300,
    /// 128 positions, width 64, 2 layers, 4 heads.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 300,
            n_positions: 128,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_inner: None,
            layer_norm_epsilon: 1e-5,
        }
    }

    /// The MLP's inner width.
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Checks the shapes (positive, heads dividing the width).
    pub fn validate(&self) -> Result<(), String> {
        let sizes = [
            self.vocab_size,
            self.n_positions,
            self.n_embd,
            self.n_layer,
            self.n_head,
            self.inner(),
        ];
        if sizes.iter().any(|&s| s == 0 || s > 1 << 20) {
            return Err(format!("GPT-2 sizes out of range: {self:?}"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "GPT-2: n_head {} does not divide n_embd {}",
                self.n_head, self.n_embd
            ));
        }
        if !(self.layer_norm_epsilon > 0.0 && self.layer_norm_epsilon < 1.0) {
            return Err(format!(
                "GPT-2: layer_norm_epsilon {} out of range",
                self.layer_norm_epsilon
            ));
        }
        Ok(())
    }
}

/// transformers' `Conv1D`: `x @ weight + bias` with `weight` `[in, out]`, as in the file.
#[derive(Module, Debug)]
pub struct Conv1D<B: Backend> {
    /// `[in, out]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[out]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Conv1D<B> {
    /// Zeros of the right shapes (loading or [`super::weights::seeded_random`] fills them).
    pub fn new(inp: usize, out: usize, device: &B::Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([inp, out], device)),
            bias: Param::from_tensor(Tensor::zeros([out], device)),
        }
    }

    /// `[batch, seq, in]` -> `[batch, seq, out]`, as one 2-d product.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, d] = x.dims();
        let y = x.reshape([b * s, d]).matmul(self.weight.val()) + self.bias.val().unsqueeze();
        let [_, out] = y.dims();
        y.reshape([b, s, out])
    }
}

/// One layer's cached keys and values, `[batch, heads, past, head_dim]` each.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// Keys.
    pub k: Tensor<B, 4>,
    /// Values.
    pub v: Tensor<B, 4>,
}

/// The key/value cache of every layer, and the number of positions it holds.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<LayerCache<B>>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `n_layer` layers.
    pub fn new(n_layer: usize) -> Self {
        Self {
            layers: vec![None; n_layer],
            len: 0,
        }
    }

    /// Keeps the batch rows `rows` (in that order, repeats allowed): beam search's reorder.
    pub fn select(&mut self, rows: &[usize], device: &B::Device) {
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), device);
        for c in self.layers.iter_mut().flatten() {
            c.k = c.k.clone().select(0, idx.clone());
            c.v = c.v.clone().select(0, idx.clone());
        }
    }
}

/// Causal multi-head self-attention (`GPT2Attention`) over the cache and the new positions.
#[derive(Module, Debug)]
pub struct Gpt2Attention<B: Backend> {
    /// Queries, keys and values in one `[n_embd, 3 n_embd]` product.
    pub c_attn: Conv1D<B>,
    /// Output projection.
    pub c_proj: Conv1D<B>,
    n_head: usize,
}

impl<B: Backend> Gpt2Attention<B> {
    /// `x`: `[batch, seq, n_embd]`, the positions after those in `cache` (which is extended
    /// with this step's keys and values).
    pub fn forward(&self, x: Tensor<B, 3>, cache: &mut Option<LayerCache<B>>) -> Tensor<B, 3> {
        let [b, s, d] = x.dims();
        let h = self.n_head;
        let hd = d / h;
        let qkv = self.c_attn.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .slice([0..b, 0..s, i * d..(i + 1) * d])
                .reshape([b, s, h, hd])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let (k, v) = match cache.take() {
            Some(c) => (Tensor::cat(vec![c.k, k], 2), Tensor::cat(vec![c.v, v], 2)),
            None => (k, v),
        };
        let total = k.dims()[2];
        let past = total - s;
        let mut scores = q.matmul(k.clone().swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        if s > 1 {
            // Query i (position past + i) sees keys 0..=past + i.
            let mask = causal_mask::<B>(s, total, past, &scores.device());
            let mask: Tensor<B, 4, Bool> = mask.unsqueeze::<4>();
            scores = scores.mask_fill(mask.expand([b, h, s, total]), f32::NEG_INFINITY);
        }
        let out = softmax(scores, 3).matmul(v.clone());
        *cache = Some(LayerCache { k, v });
        self.c_proj.forward(out.swap_dims(1, 2).reshape([b, s, d]))
    }
}

/// `[s, total]`, true where query `i` may NOT see key `j` (`j > past + i`).
fn causal_mask<B: Backend>(
    s: usize,
    total: usize,
    past: usize,
    device: &B::Device,
) -> Tensor<B, 2, Bool> {
    let v: Vec<bool> = (0..s)
        .flat_map(|i| (0..total).map(move |j| j > past + i))
        .collect();
    Tensor::from_data(TensorData::new(v, [s, total]), device)
}

/// The feed-forward block, `c_proj(gelu_new(c_fc(x)))` (`GPT2MLP`).
#[derive(Module, Debug)]
pub struct Gpt2Mlp<B: Backend> {
    /// `n_embd -> inner`.
    pub c_fc: Conv1D<B>,
    /// `inner -> n_embd`.
    pub c_proj: Conv1D<B>,
}

/// A pre-LN block (`GPT2Block`): `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Module, Debug)]
pub struct Gpt2Block<B: Backend> {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm<B>,
    /// Self-attention.
    pub attn: Gpt2Attention<B>,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm<B>,
    /// Feed-forward block.
    pub mlp: Gpt2Mlp<B>,
}

impl<B: Backend> Gpt2Block<B> {
    fn forward(&self, x: Tensor<B, 3>, cache: &mut Option<LayerCache<B>>) -> Tensor<B, 3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), cache);
        let m = &self.mlp;
        let y = m.c_proj.forward(gelu_approximate(
            m.c_fc.forward(self.ln_2.forward(x.clone())),
        ));
        x + y
    }
}

/// The transformer (`GPT2Model`); checkpoint names `transformer.*`.
#[derive(Module, Debug)]
pub struct Gpt2Model<B: Backend> {
    /// Token embeddings `[vocab, n_embd]`, also the LM head.
    pub wte: Embedding<B>,
    /// Position embeddings `[n_positions, n_embd]`.
    pub wpe: Embedding<B>,
    /// The blocks.
    pub h: Vec<Gpt2Block<B>>,
    /// Final LayerNorm.
    pub ln_f: LayerNorm<B>,
}

/// `GPT2LMHeadModel` with its head tied to `transformer.wte`.
#[derive(Module, Debug)]
pub struct Gpt2LmHead<B: Backend> {
    /// The transformer.
    pub transformer: Gpt2Model<B>,
}

impl<B: Backend> Gpt2LmHead<B> {
    /// A model of `config`'s shapes (parameters to be loaded or randomised; LayerNorms are
    /// 1 / 0).
    pub fn init(config: &Gpt2Config, device: &B::Device) -> Self {
        let d = config.n_embd;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(config.layer_norm_epsilon)
                .init(device)
        };
        let block = || Gpt2Block {
            ln_1: ln(),
            attn: Gpt2Attention {
                c_attn: Conv1D::new(d, 3 * d, device),
                c_proj: Conv1D::new(d, d, device),
                n_head: config.n_head,
            },
            ln_2: ln(),
            mlp: Gpt2Mlp {
                c_fc: Conv1D::new(d, config.inner(), device),
                c_proj: Conv1D::new(config.inner(), d, device),
            },
        };
        Self {
            transformer: Gpt2Model {
                wte: EmbeddingConfig::new(config.vocab_size, d).init(device),
                wpe: EmbeddingConfig::new(config.n_positions, d).init(device),
                h: (0..config.n_layer).map(|_| block()).collect(),
                ln_f: ln(),
            },
        }
    }

    /// Sets every LayerNorm to weight 1, bias 0 (after seeded random weights, which do not
    /// know GPT-2's `ln_*` names).
    pub fn reset_norms(mut self, config: &Gpt2Config, device: &B::Device) -> Self {
        let ln = || {
            LayerNormConfig::new(config.n_embd)
                .with_epsilon(config.layer_norm_epsilon)
                .init(device)
        };
        for b in &mut self.transformer.h {
            b.ln_1 = ln();
            b.ln_2 = ln();
        }
        self.transformer.ln_f = ln();
        self
    }

    /// Number of layers.
    pub fn n_layer(&self) -> usize {
        self.transformer.h.len()
    }

    /// Token embeddings of `ids` (`[batch]`): `[batch, 1, n_embd]`.
    pub fn embed_tokens(&self, ids: &[u32], device: &B::Device) -> Tensor<B, 3> {
        let v: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let t = Tensor::<B, 2, Int>::from_data(TensorData::new(v, [ids.len(), 1]), device);
        self.transformer.wte.forward(t)
    }

    /// Runs `embeds` (`[batch, seq, n_embd]`, the positions after the cached ones) through
    /// the transformer, extending `cache`: the final hidden states `[batch, seq, n_embd]`.
    /// Panics (caught by the caller) past `n_positions`.
    pub fn forward_embeds(&self, embeds: Tensor<B, 3>, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let [_, s, d] = embeds.dims();
        let t = &self.transformer;
        let pos = t
            .wpe
            .weight
            .val()
            .slice([cache.len..cache.len + s, 0..d])
            .unsqueeze::<3>();
        let mut x = embeds + pos;
        for (block, c) in t.h.iter().zip(cache.layers.iter_mut()) {
            x = block.forward(x, c);
        }
        cache.len += s;
        t.ln_f.forward(x)
    }

    /// Logits of the last position of `hidden` (`[batch, seq, n_embd]`): `[batch, vocab]`.
    pub fn last_logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, s, d] = hidden.dims();
        let last = hidden.slice([0..b, s - 1..s, 0..d]).reshape([b, d]);
        last.matmul(self.transformer.wte.weight.val().transpose())
    }

    /// Logits of every position of `hidden`: `[batch, seq, vocab]`.
    pub fn all_logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, s, d] = hidden.dims();
        let y = hidden
            .reshape([b * s, d])
            .matmul(self.transformer.wte.weight.val().transpose());
        let [_, v] = y.dims();
        y.reshape([b, s, v])
    }
}
