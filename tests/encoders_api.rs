//! The public encoder API: devices, validation, per-file errors, determinism, threads.
#![cfg(feature = "encoders")]

#[path = "common/encoders.rs"]
mod common;

use common::*;
use sat2cap::encoders::{DeviceChoice, EncodeError, Encoders, Image, Meta};

const OK_META: Meta = Meta {
    lat: 45.0,
    lon: -93.0,
    year: 2012,
    month: 2,
    day: 29,
    hour: 23,
};

fn random_tiny(seed: u64) -> Encoders {
    Encoders::random_with_config(seed, DeviceChoice::Cpu, tiny_config()).expect("random")
}

#[test]
fn device_choice_parses() {
    assert_eq!("cpu".parse::<DeviceChoice>(), Ok(DeviceChoice::Cpu));
    assert_eq!("CUDA".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda));
    assert_eq!(" auto ".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
    assert!("tpu".parse::<DeviceChoice>().is_err());
    assert_eq!(DeviceChoice::Cuda.to_string(), "cuda");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_an_error_and_auto_falls_back() {
    let err =
        Encoders::random_with_config(1, DeviceChoice::Cuda, tiny_config()).expect_err("no cuda");
    assert!(matches!(err, EncodeError::Device(_)), "{err:?}");
    let enc = Encoders::random_with_config(1, DeviceChoice::Auto, tiny_config()).expect("cpu");
    assert!(enc.device_name().starts_with("cpu"));
}

#[test]
fn encoders_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Encoders>();
}

