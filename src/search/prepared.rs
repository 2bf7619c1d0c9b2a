//! What a search derives from one segment beyond its raw columns (validated points, the time
//! column, the spatial index, the parsed graph and int8 layouts), computed by the first search
//! that touches the segment (each part by the first that needs it: an unfiltered search
//! reads no point) and kept with it in the snapshots that share it.

use std::sync::{Arc, OnceLock};

use crate::geo::Point;
use crate::index::hnsw::{
    hints_header, hop_slack, GraphLayout, GraphView, RoutingSample, HINTS_KIND, SECTION_KIND,
};
use crate::index::quant::{QuantLayout, QuantView, QUANT_KIND};
use crate::index::spatial::SpatialIndex;
use crate::query::filter::TimeStats;
use crate::query::planner::NO_TIME;
use crate::query::QueryError;
use crate::storage::resident::ResidentBytes;
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
    /// The validated points and their R-tree, made by the first search with a filter or a
    /// geographic ranking.
    spatial: OnceLock<Result<Spatial, QueryError>>,
    times: Option<Column<i64>>,
    /// The span of the rows' times (what the planner's time estimates read), worked out by
    /// the first search with a filter.
    time_stats: OnceLock<Option<TimeStats>>,
    /// The routing sample of unfiltered walks, built by the first one.
    pub routing: OnceLock<RoutingSample>,
    /// The graph's hop slack (how far default walks go), worked out by the first one.
    pub slack: OnceLock<Option<f32>>,
    /// The graph's layout, when the segment has a graph section: parsed and validated by
    /// the first walk (a batch answered by exact scans never reads the section).
    pub graph: Option<OnceLock<Result<GraphLayout, QueryError>>>,
    /// The graph's layout with its upper levels, parsed by the first walk without seeds
    /// (with no routing sample: it descends), when the segment has a graph section.
    pub graph_levels: Option<OnceLock<Result<GraphLayout, QueryError>>>,
    /// The int8 copy of the vectors, when the segment has one (its shape validated).
    pub quant: Option<QuantLayout>,
    /// Whether its rows' scales and norms are sound, found by the first exact scan on it
    /// (walks check the rows they read).
    pub quant_factors: OnceLock<Result<(), String>>,
    /// A copy of the int8 section in the process's memory, in huge pages where the kernel
    /// gives them ([`Derived::make_resident`]), which searches then read instead of the
    /// mapped file (`None` inside: the copy could not be made).
    quant_resident: OnceLock<Option<ResidentBytes>>,
}

