//! Reader for point CSV files: a header naming at least `id`, `lat` and `lon`, and optionally
//! `time` (or `datetime`: unix seconds or an ISO 8601 date/time, see [`crate::time`]) and
//! `payload`. Other columns are ignored. Every row is validated; a bad row is an error naming
//! the file and line, never skipped silently.

use std::path::{Path, PathBuf};

use crate::geo::Point;

/// One validated row.
#[derive(Debug, Clone, PartialEq)]
pub struct PointRow {
    /// Its 1-based line in the file.
    pub line: u64,
    /// The user's id.
    pub id: u64,
    /// The validated location.
    pub point: Point,
    /// Optional UTC time, unix seconds.
    pub time: Option<i64>,
    /// Optional payload text.
    pub payload: Option<String>,
}

/// Why a point CSV could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The header lacks a required column.
    #[error("{path}: header has no '{column}' column (need at least id,lat,lon)")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// A row is malformed.
    #[error("{path}:{line}: {what}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        what: String,
    },
}

/// Streams validated rows from a point CSV.
pub struct PointsReader<R: std::io::Read> {
    path: PathBuf,
    records: csv::StringRecordsIntoIter<R>,
    cols: Columns,
    /// Fields in the header.
    width: usize,
}

/// The names each column may go by (the first is the one messages use).
const ALIASES: &[&[&str]; 5] = &[
    &["id"],
    &["lat", "latitude"],
    &["lon", "lng", "longitude"],
    &["time", "datetime", "timestamp"],
    &["payload"],
];

#[derive(Debug, Clone, Copy)]
struct Columns {
    id: usize,
    lat: usize,
    lon: usize,
    time: Option<usize>,
    payload: Option<usize>,
}

impl PointsReader<crate::io::text::Guarded<std::fs::File>> {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let file = crate::io::input::open(path).map_err(|source| CsvError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        PointsReader::new(file, path)
    }
}

impl<R: std::io::Read> PointsReader<crate::io::text::Guarded<R>> {
    /// Reads from any reader (a UTF-8 byte-order mark at the start is dropped; lines are
    /// at most [`crate::io::text::MAX_LINE_BYTES`]); `path` is used in error messages only.
    pub fn new(reader: R, path: &Path) -> Result<Self, CsvError> {
        let reader = crate::io::text::guarded_tracked(reader, crate::io::text::MAX_LINE_BYTES)
            .map_err(|source| CsvError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        let headers = rdr.headers().map_err(|e| CsvError::Row {
            path: path.to_path_buf(),
            line: 1,
            what: format!("unreadable header: {e}"),
        })?;
        if let Some(why) = crate::io::text::repeated_column(headers, ALIASES) {
            return Err(CsvError::Row {
                path: path.to_path_buf(),
                line: 1,
                what: why,
            });
        }
        let find = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
        };
        let need = |names: &[&'static str]| {
            find(names).ok_or(CsvError::MissingColumn {
                path: path.to_path_buf(),
                column: names[0],
            })
        };
        let [id, lat, lon, time, payload] = ALIASES;
        let cols = Columns {
            id: need(id)?,
            lat: need(lat)?,
            lon: need(lon)?,
            time: find(time),
            payload: find(payload),
        };
        let width = headers.len();
        Ok(PointsReader {
            path: path.to_path_buf(),
            records: rdr.into_records(),
            cols,
            width,
        })
    }
}

