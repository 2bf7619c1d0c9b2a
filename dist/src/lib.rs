//! sat2cap-dist: sharded sat2cap databases searched as Apache DataFusion plans, in one
//! process or on a Ballista cluster.
//!
//! A [`Catalog`] lists shards, each an ordinary sat2cap database holding the rows of one
//! region ([`shard::shard`] builds one from a database). A search is a physical plan: the
//! shards whose region the filter misses are pruned, [`ShardSearchExec`] runs the
//! library's combined search on each remaining shard (one partition per shard, sorted by
//! score descending then id ascending) and a sort-preserving merge with `fetch = k` takes
//! the best `k`, so an exact search returns exactly what one database holding every row
//! would. [`table::register`] makes the same search a SQL table function; [`codec`] carries
//! the plans to a Ballista scheduler and its executors ([`cluster`]).
//!
//! The same shard operator runs other jobs: [`ShardMapExec`] scores every tile of a region
//! for a zero-shot map drawn as one ([`plan::map`]), [`ShardIngestExec`] encodes a tile
//! folder into a new catalog, one task a shard ([`ingest::ingest`]).
#![deny(missing_docs)]

pub mod catalog;
pub mod cluster;
pub mod codec;
pub mod exec;
pub mod ingest;
pub mod plan;
pub mod quadkey;
pub mod shard;
pub mod spec;
pub mod table;

use std::path::PathBuf;

pub use catalog::Catalog;
pub use exec::{ShardExec, ShardIngestExec, ShardMapExec, ShardSearchExec};
pub use spec::{IngestSpec, MapAt, MapSpec, ModelSpec, Region, SearchSpec};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A catalog file that is not valid.
    #[error("{}: {msg}", path.display())]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong, where.
        msg: String,
    },
    /// A database that does not open.
    #[error("{}: {source}", path.display())]
    Open {
        /// The database folder.
        path: PathBuf,
        /// Why.
        source: sat2cap::OpenError,
    },
    /// Reading or writing a shard failed.
    #[error("{}: {msg}", path.display())]
    Shard {
        /// The shard's database folder.
        path: PathBuf,
        /// Why.
        msg: String,
    },
    /// A query condition that is not valid.
    #[error(transparent)]
    Query(#[from] sat2cap::QueryError),
    /// Bad input, said in words.
    #[error("{0}")]
    Input(String),
    /// A scheduler or executor that failed to start or run.
    #[error("ballista: {0}")]
    Cluster(String),
    /// An error of the query engine.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}
