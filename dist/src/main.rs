//! `sat2cap-dist`: shard a sat2cap database, search and query the shards with DataFusion.
//!
//! Exit codes: 0 success, 1 a runtime failure (I/O, a closed pipe, a shard that does not
//! open), 2 bad usage or bad input (clap's own code for usage errors).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use sat2cap::jobs::{Embedder, EncoderKind, MapRequest, Model, ModelFingerprint, ModelOptions};
use sat2cap_dist::exec::result_schema;
use sat2cap_dist::shard::{shard, ShardOptions};
use sat2cap_dist::spec::Region;
use sat2cap_dist::table::{register, TextEmbedder};
use sat2cap_dist::{cluster, Catalog, Error, IngestSpec, MapAt, MapSpec, ModelSpec, SearchSpec};

/// Sharded sat2cap databases, searched as Apache DataFusion plans.
#[derive(Parser)]
#[command(name = "sat2cap-dist", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Shard(ShardArgs),
    IngestTiles(IngestTilesArgs),
    Info(InfoArgs),
    Search(SearchArgs),
    Map(MapArgs),
    Sql(SqlArgs),
    Scheduler(SchedulerArgs),
    Executor(ExecutorArgs),
}

/// Run a Ballista scheduler that plans sat2cap searches (until stopped).
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap-dist scheduler --bind 127.0.0.1:50050
  sat2cap-dist executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50051 --grpc-port 50052
  sat2cap-dist search tiles-sharded --like 1234 --scheduler df://127.0.0.1:50050

Executors and clients must see the catalog's shards at the same absolute paths.")]
struct SchedulerArgs {
    /// Address of the scheduler's gRPC service.
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: std::net::SocketAddr,
    /// Seconds without a heartbeat before an executor is taken as lost and its tasks run again.
    #[arg(long, default_value_t = 180)]
    executor_timeout: u64,
}

