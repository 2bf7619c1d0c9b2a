//! Seeded synthetic data for tests and benchmarks: clustered, geo-correlated embeddings.
//!
//! Two generators share the cluster geography: each cluster has a home location (a few on the
//! poles and on the antimeridian so that those cases are populated) and a row lands near its
//! cluster's home (Gaussian jitter, in degrees). They differ in the embedding inside a cluster:
//!
//! - [`generate`] (**isotropic**, the original): cluster direction + one of 8 sub-cluster
//!   directions + a smooth function of location + isotropic Gaussian noise in all `dim`
//!   dimensions. Inside a sub-cluster the rows differ only by that noise, so in high
//!   dimension their distances to a query are nearly tied (concentration of measure): which
//!   10 of the ~40 sub-cluster rows are "the" exact top-10 is decided by noise, and recall@10
//!   by row id measures luck as much as search quality. Kept for the tests (their fixtures)
//!   and for comparison with earlier measurements.
//! - [`generate_low_rank`] (**low-rank**, for benchmarks): cluster direction + a point of a
//!   `LOW_RANK`-dimensional latent space per cluster (random basis, decaying scales; the two
//!   largest latent coordinates are the row's own offsets from the home location, so nearby
//!   rows are similar) + a smooth function of location + small isotropic noise. This is the
//!   shape real embeddings have (low intrinsic dimension inside a topic): exact neighbours are
//!   separated by the latent geometry, not by noise.
//!
//! Vectors are L2-normalised and rounded to f16. [`query_near`] draws a query the way the
//! generator draws rows (so queries look like data but are not data).

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geo::Point;

/// A generated data set.
#[derive(Debug, Clone)]
pub struct SynthData {
    /// Dimension.
    pub dim: usize,
    /// `n * dim` normalised f16 values.
    pub vectors: Vec<f16>,
    /// Row locations.
    pub points: Vec<Point>,
    /// Row timestamps (seconds); about 10% are `NO_TIME` (`i64::MIN`).
    pub times: Vec<i64>,
    /// Cluster direction vectors (normalised f32), handy as query seeds.
    pub centers: Vec<Vec<f32>>,
    /// Per-cluster directions, `per_cluster` of them (`subs[c * per_cluster + s]`): the 8
    /// sub-cluster directions of [`generate`], the latent basis of [`generate_low_rank`].
    pub subs: Vec<Vec<f32>>,
    /// Directions per cluster in `subs`.
    pub per_cluster: usize,
    /// Which generator made the data.
    pub kind: SynthKind,
}

/// Which generator made a [`SynthData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthKind {
    /// [`generate`]: isotropic noise inside sub-clusters (near-tied neighbours).
    Isotropic,
    /// [`generate_low_rank`]: low-rank latent structure inside clusters.
    LowRank,
}

/// Latent dimensions per cluster of [`generate_low_rank`].
pub const LOW_RANK: usize = 12;

/// Standard deviation of latent coordinate `j` of [`generate_low_rank`] (decaying: a few
/// directions carry most of the variation, as in real embeddings).
fn latent_sigma(j: usize) -> f32 {
    0.5 * 0.85f32.powi(j as i32)
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Generates `n` rows of dimension `dim` in `clusters` clusters from `seed`.
pub fn generate(n: usize, dim: usize, clusters: usize, seed: u64) -> SynthData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let clusters = clusters.max(1);
    // Cluster homes: a few fixed hard places, the rest uniform on the sphere.
    let (homes, spread) = homes(&mut rng, clusters);
    let centers: Vec<Vec<f32>> = (0..clusters).map(|_| unit_gauss(&mut rng, dim)).collect();
    // Sub-cluster directions: real embeddings have structure below the cluster level.
    const SUBS: usize = 8;
    let subs: Vec<Vec<f32>> = (0..clusters * SUBS)
        .map(|_| unit_gauss(&mut rng, dim))
        .collect();
    // A fixed random projection of the 3-d unit position, for the geo-correlated part.
    let proj = geo_projection(&mut rng, dim);
    let geo_w = 0.6 / (dim as f32).sqrt();
    let noise_w = 0.35 / (dim as f32).sqrt();
    let mut vectors = Vec::with_capacity(n * dim);
    let mut points = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut row = vec![0f32; dim];
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        let sub = &subs[c * SUBS + rng.random_range(0..SUBS)];
        let (p, _) = place(&mut rng, homes[c], spread[c]);
        let xyz = unit_xyz(p);
        for (i, r) in row.iter_mut().enumerate() {
            let g = proj[i][0] * xyz[0] + proj[i][1] * xyz[1] + proj[i][2] * xyz[2];
            *r = centers[c][i] + 0.8 * sub[i] + geo_w * g + noise_w * gauss(&mut rng) as f32;
        }
        normalise(&mut row);
        vectors.extend(row.iter().map(|&x| f16::from_f32(x)));
        points.push(p);
        times.push(row_time(&mut rng));
    }
    SynthData {
        dim,
        vectors,
        points,
        times,
        centers,
        subs,
        per_cluster: SUBS,
        kind: SynthKind::Isotropic,
    }
}

