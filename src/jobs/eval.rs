//! Overhead -> ground retrieval: each overhead tile queries a gallery of the paired
//! ground-level photos; the rank of its own pair gives recall@1/5/10 and the median rank,
//! without and (when the dynamic encoder is loaded and the pairs carry lat, lon, datetime)
//! with metadata.

use std::path::{Path, PathBuf};

use super::lookup::embed_image_file;
use super::model::Embedder;
use super::JobError;
use crate::encoders::Meta;
use crate::{Progress, Unit};

/// Recall@1/5/10 and median rank (1-based) over the queries.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RetrievalMetrics {
    /// Number of queries.
    pub queries: usize,
    /// Gallery size.
    pub gallery: usize,
    /// Fraction of queries whose pair ranks first.
    pub r_at_1: f64,
    /// ... in the top 5.
    pub r_at_5: f64,
    /// ... in the top 10.
    pub r_at_10: f64,
    /// Median rank of the pair (1 = best).
    pub median_rank: f64,
}

/// Rank (1-based) of `gallery[truth]` for `query`: 1 + the number of gallery items that score
/// strictly higher (ties favour the pair, as a stable sort would).
pub(crate) fn rank_of(query: &[f32], gallery: &[Vec<f32>], truth: usize) -> usize {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let s = dot(query, &gallery[truth]);
    1 + gallery.iter().filter(|g| dot(query, g) > s).count()
}

/// Metrics from ranks.
pub(crate) fn metrics(ranks: &[usize], gallery: usize) -> RetrievalMetrics {
    let n = ranks.len().max(1) as f64;
    let at = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
    let mut s = ranks.to_vec();
    s.sort_unstable();
    let median_rank = match s.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => s[l / 2] as f64,
        l => (s[l / 2 - 1] + s[l / 2]) as f64 / 2.0,
    };
    RetrievalMetrics {
        queries: ranks.len(),
        gallery,
        r_at_1: at(1),
        r_at_5: at(5),
        r_at_10: at(10),
        median_rank,
    }
}

/// Options of [`eval_retrieval`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// CSV of pairs: header `overhead,ground[,lat,lon,datetime]`, paths relative to the CSV's
    /// folder.
    pub pairs: PathBuf,
    /// Gallery size: the first this many usable pairs (>= 1).
    pub gallery: usize,
    /// Allow image paths leading outside the CSV's folder (`../`, absolute paths, symlinks
    /// out of it); without it such a pair is skipped, never read.
    pub allow_outside: bool,
}

/// One row of the result table.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EvalRow {
    /// Whether the overhead embeddings had metadata (date, hour, place).
    pub metadata: bool,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: RetrievalMetrics,
}

/// What [`eval_retrieval`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Without metadata, then (when every pair had it and a dynamic encoder is loaded) with.
    pub rows: Vec<EvalRow>,
    /// Pairs left out: `(which, why)`.
    pub skipped: Vec<Skipped>,
    /// Why there is no row with metadata, when there is none.
    pub no_metadata_row: Option<String>,
}

/// A pair left out: `(which, why)`.
type Skipped = (String, String);

struct Pair {
    /// Where it is listed: `FILE line N`.
    line: String,
    overhead: PathBuf,
    ground: PathBuf,
    meta: Option<Meta>,
}

fn read_pairs(path: &Path, allow_outside: bool) -> Result<(Vec<Pair>, Vec<Skipped>), JobError> {
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base = &std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let table = crate::io::text::CsvTable::open(path).map_err(JobError::input)?;
    let (Some(co), Some(cg)) = (table.column("overhead"), table.column("ground")) else {
        return Err(JobError::input(format!(
            "{}: header must name overhead,ground[,lat,lon,datetime]",
            path.display()
        )));
    };
    let (clat, clon, cdt) = (table.column("lat"), table.column("lon"), table.column("datetime"));
    let mut out = Vec::new();
    let bad = table
        .rows(|row, rec| {
            let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
            if get(Some(co)).is_empty() || get(Some(cg)).is_empty() {
                return Err("empty path".to_string());
            }
            let (overhead, ground) = (base.join(get(Some(co))), base.join(get(Some(cg))));
            if !allow_outside {
                let why = [&overhead, &ground]
                    .iter()
                    .find_map(|p| crate::io::input::outside(base, p));
                if let Some(why) = why {
                    return Err(format!("{why} (--allow-outside allows it)"));
                }
            }
            let meta = (|| {
                // The local wall clock as written, as the reference feeds GeoNet.
                let (_, t) = crate::time::parse_wall(get(cdt)).ok()?;
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
                line: row.to_string(),
                overhead,
                ground,
                meta,
            });
            Ok(())
        })
        .map_err(JobError::input)?;
    Ok((out, bad))
}

