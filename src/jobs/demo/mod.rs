//! The self-contained demo: renders a synthetic region over Lausanne (overhead tiles and
//! ground-level photos), encodes and stores them, draws a two-prompt zero-shot map, runs a
//! filtered search, an overhead-to-ground lookup, a caption lookup and a retrieval evaluation,
//! timing each step. Needs no weights and no network (random encoders, labelled as such).

use std::path::{Path, PathBuf};
use std::time::Instant;

pub mod scene;

use scene::{render_ground, render_overhead, Region, LAUSANNE};

use super::ingest::{ingest_captions, ingest_ground, ingest_tiles, IngestOptions, TileOptions};
use super::lookup::{top_k, Match};
use super::map::{load_tile_images, map_panels, region_tiles, score_tiles, RegionTile};
use super::map_files::{write_map, MapFiles};
use super::model::{Embedder, Model, ModelOptions, ModelSource};
use super::{eval, JobError, CAPTIONS, GROUND, OVERHEAD};
use crate::{BBox, Collection, Db, Filter, OpenOptions, Point, Progress, Radius, Snapshot, Unit};

/// The caption bank the demo stores.
pub const DEMO_CAPTIONS: [&str; 12] = [
    "people fishing on a boat on the lake",
    "a sailing boat on blue water",
    "a quiet lakeside beach",
    "a dense green forest",
    "hiking on a trail between tall trees",
    "a tractor ploughing a field",
    "rows of crops in farmland",
    "cows grazing in a meadow",
    "a busy street with shops and cafes",
    "old houses with red roofs in a town",
    "a train station in the city",
    "a cathedral above the old town",
];

/// The two prompts of the demo map.
pub const DEMO_PROMPTS: [&str; 2] = ["people fishing on a boat", "houses and busy streets"];

/// Options of [`run_demo`].
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Output folder (the database is `OUT/demo.db`, replaced on each run).
    pub out: PathBuf,
    /// The encoders (default: seeded random ViT-B/32 on the CPU).
    pub model: ModelOptions,
    /// The user's own tiles instead of the synthetic region.
    pub tiles: Option<PathBuf>,
    /// Synthetic grid side (tiles per row and column).
    pub grid: u32,
    /// Synthetic tile side in pixels.
    pub tile_px: u32,
}

impl DemoOptions {
    /// Defaults: 8 x 8 tiles of 800 px, random encoders on the CPU.
    pub fn new(out: PathBuf) -> DemoOptions {
        DemoOptions {
            out,
            model: ModelOptions::random(),
            tiles: None,
            grid: 8,
            tile_px: 800,
        }
    }
}

/// One timed step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTiming {
    /// What ran.
    pub step: String,
    /// Items processed.
    pub items: usize,
    /// Seconds.
    pub seconds: f64,
}

/// What the demo produced.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Which weights.
    pub model: ModelSource,
    /// Per-step timings.
    pub timings: Vec<StepTiming>,
    /// The map files.
    pub map: MapFiles,
    /// The database folder.
    pub db: PathBuf,
}