/// Cluster homes (a few fixed hard places, the rest uniform on the sphere) and spreads.
fn homes(rng: &mut ChaCha8Rng, clusters: usize) -> (Vec<(f64, f64)>, Vec<f64>) {
    let fixed = [
        (89.5, 0.0),
        (-89.5, 120.0),
        (0.0, 179.8),
        (65.0, -179.7),
        (-40.0, 179.9),
    ];
    let mut homes = Vec::with_capacity(clusters);
    for c in 0..clusters {
        if c < fixed.len() && clusters >= 4 * fixed.len() {
            homes.push(fixed[c]);
        } else {
            let lat = (2.0 * rng.random::<f64>() - 1.0).asin().to_degrees();
            let lon = rng.random::<f64>() * 360.0 - 180.0;
            homes.push((lat, lon));
        }
    }
    let spread = (0..clusters)
        .map(|_| 0.5 + 4.0 * rng.random::<f64>())
        .collect();
    (homes, spread)
}

/// A fixed random projection (one Gaussian 3-vector per dimension) of the 3-d unit position.
fn geo_projection(rng: &mut ChaCha8Rng, dim: usize) -> Vec<[f32; 3]> {
    (0..dim)
        .map(|_| [gauss(rng) as f32, gauss(rng) as f32, gauss(rng) as f32])
        .collect()
}

/// A row's time: none for 10% of rows, else uniform over 2015-2024 (unix seconds).
fn row_time(rng: &mut ChaCha8Rng) -> i64 {
    if rng.random::<f64>() < 0.1 {
        i64::MIN
    } else {
        1_420_070_400 + rng.random_range(0..315_360_000i64)
    }
}

fn unit_gauss(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| gauss(rng) as f32).collect();
    normalise(&mut v);
    v
}

/// A location near `home` (Gaussian jitter of `spread` degrees, folded at the poles) and the
/// two jitter draws.
fn place(rng: &mut ChaCha8Rng, home: (f64, f64), spread: f64) -> (Point, [f64; 2]) {
    let g = [gauss(rng), gauss(rng)];
    let mut lat = home.0 + g[0] * spread;
    if lat > 90.0 {
        lat = 180.0 - lat;
    }
    if lat < -90.0 {
        lat = -180.0 - lat;
    }
    let lon = home.1 + g[1] * spread;
    let p = Point::new(lat.clamp(-90.0, 90.0), lon)
        .unwrap_or_else(|_| Point::new(0.0, 0.0).unwrap_or_else(|_| unreachable!("0,0 is valid")));
    (p, g)
}

