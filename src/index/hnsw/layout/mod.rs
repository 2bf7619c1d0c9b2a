//! The graph section: byte layout, writer and the validating zero-copy reader.
//!
//! # Layout (version 1)
//!
//! Every integer is a little-endian `u32`; offsets below are bytes from the start of the
//! section. No field depends on the host's word size or alignment (the reader decodes each
//! `u32` with `from_le_bytes`, so the section may sit at any address).
//!
//! ```text
//! 0   magic            b"S2HG"
//! 4   version          1
//! 8   n                rows; every row is a node of level 0
//! 12  dim              vector dimension the graph was built over
//! 16  m                max neighbours per node on levels >= 1 (level 0: 2*m), informative
//! 20  n_levels         highest level + 1 (0 iff n == 0), at most MAX_LEVELS
//! 24  entry            entry node (a node of the top level); u32::MAX iff n == 0
//! 28  ef_construction  informative
//! 32  level directory  n_levels x { nodes: u32, edges: u32 }   (level 0: nodes == n)
//! D = 32 + 8 * n_levels
//! then for each level l = 0, 1, .., n_levels-1, in order:
//!     if l > 0: node ids   nodes x u32, strictly increasing, each a node of level l-1
//!     offsets              (nodes + 1) x u32, offsets[0] = 0, non-decreasing,
//!                          offsets[nodes] = edges; node i's neighbours are
//!                          neighbours[offsets[i]..offsets[i+1]]
//!     neighbours           edges x u32, each a node of level l (at level 0: < n)
//! the section ends exactly after the last level's neighbours.
//! ```
//!
//! On level 0 node `i` is row `i`; on upper levels node `i` is the row `node_ids[i]`.
//! Neighbour entries always hold row numbers.

mod write;

pub use write::{write, GraphHeader, LevelLists};

use std::fmt;
use std::ops::Range;

/// Section magic.
pub const MAGIC: [u8; 4] = *b"S2HG";
/// The format version written; the only one read.
pub const VERSION: u32 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 32;
/// Most levels a graph may have.
pub const MAX_LEVELS: u32 = 32;
/// Entry value of an empty graph.
pub const NO_ENTRY: u32 = u32::MAX;

/// Why a graph section was refused. Every variant names the byte offset of the bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The section is shorter than its header or directory says.
    #[error("graph section truncated: needs {needed} bytes, has {len}")]
    Truncated {
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes present.
        len: usize,
    },
    /// The section is longer than its layout.
    #[error("graph section has {extra} trailing bytes after offset {offset}")]
    Trailing {
        /// Where the layout ends.
        offset: u64,
        /// Bytes past it.
        extra: u64,
    },
    /// Wrong magic number.
    #[error("bad graph magic {found:?} at offset 0")]
    Magic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A version this build cannot read.
    #[error("unsupported graph version {found} at offset 4 (supported: {VERSION})")]
    Version {
        /// The version found.
        found: u32,
    },
    /// A header or directory field is inconsistent.
    #[error("graph field {field} at offset {offset}: {reason}")]
    Field {
        /// Field name.
        field: &'static str,
        /// Byte offset of the field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An adjacency offset is out of order or out of range.
    #[error("level {level}: adjacency offset {value} at byte {offset} is invalid: {reason}")]
    Offset {
        /// Level.
        level: u32,
        /// Byte offset of the entry.
        offset: u64,
        /// Value found.
        value: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A node or neighbour id is out of range or not a member of its level.
    #[error("level {level}: id {id} at byte {offset} is invalid: {reason}")]
    Id {
        /// Level.
        level: u32,
        /// Byte offset of the entry.
        offset: u64,
        /// Id found.
        id: u32,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A little-endian `u32` array viewed in place over bytes (any alignment).
#[derive(Clone, Copy, Default)]
pub struct U32Le<'a>(&'a [u8]);

impl fmt::Debug for U32Le<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U32Le(len {})", self.len())
    }
}

impl<'a> U32Le<'a> {
    /// Number of values.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are no values.
    #[cfg(any(test, feature = "testing"))]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.len() < 4
    }

    /// Value `i`, or `None` when out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<u32> {
        let s = i.checked_mul(4)?;
        let b = self.0.get(s..s.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Values `start..end` as a sub-view (empty when out of range).
    #[inline]
    pub fn slice(&self, start: usize, end: usize) -> U32Le<'a> {
        let (Some(s), Some(e)) = (start.checked_mul(4), end.checked_mul(4)) else {
            return U32Le(&[]);
        };
        U32Le(self.0.get(s..e).unwrap_or(&[]))
    }

    /// Iterates the values.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Binary search for `id` in a strictly increasing view: its index.
    pub fn position(&self, id: u32) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let v = self.get(mid)?;
            match v.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// One level of a validated graph.
