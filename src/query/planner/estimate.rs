//! The estimate stage: how many rows of the segment may pass a filter, before any row is
//! read (each condition's own estimate over the segment's block rectangles and time span,
//! combined as a conjunction: see [`Filter::estimate`]).

use super::segment::SegmentIndex;
use crate::query::filter::{Cardinality, Cover, Filter};

/// What the planner knows before reading a row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Estimate<'f> {
    /// The rows that may pass the filter and be alive.
    pub rows: Cardinality,
    /// The cover of the spatial condition expected to pass the fewest rows (`None`: no
    /// condition on location).
    pub driver: Option<&'f Cover>,
}

impl SegmentIndex<'_> {
    /// The estimate of the rows passing `filter` and alive. With deleted rows (a liveness
    /// test) no row is sure to pass: the minimum is 0.
    pub(super) fn estimate<'f>(&self, filter: &'f Filter) -> Estimate<'f> {
        if filter.is_empty() {
            let n = u64::from(self.n);
            let rows = match self.live {
                None => Cardinality::exactly(n),
                Some(_) => Cardinality::between(0, n, n as f64),
            };
            return Estimate { rows, driver: None };
        }
        let (c, driver) = filter.estimate(&self.stats());
        let rows = match self.live {
            None => c,
            Some(_) => Cardinality::between(0, c.max, c.expected),
        };
        Estimate { rows, driver }
    }
}