/// The rows' points, every one valid, and the R-tree over them.
struct Spatial {
    points: Column<Point>,
    rtree: SpatialIndex,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field(
                "spatial",
                &self
                    .spatial
                    .get()
                    .map(|s| s.as_ref().map(|s| s.rtree.len())),
            )
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

/// How much of a graph section [`parse_graph`] reads and checks.
#[derive(Clone, Copy)]
enum GraphPart {
    /// All of it, as `verify` checks it ([`GraphView::parse`]).
    Whole,
    /// The upper levels; level 0's lists are checked by the walks as they read them
    /// ([`GraphView::open`]: for a walk that descends).
    Levels,
    /// Level 0 alone, its lists checked by the walks as they read them
    /// ([`GraphView::open_level0`]: the planner's walks start from seeds).
    Level0,
}

/// The graph section of `seg` parsed and checked against it, as far as `part` says.
fn parse_graph(seg: &Segment, bytes: &[u8], part: GraphPart) -> Result<GraphLayout, SectionError> {
    let err = |e: String| SectionError {
        kind: SECTION_KIND,
        what: e,
    };
    let n = seg.len();
    let n32 = u32::try_from(n).map_err(|_| err(format!("{n} rows exceed u32")))?;
    let view = match part {
        GraphPart::Whole => GraphView::parse(bytes, n32),
        GraphPart::Levels => GraphView::open(bytes, n32),
        GraphPart::Level0 => GraphView::open_level0(bytes, n32),
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
        let layout = parse_graph(seg, bytes, GraphPart::Whole)?;
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
fn check_hints(
    seg: &Segment,
    layout: &GraphLayout,
    graph: &[u8],
    hints: &[u8],
) -> Result<(), String> {
    let view = layout
        .view(graph)
        .ok_or("graph section changed after parsing")?;
    let (n, dim) = (view.n(), seg.dim());
    let header = hints_header(hints, n, dim)?;
    let sample = RoutingSample::from_hints(hints, n, dim)?;
    if !sample.matches(hints, seg.vectors(), dim, n) {
        return Err("the routing sample differs from the vectors' rows".into());
    }
    let slack = hop_slack(&view, seg.vectors(), dim);
    if slack.map(f32::to_bits) != header.slack.map(f32::to_bits) {
        return Err(format!(
            "slack {:?}, the graph's is {slack:?}",
            header.slack
        ));
    }
    Ok(())
}

impl Derived {
    fn compute(seg: &Segment) -> Result<Derived, QueryError> {
        let n = seg.len();
        let times = seg.has_times().then(|| match seg.times_in_place() {
            Some(_) => Column::InPlace,
            None => Column::Owned((0..n).map(|r| seg.time(r).unwrap_or(NO_TIME)).collect()),
        });
        let Sections { quant } = parse_sections(seg, false)?;
        let graph = seg.section(SECTION_KIND).map(|_| OnceLock::new());
        let graph_levels = seg.section(SECTION_KIND).map(|_| OnceLock::new());
        Ok(Derived {
            spatial: OnceLock::new(),
            times,
            time_stats: OnceLock::new(),
            quant,
            quant_factors: OnceLock::new(),
            quant_resident: OnceLock::new(),
            routing: OnceLock::new(),
            slack: OnceLock::new(),
            graph,
            graph_levels,
        })
    }

    /// The rows' points, every one valid, and their R-tree (`seg` is the segment this was
    /// derived from): checked and built by the first call, which reads the whole column.
    pub(crate) fn spatial<'s>(
        &'s self,
        seg: &'s Segment,
    ) -> Result<(&'s [Point], &'s SpatialIndex), QueryError> {
        let spatial = self.spatial.get_or_init(|| {
            // Read whole, now (the segment's file is otherwise read here and there: see
            // `Segment::open`).
            let _in_order = seg.points_in_place().map(advice::InOrder::new);
            // The points in place when every row is valid (checked as the rectangles are
            // made); else decoded, which names the first bad row.
            if let Some(rtree) = seg.points_in_place().and_then(SpatialIndex::build_if_valid) {
                return Ok(Spatial {
                    points: Column::InPlace,
                    rtree,
                });
            }
            let points = Column::Owned(
                seg.points()
                    .map_err(|e| QueryError::Corrupt(e.to_string()))?,
            );
            let rtree = SpatialIndex::build(points.get(None));
            Ok(Spatial { points, rtree })
        });
        match spatial {
            Ok(s) => Ok((s.points.get(seg.points_in_place()), &s.rtree)),
            Err(e) => Err(e.clone()),
        }
    }

    /// Everything searches of `seg` (the segment this was derived from) compute on first
    /// use, computed now.
    pub(crate) fn prepare_all(&self, seg: &Segment) -> Result<(), QueryError> {
        self.spatial(seg)?;
        self.time_stats(seg);
        if let Some(graph) = self.graph_layout(seg, false) {
            graph?;
        }
        if let Some(view) = self.quant_view(seg)? {
            view.check_factors_once(&self.quant_factors)
                .map_err(|e| corrupt(seg, "int8 section", e))?;
        }
        Ok(())
    }

    /// Copies the int8 section of `seg` (the segment this was derived from) into the
    /// process's memory, where searches then read it (see [`crate::storage::resident`]),
    /// unless an earlier call did. Returns the bytes of memory the copy holds (0: no int8
    /// section, or no copy could be made, and searches read the mapped file).
    pub(crate) fn make_resident(&self, seg: &Segment) -> usize {
        let copy = self.quant_resident.get_or_init(|| {
            let bytes = seg.section(QUANT_KIND).filter(|_| self.quant.is_some())?;
            let _in_order = advice::InOrder::new(bytes);
            ResidentBytes::copy_of(bytes)
        });
        copy.as_ref().map_or(0, ResidentBytes::memory)
    }

    /// The int8 copy of `seg` (the segment this was derived from), when it has one: read
    /// from the resident copy when [`Derived::make_resident`] made one (the same bytes),
    /// else from the mapped file.
    pub(crate) fn quant_view<'s>(
        &'s self,
        seg: &'s Segment,
    ) -> Result<Option<QuantView<'s>>, QueryError> {
        let (Some(layout), Some(mapped)) = (&self.quant, seg.section(QUANT_KIND)) else {
            return Ok(None);
        };
        let bytes = match self.quant_resident.get() {
            Some(Some(copy)) => copy.bytes(),
            _ => mapped,
        };
        match layout.view(bytes) {
            Some(view) => Ok(Some(view)),
            None => Err(corrupt(seg, "int8 section", "changed size")),
        }
    }

    /// The point of `row`: from the checked column when a search has made it, else read
    /// and checked alone (an unfiltered search reads only its results' points).
    pub(crate) fn point(&self, seg: &Segment, row: usize) -> Result<Point, QueryError> {
        let checked = match self.spatial.get() {
            Some(Ok(s)) => s.points.get(seg.points_in_place()).get(row).copied(),
            _ => None,
        };
        match checked {
            Some(p) => Ok(p),
            None => seg
                .point(row)
                .map_err(|e| QueryError::Corrupt(e.to_string())),
        }
    }

    /// The span of the rows' times, when the segment has a time column: worked out by the
    /// first call, which reads the whole column.
    pub(crate) fn time_stats(&self, seg: &Segment) -> Option<TimeStats> {
        *self.time_stats.get_or_init(|| {
            let times = self.times(seg)?;
            let _in_order = advice::InOrder::new(times);
            Some(TimeStats::of(times, NO_TIME))
        })
    }

    /// The rows' times ([`NO_TIME`] for none), when the segment has a time column.
    pub(crate) fn times<'s>(&'s self, seg: &'s Segment) -> Option<&'s [i64]> {
        Some(self.times.as_ref()?.get(seg.times_in_place()))
    }
}

impl Derived {
    /// The graph layout of `seg` (the segment this was derived from), level 0 alone
    /// (`levels` false) or with its upper levels, parsed and validated on first use (level
    /// 0's lists as walks read them); `None` when it has no graph section.
    pub(crate) fn graph_layout(
        &self,
        seg: &Segment,
        levels: bool,
    ) -> Option<Result<GraphLayout, QueryError>> {
        let (cell, part) = match levels {
            false => (self.graph.as_ref()?, GraphPart::Level0),
            true => (self.graph_levels.as_ref()?, GraphPart::Levels),
        };
        let bytes = seg.section(SECTION_KIND)?;
        Some(
            cell.get_or_init(|| {
                parse_graph(seg, bytes, part)
                    .map_err(|e| corrupt(seg, section_name(e.kind), e.what))
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
