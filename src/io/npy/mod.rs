//! A streaming reader for 2-D little-endian `.npy` arrays of `f16` or `f32` (format
//! versions 1.0, 2.0 and 3.0; C order only). Rows are read one at a time, so a file larger
//! than memory is fine, and every header field is validated before it is used.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

mod literal;

use literal::{parse_dict, Literal, LiteralError};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header we accept (numpy itself writes < 1 KiB).
const MAX_HEADER_LEN: usize = 1 << 20;
/// Largest column count we accept: a row buffer is allocated at open, even for 0 rows.
pub const MAX_COLS: usize = 1 << 20;

/// Element type of an `.npy` file we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `<f2`: IEEE half precision.
    F16,
    /// `<f4`: IEEE single precision.
    F32,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::F16 => 2,
            NpyDtype::F32 => 4,
        }
    }
}

/// The parsed header of an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: NpyDtype,
    /// Number of rows (first dimension).
    pub rows: u64,
    /// Number of columns (second dimension).
    pub cols: usize,
    /// Offset of the first data byte from the start of the file.
    pub data_offset: u64,
}

/// Why an `.npy` file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The header is malformed or describes something we do not read.
    #[error("{path}: bad .npy header at byte {offset}: {what}")]
    Header {
        /// The file.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// The data is shorter or longer than its header says: a cut file, or bytes after the
    /// rows (a file that is not what its header describes; numpy itself would ignore them).
    #[error("{path}: file has {actual} data bytes, its header promises {} ({rows} x {cols} {dtype:?})",
            expected.map_or_else(|| "more than 2^64".to_string(), |e| e.to_string()))]
    WrongLength {
        /// The file.
        path: PathBuf,
        /// Bytes the header implies (`None`: more than a `u64` counts).
        expected: Option<u64>,
        /// Bytes present.
        actual: u64,
        /// Rows in the header.
        rows: u64,
        /// Columns in the header.
        cols: usize,
        /// Element type.
        dtype: NpyDtype,
    },
}

/// Parses an `.npy` header from the first bytes of a file. `bytes` may be longer than the header.
/// Errors carry an empty path; [`NpyReader::open`] fills it in.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyError> {
    let bad = |offset: u64, what: &str| NpyError::Header {
        path: PathBuf::new(),
        offset,
        what: what.to_string(),
    };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(0, "missing \\x93NUMPY magic"));
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad(8, "truncated header length"));
            }
            let l = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
            (l, 12usize)
        }
        v => return Err(bad(6, &format!("unsupported format version {v}"))),
    };
    if len > MAX_HEADER_LEN {
        return Err(bad(8, &format!("header length {len} is implausible")));
    }
    let end = start + len;
    let text = bytes
        .get(start..end)
        .ok_or_else(|| bad(start as u64, "header runs past the end of the file"))?;
    let text = std::str::from_utf8(text).map_err(|_| bad(start as u64, "header is not UTF-8"))?;
    let at = |e: LiteralError| bad(start as u64 + e.at as u64, &e.what);
    let dict = parse_dict(text).map_err(at)?;
    let get = |key: &str| {
        dict.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| bad(start as u64, &format!("no '{key}' key")))
    };
    if let Some((k, _)) = dict
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "descr" | "fortran_order" | "shape"))
    {
        return Err(bad(start as u64, &format!("unexpected key '{k}'")));
    }
    let dtype = match get("descr")? {
        Literal::Str(d) if d == "<f2" => NpyDtype::F16,
        Literal::Str(d) if d == "<f4" => NpyDtype::F32,
        other => {
            return Err(bad(
                start as u64,
                &format!(
                    "dtype {} not supported (want little-endian f16 '<f2' or f32 '<f4')",
                    other.show()
                ),
            ))
        }
    };
    match get("fortran_order")? {
        Literal::Bool(false) => {}
        Literal::Bool(true) => {
            return Err(bad(
                start as u64,
                "Fortran-ordered arrays are not supported",
            ))
        }
        other => {
            return Err(bad(
                start as u64,
                &format!("bad fortran_order {}", other.show()),
            ))
        }
    }
    let shape = get("shape")?;
    let dims: Vec<&str> = match shape {
        Literal::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Literal::Int(n) => Ok(n.as_str()),
                other => Err(bad(
                    start as u64,
                    &format!("shape entry {} is not an integer", other.show()),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(bad(
                start as u64,
                &format!("shape {} is not a tuple", other.show()),
            ))
        }
    };
    if dims.len() != 2 {
        return Err(bad(
            start as u64,
            &format!("shape {} is not 2-D [rows, dim]", shape.show()),
        ));
    }
    let rows: u64 = dims[0]
        .parse()
        .map_err(|_| bad(start as u64, &format!("bad row count {}", dims[0])))?;
    let cols: usize = dims[1]
        .parse()
        .map_err(|_| bad(start as u64, &format!("bad column count {}", dims[1])))?;
    if cols == 0 {
        return Err(bad(start as u64, "dimension 0"));
    }
    if cols > MAX_COLS {
        return Err(bad(
            start as u64,
            &format!("column count {cols} is implausible (limit {MAX_COLS})"),
        ));
    }
    Ok(NpyHeader {
        dtype,
        rows,
        cols,
        data_offset: end as u64,
    })
}

