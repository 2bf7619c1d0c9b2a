//! Searches on a Ballista cluster: a scheduler and executors that carry sat2cap's plan nodes
//! ([`crate::codec`]), and a client session that sends them searches.
//!
//! A search reaches the scheduler as a logical plan (a scan of a [`SearchTable`]); the
//! scheduler plans it with the same rule as one process ([`crate::plan`]: prune, one
//! [`crate::ShardSearchExec`] partition per shard, a sort-preserving merge with `fetch = k`)
//! and cuts the plan at the merge into two stages: the shard searches run as tasks on the
//! executors, each writing at most `k` rows, and one task merges them. Every process opens
//! the shards by the catalog's absolute paths, so they must see the same files there (one
//! machine, or a shared file system).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::Catalog;
use crate::codec::{LogicalCodec, PhysicalCodec};
use crate::exec::{ShardJob, ShardTask};
use crate::spec::{MapSpec, SearchSpec};
use crate::table::{JobTable, SearchFunction, SearchTable, TextEmbedder};
use crate::Error;

/// Ballista's session settings with sat2cap's codecs wrapped around Ballista's own.
pub fn session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(logical_codec()))
        .with_ballista_physical_extension_codec(Arc::new(physical_codec()))
}

fn logical_codec() -> LogicalCodec {
    LogicalCodec::new(Arc::new(BallistaLogicalExtensionCodec::default()))
}

fn physical_codec() -> PhysicalCodec {
    PhysicalCodec::new(Arc::new(BallistaPhysicalExtensionCodec::default()))
}

fn ballista(e: ballista_core::error::BallistaError) -> Error {
    Error::Cluster(e.to_string())
}

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address of its gRPC service.
    pub bind: SocketAddr,
    /// Seconds without a heartbeat after which an executor is taken as lost (its tasks run
    /// again elsewhere).
    pub executor_timeout_s: u64,
}

/// Runs a scheduler until the process ends.
pub async fn run_scheduler(o: &SchedulerOptions) -> Result<(), Error> {
    let mut config = SchedulerConfig {
        bind_host: o.bind.ip().to_string(),
        bind_port: o.bind.port(),
        executor_timeout_seconds: o.executor_timeout_s,
        expire_dead_executor_interval_seconds: (o.executor_timeout_s / 3).max(1),
        no_executors_grace_period_seconds: o.executor_timeout_s,
        ..SchedulerConfig::default()
    };
    config.override_logical_codec = Some(Arc::new(logical_codec()));
    config.override_physical_codec = Some(Arc::new(physical_codec()));
    let config = config
        .with_override_config_producer(Arc::new(session_config))
        .with_override_session_builder(Arc::new(|config: SessionConfig| {
            // Ballista's partition coalescing concatenates stage outputs without merging
            // them: the sort-preserving merge of a search would get unsorted input.
            default_session_builder(config.with_ballista_coalesce_enabled(false))
        }));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista)?;
    start_server(cluster, o.bind, Arc::new(config))
        .await
        .map_err(ballista)
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Address its Arrow Flight service (the shuffle data) listens on.
    pub bind: SocketAddr,
    /// Port of its gRPC service.
    pub grpc_port: u16,
    /// The scheduler's host and port.
    pub scheduler: (String, u16),
    /// Tasks run at once (0: the number of cores).
    pub vcores: usize,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_s: u64,
    /// Folder for shuffle files (default: a new temporary folder).
    pub work_dir: Option<PathBuf>,
}

/// Runs an executor until the process ends.
pub async fn run_executor(o: &ExecutorOptions) -> Result<(), Error> {
    let config = ExecutorProcessConfig {
        bind_host: o.bind.ip().to_string(),
        port: o.bind.port(),
        grpc_port: o.grpc_port,
        scheduler_host: o.scheduler.0.clone(),
        scheduler_port: o.scheduler.1,
        scheduler_connect_timeout_seconds: 30,
        vcores: o.vcores,
        executor_heartbeat_interval_seconds: o.heartbeat_s,
        work_dir: o
            .work_dir
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        print_thread_info: false,
        override_config_producer: Some(Arc::new(session_config)),
        override_logical_codec: Some(Arc::new(logical_codec())),
        override_physical_codec: Some(Arc::new(physical_codec())),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista)
}