#[derive(Debug, Clone, Copy)]
struct Level<'a> {
    /// Node ids (empty on level 0, where node i is row i).
    nodes: U32Le<'a>,
    offsets: U32Le<'a>,
    edges: U32Le<'a>,
    /// Byte offsets of `offsets` and `edges` in the section (for errors).
    offsets_at: usize,
    edges_at: usize,
}

/// What [`GraphView::parse_levels`] reads and checks of the levels' contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Every level ([`GraphView::parse`]).
    Everything,
    /// The upper levels; level 0's lists are checked as read ([`GraphView::open`]).
    UpperLevels,
    /// None; the view holds level 0 alone ([`GraphView::open_level0`]).
    Header,
}

/// A validated, read-only view of a graph section; borrows the bytes (zero-copy).
#[derive(Debug, Clone)]
pub struct GraphView<'a> {
    n: u32,
    dim: u32,
    m: u32,
    entry: u32,
    ef_construction: u32,
    levels: Vec<Level<'a>>,
}

fn rd(bytes: &[u8], off: usize) -> Result<u32, GraphError> {
    match bytes.get(off..off + 4) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(GraphError::Truncated {
            needed: off as u64 + 4,
            len: bytes.len(),
        }),
    }
}

impl<'a> GraphView<'a> {
    /// Validates `bytes` as a graph over `n_rows` rows and returns a view into them.
    ///
    /// Checks the magic, version, row count, level directory, that every offset is in
    /// order and in range, that upper-level node lists are strictly increasing subsets of
    /// the level below, that every neighbour is a node of its level, that the entry node is
    /// on the top level, and that the section has no trailing bytes. Never panics.
    pub fn parse(bytes: &'a [u8], n_rows: u32) -> Result<GraphView<'a>, GraphError> {
        GraphView::parse_levels(bytes, n_rows, Check::Everything)
    }

    /// [`GraphView::parse`] without reading level 0's offsets and neighbour lists (all but
    /// a small share of the section at scale): everything else is checked as `parse` checks
    /// it, and level 0's lists are checked where they are read, by
    /// [`GraphView::level0`] and the walk (a neighbour id `>= n`). A walk over a large
    /// segment then reads the lists it visits, not the whole section first.
    pub fn open(bytes: &'a [u8], n_rows: u32) -> Result<GraphView<'a>, GraphError> {
        GraphView::parse_levels(bytes, n_rows, Check::UpperLevels)
    }

    /// The view of level 0 alone, for walks that start from seeds (which do not descend:
    /// see [`crate::index::hnsw::search_filtered_seeded`]): the header and the level directory are
    /// checked as [`GraphView::parse`] checks them, level 0's lists where they are read
    /// (as [`GraphView::level0`] and the walks do), and the upper levels, which such walks never read,
    /// not at all. Opening a segment's graph so reads a few hundred bytes.
    pub fn open_level0(bytes: &'a [u8], n_rows: u32) -> Result<GraphView<'a>, GraphError> {
        GraphView::parse_levels(bytes, n_rows, Check::Header)
    }

    fn parse_levels(
        bytes: &'a [u8],
        n_rows: u32,
        check: Check,
    ) -> Result<GraphView<'a>, GraphError> {
        if bytes.len() < HEADER_LEN {
            return Err(GraphError::Truncated {
                needed: HEADER_LEN as u64,
                len: bytes.len(),
            });
        }
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != MAGIC {
            return Err(GraphError::Magic { found: magic });
        }
        let version = rd(bytes, 4)?;
        if version != VERSION {
            return Err(GraphError::Version { found: version });
        }
        let n = rd(bytes, 8)?;
        let dim = rd(bytes, 12)?;
        let m = rd(bytes, 16)?;
        let n_levels = rd(bytes, 20)?;
        let entry = rd(bytes, 24)?;
        let ef_construction = rd(bytes, 28)?;
        let field = |field: &'static str, offset: u64, reason: String| GraphError::Field {
            field,
            offset,
            reason,
        };
        if n != n_rows {
            return Err(field("n", 8, format!("{n} rows, segment has {n_rows}")));
        }
        if dim == 0 {
            return Err(field("dim", 12, "zero".into()));
        }
        if n_levels > MAX_LEVELS {
            return Err(field("n_levels", 20, format!("{n_levels} > {MAX_LEVELS}")));
        }
        if (n == 0) != (n_levels == 0) {
            return Err(field(
                "n_levels",
                20,
                format!("{n_levels} levels for {n} rows"),
            ));
        }
        if n == 0 && entry != NO_ENTRY {
            return Err(field("entry", 24, format!("{entry} in an empty graph")));
        }
        if n > 0 && entry >= n {
            return Err(field("entry", 24, format!("{entry} >= n = {n}")));
        }
        let dir_end = HEADER_LEN as u64 + 8 * u64::from(n_levels);
        if (bytes.len() as u64) < dir_end {
            return Err(GraphError::Truncated {
                needed: dir_end,
                len: bytes.len(),
            });
        }
        // Walk the directory: compute each level's extent with checked u64 arithmetic.
        let mut pos = dir_end;
        let mut spans = Vec::with_capacity(n_levels as usize);
        let mut prev_nodes = u64::from(n);
        for l in 0..n_levels {
            let doff = HEADER_LEN + 8 * l as usize;
            let nodes = u64::from(rd(bytes, doff)?);
            let edges = u64::from(rd(bytes, doff + 4)?);
            if l == 0 && nodes != u64::from(n) {
                return Err(field(
                    "level nodes",
                    doff as u64,
                    format!("level 0 has {nodes} nodes, n = {n}"),
                ));
            }
            if l > 0 && (nodes == 0 || nodes > prev_nodes) {
                return Err(field(
                    "level nodes",
                    doff as u64,
                    format!("level {l} has {nodes} nodes, level below has {prev_nodes}"),
                ));
            }
            prev_nodes = nodes;
            let ids_len = if l > 0 { nodes * 4 } else { 0 };
            let off_len = (nodes + 1) * 4;
            let edge_len = edges * 4;
            let start = pos;
            pos = pos + ids_len + off_len + edge_len; // each term < 2^35: no overflow
            spans.push((start, nodes, edges));
        }
        if (bytes.len() as u64) < pos {
            return Err(GraphError::Truncated {
                needed: pos,
                len: bytes.len(),
            });
        }
        if (bytes.len() as u64) > pos {
            return Err(GraphError::Trailing {
                offset: pos,
                extra: bytes.len() as u64 - pos,
            });
        }
        // Every extent is now in range of `bytes` (and of usize, being <= bytes.len()).
        // What is checked next is read from end to end: ask for it ahead.
        let checked_from = match check {
            Check::Everything => dir_end,
            Check::UpperLevels => spans.get(1).map_or(pos, |s| s.0),
            Check::Header => pos,
        };
        let checked = &bytes[checked_from as usize..pos as usize];
        let _in_order = crate::storage::advice::InOrder::new(checked);
        let mut levels: Vec<Level<'a>> = Vec::with_capacity(spans.len());
        // Membership bitsets (n bits) of the level being checked and the one below: one
        // bit test per id instead of a binary search (at 1M rows, ~1M upper-level edges).
        let words = (n as usize).div_ceil(64);
        let upper = n_levels > 1 && check != Check::Header;
        let mut member = vec![0u64; if upper { words } else { 0 }];
        let mut member_below = member.clone();
        let has = |set: &[u64], id: u32| {
            set.get(id as usize / 64)
                .is_some_and(|w| w >> (id % 64) & 1 == 1)
        };
        // A view of level 0 alone neither reads nor keeps the levels above.
        let kept = if check == Check::Header {
            1
        } else {
            spans.len()
        };
        for (l, &(start, nodes, edges)) in spans.iter().enumerate().take(kept) {
            let l32 = l as u32;
            let (start, nodes, edges) = (start as usize, nodes as usize, edges as usize);
            let ids_len = if l > 0 { nodes * 4 } else { 0 };
            let ids_at = start;
            let off_at = ids_at + ids_len;
            let edge_at = off_at + (nodes + 1) * 4;
            let lv = Level {
                nodes: U32Le(&bytes[ids_at..off_at]),
                offsets: U32Le(&bytes[off_at..edge_at]),
                edges: U32Le(&bytes[edge_at..edge_at + edges * 4]),
                offsets_at: off_at,
                edges_at: edge_at,
            };
            if l == 0 && check != Check::Everything {
                levels.push(lv);
                continue;
            }
            // Node ids: strictly increasing, members of the level below.
            if l > 0 {
                std::mem::swap(&mut member, &mut member_below);
                member.fill(0);
                let mut prev: Option<u32> = None;
                for (i, id) in lv.nodes.iter().enumerate() {
                    let offset = (ids_at + 4 * i) as u64;
                    let bad = |reason| GraphError::Id {
                        level: l32,
                        offset,
                        id,
                        reason,
                    };
                    if id >= n {
                        return Err(bad("node id >= n"));
                    }
                    if prev.is_some_and(|p| p >= id) {
                        return Err(bad("node ids not strictly increasing"));
                    }
                    if l > 1 && !has(&member_below, id) {
                        return Err(bad("node missing from the level below"));
                    }
                    if let Some(w) = member.get_mut(id as usize / 64) {
                        *w |= 1 << (id % 64);
                    }
                    prev = Some(id);
                }
            }
            // Offsets: start at 0, non-decreasing, end at `edges`.
            let mut prev = 0u32;
            for (i, v) in lv.offsets.iter().enumerate() {
                let offset = (off_at + 4 * i) as u64;
                let bad = |reason| GraphError::Offset {
                    level: l32,
                    offset,
                    value: v,
                    reason,
                };
                if i == 0 && v != 0 {
                    return Err(bad("first offset is not 0"));
                }
                if v < prev {
                    return Err(bad("offsets decrease"));
                }
                if v as usize > edges {
                    return Err(bad("offset past the neighbour array"));
                }
                if i == nodes && v as usize != edges {
                    return Err(bad("last offset is not the edge count"));
                }
                prev = v;
            }
            // Neighbours: in range, members of this level.
            for (i, id) in lv.edges.iter().enumerate() {
                let offset = (edge_at + 4 * i) as u64;
                let bad = |reason| GraphError::Id {
                    level: l32,
                    offset,
                    id,
                    reason,
                };
                if id >= n {
                    return Err(bad("neighbour id >= n"));
                }
                if l > 0 && !has(&member, id) {
                    return Err(bad("neighbour is not a node of this level"));
                }
            }
            levels.push(lv);
        }
        if let Some(top) = levels.last() {
            if levels.len() > 1 && top.nodes.position(entry).is_none() {
                return Err(field(
                    "entry",
                    24,
                    format!("entry {entry} is not a node of the top level"),
                ));
            }
        }
        Ok(GraphView {
            n,
            dim,
            m,
            entry,
            ef_construction,
            levels,
        })
    }

    /// Number of rows (nodes of level 0).
    pub fn n(&self) -> u32 {
        self.n
    }

    /// Vector dimension recorded at build time.
    pub fn dim(&self) -> u32 {
        self.dim
    }

    /// The `m` the graph was built with.
    #[cfg(any(test, feature = "testing"))]
    pub fn m(&self) -> u32 {
        self.m
    }

    /// The `ef_construction` the graph was built with.
    #[cfg(any(test, feature = "testing"))]
    pub fn ef_construction(&self) -> u32 {
        self.ef_construction
    }

    /// Entry node, or `None` for an empty graph.
    pub fn entry(&self) -> Option<u32> {
        (self.n > 0).then_some(self.entry)
    }

    /// Number of levels (highest level + 1).
    pub fn n_levels(&self) -> u32 {
        self.levels.len() as u32
    }

    /// Number of nodes on `level` (0 for a level that does not exist).
    #[cfg(any(test, feature = "testing"))]
    pub fn level_len(&self, level: u32) -> u32 {
        match self.levels.get(level as usize) {
            Some(_) if level == 0 => self.n,
            Some(lv) => lv.nodes.len() as u32,
            None => 0,
        }
    }

    /// The level-0 neighbours of `row` (`< n`), their offsets checked: an error when the
    /// two offsets are out of order or past the neighbour array (which [`GraphView::open_level0`]
    /// leaves to this call). The ids themselves are the caller's to check against `n`
    /// ([`GraphView::bad_neighbour`] names one that is not).
    #[inline]
    pub fn level0(&self, row: u32) -> Result<U32Le<'a>, GraphError> {
        let Some(lv) = self.levels.first() else {
            return Ok(U32Le::default());
        };
        let i = row as usize;
        let (Some(s), Some(e)) = (lv.offsets.get(i), lv.offsets.get(i + 1)) else {
            return Ok(U32Le::default());
        };
        let bad = |value, reason| GraphError::Offset {
            level: 0,
            offset: (lv.offsets_at + 4 * (i + 1)) as u64,
            value,
            reason,
        };
        if e < s {
            return Err(bad(e, "offsets decrease"));
        }
        if e as usize > lv.edges.len() {
            return Err(bad(e, "offset past the neighbour array"));
        }
        Ok(lv.edges.slice(s as usize, e as usize))
    }

