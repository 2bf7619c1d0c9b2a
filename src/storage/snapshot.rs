//! Immutable, shareable views of one manifest generation.

use std::collections::BTreeMap;
use std::sync::Arc;

use half::f16;

use super::directory::Directory;
use super::error::{OpenError, ReadError};
use super::manifest::{segment_file_name, tombstone_file_name, Manifest};
use super::segment::Segment;
use super::tombstone::decode_tombstones;
use crate::geo::Point;

/// One segment of a collection as seen by a snapshot: the segment plus which of its rows are
/// deleted (by a tombstone) or shadowed (by the same id in a newer segment).
#[derive(Debug, Clone)]
pub struct SegmentView {
    segment: Arc<Segment>,
    deleted: Arc<Vec<u64>>,
    live: usize,
}

impl SegmentView {
    /// The underlying segment (vectors, ids, points, times, payloads, index sections).
    pub fn segment(&self) -> &Segment {
        &self.segment
    }
    /// Whether `row` is deleted or replaced by a newer row (out-of-range rows count as deleted).
    pub fn is_deleted(&self, row: usize) -> bool {
        if row >= self.segment.len() {
            return true;
        }
        self.deleted[row / 64] & (1 << (row % 64)) != 0
    }
    /// Whether `other` views the same segment file (the same open segment).
    pub fn same_segment(&self, other: &SegmentView) -> bool {
        Arc::ptr_eq(&self.segment, &other.segment)
    }
    /// Number of live rows.
    pub fn live_len(&self) -> usize {
        self.live
    }
    /// The live rows, in row order (the order the segment stores them in: see
    /// [`RowOrder`](super::RowOrder)).
    pub fn live_rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.segment.len()).filter(|&r| !self.is_deleted(r))
    }
}

impl std::ops::Deref for SegmentView {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        &self.segment
    }
}

/// One collection in a snapshot.
#[derive(Debug, Clone)]
pub struct CollectionView {
    name: String,
    dim: usize,
    segments: Vec<SegmentView>,
    /// Tombstone sets with their generation (kept for compaction and tests).
    tombstones: Vec<(u64, Arc<Vec<u64>>)>,
    /// Schema properties from the manifest.
    properties: BTreeMap<String, String>,
}

/// An item read from a snapshot, borrowing its vector and payload from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    /// The user id.
    pub id: u64,
    /// The L2-normalised vector as stored (fp16).
    pub vector: &'a [f16],
    /// Location.
    pub point: Point,
    /// Unix seconds, UTC.
    pub time: Option<i64>,
    /// Payload string.
    pub payload: Option<&'a str>,
}

impl CollectionView {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The collection's properties (small strings stored with its schema, e.g. the model
    /// that made its vectors; empty for collections written by manifest version 1).
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }
    /// The property `key`, if set.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }
    /// Segments, oldest first.
    pub fn segments(&self) -> &[SegmentView] {
        &self.segments
    }
    /// Number of live items.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.live).sum()
    }
    /// Whether the collection has no live items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether a live item with `id` exists (reads ids only).
    pub fn contains(&self, id: u64) -> bool {
        self.locate(id).is_some()
    }
    /// The segment index and row of the live item `id`, if any.
    pub fn locate(&self, id: u64) -> Option<(usize, usize)> {
        for (i, s) in self.segments.iter().enumerate().rev() {
            if let Some(row) = s.row_of(id) {
                return (!s.is_deleted(row)).then_some((i, row));
            }
        }
        None
    }
    /// The live item with `id`, if any.
    pub fn get(&self, id: u64) -> Result<Option<Item<'_>>, ReadError> {
        match self.locate(id) {
            Some((seg, row)) => Ok(Some(item_at(&self.segments[seg], row)?)),
            None => Ok(None),
        }
    }
    /// Every live item (segment by segment, oldest segment first; each segment in row order,
    /// which need not be id order: see [`RowOrder`](super::RowOrder)).
    pub fn iter(&self) -> impl Iterator<Item = Result<Item<'_>, ReadError>> + '_ {
        self.segments.iter().flat_map(|s| {
            let in_order = s.whole_read();
            s.live_rows().map(move |r| {
                let _pass = &in_order;
                item_at(s, r)
            })
        })
    }
    /// The tombstone sets of this collection: `(generation, sorted deleted ids)`, oldest first.
    pub fn tombstones(&self) -> &[(u64, Arc<Vec<u64>>)] {
        &self.tombstones
    }
}

fn item_at(s: &SegmentView, row: usize) -> Result<Item<'_>, ReadError> {
    Ok(Item {
        id: s.id(row).unwrap_or_default(),
        vector: s.vector(row),
        point: s.point(row)?,
        time: s.time(row),
        payload: s.payload(row)?,
    })
}

pub(crate) struct SnapshotInner {
    pub manifest: Manifest,
    pub collections: BTreeMap<String, CollectionView>,
}

