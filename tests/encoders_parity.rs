//! Parity of the tiny encoders with the reference (transformers / PyTorch / PIL /
//! torchvision), on the checkpoints and outputs made by tools/make_encoder_goldens.py.
//!
//! Defaults (tiny_config): ground photos squashed to S x S bilinear, overhead tiles resized
//! whole, the fast tokenizer's text normalisation. Options: `GroundResize::ClipCrop`,
//! `OverheadPreprocess { crop: Some(c), .. }`, `TextNorm::Ftfy`.
#![cfg(feature = "encoders")]

#[path = "common/encoders.rs"]
mod common;

use common::*;
use sat2cap::encoders::preprocess::{self, GroundResize, Image, OverheadPreprocess};
use sat2cap::encoders::{DeviceChoice, Encoders, EncodersConfig, Meta, Precision, TextNorm};

/// Side of the overhead crop of the 64 px goldens (`overhead_*_crop48`).
const CROP_TINY: usize = 48;
/// Side of the overhead crop of the 224 px goldens (`pixels_224/overhead_crop100_*`).
const CROP_224: usize = 100;

fn load(cfg: EncodersConfig) -> Encoders {
    Encoders::load_with_config(&data().join("tiny"), DeviceChoice::Cpu, cfg)
        .expect("tiny encoders load")
}

fn load_tiny() -> Encoders {
    load(tiny_config())
}

fn clip_crop_config() -> EncodersConfig {
    let mut cfg = tiny_config();
    cfg.ground_resize = GroundResize::ClipCrop;
    cfg
}

fn crop48_config() -> EncodersConfig {
    let mut cfg = tiny_config();
    cfg.overhead_preprocess.crop = Some(CROP_TINY);
    cfg
}

fn ftfy_config() -> EncodersConfig {
    let mut cfg = tiny_config();
    cfg.text_norm = TextNorm::Ftfy;
    cfg
}