    /// Starts loading the level-0 neighbour list of `row` into cache (a hint only).
    #[inline]
    pub fn prefetch_level0(&self, row: u32) {
        if let Ok(list) = self.level0(row) {
            crate::index::flat::prefetch_bytes(list.0);
        }
    }

    /// Starts loading where the level-0 list of `row` lies (its offset) into cache, so that
    /// [`GraphView::level0`] or [`GraphView::prefetch_level0`] of it later does not wait
    /// for it (a hint only).
    #[inline]
    pub fn prefetch_offset(&self, row: u32) {
        if let Some(lv) = self.levels.first() {
            let at = row as usize * 4;
            if let Some(b) = lv.offsets.0.get(at..at + 4) {
                crate::index::flat::prefetch_bytes(b);
            }
        }
    }

    /// Starts reading the level-0 neighbour list of `row` from disk (see
    /// [`crate::storage::advice::read_soon`]).
    pub(crate) fn read_soon_level0(&self, row: u32) {
        if let Ok(list) = self.level0(row) {
            crate::storage::advice::read_soon(list.0);
        }
    }

    /// The error for the `index`-th level-0 neighbour of `row`, `id`, found `>= n`.
    pub fn bad_neighbour(&self, row: u32, index: usize, id: u32) -> GraphError {
        let (start, at) = self.levels.first().map_or((0, 0), |lv| {
            (
                lv.offsets.get(row as usize).unwrap_or(0) as usize,
                lv.edges_at,
            )
        });
        GraphError::Id {
            level: 0,
            offset: (at + 4 * (start + index)) as u64,
            id,
            reason: "neighbour id >= n",
        }
    }

