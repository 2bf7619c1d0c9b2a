//! CLIP BPE tokenizer parity with OpenAI's simple_tokenizer (tests/data/encoders/tokenizer.json,
//! made by tools/make_encoder_goldens.py with ftfy installed).
#![cfg(feature = "encoders")]

#[path = "encoders_common.rs"]
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
