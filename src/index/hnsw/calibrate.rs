//! Beam calibration for the recall benchmark: the smallest `ef` from a fixed ladder whose
//! mean recall@k on a sample of a graph's own vectors reaches a target.
//!
//! Sample queries: `sample` rows evenly spaced over the graph; each row's own vector is the
//! query, and the row itself is left out of both the exact top-`k` and the walk's answer (so
//! the query is a point of the data distribution, not a free hit). Deterministic: same
//! vectors and graph, same `ef`. The database does not use it: a segment's own rows are
//! easier queries than real ones, so the beam it picks is too narrow for them
//! (`bench_recall --ef-auto` measures the benchmark queries at it).

use half::f16;
use rayon::prelude::*;

use super::layout::GraphView;
use super::search::search_filtered;
use crate::index::flat::{top_k, Hit};

/// Beam widths tried, smallest first.
pub const LADDER: [usize; 12] = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768];

/// What to calibrate for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Mean recall@k to reach, in `(0, 1]`.
    pub target_recall: f64,
    /// Sample queries (rows), `>= 1`; fewer when the segment is smaller.
    pub sample: usize,
    /// The `k` of recall@k, `1..=1024`.
    pub k: usize,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            target_recall: 0.97,
            sample: 200,
            k: 10,
        }
    }
}

/// A calibration result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalibratedEf {
    /// Chosen beam width.
    pub ef: u32,
    /// The `k` of recall@k.
    pub k: u32,
    /// Target, parts per million.
    pub target_ppm: u32,
    /// Recall reached at `ef`, parts per million.
    pub recall_ppm: u32,
    /// Sample queries used.
    pub sample: u32,
}

/// Runs the calibration over a built graph (`vectors`: the `view.n()` rows it was built over).
/// `None` for an empty graph or out-of-range settings.
pub fn calibrate(
    view: &GraphView<'_>,
    vectors: &[f16],
    dim: usize,
    cal: &Calibration,
) -> Option<CalibratedEf> {
    let n = view.n() as usize;
    let valid = cal.target_recall > 0.0 && cal.target_recall <= 1.0 && (1..=1024).contains(&cal.k);
    if n < 2 || dim == 0 || cal.sample == 0 || !valid || vectors.len() != n * dim {
        return None;
    }
    let s = cal.sample.min(n);
    let k = cal.k.min(n - 1);
    let rows: Vec<u32> = (0..s).map(|i| (i * n / s) as u32).collect();
    let query = |row: u32| -> Vec<f32> {
        let v = &vectors[row as usize * dim..(row as usize + 1) * dim];
        v.iter().map(|x| x.to_f32()).collect()
    };
    let without = |hits: Vec<Hit>, row: u32| -> Vec<u32> {
        hits.into_iter()
            .map(|h| h.row)
            .filter(|&r| r != row)
            .take(k)
            .collect()
    };
    let truth: Vec<Vec<u32>> = rows
        .par_iter()
        .map(|&row| {
            let q = query(row);
            without(top_k(vectors, dim, &q, 0..n as u32, k + 1), row)
        })
        .collect();
    let recall_at = |ef: usize| -> f64 {
        let total: f64 = rows
            .par_iter()
            .zip(&truth)
            .map(|(&row, t)| {
                let q = query(row);
                let got = without(
                    search_filtered(view, vectors, dim, &q, k + 1, ef, None::<fn(u32) -> bool>),
                    row,
                );
                let hit = got.iter().filter(|r| t.contains(r)).count();
                hit as f64 / t.len().max(1) as f64
            })
            .sum();
        total / s as f64
    };
    let mut last = (LADDER[LADDER.len() - 1], 0.0);
    for &ef in LADDER.iter().filter(|&&ef| ef > k) {
        let r = recall_at(ef);
        last = (ef, r);
        if r >= cal.target_recall {
            break;
        }
    }
    let ppm = |x: f64| (x.clamp(0.0, 1.0) * 1e6).round() as u32;
    Some(CalibratedEf {
        ef: last.0 as u32,
        k: k as u32,
        target_ppm: ppm(cal.target_recall),
        recall_ppm: ppm(last.1),
        sample: s as u32,
    })
}
