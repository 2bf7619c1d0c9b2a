//! What a search derives from one segment beyond its raw columns (validated points, the time
//! column, the spatial index, the parsed graph and int8 layouts), computed by the first search
//! that touches the segment and kept with it in the snapshots that share it.

use std::sync::{Arc, OnceLock};

use crate::geo::Point;
use crate::index::hnsw::{
    hints_header, hop_slack, GraphLayout, GraphView, RoutingSample, HINTS_KIND, SECTION_KIND,
};
use crate::index::quant::{QuantLayout, QUANT_KIND};
use crate::index::spatial::SpatialIndex;
use crate::query::filter::TimeStats;
use crate::query::planner::NO_TIME;
use crate::query::QueryError;
use crate::storage::{advice, CorruptError, Segment};

/// The lazily computed [`Derived`] data of one segment (or why it could not be).
#[derive(Debug, Default)]
pub struct Prepared(OnceLock<Result<Arc<Derived>, QueryError>>);

impl Prepared {
    /// Where the derived data lives once computed (`None` before): tests check that
    /// snapshots share it.
    #[cfg(feature = "testing")]
    pub(crate) fn address(&self) -> Option<usize> {
        match self.0.get() {
            Some(Ok(d)) => Some(Arc::as_ptr(d) as usize),
            _ => None,
        }
    }

    /// The derived data of `seg`, computed on first use.
    pub(crate) fn get(&self, seg: &Segment) -> Result<Arc<Derived>, QueryError> {
        self.0
            .get_or_init(|| Derived::compute(seg).map(Arc::new))
            .clone()
    }
}

/// A column a search reads: in place in the segment's mapped bytes (checked once), or a
/// decoded copy (big-endian hosts, or bytes that cannot be viewed in place).
enum Column<T> {
    InPlace,
    Owned(Vec<T>),
}

impl<T> Column<T> {
    /// The values, given the column's bytes viewed in place (which the segment gives again
    /// on every call; empty if it no longer could, which the slice-length checks refuse).
    fn get<'s>(&'s self, in_place: Option<&'s [T]>) -> &'s [T] {
        match self {
            Column::Owned(v) => v,
            Column::InPlace => in_place.unwrap_or(&[]),
        }
    }
}

/// What a query needs from a segment beyond its raw columns.
pub(crate) struct Derived {
    points: Column<Point>,
    times: Option<Column<i64>>,
    /// The span of the rows' times (what the planner's time estimates read).
    pub time_stats: Option<TimeStats>,
    pub rtree: SpatialIndex,
    /// The routing sample of unfiltered walks, built by the first one.
    pub routing: OnceLock<RoutingSample>,
    /// The graph's hop slack (how far default walks go), worked out by the first one.
    pub slack: OnceLock<Option<f32>>,
    /// The graph's layout, when the segment has a graph section: parsed and validated by
    /// the first walk (a batch answered by exact scans never reads the section).
    pub graph: Option<OnceLock<Result<GraphLayout, QueryError>>>,
    /// The int8 copy of the vectors, when the segment has one (validated).
    pub quant: Option<QuantLayout>,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field("points in place", &matches!(self.points, Column::InPlace))
            .field("graph", &self.graph.is_some())
            .field("int8", &self.quant.is_some())
            .finish()
    }
}

/// The index sections of `seg` parsed and checked against it: the int8 copy (`None` when
/// absent).
struct Sections {
    quant: Option<QuantLayout>,
}

fn corrupt(seg: &Segment, what: &str, e: impl std::fmt::Display) -> QueryError {
    QueryError::Corrupt(format!("{}: {what}: {e}", seg.file()))
}

/// The index section kind and what is wrong with it.
struct SectionError {
    kind: u32,
    what: String,
}

fn parse_sections(seg: &Segment, graph: bool) -> Result<Sections, QueryError> {
    parse_sections_checked(seg, graph).map_err(|e| corrupt(seg, section_name(e.kind), e.what))
}

/// The graph section of `seg` parsed and checked against it: whole (`full`, as `verify`
/// checks it) or all but level 0's lists, which the walks check as they read them
/// ([`GraphView::open`]).
fn parse_graph(seg: &Segment, bytes: &[u8], full: bool) -> Result<GraphLayout, SectionError> {
    let err = |e: String| SectionError {
        kind: SECTION_KIND,
        what: e,
    };
    let n = seg.len();
    let n32 = u32::try_from(n).map_err(|_| err(format!("{n} rows exceed u32")))?;
    let view = if full {
        GraphView::parse(bytes, n32)
    } else {
        GraphView::open(bytes, n32)
    };
    let view = view.map_err(|e| err(e.to_string()))?;
    if view.dim() as usize != seg.dim() {
        return Err(err(format!(
            "graph has dim {}, segment {}",
            view.dim(),
            seg.dim()
        )));
    }
    Ok(view.layout(bytes))
}

fn section_name(kind: u32) -> &'static str {
    match kind {
        SECTION_KIND => "graph section",
        QUANT_KIND => "int8 section",
        HINTS_KIND => "walk hints section",
        _ => "index section",
    }
}

