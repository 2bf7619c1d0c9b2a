//! How a database is opened and which indexes its commits build: [`OpenOptions`].

use std::sync::Arc;

use crate::index::hnsw::{HnswParams, HnswSectionBuilder};
use crate::index::quant::QuantSectionBuilder;
use crate::storage::{RowOrder, SectionBuilder, StoreOptions};

/// How [`Db::open`](crate::Db::open) treats the folder it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The committed state, read without taking the writer lock; every write is refused
    /// ([`WriteError::ReadOnly`](crate::WriteError::ReadOnly)). Many readers (and one
    /// writer) may have the same folder open at once.
    ReadOnly,
    /// An existing database, for writing (takes the folder's writer lock).
    ReadWrite,
    /// Like [`OpenMode::ReadWrite`], creating the database when the folder is missing or
    /// empty. A folder with other files but no database is refused, never taken over.
    CreateIfMissing,
    /// A new database; the folder may be missing or hold no database yet
    /// ([`OpenError::AlreadyExists`](crate::OpenError::AlreadyExists) otherwise).
    CreateNew,
}

/// The HNSW graph a commit builds into each new segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphOptions {
    /// Neighbours per node on the upper levels (level 0 keeps `2 * m`); `2..=128`.
    pub m: usize,
    /// Beam width while inserting; `m..=4096`.
    pub ef_construction: usize,
    /// Segments with fewer rows get no graph: they are scanned exactly, which is as fast at
    /// that size and has recall 1.0.
    pub min_rows: usize,
}

impl Default for GraphOptions {
    /// `m` 16, `ef_construction` 200, graphs from 1,000 rows.
    fn default() -> Self {
        GraphOptions {
            m: 16,
            ef_construction: 200,
            min_rows: 1_000,
        }
    }
}

/// The indexes every segment a commit (or compaction) writes gets. Searches use whatever
/// a segment has: segments without a graph are scanned exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexOptions {
    /// The HNSW graph; `None`: no graphs (every search is an exact scan).
    pub graph: Option<GraphOptions>,
    /// An int8 copy of the vectors (about half the bytes of the f16 vectors): exact scans read
    /// it and rescore from f16 only the rows that may rank, with the same answers.
    pub int8: bool,
}

impl Default for IndexOptions {
    /// A graph ([`GraphOptions::default`]) and the int8 copy.
    fn default() -> Self {
        IndexOptions {
            graph: Some(GraphOptions::default()),
            int8: true,
        }
    }
}

impl IndexOptions {
    /// No index sections at all: segments hold their columns only.
    pub fn none() -> Self {
        IndexOptions {
            graph: None,
            int8: false,
        }
    }
}

/// Options of [`Db::open`](crate::Db::open): the mode, the indexes commits build, and the
/// order new segments store their rows in.
///
/// ```
/// use sat2cap::{Db, IndexOptions, OpenOptions};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("my.db");
/// let db = Db::open(&path, OpenOptions::create_if_missing())?;
/// drop(db);
/// // Exact scans only, no graphs: smaller files, slower unfiltered searches.
/// let db = Db::open(&path, OpenOptions::read_write().indexes(IndexOptions::none()))?;
/// assert!(!db.is_read_only());
/// let reader = Db::open(&path, OpenOptions::read_only())?;
/// assert!(reader.is_read_only());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct OpenOptions {
    mode: OpenMode,
    indexes: IndexOptions,
    row_order: RowOrder,
    /// More section builders, after the ones `indexes` asks for (tests).
    extra: Vec<Arc<dyn SectionBuilder>>,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("mode", &self.mode)
            .field("indexes", &self.indexes)
            .field("row_order", &self.row_order)
            .field("extra_sections", &self.extra.len())
            .finish()
    }
}

impl OpenOptions {
    /// `mode`, with the default indexes and row order.
    pub fn new(mode: OpenMode) -> Self {
        OpenOptions {
            mode,
            indexes: IndexOptions::default(),
            row_order: RowOrder::default(),
            extra: Vec::new(),
        }
    }

    /// [`OpenMode::ReadOnly`].
    pub fn read_only() -> Self {
        Self::new(OpenMode::ReadOnly)
    }

    /// [`OpenMode::ReadWrite`].
    pub fn read_write() -> Self {
        Self::new(OpenMode::ReadWrite)
    }

    /// [`OpenMode::CreateIfMissing`].
    pub fn create_if_missing() -> Self {
        Self::new(OpenMode::CreateIfMissing)
    }

    /// [`OpenMode::CreateNew`].
    pub fn create_new() -> Self {
        Self::new(OpenMode::CreateNew)
    }

    /// The indexes commits build (default: [`IndexOptions::default`]).
    pub fn indexes(mut self, indexes: IndexOptions) -> Self {
        self.indexes = indexes;
        self
    }

    /// The row order of new segments (default: [`RowOrder::Spatial`]).
    pub fn row_order(mut self, order: RowOrder) -> Self {
        self.row_order = order;
        self
    }

    /// The mode.
    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// Adds a section builder that runs after the indexes' own (tests of custom sections).
    #[cfg(feature = "testing")]
    pub fn section_builder(mut self, builder: Arc<dyn SectionBuilder>) -> Self {
        self.extra.push(builder);
        self
    }

    /// The storage engine's options: the section builders of the indexes, then the extra ones.
    pub(crate) fn store_options(&self) -> StoreOptions {
        let mut builders: Vec<Arc<dyn SectionBuilder>> = Vec::new();
        if let Some(g) = self.indexes.graph {
            builders.push(Arc::new(HnswSectionBuilder {
                params: HnswParams {
                    m: g.m,
                    ef_construction: g.ef_construction,
                    ..HnswParams::default()
                },
                min_rows: g.min_rows,
            }));
        }
        if self.indexes.int8 {
            builders.push(Arc::new(QuantSectionBuilder));
        }
        builders.extend(self.extra.iter().cloned());
        StoreOptions {
            section_builders: builders,
            row_order: self.row_order,
        }
    }
}