/// Run a Ballista executor that runs sat2cap's shard searches (until stopped).
#[derive(Args)]
struct ExecutorArgs {
    /// The scheduler, host:port.
    #[arg(long, default_value = "127.0.0.1:50050")]
    scheduler: String,
    /// Address of the executor's Arrow Flight service (shuffle data).
    #[arg(long, default_value = "127.0.0.1:50051")]
    bind: std::net::SocketAddr,
    /// Port of the executor's gRPC service.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks at once (0: one per core).
    #[arg(long, default_value_t = 0)]
    vcores: usize,
    /// Seconds between heartbeats (below the scheduler's --executor-timeout).
    #[arg(long, default_value_t = 60)]
    heartbeat: u64,
    /// Folder for shuffle files (default: a temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// Split a database's collection into one database per Web Mercator tile, with a catalog.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap-dist shard --by quadkey --level 4 tiles.db tiles-sharded
  sat2cap-dist shard --level 6 --collection ground photos.db photos-sharded

Writes OUT_DIR/catalog.json and OUT_DIR/shards/q<quadkey>.db, one per tile holding rows.
OUT_DIR must not exist; a failed run leaves none behind.")]
struct ShardArgs {
    /// How rows are split (only quadkey for now).
    #[arg(long, default_value = "quadkey")]
    by: By,
    /// Quadkey level: up to 4^level shards (0..=23).
    #[arg(long)]
    level: u8,
    /// The collection to split (default: the database's only one).
    #[arg(long)]
    collection: Option<String>,
    /// The database to split.
    src_db: PathBuf,
    /// The new catalog folder.
    out_dir: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Quadkey,
}

/// Encode a folder of overhead tiles (Sat2Cap) into a new catalog, one task a quadkey shard.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap-dist ingest-tiles tiles/ tiles-sharded --level 6 --weights ./weights
  sat2cap-dist ingest-tiles xyz/ xyz-sharded --level 8 --datetime 2023-06-21T12:00:00 \\
      --weights ./weights --scheduler df://127.0.0.1:50050

Each shard's task encodes the tiles whose centre lies in its quadkey tile, where the task runs
(with --scheduler, on the executors: they must see the folder, the weights and OUT_DIR at
the same paths). A tile's id is its position in the folder, as a single `sat2cap
ingest-tiles` into a new collection gives it. OUT_DIR must not exist; a failed run leaves
none behind.")]
struct IngestTilesArgs {
    /// Folder of {lat}_{lon}.jpg|png or z/x/y.jpg|png tiles.
    dir: PathBuf,
    /// The new catalog folder.
    out_dir: PathBuf,
    /// Quadkey level: up to 4^level shards (0..=23).
    #[arg(long)]
    level: u8,
    /// The collection every shard holds.
    #[arg(long, default_value = "overhead")]
    collection: String,
    /// Footprint side in degrees for {lat}_{lon} names (default: inferred from the folder).
    #[arg(long, value_name = "DEG")]
    tile_deg: Option<f64>,
    /// Capture time on the local wall clock, stored with every tile (as `sat2cap
    /// ingest-tiles --datetime`).
    #[arg(long)]
    datetime: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Leave out tiles that do not decode, and say which (else one fails the ingest).
    #[arg(long)]
    skip_bad: bool,
    /// Print the catalog's summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Print a catalog's shards.
#[derive(Args)]
struct InfoArgs {
    /// The catalog folder (or its catalog.json).
    catalog: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
    Table,
}

/// The k rows of all shards most like a text, a stored item or a vector, optionally inside
/// a box, a radius and a time range.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap-dist search tiles-sharded --like 1234 --k 20 --bbox 5.9,45.8,10.5,47.8
  sat2cap-dist search tiles-sharded --text \"people fishing on a boat\" --weights ./weights
  sat2cap-dist search tiles-sharded --vector q.npy --radius 46.52,6.63,50 --exact --explain

Shards whose rows all lie outside the box or radius are not read. With --exact the answer
is exactly that of one database holding every shard's rows.")]
struct SearchArgs {
    /// The catalog folder (or its catalog.json).
    catalog: PathBuf,
    /// Query text (CLIP text encoder: --weights or --random-weights).
    #[arg(long, group = "q")]
    text: Option<String>,
    /// Query by example: the id of a stored item.
    #[arg(long, group = "q")]
    like: Option<u64>,
    /// Query vector: a .npy file (its first row) or a JSON array of numbers.
    #[arg(long, group = "q")]
    vector: Option<PathBuf>,
    /// Results wanted.
    #[arg(long, default_value_t = 10)]
    k: usize,
    #[command(flatten)]
    region: RegionArgs,
    /// Exact scans (recall 1.0) instead of graph walks.
    #[arg(long)]
    exact: bool,
    /// Graph beam width (default: the library's rule).
    #[arg(long)]
    ef: Option<usize>,
    /// How far graph walks go, as a multiple of the data's hop slack (default 1; in (0,
    /// 64]): below 1 faster and may miss more. Not with --ef.
    #[arg(long, allow_negative_numbers = true, conflicts_with = "ef")]
    effort: Option<f32>,
    /// Print the physical plan on stderr.
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Output format.
    #[arg(long, default_value = "csv")]
    format: Format,
    #[command(flatten)]
    model: ModelArgs,
}

/// The rows a search or map keeps to.
#[derive(Args)]
struct RegionArgs {
    /// west,south,east,north in degrees (west > east crosses the antimeridian).
    #[arg(long, value_parser = floats::<4>, allow_hyphen_values = true)]
    bbox: Option<[f64; 4]>,
    /// lat,lon,km: great-circle distance.
    #[arg(long, value_parser = floats::<3>, allow_hyphen_values = true)]
    radius: Option<[f64; 3]>,
    /// Time range t0 t1, Unix seconds, inclusive.
    #[arg(long, num_args = 2, value_names = ["T0", "T1"], allow_hyphen_values = true,
          action = clap::ArgAction::Set)]
    between: Option<Vec<i64>>,
    /// Only rows inside the polygons of a GeoJSON file (Polygon / MultiPolygon with holes, a
    /// Feature, a FeatureCollection; [lon, lat] positions), as `sat2cap --aoi` reads it.
    #[arg(long, value_name = "FILE.geojson")]
    aoi: Option<PathBuf>,
}