/// An immutable view of the database at one commit. Cheap to clone, `Send + Sync`; it stays
/// valid and unchanged while the writer commits or compacts (files it uses stay mapped).
#[derive(Clone)]
pub struct Snapshot(pub(crate) Arc<SnapshotInner>);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.0.manifest.generation)
            .field("collections", &self.0.collections.keys())
            .finish()
    }
}

impl Snapshot {
    /// The commit number this snapshot shows (0 = empty new database).
    pub fn generation(&self) -> u64 {
        self.0.manifest.generation
    }
    /// The manifest this snapshot was built from.
    pub fn manifest(&self) -> &Manifest {
        &self.0.manifest
    }
    /// Names of all collections.
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.0.collections.keys().map(String::as_str)
    }
    /// The collection `name`.
    pub fn collection(&self, name: &str) -> Result<&CollectionView, ReadError> {
        self.0
            .collections
            .get(name)
            .ok_or_else(|| ReadError::UnknownCollection(name.to_string()))
    }
}

/// Builds a snapshot from a manifest, reusing already-open segments from `previous`.
pub(crate) fn build_snapshot(
    dir: &dyn Directory,
    manifest: Manifest,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, OpenError> {
    let mut reuse: BTreeMap<String, Arc<Segment>> = BTreeMap::new();
    if let Some(p) = previous {
        for c in p.0.collections.values() {
            for s in &c.segments {
                reuse.insert(s.segment.file().to_string(), s.segment.clone());
            }
        }
    }
    let mut collections = BTreeMap::new();
    for c in &manifest.collections {
        let mut segs = Vec::with_capacity(c.segments.len());
        for e in &c.segments {
            let name = segment_file_name(e.file_no);
            let desc = dir.describe(&name);
            let seg = match reuse.get(&desc) {
                Some(s) => s.clone(),
                None => {
                    let bytes = dir.read(&name).map_err(|err| OpenError::io(&desc, err))?;
                    Arc::new(Segment::open(bytes, desc.clone())?)
                }
            };
            let mismatch = |what: &str| {
                OpenError::from(super::error::CorruptError::new(
                    &desc,
                    0,
                    format!("{what} does not match the manifest"),
                ))
            };
            if seg.file_len() != e.size {
                return Err(mismatch("file size"));
            }
            if seg.meta_crc() != e.crc {
                return Err(mismatch("header/table checksum"));
            }
            if seg.generation() != e.generation || seg.len() as u64 != e.count {
                return Err(mismatch("generation or row count"));
            }
            if seg.dim() != c.dim as usize {
                return Err(mismatch("dimension"));
            }
            segs.push(seg);
        }
        let mut tombs = Vec::with_capacity(c.tombstones.len());
        for e in &c.tombstones {
            let name = tombstone_file_name(e.file_no);
            let desc = dir.describe(&name);
            let bytes = dir.read(&name).map_err(|err| OpenError::io(&desc, err))?;
            let buf: &[u8] = (*bytes).as_ref();
            if buf.len() as u64 != e.size || crc32c::crc32c(buf) != e.crc {
                return Err(super::error::CorruptError::new(
                    &desc,
                    0,
                    "size or checksum does not match the manifest",
                )
                .into());
            }
            let ids = decode_tombstones(buf, &desc)?;
            if ids.len() as u64 != e.count {
                return Err(super::error::CorruptError::new(
                    &desc,
                    16,
                    "count does not match the manifest",
                )
                .into());
            }
            tombs.push((e.generation, Arc::new(ids)));
        }
        // Deleted rows: ids of newer segments and of newer tombstones.
        let mut views = Vec::with_capacity(segs.len());
        for (i, seg) in segs.iter().enumerate() {
            let mut bits = vec![0u64; seg.len().div_ceil(64)];
            let mut mark = |id: u64| {
                if let Some(r) = seg.row_of(id) {
                    bits[r / 64] |= 1 << (r % 64);
                }
            };
            // Only ids inside this segment's id range can hit it: with time-ordered ingest
            // (disjoint ranges) or after compaction this is O(segments), not O(rows).
            let Some((lo, hi)) = seg.id_range() else {
                views.push(SegmentView {
                    segment: seg.clone(),
                    live: 0,
                    deleted: Arc::new(bits),
                });
                continue;
            };
            for newer in &segs[i + 1..] {
                newer.ids_between(lo, hi).for_each(&mut mark);
            }
            for (g, ids) in &tombs {
                if *g > seg.generation() {
                    let a = ids.partition_point(|&x| x < lo);
                    let b = ids.partition_point(|&x| x <= hi);
                    ids.get(a..b).unwrap_or(&[]).iter().for_each(|&id| mark(id));
                }
            }
            let dead: usize = bits.iter().map(|w| w.count_ones() as usize).sum();
            views.push(SegmentView {
                segment: seg.clone(),
                live: seg.len() - dead,
                deleted: Arc::new(bits),
            });
        }
        collections.insert(
            c.name.clone(),
            CollectionView {
                name: c.name.clone(),
                dim: c.dim as usize,
                segments: views,
                tombstones: tombs,
                properties: c.properties.clone(),
            },
        );
    }
    Ok(Snapshot(Arc::new(SnapshotInner {
        manifest,
        collections,
    })))
}
