//! The file layer: a small [`Directory`] trait, the real file system ([`FsDirectory`], files
//! read through `mmap`) and an in-memory one with fault injection ([`MemDirectory`]) that keeps
//! "written" and "durable" bytes apart, for crash tests.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The bytes of one immutable file: a memory map or an aligned heap buffer.
///
/// The start of the bytes is aligned to at least 8 bytes (memory maps to a page).
pub type FileBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A guard that holds a folder's writer lock until dropped.
pub type LockGuard = Box<dyn std::any::Any + Send + Sync>;

/// Write-once file storage for one database folder. Names are plain file names (no `/`).
///
/// Files are written whole by [`write`](Directory::write), made durable by
/// [`sync`](Directory::sync), and never modified afterwards. Directory entries (creation,
/// rename, removal) are durable only after [`sync_dir`](Directory::sync_dir).
pub trait Directory: Send + Sync + fmt::Debug {
    /// Reads a whole file. The returned bytes stay valid after the file is removed.
    fn read(&self, name: &str) -> io::Result<FileBytes>;
    /// Creates (or truncates) `name` and writes `data` to it. Not durable until `sync`.
    fn write(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Makes the content of `name` durable (fsync).
    fn sync(&self, name: &str) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes the folder's entries durable (fsync of the folder).
    fn sync_dir(&self) -> io::Result<()>;
    /// Removes `name`. Open readers of it keep their bytes.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Whether `name` exists.
    fn exists(&self, name: &str) -> io::Result<bool>;
    /// The names of all files in the folder.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Takes the exclusive writer lock without waiting: `Ok(None)` if someone else holds it.
    fn try_lock_writer(&self) -> io::Result<Option<LockGuard>>;
    /// A human-readable name of `name` for error messages (the full path on a file system).
    fn describe(&self, name: &str) -> String;
}

/// Name of the lock file (see docs/FORMAT.md).
pub const LOCK_FILE: &str = "LOCK";

/// A real folder. Files are read through read-only memory maps.
#[derive(Debug, Clone)]
pub struct FsDirectory {
    root: PathBuf,
}

impl FsDirectory {
    /// A directory over the existing folder `root`.
    pub fn new(root: impl Into<PathBuf>) -> FsDirectory {
        FsDirectory { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

struct MmapBytes(memmap2::Mmap);

impl AsRef<[u8]> for MmapBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Directory for FsDirectory {
    fn read(&self, name: &str) -> io::Result<FileBytes> {
        let file = File::open(self.path(name))?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Arc::new(AlignedBytes::from_slice(&[])));
        }
        // SAFETY: files of a database are written once, fsynced and never modified afterwards
        // (they are replaced by rename and removed by unlink, which leave an existing mapping
        // intact). Every byte read through the map is validated before use, so even a file
        // changed behind our back cannot cause more than an error or a wrong value.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Arc::new(MmapBytes(map)))
    }

    fn write(&self, name: &str, data: &[u8]) -> io::Result<()> {
        // A new inode every time: never truncate a file someone may have mapped.
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(name))?;
        f.write_all(data)?;
        f.flush()
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        OpenOptions::new()
            .read(true)
            .open(self.path(name))?
            .sync_all()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.root)?.sync_all()
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(name))
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        self.path(name).try_exists()
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn try_lock_writer(&self) -> io::Result<Option<LockGuard>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn describe(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// An immutable heap buffer whose start is 8-byte aligned (so `u64`/`f64` casts can succeed).
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// Copies `data` into an aligned buffer.
    pub fn from_slice(data: &[u8]) -> AlignedBytes {
        let mut words = vec![0u64; data.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..data.len()].copy_from_slice(data);
        AlignedBytes {
            words,
            len: data.len(),
        }
    }
}

impl AsRef<[u8]> for AlignedBytes {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

/// How [`MemDirectory::reboot`] decides which folder entries survived a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootMode {
    /// Only entries made durable by `sync_dir` survive (the strict model).
    DurableEntriesOnly,
    /// Every entry change survives, even without `sync_dir` (a file system that orders
    /// metadata); file contents are still only what `sync` made durable.
    AllEntries,
}

#[derive(Debug, Clone)]
struct Inode {
    data: Arc<AlignedBytes>,
    durable: Option<Arc<AlignedBytes>>,
}

#[derive(Debug, Default)]
struct MemState {
    inodes: Vec<Inode>,
    entries: BTreeMap<String, usize>,
    durable_entries: BTreeMap<String, usize>,
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    locked: bool,
    log: Vec<String>,
}

/// An in-memory folder with fault injection: it counts mutating operations (`write`, `sync`,
/// `rename`, `sync_dir`, `remove`) and can "crash" at a chosen one (that operation and every
/// later one fail); [`reboot`](MemDirectory::reboot) then keeps only what was durable.
#[derive(Debug, Clone, Default)]
pub struct MemDirectory {
    state: Arc<Mutex<MemState>>,
}

fn injected() -> io::Error {
    io::Error::other("injected crash")
}

impl MemDirectory {
    /// An empty folder.
    pub fn new() -> MemDirectory {
        MemDirectory::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Crash at the mutating operation with index `op` (0-based, counted from now on: the
    /// counter is reset). `None` disables injection.
    pub fn crash_at(&self, op: Option<u64>) {
        let mut s = self.lock();
        s.ops = 0;
        s.crash_at = op;
        s.crashed = false;
    }

    /// Number of mutating operations since the last [`crash_at`](MemDirectory::crash_at).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Whether the injected crash has happened.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The log of successful mutating operations (e.g. `"rename MANIFEST.tmp MANIFEST"`).
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// The folder as it would be found after a power loss now: durable contents only, and
    /// entries according to `mode`. Files whose entry survived but whose content was never
    /// synced are empty. The lock is released.
    pub fn reboot(&self, mode: RebootMode) -> MemDirectory {
        let s = self.lock();
        let entries = match mode {
            RebootMode::DurableEntriesOnly => &s.durable_entries,
            RebootMode::AllEntries => &s.entries,
        };
        let mut inodes = Vec::new();
        let mut new_entries = BTreeMap::new();
        for (name, &ino) in entries {
            let data = s.inodes[ino]
                .durable
                .clone()
                .unwrap_or_else(|| Arc::new(AlignedBytes::from_slice(&[])));
            inodes.push(Inode {
                data: data.clone(),
                durable: Some(data),
            });
            new_entries.insert(name.clone(), inodes.len() - 1);
        }
        MemDirectory {
            state: Arc::new(Mutex::new(MemState {
                inodes,
                durable_entries: new_entries.clone(),
                entries: new_entries,
                ..MemState::default()
            })),
        }
    }

    /// Replaces the content of `name` (durably), for corruption tests.
    pub fn put(&self, name: &str, data: &[u8]) {
        let mut s = self.lock();
        let bytes = Arc::new(AlignedBytes::from_slice(data));
        s.inodes.push(Inode {
            data: bytes.clone(),
            durable: Some(bytes),
        });
        let ino = s.inodes.len() - 1;
        s.entries.insert(name.to_string(), ino);
        s.durable_entries.insert(name.to_string(), ino);
    }

    /// Runs one mutating operation through the crash counter.
    fn op<T>(&self, what: String, f: impl FnOnce(&mut MemState) -> io::Result<T>) -> io::Result<T> {
        let mut s = self.lock();
        if s.crashed {
            return Err(injected());
        }
        let n = s.ops;
        s.ops += 1;
        if s.crash_at == Some(n) {
            s.crashed = true;
            return Err(injected());
        }
        let out = f(&mut s)?;
        s.log.push(what);
        Ok(out)
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl Directory for MemDirectory {
    fn read(&self, name: &str) -> io::Result<FileBytes> {
        let s = self.lock();
        let ino = *s.entries.get(name).ok_or_else(|| not_found(name))?;
        Ok(s.inodes[ino].data.clone())
    }

    fn write(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.op(format!("write {name}"), |s| {
            s.inodes.push(Inode {
                data: Arc::new(AlignedBytes::from_slice(data)),
                durable: None,
            });
            let ino = s.inodes.len() - 1;
            s.entries.insert(name.to_string(), ino);
            Ok(())
        })
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        self.op(format!("sync {name}"), |s| {
            let ino = *s.entries.get(name).ok_or_else(|| not_found(name))?;
            s.inodes[ino].durable = Some(s.inodes[ino].data.clone());
            Ok(())
        })
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.op(format!("rename {from} {to}"), |s| {
            let ino = s.entries.remove(from).ok_or_else(|| not_found(from))?;
            s.entries.insert(to.to_string(), ino);
            Ok(())
        })
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.op("sync_dir".to_string(), |s| {
            s.durable_entries = s.entries.clone();
            Ok(())
        })
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.op(format!("remove {name}"), |s| {
            s.entries.remove(name).ok_or_else(|| not_found(name))?;
            Ok(())
        })
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        Ok(self.lock().entries.contains_key(name))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().entries.keys().cloned().collect())
    }

    fn try_lock_writer(&self) -> io::Result<Option<LockGuard>> {
        let mut s = self.lock();
        if s.locked {
            return Ok(None);
        }
        s.locked = true;
        Ok(Some(Box::new(MemLock(self.state.clone()))))
    }

    fn describe(&self, name: &str) -> String {
        format!("mem:{name}")
    }
}

struct MemLock(Arc<Mutex<MemState>>);

impl Drop for MemLock {
    fn drop(&mut self) {
        match self.0.lock() {
            Ok(mut g) => g.locked = false,
            Err(p) => p.into_inner().locked = false,
        }
    }
}
