//! Search by example: "more like these, not like those". Positive and negative examples
//! (stored ids, places, areas) of the searched collection become one query vector,
//!
//! ```text
//! q = mean(like) - w * mean(unlike)        (w = 0.5 unless given)
//! ```
//!
//! of the examples' stored (unit) vectors: Rocchio's relevance feedback with the positive
//! centroid at full weight. Why this and not a classifier trained on the examples: a user
//! gives a handful of examples (often no negatives at all), far too few for a linear
//! classifier in 512 dimensions to be anything but the same centroid plus noise; the
//! centroid is what the examples have in common, and it is a direction the graph can walk
//! like any query (a classifier's score `w.x + b` ranks unit vectors as the cosine with `w`
//! would, so nothing is lost by searching with a direction). Negatives are weighted half:
//! subtracting them in full turns two close centroids into their small difference, which
//! points away from both (and mostly at noise); half keeps the positives' centroid dominant
//! and tilts it away from the negatives. That is also Qdrant's `average_vector` rule
//! (`2 * mean(like) - mean(unlike)`, the same direction). The examples themselves are never
//! in the results.

use std::collections::BTreeSet;

use super::JobError;
use crate::{Area, Collection, Filter, Point, Radius};

/// One example.
#[derive(Debug, Clone, PartialEq)]
pub enum Example {
    /// A stored item of the searched collection.
    Id(u64),
    /// The stored item nearest to a place (within [`MAX_EXAMPLE_KM`]).
    Near(Point),
    /// Every stored item inside an area (at most [`MAX_AREA_EXAMPLES`]).
    Inside(Area),
}

/// Positive and negative examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Examples {
    /// What the results should be like (at least one).
    pub like: Vec<Example>,
    /// What they should not be like.
    pub unlike: Vec<Example>,
    /// The weight of the negatives' mean (0.5 by default; in `0..=1`).
    pub unlike_weight: f32,
}

/// The default weight of the negative examples.
pub const UNLIKE_WEIGHT: f32 = 0.5;

/// A place example further than this from every stored item is refused.
pub const MAX_EXAMPLE_KM: f64 = 100.0;

/// The most items one area example may hold.
pub const MAX_AREA_EXAMPLES: usize = 100_000;

impl Examples {
    /// Examples with the default weight.
    pub fn new(like: Vec<Example>, unlike: Vec<Example>) -> Examples {
        Examples {
            like,
            unlike,
            unlike_weight: UNLIKE_WEIGHT,
        }
    }
}

/// The examples of a GeoJSON file, split into (like, unlike): each feature goes to the side
/// its `label` property says (`like` / `unlike`, `positive` / `negative`, true / false, 1 /
/// 0); an unlabelled one to the side `unlabelled_like` says. A Point is the item nearest to
/// it, a MultiPoint one per point, a Polygon or MultiPolygon every item inside.
pub fn read_examples(
    path: &std::path::Path,
    unlabelled_like: bool,
) -> Result<(Vec<Example>, Vec<Example>), JobError> {
    let places = crate::io::geojson::read_examples(path).map_err(JobError::input)?;
    let (mut like, mut unlike) = (Vec::new(), Vec::new());
    for p in places {
        let e = match p.place {
            crate::io::geojson::Place::Point(p) => Example::Near(p),
            crate::io::geojson::Place::Area(a) => Example::Inside(a),
        };
        if p.label.unwrap_or(unlabelled_like) {
            like.push(e);
        } else {
            unlike.push(e);
        }
    }
    Ok((like, unlike))
}

/// The query the examples make in `view`, and the ids of every item they stand for (which
/// the results leave out).
pub(crate) fn example_query(
    view: &Collection<'_>,
    ex: &Examples,
) -> Result<(Vec<f32>, BTreeSet<u64>), JobError> {
    if ex.like.is_empty() {
        return Err(JobError::input(
            "search by example needs at least one positive example (like)",
        ));
    }
    let w = ex.unlike_weight;
    if !(w.is_finite() && (0.0..=1.0).contains(&w)) {
        return Err(JobError::input(format!(
            "the weight of the negative examples is {w}; it must be in 0..=1"
        )));
    }
    let mut ids = BTreeSet::new();
    let pos = resolve(view, &ex.like, "like", &mut ids)?;
    let neg = resolve(view, &ex.unlike, "unlike", &mut ids)?;
    let both: BTreeSet<u64> = pos.iter().copied().filter(|i| neg.contains(i)).collect();
    if let Some(id) = both.first() {
        return Err(JobError::input(format!(
            "item {id} is both a positive and a negative example"
        )));
    }
    let mp = mean(view, &pos)?;
    let mut q = mp.clone();
    if !neg.is_empty() && w > 0.0 {
        let mn = mean(view, &neg)?;
        for (a, b) in q.iter_mut().zip(&mn) {
            *a -= w * b;
        }
    }
    let norm = crate::index::norm_f64(&q);
    let scale = crate::index::norm_f64(&mp);
    // What is left after the subtraction must still be a direction, not rounding noise.
    if norm.is_nan() || norm <= 1e-4 * scale.max(f64::MIN_POSITIVE) || scale < 1e-6 {
        return Err(JobError::input(
            "the examples cancel out: their combined query has no direction",
        ));
    }
    Ok((q, ids))
}

