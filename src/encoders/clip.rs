//! The transformer blocks shared by CLIP's text and vision towers.
//!
//! Ported from transformers' `modeling_clip.py` at release 5.24.0 (the version the parity
//! goldens were made with; line numbers below refer to it):
//! <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py>: `CLIPAttention`, `CLIPMLP`, `CLIPEncoderLayer`, `CLIPEncoder`. Field names mirror the
//! checkpoint's (`self_attn.q_proj`, `layer_norm1`, `mlp.fc1`, ...). Dropout is omitted
//! (inference only; the reference's attention_dropout is 0).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

pub use super::activation::quick_gelu;

/// A linear layer over `[batch, seq, in]` as one `[batch * seq, in]` matrix product: burn
/// runs a 3-d input as one product per batch item, packing the weight again for each (on
/// the CPU a fifth to a third slower at batch 32 than one product).
pub fn linear3<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let y = layer.forward(x.reshape([b * s, d]));
    let [_, out] = y.dims();
    y.reshape([b, s, out])
}

/// Multi-head self-attention with separate q/k/v/out projections (`CLIPAttention`,
/// <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L280>; `eager_attention_forward`, #L259).
#[derive(Module, Debug)]
pub struct ClipAttention<B: Backend> {
    /// Query projection `[hidden, hidden]` with bias.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// q, k and v as one `[hidden, 3 hidden]` projection, made from the three after loading
    /// ([`ClipAttention::fuse_qkv`]): one matrix product instead of three small ones. Not in
    /// checkpoints; `None` until fused.
    pub qkv: Option<Linear<B>>,
    num_heads: usize,
}

impl<B: Backend> ClipAttention<B> {
    /// New attention block with burn's default initialisation.
    pub fn new(hidden: usize, num_heads: usize, device: &B::Device) -> Self {
        let lin = || LinearConfig::new(hidden, hidden).init(device);
        Self {
            q_proj: lin(),
            k_proj: lin(),
            v_proj: lin(),
            out_proj: lin(),
            qkv: None,
            num_heads,
        }
    }

    /// Makes [`ClipAttention::qkv`] from the loaded q, k and v projections (their weights
    /// side by side, `[hidden, 3 hidden]`, and their biases); the three stay as they are.
    pub fn fuse_qkv(&mut self) {
        let parts = [&self.q_proj, &self.k_proj, &self.v_proj];
        let weight = Tensor::cat(parts.iter().map(|l| l.weight.val()).collect(), 1);
        let bias = parts
            .iter()
            .map(|l| l.bias.as_ref().map(|b| b.val()))
            .collect::<Option<Vec<_>>>()
            .map(|b| Param::from_tensor(Tensor::cat(b, 0)));
        self.qkv = Some(Linear {
            weight: Param::from_tensor(weight),
            bias,
        });
    }

    /// `x`: `[batch, seq, hidden]`; with `causal`, position `i` attends to positions
    /// `j <= i` only (the text tower).
    pub fn forward(&self, x: Tensor<B, 3>, causal: bool) -> Tensor<B, 3> {
        let [b, s, d] = x.dims();
        let h = self.num_heads;
        let hd = d / h;
        let scale = (hd as f64).powf(-0.5);
        let split = |t: Tensor<B, 3>| t.reshape([b, s, h, hd]).swap_dims(1, 2);
        // CLIPAttention.forward: queries, keys, values -> [b, h, s, hd].
        let (q, k, v) = match &self.qkv {
            Some(qkv) => {
                let y = linear3(qkv, x);
                if let Some(out) = super::attention::fused_attention(&y, h, causal) {
                    return linear3(&self.out_proj, out);
                }
                let part = |i: usize| split(y.clone().slice([0..b, 0..s, i * d..(i + 1) * d]));
                (part(0), part(1), part(2))
            }
            None => (
                split(linear3(&self.q_proj, x.clone())),
                split(linear3(&self.k_proj, x.clone())),
                split(linear3(&self.v_proj, x)),
            ),
        };
        // eager_attention_forward: softmax(q k^T * scale + mask) v
        let mut scores = q.matmul(k.swap_dims(2, 3)) * scale;
        if causal {
            // _create_4d_causal_attention_mask: true where attention is NOT allowed.
            let mask = Tensor::<B, 2, Bool>::tril_mask([s, s], 0, &scores.device());
            let mask: Tensor<B, 4, Bool> = mask.unsqueeze::<4>();
            scores = scores.mask_fill(mask.expand([b, h, s, s]), f32::NEG_INFINITY);
        }
        let attn = softmax(scores, 3);
        let out = attn.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
        linear3(&self.out_proj, out)
    }
}

