//! Walks over a graph for the white-box tests, the fuzz bodies and the recall benchmark: a
//! fixed beam, an optional filter, a per-thread or caller's scratch.

use half::f16;

use super::{search_bounded, walk, Effort, GraphView, Rows, SearchScratch};
use crate::index::flat::Hit;

/// [`search_with`] using a per-thread scratch.
pub fn search(
    view: &GraphView<'_>,
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: Option<&dyn Fn(u32) -> bool>,
) -> Vec<Hit> {
    match filter {
        None => search_filtered(view, vectors, dim, query, k, ef, None::<fn(u32) -> bool>),
        Some(f) => search_filtered(view, vectors, dim, query, k, ef, Some(f)),
    }
}

/// [`search`] with the filter as a concrete type (inlined into the walk: a bitset test costs
/// a load and a shift per visited node), using a per-thread scratch.
#[cfg(feature = "testing")]
pub fn search_filtered<F: Fn(u32) -> bool>(
    view: &GraphView<'_>,
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: Option<F>,
) -> Vec<Hit> {
    search_filtered_seeded(view, vectors, dim, query, k, ef, filter, &[])
}

/// [`search_filtered`] with level-0 entry points: `seeds` (rows, normally a sample of the
/// rows that pass the filter, or the best rows of a routing sample) start the beam with the
/// graph's entry node, in place of the greedy descent through the upper levels (which a
/// view from [`GraphView::open_level0`] does not have). When a filter's region lies away
/// from the query's own neighbourhood in vector space, the walk then starts inside the
/// matching region instead of having to find it from outside; for an unfiltered query, the
/// best of an even sample of the rows starts it nearer than the descent ends (the same
/// recall for fewer rows scored: docs/BENCHMARKS.md). Out-of-range and repeated seeds are
/// ignored; none (an empty slice) means the descent, over a view with its upper levels.
#[allow(clippy::too_many_arguments)]
#[cfg(feature = "testing")]
pub fn search_filtered_seeded<F: Fn(u32) -> bool>(
    view: &GraphView<'_>,
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: Option<F>,
    seeds: &[u32],
) -> Vec<Hit> {
    let effort = Effort::Beam(ef);
    search_bounded(
        view,
        vectors,
        dim,
        query,
        k,
        effort,
        filter,
        seeds,
        usize::MAX,
        None,
    )
    .hits
}

/// Approximate top-`k` rows by dot product with `query` (normalised, length `dim`), walking
/// the graph with beam width `max(ef, k)`. With a filter, only rows for which it returns true
/// are returned. Results are sorted best first (ties by lower row); fewer than `k` come back
/// when fewer matching rows are reached. Rows whose vector is missing from `vectors` are
/// never returned; nothing here panics on any graph that passed [`GraphView::parse`] or
/// [`GraphView::open`] (damaged level-0 lists end the walk: see [`WalkOutcome::damage`](super::WalkOutcome::damage)).
#[allow(clippy::too_many_arguments)]
pub fn search_with(
    scratch: &mut SearchScratch,
    view: &GraphView<'_>,
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    k: usize,
    ef: usize,
    filter: Option<&dyn Fn(u32) -> bool>,
) -> Vec<Hit> {
    let rows = Rows {
        vectors,
        dim,
        query,
        int8: None,
    };
    walk(
        scratch,
        view,
        rows,
        k,
        Effort::Beam(ef),
        filter,
        &[],
        usize::MAX,
    )
    .hits
}
