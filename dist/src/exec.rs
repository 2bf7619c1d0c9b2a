//! [`ShardExec`]: the physical operator that runs a job on each shard, one output
//! partition per shard: [`ShardSearchExec`] one combined search (sorted best first),
//! [`ShardMapExec`] the scores of a map's tiles.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use datafusion::arrow::array::{
    Array, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::col;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::TryStreamExt;
use sat2cap::jobs::{Footprint, ScoredTile};
use sat2cap::{Db, OpenOptions, SearchHit};
use serde::{Deserialize, Serialize};

use crate::spec::{IngestSpec, MapSpec, SearchSpec};

/// The columns every search yields: id, score, lon, lat, time (nullable), payload
/// (nullable), shard.
pub fn result_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("score", DataType::Float32, false),
            Field::new("lon", DataType::Float64, false),
            Field::new("lat", DataType::Float64, false),
            Field::new("time", DataType::Int64, true),
            Field::new("payload", DataType::Utf8, true),
            Field::new("shard", DataType::Utf8, false),
        ]))
    });
    SCHEMA.clone()
}

/// The order of every result: score descending, then id ascending (the order a single
/// database returns).
pub fn result_ordering(schema: &Schema) -> Result<LexOrdering> {
    let desc = SortOptions {
        descending: true,
        nulls_first: false,
    };
    let asc = SortOptions {
        descending: false,
        nulls_first: false,
    };
    LexOrdering::new([
        PhysicalSortExpr::new(col("score", schema)?, desc),
        PhysicalSortExpr::new(col("id", schema)?, asc),
    ])
    .ok_or_else(|| DataFusionError::Internal("empty result ordering".into()))
}

/// One shard a search reads: where its database is and what the catalog says it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardTask {
    /// The shard's name (the `shard` column).
    pub name: String,
    /// The database folder.
    pub path: PathBuf,
    /// The collection.
    pub collection: String,
    /// Rows the catalog says the collection holds (checked when opened).
    pub rows: u64,
}

/// The columns of the shard list a [`ShardSearchExec`] reads: one row per shard.
pub fn shards_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("collection", DataType::Utf8, false),
            Field::new("rows", DataType::UInt64, false),
        ]))
    });
    SCHEMA.clone()
}

/// The shard list as a scan of one partition per shard (DataFusion's in-memory source):
/// the input of a [`ShardSearchExec`]. A distributed scheduler gives each task its own
/// partitions of it, so each shard is searched once, wherever the task runs.
pub fn shards_source(shards: &[ShardTask]) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = shards_schema();
    let partitions = shards
        .iter()
        .map(|s| {
            let path = s.path.to_str().ok_or_else(|| {
                DataFusionError::Plan(format!("{}: not a UTF-8 path", s.path.display()))
            })?;
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(vec![s.name.as_str()])),
                    Arc::new(StringArray::from(vec![path])),
                    Arc::new(StringArray::from(vec![s.collection.as_str()])),
                    Arc::new(UInt64Array::from(vec![s.rows])),
                ],
            )?;
            Ok(vec![batch])
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(MemorySourceConfig::try_new_exec(&partitions, schema, None)?)
}

/// The shards in batches of [`shards_schema`].
fn shard_rows(batches: &[RecordBatch]) -> Result<Vec<ShardTask>> {
    let mut out = Vec::new();
    for b in batches {
        let text = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("a shard list of another schema".into()))
        };
        let (name, path, coll) = (text(0)?, text(1)?, text(2)?);
        let rows = b
            .column(3)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| DataFusionError::Internal("a shard list of another schema".into()))?;
        for i in 0..b.num_rows() {
            out.push(ShardTask {
                name: name.value(i).to_string(),
                path: PathBuf::from(path.value(i)),
                collection: coll.value(i).to_string(),
                rows: rows.value(i),
            });
        }
    }
    Ok(out)
}

