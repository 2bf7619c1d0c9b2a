//! [`Snapshot`]: one committed state of the database, and its [`Collection`]s.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::search::{Prepared, SearchBuilder};
use crate::storage::{self, CollectionView, Item, OpenError, ReadError, SegmentView};
use crate::{Progress, QueryError};

/// An immutable view of the database at one commit. Cheap to clone, `Send + Sync`; it stays
/// valid and unchanged while the writer commits or compacts (the files it uses stay mapped).
#[derive(Clone)]
pub struct Snapshot {
    inner: storage::Snapshot,
    /// Per collection, what search derives from each segment (same order as the segments).
    prepared: Arc<BTreeMap<String, Vec<Arc<Prepared>>>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation())
            .field("collections", &self.prepared.keys())
            .finish()
    }
}

/// A cloneable, `Send + Sync` handle that always yields the writer's latest committed snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotSource(pub(super) Arc<RwLock<Snapshot>>);

impl SnapshotSource {
    /// The latest committed snapshot.
    pub fn snapshot(&self) -> Snapshot {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(super) fn set(&self, s: Snapshot) {
        match self.0.write() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }
}

/// What `verify` checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The generation verified.
    pub generation: u64,
    /// Segment files read whole.
    pub segments: usize,
    /// Rows in them (deleted and replaced rows included).
    pub rows: usize,
    /// Bytes read.
    pub bytes: u64,
}

impl Snapshot {
    /// Wraps a storage snapshot, reusing what search prepared for the segments it shares
    /// with `previous`.
    pub(super) fn new(inner: storage::Snapshot, previous: Option<&Snapshot>) -> Snapshot {
        let mut prepared = BTreeMap::new();
        for name in inner.collection_names() {
            let Ok(c) = inner.collection(name) else {
                continue;
            };
            let old = previous
                .and_then(|p| Some((p.inner.collection(name).ok()?, p.prepared.get(name)?)));
            let cells = c
                .segments()
                .iter()
                .map(|s| {
                    old.and_then(|(oc, ocells)| {
                        oc.segments()
                            .iter()
                            .position(|o| o.same_segment(s))
                            .and_then(|i| ocells.get(i).cloned())
                    })
                    .unwrap_or_default()
                })
                .collect();
            prepared.insert(name.to_string(), cells);
        }
        Snapshot {
            inner,
            prepared: Arc::new(prepared),
        }
    }

    /// The storage engine's snapshot: the manifest (white-box tests).
    #[cfg(feature = "testing")]
    pub fn storage(&self) -> &storage::Snapshot {
        &self.inner
    }

    /// The commit number this snapshot shows (0: a new, empty database).
    pub fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// The names of the collections, in order.
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.inner.collection_names()
    }

    /// The collection `name`.
    pub fn collection(&self, name: &str) -> Result<Collection<'_>, ReadError> {
        let view = self.inner.collection(name)?;
        let prepared = self
            .prepared
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(Collection { view, prepared })
    }

    /// The live item `id` of collection `name`.
    pub fn get(&self, collection: &str, id: u64) -> Result<Option<Item<'_>>, ReadError> {
        self.inner.collection(collection)?.get(id)
    }

    /// Reads every byte of every segment: section checksums, the format's invariants (ids,
    /// points, finite vectors, payload offsets) and the index sections (graph, int8 copy).
    /// The manifest and the tombstones were checked whole when the snapshot was opened.
    /// `progress` is told the bytes read.
    pub fn verify(&self, progress: &dyn Progress) -> Result<VerifyReport, OpenError> {
        let segments: Vec<(&CollectionView, &SegmentView)> = self
            .collection_names()
            .filter_map(|n| self.inner.collection(n).ok())
            .flat_map(|c| c.segments().iter().map(move |s| (c, s)))
            .collect();
        let bytes: u64 = segments.iter().map(|(_, s)| s.file_len()).sum();
        progress.begin("verify", Some(bytes), crate::Unit::Bytes);
        let mut report = VerifyReport {
            generation: self.generation(),
            segments: 0,
            rows: 0,
            bytes: 0,
        };
        for (_, s) in segments {
            s.segment().verify()?;
            crate::search::verify_sections(s)?;
            progress.advance(s.file_len());
            report.segments += 1;
            report.rows += s.len();
            report.bytes += s.file_len();
        }
        progress.end();
        Ok(report)
    }
}

/// What [`Collection::make_resident`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Residency {
    /// Bytes of memory the resident copies hold (whole pages: of 2 MiB for a section of
    /// 2 MiB or more), of every segment made resident by this call or an earlier one.
    pub bytes: u64,
    /// Segments whose int8 section is resident.
    pub segments: usize,
    /// Whether the kernel's transparent huge pages are `always` or `madvise` (read from
    /// `/sys/kernel/mm/transparent_hugepage/enabled`, whether or not anything was copied):
    /// then it backs copies of 2 MiB and more with huge pages, as far as it has them free;
    /// without, the copies still serve, with no gain in TLB reach.
    pub huge_pages: bool,
}

/// Facts about one segment file of a collection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentInfo {
    /// The file (as the folder names it).
    pub file: String,
    /// The commit that wrote it.
    pub generation: u64,
    /// Rows stored.
    pub rows: usize,
    /// Rows neither deleted nor replaced by a newer segment.
    pub live: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// Whether it has an HNSW graph.
    pub graph: bool,
    /// Whether it has the int8 copy of its vectors.
    pub int8: bool,
}

/// One collection of a [`Snapshot`]: its items, properties and search.
#[derive(Debug, Clone, Copy)]
pub struct Collection<'s> {
    view: &'s CollectionView,
    prepared: &'s [Arc<Prepared>],
}

