//! Self-attention from a fused q/k/v projection, with a fast path on the CPU backend.
//!
//! Through burn's ops, CLIP's attention splits the `[batch, seq, 3 hidden]` projection into
//! heads (`reshape` + `swap_dims`), which burn Flex copies into contiguous buffers one op at
//! a time on the calling thread, runs the score and value products as many small matrix
//! products, and computes softmax's `exp` with libm one element at a time. On Flex with f32
//! tensors this module computes `softmax(q k^T * scale [+ causal mask]) v` for each (item,
//! head) in parallel, straight from the projection's rows into the output's, with the
//! vectorised [`exp`]. Other backends and precisions keep burn's ops (the caller's fallback).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::activation::exp;
use super::flex::{flex_of, from_flex};

/// Attention over the fused projection `qkv` (`[batch, seq, 3 hidden]`: q, k and v side by
/// side, as [`super::clip::ClipAttention::fuse_qkv`] lays them out) with `heads` heads; with
/// `causal`, position `i` attends to positions `j <= i` only. `[batch, seq, hidden]`, the
/// heads concatenated (before the output projection). `None` where the fast path does not
/// apply (another backend, another dtype, a non-contiguous tensor): the caller runs burn's
/// ops instead.
pub fn fused_attention<B: Backend>(
    qkv: &Tensor<B, 3>,
    heads: usize,
    causal: bool,
) -> Option<Tensor<B, 3>> {
    let [b, s, d3] = qkv.dims();
    if heads == 0 || d3 == 0 || d3 % (3 * heads) != 0 {
        return None;
    }
    let t = flex_of(qkv).filter(|t| t.dtype() == DType::F32)?;
    let y = t.as_slice::<f32>()?;
    let d = d3 / 3;
    let out = attend(y, b, s, d, heads, causal);
    from_flex(FlexTensor::from_data(TensorData::new(out, [b, s, d])))
}

/// The attention of every (item, head) of `y` (`[b, s, 3 d]`, row-major), as `[b, s, d]`.
pub fn attend(y: &[f32], b: usize, s: usize, d: usize, heads: usize, causal: bool) -> Vec<f32> {
    let hd = d / heads;
    // What burn's `matmul(..) * scale` multiplies by: the f64 scale as an f32 element.
    let scale = (hd as f64).powf(-0.5) as f32;
    let parts: Vec<Vec<f32>> = (0..b * heads)
        .into_par_iter()
        .map(|task| {
            let (item, h) = (task / heads, task % heads);
            let rows = &y[item * s * 3 * d..(item + 1) * s * 3 * d];
            let head = Head {
                s,
                d,
                col: h * hd,
                hd,
                scale,
                causal,
            };
            one_head(rows, &head)
        })
        .collect();
    let mut out = vec![0f32; b * s * d];
    out.par_chunks_mut((s * d).max(1))
        .enumerate()
        .for_each(|(item, dst)| {
            for h in 0..heads {
                let part = &parts[item * heads + h];
                for (t, row) in part.chunks_exact(hd).enumerate() {
                    dst[t * d + h * hd..t * d + (h + 1) * hd].copy_from_slice(row);
                }
            }
        });
    out
}

/// Where one head's columns are in an item's `[s, 3 d]` projection: from `col` (in each of
/// q, k and v), `hd` wide; the score scale, and whether row `t` sees only rows `<= t`.
struct Head {
    s: usize,
    d: usize,
    col: usize,
    hd: usize,
    scale: f32,
    causal: bool,
}

/// One head of one item (`rows`: the item's `[s, 3 d]` projection); `[s, hd]`.
fn one_head(rows: &[f32], head: &Head) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { one_head_avx2(rows, head) };
    }
    one_head_portable(rows, head)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn one_head_avx2(rows: &[f32], head: &Head) -> Vec<f32> {
    one_head_portable(rows, head)
}

#[inline(always)]
fn one_head_portable(rows: &[f32], head: &Head) -> Vec<f32> {
    let &Head {
        s,
        d,
        col,
        hd,
        scale,
        causal,
    } = head;
    let at = |t: usize, part: usize| {
        let o = t * 3 * d + part * d + col;
        &rows[o..o + hd]
    };
    let mut k = Vec::with_capacity(s * hd);
    let mut v = Vec::with_capacity(s * hd);
    for t in 0..s {
        k.extend_from_slice(at(t, 1));
        v.extend_from_slice(at(t, 2));
    }
    let mut out = vec![0f32; s * hd];
    let mut p = vec![0f32; s];
    for (t, o) in out.chunks_exact_mut(hd).enumerate() {
        let q = at(t, 0);
        let n = if causal { t + 1 } else { s };
        let mut max = f32::NEG_INFINITY;
        for (pu, ku) in p[..n].iter_mut().zip(k.chunks_exact(hd)) {
            *pu = dot(q, ku) * scale;
            max = max.max(*pu);
        }
        let mut sum = 0.0f32;
        for pu in &mut p[..n] {
            *pu = exp(*pu - max);
            sum += *pu;
        }
        for (pu, vu) in p[..n].iter().zip(v.chunks_exact(hd)) {
            let w = pu / sum;
            for (oi, vi) in o.iter_mut().zip(vu) {
                *oi += w * vi;
            }
        }
    }
    out
}

/// `a . b` with 16 running sums (so that it vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += xa[l] * xb[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64, one (item, head, row) at a time.
    fn reference(y: &[f32], b: usize, s: usize, d: usize, heads: usize, causal: bool) -> Vec<f64> {
        let hd = d / heads;
        let mut out = vec![0f64; b * s * d];
        let val = |i: usize, t: usize, part: usize, c: usize| {
            f64::from(y[(i * s + t) * 3 * d + part * d + c])
        };
        for i in 0..b {
            for h in 0..heads {
                for t in 0..s {
                    let n = if causal { t + 1 } else { s };
                    let scores: Vec<f64> = (0..n)
                        .map(|u| {
                            (0..hd)
                                .map(|c| val(i, t, 0, h * hd + c) * val(i, u, 1, h * hd + c))
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for c in 0..hd {
                        out[(i * s + t) * d + h * hd + c] =
                            (0..n).map(|u| e[u] / sum * val(i, u, 2, h * hd + c)).sum();
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_its_definition() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0
        };
        // Head widths with and without a remainder of the 16-lane sums; 1 and several items.
        for (b, s, d, heads) in [(1, 1, 16, 1), (2, 5, 24, 2), (3, 9, 96, 3), (1, 50, 128, 2)] {
            let y: Vec<f32> = (0..b * s * 3 * d).map(|_| next()).collect();
            for causal in [false, true] {
                let got = attend(&y, b, s, d, heads, causal);
                let want = reference(&y, b, s, d, heads, causal);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{b} {s} {d} {heads} {causal}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