/// What a [`ShardExec`] does with the shards of one input partition: one batch of
/// [`ShardJob::schema`] from them.
pub trait ShardJob: fmt::Debug + Send + Sync + 'static {
    /// The operator's name in plans.
    const NAME: &'static str;
    /// The columns it yields.
    fn schema(&self) -> SchemaRef;
    /// The order of each output partition, if any.
    fn ordering(&self, schema: &Schema) -> Result<Option<LexOrdering>>;
    /// The settings in words, for plan displays.
    fn describe(&self) -> String;
    /// Runs on some shards (one, as planned), off the async runtime.
    fn run(&self, shards: &[ShardTask]) -> Result<RecordBatch>;
}

/// Runs a [`ShardJob`] on the shards its input lists ([`shards_source`]), one output
/// partition per input partition (one shard each, as planned).
#[derive(Debug)]
pub struct ShardExec<J: ShardJob> {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<J>,
    props: Arc<PlanProperties>,
}

/// The search of each shard: output partition `i` is the top `k` of the shards in input
/// partition `i`, sorted by score descending then id ascending. A sort-preserving merge with
/// `fetch = k` over it gives the top `k` of all shards.
pub type ShardSearchExec = ShardExec<SearchSpec>;

/// The map of each shard: every tile of the region with a score per query
/// ([`map_schema`]), in no particular order.
pub type ShardMapExec = ShardExec<MapSpec>;

/// The ingest of each shard: the tiles of its quadkey encoded into a new database; one row
/// a shard ([`ingest_schema`]).
pub type ShardIngestExec = ShardExec<IngestSpec>;

impl<J: ShardJob> ShardExec<J> {
    /// The job `spec` on the shards `input` lists (rows of [`shards_schema`]).
    pub fn try_new(input: Arc<dyn ExecutionPlan>, spec: Arc<J>) -> Result<ShardExec<J>> {
        if input.schema().fields() != shards_schema().fields() {
            return Err(DataFusionError::Plan(format!(
                "{} reads a shard list, not rows of {}",
                J::NAME,
                input.schema()
            )));
        }
        let schema = spec.schema();
        let eq = match spec.ordering(&schema)? {
            Some(o) => EquivalenceProperties::new_with_orderings(schema.clone(), [o]),
            None => EquivalenceProperties::new(schema.clone()),
        };
        let props = PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(ShardExec {
            input,
            spec,
            props: Arc::new(props),
        })
    }

    /// The job.
    pub fn spec(&self) -> &Arc<J> {
        &self.spec
    }
}

impl<J: ShardJob> DisplayAs for ShardExec<J> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", J::NAME, self.spec.describe())
    }
}

impl<J: ShardJob> ExecutionPlan for ShardExec<J> {
    fn name(&self) -> &'static str {
        J::NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // One task per shard list partition as planned: spreading the list over more
    // partitions gains nothing.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(ShardExec::try_new(input, self.spec.clone())?)),
            Err(c) => Err(DataFusionError::Internal(format!(
                "{} has one input, not {}",
                J::NAME,
                c.len()
            ))),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let spec = self.spec.clone();
        let fut = async move {
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            let shards = shard_rows(&batches)?;
            tokio::task::spawn_blocking(move || spec.run(&shards))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.spec.schema(),
            futures::stream::once(fut),
        )))
    }
}

impl ShardJob for SearchSpec {
    const NAME: &'static str = "ShardSearchExec";

    fn schema(&self) -> SchemaRef {
        result_schema()
    }

    fn ordering(&self, schema: &Schema) -> Result<Option<LexOrdering>> {
        result_ordering(schema).map(Some)
    }

    fn describe(&self) -> String {
        format!(
            "k={}, exact={}, filter={}",
            self.k,
            self.exact,
            self.describe_filter()
        )
    }

    fn run(&self, shards: &[ShardTask]) -> Result<RecordBatch> {
        search_shards(shards, self)
    }
}

/// The columns of a map over `queries` queries: id, lon, lat, the footprint's west, south,
/// east and north (null when the tile's payload gives none), then `score_0` ..
/// `score_{queries - 1}`.
pub fn map_schema(queries: usize) -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("lon", DataType::Float64, false),
        Field::new("lat", DataType::Float64, false),
    ];
    for side in ["west", "south", "east", "north"] {
        fields.push(Field::new(side, DataType::Float64, true));
    }
    for i in 0..queries {
        fields.push(Field::new(format!("score_{i}"), DataType::Float32, false));
    }
    Arc::new(Schema::new(fields))
}

