//! HNSW: built with `hnsw_rs`, exported into our own section layout, searched in place.
//!
//! ```
//! use half::f16;
//! use sat2cap::index::hnsw::{build_graph, search, GraphView, HnswParams};
//!
//! // Four 2-d unit vectors.
//! let v: Vec<f16> = [1.0f32, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0]
//!     .iter().map(|&x| f16::from_f32(x)).collect();
//! let bytes = build_graph(&v, 2, &HnswParams::default()).unwrap();
//! let view = GraphView::parse(&bytes, 4).unwrap();
//! let hits = search(&view, &v, 2, &[0.9, 0.1], 1, 16, None);
//! assert_eq!(hits[0].row, 0);
//! // Filtered: rows that fail the filter are walked through but never returned.
//! let odd = |r: u32| r % 2 == 1;
//! let hits = search(&view, &v, 2, &[0.9, 0.1], 1, 16, Some(&odd));
//! assert_eq!(hits[0].row, 1);
//! ```

#[cfg(feature = "testing")]
pub mod calibrate;
pub mod layout;
mod repair;
mod routing;
pub mod search;
mod section;
mod slack;

use half::f16;
use hnsw_rs::prelude::{Distance, Hnsw};

use super::flat::dot_f16_f16;
use super::{row_count, IndexError};
pub use layout::{GraphLayout, GraphView};
#[cfg(feature = "testing")]
pub use routing::ROUTING_POOL_PER_SEED;
pub use routing::{hints_header, write_hints, RoutingSample, HINTS_KIND, ROUTING_STRIDE};
pub use search::{routing_seeds, search_bounded, Effort, WalkOutcome};
pub use section::HnswSectionBuilder;
pub use slack::hop_slack;

// What the white-box tests, the fuzz targets and the recall benchmark drive directly.
#[cfg(feature = "testing")]
pub use calibrate::{calibrate, CalibratedEf, Calibration};
#[cfg(feature = "testing")]
pub use layout::GraphError;
#[cfg(feature = "testing")]
pub use search::{search, search_filtered, search_filtered_seeded, search_with, SearchScratch};

/// Section kind under which storage keeps the graph bytes in a segment file.
pub const SECTION_KIND: u32 = 100;

/// Graph build and search knobs, validated by [`HnswParams::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Max neighbours per node on levels >= 1 (level 0 keeps up to `2 * m`). 2..=128.
    pub m: usize,
    /// Beam width while inserting. `m..=4096`.
    pub ef_construction: usize,
    /// Default beam width while searching (raised to `k` when smaller). 1..=65536.
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// Largest beam width accepted anywhere.
pub const MAX_EF: usize = 65_536;

/// Largest walk effort accepted ([`SearchBuilder::effort`](crate::SearchBuilder::effort)).
pub const MAX_EFFORT: f32 = 64.0;

/// Whether `effort` is a walk effort the search accepts: a number in `(0, MAX_EFFORT]`, the
/// multiple of the data's hop slack a walk bounded by slack goes to.
pub fn effort_valid(effort: f32) -> bool {
    effort > 0.0 && effort <= MAX_EFFORT
}

impl HnswParams {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), IndexError> {
        let err = |name, reason: String| Err(IndexError::Param { name, reason });
        if !(2..=128).contains(&self.m) {
            return err("m", format!("{} not in 2..=128", self.m));
        }
        if !(self.m..=4096).contains(&self.ef_construction) {
            return err(
                "ef_construction",
                format!("{} not in m..=4096", self.ef_construction),
            );
        }
        if !(1..=MAX_EF).contains(&self.ef_search) {
            return err(
                "ef_search",
                format!("{} not in 1..={MAX_EF}", self.ef_search),
            );
        }
        Ok(())
    }
}

/// Cosine distance over L2-normalised f16 vectors: `1 - dot`, clamped to `[0, 2]`; never NaN
/// (a NaN dot, from corrupt input, counts as the farthest distance).
#[derive(Debug, Clone, Copy, Default)]
pub struct CosineF16;

impl Distance<f16> for CosineF16 {
    fn eval(&self, va: &[f16], vb: &[f16]) -> f32 {
        let d = 1.0 - dot_f16_f16(va, vb);
        if d.is_nan() {
            2.0
        } else {
            d.clamp(0.0, 2.0)
        }
    }
}

/// The in-memory `hnsw_rs` index type this module builds.
pub type HnswRs = Hnsw<'static, f16, CosineF16>;

/// Builds an `hnsw_rs` index over `vectors` (row `i` gets data id `i`), inserting in
/// parallel (rayon). Most callers want [`build_graph`]; this is public for comparisons.
pub fn build_hnsw(vectors: &[f16], dim: usize, params: &HnswParams) -> Result<HnswRs, IndexError> {
    params.validate()?;
    let n = row_count(vectors.len(), dim)? as usize;
    let hnsw = Hnsw::new(
        params.m,
        n.max(1),
        layout::MAX_LEVELS.min(16) as usize,
        params.ef_construction,
        CosineF16,
    );
    let mut data: Vec<(&[f16], usize)> = vectors.chunks_exact(dim).zip(0..n).collect();
    // Insert in a scrambled (fixed) order: segments store rows in spatial order, and where
    // location and content correlate, inserting neighbours after neighbours builds the
    // graph from one region at a time, with fewer long links between regions.
    data.sort_by_cached_key(|&(_, row)| scramble(row as u64));
    hnsw.parallel_insert_slice(&data);
    Ok(hnsw)
}

