//! Areas of interest as GIS tools draw them: a GeoJSON file (RFC 7946) holding a Polygon, a
//! MultiPolygon, a Feature of one, or a FeatureCollection / GeometryCollection of them,
//! read into one [`Area`] (the union of every polygon). Positions are `[lon, lat]` (a third
//! value, an altitude, is ignored); a ring's first ring is its outer ring, the others its
//! holes. Parts cut at the antimeridian, as RFC 7946 §3.1.9 asks, are read as given; a ring
//! drawn across it uncut is taken the shorter way round (see [`crate::Polygon`]). Every
//! error names the file and where in it (`features[2].geometry.coordinates[0][3]`).

use std::path::Path;

use serde_json::Value;

use crate::query::filter::{Area, Polygon};

/// The largest GeoJSON file read: 64 MiB.
pub const MAX_GEOJSON_BYTES: u64 = 64 << 20;

/// Most polygons (parts) an area may hold, and most vertices in all.
pub const MAX_AREA_PARTS: usize = 100_000;
/// See [`MAX_AREA_PARTS`].
pub const MAX_AREA_VERTICES: usize = 10_000_000;

/// Reads the area of interest in `path`.
pub fn read_area(path: &Path) -> Result<Area, String> {
    let bytes = super::input::read_whole(path, MAX_GEOJSON_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_area(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(feature = "encoders")]
/// Reads the examples in `path` (see [`parse_examples`]).
pub fn read_examples(path: &Path) -> Result<Vec<LabelledPlace>, String> {
    let bytes = super::input::read_whole(path, MAX_GEOJSON_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_examples(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The area of GeoJSON text (see the module docs).
pub fn parse_area(bytes: &[u8]) -> Result<Area, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut parts = Vec::new();
    let mut vertices = 0usize;
    collect(&v, "", &mut parts, &mut vertices, 0)?;
    if parts.is_empty() {
        return Err("no Polygon or MultiPolygon in it".into());
    }
    Area::new(parts).ok_or_else(|| "no polygon".to_string())
}

type Parts = Vec<(Polygon, Vec<Polygon>)>;

/// Nesting allowed (collections of features of collections...).
const MAX_DEPTH: usize = 32;

fn collect(
    v: &Value,
    at: &str,
    parts: &mut Parts,
    vertices: &mut usize,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{at}: nested deeper than {MAX_DEPTH}"));
    }
    let here = |s: &str| {
        if at.is_empty() {
            s.to_string()
        } else {
            format!("{at}.{s}")
        }
    };
    let obj = v.as_object().ok_or_else(|| {
        format!(
            "{}: not a GeoJSON object",
            if at.is_empty() { "top level" } else { at }
        )
    })?;
    let kind = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        format!(
            "{}: no \"type\"",
            if at.is_empty() { "top level" } else { at }
        )
    })?;
    match kind {
        "FeatureCollection" => {
            let fs = obj
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{}: no \"features\" array", here("features")))?;
            for (i, f) in fs.iter().enumerate() {
                collect(
                    f,
                    &here(&format!("features[{i}]")),
                    parts,
                    vertices,
                    depth + 1,
                )?;
            }
            Ok(())
        }
        "Feature" => match obj.get("geometry") {
            // A feature without a geometry holds no area.
            None | Some(Value::Null) => Ok(()),
            Some(g) => collect(g, &here("geometry"), parts, vertices, depth + 1),
        },
        "GeometryCollection" => {
            let gs = obj
                .get("geometries")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{}: no \"geometries\" array", here("geometries")))?;
            for (i, g) in gs.iter().enumerate() {
                collect(
                    g,
                    &here(&format!("geometries[{i}]")),
                    parts,
                    vertices,
                    depth + 1,
                )?;
            }
            Ok(())
        }
        "Polygon" => {
            let c = coordinates(obj, &here("coordinates"))?;
            parts.push(polygon(c, &here("coordinates"), vertices)?);
            bounded(parts)
        }
        "MultiPolygon" => {
            let at = here("coordinates");
            let c = coordinates(obj, &at)?;
            let polys = c
                .as_array()
                .ok_or_else(|| format!("{at}: not an array of polygons"))?;
            for (i, p) in polys.iter().enumerate() {
                parts.push(polygon(p, &format!("{at}[{i}]"), vertices)?);
                bounded(parts)?;
            }
            Ok(())
        }
        "Point" | "MultiPoint" | "LineString" | "MultiLineString" => Err(format!(
            "{}: a {kind} holds no area (give a Polygon or MultiPolygon)",
            if at.is_empty() { "top level" } else { at }
        )),
        other => Err(format!(
            "{}: unknown GeoJSON type \"{other}\"",
            if at.is_empty() { "top level" } else { at }
        )),
    }
}

fn bounded(parts: &Parts) -> Result<(), String> {
    if parts.len() > MAX_AREA_PARTS {
        return Err(format!("more than {MAX_AREA_PARTS} polygons"));
    }
    Ok(())
}

