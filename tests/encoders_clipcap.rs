//! ClipCap (`describe --generate`): parity with the reference (rmokady/CLIP_prefix_caption's
//! `generate2` / `generate_beam` over transformers' GPT2LMHeadModel, tiny random weights made
//! by tools/make_clipcap_goldens.py), the key/value cache against the full recompute, strict
//! loading of the published layout, GPT-2 decoding, and the CLI.
#![cfg(feature = "encoders")]

use std::path::{Path, PathBuf};

use sat2cap::encoders::clipcap::{init_mapper, mlp_name, ClipCapModel, GptPart, Mapper, MlpPart};
use sat2cap::encoders::gpt2::Gpt2LmHead;
use sat2cap::encoders::weights::{expected_tensors, expected_tensors_renamed, WeightsFile};
use sat2cap::encoders::{
    Captioner, ClipCapConfig, CpuBackend, DeviceChoice, EncodeError, GenerateOptions, Gpt2Decoder,
};
use serde_json::Value;

type Model = ClipCapModel<CpuBackend>;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/clipcap")
}

fn goldens() -> (Value, WeightsFile) {
    let j = std::fs::read_to_string(data().join("goldens.json")).expect("goldens.json");
    let t = WeightsFile::open(&data().join("goldens.safetensors")).expect("goldens");
    (serde_json::from_str(&j).expect("json"), t)
}

fn tensor(t: &WeightsFile, name: &str) -> Vec<f32> {
    t.read_tensor(name).expect(name).0
}

fn row(t: &WeightsFile, name: &str, i: usize, width: usize) -> Vec<f32> {
    tensor(t, name)[i * width..(i + 1) * width].to_vec()
}

fn config(name: &str) -> ClipCapConfig {
    ClipCapConfig::from_json(&std::fs::read_to_string(data().join(name)).expect("config"))
        .expect("valid config")
}

