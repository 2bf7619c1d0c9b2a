//! A held-out query set for a geonames-layout folder: query vectors the shared queries never
//! were (rows with noise, mixtures of two rows), filters of every selectivity bucket (boxes,
//! a quarter of them across the antimeridian, and radii, centred near the query's own row or
//! anywhere else), and the exact truth. Seeded: the same seed writes the same files. No
//! parameter of the search was chosen on these queries.

use std::io::Write;
use std::path::Path;

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sat2cap::geo::{haversine_km, Point};
use sat2cap::index::flat::top_k;
use sat2cap::{BBox, Filter, Radius};

/// Selectivity buckets, as in the shared set.
pub const BUCKETS: [f64; 6] = [1.0, 0.5, 0.1, 0.01, 0.001, 0.0001];

/// One generated query.
pub struct Generated {
    pub kind: &'static str,
    pub vector: Vec<f32>,
    pub filter: serde_json::Value,
    pub selectivity: f64,
    pub truth: Vec<(u32, f32)>,
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-30);
    v.into_iter().map(|x| (f64::from(x) / n) as f32).collect()
}

fn row(vectors: &[f16], dim: usize, r: usize) -> Vec<f32> {
    vectors[r * dim..(r + 1) * dim]
        .iter()
        .map(|x| x.to_f32())
        .collect()
}

