//! `sat2cap eval-retrieval`: overhead -> ground retrieval, R@1/5/10 and median rank.

use std::path::{Path, PathBuf};

use clap::Args;
use sat2cap::encoders::Meta;
use sat2cap::jobs::eval::{metrics, rank_of, RetrievalMetrics};

use crate::jobs_common::{bar, print_json, ModelArgs};
use crate::CliError;

/// Each overhead tile queries a gallery of the paired ground photos; the rank of its own pair
/// gives recall@1/5/10 and the median rank, without and (when the dynamic encoder is loaded
/// and the rows carry lat, lon, datetime) with metadata.
#[derive(Args, Debug)]
#[command(
    after_help = "pairs.csv: header overhead,ground[,lat,lon,datetime]; paths relative to the CSV's
folder. A bad row or unreadable image drops that pair (reported); the rest go on.

Examples:
  sat2cap eval-retrieval --pairs pairs.csv --weights ~/sat2cap-weights
  sat2cap eval-retrieval --pairs demo-out/pairs.csv --gallery 64 --random-weights --json"
)]
pub struct EvalArgs {
    /// CSV of pairs.
    #[arg(long)]
    pairs: PathBuf,
    /// Gallery size (the first N valid pairs).
    #[arg(long, default_value_t = 10_000)]
    gallery: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

struct Pair {
    overhead: PathBuf,
    ground: PathBuf,
    meta: Option<Meta>,
}

fn read_pairs(path: &Path) -> Result<(Vec<Pair>, usize), CliError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| CliError::input(format!("cannot read {}: {e}", path.display())))?;
    let h = r
        .headers()
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?
        .clone();
    let col = |n: &str| h.iter().position(|x| x.eq_ignore_ascii_case(n));
    let (Some(co), Some(cg)) = (col("overhead"), col("ground")) else {
        return Err(CliError::input(format!(
            "{}: header must name overhead,ground[,lat,lon,datetime]",
            path.display()
        )));
    };
    let (clat, clon, cdt) = (col("lat"), col("lon"), col("datetime"));
    let mut out = Vec::new();
    let mut bad = 0;
    for (i, rec) in r.records().enumerate() {
        let row = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sat2cap: skipped {} row {row}: {e}", path.display());
                bad += 1;
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
        if get(Some(co)).is_empty() || get(Some(cg)).is_empty() {
            eprintln!("sat2cap: skipped {} row {row}: empty path", path.display());
            bad += 1;
            continue;
        }
        let meta = (|| {
            let t = sat2cap::time::from_unix(sat2cap::time::parse(get(cdt)).ok()?);
            let m = Meta {
                lat: get(clat).parse().ok()?,
                lon: get(clon).parse().ok()?,
                year: t.year,
                month: t.month,
                day: t.day,
                hour: t.hour,
            };
            m.validate().ok().map(|_| m)
        })();
        out.push(Pair {
            overhead: base.join(get(Some(co))),
            ground: base.join(get(Some(cg))),
            meta,
        });
    }
    Ok((out, bad))
}

#[derive(serde::Serialize)]
struct Row {
    metadata: bool,
    #[serde(flatten)]
    m: RetrievalMetrics,
}

/// Runs `eval-retrieval`.
pub fn run(a: EvalArgs) -> Result<(), CliError> {
    if a.gallery == 0 {
        return Err(CliError::input("--gallery must be at least 1"));
    }
    let (pairs, _) = read_pairs(&a.pairs)?;
    let (enc, _) = a.model.load(a.json)?;
    let mut ground = Vec::new();
    let mut over = Vec::new();
    let mut over_meta: Vec<Option<Vec<f32>>> = Vec::new();
    let pb = bar("pairs");
    pb.set_length(pairs.len().min(a.gallery) as u64);
    for p in &pairs {
        if ground.len() >= a.gallery {
            break;
        }
        let g = sat2cap::jobs::ingest::encode_image_file(&enc, &p.ground, false);
        let o = sat2cap::jobs::ingest::encode_image_file(&enc, &p.overhead, true);
        match (g, o) {
            (Ok(g), Ok(o)) => {
                let om = match (enc.has_dynamic(), p.meta) {
                    (true, Some(m)) => std::fs::read(&p.overhead)
                        .ok()
                        .and_then(|b| enc.encode_overhead_bytes(&[&b], Some(&[m])).pop())
                        .and_then(Result::ok),
                    _ => None,
                };
                ground.push(g);
                over.push(o);
                over_meta.push(om);
            }
            (Err(e), _) | (_, Err(e)) => eprintln!("sat2cap: skipped pair: {e}"),
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    if ground.is_empty() {
        return Err(CliError::input(format!(
            "no usable pairs in {}",
            a.pairs.display()
        )));
    }
    let ranks: Vec<usize> = over
        .iter()
        .enumerate()
        .map(|(i, q)| rank_of(q, &ground, i))
        .collect();
    let mut rows = vec![Row {
        metadata: false,
        m: metrics(&ranks, ground.len()),
    }];
    let with_meta = enc.has_dynamic() && over_meta.iter().all(Option::is_some);
    if with_meta {
        let ranks: Vec<usize> = over_meta
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.as_ref().map(|q| rank_of(q, &ground, i)))
            .collect();
        rows.push(Row {
            metadata: true,
            m: metrics(&ranks, ground.len()),
        });
    } else if !a.json {
        eprintln!(
            "note: {}: only the no-metadata row is printed",
            if enc.has_dynamic() {
                "some pairs lack lat, lon, datetime"
            } else {
                "no dynamic encoder (geo_encoder.*) loaded"
            }
        );
    }
    if a.json {
        return print_json(&rows);
    }
    println!("gallery {} | queries {}", ground.len(), ground.len());
    println!("| metadata | R@1 | R@5 | R@10 | median rank |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {} |",
            if r.metadata { "yes" } else { "no" },
            r.m.r_at_1,
            r.m.r_at_5,
            r.m.r_at_10,
            r.m.median_rank
        );
    }
    Ok(())
}
