//! sat2cap: an embedded database for Sat2Cap embeddings, with its encoders built in.
//!
//! Layers (see `docs/` and DESIGN): [`storage`] (immutable fp16 segments, manifest, commits),
//! [`index`] (HNSW, R-tree, exact scan), [`query`] (filters, planner), and beside them
//! `encoders` (CLIP text / image, Sat2Cap overhead + dynamic encoder; feature `encoders`).
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod geo;
pub mod index;
pub mod io;
pub mod jobs;
pub mod map;
pub mod query;
pub mod search;
pub mod storage;
pub mod time;

#[cfg(feature = "encoders")]
pub mod encoders;

pub use search::{default_db_options, SearchBuilder, SearchHit, SearchResults};
pub use storage::{Db, DbOptions, NewItem, Snapshot};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