/// The ids `examples` stand for, added to `all`.
fn resolve(
    view: &Collection<'_>,
    examples: &[Example],
    side: &str,
    all: &mut BTreeSet<u64>,
) -> Result<BTreeSet<u64>, JobError> {
    let mut out = BTreeSet::new();
    for e in examples {
        match e {
            Example::Id(id) => {
                if !view.contains(*id) {
                    return Err(JobError::input(format!(
                        "{side} example {id}: no item with that id in '{}'",
                        view.name()
                    )));
                }
                out.insert(*id);
            }
            Example::Near(p) => {
                out.insert(nearest(view, *p, side)?);
            }
            Example::Inside(area) => {
                let found = inside(view, area)?;
                if found.is_empty() {
                    return Err(JobError::input(format!(
                        "{side} example: no item of '{}' inside its polygon",
                        view.name()
                    )));
                }
                out.extend(found);
            }
        }
    }
    all.extend(out.iter().copied());
    Ok(out)
}

/// Any unit direction: the filters below rank by distance or take everything they match.
fn any_direction(dim: usize) -> Vec<f32> {
    let mut q = vec![0.0; dim];
    if let Some(x) = q.first_mut() {
        *x = 1.0;
    }
    q
}

/// The item nearest to `p` (1, 10, then 100 km around it).
fn nearest(view: &Collection<'_>, p: Point, side: &str) -> Result<u64, JobError> {
    for km in [1.0, 10.0, MAX_EXAMPLE_KM] {
        let r = Radius::new(p.lat(), p.lon(), km).map_err(|e| JobError::input(e.to_string()))?;
        let hits = view
            .search(&any_direction(view.dim()))
            .k(1)
            .filter(Filter::new().radius(r))
            .geo_ranked(p.lat(), p.lon(), 0.0, km)
            .run()
            .map_err(|e| JobError::runtime(format!("collection '{}': {e}", view.name())))?;
        if let Some(h) = hits.hits.first() {
            return Ok(h.id);
        }
    }
    Err(JobError::input(format!(
        "{side} example at lon {}, lat {}: no item of '{}' within {MAX_EXAMPLE_KM} km",
        p.lon(),
        p.lat(),
        view.name()
    )))
}

/// The items inside `area`.
fn inside(view: &Collection<'_>, area: &Area) -> Result<Vec<u64>, JobError> {
    let hits = view
        .search(&any_direction(view.dim()))
        .k(MAX_AREA_EXAMPLES + 1)
        .filter(Filter::new().and(area.clone()))
        .exact(true)
        .run()
        .map_err(|e| JobError::runtime(format!("collection '{}': {e}", view.name())))?;
    if hits.hits.len() > MAX_AREA_EXAMPLES {
        return Err(JobError::input(format!(
            "an example polygon holds more than {MAX_AREA_EXAMPLES} items; draw a smaller one"
        )));
    }
    Ok(hits.ids())
}

/// The mean of the stored vectors of `ids`.
fn mean(view: &Collection<'_>, ids: &BTreeSet<u64>) -> Result<Vec<f32>, JobError> {
    let mut acc = vec![0.0f64; view.dim()];
    for &id in ids {
        let item = view
            .get(id)
            .map_err(JobError::runtime)?
            .ok_or_else(|| JobError::runtime(format!("item {id} vanished")))?;
        for (a, h) in acc.iter_mut().zip(item.vector) {
            *a += f64::from(h.to_f32());
        }
    }
    let n = ids.len().max(1) as f64;
    Ok(acc.into_iter().map(|a| (a / n) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, OpenOptions};

    /// Three clusters on the sphere: the examples of one and a confusable neighbour.
    fn clustered(dir: &std::path::Path) -> Db {
        let mut db = Db::open(dir, OpenOptions::create_if_missing()).unwrap();
        db.create_collection("c", 8).unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        for id in 0..300u64 {
            let c = (id % 3) as usize;
            let v: Vec<f32> = (0..8)
                .map(|d| if d == c { 1.0 } else { 0.0 } + 0.3 * next())
                .collect();
            let point = Point::new(0.0, id as f64 * 0.01).unwrap();
            let item = crate::NewItem {
                id,
                vector: &v,
                point,
                time: None,
                payload: None,
            };
            db.add("c", item).unwrap();
        }
        db.commit().unwrap();
        db
    }

    #[test]
    fn examples_make_a_query_and_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = clustered(dir.path());
        let snap = db.snapshot();
        let view = snap.collection("c").unwrap();
        let ex = Examples::new(vec![Example::Id(0), Example::Id(3)], vec![Example::Id(1)]);
        let (q, ids) = example_query(&view, &ex).unwrap();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![0, 1, 3]);
        // The query leans to cluster 0 and away from cluster 1.
        assert!(q[0] > 0.5 && q[1] < 0.0, "{q:?}");
        let near = Example::Near(Point::new(0.0, 0.0301).unwrap());
        let (_, ids) = example_query(&view, &Examples::new(vec![near], vec![])).unwrap();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![3]);
        for (ex, want) in [
            (
                Examples::new(vec![], vec![Example::Id(1)]),
                "at least one positive",
            ),
            (
                Examples::new(vec![Example::Id(9999)], vec![]),
                "no item with that id",
            ),
            (
                Examples::new(vec![Example::Id(2)], vec![Example::Id(2)]),
                "both a positive",
            ),
            (
                Examples {
                    unlike_weight: f32::NAN,
                    ..Examples::new(vec![Example::Id(2)], vec![])
                },
                "must be in 0..=1",
            ),
            (
                Examples::new(
                    vec![Example::Near(Point::new(45.0, 100.0).unwrap())],
                    vec![],
                ),
                "within 100 km",
            ),
        ] {
            let e = example_query(&view, &ex).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
