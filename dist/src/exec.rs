//! [`ShardSearchExec`]: the physical operator that runs one combined search per shard,
//! one output partition per shard, each sorted best first.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use datafusion::arrow::array::{
    Float32Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
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
use sat2cap::{Db, OpenOptions, SearchHit};
use serde::{Deserialize, Serialize};

use crate::spec::SearchSpec;

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

/// Runs a [`SearchSpec`] on the shards its input lists ([`shards_source`]): output
/// partition `i` is the top `k` of the shards in input partition `i` (one shard each, as
/// planned), sorted by score descending then id ascending. A sort-preserving merge with
/// `fetch = k` over it gives the top `k` of all shards.
#[derive(Debug)]
pub struct ShardSearchExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<SearchSpec>,
    props: Arc<PlanProperties>,
}

impl ShardSearchExec {
    /// The search over the shards `input` lists (rows of [`shards_schema`]), yielding
    /// [`result_schema`].
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        spec: Arc<SearchSpec>,
    ) -> Result<ShardSearchExec> {
        if input.schema().fields() != shards_schema().fields() {
            return Err(DataFusionError::Plan(format!(
                "ShardSearchExec reads a shard list, not rows of {}",
                input.schema()
            )));
        }
        let schema = result_schema();
        let eq =
            EquivalenceProperties::new_with_orderings(schema.clone(), [result_ordering(&schema)?]);
        let props = PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(ShardSearchExec {
            input,
            spec,
            props: Arc::new(props),
        })
    }

    /// The search.
    pub fn spec(&self) -> &Arc<SearchSpec> {
        &self.spec
    }
}

impl DisplayAs for ShardSearchExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ShardSearchExec: k={}, exact={}, filter={}",
            self.spec.k,
            self.spec.exact,
            self.spec.describe_filter(),
        )
    }
}

impl ExecutionPlan for ShardSearchExec {
    fn name(&self) -> &'static str {
        "ShardSearchExec"
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
            Ok([input]) => Ok(Arc::new(ShardSearchExec::try_new(
                input,
                self.spec.clone(),
            )?)),
            Err(c) => Err(DataFusionError::Internal(format!(
                "ShardSearchExec has one input, not {}",
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
            tokio::task::spawn_blocking(move || search_shards(&shards, &spec))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            result_schema(),
            futures::stream::once(fut),
        )))
    }
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
