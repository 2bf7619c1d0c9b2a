//! The file layer: a small [`Directory`] trait and the real file system ([`FsDirectory`],
//! files read through `mmap`). The tests' in-memory directory with fault injection is
//! `crate::testing::MemDirectory` (feature `testing`).

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

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
        // Only regular files: a directory would read as "no such device", and opening a
        // FIFO would block until someone writes to it.
        let kind = std::fs::metadata(self.path(name))?.file_type();
        if !kind.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                if kind.is_dir() {
                    "is a directory, not a file"
                } else {
                    "is not a regular file"
                },
            ));
        }
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
        // A failed write (a full disk) leaves no partial file behind.
        if let Err(e) = f.write_all(data).and_then(|()| f.flush()) {
            drop(f);
            let _ = std::fs::remove_file(self.path(name));
            return Err(e);
        }
        Ok(())
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
        let mut open = OpenOptions::new();
        open.read(true).write(true).create(true).truncate(false);
        // A LOCK that is a symlink is not followed (it could make the writer create or
        // lock a file anywhere), and a LOCK that is not a regular file is refused.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let path = self.path(LOCK_FILE);
        let not_lock = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("is {what}, not the database's lock file: remove it"),
            )
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(not_lock("a symlink")),
            Ok(m) if !m.is_file() => return Err(not_lock("not a regular file")),
            _ => {}
        }
        let file = open.open(&path).map_err(|e| match e.raw_os_error() {
            #[cfg(unix)]
            Some(libc::ELOOP) => not_lock("a symlink"),
            _ => e,
        })?;
        if !file.metadata()?.is_file() {
            return Err(not_lock("not a regular file"));
        }
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn describe(&self, name: &str) -> String {
        if name.is_empty() {
            return self.root.display().to_string();
        }
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
