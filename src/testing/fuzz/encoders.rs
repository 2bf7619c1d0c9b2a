//! Fuzz-target bodies for the encoders' parsers of outside bytes: safetensors checkpoints
//! (strict loader), images (decode + both preprocessing pipelines) and text (CLIP BPE).

use std::path::Path;
use std::sync::OnceLock;

use crate::encoders::clip_text::ClipTextModel;
use crate::encoders::clip_vision::ClipVisionModel;
use crate::encoders::config::{ClipTextConfig, ClipVisionConfig, GeoNetConfig};
use crate::encoders::dynamic::{GeoNet, Sat2CapDynamic};
use crate::encoders::preprocess::{
    ground_pixels, overhead_pixels, GroundResize, Image, OverheadPreprocess, MAX_IMAGE_BYTES,
    MAX_IMAGE_SIDE,
};
use crate::encoders::tokenizer::{ClipTokenizer, CONTEXT, EOT, SOT};
use crate::encoders::weights::{expected_tensors, Loader, WeightsError, WeightsFile, IGNORABLE};
use crate::encoders::CpuBackend;

/// The text tower the `safetensors_load` body loads: vocabulary 64, width 8, 1 layer.
pub fn fuzz_text_config() -> ClipTextConfig {
    ClipTextConfig {
        vocab_size: 64,
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        max_position_embeddings: 8,
        projection_dim: 8,
        layer_norm_eps: 1e-5,
        eos_token_id: 63,
    }
}

/// The vision tower the `safetensors_load` body loads: 8 px images, patch 4, width 8.
pub fn fuzz_vision_config() -> ClipVisionConfig {
    ClipVisionConfig {
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        image_size: 8,
        patch_size: 4,
        projection_dim: 8,
        layer_norm_eps: 1e-5,
    }
}

/// The GeoNet the `safetensors_load` body loads when the file has `geo_encoder.*` tensors.
pub fn fuzz_geo_config() -> GeoNetConfig {
    GeoNetConfig {
        hidden: 4,
        output: 8,
    }
}

/// Checkpoint names and shapes of the fuzz models (text + vision, plus GeoNet if `geo`).
pub fn fuzz_expected_tensors(geo: bool) -> Vec<(String, Vec<usize>)> {
    let device = Default::default();
    let mut out = expected_tensors(&ClipTextModel::<CpuBackend>::init(
        &fuzz_text_config(),
        &device,
    ));
    out.extend(expected_tensors(&ClipVisionModel::<CpuBackend>::init(
        &fuzz_vision_config(),
        &device,
    )));
    if geo {
        out.extend(expected_tensors(&Sat2CapDynamic::<CpuBackend> {
            geo_encoder: GeoNet::init(&fuzz_geo_config(), &device),
        }));
    }
    out.into_iter().map(|t| (t.name, t.shape)).collect()
}

/// A valid checkpoint for the fuzz models: every expected tensor, values `i / 1000`, in
/// `dtype` (F32, F16, BF16 or F64); with `geo`, also the GeoNet tensors.
pub fn safetensors_seed(dtype: safetensors::Dtype, geo: bool) -> Vec<u8> {
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = fuzz_expected_tensors(geo)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let mut bytes = Vec::new();
            for i in 0..n {
                let x = i as f32 / 1000.0;
                match dtype {
                    safetensors::Dtype::F16 => {
                        bytes.extend_from_slice(&half::f16::from_f32(x).to_le_bytes())
                    }
                    safetensors::Dtype::BF16 => {
                        bytes.extend_from_slice(&half::bf16::from_f32(x).to_le_bytes())
                    }
                    safetensors::Dtype::F64 => bytes.extend_from_slice(&f64::from(x).to_le_bytes()),
                    _ => bytes.extend_from_slice(&x.to_le_bytes()),
                }
            }
            (name, shape, bytes)
        })
        .collect();
    let dtype = match dtype {
        safetensors::Dtype::F16 | safetensors::Dtype::BF16 | safetensors::Dtype::F64 => dtype,
        _ => safetensors::Dtype::F32,
    };
    let mut views = Vec::new();
    for (name, shape, bytes) in &tensors {
        match safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes) {
            Ok(v) => views.push((name.clone(), v)),
            Err(e) => panic!("seed tensor {name}: {e}"),
        }
    }
    safetensors::serialize(views, None).unwrap_or_else(|e| panic!("serialize seed: {e}"))
}