/// A client of a scheduler: searches and SQL over one catalog, each bounded in time.
///
/// Ballista 55 sometimes leaves a job unfinished after losing an executor (a stage rolled
/// back whose task updates are then refused), so every query here has a deadline: past
/// it, the query is abandoned and reported as an error, never waited on forever.
#[derive(Clone)]
pub struct Remote {
    ctx: SessionContext,
    catalog: Option<Arc<Catalog>>,
    deadline: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("catalog", &self.catalog.as_ref().map(|c| &c.file))
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Remote {
    /// A session on the scheduler at `url` (`df://host:port`) with the table function
    /// `sat2cap_search` over `catalog` (texts embedded here, by `embed`); each query is
    /// abandoned after `deadline`.
    pub async fn connect(
        url: &str,
        catalog: Arc<Catalog>,
        embed: Option<TextEmbedder>,
        deadline: Duration,
    ) -> Result<Remote, Error> {
        let mut remote = Remote::connect_jobs(url, deadline).await?;
        remote.ctx.register_udtf(
            "sat2cap_search",
            Arc::new(SearchFunction::new(catalog.clone(), embed)),
        );
        remote.catalog = Some(catalog);
        Ok(remote)
    }

    /// A session on the scheduler at `url` for jobs on given shards ([`Remote::run`]), with
    /// no catalog; each job is abandoned after `deadline`.
    pub async fn connect_jobs(url: &str, deadline: Duration) -> Result<Remote, Error> {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(session_config())
            .build();
        let ctx = SessionContext::remote_with_state(url, state).await?;
        Ok(Remote {
            ctx,
            catalog: None,
            deadline,
        })
    }

    fn catalog(&self) -> Result<&Arc<Catalog>, Error> {
        self.catalog
            .as_ref()
            .ok_or_else(|| Error::Input("this session was opened without a catalog".into()))
    }

    /// The session (for plans of one's own).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.deadline, f)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Cluster(format!(
                    "no answer within {} s; the query was abandoned (a lost executor can \
                     leave a job unfinished: run it again)",
                    self.deadline.as_secs_f64()
                )))
            })
    }

    /// One search over the catalog; the hits, best first.
    pub async fn search(&self, spec: SearchSpec) -> Result<Vec<RecordBatch>, Error> {
        spec.check()?;
        let table = SearchTable::new(self.catalog()?.clone(), spec);
        self.bounded(async { Ok(self.ctx.read_table(Arc::new(table))?.collect().await?) })
            .await
    }

    /// One map over the catalog: every shard's scored tiles.
    pub async fn map(&self, spec: MapSpec) -> Result<Vec<sat2cap::jobs::ScoredTile>, Error> {
        let tasks = crate::plan::map_tasks(self.catalog()?, &spec)?;
        let queries = spec.scores_per_tile();
        let batches = self.run(tasks, spec).await?;
        Ok(crate::exec::tiles_of(&batches, queries)?)
    }

    /// A job on given shards (tasks the executors run where they are): its rows.
    pub async fn run<J>(&self, tasks: Vec<ShardTask>, spec: J) -> Result<Vec<RecordBatch>, Error>
    where
        J: ShardJob + Clone,
        JobTable<J>: datafusion::catalog::TableProvider,
    {
        let table = JobTable::new(tasks, spec);
        self.bounded(async { Ok(self.ctx.read_table(Arc::new(table))?.collect().await?) })
            .await
    }

    /// One SQL statement: its result's schema and rows.
    pub async fn sql(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
        self.bounded(async {
            let df = self.ctx.sql(sql).await?;
            let schema = df.schema().inner().clone();
            Ok((schema, df.collect().await?))
        })
        .await
    }
}

