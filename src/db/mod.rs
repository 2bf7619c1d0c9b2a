//! The database a program opens: [`Db`], opened in one call with [`OpenOptions`], and the
//! immutable [`Snapshot`]s it reads through.
//!
//! This layer joins the storage engine (segment files, manifest, commits) with what search
//! derives from each segment (validated points, the spatial index, the parsed graph), which
//! it keeps next to the segment in the snapshots, so that a segment shared by many snapshots
//! is prepared once.

mod options;
mod snapshot;

use std::path::Path;
use std::sync::{Arc, RwLock};

pub use options::{GraphOptions, IndexOptions, OpenMode, OpenOptions};
pub use snapshot::{Collection, Residency, SegmentInfo, Snapshot, SnapshotSource, VerifyReport};

use crate::storage;
use crate::storage::{CommitError, Directory, FsDirectory, NewItem, OpenError, Store, WriteError};

/// An open database folder: a writer (holding the folder's writer lock) or a reader.
///
/// ```
/// use sat2cap::{Db, NewItem, OpenOptions, Point};
/// let dir = tempfile::tempdir()?;
/// let mut db = Db::open(dir.path().join("my.db"), OpenOptions::create_if_missing())?;
/// db.create_collection("tiles", 3)?;
/// let p = Point::new(48.85, 2.35)?;
/// db.add("tiles", NewItem { id: 7, vector: &[1.0, 2.0, 2.0], point: p, time: None, payload: Some("paris") })?;
/// db.commit()?;
/// let snap = db.snapshot();
/// let item = snap.get("tiles", 7)?.expect("committed");
/// assert_eq!(item.payload, Some("paris"));
/// assert!((item.vector[0].to_f32() - 1.0 / 3.0).abs() < 1e-3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Db {
    /// `None` when opened read-only.
    writer: Option<Store>,
    current: SnapshotSource,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("read_only", &self.writer.is_none())
            .field("generation", &self.snapshot().generation())
            .finish()
    }
}

