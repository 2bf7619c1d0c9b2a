//! Text repair as CLIP's tokenizer applies it: `ftfy.fix_text` (ftfy 6.3.1, default
//! configuration) and Python's `html.unescape`.
//!
//! Written from ftfy's documented behaviour; no ftfy code is used. [`fix_text`] splits the
//! text after each line break and repeats these steps on each line until nothing changes:
//!
//! 1. HTML entities ending in `;` (all HTML5 names, numeric references, and upper-cased
//!    forms of lower-case names such as `&EACUTE;`), unless a `<` was seen in this or an
//!    earlier line (then the text is taken to be HTML source and left as is);
//! 2. mojibake repair ([`fix_encoding`]): UTF-8 that was decoded as Latin-1 or Windows-1252
//!    (`cafÃ©` -> `café`, `â€™` -> `’`), including a `0xA0` byte that became a space and
//!    `�` standing for a lost byte, also when embedded in otherwise correct text; C1 controls
//!    read as Windows-1252;
//! 3. C1 control characters -> their Windows-1252 characters;
//! 4. Latin ligatures and digraphs (`ﬁ` -> `fi`, `ǅ` -> `Dž`);
//! 5. full-width / half-width forms -> standard forms (`ＡＢＣ` -> `ABC`, U+3000 -> space);
//! 6. curly quotes -> straight quotes;
//! 7. `\r\n`, `\r`, U+2028, U+2029, U+0085 -> `\n`;
//! 8. lone surrogates -> U+FFFD (a no-op here: a Rust `&str` cannot hold them);
//! 9. ANSI terminal escapes (`ESC [ digits/; letter`) removed;
//! 10. unwanted control characters removed (C0 except tab / LF / FF / CR, DEL, U+206A–U+206F,
//!     U+FEFF, U+FFF9–U+FFFC);
//! 11. NFC normalisation.
//!
//! Known differences from ftfy (see docs/ENCODERS.md): mojibake through code pages other than
//! Latin-1 / Windows-1252 (Windows-1250/1251/1253/1254/1257, ISO-8859-2, MacRoman, CP437) is
//! not repaired, and the "does this look like mojibake" heuristic ([`is_bad`]) is our own, so
//! rare strings can be judged differently.

mod entities;
mod mojibake;

pub use entities::html_unescape;
pub use mojibake::fix_encoding;
#[cfg(feature = "testing")]
pub use mojibake::is_bad;

use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

use entities::ftfy_unescape;
use mojibake::fix_c1_controls;

/// ftfy works on lines of at most this many characters.
const MAX_SEGMENT_CHARS: usize = 1_000_000;

/// Latin ligatures and legacy digraphs.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "\u{2BC}n",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "D\u{17D}",
        'ǅ' => "D\u{17E}",
        'ǆ' => "d\u{17E}",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "\u{17F}t",
        'ﬆ' => "st",
        _ => return None,
    })
}

fn map_chars(text: &str, f: impl Fn(char, &mut String) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !f(c, &mut out) {
            out.push(c);
        }
    }
    out
}

fn fix_latin_ligatures(text: &str) -> String {
    map_chars(text, |c, out| {
        ligature(c).map(|s| out.push_str(s)).is_some()
    })
}

/// Half-width and full-width forms (U+FF01..=U+FFEF) -> their NFKC form; U+3000 -> space.
fn fix_character_width(text: &str) -> String {
    map_chars(text, |c, out| match c {
        '\u{3000}' => {
            out.push(' ');
            true
        }
        '\u{FF01}'..='\u{FFEF}' => {
            out.extend(std::iter::once(c).nfkc());
            true
        }
        _ => false,
    })
}

fn uncurl_quotes(text: &str) -> String {
    map_chars(text, |c, out| match c {
        '\u{2BC}' | '\u{2018}'..='\u{201B}' => {
            out.push('\'');
            true
        }
        '\u{201C}'..='\u{201F}' => {
            out.push('"');
            true
        }
        _ => false,
    })
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// `ESC [`, then digits (any Unicode decimal digit, as Python's `\d`) and `;`, then an
/// ASCII letter.
fn remove_terminal_escapes(text: &str) -> String {
    static ANSI: OnceLock<Option<regex::Regex>> = OnceLock::new();
    if !text.contains('\u{1B}') {
        return text.to_string();
    }
    match ANSI.get_or_init(|| regex::Regex::new(r"\x1b\[[\d;]*[a-zA-Z]").ok()) {
        Some(re) => re.replace_all(text, "").into_owned(),
        None => text.to_string(),
    }
}

fn is_unwanted_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{E}'..='\u{1F}' | '\u{7F}' | '\u{206A}'..='\u{206F}'
        | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFC}')
}

fn remove_control_chars(text: &str) -> String {
    text.chars().filter(|&c| !is_unwanted_control(c)).collect()
}

/// One line through every step, repeated until stable (ftfy's `fix_and_explain`).
fn fix_segment(text: &str, unescape: bool) -> String {
    let mut text = text.to_string();
    loop {
        let orig = text.clone();
        if unescape {
            text = ftfy_unescape(&text);
        }
        text = fix_encoding(&text);
        text = fix_c1_controls(&text);
        text = fix_latin_ligatures(&text);
        text = fix_character_width(&text);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        // fix_surrogates: nothing to do, a &str holds no surrogate code points.
        text = remove_terminal_escapes(&text);
        text = remove_control_chars(&text);
        text = text.nfc().collect();
        if text == orig {
            return text;
        }
    }
}

/// `ftfy.fix_text(text)` with ftfy's default settings (see the module docs).
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.find('\n').map_or(rest.len(), |p| p + 1);
        if let Some((cut, _)) = rest.char_indices().nth(MAX_SEGMENT_CHARS) {
            end = end.min(cut);
        }
        let segment = &rest[..end];
        if segment.contains('<') {
            // ftfy: HTML source; from here on, entities are left alone.
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
        rest = &rest[end..];
    }
    out
}
