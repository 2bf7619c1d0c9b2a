//! Mojibake repair ([`fix_encoding`]): UTF-8 that was decoded as Latin-1 or Windows-1252,
//! and the heuristic that decides whether text looks like it ([`is_bad`]).

use super::entities::CP1252_HIGH;

/// The Windows-1252 byte of `c` (with the five unassigned bytes passing through as the C1
/// characters of the same number, and U+FFFD as 0x1A: ftfy's "sloppy" codec).
fn sloppy_1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    match u {
        0x1A => None,
        0..=0x7F | 0xA0..=0xFF | 0x81 | 0x8D | 0x8F | 0x90 | 0x9D => Some(u as u8),
        0xFFFD => Some(0x1A),
        _ => CP1252_HIGH
            .iter()
            .position(|&x| x == Some(c))
            .map(|i| 0x80 + i as u8),
    }
}

fn latin1_byte(c: char) -> Option<u8> {
    u8::try_from(c as u32).ok()
}

/// The byte a character stands for in mojibake (Latin-1 or Windows-1252 view).
fn moji_byte(c: char) -> Option<u8> {
    latin1_byte(c).or_else(|| sloppy_1252_byte(c).filter(|&b| b >= 0x80))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Charmap {
    Latin1,
    Sloppy1252,
}

fn encode(text: &str, map: Charmap) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| match map {
            Charmap::Latin1 => latin1_byte(c),
            Charmap::Sloppy1252 => sloppy_1252_byte(c),
        })
        .collect()
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9F}').contains(&c)
}

/// Characters that often stand next to accented letters in real text: no evidence of
/// mojibake on their own (no-break space, soft hyphen, middle dot, acute accent, dashes,
/// ellipsis, right single quote, low double quote).
fn is_common_neighbour(c: char) -> bool {
    matches!(
        c,
        '\u{A0}'
            | '\u{AD}'
            | '\u{B7}'
            | '\u{B4}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2026}'
            | '\u{2019}'
            | '\u{201E}'
    )
}

