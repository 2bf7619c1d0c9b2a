//! Strict weight loading: names and shapes, missing / misshaped / unexpected tensors,
//! corrupt files.
#![cfg(feature = "encoders")]

#[path = "common/encoders.rs"]
mod common;

use std::collections::BTreeMap;

use common::*;
use sat2cap::encoders::clip_text::ClipTextModel;
use sat2cap::encoders::clip_vision::ClipVisionModel;
use sat2cap::encoders::weights::{expected_tensors, ExpectedTensor, WeightsError, IGNORABLE};
use sat2cap::encoders::{
    ClipTextConfig, ClipVisionConfig, CpuBackend, DeviceChoice, EncodeError, Encoders,
};

#[test]
fn full_size_model_expects_exactly_the_transformers_clip_tensors() {
    let device = Default::default();
    let mut ours = expected_tensors(&ClipTextModel::<CpuBackend>::init(
        &ClipTextConfig::vit_b32(),
        &device,
    ));
    ours.extend(expected_tensors(&ClipVisionModel::<CpuBackend>::init(
        &ClipVisionConfig::vit_b32(),
        &device,
    )));
    ours.sort();
    let list = std::fs::read_to_string(data().join("clip_vit_b32_params.txt")).expect("list");
    let mut reference: Vec<ExpectedTensor> = list
        .lines()
        .filter_map(|l| {
            let (name, shape) = l.split_once(' ')?;
            if IGNORABLE.contains(&name) {
                return None;
            }
            let shape = shape
                .split('x')
                .map(|d| d.parse::<usize>().expect("dim"))
                .collect();
            Some(ExpectedTensor {
                name: name.to_string(),
                shape,
            })
        })
        .collect();
    reference.sort();
    assert_eq!(
        reference.len(),
        397,
        "reference list (398 minus logit_scale)"
    );
    let only_ours: Vec<_> = ours.iter().filter(|t| !reference.contains(t)).collect();
    let only_ref: Vec<_> = reference.iter().filter(|t| !ours.contains(t)).collect();
    assert!(
        only_ours.is_empty() && only_ref.is_empty(),
        "only ours: {only_ours:?}\nonly reference: {only_ref:?}"
    );
}

/// Rewrites the tiny CLIP checkpoint with edits, into a temporary weights folder.
fn edited_folder(
    edit: impl Fn(&mut BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> tempfile::TempDir {
    let bytes = std::fs::read(data().join("tiny/clip/model.safetensors")).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut map = BTreeMap::new();
    for (name, view) in st.tensors() {
        map.insert(
            name,
            (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
        );
    }
    edit(&mut map);
    let views: Vec<(String, safetensors::tensor::TensorView)> = map
        .iter()
        .map(|(n, (d, s, b))| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("view"),
            )
        })
        .collect();
    let out = safetensors::serialize(views, None).expect("serialize");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("clip")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("sat2cap")).expect("mkdir");
    std::fs::write(dir.path().join("clip/model.safetensors"), out).expect("write");
    std::fs::copy(
        data().join("tiny/sat2cap/model.safetensors"),
        dir.path().join("sat2cap/model.safetensors"),
    )
    .expect("copy");
    dir
}

#[test]
fn unedited_copy_loads() {
    let dir = edited_folder(|_| {});
    Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config()).expect("loads");
}

#[test]
fn missing_misshaped_and_unexpected_tensors_are_all_reported() {
    let dir = edited_folder(|m| {
        m.remove("text_model.final_layer_norm.bias");
        m.remove("vision_model.encoder.layers.1.mlp.fc2.weight");
        let w = m
            .get_mut("vision_model.post_layernorm.weight")
            .expect("present");
        w.1 = vec![8, 8];
        let p = m.get_mut("text_projection.weight").expect("present");
        p.1 = vec![16, 512]; // transposed: wrong layout
        let extra = m["logit_scale"].clone();
        m.insert("text_model.something_new".into(), extra);
    });
    let err = Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config())
        .expect_err("must fail");
    let msg = err.to_string();
    println!("{msg}");
    match err {
        EncodeError::Weights(WeightsError::Mismatch {
            missing,
            misshaped,
            unexpected,
            ..
        }) => {
            let missing: Vec<&str> = missing.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(
                missing,
                [
                    "text_model.final_layer_norm.bias",
                    "vision_model.encoder.layers.1.mlp.fc2.weight"
                ]
            );
            let mut mis: Vec<(&str, &[usize], &[usize])> = misshaped
                .iter()
                .map(|(n, e, f)| (n.as_str(), e.as_slice(), f.as_slice()))
                .collect();
            mis.sort();
            assert_eq!(
                mis,
                [
                    (
                        "text_projection.weight",
                        &[512usize, 16][..],
                        &[16usize, 512][..]
                    ),
                    ("vision_model.post_layernorm.weight", &[64][..], &[8, 8][..]),
                ]
            );
            assert_eq!(unexpected, ["text_model.something_new"]);
        }
        other => panic!("wrong error {other:?}"),
    }
}

#[test]
fn corrupt_or_absent_files_are_errors() {
    let dir = edited_folder(|_| {});
    let path = dir.path().join("clip/model.safetensors");
    let mut bytes = std::fs::read(&path).expect("read");
    // Header length claims more than the file holds.
    bytes[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let err = Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config())
        .expect_err("corrupt");
    assert!(
        matches!(err, EncodeError::Weights(WeightsError::Format { .. })),
        "{err:?}"
    );
    std::fs::write(&path, b"").expect("write");
    assert!(Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config()).is_err());
    std::fs::remove_file(&path).expect("rm");
    let err = Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config())
        .expect_err("absent");
    assert!(
        matches!(err, EncodeError::Weights(WeightsError::Io { .. })),
        "{err:?}"
    );
}

#[test]
fn overhead_without_geo_encoder_refuses_metadata() {
    let dir = edited_folder(|_| {});
    // Strip geo_encoder.* from the overhead file.
    let p = dir.path().join("sat2cap/model.safetensors");
    let bytes = std::fs::read(&p).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let kept: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("geo_encoder."))
        .collect();
    let out = safetensors::serialize(kept, None).expect("serialize");
    std::fs::write(&p, out).expect("write");
    let enc = Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config())
        .expect("loads without GeoNet");
    assert!(!enc.has_dynamic());
    let img = sat2cap::encoders::Image::from_rgb8(2, 2, vec![7; 12]).expect("img");
    let meta = sat2cap::encoders::Meta {
        lat: 1.0,
        lon: 2.0,
        year: 2010,
        month: 1,
        day: 1,
        hour: 1,
    };
    assert!(matches!(
        enc.encode_overhead(std::slice::from_ref(&img), Some(&[meta])),
        Err(EncodeError::NoDynamicEncoder)
    ));
    assert_eq!(enc.encode_overhead(&[img], None).expect("plain").len(), 1);
}
