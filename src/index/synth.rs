//! Seeded synthetic data for tests and benchmarks: clustered, geo-correlated embeddings.
//!
//! Each cluster has a home location and a direction in embedding space; a row picks a
//! cluster, lands near its home (Gaussian jitter, in degrees) and gets the cluster direction
//! plus noise plus a smooth function of its location, L2-normalised and rounded to f16.
//! A few clusters sit on the poles and on the antimeridian so that those cases are populated.

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
    /// Sub-cluster directions, 8 per cluster (`subs[c * 8 + s]`).
    pub subs: Vec<Vec<f32>>,
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
    let spread: Vec<f64> = (0..clusters)
        .map(|_| 0.5 + 4.0 * rng.random::<f64>())
        .collect();
    let centers: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| gauss(&mut rng) as f32).collect();
            normalise(&mut v);
            v
        })
        .collect();
    // Sub-cluster directions: real embeddings have structure below the cluster level.
    const SUBS: usize = 8;
    let subs: Vec<Vec<f32>> = (0..clusters * SUBS)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| gauss(&mut rng) as f32).collect();
            normalise(&mut v);
            v
        })
        .collect();
    // A fixed random projection of the 3-d unit position, for the geo-correlated part.
    let proj: Vec<[f32; 3]> = (0..dim)
        .map(|_| {
            [
                gauss(&mut rng) as f32,
                gauss(&mut rng) as f32,
                gauss(&mut rng) as f32,
            ]
        })
        .collect();
    let geo_w = 0.6 / (dim as f32).sqrt();
    let noise_w = 0.35 / (dim as f32).sqrt();
    let mut vectors = Vec::with_capacity(n * dim);
    let mut points = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut row = vec![0f32; dim];
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        let sub = &subs[c * SUBS + rng.random_range(0..SUBS)];
        let (hlat, hlon) = homes[c];
        let mut lat = hlat + gauss(&mut rng) * spread[c];
        if lat > 90.0 {
            lat = 180.0 - lat;
        }
        if lat < -90.0 {
            lat = -180.0 - lat;
        }
        let lon = hlon + gauss(&mut rng) * spread[c];
        let p = Point::new(lat.clamp(-90.0, 90.0), lon).unwrap_or_else(|_| {
            Point::new(0.0, 0.0).unwrap_or_else(|_| unreachable!("0,0 is valid"))
        });
        let (la, lo) = (p.lat().to_radians(), p.lon().to_radians());
        let xyz = [
            (la.cos() * lo.cos()) as f32,
            (la.cos() * lo.sin()) as f32,
            la.sin() as f32,
        ];
        for (i, r) in row.iter_mut().enumerate() {
            let g = proj[i][0] * xyz[0] + proj[i][1] * xyz[1] + proj[i][2] * xyz[2];
            *r = centers[c][i] + 0.8 * sub[i] + geo_w * g + noise_w * gauss(&mut rng) as f32;
        }
        normalise(&mut row);
        vectors.extend(row.iter().map(|&x| f16::from_f32(x)));
        points.push(p);
        times.push(if rng.random::<f64>() < 0.1 {
            i64::MIN
        } else {
            1_420_070_400 + rng.random_range(0..315_360_000i64)
        });
    }
    SynthData {
        dim,
        vectors,
        points,
        times,
        centers,
        subs,
    }
}

/// A query near cluster `c` (its direction, one of its sub-cluster directions, noise),
/// normalised.
pub fn query_near(data: &SynthData, c: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim = data.dim;
    let w = 0.5 / (dim as f32).sqrt();
    let nc = data.centers.len().max(1);
    let base = &data.centers[c % nc];
    let sub = data
        .subs
        .get((c % nc) * 8 + rng.random_range(0..8))
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
