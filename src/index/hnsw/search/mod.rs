//! Read-only searcher over a [`GraphView`]: greedy descent through the upper levels (or, given
//! seeds, none: they are the way in), then an `ef`-bounded beam on level 0, optionally
//! filtered.
//!
//! Filtered mode: rows that fail the filter are still expanded (the graph stays navigable)
//! but never enter the result set; the beam only stops once it holds `ef` matching rows and
//! no unexpanded candidate beats the worst of them. The fewer rows match, the further the walk
//! goes, which is the widening restrictive filters need; callers (the planner) also raise `ef`
//! as the estimated selectivity falls.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use half::f16;

use super::layout::{GraphError, GraphView};
use super::RoutingSample;
use crate::index::flat::{dot_f16_f32, prefetch, row_vector, Hit, TopK};
use crate::index::quant::Int8Rows;
use crate::storage::advice;

/// Candidate ordered best-first (max-heap pops the highest score, then lowest row).
#[derive(Clone, Copy)]
struct Best(Hit);

impl PartialEq for Best {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Best {}
impl PartialOrd for Best {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Best {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.rank_cmp(&self.0)
    }
}

/// Reusable search state: the visited set (one bit a row: at a few hundred thousand rows it
/// stays in the nearest caches, where a walk tests it for every neighbour it meets) and the
/// candidate heap. One per thread.
#[derive(Default)]
pub struct SearchScratch {
    visited: Vec<u64>,
    /// Rows of the graph walked now: rows from `n` on are never new.
    n: usize,
    /// The words of `visited` this walk set, while few enough that clearing them one by
    /// one is cheaper than clearing the whole set (`None` past that).
    touched: Option<Vec<u32>>,
    candidates: BinaryHeap<Best>,
    fresh: Vec<u32>,
}

impl SearchScratch {
    /// Empty scratch; grows to the graph's size on first use.
    pub fn new() -> SearchScratch {
        SearchScratch::default()
    }

    fn begin(&mut self, n: usize) {
        self.n = n;
        let words = n.div_ceil(64);
        match self.touched.take() {
            Some(mut t) if self.visited.len() >= words => {
                for &w in &t {
                    self.visited[w as usize] = 0;
                }
                t.clear();
                self.touched = Some(t);
            }
            other => {
                self.visited.clear();
                self.visited.resize(words, 0);
                let mut t = other.unwrap_or_default();
                t.clear();
                self.touched = Some(t);
            }
        }
        self.candidates.clear();
    }

    /// Marks `row` visited; returns whether it was new (false for a row past the set).
    #[inline]
    fn visit(&mut self, row: u32) -> bool {
        if row as usize >= self.n {
            return false;
        }
        let (w, bit) = ((row / 64) as usize, 1u64 << (row % 64));
        let words = self.visited.len();
        let Some(word) = self.visited.get_mut(w) else {
            return false;
        };
        if *word & bit != 0 {
            return false;
        }
        if *word == 0 {
            // A word set for the first time: remembered for clearing, until clearing the
            // whole set is cheaper (one word in eight set).
            if let Some(t) = &mut self.touched {
                if t.len() * 8 < words {
                    t.push(w as u32);
                } else {
                    self.touched = None;
                }
            }
        }
        *word |= bit;
        true
    }
}

thread_local! {
    static SCRATCH: RefCell<SearchScratch> = RefCell::new(SearchScratch::new());
}

/// What a bounded walk ([`search_bounded`]) did.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkOutcome {
    /// The hits found, best first (all of them are valid results even when the walk was cut
    /// short, but then they need not be the best).
    pub hits: Vec<Hit>,
    /// Rows scored (dot products) on level 0, seeds included.
    pub scored: u64,
    /// How many of the scored rows passed the filter (all of them without one).
    pub matched: u64,
    /// The best score of any row scored on level 0 or on the way down, passing the filter
    /// or not (`-inf` when nothing was scored). Far above the best hit's score, it says the
    /// filter excludes the query's own neighbourhood.
    pub best_score: f32,
    /// False when the walk stopped because it reached its budget of scored rows.
    pub complete: bool,
    /// The damage the walk met in the graph's level-0 lists (offsets out of order or
    /// range, a neighbour id `>= n`: what [`GraphView::open_level0`] leaves unchecked), where it
    /// stopped; the hits are then not an answer.
    pub damage: Option<GraphError>,
}

