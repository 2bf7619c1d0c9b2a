//! Storage engine: immutable segment files (fp16 vectors, ids, points, times, payloads, index
//! sections), tombstone files, and a checksummed manifest swapped in atomically by each commit.
//!
//! The byte layout of every file is in `docs/FORMAT.md`. Entry points: [`Store`] (one writer
//! per folder), [`Snapshot`] (immutable, shareable reader view), [`Segment`] (read API of one
//! file, used by the index layer) and [`SectionBuilder`] (adds index sections at commit time).
//! Nothing here knows about search: the layer above keeps what it derives from a segment.

// Files are little-endian and read in place (fp16 vectors, u64 ids, f64 points).
#[cfg(target_endian = "big")]
compile_error!(
    "sat2cap storage reads little-endian files in place and needs a little-endian target"
);

pub(crate) mod advice;
mod db;
mod directory;
mod error;
mod format;
mod manifest;
pub(crate) mod resident;
mod segment;
mod snapshot;
mod tombstone;

pub use db::{NewItem, RowOrder, Store, StoreOptions, MAX_PAYLOAD_BYTES};
pub use directory::{Directory, FsDirectory};
pub use error::{CommitError, CorruptError, OpenError, ReadError, WriteError};
pub use manifest::{is_leftover, is_own_file, MANIFEST_FILE};
pub use segment::{ExtraSections, SectionBuildError, SectionBuilder, Segment, UNIT_TOLERANCE};
// What the jobs check before they write (an import checks every row first).
#[cfg(any(feature = "jobs", feature = "testing"))]
pub use db::{check_item, check_item_f16, valid_collection_name};
#[cfg(any(feature = "jobs", feature = "testing"))]
pub use segment::MAX_DIM;
pub use snapshot::{CollectionView, Item, SegmentView, Snapshot};

// The file formats' constants and codecs, for the white-box tests and the fuzz targets.
#[cfg(feature = "testing")]
pub use directory::{AlignedBytes, FileBytes, LockGuard, LOCK_FILE};
#[cfg(feature = "testing")]
pub use manifest::{
    segment_file_name, tombstone_file_name, CollectionEntry, FileEntry, Manifest,
    MANIFEST_MIN_VERSION, MANIFEST_TMP_FILE, MANIFEST_VERSION, MAX_PROPERTIES, MAX_PROPERTY_KEY,
    MAX_PROPERTY_VALUE,
};
#[cfg(feature = "testing")]
pub use segment::{kind, SectionInfo, SECTION_ALIGN, SEGMENT_VERSION};
#[cfg(feature = "testing")]
pub use tombstone::{decode_tombstones, encode_tombstones, TOMBSTONE_VERSION};
