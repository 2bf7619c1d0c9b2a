//! GPT-2's byte-level BPE, decoding only (ids -> text): what ClipCap needs to print a
//! caption. Encoding is never needed (the prompt is the image prefix), so `merges.txt` is
//! not read.
//!
//! A token of `vocab.json` is a string over GPT-2's byte alphabet (`bytes_to_unicode` in
//! openai/gpt-2 `encoder.py` and transformers' `tokenization_gpt2.py`: the 188 printable
//! Latin-1 bytes stand for themselves, the other 68 for U+0100..U+0143); decoding maps each
//! character back to its byte, joins the bytes and reads them as UTF-8 with invalid
//! sequences replaced by U+FFFD (`errors="replace"`). Then, as ClipCap's environment did
//! (transformers 4.10 / 4.11, whose `decode` cleaned up by default), optionally
//! `clean_up_tokenization`: `" ."` -> `"."`, `" ?"`, `" !"`, `" ,"`, `" ' "` -> `"'"`,
//! `" n't"`, `" 'm"`, `" 's"`, `" 've"`, `" 're"`, in that order.

use std::collections::HashMap;
use std::path::Path;

use super::tokenizer::TokenizerError;

/// The largest `vocab.json` read (GPT-2's is 1.04 MB).
pub const MAX_VOCAB_BYTES: u64 = 64 << 20;

/// GPT-2's `bytes_to_unicode`: the character standing for each byte, in vocabulary order
/// (GPT-2's ids 0..=255 are these 256 characters in this order).
pub fn byte_alphabet() -> Vec<(u8, char)> {
    let mut bs: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .filter_map(|(b, c)| Some((u8::try_from(b).ok()?, char::from_u32(c)?)))
        .collect()
}

/// Decodes GPT-2 token ids to text.
#[derive(Debug, Clone)]
pub struct Gpt2Decoder {
    /// The bytes of each id.
    tokens: Vec<Vec<u8>>,
    /// Token string -> id.
    ids: HashMap<String, u32>,
    /// Apply `clean_up_tokenization` after decoding.
    cleanup: bool,
    /// Ids of the synthetic byte vocabulary ([`Gpt2Decoder::byte_level`]) without a token.
    synthetic: bool,
}

impl Gpt2Decoder {
    /// Reads a Hugging Face `vocab.json` (token -> id) for a model of `vocab_size` tokens:
    /// every id `0..vocab_size` must have exactly one token, no token another id, and every
    /// token must be written in GPT-2's byte alphabet.
    pub fn from_vocab_json(
        path: &Path,
        vocab_size: usize,
        cleanup: bool,
    ) -> Result<Self, TokenizerError> {
        let bad = |m: String| TokenizerError::Malformed(format!("{}: {m}", path.display()));
        let io = |e: std::io::Error| TokenizerError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        if meta.len() > MAX_VOCAB_BYTES {
            return Err(bad(format!("larger than {MAX_VOCAB_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let map: HashMap<String, u64> = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a JSON object of token -> id: {e}")))?;
        Self::from_map(map, vocab_size, cleanup).map_err(bad)
    }

    fn from_map(
        map: HashMap<String, u64>,
        vocab_size: usize,
        cleanup: bool,
    ) -> Result<Self, String> {
        let decoder: HashMap<char, u8> = byte_alphabet().into_iter().map(|(b, c)| (c, b)).collect();
        let mut tokens: Vec<Option<Vec<u8>>> = vec![None; vocab_size];
        let mut ids = HashMap::with_capacity(map.len());
        let mut sorted: Vec<(String, u64)> = map.into_iter().collect();
        sorted.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        for (tok, id) in sorted {
            let slot = usize::try_from(id)
                .ok()
                .and_then(|i| tokens.get_mut(i))
                .ok_or_else(|| {
                    format!("token {tok:?} has id {id}, outside the model's {vocab_size} ids")
                })?;
            if slot.is_some() {
                return Err(format!("id {id} has two tokens (one is {tok:?})"));
            }
            let bytes = tok
                .chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| {
                    format!("token {tok:?} (id {id}) has a character outside GPT-2's byte alphabet")
                })?;
            *slot = Some(bytes);
            ids.insert(tok, id as u32);
        }
        let tokens = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.ok_or_else(|| format!("id {i} has no token")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            tokens,
            ids,
            cleanup,
            synthetic: false,
        })
    }

    /// A stand-in vocabulary for random weights (there is nothing to decode with): ids
    /// 0..=255 are GPT-2's byte tokens (the same ids as in GPT-2's vocabulary) where that
    /// byte is printable ASCII, every other id decodes as `<id>`, so that what random weights
    /// write is readable.
    pub fn byte_level(vocab_size: usize) -> Self {
        let alphabet = byte_alphabet();
        let mut tokens = Vec::with_capacity(vocab_size);
        let mut ids = HashMap::new();
        for i in 0..vocab_size {
            match alphabet.get(i) {
                Some(&(b, c)) if (0x20..0x7F).contains(&b) => {
                    tokens.push(vec![b]);
                    ids.insert(c.to_string(), i as u32);
                }
                _ => tokens.push(format!("<{i}>").into_bytes()),
            }
        }
        Self {
            tokens,
            ids,
            cleanup: true,
            synthetic: true,
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether this is the stand-in of [`Gpt2Decoder::byte_level`].
    pub fn is_synthetic(&self) -> bool {
        self.synthetic
    }

    /// The id of `text` when it is one token (its UTF-8 bytes written in the byte alphabet):
    /// ClipCap's stop token `"."` is GPT-2's id 13.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        let alphabet: HashMap<u8, char> = byte_alphabet().into_iter().collect();
        let tok: String = text.bytes().filter_map(|b| alphabet.get(&b)).collect();
        self.ids.get(&tok).copied()
    }

    /// The text of `ids` (an id outside the vocabulary is an error naming it).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            let t = self.tokens.get(id as usize).ok_or_else(|| {
                TokenizerError::Malformed(format!(
                    "token id {id} is outside the vocabulary of {}",
                    self.tokens.len()
                ))
            })?;
            bytes.extend_from_slice(t);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(if self.cleanup {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }
}

/// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`.
pub fn clean_up_tokenization(s: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(s.to_string(), |acc, (from, to)| acc.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_is_gpt2s() {
        let a = byte_alphabet();
        assert_eq!(a.len(), 256);
        assert_eq!(a[0], (b'!', '!'));
        // '.' is GPT-2's id 13; 'Ġ' (U+0120) stands for the space.
        assert_eq!(a[13], (b'.', '.'));
        assert!(a.contains(&(b' ', '\u{120}')));
        let d = Gpt2Decoder::byte_level(300);
        assert_eq!(d.token_id("."), Some(13));
        assert_eq!(d.decode(&[39, 72, 13]).unwrap(), "Hi.");
        assert_eq!(d.decode(&[299]).unwrap(), "<299>");
        assert_eq!(d.decode(&[94]).unwrap(), "<94>");
        assert!(d.decode(&[300]).is_err());
    }

    #[test]
    fn cleanup_follows_transformers() {
        assert_eq!(
            clean_up_tokenization("a dog 's toy , here ."),
            "a dog's toy, here."
        );
        assert_eq!(clean_up_tokenization("do n't ' x"), "don't'x");
    }
}
