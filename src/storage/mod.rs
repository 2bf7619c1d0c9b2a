//! Storage engine: immutable segment files (fp16 vectors, ids, points, times, payloads, index
//! sections), tombstone files, and a checksummed manifest swapped in atomically by each commit.
//!
//! The byte layout of every file is in `docs/FORMAT.md`. Entry points: [`Db`] (one writer
//! per folder), [`Snapshot`] (immutable, shareable reader view), [`Segment`] (read API of one
//! file, used by the index layer) and [`SectionBuilder`] (adds index sections at commit time).

// Files are little-endian and read in place (fp16 vectors, u64 ids, f64 points).
#[cfg(target_endian = "big")]
compile_error!(
    "sat2cap storage reads little-endian files in place and needs a little-endian target"
);

mod db;
mod directory;
mod error;
mod format;
pub mod fuzzing;
mod manifest;
mod segment;
mod snapshot;
mod tombstone;

pub use db::{Db, DbOptions, NewItem, RowOrder, SnapshotSource, MAX_PAYLOAD_BYTES};
pub use directory::{
    AlignedBytes, Directory, FileBytes, FsDirectory, LockGuard, MemDirectory, RebootMode, LOCK_FILE,
};
pub use error::{CommitError, CorruptError, OpenError, ReadError, WriteError};
pub use manifest::{
    segment_file_name, tombstone_file_name, CollectionEntry, FileEntry, Manifest, MANIFEST_FILE,
    MANIFEST_MIN_VERSION, MANIFEST_TMP_FILE, MANIFEST_VERSION, MAX_PROPERTIES, MAX_PROPERTY_KEY,
    MAX_PROPERTY_VALUE,
};
pub use segment::{
    kind, DerivedSlot, ExtraSections, SectionBuildError, SectionBuilder, SectionInfo, Segment,
    MAX_DIM, SECTION_ALIGN, SEGMENT_VERSION,
};
pub use snapshot::{CollectionView, ItemRef, SegmentView, Snapshot};
pub use tombstone::{decode_tombstones, encode_tombstones, TOMBSTONE_VERSION};
