//! Searches on a Ballista cluster on loopback: a scheduler and two executors, each a
//! `sat2cap-dist` process the test starts and stops, return exactly the single database's
//! answer; an executor killed while queries run gives errors or full answers, never a
//! partial top-k, and no query outlives its deadline.

use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sat2cap_dist::cluster::{LocalCluster, LocalOptions, Remote};
use sat2cap_dist::{Catalog, SearchSpec};

use super::{conditions, fixture, query, rows, runtime, single_rows};

/// The deadline of every remote query.
const DEADLINE: Duration = Duration::from_secs(10);
/// A query still running after this has outlived its deadline: a hang.
const QUERY_LIMIT: Duration = Duration::from_secs(40);
/// Searches in the killed-executor test, over three clients.
const QUERIES: usize = 24;

/// A scheduler and `n` executors (heartbeats every second, lost after 3 s without one).
fn start(n: usize, work: &Path) -> LocalCluster {
    LocalCluster::start(&LocalOptions {
        exe: env!("CARGO_BIN_EXE_sat2cap-dist").into(),
        executors: n,
        vcores: 2,
        heartbeat_s: 1,
        work: work.to_path_buf(),
    })
    .unwrap()
}

fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                files_under(&p)
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn ballista_search_is_the_single_database_answer() {
    let f = fixture(12_000, 3, 21);
    let work = tempfile::tempdir().unwrap();
    let cluster = start(2, work.path());
    let rt = runtime();
    let cat = Arc::new(f.catalog.clone());
    let client = rt
        .block_on(Remote::connect(
            cluster.url(),
            cat.clone(),
            None,
            Duration::from_secs(120),
        ))
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for i in 0..30 {
        let mut spec = SearchSpec::new(query(&mut rng, &f.data), [1, 10, 100][i % 3]);
        spec.exact = true;
        conditions(&mut rng, i, &mut spec);
        let want = single_rows(&f.single, &spec);
        let got = rt
            .block_on(async {
                tokio::time::timeout(QUERY_LIMIT * 4, client.search(spec.clone())).await
            })
            .unwrap_or_else(|_| panic!("query {i} ran past {QUERY_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("query {i}: {e}"));
        if rows(&got) != want {
            eprintln!(
                "DEBUG {}",
                datafusion::arrow::util::pretty::pretty_format_batches(&got).unwrap()
            );
            let plan = sat2cap_dist::plan::search_plan(&f.catalog, spec.clone()).unwrap();
            eprintln!(
                "DEBUG plan {}",
                datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
            );
        }
        assert_eq!(rows(&got), want, "query {i}: {spec:?}");
    }
    // SQL through the scheduler: the table function, a WHERE range searched within.
    let example = 7 * 321 + 3;
    let sql = format!(
        "SELECT id, score FROM sat2cap_search({example}, 20, true) \
         WHERE lat BETWEEN -40 AND 60 ORDER BY score DESC, id"
    );
    let (_, got) = rt.block_on(client.sql(&sql)).unwrap();
    let local = datafusion::prelude::SessionContext::new();
    sat2cap_dist::table::register(&local, cat.clone(), None).unwrap();
    let want = rt
        .block_on(async { local.sql(&sql).await?.collect().await })
        .unwrap();
    assert_eq!(rows(&got), rows(&want), "{sql}");
    assert_eq!(rows(&got).len(), 20);
    // The command line with --scheduler prints what it prints in one process.
    let dir = f.catalog.dir.to_str().unwrap();
    let id = example.to_string();
    let args = [
        "search",
        dir,
        "--like",
        &id,
        "--k",
        "15",
        "--exact",
        "--bbox",
        "-60,-50,120,70",
    ];
    let local = super::cli(&args);
    let remote = super::cli(
        &[
            &args[..],
            &["--scheduler", cluster.url(), "--timeout", "120"],
        ]
        .concat(),
    );
    assert!(remote.status.success(), "{}", super::text(&remote.stderr));
    assert_eq!(super::text(&remote.stdout), super::text(&local.stdout));
    assert_eq!(super::text(&local.stdout).lines().count(), 16);
    // A map through the scheduler writes the files a map in this process writes.
    let maps = tempfile::tempdir().unwrap();
    let (_, map_cat) = super::map::map_fixture(maps.path());
    let catalog = map_cat.dir.to_str().unwrap();
    let (here, there) = (maps.path().join("here"), maps.path().join("there"));
    for (out, remote) in [(&here, false), (&there, true)] {
        let mut args = vec![catalog, "a lake", "a town", "--out", out.to_str().unwrap()];
        if remote {
            args.extend(["--scheduler", cluster.url(), "--timeout", "120"]);
        }
        let r = super::map::dist_map(&args);
        assert!(r.status.success(), "{}", super::text(&r.stderr));
    }
    super::map::same_files(&here, &there);
    // A tile folder encoded on the executors gives the rows it gives in this process.
    let tiles = super::ingest::tile_folder(maps.path());
    let t = tiles.to_str().unwrap();
    let (here, there) = (maps.path().join("in-here"), maps.path().join("in-there"));
    for (out, remote) in [(&here, false), (&there, true)] {
        let mut args = vec![t, out.to_str().unwrap(), "--level", "6", "--random-weights"];
        if remote {
            args.extend(["--scheduler", cluster.url(), "--timeout", "120"]);
        }
        let r = super::ingest::dist_ingest(&args);
        assert!(r.status.success(), "{}", super::text(&r.stderr));
    }
    let rows = |p: &std::path::Path| super::ingest::catalog_rows(&Catalog::open(p).unwrap());
    let local = rows(&here);
    assert_eq!(local.len(), 36);
    assert_eq!(rows(&there), local);
    // A map at a date re-encodes the tiles on the executors: the same files as here.
    let catalog = here.to_str().unwrap();
    let (a, b) = (
        maps.path().join("dated-here"),
        maps.path().join("dated-there"),
    );
    for (out, remote) in [(&a, false), (&b, true)] {
        let mut args = vec![catalog, "a lake", "--out", out.to_str().unwrap()];
        args.extend(["--datetime", "2023-01-05T08:00:00", "--hours", "7,19"]);
        if remote {
            args.extend(["--scheduler", cluster.url(), "--timeout", "120"]);
        }
        let r = super::map::dist_map(&args);
        assert!(r.status.success(), "{}", super::text(&r.stderr));
    }
    super::map::same_files(&a, &b);
    // Both executors ran shard searches (each wrote shuffle files in its own folder).
    for i in 0..2 {
        let n = files_under(&cluster.executor_dir(i));
        assert!(n > 0, "executor {i} wrote no shuffle file");
    }
}

#[test]
fn a_killed_executor_gives_errors_or_full_answers_never_a_partial_top_k() {
    let f = fixture(12_000, 3, 22);
    let work = tempfile::tempdir().unwrap();
    let mut cluster = start(2, work.path());
    let rt = runtime();
    let cat = Arc::new(f.catalog.clone());
    let client = rt
        .block_on(Remote::connect(cluster.url(), cat.clone(), None, DEADLINE))
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let searches: Vec<(SearchSpec, Vec<(u64, u32)>)> = (0..QUERIES)
        .map(|i| {
            let mut spec = SearchSpec::new(query(&mut rng, &f.data), 10);
            spec.exact = true;
            conditions(&mut rng, i, &mut spec);
            let want = single_rows(&f.single, &spec);
            (spec, want)
        })
        .collect();
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let outcomes = rt.block_on(async {
        let mut tasks = Vec::new();
        for lane in 0..3 {
            let (client, done, killed) = (client.clone(), done.clone(), killed.clone());
            let mine: Vec<_> = searches.iter().skip(lane).step_by(3).cloned().collect();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for (spec, want) in mine {
                    let started = Instant::now();
                    let after = killed.load(SeqCst);
                    let r = tokio::time::timeout(QUERY_LIMIT, client.search(spec.clone())).await;
                    out.push((
                        r.map(|r| r.map(|b| rows(&b))),
                        want,
                        started.elapsed(),
                        after,
                    ));
                    done.fetch_add(1, SeqCst);
                }
                out
            }));
        }
        // Kill one executor while the three lanes run.
        while done.load(SeqCst) < QUERIES / 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cluster.kill_executor(0).unwrap();
        killed.store(true, SeqCst);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let (mut full, mut failed, mut full_after) = (0, 0, 0);
    for (i, (r, want, took, after)) in outcomes.iter().enumerate() {
        match r {
            Err(_) => panic!("query {i} hung past {QUERY_LIMIT:?}"),
            Ok(Ok(got)) => {
                assert_eq!(
                    got, want,
                    "query {i} gave a different answer after {took:?}"
                );
                full += 1;
                full_after += usize::from(*after);
            }
            Ok(Err(e)) => {
                assert!(!e.to_string().is_empty());
                failed += 1;
            }
        }
    }
    eprintln!(
        "killed executor: {full} full answers ({full_after} of searches started after the \
         kill), {failed} errors"
    );
    assert_eq!(full + failed, QUERIES);
    // The queries before the kill were answered in full.
    assert!(
        full >= QUERIES / 4,
        "only {full} of {QUERIES} searches answered"
    );
}
