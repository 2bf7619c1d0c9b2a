//! The `graph_section` fuzz body: an HNSW graph section as read from a segment file.

use std::cmp::Ordering;
use std::collections::HashSet;

use half::f16;

use crate::index::flat::{dot_f16_f32, Hit};
use crate::index::hnsw::{
    routing_seeds, search_bounded, search_with, Effort, GraphView, RoutingSample, SearchScratch,
};
use crate::index::quant::{build_quantized, Int8Rows, QuantView};

/// Dimension of the vectors the graph bodies search over.
pub const GRAPH_DIM: usize = 4;

/// A unit vector for `row` (a point on a 4-d spiral: neighbouring rows are close).
fn graph_vector(row: u32) -> [f32; GRAPH_DIM] {
    let a = row as f32 * 0.37;
    let b = row as f32 * 0.11;
    let v = [a.cos(), a.sin(), b.cos(), b.sin()];
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.map(|x| x / n)
}

/// The vectors `graph_section` searches with, rows `0..n` (for building seed graphs).
pub fn graph_vectors(n: u32) -> Vec<f16> {
    (0..n).flat_map(graph_vector).map(f16::from_f32).collect()
}

/// Parses `data` as an HNSW graph section (over the row count its header names, and over 8
/// rows); a section that validates must keep every neighbour list in range, rebuild the same
/// view from its layout, and searches over it (unfiltered and filtered, with vectors for all
/// rows or only some) return at most `k` distinct rows that exist, pass the filter, carry
/// their exact score and come best first. The same bytes opened without the level-0 check
/// ([`GraphView::open`], and [`GraphView::open_level0`] without the upper levels') walk
/// without panicking, return valid hits, and report damage only where the whole check
/// refuses the section; read as a walk hints section, they are
/// refused or give a sample of existing rows and finite values, whose seeds
/// ([`hinted_seeds`]) are rows that pass.
pub fn graph_section(data: &[u8]) {
    opened_graph(data);
    if let Ok(sample) = RoutingSample::from_hints(data, 8, GRAPH_DIM) {
        assert!(sample.best(&graph_vector(3), 4).iter().all(|&r| r < 8));
        hinted_seeds(data, &sample);
    }
    let header_n = header_rows(data);
    let mut scratch = SearchScratch::new();
    for n_rows in [header_n, 8] {
        let Ok(view) = GraphView::parse(data, n_rows) else {
            continue;
        };
        assert_eq!(view.n(), n_rows);
        assert!(view.n_levels() <= crate::index::hnsw::layout::MAX_LEVELS);
        let Some(again) = view.layout(data).view(data) else {
            panic!("the layout of a parsed graph does not fit its own bytes")
        };
        let n = view.n();
        for level in 0..view.n_levels() {
            assert!(view.level_len(level) <= n);
            for row in 0..n.min(256) {
                let nb = view.neighbours(level, row);
                assert!(nb.iter().all(|r| r < n), "neighbour out of range");
                assert!(nb.iter().eq(again.neighbours(level, row).iter()));
            }
        }
        if let Some(e) = view.entry() {
            assert!(e < n);
        }
        // Vectors for every row, or (per the last byte) for only the first half.
        let with_vectors = if data.last().is_some_and(|b| b & 1 == 1) {
            n / 2
        } else {
            n
        };
        let vectors = graph_vectors(with_vectors);
        let query = graph_vector(n / 3 + 1);
        let odd = |r: u32| r % 2 == 1;
        let filters: [Option<&dyn Fn(u32) -> bool>; 2] = [None, Some(&odd)];
        for (k, ef) in [(1, 1), (3, 16), (n as usize + 1, 4)] {
            for filter in filters {
                let hits = search_with(
                    &mut scratch,
                    &view,
                    &vectors,
                    GRAPH_DIM,
                    &query,
                    k,
                    ef,
                    filter,
                );
                check_graph_hits(&hits, k, with_vectors, &vectors, &query, filter);
            }
        }
    }
}