/// How far a walk goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effort {
    /// The classic beam: the best `ef` rows found are kept, and the walk ends when no
    /// unexpanded candidate beats the worst of them.
    Beam(usize),
    /// A beam bounded by score instead of width: the best `k` rows are kept, and every
    /// candidate scoring at least the `k`-th best minus `slack` is expanded. A query whose
    /// neighbourhood is flat (many rows scoring alike, as for a text query among place
    /// names) is walked further than one with a clear top `k`; see [`hop_slack`](super::hop_slack)
    /// for the slack the planner uses.
    Slack(f32),
}

/// [`search_filtered_seeded`] that gives up once it has scored more than `max_scored` rows
/// on level 0 ([`WalkOutcome::complete`] is then false). A filtered walk whose matching rows
/// lie far from the query in vector space has to expand every closer row first; the planner
/// bounds that cost by the exact scan's and settles such queries with the exact scan.
#[allow(clippy::too_many_arguments)]
pub fn search_bounded<F: Fn(u32) -> bool>(
    view: &GraphView<'_>,
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    k: usize,
    effort: Effort,
    filter: Option<F>,
    seeds: &[u32],
    max_scored: usize,
    int8: Option<&Int8Rows<'_>>,
) -> WalkOutcome {
    let run = |s: &mut SearchScratch| {
        walk(
            s,
            view,
            Rows {
                vectors,
                dim,
                query,
                int8,
            },
            k,
            effort,
            filter.as_ref(),
            seeds,
            max_scored,
        )
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => run(&mut s),
        // Re-entrant call from inside a filter closure: use a fresh scratch.
        Err(_) => run(&mut SearchScratch::new()),
    })
}

/// The `keep` best rows of `sample` for a walk over `vectors` (`dim` wide) toward `query`
/// that passes only the rows `member` passes, scored as the walk scores them: by `int8` when
/// it steers the walk (which then keeps any damage it met for the walk's check), or by
/// `sample_int8`, the same query's scorer over the sample rows' own int8 copy (row `i` is
/// sample row `i`: the same codes, read from one place), when there is one.
#[allow(clippy::too_many_arguments)]
pub fn routing_seeds(
    sample: &RoutingSample,
    vectors: &[f16],
    dim: usize,
    query: &[f32],
    int8: Option<&Int8Rows<'_>>,
    sample_int8: Option<&Int8Rows<'_>>,
    member: impl Fn(u32) -> bool,
    keep: usize,
) -> Vec<u32> {
    let own = sample_int8.filter(|_| int8.is_some());
    let rows = Rows {
        vectors,
        dim,
        query,
        int8,
    };
    sample.seeds(
        query,
        keep,
        |i, row| {
            member(row)
                .then(|| match own {
                    Some(own) => own.approx(i),
                    None => rows.steer(row),
                })
                .flatten()
                .map(|(s, _)| s)
        },
        |i, row| match (member(row), own) {
            (false, _) => {}
            (true, Some(own)) => own.prefetch(i),
            (true, None) => rows.prefetch(row),
        },
    )
}

/// The rows a walk scores: the f16 vectors (`dim` wide) against `query`, and optionally
/// the int8 copy, which then steers the walk (see [`Int8Rows`]).
#[derive(Clone, Copy)]
struct Rows<'a, 'q> {
    vectors: &'a [f16],
    dim: usize,
    query: &'a [f32],
    int8: Option<&'a Int8Rows<'q>>,
}

impl Rows<'_, '_> {
    /// The f16 score of `row` (`None`: no such row).
    #[inline]
    fn exact(&self, row: u32) -> Option<f32> {
        let v = row_vector(self.vectors, self.dim, row);
        (v.len() == self.dim).then(|| dot_f16_f32(v, self.query))
    }