impl RegionArgs {
    /// The region the flags give, checked.
    fn region(&self) -> Result<Region, Failure> {
        // The file is read and checked here, and its text travels with the plan.
        let aoi = match &self.aoi {
            Some(p) => Some(read_geojson(p).map_err(|e| Failure::input(format!("--aoi {e}")))?),
            None => None,
        };
        let r = Region {
            bbox: self.bbox,
            radius: self.radius,
            time: self.between.as_deref().map(|t| [t[0], t[1]]),
            polygon: None,
            aoi,
        };
        let alone = [
            (
                "--bbox",
                Region {
                    bbox: r.bbox,
                    ..Region::default()
                },
            ),
            (
                "--radius",
                Region {
                    radius: r.radius,
                    ..Region::default()
                },
            ),
            (
                "--between",
                Region {
                    time: r.time,
                    ..Region::default()
                },
            ),
        ];
        for (flag, one) in alone {
            one.filter()
                .map_err(|e| Failure::input(format!("{flag}: {e}")))?;
        }
        Ok(r)
    }
}

/// Where a search or map runs.
#[derive(Args)]
struct ClusterArgs {
    /// Run on the Ballista scheduler at this URL (df://host:port) instead of in this process.
    #[arg(long, value_name = "URL")]
    scheduler: Option<String>,
    /// With --scheduler: seconds before an unfinished query is abandoned (exit 1).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

impl ClusterArgs {
    /// A session on the scheduler, if one was given.
    async fn remote(
        &self,
        cat: Arc<Catalog>,
        embed: Option<TextEmbedder>,
    ) -> Result<Option<cluster::Remote>, Error> {
        let Some(url) = &self.scheduler else {
            return Ok(None);
        };
        let deadline = std::time::Duration::from_secs(self.timeout);
        Ok(Some(
            cluster::Remote::connect(url, cat, embed, deadline).await?,
        ))
    }
}

/// One zero-shot map of prompts over every shard's tiles, written as the single-database
/// `sat2cap map` writes it.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap-dist map tiles-sharded \"a lake\" \"farmland\" --out maps/alps --weights ./weights
  sat2cap-dist map tiles-sharded \"people fishing on a boat\" --bbox 5.9,45.8,10.5,47.8 \\
      --out maps/lakes --scheduler df://127.0.0.1:50050 --weights ./weights

Each shard scores its tiles where it lives (shards outside the region are not read); the
tiles are gathered here and drawn as one map: PREFIX.png, .tif (COG), .geojson, .csv, .pgw,
.prj, the same files, byte for byte, as `sat2cap map` writes for one database holding every
shard's rows. With --datetime or --hours each shard's tiles are re-encoded with the dynamic
encoder where the shard lives (the tiles' images and the weights at the same paths there).")]
struct MapArgs {
    /// The catalog folder (or its catalog.json).
    catalog: PathBuf,
    /// The prompts, one panel each.
    #[arg(required = true)]
    prompts: Vec<String>,
    /// Output prefix.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    region: RegionArgs,
    /// Re-encode the tiles with the dynamic encoder at this date and hour on the local wall
    /// clock (`sat2cap map --datetime`), where each shard lives.
    #[arg(long)]
    datetime: Option<String>,
    /// Hours of the day, one panel per prompt and hour (re-encodes the tiles; the date from
    /// --datetime, else from each tile's stored time).
    #[arg(long, value_delimiter = ',')]
    hours: Vec<u32>,
    /// Also write a web map (XYZ tiles of the scores and index.html) into this folder.
    #[arg(long, value_name = "DIR")]
    web: Option<PathBuf>,
    /// The web map's basemap: a {z}/{x}/{y} tile URL template.
    #[arg(long, value_name = "URL", requires = "web")]
    basemap: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct ModelArgs {
    /// Weights folder for --text (layout: sat2cap's docs/ENCODERS.md); default: $SAT2CAP_WEIGHTS.
    #[arg(long, value_name = "DIR")]
    weights: Option<PathBuf>,
    /// Without weights, seeded random encoders (the pipeline runs; results mean nothing).
    #[arg(long)]
    random_weights: bool,
}

/// Run SQL over a catalog: the table function sat2cap_search(query, k [, exact]) and the
/// table `shards`.
#[derive(Args)]
#[command(after_help = "Examples:
  sat2cap-dist sql tiles-sharded \"SELECT name, rows FROM shards ORDER BY rows DESC LIMIT 5\"
  sat2cap-dist sql tiles-sharded \"SELECT id, score, lat, lon FROM sat2cap_search(1234, 100)
      WHERE lat BETWEEN 45.8 AND 47.8 AND lon BETWEEN 5.9 AND 10.5 ORDER BY score DESC\"
  sat2cap-dist sql tiles-sharded --weights ./weights \\
      \"SELECT id, score FROM sat2cap_search('people fishing on a boat', 50)\"

query is a text (needs --weights or --random-weights) or the id of a stored item. Ranges on
lat, lon and time in WHERE are searched within (the k rows are the best of the rows inside);
other conditions filter the k rows.")]
struct SqlArgs {
    /// The catalog folder (or its catalog.json).
    catalog: PathBuf,
    /// The SQL statement.
    sql: String,
    /// With --scheduler, only sat2cap_search runs there: the `shards` table is local.
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Output format.
    #[arg(long, default_value = "table")]
    format: Format,
    #[command(flatten)]
    model: ModelArgs,
}

/// The largest area file `--aoi` reads (as `sat2cap --aoi`).
const MAX_AOI_BYTES: u64 = 64 << 20;

/// The text of a GeoJSON area file, checked: a regular file (a FIFO or a folder is refused,
/// not waited on) of at most [`MAX_AOI_BYTES`], in UTF-8; the error names the file.
fn read_geojson(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let m = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if !m.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    if m.len() > MAX_AOI_BYTES {
        return Err(format!("{shown}: larger than {} MiB", MAX_AOI_BYTES >> 20));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_AOI_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("{shown}: {e}"))?;
    sat2cap::jobs::parse_area(text.as_bytes()).map_err(|e| format!("{shown}: {e}"))?;
    Ok(text)
}

fn floats<const N: usize>(s: &str) -> Result<[f64; N], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|e| format!("'{x}': {e}")))
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<f64>| format!("expected {N} comma-separated numbers, got {}", v.len()))
}

