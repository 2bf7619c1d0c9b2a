//! The database handle: one writer per folder, commits, compaction, snapshots.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use half::f16;

use super::directory::{AlignedBytes, Directory, LockGuard, LOCK_FILE};
use super::error::{CommitError, OpenError, WriteError};
use super::manifest::{
    check_property, segment_file_name, tombstone_file_name, CollectionEntry, FileEntry, Manifest,
    MANIFEST_FILE, MANIFEST_TMP_FILE, MANIFEST_VERSION, MAX_PROPERTIES,
};
use super::segment::{
    encode_segment, RowData, SectionBuilder, Segment, MAX_DIM, METRIC_COSINE, SEGMENT_FOOTER_LEN,
};
use super::snapshot::{build_snapshot, Snapshot};
use super::tombstone::encode_tombstones;
use crate::geo::Point;

/// Largest payload string, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Options of a [`Store`].
#[derive(Clone, Default)]
pub struct StoreOptions {
    /// Called for every segment a commit or compaction writes, to add index sections.
    pub section_builders: Vec<Arc<dyn SectionBuilder>>,
    /// The order in which new segments store their rows.
    pub row_order: RowOrder,
}

/// The order in which a segment stores its rows. Either way the segment finds an id by
/// binary search, and search results break ties by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RowOrder {
    /// Along a Hilbert curve over latitude and longitude (ties by id), so that the rows of a
    /// region lie in few contiguous runs and a spatially filtered scan reads them in long
    /// sequential stretches. The segment gets an id-order section (4 bytes a row).
    #[default]
    Spatial,
    /// By id.
    Id,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("section_builders", &self.section_builders.len())
            .field("row_order", &self.row_order)
            .finish()
    }
}

/// An item to add. The vector is validated, L2-normalised and stored as fp16.
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    /// User key; adding an existing id replaces the item.
    pub id: u64,
    /// The embedding, `dim` finite components with a non-zero norm.
    pub vector: &'a [f32],
    /// Location.
    pub point: Point,
    /// Unix seconds, UTC (`i64::MIN` is reserved).
    pub time: Option<i64>,
    /// A small string, at most [`MAX_PAYLOAD_BYTES`].
    pub payload: Option<&'a str>,
}

/// The writer's latest committed snapshot.
#[derive(Debug)]
struct Current(RwLock<Snapshot>);