/// Reads `data` as a `model.safetensors` and loads the fuzz text + vision towers (and GeoNet
/// when the file has `geo_encoder.*` tensors) through the strict [`Loader`]: either a typed
/// error, or every expected tensor was in the file with its shape and nothing else was.
pub fn safetensors_load(data: &[u8]) {
    let path = Path::new("fuzz/model.safetensors");
    let Ok(file) = WeightsFile::from_bytes(path, data.to_vec()) else {
        return;
    };
    let device = Default::default();
    let geo = file.has_prefix("geo_encoder.");
    let mut loader = Loader::new(&file);
    let _text = loader.load(ClipTextModel::<CpuBackend>::init(
        &fuzz_text_config(),
        &device,
    ));
    let _vision = loader.load(ClipVisionModel::<CpuBackend>::init(
        &fuzz_vision_config(),
        &device,
    ));
    if geo {
        let _geo = loader.load(Sat2CapDynamic::<CpuBackend> {
            geo_encoder: GeoNet::init(&fuzz_geo_config(), &device),
        });
    }
    let got = file
        .tensors()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    check_loaded(loader.finish(), got, fuzz_expected_tensors(geo));
}

/// What a strict load may end in: loaded, and the file holds exactly the expected tensors
/// (up to [`IGNORABLE`]); or a mismatch report that names something; or another typed
/// error. Burn refusing tensors that passed the checks is a bug.
pub(super) fn check_loaded(
    result: Result<(), WeightsError>,
    got: Vec<(String, Vec<usize>)>,
    mut want: Vec<(String, Vec<usize>)>,
) {
    match result {
        Ok(()) => {
            want.sort();
            let mut got: Vec<(String, Vec<usize>)> = got
                .into_iter()
                .filter(|(n, _)| !IGNORABLE.contains(&n.as_str()))
                .collect();
            got.sort();
            assert_eq!(got, want, "a file that loaded does not match the model");
        }
        Err(WeightsError::Mismatch {
            missing,
            misshaped,
            unexpected,
            bad_dtype,
            ..
        }) => assert!(
            !(missing.is_empty()
                && misshaped.is_empty()
                && unexpected.is_empty()
                && bad_dtype.is_empty()),
            "an empty mismatch report"
        ),
        Err(e @ WeightsError::Apply { .. }) => {
            panic!("burn refused tensors that passed the checks: {e}")
        }
        Err(_) => {}
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG of a few dozen bytes whose header declares a `w x h` 8-bit RGB image, followed by
/// a tiny (truncated) pixel stream: a decompression bomb's header.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream holding one stored block of 4 zero bytes.
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Decodes `data` as an image; one that decodes is within the limits, and both
/// preprocessing pipelines (ground CLIP 224, overhead crop 800 -> 224, overhead without
/// crop) give `3 x 224 x 224` finite values.
pub fn image_preprocess(data: &[u8]) {
    let Ok(img) = Image::decode(data) else {
        return;
    };
    let (w, h) = (img.width(), img.height());
    assert!(w >= 1 && h >= 1);
    assert!(w <= MAX_IMAGE_SIDE as usize && h <= MAX_IMAGE_SIDE as usize);
    assert!((w * h * 3) as u64 <= MAX_IMAGE_BYTES);
    assert_eq!(img.as_rgb8().len(), w * h * 3);
    let size = 224;
    let crop = OverheadPreprocess {
        crop: Some(800),
        ..OverheadPreprocess::default()
    };
    for (what, px) in [
        ("ground", ground_pixels(&img, size, GroundResize::Squash)),
        (
            "ground, CLIP crop",
            ground_pixels(&img, size, GroundResize::ClipCrop),
        ),
        (
            "overhead",
            overhead_pixels(&img, &OverheadPreprocess::default()),
        ),
        ("overhead with a crop", overhead_pixels(&img, &crop)),
    ] {
        assert_eq!(
            px.len(),
            3 * size * size,
            "{what} pixels of a {w}x{h} image"
        );
        assert!(px.iter().all(|x| x.is_finite()), "{what}: non-finite value");
    }
}

fn clip_tokenizer() -> &'static ClipTokenizer {
    static TOK: OnceLock<ClipTokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        ClipTokenizer::embedded().unwrap_or_else(|e| panic!("embedded vocabulary: {e}"))
    })
}

/// Size of CLIP's vocabulary (ids `0..VOCAB`).
pub const CLIP_VOCAB: u32 = 49_408;

/// Tokenizes `data` (if UTF-8): exactly 77 ids, the start token first, the end token last,
/// the raw ids (all in the vocabulary) in between, truncated, then end-token padding.
pub fn tokenizer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tok = clip_tokenizer();
    let raw = tok.encode_raw(text);
    assert!(
        raw.iter().all(|&id| id < CLIP_VOCAB),
        "id outside the vocabulary"
    );
    let ids = tok.encode(text);
    assert_eq!(ids.len(), CONTEXT);
    assert_eq!(ids[0], SOT);
    let kept = raw.len().min(CONTEXT - 2);
    assert_eq!(&ids[1..1 + kept], &raw[..kept]);
    assert!(
        ids[1 + kept..].iter().all(|&id| id == EOT),
        "end token / padding"
    );
    assert_eq!(ids[CONTEXT - 1], EOT);
}