fn parse_sections_checked(seg: &Segment, with_graph: bool) -> Result<Sections, SectionError> {
    let err = |kind: u32| move |e: String| SectionError { kind, what: e };
    let n = seg.len();
    if let (true, Some(bytes)) = (with_graph, seg.section(SECTION_KIND)) {
        let layout = parse_graph(seg, bytes, true)?;
        if let Some(hints) = seg.section(HINTS_KIND) {
            check_hints(seg, &layout, bytes, hints).map_err(err(HINTS_KIND))?;
        }
    }
    let quant = match seg.section(QUANT_KIND) {
        None => None,
        Some(bytes) => Some(QuantLayout::parse(bytes, n, seg.dim()).map_err(err(QUANT_KIND))?),
    };
    Ok(Sections { quant })
}

/// Checks a walk hints section against what it stands for: the hop slack of the graph
/// (`layout` over `graph`) and the routing sample of the vectors, recomputed.
fn check_hints(seg: &Segment, layout: &GraphLayout, graph: &[u8], hints: &[u8]) -> Result<(), String> {
    let view = layout.view(graph).ok_or("graph section changed after parsing")?;
    let (n, dim) = (view.n(), seg.dim());
    let header = hints_header(hints, n, dim)?;
    let sample = RoutingSample::from_hints(hints, n, dim)?;
    if !sample.matches(seg.vectors(), dim, n) {
        return Err("the routing sample differs from the vectors' rows".into());
    }
    let slack = hop_slack(&view, seg.vectors(), dim);
    if slack.map(f32::to_bits) != header.slack.map(f32::to_bits) {
        return Err(format!("slack {:?}, the graph's is {slack:?}", header.slack));
    }
    Ok(())
}

impl Derived {
    fn compute(seg: &Segment) -> Result<Derived, QueryError> {
        let n = seg.len();
        // The columns below are read whole, now (the segment's file is otherwise read
        // here and there: see `Segment::open`).
        let _in_order = (
            seg.points_in_place().map(advice::InOrder::new),
            seg.times_in_place().map(advice::InOrder::new),
        );
        // The points in place when every row is valid; else decoded, which names the first
        // bad row.
        let points = match seg.points_in_place() {
            Some(p) if p.iter().all(Point::is_valid) => Column::InPlace,
            _ => Column::Owned(seg.points().map_err(|e| QueryError::Corrupt(e.to_string()))?),
        };
        let times = seg.has_times().then(|| match seg.times_in_place() {
            Some(_) => Column::InPlace,
            None => Column::Owned((0..n).map(|r| seg.time(r).unwrap_or(NO_TIME)).collect()),
        });
        let time_stats = times
            .as_ref()
            .map(|t| TimeStats::of(t.get(seg.times_in_place()), NO_TIME));
        let rtree = SpatialIndex::build(points.get(seg.points_in_place()));
        let Sections { quant } = parse_sections(seg, false)?;
        let graph = seg.section(SECTION_KIND).map(|_| OnceLock::new());
        Ok(Derived {
            points,
            times,
            time_stats,
            rtree,
            quant,
            routing: OnceLock::new(),
            slack: OnceLock::new(),
            graph,
        })
    }

    /// The rows' points (`seg` is the segment this was derived from).
    pub(crate) fn points<'s>(&'s self, seg: &'s Segment) -> &'s [Point] {
        self.points.get(seg.points_in_place())
    }

    /// The rows' times ([`NO_TIME`] for none), when the segment has a time column.
    pub(crate) fn times<'s>(&'s self, seg: &'s Segment) -> Option<&'s [i64]> {
        Some(self.times.as_ref()?.get(seg.times_in_place()))
    }
}

impl Derived {
    /// The graph layout of `seg` (the segment this was derived from), parsed and validated
    /// on first use (level 0's lists as walks read them); `None` when it has no graph
    /// section.
    pub(crate) fn graph_layout(&self, seg: &Segment) -> Option<Result<GraphLayout, QueryError>> {
        let cell = self.graph.as_ref()?;
        let bytes = seg.section(SECTION_KIND)?;
        Some(
            cell.get_or_init(|| {
                parse_graph(seg, bytes, false).map_err(|e| corrupt(seg, section_name(e.kind), e.what))
            })
            .clone(),
        )
    }
}

white_box! {
    /// Checks the index sections of `seg` (graph, int8 copy) as a search would
    /// parse them; the storage engine checked their checksums.
    fn verify_sections(seg: &Segment) -> Result<(), CorruptError> {
        parse_sections_checked(seg, true)
            .and_then(|sections| {
                let (Some(layout), Some(bytes)) = (sections.quant, seg.section(QUANT_KIND)) else {
                    return Ok(());
                };
                let what = |what: String| SectionError {
                    kind: QUANT_KIND,
                    what,
                };
                let view = layout
                    .view(bytes)
                    .ok_or_else(|| what("section changed after parsing".into()))?;
                view.check_rows(|r| seg.vector(r)).map_err(what)
            })
            .map_err(|e| {
            let at = seg
                .sections()
                .iter()
                .find(|s| s.kind == e.kind)
                .map_or(0, |s| s.offset);
            CorruptError::new(seg.file(), at, format!("{}: {}", section_name(e.kind), e.what))
        })
    }
}
