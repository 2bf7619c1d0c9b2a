//! sat2cap: an embedded database for [Sat2Cap](https://arxiv.org/abs/2307.15904) embeddings,
//! with its encoders built in.
//!
//! A database is a folder. [`Db::open`] opens it (read-only, for writing, or creating it, as
//! [`OpenOptions`] says); items ([`NewItem`]: an id, an embedding, a [`Point`], an optional
//! time and payload) go into named collections and become visible, atomically and durably,
//! at [`Db::commit`]. Reads go through a [`Snapshot`], an immutable view of one commit;
//! [`Collection::search`] starts a [`SearchBuilder`]: top-k by cosine similarity, filtered by
//! box (across the antimeridian too), great-circle radius, polygon and time range
//! ([`Filter`]), with recall that holds at every filter selectivity.
//!
//! ```
//! use sat2cap::{Db, NewItem, OpenOptions, Point};
//!
//! let dir = tempfile::tempdir()?;
//! let mut db = Db::open(dir.path().join("tiles.db"), OpenOptions::create_if_missing())?;
//! db.create_collection("tiles", 3)?;
//! for (id, v, lat) in [(1u64, [1.0f32, 0.0, 0.0], 46.5), (2, [0.0, 1.0, 0.0], 46.6), (3, [0.6, 0.8, 0.0], 47.9)] {
//!     let point = Point::new(lat, 6.6)?;
//!     db.add("tiles", NewItem { id, vector: &v, point, time: None, payload: None })?;
//! }
//! db.commit()?;
//! let snap = db.snapshot();
//! // The two tiles most like the query within 50 km of Lausanne.
//! let res = snap.collection("tiles")?.search(&[0.9, 0.3, 0.0]).k(2).within_radius(46.52, 6.63, 50.0).run()?;
//! assert_eq!(res.ids(), vec![1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Beside the database:
//! - [`encoders`] (feature `encoders`, on by default): the CLIP ViT-B/32 text and image
//!   towers and the Sat2Cap overhead + dynamic (date, hour, location) encoder, in burn
//!   (CPU; CUDA with the feature `cuda`).
//! - [`jobs`] (feature `jobs`, on by default): what the `sat2cap` tool does, as typed
//!   functions: ingest tiles, photos and captions; import vectors; zero-shot maps; lookups;
//!   retrieval evaluation; the demo.
//!
//! With `default-features = false` the crate is the database alone (storage, indexes,
//! search). The architecture, file formats and measured figures are in `docs/`.
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

/// Declares internal modules: private in the product, public under the feature `testing`
/// so that the white-box tests in `tests/`, the fuzz targets and the benchmarks reach them.
macro_rules! internal {
    ($($(#[$meta:meta])* mod $name:ident;)*) => {$(
        $(#[$meta])*
        #[cfg(feature = "testing")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$meta])*
        #[cfg(not(feature = "testing"))]
        mod $name;
    )*};
}

/// Declares associated functions public under the feature `testing` (the white-box tests
/// call them), crate-visible otherwise.
macro_rules! white_box {
    ($($(#[$meta:meta])* fn $name:ident $args:tt $(-> $ret:ty)? $body:block)*) => {$(
        $(#[$meta])*
        #[cfg(feature = "testing")]
        pub fn $name $args $(-> $ret)? $body
        $(#[$meta])*
        #[cfg(not(feature = "testing"))]
        pub(crate) fn $name $args $(-> $ret)? $body
    )*};
}

internal! {
    mod db;
    mod geo;
    mod index;
    mod progress;
    mod query;
    mod search;
    mod storage;
    #[cfg(feature = "jobs")]
    mod io;
    #[cfg(feature = "jobs")]
    mod map;
}

#[cfg(feature = "encoders")]
pub mod encoders;
#[cfg(feature = "jobs")]
pub mod jobs;
pub mod time;

#[cfg(feature = "testing")]
pub mod testing;

pub use db::{
    Collection, Db, GraphOptions, IndexOptions, OpenMode, OpenOptions, Residency, SegmentInfo,
    Snapshot, SnapshotSource, VerifyReport,
};
pub use geo::{haversine_km, GeoError, Point, EARTH_RADIUS_KM};
pub use index::hnsw::{effort_valid, MAX_EF, MAX_EFFORT};
pub use progress::{Progress, Silent, Unit};
pub use query::filter::{
    Area, BBox, Cardinality, Filter, Polygon, Predicate, Radius, TimeOfDay, TimeRange,
};
pub use query::planner::{check_walk_knobs, FlatReason, Plan};
pub use query::QueryError;
pub use search::{
    SearchBuilder, SearchHit, SearchResults, SegmentPlan, DEFAULT_EF_SEARCH, DEFAULT_K,
};
pub use storage::{
    CommitError, CorruptError, Item, NewItem, OpenError, ReadError, RowOrder, WriteError,
    MAX_PAYLOAD_BYTES,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
