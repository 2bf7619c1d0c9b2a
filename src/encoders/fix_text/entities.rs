//! HTML character references: Python's `html.unescape` and ftfy's stricter variant.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The HTML5 named character references (`name<TAB>hex code points`), made by
/// tools/gen_html_entities.py from Python's `html.entities.html5` (the WHATWG table).
static ENTITIES_TSV: &str = include_str!("../assets/html5_entities.tsv");

fn html5() -> &'static HashMap<&'static str, String> {
    static TABLE: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        ENTITIES_TSV
            .lines()
            .filter_map(|line| {
                let (name, hex) = line.split_once('\t')?;
                let value: Option<String> = hex
                    .split(' ')
                    .map(|h| u32::from_str_radix(h, 16).ok().and_then(char::from_u32))
                    .collect();
                Some((name, value?))
            })
            .collect()
    })
}

/// Entities ftfy decodes: every HTML5 name ending in `;`, plus the upper-case spelling of
/// each all-lower-case name when that spelling means nothing to `html.unescape`
/// (`&EACUTE;` -> `É`), with the upper-cased value.
fn ftfy_entities() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for (name, value) in html5() {
            if !name.ends_with(';') {
                continue;
            }
            map.insert(format!("&{name}"), value.clone());
            if name.to_lowercase() == *name {
                let upper = format!("&{}", name.to_uppercase());
                if html_unescape(&upper) == upper {
                    map.insert(upper, value.to_uppercase());
                }
            }
        }
        map
    })
}

/// Python's `html.unescape` (3.11): named references with or without `;` (longest known
/// prefix), decimal and hex references, with its replacements for invalid code points.
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match char_ref(after) {
            Some((replacement, consumed)) => {
                out.push_str(&replacement);
                rest = &after[consumed..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Windows-1252 for bytes 0x80..=0x9F (`None`: unassigned).
pub(super) const CP1252_HIGH: [Option<char>; 32] = [
    Some('\u{20AC}'),
    None,
    Some('\u{201A}'),
    Some('\u{0192}'),
    Some('\u{201E}'),
    Some('\u{2026}'),
    Some('\u{2020}'),
    Some('\u{2021}'),
    Some('\u{02C6}'),
    Some('\u{2030}'),
    Some('\u{0160}'),
    Some('\u{2039}'),
    Some('\u{0152}'),
    None,
    Some('\u{017D}'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201C}'),
    Some('\u{201D}'),
    Some('\u{2022}'),
    Some('\u{2013}'),
    Some('\u{2014}'),
    Some('\u{02DC}'),
    Some('\u{2122}'),
    Some('\u{0161}'),
    Some('\u{203A}'),
    Some('\u{0153}'),
    None,
    Some('\u{017E}'),
    Some('\u{0178}'),
];

/// Numeric reference -> text, as `html.unescape` does it.
fn numeric_ref(num: u64) -> String {
    match num {
        0 => "\u{FFFD}".into(),
        0x0D => "\r".into(),
        0x80..=0x9F => {
            let c = CP1252_HIGH[(num - 0x80) as usize]
                .unwrap_or_else(|| char::from_u32(num as u32).unwrap_or('\u{FFFD}'));
            c.to_string()
        }
        0xD800..=0xDFFF => "\u{FFFD}".into(),
        n if n > 0x10FFFF => "\u{FFFD}".into(),
        0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0xFDD0..=0xFDEF => String::new(),
        n if n & 0xFFFE == 0xFFFE => String::new(),
        n => char::from_u32(n as u32)
            .map(String::from)
            .unwrap_or_default(),
    }
}

/// One reference after `&`: `(replacement, bytes of `after` consumed)`, or `None` when
/// `html.unescape`'s pattern does not match here.
fn char_ref(after: &str) -> Option<(String, usize)> {
    let bytes = after.as_bytes();
    if let Some(num) = after.strip_prefix('#') {
        let (radix, digits_at) = match num.as_bytes().first() {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = after[digits_at..]
            .bytes()
            .take_while(|b| {
                if radix == 16 {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let mut value: u64 = 0;
        for &b in &bytes[digits_at..digits_at + digits] {
            let d = (b as char).to_digit(radix).unwrap_or(0);
            // Saturate: anything beyond 0x10FFFF maps to U+FFFD.
            value = value
                .saturating_mul(u64::from(radix))
                .saturating_add(u64::from(d));
        }
        let mut consumed = digits_at + digits;
        if bytes.get(consumed) == Some(&b';') {
            consumed += 1;
        }
        return Some((numeric_ref(value), consumed));
    }
    // A name: 1..=32 characters other than tab, LF, FF, space, '<', '&', '#', ';'.
    let mut end = 0;
    for (n, (i, c)) in after.char_indices().enumerate() {
        if n == 32 || matches!(c, '\t' | '\n' | '\x0C' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        end = i + c.len_utf8();
    }
    if end == 0 {
        return None;
    }
    if bytes.get(end) == Some(&b';') {
        end += 1;
    }
    let s = &after[..end];
    let table = html5();
    if let Some(v) = table.get(s) {
        return Some((v.clone(), end));
    }
    // The longest known prefix of at least two characters.
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in bounds.iter().rev() {
        if let Some(v) = table.get(&s[..cut]) {
            return Some((format!("{v}{}", &s[cut..]), end));
        }
    }
    Some((format!("&{s}"), end))
}

/// ftfy's `unescape_html`: only `&name;` / `&#num;` forms of at most 24 ASCII letters and
/// digits, decoded when they are known.
pub(super) fn ftfy_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let b = tail.as_bytes();
        let start = if b.get(1) == Some(&b'#') { 2 } else { 1 };
        let run = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if (1..=24).contains(&run) && b.get(start + run) == Some(&b';') {
            let full = &tail[..start + run + 1];
            if let Some(v) = ftfy_entities().get(full) {
                out.push_str(v);
            } else if start == 2 {
                let u = html_unescape(full);
                out.push_str(if u.contains(';') { full } else { &u });
            } else {
                out.push_str(full);
            }
            rest = &tail[full.len()..];
        } else {
            out.push('&');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// Single-byte views of text (for mojibake detection and repair)
