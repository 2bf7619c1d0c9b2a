//! CLIP's byte-level BPE tokenizer.
//!
//! Two pipelines, chosen by [`TextNorm`]:
//! - [`TextNorm::HfFast`], the default: what the fast tokenizer Sat2Cap used does
//!   (transformers `CLIPTokenizerFast`, the `tokenizers` backend of
//!   `openai/clip-vit-base-patch32`). The special tokens `<|startoftext|>` / `<|endoftext|>`
//!   are found first, in the raw text, written exactly (case-sensitive; the added tokens are
//!   not normalised), wherever they stand (also right after punctuation). Each part between
//!   them is normalised on its own (its normaliser `Sequence([NFC(), Replace(\s+, " "),
//!   Lowercase()])`: Unicode NFC, every run of whitespace to one space, lowercase character
//!   by character; no ftfy, no HTML unescaping, no accent stripping), split with CLIP's
//!   pattern matched case-sensitively, then each piece with the byte-level pre-tokeniser's
//!   GPT-2 pattern (which only splits a marker that was not special, e.g. `<|STARTOFTEXT|>`
//!   lower-cased: `<|`, `startoftext`, `|>`);
//! - [`TextNorm::Ftfy`]: OpenAI's `clip/simple_tokenizer.py` (as shipped in `clip-anytorch`
//!   2.6.0): `ftfy.fix_text` (see [`super::fix_text`]), Python's `html.unescape` twice,
//!   whitespace collapsed and stripped, lowercase, then CLIP's pattern matched
//!   case-insensitively (`re.IGNORECASE`), the markers in it giving the special tokens.
//!
//! Then the bytes of each piece are mapped to unicode, BPE'd with `</w>` end-of-word markers,
//! then `[49406] + ids + [49407]`, truncated to the context length keeping the end token, and
//! padded with 49407 (what `openai/clip-vit-base-patch32`'s HF tokenizer pads with; with the
//! causal mask and end-token pooling the padding value does not change embeddings).
//!
//! Known differences from the references (docs/ENCODERS.md, each rare in captions):
//! - both: a pre-token longer than [`MAX_BPE_CHARS`] bytes (e.g. over 256 letters written
//!   without a space) is merged in pieces, the references merge it whole; the ids differ
//!   where a cut falls within the 75 kept;
//! - [`TextNorm::HfFast`]: the Unicode tables (NFC, lower-casing, `\p{L}`, `\p{N}`) are
//!   Rust's and the crates', not the fast tokenizer's, so characters assigned recently may
//!   normalise or split otherwise (Unicode 16's Tulu-Tigalari vowel signs compose here, not
//!   there);
//! - [`TextNorm::Ftfy`]: those of [`super::fix_text`], and U+0345, which Python's `regex`
//!   drops and the case-insensitive pattern here takes into a letter run.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use regex::Regex;

use super::fix_text::fix_text;
pub use super::fix_text::html_unescape;

/// The BPE merges of OpenAI CLIP (`bpe_simple_vocab_16e6.txt.gz`, MIT licence, from the
/// `clip-anytorch` 2.6.0 wheel).
static VOCAB_GZ: &[u8] = include_bytes!("assets/bpe_simple_vocab_16e6.txt.gz");

/// Start-of-text id.
#[cfg(any(test, feature = "testing"))]
pub const SOT: u32 = 49406;
/// End-of-text id.
#[cfg(any(test, feature = "testing"))]
pub const EOT: u32 = 49407;
/// CLIP's context length.
pub const CONTEXT: usize = 77;
/// Longest pre-token merged as one piece. BPE as the reference runs it is quadratic in the
/// length of a word (each merge rescans every pair), so a long run of letters (never a word
/// of natural text) is cut into pieces of this many characters, each merged on its own
/// (the end-of-word marker on the last). Words up to this length tokenise as the reference.
pub const MAX_BPE_CHARS: usize = 256;

/// Why a tokenizer could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A vocabulary file could not be read.
    #[error("cannot read tokenizer file {path}: {message}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
    /// The vocabulary is malformed.
    #[error("malformed tokenizer vocabulary: {0}")]
    Malformed(String),
}

/// How text is normalised before it is split into tokens (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextNorm {
    /// The fast tokenizer's pipeline (special tokens found in the raw text, exactly; the
    /// text between them normalised: NFC, whitespace collapsed, lowercase): what Sat2Cap
    /// embedded its text with. The default.
    #[default]
    HfFast,
    /// OpenAI's CLIP cleaning (ftfy, HTML unescaping, whitespace, lowercase).
    Ftfy,
}