/// Whether `text` looks like it holds mojibake (UTF-8 read as a single-byte code page).
///
/// Our heuristic, after ftfy's documented idea (count character sequences that are far more
/// likely in mojibake than in intended text): C1 control characters; a character that is a
/// UTF-8 lead byte in Latin-1 / Windows-1252 (`Â`..`ô`) directly followed by one that is a
/// continuation byte (`€`..`¿`), unless that neighbour is a common one (dash, ellipsis,
/// apostrophe, ...) after a letter other than the typical leads `Â Ã Î Ð`; and `Ã` / `Â`
/// followed by a space at the start or after a lower-case word (`voilÃ le`: `à` whose
/// 0xA0 byte became a space).
pub fn is_bad(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if is_c1(c) {
            return true;
        }
        let Some(next) = chars.get(i + 1).copied() else {
            continue;
        };
        let lead = moji_byte(c).is_some_and(|b| (0xC2..=0xF4).contains(&b));
        let cont = moji_byte(next).is_some_and(|b| (0x80..=0xBF).contains(&b));
        if lead && cont && (matches!(c, 'Â' | 'Ã' | 'Î' | 'Ð') || !is_common_neighbour(next)) {
            return true;
        }
        if matches!(c, 'Â' | 'Ã') && next == ' ' {
            let before = &chars[..i];
            let prev = match before {
                [.., p, s] if s.is_whitespace() => Some(*p),
                [.., p] => Some(*p),
                [] => None,
            };
            if prev.is_none_or(|p| p.is_ascii_lowercase()) {
                return true;
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// Byte-level repairs

/// A byte class in a small pattern language for the byte-level repairs.
#[derive(Clone, Copy)]
enum B {
    /// One byte.
    Is(u8),
    /// An inclusive range.
    In(u8, u8),
    /// A continuation byte other than 0x85 and 0xA0 (those are often mangled differently).
    ContNo85A0,
    /// A continuation byte, byte 0x1A or `?`.
    ContOrLost,
    /// Byte 0x1A or `?`.
    Lost,
    /// Any of these bytes.
    OneOf(&'static [u8]),
}

impl B {
    fn matches(self, b: u8) -> bool {
        match self {
            B::Is(x) => b == x,
            B::In(lo, hi) => (lo..=hi).contains(&b),
            B::ContNo85A0 => (0x80..=0xBF).contains(&b) && b != 0x85 && b != 0xA0,
            B::ContOrLost => (0x80..=0xBF).contains(&b) || b == 0x1A || b == b'?',
            B::Lost => b == 0x1A || b == b'?',
            B::OneOf(set) => set.contains(&b),
        }
    }
}

/// The first pattern (in order) matching at `at`, as its length.
fn match_at(bytes: &[u8], at: usize, patterns: &[&[B]]) -> Option<usize> {
    patterns.iter().find_map(|p| {
        let window = bytes.get(at..at + p.len())?;
        p.iter()
            .zip(window)
            .all(|(class, &b)| class.matches(b))
            .then_some(p.len())
    })
}

/// UTF-8 sequences in which a 0xA0 byte seems to have become an ASCII space.
const SPACE_FOR_A0: &[&[B]] = &[
    &[B::OneOf(&[0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9]), B::Is(b' ')],
    &[B::OneOf(&[0xE2, 0xE3]), B::Is(b' '), B::ContNo85A0],
    &[B::In(0xE0, 0xE3), B::ContNo85A0, B::Is(b' ')],
    &[
        B::Is(0xF0),
        B::Is(b' '),
        B::In(0x80, 0xBF),
        B::In(0x80, 0xBF),
    ],
    &[
        B::Is(0xF0),
        B::In(0x80, 0xBF),
        B::Is(b' '),
        B::In(0x80, 0xBF),
    ],
    &[
        B::Is(0xF0),
        B::In(0x80, 0xBF),
        B::In(0x80, 0xBF),
        B::Is(b' '),
    ],
];

fn has_pattern(bytes: &[u8], patterns: &[&[B]]) -> bool {
    (0..bytes.len()).any(|i| match_at(bytes, i, patterns).is_some())
}

/// Rewrites each leftmost, non-overlapping match with `f`.
fn rewrite(bytes: &[u8], patterns: &[&[B]], f: impl Fn(&[u8], &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if let Some(n) = match_at(bytes, i, patterns) {
            f(&bytes[i..i + n], &mut out);
            i += n;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Puts back 0xA0 bytes that became spaces: first `Ã ` as the word `à` (except before the
/// Portuguese `às`, `àquele`, `àquela`, `àquilo` and a double space), then inside the
/// sequences of [`SPACE_FOR_A0`].
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    let mut step = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0xC3 && bytes.get(i + 1) == Some(&b' ') {
            let rest = &bytes[i + 2..];
            let exception = [&b" "[..], b"quele", b"quela", b"quilo", b"s "]
                .iter()
                .any(|w| rest.starts_with(w));
            if !exception {
                step.extend_from_slice(&[0xC3, 0xA0, b' ']);
                i += 2;
                continue;
            }
        }
        step.push(bytes[i]);
        i += 1;
    }
    rewrite(&step, SPACE_FOR_A0, |m, out| {
        out.extend(m.iter().map(|&b| if b == b' ' { 0xA0 } else { b }))
    })
}

/// UTF-8 sequences with bytes lost (0x1A stands for a byte that became U+FFFD; `?` for one
/// that became a question mark, at most once).
const LOSSY: &[&[B]] = &[
    &[B::In(0xC2, 0xDF), B::Is(0x1A)],
    &[B::In(0xC2, 0xC3), B::Is(b'?')],
    &[
        B::Is(0xED),
        B::In(0xA0, 0xAF),
        B::Lost,
        B::Is(0xED),
        B::In(0xB0, 0xBF),
        B::ContOrLost,
    ],
    &[
        B::Is(0xED),
        B::In(0xA0, 0xAF),
        B::ContOrLost,
        B::Is(0xED),
        B::In(0xB0, 0xBF),
        B::Lost,
    ],
    &[B::In(0xE0, 0xEF), B::Lost, B::OneOf(&LOST_OR_CONT)],
    &[B::In(0xE0, 0xEF), B::OneOf(&LOST_OR_CONT), B::Lost],
    &[
        B::In(0xF0, 0xF4),
        B::Lost,
        B::OneOf(&LOST_OR_CONT),
        B::OneOf(&LOST_OR_CONT),
    ],
    &[
        B::In(0xF0, 0xF4),
        B::OneOf(&LOST_OR_CONT),
        B::Lost,
        B::OneOf(&LOST_OR_CONT),
    ],
    &[
        B::In(0xF0, 0xF4),
        B::OneOf(&LOST_OR_CONT),
        B::OneOf(&LOST_OR_CONT),
        B::Lost,
    ],
    &[B::Is(0x1A)],
];

/// 0x1A and the continuation bytes 0x80..=0xBF.
const LOST_OR_CONT: [u8; 65] = {
    let mut t = [0u8; 65];
    t[0] = 0x1A;
    let mut i = 0;
    while i < 64 {
        t[i + 1] = 0x80 + i as u8;
        i += 1;
    }
    t
};

fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    rewrite(bytes, LOSSY, |_, out| {
        out.extend_from_slice("\u{FFFD}".as_bytes())
    })
}

/// UTF-8, also accepting CESU-8 surrogate pairs and `C0 80` for U+0000 (Java's "modified
/// UTF-8") when the bytes hold 0xED or 0xC0.
fn decode_utf8(bytes: Vec<u8>) -> Option<String> {
    if !bytes.contains(&0xED) && !bytes.contains(&0xC0) {
        return String::from_utf8(bytes).ok();
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = &bytes[i..];
        if b.len() >= 2 && b[0] == 0xC0 && b[1] == 0x80 {
            out.push('\0');
            i += 2;
            continue;
        }
        if b.len() >= 6
            && b[0] == 0xED
            && (0xA0..=0xAF).contains(&b[1])
            && (0x80..=0xBF).contains(&b[2])
            && b[3] == 0xED
            && (0xB0..=0xBF).contains(&b[4])
            && (0x80..=0xBF).contains(&b[5])
        {
            let hi = 0xD000 | (u32::from(b[1] & 0x3F) << 6) | u32::from(b[2] & 0x3F);
            let lo = 0xD000 | (u32::from(b[4] & 0x3F) << 6) | u32::from(b[5] & 0x3F);
            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            out.push(char::from_u32(cp)?);
            i += 6;
            continue;
        }
        // One ordinary UTF-8 sequence.
        let len = match b[0] {
            0x00..=0x7F => 1,
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return None,
        };
        let s = std::str::from_utf8(b.get(..len)?).ok()?;
        out.push_str(s);
        i += len;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Mojibake repair

/// UTF-8 lead characters (Latin-1 / Windows-1252 view) and how many continuations follow.
fn lead_len(c: char) -> Option<usize> {
    match c as u32 {
        0xC2..=0xDF => Some(1),
        0xE0..=0xEF => Some(2),
        0xF0 | 0xF3 => Some(3),
        _ => None,
    }
}

/// Continuation characters: bytes 0x80..=0xBF in Latin-1 or Windows-1252, and the space
/// (standing in for 0xA0).
fn is_continuation(c: char) -> bool {
    c == ' ' || moji_byte(c).is_some_and(|b| (0x80..=0xBF).contains(&b))
}

/// Continuations that rarely stand for themselves next to mojibake (not spaces, dashes,
/// bullets, quotation marks or ellipses).
fn is_strict_continuation(c: char) -> bool {
    is_continuation(c)
        && !matches!(
            c,
            ' ' | '\u{A0}'
                | '\u{2013}'
                | '\u{2014}'
                | '\u{2022}'
                | '\u{2018}'
                | '\u{2019}'
                | '\u{201A}'
                | '\u{201C}'
                | '\u{201D}'
                | '\u{201E}'
                | '\u{2039}'
                | '\u{203A}'
                | '\u{AB}'
                | '\u{BB}'
                | '\u{2026}'
        )
}

/// Fixes runs of UTF-8 mojibake inside text that cannot be fixed as a whole (e.g. correct
/// `é` next to `Ã©`). Each maximal run of lead + continuation sequences, not preceded by a
/// strict continuation character, is repaired on its own when it is shorter than the text
/// and looks bad.
fn decode_inconsistent_utf8(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let preceded_ok = i == 0 || !is_strict_continuation(chars[i - 1]);
        let mut end = i;
        if preceded_ok {
            while let Some(n) = chars.get(end).and_then(|&c| lead_len(c)) {
                let conts = chars.get(end + 1..end + 1 + n);
                if conts.is_some_and(|cs| cs.iter().all(|&c| is_continuation(c))) {
                    end += 1 + n;
                } else {
                    break;
                }
            }
        }
        if end > i {
            let run: String = chars[i..end].iter().collect();
            if end - i < chars.len() && is_bad(&run) {
                out.push_str(&fix_encoding(&run));
            } else {
                out.push_str(&run);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn has_utf8_run(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).any(|i| {
        (i == 0 || !is_strict_continuation(chars[i - 1]))
            && chars.get(i).and_then(|&c| lead_len(c)).is_some_and(|n| {
                chars
                    .get(i + 1..i + 1 + n)
                    .is_some_and(|cs| cs.iter().all(|&c| is_continuation(c)))
            })
    })
}

fn fix_encoding_step(text: &str) -> String {
    if text.is_ascii() || !is_bad(text) {
        return text.to_string();
    }
    let mut latin1_possible = false;
    for map in [Charmap::Latin1, Charmap::Sloppy1252] {
        let Some(mut bytes) = encode(text, map) else {
            continue;
        };
        if map == Charmap::Latin1 {
            latin1_possible = true;
        }
        if has_pattern(&bytes, SPACE_FOR_A0) {
            bytes = restore_byte_a0(&bytes);
        }
        if map == Charmap::Sloppy1252 {
            bytes = replace_lossy_sequences(&bytes);
        }
        if let Some(fixed) = decode_utf8(bytes) {
            return fixed;
        }
    }
    if has_utf8_run(text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return fixed;
        }
    }
    if latin1_possible {
        // Latin-1 text with C1 controls: read as (strict) Windows-1252.
        let strict: Option<String> = text
            .chars()
            .map(|c| {
                if is_c1(c) {
                    CP1252_HIGH[(c as u32 - 0x80) as usize]
                } else {
                    Some(c)
                }
            })
            .collect();
        if let Some(fixed) = strict.filter(|f| f != text) {
            return fixed;
        }
    }
    if text.chars().any(is_c1) {
        return fix_c1_controls(text);
    }
    text.to_string()
}

/// ftfy's `fix_encoding`: repairs mojibake until the text stops changing.
pub fn fix_encoding(text: &str) -> String {
    let mut text = text.to_string();
    loop {
        let next = fix_encoding_step(&text);
        if next == text {
            return text;
        }
        text = next;
    }
}

// ---------------------------------------------------------------------------------------
// Character-level fixes

/// C1 controls -> Windows-1252 characters (unassigned bytes stay).
pub(super) fn fix_c1_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if is_c1(c) {
                CP1252_HIGH[(c as u32 - 0x80) as usize].unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}
