//! How the bytes of a mapped file are about to be read, told to the kernel (`madvise`).
//!
//! A segment is read through a memory map, and a read of a page not in the page cache
//! makes the kernel read around it: `read_ahead_kb` of the device, 8 MiB on some cloud
//! disks. That suits a pass over a section (and fills the page cache with large pages,
//! which later processes map cheaply) and wastes a graph walk's reads (each touched row
//! pulling megabytes in). So segments are mapped [`random`] (a missing page is read alone);
//! what is read from end to end is read [`InOrder`] (the mapping's usual read-around, for
//! that range and while the guard lives: the columns a search reads whole, a scan's long
//! runs); a walk that waits for the disk asks for each step's rows at once
//! ([`read_soon`]); a pass over a whole file (compaction, export, verify) reads it
//! [`InOrder`] while it lasts.
//!
//! These are hints: they change what the kernel reads and when, never what a read returns,
//! and a failed call changes nothing. Ranges under [`MIN_ADVISED`] are left alone (a
//! system call costs more than it saves there; [`read_soon`] excepted), as is everything
//! off Unix.

/// Smallest range worth a hint (bytes).
pub(crate) const MIN_ADVISED: usize = 64 << 10;

/// `data` will be read at scattered places: read only the pages touched.
pub(crate) fn random<T>(data: &[T]) {
    advise(data, Hint::Random);
}

/// `data` will be read as a mapping usually is: the pages around each one missing too.
fn normal<T>(data: &[T]) {
    advise(data, Hint::Normal);
}

/// Reads of a range from end to end, from [`InOrder::new`] until the guard is dropped:
/// the range is [`normal`] meanwhile and [`random`] again after (the state of a segment's
/// mapping). Nothing for a range under [`MIN_ADVISED`].
pub(crate) struct InOrder<'a>(&'a [u8]);

impl<'a> InOrder<'a> {
    pub(crate) fn new<T: bytemuck::Pod>(data: &'a [T]) -> InOrder<'a> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.len() < MIN_ADVISED {
            return InOrder(&[]);
        }
        normal(bytes);
        InOrder(bytes)
    }

    /// The range the guard covers (empty: none).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl Drop for InOrder<'_> {
    fn drop(&mut self) {
        random(self.0);
    }
}

/// `data` (a row, a list: a few pages at most) will be read in a moment: start reading
/// its pages now, so that several such reads overlap instead of following one another.
/// One system call, whatever the size; for a walk that finds its pages on disk.
pub(crate) fn read_soon<T>(data: &[T]) {
    madvise(data, Hint::WillNeed);
}

/// Reads the first and the last byte of `data` and tells whether either read waited for
/// the disk (took over [`DISK_WAIT`]): a page already in memory is there in a few
/// microseconds at most (its first touch by this process included), one read from disk
/// takes tens to hundreds. No system call; `false` for empty `data`.
pub(crate) fn ends_read_waited<T: bytemuck::Pod>(data: &[T]) -> bool {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    [bytes.first(), bytes.last()]
        .into_iter()
        .flatten()
        .any(|byte| {
            use std::sync::atomic::{compiler_fence, Ordering};
            let t = std::time::Instant::now();
            compiler_fence(Ordering::SeqCst);
            // SAFETY: `byte` is a valid, aligned reference; the volatile read keeps the load
            // here, between the two clock reads.
            unsafe { std::ptr::read_volatile(byte) };
            compiler_fence(Ordering::SeqCst);
            t.elapsed() > DISK_WAIT
        })
}

/// The shortest read that waited for the disk (see [`ends_read_waited`]).
const DISK_WAIT: std::time::Duration = std::time::Duration::from_micros(15);

#[derive(Clone, Copy)]
enum Hint {
    Random,
    Normal,
    WillNeed,
}

/// The system's page size.
#[cfg(unix)]
pub(crate) fn page_size() -> usize {
    use std::sync::OnceLock;
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 && (p as usize).is_power_of_two() => p as usize,
        _ => 4096,
    })
}

/// [`madvise`] of a range of at least [`MIN_ADVISED`] bytes.
fn advise<T>(data: &[T], hint: Hint) {
    if std::mem::size_of_val(data) >= MIN_ADVISED {
        madvise(data, hint);
    }
}

/// The hint for the pages holding `data` (none for empty `data`).
#[cfg(unix)]
fn madvise<T>(data: &[T], hint: Hint) {
    let len = std::mem::size_of_val(data);
    if len == 0 {
        return;
    }
    let page = page_size();
    let addr = data.as_ptr() as usize;
    let start = addr & !(page - 1);
    let advice = match hint {
        Hint::Random => libc::MADV_RANDOM,
        Hint::Normal => libc::MADV_NORMAL,
        Hint::WillNeed => libc::MADV_WILLNEED,
    };
    // SAFETY: [start, addr + len) covers `data`, which is mapped, and the part of its first
    // page before it; these hints only change how the kernel reads the pages ahead, never
    // their contents or whether they are mapped (MADV_DONTNEED and the like, which do, are
    // never passed). An error (say, memory that is not a file mapping) changes nothing.
    unsafe {
        libc::madvise(start as *mut libc::c_void, addr + len - start, advice);
    }
}

#[cfg(not(unix))]
fn madvise<T>(_data: &[T], _hint: Hint) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_leave_the_bytes_as_they_were() {
        let data: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
        for part in [
            &data[..],
            &data[3..],
            &data[100..MIN_ADVISED + 200],
            &data[..10],
        ] {
            random(part);
            normal(part);
            read_soon(part);
            assert!(!ends_read_waited(&part[..0]));
            let guard = InOrder::new(part);
            assert_eq!(
                guard.len(),
                if part.len() < MIN_ADVISED {
                    0
                } else {
                    part.len()
                }
            );
        }
        assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }
}