/// A scheduler and executors on loopback, each a `sat2cap-dist` process, stopped when
/// dropped: for tests, benchmarks and trying a cluster on one machine.
#[derive(Debug)]
pub struct LocalCluster {
    scheduler: Child,
    executors: Vec<Child>,
    url: String,
    work: PathBuf,
}

/// How [`LocalCluster::start`] starts its processes.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `sat2cap-dist` executable.
    pub exe: PathBuf,
    /// Executors to start.
    pub executors: usize,
    /// Tasks each executor runs at once.
    pub vcores: usize,
    /// Heartbeat interval; an executor is taken as lost after three missed ones.
    pub heartbeat_s: u64,
    /// Folder for the processes' logs and the executors' shuffle files (must exist).
    pub work: PathBuf,
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Cluster(e.to_string()))?;
    Ok(l.local_addr()
        .map_err(|e| Error::Cluster(e.to_string()))?
        .port())
}

/// Waits until something listens on `port`, or fails if `child` ends or a minute passes
/// (the error names `log`, where the process wrote why).
fn wait_for(port: u16, child: &mut Child, what: &str, log: &std::path::Path) -> Result<(), Error> {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Cluster(format!(
                "the {what} ended ({status}); its log: {}",
                log.display()
            )));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(Error::Cluster(format!(
                "the {what} is not listening after 60 s; its log: {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl LocalCluster {
    /// Starts a scheduler and `o.executors` executors, and waits until each listens.
    pub fn start(o: &LocalOptions) -> Result<LocalCluster, Error> {
        let spawn = |args: Vec<String>, log: &str| -> Result<Child, Error> {
            let log = o.work.join(log);
            let file = std::fs::File::create(&log).map_err(|source| Error::Io {
                path: log.clone(),
                source,
            })?;
            Command::new(&o.exe)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .map_err(|source| Error::Io {
                    path: o.exe.clone(),
                    source,
                })
        };
        let port = free_port()?;
        let timeout = (3 * o.heartbeat_s).to_string();
        let scheduler = spawn(
            vec![
                "scheduler".into(),
                "--bind".into(),
                format!("127.0.0.1:{port}"),
                "--executor-timeout".into(),
                timeout,
            ],
            "scheduler.log",
        )?;
        let mut cluster = LocalCluster {
            scheduler,
            executors: Vec::new(),
            url: format!("df://127.0.0.1:{port}"),
            work: o.work.clone(),
        };
        let log = o.work.join("scheduler.log");
        wait_for(port, &mut cluster.scheduler, "scheduler", &log)?;
        for i in 0..o.executors {
            let (flight, grpc) = (free_port()?, free_port()?);
            let dir = cluster.executor_dir(i);
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?;
            let e = spawn(
                vec![
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--bind".into(),
                    format!("127.0.0.1:{flight}"),
                    "--grpc-port".into(),
                    grpc.to_string(),
                    "--vcores".into(),
                    o.vcores.to_string(),
                    "--heartbeat".into(),
                    o.heartbeat_s.to_string(),
                    "--work-dir".into(),
                    dir.to_string_lossy().into_owned(),
                ],
                &format!("executor{i}.log"),
            )?;
            cluster.executors.push(e);
            let e = cluster.executors.last_mut().expect("just pushed");
            let log = o.work.join(format!("executor{i}.log"));
            wait_for(flight, e, &format!("executor {i}"), &log)?;
        }
        Ok(cluster)
    }

    /// The scheduler's URL, for [`Remote::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Executor `i`'s shuffle folder.
    pub fn executor_dir(&self, i: usize) -> PathBuf {
        self.work.join(format!("executor{i}"))
    }

    /// Kills executor `i` at once (SIGKILL), as a crashed machine would stop.
    pub fn kill_executor(&mut self, i: usize) -> std::io::Result<()> {
        self.executors[i].kill()?;
        self.executors[i].wait().map(|_| ())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for c in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