#[test]
fn meta_validation() {
    assert!(OK_META.validate().is_ok());
    let bad = [
        Meta {
            lat: 91.0,
            ..OK_META
        },
        Meta {
            lat: f64::NAN,
            ..OK_META
        },
        Meta {
            lon: -180.5,
            ..OK_META
        },
        Meta {
            lon: f64::INFINITY,
            ..OK_META
        },
        Meta {
            month: 13,
            ..OK_META
        },
        Meta {
            month: 0,
            ..OK_META
        },
        Meta { day: 0, ..OK_META },
        Meta {
            year: 2013,
            month: 2,
            day: 29,
            ..OK_META
        },
        Meta {
            month: 4,
            day: 31,
            ..OK_META
        },
        Meta {
            hour: 24,
            ..OK_META
        },
        Meta { year: 0, ..OK_META },
    ];
    for m in bad {
        assert!(m.validate().is_err(), "{m:?} accepted");
        assert!(m.features().is_err());
    }
    let f = OK_META.features().expect("ok");
    assert!(f.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
}

#[test]
fn outputs_are_unit_vectors_and_seeded_random_is_deterministic() {
    let a = random_tiny(7);
    let b = random_tiny(7);
    let c = random_tiny(8);
    let texts = ["a dog", "an aerial view of a harbour"];
    let ta = a.encode_text(&texts).expect("text");
    let tb = b.encode_text(&texts).expect("text");
    let tc = c.encode_text(&texts).expect("text");
    assert_eq!(ta, tb, "same seed, same weights");
    assert_ne!(ta, tc, "different seed, different weights");
    for v in &ta {
        assert_eq!(v.len(), 512);
        let n: f64 = v.iter().map(|x| f64::from(*x).powi(2)).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
    let img = Image::from_rgb8(3, 5, (0..45).map(|i| i as u8 * 5).collect()).expect("img");
    let g = a.encode_ground(std::slice::from_ref(&img)).expect("ground");
    let o = a
        .encode_overhead(std::slice::from_ref(&img), Some(&[OK_META]))
        .expect("overhead");
    for v in g.iter().chain(&o) {
        assert_eq!(v.len(), 512);
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn empty_batches_are_empty() {
    let e = random_tiny(1);
    assert!(e.encode_text(&[]).expect("text").is_empty());
    assert!(e.encode_ground(&[]).expect("ground").is_empty());
    assert!(e
        .encode_overhead(&[], Some(&[]))
        .expect("overhead")
        .is_empty());
    assert!(e.encode_ground_bytes(&[]).is_empty());
}

#[test]
fn bad_files_fail_alone() {
    let e = random_tiny(2);
    let png = std::fs::read(data().join("images/gradient_300x200.png")).expect("png");
    let files: Vec<&[u8]> = vec![&png, b"not an image", &[], &png[..png.len() / 2], &png];
    let out = e.encode_ground_bytes(&files);
    assert_eq!(out.len(), 5);
    assert!(out[0].is_ok() && out[4].is_ok());
    for (i, r) in out.iter().enumerate().take(4).skip(1) {
        assert!(
            matches!(r, Err(EncodeError::Image { index, .. }) if *index == i),
            "{r:?}"
        );
    }
    assert_eq!(out[0].as_ref().expect("ok"), out[4].as_ref().expect("ok"));
    // Per-row metadata errors, same idea.
    let metas = [
        OK_META,
        Meta {
            hour: 24,
            ..OK_META
        },
        OK_META,
        OK_META,
        OK_META,
    ];
    let out = e.encode_overhead_bytes(&files, Some(&metas));
    assert!(out[0].is_ok());
    assert!(matches!(out[1], Err(EncodeError::Meta { index: 1, .. })));
    // Wrong metadata count: every item errors, no panic.
    let out = e.encode_overhead_bytes(&files, Some(&metas[..2]));
    assert!(out.iter().all(|r| matches!(r, Err(EncodeError::Input(_)))));
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    let e = random_tiny(3);
    assert!(Image::from_rgb8(0, 5, vec![]).is_err());
    assert!(Image::from_rgb8(2, 2, vec![0; 11]).is_err());
    assert!(Image::from_rgb8(usize::MAX, 3, vec![]).is_err());
    let img = Image::from_rgb8(1, 1, vec![1, 2, 3]).expect("1x1");
    assert!(matches!(
        e.encode_overhead(
            std::slice::from_ref(&img),
            Some(&[Meta {
                lat: 91.0,
                ..OK_META
            }])
        ),
        Err(EncodeError::Meta { index: 0, .. })
    ));
    assert!(matches!(
        e.encode_overhead(&[img.clone(), img.clone()], Some(&[OK_META])),
        Err(EncodeError::Input(_))
    ));
    // Pixel tensors: a bad metadata row is named by its index, as for images.
    let px = e.overhead_pixels(&[img.clone(), img.clone(), img]);
    let bad_hour = [
        OK_META,
        OK_META,
        Meta {
            hour: 24,
            ..OK_META
        },
    ];
    assert!(matches!(
        e.encode_overhead_pixels(&px, Some(&bad_hour)),
        Err(EncodeError::Meta { index: 2, .. })
    ));
    assert!(matches!(
        e.encode_overhead_pixels(&px[..2], Some(&bad_hour)),
        Err(EncodeError::Input(_))
    ));
    assert!(e.encode_overhead_pixels(&px, Some(&[OK_META; 3])).is_ok());
    // Token ids: out of vocabulary, no end token, ragged rows, empty rows.
    assert!(e.encode_token_ids(&[vec![49406, 60000, 49407]]).is_err());
    assert!(e.encode_token_ids(&[vec![49406, 1, 2]]).is_err());
    assert!(e
        .encode_token_ids(&[vec![49406, 49407], vec![49407]])
        .is_err());
    assert!(e.encode_token_ids(&[vec![]]).is_err());
    assert!(e.encode_token_ids(&[vec![49407; 78]]).is_err());
    let mut cfg = tiny_config();
    cfg.max_batch = 0;
    assert!(Encoders::random_with_config(1, DeviceChoice::Cpu, cfg).is_err());
    let mut cfg = tiny_config();
    cfg.overhead_preprocess.crop = Some(1 << 20);
    assert!(Encoders::random_with_config(1, DeviceChoice::Cpu, cfg).is_err());
    let mut cfg = tiny_config();
    cfg.ground.num_attention_heads = 5;
    assert!(Encoders::random_with_config(1, DeviceChoice::Cpu, cfg).is_err());
}

#[test]
fn many_threads_can_encode_at_once() {
    let e = random_tiny(4);
    let want = e.encode_text(&["parallel"]).expect("text");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let got = e.encode_text(&["parallel"]).expect("text");
                assert!(max_abs(&got[0], &want[0]) <= 1e-6);
            });
        }
    });
}

#[test]
fn extreme_aspect_ratios_are_cheap_and_well_formed() {
    use sat2cap::encoders::preprocess;
    // 1 x 20000: the ground resize is 224 x 4480000, of which only the centre crop is made.
    let tall =
        Image::from_rgb8(1, 20_000, (0..60_000).map(|i| (i % 256) as u8).collect()).expect("tall");
    let t = std::time::Instant::now();
    for mode in [
        preprocess::GroundResize::Squash,
        preprocess::GroundResize::ClipCrop,
    ] {
        let g = preprocess::ground_image(&tall, 224, mode);
        assert_eq!((g.width(), g.height()), (224, 224));
    }
    let o = preprocess::overhead_image(&tall, &preprocess::OverheadPreprocess::default());
    assert_eq!((o.width(), o.height()), (224, 224));
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
    // A window equals the same region of the full resize.
    let img = Image::from_rgb8(
        37,
        23,
        (0..37 * 23 * 3).map(|i| (i * 13 % 256) as u8).collect(),
    )
    .expect("img");
    let full = preprocess::resize(&img, 91, 50, preprocess::Filter::Bicubic);
    let win = preprocess::resize_window(&img, 91, 50, 10..40, 5..45, preprocess::Filter::Bicubic);
    for y in 0..40 {
        for x in 0..30 {
            let a = &full.as_rgb8()[((y + 5) * 91 + x + 10) * 3..][..3];
            let b = &win.as_rgb8()[(y * 30 + x) * 3..][..3];
            assert_eq!(a, b);
        }
    }
}