impl Current {
    fn snapshot(&self) -> Snapshot {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    fn set(&self, s: Snapshot) {
        match self.0.write() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    /// `Some` = add/replace, `None` = delete; the last operation per id wins.
    ops: BTreeMap<u64, Option<RowData>>,
}

/// The storage engine's writer of one database folder (holds the folder's writer lock):
/// pending operations, commits, compaction. [`crate::Db`] wraps it.
pub struct Store {
    dir: Arc<dyn Directory>,
    opts: StoreOptions,
    _lock: LockGuard,
    current: Current,
    new_collections: Vec<(String, u32)>,
    pending: BTreeMap<String, Pending>,
    /// Property changes per collection: `Some` = set, `None` = remove.
    pending_props: BTreeMap<String, BTreeMap<String, Option<String>>>,
    poisoned: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("generation", &self.snapshot().generation())
            .finish()
    }
}

fn read_manifest(dir: &dyn Directory) -> Result<Manifest, OpenError> {
    let desc = dir.describe(MANIFEST_FILE);
    if !dir
        .exists(MANIFEST_FILE)
        .map_err(|e| OpenError::io(&desc, e))?
    {
        return Err(OpenError::NotFound {
            path: dir.describe(""),
        });
    }
    let bytes = dir
        .read(MANIFEST_FILE)
        .map_err(|e| OpenError::io(&desc, e))?;
    Manifest::decode((*bytes).as_ref(), &desc)
}

/// Validates an item and turns it into a stored row.
fn prepare(dim: usize, item: &NewItem<'_>) -> Result<RowData, WriteError> {
    if item.vector.len() != dim {
        return Err(WriteError::WrongDimension {
            expected: dim,
            got: item.vector.len(),
        });
    }
    if let Some(index) = item.vector.iter().position(|x| !x.is_finite()) {
        return Err(WriteError::NonFinite { index });
    }
    let norm = item
        .vector
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return Err(WriteError::ZeroNorm);
    }
    let vector: Vec<f16> = item
        .vector
        .iter()
        .map(|&x| f16::from_f64(f64::from(x) / norm))
        .collect();
    if vector.iter().all(|x| x.to_f32() == 0.0) {
        return Err(WriteError::Fp16Zero);
    }
    if let Some(p) = item.payload {
        if p.len() > MAX_PAYLOAD_BYTES {
            return Err(WriteError::PayloadTooLarge {
                len: p.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
    }
    if item.time == Some(i64::MIN) {
        return Err(WriteError::ReservedTime);
    }
    Ok(RowData {
        id: item.id,
        vector,
        point: item.point,
        time: item.time,
        payload: item.payload.map(str::to_string),
    })
}

impl Store {
    /// Creates a new database in `dir`.
    pub fn create_in(dir: Arc<dyn Directory>, opts: StoreOptions) -> Result<Store, OpenError> {
        let lock = Store::lock(&*dir)?;
        let desc = dir.describe(MANIFEST_FILE);
        if dir
            .exists(MANIFEST_FILE)
            .map_err(|e| OpenError::io(&desc, e))?
        {
            return Err(OpenError::AlreadyExists {
                path: dir.describe(""),
            });
        }
        let manifest = Manifest::default();
        let snap = build_snapshot(&*dir, manifest.clone(), None)?;
        let mut db = Store {
            dir,
            opts,
            _lock: lock,
            current: Current(RwLock::new(snap)),
            new_collections: Vec::new(),
            pending: BTreeMap::new(),
            pending_props: BTreeMap::new(),
            poisoned: false,
        };
        db.publish(manifest, Vec::new()).map_err(|e| match e {
            CommitError::Io { file, source } => OpenError::Io { file, source },
            CommitError::Open(o) => o,
            other => OpenError::io(
                db.dir.describe(""),
                std::io::Error::other(other.to_string()),
            ),
        })?;
        Ok(db)
    }

    /// Opens the database in `dir` for writing; removes files left by an interrupted commit.
    pub fn open_in(dir: Arc<dyn Directory>, opts: StoreOptions) -> Result<Store, OpenError> {
        let lock = Store::lock(&*dir)?;
        let manifest = read_manifest(&*dir)?;
        let snap = build_snapshot(&*dir, manifest, None)?;
        let db = Store {
            dir,
            opts,
            _lock: lock,
            current: Current(RwLock::new(snap)),
            new_collections: Vec::new(),
            pending: BTreeMap::new(),
            pending_props: BTreeMap::new(),
            poisoned: false,
        };
        db.collect_garbage();
        Ok(db)
    }

    /// A read-only snapshot of the database in `dir` (no lock). Retries if a commit removes
    /// a file between reading the manifest and opening it.
    pub fn snapshot_in(dir: &dyn Directory) -> Result<Snapshot, OpenError> {
        let mut tries = 0;
        loop {
            let manifest = read_manifest(dir)?;
            match build_snapshot(dir, manifest, None) {
                Err(OpenError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 20 =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    fn lock(dir: &dyn Directory) -> Result<LockGuard, OpenError> {
        dir.try_lock_writer()
            .map_err(|e| OpenError::io(dir.describe(LOCK_FILE), e))?
            .ok_or_else(|| OpenError::WriterLocked {
                path: dir.describe(""),
            })
    }

    /// The latest committed snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.current.snapshot()
    }

    /// Number of pending (uncommitted) operations.
    pub fn pending_len(&self) -> usize {
        self.new_collections.len()
            + self.pending.values().map(|p| p.ops.len()).sum::<usize>()
            + self
                .pending_props
                .values()
                .map(BTreeMap::len)
                .sum::<usize>()
    }

    fn dim_of(&self, name: &str) -> Option<usize> {
        if let Some((_, d)) = self.new_collections.iter().find(|(n, _)| n == name) {
            return Some(*d as usize);
        }
        self.snapshot().collection(name).ok().map(|c| c.dim())
    }

    /// Creates collection `name` with dimension `dim` (cosine metric); visible after `commit`.
    pub fn create_collection(&mut self, name: &str, dim: usize) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned);
        }
        if name.is_empty() || name.len() > 255 {
            return Err(WriteError::InvalidName(name.to_string()));
        }
        if dim == 0 || dim > MAX_DIM {
            return Err(WriteError::InvalidDimension(dim));
        }
        if self.dim_of(name).is_some() {
            return Err(WriteError::CollectionExists(name.to_string()));
        }
        self.new_collections.push((name.to_string(), dim as u32));
        Ok(())
    }

    /// Adds (or replaces) an item; visible after `commit`.
    pub fn add(&mut self, collection: &str, item: NewItem<'_>) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned);
        }
        let dim = self
            .dim_of(collection)
            .ok_or_else(|| WriteError::UnknownCollection(collection.to_string()))?;
        let row = prepare(dim, &item)?;
        self.pending
            .entry(collection.to_string())
            .or_default()
            .ops
            .insert(item.id, Some(row));
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the property `key` of `collection`, a small string
    /// stored with the collection's schema in the manifest (e.g. which model made its vectors);
    /// takes effect at `commit`. Keys are 1..=255 bytes, values at most 64 KiB, and a
    /// collection holds at most 256 properties.
    pub fn set_property(
        &mut self,
        collection: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned);
        }
        if self.dim_of(collection).is_none() {
            return Err(WriteError::UnknownCollection(collection.to_string()));
        }
        check_property(key, value.unwrap_or("")).map_err(WriteError::InvalidProperty)?;
        let mut after: std::collections::BTreeSet<String> = self
            .snapshot()
            .collection(collection)
            .map(|c| c.properties().keys().cloned().collect())
            .unwrap_or_default();
        let changes = self
            .pending_props
            .entry(collection.to_string())
            .or_default();
        for (k, v) in changes
            .iter()
            .chain([(&key.to_string(), &value.map(str::to_string))])
        {
            if v.is_some() {
                after.insert(k.clone());
            } else {
                after.remove(k);
            }
        }
        if after.len() > MAX_PROPERTIES {
            return Err(WriteError::InvalidProperty(format!(
                "more than {MAX_PROPERTIES} properties in collection {collection:?}"
            )));
        }
        changes.insert(key.to_string(), value.map(str::to_string));
        Ok(())
    }

    /// Deletes `id` (a no-op if absent); takes effect at `commit`.
    pub fn delete(&mut self, collection: &str, id: u64) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned);
        }
        if self.dim_of(collection).is_none() {
            return Err(WriteError::UnknownCollection(collection.to_string()));
        }
        self.pending
            .entry(collection.to_string())
            .or_default()
            .ops
            .insert(id, None);
        Ok(())
    }

    /// Makes all pending operations durable and visible, atomically. Returns the new
    /// generation (unchanged if nothing was pending).
    pub fn commit(&mut self) -> Result<u64, CommitError> {
        if self.poisoned {
            return Err(WriteError::Poisoned.into());
        }
        let snap = self.snapshot();
        if self.pending_len() == 0 {
            return Ok(snap.generation());
        }
        let mut m = snap.manifest().clone();
        m.version = MANIFEST_VERSION;
        m.generation += 1;
        let generation = m.generation;
        for (name, dim) in &self.new_collections {
            m.collections.push(CollectionEntry {
                name: name.clone(),
                dim: *dim,
                metric: METRIC_COSINE,
                segments: Vec::new(),
                tombstones: Vec::new(),
                properties: BTreeMap::new(),
            });
        }
        for (name, changes) in &self.pending_props {
            let Some(entry) = m.collections.iter_mut().find(|c| &c.name == name) else {
                return Err(WriteError::UnknownCollection(name.clone()).into());
            };
            for (k, v) in changes {
                match v {
                    Some(v) => entry.properties.insert(k.clone(), v.clone()),
                    None => entry.properties.remove(k),
                };
            }
        }
        let mut files = Vec::new();
        for (name, pending) in &self.pending {
            let old = snap.collection(name).ok();
            let Some(entry) = m.collections.iter_mut().find(|c| &c.name == name) else {
                return Err(WriteError::UnknownCollection(name.clone()).into());
            };
            let mut rows: Vec<RowData> = pending.ops.values().flatten().cloned().collect();
            let mut deletes = Vec::new();
            for (id, op) in &pending.ops {
                if op.is_none() && old.is_some_and(|c| c.contains(*id)) {
                    deletes.push(*id);
                }
            }
            if !rows.is_empty() {
                self.stage_segment(
                    &mut m.next_file_no,
                    entry,
                    generation,
                    &mut rows,
                    &mut files,
                )?;
            }
            if !deletes.is_empty() {
                let file_no = m.next_file_no;
                m.next_file_no += 1;
                let bytes = encode_tombstones(&deletes);
                entry.tombstones.push(FileEntry {
                    file_no,
                    generation,
                    count: deletes.len() as u64,
                    size: bytes.len() as u64,
                    crc: crc32c::crc32c(&bytes),
                });
                files.push((tombstone_file_name(file_no), bytes));
            }
        }
        self.publish(m, files)?;
        self.pending.clear();
        self.pending_props.clear();
        self.new_collections.clear();
        Ok(generation)
    }

    /// Commits pending operations, then merges all segments of `collection` into one,
    /// dropping deleted and replaced rows and all tombstones. Returns the new generation.
    pub fn compact(&mut self, collection: &str) -> Result<u64, CommitError> {
        self.commit()?;
        let snap = self.snapshot();
        let view = snap
            .collection(collection)
            .map_err(|_| WriteError::UnknownCollection(collection.to_string()))?;
        let Some(ci) = snap
            .manifest()
            .collections
            .iter()
            .position(|c| c.name == collection)
        else {
            return Err(WriteError::UnknownCollection(collection.to_string()).into());
        };
        let entry = &snap.manifest().collections[ci];
        if entry.segments.len() <= 1
            && entry.tombstones.is_empty()
            && view.segments().iter().all(|s| s.live_len() == s.len())
        {
            return Ok(snap.generation());
        }
        let mut rows = Vec::with_capacity(view.len());
        for item in view.iter() {
            let item = item.map_err(|e| match e {
                super::error::ReadError::Corrupt(c) => CommitError::Open(c.into()),
                other => CommitError::SectionBuilder(other.to_string()),
            })?;
            rows.push(RowData {
                id: item.id,
                vector: item.vector.to_vec(),
                point: item.point,
                time: item.time,
                payload: item.payload.map(str::to_string),
            });
        }
        let mut m = snap.manifest().clone();
        m.version = MANIFEST_VERSION;
        m.generation += 1;
        let generation = m.generation;
        let mut files = Vec::new();
        let e = &mut m.collections[ci];
        e.segments.clear();
        e.tombstones.clear();
        if !rows.is_empty() {
            self.stage_segment(&mut m.next_file_no, e, generation, &mut rows, &mut files)?;
        }
        self.publish(m, files)?;
        Ok(generation)
    }

    /// Puts `rows` (unique ids) in the configured row order, builds their segment for
    /// `entry`'s collection under the next file number, records it in `entry` and queues
    /// its bytes in `files` (written by `publish`).
    fn stage_segment(
        &self,
        next_file_no: &mut u64,
        entry: &mut CollectionEntry,
        generation: u64,
        rows: &mut [RowData],
        files: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), CommitError> {
        match self.opts.row_order {
            RowOrder::Id => rows.sort_unstable_by_key(|r| r.id),
            RowOrder::Spatial => {
                rows.sort_by_cached_key(|r| (crate::geo::hilbert_key(r.point), r.id))
            }
        }
        let file_no = *next_file_no;
        *next_file_no += 1;
        let (bytes, crc) = self.build_segment(&entry.name, entry.dim as usize, generation, rows)?;
        entry.segments.push(FileEntry {
            file_no,
            generation,
            count: rows.len() as u64,
            size: bytes.len() as u64,
            crc,
        });
        files.push((segment_file_name(file_no), bytes));
        Ok(())
    }

    /// Encodes a segment, running the registered section builders. Returns bytes and meta CRC.
    fn build_segment(
        &self,
        collection: &str,
        dim: usize,
        generation: u64,
        rows: &[RowData],
    ) -> Result<(Vec<u8>, u32), CommitError> {
        let mut bytes = encode_segment(dim, generation, rows, &[])?;
        if !self.opts.section_builders.is_empty() {
            let base = Segment::open(Arc::new(AlignedBytes::from_slice(&bytes)), "new segment")?;
            let mut extra = Vec::new();
            for b in &self.opts.section_builders {
                let mut more = b
                    .build(collection, &base)
                    .map_err(|e| CommitError::SectionBuilder(e.to_string()))?;
                extra.append(&mut more);
            }
            drop(base);
            bytes = encode_segment(dim, generation, rows, &extra)?;
        }
        let at = bytes.len() - SEGMENT_FOOTER_LEN as usize + 12;
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&bytes[at..at + 4]);
        Ok((bytes, u32::from_le_bytes(crc)))
    }

    /// The commit protocol: write + fsync new files, validate them, fsync the folder, write +
    /// fsync `MANIFEST.tmp`, rename it to `MANIFEST`, fsync the folder, then remove garbage.
    fn publish(&mut self, m: Manifest, files: Vec<(String, Vec<u8>)>) -> Result<(), CommitError> {
        let d = &*self.dir;
        let io = |name: &str| {
            let desc = d.describe(name);
            move |e| CommitError::io(desc, e)
        };
        for (name, bytes) in &files {
            d.write(name, bytes).map_err(io(name))?;
        }
        for (name, _) in &files {
            d.sync(name).map_err(io(name))?;
        }
        // Reads the new files back through the directory and validates them.
        let snap = build_snapshot(d, m.clone(), Some(&self.snapshot()))?;
        d.sync_dir().map_err(io(""))?;
        d.write(MANIFEST_TMP_FILE, &m.encode())
            .map_err(io(MANIFEST_TMP_FILE))?;
        d.sync(MANIFEST_TMP_FILE).map_err(io(MANIFEST_TMP_FILE))?;
        // From here on the new manifest may be on disk: a failure poisons the writer.
        self.poisoned = true;
        d.rename(MANIFEST_TMP_FILE, MANIFEST_FILE)
            .map_err(io(MANIFEST_FILE))?;
        d.sync_dir().map_err(io(""))?;
        self.poisoned = false;
        self.current.set(snap);
        self.collect_garbage();
        Ok(())
    }

    /// Best-effort removal of files no manifest references (left by compaction or by an
    /// interrupted commit). Open snapshots keep their mapped bytes.
    fn collect_garbage(&self) {
        let snap = self.snapshot();
        let mut keep = std::collections::BTreeSet::new();
        for c in &snap.manifest().collections {
            for e in &c.segments {
                keep.insert(segment_file_name(e.file_no));
            }
            for e in &c.tombstones {
                keep.insert(tombstone_file_name(e.file_no));
            }
        }
        let Ok(names) = self.dir.list() else { return };
        for name in names {
            let ours = name == MANIFEST_TMP_FILE
                || (name.starts_with("seg-") && name.ends_with(".s2seg"))
                || (name.starts_with("tomb-") && name.ends_with(".s2tomb"));
            if ours && !keep.contains(&name) && self.dir.remove(&name).is_err() {
                return;
            }
        }
    }
}