/// Ranks each overhead tile's own ground photo among the gallery of paired photos, with
/// the model `load` returns (loaded once the pairs file has been read). A bad row or an
/// unreadable image leaves that pair out: each is said through `progress` as it happens and
/// listed in the report.
pub fn eval_retrieval<E: Embedder>(
    load: impl FnOnce() -> Result<E, JobError>,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<EvalReport, JobError> {
    if opts.gallery == 0 {
        return Err(JobError::input("the gallery must hold at least 1 pair"));
    }
    let (pairs, mut skipped) = read_pairs(&opts.pairs, opts.allow_outside)?;
    for (what, why) in &skipped {
        progress.note(&format!("skipped {what}: {why}"));
    }
    let model = &load()?;
    let mut ground = Vec::new();
    let mut over = Vec::new();
    let mut over_meta: Vec<Option<Vec<f32>>> = Vec::new();
    progress.begin("pairs", Some(pairs.len().min(opts.gallery) as u64), Unit::Items);
    for p in &pairs {
        if ground.len() >= opts.gallery {
            break;
        }
        let g = embed_image_file(model, &p.ground, false);
        let o = embed_image_file(model, &p.overhead, true);
        match (g, o) {
            (Ok(g), Ok(o)) => {
                let om = match (model.has_dynamic(), p.meta) {
                    (true, Some(m)) => crate::io::input::read_whole(&p.overhead, crate::io::input::MAX_WHOLE_FILE)
                        .ok()
                        .and_then(|b| model.embed_overhead(&[&b], Some(&[m])).pop())
                        .and_then(Result::ok),
                    _ => None,
                };
                ground.push(g);
                over.push(o);
                over_meta.push(om);
            }
            (Err(e), _) | (_, Err(e)) => {
                // The error names the file that failed.
                progress.note(&format!("skipped {}: {e}", p.line));
                skipped.push((p.line.clone(), e.to_string()));
            }
        }
        progress.advance(1);
    }
    progress.end();
    if ground.is_empty() {
        return Err(JobError::input(format!(
            "no usable pairs in {}",
            opts.pairs.display()
        )));
    }
    let ranks: Vec<usize> = over
        .iter()
        .enumerate()
        .map(|(i, q)| rank_of(q, &ground, i))
        .collect();
    let mut rows = vec![EvalRow {
        metadata: false,
        metrics: metrics(&ranks, ground.len()),
    }];
    let mut no_metadata_row = None;
    if model.has_dynamic() && over_meta.iter().all(Option::is_some) {
        let ranks: Vec<usize> = over_meta
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.as_ref().map(|q| rank_of(q, &ground, i)))
            .collect();
        rows.push(EvalRow {
            metadata: true,
            metrics: metrics(&ranks, ground.len()),
        });
    } else {
        no_metadata_row = Some(
            if model.has_dynamic() {
                "some pairs lack lat, lon, datetime"
            } else {
                "no dynamic encoder (geo_encoder.*) loaded"
            }
            .to_string(),
        );
    }
    Ok(EvalReport {
        rows,
        skipped,
        no_metadata_row,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_metrics() {
        let g = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.7, 0.7]];
        assert_eq!(rank_of(&[1.0, 0.0], &g, 0), 1);
        assert_eq!(rank_of(&[1.0, 0.0], &g, 1), 3);
        let m = metrics(&[1, 3, 7, 20], 30);
        assert_eq!((m.r_at_1, m.r_at_5, m.r_at_10), (0.25, 0.5, 0.75));
        assert_eq!(m.median_rank, 5.0);
    }
}