fn coordinates<'a>(obj: &'a serde_json::Map<String, Value>, at: &str) -> Result<&'a Value, String> {
    obj.get("coordinates")
        .ok_or_else(|| format!("{at}: missing"))
}

/// A Polygon's rings: the outer one, then the holes.
fn polygon(v: &Value, at: &str, vertices: &mut usize) -> Result<(Polygon, Vec<Polygon>), String> {
    let rings = v
        .as_array()
        .ok_or_else(|| format!("{at}: not an array of rings"))?;
    let mut out = Vec::with_capacity(rings.len());
    for (i, r) in rings.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let pos = r
            .as_array()
            .ok_or_else(|| format!("{at}: not an array of positions"))?;
        *vertices = vertices.saturating_add(pos.len());
        if *vertices > MAX_AREA_VERTICES {
            return Err(format!("more than {MAX_AREA_VERTICES} vertices"));
        }
        let mut ring = Vec::with_capacity(pos.len());
        for (j, p) in pos.iter().enumerate() {
            let xy = p.as_array().filter(|a| (2..=3).contains(&a.len()));
            let num = |k: usize| xy.and_then(|a| a.get(k)).and_then(Value::as_f64);
            match (num(0), num(1)) {
                (Some(lon), Some(lat)) => ring.push((lon, lat)),
                _ => return Err(format!("{at}[{j}]: not a position [lon, lat]")),
            }
        }
        out.push(Polygon::new(&ring).map_err(|e| format!("{at}: {e}"))?);
    }
    let mut rings = out.into_iter();
    let outer = rings
        .next()
        .ok_or_else(|| format!("{at}: a polygon needs an outer ring"))?;
    Ok((outer, rings.collect()))
}

#[cfg(feature = "encoders")]
/// A place a GeoJSON feature marks as an example (see [`parse_examples`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// A point: the stored item nearest to it.
    Point(crate::geo::Point),
    /// An area: every stored item inside it.
    Area(Area),
}

#[cfg(feature = "encoders")]
/// One example of a GeoJSON file: where it is in the file, its place, and its label
/// (`Some(true)` like, `Some(false)` unlike, `None` unlabelled).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPlace {
    /// The JSON path of its geometry (`features[2].geometry`), for messages.
    pub at: String,
    /// The place.
    pub place: Place,
    /// The feature's `label` property: `like` / `positive` / `true` / 1, or `unlike` /
    /// `negative` / `false` / 0.
    pub label: Option<bool>,
}

#[cfg(feature = "encoders")]
/// The examples of GeoJSON text: each Feature (or a bare geometry) is one example; a Point
/// is one place, a MultiPoint one place per point, a Polygon or MultiPolygon one area. A
/// feature's `label` property says which side it is on.
pub fn parse_examples(bytes: &[u8]) -> Result<Vec<LabelledPlace>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    let features: Vec<(String, &Value)> = match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => v
            .get("features")
            .and_then(Value::as_array)
            .ok_or("features: no \"features\" array")?
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("features[{i}]"), f))
            .collect(),
        _ => vec![(String::new(), &v)],
    };
    for (at, f) in features {
        let (geometry, label, gat) = if f.get("type").and_then(Value::as_str) == Some("Feature") {
            let label = f
                .get("properties")
                .and_then(|p| p.get("label"))
                .map(|l| {
                    read_label(l)
                        .ok_or_else(|| format!("{at}.properties.label: {l} is not like/unlike"))
                })
                .transpose()?;
            let gat = if at.is_empty() {
                "geometry".to_string()
            } else {
                format!("{at}.geometry")
            };
            (f.get("geometry").unwrap_or(&Value::Null), label, gat)
        } else {
            (
                f,
                None,
                if at.is_empty() {
                    "top level".to_string()
                } else {
                    at.clone()
                },
            )
        };
        if geometry.is_null() {
            continue;
        }
        let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
        let coord_at = format!("{gat}.coordinates");
        let point = |c: &Value, at: &str| -> Result<crate::geo::Point, String> {
            let xy = c.as_array().filter(|a| (2..=3).contains(&a.len()));
            let num = |k: usize| xy.and_then(|a| a.get(k)).and_then(Value::as_f64);
            let (Some(lon), Some(lat)) = (num(0), num(1)) else {
                return Err(format!("{at}: not a position [lon, lat]"));
            };
            crate::geo::Point::new(lat, lon).map_err(|e| format!("{at}: {e}"))
        };
        let coords = || {
            geometry
                .get("coordinates")
                .ok_or_else(|| format!("{coord_at}: missing"))
        };
        match kind {
            "Point" => out.push(LabelledPlace {
                at: gat.clone(),
                place: Place::Point(point(coords()?, &coord_at)?),
                label,
            }),
            "MultiPoint" => {
                let ps = coords()?
                    .as_array()
                    .ok_or_else(|| format!("{coord_at}: not an array of positions"))?;
                for (i, c) in ps.iter().enumerate() {
                    out.push(LabelledPlace {
                        at: format!("{coord_at}[{i}]"),
                        place: Place::Point(point(c, &format!("{coord_at}[{i}]"))?),
                        label,
                    });
                }
            }
            "Polygon" | "MultiPolygon" | "GeometryCollection" => {
                let mut parts = Vec::new();
                let mut vertices = 0;
                collect(geometry, &gat, &mut parts, &mut vertices, 1)?;
                let area = Area::new(parts).ok_or_else(|| format!("{gat}: no polygon"))?;
                out.push(LabelledPlace {
                    at: gat.clone(),
                    place: Place::Area(area),
                    label,
                });
            }
            other => {
                return Err(format!(
                    "{gat}: a {} is not an example (give Points or Polygons)",
                    if other.is_empty() {
                        "geometry without a \"type\""
                    } else {
                        other
                    }
                ))
            }
        }
        if out.len() > MAX_AREA_PARTS {
            return Err(format!("more than {MAX_AREA_PARTS} examples"));
        }
    }
    if out.is_empty() {
        return Err("no Point or Polygon in it".into());
    }
    Ok(out)
}

