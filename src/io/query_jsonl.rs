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
    pub vector: Vec<f32>,
    /// Optional filter.
    #[serde(default)]
    pub filter: Option<FilterJson>,
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
    let q: QueryLine = serde_json::from_str(text).map_err(|e| JsonlError {
        line,
        what: e.to_string(),
    })?;
    if let Some(i) = q.vector.iter().position(|x| !x.is_finite()) {
        return Err(JsonlError {
            line,
            what: format!("vector component {i} is outside the f32 range"),
        });
    }
    Ok(q)
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