/// Runs the demo, telling what it does through `progress` (its notes are the demo's
/// output: the map files, the search results, the metrics).
pub fn run_demo(opts: &DemoOptions, progress: &dyn Progress) -> Result<DemoReport, JobError> {
    let say = |m: &str| progress.note(m);
    let mut timings = Vec::new();
    let mut time = |step: &str, items: usize, t: Instant| {
        timings.push(StepTiming {
            step: step.to_string(),
            items,
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let out = &opts.out;
    claim_folder(out)?;
    // Held until the demo ends: a second demo into the same folder stops here instead of
    // deleting the files this one is writing.
    let _lock = lock_folder(out)?;
    // Every file the demo writes at the top of its folder, checked before any work.
    super::map_files::check_map_outputs(&out.join("map"))?;
    for name in ["pairs.csv", "captions.txt"] {
        crate::io::output::check(&out.join(name)).map_err(super::map_files::output_error)?;
    }

    let t = Instant::now();
    let model = Model::load(&opts.model)?;
    say(&format!("encoders: {}", model.describe()));
    let enc: &dyn Embedder = &model;
    time("load encoders", 0, t);

    // 1. The scene.
    let (tile_dir, ground) = match &opts.tiles {
        Some(d) => {
            say(&format!(
                "tiles: {} (no ground photos: the overhead-to-ground steps are skipped)",
                d.display()
            ));
            (d.clone(), None)
        }
        None => {
            let t = Instant::now();
            let n = render_scene(opts, progress)?;
            time("render synthetic region (tiles + photos)", n, t);
            (
                out.join("tiles"),
                Some((out.join("ground"), out.join("ground/photos.csv"))),
            )
        }
    };

    // 2. Store.
    let db_path = out.join("demo.db");
    if db_path.exists() {
        std::fs::remove_dir_all(&db_path)
            .map_err(|e| JobError::runtime(format!("removing old {}: {e}", db_path.display())))?;
    }
    let mut db = Db::open(&db_path, OpenOptions::create_new())?;
    let t = Instant::now();
    let opts_for = |collection: &str| IngestOptions {
        collection: collection.to_string(),
        ..IngestOptions::default()
    };
    let r = ingest_tiles(
        &mut db,
        enc,
        &tile_dir,
        &TileOptions {
            common: opts_for(OVERHEAD),
            time: crate::time::parse("2023-06-21T12:00:00").ok(),
            wall: None,
            tile_deg: None,
            part: None,
        },
        progress,
    )?;
    report_failures(&say, &r.failed);
    time("encode + store overhead tiles (Sat2Cap)", r.added, t);
    if let Some((gdir, csv)) = &ground {
        let t = Instant::now();
        let r = ingest_ground(&mut db, enc, gdir, csv, &opts_for(GROUND), progress)?;
        report_failures(&say, &r.failed);
        time("encode + store ground photos (CLIP)", r.added, t);
    }
    let t = Instant::now();
    let caps: Vec<String> = DEMO_CAPTIONS.iter().map(|s| s.to_string()).collect();
    let r = ingest_captions(&mut db, enc, &caps, &opts_for(CAPTIONS), progress)?;
    time("encode + store captions (CLIP text)", r.added, t);
    let snap = db.snapshot();
    drop(db);

    // 3. The map.
    let tiles_view = super::collection(&snap, OVERHEAD)?;
    let t = Instant::now();
    let tiles = region_tiles(&tiles_view, &crate::Filter::new())?;
    let prompts = enc.embed_text(&DEMO_PROMPTS).map_err(JobError::runtime)?;
    let names: Vec<String> = DEMO_PROMPTS.iter().map(|p| p.to_string()).collect();
    let scored = score_tiles(&snap, OVERHEAD, &crate::Filter::new(), &prompts)?;
    let panels = map_panels(OVERHEAD, &names, &[], scored)?;
    let images = load_tile_images(&tiles);
    let title = if enc.is_random() {
        "sat2cap demo: zero-shot map (RANDOM weights: pipeline only)"
    } else {
        "sat2cap demo: zero-shot map"
    };
    let map = write_map(&out.join("map"), title, &panels, Some(&images))?;
    time(
        "zero-shot map, 2 prompts (PNG, GeoJSON, CSV, world file)",
        tiles.len() * 2,
        t,
    );
    say(&format!("map: {map}"));

    // 4. Filtered search.
    let t = Instant::now();
    let center = centre_of(&tiles);
    let [w, s, e, n] = bounds(&tiles);
    let south_half = BBox::new(w, s, e, (s + n) / 2.0).map_err(JobError::runtime)?;
    let hits = top_k(&tiles_view, &prompts[0], 3, &Filter::new().bbox(south_half))?;
    say(&format!(
        "search \"{}\" in the southern half (bbox {w:.4},{s:.4},{e:.4},{:.4}):",
        DEMO_PROMPTS[0],
        (s + n) / 2.0
    ));
    print_hits(&say, &hits);
    let near = Radius::new(center.lat(), center.lon(), 2.0).map_err(JobError::runtime)?;
    let hits = top_k(&tiles_view, &prompts[1], 3, &Filter::new().radius(near))?;
    say(&format!(
        "search \"{}\" within 2 km of {:.4},{:.4}:",
        DEMO_PROMPTS[1],
        center.lat(),
        center.lon()
    ));
    print_hits(&say, &hits);
    time("filtered search (bbox, radius)", 2, t);

    // 5. Overhead -> ground, captions, retrieval.
    let probe = tiles
        .iter()
        .min_by(|a, b| {
            crate::geo::haversine_km(a.cell.center, center)
                .total_cmp(&crate::geo::haversine_km(b.cell.center, center))
        })
        .ok_or_else(|| JobError::runtime("no tiles"))?;
    let probe_vec = stored_vector(&tiles_view, probe.id)?;
    if ground.is_some() {
        let t = Instant::now();
        let gv = super::collection(&snap, GROUND)?;
        let r = Radius::new(probe.cell.center.lat(), probe.cell.center.lon(), 3.0)
            .map_err(JobError::runtime)?;
        let hits = top_k(&gv, &probe_vec, 3, &Filter::new().radius(r))?;
        say(&format!(
            "ground photos predicted by tile {} (within 3 km):",
            probe.id
        ));
        print_hits(&say, &hits);
        time("overhead -> ground lookup", 1, t);
    }
    let t = Instant::now();
    let hits = top_k(
        &super::collection(&snap, CAPTIONS)?,
        &probe_vec,
        3,
        &Filter::new(),
    )?;
    say(&format!("captions for tile {}:", probe.id));
    print_hits(&say, &hits);
    time("describe a tile (caption bank)", 1, t);
    if ground.is_some() {
        let t = Instant::now();
        let m = retrieval(&snap)?;
        say(&format!(
            "retrieval (each tile vs its {} paired photos): R@1 {:.3}  R@5 {:.3}  R@10 {:.3}  median rank {}",
            m.gallery, m.r_at_1, m.r_at_5, m.r_at_10, m.median_rank
        ));
        time("retrieval eval (R@k, median rank)", m.queries, t);
    }
    Ok(DemoReport {
        model: model.source().clone(),
        timings,
        map,
        db: db_path,
    })
}

fn report_failures(say: &dyn Fn(&str), failed: &[(String, String)]) {
    for (what, why) in failed {
        say(&format!("skipped {what}: {why}"));
    }
}

fn print_hits(say: &dyn Fn(&str), hits: &[Match]) {
    for h in hits {
        let label = h
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|v| {
                v.get("caption")
                    .or_else(|| v.get("path"))
                    .and_then(|s| s.as_str())
                    .map(|s| match Path::new(s).file_name() {
                        Some(f) if v.get("path").is_some() => f.to_string_lossy().into_owned(),
                        _ => s.to_string(),
                    })
            })
            .unwrap_or_default();
        say(&format!(
            "  id {:>4}  cos {:+.4}  {:.4},{:.4}  {label}",
            h.id, h.score, h.lat, h.lon
        ));
    }
}

fn stored_vector(view: &Collection<'_>, id: u64) -> Result<Vec<f32>, JobError> {
    let item = view
        .get(id)
        .map_err(JobError::runtime)?
        .ok_or_else(|| JobError::input(format!("no item {id} in '{}'", view.name())))?;
    Ok(item.vector.iter().map(|h| h.to_f32()).collect())
}

fn centre_of(tiles: &[RegionTile]) -> Point {
    let [w, s, e, n] = bounds(tiles);
    Point::new((s + n) / 2.0, (w + e) / 2.0).unwrap_or(tiles[0].cell.center)
}

fn bounds(tiles: &[RegionTile]) -> [f64; 4] {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for t in tiles {
        let c = t.cell.center;
        b = [
            b[0].min(c.lon()),
            b[1].min(c.lat()),
            b[2].max(c.lon()),
            b[3].max(c.lat()),
        ];
    }
    b
}

/// Each overhead tile against all ground photos; its pair is the photo taken nearest to its
/// centre (the demo takes one photo inside each tile).
fn retrieval(snap: &Snapshot) -> Result<eval::RetrievalMetrics, JobError> {
    let ov = super::collection(snap, OVERHEAD)?;
    let gv = super::collection(snap, GROUND)?;
    let mut points = Vec::new();
    let mut gallery = Vec::new();
    for item in gv.iter() {
        let item = item.map_err(JobError::runtime)?;
        points.push(item.point);
        gallery.push(item.vector.iter().map(|h| h.to_f32()).collect::<Vec<f32>>());
    }
    let mut ranks: Vec<f64> = Vec::new();
    for item in ov.iter() {
        let item = item.map_err(JobError::runtime)?;
        let d = |p: &Point| crate::geo::haversine_km(*p, item.point);
        let nearest = (0..points.len()).min_by(|&a, &b| d(&points[a]).total_cmp(&d(&points[b])));
        if let Some(j) = nearest {
            let q: Vec<f32> = item.vector.iter().map(|h| h.to_f32()).collect();
            ranks.push(eval::rank_of(&q, &gallery, j));
        }
    }
    Ok(eval::metrics(&ranks, gallery.len()))
}

/// The file that marks a folder as the demo's own: the demo replaces what it made there
/// before (`tiles/`, `ground/`, `demo.db/`, its CSVs and maps) and nothing else.
const MARKER: &str = ".sat2cap-demo";

/// Makes `out` the demo's folder: a new or empty folder gets the marker; a folder with the
/// marker is the demo's from an earlier run; any other folder is refused (the demo removes
/// and rewrites its subfolders, so it never works in a folder of the user's files).
fn claim_folder(out: &Path) -> Result<(), JobError> {
    let marker = out.join(MARKER);
    match std::fs::symlink_metadata(out) {
        Ok(m) if !m.is_dir() => {
            return Err(JobError::input(format!(
                "{} exists and is not a folder",
                out.display()
            )))
        }
        Ok(_) => {
            let empty = std::fs::read_dir(out)
                .map_err(|e| JobError::runtime(format!("{}: {e}", out.display())))?
                .next()
                .is_none();
            let marked = std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file());
            if !empty && !marked {
                return Err(JobError::input(format!(
                    "{} is not empty and was not made by the demo (no {MARKER} file in it): \
                     give a new or empty folder",
                    out.display()
                )));
            }
        }
        Err(_) => std::fs::create_dir_all(out)
            .map_err(|e| JobError::runtime(format!("creating {}: {e}", out.display())))?,
    }
    crate::io::output::write_whole(&marker, b"made by sat2cap demo\n")
        .map_err(super::map_files::output_error)
}

/// The demo's lock on its folder (`.sat2cap-demo.lock`, an exclusive lock on an open file:
/// released when the process ends, however it ends).
fn lock_folder(out: &Path) -> Result<std::fs::File, JobError> {
    let path = out.join(".sat2cap-demo.lock");
    let mut open = std::fs::OpenOptions::new();
    open.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = open
        .open(&path)
        .map_err(|e| JobError::runtime(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JobError::runtime(format!(
            "another sat2cap demo is writing into {}: wait for it to finish, or give another \
             folder",
            out.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(JobError::runtime(format!("{}: {e}", path.display())))
        }
    }
}

/// Renders the synthetic tiles (`OUT/tiles/{lat}_{lon}.jpg`), one ground photo per tile
/// (`OUT/ground/NNNN.jpg`, listed in `OUT/ground/photos.csv`) and `OUT/pairs.csv`.
fn render_scene(opts: &DemoOptions, progress: &dyn Progress) -> Result<usize, JobError> {
    let out = &opts.out;
    let center = Point::new(LAUSANNE.0, LAUSANNE.1).map_err(JobError::runtime)?;
    let region = Region::new("Lausanne", center, opts.grid, opts.grid, 0.01, 7);
    let (tdir, gdir) = (out.join("tiles"), out.join("ground"));
    for d in [&tdir, &gdir] {
        if d.exists() {
            std::fs::remove_dir_all(d)
                .map_err(|e| JobError::runtime(format!("{}: {e}", d.display())))?;
        }
        std::fs::create_dir_all(d)
            .map_err(|e| JobError::runtime(format!("{}: {e}", d.display())))?;
    }
    progress.begin("render scene", Some(region.tiles.len() as u64), Unit::Items);
    let mut photos = String::from("path,lat,lon,datetime\n");
    let mut pairs = String::from("overhead,ground,lat,lon,datetime\n");
    let io = |p: &Path, e: &dyn std::fmt::Display| {
        JobError::runtime(format!("writing {}: {e}", p.display()))
    };
    let gpx = (opts.tile_px / 2).max(32);
    for (i, t) in region.tiles.iter().enumerate() {
        let seed = region.seed ^ (i as u64) << 8;
        let name = format!("{:.5}_{:.5}.jpg", t.center.lat(), t.center.lon());
        let tp = tdir.join(&name);
        render_overhead(t.class, seed, opts.tile_px)
            .save_with_format(&tp, image::ImageFormat::Jpeg)
            .map_err(|e| io(&tp, &e))?;
        let gname = format!("{i:04}.jpg");
        let gp = gdir.join(&gname);
        render_ground(t.class, seed ^ 0xABCD, gpx, gpx * 3 / 4)
            .save_with_format(&gp, image::ImageFormat::Jpeg)
            .map_err(|e| io(&gp, &e))?;
        // The photo is taken inside its tile, a little off-centre, on the summer solstice.
        let (lat, lon) = (t.center.lat() + 0.002, t.center.lon() - 0.001);
        let hour = 8 + (i % 10);
        photos.push_str(&format!(
            "{gname},{lat:.6},{lon:.6},2023-06-21T{hour:02}:00:00\n"
        ));
        pairs.push_str(&format!(
            "tiles/{name},ground/{gname},{lat:.6},{lon:.6},2023-06-21T{hour:02}:00:00\n"
        ));
        progress.advance(1);
    }
    progress.end();
    let w = |p: PathBuf, s: &str| {
        crate::io::output::write_whole(&p, s.as_bytes()).map_err(super::map_files::output_error)
    };
    w(gdir.join("photos.csv"), &photos)?;
    w(out.join("pairs.csv"), &pairs)?;
    w(out.join("captions.txt"), &(DEMO_CAPTIONS.join("\n") + "\n"))?;
    Ok(region.tiles.len() * 2)
}
