//! Parity of the tiny encoders with the reference (transformers / PyTorch / PIL), on the
//! checkpoints and outputs made by tools/make_encoder_goldens.py.
#![cfg(feature = "encoders")]

#[path = "common/encoders.rs"]
mod common;

use common::*;
use sat2cap::encoders::preprocess::{self, Image};
use sat2cap::encoders::{DeviceChoice, Encoders, Meta, Precision};

fn load_tiny() -> Encoders {
    Encoders::load_with_config(&data().join("tiny"), DeviceChoice::Cpu, tiny_config())
        .expect("tiny encoders load")
}

fn images() -> Vec<(String, Image)> {
    let j = golden_json();
    j["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|n| {
            let name = n.as_str().expect("name").to_string();
            let bytes = std::fs::read(data().join(format!("images/{name}.png"))).expect("png");
            (name, Image::decode(&bytes).expect("decode"))
        })
        .collect()
}

fn metas() -> Vec<Meta> {
    golden_json()["metas"]
        .as_array()
        .expect("metas")
        .iter()
        .map(|m| Meta {
            lat: m["lat"].as_f64().expect("lat"),
            lon: m["lon"].as_f64().expect("lon"),
            year: m["year"].as_i64().expect("year") as i32,
            month: m["month"].as_u64().expect("month") as u32,
            day: m["day"].as_u64().expect("day") as u32,
            hour: m["hour"].as_u64().expect("hour") as u32,
        })
        .collect()
}

#[test]
fn text_tower_matches_reference_on_reference_token_ids() {
    let enc = load_tiny();
    let tok = std::fs::read_to_string(data().join("tokenizer.json")).expect("tokenizer.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tok).expect("json");
    let ids: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            r["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect()
        })
        .collect();
    let ours = enc.encode_token_ids(&ids).expect("encode");
    let reference: Vec<Vec<f32>> = rows_of("text_embeds");
    assert_parity("text (token ids)", &ours, &reference);
}

fn rows_of(name: &str) -> Vec<Vec<f32>> {
    rows(&goldens(), name)
        .iter()
        .map(|r| normalise(r))
        .collect()
}

