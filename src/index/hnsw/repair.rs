//! What [`build_graph`](super::build_graph) adds to the level 0 `hnsw_rs` builds, so that a
//! walk can reach every row:
//!
//! - rows with the same vector (blank tiles, repeated captions) are linked in a ring, in
//!   both directions: the neighbour selection keeps one of a set of identical rows and
//!   prunes the rest (they add no direction), so a walk that found one found none of the
//!   others;
//! - a row that no other row links to (its neighbours' lists filled up with closer rows)
//!   gets a link from its nearest neighbour.
//!
//! Both only add edges; the lists `hnsw_rs` chose stay as they were, in their order.

use std::collections::HashMap;

use half::f16;

/// Adds the ring and in-link edges to `adjacency` (level 0: the neighbours of row `i` at
/// `i`) over `vectors` (`dim` wide).
pub fn connect(adjacency: &mut [Vec<u32>], vectors: &[f16], dim: usize) {
    let n = adjacency.len();
    if dim == 0 || vectors.len() < n * dim {
        return;
    }
    let row = |r: usize| -> &[u16] { bytemuck::cast_slice(&vectors[r * dim..(r + 1) * dim]) };
    // Rows grouped by their exact bits (a hash, then the bits compared).
    let mut groups: HashMap<u64, Vec<Vec<u32>>> = HashMap::new();
    for r in 0..n {
        let bits = row(r);
        let h = bits.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let same = groups.entry(h).or_default();
        match same.iter_mut().find(|g| row(g[0] as usize) == bits) {
            Some(g) => g.push(r as u32),
            None => same.push(vec![r as u32]),
        }
    }
    let add = |from: u32, to: u32, adjacency: &mut [Vec<u32>]| {
        if from != to {
            let list = &mut adjacency[from as usize];
            if !list.contains(&to) {
                list.push(to);
            }
        }
    };
    for g in groups.values().flatten().filter(|g| g.len() > 1) {
        for (i, &r) in g.iter().enumerate() {
            let next = g[(i + 1) % g.len()];
            add(r, next, adjacency);
            add(next, r, adjacency);
        }
    }
    let mut linked = vec![false; n];
    for list in adjacency.iter() {
        for &b in list {
            if let Some(l) = linked.get_mut(b as usize) {
                *l = true;
            }
        }
    }
    for r in 0..n {
        if !linked[r] {
            if let Some(&nearest) = adjacency[r].first() {
                if (nearest as usize) < n {
                    add(nearest, r as u32, adjacency);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[[f32; 2]]) -> Vec<f16> {
        values.iter().flatten().map(|&x| f16::from_f32(x)).collect()
    }

    #[test]
    fn identical_rows_form_a_ring_and_every_row_gets_a_link() {
        // Rows 0, 2 and 4 are the same vector; row 3 is linked by nobody.
        let v = rows(&[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8], [1.0, 0.0]]);
        let mut adj = vec![vec![1], vec![0], vec![1], vec![1], vec![1]];
        connect(&mut adj, &v, 2);
        for (a, b) in [(0, 2), (2, 4), (4, 0), (2, 0), (4, 2), (0, 4), (1, 3)] {
            assert!(adj[a].contains(&b), "{a} -> {b}: {adj:?}");
        }
        // What hnsw_rs chose comes first, unchanged.
        assert_eq!(adj[0][0], 1);
        assert_eq!(adj[3], vec![1]);
        // Reachable from row 1, every row.
        let mut seen = [false; 5];
        let mut stack = vec![1usize];
        while let Some(r) = stack.pop() {
            if !std::mem::replace(&mut seen[r], true) {
                stack.extend(adj[r].iter().map(|&x| x as usize));
            }
        }
        assert!(seen.iter().all(|&s| s), "{adj:?}");
    }
}
