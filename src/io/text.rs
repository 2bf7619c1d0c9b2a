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

/// `message` on one line: a line break or other control character in it (a path given
/// with one, a column name or a generated caption) is written escaped, so that an error or
/// a caption is always one line and never sends a terminal escape sequence.
pub fn one_line(message: &str) -> String {
    if !message.chars().any(char::is_control) {
        return message.to_string();
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A reader that fails once a line grows beyond its limit, and that can say on which
/// physical line a byte of its input lies: a line ends at `\n`, at `\r\n` or at a lone
/// `\r` (files from old Mac tools), so the numbers are the ones an editor shows.
#[derive(Debug)]
pub struct LineLimit<R> {
    inner: R,
    max: usize,
    line: u64,
    len: usize,
    failed: bool,
    /// Bytes read so far.
    pos: u64,
    /// Whether the last byte read was `\r` (a `\n` right after it ends no second line).
    after_cr: bool,
    /// The lines read ahead of the last question, when tracked ([`LineLimit::track_lines`]).
    lines: Option<std::cell::RefCell<Lines>>,
    /// Bytes dropped before the reader's consumer saw any (a byte-order mark).
    dropped: u64,
}

/// One physical line: where it starts and where its terminator starts (`None` until read).
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    start: u64,
    end: Option<u64>,
}

impl Line {
    fn blank(&self) -> bool {
        self.end == Some(self.start)
    }
}

/// The line holding the last answer, and the lines read after it.
#[derive(Debug, Default)]
struct Lines {
    /// Lines before `current`.
    before: u64,
    current: Line,
    ahead: std::collections::VecDeque<Line>,
}

impl Lines {
    /// The line being read.
    fn open(&mut self) -> &mut Line {
        match self.ahead.back_mut() {
            Some(l) => l,
            None => &mut self.current,
        }
    }

    fn end_open(&mut self, at: u64) {
        let l = self.open();
        l.end.get_or_insert(at);
    }

    fn advance(&mut self) -> bool {
        match self.ahead.pop_front() {
            Some(l) => {
                self.current = l;
                self.before += 1;
                true
            }
            None => false,
        }
    }
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
            pos: 0,
            after_cr: false,
            lines: None,
            dropped: 0,
        }
    }

    /// Keeps the lines from here on, for [`LineLimit::line_at`]. The lines read ahead of
    /// the last question are held (a buffer's worth for a reader that asks as it goes), so
    /// only a caller that asks should turn this on.
    pub fn track_lines(&mut self) {
        self.lines = Some(Default::default());
    }

    /// The 1-based physical line of the first byte at or after `offset` (of what the
    /// consumer read, after a dropped byte-order mark) that is neither a line break nor on
    /// a blank line: where a record that a CSV reader says starts at `offset` really
    /// starts. Questions must come in increasing order of offset (records are read in
    /// order); without [`LineLimit::track_lines`] it is 0.
    pub fn line_at(&self, offset: u64) -> u64 {
        let Some(lines) = &self.lines else {
            return 0;
        };
        let offset = offset.saturating_add(self.dropped);
        let mut l = lines.borrow_mut();
        while l.ahead.front().is_some_and(|next| next.start <= offset) {
            l.advance();
        }
        let in_content = !l.current.blank() && l.current.end.is_none_or(|end| offset < end);
        if !in_content {
            while l.advance() && l.current.blank() {}
        }
        l.before + 1
    }

    fn track(&mut self, b: u8, at: u64) {
        let Some(lines) = &mut self.lines else {
            return;
        };
        let lines = lines.get_mut();
        if self.after_cr {
            // The line after a `\r` starts past a `\n` that follows it, else here.
            let start = if b == b'\n' { at + 1 } else { at };
            lines.ahead.push_back(Line { start, end: None });
            if b == b'\n' {
                return;
            }
        }
        match b {
            b'\r' => lines.end_open(at),
            b'\n' => {
                lines.end_open(at);
                lines.ahead.push_back(Line {
                    start: at + 1,
                    end: None,
                });
            }
            _ => {}
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
        let mut at = 0;
        // From line break to line break (found a word at a time), not byte by byte.
        while at < n {
            let rest = &buf[at..n];
            let next = memchr::memchr2(b'\n', b'\r', rest);
            let run = next.unwrap_or(rest.len());
            if run > 0 {
                // Bytes that are not line breaks: the line grows; after a lone `\r` a new
                // line starts at the first of them.
                if self.after_cr {
                    self.track(rest[0], self.pos + at as u64);
                }
                self.after_cr = false;
                self.len += run;
                if self.len > self.max {
                    self.failed = true;
                    return Err(too_long(self));
                }
            }
            let Some(i) = next else { break };
            let b = rest[i];
            let offset = self.pos + (at + i) as u64;
            self.track(b, offset);
            let ends = b == b'\r' || !self.after_cr;
            self.after_cr = b == b'\r';
            if ends {
                self.line += 1;
            }
            self.len = 0;
            at += i + 1;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A guarded text input: buffered, BOM dropped, lines bounded.
pub type Guarded<R> = BufReader<LineLimit<R>>;

/// A buffered reader over `reader` with the guards (BOM dropped, lines bounded by `max`).
pub fn guarded<R: Read>(reader: R, max: usize) -> std::io::Result<Guarded<R>> {
    guard(LineLimit::new(reader, max))
}

/// [`guarded`], keeping line starts so that [`physical_line`] can number a CSV record.
pub fn guarded_tracked<R: Read>(reader: R, max: usize) -> std::io::Result<Guarded<R>> {
    let mut limit = LineLimit::new(reader, max);
    limit.track_lines();
    guard(limit)
}

/// The read size of a guarded input: a query line of a 384-dimensional vector is about
/// 8 kB, so std's 8 KiB default would make a system call (and a short read) per line.
const READ_BYTES: usize = 32 << 10;

fn guard<R: Read>(lines: LineLimit<R>) -> std::io::Result<Guarded<R>> {
    let mut r = BufReader::with_capacity(READ_BYTES, lines);
    let head = r.fill_buf()?;
    if head.starts_with(BOM) {
        r.consume(BOM.len());
        r.get_mut().dropped = BOM.len() as u64;
    }
    Ok(r)
}

/// The physical line of a CSV position over a tracked guarded input
/// ([`guarded_tracked`]): the csv crate counts lines its own way (`\r\n` and blank lines
/// throw it off), so the byte offset is mapped back to the line an editor shows.
pub fn physical_line<R: Read>(input: &Guarded<R>, pos: &csv::Position) -> u64 {
    input.get_ref().line_at(pos.byte())
}

/// Opens `path` as a guarded text input (lines of at most [`MAX_LINE_BYTES`]).
pub fn open(path: &Path) -> std::io::Result<Guarded<File>> {
    guarded(super::input::open(path)?, MAX_LINE_BYTES)
}

/// The lines of a guarded input, each with its 1-based number; a line ends at `\n`, at
/// `\r\n` or at a lone `\r` (so the numbers are the ones an editor shows), and a line that
/// is not UTF-8 or too long is an error naming it (reading stops after an I/O error).
pub fn lines<R: BufRead>(r: R) -> impl Iterator<Item = (u64, std::io::Result<String>)> {
    let mut r = r;
    let mut no = 0u64;
    let mut done = false;
    // Lines of a file tend to be alike: each starts with room for the one before it (a line
    // no longer than that is not regrown and copied as it arrives in pieces).
    let mut last = 0usize;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut line = Vec::with_capacity(last);
        let ended = loop {
            let buf = match r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    done = true;
                    no += 1;
                    return Some((no, Err(e)));
                }
            };
            if buf.is_empty() {
                break false;
            }
            match memchr::memchr2(b'\n', b'\r', buf) {
                Some(i) => {
                    line.extend_from_slice(&buf[..i]);
                    let cr = buf[i] == b'\r';
                    r.consume(i + 1);
                    if cr {
                        // `\r\n` is one line end.
                        if let Ok(b) = r.fill_buf() {
                            if b.first() == Some(&b'\n') {
                                r.consume(1);
                            }
                        }
                    }
                    break true;
                }
                None => {
                    let n = buf.len();
                    line.extend_from_slice(buf);
                    r.consume(n);
                }
            }
        };
        if !ended && line.is_empty() {
            return None;
        }
        no += 1;
        last = line.len().min(1 << 20);
        let text = String::from_utf8(line).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        });
        Some((no, text))
    })
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
        let file = super::input::open(path)
            .and_then(|f| guarded_tracked(f, MAX_LINE_BYTES))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(file);
        let header = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .clone();
        if let Some(why) = repeated_column(&header, &[]) {
            return Err(format!("{}: line 1: {why}", path.display()));
        }
        Ok(CsvTable {
            path: path.to_path_buf(),
            header,
            reader,
        })
    }

    /// The index of the column named `name` (ASCII case ignored).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
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
        let mut rec = csv::StringRecord::new();
        loop {
            let line = |r: &csv::Reader<Guarded<File>>, p: Option<&csv::Position>| {
                p.map_or(0, |p| physical_line(r.get_ref(), p))
            };
            match self.reader.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => match e.position() {
                    Some(p) => {
                        let n = line(&self.reader, Some(p));
                        bad.push((format!("{file} line {n}"), e.to_string()));
                        continue;
                    }
                    None => return Err(format!("{file}: {e}")),
                },
            }
            let name = format!("{file} line {}", line(&self.reader, rec.position()));
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