/// The seeds of `sample`, read from the walk hints section `data` over 8 rows, for a walk
/// steered by the int8 copy of those rows: its pool scored on the section's own int8 rows
/// where it has them (what [`RoutingSample::from_hints`] accepted must read and score
/// without damage), the rows they stand for otherwise. Every seed is a sample row that
/// passes, and no more come back than were asked for.
fn hinted_seeds(data: &[u8], sample: &RoutingSample) {
    let vectors = graph_vectors(8);
    let copy = build_quantized(&vectors, GRAPH_DIM);
    let view = match QuantView::parse(&copy, 8, GRAPH_DIM) {
        Ok(view) => view,
        Err(e) => panic!("the int8 copy of 8 rows does not parse: {e}"),
    };
    let query = graph_vector(5);
    let int8 = Int8Rows::new(view, &query);
    let own = match sample.int8_rows(data, GRAPH_DIM) {
        None => None,
        Some(Ok(rows)) => Some(int8.over(rows)),
        Some(Err(e)) => panic!("int8 rows the sample was read with do not read again: {e}"),
    };
    let rows = sample.best(&query, usize::MAX);
    let odd = |r: u32| r % 2 == 1;
    let all = |_: u32| true;
    for (member, keep) in [(&odd as &dyn Fn(u32) -> bool, 3), (&all, 4), (&all, 0)] {
        let seeds = routing_seeds(
            sample,
            &vectors,
            GRAPH_DIM,
            &query,
            Some(&int8),
            own.as_ref(),
            member,
            keep,
        );
        assert!(seeds.len() <= keep, "{} seeds for {keep}", seeds.len());
        assert!(seeds.iter().all(|&r| member(r) && rows.contains(&r)));
    }
    assert_eq!(own.and_then(|o| o.damage()), None);
    assert_eq!(int8.damage(), None);
}

fn check_graph_hits(
    hits: &[Hit],
    k: usize,
    with_vectors: u32,
    vectors: &[f16],
    query: &[f32],
    filter: Option<&dyn Fn(u32) -> bool>,
) {
    assert!(hits.len() <= k, "{} hits for k = {k}", hits.len());
    let mut seen = HashSet::new();
    for h in hits {
        assert!(h.row < with_vectors, "row {} has no vector", h.row);
        assert!(seen.insert(h.row), "row {} returned twice", h.row);
        assert!(
            filter.is_none_or(|f| f(h.row)),
            "row {} fails the filter",
            h.row
        );
        let v = crate::index::flat::row_vector(vectors, GRAPH_DIM, h.row);
        assert_eq!(h.score.to_bits(), dot_f16_f32(v, query).to_bits());
    }
    assert!(
        hits.windows(2)
            .all(|w| w[0].rank_cmp(&w[1]) == Ordering::Less),
        "hits not best first"
    );
}

/// The row count a graph section's header names (0 when it is too short).
fn header_rows(data: &[u8]) -> u32 {
    data.get(8..12)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// [`graph_section`]'s walks over [`GraphView::open`]'s view of `data` (descending from the
/// entry) and over [`GraphView::open_level0`]'s (from seeds, some out of range).
fn opened_graph(data: &[u8]) {
    let header_n = header_rows(data);
    for (n_rows, level0) in [(header_n, false), (8, false), (header_n, true), (8, true)] {
        let opened = if level0 {
            GraphView::open_level0(data, n_rows)
        } else {
            GraphView::open(data, n_rows)
        };
        let Ok(view) = opened else {
            assert!(
                GraphView::parse(data, n_rows).is_err(),
                "open refuses what parse accepts"
            );
            assert!(
                !level0 || GraphView::open(data, n_rows).is_err(),
                "open_level0 refuses what open accepts"
            );
            continue;
        };
        let whole = GraphView::parse(data, n_rows).is_ok();
        let n = view.n().min(1 << 16);
        let vectors = graph_vectors(n);
        let query = graph_vector(n / 3 + 1);
        let seeds = if level0 {
            vec![n / 2, 0, u32::MAX, n]
        } else {
            Vec::new()
        };
        for (k, effort) in [
            (1, Effort::Beam(1)),
            (3, Effort::Beam(16)),
            (4, Effort::Slack(0.3)),
        ] {
            let walk = search_bounded(
                &view,
                &vectors,
                GRAPH_DIM,
                &query,
                k,
                effort,
                None::<fn(u32) -> bool>,
                &seeds,
                usize::MAX,
                None,
            );
            assert!(
                !whole || walk.damage.is_none(),
                "damage reported in a section the whole check accepts: {:?}",
                walk.damage
            );
            check_graph_hits(&walk.hits, k, n, &vectors, &query, None);
        }
    }
}
