//! Throughput (and CPU-vs-device parity) of the full-size ViT-B/32 encoders with seeded
//! random weights.
//!
//! ```text
//! cargo run --release -p sat2cap-bench --features encoders --bin bench_encoders -- \
//!     [--device cpu|cuda] [--precision f32,f16] [--batches 1,32] [--iters 3] [--warmup 1] [--parity [--parity-only]] [--no-text] [--no-image]
//! ```
//!
//! Images: the ground tower on 224 px pixel tensors (preprocessing excluded, as in
//! benches/gpu/torch_encoders.py); texts: 77-token captions. Each row: `warmup` untimed
//! batches, then the mean over `iters` timed batches. `--parity` first compares the device's
//! embeddings (each precision) with CPU f32 on the same seeded weights (min cosine over a
//! batch of 8 images and 8 texts). `SAT2CAP_DEVICE` sets the default device.

use std::time::Instant;

use sat2cap::encoders::preprocess::Image;
use sat2cap::encoders::{DeviceChoice, Encoders, EncodersConfig, Precision};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Res<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    arg(name)
        .unwrap_or_else(|| default.to_string())
        .split(',')
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| format!("{name} {v:?}: {e}").into())
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let n = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| cosine(x, y))
        .fold(f64::INFINITY, f64::min)
}

fn encoders(device: DeviceChoice, precision: Precision, max_batch: usize) -> Res<Encoders> {
    let cfg = EncodersConfig {
        max_batch,
        precision,
        ..EncodersConfig::vit_b32()
    };
    Ok(Encoders::random_with_config(1, device, cfg)?)
}

fn inputs(n: usize) -> Res<(Vec<Image>, Vec<String>)> {
    let images = (0..n)
        .map(|k| {
            Image::from_rgb8(
                224,
                224,
                (0..224 * 224 * 3)
                    .map(|i| ((i * 7 + k * 13) % 251) as u8)
                    .collect(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let words = [
        "aerial",
        "photograph",
        "of",
        "farmland",
        "coast",
        "city",
        "river",
        "roads",
    ];
    let texts = (0..n)
        .map(|k| {
            (0..100)
                .map(|i| words[(i * 3 + k) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok((images, texts))
}

fn time(warmup: usize, iters: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let t = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    Ok(t.elapsed().as_secs_f64() / iters.max(1) as f64)
}

fn main() -> Res<()> {
    let flag = |f: &str| std::env::args().any(|a| a == f);
    let device: DeviceChoice = arg("--device")
        .or_else(|| std::env::var("SAT2CAP_DEVICE").ok())
        .unwrap_or_else(|| "cpu".into())
        .parse()?;
    let precisions: Vec<Precision> = list("--precision", "f32")?;
    let batches: Vec<usize> = list("--batches", "1,32")?;
    let iters: usize = arg("--iters").map_or(Ok(3), |v| v.parse())?;
    let warmup: usize = arg("--warmup").map_or(Ok(1), |v| v.parse())?;
    if batches.contains(&0) {
        return Err("batch sizes must be >= 1".into());
    }
    let max_batch = batches.iter().copied().max().unwrap_or(1);

    if flag("--parity") {
        let (images, texts) = inputs(8)?;
        let t: Vec<&str> = texts.iter().map(String::as_str).collect();
        let cpu = encoders(DeviceChoice::Cpu, Precision::F32, 8)?;
        let ref_img = cpu.encode_ground_pixels(&cpu.ground_pixels(&images))?;
        let ref_txt = cpu.encode_text(&t)?;
        println!("## Parity vs CPU f32 (seeded random ViT-B/32, 8 images, 8 texts)\n");
        println!("| device | precision | min cosine images | min cosine texts |");
        println!("|---|---|---|---|");
        for &p in &precisions {
            let enc = encoders(device, p, 8)?;
            let img = enc.encode_ground_pixels(&enc.ground_pixels(&images))?;
            let txt = enc.encode_text(&t)?;
            println!(
                "| {} | {p} | {:.6} | {:.6} |",
                enc.device_name(),
                min_cosine(&img, &ref_img),
                min_cosine(&txt, &ref_txt)
            );
        }
        println!();
        if flag("--parity-only") {
            return Ok(());
        }
    }

    println!("## Throughput (warm-up {warmup}, mean of {iters} timed batches)\n");
    println!(
        "| device | precision | batch | images/s (224 px, model only) | texts/s (77 tokens) |"
    );
    println!("|---|---|---|---|---|");
    let (images, texts) = inputs(max_batch)?;
    for &p in &precisions {
        let enc = encoders(device, p, max_batch)?;
        let pixels = enc.ground_pixels(&images);
        let t: Vec<&str> = texts.iter().map(String::as_str).collect();
        for &b in &batches {
            let img = if flag("--no-image") {
                "-".to_string()
            } else {
                let s = time(warmup, iters, || {
                    enc.encode_ground_pixels(&pixels[..b])?;
                    Ok(())
                })?;
                format!("{:.1}", b as f64 / s)
            };
            let txt = if flag("--no-text") {
                "-".to_string()
            } else {
                let s = time(warmup, iters, || {
                    enc.encode_text(&t[..b])?;
                    Ok(())
                })?;
                format!("{:.1}", b as f64 / s)
            };
            println!("| {} | {p} | {b} | {img} | {txt} |", enc.device_name());
        }
    }
    Ok(())
}
