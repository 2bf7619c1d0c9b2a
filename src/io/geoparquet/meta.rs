//! Which columns of a Parquet file are read, and the checks of its schema and metadata
//! (`geo`, `sat2cap`) before any row is read.

use std::path::Path;

use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::read::Columns;
use super::source_file::SourceFile;
use super::{col, GeoParquetError, Sat2capMeta, GEO_KEY, SAT2CAP_KEY};

/// The vector column's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VectorKind {
    F16,
    F32,
    F64,
}

/// The vector column.
#[derive(Debug, Clone)]
pub(super) struct VectorCol {
    pub name: String,
    pub kind: VectorKind,
    /// The width of a fixed-size list.
    pub fixed: Option<usize>,
}

/// Where a row's place comes from.
#[derive(Debug, Clone)]
pub(super) enum Place {
    /// The WKB geometry column of this name (with `lon` / `lat` for polygons or nulls, when
    /// the file has them).
    Wkb(String),
    /// The `lon` / `lat` columns.
    LonLat,
}

/// The columns read.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub vector: VectorCol,
    pub id: Option<String>,
    pub time: Option<String>,
    pub payload: Option<String>,
    pub lonlat: Option<(String, String)>,
    pub place: Place,
    pub ignored: Vec<String>,
}

/// What the `geo` metadata says about the primary geometry column.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GeoInfo {
    pub primary: String,
    /// The bbox covering column, when named.
    pub covering: Option<String>,
}

impl Layout {
    /// The names of the columns read.
    pub fn names(&self) -> Vec<&str> {
        let mut n = vec![self.vector.name.as_str()];
        n.extend(self.id.as_deref());
        n.extend(self.time.as_deref());
        n.extend(self.payload.as_deref());
        if let Some((a, b)) = &self.lonlat {
            n.extend([a.as_str(), b.as_str()]);
        }
        if let Place::Wkb(g) = &self.place {
            n.push(g);
        }
        n
    }

