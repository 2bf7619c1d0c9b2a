//! `sat2cap map`: zero-shot maps of one or more prompts over a region.

use std::path::PathBuf;

use clap::Args;
use sat2cap::encoders::Meta;
use sat2cap::jobs::map::{load_tile_images, region_tiles, score_stored, score_vectors, write_map};

use sat2cap::jobs::fingerprint::check_space;

use crate::jobs_common::{bar, print_json, warn, ModelArgs};
use crate::CliError;

/// Cosine of each prompt against every tile in the box, min-max scaled over the region:
/// PREFIX.png (one panel per prompt / hour), PREFIX.geojson, PREFIX.csv, PREFIX.pgw.
#[derive(Args, Debug)]
#[command(
    after_help = "With --datetime or --hours the tiles are re-encoded with the dynamic encoder
(needs Sat2Cap weights with geo_encoder.*; an error otherwise). --hours takes its date from
--datetime, else from each tile's stored time.

Examples:
  sat2cap map \"people fishing on a boat\" \"a busy street\" --db my.db \\
      --bbox 6.59,46.49,6.68,46.55 --out maps/lausanne --mosaic
  sat2cap map \"a crowded beach\" --db my.db --bbox 6.59,46.49,6.68,46.55 \\
      --datetime 2023-07-01T00:00:00 --hours 6,12,18 --out maps/beach --weights w/"
)]
pub struct MapArgs {
    /// One or more prompts (one panel each).
    #[arg(required = true)]
    prompts: Vec<String>,
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Region W,S,E,N (default: every tile).
    #[arg(long, allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Date and time for the dynamic encoder.
    #[arg(long)]
    datetime: Option<String>,
    /// Hours of the day, comma-separated (one panel per prompt and hour).
    #[arg(long, value_delimiter = ',')]
    hours: Vec<u32>,
    /// Output prefix (PREFIX.png, .geojson, .csv, .pgw).
    #[arg(long)]
    out: PathBuf,
    /// Blend the colours over the tile images (paths from the payloads).
    #[arg(long)]
    mosaic: bool,
    /// Collection of tiles.
    #[arg(long, default_value = sat2cap::jobs::OVERHEAD)]
    collection: String,
    /// Print the written files as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

/// Runs `map`.
pub fn run(a: MapArgs) -> Result<(), CliError> {
    let bbox = a
        .bbox
        .as_deref()
        .map(sat2cap::jobs::parse_bbox)
        .transpose()?;
    let base_time = a
        .datetime
        .as_deref()
        .map(sat2cap::time::parse)
        .transpose()
        .map_err(|e| CliError::input(format!("bad --datetime: {e}")))?;
    if let Some(h) = a.hours.iter().find(|&&h| h > 23) {
        return Err(CliError::input(format!(
            "--hours: {h} is not an hour (0..=23)"
        )));
    }
    let dynamic = base_time.is_some() || !a.hours.is_empty();
    let snap = sat2cap::jobs::open_snapshot(&a.db)?;
    let view = sat2cap::jobs::collection(&snap, &a.collection)?;
    let tiles = region_tiles(view, bbox.as_ref())?;
    let (enc, source) = a.model.load(a.json)?;
    warn(check_space(
        view,
        &source.clip_id(),
        "the prompts' text encoder",
    )?);
    if dynamic && !enc.has_dynamic() {
        return Err(CliError::input(
            "--datetime/--hours need the dynamic encoder (geo_encoder.* in the Sat2Cap weights, \
             see docs/ENCODERS.md); the loaded model has none",
        ));
    }
    let prompts: Vec<&str> = a.prompts.iter().map(String::as_str).collect();
    let qs = enc.encode_text(&prompts).map_err(CliError::runtime)?;
    let mut panels = Vec::new();
    if dynamic {
        let paths: Vec<PathBuf> = tiles
            .iter()
            .map(|t| {
                t.path.clone().ok_or_else(|| {
                    CliError::input(format!("tile {} has no image path in its payload", t.id))
                })
            })
            .collect::<Result<_, _>>()?;
        let hours: Vec<Option<u32>> = if a.hours.is_empty() {
            vec![None]
        } else {
            a.hours.iter().map(|&h| Some(h)).collect()
        };
        // Every tile needs a time before anything is encoded.
        let mut times = Vec::with_capacity(tiles.len());
        for t in &tiles {
            let stored = view.get(t.id).ok().flatten().and_then(|i| i.time);
            times.push(base_time.or(stored).ok_or_else(|| {
                CliError::input(format!("tile {} has no stored time: give --datetime", t.id))
            })?);
        }
        let pb = bar("re-encode tiles");
        pb.set_length((tiles.len() * hours.len()) as u64);
        for h in hours {
            let mut vs: Vec<Vec<f32>> = Vec::with_capacity(tiles.len());
            for start in (0..tiles.len()).step_by(16) {
                let end = (start + 16).min(tiles.len());
                let bytes: Vec<Vec<u8>> = paths[start..end]
                    .iter()
                    .map(|p| {
                        std::fs::read(p)
                            .map_err(|e| CliError::runtime(format!("{}: {e}", p.display())))
                    })
                    .collect::<Result<_, _>>()?;
                let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
                let metas: Vec<Meta> = (start..end)
                    .map(|i| {
                        let d = sat2cap::time::from_unix(times[i]);
                        Meta {
                            lat: tiles[i].cell.center.lat(),
                            lon: tiles[i].cell.center.lon(),
                            year: d.year,
                            month: d.month,
                            day: d.day,
                            hour: h.unwrap_or(d.hour),
                        }
                    })
                    .collect();
                for (i, r) in enc
                    .encode_overhead_bytes(&refs, Some(&metas))
                    .into_iter()
                    .enumerate()
                {
                    let p = &paths[start + i];
                    vs.push(r.map_err(|e| CliError::runtime(format!("{}: {e}", p.display())))?);
                }
                pb.inc((end - start) as u64);
            }
            for (p, q) in a.prompts.iter().zip(&qs) {
                let caption = match h {
                    Some(h) => format!("\"{p}\" at {h:02}:00"),
                    None => format!("\"{p}\""),
                };
                panels.push((caption, score_vectors(&tiles, &vs, q)));
            }
        }
        pb.finish_and_clear();
    } else {
        for (p, q) in a.prompts.iter().zip(&qs) {
            panels.push((format!("\"{p}\""), score_stored(view, &tiles, q)?));
        }
    }
    let images = a.mosaic.then(|| load_tile_images(&tiles));
    let title = match source {
        sat2cap::jobs::model::ModelSource::Random { .. } => {
            "zero-shot map (RANDOM weights: pipeline only)".to_string()
        }
        _ => "sat2cap zero-shot map".to_string(),
    };
    let files = write_map(&a.out, &title, &panels, images.as_deref())?;
    if a.json {
        return print_json(&files);
    }
    println!(
        "{} tiles, {} panel(s): {} ({} x {} px), {}, {}, {}",
        tiles.len(),
        panels.len(),
        files.png.display(),
        files.width,
        files.height,
        files.geojson.display(),
        files.csv.display(),
        files.pgw.display()
    );
    Ok(())
}
