//! Searches over a sharded catalog, side by side in one run: one database (the library), the
//! shards in this process (DataFusion), and the shards on a Ballista cluster on loopback with
//! 1, 2 and 4 executors. Prints one table: queries/s with several clients at once, latency
//! p50/p99 of one client, recall@k against the single database's exact answer.
//!
//! ```sh
//! cargo bench -p sat2cap-dist --bench cluster -- --rows 400000 --dim 128 --level 2
//! ```
//! Flags: --rows N, --dim D, --level L (quadkey level of the shards), --queries Q, --k K,
//! --clients C, --exact, --executors 1,2,4, --dir DIR (where the databases are built).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::prelude::SessionContext;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::testing::synth::generate;
use sat2cap::{Db, Item, OpenOptions};
use sat2cap_dist::cluster::{LocalCluster, LocalOptions, Remote};
use sat2cap_dist::plan::search_plan;
use sat2cap_dist::shard::{shard, ShardOptions};
use sat2cap_dist::{Catalog, SearchSpec};

struct Args {
    rows: usize,
    dim: usize,
    level: u8,
    queries: usize,
    k: usize,
    clients: usize,
    exact: bool,
    executors: Vec<usize>,
    dir: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        rows: 400_000,
        dim: 128,
        level: 2,
        queries: 300,
        k: 10,
        clients: 8,
        exact: false,
        executors: vec![1, 2, 4],
        dir: PathBuf::from("target/bench-cluster"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value().parse().expect("--rows"),
            "--dim" => a.dim = value().parse().expect("--dim"),
            "--level" => a.level = value().parse().expect("--level"),
            "--queries" => a.queries = value().parse().expect("--queries"),
            "--k" => a.k = value().parse().expect("--k"),
            "--clients" => a.clients = value().parse().expect("--clients"),
            "--executors" => {
                a.executors = value()
                    .split(',')
                    .map(|x| x.parse().expect("--executors"))
                    .collect()
            }
            "--dir" => a.dir = value().into(),
            "--exact" => a.exact = true,
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.queries >= 1 && a.rows >= 1 && a.k >= 1,
        "--queries, --rows and --k must be >= 1"
    );
    a
}

fn build(a: &Args) -> (Db, Catalog, Vec<Vec<f32>>) {
    let key = format!("r{}-d{}-l{}", a.rows, a.dim, a.level);
    let root = a.dir.join(key);
    let single = root.join("all.db");
    let sharded = root.join("sharded");
    let data = generate(a.rows, a.dim, 64, 41);
    if !sharded.exists() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let t = Instant::now();
        let mut db = Db::open(&single, OpenOptions::create_new()).unwrap();
        db.create_collection("tiles", a.dim).unwrap();
        for (i, p) in data.points.iter().enumerate() {
            let item = Item {
                id: i as u64,
                vector: &data.vectors[i * a.dim..(i + 1) * a.dim],
                point: *p,
                time: None,
                payload: None,
            };
            db.add_f16("tiles", &item).unwrap();
            if db.pending_len() >= 262_144 {
                db.spill().unwrap();
            }
        }
        db.commit().unwrap();
        eprintln!(
            "single database built in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let opts = ShardOptions {
            collection: None,
            level: a.level,
        };
        shard(&single, &sharded, &opts, &sat2cap::Silent).unwrap();
        eprintln!("sharded in {:.1} s", t.elapsed().as_secs_f64());
    }
    let db = Db::open(&single, OpenOptions::read_only()).unwrap();
    let cat = Catalog::open(&sharded).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let queries = (0..a.queries)
        .map(|_| {
            let r = rng.random_range(0..a.rows);
            data.vectors[r * a.dim..(r + 1) * a.dim]
                .iter()
                .map(|v| v.to_f32() + rng.random_range(-0.05..0.05))
                .collect()
        })
        .collect();
    (db, cat, queries)
}

fn ids(batches: &[RecordBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("id").unwrap().as_primitive::<UInt64Type>();
            c.values().to_vec()
        })
        .collect()
}