    /// Checks the schema and metadata of the file in `b` against `cols`.
    pub fn of(
        path: &Path,
        b: &ParquetRecordBatchReaderBuilder<SourceFile>,
        cols: &Columns,
    ) -> Result<(Layout, Option<Sat2capMeta>), GeoParquetError> {
        let err = |m: String| GeoParquetError::input(format!("{}: {m}", path.display()));
        let schema = b.schema();
        let kv = b.metadata().file_metadata().key_value_metadata();
        let value = |key: &str| {
            kv.and_then(|kv| kv.iter().find(|k| k.key == key))
                .and_then(|k| k.value.as_deref())
        };
        let meta = value(SAT2CAP_KEY)
            .map(|t| {
                Sat2capMeta::parse(t)
                    .map_err(|e| err(format!("metadata '{SAT2CAP_KEY}' is not sat2cap's: {e}")))
            })
            .transpose()?;
        let geo = value(GEO_KEY)
            .map(|t| check_geo(t).map_err(|e| err(format!("metadata '{GEO_KEY}': {e}"))))
            .transpose()?;
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let has = |n: &str| names.contains(&n);
        let listed = || {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };

        // The vectors.
        let vector = match &cols.vector {
            Some(n) if has(n) => n.clone(),
            Some(n) => {
                return Err(err(format!(
                    "no column '{n}' (--vector-column); the columns are: {}",
                    listed()
                )))
            }
            None => {
                let from_meta = meta.as_ref().map(|m| m.embedding.column.as_str());
                match from_meta
                    .into_iter()
                    .chain([col::EMBEDDING, "vector"])
                    .find(|n| has(n))
                {
                    Some(n) => n.to_string(),
                    None => {
                        return Err(err(format!(
                            "no column 'embedding' (nor 'vector') holding the vectors \
                             (--vector-column names another); the columns are: {}",
                            listed()
                        )))
                    }
                }
            }
        };
        let vector = vector_col(schema, &vector).map_err(err)?;

        // id, time, payload: named ones must exist, default ones may be absent.
        let pick = |given: &Option<String>, default: &str, flag: &str| match given {
            Some(n) if has(n) => Ok(Some(n.clone())),
            Some(n) => Err(err(format!(
                "no column '{n}' ({flag}); the columns are: {}",
                listed()
            ))),
            None => Ok(has(default).then(|| default.to_string())),
        };
        let id = pick(&cols.id, col::ID, "--id-column")?;
        let time = pick(&cols.time, col::TIME, "--time-column")?;
        let payload = pick(&cols.payload, col::PAYLOAD, "--payload-column")?;
        let type_of = |n: &str| {
            schema
                .field_with_name(n)
                .map(|f| f.data_type().clone())
                .ok()
        };
        if let Some(n) = &id {
            let t = type_of(n);
            if !t.as_ref().is_some_and(DataType::is_integer) {
                return Err(err(format!(
                    "column '{n}' is {}; ids are integers (--id-column names another)",
                    shown(t)
                )));
            }
        }
        if let Some(n) = &time {
            let t = type_of(n);
            let ok = matches!(
                t,
                Some(DataType::Timestamp(..) | DataType::Date32 | DataType::Date64)
                    | Some(DataType::Int64 | DataType::Int32)
            );
            if !ok {
                return Err(err(format!(
                    "column '{n}' is {}; times are timestamps, dates or integer unix \
                     seconds (--time-column names another)",
                    shown(t)
                )));
            }
        }
        if let Some(n) = &payload {
            let t = type_of(n);
            let ok = matches!(
                t,
                Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            );
            if !ok {
                return Err(err(format!(
                    "column '{n}' is {}; payloads are strings (--payload-column names \
                     another)",
                    shown(t)
                )));
            }
        }

        // The place.
        let is_float = |n: &str| matches!(type_of(n), Some(DataType::Float32 | DataType::Float64));
        let lonlat = [(col::LON, col::LAT), ("longitude", "latitude")]
            .into_iter()
            .find(|(x, y)| is_float(x) && is_float(y))
            .map(|(x, y)| (x.to_string(), y.to_string()));
        let geometry = match &geo {
            Some(g) => Some(g.primary.clone()),
            None => has(col::GEOMETRY).then(|| col::GEOMETRY.to_string()),
        };
        let place = match geometry {
            Some(g) => {
                let t = type_of(&g);
                if !matches!(
                    t,
                    Some(DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
                ) {
                    return Err(err(format!(
                        "geometry column '{g}' is {}; it must hold WKB (binary)",
                        shown(t)
                    )));
                }
                Place::Wkb(g)
            }
            None if lonlat.is_some() => Place::LonLat,
            None => {
                return Err(err(format!(
                    "no place: neither a WKB geometry column (GeoParquet 'geo' metadata, or a \
                     column 'geometry') nor 'lon' / 'lat' columns of floats; the columns \
                     are: {}",
                    listed()
                )))
            }
        };
        let mut layout = Layout {
            vector,
            id,
            time,
            payload,
            lonlat,
            place,
            ignored: Vec::new(),
        };
        let covering = geo.and_then(|g| g.covering);
        let used: Vec<String> = layout.names().iter().map(|s| s.to_string()).collect();
        layout.ignored = names
            .iter()
            .filter(|n| !used.iter().any(|u| u == *n) && covering.as_deref() != Some(**n))
            .map(|n| n.to_string())
            .collect();
        Ok((layout, meta))
    }
}

fn shown(t: Option<DataType>) -> String {
    t.map_or_else(|| "missing".to_string(), |t| format!("of type {t}"))
}

fn vector_col(schema: &Schema, name: &str) -> Result<VectorCol, String> {
    let t = schema
        .field_with_name(name)
        .map(|f| f.data_type().clone())
        .map_err(|e| e.to_string())?;
    let (element, fixed) = match &t {
        DataType::FixedSizeList(f, n) => (f.data_type(), Some((*n).max(0) as usize)),
        DataType::List(f) | DataType::LargeList(f) => (f.data_type(), None),
        _ => {
            return Err(format!(
                "column '{name}' is of type {t}; vectors are lists of float16, float32 or \
                 float64 (--vector-column names another)"
            ))
        }
    };
    let kind = match element {
        DataType::Float16 => VectorKind::F16,
        DataType::Float32 => VectorKind::F32,
        DataType::Float64 => VectorKind::F64,
        e => {
            return Err(format!(
                "column '{name}' is a list of {e}; vectors are lists of float16, float32 or \
                 float64"
            ))
        }
    };
    Ok(VectorCol {
        name: name.to_string(),
        kind,
        fixed,
    })
}

/// Reads the GeoParquet metadata: the primary column, which must be WKB in longitude /
/// latitude (no `crs`, a null one, or OGC:CRS84 / EPSG:4326 and their 3-D forms).
pub(super) fn check_geo(text: &str) -> Result<GeoInfo, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let primary = v
        .get("primary_column")
        .and_then(|p| p.as_str())
        .ok_or("no 'primary_column'")?
        .to_string();
    let c = v
        .get("columns")
        .and_then(|c| c.get(&primary))
        .ok_or_else(|| format!("no 'columns.{primary}'"))?;
    let encoding = c.get("encoding").and_then(|e| e.as_str()).unwrap_or("");
    if !encoding.eq_ignore_ascii_case("wkb") {
        return Err(format!(
            "geometry column '{primary}' has encoding '{encoding}'; only WKB is read \
             (geopandas: to_parquet(..., geometry_encoding='WKB'); GDAL: -lco \
             GEOMETRY_ENCODING=WKB)"
        ));
    }
    match c.get("crs") {
        None | Some(serde_json::Value::Null) => {}
        Some(crs) => {
            if !is_lon_lat(crs) {
                let name = crs
                    .get("name")
                    .and_then(|n| n.as_str())
                    .or_else(|| crs.as_str())
                    .unwrap_or("(unnamed)");
                let name: String = name.chars().take(80).collect();
                return Err(format!(
                    "geometry column '{primary}' is in the CRS '{name}', not longitude / \
                     latitude on WGS 84 (OGC:CRS84 or EPSG:4326): reproject it first \
                     (geopandas: gdf.to_crs(4326); GDAL: ogr2ogr -t_srs EPSG:4326)"
                ));
            }
        }
    }
    let covering = c
        .pointer("/covering/bbox/xmin/0")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    Ok(GeoInfo { primary, covering })
}

