//! The batch-query JSONL format used by `sat2cap query` and benchmark harnesses.
//!
//! Each input line: `{"id": ANY, "k": 10, "vector": [f32; dim], "filter": FILTER}` where
//! `FILTER` is `null`, or an object with any of these keys (combined with AND):
//! `"bbox": [west, south, east, north]` (west > east crosses the antimeridian),
//! `"radius": {"lat": .., "lon": .., "km": ..}`, `"polygon": [[lon, lat], ...]`,
//! `"time": [t0, t1]` (unix seconds or ISO 8601 strings). Other top-level keys are ignored.
//! Each output line: `{"id": ANY, "neighbors": [ids], "scores": [f32]}`.

use serde::{Deserialize, Serialize};

use crate::query::filter::{BBox, Filter, Polygon, Radius, TimeRange};
use crate::query::QueryError;
use crate::time::TimeError;

/// A radius filter as written in JSON.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusJson {
    /// Centre latitude, degrees.
    pub lat: f64,
    /// Centre longitude, degrees.
    pub lon: f64,
    /// Radius, kilometres.
    pub km: f64,
}

/// A time bound: unix seconds or a date/time string.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TimeJson {
    /// Unix seconds.
    Seconds(i64),
    /// Text accepted by [`crate::time::parse`].
    Text(String),
}

impl TimeJson {
    /// Unix seconds of this bound.
    pub fn seconds(&self) -> Result<i64, crate::time::TimeError> {
        match self {
            TimeJson::Seconds(s) => Ok(*s),
            TimeJson::Text(t) => crate::time::parse(t),
        }
    }
}

/// A filter as written in JSON; present keys combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterJson {
    /// `[west, south, east, north]`, degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// Great-circle radius around a point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<RadiusJson>,
    /// A ring of `[lon, lat]` vertices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Vec<[f64; 2]>>,
    /// Inclusive time range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<[TimeJson; 2]>,
}

/// Why a filter written in JSON is not a valid [`Filter`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterJsonError {
    /// A box, centre, radius, ring or time range out of range.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A time bound that is not a date/time.
    #[error(transparent)]
    Time(#[from] TimeError),
}

impl FilterJson {
    /// The validated filter (the keys present, combined with AND).
    pub fn to_filter(&self) -> Result<Filter, FilterJsonError> {
        let mut out = Filter::new();
        if let Some([w, s, e, n]) = self.bbox {
            out = out.bbox(BBox::new(w, s, e, n)?);
        }
        if let Some(r) = &self.radius {
            out = out.radius(Radius::new(r.lat, r.lon, r.km)?);
        }
        if let Some(p) = &self.polygon {
            let ring: Vec<(f64, f64)> = p.iter().map(|[lon, lat]| (*lon, *lat)).collect();
            out = out.polygon(Polygon::new(&ring)?);
        }
        if let Some([t0, t1]) = &self.time {
            out = out.time(TimeRange::new(t0.seconds()?, t1.seconds()?)?);
        }
        Ok(out)
    }
}

/// One parsed query line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryLine {
    /// Echoed back verbatim in the result line.
    pub id: serde_json::Value,
    /// Number of neighbours wanted.
    pub k: usize,
    /// The query vector.
    #[serde(deserialize_with = "numbers")]
    pub vector: Vec<f32>,
    /// Optional filter.
    #[serde(default)]
    pub filter: Option<FilterJson>,
}

/// A JSON array of numbers read as `f32`, the array taken whole as text and its numbers
/// parsed in one pass ([`parse_numbers`]): the vector is most of a query line. (Most lines
/// never get here: [`parse_query_line`] cuts the vector out before serde_json reads the
/// rest; this reads the lines it leaves to serde_json whole.) Anything but an array of JSON numbers
/// (the grammar of RFC 8259) is an error; a number beyond the `f32` range becomes infinite,
/// which [`parse_query_line`] refuses.
fn numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    use serde::de::Error;
    let raw: &serde_json::value::RawValue = Deserialize::deserialize(d)?;
    parse_numbers(raw.get()).map_err(D::Error::custom)
}

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
fn parse_numbers(text: &str) -> Result<Vec<f32>, String> {
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
            let Some(x) = json_number(b, &mut i) else {
                return Err(bad(out.len()));
            };
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => {
                    out.push(x);
                    i += 1;
                    break;
                }
                None => return Err(NOT_ARRAY.into()),
                Some(_) => return Err(bad(out.len())),
            }
            out.push(x);
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(NOT_ARRAY.into());
    }
    Ok(out)
}

