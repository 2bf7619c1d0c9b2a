//! Plans over a catalog: prune the shards a region misses, then for a search run
//! [`ShardSearchExec`] (one partition per shard) and merge with a sort-preserving merge that
//! stops at `k`; for a map run [`crate::ShardMapExec`] and gather every shard's tiles.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{collect, ExecutionPlan};

use crate::catalog::Catalog;
use crate::exec::{
    result_ordering, result_schema, shards_source, ShardExec, ShardJob, ShardSearchExec, ShardTask,
};
use crate::spec::{MapSpec, Region, SearchSpec};
use crate::Error;

/// The shards of `cat` that `spec`'s conditions do not rule out, as tasks.
pub fn shard_tasks(cat: &Catalog, spec: &SearchSpec) -> Result<Vec<ShardTask>, Error> {
    spec.check()?;
    if spec.vector.len() != cat.dim {
        return Err(Error::Input(format!(
            "the query vector has {} values; the catalog's vectors have {}",
            spec.vector.len(),
            cat.dim
        )));
    }
    tasks_within(cat, &spec.region)
}

/// The shards of `cat` that `region` does not rule out, as tasks.
fn tasks_within(cat: &Catalog, region: &Region) -> Result<Vec<ShardTask>, Error> {
    let filter = region.filter()?;
    Ok(cat
        .prune(&filter)
        .into_iter()
        .map(|i| ShardTask {
            name: cat.shards[i].name.clone(),
            path: cat.shard_path(i),
            collection: cat.collection.clone(),
            rows: cat.shards[i].rows,
        })
        .collect())
}

/// The physical plan of a search over a catalog: `SortPreservingMergeExec(score DESC, id
/// ASC, fetch = k)` over a [`ShardSearchExec`] over the list of shards not pruned, one
/// partition each (an empty plan when every shard is pruned).
pub fn search_plan(cat: &Catalog, spec: SearchSpec) -> Result<Arc<dyn ExecutionPlan>, Error> {
    let tasks = shard_tasks(cat, &spec)?;
    plan_over(tasks, Arc::new(spec)).map_err(Error::from)
}

/// [`search_plan`] over given tasks.
pub fn plan_over(tasks: Vec<ShardTask>, spec: Arc<SearchSpec>) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = result_schema();
    if tasks.is_empty() {
        return Ok(Arc::new(EmptyExec::new(schema)));
    }
    let k = spec.k;
    let exec = Arc::new(ShardSearchExec::try_new(shards_source(&tasks)?, spec)?);
    Ok(Arc::new(
        SortPreservingMergeExec::new(result_ordering(&schema)?, exec).with_fetch(Some(k)),
    ))
}

/// Runs a search over a catalog in this process and returns the hits, best first.
pub async fn search(
    cat: &Catalog,
    spec: SearchSpec,
    ctx: Arc<TaskContext>,
) -> Result<Vec<RecordBatch>, Error> {
    let plan = search_plan(cat, spec)?;
    Ok(collect(plan, ctx).await?)
}

/// The shards of `cat` that `spec`'s region does not rule out, as tasks.
pub fn map_tasks(cat: &Catalog, spec: &MapSpec) -> Result<Vec<ShardTask>, Error> {
    spec.check()?;
    if let Some((i, q)) = spec
        .queries
        .iter()
        .enumerate()
        .find(|(_, q)| q.len() != cat.dim)
    {
        return Err(Error::Input(format!(
            "query {i} has {} values; the catalog's vectors have {}",
            q.len(),
            cat.dim
        )));
    }
    tasks_within(cat, &spec.region)
}

/// The physical plan of a map over a catalog: a [`ShardMapExec`] over the list of shards
/// not pruned, one partition each (an empty plan when every shard is pruned).
///
/// [`ShardMapExec`]: crate::ShardMapExec
pub fn map_plan(cat: &Catalog, spec: MapSpec) -> Result<Arc<dyn ExecutionPlan>, Error> {
    let tasks = map_tasks(cat, &spec)?;
    job_plan(tasks, Arc::new(spec)).map_err(Error::from)
}

/// A job on given shards: a [`ShardExec`] over their list, one partition each (an empty
/// plan without shards).
pub fn job_plan<J: ShardJob>(
    tasks: Vec<ShardTask>,
    spec: Arc<J>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if tasks.is_empty() {
        return Ok(Arc::new(EmptyExec::new(spec.schema())));
    }
    Ok(Arc::new(ShardExec::try_new(shards_source(&tasks)?, spec)?))
}

/// Runs a map over a catalog in this process and returns every shard's scored tiles.
pub async fn map(
    cat: &Catalog,
    spec: MapSpec,
    ctx: Arc<TaskContext>,
) -> Result<Vec<sat2cap::jobs::ScoredTile>, Error> {
    let queries = spec.scores_per_tile();
    let plan = map_plan(cat, spec)?;
    Ok(crate::exec::tiles_of(&collect(plan, ctx).await?, queries)?)
}
