//! Opening the user's input files. A FIFO is opened without waiting for a writer (a named
//! pipe nobody writes to reads as empty instead of blocking forever; process substitution,
//! `<(cmd)`, still streams), and whole-file reads stop at a limit (so `/dev/zero` or an
//! endless pipe is an error, not an allocation that grows until the machine gives out).

use std::fs::File;
use std::path::Path;

/// The largest file [`read_whole`] reads by default: 256 MiB (an image of the largest size
/// the encoders take is smaller).
#[cfg(feature = "encoders")]
pub const MAX_WHOLE_FILE: u64 = 256 << 20;

/// Opens `path` for reading without blocking on a FIFO that has no writer.
pub fn open(path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        // Back to blocking reads: a pipe with a writer waits for its data, one without
        // reads as the end of the file.
        // SAFETY: fcntl on a descriptor this function owns, with flags it read from it.
        let fd = file.as_raw_fd();
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        File::open(path)
    }
}

/// Reads all of `path` (opened with [`open`]), refusing more than `max` bytes.
pub fn read_whole(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a directory, not a file",
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, max.saturating_add(1)),
        &mut bytes,
    )?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB, the limit", max >> 20),
        ));
    }
    Ok(bytes)
}

/// Why `path` (a file named by an input, joined to the folder `dir` it is relative to)
/// leads outside `dir`, if it does: an absolute path elsewhere, `..` climbing above `dir`
/// (`sub/../a.jpg` stays inside), or a symlink resolving elsewhere.
#[cfg(feature = "encoders")]
pub fn outside(dir: &Path, path: &Path) -> Option<String> {
    use std::path::Component;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let Ok(rel) = path.strip_prefix(&dir) else {
        return Some(format!("{} is outside {}", path.display(), dir.display()));
    };
    let mut depth = 0usize;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => return Some(format!("{} leads outside {}", rel.display(), dir.display())),
        }
    }
    match std::fs::canonicalize(path) {
        Ok(real) if !real.starts_with(&dir) => Some(format!(
            "{} resolves to {}, outside {}",
            rel.display(),
            real.display(),
            dir.display()
        )),
        _ => None,
    }
}

#[cfg(all(test, feature = "encoders"))]
mod tests {
    use super::*;

    #[test]
    fn fifos_do_not_block_and_reads_are_bounded() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("f");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // No writer: empty, at once.
            assert_eq!(read_whole(&fifo, 10).unwrap(), Vec::<u8>::new());
        }
        let e = read_whole(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        let e = read_whole(d.path(), 10).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        std::fs::write(d.path().join("x"), b"abc").unwrap();
        assert_eq!(read_whole(&d.path().join("x"), 3).unwrap(), b"abc");
        assert!(read_whole(&d.path().join("x"), 2).is_err());
    }
}
