use super::*;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

/// The visited set against a plain set, over walks of graphs of changing sizes (the
/// words a walk set cleared one by one, or the whole set after a walk that set many).
#[test]
fn the_visited_set_starts_empty_for_every_walk() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut s = SearchScratch::new();
    for walk in 0..400 {
        let n: usize = [1, 63, 64, 65, 1_000, 70_000][walk % 6];
        s.begin(n);
        let mut model = HashSet::new();
        // Some walks touch a few rows, some most of the words.
        let visits = if walk % 5 == 0 { 3 * n } else { 20 };
        for _ in 0..visits {
            // Rows past `n` (up to the largest size seen) are never new.
            let row = rng.random_range(0..(n as u32 + 70));
            let new = (row as usize) < n && model.insert(row);
            assert_eq!(s.visit(row), new, "walk {walk} (n {n}) row {row}");
        }
    }
    s.begin(10);
    assert!(!s.visit(u32::MAX));
}

/// The beam's f16 rescoring reads only the rows whose int8 bound reaches the `k`-th
/// best lower bound, and answers what scoring every row answers: rows and scores, near
/// ties included (rows a small step apart), at every `k` up to past the beam's size.
#[test]
fn rescoring_the_bounded_rows_is_rescoring_them_all() {
    use crate::index::quant::{build_quantized, QuantView};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (n, dim) = (400usize, 48usize);
    let unit = |rng: &mut rand_chacha::ChaCha8Rng| {
        let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let base = unit(&mut rng);
    let mut vectors = Vec::with_capacity(n * dim);
    for r in 0..n {
        // Half the rows close to one direction (their scores near ties), half anywhere.
        let v = unit(&mut rng);
        let w: f32 = if r % 2 == 0 { 0.02 } else { 1.0 };
        vectors.extend(base.iter().zip(&v).map(|(b, x)| f16::from_f32(b + w * x)));
    }
    let bytes = build_quantized(&vectors, dim);
    let view = QuantView::parse(&bytes, n, dim).unwrap();
    let mut wide = 0;
    for trial in 0..60 {
        let query = if trial % 3 == 0 {
            base.clone()
        } else {
            unit(&mut rng)
        };
        let int8 = Int8Rows::new(view, &query);
        let rows = Rows {
            vectors: &vectors,
            dim,
            query: &query,
            int8: Some(&int8),
        };
        let beam = rng.random_range(1..n);
        let hits: Vec<Hit> = (0..beam)
            .map(|_| rng.random_range(0..n as u32))
            .collect::<HashSet<u32>>()
            .into_iter()
            .map(|row| Hit {
                row,
                score: int8.approx(row).unwrap().0,
            })
            .collect();
        for k in [1, 10, 50, beam + 3] {
            let mut all = TopK::new(k);
            for h in &hits {
                all.push(Hit {
                    row: h.row,
                    score: rows.exact(h.row).unwrap(),
                });
            }
            let want = all.into_sorted();
            let got = rescore(rows, &int8, hits.clone(), k).0;
            let bits = |v: &[Hit]| {
                v.iter()
                    .map(|h| (h.row, h.score.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                bits(&got),
                bits(&want),
                "trial {trial} k {k} beam {}",
                hits.len()
            );
        }
        // Of a wide beam, a few dozen rows are read from the f16 vectors.
        if hits.len() >= 200 {
            let read = rescore(rows, &int8, hits.clone(), 10).1;
            assert!(
                read < hits.len() / 2,
                "trial {trial}: {read} of {}",
                hits.len()
            );
            wide += 1;
        }
    }
    assert!(wide > 10);
}

/// The seeds scored on the sample rows' own int8 copy (the walk hints') are the seeds
/// scored on the segment's int8 rows, with a filter or without; and they come from that
/// copy: one whose codes are another set of vectors' gives that set's seeds.
#[test]
fn seeds_scored_on_the_samples_own_int8_rows_are_the_walks_seeds() {
    use super::super::routing::{write_hints, RoutingSample};
    use crate::index::quant::{build_quantized, QuantView};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let (n, dim) = (20_000usize, 32usize);
    let mut random = |n: usize| -> Vec<f16> {
        (0..n * dim)
            .map(|_| f16::from_f32(rng.random_range(-1.0f32..1.0)))
            .collect()
    };
    let (vectors, other) = (random(n), random(n));
    let all_bytes = build_quantized(&vectors, dim);
    let all = QuantView::parse(&all_bytes, n, dim).unwrap();
    let sample = RoutingSample::build(&vectors, dim, n as u32, 64);
    let hints = write_hints(None, &sample, &vectors, dim);
    let read = RoutingSample::from_hints(&hints, n as u32, dim).unwrap();
    let own = read.int8_rows(&hints, dim).unwrap().unwrap();
    // The sample rows' prefixes of `vectors`, their int8 codes those of `other`.
    let wrong_hints = write_hints(None, &sample, &other, dim);
    let wrong = read.int8_rows(&wrong_hints, dim).unwrap().unwrap();
    let other_bytes = build_quantized(&other, dim);
    let other_all = QuantView::parse(&other_bytes, n, dim).unwrap();
    let mut differ = 0;
    for t in 0..40 {
        let row = (t * 487) % n;
        let query: Vec<f32> = vectors[row * dim..(row + 1) * dim]
            .iter()
            .map(|x| x.to_f32())
            .collect();
        let int8 = Int8Rows::new(all, &query);
        let member = |r: u32| t % 2 == 0 || !r.is_multiple_of(3);
        let seeds = |int8: &Int8Rows<'_>, own: Option<&Int8Rows<'_>>| {
            routing_seeds(&read, &vectors, dim, &query, Some(int8), own, member, 8)
        };
        let want = seeds(&int8, None);
        assert_eq!(want.len(), 8);
        assert_eq!(seeds(&int8, Some(&int8.over(own))), want, "query {t}");
        let by_other = seeds(&Int8Rows::new(other_all, &query), None);
        assert_eq!(seeds(&int8, Some(&int8.over(wrong))), by_other, "query {t}");
        differ += usize::from(by_other != want);
    }
    assert!(differ > 30, "{differ}");
}
