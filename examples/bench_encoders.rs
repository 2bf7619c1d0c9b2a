//! CPU throughput of the full-size ViT-B/32 encoders with seeded random weights.
//!
//! `cargo run --release --example bench_encoders [-- --iters N]`
//! (or without `--release`: the dev profile builds dependencies, burn included, at opt-level 3).
//! Prints images/s (ground tower, 224 px, preprocessing excluded) and texts/s (77-token
//! captions and short captions) at batch 1 and 32.

use std::time::Instant;

use sat2cap::encoders::preprocess::Image;
use sat2cap::encoders::{DeviceChoice, Encoders, EncodersConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iters: usize = std::env::args()
        .skip_while(|a| a != "--iters")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let device: DeviceChoice = std::env::var("SAT2CAP_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()?;
    let mut cfg = EncodersConfig::vit_b32();
    cfg.max_batch = 32;
    let enc = Encoders::random_with_config(1, device, cfg)?;
    println!("device: {}, iterations per row: {iters}", enc.device_name());
    println!("| input | batch | items/s |");
    println!("|---|---|---|");
    let img = Image::from_rgb8(
        224,
        224,
        (0..224 * 224 * 3).map(|i| (i * 7 % 251) as u8).collect(),
    )?;
    let long_text = "an aerial photograph of farmland ".repeat(20);
    for batch in [1usize, 32] {
        let imgs = vec![img.clone(); batch];
        let pixels = enc.ground_pixels(&imgs);
        let _ = pixels; // preprocessing is measured separately below
        enc.encode_ground(&imgs)?; // warm-up
        let t = Instant::now();
        for _ in 0..iters {
            enc.encode_ground(&imgs)?;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "| image 224 px (incl. preprocessing) | {batch} | {:.1} |",
            (batch * iters) as f64 / s
        );
        for (label, text) in [
            ("text, 77 tokens", long_text.as_str()),
            (
                "text, short caption",
                "a busy city street lined with skyscrapers",
            ),
        ] {
            let texts = vec![text; batch];
            enc.encode_text(&texts)?;
            let t = Instant::now();
            for _ in 0..iters {
                enc.encode_text(&texts)?;
            }
            let s = t.elapsed().as_secs_f64();
            println!("| {label} | {batch} | {:.1} |", (batch * iters) as f64 / s);
        }
    }
    Ok(())
}
