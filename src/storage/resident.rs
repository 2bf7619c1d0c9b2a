//! A copy of a section's bytes in the process's own memory, in huge pages where the kernel
//! gives them.
//!
//! A segment is read through a memory map of its file, in 4 KiB pages: a walk or a scan
//! that reads rows scattered over tens of megabytes misses the TLB on most of them. A copy
//! in anonymous memory advised `MADV_HUGEPAGE` is backed by 2 MiB pages wherever the
//! kernel's transparent huge pages are on (`always` or `madvise` in
//! `/sys/kernel/mm/transparent_hugepage/enabled`), so the same reads cover 512 times the
//! bytes per TLB entry. The copy costs its length in memory and one read of the section,
//! and is made only when asked for ([`crate::Collection::make_resident`]).
//!
//! The copy is made read-only once written (`mprotect`): like the mapped file, it never
//! changes while it is read.

/// Size of a huge page on the platforms that have them (x86-64, aarch64 with 4 KiB pages).
const HUGE: usize = 2 << 20;

/// Whether the kernel backs memory advised `MADV_HUGEPAGE` with huge pages: its transparent
/// huge pages are `always` or `madvise` (false off Linux, or when the setting cannot be read).
pub(crate) fn huge_pages_on() -> bool {
    let Ok(s) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") else {
        return false;
    };
    s.contains("[always]") || s.contains("[madvise]")
}

/// Bytes copied into an anonymous mapping of their own (read-only after the copy).
pub(crate) struct ResidentBytes {
    /// Start of the mapping (huge-page aligned) and its length (a multiple of [`HUGE`]).
    base: *mut u8,
    map_len: usize,
    /// Length of the bytes copied to `base`.
    len: usize,
}

// SAFETY: the mapping is owned by this value alone, written once before `copy_of`
// returns and read-only after, and unmapped only by `drop`.
unsafe impl Send for ResidentBytes {}
// SAFETY: as above: nothing writes the bytes after `copy_of` returns.
unsafe impl Sync for ResidentBytes {}

impl ResidentBytes {
    /// A copy of `bytes` in a mapping of its own: for a copy of at least one huge page,
    /// aligned to huge pages and advised for them; a smaller one takes whole system pages
    /// only. `None` for empty bytes, off Linux, or when the system refuses the mapping (the
    /// caller goes on reading `bytes`). Under memory overcommit the mapping is granted and
    /// the memory is found (or not) as the copy writes it, like any allocation's.
    #[cfg(target_os = "linux")]
    pub(crate) fn copy_of(bytes: &[u8]) -> Option<ResidentBytes> {
        if bytes.is_empty() {
            return None;
        }
        let len = bytes.len();
        let huge = len >= HUGE;
        let unit = if huge {
            HUGE
        } else {
            super::advice::page_size()
        };
        let map_len = len.checked_next_multiple_of(unit)?;
        // For huge pages, one more than needed, so that an aligned start fits inside.
        let reserve = map_len.checked_add(if huge { HUGE } else { 0 })?;
        // SAFETY: a new private anonymous mapping; no existing memory is touched.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let start = raw as usize;
        let aligned = start.next_multiple_of(unit);
        let (head, tail) = (aligned - start, start + reserve - (aligned + map_len));
        // SAFETY: the head and tail are parts of the mapping just made, outside
        // [aligned, aligned + map_len), which is all that is kept (both are whole pages:
        // the mapping and `unit` are page aligned); `bytes` (any memory of the caller) does
        // not overlap a mapping made here; the protection change covers only the kept
        // range.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + map_len) as *mut libc::c_void, tail);
            }
            let base = aligned as *mut u8;
            if huge {
                // A hint: without huge pages the copy is still a copy.
                libc::madvise(base.cast(), map_len, libc::MADV_HUGEPAGE);
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), base, len);
            libc::mprotect(base.cast(), map_len, libc::PROT_READ);
            Some(ResidentBytes { base, map_len, len })
        }
    }

    /// Off Linux there is no copy: the caller reads the mapped bytes.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn copy_of(_bytes: &[u8]) -> Option<ResidentBytes> {
        None
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `base` holds `len` initialised bytes for as long as `self` lives, and
        // nothing writes them (read-only since `copy_of`).
        unsafe { std::slice::from_raw_parts(self.base, self.len) }
    }

    /// Bytes of memory the copy holds.
    pub(crate) fn memory(&self) -> usize {
        self.map_len
    }
}

impl Drop for ResidentBytes {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: `base`/`map_len` is the range `copy_of` kept, unmapped once, here; no
        // borrow of the bytes outlives `self`.
        unsafe {
            libc::munmap(self.base.cast(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_copy_holds_the_same_bytes_aligned() {
        for len in [1usize, 7, 4096, HUGE - 1, HUGE, HUGE + 5, 3 * HUGE + 123] {
            let src: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let copy = ResidentBytes::copy_of(&src).expect("a copy");
            assert_eq!(copy.bytes(), &src[..]);
            // Huge-page aligned and sized from one huge page on, whole system pages below.
            let unit = if len >= HUGE {
                HUGE
            } else {
                super::super::advice::page_size()
            };
            assert_eq!(copy.bytes().as_ptr() as usize % unit, 0, "{len}");
            assert!(
                copy.memory() >= len && copy.memory().is_multiple_of(unit),
                "{len}"
            );
            assert!(copy.memory() < len + unit);
            // Readable from another thread.
            let sum = std::thread::scope(|s| {
                s.spawn(|| copy.bytes().iter().map(|&b| u64::from(b)).sum::<u64>())
                    .join()
                    .unwrap()
            });
            assert_eq!(sum, src.iter().map(|&b| u64::from(b)).sum::<u64>());
        }
        assert!(ResidentBytes::copy_of(&[]).is_none());
    }
}
