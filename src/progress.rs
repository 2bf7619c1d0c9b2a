//! [`Progress`]: how long library operations (ingest, import, maps, verify) report how far
//! they are. The library never prints; whoever runs it decides what to show (the CLI draws
//! progress bars on a terminal).

/// What a step counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Items: files, photos, captions, tiles, queries.
    Items,
    /// Rows of a collection.
    Rows,
    /// Bytes.
    Bytes,
}

/// Receives the progress of a long operation. Every method has an empty default, so an
/// observer implements only what it shows; [`Silent`] shows nothing.
pub trait Progress: Sync {
    /// A step begins: `total` units when known.
    fn begin(&self, step: &str, total: Option<u64>, unit: Unit) {
        let _ = (step, total, unit);
    }
    /// `n` more units of the current step are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }
    /// The current step is over.
    fn end(&self) {}
    /// A one-line message for the user: what is being done, or a warning.
    fn note(&self, message: &str) {
        let _ = message;
    }
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
