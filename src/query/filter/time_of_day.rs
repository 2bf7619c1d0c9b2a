//! [`TimeOfDay`]: rows whose time falls in a window of the UTC day (e.g. 06:00-09:00, or
//! 22:00-02:00 across midnight).

use super::{Cardinality, SegmentStats};
use crate::query::QueryError;

const DAY: i64 = 86_400;

/// A window of the UTC day, `from..=to` in seconds after midnight; `from > to` wraps
/// midnight. Rows without a time never pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    from: i64,
    to: i64,
}

impl TimeOfDay {
    /// Validates both ends in `0..86400`.
    pub fn new(from_s: i64, to_s: i64) -> Result<TimeOfDay, QueryError> {
        if let Some(t) = [from_s, to_s].into_iter().find(|t| !(0..DAY).contains(t)) {
            return Err(QueryError::TimeOfDay(t));
        }
        Ok(TimeOfDay {
            from: from_s,
            to: to_s,
        })
    }

    /// Whether a time falls in the window.
    pub fn contains(&self, t: Option<i64>) -> bool {
        t.is_some_and(|t| {
            let s = t.rem_euclid(DAY);
            if self.from <= self.to {
                (self.from..=self.to).contains(&s)
            } else {
                s >= self.from || s <= self.to
            }
        })
    }

    /// The window's share of the day, over the rows that have a time.
    pub(crate) fn estimate(&self, stats: &SegmentStats<'_>) -> Cardinality {
        let Some(t) = stats.times else {
            return stats.unknown();
        };
        let len = (self.to - self.from).rem_euclid(DAY) + 1;
        Cardinality::between(0, t.count, t.count as f64 * len as f64 / DAY as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_midnight() {
        let w = TimeOfDay::new(6 * 3600, 9 * 3600).unwrap();
        assert!(w.contains(Some(7 * 3600)) && !w.contains(Some(10 * 3600)) && !w.contains(None));
        assert!(w.contains(Some(DAY * 400 + 6 * 3600)) && w.contains(Some(-DAY + 8 * 3600)));
        let night = TimeOfDay::new(22 * 3600, 2 * 3600).unwrap();
        assert!(night.contains(Some(23 * 3600)) && night.contains(Some(3600)));
        assert!(!night.contains(Some(12 * 3600)));
        assert!(TimeOfDay::new(-1, 5).is_err() && TimeOfDay::new(0, DAY).is_err());
    }
}