/// A header that names one column twice: two fields of the same name (ASCII case
/// ignored), or two of the names in one of `aliases` (say `lat` and `latitude`). Which one
/// a reader would take is a guess, so it is refused.
pub fn repeated_column(header: &csv::StringRecord, aliases: &[&[&str]]) -> Option<String> {
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let group = |n: &str| -> String {
        aliases
            .iter()
            .find(|g| g.iter().any(|a| a.eq_ignore_ascii_case(n)))
            .map_or_else(|| n.to_string(), |g| g[0].to_string())
    };
    for (j, b) in names.iter().enumerate() {
        if let Some(i) = names[..j]
            .iter()
            .position(|a| !a.is_empty() && group(a) == group(b))
        {
            return Some(format!(
                "columns {} ('{}') and {} ('{}') both name the column '{}'",
                i + 1,
                header.get(i).unwrap_or("").trim(),
                j + 1,
                header.get(j).unwrap_or("").trim(),
                group(b)
            ));
        }
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
    fn lines_end_at_lf_crlf_and_lone_cr() {
        for text in [
            &b"a\nb\nc"[..],
            b"a\r\nb\r\nc\r\n",
            b"a\rb\rc\r",
            b"a\nb\r\nc\n",
        ] {
            let got: Vec<(u64, String)> = lines(guarded(text, 16).unwrap())
                .map(|(n, l)| (n, l.unwrap()))
                .collect();
            let want = [(1, "a"), (2, "b"), (3, "c")].map(|(n, l)| (n, l.to_string()));
            assert_eq!(got, want, "{text:?}");
        }
        // Blank lines count; a lone CR then LF is one end, LF then CR two.
        let got: Vec<String> = lines(guarded(&b"a\n\nb\n\rc"[..], 16).unwrap())
            .map(|(_, l)| l.unwrap())
            .collect();
        assert_eq!(got, ["a", "", "b", "", "c"]);
        let e = lines(guarded(&b"ok\r\xff\r"[..], 16).unwrap())
            .nth(1)
            .unwrap();
        assert_eq!(e.0, 2);
        assert!(e.1.is_err());
    }

    #[test]
    fn drops_the_bom_and_bounds_lines() {
        assert_eq!(
            read(b"\xEF\xBB\xBFid,lat\n1,2\n", 16).unwrap(),
            ["id,lat", "1,2"]
        );
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
        assert!(
            r.read(&mut buf).is_ok(),
            "the first 4 bytes are within the limit"
        );
        let mut rest = Vec::new();
        assert!(r.read_to_end(&mut rest).is_err());
        assert!(r.read(&mut buf).is_err());
    }
}
