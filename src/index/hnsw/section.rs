//! The HNSW graph as a storage [`SectionBuilder`]: every segment a commit or compaction
//! writes gets a graph section ([`SECTION_KIND`]) unless it is smaller than `min_rows`.

use super::calibrate::{calibrate, Calibration, CALIBRATION_KIND};
use super::{build_graph, GraphView, HnswParams, SECTION_KIND};
use crate::storage::{ExtraSections, SectionBuildError, SectionBuilder, Segment};

/// Builds the graph section of each new segment.
///
/// Segments with fewer than `min_rows` rows get no graph: they are scanned exactly, which
/// is as fast as a graph walk at that size and has recall 1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswSectionBuilder {
    /// Build parameters (`ef_search` is recorded only as a default for searches).
    pub params: HnswParams,
    /// Segments below this many rows are left without a graph.
    pub min_rows: usize,
    /// When set, each graph gets a calibration section ([`CALIBRATION_KIND`]): the
    /// smallest `ef` reaching the target recall on a sample of the segment's own rows, which
    /// searches then use as their default beam (see [`super::calibrate`]). Off by default:
    /// the segment's own rows are easier queries than real ones, so the beam it picks is
    /// too narrow for them (`bench_recall --ef-auto` measures the benchmark queries at it).
    pub calibration: Option<Calibration>,
}

/// Default for [`HnswSectionBuilder::min_rows`].
pub const DEFAULT_MIN_ROWS: usize = 1_000;

impl Default for HnswSectionBuilder {
    fn default() -> Self {
        HnswSectionBuilder {
            params: HnswParams::default(),
            min_rows: DEFAULT_MIN_ROWS,
            calibration: None,
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
        let bytes = build_graph(segment.vectors(), segment.dim(), &self.params)?;
        let mut out = Vec::with_capacity(2);
        if let Some(cal) = &self.calibration {
            let n = u32::try_from(segment.len())?;
            let view = GraphView::parse(&bytes, n)?;
            if let Some(c) = calibrate(&view, segment.vectors(), segment.dim(), cal) {
                out.push((CALIBRATION_KIND, c.to_bytes()));
            }
        }
        out.insert(0, (SECTION_KIND, bytes));
        Ok(out)
    }
}
