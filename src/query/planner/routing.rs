//! The routing sample of unfiltered walks ([`RoutingSample`]).

use half::f16;

use super::{ROUTING_DIMS, ROUTING_MIN};
use crate::index::flat::{dot_f16_f32, row_vector, Hit, TopK};

/// The routing sample of a segment ([`PlannerParams::routing_stride`](super::PlannerParams::routing_stride)): one row in every
/// `stride` (in runs of consecutive rows, one page of vectors per run), first
/// [`ROUTING_DIMS`] components of each, contiguous, so that one query scores thousands
/// of sample rows in one sequential read (at 1M x 512 with stride 64: 15,625 rows, 2 MB).
/// Leading components stand in for the whole vector only to rank entry points; the walk
/// scores the chosen rows in full.
#[derive(Debug, Clone)]
pub struct RoutingSample {
    pub(super) stride: usize,
    dims: usize,
    rows: Vec<u32>,
    prefix: Vec<f16>,
}

impl RoutingSample {
    /// The sample of `n` rows of `vectors` (`dim` wide) for `routing_stride` (0: empty).
    pub fn build(vectors: &[f16], dim: usize, n: u32, routing_stride: usize) -> RoutingSample {
        let dims = dim.min(ROUTING_DIMS);
        let rows: Vec<u32> = if routing_stride == 0 || n == 0 || dims == 0 {
            Vec::new()
        } else {
            let n = n as usize;
            let size = (n / routing_stride).max(ROUTING_MIN).min(n);
            // Runs of consecutive rows, one 4 KiB page of vectors each, spread evenly: the
            // first query after open faults in one page per run instead of one per row.
            let run = (4096 / (2 * dim)).clamp(1, 16);
            let runs = size.div_ceil(run);
            let step = n / runs;
            (0..runs)
                .flat_map(|r| {
                    let start = r * step;
                    start..(start + run.min(step)).min(n)
                })
                .take(size)
                .map(|row| row as u32)
                .collect()
        };
        let mut prefix = Vec::with_capacity(rows.len() * dims);
        let mut kept = Vec::with_capacity(rows.len());
        for &row in &rows {
            let v = row_vector(vectors, dim, row);
            if v.len() == dim {
                prefix.extend_from_slice(&v[..dims]);
                kept.push(row);
            }
        }
        RoutingSample {
            stride: routing_stride,
            dims,
            rows: kept,
            prefix,
        }
    }

    /// Rows in the sample.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the sample is empty.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `keep` sample rows whose leading components score best against `query`'s.
    pub fn best(&self, query: &[f32], keep: usize) -> Vec<u32> {
        let Some(q) = query.get(..self.dims).filter(|q| !q.is_empty()) else {
            return Vec::new();
        };
        let mut best = TopK::new(keep);
        for (&row, v) in self.rows.iter().zip(self.prefix.chunks_exact(self.dims)) {
            best.push(Hit {
                row,
                score: dot_f16_f32(v, q),
            });
        }
        best.into_sorted().iter().map(|h| h.row).collect()
    }
}