impl<R: std::io::Read> Iterator for PointsReader<crate::io::text::Guarded<R>> {
    type Item = Result<PointRow, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rec = self.records.next()?;
        let path = &self.path;
        let input = self.records.reader().get_ref();
        let line_of = |p: &csv::Position| crate::io::text::physical_line(input, p);
        Some(
            rec.map_err(|e| match e.position().map(line_of) {
                Some(line) => CsvError::Row {
                    path: path.clone(),
                    line,
                    what: e.to_string(),
                },
                None => {
                    let what = e.to_string();
                    match e.into_kind() {
                        csv::ErrorKind::Io(source) => CsvError::Io {
                            path: path.clone(),
                            source,
                        },
                        _ => CsvError::Row {
                            path: path.clone(),
                            line: 0,
                            what,
                        },
                    }
                }
            })
            .and_then(|rec| {
                let line = rec.position().map_or(0, line_of);
                let bad = |what: String| CsvError::Row {
                    path: path.clone(),
                    line,
                    what,
                };
                if let Some(why) = crate::io::text::record_problem(&rec, self.width) {
                    return Err(bad(why));
                }
                let field = |i: usize, name: &str| {
                    rec.get(i)
                        .map(str::trim)
                        .ok_or_else(|| bad(format!("row has no '{name}' field")))
                };
                let id_s = field(self.cols.id, "id")?;
                let id = id_s
                    .parse::<u64>()
                    .map_err(|_| bad(format!("id {id_s:?} is not an unsigned integer")))?;
                let num = |i, name| -> Result<f64, CsvError> {
                    let s = field(i, name)?;
                    s.parse::<f64>()
                        .map_err(|_| bad(format!("{name} {s:?} is not a number")))
                };
                let point = Point::new(num(self.cols.lat, "lat")?, num(self.cols.lon, "lon")?)
                    .map_err(|e| bad(e.to_string()))?;
                let time = match self.cols.time.and_then(|i| rec.get(i)).map(str::trim) {
                    None | Some("") => None,
                    Some(s) => Some(crate::time::parse(s).map_err(|e| bad(e.to_string()))?),
                };
                let payload = self
                    .cols
                    .payload
                    .and_then(|i| rec.get(i))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                Ok(PointRow {
                    line,
                    id,
                    point,
                    time,
                    payload,
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<PointRow>, CsvError> {
        PointsReader::new(text.as_bytes(), Path::new("t.csv"))?.collect()
    }

    #[test]
    fn reads_required_and_optional_columns() {
        let rows = read(
            "id,lat,lon,name,time,payload\n0,42.5,1.6,\"El, Tarter\",2020-01-02,tile/1\n7,-10,190,x,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, 0);
        assert_eq!(rows[0].time, Some(1_577_923_200));
        assert_eq!(rows[0].payload.as_deref(), Some("tile/1"));
        assert_eq!(rows[1].point.lon(), -170.0);
        assert_eq!(rows[1].time, None);
    }

    #[test]
    fn bad_rows_name_the_line() {
        let e = read("id,lat,lon\n1,2,3\n2,91,0\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3") && e.contains("latitude"), "{e}");
        let e = read("id,lat,lon\nx,2,3\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:2") && e.contains("id"), "{e}");
        let e = read("id,lat,lon\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("lon"), "{e}");
        let e = read("id,lat,lon\n1,2,NaN\n").unwrap_err().to_string();
        assert!(e.contains("longitude"), "{e}");
        assert!(matches!(
            read("id,lon\n1,2\n"),
            Err(CsvError::MissingColumn { column: "lat", .. })
        ));
    }

    #[test]
    fn line_numbers_are_the_lines_an_editor_shows() {
        // The bad row is on physical line 4 whatever the line ends, blank lines or a
        // byte-order mark before it.
        for text in [
            "id,lat,lon\n1,1,1\n2,2,2\n3,95,1\n",
            "id,lat,lon\r\n1,1,1\r\n2,2,2\r\n3,95,1\r\n",
            "id,lat,lon\r1,1,1\r2,2,2\r3,95,1\r",
            "id,lat,lon\n1,1,1\n\n3,95,1\n",
            "id,lat,lon\r\n\r\n\r\n3,95,1\r\n",
            "\u{feff}id,lat,lon\n1,1,1\n2,2,2\n3,95,1\n",
        ] {
            let e = read(text).unwrap_err().to_string();
            assert!(
                e.contains("t.csv:4") && e.contains("latitude"),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn a_column_named_twice_is_refused() {
        for header in [
            "id,lat,lon,lat",
            "id,latitude,lon,lat",
            "ID,lat,lon,id",
            "id,lat,lng,longitude",
        ] {
            let e = read(&format!("{header}\n1,2,3,4\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("t.csv:1") && e.contains("both name"),
                "{header}: {e}"
            );
        }
        // Unknown columns may repeat a known name's neighbour without harm.
        assert!(read("id,lat,lon,note,note2\n1,2,3,a,b\n").is_ok());
    }
}