/// Powers of ten that `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
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
    let digit = |j: usize| b.get(j).filter(|c| c.is_ascii_digit()).map(|c| u64::from(c - b'0'));
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
        Some(if exp10 < 0 { m as f64 / p } else { m as f64 * p })
    } else {
        wide_decimal(m, exp10)
    };
    let x = match fast {
        Some(x) if neg => -x,
        Some(x) => x,
        None => std::str::from_utf8(&b[start..j]).ok()?.parse::<f64>().ok()?,
    };
    Some(x as f32)
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
fn vector_span(b: &[u8]) -> Option<(usize, usize)> {
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

/// One result line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    /// The query's id.
    pub id: serde_json::Value,
    /// Ids of the neighbours, best first.
    pub neighbors: Vec<u64>,
    /// Cosine similarity of each neighbour.
    pub scores: Vec<f32>,
}

/// A query line that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct JsonlError {
    /// 1-based line number.
    pub line: u64,
    /// What was wrong.
    pub what: String,
}

/// Parses one line of a query batch (`line` is 1-based, for errors).
/// A vector component outside the `f32` range (e.g. `1e39`) is an error, not infinity.
pub fn parse_query_line(text: &str, line: u64) -> Result<QueryLine, JsonlError> {
    let q = match fast_query_line(text) {
        Some(q) => q,
        // The whole line through serde_json: the answer, or the error it names.
        None => serde_json::from_str(text).map_err(|e| JsonlError {
            line,
            what: e.to_string(),
        })?,
    };
    if let Some(i) = q.vector.iter().position(|x| !x.is_finite()) {
        return Err(JsonlError {
            line,
            what: format!("vector component {i} is outside the f32 range"),
        });
    }
    Ok(q)
}