/// A failure: a one-line message and an exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn input(m: impl std::fmt::Display) -> Failure {
        Failure {
            message: m.to_string(),
            code: 2,
        }
    }
    fn runtime(m: impl std::fmt::Display) -> Failure {
        Failure {
            message: m.to_string(),
            code: 1,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Catalog { .. } | Error::Query(_) | Error::Input(_) => Failure::input(e),
            Error::DataFusion(ref d) if is_plan_error(d) => Failure::input(e),
            e => Failure::runtime(e),
        }
    }
}

fn is_plan_error(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    matches!(
        e.find_root(),
        D::Plan(_) | D::SQL(..) | D::SchemaError(..) | D::NotImplemented(_)
    )
}

impl From<datafusion::error::DataFusionError> for Failure {
    fn from(e: datafusion::error::DataFusionError) -> Failure {
        Error::from(e).into()
    }
}

impl From<sat2cap::jobs::JobError> for Failure {
    fn from(e: sat2cap::jobs::JobError) -> Failure {
        match e {
            sat2cap::jobs::JobError::Input(m) => Failure::input(m),
            e => Failure::runtime(e),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Shard(a) => run_shard(a),
        Command::IngestTiles(a) => run_ingest_tiles(a),
        Command::Info(a) => run_info(a),
        Command::Search(a) => run_search(a),
        Command::Map(a) => run_map(a),
        Command::Sql(a) => run_sql(a),
        Command::Scheduler(a) => run_scheduler(a),
        Command::Executor(a) => run_executor(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let mut err = std::io::stderr().lock();
            let line = f.message.replace(['\n', '\r'], " ");
            let _ = writeln!(err, "error: {line}");
            ExitCode::from(f.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)
}

/// Writes `text` to stdout; a closed pipe or full disk is an error, not a panic.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("writing the output: {e}")))
}

/// Batches in a format; with no batch, the CSV header still names `schema`'s columns.
fn render(
    schema: &datafusion::arrow::datatypes::Schema,
    batches: &[RecordBatch],
    format: Format,
) -> Result<String, Failure> {
    use datafusion::arrow::{csv, json, util::pretty};
    let arrow = |e: datafusion::arrow::error::ArrowError| Failure::runtime(e);
    match format {
        Format::Table => Ok(format!(
            "{}\n",
            pretty::pretty_format_batches(batches).map_err(arrow)?
        )),
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = csv::WriterBuilder::new().with_header(true).build(&mut buf);
                for b in batches {
                    w.write(b).map_err(arrow)?;
                }
            }
            if batches.is_empty() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                buf.extend_from_slice(format!("{}\n", names.join(",")).as_bytes());
            }
            String::from_utf8(buf).map_err(Failure::runtime)
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b).map_err(arrow)?;
                }
                w.finish().map_err(arrow)?;
            }
            String::from_utf8(buf).map_err(Failure::runtime)
        }
    }
}

