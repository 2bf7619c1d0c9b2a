//! Top-k over a collection with an optional filter: the one place the jobs search, through
//! [`CollectionView::search`] (HNSW where a segment has a graph, exact scans where the planner
//! says so).

use crate::geo::Point;
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
    let res = view
        .search(query)
        .k(k)
        .filter(filter.clone())
        .run()
        .map_err(|e| JobError::input(format!("search failed: {e}")))?;
    Ok(res
        .hits
        .into_iter()
        .map(|h| Match {
            id: h.id,
            score: h.score,
            lat: h.point.lat(),
            lon: h.point.lon(),
            time: h.time,
            payload: h.payload,
        })
        .collect())
}

/// The point of a match.
pub fn point_of(m: &Match) -> Option<Point> {
    Point::new(m.lat, m.lon).ok()
}