/// The line read with its vector taken out first: the vector by [`parse_numbers`] straight
/// from the line, the rest (with `[]` in the vector's place) by serde_json. `None` where
/// either fails or the vector cannot be found quickly, and the caller reads the whole line
/// with serde_json, which gives the same value or the error at its true position.
fn fast_query_line(text: &str) -> Option<QueryLine> {
    let (start, end) = vector_span(text.as_bytes())?;
    let vector = parse_numbers(text.get(start..end)?).ok()?;
    let mut rest = String::with_capacity(text.len() - (end - start) + 2);
    rest.push_str(text.get(..start)?);
    rest.push_str("[]");
    rest.push_str(text.get(end..)?);
    let mut q: QueryLine = serde_json::from_str(&rest).ok()?;
    q.vector = vector;
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_harness_format() {
        let q = parse_query_line(
            r#"{"id": 3, "text": "x", "k": 10, "filter": {"radius": {"lat": -26.8, "lon": -56.2, "km": 60.4}}, "selectivity": 9.7e-05, "vector": [0.5, -0.25]}"#,
            1,
        )
        .unwrap();
        assert_eq!(q.k, 10);
        assert_eq!(q.vector, vec![0.5, -0.25]);
        assert_eq!(q.filter.unwrap().radius.unwrap().km, 60.4);
        let q = parse_query_line(r#"{"id":"a","k":1,"vector":[1],"filter":null}"#, 1).unwrap();
        assert!(q.filter.is_none());
        let q = parse_query_line(
            r#"{"id":1,"k":1,"vector":[1],"filter":{"bbox":[170,-10,-170,10],"time":["2020-01-01",1700000000]}}"#,
            1,
        )
        .unwrap();
        let f = q.filter.unwrap();
        assert_eq!(f.bbox, Some([170.0, -10.0, -170.0, 10.0]));
        assert_eq!(
            f.time.as_ref().unwrap()[0].seconds().unwrap(),
            1_577_836_800
        );
        let filter = f.to_filter().unwrap();
        match filter.predicates() {
            [crate::Predicate::BBox(b), crate::Predicate::Time(_)] => {
                assert!(b.crosses_antimeridian())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_filters_are_typed_errors() {
        let f = |s: &str| {
            let line = format!(r#"{{"id":1,"k":1,"vector":[1],"filter":{s}}}"#);
            parse_query_line(&line, 1)
                .unwrap()
                .filter
                .unwrap()
                .to_filter()
        };
        assert_eq!(
            f(r#"{"bbox":[0,95,1,96]}"#),
            Err(FilterJsonError::Query(QueryError::Latitude(95.0)))
        );
        assert_eq!(
            f(r#"{"radius":{"lat":0,"lon":0,"km":-1}}"#),
            Err(FilterJsonError::Query(QueryError::Radius(-1.0)))
        );
        assert_eq!(
            f(r#"{"polygon":[[0,0],[1,1]]}"#),
            Err(FilterJsonError::Query(QueryError::PolygonTooSmall(2)))
        );
        assert_eq!(
            f(r#"{"time":[10,5]}"#),
            Err(FilterJsonError::Query(QueryError::TimeRange {
                t0: 10,
                t1: 5
            }))
        );
        assert!(matches!(
            f(r#"{"time":["yesterday",5]}"#),
            Err(FilterJsonError::Time(_))
        ));
    }

    #[test]
    fn vectors_are_json_numbers_read_like_serde_json_reads_them() {
        let v = |s: &str| parse_query_line(&format!(r#"{{"id":1,"k":1,"vector":{s}}}"#), 1);
        let good = [
            "[1]",
            "[ 0.5 , -0.25e-3,1E+2 ,\t0 ]",
            "[-0, 0.1, 3.4028234663852886e38, 1e-46, 123456789012345678901234567890]",
            "[]",
        ];
        for s in good {
            let ours = v(s).map(|q| q.vector).unwrap();
            let theirs: Vec<f32> = serde_json::from_str(s).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{s}");
            for (a, b) in ours.iter().zip(&theirs) {
                assert_eq!(a.to_bits(), b.to_bits(), "{s}");
            }
        }
        for bad in [
            "[1,]", "[,1]", "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[NaN]", "[inf]", "[\"1\"]",
            "[1 2]", "[[1]]", "[null]", "{}", "1", "[0x10]", "[1e39]",
        ] {
            assert!(v(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_read_exactly_as_the_standard_library_reads_them() {
        let mut seed = 20261207u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
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
    fn long_mantissas_are_rounded_as_the_standard_library_rounds_them() {
        let mut seed = 77u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
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
        assert!(quotients > 100_000 && products > 10_000, "{quotients} {products}");
        // As a JSON writer prints doubles (17 significant digits), through the line reader.
        for _ in 0..100_000 {
            let x = (next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let text = format!("{x:.17}");
            let mut i = 0;
            let got = json_number(text.as_bytes(), &mut i).unwrap();
            assert_eq!(got.to_bits(), (text.parse::<f64>().unwrap() as f32).to_bits(), "{text}");
        }
    }

    #[test]
    fn the_quick_read_of_a_line_is_serde_json_s_read() {
        let lines = [
            r#"{"id": 1, "k": 3, "vector": [0.5, -1e-3, 7]}"#,
            r#"{"vector":[1,2],"k":1,"id":"a"}"#,
            r#"{"id": {"vector": [9]}, "k": 2, "vector" : [ 1 , 2 ] , "filter": {"bbox": [1, 2, 3, 4]}}"#,
            r#"{"text": "a \"vector\": [5] ] }", "k": 1, "id": [1, [2, {"x": "]"}]], "vector": [3]}"#,
            r#"{"text": "\\", "k": 1, "id": null, "vector": [3], "selectivity": 1e-4}"#,
            r#"{"k": 1, "id": 1, "filter": {"time": ["2020-01-01", 5]}, "vector": []}"#,
            r#"  {"k": 1, "id": 1, "vector": [1e0, 0.1e-0, 123456789012345678901234]}  "#,
        ];
        for l in lines {
            let quick = fast_query_line(l).unwrap_or_else(|| panic!("{l}"));
            let serde: QueryLine = serde_json::from_str(l).unwrap();
            assert_eq!(quick, serde, "{l}");
        }
        // Where the quick read cannot tell, or the line is bad, the whole line goes through
        // serde_json, and its error (with its position in the line as written) is the one.
        let slow = [
            r#"{"id": 1, "k": 3, "vec\u0074or": [1]}"#,
            r#"{"id": 1, "k": 3, "vector": [1], "vector": [2]}"#,
            r#"{"id": 1, "k": 3, "vector": [[1]]}"#,
            r#"{"id": 1, "k": -3, "vector": [1]}"#,
            r#"{"id": 1, "k": 3, "vector": [1, "2"]}"#,
            r#"{"id": 1, "k": 3, "vector": [1] "#,
            r#"[1, 2]"#,
        ];
        for l in slow {
            assert!(fast_query_line(l).is_none(), "{l}");
        }
        let e = parse_query_line(r#"{"id": 1, "vector": [1, 2, 3], "k": -3}"#, 4).unwrap_err();
        let want = serde_json::from_str::<QueryLine>(r#"{"id": 1, "vector": [1, 2, 3], "k": -3}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(e.what, want);
        assert!(e.what.contains("column"), "{}", e.what);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "{",
            r#"{"id":1,"k":-1,"vector":[1]}"#,
            r#"{"id":1,"k":1}"#,
            r#"{"id":1,"k":1,"vector":["a"]}"#,
            r#"{"id":1,"k":1,"vector":[1],"filter":{"circle":1}}"#,
            r#"{"id":1,"k":1,"vector":[1],"filter":{"bbox":[1,2,3]}}"#,
            // Regression (fuzz target `query_jsonl`): serde reads 1e39 as f32 infinity.
            r#"{"id":1,"k":1,"vector":[1e39]}"#,
            r#"{"id":1,"k":1,"vector":[0.5,-3.5e38]}"#,
        ] {
            let e = parse_query_line(bad, 7).unwrap_err();
            assert_eq!(e.line, 7, "{bad}");
        }
    }
}
