//! Retrieval between overhead tiles and their paired ground-level photos, the metrics of
//! Sat2Cap's Table 1, in both directions: each overhead tile queries the gallery of paired
//! photos (overhead -> ground), and each photo queries the gallery of tiles (ground ->
//! overhead). Recall@1/5/10 and the median rank of the true pair, without and (when the
//! dynamic encoder is loaded and the pairs carry lat, lon, datetime, or `--date-time`
//! gives the date) with metadata.
//!
//! The reference (mvrl/Sat2Cap `sat2cap/evaluations/metrics.py`) computes recall@k over
//! the overhead -> ground similarity rows and the median rank over its columns (ground ->
//! overhead); both directions are reported here, and the table says which figure is the
//! paper's. Ties: a pair's rank is its average rank among the gallery items scoring the
//! same (`1 + greater + equal / 2`, pandas' `rank(method="average")`, as the reference's
//! median); recall@k counts the pairs whose rank is at most `k`.

use std::path::{Path, PathBuf};

use super::model::Embedder;
use super::JobError;
use crate::encoders::Meta;
use crate::{Progress, Unit};

/// A file's bytes, or why it could not be read.
type FileBytes = Result<Vec<u8>, JobError>;

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

/// Rank (1-based) of `gallery[truth]` for `query`: 1 + the items scoring strictly higher +
/// half of the other items scoring the same (the average rank among ties).
pub(crate) fn rank_of(query: &[f32], gallery: &[Vec<f32>], truth: usize) -> f64 {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let s = dot(query, &gallery[truth]);
    let (mut greater, mut equal) = (0usize, 0usize);
    for (i, g) in gallery.iter().enumerate() {
        let d = dot(query, g);
        if d > s {
            greater += 1;
        } else if d == s && i != truth {
            equal += 1;
        }
    }
    1.0 + greater as f64 + equal as f64 / 2.0
}

/// Metrics from ranks.
pub(crate) fn metrics(ranks: &[f64], gallery: usize) -> RetrievalMetrics {
    let n = ranks.len().max(1) as f64;
    let at = |k: f64| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
    let mut s = ranks.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let median_rank = match s.len() {
        0 => f64::NAN,
        l if l % 2 == 1 => s[l / 2],
        l => (s[l / 2 - 1] + s[l / 2]) / 2.0,
    };
    RetrievalMetrics {
        queries: ranks.len(),
        gallery,
        r_at_1: at(1.0),
        r_at_5: at(5.0),
        r_at_10: at(10.0),
        median_rank,
    }
}

/// The metrics of `queries[i]` ranking `gallery[i]` among all of `gallery`.
pub(crate) fn paired_metrics(queries: &[Vec<f32>], gallery: &[Vec<f32>]) -> RetrievalMetrics {
    let ranks: Vec<f64> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| rank_of(q, gallery, i))
        .collect();
    metrics(&ranks, gallery.len())
}

/// Which way a retrieval goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Direction {
    /// Overhead tiles query ground-level photos.
    #[serde(rename = "overhead->ground")]
    OverheadToGround,
    /// Ground-level photos query overhead tiles.
    #[serde(rename = "ground->overhead")]
    GroundToOverhead,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::OverheadToGround => "overhead -> ground",
            Direction::GroundToOverhead => "ground -> overhead",
        })
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
    /// The date and hour every pair is embedded at (local wall clock), instead of each
    /// pair's `datetime` column (the reference's `--date_time`); the place is still each
    /// pair's `lat, lon`.
    pub date_time: Option<crate::time::DateTime>,
}

/// One row of the result table.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EvalRow {
    /// Whether the overhead embeddings had metadata (date, hour, place).
    pub metadata: bool,
    /// Which way the retrieval went.
    pub direction: Direction,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: RetrievalMetrics,
}

/// What [`eval_retrieval`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Without metadata, then (when every pair had it and a dynamic encoder is loaded)
    /// with; each in both directions.
    pub rows: Vec<EvalRow>,
    /// Pairs left out: `(which, why)`.
    pub skipped: Vec<Skipped>,
    /// Why there is no row with metadata, when there is none.
    pub no_metadata_row: Option<String>,
}

