//! CLIP's activation, `quick_gelu(x) = x * sigmoid(1.702 x)`, with a fast path on the CPU
//! backend: burn Flex computes `sigmoid` one element at a time with libm's `expf` on one
//! thread (a tenth of an image's encoding time); here the tensor is updated in place, in
//! parallel, by an exponential the compiler vectorises (AVX2 + FMA where the CPU has them).
//! Other backends, and f16 tensors, take burn's own ops.

use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex::{flex_of, from_flex};

/// `x * sigmoid(1.702 x)` (transformers `QuickGELUActivation`,
/// <https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/activations.py#L117>).
pub fn quick_gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let Some(mut t) = flex_of(&x) else {
        return x.clone() * sigmoid(x * 1.702);
    };
    // `x` and `t` share the buffer: `x` dropped, `t` owns it alone.
    drop(x);
    let done = flex_quick_gelu(&mut t);
    // `flex_of` succeeded: the backend is Flex.
    let Some(x) = from_flex::<B, D>(t) else {
        unreachable!("a Flex float tensor is a FlexTensor")
    };
    if done {
        x
    } else {
        // Not an f32 contiguous tensor: burn's own ops.
        x.clone() * sigmoid(x * 1.702)
    }
}

/// Applies quick_gelu in place to an f32 contiguous Flex tensor (copied first if its buffer
/// is shared); false, untouched, for another dtype or layout.
fn flex_quick_gelu(t: &mut FlexTensor) -> bool {
    if t.dtype() != burn::tensor::DType::F32 {
        return false;
    }
    let Some((start, end)) = t.layout().contiguous_offsets() else {
        return false;
    };
    let data = t.storage_mut::<f32>();
    let Some(values) = data.get_mut(start..end) else {
        return false;
    };
    values.par_chunks_mut(16 * 1024).for_each(quick_gelu_slice);
    true
}

/// `quick_gelu` of every value of `x`, in place.
pub fn quick_gelu_slice(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { quick_gelu_avx2(x) };
    }
    quick_gelu_portable(x);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quick_gelu_avx2(x: &mut [f32]) {
    quick_gelu_portable(x);
}

#[inline(always)]
fn quick_gelu_portable(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v /= 1.0 + exp(-1.702 * *v);
    }
}

/// `e^x` for f32, branch-free so that it vectorises: `x = n ln2 + r` with `|r| <= ln2 / 2`,
/// `e^r` by a degree-6 polynomial (Cephes `expf` coefficients), scaled by `2^n` through the
/// exponent bits. Within 2 ulp of `f32::exp` where the result is normal; 0 below -87.3,
/// infinity above 88.7, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let big = x > 88.72;
    let small = x < -87.33;
    let xc = x.clamp(-87.33, 88.72);
    let n = (xc * LOG2E).round();
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 5e-1);
    let e_r = (p * r).mul_add(r, r) + 1.0;
    // 2^n with n in [-126, 128): n + 127 in the exponent field (n = 128 only for x near
    // 88.72: split in two factors to stay finite).
    let n = n as i32;
    let half = n / 2;
    let scale = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e_r * scale(half) * scale(n - half);
    if x.is_nan() {
        x
    } else if big {
        f32::INFINITY
    } else if small {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let ulp = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut worst = 0;
        let mut x = -87.0f32;
        while x < 88.5 {
            let (ours, libm) = (exp(x), x.exp());
            if libm.is_normal() {
                worst = worst.max(ulp(ours, libm));
            }
            x += 0.001_37;
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn quick_gelu_matches_its_definition() {
        let mut xs: Vec<f32> = (-4000..4000).map(|i| i as f32 / 100.0).collect();
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 60.0, -60.0, 100.0, -100.0]);
        let mut ys = xs.clone();
        quick_gelu_slice(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            // What burn's ops compute: f32 throughout, libm's expf.
            let want = x * (1.0 / (1.0 + (-1.702f32 * x).exp()));
            let err = (y - want).abs();
            assert!(err <= 5e-7 * want.abs() + 1e-38, "{x}: {y} vs {want}");
        }
    }
}
