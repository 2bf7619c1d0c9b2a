//! The HNSW graph as a storage [`SectionBuilder`]: every segment a commit or compaction
//! writes gets a graph section ([`SECTION_KIND`]) and its walk hints ([`HINTS_KIND`])
//! unless it is smaller than `min_rows`.

use super::layout::GraphView;
use super::{
    build_graph, hop_slack, write_hints, HnswParams, RoutingSample, HINTS_KIND, ROUTING_STRIDE,
    SECTION_KIND,
};
use crate::storage::{ExtraSections, SectionBuildError, SectionBuilder, Segment};

/// Builds the graph section of each new segment, and its walk hints (the hop slack and the
/// routing sample a first walk would otherwise work out).
///
/// Segments with fewer than `min_rows` rows get no graph: they are scanned exactly, which
/// is as fast as a graph walk at that size and has recall 1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswSectionBuilder {
    /// Build parameters (`ef_search` is recorded only as a default for searches).
    pub params: HnswParams,
    /// Segments below this many rows are left without a graph.
    pub min_rows: usize,
}

/// Default for [`HnswSectionBuilder::min_rows`].
pub const DEFAULT_MIN_ROWS: usize = 1_000;

impl Default for HnswSectionBuilder {
    fn default() -> Self {
        HnswSectionBuilder {
            params: HnswParams::default(),
            min_rows: DEFAULT_MIN_ROWS,
        }
    }
}

impl SectionBuilder for HnswSectionBuilder {
    fn build(
        &self,
        _collection: &str,
        segment: &Segment,
    ) -> Result<ExtraSections, SectionBuildError> {
        if segment.len() < self.min_rows.max(1) {
            return Ok(Vec::new());
        }
        let (vectors, dim) = (segment.vectors(), segment.dim());
        let bytes = build_graph(vectors, dim, &self.params)?;
        let n = u32::try_from(segment.len())
            .map_err(|_| format!("{} rows exceed a graph's u32 ids", segment.len()))?;
        let view = GraphView::parse(&bytes, n).map_err(|e| format!("built graph: {e}"))?;
        let slack = hop_slack(&view, vectors, dim);
        let sample = RoutingSample::build(vectors, dim, n, ROUTING_STRIDE);
        let hints = write_hints(slack, &sample, vectors, dim);
        Ok(vec![(SECTION_KIND, bytes), (HINTS_KIND, hints)])
    }
}