/// A pair left out: `(which, why)`.
type Skipped = (String, String);

/// The folder the paths of a listing (a CSV of image files) are relative to: its own.
pub(crate) fn listing_folder(listing: &Path) -> PathBuf {
    let base = match listing.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf())
}

/// The file `rel` of a listing in folder `base`; one leading outside `base` (`../`, an
/// absolute path, a symlink out) is refused unless `allow_outside`.
pub(crate) fn listed_path(base: &Path, rel: &str, allow_outside: bool) -> Result<PathBuf, String> {
    let path = base.join(rel);
    if !allow_outside {
        if let Some(why) = crate::io::input::outside(base, &path) {
            return Err(format!("{why} (--allow-outside allows it)"));
        }
    }
    Ok(path)
}

struct Pair {
    /// Where it is listed: `FILE line N`.
    line: String,
    overhead: PathBuf,
    ground: PathBuf,
    meta: Option<Meta>,
}

fn read_pairs(
    path: &Path,
    allow_outside: bool,
    date_time: Option<crate::time::DateTime>,
) -> Result<(Vec<Pair>, Vec<Skipped>), JobError> {
    let base = &listing_folder(path);
    let table = crate::io::text::CsvTable::open(path).map_err(JobError::input)?;
    let (Some(co), Some(cg)) = (table.column("overhead"), table.column("ground")) else {
        return Err(JobError::input(format!(
            "{}: header must name overhead,ground[,lat,lon,datetime]",
            path.display()
        )));
    };
    let (clat, clon, cdt) = (
        table.column("lat"),
        table.column("lon"),
        table.column("datetime"),
    );
    let mut out = Vec::new();
    let bad = table
        .rows(|row, rec| {
            let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
            if get(Some(co)).is_empty() || get(Some(cg)).is_empty() {
                return Err("empty path".to_string());
            }
            let overhead = listed_path(base, get(Some(co)), allow_outside)?;
            let ground = listed_path(base, get(Some(cg)), allow_outside)?;
            let meta = (|| {
                // The local wall clock as written, as the reference feeds GeoNet.
                let t = match date_time {
                    Some(t) => t,
                    None => crate::time::parse_wall(get(cdt)).ok()?.1,
                };
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

/// Pairs read and embedded a batch at a time.
const EVAL_BATCH: usize = 32;

/// Ranks each pair's overhead tile and ground photo against the other side's gallery, both
/// ways, with the model `load` returns (loaded once the pairs file has been read). A bad
/// row or an unreadable image leaves that pair out: each is said through `progress` as it
/// happens and listed in the report.
pub fn eval_retrieval<E: Embedder>(
    load: impl FnOnce() -> Result<E, JobError>,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<EvalReport, JobError> {
    if opts.gallery == 0 {
        return Err(JobError::input("the gallery must hold at least 1 pair"));
    }
    let (pairs, mut skipped) = read_pairs(&opts.pairs, opts.allow_outside, opts.date_time)?;
    for (what, why) in &skipped {
        progress.note(&format!("skipped {what}: {why}"));
    }
    let model = &load()?;
    let mut ground = Vec::new();
    let mut over = Vec::new();
    let mut over_meta: Vec<Option<Vec<f32>>> = Vec::new();
    progress.begin(
        "pairs",
        Some(pairs.len().min(opts.gallery) as u64),
        Unit::Items,
    );
    let mut next = 0;
    while ground.len() < opts.gallery && next < pairs.len() {
        let take = (opts.gallery - ground.len()).min(EVAL_BATCH);
        let chunk = &pairs[next..(next + take).min(pairs.len())];
        next += chunk.len();
        let read = super::lookup::read_image_file;
        let files: Vec<(FileBytes, FileBytes)> = chunk
            .iter()
            .map(|p| (read(&p.ground), read(&p.overhead)))
            .collect();
        let mut ok = Vec::new();
        for (p, (g, o)) in chunk.iter().zip(files) {
            match (g, o) {
                (Ok(g), Ok(o)) => ok.push((p, g, o)),
                (Err(e), _) | (_, Err(e)) => {
                    progress.note(&format!("skipped {}: {e}", p.line));
                    skipped.push((p.line.clone(), e.to_string()));
                    progress.advance(1);
                }
            }
        }
        let gb: Vec<&[u8]> = ok.iter().map(|(_, g, _)| g.as_slice()).collect();
        let ob: Vec<&[u8]> = ok.iter().map(|(_, _, o)| o.as_slice()).collect();
        let ge = model.embed_ground(&gb);
        let oe = model.embed_overhead(&ob, None);
        let metas: Option<Vec<Meta>> = ok.iter().map(|(p, _, _)| p.meta).collect();
        let me: Vec<Option<Result<Vec<f32>, crate::encoders::EncodeError>>> =
            match (model.has_dynamic(), &metas) {
                (true, Some(m)) => model
                    .embed_overhead(&ob, Some(m))
                    .into_iter()
                    .map(Some)
                    .collect(),
                _ => ok.iter().map(|_| None).collect(),
            };
        for (((p, _, _), (g, o)), m) in ok.iter().zip(ge.into_iter().zip(oe)).zip(me) {
            let failed = match (g, o) {
                (Ok(g), Ok(o)) => {
                    ground.push(g);
                    over.push(o);
                    over_meta.push(m.and_then(Result::ok));
                    None
                }
                (Err(e), _) => Some(super::lookup::image_error(&p.ground, &e)),
                (_, Err(e)) => Some(super::lookup::image_error(&p.overhead, &e)),
            };
            if let Some(e) = failed {
                progress.note(&format!("skipped {}: {e}", p.line));
                skipped.push((p.line.clone(), e.to_string()));
            }
            progress.advance(1);
        }
    }
    progress.end();
    if ground.is_empty() {
        return Err(JobError::input(format!(
            "no usable pairs in {}",
            opts.pairs.display()
        )));
    }
    let both = |metadata: bool, over: &[Vec<f32>]| {
        [
            EvalRow {
                metadata,
                direction: Direction::OverheadToGround,
                metrics: paired_metrics(over, &ground),
            },
            EvalRow {
                metadata,
                direction: Direction::GroundToOverhead,
                metrics: paired_metrics(&ground, over),
            },
        ]
    };
    let mut rows = both(false, &over).to_vec();
    let mut no_metadata_row = None;
    let with_meta: Option<Vec<Vec<f32>>> = over_meta.iter().cloned().collect();
    match (model.has_dynamic(), with_meta) {
        (true, Some(m)) => rows.extend(both(true, &m)),
        (dynamic, _) => {
            no_metadata_row = Some(
                if dynamic {
                    "some pairs lack lat, lon, datetime"
                } else {
                    "no dynamic encoder (geo_encoder.*) loaded"
                }
                .to_string(),
            )
        }
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
        assert_eq!(rank_of(&[1.0, 0.0], &g, 0), 1.0);
        assert_eq!(rank_of(&[1.0, 0.0], &g, 1), 3.0);
        let m = metrics(&[1.0, 3.0, 7.0, 20.0], 30);
        assert_eq!((m.r_at_1, m.r_at_5, m.r_at_10), (0.25, 0.5, 0.75));
        assert_eq!(m.median_rank, 5.0);
        // Ties: the average rank among the items scoring the same.
        let g = vec![
            vec![1.0, 0.0],
            vec![1.0, 0.0],
            vec![1.0, 0.0],
            vec![0.0, 1.0],
        ];
        assert_eq!(rank_of(&[1.0, 0.0], &g, 1), 2.0);
        assert_eq!(rank_of(&[0.0, 1.0], &g, 3), 1.0);
        // Both directions of a pairing differ: two identical tiles tie for every photo.
        let over = vec![vec![1.0, 0.0], vec![1.0, 0.0]];
        let ground = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(paired_metrics(&over, &ground).r_at_1, 0.5);
        let back = paired_metrics(&ground, &over);
        assert_eq!((back.r_at_1, back.median_rank), (0.0, 1.5));
    }
}
