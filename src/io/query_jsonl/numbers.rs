//! The vector of a query line read straight from its text: JSON numbers parsed in one pass
//! (correctly rounded as `str::parse::<f64>` rounds them, then to `f32`), and the top-level
//! `"vector"` member found without parsing the line, so that serde_json reads only the rest.

/// JSON's whitespace.
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first index at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// The numbers of the JSON array `text` (whitespace allowed where JSON allows it), in one
/// pass over its bytes.
pub(super) fn parse_numbers(text: &str) -> Result<Vec<f32>, String> {
    const NOT_ARRAY: &str = "the vector must be an array of numbers";
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return Err(NOT_ARRAY.into());
    }
    i = skip_ws(b, i + 1);
    let mut out = Vec::with_capacity(b.len() / 8);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            let start = i;
            let bad = |n: usize| {
                // The text up to the next separator, as the component that is not a number.
                let end = b[start..]
                    .iter()
                    .position(|&c| c == b',' || c == b']')
                    .map_or(b.len(), |e| start + e);
                let part = String::from_utf8_lossy(&b[start..end]);
                format!(
                    "vector component {n} ({:?}) is not a JSON number",
                    part.trim_matches([' ', '\t', '\n', '\r'])
                )
            };
            let n = out.len();
            out.push(json_number(b, &mut i).ok_or_else(|| bad(n))?);
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                None => return Err(NOT_ARRAY.into()),
                Some(_) => return Err(bad(n)),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(NOT_ARRAY.into());
    }
    // The room a short number would need, given back (a batch holds all its queries until
    // they are answered: a 384-dimensional vector of JSON doubles keeps 1.5 kB, not 4).
    out.shrink_to_fit();
    Ok(out)
}

/// Powers of ten that `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The number in JSON's grammar (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`)
/// starting at `b[*i]`, read as `f64` (as a JSON reader does) and rounded to `f32`; `*i`
/// moves past it. `None` where no number starts there. Up to 19 significant digits and
/// a power of ten within 10^±22, the value is one exact product or quotient (correctly
/// rounded, as Clinger showed); any other number goes through `str::parse::<f64>`.
#[inline]
fn json_number(b: &[u8], i: &mut usize) -> Option<f32> {
    let start = *i;
    let mut j = start;
    let neg = b.get(j) == Some(&b'-');
    j += usize::from(neg);
    let (mut m, mut nd, mut exp10, mut exact) = (0u64, 0u32, 0i32, true);
    let digit = |j: usize| {
        b.get(j)
            .filter(|c| c.is_ascii_digit())
            .map(|c| u64::from(c - b'0'))
    };
    match b.get(j) {
        Some(b'0') => j += 1,
        Some(b'1'..=b'9') => {
            while let Some(d) = digit(j) {
                if nd < 19 {
                    m = m * 10 + d;
                    nd += 1;
                } else {
                    exact = false;
                }
                j += 1;
            }
        }
        _ => return None,
    }
    if b.get(j) == Some(&b'.') {
        j += 1;
        let first = j;
        // Eight digits at a time while the 19 kept fit, then one at a time.
        while nd + 8 <= 19 {
            let Some(v) = b.get(j..).and_then(eight_digits) else {
                break;
            };
            m = m * 100_000_000 + v;
            nd += 8;
            exp10 -= 8;
            j += 8;
        }
        while let Some(d) = digit(j) {
            if nd < 19 {
                m = m * 10 + d;
                nd += 1;
                exp10 -= 1;
            } else {
                exact = false;
            }
            j += 1;
        }
        if j == first {
            return None;
        }
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        let eneg = b.get(j) == Some(&b'-');
        j += usize::from(matches!(b.get(j), Some(b'+' | b'-')));
        let first = j;
        let mut e = 0i32;
        while let Some(d) = digit(j) {
            e = (e * 10 + d as i32).min(1_000_000);
            j += 1;
        }
        if j == first {
            return None;
        }
        exp10 = exp10.saturating_add(if eneg { -e } else { e });
    }
    *i = j;
    let fast = if !exact || !(-22..=22).contains(&exp10) {
        None
    } else if m <= 1 << 53 {
        let p = POW10[exp10.unsigned_abs() as usize];
        Some(if exp10 < 0 {
            m as f64 / p
        } else {
            m as f64 * p
        })
    } else {
        same_f32(m, exp10).or_else(|| wide_decimal(m, exp10))
    };
    let x = match fast {
        Some(x) if neg => -x,
        Some(x) => x,
        None => std::str::from_utf8(&b[start..j])
            .ok()?
            .parse::<f64>()
            .ok()?,
    };
    Some(x as f32)
}

