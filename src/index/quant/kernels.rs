//! The integer kernels of the int8 copy: the dot product of a row's i8 codes with a
//! query's i16 codes, one row at a time or a block of rows at a time (AVX2 where the CPU
//! has it, a portable loop elsewhere; both give the same sums).

/// Widest rows the block kernel reads four at a time (on a 72k-row scan, at 384 one row
/// after another was 1.9x faster; at 128 four at a time was 1.08x faster).
const INTERLEAVE_MAX: usize = 256;

/// Integer dot product of row codes with query codes (over the shorter length).
#[inline]
pub fn dot_i8_i16(a: &[i8], b: &[i16]) -> i32 {
    let n = a.len().min(b.len());
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports every feature the kernel is compiled for.
        return unsafe { simd::dot_i8_i16(&a[..n], &b[..n]) };
    }
    dot_i8_i16_portable(&a[..n], &b[..n])
}

/// `out[r]` = the dot product of row `r` of `codes` (rows `width` wide, one after the other)
/// with `q`, for as many rows as `codes` and `out` both hold.
#[inline]
pub fn dots_i8_i16(codes: &[i8], width: usize, q: &[i16], out: &mut [i32]) {
    if width == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU supports every feature the kernel is compiled for.
        return unsafe { simd::dots_i8_i16(codes, width, q, out) };
    }
    for (row, o) in codes.chunks_exact(width).zip(out.iter_mut()) {
        *o = dot_i8_i16_portable(row, q);
    }
}

/// Portable kernel behind [`dot_i8_i16`].
pub fn dot_i8_i16_portable(a: &[i8], b: &[i16]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .fold(0i32, i32::wrapping_add)
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! AVX2 kernel, selected at run time.
    use std::arch::x86_64::*;

    #[inline]
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// `out[r] = codes[r * width..][..width] . q` for each whole row of `codes`; four rows
    /// at a time share each load of `q` and one horizontal reduction when `width` is a
    /// multiple of 16 up to [`INTERLEAVE_MAX`](super::INTERLEAVE_MAX) (wider rows read four
    /// streams at once far apart, which measured slower than one row after another).
    #[target_feature(enable = "avx2")]
    pub fn dots_i8_i16(codes: &[i8], width: usize, q: &[i16], out: &mut [i32]) {
        let rows = (codes.len() / width).min(out.len());
        let mut r = 0;
        if width.is_multiple_of(16) && width <= super::INTERLEAVE_MAX && q.len() >= width {
            while r + 4 <= rows {
                let block = &codes[r * width..(r + 4) * width];
                let (mut a0, mut a1, mut a2, mut a3) = (
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                );
                let mut i = 0;
                while i < width {
                    // SAFETY: i + 16 <= width <= q.len() (32 bytes of q), and each of the
                    // four rows of `block` holds `width` codes (16 bytes from i).
                    unsafe {
                        let y = _mm256_loadu_si256(q.as_ptr().add(i).cast());
                        let p = block.as_ptr().add(i);
                        let x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()));
                        let x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(width).cast()));
                        let x2 = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(2 * width).cast()));
                        let x3 = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(3 * width).cast()));
                        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, y));
                        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, y));
                        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x2, y));
                        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x3, y));
                    }
                    i += 16;
                }
                let s01 = _mm256_hadd_epi32(a0, a1);
                let s23 = _mm256_hadd_epi32(a2, a3);
                let s = _mm256_hadd_epi32(s01, s23);
                let sum = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                let mut lanes = [0i32; 4];
                // SAFETY: `lanes` is 16 bytes; the store is unaligned.
                unsafe { _mm_storeu_si128(lanes.as_mut_ptr().cast(), sum) };
                out[r..r + 4].copy_from_slice(&lanes);
                r += 4;
            }
        }
        for (row, o) in codes[r * width..]
            .chunks_exact(width)
            .zip(&mut out[r..rows])
        {
            *o = dot_i8_i16(row, q);
        }
    }

    /// i8 x i16 dot over equal-length slices.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn dot_i8_i16(a: &[i8], b: &[i16]) -> i32 {
        let n = a.len().min(b.len());
        let mut acc = _mm256_setzero_si256();
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so a[i..i+16] (16 bytes) and b[i..i+16] (32 bytes) are in
            // bounds; the loads are unaligned.
            let (x, y) = unsafe {
                (
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(a.as_ptr().add(i).cast())),
                    _mm256_loadu_si256(b.as_ptr().add(i).cast()),
                )
            };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
            i += 16;
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 32 bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
        let mut sum = lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v));
        for j in i..n {
            sum = sum.wrapping_add(i32::from(a[j]) * i32::from(b[j]));
        }
        sum
    }
}
