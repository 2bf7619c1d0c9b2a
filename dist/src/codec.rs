//! Codecs that carry sat2cap's plan nodes between processes (a Ballista client, scheduler
//! and executors): [`SearchTable`] and [`JobTable`] in logical plans, [`ShardSearchExec`],
//! [`ShardMapExec`] and [`ShardIngestExec`] in physical ones.
//! Each wraps another codec (Ballista's, or DataFusion's default) and hands it every node
//! that is not ours. Our nodes are a tag byte `0x00` (never the first byte of a protobuf
//! message) followed by JSON.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{
    DefaultPhysicalExtensionCodec, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::exec::{ShardExec, ShardIngestExec, ShardMapExec, ShardSearchExec, ShardTask};
use crate::spec::{IngestSpec, MapSpec, SearchSpec};
use crate::table::{JobTable, SearchTable};

const TAG: u8 = 0;

fn ours(buf: &[u8]) -> Option<&[u8]> {
    match buf.split_first() {
        Some((&TAG, rest)) => Some(rest),
        _ => None,
    }
}

fn put<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.push(TAG);
    serde_json::to_writer(buf, value).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn get<'a, T: Deserialize<'a>>(json: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(json)
        .map_err(|e| DataFusionError::Internal(format!("a {what} that does not decode: {e}")))
}

#[derive(Serialize, Deserialize)]
enum TableMsg {
    Search {
        catalog: PathBuf,
        spec: SearchSpec,
    },
    Map {
        tasks: Vec<ShardTask>,
        spec: MapSpec,
    },
    Ingest {
        tasks: Vec<ShardTask>,
        spec: IngestSpec,
    },
}

#[derive(Serialize, Deserialize)]
enum ExecMsg {
    Search { spec: SearchSpec },
    Map { spec: MapSpec },
    Ingest { spec: IngestSpec },
}

/// The logical codec: [`SearchTable`] as its catalog file and search, [`JobTable`] as its
/// shards and job; the catalog is read
/// again where the plan is decoded (the scheduler), so it must be at the same path there.
#[derive(Debug)]
pub struct LogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl LogicalCodec {
    /// Ours, then `inner` for every other node.
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>) -> LogicalCodec {
        LogicalCodec { inner }
    }
}

impl Default for LogicalCodec {
    fn default() -> LogicalCodec {
        LogicalCodec::new(Arc::new(DefaultLogicalExtensionCodec {}))
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(json) = ours(buf) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let open = |file: &PathBuf| {
            Catalog::open(file)
                .map(Arc::new)
                .map_err(|e| DataFusionError::Plan(e.to_string()))
        };
        Ok(match get(json, "sat2cap table")? {
            TableMsg::Search { catalog, spec } => Arc::new(SearchTable::new(open(&catalog)?, spec)),
            TableMsg::Map { tasks, spec } => Arc::new(JobTable::new(tasks, spec)),
            TableMsg::Ingest { tasks, spec } => Arc::new(JobTable::new(tasks, spec)),
        })
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(t) = node.downcast_ref::<SearchTable>() {
            let catalog = crate::table::catalog_file(t.catalog());
            let spec = t.spec().clone();
            return put(&TableMsg::Search { catalog, spec }, buf);
        }
        if let Some(t) = node.downcast_ref::<JobTable<MapSpec>>() {
            let (tasks, spec) = (t.tasks().to_vec(), t.spec().clone());
            return put(&TableMsg::Map { tasks, spec }, buf);
        }
        if let Some(t) = node.downcast_ref::<JobTable<IngestSpec>>() {
            let (tasks, spec) = (t.tasks().to_vec(), t.spec().clone());
            return put(&TableMsg::Ingest { tasks, spec }, buf);
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// The physical codec: the shard operators as their job (their input,
/// the shard list, is an in-memory scan that DataFusion's own codec carries).
#[derive(Debug)]
pub struct PhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl PhysicalCodec {
    /// Ours, then `inner` for every other node.
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> PhysicalCodec {
        PhysicalCodec { inner }
    }
}

impl Default for PhysicalCodec {
    fn default() -> PhysicalCodec {
        PhysicalCodec::new(Arc::new(DefaultPhysicalExtensionCodec {}))
    }
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        conv: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(json) = ours(buf) else {
            return self.inner.try_decode(buf, inputs, ctx, conv);
        };
        let msg: ExecMsg = get(json, "shard operator")?;
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "a shard operator with {} inputs",
                inputs.len()
            )));
        };
        let input = input.clone();
        Ok(match msg {
            ExecMsg::Search { spec } => Arc::new(ShardExec::try_new(input, Arc::new(spec))?),
            ExecMsg::Map { spec } => Arc::new(ShardExec::try_new(input, Arc::new(spec))?),
            ExecMsg::Ingest { spec } => Arc::new(ShardExec::try_new(input, Arc::new(spec))?),
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        conv: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(e) = node.downcast_ref::<ShardSearchExec>() {
            let spec = (**e.spec()).clone();
            return put(&ExecMsg::Search { spec }, buf);
        }
        if let Some(e) = node.downcast_ref::<ShardMapExec>() {
            let spec = (**e.spec()).clone();
            return put(&ExecMsg::Map { spec }, buf);
        }
        if let Some(e) = node.downcast_ref::<ShardIngestExec>() {
            let spec = (**e.spec()).clone();
            return put(&ExecMsg::Ingest { spec }, buf);
        }
        self.inner.try_encode(node, buf, conv)
    }
}
