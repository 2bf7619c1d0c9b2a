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

// ---- PyTorch files: pytorch_model.bin and Lightning .ckpt (tests/data/encoders/pytorch/,
// made by tools/make_pytorch_fixtures.py with torch + transformers) ----

use sat2cap::encoders::weights::{lightning_name, WeightsFile};
use sat2cap::encoders::{find_weights, Image, Meta};

/// tests/data/encoders/pytorch: a weights folder (clip/pytorch_model.bin,
/// sat2cap/sat2cap_geomoco.ckpt) plus other/ and hostile/.
fn pt() -> std::path::PathBuf {
    data().join("pytorch")
}

/// What a hostile pickle would create if it were ever run.
const PWNED: &str = "/tmp/sat2cap-pytorch-fixture-pwned";

fn test_images() -> Vec<Image> {
    [(64usize, 64usize), (80, 48), (33, 71)]
        .iter()
        .enumerate()
        .map(|(k, &(w, h))| {
            let px = (0..w * h * 3)
                .map(|i| ((i * (7 + k) + i / (w * 3) * 13) % 256) as u8)
                .collect();
            Image::from_rgb8(w, h, px).expect("image")
        })
        .collect()
}

/// Every embedding the encoders make: text, ground, overhead with and without metadata.
fn all_embeddings(enc: &Encoders) -> Vec<Vec<Vec<f32>>> {
    let images = test_images();
    let meta: Vec<Meta> = (0..images.len())
        .map(|i| Meta {
            lat: 40.0 - 30.0 * i as f64,
            lon: -74.0 + 50.0 * i as f64,
            year: 2012 + i as i32,
            month: 3 + i as u32,
            day: 1 + 9 * i as u32,
            hour: 5 * i as u32,
        })
        .collect();
    vec![
        enc.encode_text(&["a busy city street", "a lake at dawn", ""])
            .expect("text"),
        enc.encode_ground(&images).expect("ground"),
        enc.encode_overhead(&images, None).expect("overhead"),
        enc.encode_overhead(&images, Some(&meta))
            .expect("overhead + meta"),
    ]
}

fn bits(v: &[Vec<Vec<f32>>]) -> Vec<Vec<Vec<u32>>> {
    v.iter()
        .map(|m| {
            m.iter()
                .map(|r| r.iter().map(|x| x.to_bits()).collect())
                .collect()
        })
        .collect()
}

#[test]
fn pytorch_bin_and_lightning_ckpt_give_bit_identical_embeddings() {
    let reference =
        Encoders::load_with_config(&data().join("tiny"), DeviceChoice::Cpu, tiny_config())
            .expect("safetensors folder");
    let found = find_weights(&pt()).expect("find");
    assert_eq!(found.clip, pt().join("clip/pytorch_model.bin"));
    assert_eq!(found.sat2cap, pt().join("sat2cap/sat2cap_geomoco.ckpt"));
    let torch = Encoders::load_with_config(&pt(), DeviceChoice::Cpu, tiny_config())
        .expect("pytorch_model.bin + .ckpt folder");
    assert!(torch.has_dynamic(), "the checkpoint's GeoNet");
    let want = bits(&all_embeddings(&reference));
    assert_eq!(bits(&all_embeddings(&torch)), want);
    // Mixed: safetensors CLIP, Lightning Sat2Cap; PyTorch CLIP, safetensors Sat2Cap.
    for (clip, sat) in [
        (
            "tiny/clip/model.safetensors",
            "pytorch/sat2cap/sat2cap_geomoco.ckpt",
        ),
        (
            "pytorch/clip/pytorch_model.bin",
            "tiny/sat2cap/model.safetensors",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        for (src, sub) in [(clip, "clip"), (sat, "sat2cap")] {
            let name = std::path::Path::new(src).file_name().expect("name");
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
            std::fs::copy(data().join(src), dir.path().join(sub).join(name)).expect("copy");
        }
        let enc = Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config())
            .expect("mixed folder");
        assert_eq!(bits(&all_embeddings(&enc)), want, "{clip} + {sat}");
    }
}

/// Names and f32 values of every float tensor of a weights file.
fn float_tensors(f: &WeightsFile) -> BTreeMap<String, (Vec<usize>, Vec<u32>)> {
    f.tensors()
        .filter_map(|(n, _)| {
            let (v, s) = f.read_tensor(n).ok()?;
            Some((n.to_string(), (s, v.iter().map(|x| x.to_bits()).collect())))
        })
        .collect()
}

