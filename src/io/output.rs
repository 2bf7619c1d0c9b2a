//! Output files written whole or not at all: each output is written to a new temporary
//! file beside it (created exclusively, so nothing else is ever opened for writing: no
//! FIFO, no device, no file another process writes), synced, and renamed over the
//! destination at the end. A destination that exists and is not a regular file (a
//! directory, a symlink, a FIFO, a device) is refused before anything is written: the tool
//! never replaces what is not its own kind of output.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The destination exists and is not a regular file.
    #[error("{path}: exists and is {kind}, not a regular file: refusing to replace it")]
    NotAFile {
        /// The destination.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// The destination is one of the files of a database (its manifest, lock, segments or
    /// tombstones).
    #[error("{path} is a file of the database in {folder}: refusing to replace it")]
    DatabaseFile {
        /// The destination.
        path: String,
        /// The database folder.
        folder: String,
    },
    /// The destination's folder does not exist.
    #[error("output folder {0} does not exist")]
    NoFolder(String),
    /// The destination ends with a path separator: it names a folder, not a file.
    #[error("{0} ends with '/': it names a folder; give a file name")]
    FolderPath(String),
    /// What should be the destination's folder is not a folder.
    #[error("{0} is not a folder: an output cannot be written inside it")]
    NotAFolder(String),
    /// The destination is one of the command's inputs (another path to it included).
    #[error("{path} is also an input of this command ({input}): refusing to replace it")]
    IsInput {
        /// The destination.
        path: String,
        /// The input it is.
        input: String,
    },
    /// Writing, syncing or renaming failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The destination.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl OutputError {
    /// Whether the user's input caused it (a bad destination), rather than the machine.
    pub fn is_input(&self) -> bool {
        !matches!(self, OutputError::Io { .. })
    }
}

/// What `path` is, when it exists and is not a regular file (symlinks are not followed).
fn non_file_kind(path: &Path) -> Option<&'static str> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    if t.is_file() {
        return None;
    }
    Some(if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                return Some("a FIFO");
            }
            if t.is_socket() {
                return Some("a socket");
            }
            if t.is_block_device() || t.is_char_device() {
                return Some("a device");
            }
        }
        "not a regular file"
    })
}

/// Checks that `dest` may be written: it is missing or a regular file (not a directory,
/// symlink, FIFO, socket or device), not one of the files of a database (a folder with a
/// `MANIFEST`), and its folder exists. Returns the folder.
pub fn check(dest: &Path) -> Result<PathBuf, OutputError> {
    let shown = dest.as_os_str().to_string_lossy();
    if shown.ends_with('/') || shown.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(OutputError::FolderPath(shown.into_owned()));
    }
    if let Some(kind) = non_file_kind(dest) {
        return Err(OutputError::NotAFile {
            path: dest.display().to_string(),
            kind,
        });
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        let shown = parent.display().to_string();
        return Err(match std::fs::metadata(&parent) {
            Ok(_) => OutputError::NotAFolder(shown),
            Err(_) => OutputError::NoFolder(shown),
        });
    }
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if crate::storage::is_own_file(name) && parent.join(crate::storage::MANIFEST_FILE).exists() {
        return Err(OutputError::DatabaseFile {
            path: dest.display().to_string(),
            folder: parent.display().to_string(),
        });
    }
    Ok(parent)
}

/// Refuses `dest` when it is the same file as one of `inputs`: the same device and inode,
/// so another path to the file (`./a/../q.jsonl`, a hard link) counts. Nothing is read
/// when `dest` does not exist yet.
pub fn check_not_input<'a>(
    dest: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), OutputError> {
    let Some(out) = file_id(dest) else {
        return Ok(());
    };
    match inputs.into_iter().find(|i| file_id(i) == Some(out)) {
        Some(input) => Err(OutputError::IsInput {
            path: dest.display().to_string(),
            input: input.display().to_string(),
        }),
        None => Ok(()),
    }
}

/// The device and inode of the file `path` names (links followed), when it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        std::fs::canonicalize(path).ok().map(|p| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.hash(&mut h);
            (0, h.finish())
        })
    }
}

static STAGED: AtomicU64 = AtomicU64::new(0);

/// An output being written: a temporary file beside its destination.
#[derive(Debug)]
pub struct Staged {
    dest: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    done: bool,
}

impl Staged {
    /// Checks `dest` (see [`check`]) and creates its temporary file.
    pub fn new(dest: &Path) -> Result<Staged, OutputError> {
        let parent = check(dest)?;
        let shown = || dest.display().to_string();
        let io = |source| OutputError::Io {
            path: shown(),
            source,
        };
        // A fresh name, created exclusively: an existing entry of that name (of any kind)
        // is never opened.
        for _ in 0..16 {
            let n = STAGED.fetch_add(1, Ordering::Relaxed);
            let tmp = parent.join(format!(".sat2cap-{}-{n}.tmp", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(Staged {
                        dest: dest.to_path_buf(),
                        tmp,
                        file: Some(file),
                        done: false,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("no free temporary name")))
    }

    /// An I/O error on this output.
    pub fn error(&self, source: std::io::Error) -> OutputError {
        OutputError::Io {
            path: self.dest.display().to_string(),
            source,
        }
    }

    /// The temporary file, for writing (an error once synced).
    pub fn file(&mut self) -> Result<&mut File, OutputError> {
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(OutputError::Io {
                path: self.dest.display().to_string(),
                source: std::io::Error::other("already synced"),
            }),
        }
    }

    /// Writes `bytes` to the temporary file.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        let r = self.file()?.write_all(bytes);
        r.map_err(|e| self.error(e))
    }

    /// Syncs the temporary file and checks the destination is still one we may replace.
    pub fn sync(&mut self) -> Result<(), OutputError> {
        let path = self.dest.display().to_string();
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|source| OutputError::Io {
                path: path.clone(),
                source,
            })?;
        }
        if let Some(kind) = non_file_kind(&self.dest) {
            return Err(OutputError::NotAFile { path, kind });
        }
        Ok(())
    }

    /// Syncs, then renames the temporary file over the destination.
    pub fn commit(mut self) -> Result<(), OutputError> {
        self.sync()?;
        std::fs::rename(&self.tmp, &self.dest).map_err(|source| OutputError::Io {
            path: self.dest.display().to_string(),
            source,
        })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Commits every staged output, or none: each is synced and checked first; if a rename
/// then fails, the outputs already renamed by this call are removed again (so no mix of
/// old and new outputs is left; the old versions of those are gone).
pub fn commit_all(mut staged: Vec<Staged>) -> Result<(), OutputError> {
    for s in &mut staged {
        s.sync()?;
    }
    let mut renamed: Vec<PathBuf> = Vec::new();
    for s in staged {
        let dest = s.dest.clone();
        if let Err(e) = s.commit() {
            for d in &renamed {
                let _ = std::fs::remove_file(d);
            }
            return Err(e);
        }
        renamed.push(dest);
    }
    Ok(())
}

/// Writes `bytes` to `dest` whole or not at all (a [`Staged`] output).
#[cfg(feature = "encoders")]
pub fn write_whole(dest: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut s = Staged::new(dest)?;
    s.write_all(bytes)?;
    s.commit()
}
