//! The choose stage: the plan of a request over one segment, first from the estimate (before
//! any row is read), then, for the requests it leaves open, from the exact candidate count.

use super::enumerate::{Route, RowSet};
use super::estimate::Estimate;
use super::segment::SegmentIndex;
use super::{
    FlatReason, SearchRequest, LINEAR_ABOVE, SCATTERED_ROW_COST, SMALL_PROBE, WIDEN_BELOW,
};
use crate::index::hnsw::MAX_EF;
use crate::query::filter::Cardinality;

/// What to do before reading any row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Choice {
    /// Scan every row that passes the filter exactly (asked for, no graph, or at most the
    /// flat threshold's worth of rows can pass).
    Flat(FlatReason),
    /// Walk the graph with no filter.
    Walk,
    /// Enumerate the candidates and decide by their count; `probe`: enumerate a few first
    /// (a tiny set then ends there without the full count).
    Count {
        /// Stop after [`SMALL_PROBE`] rows first, unless the set is complete by then.
        probe: bool,
    },
}

/// The rows under which a candidate set is always scanned exactly: `max(flat_max_rows,
/// flat_max_fraction * n)` (`cap`), at least `k` (`threshold`).
pub(super) struct Thresholds {
    pub cap: usize,
    pub threshold: usize,
}

impl SegmentIndex<'_> {
    pub(super) fn thresholds(&self, k: usize) -> Thresholds {
        let n = self.n as usize;
        let p = &self.params;
        let cap = (p.flat_max_rows as usize).max((p.flat_max_fraction * n as f64) as usize);
        Thresholds {
            cap,
            threshold: cap.max(k),
        }
    }

    /// The plan before any row is read.
    pub(super) fn choose(&self, req: &SearchRequest, estimate: &Cardinality, k: usize) -> Choice {
        let unfiltered = req.filter.is_empty() && self.live.is_none();
        match (self.has_graph(), req.exact) {
            (_, true) => return Choice::Flat(FlatReason::Requested),
            (false, false) => return Choice::Flat(FlatReason::NoGraph),
            (true, false) if unfiltered => return Choice::Walk,
            (true, false) => {}
        }
        let t = self.thresholds(k);
        if estimate.max <= t.threshold as u64 {
            return Choice::Flat(FlatReason::FewCandidates);
        }
        // A probe can only end the search when the whole set fits in it.
        Choice::Count {
            probe: estimate.min <= SMALL_PROBE.min(t.threshold) as u64,
        }
    }

    /// How the enumeration goes through the filter's rows: every row when no condition is
    /// on location; the block rectangles when rows are stored in a spatial order, or when
    /// surely more than 1/[`LINEAR_ABOVE`] of the rows pass (one pass then beats the
    /// R-tree); else the R-tree over the spatial condition expected to pass the fewest rows,
    /// which leaves it for the pass once it has found that many. (The expected count is not
    /// used: over rows in no spatial order it is the cover's share of the area, which
    /// clustered data belies.)
    pub(super) fn route<'f>(&self, estimate: &Estimate<'f>) -> Route<'f> {
        let Some(cover) = estimate.driver else {
            return Route::Rows;
        };
        let many = estimate.rows.min > u64::from(self.n) / LINEAR_ABOVE as u64;
        if self.rtree().uses_blocks() || many {
            Route::Blocks
        } else {
            Route::TreeThenBlocks(cover)
        }
    }

    /// After the count: the exact scan when the set is small, or lies in long runs whose
    /// sequential scan costs under 4 times the threshold's scattered one; `None`: walk.
    pub(super) fn after_count(&self, set: &RowSet, k: usize) -> Option<FlatReason> {
        let t = self.thresholds(k);
        if set.rows.len() <= t.threshold {
            Some(FlatReason::FewCandidates)
        } else if set.scan_cost() <= t.cap.saturating_mul(SCATTERED_ROW_COST) {
            Some(FlatReason::Contiguous)
        } else {
            None
        }
    }

    /// The beam of a filtered walk where a share `s` of the rows passes: at least
    /// `filtered_ef_min`; widened for restrictive filters only, to `ef / sqrt(s)` (capped
    /// at `max_ef_widening` times): at or above [`WIDEN_BELOW`] of the rows passing, the walk
    /// meets matching rows about as often as the unfiltered one meets rows.
    pub(super) fn filtered_ef(&self, base_ef: usize, s: f64) -> usize {
        let base_ef = base_ef.max(self.params.filtered_ef_min).min(MAX_EF);
        if s >= WIDEN_BELOW {
            return base_ef;
        }
        let widened = (base_ef as f64 / s.sqrt()).ceil() as usize;
        widened
            .min(base_ef.saturating_mul(self.params.max_ef_widening.max(1)))
            .clamp(base_ef, MAX_EF)
    }
}