struct Row {
    mode: String,
    qps: f64,
    p50: Duration,
    p99: Duration,
    recall: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Latencies of one client, then the rate of `clients` at once, for a search function.
async fn measure<F, Fut>(
    mode: &str,
    specs: &[SearchSpec],
    truth: &[Vec<u64>],
    clients: usize,
    run: F,
) -> Row
where
    F: Fn(SearchSpec) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<u64>> + Send,
{
    for s in specs.iter().take(5) {
        run(s.clone()).await;
    }
    let mut lat = Vec::with_capacity(specs.len());
    let (mut found, mut wanted) = (0usize, 0usize);
    for (s, want) in specs.iter().zip(truth) {
        let t = Instant::now();
        let got = run(s.clone()).await;
        lat.push(t.elapsed());
        found += got.iter().filter(|id| want.contains(id)).count();
        wanted += want.len();
    }
    lat.sort();
    let specs = Arc::new(specs.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (specs, next, run) = (specs.clone(), next.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(s) = specs.get(i) else { break };
                run(s.clone()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let qps = specs.len() as f64 / t.elapsed().as_secs_f64();
    let row = Row {
        mode: mode.to_string(),
        qps,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        recall: found as f64 / wanted.max(1) as f64,
    };
    eprintln!("{mode}: {qps:.1} q/s, p50 {:?}, p99 {:?}", row.p50, row.p99);
    row
}

fn main() {
    let a = args();
    let (db, cat, queries) = build(&a);
    let cat = Arc::new(cat);
    let db = Arc::new(db);
    let specs: Vec<SearchSpec> = queries
        .into_iter()
        .map(|q| SearchSpec {
            exact: a.exact,
            ..SearchSpec::new(q, a.k)
        })
        .collect();
    let truth: Vec<Vec<u64>> = specs
        .iter()
        .map(|s| {
            let exact = SearchSpec {
                exact: true,
                ..s.clone()
            };
            let snap = db.snapshot();
            let coll = snap.collection("tiles").unwrap();
            exact
                .run(&coll)
                .unwrap()
                .hits
                .iter()
                .map(|h| h.id)
                .collect()
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut table = Vec::new();
    let single = {
        let db = db.clone();
        move |s: SearchSpec| {
            let db = db.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let snap = db.snapshot();
                    let coll = snap.collection("tiles").unwrap();
                    s.run(&coll).unwrap().hits.iter().map(|h| h.id).collect()
                })
                .await
                .unwrap()
            }
        }
    };
    table.push(rt.block_on(measure("one database", &specs, &truth, a.clients, single)));
    let local = {
        let cat = cat.clone();
        let ctx = SessionContext::new();
        move |s: SearchSpec| {
            let (cat, task) = (cat.clone(), ctx.task_ctx());
            async move {
                let plan = search_plan(&cat, s).unwrap();
                ids(&datafusion::physical_plan::collect(plan, task)
                    .await
                    .unwrap())
            }
        }
    };
    table.push(rt.block_on(measure(
        "DataFusion, this process",
        &specs,
        &truth,
        a.clients,
        local,
    )));
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sat2cap-dist"));
    for &n in &a.executors {
        let work = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::start(&LocalOptions {
            exe: exe.clone(),
            executors: n,
            vcores: 2,
            heartbeat_s: 5,
            work: work.path().to_path_buf(),
        })
        .unwrap();
        let client = rt
            .block_on(Remote::connect(
                cluster.url(),
                cat.clone(),
                None,
                Duration::from_secs(300),
            ))
            .unwrap();
        let remote = move |s: SearchSpec| {
            let client = client.clone();
            async move { ids(&client.search(s).await.unwrap()) }
        };
        let mode = format!("Ballista, {n} executor{}", if n == 1 { "" } else { "s" });
        table.push(rt.block_on(measure(&mode, &specs, &truth, a.clients, remote)));
        drop(cluster);
    }
    println!(
        "\n{} rows x {} dims in {} shards (quadkey level {}), {} queries, k = {}, {}, {} clients for queries/s\n",
        a.rows,
        a.dim,
        cat.shards.len(),
        a.level,
        specs.len(),
        a.k,
        if a.exact { "exact" } else { "default (graph) search" },
        a.clients
    );
    println!(
        "| mode | queries/s | p50 ms | p99 ms | recall@{} | queries/s vs one database |",
        a.k
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let base = table[0].qps;
    for r in &table {
        println!(
            "| {} | {:.1} | {:.2} | {:.2} | {:.4} | {:.3}x |",
            r.mode,
            r.qps,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.recall,
            r.qps / base
        );
    }
}
