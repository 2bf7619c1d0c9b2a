//! The score slack of a default graph walk ([`Effort::Slack`](super::search::Effort)), taken
//! from the data: how much one hop along the graph moves the score of a query like the rows
//! themselves.
//!
//! A walk keeps the best `k` rows and expands every candidate scoring at least the `k`-th
//! best minus the slack. A candidate further below than a large hop can move a score is
//! unlikely to lead to a better row; one within it may. So the slack is the
//! [`HOP_QUANTILE`] quantile of `|q . (a - b)|` over level-0 edges `(a, b)` and query rows
//! `q`, both sampled evenly from the segment: data whose neighbours lie close together gets
//! a small slack, data with long edges (text among place names) a larger one, and a query
//! whose neighbourhood is flat walks further than one with a clear top `k` at the same
//! slack. No query file chooses it.

use half::f16;

use super::layout::GraphView;
use crate::index::flat::{dot_f16_f32, row_vector};

/// The quantile of the one-hop score changes the slack is.
pub const HOP_QUANTILE: f64 = 0.92;

/// Rows standing in for queries.
const QUERIES: usize = 16;

/// Nodes whose level-0 edges are sampled.
const NODES: usize = 128;

/// The slack of `view` over `vectors` (`dim` wide, unit rows): the [`HOP_QUANTILE`]
/// quantile of `|q . (a - b)|` over the level-0 edges of [`NODES`] nodes and [`QUERIES`]
/// query rows, each spread evenly over the rows. `None` for a graph with no edges.
/// Deterministic; about 40,000 dot products.
pub fn hop_slack(view: &GraphView<'_>, vectors: &[f16], dim: usize) -> Option<f32> {
    let n = view.n() as usize;
    if n < 2 || dim == 0 {
        return None;
    }
    let spread = |count: usize, i: usize| ((2 * i + 1) * n / (2 * count.min(n))) as u32;
    let queries: Vec<u32> = (0..QUERIES.min(n)).map(|i| spread(QUERIES, i)).collect();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    let n32 = view.n();
    for j in 0..NODES.min(n) {
        // Offset by one row from the queries' spread, so that a node is rarely a query.
        let a = (spread(NODES, j) as usize + 1).min(n - 1) as u32;
        // Lists the walk has not checked yet may be damaged: such an edge is left out here
        // (the walk that reads the list reports it).
        let list = view.level0(a).unwrap_or_default();
        edges.extend(list.iter().filter(|&b| b != a && b < n32).map(|b| (a, b)));
    }
    if edges.is_empty() {
        return None;
    }
    let mut rows: Vec<u32> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    rows.sort_unstable();
    rows.dedup();
    let index = |r: u32| rows.binary_search(&r).ok();
    let mut changes: Vec<f32> = Vec::with_capacity(queries.len() * edges.len());
    let mut scores = vec![0f32; rows.len()];
    for &q in &queries {
        let qv: Vec<f32> = row_vector(vectors, dim, q)
            .iter()
            .map(|x| x.to_f32())
            .collect();
        if qv.len() != dim {
            continue;
        }
        for (s, &r) in scores.iter_mut().zip(&rows) {
            *s = dot_f16_f32(row_vector(vectors, dim, r), &qv);
        }
        for &(a, b) in &edges {
            if a == q || b == q {
                continue;
            }
            if let (Some(i), Some(j)) = (index(a), index(b)) {
                let d = (scores[i] - scores[j]).abs();
                if d.is_finite() {
                    changes.push(d);
                }
            }
        }
    }
    if changes.is_empty() {
        return None;
    }
    let at = ((changes.len() - 1) as f64 * HOP_QUANTILE).round() as usize;
    let (_, q, _) = changes.select_nth_unstable_by(at, f32::total_cmp);
    Some(*q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::hnsw::{build_graph, HnswParams};
    use rand::{Rng, SeedableRng};

    /// `n` unit rows of `dim`: `clusters` directions plus noise of norm about `noise`.
    fn data(n: usize, dim: usize, clusters: usize, noise: f32, seed: u64) -> Vec<f16> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let centers: Vec<Vec<f32>> = (0..clusters)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = &centers[i % clusters];
            let mut v: Vec<f32> = c
                .iter()
                .map(|x| x + noise * rng.random_range(-1.0f32..1.0))
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            out.extend(v.iter().map(|&x| f16::from_f32(x)));
        }
        out
    }

    #[test]
    fn the_slack_follows_the_spread_of_the_data() {
        let p = HnswParams {
            m: 8,
            ef_construction: 48,
            ef_search: 32,
        };
        let dim = 24;
        let slack = |noise: f32| {
            let v = data(3_000, dim, 12, noise, 5);
            let bytes = build_graph(&v, dim, &p).unwrap();
            let view = GraphView::parse(&bytes, 3_000).unwrap();
            let s = hop_slack(&view, &v, dim).unwrap();
            // The same graph and rows give the same slack.
            assert_eq!(hop_slack(&view, &v, dim), Some(s));
            s
        };
        let (tight, loose) = (slack(0.05), slack(0.6));
        assert!(
            tight > 0.0 && tight < loose && loose < 1.0,
            "{tight} {loose}"
        );
    }

    #[test]
    fn graphs_without_edges_have_no_slack() {
        let v = data(1, 4, 1, 0.1, 1);
        let bytes = build_graph(&v, 4, &HnswParams::default()).unwrap();
        let view = GraphView::parse(&bytes, 1).unwrap();
        assert_eq!(hop_slack(&view, &v, 4), None);
    }
}