/// Whether a PROJJSON (or, as GeoParquet 0.x wrote, WKT) CRS is longitude / latitude on
/// WGS 84.
fn is_lon_lat(crs: &serde_json::Value) -> bool {
    if let Some(wkt) = crs.as_str() {
        return wkt.contains("CRS84") || wkt.contains("\"EPSG\",4326]");
    }
    let Some(id) = crs.get("id") else {
        return false;
    };
    let authority = id.get("authority").and_then(|a| a.as_str()).unwrap_or("");
    let code = match id.get("code") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    matches!(
        (authority.to_ascii_uppercase().as_str(), code.as_str()),
        ("OGC", "CRS84" | "CRS84h") | ("EPSG", "4326" | "4979")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_metadata() {
        let ok = r#"{"version":"1.1.0","primary_column":"g","columns":{"g":{"encoding":"WKB",
            "covering":{"bbox":{"xmin":["bb","xmin"]}}}}}"#;
        assert_eq!(
            check_geo(ok),
            Ok(GeoInfo {
                primary: "g".into(),
                covering: Some("bb".into())
            })
        );
        let crs = |c: &str| {
            check_geo(&format!(
                r#"{{"primary_column":"g","columns":{{"g":{{"encoding":"WKB","crs":{c}}}}}}}"#
            ))
        };
        assert!(crs(r#"{"id":{"authority":"EPSG","code":4326}}"#).is_ok());
        assert!(crs(r#"{"id":{"authority":"OGC","code":"CRS84"}}"#).is_ok());
        assert!(crs("null").is_ok());
        let e = crs(r#"{"name":"WGS 84 / UTM zone 32N","id":{"authority":"EPSG","code":32632}}"#)
            .unwrap_err();
        assert!(
            e.contains("UTM zone 32N") && e.contains("to_crs(4326)"),
            "{e}"
        );
        let e = check_geo(r#"{"primary_column":"g","columns":{"g":{"encoding":"point"}}}"#)
            .unwrap_err();
        assert!(e.contains("encoding 'point'"), "{e}");
        assert!(check_geo("[]").unwrap_err().contains("primary_column"));
        assert!(check_geo("{").unwrap_err().contains("not JSON"));
    }
}