    /// The score the walk steers by and how far above it the f16 score may lie: the int8
    /// copy's approximation and bound, or the f16 score and 0.
    #[inline]
    fn steer(&self, row: u32) -> Option<(f32, f32)> {
        match self.int8 {
            Some(q) => q.approx(row),
            None => self.exact(row).map(|s| (s, 0.0)),
        }
    }

    #[inline]
    fn prefetch(&self, row: u32) {
        match self.int8 {
            Some(q) => q.prefetch(row),
            None => prefetch(row_vector(self.vectors, self.dim, row), usize::MAX),
        }
    }

    /// Starts reading what [`Rows::steer`] reads of `row` from disk.
    fn read_soon(&self, row: u32) {
        match self.int8 {
            Some(q) => q.read_soon(row),
            None => advice::read_soon(row_vector(self.vectors, self.dim, row)),
        }
    }
}

/// Tells a walk whether its rows are coming from disk: a step (a hop, a descent step) that
/// took longer than [`Pace::SLOW`] waited for a read. The step after it first asks for the
/// pages of the rows it will score and of the list likely read next ([`Rows::read_soon`]),
/// so that they are read together instead of one after another; the asking itself is not
/// timed, and a step back under the mark stops it. In memory a step takes a few
/// microseconds, and the check is one clock read.
struct Pace {
    last: Instant,
}

impl Pace {
    /// A step this long waited for the disk: a page read takes about 100 us on a cloud
    /// volume and a step reads up to a few dozen; a step in memory takes a few us, or
    /// some tens where it is the first to touch its pages in this process.
    const SLOW: Duration = Duration::from_micros(100);

    fn new() -> Pace {
        Pace {
            last: Instant::now(),
        }
    }

    /// Ends a step: whether the next one should ask ahead.
    #[inline]
    fn step(&mut self) -> bool {
        let now = Instant::now();
        let slow = now.duration_since(self.last) > Self::SLOW;
        self.last = now;
        slow
    }

    /// Starts the step's clock again (after the step asked for its pages).
    fn asked(&mut self) {
        self.last = Instant::now();
    }
}

/// The best `k` of a beam's `hits` (scored by `int8`) by their f16 scores: only the hits
/// whose int8 upper bound reaches the `k`-th best lower bound can be among them, and only
/// those are read from the f16 vectors (a beam of hundreds needs a few dozen); the same
/// rows and scores as scoring every hit. Also how many rows it read.
fn rescore(rows: Rows<'_, '_>, int8: &Int8Rows<'_>, hits: Vec<Hit>, k: usize) -> (Vec<Hit>, usize) {
    let bounded: Vec<(Hit, f32)> = hits
        .into_iter()
        .filter_map(|h| int8.bound(h.row).map(|b| (h, b)))
        .collect();
    let mut lows: Vec<f32> = bounded.iter().map(|(h, b)| h.score - b).collect();
    let bar = match k {
        1.. if lows.len() >= k => {
            let (_, kth, _) = lows.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            Some(*kth).filter(|x| !x.is_nan())
        }
        _ => None,
    };
    let reach = reaching(&bounded, bar);
    let ask = |row: u32| prefetch(row_vector(rows.vectors, rows.dim, row), usize::MAX);
    let mut exact = TopK::new(k);
    fetched_ahead(&reach, ask, |row| {
        if let Some(score) = rows.exact(row) {
            exact.push(Hit { row, score });
        }
    });
    (exact.into_sorted(), reach.len())
}

/// The rows of `bounded` (hits with their int8 bounds) whose upper bound reaches `bar`
/// (all of them without one).
fn reaching(bounded: &[(Hit, f32)], bar: Option<f32>) -> Vec<u32> {
    (bounded.iter())
        .filter(|(h, b)| bar.is_none_or(|bar| h.score + b >= bar))
        .map(|(h, _)| h.row)
        .collect()
}