/// The value of the eight ASCII digits `b[..8]`; `None` when `b` is shorter or one of them
/// is not a digit. One 64-bit load: the digits' values combined pairwise, then in fours,
/// then the two halves.
#[inline]
fn eight_digits(b: &[u8]) -> Option<u64> {
    let chunk = u64::from_le_bytes(b.get(..8)?.try_into().ok()?);
    let v = chunk.wrapping_sub(0x3030_3030_3030_3030);
    // A byte below b'0' borrows (its top bit set); one above b'9' passes 0x7f once 0x76 is
    // added (and one of 0x8a or more has its top bit set already).
    if (v | v.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080 != 0 {
        return None;
    }
    // Byte i holds digit i (the first digit in the lowest byte).
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    Some((v.wrapping_mul(10_000) + (v >> 32)) & 0xffff_ffff)
}

/// `m * 10^e` (`|e| <= 22`) in `f64` arithmetic, when it rounds to the same `f32` as the
/// correctly rounded `f64` does; `None` otherwise. The value is within 2 ulps of the
/// correctly rounded one (one rounding of `m`, one of the product or quotient by an exact
/// power of ten), so the two round alike unless an `f32` rounding midpoint (the 29 bits an
/// `f32` drops from an `f64`'s mantissa equal to `1 << 28`) lies within a few ulps: about
/// one number in 2^25, left to [`wide_decimal`]. (Queries are `f32`: this spares the
/// 128-bit division of a 17-digit mantissa, as JSON writers print doubles.)
#[inline]
fn same_f32(m: u64, e: i32) -> Option<f64> {
    let p = POW10[e.unsigned_abs() as usize];
    let x = if e < 0 { m as f64 / p } else { m as f64 * p };
    let dropped = x.to_bits() & ((1 << 29) - 1);
    (dropped.abs_diff(1 << 28) > 8).then_some(x)
}

/// `m * 10^e` correctly rounded to `f64`, for a mantissa above 2^53 (up to 19 digits, as
/// JSON writers print doubles: 17 digits) and `|e| <= 22`, by integer arithmetic: a product
/// that fits in `u128` is exact (and `u128 as f64` rounds to nearest, ties to even); a quotient is
/// computed to at least 55 bits with its remainder, then rounded to nearest, ties to even.
/// `None` where that precision is not reached (the caller then uses std's parser).
fn wide_decimal(m: u64, e: i32) -> Option<f64> {
    let p = 10u128.pow(e.unsigned_abs());
    if e >= 0 {
        // Exact where it fits in 128 bits (m < 2^64, 10^e < 2^74: not always).
        return u128::from(m).checked_mul(p).map(|v| v as f64);
    }
    // (m << s) / p with m's top bit moved to bit 127.
    let s = m.leading_zeros() + 64;
    let num = u128::from(m) << s;
    let (q, r) = (num / p, num % p);
    let bits = 128 - q.leading_zeros();
    if bits < 55 {
        return None;
    }
    let extra = bits - 53;
    let mut mant = q >> extra;
    let rest = q & ((1u128 << extra) - 1);
    let half = 1u128 << (extra - 1);
    if rest > half || (rest == half && (r != 0 || mant & 1 == 1)) {
        mant += 1;
    }
    // value = mant * 2^(extra - s); mant <= 2^53, and the power of two is a normal f64.
    let exp = i64::from(extra) - i64::from(s);
    let scale = f64::from_bits(u64::try_from(1023 + exp).ok()? << 52);
    Some(mant as f64 * scale)
}

/// The span of the value of the top-level key `"vector"` of the JSON object `b`, found by a
/// quick walk over the members before it: `None` where the walk cannot tell (the line is
/// not an object, a key before it holds an escape, the value is not an array, the line is
/// malformed before it), and serde_json then reads the whole line itself.
pub(super) fn vector_span(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        let key_end = string_end(b, i)?;
        let key = &b[i + 1..key_end - 1];
        if key.contains(&b'\\') {
            return None;
        }
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if key == b"vector" {
            // Numbers hold no `]`: the first one closes an array of numbers (and anything
            // else is an error, which the number reader reports).
            let close = memchr::memchr(b']', b.get(i..)?)?;
            return (b.get(i) == Some(&b'[')).then_some((i, i + close + 1));
        }
        i = value_end(b, i)?;
        i = skip_ws(b, i);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

/// The index just past the JSON string starting at `b[i]` (its quotes included).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// The index just past the JSON value starting at `b[i]` (strings, nested arrays and
/// objects skipped as a whole; scalars up to the next separator).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..]
                .iter()
                .position(|&c| matches!(c, b',' | b'}' | b']') || is_ws(c))
                .unwrap_or(b.len() - i);
            Some(i + n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_exactly_as_the_standard_library_reads_them() {
        let mut seed = 20261207u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..200_000 {
            // Random digits, point and exponent: short and long mantissas, leading zeros,
            // exponents near and far from the exact range.
            let mut t = String::new();
            if next(2) == 0 {
                t.push('-');
            }
            let int_digits = next(22) as usize;
            if int_digits == 0 {
                t.push('0');
            } else {
                t.push(char::from(b'1' + next(9) as u8));
                for _ in 1..int_digits {
                    t.push(char::from(b'0' + next(10) as u8));
                }
            }
            if next(3) > 0 {
                t.push('.');
                for _ in 0..1 + next(24) {
                    t.push(char::from(b'0' + next(10) as u8));
                }
            }
            if next(3) == 0 {
                t.push(['e', 'E'][next(2) as usize]);
                t.push_str(["", "+", "-"][next(3) as usize]);
                let span = [5, 30, 60, 400][next(4) as usize];
                t.push_str(&next(span).to_string());
            }
            let mut i = 0;
            let ours = json_number(t.as_bytes(), &mut i).unwrap();
            assert_eq!(i, t.len(), "{t}");
            let std = t.parse::<f64>().unwrap() as f32;
            assert_eq!(ours.to_bits(), std.to_bits(), "{t}");
        }
    }

    #[test]
    fn eight_digits_read_as_eight_single_digits() {
        let mut seed = 5u64;
        for _ in 0..100_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut bytes = seed.to_le_bytes();
            // Mostly digits, sometimes any byte (a separator, a letter, a non-ASCII byte).
            for (k, c) in bytes.iter_mut().enumerate() {
                if !(seed >> (k * 5)).is_multiple_of(16) {
                    *c = b'0' + *c % 10;
                }
            }
            let want = bytes.iter().try_fold(0u64, |v, &c| {
                c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
            });
            assert_eq!(eight_digits(&bytes), want, "{bytes:?}");
            assert_eq!(eight_digits(&bytes[..7]), None);
        }
        for c in 0..=255u8 {
            let mut bytes = *b"12345678";
            bytes[3] = c;
            let want = c
                .is_ascii_digit()
                .then(|| (12_345_678 + (i64::from(c) - 52) * 10_000) as u64);
            assert_eq!(eight_digits(&bytes), want, "byte {c}");
        }
    }

    #[test]
    fn long_mantissas_are_rounded_as_the_standard_library_rounds_them() {
        let mut seed = 77u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed
        };
        let (mut quotients, mut products) = (0, 0);
        for _ in 0..300_000 {
            // 16 to 19 digits above 2^53, powers of ten across the whole exact range.
            let m = (1u64 << 53) + next() % (u64::MAX - (1 << 53));
            let e = (next() % 45) as i32 - 22;
            let text = format!("{m}e{e}");
            let want = text.parse::<f64>().unwrap();
            if let Some(got) = wide_decimal(m, e) {
                assert_eq!(got.to_bits(), want.to_bits(), "{text}");
                if e < 0 {
                    quotients += 1;
                } else {
                    products += 1;
                }
            }
        }
        assert!(
            quotients > 100_000 && products > 10_000,
            "{quotients} {products}"
        );
        // Decimals at and beside the midpoints between neighbouring f32s (where rounding
        // through an inexact f64 would go wrong), 17 and 19 significant digits.
        let mut near = 0;
        for _ in 0..200_000 {
            let a = f32::from_bits((next() % 0x7f00_0000) as u32 | 0x0080_0000);
            let mid = (f64::from(a) + f64::from(f32::from_bits(a.to_bits() + 1))) / 2.0;
            let digits = [16, 18][(next() % 2) as usize];
            let text = format!("{mid:.digits$e}");
            let (mant, exp) = text.split_once('e').unwrap();
            let m: u64 = mant.replace('.', "").parse().unwrap();
            let e = exp.parse::<i32>().unwrap() - digits as i32;
            for m in [m - 1, m, m + 1] {
                let text = format!("{m}e{e}");
                let mut i = 0;
                let got = json_number(text.as_bytes(), &mut i).unwrap();
                let want = text.parse::<f64>().unwrap() as f32;
                assert_eq!(got.to_bits(), want.to_bits(), "{text}");
                near +=
                    usize::from((-22..=22).contains(&e) && m > 1 << 53 && same_f32(m, e).is_none());
            }
        }
        assert!(
            near > 10_000,
            "{near} numbers near a midpoint took the exact path"
        );
        // As a JSON writer prints doubles (17 significant digits), through the line reader.
        for _ in 0..100_000 {
            let x = (next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let text = format!("{x:.17}");
            let mut i = 0;
            let got = json_number(text.as_bytes(), &mut i).unwrap();
            assert_eq!(
                got.to_bits(),
                (text.parse::<f64>().unwrap() as f32).to_bits(),
                "{text}"
            );
        }
    }
}
