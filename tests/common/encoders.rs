//! Helpers shared by the encoder tests (included with `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;

use sat2cap::encoders::config::{ClipTextConfig, ClipVisionConfig};
use sat2cap::encoders::weights::WeightsFile;
use sat2cap::encoders::EncodersConfig;

/// tests/data/encoders.
pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoders")
}

/// The shapes of the tiny models made by tools/make_encoder_goldens.py.
pub fn tiny_config() -> EncodersConfig {
    EncodersConfig {
        text: ClipTextConfig::tiny(),
        ground: ClipVisionConfig::tiny(),
        overhead: ClipVisionConfig::tiny(),
        max_batch: 4,
        ..EncodersConfig::vit_b32()
    }
}

/// Reference tensors: goldens.safetensors.
pub fn goldens() -> WeightsFile {
    WeightsFile::open(&data().join("goldens.safetensors")).expect("goldens.safetensors")
}

/// Rows of a 2-d golden tensor.
pub fn rows(file: &WeightsFile, name: &str) -> Vec<Vec<f32>> {
    let (v, shape) = file.read_tensor(name).expect(name);
    let cols: usize = shape[1..].iter().product();
    v.chunks(cols).map(|c| c.to_vec()).collect()
}

/// goldens.json.
pub fn golden_json() -> serde_json::Value {
    let text = std::fs::read_to_string(data().join("goldens.json")).expect("goldens.json");
    serde_json::from_str(&text).expect("json")
}

/// L2 normalisation.
pub fn normalise(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter().map(|x| (f64::from(*x) / n) as f32).collect()
}

/// Cosine similarity (f64 accumulation).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Largest absolute difference.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts embedding parity (cosine >= 0.99999, max abs diff <= 1e-4), printing the worst.
pub fn assert_parity(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>]) {
    assert_eq!(ours.len(), reference.len(), "{what}: batch size");
    let mut worst_cos = 1.0f64;
    let mut worst_abs = 0.0f32;
    for (i, (o, r)) in ours.iter().zip(reference).enumerate() {
        let c = cosine(o, r);
        let m = max_abs(o, r);
        assert!(c >= 0.99999, "{what}[{i}]: cosine {c}");
        assert!(m <= 1e-4, "{what}[{i}]: max abs diff {m}");
        worst_cos = worst_cos.min(c);
        worst_abs = worst_abs.max(m);
    }
    println!(
        "{what}: {} rows, min cosine {worst_cos:.9}, max abs diff {worst_abs:.3e}",
        ours.len()
    );
}