/// How many rows ahead of the one being scored a walk asks for: a row of the int8 copy is
/// a few cache lines (6 at 384 dims), and a core keeps a few dozen line fills in flight.
const PREFETCH_AHEAD: usize = 4;

/// Calls `f` on each of `rows` in order, each asked for (`ask`, a hint to load it)
/// [`PREFETCH_AHEAD`] rows before: rows lying apart then load while earlier ones are
/// scored, and no more are asked for at once than the core can have in flight.
#[inline]
pub(super) fn fetched_ahead(rows: &[u32], ask: impl Fn(u32), mut f: impl FnMut(u32)) {
    rows.iter().take(PREFETCH_AHEAD).for_each(|&row| ask(row));
    for (i, &row) in rows.iter().enumerate() {
        if let Some(&later) = rows.get(i + PREFETCH_AHEAD) {
            ask(later);
        }
        f(row);
    }
}

#[allow(clippy::too_many_arguments)]
fn walk<F: Fn(u32) -> bool + ?Sized>(
    scratch: &mut SearchScratch,
    view: &GraphView<'_>,
    rows: Rows<'_, '_>,
    k: usize,
    effort: Effort,
    filter: Option<&F>,
    seeds: &[u32],
    max_scored: usize,
) -> WalkOutcome {
    let empty = WalkOutcome {
        hits: Vec::new(),
        scored: 0,
        matched: 0,
        best_score: f32::NEG_INFINITY,
        complete: true,
        damage: None,
    };
    let Some(entry) = view.entry() else {
        return empty;
    };
    if k == 0 || rows.dim == 0 {
        return empty;
    }
    // The rows kept, and how far below the worst of them a candidate may score and still
    // be expanded.
    let (keep, slack) = match effort {
        Effort::Beam(ef) => (ef.max(k), None),
        Effort::Slack(s) => (k, Some(if s.is_finite() { s.max(0.0) } else { 0.0 })),
    };
    // Whether `hit` is worth expanding, against the worst row kept.
    let worth = |hit: &Hit, worst: &Hit| match slack {
        None => hit.rank_cmp(worst) == Ordering::Less,
        Some(s) => hit.score >= worst.score - s,
    };
    let score = |row: u32| rows.steer(row).map(|(s, _)| s);
    // A beam steered by the int8 copy keeps its `ef` rows by their int8 scores and scores
    // them from the f16 vectors at the end (the best `k` of `ef` do not hinge on the
    // small int8 error at the `ef`-th); a walk bounded by slack keeps only `k` rows, so
    // each row that may rank is scored from the f16 vectors as it comes.
    let rescore_at_end = rows.int8.is_some() && slack.is_none();
    // Puts a matching row into the results when it may rank: scored from the f16 vectors
    // unless its steering score is already that (or they are scored at the end).
    let admit = |results: &mut TopK, row: u32, (s, bound): (f32, f32)| {
        if bound == 0.0 || rescore_at_end {
            results.push(Hit { row, score: s });
        } else if results.threshold().is_none_or(|w| s + bound >= w.score) {
            if let Some(score) = rows.exact(row) {
                results.push(Hit { row, score });
            }
        }
    };
    let mut pace = Pace::new();
    let Some(mut cur_score) = score(entry) else {
        return empty;
    };
    let mut cur = entry;
    // Greedy descent: move to the best neighbour until none improves, level by level
    // (seeds replace it: see `search_filtered_seeded`).
    let top = if seeds.is_empty() { view.n_levels() } else { 1 };
    for level in (1..top).rev() {
        loop {
            let mut improved = false;
            if pace.step() {
                view.neighbours(level, cur)
                    .iter()
                    .for_each(|nb| rows.read_soon(nb));
                pace.asked();
            }
            for nb in view.neighbours(level, cur).iter() {
                if let Some(s) = score(nb) {
                    if s > cur_score {
                        cur_score = s;
                        cur = nb;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }
    // Level-0 beam.
    scratch.begin(view.n() as usize);
    let matches = |row: u32| filter.is_none_or(|f| f(row));
    let mut results = TopK::new(keep);
    scratch.visit(cur);
    let start = Hit {
        row: cur,
        score: cur_score,
    };
    scratch.candidates.push(Best(start));
    let mut matched: usize = 0;
    let mut best_score = cur_score;
    if matches(cur) {
        matched += 1;
        if let Some(steer) = rows.steer(cur) {
            admit(&mut results, cur, steer);
        }
    }
    let mut scored: usize = 1;
    let mut complete = true;
    let mut damage = None;
    let n = view.n();
    if pace.step() {
        seeds.iter().for_each(|&row| rows.read_soon(row));
        pace.asked();
    }
    for &row in seeds {
        if row >= view.n() || !scratch.visit(row) {
            continue;
        }
        let Some(steer) = rows.steer(row) else {
            continue;
        };
        scored += 1;
        best_score = best_score.max(steer.0);
        scratch.candidates.push(Best(Hit {
            row,
            score: steer.0,
        }));
        if matches(row) {
            matched += 1;
            admit(&mut results, row, steer);
        }
    }
    while let Some(Best(c)) = scratch.candidates.pop() {
        if let Some(worst) = results.threshold() {
            if c.score < worst.score - slack.unwrap_or(0.0) {
                break;
            }
        }
        if scored > max_scored {
            complete = false;
            break;
        }
        // The list of the candidate likely next is fetched while this one is scored.
        let from_disk = pace.step();
        if let Some(Best(next)) = scratch.candidates.peek() {
            view.prefetch_level0(next.row);
            if from_disk {
                view.read_soon_level0(next.row);
            }
        }
        // Unvisited neighbours first, their vectors prefetched, then the dot products: the
        // memory loads of the whole list overlap instead of stalling one by one.
        scratch.fresh.clear();
        let list = match view.level0(c.row) {
            Ok(list) => list,
            Err(e) => {
                damage = Some(e);
                break;
            }
        };
        if let Some((i, id)) = list.iter().enumerate().find(|&(_, id)| id >= n) {
            damage = Some(view.bad_neighbour(c.row, i, id));
            break;
        }
        for nb in list.iter() {
            if scratch.visit(nb) {
                scratch.fresh.push(nb);
            }
        }
        if from_disk {
            scratch.fresh.iter().for_each(|&nb| rows.read_soon(nb));
            pace.asked();
        }
        // The rows are fetched a few ahead of the one scored: all of them at once would ask
        // for more cache lines than the core can have in flight, and the asking would wait.
        let candidates = &mut scratch.candidates;
        fetched_ahead(
            &scratch.fresh,
            |nb| rows.prefetch(nb),
            |nb| {
                let Some(steer) = rows.steer(nb) else {
                    return;
                };
                scored += 1;
                best_score = best_score.max(steer.0);
                let hit = Hit {
                    row: nb,
                    score: steer.0,
                };
                let expand = results.threshold().is_none_or(|w| worth(&hit, &w));
                let ok = matches(nb);
                matched += usize::from(ok);
                if expand {
                    // Where its list lies is loaded now: by the time it is expanded, finding the
                    // list no longer waits on memory.
                    view.prefetch_offset(nb);
                    candidates.push(Best(hit));
                }
                if ok {
                    admit(&mut results, nb, steer);
                }
            },
        );
    }
    let mut hits = results.into_sorted();
    if let Some(int8) = rows.int8.filter(|_| rescore_at_end) {
        hits = rescore(rows, int8, hits, k).0;
    }
    hits.truncate(k);
    WalkOutcome {
        hits,
        scored: scored as u64,
        matched: matched as u64,
        best_score,
        complete,
        damage,
    }
}

#[cfg(any(test, feature = "testing"))]
mod testing;
#[cfg(any(test, feature = "testing"))]
pub use testing::{search, search_with};
#[cfg(feature = "testing")]
pub use testing::{search_filtered, search_filtered_seeded};

#[cfg(test)]
mod tests;
