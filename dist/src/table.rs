//! SQL over a catalog: the table function `sat2cap_search(query, k [, exact])` and the table
//! `shards`.
//!
//! `query` is a text (embedded by the text encoder the session was given) or the id of an
//! item in the catalog (search by example). Conditions on `lat`, `lon` (`>=`, `>`, `<=`,
//! `<`, `=`, `BETWEEN`) and `time` in the `WHERE` clause are searched within: the `k` rows
//! returned are the best among the rows that pass, and shards outside them are not read.
//! Other conditions filter the `k` rows afterwards.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_expr::expressions::col;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::catalog::Catalog;
use crate::exec::{result_schema, ShardJob, ShardTask};
use crate::plan::{job_plan, plan_over, shard_tasks};
use crate::spec::SearchSpec;

/// Turns a text into a query vector (the CLIP text tower, in the CLI).
pub type TextEmbedder = Arc<dyn Fn(&str) -> std::result::Result<Vec<f32>, String> + Send + Sync>;

/// The rows of one search over a catalog, as a table: [`result_schema`]'s columns.
#[derive(Debug, Clone)]
pub struct SearchTable {
    catalog: Arc<Catalog>,
    spec: SearchSpec,
}

impl SearchTable {
    /// The search `spec` over `catalog`.
    pub fn new(catalog: Arc<Catalog>, spec: SearchSpec) -> SearchTable {
        SearchTable { catalog, spec }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The search, before the pushed-down conditions.
    pub fn spec(&self) -> &SearchSpec {
        &self.spec
    }
}

/// Bounds on `lat`, `lon` and `time` a conjunction of comparisons sets (inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    lat: (f64, f64),
    lon: (f64, f64),
    time: (i64, i64),
    /// Whether a condition on `time` was seen (one covering every instant still drops the
    /// rows without a time).
    timed: bool,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            lat: (f64::NEG_INFINITY, f64::INFINITY),
            lon: (f64::NEG_INFINITY, f64::INFINITY),
            time: (i64::MIN, i64::MAX),
            timed: false,
        }
    }
}

fn float(v: &ScalarValue) -> Option<f64> {
    let f = match v {
        ScalarValue::Float64(Some(f)) => *f,
        ScalarValue::Float32(Some(f)) => f64::from(*f),
        ScalarValue::Int64(Some(i)) => *i as f64,
        ScalarValue::Int32(Some(i)) => f64::from(*i),
        ScalarValue::Int16(Some(i)) => f64::from(*i),
        ScalarValue::Int8(Some(i)) => f64::from(*i),
        ScalarValue::UInt32(Some(i)) => f64::from(*i),
        ScalarValue::UInt16(Some(i)) => f64::from(*i),
        ScalarValue::UInt8(Some(i)) => f64::from(*i),
        _ => return None,
    };
    (!f.is_nan()).then_some(f)
}

