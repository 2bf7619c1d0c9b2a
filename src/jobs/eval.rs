//! Retrieval metrics: recall@k and median rank of the paired item in a gallery.

/// Recall@1/5/10 and median rank (1-based) over the queries.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RetrievalMetrics {
    /// Number of queries.
    pub queries: usize,
    /// Gallery size.
    pub gallery: usize,
    /// Fraction of queries whose pair ranks first.
    pub r_at_1: f64,
    /// ... in the top 5.
    pub r_at_5: f64,
    /// ... in the top 10.
    pub r_at_10: f64,
    /// Median rank of the pair (1 = best).
    pub median_rank: f64,
}

/// Rank (1-based) of `gallery[truth]` for `query`: 1 + the number of gallery items that score
/// strictly higher (ties favour the pair, as a stable sort would).
pub fn rank_of(query: &[f32], gallery: &[Vec<f32>], truth: usize) -> usize {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let s = dot(query, &gallery[truth]);
    1 + gallery.iter().filter(|g| dot(query, g) > s).count()
}

/// Metrics from ranks.
pub fn metrics(ranks: &[usize], gallery: usize) -> RetrievalMetrics {
    let n = ranks.len().max(1) as f64;
    let at = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
    let mut s = ranks.to_vec();
    s.sort_unstable();
    let median_rank = match s.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => s[l / 2] as f64,
        l => (s[l / 2 - 1] + s[l / 2]) as f64 / 2.0,
    };
    RetrievalMetrics {
        queries: ranks.len(),
        gallery,
        r_at_1: at(1),
        r_at_5: at(5),
        r_at_10: at(10),
        median_rank,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_metrics() {
        let g = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.7, 0.7]];
        assert_eq!(rank_of(&[1.0, 0.0], &g, 0), 1);
        assert_eq!(rank_of(&[1.0, 0.0], &g, 1), 3);
        let m = metrics(&[1, 3, 7, 20], 30);
        assert_eq!((m.r_at_1, m.r_at_5, m.r_at_10), (0.25, 0.5, 0.75));
        assert_eq!(m.median_rank, 5.0);
    }
}