fn run_shard(a: ShardArgs) -> Result<(), Failure> {
    let By::Quadkey = a.by;
    let opts = ShardOptions {
        collection: a.collection,
        level: a.level,
    };
    let cat = shard(&a.src_db, &a.out_dir, &opts, &sat2cap::Silent)?;
    print(&format!(
        "{} rows of '{}' in {} shards (quadkey level {}): {}\n",
        cat.rows,
        cat.collection,
        cat.shards.len(),
        a.level,
        cat.dir.join(sat2cap_dist::catalog::FILE_NAME).display()
    ))
}

fn run_info(a: InfoArgs) -> Result<(), Failure> {
    let cat = Catalog::open(&a.catalog)?;
    let mut text = format!(
        "collection '{}', dim {}, {} rows in {} shards ({:?})\n",
        cat.collection,
        cat.dim,
        cat.rows,
        cat.shards.len(),
        cat.scheme
    );
    for s in &cat.shards {
        text.push_str(&format!(
            "{}\t{}\t{} rows\tregion {:?}\textent {:?}\n",
            s.name, s.path, s.rows, s.region, s.extent
        ));
    }
    print(&text)
}

/// The text encoder of `m`, checked against the catalog's model.
fn run_ingest_tiles(a: IngestTilesArgs) -> Result<(), Failure> {
    let spec = IngestSpec {
        dir: std::path::absolute(&a.dir).map_err(Failure::input)?,
        level: a.level,
        collection: a.collection.clone(),
        tile_deg: a.tile_deg,
        datetime: a.datetime.clone(),
        model: model_spec(&a.model),
        skip_bad: a.skip_bad,
    };
    sat2cap_dist::ingest::check(&spec)?;
    if !spec.model.random && spec.model.weights.is_none() {
        return Err(Failure::input(
            "give --weights DIR (or $SAT2CAP_WEIGHTS), or --random-weights to run the pipeline",
        ));
    }
    let rt = runtime()?;
    let remote = match &a.cluster.scheduler {
        Some(url) => {
            let deadline = std::time::Duration::from_secs(a.cluster.timeout);
            Some(rt.block_on(cluster::Remote::connect_jobs(url, deadline))?)
        }
        None => None,
    };
    let (cat, skipped, left_out) = rt.block_on(sat2cap_dist::ingest::ingest(
        &a.out_dir,
        spec,
        |tasks, spec| async move {
            match &remote {
                Some(r) => r.run(tasks, spec).await,
                None => sat2cap_dist::ingest::run_here(tasks, spec).await,
            }
        },
    ))?;
    let mut err = std::io::stderr().lock();
    if skipped > 0 {
        let _ = writeln!(
            err,
            "{skipped} file(s) in {} are not tiles and were skipped",
            a.dir.display()
        );
    }
    for line in &left_out {
        let _ = writeln!(err, "left out: {line}");
    }
    drop(err);
    if a.json {
        let v = serde_json::json!({
            "catalog": cat.file,
            "collection": cat.collection,
            "rows": cat.rows,
            "shards": cat.shards.len(),
            "dim": cat.dim,
            "skipped": skipped,
            "failed": left_out,
        });
        return print(&format!("{v}\n"));
    }
    print(&format!(
        "{} tiles of '{}' in {} shards: {}\n",
        cat.rows,
        cat.collection,
        cat.shards.len(),
        cat.file.display()
    ))
}

/// The weights the flags (or `SAT2CAP_WEIGHTS`) name; `SAT2CAP_TINY_MODEL` asks for the
/// tiny test shapes, as it does of `sat2cap` (integration tests only).
fn model_spec(m: &ModelArgs) -> ModelSpec {
    ModelSpec {
        weights: m
            .weights
            .clone()
            .or_else(|| std::env::var_os("SAT2CAP_WEIGHTS").map(PathBuf::from)),
        random: m.random_weights,
        tiny: std::env::var("SAT2CAP_TINY_MODEL").is_ok_and(|v| !v.is_empty() && v != "0"),
    }
}