/// A query vector, moved off the data the way a text query is (its best match at a cosine
/// of about 0.5 to 0.8): a row plus noise, or a mixture of two or three rows plus noise.
/// Returns it with the row it started from.
fn query_vector(
    rng: &mut ChaCha8Rng,
    vectors: &[f16],
    dim: usize,
    n: usize,
    i: usize,
) -> (&'static str, Vec<f32>, usize) {
    let r = rng.random_range(0..n);
    let mut q = row(vectors, dim, r);
    let (kind, noise) = match i % 3 {
        0 => ("noisy row", rng.random_range(0.6f32..1.6)),
        m => {
            let parts = m + 1;
            for _ in 1..parts {
                let y = row(vectors, dim, rng.random_range(0..n));
                let a: f32 = rng.random_range(0.5..1.0);
                q.iter_mut().zip(&y).for_each(|(p, y)| *p += a * y);
            }
            q = unit(q);
            let kind = if parts == 2 {
                "mixture of two rows"
            } else {
                "mixture of three rows"
            };
            (kind, rng.random_range(0.2f32..0.8))
        }
    };
    let g = unit((0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect());
    (
        kind,
        unit(q.iter().zip(&g).map(|(a, b)| a + noise * b).collect()),
        r,
    )
}

fn count(points: &[Point], f: &Filter) -> usize {
    points.iter().filter(|p| f.matches(**p, None)).count()
}

/// A box around `c` holding about `target` rows (bisection on its half side; longitudes
/// wrap, so a box near the antimeridian crosses it).
fn bbox_near(points: &[Point], c: Point, target: usize) -> Option<(Filter, serde_json::Value)> {
    let make = |h: f64| {
        let hl = (h / c.lat().to_radians().cos().max(0.2)).min(179.9);
        let wrap = |x: f64| sat2cap::geo::wrap_lon(x);
        let (w, e) = (wrap(c.lon() - hl), wrap(c.lon() + hl));
        let (s, n) = ((c.lat() - h).max(-90.0), (c.lat() + h).min(90.0));
        BBox::new(w, s, e, n)
            .ok()
            .map(|b| (Filter::new().bbox(b), [w, s, e, n]))
    };
    let (mut lo, mut hi) = (1e-4, 180.0);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        let (f, _) = make(mid)?;
        if count(points, &f) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (f, edges) = make(hi)?;
    Some((f, serde_json::json!({ "bbox": edges })))
}

/// A radius around `c` holding `target` rows, halfway to the next row out.
fn radius_near(points: &[Point], c: Point, target: usize) -> Option<(Filter, serde_json::Value)> {
    let mut d: Vec<f64> = points.iter().map(|&p| haversine_km(c, p)).collect();
    let t = target.clamp(1, d.len());
    d.select_nth_unstable_by(t - 1, f64::total_cmp);
    let inner = d[t - 1];
    let outer = d[t..].iter().copied().fold(f64::INFINITY, f64::min);
    let km = if outer.is_finite() && outer > inner {
        (inner + outer) / 2.0
    } else {
        inner
    };
    let r = Radius::new(c.lat(), c.lon(), km).ok()?;
    Some((
        Filter::new().radius(r),
        serde_json::json!({"radius": {"lat": c.lat(), "lon": c.lon(), "km": km}}),
    ))
}

/// `per_bucket` queries in every bucket.
pub fn generate(
    vectors: &[f16],
    dim: usize,
    points: &[Point],
    per_bucket: usize,
    seed: u64,
) -> Vec<Generated> {
    let n = points.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let near_antimeridian: Vec<usize> = (0..n).filter(|&i| points[i].lon().abs() > 170.0).collect();
    let mut out = Vec::new();
    for &frac in &BUCKETS {
        let mut i = 0;
        let mut made_here = 0;
        while made_here < per_bucket && i < per_bucket * 4 {
            let (kind, vector, r) = query_vector(&mut rng, vectors, dim, n, i);
            let target = ((n as f64 * frac).round() as usize).max(1);
            // The filter around the query's own row, or around another place (a region the
            // query has nothing to do with), or across the antimeridian.
            let center = match i % 4 {
                0 | 1 => points[r],
                2 => points[rng.random_range(0..n)],
                _ if !near_antimeridian.is_empty() => {
                    points[near_antimeridian[rng.random_range(0..near_antimeridian.len())]]
                }
                _ => points[rng.random_range(0..n)],
            };
            let made = if frac >= 1.0 {
                if i % 2 == 0 {
                    Some((Filter::new(), serde_json::Value::Null))
                } else {
                    BBox::new(-180.0, -90.0, 180.0, 90.0).ok().map(|b| {
                        (
                            Filter::new().bbox(b),
                            serde_json::json!({"bbox": [-180.0, -90.0, 180.0, 90.0]}),
                        )
                    })
                }
            } else if i % 2 == 0 || i % 4 == 3 {
                bbox_near(points, center, target)
            } else {
                radius_near(points, center, target)
            };
            i += 1;
            let Some((filter, json)) = made else { continue };
            let keep: Vec<u32> = (0..n as u32)
                .filter(|&r| filter.matches(points[r as usize], None))
                .collect();
            let selectivity = keep.len() as f64 / n as f64;
            // Keep the query in its bucket (a box can only grow in steps of whole places).
            // Within a factor of 2 of the bucket (a box grows in steps of whole places).
            if keep.is_empty() || (frac < 1.0 && (selectivity / frac).ln().abs() > 0.7) {
                continue;
            }
            let truth = top_k(vectors, dim, &vector, keep.iter().copied(), 10)
                .into_iter()
                .map(|h| (h.row, h.score))
                .collect();
            out.push(Generated {
                kind,
                vector,
                filter: json,
                selectivity,
                truth,
            });
            made_here += 1;
        }
    }
    out
}

/// Writes `queries.dev.jsonl` and `truth.dev.jsonl` (the shared set's layout) into `dir`,
/// with links to the data's vectors and places, so every harness reads it as it reads the
/// shared set.
pub fn write(dir: &Path, data: &Path, queries: &[Generated], seed: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for f in ["vectors.f16.npy", "places.csv"] {
        let link = dir.join(f);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(std::fs::canonicalize(data.join(f))?, link)?;
    }
    let mut q = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.dev.jsonl"))?);
    let mut t = std::io::BufWriter::new(std::fs::File::create(dir.join("truth.dev.jsonl"))?);
    for (id, g) in queries.iter().enumerate() {
        let line = serde_json::json!({"id": id, "text": format!("held-out: {}", g.kind), "k": 10,
            "filter": g.filter, "selectivity": g.selectivity, "vector": g.vector});
        writeln!(q, "{line}")?;
        let (ids, scores): (Vec<u32>, Vec<f32>) = g.truth.iter().copied().unzip();
        writeln!(
            t,
            "{}",
            serde_json::json!({"id": id, "neighbors": ids, "scores": scores})
        )?;
    }
    q.flush()?;
    t.flush()?;
    std::fs::write(
        dir.join("README.md"),
        format!(
            "# held-out queries (seed {seed})\n\nWritten by `bench_search --make-heldout`: {} queries over the \
             vectors and places of {}, in its layout. Query vectors are rows moved off the data \
             (cosine ~0.8 with their row) and mixtures of two rows; filters are boxes (a quarter \
             across the antimeridian) and radii around the query's own row or another place, in \
             every selectivity bucket; truth is the exact top-10 (fp16 rows as f32, ties by lower \
             id) among the rows the filter passes.\n",
            queries.len(),
            data.display()
        ),
    )
}