impl ShardJob for MapSpec {
    const NAME: &'static str = "ShardMapExec";

    fn schema(&self) -> SchemaRef {
        map_schema(self.scores_per_tile())
    }

    fn ordering(&self, _schema: &Schema) -> Result<Option<LexOrdering>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!(
            "queries={}, region={}",
            self.queries.len(),
            self.region.describe()
        )
    }

    fn run(&self, shards: &[ShardTask]) -> Result<RecordBatch> {
        let region = self
            .region
            .filter()
            .map_err(|e| DataFusionError::Plan(e.to_string()))?;
        let at = match &self.at {
            Some(at) => {
                let model = crate::ingest::model(&at.model)
                    .map_err(|e| DataFusionError::Plan(e.to_string()))?;
                let wall = at
                    .wall()
                    .map_err(|e| DataFusionError::Plan(e.to_string()))?;
                Some((model, wall, at.hours.as_slice()))
            }
            None => None,
        };
        let mut tiles = Vec::new();
        for s in shards {
            let db = open_checked(s)?;
            let snap = db.snapshot();
            let (coll, queries) = (&s.collection, &self.queries);
            let found = match &at {
                None => sat2cap::jobs::score_tiles(&snap, coll, &region, queries),
                Some((model, wall, hours)) => sat2cap::jobs::score_tiles_at(
                    &snap,
                    coll,
                    &region,
                    queries,
                    model.as_ref(),
                    *wall,
                    hours,
                    &sat2cap::Silent,
                ),
            }
            .map_err(|e| fail(s, &e))?;
            tiles.extend(found);
        }
        tiles_batch(&tiles, self.scores_per_tile())
    }
}

/// Scored tiles as a batch of [`map_schema`].
fn tiles_batch(tiles: &[ScoredTile], queries: usize) -> Result<RecordBatch> {
    let side = |f: fn(&Footprint) -> f64| {
        Arc::new(Float64Array::from_iter(
            tiles.iter().map(|t| t.footprint.as_ref().map(f)),
        )) as Arc<dyn datafusion::arrow::array::Array>
    };
    let mut cols: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
        Arc::new(UInt64Array::from_iter_values(tiles.iter().map(|t| t.id))),
        Arc::new(Float64Array::from_iter_values(
            tiles.iter().map(|t| t.center.lon()),
        )),
        Arc::new(Float64Array::from_iter_values(
            tiles.iter().map(|t| t.center.lat()),
        )),
        side(|f| f.west),
        side(|f| f.south),
        side(|f| f.east),
        side(|f| f.north),
    ];
    for i in 0..queries {
        cols.push(Arc::new(Float32Array::from_iter_values(
            tiles
                .iter()
                .map(|t| t.scores.get(i).copied().unwrap_or(f32::NAN)),
        )));
    }
    Ok(RecordBatch::try_new(map_schema(queries), cols)?)
}

/// The tiles in batches of [`map_schema`] over `queries` queries.
pub fn tiles_of(batches: &[RecordBatch], queries: usize) -> Result<Vec<ScoredTile>> {
    let other = || DataFusionError::Internal("map rows of another schema".into());
    let mut out = Vec::new();
    for b in batches {
        if b.num_columns() != 7 + queries {
            return Err(other());
        }
        let f64s = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(other)
        };
        let ids = b
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(other)?;
        let (lon, lat) = (f64s(1)?, f64s(2)?);
        let sides = [f64s(3)?, f64s(4)?, f64s(5)?, f64s(6)?];
        let scores = (0..queries)
            .map(|i| {
                b.column(7 + i)
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(other)
            })
            .collect::<Result<Vec<_>>>()?;
        for r in 0..b.num_rows() {
            let center = sat2cap::Point::new(lat.value(r), lon.value(r))
                .map_err(|e| DataFusionError::Internal(format!("map row {r}: {e}")))?;
            let footprint = sides.iter().all(|s| s.is_valid(r)).then(|| Footprint {
                west: sides[0].value(r),
                south: sides[1].value(r),
                east: sides[2].value(r),
                north: sides[3].value(r),
            });
            out.push(ScoredTile {
                id: ids.value(r),
                center,
                footprint,
                scores: scores.iter().map(|s| s.value(r)).collect(),
            });
        }
    }
    Ok(out)
}