impl<B: Backend> ClipAttention<B> {
    /// The attention output at one position of each sequence only: row `rows[i]` of
    /// `x.reshape([b * s, d])` for sequence `i`, attending to the positions of its sequence
    /// that `mask` allows (`[b, 1, 1, s]`, true where NOT allowed; `None`: every position).
    /// Keys and values come from every position, so the result equals that row of
    /// [`ClipAttention::forward`] (with a causal mask where `mask` blocks the positions after
    /// each row); `[b, 1, d]`.
    pub fn forward_rows(
        &self,
        x: Tensor<B, 3>,
        rows: Tensor<B, 1, Int>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let [b, s, d] = x.dims();
        let h = self.num_heads;
        let hd = d / h;
        let scale = (hd as f64).powf(-0.5);
        let split = |t: Tensor<B, 3>, n: usize| t.reshape([b, n, h, hd]).swap_dims(1, 2);
        let xq = x
            .clone()
            .reshape([b * s, d])
            .select(0, rows)
            .reshape([b, 1, d]);
        let q = split(linear3(&self.q_proj, xq), 1);
        let k = split(linear3(&self.k_proj, x.clone()), s);
        let v = split(linear3(&self.v_proj, x), s);
        let mut scores = q.matmul(k.swap_dims(2, 3)) * scale;
        if let Some(mask) = mask {
            scores = scores.mask_fill(mask.expand([b, h, 1, s]), f32::NEG_INFINITY);
        }
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, 1, d]);
        linear3(&self.out_proj, out)
    }
}

/// The feed-forward block, `fc2(quick_gelu(fc1(x)))` (`CLIPMLP`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L338>).
#[derive(Module, Debug)]
pub struct ClipMlp<B: Backend> {
    /// `hidden -> intermediate`.
    pub fc1: Linear<B>,
    /// `intermediate -> hidden`.
    pub fc2: Linear<B>,
}

impl<B: Backend> ClipMlp<B> {
    /// New MLP with burn's default initialisation.
    pub fn new(hidden: usize, intermediate: usize, device: &B::Device) -> Self {
        Self {
            fc1: LinearConfig::new(hidden, intermediate).init(device),
            fc2: LinearConfig::new(intermediate, hidden).init(device),
        }
    }

    /// Applies the block to `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        linear3(&self.fc2, quick_gelu(linear3(&self.fc1, x)))
    }
}

/// A pre-norm transformer layer (`CLIPEncoderLayer`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L353>).
#[derive(Module, Debug)]
pub struct ClipEncoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: ClipAttention<B>,
    /// LayerNorm before attention.
    pub layer_norm1: LayerNorm<B>,
    /// Feed-forward block.
    pub mlp: ClipMlp<B>,
    /// LayerNorm before the MLP.
    pub layer_norm2: LayerNorm<B>,
}

impl<B: Backend> ClipEncoderLayer<B> {
    /// New layer with burn's default initialisation.
    pub fn new(
        hidden: usize,
        intermediate: usize,
        heads: usize,
        eps: f64,
        device: &B::Device,
    ) -> Self {
        let ln = || LayerNormConfig::new(hidden).with_epsilon(eps).init(device);
        Self {
            self_attn: ClipAttention::new(hidden, heads, device),
            layer_norm1: ln(),
            mlp: ClipMlp::new(hidden, intermediate, device),
            layer_norm2: ln(),
        }
    }

    /// `x + attn(ln1(x))`, then `x + mlp(ln2(x))` (`causal`: see [`ClipAttention::forward`]).
    pub fn forward(&self, x: Tensor<B, 3>, causal: bool) -> Tensor<B, 3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), causal);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }

    /// [`ClipEncoderLayer::forward`] at one position of each sequence only (see
    /// [`ClipAttention::forward_rows`]): for the last layer of a tower pooled at one
    /// position, whose other positions nothing reads; `[b, 1, d]`.
    pub fn forward_rows(
        &self,
        x: Tensor<B, 3>,
        rows: Tensor<B, 1, Int>,
        mask: Option<Tensor<B, 4, Bool>>,
    ) -> Tensor<B, 3> {
        let [b, s, d] = x.dims();
        let at = x
            .clone()
            .reshape([b * s, d])
            .select(0, rows.clone())
            .reshape([b, 1, d]);
        let x = at
            + self
                .self_attn
                .forward_rows(self.layer_norm1.forward(x), rows, mask);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

/// The stack of layers (`CLIPEncoder`, <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/clip/modeling_clip.py#L445>); checkpoint names `encoder.layers.N.*`.
#[derive(Module, Debug)]
pub struct ClipEncoder<B: Backend> {
    /// The layers, in order.
    pub layers: Vec<ClipEncoderLayer<B>>,
}

impl<B: Backend> ClipEncoder<B> {
    /// New encoder of `n` layers.
    pub fn new(
        n: usize,
        hidden: usize,
        intermediate: usize,
        heads: usize,
        eps: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            layers: (0..n)
                .map(|_| ClipEncoderLayer::new(hidden, intermediate, heads, eps, device))
                .collect(),
        }
    }

    /// Fuses every layer's q, k and v projections ([`ClipAttention::fuse_qkv`]).
    pub fn fuse_qkv(&mut self) {
        for layer in &mut self.layers {
            layer.self_attn.fuse_qkv();
        }
    }
}
