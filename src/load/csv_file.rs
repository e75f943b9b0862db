//! A CSV file as a [`TableSource`]: its header, then its records streamed one at a time.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use super::source::{ReadError, Record, TableSource};
use crate::error::Error;

/// The records of a CSV file, with their line numbers; stops after an I/O error.
struct CsvRows {
    records: csv::StringRecordsIntoIter<BufReader<File>>,
    last_line: u64,
    done: bool,
}

impl Iterator for CsvRows {
    type Item = Result<(u64, Record), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.records.next()? {
            Ok(record) => {
                let line = record.position().map_or(self.last_line + 1, |p| p.line());
                self.last_line = line;
                Ok((line, record.iter().map(str::to_owned).collect()))
            }
            Err(e) => {
                let line = e.position().map_or(self.last_line + 1, |p| p.line());
                self.last_line = line;
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => {
                        format!("field {} is not valid UTF-8", err.field() + 1)
                    }
                    csv::ErrorKind::Io(io) => {
                        self.done = true;
                        format!("cannot read the file: {io}")
                    }
                    _ => e.to_string(),
                };
                Err(ReadError { line, reason })
            }
        };
        Some(item)
    }
}

/// Opens `path` as the CSV of `table`: reads its header (a UTF-8 byte-order mark is
/// skipped) and streams its records.
pub(crate) fn open(table: &str, path: &Path) -> Result<TableSource, Error> {
    let origin = path.display().to_string();
    let file = File::open(path).map_err(|source| Error::Io {
        context: format!("cannot open {origin}"),
        source,
    })?;
    let mut input = BufReader::new(file);
    let head = input.fill_buf().map_err(|source| Error::Io {
        context: format!("cannot read {origin}"),
        source,
    })?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let columns = reader
        .headers()
        .map_err(|e| Error::Input(format!("{origin}:1: cannot read the header: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    Ok(TableSource {
        table: table.to_owned(),
        origin,
        columns,
        rows: Box::new(CsvRows {
            records: reader.into_records(),
            last_line: 1,
            done: false,
        }),
    })
}
