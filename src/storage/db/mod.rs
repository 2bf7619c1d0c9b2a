//! The database handle: one writer per folder, commits, compaction, snapshots.

mod commit;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use half::f16;

use crate::geo::Point;
use crate::storage::directory::{AlignedBytes, Directory, LockGuard, LOCK_FILE};
use crate::storage::error::{CommitError, OpenError, WriteError};
use crate::storage::manifest::{
    check_property, segment_file_name, tombstone_file_name, CollectionEntry, FileEntry, Manifest,
    MANIFEST_FILE, MANIFEST_TMP_FILE, MANIFEST_VERSION, MAX_PROPERTIES,
};
use crate::storage::segment::{
    encode_segment, RowData, SectionBuilder, Segment, MAX_DIM, METRIC_COSINE, SEGMENT_FOOTER_LEN,
};
use crate::storage::snapshot::{build_snapshot, Item, Snapshot};
use crate::storage::tombstone::encode_tombstones;

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
    /// Segments written ahead of the next commit by [`Store::spill`], in order.
    spilled: Vec<Spilled>,
    /// The last generation and the next file number the spilled segments reserved.
    reserved: Option<(u64, u64)>,
    poisoned: bool,
}

/// A segment written by [`Store::spill`], published by the next commit.
#[derive(Debug)]
struct Spilled {
    collection: String,
    entry: FileEntry,
    /// Its ids, sorted (a delete after the spill must find them).
    ids: Vec<u64>,
}

impl Drop for Store {
    /// Removes the spilled segments no commit published (unless a failed commit may have
    /// published them: then the next open removes whatever no manifest references).
    fn drop(&mut self) {
        if !self.poisoned {
            for s in &self.spilled {
                let _ = self.dir.remove(&segment_file_name(s.entry.file_no));
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("generation", &self.snapshot().generation())
            .finish()
    }
}

/// [`OpenError::NotFound`] unless `dir` holds a manifest.
fn require_manifest(dir: &dyn Directory) -> Result<(), OpenError> {
    let desc = dir.describe(MANIFEST_FILE);
    if dir
        .exists(MANIFEST_FILE)
        .map_err(|e| OpenError::io(&desc, e))?
    {
        Ok(())
    } else {
        Err(OpenError::NotFound {
            path: dir.describe(""),
        })
    }
}

fn read_manifest(dir: &dyn Directory) -> Result<Manifest, OpenError> {
    require_manifest(dir)?;
    let desc = dir.describe(MANIFEST_FILE);
    let bytes = dir
        .read(MANIFEST_FILE)
        .map_err(|e| OpenError::io(&desc, e))?;
    Manifest::decode((*bytes).as_ref(), &desc)
}

/// Whether `name` may name a new collection: 1..=255 bytes, no control characters and no
/// bidirectional controls, no leading or trailing whitespace, and at least one character
/// that draws something (not only zero-width ones).
pub fn valid_collection_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| c.is_control() || reorders(c))
        && name.trim() == name
        && name.chars().any(|c| !c.is_whitespace() && !invisible(c))
}