/// `EncodersConfig::{text_norm, ground_resize, overhead_preprocess}` select the pipelines.
#[test]
fn preprocessing_options_follow_the_config() {
    use sat2cap::encoders::preprocess;
    use sat2cap::encoders::{ClipTokenizer, GroundResize, TextNorm};
    let default = random_tiny(5);
    assert_eq!(default.tokenizer().norm(), TextNorm::HfFast);
    let mut cfg = tiny_config();
    cfg.text_norm = TextNorm::Ftfy;
    cfg.ground_resize = GroundResize::ClipCrop;
    cfg.overhead_preprocess.crop = Some(40);
    let opts = Encoders::random_with_config(5, DeviceChoice::Cpu, cfg).expect("random");
    assert_eq!(opts.tokenizer().norm(), TextNorm::Ftfy);

    // Text: each encoder tokenises with its own normalisation.
    let text = "\u{201c}Caf&eacute;\u{201d} \u{ff26}\u{ff35}\u{ff2c}\u{ff2c}";
    let tok = ClipTokenizer::embedded().expect("tokenizer");
    let (hf_ids, ftfy_ids) = (
        tok.encode(text),
        ClipTokenizer::embedded()
            .expect("tokenizer")
            .with_norm(TextNorm::Ftfy)
            .encode(text),
    );
    assert_ne!(hf_ids, ftfy_ids);
    for (enc, ids) in [(&default, &hf_ids), (&opts, &ftfy_ids)] {
        let a = enc.encode_text(&[text]).expect("text");
        let b = enc
            .encode_token_ids(std::slice::from_ref(ids))
            .expect("ids");
        assert!(max_abs(&a[0], &b[0]) <= 1e-6);
    }

    // Images: a 90 x 30 image; with crop 40 the window is 40 x 30 (a side shorter than the
    // crop is kept whole, never padded).
    let img = Image::from_rgb8(
        90,
        30,
        (0..90 * 30 * 3).map(|i| (i * 7 % 251) as u8).collect(),
    )
    .expect("img");
    let imgs = std::slice::from_ref(&img);
    assert_eq!(
        default.ground_pixels(imgs)[0],
        preprocess::ground_pixels(&img, 64, GroundResize::Squash)
    );
    assert_eq!(
        opts.ground_pixels(imgs)[0],
        preprocess::ground_pixels(&img, 64, GroundResize::ClipCrop)
    );
    assert_ne!(default.ground_pixels(imgs), opts.ground_pixels(imgs));
    let whole = preprocess::OverheadPreprocess {
        size: 64,
        ..preprocess::OverheadPreprocess::default()
    };
    assert_eq!(
        default.overhead_pixels(imgs)[0],
        preprocess::overhead_pixels(&img, &whole)
    );
    assert_eq!(
        default.overhead_pixels(imgs)[0],
        preprocess::normalise(
            &preprocess::resize(&img, 64, 64, preprocess::Filter::Bilinear),
            preprocess::OVERHEAD_MEAN,
            preprocess::OVERHEAD_STD
        )
    );
    // The crop: the centred 40 x 30 window (left = 25), resized; no black border.
    let window = Image::from_rgb8(
        40,
        30,
        (0..30)
            .flat_map(|y| {
                let row = &img.as_rgb8()[(y * 90 + 25) * 3..(y * 90 + 65) * 3];
                row.to_vec()
            })
            .collect(),
    )
    .expect("window");
    assert_eq!(
        opts.overhead_pixels(imgs)[0],
        preprocess::overhead_pixels(&window, &whole)
    );
    // A crop larger than the tile takes the whole tile.
    let big = preprocess::OverheadPreprocess {
        crop: Some(500),
        ..whole.clone()
    };
    assert_eq!(
        preprocess::overhead_image(&img, &big),
        preprocess::overhead_image(&img, &whole)
    );
}
