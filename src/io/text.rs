//! Text inputs (CSV, JSONL, caption lists) read with two guards: a UTF-8 byte-order mark at
//! the start is dropped, and no line may be longer than [`MAX_LINE_BYTES`] (a longer line
//! is an error naming it, instead of an attempt to hold it in memory).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The longest line a text input may have: 16 MiB (a 4096-dimension vector written as JSON
/// takes about 100 KiB).
pub const MAX_LINE_BYTES: usize = 16 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A reader that fails once a line grows beyond its limit.
#[derive(Debug)]
pub struct LineLimit<R> {
    inner: R,
    max: usize,
    line: u64,
    len: usize,
    failed: bool,
}

impl<R: Read> LineLimit<R> {
    /// Wraps `inner`, allowing lines of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> LineLimit<R> {
        LineLimit {
            inner,
            max,
            line: 1,
            len: 0,
            failed: false,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let too_long = |s: &Self| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {} is longer than {} bytes", s.line, s.max),
            )
        };
        if self.failed {
            return Err(too_long(self));
        }
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line += 1;
                self.len = 0;
            } else {
                self.len += 1;
                if self.len > self.max {
                    self.failed = true;
                    return Err(too_long(self));
                }
            }
        }
        Ok(n)
    }
}

/// A guarded text input: buffered, BOM dropped, lines bounded.
pub type Guarded<R> = BufReader<LineLimit<R>>;

/// A buffered reader over `reader` with the guards (BOM dropped, lines bounded by `max`).
pub fn guarded<R: Read>(reader: R, max: usize) -> std::io::Result<Guarded<R>> {
    let mut r = BufReader::new(LineLimit::new(reader, max));
    let head = r.fill_buf()?;
    if head.starts_with(BOM) {
        r.consume(BOM.len());
    }
    Ok(r)
}

/// Opens `path` as a guarded text input (lines of at most [`MAX_LINE_BYTES`]).
pub fn open(path: &Path) -> std::io::Result<Guarded<File>> {
    guarded(super::input::open(path)?, MAX_LINE_BYTES)
}

/// The lines of a guarded input, each with its 1-based number; a line that is not UTF-8
/// or too long is an error naming it.
pub fn lines<R: BufRead>(r: R) -> impl Iterator<Item = (u64, std::io::Result<String>)> {
    r.lines().enumerate().map(|(i, l)| (i as u64 + 1, l))
}

/// A CSV file with a header row over the guarded input: fields trimmed, rows may be
/// shorter than the header (missing optional fields). Each row is named `FILE line N`;
/// rows that [`record_problem`] refuses, or that the reader cannot parse, are reported
/// with that name and reading goes on.
#[cfg(feature = "encoders")]
pub struct CsvTable {
    path: std::path::PathBuf,
    header: csv::StringRecord,
    reader: csv::Reader<Guarded<File>>,
}

#[cfg(feature = "encoders")]
impl CsvTable {
    /// Opens `path` and reads its header; the error is one line naming the file.
    pub fn open(path: &Path) -> Result<CsvTable, String> {
        let file = open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(file);
        let header = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .clone();
        Ok(CsvTable {
            path: path.to_path_buf(),
            header,
            reader,
        })
    }

    /// The index of the column named `name` (ASCII case ignored).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.eq_ignore_ascii_case(name))
    }

    /// Calls `row` with each record and its name (`FILE line N`); a record that cannot be
    /// read, has a [`record_problem`] or that `row` refuses (`Err(why)`) is returned in the
    /// list of `(name, why)`. An I/O error (or a line over the limit) ends the reading: the
    /// rest of the file cannot be read, so it is the error.
    pub fn rows(
        mut self,
        mut row: impl FnMut(&str, &csv::StringRecord) -> Result<(), String>,
    ) -> Result<Vec<(String, String)>, String> {
        let file = self.path.display().to_string();
        let mut bad = Vec::new();
        for rec in self.reader.records() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => match e.position() {
                    Some(p) => {
                        bad.push((format!("{file} line {}", p.line()), e.to_string()));
                        continue;
                    }
                    None => return Err(format!("{file}: {e}")),
                },
            };
            let name = format!("{file} line {}", rec.position().map_or(0, |p| p.line()));
            let verdict = match record_problem(&rec, self.header.len()) {
                Some(why) => Err(why),
                None => row(&name, &rec),
            };
            if let Err(why) = verdict {
                bad.push((name, why));
            }
        }
        Ok(bad)
    }
}

/// What is wrong with a record of a CSV whose header has `columns` fields, if anything:
/// more fields than the header (an unquoted comma: the rest would be dropped), or a field
/// that runs over several lines (an unterminated quote swallows the rest of the file).
pub fn record_problem(rec: &csv::StringRecord, columns: usize) -> Option<String> {
    if rec.len() > columns {
        return Some(format!(
            "{} fields, the header has {columns} (quote a field that holds a comma)",
            rec.len()
        ));
    }
    if rec.iter().any(|f| f.contains('\n') || f.contains('\r')) {
        return Some("a field runs over several lines (an unterminated quote?)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], max: usize) -> Result<Vec<String>, String> {
        let r = guarded(bytes, max).map_err(|e| e.to_string())?;
        lines(r)
            .map(|(_, l)| l.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn drops_the_bom_and_bounds_lines() {
        assert_eq!(read(b"\xEF\xBB\xBFid,lat\n1,2\n", 16).unwrap(), ["id,lat", "1,2"]);
        let e = read(b"ok\n0123456789abcdefX\n", 16).unwrap_err();
        assert!(e.contains("line 2 is longer than 16 bytes"), "{e}");
        // Exactly the limit is fine; a BOM later in the file is kept.
        assert_eq!(
            read(b"0123456789abcdef\n\xEF\xBB\xBFx\n", 16).unwrap(),
            ["0123456789abcdef", "\u{feff}x"]
        );
        // The error sticks: a reader that goes on gets no data from past the long line.
        let mut r = LineLimit::new(&b"0123456789abcdefX\nok\n"[..], 16);
        let mut buf = [0u8; 4];
        assert!(r.read(&mut buf).is_ok(), "the first 4 bytes are within the limit");
        let mut rest = Vec::new();
        assert!(r.read_to_end(&mut rest).is_err());
        assert!(r.read(&mut buf).is_err());
    }
}