fn images_named() -> Vec<(String, Image)> {
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

fn images() -> Vec<Image> {
    images_named().into_iter().map(|(_, i)| i).collect()
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

/// Normalised rows of a golden tensor.
fn rows_of(name: &str) -> Vec<Vec<f32>> {
    rows(&goldens(), name)
        .iter()
        .map(|r| normalise(r))
        .collect()
}

fn ids_of(file: &str) -> Vec<Vec<u32>> {
    token_rows(file).into_iter().map(|r| r.ids).collect()
}

/// The goldens follow the library defaults: the test config's preprocessing is
/// `EncodersConfig::vit_b32()`'s.
#[test]
fn tiny_config_follows_the_library_defaults() {
    let (tiny, full) = (tiny_config(), EncodersConfig::vit_b32());
    assert_eq!(tiny.ground_resize, full.ground_resize);
    assert_eq!(tiny.overhead_preprocess, full.overhead_preprocess);
    assert_eq!(tiny.text_norm, full.text_norm);
    assert_eq!(
        (
            tiny.ground.image_size,
            tiny.overhead.image_size,
            golden_json()["tiny_image_size"].as_u64()
        ),
        (64, 64, Some(64))
    );
    assert_eq!(
        golden_json()["overhead_crop_tiny"].as_u64(),
        Some(CROP_TINY as u64)
    );
    assert_eq!(
        golden_json()["overhead_crop_224"].as_u64(),
        Some(CROP_224 as u64)
    );
}

#[test]
fn text_tower_matches_reference_on_reference_token_ids() {
    let enc = load_tiny();
    let ours = enc
        .encode_token_ids(&ids_of("tokenizer_hf.json"))
        .expect("encode");
    assert_parity("text (fast tokenizer ids)", &ours, &rows_of("text_embeds"));
    let ours = enc
        .encode_token_ids(&ids_of("tokenizer.json"))
        .expect("encode");
    assert_parity(
        "text (simple_tokenizer ids)",
        &ours,
        &rows_of("text_embeds_ftfy"),
    );
}

/// Tokenizer + tower, default normalisation (the fast tokenizer's), every string but the
/// documented divergences.
#[test]
fn text_end_to_end_matches_reference() {
    let enc = load_tiny();
    assert_eq!(enc.tokenizer().norm(), TextNorm::HfFast);
    let mut texts = Vec::new();
    let mut refs = Vec::new();
    for (r, e) in token_rows("tokenizer_hf.json")
        .into_iter()
        .zip(rows_of("text_embeds"))
    {
        if !HF_KNOWN_DIVERGENT.iter().any(|(t, _)| *t == r.text) {
            texts.push(r.text);
            refs.push(e);
        }
    }
    assert!(texts.len() >= 60, "too few strings: {}", texts.len());
    let t: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let ours = enc.encode_text(&t).expect("encode");
    assert_parity("text (end to end, hf-fast)", &ours, &refs);
}

/// Tokenizer + tower with `TextNorm::Ftfy` against simple_tokenizer's ids.
#[test]
fn text_end_to_end_ftfy_matches_reference() {
    let enc = load(ftfy_config());
    assert_eq!(enc.tokenizer().norm(), TextNorm::Ftfy);
    let mut texts = Vec::new();
    let mut refs = Vec::new();
    for (r, e) in token_rows("tokenizer.json")
        .into_iter()
        .zip(rows_of("text_embeds_ftfy"))
    {
        if r.known_divergence.is_none() {
            texts.push(r.text);
            refs.push(e);
        }
    }
    assert!(texts.len() >= 60, "too few strings: {}", texts.len());
    let t: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let ours = enc.encode_text(&t).expect("encode");
    assert_parity("text (end to end, ftfy)", &ours, &refs);
}

fn assert_pixels(what: &str, ours: &[Vec<f32>], reference: &[Vec<f32>]) {
    assert_eq!(ours.len(), reference.len(), "{what}: batch size");
    let mut worst = 0f32;
    for (o, r) in ours.iter().zip(reference) {
        worst = worst.max(max_abs(o, r));
    }
    println!("{what} (64 px): max abs diff {worst:.3e} (normalised units)");
    // One 8-bit step is 1/255/std ~ 0.015-0.02; PIL-exact resampling leaves float noise only.
    assert!(worst <= 1e-5, "{what}: pixel diff {worst}");
}

#[test]
fn ground_pixels_match_reference_at_64() {
    let imgs = images();
    assert_pixels(
        "ground pixels, squash",
        &load_tiny().ground_pixels(&imgs),
        &rows(&goldens(), "ground_pixels"),
    );
    assert_pixels(
        "ground pixels, clip-crop (CLIPImageProcessor)",
        &load(clip_crop_config()).ground_pixels(&imgs),
        &rows(&goldens(), "ground_pixels_clip_crop"),
    );
}

#[test]
fn overhead_pixels_match_reference_at_64() {
    let imgs = images();
    assert_pixels(
        "overhead pixels, whole tile",
        &load_tiny().overhead_pixels(&imgs),
        &rows(&goldens(), "overhead_pixels"),
    );
    assert_pixels(
        "overhead pixels, crop 48",
        &load(crop48_config()).overhead_pixels(&imgs),
        &rows(&goldens(), "overhead_pixels_crop48"),
    );
}

/// The 8-bit 224 x 224 images equal PIL's byte for byte, for every image and pipeline.
#[test]
fn resize_and_crop_match_pil_at_224() {
    let crop100 = OverheadPreprocess {
        crop: Some(CROP_224),
        ..OverheadPreprocess::default()
    };
    let named = images_named();
    assert_eq!(named.len(), 9);
    let mut report = Vec::new();
    for (name, img) in &named {
        for (kind, ours) in [
            (
                "ground",
                preprocess::ground_image(img, 224, GroundResize::Squash),
            ),
            (
                "ground_clipcrop",
                preprocess::ground_image(img, 224, GroundResize::ClipCrop),
            ),
            (
                "overhead",
                preprocess::overhead_image(img, &OverheadPreprocess::default()),
            ),
            (
                "overhead_crop100",
                preprocess::overhead_image(img, &crop100),
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
    assert_eq!(report.len(), 36);
}

/// The default ground path is `resize(S, S, bilinear)`, whatever the shape; CLIP's crop
/// differs from it on non-square photos.
#[test]
fn squash_is_a_plain_bilinear_resize() {
    for (name, img) in images_named() {
        let squash = preprocess::ground_image(&img, 64, GroundResize::Squash);
        assert_eq!(
            squash,
            preprocess::resize(&img, 64, 64, preprocess::Filter::Bilinear)
        );
        let crop = preprocess::ground_image(&img, 64, GroundResize::ClipCrop);
        if img.width() != img.height() {
            assert_ne!(squash, crop, "{name}");
        }
    }
}

#[test]
fn ground_embeddings_match_reference() {
    let imgs = images();
    let ours = load_tiny().encode_ground(&imgs).expect("encode");
    assert_parity("ground, squash", &ours, &rows_of("ground_embeds"));
    let ours = load(clip_crop_config())
        .encode_ground(&imgs)
        .expect("encode");
    assert_parity(
        "ground, clip-crop",
        &ours,
        &rows_of("ground_embeds_clip_crop"),
    );
}

#[test]
fn overhead_embeddings_match_reference_without_metadata() {
    let enc = load_tiny();
    assert!(enc.has_dynamic());
    let imgs = images();
    let ours = enc.encode_overhead(&imgs, None).expect("encode");
    assert_parity("overhead, whole tile", &ours, &rows_of("overhead_embeds"));
    let ours = load(crop48_config())
        .encode_overhead(&imgs, None)
        .expect("encode");
    assert_parity(
        "overhead, crop 48",
        &ours,
        &rows_of("overhead_embeds_crop48"),
    );
}

#[test]
fn geonet_features_match_reference() {
    let reference = rows(&goldens(), "geo_features");
    let m = metas();
    assert_eq!(m.len(), reference.len());
    let mut worst = 0f32;
    for (m, r) in m.iter().zip(&reference) {
        let f = m.features().expect("valid");
        worst = worst.max(max_abs(&f, r));
    }
    println!("GeoNet inputs: max abs diff {worst:.3e}");
    assert!(worst <= 1e-6, "feature diff {worst}");
}

/// Times written with a UTC offset: GeoNet gets the wall clock as written (the reference's
/// `preprocess_meta` on `date_taken = "2012-06-15 01:30:00.0"`), the instant stays UTC.
#[test]
fn wall_clock_times_give_the_reference_geonet_features() {
    use sat2cap::time::{from_unix, parse_wall};
    let cases = golden_json()["wall_clock"]
        .as_array()
        .expect("wall_clock")
        .clone();
    let reference = rows(&goldens(), "wall_geo_features");
    assert_eq!(cases.len(), reference.len());
    assert!(cases.len() >= 5);
    let mut worst = 0f32;
    let mut utc_differs = 0;
    for (c, r) in cases.iter().zip(&reference) {
        let time = c["time"].as_str().expect("time");
        let (instant, wall) = parse_wall(time).expect(time);
        assert_eq!(
            instant,
            c["unix"].as_i64().expect("unix"),
            "{time}: instant"
        );
        let w = &c["wall"];
        assert_eq!(
            (wall.year, wall.month, wall.day, wall.hour),
            (
                w["year"].as_i64().expect("year") as i32,
                w["month"].as_u64().expect("month") as u32,
                w["day"].as_u64().expect("day") as u32,
                w["hour"].as_u64().expect("hour") as u32,
            ),
            "{time}: wall clock"
        );
        let meta = |d: sat2cap::time::DateTime| Meta {
            lat: c["lat"].as_f64().expect("lat"),
            lon: c["lon"].as_f64().expect("lon"),
            year: d.year,
            month: d.month,
            day: d.day,
            hour: d.hour,
        };
        let f = meta(wall).features().expect("valid");
        let d = max_abs(&f, r);
        assert!(d <= 1e-6, "{time}: feature diff {d}");
        worst = worst.max(d);
        // The UTC calendar would give other inputs wherever the offset moves the hour.
        let utc = meta(from_unix(instant)).features().expect("valid");
        if max_abs(&utc, r) > 1e-3 {
            utc_differs += 1;
        }
    }
    println!(
        "wall-clock GeoNet inputs: {} cases, max abs diff {worst:.3e}; {utc_differs} would differ in UTC",
        cases.len()
    );
    assert!(utc_differs >= 5, "the cases must tell wall clock from UTC");
}

#[test]
fn fused_sat2cap_embeddings_match_reference() {
    let enc = load_tiny();
    let imgs = images();
    let m = metas();
    let ours = enc.encode_overhead(&imgs, Some(&m)).expect("encode");
    assert_parity("overhead + GeoNet", &ours, &rows_of("fused_embeds"));
    // The metadata must matter: the plain and fused embeddings differ.
    let plain = enc.encode_overhead(&imgs, None).expect("encode");
    assert!(cosine(&plain[0], &ours[0]) < 0.9999);
}

#[test]
fn batching_does_not_change_results() {
    let imgs = images();
    let mut cfg = tiny_config();
    cfg.max_batch = 1;
    let one = load(cfg).encode_ground(&imgs).expect("encode");
    let all = load_tiny().encode_ground(&imgs).expect("encode");
    for (a, b) in one.iter().zip(&all) {
        assert!(max_abs(a, b) <= 1e-5);
    }
}

fn load_tiny_f16() -> Encoders {
    let mut cfg = tiny_config();
    cfg.precision = Precision::F16;
    load(cfg)
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
    let imgs = images();
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
    let ids = ids_of("tokenizer_hf.json");
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
