//! An in-memory [`Directory`] with fault injection, for the crash and corruption tests: it
//! keeps "written" and "durable" bytes apart, counts mutating operations, and can crash at
//! any one of them; [`MemDirectory::reboot`] then keeps only what a power loss would.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::{AlignedBytes, Directory, FileBytes, LockGuard};

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
    /// The operation that fails once, as on a full disk (the others go on).
    fail_once: Option<u64>,
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

fn full() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "injected full disk")
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

    /// The mutating operation with index `op` (0-based, counted from now on) fails once with
    /// `StorageFull`, as on a full disk: a `write` leaves half the bytes behind; every other
    /// operation succeeds.
    pub fn fail_once_at(&self, op: u64) {
        let mut s = self.lock();
        s.ops = 0;
        s.fail_once = Some(op);
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
        if s.fail_once == Some(n) {
            s.fail_once = None;
            return Err(full());
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
        let put = |s: &mut MemState, data: &[u8]| {
            s.inodes.push(Inode {
                data: Arc::new(AlignedBytes::from_slice(data)),
                durable: None,
            });
            let ino = s.inodes.len() - 1;
            s.entries.insert(name.to_string(), ino);
        };
        let r = self.op(format!("write {name}"), |s| {
            put(s, data);
            Ok(())
        });
        if let Err(e) = &r {
            if e.kind() == io::ErrorKind::StorageFull {
                // The disk filled up half-way through.
                put(&mut self.lock(), &data[..data.len() / 2]);
            }
        }
        r
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