/// The top `k` of some shards as one batch, best first (score descending, id ascending).
fn search_shards(shards: &[ShardTask], spec: &SearchSpec) -> Result<RecordBatch> {
    if let [one] = shards {
        return search_shard(one, spec);
    }
    let mut hits = Vec::new();
    for s in shards {
        let db = open_checked(s)?;
        let snap = db.snapshot();
        let coll = snap.collection(&s.collection).map_err(|e| fail(s, &e))?;
        let found = spec.run(&coll).map_err(|e| fail(s, &e))?;
        hits.extend(found.hits.into_iter().map(|h| (h, s.name.as_str())));
    }
    hits.sort_by(|a, b| b.0.score.total_cmp(&a.0.score).then(a.0.id.cmp(&b.0.id)));
    hits.truncate(spec.k);
    let tagged: Vec<(&SearchHit, &str)> = hits.iter().map(|(h, s)| (h, *s)).collect();
    hits_batch_of(&tagged)
}

/// Databases opened by searches, kept open for the next search of the same shard (shards
/// are immutable once a catalog names them). At most this many are held.
const OPEN_SHARDS: usize = 256;

/// A database folder as the file system knows it now: a folder removed and made again, or
/// changed by a commit, is another one.
#[derive(Debug, Clone, PartialEq)]
struct FolderId {
    path: PathBuf,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

impl FolderId {
    fn of(path: &std::path::Path) -> Result<FolderId> {
        let m = std::fs::metadata(path)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", path.display())))?;
        Ok(FolderId {
            path: path.to_path_buf(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            ino: std::os::unix::fs::MetadataExt::ino(&m),
        })
    }
}

/// Open shards, least recently used first.
type OpenShards = Mutex<Vec<(FolderId, Arc<Db>)>>;

static OPEN: LazyLock<OpenShards> = LazyLock::new(|| Mutex::new(Vec::new()));

pub(crate) fn open_shard(path: &std::path::Path) -> Result<Arc<Db>> {
    let id = FolderId::of(path)?;
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = open.iter().position(|(p, _)| *p == id) {
        let entry = open.remove(i);
        let db = entry.1.clone();
        open.push(entry);
        return Ok(db);
    }
    drop(open);
    let db = Arc::new(
        Db::open(path, OpenOptions::read_only())
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", path.display())))?,
    );
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if open.len() >= OPEN_SHARDS {
        open.remove(0);
    }
    open.retain(|(p, _)| p.path != id.path);
    open.push((id, db.clone()));
    Ok(db)
}

fn fail(shard: &ShardTask, m: &dyn fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!(
        "shard {} ({}): {m}",
        shard.name,
        shard.path.display()
    ))
}

/// Opens a shard and checks it holds the rows the catalog says.
fn open_checked(shard: &ShardTask) -> Result<Arc<Db>> {
    let db = open_shard(&shard.path)?;
    {
        let snap = db.snapshot();
        let coll = snap
            .collection(&shard.collection)
            .map_err(|e| fail(shard, &e))?;
        if coll.len() as u64 != shard.rows {
            return Err(fail(
                shard,
                &format_args!(
                    "holds {} rows where the catalog says {}",
                    coll.len(),
                    shard.rows
                ),
            ));
        }
    }
    Ok(db)
}

/// One shard's search as a batch of [`result_schema`].
pub fn search_shard(shard: &ShardTask, spec: &SearchSpec) -> Result<RecordBatch> {
    let db = open_checked(shard)?;
    let snap = db.snapshot();
    let coll = snap
        .collection(&shard.collection)
        .map_err(|e| fail(shard, &e))?;
    let res = spec.run(&coll).map_err(|e| fail(shard, &e))?;
    hits_batch(&res.hits, &shard.name)
}

/// Hits as a batch of [`result_schema`].
pub fn hits_batch(hits: &[SearchHit], shard: &str) -> Result<RecordBatch> {
    let tagged: Vec<(&SearchHit, &str)> = hits.iter().map(|h| (h, shard)).collect();
    hits_batch_of(&tagged)
}

/// Hits, each with its shard's name, as a batch of [`result_schema`].
fn hits_batch_of(hits: &[(&SearchHit, &str)]) -> Result<RecordBatch> {
    let cols: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
        Arc::new(UInt64Array::from_iter_values(
            hits.iter().map(|(h, _)| h.id),
        )),
        Arc::new(Float32Array::from_iter_values(
            hits.iter().map(|(h, _)| h.score),
        )),
        Arc::new(Float64Array::from_iter_values(
            hits.iter().map(|(h, _)| h.point.lon()),
        )),
        Arc::new(Float64Array::from_iter_values(
            hits.iter().map(|(h, _)| h.point.lat()),
        )),
        Arc::new(Int64Array::from_iter(hits.iter().map(|(h, _)| h.time))),
        Arc::new(StringArray::from_iter(
            hits.iter().map(|(h, _)| h.payload.as_deref()),
        )),
        Arc::new(StringArray::from_iter_values(hits.iter().map(|(_, s)| *s))),
    ];
    Ok(RecordBatch::try_new(result_schema(), cols)?)
}