/// Characters that draw nothing (zero-width spaces and joiners, the byte-order mark, the
/// soft hyphen, word joiners): a name of them alone cannot be read or typed.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// Bidirectional controls, which make a name display as something else.
fn reorders(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks an item as [`Store::add`] would for a collection of dimension `dim`.
#[cfg(any(feature = "jobs", feature = "testing"))]
pub fn check_item(dim: usize, item: &NewItem<'_>) -> Result<(), WriteError> {
    prepare(dim, item).map(|_| ())
}

/// How far from 1 the norm of an fp16 vector may be for [`Store::add_f16`] to keep it bit for
/// bit: rounding a unit vector to fp16 moves its norm by less than 2^-11, and 2^-10 stays
/// inside [`UNIT_TOLERANCE`](crate::storage::UNIT_TOLERANCE), which `verify` and search hold
/// stored rows to.
pub const STORED_FORM_TOLERANCE: f64 = 1.0 / 1024.0;

/// Checks an item as [`Store::add_f16`] would for a collection of dimension `dim`.
#[cfg(any(feature = "jobs", feature = "testing"))]
pub fn check_item_f16(dim: usize, item: &Item<'_>) -> Result<(), WriteError> {
    prepare_f16(dim, item).map(|_| ())
}

/// Validates an item whose vector is fp16: kept as given when its norm is within
/// [`STORED_FORM_TOLERANCE`] of 1 (the form the engine stores), else normalised like
/// [`prepare`] does.
fn prepare_f16(dim: usize, item: &Item<'_>) -> Result<RowData, WriteError> {
    let wide: Vec<f32> = item.vector.iter().map(|x| x.to_f32()).collect();
    let mut row = prepare(
        dim,
        &NewItem {
            id: item.id,
            vector: &wide,
            point: item.point,
            time: item.time,
            payload: item.payload,
        },
    )?;
    let norm = crate::index::norm_f64(&wide);
    if (norm - 1.0).abs() <= STORED_FORM_TOLERANCE {
        row.vector = item.vector.to_vec();
    }
    Ok(row)
}

/// `n + 1`, or the error saying that the counter `what` is exhausted.
pub(crate) fn next(n: u64, what: &'static str) -> Result<u64, CommitError> {
    n.checked_add(1).ok_or(CommitError::CounterExhausted(what))
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
    let norm = crate::index::norm_f64(item.vector);
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
        let mut db = Store::with(dir, opts, lock, manifest.clone())?;
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
    /// A folder without a manifest is [`OpenError::NotFound`], before any lock file is made.
    pub fn open_in(dir: Arc<dyn Directory>, opts: StoreOptions) -> Result<Store, OpenError> {
        require_manifest(&*dir)?;
        let lock = Store::lock(&*dir)?;
        let manifest = read_manifest(&*dir)?;
        let db = Store::with(dir, opts, lock, manifest)?;
        db.collect_garbage();
        Ok(db)
    }

    /// A writer holding `lock` over `dir`, nothing pending, showing `manifest`.
    fn with(
        dir: Arc<dyn Directory>,
        opts: StoreOptions,
        lock: LockGuard,
        manifest: Manifest,
    ) -> Result<Store, OpenError> {
        let snap = build_snapshot(&*dir, manifest, None)?;
        Ok(Store {
            dir,
            opts,
            _lock: lock,
            current: Current(RwLock::new(snap)),
            new_collections: Vec::new(),
            pending: BTreeMap::new(),
            pending_props: BTreeMap::new(),
            spilled: Vec::new(),
            reserved: None,
            poisoned: false,
        })
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

    /// Rows written ahead by [`Store::spill`] that the next commit publishes.
    pub fn spilled_rows(&self) -> u64 {
        self.spilled.iter().map(|s| s.entry.count).sum()
    }

    /// Number of pending (uncommitted) operations held in memory (not counting the rows
    /// spilled to segment files, see [`Store::spilled_rows`]).
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
        if !valid_collection_name(name) {
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
        self.add_row(collection, item.id, |dim| prepare(dim, &item))
    }

    /// Adds (or replaces) an item whose vector is given as fp16: a vector already of unit
    /// length within fp16 rounding (norm within [`STORED_FORM_TOLERANCE`] of 1) is stored bit
    /// for bit, so an item read from a database adds back unchanged; any other is normalised
    /// as [`Store::add`] does. Visible after `commit`.
    pub fn add_f16(&mut self, collection: &str, item: &Item<'_>) -> Result<(), WriteError> {
        self.add_row(collection, item.id, |dim| prepare_f16(dim, item))
    }

    /// Queues the row `prepare` makes for the collection's dimension under `id`.
    fn add_row(
        &mut self,
        collection: &str,
        id: u64,
        prepare: impl FnOnce(usize) -> Result<RowData, WriteError>,
    ) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned);
        }
        let dim = self
            .dim_of(collection)
            .ok_or_else(|| WriteError::UnknownCollection(collection.to_string()))?;
        let row = prepare(dim)?;
        self.pending
            .entry(collection.to_string())
            .or_default()
            .ops
            .insert(id, Some(row));
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
}