#[test]
fn pytorch_files_hold_exactly_the_safetensors_tensors() {
    for (torch, st, extra) in [
        (
            "pytorch/clip/pytorch_model.bin",
            "tiny/clip/model.safetensors",
            &[
                ("text_model.embeddings.position_ids", vec![1usize, 77]),
                ("vision_model.embeddings.position_ids", vec![1, 5]),
            ][..],
        ),
        (
            "pytorch/sat2cap/sat2cap_geomoco.ckpt",
            "tiny/sat2cap/model.safetensors",
            &[("vision_model.embeddings.position_ids", vec![1, 5])][..],
        ),
    ] {
        let t = WeightsFile::open_any(&data().join(torch)).expect(torch);
        let s = WeightsFile::open_any(&data().join(st)).expect(st);
        assert_eq!(
            float_tensors(&t),
            float_tensors(&s),
            "{torch} (after regenerating tiny/, rerun tools/make_pytorch_fixtures.py)"
        );
        let mut names: Vec<(String, Vec<usize>)> = s
            .tensors()
            .map(|(n, sh)| (n.to_string(), sh.to_vec()))
            .collect();
        names.extend(extra.iter().map(|(n, sh)| (n.to_string(), sh.clone())));
        names.sort();
        let got: Vec<(String, Vec<usize>)> = t
            .tensors()
            .map(|(n, sh)| (n.to_string(), sh.to_vec()))
            .collect();
        // Everything else in the checkpoint (img_encoder.*, text_model.*, queue, queue_ptr,
        // temp_layer.*, optimizer state, hyper-parameters) is gone.
        assert_eq!(got, names, "{torch}");
    }
}

#[test]
fn lightning_names_follow_the_converter() {
    for (key, want) in [
        (
            "imo_encoder.vision_model.vision_model.encoder.layers.0.mlp.fc1.weight",
            Some("vision_model.encoder.layers.0.mlp.fc1.weight"),
        ),
        (
            "imo_encoder.vision_model.visual_projection.weight",
            Some("visual_projection.weight"),
        ),
        ("geo_encoder.fc2.bias", Some("geo_encoder.fc2.bias")),
        (
            "imo_encoder.vision_model.vision_model.embeddings.position_ids",
            Some("vision_model.embeddings.position_ids"),
        ),
        ("img_encoder.vision_model.visual_projection.weight", None),
        ("text_model.text_projection.weight", None),
        ("temp_layer.logit_scale", None),
        ("queue", None),
        ("queue_ptr", None),
        // Not on the lists: kept as is, so the strict loader reports it.
        ("queue_extra", Some("queue_extra")),
        ("imo_encoder.head.weight", Some("imo_encoder.head.weight")),
    ] {
        assert_eq!(lightning_name(key).as_deref(), want, "{key}");
    }
}

#[test]
fn a_checkpoint_of_another_model_is_a_mismatch_naming_it() {
    // A Lightning checkpoint that is not this model's: strict loading says what differs.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("clip")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("sat2cap")).expect("mkdir");
    std::fs::copy(
        data().join("tiny/clip/model.safetensors"),
        dir.path().join("clip/model.safetensors"),
    )
    .expect("copy");
    // hparams_os_system.ckpt's state dict: geo_encoder.fc1.bias (and a dropped queue).
    std::fs::copy(
        pt().join("hostile/hparams_os_system.ckpt"),
        dir.path().join("sat2cap/last.ckpt"),
    )
    .expect("copy");
    let err = Encoders::load_with_config(dir.path(), DeviceChoice::Cpu, tiny_config())
        .expect_err("not a model");
    match &err {
        EncodeError::Weights(WeightsError::Mismatch {
            path,
            missing,
            misshaped,
            ..
        }) => {
            assert!(path.ends_with("sat2cap/last.ckpt"), "{path:?}");
            assert!(missing.iter().any(|t| t.name == "visual_projection.weight"));
            assert_eq!(misshaped[0].0, "geo_encoder.fc1.bias");
        }
        other => panic!("wrong error {other:?}"),
    }
}

fn folder_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, bytes) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }
    dir
}

