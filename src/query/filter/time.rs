//! [`TimeRange`]: an inclusive range of row times.

use super::{Cardinality, SegmentStats};
use crate::query::QueryError;

/// Inclusive time range over row timestamps (seconds or any i64 unit the caller uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    t0: i64,
    t1: i64,
}

impl TimeRange {
    /// Validates `t0 <= t1`.
    pub fn new(t0: i64, t1: i64) -> Result<TimeRange, QueryError> {
        if t0 > t1 {
            return Err(QueryError::TimeRange { t0, t1 });
        }
        Ok(TimeRange { t0, t1 })
    }

    /// Whether an optional timestamp lies in `[t0, t1]` (`None` never does).
    pub fn contains(&self, t: Option<i64>) -> bool {
        t.is_some_and(|t| t >= self.t0 && t <= self.t1)
    }

    /// The first and last instants, inclusive.
    pub fn bounds(&self) -> (i64, i64) {
        (self.t0, self.t1)
    }

    /// How many rows of a segment may have a time in the range, from the segment's time
    /// span (uniform within it).
    pub(crate) fn estimate(&self, stats: &SegmentStats<'_>) -> Cardinality {
        let Some(t) = stats.times else {
            return stats.unknown();
        };
        if t.count == 0 || self.t1 < t.min || self.t0 > t.max {
            return Cardinality::exactly(0);
        }
        if self.t0 <= t.min && self.t1 >= t.max {
            return Cardinality::exactly(t.count);
        }
        let span = (t.max as f64 - t.min as f64) + 1.0;
        let inside = (self.t1.min(t.max) as f64 - self.t0.max(t.min) as f64) + 1.0;
        Cardinality::between(0, t.count, t.count as f64 * (inside / span).clamp(0.0, 1.0))
    }
}
