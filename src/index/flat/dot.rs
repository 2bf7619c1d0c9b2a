//! The f16 kernels: f16 -> f32 conversion, f16 x f32 and f16 x f16 dot products with f32
//! accumulation (vectorised by the compiler, AVX2 + F16C where the CPU has them), and the
//! prefetch hint of scattered reads.

use half::f16;

/// Converts the bits of an f16 into an f32, exactly, without branches.
#[inline(always)]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let mag = h & 0x7fff;
    // Place exponent+mantissa in f32 position and rescale by 2^112: exact for normal and
    // subnormal halves (f32 has the range to represent both as normal/denormal values).
    let scaled = (f32::from_bits(mag << 13) * f32::from_bits(0x7780_0000)).to_bits();
    // Infinity and NaN keep an all-ones exponent and their payload.
    let special = 0x7f80_0000 | ((mag & 0x3ff) << 13);
    let bits = if mag >= 0x7c00 { special } else { scaled };
    f32::from_bits(bits | sign)
}

const LANES: usize = 16;

#[inline(always)]
fn reduce(acc: [f32; LANES], tail: f32) -> f32 {
    let mut a8 = [0f32; 8];
    for i in 0..8 {
        a8[i] = acc[i] + acc[i + 8];
    }
    let a4 = [a8[0] + a8[4], a8[1] + a8[5], a8[2] + a8[6], a8[3] + a8[7]];
    (a4[0] + a4[2]) + (a4[1] + a4[3]) + tail
}

/// Dot product of an f16 vector with an f32 vector (over the shorter length), f32 accumulation.
///
/// Uses AVX2 + F16C + FMA when the CPU has them (checked at run time), else a portable
/// kernel the compiler vectorises for the baseline target.
#[inline]
pub fn dot_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let a: &[u16] = bytemuck::cast_slice(&a[..n]);
    let b = &b[..n];
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports every feature the kernel is compiled for.
        return unsafe { simd::dot_f16_f32(a, b) };
    }
    dot_f16_f32_portable(a, b)
}

/// [`dot_f16_f32`] of each `dim`-wide row of `rows` with `b`, in order, into `out` (cleared
/// first): the same scores, bit for bit, with one CPU feature check for the whole batch
/// instead of one a row (which matters for short rows scored by the thousand).
pub fn dots_f16_f32(rows: &[f16], dim: usize, b: &[f32], out: &mut Vec<f32>) {
    out.clear();
    if dim == 0 {
        return;
    }
    let rows: &[u16] = bytemuck::cast_slice(rows);
    let b = &b[..dim.min(b.len())];
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports every feature the kernel is compiled for.
        unsafe { simd::dots_f16_f32(rows, dim, b, out) };
        return;
    }
    out.extend(
        rows.chunks_exact(dim)
            .map(|r| dot_f16_f32_portable(&r[..b.len()], b)),
    );
}

/// Portable kernel behind [`dot_f16_f32`] (f16 given as bits; equal lengths expected).
pub fn dot_f16_f32_portable(a: &[u16], b: &[f32]) -> f32 {
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += f16_bits_to_f32(x[i]) * y[i];
        }
    }
    let mut tail = 0f32;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += f16_bits_to_f32(x) * y;
    }
    reduce(acc, tail)
}

/// Dot product of two f16 vectors (over the shorter length), f32 accumulation.
#[inline]
pub fn dot_f16_f16(a: &[f16], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let a: &[u16] = bytemuck::cast_slice(&a[..n]);
    let b: &[u16] = bytemuck::cast_slice(&b[..n]);
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports every feature the kernel is compiled for.
        return unsafe { simd::dot_f16_f16(a, b) };
    }
    dot_f16_f16_portable(a, b)
}

/// Portable kernel behind [`dot_f16_f16`] (f16 given as bits; equal lengths expected).
pub fn dot_f16_f16_portable(a: &[u16], b: &[u16]) -> f32 {
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += f16_bits_to_f32(x[i]) * f16_bits_to_f32(y[i]);
        }
    }
    let mut tail = 0f32;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += f16_bits_to_f32(x) * f16_bits_to_f32(y);
    }
    reduce(acc, tail)
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! AVX2 + F16C + FMA kernels, selected at run time.
    use std::arch::x86_64::*;

    /// Whether the running CPU has AVX2, FMA and F16C (cached by std).
    #[inline]
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds 8 f32; unaligned store.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
            + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
    }

    /// [`super::dots_f16_f32`]'s kernel: `dot_f16_f32` of each `dim`-wide row.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dots_f16_f32(rows: &[u16], dim: usize, b: &[f32], out: &mut Vec<f32>) {
        out.extend(rows.chunks_exact(dim).map(|r| dot_f16_f32(r, b)));
    }

    /// f16 (bits) x f32 dot over `min(a.len(), b.len())` values.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_f16_f32(a: &[u16], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so a[i..i+16] and b[i..i+16] are in bounds; the loads
            // are unaligned.
            let (ha, hb, fa, fb) = unsafe {
                (
                    _mm_loadu_si128(a.as_ptr().add(i).cast()),
                    _mm_loadu_si128(a.as_ptr().add(i + 8).cast()),
                    _mm256_loadu_ps(b.as_ptr().add(i)),
                    _mm256_loadu_ps(b.as_ptr().add(i + 8)),
                )
            };
            acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(ha), fa, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(hb), fb, acc1);
            i += 16;
        }
        let mut sum = hsum(_mm256_add_ps(acc0, acc1));
        for j in i..n {
            sum += super::f16_bits_to_f32(a[j]) * b[j];
        }
        sum
    }

    /// f16 x f16 (bits) dot over `min(a.len(), b.len())` values.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_f16_f16(a: &[u16], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so a[i..i+16] and b[i..i+16] are in bounds; the loads
            // are unaligned.
            let (a0, a1, b0, b1) = unsafe {
                (
                    _mm_loadu_si128(a.as_ptr().add(i).cast()),
                    _mm_loadu_si128(a.as_ptr().add(i + 8).cast()),
                    _mm_loadu_si128(b.as_ptr().add(i).cast()),
                    _mm_loadu_si128(b.as_ptr().add(i + 8).cast()),
                )
            };
            acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(a0), _mm256_cvtph_ps(b0), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(a1), _mm256_cvtph_ps(b1), acc1);
            i += 16;
        }
        let mut sum = hsum(_mm256_add_ps(acc0, acc1));
        for j in i..n {
            sum += super::f16_bits_to_f32(a[j]) * super::f16_bits_to_f32(b[j]);
        }
        sum
    }
}

/// Asks the CPU to start loading the first `max_bytes` of `v` into cache (a hint only: no
/// effect on results). Scans and graph walks over scattered rows issue it a few rows ahead,
/// so that memory loads overlap instead of stalling one by one.
#[inline(always)]
pub fn prefetch(v: &[f16], max_bytes: usize) {
    let bytes: &[u8] = bytemuck::cast_slice(v);
    prefetch_bytes(&bytes[..bytes.len().min(max_bytes)]);
}

/// [`prefetch`] of every cache line of `bytes`.
#[inline(always)]
pub fn prefetch_bytes(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for off in (0..bytes.len()).step_by(64) {
            // SAFETY: SSE is part of the x86_64 baseline; a prefetch never faults, and the
            // pointer is in bounds of `bytes` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes[off..].as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The vector of `row`, or an empty slice when the row is out of range.
#[inline]
pub fn row_vector(vectors: &[f16], dim: usize, row: u32) -> &[f16] {
    let start = (row as usize).saturating_mul(dim);
    vectors.get(start..start.saturating_add(dim)).unwrap_or(&[])
}
