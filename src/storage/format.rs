//! Little-endian fixed-width reading with bounds checks that turn into [`CorruptError`]s.

use super::error::CorruptError;

/// A checked view of one file's bytes; every read names the file and offset on failure.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    pub buf: &'a [u8],
    pub file: &'a str,
}

impl<'a> Bytes<'a> {
    pub fn new(buf: &'a [u8], file: &'a str) -> Bytes<'a> {
        Bytes { buf, file }
    }

    pub fn err(&self, offset: u64, what: impl Into<String>) -> CorruptError {
        CorruptError::new(self.file, offset, what)
    }

    /// `len` bytes at `off`, or an error if they run past the end.
    pub fn slice(&self, off: u64, len: u64, what: &str) -> Result<&'a [u8], CorruptError> {
        let end = off
            .checked_add(len)
            .ok_or_else(|| self.err(off, format!("{what}: length {len} overflows")))?;
        if end > self.buf.len() as u64 {
            return Err(self.err(
                off,
                format!(
                    "{what}: {len} bytes run past the end of the file ({} bytes)",
                    self.buf.len()
                ),
            ));
        }
        // Both fit in the buffer's length, hence in usize.
        Ok(&self.buf[off as usize..end as usize])
    }

    pub fn array<const N: usize>(&self, off: u64, what: &str) -> Result<[u8; N], CorruptError> {
        let s = self.slice(off, N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u32(&self, off: u64, what: &str) -> Result<u32, CorruptError> {
        Ok(u32::from_le_bytes(self.array(off, what)?))
    }

    pub fn u64(&self, off: u64, what: &str) -> Result<u64, CorruptError> {
        Ok(u64::from_le_bytes(self.array(off, what)?))
    }
}

/// Appends little-endian values.
pub(crate) trait Put {
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn pad_to(&mut self, align: usize);
}

impl Put for Vec<u8> {
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn pad_to(&mut self, align: usize) {
        let n = self.len().next_multiple_of(align);
        self.resize(n, 0);
    }
}

/// Multiplies counts read from a file without overflow.
pub(crate) fn mul(a: u64, b: u64) -> Option<u64> {
    a.checked_mul(b)
}