impl TextNorm {
    /// The name recorded with the embeddings and taken by `--text-norm`.
    pub fn name(self) -> &'static str {
        match self {
            TextNorm::HfFast => "hf-fast",
            TextNorm::Ftfy => "ftfy",
        }
    }

    /// `text` normalised (with [`TextNorm::HfFast`] the tokenizer normalises the parts
    /// between exactly written special tokens, each on its own).
    pub fn apply(self, text: &str) -> String {
        match self {
            TextNorm::HfFast => {
                use unicode_normalization::UnicodeNormalization;
                let nfc: String = text.nfc().collect();
                // `Replace(Regex(r"\s+"), " ")` (no strip), then `Lowercase()`: each char on its
                // own (no final-sigma rule, unlike `str::to_lowercase`).
                let mut out = String::with_capacity(nfc.len());
                let mut space = false;
                for c in nfc.chars() {
                    if c.is_whitespace() {
                        if !space {
                            out.push(' ');
                        }
                        space = true;
                    } else {
                        space = false;
                        out.extend(c.to_lowercase());
                    }
                }
                out
            }
            TextNorm::Ftfy => {
                let fixed = fix_text(text);
                whitespace_clean(&html_unescape(&html_unescape(&fixed))).to_lowercase()
            }
        }
    }
}

/// CLIP BPE tokenizer. Immutable after construction; `Send + Sync`.
#[derive(Debug)]
pub struct ClipTokenizer {
    encoder: HashMap<String, u32>,
    ranks: HashMap<(String, String), u32>,
    byte_encoder: [char; 256],
    /// [`PATTERN`], case-sensitive ([`TextNorm::HfFast`]).
    pattern: Regex,
    /// [`PATTERN`], case-insensitive ([`TextNorm::Ftfy`]).
    pattern_ci: Regex,
    sot: u32,
    eot: u32,
    context: usize,
    norm: TextNorm,
}

/// GPT-2 / CLIP byte -> printable unicode map (`bytes_to_unicode`).
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut n = 0u32;
    for b in 0..256u32 {
        let c = if printable(b) {
            b
        } else {
            n += 1;
            255 + n
        };
        table[b as usize] = char::from_u32(c).unwrap_or('\u{FFFD}');
    }
    table
}

/// CLIP's pre-tokenisation pattern. simple_tokenizer matches it with `re.IGNORECASE`, the
/// fast tokenizer's `Split` pre-tokeniser case-sensitively (so there `'s` does not match
/// `'ſ`, and U+0345, a mark that case-folds to a letter, is not in `[\p{L}]`).
const PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// The special tokens as written.
const SOT_TEXT: &str = "<|startoftext|>";
const EOT_TEXT: &str = "<|endoftext|>";

