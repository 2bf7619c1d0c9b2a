use super::*;
use crate::index::flat::top_k_bits_into;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_rows(r: &mut ChaCha8Rng, n: usize, dim: usize) -> Vec<f16> {
    (0..n * dim)
        .map(|i| {
            // Mixed magnitudes, a few large components, some exact zeros (never a
            // whole row: stored rows are unit length).
            let v: f32 = r.random_range(0.01..1.0) * if i % 2 == 0 { 1.0 } else { -1.0 };
            let v = if i % 17 == 0 { v * 40.0 } else { v };
            f16::from_f32(if i % 11 == 0 && i % dim != 0 { 0.0 } else { v })
        })
        .collect()
}

fn unit_query(r: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let q: Vec<f32> = (0..dim).map(|_| r.random_range(-1.0..1.0)).collect();
    let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    q.iter().map(|x| x / norm).collect()
}

#[test]
fn bounds_hold_and_kernels_agree() {
    let mut r = ChaCha8Rng::seed_from_u64(3);
    for dim in [1usize, 7, 16, 33, 384, 4096] {
        let n = 40;
        let v = random_rows(&mut r, n, dim);
        let bytes = build_quantized(&v, dim);
        let view = QuantView::parse(&bytes, n, dim).unwrap();
        for _ in 0..5 {
            let q = unit_query(&mut r, dim);
            let qq = QuantQuery::new(&q);
            for row in 0..n as u32 {
                let codes = view.codes(row);
                assert_eq!(
                    dot_i8_i16(codes, &qq.codes),
                    dot_i8_i16_portable(codes, &qq.codes)
                );
                let (lo, hi) = qq.bounds(codes, view.scales[row as usize], view.l1[row as usize]);
                let exact = dot_f16_f32(row_vector(&v, dim, row), &q);
                assert!(
                    lo <= exact && exact <= hi,
                    "dim {dim} row {row}: {lo} {exact} {hi}"
                );
            }
        }
    }
}

#[test]
fn the_block_kernel_equals_the_row_kernel() {
    let mut r = ChaCha8Rng::seed_from_u64(10);
    for width in [1usize, 15, 16, 32, 128, 200, 256, 384] {
        for rows in [0usize, 1, 3, 4, 7, 64] {
            let codes: Vec<i8> = (0..rows * width)
                .map(|_| r.random_range(-127..=127))
                .collect();
            let q: Vec<i16> = (0..width).map(|_| r.random_range(-2047..=2047)).collect();
            let mut out = vec![0i32; rows];
            dots_i8_i16(&codes, width, &q, &mut out);
            for (row, &o) in out.iter().enumerate() {
                let want = dot_i8_i16_portable(&codes[row * width..][..width], &q);
                assert_eq!(o, want, "width {width} rows {rows} row {row}");
            }
        }
    }
}

#[test]
fn quantized_scan_equals_the_exact_scan() {
    let mut r = ChaCha8Rng::seed_from_u64(8);
    let (n, dim) = (3_000usize, 48);
    let mut v = random_rows(&mut r, n, dim);
    // Duplicated rows: ties the rescoring must break like the exact scan.
    for row in (0..n).step_by(7) {
        let src = row_vector(&v, dim, 5).to_vec();
        v[row * dim..(row + 1) * dim].copy_from_slice(&src);
    }
    let bytes = build_quantized(&v, dim);
    let view = QuantView::parse(&bytes, n, dim).unwrap();
    for trial in 0..12 {
        let q = if trial % 3 == 0 {
            // The duplicated row itself: its copies tie at the top.
            let x: Vec<f32> = row_vector(&v, dim, 5).iter().map(|h| h.to_f32()).collect();
            let norm = x.iter().map(|a| a * a).sum::<f32>().sqrt();
            x.iter().map(|a| a / norm).collect()
        } else {
            unit_query(&mut r, dim)
        };
        let mut bits = vec![0u64; n.div_ceil(64)];
        for row in 0..n {
            let keep = match trial % 4 {
                0 => true,
                1 => row % 5 == 0,
                2 => (300..1700).contains(&row),
                _ => r.random_range(0..100) < 30,
            };
            if keep {
                bits[row / 64] |= 1 << (row % 64);
            }
        }
        for k in [1usize, 10, 100, 5000] {
            let want = top_k_bits_into(&v, dim, &q, n as u32, &bits, TopK::new(k));
            let got = top_k_bits_quantized(&v, dim, &q, n as u32, &bits, &view, TopK::new(k));
            assert_eq!(got.unwrap(), want, "trial {trial} k {k}");
            let want = top_k_bits_into(&v, dim, &q, n as u32, &bits, TopK::keeping_ties(k));
            let got =
                top_k_bits_quantized(&v, dim, &q, n as u32, &bits, &view, TopK::keeping_ties(k));
            assert_eq!(got.unwrap(), want, "ties, trial {trial} k {k}");
        }
    }
}

#[test]
fn damaged_sections_are_errors() {
    let v: Vec<f16> = (0..64).map(|i| f16::from_f32(i as f32 - 30.0)).collect();
    let good = build_quantized(&v, 8);
    assert!(QuantView::parse(&good, 8, 8).is_ok());
    assert!(QuantView::parse(&good, 8, 4).is_err(), "other shape");
    assert!(
        QuantView::parse(&good[..good.len() - 1], 8, 8).is_err(),
        "short"
    );
    let mut b = good.clone();
    b[0] ^= 1;
    assert!(QuantView::parse(&b, 8, 8).unwrap_err().contains("magic"));
    let mut b = good.clone();
    b[8] = 9;
    assert!(QuantView::parse(&b, 8, 8).unwrap_err().contains("version"));
    assert!(QuantView::parse(&[], usize::MAX, 8).is_err());
    // A damaged scale or norm: the section parses (its factors are read where used),
    // and whatever reads that row's factor says so: the walk's scorer, the scan, the
    // check of every row; the rows before it are scored as usual.
    let (_, lo, _, _) = layout(8, 8).unwrap();
    let q = [0.5f32; 8];
    let bits = [u64::MAX];
    for (at, row, value) in [
        (HEADER, 0usize, f32::NAN),
        (lo + 4, 1, -1.0),
        (HEADER + 8, 2, 0.0),
    ] {
        let mut b = good.clone();
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let view = QuantView::parse(&b, 8, 8).unwrap();
        let rows = Int8Rows::new(view, &q);
        for r in 0..row as u32 {
            assert!(rows.approx(r).is_some(), "row {r} before the damaged {row}");
        }
        assert_eq!(rows.damage(), None);
        assert_eq!(rows.approx(row as u32), None);
        let what = format!("row {row}: scale");
        assert!(
            rows.damage().unwrap().contains(&what),
            "{:?}",
            rows.damage()
        );
        let scan = top_k_bits_quantized(&v, 8, &q, 8, &bits, &view, TopK::new(3));
        assert!(scan.unwrap_err().contains(&what));
        let check = view.check_rows(|r| row_vector(&v, 8, r as u32));
        assert!(check.unwrap_err().contains(&what));
    }
    let layout = QuantLayout::parse(&good, 8, 8).unwrap();
    assert!(layout.view(&good).is_some() && layout.view(&good[..64]).is_none());
}