/// Whether `OpenMode::CreateIfMissing` creates a database in `path`: yes when there is no
/// folder, or a folder holding nothing but what an interrupted first commit leaves (the lock
/// file, a temporary manifest, segment and tombstone files, all removed by the first
/// commit); no when it holds a `MANIFEST` (it is opened); an error when it holds other
/// files (never taken over).
fn creates_in(path: &Path) -> Result<bool, OpenError> {
    let entries = match std::fs::read_dir(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(OpenError::io(path.display().to_string(), e)),
    };
    let mut foreign = false;
    for e in entries {
        let e = e.map_err(|e| OpenError::io(path.display().to_string(), e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name == storage::MANIFEST_FILE {
            // A database: opened, whatever else the folder holds (a README, .DS_Store).
            return Ok(false);
        }
        foreign |= !storage::is_own_file(&name) || !storage::is_leftover(&e.path(), &name);
    }
    if foreign {
        return Err(OpenError::NotADatabase {
            path: path.display().to_string(),
        });
    }
    Ok(true)
}

impl Db {
    /// Opens the database in folder `path` as `opts` says (see [`OpenMode`]).
    ///
    /// Errors: [`OpenError::NotFound`] when there is no database and the mode does not
    /// create one, [`OpenError::WriterLocked`] when another handle writes the folder,
    /// [`OpenError::AlreadyExists`] for [`OpenMode::CreateNew`] on a database,
    /// [`OpenError::NotAFolder`] when `path` is a file, and the
    /// I/O and corruption errors of reading the manifest and the segment files.
    pub fn open(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Db, OpenError> {
        let path = path.as_ref();
        let not_found = || OpenError::NotFound {
            path: path.display().to_string(),
        };
        if path.exists() && !path.is_dir() {
            return Err(OpenError::NotAFolder {
                path: path.display().to_string(),
            });
        }
        if !path.exists() {
            if let Ok(target) = std::fs::read_link(path) {
                return Err(OpenError::DanglingLink {
                    path: path.display().to_string(),
                    target: target.display().to_string(),
                });
            }
        }
        let create = match opts.mode() {
            OpenMode::ReadOnly | OpenMode::ReadWrite => {
                if !path.is_dir() {
                    return Err(not_found());
                }
                false
            }
            OpenMode::CreateIfMissing => creates_in(path)?,
            OpenMode::CreateNew => true,
        };
        if create {
            std::fs::create_dir_all(path)
                .map_err(|e| OpenError::io(path.display().to_string(), e))?;
        }
        Db::open_dir(Arc::new(FsDirectory::new(path)), &opts, create)
    }

    /// [`Db::open`] over any [`Directory`] (the tests' fault-injecting in-memory one).
    /// `CreateIfMissing` creates when the directory holds no manifest.
    #[cfg(feature = "testing")]
    pub fn open_in(dir: Arc<dyn Directory>, opts: OpenOptions) -> Result<Db, OpenError> {
        let create = match opts.mode() {
            OpenMode::ReadOnly | OpenMode::ReadWrite => false,
            OpenMode::CreateIfMissing => !dir
                .exists(storage::MANIFEST_FILE)
                .map_err(|e| OpenError::io(dir.describe(storage::MANIFEST_FILE), e))?,
            OpenMode::CreateNew => true,
        };
        Db::open_dir(dir, &opts, create)
    }

    fn open_dir(
        dir: Arc<dyn Directory>,
        opts: &OpenOptions,
        create: bool,
    ) -> Result<Db, OpenError> {
        let (writer, snap) = match (opts.mode(), create) {
            (OpenMode::ReadOnly, _) => (None, Store::snapshot_in(&*dir)?),
            (_, true) => {
                let w = Store::create_in(dir, opts.store_options())?;
                let s = w.snapshot();
                (Some(w), s)
            }
            (_, false) => {
                let w = Store::open_in(dir, opts.store_options())?;
                let s = w.snapshot();
                (Some(w), s)
            }
        };
        let current = SnapshotSource(Arc::new(RwLock::new(Snapshot::new(snap, None))));
        Ok(Db { writer, current })
    }

    /// Whether this handle was opened with [`OpenMode::ReadOnly`].
    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    /// The latest committed snapshot (for a reader: the one read at open).
    pub fn snapshot(&self) -> Snapshot {
        self.current.snapshot()
    }

    /// A handle other threads can use to get the latest committed snapshot.
    pub fn snapshot_source(&self) -> SnapshotSource {
        self.current.clone()
    }

    fn writer(&mut self) -> Result<&mut Store, WriteError> {
        self.writer.as_mut().ok_or(WriteError::ReadOnly)
    }

    /// Number of pending (uncommitted) operations.
    pub fn pending_len(&self) -> usize {
        self.writer.as_ref().map_or(0, Store::pending_len)
    }

    /// Creates collection `name` with dimension `dim` (1..=4096, cosine); visible after
    /// [`commit`](Db::commit).
    pub fn create_collection(&mut self, name: &str, dim: usize) -> Result<(), WriteError> {
        self.writer()?.create_collection(name, dim)
    }

    /// Adds an item, or replaces the item with the same id; visible after `commit`.
    pub fn add(&mut self, collection: &str, item: NewItem<'_>) -> Result<(), WriteError> {
        self.writer()?.add(collection, item)
    }

    /// Adds an item whose vector is given as fp16 (as a [`Snapshot`] returns it), or replaces
    /// the item with the same id; visible after `commit`. A vector of unit length within
    /// fp16 rounding (norm within 2^-10 of 1, as every stored vector is) is stored bit for
    /// bit, so that an item copied from a database (or an export of one) is stored
    /// unchanged; any other is normalised as [`add`](Db::add) does.
    pub fn add_f16(&mut self, collection: &str, item: &crate::Item<'_>) -> Result<(), WriteError> {
        self.writer()?.add_f16(collection, item)
    }

    /// Deletes `id` (a no-op if absent); takes effect at `commit`.
    pub fn delete(&mut self, collection: &str, id: u64) -> Result<(), WriteError> {
        self.writer()?.delete(collection, id)
    }

    /// Sets (`Some`) or removes (`None`) the property `key` of `collection`: a small string
    /// stored with the collection's schema (e.g. which model made its vectors), from
    /// `commit` on. Keys are 1..=255 bytes, values at most 64 KiB, at most 256 per collection.
    pub fn set_property(
        &mut self,
        collection: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), WriteError> {
        self.writer()?.set_property(collection, key, value)
    }

    /// Makes every pending operation durable and visible, atomically; returns the new
    /// generation (unchanged when nothing was pending). On failure before the manifest is
    /// replaced the database is unchanged and the operations stay pending.
    pub fn commit(&mut self) -> Result<u64, CommitError> {
        let r = self.writer()?.commit();
        self.refresh();
        r
    }

    /// Writes the pending rows to segment files now without making them visible: the next
    /// [`commit`](Db::commit) publishes them with everything else, atomically, and a writer
    /// dropped without committing removes them. For transactions larger than memory: spill
    /// every so many rows, commit once.
    pub fn spill(&mut self) -> Result<(), CommitError> {
        self.writer()?.spill()
    }

    /// Rows spilled (see [`spill`](Db::spill)) and not yet committed.
    pub fn spilled_rows(&self) -> u64 {
        self.writer.as_ref().map_or(0, Store::spilled_rows)
    }

    /// Commits, then merges every segment of `collection` into one (dropping deleted and
    /// replaced rows, rebuilding its indexes); returns the new generation.
    pub fn compact(&mut self, collection: &str) -> Result<u64, CommitError> {
        let r = self.writer()?.compact(collection);
        self.refresh();
        r
    }

    /// Publishes the writer's newest snapshot, keeping what search prepared for the
    /// segments it shares with the previous one.
    fn refresh(&mut self) {
        let Some(w) = &self.writer else { return };
        let inner = w.snapshot();
        let prev = self.current.snapshot();
        if prev.generation() != inner.generation() {
            self.current.set(Snapshot::new(inner, Some(&prev)));
        }
    }
}
