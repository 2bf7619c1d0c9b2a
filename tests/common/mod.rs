//! Shared seeded fixtures for the index and query tests.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::OnceLock;

use sat2cap::index::flat::{top_k, Hit};
use sat2cap::index::hnsw::{build_graph, HnswParams};
use sat2cap::testing::synth::{generate, SynthData};

/// Rows, dimension, clusters of the shared fixture.
pub const N: usize = 20_000;
/// Dimension of the shared fixture.
pub const DIM: usize = 64;

/// Params used for test graphs (smaller ef_construction keeps debug builds quick).
pub fn params() -> HnswParams {
    HnswParams {
        m: 16,
        ef_construction: 100,
        ef_search: 64,
    }
}

/// The shared data set and its graph bytes, built once per test binary.
pub fn fixture() -> &'static (SynthData, Vec<u8>) {
    static F: OnceLock<(SynthData, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let data = generate(N, DIM, 60, 7);
        let graph = build_graph(&data.vectors, DIM, &params()).expect("graph builds");
        (data, graph)
    })
}

/// Exact top-k over the rows accepted by `keep`.
pub fn exact(data: &SynthData, q: &[f32], k: usize, keep: impl Fn(u32) -> bool) -> Vec<Hit> {
    let n = (data.vectors.len() / data.dim) as u32;
    top_k(&data.vectors, data.dim, q, (0..n).filter(|&r| keep(r)), k)
}

/// |got ∩ truth| / |truth| (1.0 for an empty truth).
pub fn recall(got: &[Hit], truth: &[Hit]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let t: HashSet<u32> = truth.iter().map(|h| h.row).collect();
    got.iter().filter(|h| t.contains(&h.row)).count() as f64 / truth.len() as f64
}
