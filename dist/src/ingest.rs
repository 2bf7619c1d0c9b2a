//! `ingest-tiles`: a folder of overhead tiles encoded into a new catalog, one task a quadkey
//! shard, so that the encoding runs where the tasks run (the executors of a Ballista
//! cluster, or this process).
//!
//! The command scans the folder once to plan the shards (the tiles each quadkey tile of the
//! level holds); each task scans it again, encodes the tiles of its quadkey with the model
//! the job names (loaded once a process) into a new database, and returns the shard's
//! catalog entry. A tile's id is its position among all the folder's tiles, as a single
//! `sat2cap ingest-tiles` into a new collection gives it; the catalog is written, and the
//! folder renamed into place, only when every task succeeded.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use datafusion::arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use sat2cap::jobs::{ingest_tiles, IngestOptions, Model, ModelOptions, TileOptions, TilePart};
use sat2cap::{Db, OpenOptions};

use crate::catalog::{Catalog, RowSpan, Scheme, Shard, FORMAT, VERSION};
use crate::exec::ShardTask;
use crate::quadkey::{Tile, MAX_LEVEL};
use crate::spec::{IngestSpec, ModelSpec};
use crate::Error;

/// Checks what can be checked before the folder is read: the level, the collection name,
/// the footprint side and the capture time.
pub fn check(spec: &IngestSpec) -> Result<(), Error> {
    if spec.level > MAX_LEVEL {
        return Err(Error::Input(format!(
            "--level {} is deeper than {MAX_LEVEL}",
            spec.level
        )));
    }
    if spec.collection.is_empty() {
        return Err(Error::Input("--collection: an empty name".into()));
    }
    if let Some(d) = spec.tile_deg {
        if !(d.is_finite() && (1e-6..=10.0).contains(&d)) {
            return Err(Error::Input(format!("--tile-deg {d} outside [1e-6, 10]")));
        }
    }
    wall_time(spec).map(drop)
}

/// The capture time as an instant and on the wall clock.
fn wall_time(spec: &IngestSpec) -> Result<(Option<i64>, Option<sat2cap::time::DateTime>), Error> {
    match &spec.datetime {
        None => Ok((None, None)),
        Some(s) => {
            let (t, w) = sat2cap::time::parse_wall(s)
                .map_err(|e| Error::Input(format!("bad --datetime: {e}")))?;
            Ok((Some(t), Some(w)))
        }
    }
}

/// The shards an ingest of `spec.dir` writes under the folder `tmp` (one a quadkey tile of
/// the level holding tiles, largest quadkey last), and the number of files the scan skipped.
pub fn ingest_tasks(spec: &IngestSpec, tmp: &Path) -> Result<(Vec<ShardTask>, usize), Error> {
    check(spec)?;
    let (tiles, skipped) = sat2cap::jobs::scan_tiles(&spec.dir, spec.tile_deg)
        .map_err(|e| Error::Input(e.to_string()))?;
    if tiles.is_empty() {
        return Err(Error::Input(format!(
            "no tiles in {} (expected {{lat}}_{{lon}}.jpg|png or z/x/y.jpg|png)",
            spec.dir.display()
        )));
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for t in &tiles {
        let q = Tile::containing(t.center.lat(), t.center.lon(), spec.level).quadkey();
        *counts.entry(q).or_default() += 1;
    }
    let tasks = counts
        .into_iter()
        .map(|(q, rows)| ShardTask {
            name: format!("q{q}"),
            path: tmp.join(format!("shards/q{q}.db")),
            collection: spec.collection.clone(),
            rows,
        })
        .collect();
    Ok((tasks, skipped.len()))
}

/// Models loaded, each with what it was loaded from.
type Loaded = Vec<(ModelSpec, Arc<Model>)>;

/// Models loaded by this process's ingest tasks, one for each model asked for.
static MODELS: LazyLock<Mutex<Loaded>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The model `spec` names, loaded once a process.
pub(crate) fn model(spec: &ModelSpec) -> Result<Arc<Model>, Error> {
    let mut models = MODELS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, m)) = models.iter().find(|(s, _)| s == spec) {
        return Ok(m.clone());
    }
    let m = Model::load(&ModelOptions {
        weights: spec.weights.clone(),
        random: spec.random,
        tiny: spec.tiny,
        ..ModelOptions::default()
    })
    .map_err(|e| Error::Input(e.to_string()))?;
    let m = Arc::new(m);
    models.push((spec.clone(), m.clone()));
    Ok(m)
}

