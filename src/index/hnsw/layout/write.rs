//! Serialising a graph into the section layout (the byte layout is in the parent module).

use super::{MAGIC, VERSION};

/// Adjacency lists of one level, as handed to [`write`].
#[derive(Debug, Clone, Default)]
pub struct LevelLists {
    /// Rows on this level, strictly increasing (ignored for level 0, where it is `0..n`).
    pub nodes: Vec<u32>,
    /// Neighbour rows of each node, parallel to `nodes` (level 0: indexed by row).
    pub adjacency: Vec<Vec<u32>>,
}

/// Header fields for [`write`].
#[derive(Debug, Clone, Copy)]
pub struct GraphHeader {
    /// Rows.
    pub n: u32,
    /// Vector dimension.
    pub dim: u32,
    /// `m` used to build.
    pub m: u32,
    /// Entry row ([`NO_ENTRY`] when empty).
    pub entry: u32,
    /// `ef_construction` used to build.
    pub ef_construction: u32,
}

/// Serialises a graph into the section layout. The caller supplies consistent lists
/// (the reader validates everything anyway); counts that overflow `u32` are an error.
pub fn write(h: GraphHeader, levels: &[LevelLists]) -> Result<Vec<u8>, String> {
    let to32 = |x: usize, what: &str| u32::try_from(x).map_err(|_| format!("{what} {x} > u32"));
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    for v in [
        VERSION,
        h.n,
        h.dim,
        h.m,
        to32(levels.len(), "levels")?,
        h.entry,
        h.ef_construction,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut edge_counts = Vec::with_capacity(levels.len());
    for (l, lv) in levels.iter().enumerate() {
        let nodes = if l == 0 { h.n as usize } else { lv.nodes.len() };
        let edges: usize = lv.adjacency.iter().map(Vec::len).sum();
        edge_counts.push(to32(edges, "edges")?);
        out.extend_from_slice(&to32(nodes, "nodes")?.to_le_bytes());
        out.extend_from_slice(&to32(edges, "edges")?.to_le_bytes());
    }
    for (l, lv) in levels.iter().enumerate() {
        if l > 0 {
            for &id in &lv.nodes {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        let mut acc = 0u32;
        out.extend_from_slice(&acc.to_le_bytes());
        for adj in &lv.adjacency {
            acc = acc.saturating_add(to32(adj.len(), "degree")?);
            out.extend_from_slice(&acc.to_le_bytes());
        }
        for adj in &lv.adjacency {
            for &id in adj {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
    }
    Ok(out)
}