/// A fixed bijection of `u64` that scatters consecutive values (the splitmix64 finaliser).
fn scramble(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Exports the graph of an `hnsw_rs` index (built by [`build_hnsw`] over `n` rows of `dim`)
/// into the section layout of [`layout`].
///
/// Neighbour lists keep `hnsw_rs`'s order; self-loops, duplicates and neighbours absent from
/// a level are dropped. The entry node is the first node placed on the top level (the
/// `hnsw_rs` entry point for a sequential build; for any build a valid start, since every
/// top-level node reaches the others through the greedy descent). Level 0 is as `hnsw_rs`
/// built it: [`build_graph`] also links identical rows and unlinked rows (`repair`).
#[cfg(any(test, feature = "testing"))]
pub fn export_graph(
    hnsw: &HnswRs,
    n: u32,
    dim: u32,
    params: &HnswParams,
) -> Result<Vec<u8>, IndexError> {
    export(hnsw, n, dim, params, None)
}

/// [`export_graph`], with level 0 repaired over `vectors` when given (see [`repair`]).
fn export(
    hnsw: &HnswRs,
    n: u32,
    dim: u32,
    params: &HnswParams,
    vectors: Option<&[f16]>,
) -> Result<Vec<u8>, IndexError> {
    let m = params.m as u32;
    let efc = params.ef_construction as u32;
    let header = |entry| layout::GraphHeader {
        n,
        dim,
        m,
        entry,
        ef_construction: efc,
    };
    let bad = |reason: String| IndexError::Param {
        name: "graph",
        reason,
    };
    if n == 0 || hnsw.get_nb_point() == 0 {
        if n != 0 {
            return Err(bad(format!("index is empty, expected {n} rows")));
        }
        return layout::write(header(layout::NO_ENTRY), &[]).map_err(bad);
    }
    if hnsw.get_nb_point() != n as usize {
        return Err(bad(format!(
            "index holds {} points, expected {n}",
            hnsw.get_nb_point()
        )));
    }
    let pi = hnsw.get_point_indexation();
    let top = pi.get_max_level_observed() as usize;
    // level[row] and per-level raw adjacency.
    let mut level_of = vec![u8::MAX; n as usize];
    let mut raw: Vec<Vec<(u32, Vec<u32>)>> = vec![Vec::new(); top + 1];
    let mut entry: Option<(i32, u32)> = None;
    for point in pi {
        let row = u32::try_from(point.get_origin_id())
            .ok()
            .filter(|&r| r < n)
            .ok_or_else(|| bad(format!("data id {} out of range", point.get_origin_id())))?;
        let pid = point.get_point_id();
        let lvl = pid.0 as usize;
        if lvl > top || level_of[row as usize] != u8::MAX {
            return Err(bad(format!("row {row}: bad or repeated level {lvl}")));
        }
        level_of[row as usize] = pid.0;
        if lvl == top && entry.is_none_or(|(slot, _)| pid.1 < slot) {
            entry = Some((pid.1, row));
        }
        for (l, neigh) in point
            .get_neighborhood_id()
            .into_iter()
            .enumerate()
            .take(lvl + 1)
        {
            let ids = neigh
                .iter()
                .filter_map(|nb| u32::try_from(nb.d_id).ok())
                .collect();
            raw[l].push((row, ids));
        }
    }
    if level_of.contains(&u8::MAX) {
        return Err(bad("some rows are missing from the index".into()));
    }
    let entry = entry
        .map(|(_, r)| r)
        .ok_or_else(|| bad("no entry point".into()))?;
    let mut levels = Vec::with_capacity(top + 1);
    for (l, mut lists) in raw.into_iter().enumerate() {
        lists.sort_unstable_by_key(|(r, _)| *r);
        let mut out = layout::LevelLists::default();
        let mut seen: Vec<u32> = Vec::new();
        if l == 0 {
            out.adjacency = vec![Vec::new(); n as usize];
        }
        for (row, ids) in lists {
            seen.clear();
            for id in ids {
                let ok = id < n
                    && id != row
                    && level_of[id as usize] as usize >= l
                    && !seen.contains(&id);
                if ok {
                    seen.push(id);
                }
            }
            if l == 0 {
                out.adjacency[row as usize] = seen.clone();
            } else {
                out.nodes.push(row);
                out.adjacency.push(seen.clone());
            }
        }
        levels.push(out);
    }
    if let (Some(v), Some(level0)) = (vectors, levels.first_mut()) {
        repair::connect(&mut level0.adjacency, v, dim as usize);
    }
    layout::write(header(entry), &levels).map_err(bad)
}

/// Builds the graph over `vectors` (`dim` wide, L2-normalised) and returns the section bytes
/// that [`GraphView::parse`] reads.
pub fn build_graph(
    vectors: &[f16],
    dim: usize,
    params: &HnswParams,
) -> Result<Vec<u8>, IndexError> {
    let n = row_count(vectors.len(), dim)?;
    let dim32 = u32::try_from(dim).map_err(|_| IndexError::Shape {
        len: vectors.len(),
        dim,
    })?;
    if n == 0 {
        params.validate()?;
        return layout::write(
            layout::GraphHeader {
                n: 0,
                dim: dim32,
                m: params.m as u32,
                entry: layout::NO_ENTRY,
                ef_construction: params.ef_construction as u32,
            },
            &[],
        )
        .map_err(|reason| IndexError::Param {
            name: "graph",
            reason,
        });
    }
    let hnsw = build_hnsw(vectors, dim, params)?;
    export(&hnsw, n, dim32, params, Some(vectors))
}
