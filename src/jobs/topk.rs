//! Exact top-k over a collection with an optional filter: the one place the jobs search.
//!
//! This is a full scan with the `index::flat` f16 kernels (exact, recall 1.0). When
//! `CollectionView::search` (HNSW + planner) lands, only [`top_k`]'s body changes.

use crate::geo::Point;
use crate::index::flat::dot_f16_f32;
use crate::query::filter::Filter;
use crate::storage::CollectionView;

use super::JobError;

/// One result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Match {
    /// Item id.
    pub id: u64,
    /// Cosine similarity with the query.
    pub score: f32,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Unix seconds, if any.
    pub time: Option<i64>,
    /// The payload, if any.
    pub payload: Option<String>,
}

/// The `k` items of `view` most similar (cosine) to `query` among those `filter` matches,
/// best first (ties by smaller id).
pub fn top_k(
    view: &CollectionView,
    query: &[f32],
    k: usize,
    filter: &Filter,
) -> Result<Vec<Match>, JobError> {
    if query.len() != view.dim() {
        return Err(JobError::input(format!(
            "query has {} dimensions, collection '{}' has {}",
            query.len(),
            view.name(),
            view.dim()
        )));
    }
    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(JobError::input("query vector is zero or not finite"));
    }
    let q: Vec<f32> = query.iter().map(|x| x / norm).collect();
    let mut all: Vec<Match> = Vec::new();
    for item in view.iter() {
        let item = item.map_err(JobError::runtime)?;
        if !filter.is_empty() && !filter.matches(item.point, item.time) {
            continue;
        }
        all.push(Match {
            id: item.id,
            score: dot_f16_f32(item.vector, &q),
            lat: item.point.lat(),
            lon: item.point.lon(),
            time: item.time,
            payload: item.payload.map(str::to_string),
        });
    }
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    all.truncate(k);
    Ok(all)
}

/// The point of a match.
pub fn point_of(m: &Match) -> Option<Point> {
    Point::new(m.lat, m.lon).ok()
}