/// The model the flags (or `SAT2CAP_WEIGHTS`) name, its text encoder checked against the
/// catalog's vectors. `SAT2CAP_TINY_MODEL` asks for the tiny test shapes, as it does of
/// `sat2cap` (integration tests only).
fn text_model(cat: &Catalog, m: &ModelArgs) -> Result<Arc<Model>, Failure> {
    let s = model_spec(m);
    let model = Model::load(&ModelOptions {
        weights: s.weights,
        random: s.random,
        tiny: s.tiny,
        ..ModelOptions::default()
    })?;
    let clip = model.fingerprint(EncoderKind::ClipText).clip;
    if let Some(i) = cat.shards.iter().position(|s| s.rows > 0) {
        let db = cat.open_shard(i)?;
        let snap = db.snapshot();
        let coll = snap.collection(&cat.collection).map_err(Failure::runtime)?;
        if let Some(stored) = ModelFingerprint::of(&coll)? {
            if stored.clip != clip {
                return Err(Failure::input(format!(
                    "the catalog's vectors live in the CLIP space of {} but the text encoder \
                     given is {}: their scores would be meaningless",
                    stored.clip, clip
                )));
            }
        }
    }
    Ok(Arc::new(model))
}

fn text_embedder(cat: &Catalog, m: &ModelArgs) -> Result<TextEmbedder, Failure> {
    let model = text_model(cat, m)?;
    Ok(Arc::new(move |text: &str| {
        model
            .embed_text(&[text])
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| "the text was not encoded".to_string())
    }))
}

fn run_search(a: SearchArgs) -> Result<(), Failure> {
    let cat = Catalog::open(&a.catalog)?;
    let conditions = SearchSpec {
        region: a.region.region()?,
        exact: a.exact,
        ef: a.ef,
        effort: a.effort,
        ..SearchSpec::new(Vec::new(), a.k)
    };
    // The flags are checked before a model loads or an example is looked up.
    if conditions.k == 0 {
        return Err(Failure::input("--k: k must be at least 1"));
    }
    conditions.filter()?;
    let vector = if let Some(text) = &a.text {
        text_embedder(&cat, &a.model)?(text).map_err(Failure::runtime)?
    } else if let Some(id) = a.like {
        vector_of(&cat, id)?
    } else if let Some(path) = &a.vector {
        sat2cap::jobs::read_vector(path)?
    } else {
        return Err(Failure::input("give a query: --text, --like or --vector"));
    };
    let spec = SearchSpec {
        vector,
        ..conditions
    };
    if a.explain && a.cluster.scheduler.is_some() {
        return Err(Failure::input(
            "--explain shows the plan of this process; it does not go with --scheduler",
        ));
    }
    let rt = runtime()?;
    let cat = Arc::new(cat);
    if let Some(remote) = rt.block_on(a.cluster.remote(cat.clone(), None))? {
        let batches = rt.block_on(remote.search(spec))?;
        return print(&render(&result_schema(), &batches, a.format)?);
    }
    let plan = sat2cap_dist::plan::search_plan(&cat, spec)?;
    if a.explain {
        let shown = datafusion::physical_plan::displayable(plan.as_ref()).indent(true);
        let _ = write!(std::io::stderr().lock(), "{shown}");
    }
    let ctx = SessionContext::new();
    let batches = rt.block_on(datafusion::physical_plan::collect(plan, ctx.task_ctx()))?;
    print(&render(&result_schema(), &batches, a.format)?)
}

