//! The batch-query JSONL format used by `sat2cap query` and benchmark harnesses.
//!
//! Each input line: `{"id": ANY, "k": 10, "vector": [f32; dim], "filter": FILTER}` (without
//! `"vector"`, or with `"vector": null`, when the vectors come apart: [`parse_query_head`]) where
//! `FILTER` is `null`, or an object with any of these keys (combined with AND):
//! `"bbox": [west, south, east, north]` (west > east crosses the antimeridian),
//! `"radius": {"lat": .., "lon": .., "km": ..}`, `"polygon": [[lon, lat], ...]`,
//! `"time": [t0, t1]` (unix seconds or ISO 8601 strings). Other top-level keys are ignored.
//! Each output line: `{"id": ANY, "neighbors": [ids], "scores": [f32]}`.

use serde::{Deserialize, Serialize};

mod numbers;

use numbers::{parse_numbers, vector_span};

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

/// The id, `k` and filter of a query line whose vector is given apart from the line
/// (`sat2cap query --vectors`: a row of an `.npy`), read with that vector. A line that gives
/// a `vector` too is an error (which of the two is meant cannot be told).
pub fn parse_query_head(text: &str, line: u64, vector: Vec<f32>) -> Result<QueryLine, JsonlError> {
    /// A query line without its vector.
    #[derive(Deserialize)]
    struct QueryHead {
        id: serde_json::Value,
        k: usize,
        #[serde(default)]
        filter: Option<FilterJson>,
        #[serde(default)]
        vector: Option<serde::de::IgnoredAny>,
    }
    let head: QueryHead = serde_json::from_str(text).map_err(|e| JsonlError {
        line,
        what: e.to_string(),
    })?;
    if head.vector.is_some() {
        return Err(JsonlError {
            line,
            what: "the line gives a vector and the vectors file gives one too: give one".into(),
        });
    }
    Ok(QueryLine {
        id: head.id,
        k: head.k,
        vector,
        filter: head.filter,
    })
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
    fn a_line_without_its_vector_takes_the_one_given() {
        let line = r#"{"id": "a", "k": 4, "filter": {"bbox": [0, 0, 1, 1]}, "text": "x"}"#;
        let q = parse_query_head(line, 7, vec![1.0, 2.0]).unwrap();
        assert_eq!(
            (q.id, q.k, q.vector),
            (serde_json::json!("a"), 4, vec![1.0, 2.0])
        );
        assert_eq!(q.filter.unwrap().bbox, Some([0.0, 0.0, 1.0, 1.0]));
        // `"vector": null` is no vector; any other vector is one too many.
        let q = parse_query_head(r#"{"id": 1, "k": 2, "vector": null}"#, 1, vec![3.0]).unwrap();
        assert_eq!(q.vector, vec![3.0]);
        for (line, what) in [
            (
                r#"{"id": 1, "k": 2, "vector": [1, 2]}"#,
                "gives a vector and the vectors file",
            ),
            (
                r#"{"id": 1, "k": 2, "vector": "x"}"#,
                "gives a vector and the vectors file",
            ),
            (r#"{"id": 1, "vector": null}"#, "missing field `k`"),
            (r#"{"id": 1, "k": -2}"#, "invalid value"),
        ] {
            let e = parse_query_head(line, 9, vec![1.0]).unwrap_err();
            assert_eq!(e.line, 9);
            assert!(e.what.contains(what), "{line}: {}", e.what);
        }
    }

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