    /// Neighbours (row numbers) of `row` on `level`; empty when `row` is not on that level.
    #[inline]
    pub fn neighbours(&self, level: u32, row: u32) -> U32Le<'a> {
        let Some(lv) = self.levels.get(level as usize) else {
            return U32Le::default();
        };
        let idx = if level == 0 {
            row as usize
        } else {
            match lv.nodes.position(row) {
                Some(i) => i,
                None => return U32Le::default(),
            }
        };
        match (lv.offsets.get(idx), lv.offsets.get(idx + 1)) {
            (Some(s), Some(e)) => lv.edges.slice(s as usize, e as usize),
            _ => U32Le::default(),
        }
    }
}

/// Where a validated graph lies in its section bytes: what [`GraphView::parse`] found,
/// without the borrow. Keep one per section and rebuild views with [`GraphLayout::view`] in
/// O(levels) instead of re-validating O(n) on every query.
#[derive(Debug, Clone)]
pub struct GraphLayout {
    n: u32,
    dim: u32,
    m: u32,
    entry: u32,
    ef_construction: u32,
    len: usize,
    levels: Vec<[Range<usize>; 3]>,
}

fn sub_range(base: &[u8], part: U32Le<'_>) -> Range<usize> {
    if part.0.is_empty() {
        return 0..0;
    }
    let start = (part.0.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    start..start + part.0.len()
}

impl<'a> GraphView<'a> {
    /// The layout of this view, relative to `bytes` (the slice it was parsed from).
    pub fn layout(&self, bytes: &[u8]) -> GraphLayout {
        GraphLayout {
            n: self.n,
            dim: self.dim,
            m: self.m,
            entry: self.entry,
            ef_construction: self.ef_construction,
            len: bytes.len(),
            levels: self
                .levels
                .iter()
                .map(|lv| {
                    [
                        sub_range(bytes, lv.nodes),
                        sub_range(bytes, lv.offsets),
                        sub_range(bytes, lv.edges),
                    ]
                })
                .collect(),
        }
    }
}

impl GraphLayout {
    /// A view over `bytes`, which must be the same section bytes the layout was taken from
    /// (checked by length and bounds; `None` when they do not fit).
    pub fn view<'a>(&self, bytes: &'a [u8]) -> Option<GraphView<'a>> {
        if bytes.len() != self.len {
            return None;
        }
        let mut levels = Vec::with_capacity(self.levels.len());
        for [a, b, c] in &self.levels {
            levels.push(Level {
                nodes: U32Le(bytes.get(a.clone())?),
                offsets: U32Le(bytes.get(b.clone())?),
                edges: U32Le(bytes.get(c.clone())?),
                offsets_at: b.start,
                edges_at: c.start,
            });
        }
        Some(GraphView {
            n: self.n,
            dim: self.dim,
            m: self.m,
            entry: self.entry,
            ef_construction: self.ef_construction,
            levels,
        })
    }
}