#[cfg(feature = "encoders")]
/// A `label` property: which side an example is on.
fn read_label(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "like" | "positive" | "pos" | "yes" | "1" | "true" => Some(true),
            "unlike" | "negative" | "neg" | "no" | "0" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Point;

    #[test]
    fn reads_what_qgis_writes() {
        let fc = r#"{"type":"FeatureCollection","name":"aoi","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},
          "features":[
            {"type":"Feature","properties":{"id":1},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]]}},
            {"type":"Feature","properties":{"id":2},"geometry":{"type":"Polygon","coordinates":[[[170,-5,12.5],[180,-5,0],[180,5,0],[170,5,0],[170,-5,0]]]}},
            {"type":"Feature","properties":{},"geometry":null}]}"#;
        let a = parse_area(fc.as_bytes()).unwrap();
        let p = |lat: f64, lon: f64| Point::new(lat, lon).unwrap();
        assert!(a.contains(p(1.0, 1.0)) && !a.contains(p(5.0, 5.0)) && a.contains(p(0.0, 175.0)));
        assert_eq!(a.parts().len(), 2);
    }

    #[test]
    fn errors_say_where() {
        for (text, want) in [
            ("{", "not JSON"),
            (
                r#"{"type":"Point","coordinates":[1,2]}"#,
                "a Point holds no area",
            ),
            (
                r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,"x"],[0,0]]]}"#,
                "coordinates[0][2]: not a position",
            ),
            (
                r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#,
                "coordinates[0]: polygon has 2 distinct vertices",
            ),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,95],[1,0],[1,1]]]}}]}"#,
                "features[0].geometry.coordinates[0]: latitude 95",
            ),
            (
                r#"{"type":"FeatureCollection","features":[]}"#,
                "no Polygon or MultiPolygon",
            ),
            (r#"{"type":"Blob"}"#, "unknown GeoJSON type"),
            (r#"[1,2]"#, "top level: not a GeoJSON object"),
        ] {
            let e = parse_area(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        let deep = format!(
            "{}{}",
            r#"{"type":"GeometryCollection","geometries":["#.repeat(40),
            "]}".repeat(40)
        );
        assert!(parse_area(deep.as_bytes()).unwrap_err().contains("deeper"));
    }

    #[test]
    fn examples_are_features_with_labels() {
        let fc = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{"label":"like"},"geometry":{"type":"Point","coordinates":[6.6,46.5]}},
            {"type":"Feature","properties":{"label":false},"geometry":{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}},
            {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
        let ex = parse_examples(fc.as_bytes()).unwrap();
        assert_eq!(ex.len(), 4);
        assert_eq!(ex[0].label, Some(true));
        assert_eq!(
            (ex[1].label, ex[2].label, ex[3].label),
            (Some(false), Some(false), None)
        );
        assert!(matches!(ex[3].place, Place::Area(_)));
        match &ex[2].place {
            Place::Point(p) => assert_eq!((p.lon(), p.lat()), (3.0, 4.0)),
            p => panic!("{p:?}"),
        }
        for (text, want) in [
            (
                r#"{"type":"Feature","properties":{"label":"maybe"},"geometry":{"type":"Point","coordinates":[0,0]}}"#,
                "properties.label",
            ),
            (
                r#"{"type":"Point","coordinates":[0,91]}"#,
                "coordinates: latitude 91",
            ),
            (
                r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#,
                "a LineString is not an example",
            ),
            (
                r#"{"type":"FeatureCollection","features":[]}"#,
                "no Point or Polygon",
            ),
        ] {
            let e = parse_examples(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
