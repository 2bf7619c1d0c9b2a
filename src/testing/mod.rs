//! Test scaffolding (feature `testing`, never in the product): what `tests/`, `fuzz/` and
//! `benches/` share.
//!
//! - [`fuzz`]: the fuzz-target bodies, run by cargo-fuzz (`fuzz/`) and replayed over the
//!   committed corpus by `tests/fuzz_replay.rs`;
//! - [`synth`]: seeded synthetic, clustered, geo-correlated embeddings;
//! - [`MemDirectory`]: an in-memory folder with fault injection, for the crash tests
//!   (open it with [`Db::open_in`](crate::Db::open_in)).

pub mod fuzz;
mod mem_directory;
pub mod synth;

pub use mem_directory::{MemDirectory, RebootMode};