#[test]
fn weights_discovery_order_and_errors() {
    let read = |p: &str| std::fs::read(data().join(p)).expect(p);
    let (clip_st, clip_bin) = (
        read("tiny/clip/model.safetensors"),
        read("pytorch/clip/pytorch_model.bin"),
    );
    let (sat_st, ckpt) = (
        read("tiny/sat2cap/model.safetensors"),
        read("pytorch/sat2cap/sat2cap_geomoco.ckpt"),
    );
    let load = |d: &tempfile::TempDir| {
        Encoders::load_with_config(d.path(), DeviceChoice::Cpu, tiny_config())
    };
    // model.safetensors wins over a broken pytorch_model.bin beside it.
    let d = folder_with(&[
        ("clip/model.safetensors", &clip_st),
        ("clip/pytorch_model.bin", b"junk"),
        ("sat2cap/model.safetensors", &sat_st),
        ("sat2cap/pytorch_model.bin", b"junk"),
        ("sat2cap/x.ckpt", b"junk"),
    ]);
    load(&d).expect("safetensors first");
    // pytorch_model.bin wins over a .ckpt.
    let d = folder_with(&[
        ("clip/pytorch_model.bin", &clip_bin),
        ("sat2cap/pytorch_model.bin", b"junk"),
        ("sat2cap/x.ckpt", &ckpt),
    ]);
    let err = load(&d).expect_err("the junk .bin is read");
    assert!(
        matches!(&err, EncodeError::Weights(WeightsError::PyTorch { path, .. }) if path.ends_with("sat2cap/pytorch_model.bin")),
        "{err:?}"
    );
    // Exactly one .ckpt.
    let d = folder_with(&[
        ("clip/pytorch_model.bin", &clip_bin),
        ("sat2cap/b.ckpt", &ckpt),
        ("sat2cap/a.ckpt", &ckpt),
        ("sat2cap/notes.txt", b"hi"),
    ]);
    let err = load(&d).expect_err("two checkpoints");
    println!("{err}");
    match &err {
        EncodeError::Weights(e @ WeightsError::Ambiguous { files, .. }) => {
            assert_eq!(files, &["a.ckpt", "b.ckpt"]);
            assert!(e.is_bad_input());
        }
        other => panic!("wrong error {other:?}"),
    }
    assert!(err.to_string().contains("a.ckpt, b.ckpt"), "{err}");
    // Nothing there: the safetensors name, with the alternatives said.
    let d = folder_with(&[
        ("clip/pytorch_model.bin", &clip_bin),
        ("sat2cap/n.txt", b""),
    ]);
    let err = load(&d).expect_err("no sat2cap weights");
    println!("{err}");
    match &err {
        EncodeError::Weights(e @ WeightsError::Io { path, source }) => {
            assert!(path.ends_with("sat2cap/model.safetensors"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            assert!(source.to_string().contains("*.ckpt"), "{source}");
            assert!(e.is_bad_input());
        }
        other => panic!("wrong error {other:?}"),
    }
    let d = folder_with(&[("sat2cap/model.safetensors", &sat_st)]);
    let err = load(&d).expect_err("no clip weights");
    assert!(
        matches!(&err, EncodeError::Weights(WeightsError::Io { path, source }) if path.ends_with("clip/model.safetensors") && source.to_string().contains("pytorch_model.bin")),
        "{err:?}"
    );
}

#[test]
fn other_pytorch_files_load() {
    let quarter = |r: std::ops::Range<usize>| r.map(|i| i as f32 / 4.0).collect::<Vec<f32>>();
    let f = WeightsFile::open_any(&pt().join("other/dtypes.pt")).expect("dtypes.pt");
    let shapes: BTreeMap<&str, &[usize]> = f.tensors().collect();
    let want: BTreeMap<&str, &[usize]> = [
        ("f32", &[2usize, 3][..]),
        ("f16", &[6]),
        ("bf16", &[6]),
        ("f64", &[6]),
        ("i64", &[3]),
        ("flag", &[2]),
        ("view", &[4]),
        ("scalar", &[]),
        ("empty", &[0, 3]),
    ]
    .into_iter()
    .collect();
    assert_eq!(shapes, want);
    for name in ["f32", "f16", "bf16", "f64"] {
        assert_eq!(f.read_tensor(name).expect(name).0, quarter(0..6), "{name}");
    }
    // A tensor at a storage offset (base[4:8]).
    assert_eq!(f.read_tensor("view").expect("view").0, quarter(4..8));
    assert_eq!(f.read_tensor("scalar").expect("scalar").0, [0.5]);
    let reference = float_tensors(&f);
    // The same file re-packed: deflated, with zip64 records, without CRCs (torch reads all).
    for name in ["dtypes_deflate.pt", "dtypes_zip64.pt", "dtypes_no_crc.pt"] {
        let g = WeightsFile::open_any(&pt().join("other").join(name)).expect(name);
        assert_eq!(float_tensors(&g), reference, "{name}");
        assert_eq!(g.tensors().count(), shapes.len(), "{name}");
    }
}

#[test]
fn hostile_pytorch_files_are_clean_errors() {
    let cases: &[(&str, &str)] = &[
        ("bad_opcode.pt", "unknown pickle opcode 0xff"),
        ("big_endian.pt", "big-endian"),
        ("bzip2.pt", "compression method 12"),
        ("copy_bomb.pt", "can legitimately hold"),
        ("crc_mismatch.pt", "fails its CRC-32 check"),
        ("deflate_bomb.pt", "cannot inflate to 4294967280"),
        ("duplicate_key.pt", "key w appears twice"),
        ("empty.pt", "the file is empty"),
        ("encrypted.pt", "encrypted"),
        ("ext_opcode.pt", "extension registry"),
        ("huge_long.pt", "bytes wanted"),
        (
            "huge_shape.pt",
            "tensor w: size [2147483648, 2147483648, 2147483648] overflows",
        ),
        ("huge_string.pt", "4294967280 bytes wanted"),
        ("int_key.pt", "key that is the int 0, not a string"),
        ("legacy.pt", "legacy (before 1.6, not zip) format"),
        ("list_root.pt", "holds a list, not a dict of tensors"),
        ("memo_bomb.pt", "entry k is a list, not a tensor"),
        ("memo_missing.pt", "memo entry 5 was never stored"),
        (
            "missing_storage.pt",
            "tensor w: its storage 7 is not in the archive",
        ),
        ("negative_offset.pt", "tensor w: negative storage offset"),
        ("no_stop.pt", "without STOP"),
        ("not_a_tensor.pt", "entry w is a list, not a tensor"),
        ("not_a_zip.bin", "not a zip archive"),
        (
            "offset_out_of_range.pt",
            "tensor w needs elements 10..18 of storage 0, which has 16",
        ),
        (
            "os_system.pt",
            "entry w is an object made by os.system (not run), not a tensor",
        ),
        ("protocol_9.pt", "pickle protocol 9"),
        ("stack_underflow.pt", "stack underflow"),
        ("state_dict_list.ckpt", "state_dict is a list, not a dict"),
        (
            "storage_too_short.pt",
            "tensor w: storage 0 holds 8 bytes, but the pickle declares 16 elements",
        ),
        (
            "stored_size_lies.pt",
            "stored, but 165 bytes in the archive and 1048576 uncompressed",
        ),
        ("stride_mismatch.pt", "tensor w is not contiguous"),
        ("truncated.pt", "truncated zip archive"),
        (
            "unknown_storage_type.pt",
            "storage type torch.ComplexFloatStorage is not supported",
        ),
    ];
    let _ = std::fs::remove_file(PWNED);
    let mut on_disk: Vec<String> = std::fs::read_dir(pt().join("hostile"))
        .expect("hostile/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "hparams_os_system.ckpt")
        .collect();
    on_disk.sort();
    let listed: Vec<String> = cases.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, listed, "every hostile fixture is checked here");
    for (name, want) in cases {
        let path = pt().join("hostile").join(name);
        let err = WeightsFile::open_any(&path).expect_err(name);
        let msg = err.to_string();
        println!("{msg}");
        assert!(
            matches!(&err, WeightsError::PyTorch { path: p, .. } if *p == path),
            "{name}: {err:?}"
        );
        assert!(err.is_bad_input(), "{name}");
        assert!(!msg.contains('\n'), "{name}: more than one line");
        assert!(msg.contains(want), "{name}: {msg}");
    }
    assert!(!std::path::Path::new(PWNED).exists(), "a pickled call ran");
    // Through the weights folder: the checkpoint named in the error.
    let d = folder_with(&[
        (
            "clip/model.safetensors",
            &std::fs::read(data().join("tiny/clip/model.safetensors")).expect("read"),
        ),
        (
            "sat2cap/bad.ckpt",
            &std::fs::read(pt().join("hostile/os_system.pt")).expect("read"),
        ),
    ]);
    let err = Encoders::load_with_config(d.path(), DeviceChoice::Cpu, tiny_config())
        .expect_err("hostile checkpoint");
    assert!(
        matches!(&err, EncodeError::Weights(WeightsError::PyTorch { path, .. }) if path.ends_with("sat2cap/bad.ckpt")),
        "{err:?}"
    );
}

#[test]
fn pickled_calls_in_hyper_parameters_are_never_run() {
    // Its hyper-parameters call os.system, eval and subprocess.Popen when Python unpickles
    // them (torch.load(weights_only=True) refuses the file); we load its state dict.
    let _ = std::fs::remove_file(PWNED);
    let f = WeightsFile::open_any(&pt().join("hostile/hparams_os_system.ckpt")).expect("loads");
    let names: Vec<&str> = f.tensors().map(|(n, _)| n).collect();
    assert_eq!(names, ["geo_encoder.fc1.bias"], "queue dropped");
    assert_eq!(
        f.read_tensor("geo_encoder.fc1.bias").expect("bias").0,
        [0.0, 1.0, 2.0, 3.0]
    );
    assert!(!std::path::Path::new(PWNED).exists(), "a pickled call ran");
}