/// One shard's task: the tiles of its quadkey encoded into a new database at its path; its
/// catalog entry (path relative to the catalog folder) and the tiles left out (`path: why`,
/// one a line). Bad input is [`Error::Input`].
pub(crate) fn ingest_shard(spec: &IngestSpec, task: &ShardTask) -> Result<(Shard, String), Error> {
    let quadkey = task
        .name
        .strip_prefix('q')
        .filter(|q| q.len() == usize::from(spec.level))
        .ok_or_else(|| {
            Error::Input(format!(
                "{:?} is not a shard of level {}",
                task.name, spec.level
            ))
        })?
        .to_string();
    let tile = Tile::from_quadkey(&quadkey)
        .ok_or_else(|| Error::Input(format!("{:?} is not a quadkey", task.name)))?;
    let (time, wall) = wall_time(spec)?;
    let level = spec.level;
    let keep = Arc::new(move |p: sat2cap::Point| {
        Tile::containing(p.lat(), p.lon(), level).quadkey() == quadkey
    });
    let opts = TileOptions {
        common: IngestOptions {
            collection: spec.collection.clone(),
            skip_bad: spec.skip_bad,
            ..IngestOptions::default()
        },
        time,
        wall,
        tile_deg: spec.tile_deg,
        part: Some(TilePart { keep }),
    };
    let model = model(&spec.model)?;
    let open_err = |source| Error::Open {
        path: task.path.clone(),
        source,
    };
    // A shard is written only into the folder the run created: once a failed run removed
    // it, a task still to start writes nothing.
    if !task.path.parent().is_some_and(Path::is_dir) {
        return Err(Error::Shard {
            path: task.path.clone(),
            msg: "the ingest's folder is gone (the run was abandoned)".into(),
        });
    }
    let mut db = Db::open(&task.path, OpenOptions::create_new()).map_err(open_err)?;
    let shard_err = |e: &dyn std::fmt::Display| Error::Shard {
        path: task.path.clone(),
        msg: e.to_string(),
    };
    let report = ingest_tiles(&mut db, model.as_ref(), &spec.dir, &opts, &sat2cap::Silent)
        .map_err(|e| match e {
            sat2cap::jobs::JobError::Input(m) => Error::Input(m),
            e => shard_err(&e),
        })?;
    // Every planned tile is added, left out, or a repeat of a key given earlier in the
    // folder (`a.png` beside `a.jpg`: skipped, as one ingest skips it).
    let seen = report.added + report.failed.len() + report.repeated;
    if seen as u64 != task.rows {
        return Err(shard_err(&format_args!(
            "{} tiles encoded, {} left out and {} repeated where the plan counted {} (did the \
             folder change?)",
            report.added,
            report.failed.len(),
            report.repeated,
            task.rows
        )));
    }
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|(what, why)| format!("{what}: {why}").replace('\n', " "))
        .collect();
    let snap = db.snapshot();
    let coll = snap
        .collection(&spec.collection)
        .map_err(|e| shard_err(&e))?;
    let mut span = RowSpan::default();
    for item in coll.iter() {
        let item = item.map_err(|e| shard_err(&e))?;
        span.add(item.point, item.time);
    }
    let (extent, times) = span.get();
    let shard = Shard {
        name: task.name.clone(),
        path: format!("shards/{}.db", task.name),
        region: tile.region().edges(),
        extent,
        times,
        rows: coll.len() as u64,
    };
    Ok((shard, failed.join("\n")))
}