/// Reads the rows of a 2-D `.npy` file one at a time as `f32`.
pub struct NpyReader {
    path: PathBuf,
    header: NpyHeader,
    reader: BufReader<File>,
    row_bytes: Vec<u8>,
    next_row: u64,
}

impl NpyReader {
    /// Opens `path`, validates its header and that the file holds exactly the rows it
    /// promises.
    pub fn open(path: &Path) -> Result<NpyReader, NpyError> {
        let io = |source| NpyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = crate::io::input::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            // Its length is checked against the header before any row is read.
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file (a pipe or a device): an .npy is read from a file",
            )));
        }
        let file_len = meta.len();
        // Reads of up to 1 MiB for large files; a small file (a batch's query vectors) gets
        // a buffer of its size, not a fresh 1 MiB mapping to fault in and unmap.
        let buffer = usize::try_from(file_len).map_or(1 << 20, |n| n.clamp(8 << 10, 1 << 20));
        let mut reader = BufReader::with_capacity(buffer, file);
        let mut head = Vec::new();
        (&mut reader)
            .take(MAX_HEADER_LEN as u64 + 12)
            .read_to_end(&mut head)
            .map_err(io)?;
        let header = parse_header(&head).map_err(|e| with_path(e, path))?;
        let row_len = header.cols.checked_mul(header.dtype.size());
        let expected = row_len.and_then(|r| (r as u64).checked_mul(header.rows));
        let actual = file_len.saturating_sub(header.data_offset);
        match expected {
            Some(e) if e == actual => {}
            _ => {
                return Err(NpyError::WrongLength {
                    path: path.to_path_buf(),
                    expected,
                    actual,
                    rows: header.rows,
                    cols: header.cols,
                    dtype: header.dtype,
                })
            }
        }
        // Re-open positioned at the data: simpler than seeking a BufReader we read ahead on.
        let mut file = crate::io::input::open(path).map_err(io)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(header.data_offset)).map_err(io)?;
        Ok(NpyReader {
            path: path.to_path_buf(),
            row_bytes: vec![0; header.cols * header.dtype.size()],
            header,
            reader: BufReader::with_capacity(buffer, file),
            next_row: 0,
        })
    }

    /// The validated header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// Reads the next row into `out` (resized to the column count). Returns `Ok(false)` after
    /// the last row.
    pub fn read_row(&mut self, out: &mut Vec<f32>) -> Result<bool, NpyError> {
        if self.next_row >= self.header.rows {
            return Ok(false);
        }
        self.reader
            .read_exact(&mut self.row_bytes)
            .map_err(|source| NpyError::Io {
                path: self.path.clone(),
                source,
            })?;
        out.clear();
        match self.header.dtype {
            NpyDtype::F16 => out.extend(
                self.row_bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            NpyDtype::F32 => out.extend(
                self.row_bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
        }
        self.next_row += 1;
        Ok(true)
    }
}

fn with_path(e: NpyError, path: &Path) -> NpyError {
    match e {
        NpyError::Header { offset, what, .. } => NpyError::Header {
            path: path.to_path_buf(),
            offset,
            what,
        },
        other => other,
    }
}

/// Writes a 2-D little-endian `.npy` (version 1.0) holding `rows` of `f32` as `dtype`.
#[cfg(any(test, feature = "testing"))]
pub fn write_npy(path: &Path, dtype: NpyDtype, cols: usize, rows: &[f32]) -> std::io::Result<()> {
    use std::io::Write;
    if cols == 0 || !rows.len().is_multiple_of(cols) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "data length is not a multiple of the column count",
        ));
    }
    let descr = match dtype {
        NpyDtype::F16 => "<f2",
        NpyDtype::F32 => "<f4",
    };
    let mut dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {cols}), }}",
        rows.len() / cols
    );
    // Pad so that the data starts on a 64-byte boundary, header ending in '\n'.
    while !(10 + dict.len() + 1).is_multiple_of(64) {
        dict.push(' ');
    }
    dict.push('\n');
    let mut w = std::io::BufWriter::new(File::create(path)?);
    w.write_all(MAGIC)?;
    w.write_all(&[1, 0])?;
    w.write_all(&(dict.len() as u16).to_le_bytes())?;
    w.write_all(dict.as_bytes())?;
    for &x in rows {
        match dtype {
            NpyDtype::F16 => w.write_all(&half::f16::from_f32(x).to_le_bytes())?,
            NpyDtype::F32 => w.write_all(&x.to_le_bytes())?,
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_read_as_a_dict_literal() {
        let h = |dict: &str| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[1, 0]);
            b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            b.extend_from_slice(dict.as_bytes());
            parse_header(&b).map_err(|e| e.to_string())
        };
        // What numpy writes, keys in any order, double quotes, no trailing comma.
        let ok = h("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }   \n").unwrap();
        assert_eq!((ok.rows, ok.cols, ok.dtype), (3, 4, NpyDtype::F16));
        let ok = h("{\"shape\": (7,2), \"descr\": \"<f4\", \"fortran_order\": False}").unwrap();
        assert_eq!((ok.rows, ok.cols, ok.dtype), (7, 2, NpyDtype::F32));
        // A substring search would find these keys; a parser does not.
        let e = h("{'descr': '<f2', 'fortran_order': False, 'notshape': (9, 9), 'shape': (3, 4)}")
            .unwrap_err();
        assert!(e.contains("unexpected key 'notshape'"), "{e}");
        let e = h("{'descr': \"'shape': (1, 1)\", 'fortran_order': False, 'shape': (3, 4)}")
            .unwrap_err();
        assert!(e.contains("dtype ''shape': (1, 1)' not supported"), "{e}");
        for (dict, want) in [
            ("{'descr': '<f2', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}", "appears twice"),
            ("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4)} x", "text after"),
            ("{'descr': '<f2', 'fortran_order': False, 'shape': (12)}", "not a tuple"),
            ("{'descr': '<f2', 'fortran_order': False, 'shape': (12,)}", "not 2-D"),
            ("{'descr': '<f2', 'fortran_order': 0, 'shape': (1, 2)}", "bad fortran_order 0"),
            ("{'descr': [('a', '<f2')], 'fortran_order': False, 'shape': (1, 2)}", "dtype [('a', '<f2')]"),
            ("{'descr': '<f2', 'fortran_order': False, 'shape': (1, 'x')}", "not an integer"),
            ("{'descr': '<f2', 'fortran_order': Falsy, 'shape': (1, 2)}", "unknown name Falsy"),
            ("{'descr': '<f2, 'fortran_order': False, 'shape': (1, 2)}", "expected"),
            ("{'descr': '<f2', 'fortran_order': False, 'shape': ((((((((((((((((((1))))))))))))))))))}", "nested too deeply"),
            ("{'descr': '<f2', 'fortran_order': False, 'shape': (1, -2)}", "bad column count -2"),
            ("{'descr': '<f2' 'fortran_order': False}", "expected ',' or '}'"),
            ("['descr']", "expected '{'"),
        ] {
            let e = h(dict).unwrap_err();
            assert!(e.contains(want), "{dict}: {e}");
        }
    }

    #[test]
    fn round_trip_both_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        for dtype in [NpyDtype::F16, NpyDtype::F32] {
            let p = dir.path().join("v.npy");
            write_npy(&p, dtype, 4, &data).unwrap();
            let mut r = NpyReader::open(&p).unwrap();
            assert_eq!(r.header().rows, 3);
            assert_eq!(r.header().cols, 4);
            assert_eq!(r.header().dtype, dtype);
            let mut got = Vec::new();
            let mut row = Vec::new();
            while r.read_row(&mut row).unwrap() {
                got.extend_from_slice(&row);
            }
            assert_eq!(got, data);
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let h = |dict: &str| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[1, 0]);
            b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            b.extend_from_slice(dict.as_bytes());
            parse_header(&b)
        };
        assert!(h("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }").is_ok());
        assert!(h("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }").is_err());
        assert!(h("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }").is_err());
        assert!(h("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }").is_err());
        assert!(h("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }").is_err());
        assert!(h("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }").is_err());
        assert!(h("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }").is_err());
        assert!(parse_header(b"\x93NUMPY\x01\x00\xff\xff{").is_err());
        assert!(parse_header(b"").is_err());
        assert!(parse_header(b"\x93NUMPY\x09\x00\x00\x00").is_err());
    }

    /// Regression (fuzz target `npy_file`): `shape (0, 10**18)` passed the size check (0 rows
    /// need 0 bytes) and `open` then aborted the process allocating a 4e18-byte row buffer.
    #[test]
    fn huge_column_count_is_an_error_not_an_abort() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000000000000000), }";
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        std::fs::write(&p, &b).unwrap();
        match NpyReader::open(&p) {
            Err(NpyError::Header { what, .. }) => assert!(what.contains("implausible"), "{what}"),
            other => panic!("{:?}", other.map(|r| r.header().clone())),
        }
    }

    #[test]
    fn truncated_data_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        write_npy(&p, NpyDtype::F32, 4, &[1.0; 12]).unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 3).unwrap();
        assert!(matches!(
            NpyReader::open(&p),
            Err(NpyError::WrongLength { .. })
        ));
        // Bytes after the rows are refused too.
        write_npy(&p, NpyDtype::F32, 4, &[1.0; 12]).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(&[0; 4]);
        std::fs::write(&p, &bytes).unwrap();
        let e = NpyReader::open(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("52 data bytes, its header promises 48"), "{e}");
    }

    #[test]
    fn never_panics_on_prefixes_and_flips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        write_npy(&p, NpyDtype::F16, 3, &[1.0; 6]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        for n in 0..bytes.len() {
            let _ = parse_header(&bytes[..n]);
        }
        for i in 0..bytes.len().min(128) {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = parse_header(&b);
            }
        }
    }
}
