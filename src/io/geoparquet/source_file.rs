//! The file the Parquet reader reads from: a [`File`] whose readers fail, instead of
//! returning end of file again and again, once they have reached its end.
//!
//! parquet 59's page-header reader skips a Thrift field of `n` bytes by copying at most `n`
//! bytes to nowhere and does not check that it got them, so a damaged header whose skipped
//! fields run past the end of the file keeps reading nothing (found by the
//! `geoparquet_file` fuzz target: over 2 minutes, mostly system time, on a 2 KB file). A
//! second read at the end is an error here, which stops such a skip at once; a whole file
//! is never read past its end (the reader reads its footer by offset and length).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Type as Physical;
use parquet::column::page::Page;
use parquet::errors::Result;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::ReaderProperties;
use parquet::file::reader::{ChunkReader, Length, RowGroupReader};
use parquet::file::serialized_reader::SerializedRowGroupReader;

/// A Parquet source file (see the module docs).
pub struct SourceFile(pub File);

impl Length for SourceFile {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl ChunkReader for SourceFile {
    type T = BufReader<StopAtEnd>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        let mut file = self.0.try_clone()?;
        file.seek(SeekFrom::Start(start))?;
        Ok(BufReader::new(StopAtEnd {
            file,
            at_end: false,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        self.0.get_bytes(start, length)
    }
}

/// Checks the first page of every column chunk of `file` (whose footer is `meta`) before
/// the Arrow reader decodes any: a dictionary page must hold the values it declares
/// (parquet 59's dictionary decoder allocates room for the declared count before reading
/// them, so a damaged 1.5 KB file declaring 1.7 billion doubles asks for 13.9 GB). Errors
/// name the column and row group.
pub fn check_dictionaries(file: File, meta: &ParquetMetaData) -> std::result::Result<(), String> {
    let file = Arc::new(SourceFile(file));
    let props = Arc::new(ReaderProperties::builder().build());
    for g in 0..meta.num_row_groups() {
        let row_group = meta.row_group(g);
        let group =
            SerializedRowGroupReader::new(Arc::clone(&file), row_group, None, Arc::clone(&props))
                .map_err(|e| e.to_string())?;
        for (c, chunk) in row_group.columns().iter().enumerate() {
            let mut pages = group.get_column_page_reader(c).map_err(|e| e.to_string())?;
            let Some(Page::DictionaryPage {
                buf, num_values, ..
            }) = pages.get_next_page().map_err(|e| e.to_string())?
            else {
                continue;
            };
            let d = chunk.column_descr();
            // The fewest bits a stored value takes (PLAIN: a byte array has a 4-byte length).
            let bits: u64 = match d.physical_type() {
                Physical::BOOLEAN => 1,
                Physical::INT32 | Physical::FLOAT | Physical::BYTE_ARRAY => 32,
                Physical::INT64 | Physical::DOUBLE => 64,
                Physical::INT96 => 96,
                Physical::FIXED_LEN_BYTE_ARRAY => {
                    8 * u64::try_from(d.type_length()).unwrap_or(0).max(1)
                }
            };
            if u64::from(num_values) * bits > 8 * buf.len() as u64 {
                return Err(format!(
                    "column '{}', row group {g}: its dictionary page declares {num_values} values \
                     but holds {} bytes (damaged)",
                    d.path().string(),
                    buf.len()
                ));
            }
        }
    }
    Ok(())
}

/// A reader of the file that errs on any read after one that found its end.
pub struct StopAtEnd {
    file: File,
    at_end: bool,
}

impl Read for StopAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.at_end {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the file (a damaged page header)",
            ));
        }
        let n = self.file.read(buf)?;
        self.at_end = n == 0;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_second_read_at_the_end_is_an_error() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"abc").unwrap();
        let src = SourceFile(f);
        let mut r = src.get_read(1).unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"bc");
        let mut one = [0u8; 8];
        assert!(r.read(&mut one).is_err());
        assert_eq!(src.get_bytes(0, 3).unwrap().as_ref(), b"abc");
        assert!(src.get_bytes(1, 3).is_err());
    }
}
