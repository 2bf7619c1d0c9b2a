//! Error families of the storage engine: one enum per operation family.

use std::fmt;
use std::io;

/// A file's content failed validation: which file, at which byte offset, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptError {
    /// The file (path or name) that was being read.
    pub file: String,
    /// Byte offset in that file where the bad value starts.
    pub offset: u64,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for CorruptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}: {}", self.file, self.offset, self.what)
    }
}

impl std::error::Error for CorruptError {}

impl CorruptError {
    pub(crate) fn new(file: &str, offset: u64, what: impl Into<String>) -> CorruptError {
        CorruptError {
            file: file.to_string(),
            offset,
            what: what.into(),
        }
    }
}

/// Why a database, a snapshot, or one of its files could not be opened or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An operating-system error on `file`.
    #[error("I/O error on {file}: {source}")]
    Io {
        /// The file or folder involved.
        file: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file's bytes are not a valid file of its kind.
    #[error("corrupt file: {0}")]
    Corrupt(#[from] CorruptError),
    /// The file was written by a format version this build does not read.
    #[error("{file}: format version {found} is not supported (this build reads {min}..={max})")]
    UnsupportedVersion {
        /// The file.
        file: String,
        /// Version found in the file.
        found: u32,
        /// Oldest version this build reads.
        min: u32,
        /// Newest version this build reads.
        max: u32,
    },
    /// Another handle (in this or another process) holds the writer lock of this folder.
    #[error("the database at {path} is locked by another writer")]
    WriterLocked {
        /// The database folder.
        path: String,
    },
    /// `create` found an existing database.
    #[error("a database already exists at {path}")]
    AlreadyExists {
        /// The database folder.
        path: String,
    },
    /// A folder to create a database in holds other files (and no database).
    #[error("{path} holds other files and no database (no MANIFEST): not creating one there")]
    NotADatabase {
        /// The folder.
        path: String,
    },
    /// The path of a database is a file (or something else that is not a folder).
    #[error("{path} exists and is not a folder (a database is a folder)")]
    NotAFolder {
        /// The path.
        path: String,
    },
    /// The path of a database is a symlink to nothing.
    #[error("{path} is a symlink to {target}, which does not exist: create the folder it points to, or give another path")]
    DanglingLink {
        /// The path.
        path: String,
        /// Where the link points.
        target: String,
    },
    /// `open` found no database (no manifest).
    #[error("no database at {path} (no MANIFEST there)")]
    NotFound {
        /// The database folder.
        path: String,
    },
}

impl OpenError {
    pub(crate) fn io(file: impl Into<String>, source: io::Error) -> OpenError {
        OpenError::Io {
            file: file.into(),
            source,
        }
    }
}

/// Why an item or an operation handed to the writer was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// No collection of that name (committed or pending).
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    /// A collection of that name already exists.
    #[error("collection {0:?} already exists")]
    CollectionExists(String),
    /// Collection names are 1..=255 bytes of UTF-8 with no control characters (nor
    /// bidirectional ones), no leading or trailing whitespace, and something visible.
    #[error(
        "invalid collection name {0:?}: must be 1..=255 bytes, no control or bidirectional \
         characters, no leading or trailing space, not only invisible characters"
    )]
    InvalidName(String),
    /// Dimensions are 1..=4096.
    #[error("invalid dimension {0}: must be in 1..=4096")]
    InvalidDimension(usize),
    /// The vector has the wrong number of components.
    #[error("vector has {got} components, the collection has dimension {expected}")]
    WrongDimension {
        /// The collection's dimension.
        expected: usize,
        /// The vector's length.
        got: usize,
    },
    /// A component is NaN or infinite.
    #[error("vector component {index} is not finite")]
    NonFinite {
        /// Index of the first bad component.
        index: usize,
    },
    /// The vector's norm is zero (or not representable).
    #[error("vector has zero (or non-finite) norm")]
    ZeroNorm,
    /// After normalisation and rounding to fp16 every component is zero.
    #[error("vector rounds to all zeros in fp16")]
    Fp16Zero,
    /// The payload is longer than [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES).
    #[error("payload is {len} bytes, the limit is {max}")]
    PayloadTooLarge {
        /// Payload length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `i64::MIN` is reserved on disk to mean "no timestamp".
    #[error("timestamp i64::MIN is reserved")]
    ReservedTime,
    /// A collection property key or value is out of the limits (key 1..=255 bytes, value
    /// <= 64 KiB, at most 256 properties per collection).
    #[error("invalid collection property: {0}")]
    InvalidProperty(String),
    /// The database was opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// A previous commit failed after its manifest may have been renamed; reopen the database.
    #[error("the writer is poisoned by a failed commit; reopen the database")]
    Poisoned,
    /// Rows handed to the segment encoder repeat an id (a bug in the caller).
    #[error("id {0} appears twice in one segment")]
    DuplicateId(u64),
}

/// Why a commit (or compaction) failed. If it failed before its manifest rename, the database
/// is unchanged and the pending operations are kept; otherwise the writer is poisoned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// An operating-system error on `file`.
    #[error("I/O error on {file}: {source}")]
    Io {
        /// The file or folder involved.
        file: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A registered section builder failed or misbehaved.
    #[error("section builder failed: {0}")]
    SectionBuilder(String),
    /// A file just written did not read back correctly, or an existing file is corrupt.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The operation was refused (unknown collection, poisoned writer, ...).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A segment would exceed the format's limits.
    #[error("segment too large: {0}")]
    TooLarge(String),
    /// An on-disk counter (the manifest generation, the next file number) is at its
    /// maximum: nothing more can be committed to this database (it stays readable and
    /// unchanged; copy its collections into a new one).
    #[error("the {0} is at its maximum: no further commit is possible")]
    CounterExhausted(&'static str),
}

impl CommitError {
    pub(crate) fn io(file: impl Into<String>, source: io::Error) -> CommitError {
        CommitError::Io {
            file: file.into(),
            source,
        }
    }
}

/// Why a read from a snapshot failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No collection of that name in this snapshot.
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    /// The value read is invalid (only possible when the file is corrupt; `verify` reports it).
    #[error(transparent)]
    Corrupt(#[from] CorruptError),
}