fn load(file: &str) -> Model {
    let f = WeightsFile::open_any(&data().join(file)).expect("weights");
    Model::load(&f, config("config.json"), Default::default()).expect("loads")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn flat(m: &Model, e: &[f32]) -> Vec<f32> {
    m.prefix(e)
        .expect("prefix")
        .into_data()
        .to_vec::<f32>()
        .expect("f32")
}

#[test]
fn the_tiny_config_is_the_preset() {
    assert_eq!(config("config.json"), ClipCapConfig::tiny());
    assert_eq!(
        ClipCapConfig::from_json("{}").unwrap(),
        ClipCapConfig::default()
    );
    let e = ClipCapConfig::from_json(r#"{"prefix_lenght": 10}"#).unwrap_err();
    assert!(e.contains("prefix_lenght"), "{e}");
}

#[test]
fn prefix_matches_the_reference_from_both_files() {
    let (_, g) = goldens();
    let (st, pt) = (load("model.safetensors"), load("coco_like.pt"));
    let mut worst = 0f32;
    for i in 0..4 {
        let e = row(&g, "embeddings", i, 512);
        let (a, b) = (flat(&st, &e), flat(&pt, &e));
        assert_eq!(
            a, b,
            "the .pt and the safetensors file hold the same weights"
        );
        worst = worst.max(max_diff(&a, &row(&g, "prefix", i, 4 * 64)));
    }
    eprintln!("mapper output: max abs diff {worst:e}");
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn logits_match_the_reference_and_the_cache_matches_the_full_recompute() {
    let (j, g) = goldens();
    let m = load("coco_like.pt");
    let (mut vs_ref, mut vs_full) = (0f32, 0f32);
    for (i, case) in j["mlp"].as_array().unwrap().iter().enumerate() {
        let e = row(&g, "embeddings", i, 512);
        let toks = ids(&case["logits_tokens"]);
        let cached = m.logits(&e, &toks, true).unwrap();
        let full = m.logits(&e, &toks, false).unwrap();
        let reference = tensor(&g, &format!("logits_{i}"));
        assert_eq!(cached.len(), toks.len() + 1);
        for (k, (c, f)) in cached.iter().zip(&full).enumerate() {
            vs_ref = vs_ref.max(max_diff(c, &reference[k * 300..(k + 1) * 300]));
            vs_full = vs_full.max(max_diff(c, f));
        }
    }
    eprintln!("logits: max abs diff {vs_ref:e} vs the reference, {vs_full:e} cache vs full");
    assert!(vs_ref < 1e-4, "{vs_ref}");
    assert!(vs_full < 1e-5, "{vs_full}");
}

#[test]
fn greedy_equals_the_reference_token_for_token() {
    let (j, g) = goldens();
    let m = load("model.safetensors");
    let stop = j["stop"].as_u64().unwrap() as u32;
    for (i, case) in j["mlp"].as_array().unwrap().iter().enumerate() {
        let e = row(&g, "embeddings", i, 512);
        assert_eq!(
            m.greedy(&e, 67, stop).unwrap(),
            ids(&case["greedy"]),
            "embedding {i}"
        );
        let s = case["stop_greedy"].as_u64().unwrap() as u32;
        let stopped = m.greedy(&e, 67, s).unwrap();
        assert_eq!(
            stopped,
            ids(&case["greedy_stopped"]),
            "embedding {i}, stop {s}"
        );
        assert_eq!(stopped.last(), Some(&s));
    }
}

#[test]
fn beam_search_equals_the_reference() {
    let (j, g) = goldens();
    let m = load("model.safetensors");
    let stop = j["stop"].as_u64().unwrap() as u32;
    let mut worst = 0f32;
    let mut check = |got: Vec<(Vec<u32>, f32)>, want: &Value, scores: &Value, what: &str| {
        let want: Vec<Vec<u32>> = want.as_array().unwrap().iter().map(ids).collect();
        let got_ids: Vec<Vec<u32>> = got.iter().map(|b| b.0.clone()).collect();
        assert_eq!(got_ids, want, "{what}");
        for (b, s) in got.iter().zip(scores.as_array().unwrap()) {
            worst = worst.max((b.1 - s.as_f64().unwrap() as f32).abs());
        }
    };
    for (i, c) in j["mlp"].as_array().unwrap().iter().enumerate() {
        let e = row(&g, "embeddings", i, 512);
        check(
            m.beam(&e, 5, 67, stop).unwrap(),
            &c["beam5"],
            &c["beam5_scores"],
            "beam 5",
        );
        check(
            m.beam(&e, 1, 67, stop).unwrap(),
            &c["beam1"],
            &c["beam1_scores"],
            "beam 1",
        );
        let s = c["stop_beam"].as_u64().unwrap() as u32;
        let got = m.beam(&e, 5, 67, s).unwrap();
        check(
            got,
            &c["beam5_stopped"],
            &c["beam5_stopped_scores"],
            "beam 5, stop",
        );
        let got = m.beam(&e, 3, 7, stop).unwrap();
        check(
            got,
            &c["beam3_max7"],
            &c["beam3_max7_scores"],
            "beam 3, 7 tokens",
        );
    }
    eprintln!("beam scores: max abs diff {worst:e}");
    assert!(worst < 1e-4, "{worst}");
}

/// model.safetensors' gpt.* with transformer.safetensors' clip_project.*, as one file.
fn transformer_file() -> WeightsFile {
    let a = std::fs::read(data().join("model.safetensors")).unwrap();
    let b = std::fs::read(data().join("transformer.safetensors")).unwrap();
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = a
        .tensors()
        .into_iter()
        .filter(|(n, _)| n.starts_with("gpt."))
        .collect();
    views.extend(b.tensors());
    let bytes = safetensors::serialize(views, None).unwrap();
    WeightsFile::from_bytes(Path::new("transformer.safetensors"), bytes).unwrap()
}

#[test]
fn transformer_mapper_matches_the_reference() {
    let (j, g) = goldens();
    let m = Model::load(
        &transformer_file(),
        config("transformer_config.json"),
        Default::default(),
    )
    .expect("loads");
    let stop = j["stop"].as_u64().unwrap() as u32;
    let mut worst = 0f32;
    for (i, c) in j["transformer"].as_array().unwrap().iter().enumerate() {
        let e = row(&g, "transformer_embeddings", i, 32);
        let want = tensor(&g, &format!("transformer_prefix_{i}"));
        worst = worst.max(max_diff(&flat(&m, &e), &want));
        assert_eq!(m.greedy(&e, 67, stop).unwrap(), ids(&c["greedy"]));
        let beams: Vec<Vec<u32>> = m
            .beam(&e, 4, 67, stop)
            .unwrap()
            .into_iter()
            .map(|b| b.0)
            .collect();
        let want: Vec<Vec<u32>> = c["beam4"].as_array().unwrap().iter().map(ids).collect();
        assert_eq!(beams, want);
    }
    eprintln!("transformer mapper output: max abs diff {worst:e}");
    assert!(worst < 1e-5, "{worst}");
}

/// model.safetensors with `edit` applied to its tensors (name, shape, f32 values).
fn edited(edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) -> WeightsFile {
    let f = WeightsFile::open(&data().join("model.safetensors")).unwrap();
    let mut ts: Vec<(String, Vec<usize>, Vec<f32>)> = f
        .tensors()
        .map(|(n, s)| (n.to_string(), s.to_vec(), f.read_tensor(n).unwrap().0))
        .collect();
    edit(&mut ts);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = ts
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b);
            (n.clone(), v.unwrap())
        })
        .collect();
    let out = safetensors::serialize(views, None).unwrap();
    WeightsFile::from_bytes(Path::new("edited.safetensors"), out).unwrap()
}