fn integer(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int64(Some(i)) => Some(*i),
        ScalarValue::Int32(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int16(Some(i)) => Some(i64::from(*i)),
        ScalarValue::Int8(Some(i)) => Some(i64::from(*i)),
        ScalarValue::UInt32(Some(i)) => Some(i64::from(*i)),
        ScalarValue::UInt16(Some(i)) => Some(i64::from(*i)),
        ScalarValue::UInt8(Some(i)) => Some(i64::from(*i)),
        ScalarValue::UInt64(Some(i)) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn column(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

impl Bounds {
    fn and(self, o: Bounds) -> Bounds {
        Bounds {
            lat: (self.lat.0.max(o.lat.0), self.lat.1.min(o.lat.1)),
            lon: (self.lon.0.max(o.lon.0), self.lon.1.min(o.lon.1)),
            time: (self.time.0.max(o.time.0), self.time.1.min(o.time.1)),
            timed: self.timed || o.timed,
        }
    }

    /// The bounds `name op value` sets, exactly (`None`: not one this can search within).
    fn compare(name: &str, op: Operator, value: &ScalarValue) -> Option<Bounds> {
        let mut b = Bounds::default();
        match name {
            "lat" | "lon" => {
                let v = float(value)?;
                let (lo, hi) = match op {
                    Operator::Eq => (v, v),
                    Operator::GtEq => (v, f64::INFINITY),
                    Operator::Gt => (v.next_up(), f64::INFINITY),
                    Operator::LtEq => (f64::NEG_INFINITY, v),
                    Operator::Lt => (f64::NEG_INFINITY, v.next_down()),
                    _ => return None,
                };
                *if name == "lat" {
                    &mut b.lat
                } else {
                    &mut b.lon
                } = (lo, hi);
            }
            "time" => {
                b.timed = true;
                let v = integer(value)?;
                b.time = match op {
                    Operator::Eq => (v, v),
                    Operator::GtEq => (v, i64::MAX),
                    Operator::Gt => (v.checked_add(1)?, i64::MAX),
                    Operator::LtEq => (i64::MIN, v),
                    Operator::Lt => (i64::MIN, v.checked_sub(1)?),
                    _ => return None,
                };
            }
            _ => return None,
        }
        Some(b)
    }

    /// The bounds a filter sets, when it is a conjunction of comparisons of `lat`, `lon`
    /// or `time` with constants.
    fn of(e: &Expr) -> Option<Bounds> {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    return Some(Bounds::of(left)?.and(Bounds::of(right)?));
                }
                if let (Some(c), Some(v)) = (column(left), literal(right)) {
                    Bounds::compare(c, *op, v)
                } else if let (Some(v), Some(c)) = (literal(left), column(right)) {
                    Bounds::compare(c, op.swap()?, v)
                } else {
                    None
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let c = column(expr)?;
                let lo = Bounds::compare(c, Operator::GtEq, literal(low)?)?;
                Some(lo.and(Bounds::compare(c, Operator::LtEq, literal(high)?)?))
            }
            _ => None,
        }
    }

    /// The bounds on lat and lon within the globe. Stored longitudes are below 180 (a
    /// point given at 180 is stored at -180), so an upper bound of 180 is the largest
    /// value below it: a box ending at 180 would also hold the points at -180.
    fn clamped(&self) -> ((f64, f64), (f64, f64)) {
        (
            (self.lat.0.max(-90.0), self.lat.1.min(90.0)),
            (self.lon.0.max(-180.0), self.lon.1.min(180f64.next_down())),
        )
    }

    /// Whether these bounds leave a range of lat or lon of a single value (`lat = 5`,
    /// `lat >= 90`): no box can hold it, so the condition is not searched within.
    fn degenerate(&self) -> bool {
        let (lat, lon) = self.clamped();
        lat.0 == lat.1 || lon.0 == lon.1
    }

    /// `spec` searched within these bounds (`Ok(None)`: no row can pass).
    fn apply(&self, mut spec: SearchSpec) -> Result<Option<SearchSpec>> {
        let (lat, lon) = self.clamped();
        if lat.0 > lat.1 || lon.0 > lon.1 || self.time.0 > self.time.1 {
            return Ok(None);
        }
        if self.degenerate() {
            return plan_err!(
                "sat2cap_search cannot search within a single latitude or longitude \
                 (lat [{}, {}], lon [{}, {}]); give a range",
                lat.0,
                lat.1,
                lon.0,
                lon.1
            );
        }
        if lat != (-90.0, 90.0) || lon != (-180.0, 180f64.next_down()) {
            spec.region.bbox = Some([lon.0, lat.0, lon.1, lat.1]);
        }
        if self.timed {
            let (t0, t1) = spec
                .region
                .time
                .map_or(self.time, |[a, b]| (a.max(self.time.0), b.min(self.time.1)));
            if t0 > t1 {
                return Ok(None);
            }
            spec.region.time = Some([t0, t1]);
        }
        Ok(Some(spec))
    }
}

#[async_trait]
impl TableProvider for SearchTable {
    fn schema(&self) -> SchemaRef {
        result_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // A search given a box already keeps it; further boxes filter its rows afterwards.
        let can = self.spec.region.bbox.is_none();
        Ok(filters
            .iter()
            .map(|f| match Bounds::of(f) {
                Some(b) if can && !b.degenerate() => TableProviderFilterPushDown::Exact,
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut bounds = Bounds::default();
        for f in filters {
            match Bounds::of(f) {
                Some(b) if self.spec.region.bbox.is_none() => bounds = bounds.and(b),
                _ => return plan_err!("sat2cap_search cannot search within {f}"),
            }
        }
        let plan = match bounds.apply(self.spec.clone())? {
            None => Arc::new(EmptyExec::new(result_schema())) as Arc<dyn ExecutionPlan>,
            Some(spec) => {
                let tasks = shard_tasks(&self.catalog, &spec)
                    .map_err(|e| DataFusionError::Plan(e.to_string()))?;
                plan_over(tasks, Arc::new(spec))?
            }
        };
        project(plan, projection)
    }
}

/// The rows of a job run on given shards (a map, an ingest), as a table:
/// [`ShardJob::schema`]'s columns. For running a job through a session (a Ballista
/// cluster's): no conditions are pushed into it.
#[derive(Debug, Clone)]
pub struct JobTable<J> {
    tasks: Vec<ShardTask>,
    spec: J,
}

impl<J: ShardJob + Clone> JobTable<J> {
    /// The job `spec` on `tasks`.
    pub fn new(tasks: Vec<ShardTask>, spec: J) -> JobTable<J> {
        JobTable { tasks, spec }
    }

    /// The shards the job runs on.
    pub fn tasks(&self) -> &[ShardTask] {
        &self.tasks
    }

    /// The job.
    pub fn spec(&self) -> &J {
        &self.spec
    }
}

#[async_trait]
impl<J: ShardJob + Clone> TableProvider for JobTable<J> {
    fn schema(&self) -> SchemaRef {
        self.spec.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(f) = filters.first() {
            return plan_err!("a {} table cannot filter by {f}", J::NAME);
        }
        project(
            job_plan(self.tasks.clone(), Arc::new(self.spec.clone()))?,
            projection,
        )
    }
}

/// `plan` with only the columns `projection` names (all without one).
fn project(
    plan: Arc<dyn ExecutionPlan>,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(p) = projection else {
        return Ok(plan);
    };
    let schema = plan.schema();
    let exprs = p
        .iter()
        .map(|&i| {
            let name = schema.field(i).name();
            Ok((col(name, &schema)?, name.clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// The table function `sat2cap_search(query, k [, exact])` over one catalog.
#[derive(Clone)]
pub struct SearchFunction {
    catalog: Arc<Catalog>,
    embed: Option<TextEmbedder>,
}

impl std::fmt::Debug for SearchFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchFunction")
            .field("catalog", &self.catalog.dir)
            .field("text", &self.embed.is_some())
            .finish()
    }
}

impl SearchFunction {
    /// The function over `catalog`; texts are embedded by `embed` (without one, only item
    /// ids can be queries).
    pub fn new(catalog: Arc<Catalog>, embed: Option<TextEmbedder>) -> SearchFunction {
        SearchFunction { catalog, embed }
    }
}

impl TableFunctionImpl for SearchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let usage = "sat2cap_search(query, k [, exact]): query is a text or an item id, k an integer >= 1, exact a boolean";
        if !(2..=3).contains(&exprs.len()) {
            return plan_err!("{usage}; got {} arguments", exprs.len());
        }
        let vector = match literal(&exprs[0]) {
            Some(ScalarValue::Utf8(Some(text)))
            | Some(ScalarValue::LargeUtf8(Some(text)))
            | Some(ScalarValue::Utf8View(Some(text))) => match &self.embed {
                Some(embed) => off_the_runtime(|| embed(text)).map_err(DataFusionError::Plan)?,
                None => {
                    return plan_err!(
                        "sat2cap_search: this session has no text encoder; query by item id"
                    )
                }
            },
            Some(v) => match integer(v).and_then(|i| u64::try_from(i).ok()) {
                Some(id) => self.vector_of(id)?,
                None => return plan_err!("{usage}; query is {v}"),
            },
            None => return plan_err!("{usage}; query is {}", exprs[0]),
        };
        let k = match literal(&exprs[1]).and_then(integer) {
            Some(k) if k >= 1 => k as usize,
            _ => return plan_err!("{usage}; k is {}", exprs[1]),
        };
        let exact = match exprs.get(2).map(literal) {
            None => false,
            Some(Some(ScalarValue::Boolean(Some(b)))) => *b,
            Some(_) => return plan_err!("{usage}; exact is {}", exprs[2]),
        };
        let spec = SearchSpec {
            exact,
            ..SearchSpec::new(vector, k)
        };
        Ok(Arc::new(SearchTable::new(self.catalog.clone(), spec)))
    }
}

impl SearchFunction {
    fn vector_of(&self, id: u64) -> Result<Vec<f32>> {
        match off_the_runtime(|| self.catalog.vector_of(id)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => plan_err!("sat2cap_search: no item has id {id}"),
            Err(e) => Err(DataFusionError::Plan(e.to_string())),
        }
    }
}

/// The catalog's shards as a table: name, path, rows, region and extent edges.
pub fn shards_table(cat: &Catalog) -> Result<MemTable> {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    let schema = Arc::new(Schema::new(vec![
        f("name", DataType::Utf8, false),
        f("path", DataType::Utf8, false),
        f("rows", DataType::UInt64, false),
        f("west", DataType::Float64, false),
        f("south", DataType::Float64, false),
        f("east", DataType::Float64, false),
        f("north", DataType::Float64, false),
        f("extent_west", DataType::Float64, true),
        f("extent_south", DataType::Float64, true),
        f("extent_east", DataType::Float64, true),
        f("extent_north", DataType::Float64, true),
    ]));
    let s = &cat.shards;
    let region = |i: usize| {
        Arc::new(Float64Array::from_iter_values(
            s.iter().map(|x| x.region[i]),
        ))
    };
    let extent = |i: usize| {
        Arc::new(Float64Array::from_iter(
            s.iter().map(|x| x.extent.map(|e| e[i])),
        ))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                s.iter().map(|x| x.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                s.iter().map(|x| x.path.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(s.iter().map(|x| x.rows))),
            region(0),
            region(1),
            region(2),
            region(3),
            extent(0),
            extent(1),
            extent(2),
            extent(3),
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

/// Registers `sat2cap_search` and `shards` for `catalog` in `ctx`.
pub fn register(
    ctx: &SessionContext,
    catalog: Arc<Catalog>,
    embed: Option<TextEmbedder>,
) -> Result<()> {
    ctx.register_table("shards", Arc::new(shards_table(&catalog)?))?;
    ctx.register_udtf(
        "sat2cap_search",
        Arc::new(SearchFunction::new(catalog, embed)),
    );
    Ok(())
}

/// Where a catalog file is, for plans sent to other processes.
pub(crate) fn catalog_file(cat: &Catalog) -> PathBuf {
    cat.file.clone()
}

/// Runs `f`, blocking work (a text through the encoder, shards opened and read) that SQL
/// planning calls from an async task: on a multi-threaded Tokio runtime the worker hands
/// its other tasks to another thread while `f` runs, so they are not held up.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