/// The catalog of an ingest written under `tmp` from its tasks' rows
/// ([`crate::exec::ingest_schema`]), and the tiles left out (`path: why`). A shard whose
/// tiles were all left out is removed.
pub fn catalog_of(
    spec: &IngestSpec,
    batches: &[RecordBatch],
    tmp: &Path,
) -> Result<(Catalog, Vec<String>), Error> {
    let other = || Error::Input("ingest rows of another schema".into());
    let mut shards = Vec::new();
    let mut left_out = Vec::new();
    for b in batches {
        let text = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(other)
        };
        let f64s = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(other)
        };
        let i64s = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(other)
        };
        let (name, path) = (text(0)?, text(1)?);
        let rows = b
            .column(2)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(other)?;
        let sides = [f64s(3)?, f64s(4)?, f64s(5)?, f64s(6)?];
        let (t0, t1) = (i64s(7)?, i64s(8)?);
        let failed = text(9)?;
        for r in 0..b.num_rows() {
            left_out.extend(failed.value(r).lines().map(str::to_string));
            if rows.value(r) == 0 {
                let _ = std::fs::remove_dir_all(tmp.join(path.value(r)));
                continue;
            }
            let q = name.value(r).trim_start_matches('q');
            let tile = Tile::from_quadkey(q).ok_or_else(other)?;
            shards.push(Shard {
                name: name.value(r).to_string(),
                path: path.value(r).to_string(),
                region: tile.region().edges(),
                extent: Some(sides.map(|s| s.value(r))),
                times: (t0.is_valid(r) && t1.is_valid(r)).then(|| [t0.value(r), t1.value(r)]),
                rows: rows.value(r),
            });
        }
    }
    shards.sort_by(|a, b| a.name.cmp(&b.name));
    let first = shards.first().ok_or_else(|| {
        Error::Input(format!(
            "no tile of {} could be encoded ({} left out)",
            spec.dir.display(),
            left_out.len()
        ))
    })?;
    let path = tmp.join(&first.path);
    let db = Db::open(&path, OpenOptions::read_only()).map_err(|source| Error::Open {
        path: path.clone(),
        source,
    })?;
    let snap = db.snapshot();
    let coll = snap
        .collection(&spec.collection)
        .map_err(|e| Error::Shard {
            path: path.clone(),
            msg: e.to_string(),
        })?;
    let cat = Catalog {
        format: FORMAT.to_string(),
        version: VERSION,
        collection: spec.collection.clone(),
        dim: coll.dim(),
        scheme: Scheme::Quadkey { level: spec.level },
        rows: shards.iter().map(|s| s.rows).sum(),
        properties: coll.properties().clone(),
        shards,
        dir: tmp.to_path_buf(),
        file: tmp.join(crate::catalog::FILE_NAME),
    };
    Ok((cat, left_out))
}

/// Runs the ingest tasks in this process and returns their rows. Every task runs to its end
/// (a failed one does not leave others writing while the folder is removed); the first
/// error is returned.
pub async fn run_here(tasks: Vec<ShardTask>, spec: IngestSpec) -> Result<Vec<RecordBatch>, Error> {
    use datafusion::execution::TaskContext;
    use futures::TryStreamExt;
    let plan = crate::plan::job_plan(tasks, Arc::new(spec))?;
    let ctx = Arc::new(TaskContext::default());
    let parts = plan.properties().partitioning.partition_count();
    let runs = (0..parts).map(|i| {
        let stream = plan.execute(i, ctx.clone());
        async move { stream?.try_collect::<Vec<_>>().await }
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(runs).await {
        out.extend(r?);
    }
    Ok(out)
}

/// Ingests `spec.dir` into the new catalog folder `out`: plans the shards, hands their
/// tasks to `run` (which runs the plan it is given and returns its rows: in this process, or
/// on a cluster), then writes the catalog. All or nothing: no `out` is left when a task
/// fails. Returns the catalog, the number of files the scan skipped and the tiles left out
/// (`path: why`; with [`IngestSpec::skip_bad`]).
pub async fn ingest<F, Fut>(
    out: &Path,
    spec: IngestSpec,
    run: F,
) -> Result<(Catalog, usize, Vec<String>), Error>
where
    F: FnOnce(Vec<ShardTask>, IngestSpec) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<RecordBatch>, Error>>,
{
    let tmp = crate::shard::new_folder(out)?;
    let planned = ingest_tasks(&spec, &tmp);
    let r = async {
        let (tasks, skipped) = planned?;
        std::fs::create_dir_all(tmp.join("shards")).map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        let batches = run(tasks, spec.clone()).await?;
        let (cat, left_out) = catalog_of(&spec, &batches, &tmp)?;
        Ok((cat, skipped, left_out))
    }
    .await;
    let (skipped, left_out) = match &r {
        Ok((_, s, l)) => (*s, l.clone()),
        Err(_) => (0, Vec::new()),
    };
    let cat = crate::shard::publish(r.map(|(c, _, _)| c), &tmp, out)?;
    Ok((cat, skipped, left_out))
}