fn load_error(f: &WeightsFile) -> String {
    match Model::load(f, ClipCapConfig::tiny(), Default::default()) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn strict_loading_names_the_tensor() {
    let name = "gpt.transformer.h.1.mlp.c_fc.weight";
    let e = load_error(&edited(|ts| ts.retain(|t| t.0 != name)));
    assert!(e.contains(&format!("missing [{name} [64, 256]]")), "{e}");
    let e = load_error(&edited(|ts| {
        let t = ts
            .iter_mut()
            .find(|t| t.0 == "clip_project.model.2.bias")
            .unwrap();
        t.1 = vec![255];
        t.2.pop();
    }));
    assert!(
        e.contains("clip_project.model.2.bias expected [256] found [255]"),
        "{e}"
    );
    // A buffer of a layer the model does not have is not ignored.
    let e = load_error(&edited(|ts| {
        ts.push(("gpt.transformer.h.2.attn.bias".into(), vec![1], vec![1.0]))
    }));
    assert!(
        e.contains("unexpected [gpt.transformer.h.2.attn.bias]"),
        "{e}"
    );
    // The tied head: present and equal is fine (as coco_like.pt has it), different is not.
    let tied = |different: bool| {
        edited(|ts| {
            let mut v = ts
                .iter()
                .find(|t| t.0 == "gpt.transformer.wte.weight")
                .unwrap()
                .2
                .clone();
            if different {
                v[7] += 1.0;
            }
            ts.push(("gpt.lm_head.weight".into(), vec![300, 64], v));
        })
    };
    Model::load(&tied(false), ClipCapConfig::tiny(), Default::default()).expect("tied head");
    let e = load_error(&tied(true));
    assert!(
        e.contains("gpt.lm_head.weight differs from gpt.transformer.wte.weight"),
        "{e}"
    );
    // The wrong mapper for the file: every name is reported.
    let wrong = ClipCapConfig {
        mapping_type: sat2cap::encoders::MappingType::Linear,
        ..ClipCapConfig::tiny()
    };
    let f = WeightsFile::open(&data().join("model.safetensors")).unwrap();
    let e = Model::load(&f, wrong, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing [clip_project.weight [256, 512], clip_project.bias [256]]"),
        "{e}"
    );
    assert!(e.contains("unexpected [clip_project.model.0.bias"), "{e}");
}

#[test]
fn the_published_mlp_layout_is_expected_exactly() {
    let device = Default::default();
    let c = ClipCapConfig::default();
    let mut ours = expected_tensors(&GptPart::<CpuBackend> {
        gpt: Gpt2LmHead::init(&c.gpt2, &device),
    });
    let Mapper::Mlp(mlp) = init_mapper::<CpuBackend>(&c, &device) else {
        panic!("mlp")
    };
    ours.extend(expected_tensors_renamed::<CpuBackend, MlpPart<CpuBackend>>(
        &mlp, &mlp_name,
    ));
    ours.sort();
    let list = std::fs::read_to_string(data().join("clipcap_mlp_params.txt")).unwrap();
    let mut reference: Vec<(String, Vec<usize>)> = list
        .lines()
        .map(|l| {
            let mut p = l.split('\t');
            let name = p.next().unwrap().to_string();
            let shape: Vec<usize> = serde_json::from_str(p.nth(1).unwrap()).unwrap();
            (name, shape)
        })
        // Accepted without being loaded: the tied head and transformers 4.10's buffers.
        .filter(|(n, _)| {
            n != "gpt.lm_head.weight"
                && !n.ends_with(".attn.bias")
                && !n.ends_with(".attn.masked_bias")
        })
        .collect();
    reference.sort();
    let ours: Vec<(String, Vec<usize>)> = ours.into_iter().map(|t| (t.name, t.shape)).collect();
    assert_eq!(ours.len(), 4 + 148, "GPT-2 small: 148 tensors; the MLP: 4");
    assert_eq!(ours, reference);
}

#[test]
fn decoding_matches_transformers() {
    let (j, _) = goldens();
    let vocab = data().join("vocab.json");
    let on = Gpt2Decoder::from_vocab_json(&vocab, 300, true).unwrap();
    let off = Gpt2Decoder::from_vocab_json(&vocab, 300, false).unwrap();
    assert_eq!(on.token_id("."), Some(13));
    let cases = j["decode"].as_array().unwrap();
    for c in cases {
        let i = ids(&c["ids"]);
        // transformers 4.11 (ClipCap's environment) cleans up; 5.24 no longer does for BPE.
        assert_eq!(on.decode(&i).unwrap(), c["text"].as_str().unwrap(), "{i:?}");
        assert_eq!(
            off.decode(&i).unwrap(),
            c["transformers_5"].as_str().unwrap(),
            "{i:?}"
        );
    }
    assert!(cases.len() >= 30);
}

#[test]
fn bad_vocabularies_are_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vocab.json");
    let cases = [
        (r#"{"a": 0, "b": 2}"#, 3, "id 1 has no token"),
        (
            r#"{"a": 0, "b": 1, "c": 3}"#,
            3,
            "outside the model's 3 ids",
        ),
        (r#"{"a": 0, "b c": 1}"#, 2, "outside GPT-2's byte alphabet"),
        (r#"{"a": 0, "b": 0}"#, 2, "id 0 has two tokens"),
        ("[1, 2]", 2, "not a JSON object"),
    ];
    for (text, n, want) in cases {
        std::fs::write(&p, text).unwrap();
        let e = Gpt2Decoder::from_vocab_json(&p, n, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains("vocab.json"), "{text}: {e}");
    }
}

/// A weights folder with the tiny ClipCap as the published file (`*.pt`), its vocabulary
/// and config, and (for the CLI) the tiny CLIP and Sat2Cap towers.
fn weights_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cc = dir.path().join("clipcap");
    std::fs::create_dir_all(&cc).unwrap();
    for f in ["coco_like.pt", "vocab.json", "merges.txt", "config.json"] {
        std::fs::copy(data().join(f), cc.join(f)).unwrap();
    }
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoders/tiny");
    for t in ["clip", "sat2cap"] {
        std::fs::create_dir_all(dir.path().join(t)).unwrap();
        std::fs::copy(
            tiny.join(t).join("model.safetensors"),
            dir.path().join(t).join("model.safetensors"),
        )
        .unwrap();
    }
    dir
}

#[test]
fn the_captioner_loads_a_weights_folder_and_decodes() {
    let (j, g) = goldens();
    let dir = weights_dir();
    let c = Captioner::load(dir.path(), DeviceChoice::Cpu).expect("captioner");
    let case = &j["mlp"][0];
    let e = row(&g, "embeddings", 0, 512);
    let got = c.caption(&e, &GenerateOptions::default()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tokens, ids(&case["greedy"]));
    assert_eq!(got[0].text, case["greedy_text"].as_str().unwrap());
    let beams = c
        .caption(
            &e,
            &GenerateOptions {
                beam: Some(5),
                max_tokens: 67,
            },
        )
        .unwrap();
    let texts: Vec<&str> = beams.iter().map(|b| b.text.as_str()).collect();
    let want: Vec<&str> = case["beam5_texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(texts, want);
    // Two published files side by side: which one is meant is not guessed.
    std::fs::copy(
        data().join("coco_like.pt"),
        dir.path().join("clipcap/other.pt"),
    )
    .unwrap();
    let e = Captioner::load(dir.path(), DeviceChoice::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("several checkpoints (coco_like.pt, other.pt)"),
        "{e}"
    );
    // Bad options are input errors.
    let c = Captioner::random(1, DeviceChoice::Cpu, ClipCapConfig::tiny()).unwrap();
    let bad = |beam, max_tokens| {
        c.caption(
            &row(&g, "embeddings", 0, 512),
            &GenerateOptions { beam, max_tokens },
        )
    };
    assert!(matches!(bad(None, 0), Err(EncodeError::Input(_))));
    assert!(matches!(bad(None, 126), Err(EncodeError::Input(_))));
    assert!(
        bad(None, 125).is_ok(),
        "4 prefix positions + 124 fed tokens = 128"
    );
    assert!(matches!(bad(Some(301), 5), Err(EncodeError::Input(_))));
    assert!(matches!(
        c.caption(&[0.5; 3], &GenerateOptions::default()),
        Err(EncodeError::Input(_))
    ));
}

#[test]
fn random_captioners_are_seeded() {
    let a = Captioner::random(7, DeviceChoice::Cpu, ClipCapConfig::tiny()).unwrap();
    let b = Captioner::random(7, DeviceChoice::Cpu, ClipCapConfig::tiny()).unwrap();
    let e: Vec<f32> = (0..512)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 200.0)
        .collect();
    let opts = GenerateOptions {
        beam: Some(3),
        max_tokens: 12,
    };
    let (x, y) = (a.caption(&e, &opts).unwrap(), b.caption(&e, &opts).unwrap());
    assert_eq!(x, y);
    assert!(
        x[0].text.chars().all(|c| !c.is_control()),
        "{:?}",
        x[0].text
    );
}

#[cfg(feature = "cli")]
#[test]
fn cli_describe_generate_runs_on_the_tiny_weights() {
    use std::process::Command;
    let dir = weights_dir();
    let work = tempfile::tempdir().unwrap();
    let tiles = work.path().join("tiles");
    std::fs::create_dir_all(&tiles).unwrap();
    for (i, name) in ["46.50_6.60.png", "46.51_6.61.png"].iter().enumerate() {
        sat2cap::jobs::render_overhead(sat2cap::jobs::LandClass::ALL[i], i as u64, 64)
            .save(tiles.join(name))
            .unwrap();
    }
    let db = work.path().join("d.db");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sat2cap"))
            .args(args)
            .env("SAT2CAP_TINY_MODEL", "1")
            .env_remove("SAT2CAP_WEIGHTS")
            .output()
            .unwrap()
    };
    let (w, d) = (dir.path().to_str().unwrap(), db.to_str().unwrap());
    let o = run(&[
        "ingest-tiles",
        tiles.to_str().unwrap(),
        "--db",
        d,
        "--weights",
        w,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&[
        "describe",
        "1",
        "--db",
        d,
        "--generate",
        "--beam",
        "2",
        "--weights",
        w,
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["search"], "beam");
    assert_eq!(report["random"], false);
    assert_eq!(report["captions"].as_array().unwrap().len(), 2);
    // The same as the library on the stored vector.
    let snap = sat2cap::Db::open(&db, sat2cap::OpenOptions::read_only())
        .unwrap()
        .snapshot();
    let item = snap.get("overhead", 1).unwrap().unwrap();
    let v: Vec<f32> = item.vector.iter().map(|h| h.to_f32()).collect();
    let c = Captioner::load(dir.path(), DeviceChoice::Cpu).unwrap();
    let want = c
        .caption(
            &v,
            &GenerateOptions {
                beam: Some(2),
                max_tokens: 67,
            },
        )
        .unwrap();
    assert_eq!(
        report["captions"][0]["text"].as_str().unwrap(),
        want[0].text
    );
    assert_eq!(ids(&report["captions"][1]["tokens"]), want[1].tokens);
    // Greedy, as text; the file form embeds the tile with the tiny Sat2Cap tower.
    let tile = tiles.join("46.51_6.61.png");
    let o = run(&[
        "describe",
        tile.to_str().unwrap(),
        "--db",
        d,
        "--generate",
        "--weights",
        w,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
    // Random captioner on real embeddings: refused; flags that need --generate.
    let o = run(&["describe", "1", "--db", d, "--generate", "--random-weights"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("never mix"), "{err}");
    let o = run(&["describe", "1", "--db", d, "--beam", "3", "--weights", w]);
    assert_eq!(o.status.code(), Some(2));
}