fn run_map(a: MapArgs) -> Result<(), Failure> {
    let cat = Arc::new(Catalog::open(&a.catalog)?);
    let region = a.region.region()?;
    let at = (a.datetime.is_some() || !a.hours.is_empty()).then(|| MapAt {
        datetime: a.datetime.clone(),
        hours: a.hours.clone(),
        model: model_spec(&a.model),
    });
    let time = match &at {
        Some(at) => at.wall()?,
        None => None,
    };
    let req = MapRequest {
        collection: cat.collection.clone(),
        prompts: a.prompts.clone(),
        region: region.filter()?,
        time,
        hours: a.hours.clone(),
        out: a.out.clone(),
        mosaic: false,
        web: a.web.clone(),
        basemap: a.basemap.clone(),
    };
    // The request is checked before a model loads or a shard is read.
    req.check()?;
    let model = text_model(&cat, &a.model)?;
    let prompts: Vec<&str> = a.prompts.iter().map(String::as_str).collect();
    let queries = model.embed_text(&prompts).map_err(Failure::runtime)?;
    if at.is_some() && !model.has_dynamic() {
        return Err(Failure::input(
            "--datetime/--hours need the dynamic encoder (geo_encoder.* in the Sat2Cap weights); \
             the loaded model has none",
        ));
    }
    let spec = MapSpec {
        queries,
        region,
        at,
    };
    let rt = runtime()?;
    let tiles = match rt.block_on(a.cluster.remote(cat.clone(), None))? {
        Some(remote) => rt.block_on(remote.map(spec))?,
        None => {
            let ctx = SessionContext::new();
            rt.block_on(sat2cap_dist::plan::map(&cat, spec, ctx.task_ctx()))?
        }
    };
    let panels = sat2cap::jobs::map_panels(&cat.collection, &a.prompts, &a.hours, tiles)?;
    let report = req.write_panels(model.is_random(), &panels)?;
    if a.json {
        let text = serde_json::to_string(&report).map_err(Failure::runtime)?;
        return print(&format!("{text}\n"));
    }
    let mut text = format!(
        "{} tiles, {} panel(s): {}\n",
        report.tiles, report.panels, report.files
    );
    if let Some(w) = &report.web {
        text.push_str(&format!("web map: {}\n", w.join("index.html").display()));
    }
    print(&text)
}

fn vector_of(cat: &Catalog, id: u64) -> Result<Vec<f32>, Failure> {
    cat.vector_of(id)
        .map_err(Failure::runtime)?
        .ok_or_else(|| Failure::input(format!("no item has id {id}")))
}

fn run_sql(a: SqlArgs) -> Result<(), Failure> {
    let cat = Arc::new(Catalog::open(&a.catalog)?);
    let embed = if a.model.weights.is_some()
        || a.model.random_weights
        || std::env::var_os("SAT2CAP_WEIGHTS").is_some()
    {
        Some(text_embedder(&cat, &a.model)?)
    } else {
        None
    };
    let (schema, batches) = runtime()?.block_on(async {
        match a.cluster.remote(cat.clone(), embed.clone()).await? {
            Some(remote) => remote.sql(&a.sql).await,
            None => {
                let ctx = SessionContext::new();
                register(&ctx, cat, embed)?;
                let df = ctx.sql(&a.sql).await?;
                let schema = df.schema().inner().clone();
                Ok::<_, Error>((schema, df.collect().await?))
            }
        }
    })?;
    print(&render(&schema, &batches, a.format)?)
}

/// Ballista's log on stderr: warnings and errors, or what RUST_LOG says.
fn init_log() {
    let mut b = env_logger::Builder::new();
    b.filter_level(log::LevelFilter::Warn);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    let _ = b.try_init();
}

fn run_scheduler(a: SchedulerArgs) -> Result<(), Failure> {
    if a.executor_timeout == 0 {
        return Err(Failure::input("--executor-timeout must be at least 1"));
    }
    let o = cluster::SchedulerOptions {
        bind: a.bind,
        executor_timeout_s: a.executor_timeout,
    };
    init_log();
    eprintln!("sat2cap-dist scheduler listening on {}", a.bind);
    Ok(runtime()?.block_on(cluster::run_scheduler(&o))?)
}

fn run_executor(a: ExecutorArgs) -> Result<(), Failure> {
    let (host, port) = a
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| {
            Failure::input(format!("--scheduler {:?}: expected host:port", a.scheduler))
        })?;
    if a.heartbeat == 0 {
        return Err(Failure::input("--heartbeat must be at least 1"));
    }
    let o = cluster::ExecutorOptions {
        bind: a.bind,
        grpc_port: a.grpc_port,
        scheduler: (host, port),
        vcores: a.vcores,
        heartbeat_s: a.heartbeat,
        work_dir: a.work_dir,
    };
    init_log();
    eprintln!(
        "sat2cap-dist executor on {} (scheduler {})",
        a.bind, a.scheduler
    );
    Ok(runtime()?.block_on(cluster::run_executor(&o))?)
}