#[test]
fn text_end_to_end_matches_reference() {
    let enc = load_tiny();
    let tok = std::fs::read_to_string(data().join("tokenizer.json")).expect("tokenizer.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tok).expect("json");
    let reference = rows_of("text_embeds");
    let mut texts = Vec::new();
    let mut refs = Vec::new();
    for (r, e) in rows.iter().zip(reference) {
        if r["known_divergence"].is_null() {
            texts.push(r["text"].as_str().expect("text").to_string());
            refs.push(e);
        }
    }
    assert!(texts.len() >= 50, "too few strings");
    let t: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let ours = enc.encode_text(&t).expect("encode");
    assert_parity("text (end to end)", &ours, &refs);
}

#[test]
fn ground_pixels_match_clip_image_processor_at_64() {
    let enc = load_tiny();
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    let ours = enc.ground_pixels(&imgs);
    let reference = rows(&goldens(), "ground_pixels");
    let mut worst = 0f32;
    for (o, r) in ours.iter().zip(&reference) {
        worst = worst.max(max_abs(o, r));
    }
    println!("ground pixels (64 px): max abs diff {worst:.3e} (normalised units)");
    // One 8-bit step is 1/255/std ~ 0.0146; PIL-exact resampling should give float noise only.
    assert!(worst <= 1e-5, "ground pixel diff {worst}");
}

#[test]
fn overhead_pixels_match_reference_at_64() {
    let enc = load_tiny();
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    let ours = enc.overhead_pixels(&imgs);
    let reference = rows(&goldens(), "overhead_pixels");
    let mut worst = 0f32;
    for (o, r) in ours.iter().zip(&reference) {
        worst = worst.max(max_abs(o, r));
    }
    println!("overhead pixels (64 px): max abs diff {worst:.3e} (normalised units)");
    assert!(worst <= 1e-5, "overhead pixel diff {worst}");
}

#[test]
fn resize_and_crop_match_pil_at_224() {
    let mut report = Vec::new();
    for (name, img) in images() {
        for (kind, ours) in [
            (
                "ground",
                preprocess::ground_image(&img, 224, preprocess::GroundResize::ClipCrop),
            ),
            (
                "overhead",
                preprocess::overhead_image(&img, &preprocess::OverheadPreprocess::default()),
            ),
        ] {
            let path = data().join(format!("pixels_224/{kind}_{name}.png"));
            let reference = Image::decode(&std::fs::read(&path).expect("png")).expect("decode");
            assert_eq!((ours.width(), ours.height()), (224, 224));
            let diff = ours
                .as_rgb8()
                .iter()
                .zip(reference.as_rgb8())
                .filter(|(a, b)| a != b)
                .count();
            report.push(format!("{kind}_{name}: {diff} bytes differ"));
            assert_eq!(diff, 0, "{kind}_{name}: {diff} bytes differ from PIL");
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn ground_embeddings_match_reference() {
    let enc = load_tiny();
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    let ours = enc.encode_ground(&imgs).expect("encode");
    assert_parity("ground", &ours, &rows_of("ground_embeds"));
}

#[test]
fn overhead_embeddings_match_reference_without_metadata() {
    let enc = load_tiny();
    assert!(enc.has_dynamic());
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    let ours = enc.encode_overhead(&imgs, None).expect("encode");
    assert_parity("overhead", &ours, &rows_of("overhead_embeds"));
}

#[test]
fn geonet_features_match_reference() {
    let reference = rows(&goldens(), "geo_features");
    let mut worst = 0f32;
    for (m, r) in metas().iter().zip(&reference) {
        let f = m.features().expect("valid");
        worst = worst.max(max_abs(&f, r));
    }
    println!("GeoNet inputs: max abs diff {worst:.3e}");
    assert!(worst <= 1e-6, "feature diff {worst}");
}

#[test]
fn fused_sat2cap_embeddings_match_reference() {
    let enc = load_tiny();
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    let m = metas();
    let ours = enc.encode_overhead(&imgs, Some(&m)).expect("encode");
    assert_parity("overhead + GeoNet", &ours, &rows_of("fused_embeds"));
    // The metadata must matter: the plain and fused embeddings differ.
    let plain = enc.encode_overhead(&imgs, None).expect("encode");
    assert!(cosine(&plain[0], &ours[0]) < 0.9999);
}

#[test]
fn batching_does_not_change_results() {
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    let mut cfg = tiny_config();
    cfg.max_batch = 1;
    let one = Encoders::load_with_config(&data().join("tiny"), DeviceChoice::Cpu, cfg)
        .expect("load")
        .encode_ground(&imgs)
        .expect("encode");
    let all = load_tiny().encode_ground(&imgs).expect("encode");
    for (a, b) in one.iter().zip(&all) {
        assert!(max_abs(a, b) <= 1e-5);
    }
}

fn load_tiny_f16() -> Encoders {
    let mut cfg = tiny_config();
    cfg.precision = Precision::F16;
    Encoders::load_with_config(&data().join("tiny"), DeviceChoice::Cpu, cfg)
        .expect("tiny encoders load in f16")
}

/// Half-precision parity: cosine >= 0.999 with the f32 reference, and the outputs must
/// differ from the f32 path (identical outputs would mean the f16 cast never happened).
fn assert_f16_parity(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>], f32_path: &[Vec<f32>]) {
    assert_eq!(ours.len(), reference.len(), "{what}: batch size");
    let mut worst_cos = 1.0f64;
    let mut diff_from_f32 = 0f32;
    for (i, ((o, r), f)) in ours.iter().zip(reference).zip(f32_path).enumerate() {
        let c = cosine(o, r);
        assert!(c >= 0.999, "{what}[{i}]: f16 cosine {c}");
        worst_cos = worst_cos.min(c);
        diff_from_f32 = diff_from_f32.max(max_abs(o, f));
    }
    println!(
        "{what} (f16): min cosine {worst_cos:.6}, max abs diff from f32 path {diff_from_f32:.3e}"
    );
    assert!(
        diff_from_f32 > 0.0,
        "{what}: f16 outputs are bit-identical to f32"
    );
}

#[test]
fn f16_cpu_matches_reference() {
    let enc = load_tiny_f16();
    assert_eq!(enc.precision(), Precision::F16);
    let f32_enc = load_tiny();
    let imgs: Vec<Image> = images().into_iter().map(|(_, i)| i).collect();
    assert_f16_parity(
        "ground",
        &enc.encode_ground(&imgs).expect("encode"),
        &rows_of("ground_embeds"),
        &f32_enc.encode_ground(&imgs).expect("encode"),
    );
    assert_f16_parity(
        "overhead",
        &enc.encode_overhead(&imgs, None).expect("encode"),
        &rows_of("overhead_embeds"),
        &f32_enc.encode_overhead(&imgs, None).expect("encode"),
    );
    let m = metas();
    assert_f16_parity(
        "overhead + GeoNet",
        &enc.encode_overhead(&imgs, Some(&m)).expect("encode"),
        &rows_of("fused_embeds"),
        &f32_enc.encode_overhead(&imgs, Some(&m)).expect("encode"),
    );
    let tok = std::fs::read_to_string(data().join("tokenizer.json")).expect("tokenizer.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&tok).expect("json");
    let ids: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| {
            r["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect()
        })
        .collect();
    assert_f16_parity(
        "text (token ids)",
        &enc.encode_token_ids(&ids).expect("encode"),
        &rows_of("text_embeds"),
        &f32_enc.encode_token_ids(&ids).expect("encode"),
    );
}

#[test]
fn precision_parses() {
    assert_eq!("fp16".parse::<Precision>(), Ok(Precision::F16));
    assert_eq!(" F32 ".parse::<Precision>(), Ok(Precision::F32));
    assert_eq!("half".parse::<Precision>(), Ok(Precision::F16));
    assert!("bf16".parse::<Precision>().is_err());
    assert_eq!(Precision::default(), Precision::F32);
}
