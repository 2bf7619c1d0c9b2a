//! Per-segment beam calibration: at build time, the smallest `ef` from a fixed ladder whose
//! mean recall@k on a sample of the segment's own vectors reaches a target, stored in its own
//! small section ([`CALIBRATION_KIND`]) next to the graph, so that easy data does not pay a
//! beam sized for hard data and hard data gets the beam it needs.
//!
//! Sample queries: `sample` rows evenly spaced over the segment; each row's own vector is the
//! query, and the row itself is left out of both the exact top-`k` and the walk's answer (so
//! the query is a point of the data distribution, not a free hit). Deterministic: same
//! vectors and graph, same `ef`.
//!
//! # Section layout (version 1), 28 bytes, little-endian `u32`s
//!
//! ```text
//! 0   magic          b"S2HC"
//! 4   version        1
//! 8   ef             chosen beam width, 1..=MAX_EF
//! 12  k              recall@k measured, 1..=1024
//! 16  target_ppm     target recall in parts per million, <= 1_000_000
//! 20  recall_ppm     recall reached at `ef` (below target iff the ladder's top fell short)
//! 24  sample         sample queries used, >= 1
//! ```

use half::f16;
use rayon::prelude::*;

use super::layout::{GraphError, GraphView};
use super::search::search_filtered;
use super::MAX_EF;
use crate::index::flat::{top_k, Hit};

/// Section kind of the calibration record.
pub const CALIBRATION_KIND: u32 = 102;
/// Section magic.
pub const MAGIC: [u8; 4] = *b"S2HC";
/// The format version written; the only one read.
pub const VERSION: u32 = 1;
/// Section size in bytes.
pub const LEN: usize = 28;
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

/// A calibration result (the section's content).
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

impl CalibratedEf {
    /// The section bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(&MAGIC);
        for v in [
            VERSION,
            self.ef,
            self.k,
            self.target_ppm,
            self.recall_ppm,
            self.sample,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses and validates the section bytes.
    pub fn parse(bytes: &[u8]) -> Result<CalibratedEf, GraphError> {
        if bytes.len() < LEN {
            return Err(GraphError::Truncated {
                needed: LEN as u64,
                len: bytes.len(),
            });
        }
        if bytes.len() > LEN {
            return Err(GraphError::Trailing {
                offset: LEN as u64,
                extra: (bytes.len() - LEN) as u64,
            });
        }
        let rd = |off: usize| {
            u32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
        };
        let found = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if found != MAGIC {
            return Err(GraphError::Magic { found });
        }
        if rd(4) != VERSION {
            return Err(GraphError::Version { found: rd(4) });
        }
        let field = |field, offset: u64, reason: String| GraphError::Field {
            field,
            offset,
            reason,
        };
        let c = CalibratedEf {
            ef: rd(8),
            k: rd(12),
            target_ppm: rd(16),
            recall_ppm: rd(20),
            sample: rd(24),
        };
        if !(1..=MAX_EF as u32).contains(&c.ef) {
            return Err(field("ef", 8, format!("{} not in 1..={MAX_EF}", c.ef)));
        }
        if !(1..=1024).contains(&c.k) {
            return Err(field("k", 12, format!("{} not in 1..=1024", c.k)));
        }
        for (name, off, v) in [
            ("target_ppm", 16, c.target_ppm),
            ("recall_ppm", 20, c.recall_ppm),
        ] {
            if v > 1_000_000 {
                return Err(field(name, off, format!("{v} > 1000000")));
            }
        }
        if c.sample == 0 {
            return Err(field("sample", 24, "0".into()));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_bytes() {
        let c = CalibratedEf {
            ef: 96,
            k: 10,
            target_ppm: 970_000,
            recall_ppm: 981_000,
            sample: 200,
        };
        let b = c.to_bytes();
        assert_eq!(b.len(), LEN);
        assert_eq!(CalibratedEf::parse(&b), Ok(c));
        assert!(matches!(
            CalibratedEf::parse(&b[..27]),
            Err(GraphError::Truncated { .. })
        ));
        let mut long = b.clone();
        long.push(0);
        assert!(matches!(
            CalibratedEf::parse(&long),
            Err(GraphError::Trailing { .. })
        ));
        for (off, bad) in [
            (0usize, 0u32),
            (4, 2),
            (8, 0),
            (8, 70_000),
            (12, 0),
            (16, 1_000_001),
            (20, 2_000_000),
            (24, 0),
        ] {
            let mut x = b.clone();
            x[off..off + 4].copy_from_slice(&bad.to_le_bytes());
            assert!(CalibratedEf::parse(&x).is_err(), "offset {off} value {bad}");
        }
        // Every single-byte corruption parses or fails with an error, never panics.
        for i in 0..LEN {
            for v in [0u8, 0xff] {
                let mut x = b.clone();
                x[i] = v;
                let _ = CalibratedEf::parse(&x);
            }
        }
    }
}
