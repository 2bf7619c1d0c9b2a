//! What the cardinality estimates know about a segment (its block rectangles and time span)
//! and what they return.

use super::Cover;
use crate::index::spatial::{BlockRects, Coverage, Rect};

/// How many rows of a segment pass a filter: surely at least `min`, at most `max`, about
/// `expected` (rows spread evenly over each block's rectangle and over the segment's time
/// span; predicates independent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cardinality {
    /// Rows that surely pass.
    pub min: u64,
    /// Rows expected to pass.
    pub expected: f64,
    /// Rows that may pass.
    pub max: u64,
}

impl Cardinality {
    /// Exactly `n` rows.
    pub(crate) fn exactly(n: u64) -> Cardinality {
        Cardinality {
            min: n,
            expected: n as f64,
            max: n,
        }
    }

    /// Between `min` and `max` rows, about `expected` (clamped into the bounds).
    pub(crate) fn between(min: u64, max: u64, expected: f64) -> Cardinality {
        Cardinality {
            min,
            expected: expected.clamp(min as f64, max as f64),
            max,
        }
    }
}

/// The time span of a segment's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeStats {
    /// Rows that have a time.
    pub count: u64,
    /// Earliest time (meaningless when `count` is 0).
    pub min: i64,
    /// Latest time.
    pub max: i64,
}

impl TimeStats {
    /// The span of the times in a column (`NO_TIME` = none).
    pub(crate) fn of(times: &[i64], no_time: i64) -> TimeStats {
        let mut s = TimeStats {
            count: 0,
            min: i64::MAX,
            max: i64::MIN,
        };
        for &t in times.iter().filter(|&&t| t != no_time) {
            s.count += 1;
            s.min = s.min.min(t);
            s.max = s.max.max(t);
        }
        s
    }
}

/// What the estimates know about a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentStats<'a> {
    /// Rows in the segment.
    pub rows: u64,
    /// Bounding rectangles of its rows, block by block (`None`: unknown).
    pub blocks: Option<&'a BlockRects>,
    /// Whether those rectangles are compact (rows in a spatial order); otherwise each spans
    /// most of the world and only the group level is read.
    pub compact: bool,
    /// The span of its rows' times (`None`: unknown).
    pub times: Option<TimeStats>,
}

impl SegmentStats<'_> {
    /// Anything from none to every row, about half.
    pub(crate) fn unknown(&self) -> Cardinality {
        Cardinality::between(0, self.rows, self.rows as f64 / 2.0)
    }

    /// The estimate of a spatial predicate covered by `cover` whose block test is
    /// `coverage`, from the block rectangles: a group of blocks outside adds nothing, a
    /// group covered adds all its rows; in a group met, each block the cover meets adds its
    /// rows to `max` and their share under the cover to `expected` (rectangle arithmetic
    /// only: the exact block test is left to the enumeration).
    pub(crate) fn spatial_estimate(
        &self,
        cover: &Cover,
        coverage: impl Fn(&Rect) -> Coverage,
    ) -> Cardinality {
        let Some(blocks) = self.blocks else {
            return self.unknown();
        };
        let (mut min, mut max, mut expected) = (0u64, 0u64, 0f64);
        if !self.compact {
            // Every rectangle spans most of the world: only their overlap with the cover
            // says anything (and no exact block test is worth its cost).
            for (rect, rows) in blocks.groups().filter(|(r, _)| cover.meets(r)) {
                max += u64::from(rows);
                expected += f64::from(rows) * cover.overlap(&rect);
            }
            return Cardinality::between(0, max, expected);
        }
        for (g, (rect, rows)) in blocks.groups().enumerate() {
            match coverage(&rect) {
                Coverage::Outside => {}
                Coverage::Covered => {
                    min += u64::from(rows);
                    max += u64::from(rows);
                    expected += f64::from(rows);
                }
                Coverage::Partial => {
                    for (b, rows) in blocks.blocks_of(g).filter(|(b, _)| cover.meets(b)) {
                        max += u64::from(rows);
                        expected += f64::from(rows) * cover.overlap(&b);
                    }
                }
            }
        }
        Cardinality::between(min, max, expected)
    }
}
