//! CLIP BPE tokenizer parity with OpenAI's simple_tokenizer (tests/data/encoders/tokenizer.json,
//! made by tools/make_encoder_goldens.py with ftfy installed).
#![cfg(feature = "encoders")]

#[path = "common/encoders.rs"]
mod common;

use sat2cap::encoders::tokenizer::{html_unescape, ClipTokenizer, CONTEXT, EOT, SOT};

fn rows() -> Vec<(String, Vec<u32>, bool)> {
    let text = std::fs::read_to_string(common::data().join("tokenizer.json")).expect("json");
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    v.into_iter()
        .map(|r| {
            (
                r["text"].as_str().expect("text").to_string(),
                r["ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|i| i.as_u64().expect("id") as u32)
                    .collect(),
                r["ftfy_identity"].as_bool().expect("flag"),
            )
        })
        .collect()
}

#[test]
fn ids_match_reference_where_ftfy_is_identity() {
    let tok = ClipTokenizer::embedded().expect("tokenizer");
    let mut checked = 0;
    let mut divergent = Vec::new();
    for (text, ids, ftfy_identity) in rows() {
        let ours = tok.encode(&text);
        assert_eq!(ours.len(), CONTEXT);
        if ftfy_identity {
            assert_eq!(ours, ids, "text {text:?}");
            checked += 1;
        } else if ours != ids {
            divergent.push(text);
        }
    }
    println!("{checked} strings identical; ftfy-dependent strings that differ: {divergent:?}");
    assert!(checked >= 15);
}

#[test]
fn structure_start_end_truncation_padding() {
    let tok = ClipTokenizer::embedded().expect("tokenizer");
    let empty = tok.encode("");
    assert_eq!(&empty[..2], &[SOT, EOT]);
    assert!(empty[2..].iter().all(|&i| i == EOT));
    let long = tok.encode(&"word ".repeat(200));
    assert_eq!(long.len(), CONTEXT);
    assert_eq!(long[0], SOT);
    assert_eq!(long[CONTEXT - 1], EOT);
    assert!(long[1..CONTEXT - 1].iter().all(|&i| i != EOT));
    // Case and whitespace are normalised.
    assert_eq!(tok.encode("A  Dog"), tok.encode("a dog"));
}

#[test]
fn html_unescape_subset() {
    assert_eq!(
        html_unescape("a &amp; b &lt;i&gt; &#39;x&#x27; &quot;"),
        "a & b <i> 'x' \""
    );
    assert_eq!(
        html_unescape("&unknown; & &#; &#xZZ;"),
        "&unknown; & &#; &#xZZ;"
    );
    assert_eq!(html_unescape("&#1114112; &#0;"), "\u{FFFD} \u{FFFD}");
}

/// GPT-2 / CLIP byte -> unicode map, re-derived here independently of the crate.
fn byte_symbols() -> Vec<char> {
    let printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut n = 0;
    (0..256u32)
        .map(|b| {
            if printable.contains(&b) {
                char::from_u32(b).expect("char")
            } else {
                n += 1;
                char::from_u32(255 + n).expect("char")
            }
        })
        .collect()
}

#[test]
fn hf_format_files_load_and_merge() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut syms = byte_symbols();
    syms.sort_unstable();
    let mut vocab = serde_json::Map::new();
    for (i, c) in syms.iter().enumerate() {
        vocab.insert(c.to_string(), (i as u64).into());
        vocab.insert(format!("{c}</w>"), (256 + i as u64).into());
    }
    vocab.insert("ab</w>".into(), 512u64.into());
    vocab.insert("<|startoftext|>".into(), 513u64.into());
    vocab.insert("<|endoftext|>".into(), 514u64.into());
    let vp = dir.path().join("vocab.json");
    let mp = dir.path().join("merges.txt");
    std::fs::write(&vp, serde_json::Value::Object(vocab).to_string()).expect("write");
    std::fs::write(&mp, "#version: 0.2\na b</w>\n").expect("write");
    let tok = ClipTokenizer::from_files(&vp, &mp).expect("load");
    assert_eq!((tok.sot(), tok.eot()), (513, 514));
    let id = |c: char| syms.iter().position(|&s| s == c).expect("sym") as u32;
    assert_eq!(tok.encode_raw("AB"), vec![512]);
    assert_eq!(tok.encode_raw("ba"), vec![id('b'), 256 + id('a')]);
    let full = tok.encode("ab");
    assert_eq!(&full[..3], &[513, 512, 514]);
    assert!(full[3..].iter().all(|&i| i == 514));
    // Missing files and malformed vocabularies are errors.
    assert!(ClipTokenizer::from_files(&dir.path().join("nope.json"), &mp).is_err());
    std::fs::write(&vp, "{\"a\": 0}").expect("write");
    assert!(ClipTokenizer::from_files(&vp, &mp).is_err());
}

/// Regression (fuzz target `tokenizer`): BPE is quadratic in the length of a word, and
/// `encode` tokenised the whole text before truncating to 77, so one 16,384-letter word took
/// 12.7 s (debug build) and a 1 MB caption hours. Now a pre-token is merged in pieces of
/// `MAX_BPE_CHARS` and `encode` stops once 75 ids are out.
#[test]
fn long_words_tokenise_in_bounded_time() {
    use sat2cap::encoders::tokenizer::MAX_BPE_CHARS;
    let tok = ClipTokenizer::embedded().unwrap();
    let mut x: u32 = 12_345;
    let word: String = (0..1_000_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'a' + ((x >> 16) % 26) as u8)
        })
        .collect();
    let started = std::time::Instant::now();
    let ids = tok.encode(&word);
    assert_eq!((ids.len(), ids[0], ids[CONTEXT - 1]), (CONTEXT, SOT, EOT));
    assert!(
        ids[1..CONTEXT - 1].iter().all(|&i| i != EOT),
        "75 word tokens"
    );
    // Linear in the text for encode_raw: 20,000 letters.
    let raw = tok.encode_raw(&word[..20_000]);
    assert!(raw.len() > 20_000 / 20);
    let secs = started.elapsed().as_secs_f64();
    assert!(secs < 30.0, "took {secs} s");
    // The pieces: the first 75 ids equal those of the first piece alone (no end marker), and
    // a word of exactly MAX_BPE_CHARS letters tokenises as before (one piece).
    let piece = tok.encode_raw(&word[..MAX_BPE_CHARS + 1]);
    assert_eq!(
        &ids[1..1 + piece.len().min(75)],
        &piece[..piece.len().min(75)]
    );
    assert_eq!(
        tok.encode_raw(&word[..MAX_BPE_CHARS]),
        tok.encode_raw(&format!("{} ", &word[..MAX_BPE_CHARS]))
    );
}