impl ClipTokenizer {
    /// The tokenizer with OpenAI's vocabulary embedded in this crate.
    pub fn embedded() -> Result<Self, TokenizerError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(VOCAB_GZ)
            .read_to_string(&mut text)
            .map_err(|e| TokenizerError::Malformed(format!("embedded vocabulary: {e}")))?;
        // simple_tokenizer.py: merges = merges[1:49152-256-2+1]
        let lines: Vec<&str> = text.split('\n').collect();
        let end = (49152 - 256 - 2 + 1).min(lines.len());
        let mut merges = Vec::with_capacity(end);
        for line in lines.get(1..end).unwrap_or(&[]) {
            let mut it = line.split_whitespace();
            match (it.next(), it.next()) {
                (Some(a), Some(b)) => merges.push((a.to_string(), b.to_string())),
                _ => return Err(TokenizerError::Malformed(format!("merge line {line:?}"))),
            }
        }
        // `list(bytes_to_unicode().values())`: the printable bytes first (ascending), then
        // the remapped ones (ascending), i.e. ordered by the unicode symbol they map to.
        let mut symbols: Vec<char> = bytes_to_unicode().to_vec();
        symbols.sort_unstable();
        let mut vocab: Vec<String> = symbols.iter().map(|c| c.to_string()).collect();
        let with_w: Vec<String> = vocab.iter().map(|v| format!("{v}</w>")).collect();
        vocab.extend(with_w);
        vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        vocab.push(SOT_TEXT.into());
        vocab.push(EOT_TEXT.into());
        let encoder = vocab
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, i as u32))
            .collect();
        Self::build(encoder, merges)
    }

    /// A tokenizer from Hugging Face files (`vocab.json` + `merges.txt`).
    pub fn from_files(vocab_json: &Path, merges_txt: &Path) -> Result<Self, TokenizerError> {
        let read = |p: &Path| {
            let io = |message: String| TokenizerError::Io {
                path: p.display().to_string(),
                message,
            };
            // Only regular files (a FIFO would block, a device never end), at most 64 MiB
            // (CLIP's vocab.json and merges.txt are 2 MiB together).
            let meta = std::fs::metadata(p).map_err(|e| io(e.to_string()))?;
            if !meta.is_file() {
                return Err(io("not a regular file".into()));
            }
            if meta.len() > 64 << 20 {
                return Err(io(format!("{} bytes, more than 64 MiB", meta.len())));
            }
            std::fs::read_to_string(p).map_err(|e| io(e.to_string()))
        };
        let encoder: HashMap<String, u32> = serde_json::from_str(&read(vocab_json)?)
            .map_err(|e| TokenizerError::Malformed(format!("vocab.json: {e}")))?;
        let mut merges = Vec::new();
        for line in read(merges_txt)?.lines() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let mut it = line.split_whitespace();
            match (it.next(), it.next()) {
                (Some(a), Some(b)) => merges.push((a.to_string(), b.to_string())),
                _ => return Err(TokenizerError::Malformed(format!("merge line {line:?}"))),
            }
        }
        Self::build(encoder, merges)
    }

    fn build(
        encoder: HashMap<String, u32>,
        merges: Vec<(String, String)>,
    ) -> Result<Self, TokenizerError> {
        let sot = *encoder
            .get(SOT_TEXT)
            .ok_or_else(|| TokenizerError::Malformed("no <|startoftext|>".into()))?;
        let eot = *encoder
            .get(EOT_TEXT)
            .ok_or_else(|| TokenizerError::Malformed("no <|endoftext|>".into()))?;
        let byte_encoder = bytes_to_unicode();
        for c in byte_encoder {
            if !encoder.contains_key(&c.to_string()) {
                return Err(TokenizerError::Malformed(format!(
                    "byte symbol {c:?} absent"
                )));
            }
        }
        let ranks = merges
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, i as u32))
            .collect();
        let regex = |p: &str| Regex::new(p).map_err(|e| TokenizerError::Malformed(e.to_string()));
        let pattern = regex(PATTERN)?;
        let pattern_ci = regex(&format!("(?i){PATTERN}"))?;
        Ok(Self {
            encoder,
            ranks,
            byte_encoder,
            pattern,
            pattern_ci,
            sot,
            eot,
            context: CONTEXT,
            norm: TextNorm::default(),
        })
    }

    /// The same tokenizer normalising text with `norm`.
    pub fn with_norm(mut self, norm: TextNorm) -> Self {
        self.norm = norm;
        self
    }

    /// How this tokenizer normalises text.
    pub fn norm(&self) -> TextNorm {
        self.norm
    }

    /// Start-of-text id.
    pub fn sot(&self) -> u32 {
        self.sot
    }

    /// End-of-text id.
    pub fn eot(&self) -> u32 {
        self.eot
    }

    /// BPE of one pre-token piece (already byte-mapped), as symbols (`bpe`); the last
    /// character carries the end-of-word marker when `end_of_word`.
    fn bpe(&self, chars: &[char], end_of_word: bool) -> Vec<String> {
        let Some((last, init)) = chars.split_last() else {
            return Vec::new();
        };
        let mut word: Vec<String> = init.iter().map(|c| c.to_string()).collect();
        word.push(if end_of_word {
            format!("{last}</w>")
        } else {
            last.to_string()
        });
        loop {
            if word.len() < 2 {
                break;
            }
            // bigram = min(pairs, key=rank)
            let mut best: Option<(u32, usize)> = None;
            for i in 0..word.len() - 1 {
                if let Some(&r) = self.ranks.get(&(word[i].clone(), word[i + 1].clone())) {
                    if best.is_none_or(|(br, _)| r < br) {
                        best = Some((r, i));
                    }
                }
            }
            let Some((_, at)) = best else { break };
            let (first, second) = (word[at].clone(), word[at + 1].clone());
            // Merge every occurrence, left to right, as the reference does.
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(word[i].clone());
                    i += 1;
                }
            }
            word = merged;
        }
        word
    }

    /// Token ids of `text` without start/end tokens, padding or truncation.
    pub fn encode_raw(&self, text: &str) -> Vec<u32> {
        self.encode_up_to(text, usize::MAX)
    }

    /// The first `limit` (or more) ids of [`ClipTokenizer::encode_raw`]: stops tokenising
    /// once `limit` ids are out, so the cost of [`ClipTokenizer::encode`] does not grow with
    /// text that truncation drops.
    fn encode_up_to(&self, text: &str, limit: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        match self.norm {
            TextNorm::HfFast => {
                // The fast tokenizer: the special tokens are added tokens, matched in the raw
                // text (exactly, `normalized: false`) before anything else; the text between
                // them is normalised and pre-tokenised part by part.
                let mut rest = text;
                while ids.len() < limit {
                    let (part, special, after) = match find_special(rest) {
                        Some((at, len, is_sot)) => {
                            let id = if is_sot { self.sot } else { self.eot };
                            (&rest[..at], Some(id), &rest[at + len..])
                        }
                        None => (rest, None, ""),
                    };
                    if !part.is_empty() {
                        let cleaned = TextNorm::HfFast.apply(part);
                        for m in self.pattern.find_iter(&cleaned) {
                            if ids.len() >= limit {
                                break;
                            }
                            let tok = m.as_str();
                            // The byte-level pre-tokeniser then splits each piece with GPT-2's
                            // pattern (`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
                            // ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`). A piece of CLIP's pattern
                            // other than a marker (a contraction, a letter run, a digit, a run
                            // of neither letters, digits nor spaces) is one GPT-2 piece; a
                            // marker here is text (lower-cased from another case, or made by
                            // lower-casing) and splits in three: `<|`, the word, `|>`.
                            if tok == SOT_TEXT || tok == EOT_TEXT {
                                let word = &tok[2..tok.len() - 2];
                                for piece in ["<|", word, "|>"] {
                                    self.push_bpe(piece, &mut ids, limit);
                                }
                            } else {
                                self.push_bpe(tok, &mut ids, limit);
                            }
                        }
                    }
                    match special {
                        Some(id) if ids.len() < limit => ids.push(id),
                        _ => break,
                    }
                    rest = after;
                }
            }
            TextNorm::Ftfy => {
                let cleaned = self.norm.apply(text);
                for m in self.pattern_ci.find_iter(&cleaned) {
                    if ids.len() >= limit {
                        break;
                    }
                    match m.as_str() {
                        SOT_TEXT => ids.push(self.sot),
                        EOT_TEXT => ids.push(self.eot),
                        tok => self.push_bpe(tok, &mut ids, limit),
                    }
                }
            }
        }
        ids
    }

    /// Appends the ids of the pre-token `tok` (byte-mapped, BPE with the end-of-word marker),
    /// merged in pieces of [`MAX_BPE_CHARS`]; stops between pieces once `limit` ids are out.
    fn push_bpe(&self, tok: &str, ids: &mut Vec<u32>, limit: usize) {
        let mapped: Vec<char> = tok.bytes().map(|b| self.byte_encoder[b as usize]).collect();
        let pieces = mapped.len().div_ceil(MAX_BPE_CHARS);
        for (i, piece) in mapped.chunks(MAX_BPE_CHARS).enumerate() {
            if ids.len() >= limit {
                break;
            }
            for sym in self.bpe(piece, i + 1 == pieces) {
                // Every symbol is a byte symbol or a merge result: always in vocab for a
                // consistent vocabulary; skip (never panic) otherwise.
                if let Some(&id) = self.encoder.get(&sym) {
                    ids.push(id);
                }
            }
        }
    }

    /// `[sot] + ids + [eot]`, truncated to 77 keeping the end token, padded with `eot` to 77.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.context);
        ids.push(self.sot);
        ids.extend(self.encode_up_to(text, self.context.saturating_sub(2)));
        ids.truncate(self.context - 1);
        ids.push(self.eot);
        ids.resize(self.context, self.eot);
        ids
    }
}

/// The first special token written exactly in `text`: (byte offset, length, whether it is
/// `<|startoftext|>`).
fn find_special(text: &str) -> Option<(usize, usize, bool)> {
    let mut from = 0;
    while let Some(i) = text[from..].find("<|") {
        let at = from + i;
        let rest = &text[at..];
        if rest.starts_with(SOT_TEXT) {
            return Some((at, SOT_TEXT.len(), true));
        }
        if rest.starts_with(EOT_TEXT) {
            return Some((at, EOT_TEXT.len(), false));
        }
        from = at + 2;
    }
    None
}

/// `re.sub(r'\s+', ' ', text).strip()`.
pub fn whitespace_clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