/// The columns an ingest yields, one row a shard: name, path, rows, the extent's west,
/// south, east and north, the first and last time of its rows (null when none has one), and
/// the tiles left out (`path: why`, one a line).
pub fn ingest_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("rows", DataType::UInt64, false),
        ];
        for side in ["west", "south", "east", "north"] {
            fields.push(Field::new(side, DataType::Float64, false));
        }
        fields.push(Field::new("t0", DataType::Int64, true));
        fields.push(Field::new("t1", DataType::Int64, true));
        fields.push(Field::new("failed", DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

impl ShardJob for IngestSpec {
    const NAME: &'static str = "ShardIngestExec";

    fn schema(&self) -> SchemaRef {
        ingest_schema()
    }

    fn ordering(&self, _schema: &Schema) -> Result<Option<LexOrdering>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!(
            "dir={}, level={}, collection={}",
            self.dir.display(),
            self.level,
            self.collection
        )
    }

    fn run(&self, shards: &[ShardTask]) -> Result<RecordBatch> {
        let done = shards
            .iter()
            .map(|s| {
                crate::ingest::ingest_shard(self, s).map_err(|e| match e {
                    // A bad tile is the input's fault, as a bad query is.
                    crate::Error::Input(m) => DataFusionError::Plan(format!(
                        "shard {} ({}): {m}",
                        s.name,
                        s.path.display()
                    )),
                    e => fail(s, &e),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let written: Vec<&crate::catalog::Shard> = done.iter().map(|(s, _)| s).collect();
        let side = |i: usize| {
            Arc::new(Float64Array::from_iter_values(
                written.iter().map(|s| s.extent.map_or(f64::NAN, |e| e[i])),
            )) as Arc<dyn datafusion::arrow::array::Array>
        };
        let time = |i: usize| {
            Arc::new(Int64Array::from_iter(
                written.iter().map(|s| s.times.map(|t| t[i])),
            )) as Arc<dyn datafusion::arrow::array::Array>
        };
        let cols: Vec<Arc<dyn datafusion::arrow::array::Array>> = vec![
            Arc::new(StringArray::from_iter_values(
                written.iter().map(|s| s.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                written.iter().map(|s| s.path.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                written.iter().map(|s| s.rows),
            )),
            side(0),
            side(1),
            side(2),
            side(3),
            time(0),
            time(1),
            Arc::new(StringArray::from_iter_values(
                done.iter().map(|(_, f)| f.as_str()),
            )),
        ];
        Ok(RecordBatch::try_new(ingest_schema(), cols)?)
    }
}