impl<'s> Collection<'s> {
    /// The collection's name.
    pub fn name(&self) -> &'s str {
        self.view.name()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.view.dim()
    }

    /// Number of live items.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the collection has no live items.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// Whether a live item with `id` exists (reads ids only).
    pub fn contains(&self, id: u64) -> bool {
        self.view.contains(id)
    }

    /// The live item with `id`, if any.
    pub fn get(&self, id: u64) -> Result<Option<Item<'s>>, ReadError> {
        self.view.get(id)
    }

    /// Every live item: segment by segment, oldest first; within a segment in its row order
    /// (which need not be id order: see [`RowOrder`](crate::RowOrder)).
    pub fn iter(&self) -> impl Iterator<Item = Result<Item<'s>, ReadError>> + 's {
        self.view.iter()
    }

    /// The collection's properties (small strings stored with its schema).
    pub fn properties(&self) -> &'s BTreeMap<String, String> {
        self.view.properties()
    }

    /// The property `key`, if set.
    pub fn property(&self, key: &str) -> Option<&'s str> {
        self.view.property(key)
    }

    /// The segment files, oldest first.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.view
            .segments()
            .iter()
            .map(|s| SegmentInfo {
                file: s.file().to_string(),
                generation: s.generation(),
                rows: s.len(),
                live: s.live_len(),
                bytes: s.file_len(),
                graph: s.section(crate::index::hnsw::SECTION_KIND).is_some(),
                int8: s.section(crate::index::quant::QUANT_KIND).is_some(),
            })
            .collect()
    }

    /// How many tombstone files (sets of deleted ids) the collection has.
    pub fn tombstone_sets(&self) -> usize {
        self.view.tombstones().len()
    }

    /// Starts a top-k search for `query` (`dim` finite values, not all zero; normalised):
    /// see [`SearchBuilder`].
    pub fn search(&self, query: &[f32]) -> SearchBuilder<'s> {
        SearchBuilder::new(*self, query)
    }

    /// Computes now what searches compute lazily for each segment (validated points and
    /// their spatial index, the time span, the graph's level 0 opened, the int8 copy's
    /// checked factors), so that timings and latency start warm; the first walk still reads
    /// the walk hints (the routing sample and hop slack). Prepared segments cost nothing; a
    /// corrupt segment is an error.
    pub fn prepare(&self) -> Result<(), QueryError> {
        for (s, p) in self.segment_parts() {
            p.get(s)?.prepare_all(s)?;
        }
        Ok(())
    }

    /// Copies each segment's int8 section (the rows walks and exact scans read: `dim + 8`
    /// bytes a row) into the process's own memory, in 2 MiB pages where the kernel gives
    /// them (Linux transparent huge pages `always` or `madvise`; a section under 2 MiB in
    /// ordinary pages): searches that read rows scattered over the section then miss the
    /// TLB far less often (docs/BENCHMARKS.md has the gain). It costs the section's size in
    /// memory for as long as the segments are open (shared by the snapshots that share
    /// them) and one read of each section; for a process that answers many queries (a
    /// server, a large batch), not for a few. Segments already resident cost nothing; the
    /// answers are the same either way. Off Linux, or when the memory cannot be mapped, the
    /// segments are read from their files as before ([`Residency::bytes`] says how much was
    /// copied). Segments this snapshot does not have (written by a later commit) are not
    /// made resident: call it again on a snapshot that has them. A corrupt segment is an
    /// error.
    pub fn make_resident(&self) -> Result<Residency, QueryError> {
        let mut r = Residency {
            bytes: 0,
            segments: 0,
            huge_pages: crate::storage::resident::huge_pages_on(),
        };
        for (s, p) in self.segment_parts() {
            let copied = p.get(s)?.make_resident(s);
            r.bytes += copied as u64;
            r.segments += usize::from(copied > 0);
        }
        Ok(r)
    }

    /// What every search of each segment needs (its index sections' shapes checked), and
    /// no more: the parts only some searches read stay for the first that does (an
    /// unfiltered search reads no point). A corrupt segment is an error.
    #[cfg(feature = "jobs")]
    pub(crate) fn open_segments(&self) -> Result<(), QueryError> {
        for (s, p) in self.segment_parts() {
            p.get(s)?;
        }
        Ok(())
    }

    /// Each segment with what search prepared for it.
    pub(crate) fn segment_parts(&self) -> impl Iterator<Item = (&'s SegmentView, &'s Prepared)> {
        let cells = self.prepared;
        self.view
            .segments()
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| Some((s, &**cells.get(i)?)))
    }

    /// The storage engine's view.
    pub(crate) fn view(&self) -> &'s CollectionView {
        self.view
    }

    /// Where what search derived from segment `i` lives (`None` before a search needed it),
    /// so that tests see which snapshots share it.
    #[cfg(feature = "testing")]
    pub fn prepared_address(&self, i: usize) -> Option<usize> {
        self.prepared.get(i)?.address()
    }

    /// Where the int8 rows that searches of segment `i` read start (`None`: no int8
    /// section, or the segment is corrupt), so that tests see whether they read the file's
    /// mapping or a resident copy.
    #[cfg(feature = "testing")]
    pub fn int8_address(&self, i: usize) -> Option<usize> {
        let (s, p) = self.segment_parts().nth(i)?;
        let derived = p.get(s).ok()?;
        let view = derived.quant_view(s).ok()??;
        Some(view.codes_address())
    }

    /// The storage engine's view: segments, tombstones (white-box tests).
    #[cfg(feature = "testing")]
    pub fn storage(&self) -> &'s CollectionView {
        self.view
    }
}