/// The low-rank generator (see the module docs): `n` rows of dimension `dim` in `clusters`
/// clusters from `seed`. Row = cluster direction + `sum_j z_j * basis_j` (`LOW_RANK` latent
/// coordinates, `z_0`, `z_1` from the row's offset from its home) + `0.3 * geo(location)` +
/// noise of norm ~0.05, normalised.
pub fn generate_low_rank(n: usize, dim: usize, clusters: usize, seed: u64) -> SynthData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let clusters = clusters.max(1);
    let (homes, spread) = homes(&mut rng, clusters);
    let centers: Vec<Vec<f32>> = (0..clusters).map(|_| unit_gauss(&mut rng, dim)).collect();
    let subs: Vec<Vec<f32>> = (0..clusters * LOW_RANK)
        .map(|_| unit_gauss(&mut rng, dim))
        .collect();
    let proj = geo_projection(&mut rng, dim);
    let geo_w = 0.3 / (dim as f32).sqrt();
    let mut vectors = Vec::with_capacity(n * dim);
    let mut points = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut row = vec![0f32; dim];
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        let (p, g) = place(&mut rng, homes[c], spread[c]);
        let mut z = [0f32; LOW_RANK];
        for (j, zj) in z.iter_mut().enumerate() {
            let draw = if j < 2 { g[j] } else { gauss(&mut rng) };
            *zj = latent_sigma(j) * draw as f32;
        }
        let xyz = unit_xyz(p);
        fill_low_rank(&mut row, &centers[c], &subs[c * LOW_RANK..], &z);
        for (i, r) in row.iter_mut().enumerate() {
            let geo = proj[i][0] * xyz[0] + proj[i][1] * xyz[1] + proj[i][2] * xyz[2];
            *r += geo_w * geo + LOW_RANK_NOISE / (dim as f32).sqrt() * gauss(&mut rng) as f32;
        }
        normalise(&mut row);
        vectors.extend(row.iter().map(|&x| f16::from_f32(x)));
        points.push(p);
        times.push(row_time(&mut rng));
    }
    SynthData {
        dim,
        vectors,
        points,
        times,
        centers,
        subs,
        per_cluster: LOW_RANK,
        kind: SynthKind::LowRank,
    }
}

/// Norm of the isotropic noise of [`generate_low_rank`] rows and queries.
const LOW_RANK_NOISE: f32 = 0.05;

fn unit_xyz(p: Point) -> [f32; 3] {
    let (la, lo) = (p.lat().to_radians(), p.lon().to_radians());
    [
        (la.cos() * lo.cos()) as f32,
        (la.cos() * lo.sin()) as f32,
        la.sin() as f32,
    ]
}

/// `row = center + sum_j z[j] * basis[j]` (over the shorter of `z` and `basis`).
fn fill_low_rank(row: &mut [f32], center: &[f32], basis: &[Vec<f32>], z: &[f32]) {
    for (i, r) in row.iter_mut().enumerate() {
        *r = center.get(i).copied().unwrap_or(0.0);
    }
    for (b, &zj) in basis.iter().zip(z) {
        for (r, &x) in row.iter_mut().zip(b) {
            *r += zj * x;
        }
    }
}

/// A query near cluster `c`, drawn the way the data's generator draws a row of that cluster
/// (isotropic: its direction, one of its sub-cluster directions, noise; low-rank: its
/// direction, a fresh latent point, noise; no location term), normalised.
pub fn query_near(data: &SynthData, c: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if data.kind == SynthKind::LowRank {
        let dim = data.dim;
        let nc = data.centers.len().max(1);
        let c = c % nc;
        let mut z = [0f32; LOW_RANK];
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = latent_sigma(j) * gauss(&mut rng) as f32;
        }
        let mut v = vec![0f32; dim];
        let empty = Vec::new();
        let center = data.centers.get(c).unwrap_or(&empty);
        let basis = data.subs.get(c * LOW_RANK..).unwrap_or(&[]);
        fill_low_rank(&mut v, center, basis, &z);
        for x in v.iter_mut() {
            *x += LOW_RANK_NOISE / (dim as f32).sqrt() * gauss(&mut rng) as f32;
        }
        normalise(&mut v);
        return v;
    }
    let dim = data.dim;
    let w = 0.5 / (dim as f32).sqrt();
    let nc = data.centers.len().max(1);
    let base = &data.centers[c % nc];
    let sub = data
        .subs
        .get((c % nc) * data.per_cluster.max(1) + rng.random_range(0..data.per_cluster.max(1)))
        .cloned()
        .unwrap_or_default();
    let mut v: Vec<f32> = (0..dim)
        .map(|i| {
            base.get(i).copied().unwrap_or(0.0)
                + 0.8 * sub.get(i).copied().unwrap_or(0.0)
                + w * gauss(&mut rng) as f32
        })
        .collect();
    normalise(&mut v);
    v
}
