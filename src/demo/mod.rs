//! The synthetic region the `demo` command renders: overhead tiles with procedural water,
//! forest, field and town textures laid over a real place, and ground-level "photos" taken
//! inside them. Everything is seeded and deterministic.

pub mod scene;
