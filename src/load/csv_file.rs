//! A CSV file as a [`TableSource`]: its header, then its records streamed one at a time.
//!
//! Two things the `csv` crate does not do are done by a reader between the file and the
//! parser ([`Tracked`]), which sees every byte once, in order:
//!
//! - **Line numbers whatever the line ending.** The parser's own record positions point at
//!   the byte after the previous record, before the `\n` of a CRLF terminator and before
//!   skipped blank lines, so a CRLF file would be reported one line early. The tracker
//!   counts line breaks (`\n`, `\r\n` and a lone `\r` each count once) and remembers, for
//!   the bytes the parser has not consumed yet, where each run of line-break bytes ends:
//!   the line of a record is that of the first byte after the run its position falls in.
//! - **A bounded row.** The parser buffers a whole record; the tracker refuses to hand it
//!   more than [`CsvLimits::max_row_bytes`] bytes past the start of the record being read,
//!   so an endless field fails early, with its line, in bounded memory. Each field is then
//!   checked against [`CsvLimits::max_field_bytes`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::source::{ReadError, Record, TableSource};
use crate::error::Error;

/// How large a CSV row and field may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvLimits {
    /// The most bytes one field may hold (after unquoting).
    pub max_field_bytes: u64,
    /// The most bytes one row (record) may take in the file, terminator included; the
    /// reader stops as soon as a row passes it, without reading the rest of the row.
    pub max_row_bytes: u64,
}

/// 1 MiB.
const MIB: u64 = 1 << 20;

impl Default for CsvLimits {
    /// Fields up to 16 MiB, rows up to 64 MiB.
    fn default() -> Self {
        CsvLimits {
            max_field_bytes: 16 * MIB,
            max_row_bytes: 64 * MIB,
        }
    }
}

/// A size for messages: `16 MiB`, `1.5 MiB`, `300 KiB` or `12 bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= MIB {
        let mib = bytes as f64 / MIB as f64;
        if bytes.is_multiple_of(MIB) {
            format!("{} MiB", bytes / MIB)
        } else {
            format!("{mib:.1} MiB")
        }
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// What the tracker knows, shared between it (inside the parser) and [`CsvRows`].
#[derive(Debug, Default)]
struct Track {
    /// Bytes handed to the parser.
    delivered: u64,
    /// Line breaks among them.
    breaks: u64,
    /// Whether the last byte handed over was `\r` (a `\n` right after it is the same break).
    after_cr: bool,
    /// Whether the last byte handed over was a line-break byte (a run is open).
    in_run: bool,
    /// `(end, breaks before end)` of the runs of line-break bytes that ended at offsets
    /// the parser may still ask about, in order.
    runs: VecDeque<(u64, u64)>,
    /// The offset where the record being parsed starts (as the parser counts it).
    row_start: u64,
    /// The line of that record, once the run of line breaks before it has ended.
    row_line: Option<u64>,
    /// The row limit, and whether it was hit.
    max_row: u64,
    too_long: bool,
}

impl Track {
    /// Notes that the parser starts a record at `offset` (and forgets the runs before it).
    fn start_row(&mut self, offset: u64) {
        self.row_start = offset;
        while self.runs.front().is_some_and(|&(end, _)| end < offset) {
            self.runs.pop_front();
        }
        self.row_line = if offset == 0 {
            Some(1)
        } else {
            self.runs.front().map(|&(_, breaks)| breaks + 1)
        };
    }

    /// Notes that a run of line breaks ended at `end`, `breaks` breaks into the file.
    fn end_run(&mut self, end: u64, breaks: u64) {
        if self.row_line.is_none() {
            if end >= self.row_start {
                self.row_line = Some(breaks + 1);
            } else {
                return;
            }
        }
        self.runs.push_back((end, breaks));
        // The parser holds at most BUFFER bytes it has not consumed: the next record starts
        // after `delivered - BUFFER`, so older runs can never be asked about.
        while self
            .runs
            .front()
            .is_some_and(|&(e, _)| e + 2 * BUFFER < self.delivered)
        {
            self.runs.pop_front();
        }
    }

    /// The 1-based line of the record being parsed.
    fn row_line(&self) -> u64 {
        self.row_line.unwrap_or(self.breaks + 1)
    }
}

/// The parser's buffer: how far it reads ahead of the record it parses.
const BUFFER: u64 = 64 * 1024;

fn lock(track: &Mutex<Track>) -> MutexGuard<'_, Track> {
    track.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reader between the file and the parser (see the module's documentation).
struct Tracked<R> {
    inner: R,
    track: Arc<Mutex<Track>>,
}

/// The error the tracker gives the parser when a row passes its limit.
#[derive(Debug)]
struct RowTooLong;

impl std::fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("row too long")
    }
}

impl std::error::Error for RowTooLong {}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = {
            let mut t = lock(&self.track);
            let used = t.delivered - t.row_start;
            if used >= t.max_row {
                t.too_long = true;
                return Err(io::Error::other(RowTooLong));
            }
            // never hand over more than the row may still take (plus one byte, to notice)
            usize::try_from(t.max_row - used + 1).unwrap_or(usize::MAX)
        };
        let limit = buf.len().min(allowed);
        let n = self.inner.read(&mut buf[..limit])?;
        let mut t = lock(&self.track);
        for &b in &buf[..n] {
            match b {
                b'\r' => {
                    t.breaks += 1;
                    t.after_cr = true;
                    t.in_run = true;
                }
                b'\n' => {
                    if !t.after_cr {
                        t.breaks += 1;
                    }
                    t.after_cr = false;
                    t.in_run = true;
                }
                _ => {
                    if t.in_run {
                        let (end, breaks) = (t.delivered, t.breaks);
                        t.end_run(end, breaks);
                    }
                    t.after_cr = false;
                    t.in_run = false;
                }
            }
            t.delivered += 1;
        }
        Ok(n)
    }
}

/// The records of a CSV file, with their line numbers; stops after an I/O error.
struct CsvRows {
    reader: csv::Reader<Tracked<BufReader<File>>>,
    track: Arc<Mutex<Track>>,
    limits: CsvLimits,
    columns: Vec<String>,
    record: csv::StringRecord,
    done: bool,
}

impl CsvRows {
    /// Marks the parser's position as the start of the next record.
    fn next_row_starts(&mut self) {
        let at = self.reader.position().byte();
        lock(&self.track).start_row(at);
    }
}

impl Iterator for CsvRows {
    type Item = Result<(u64, Record), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.reader.read_record(&mut self.record);
        let line = lock(&self.track).row_line();
        let item = match result {
            Ok(false) => {
                self.done = true;
                return None;
            }
            Ok(true) => {
                self.next_row_starts();
                let limit = self.limits.max_field_bytes;
                match self.record.iter().position(|f| f.len() as u64 > limit) {
                    Some(i) => Err(ReadError {
                        line,
                        column: self.columns.get(i).cloned(),
                        reason: format!(
                            "the field holds {}, more than the {} a field may hold",
                            size_text(self.record[i].len() as u64),
                            size_text(limit)
                        ),
                    }),
                    None => Ok((line, self.record.iter().map(str::to_owned).collect())),
                }
            }
            Err(e) => {
                self.next_row_starts();
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => {
                        format!("field {} is not valid UTF-8", err.field() + 1)
                    }
                    csv::ErrorKind::Io(_) if lock(&self.track).too_long => {
                        self.done = true;
                        format!(
                            "the row is longer than {}, the most a row may take; nothing after it was read",
                            size_text(self.limits.max_row_bytes)
                        )
                    }
                    csv::ErrorKind::Io(io) => {
                        self.done = true;
                        format!("cannot read the file: {io}")
                    }
                    _ => e.to_string(),
                };
                Err(ReadError {
                    line,
                    column: None,
                    reason,
                })
            }
        };
        Some(item)
    }
}

/// Opens `path` as the CSV of `table`: reads its header (a UTF-8 byte-order mark is
/// skipped) and streams its records, within `limits`.
pub(crate) fn open(table: &str, path: &Path, limits: CsvLimits) -> Result<TableSource, Error> {
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
    let track = Arc::new(Mutex::new(Track {
        max_row: limits.max_row_bytes.max(1),
        row_line: Some(1),
        ..Track::default()
    }));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(BUFFER as usize)
        .from_reader(Tracked {
            inner: input,
            track: Arc::clone(&track),
        });
    let header = reader.headers().map_err(|e| {
        let reason = if lock(&track).too_long {
            format!(
                "the header is longer than {}, the most a row may take",
                size_text(limits.max_row_bytes)
            )
        } else {
            e.to_string()
        };
        Error::Input(format!("{origin}:1: cannot read the header: {reason}"))
    })?;
    let columns: Vec<String> = header.iter().map(str::to_owned).collect();
    let mut rows = CsvRows {
        reader,
        track,
        limits,
        columns: columns.clone(),
        record: csv::StringRecord::new(),
        done: false,
    };
    rows.next_row_starts();
    Ok(TableSource {
        table: table.to_owned(),
        origin,
        columns,
        rows: Box::new(rows),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `(line, first field)` of every record of `text`, read with `limits`.
    fn lines(text: &[u8], limits: CsvLimits) -> Vec<Result<(u64, String), (u64, String)>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let source = open("t", &path, limits).unwrap();
        source
            .rows
            .map(|r| match r {
                Ok((line, record)) => Ok((line, record[0].clone())),
                Err(e) => Err((e.line, e.reason)),
            })
            .collect()
    }

    fn ok(pairs: &[(u64, &str)]) -> Vec<Result<(u64, String), (u64, String)>> {
        pairs.iter().map(|&(l, s)| Ok((l, s.to_owned()))).collect()
    }

    #[test]
    fn lines_are_right_for_every_line_ending() {
        let want = ok(&[(2, "a"), (3, "b"), (6, "c"), (8, "d")]);
        let lf = b"h,x\na,1\nb,\"two\nlines\"\n\nc,3\n\nd,4\n";
        assert_eq!(lines(lf, CsvLimits::default())[..], want[..]);
        let crlf = b"h,x\r\na,1\r\nb,\"two\r\nlines\"\r\n\r\nc,3\r\n\r\nd,4\r\n";
        assert_eq!(lines(crlf, CsvLimits::default())[..], want[..]);
        let cr = b"h,x\ra,1\rb,\"two\rlines\"\r\rc,3\r\rd,4";
        assert_eq!(lines(cr, CsvLimits::default())[..], want[..]);
        let bom = b"\xEF\xBB\xBFh,x\r\na,1\r\n";
        assert_eq!(lines(bom, CsvLimits::default()), ok(&[(2, "a")]));
    }

    #[test]
    fn rows_and_fields_are_bounded() {
        let limits = CsvLimits {
            max_field_bytes: 10,
            max_row_bytes: 100,
        };
        let mut text = b"h,x\r\na,1\r\nbbbbbbbbbbbb,2\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'z', 1000));
        text.extend(b"\r\nnever,read\r\n");
        let got = lines(&text, limits);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Ok((2, "a".to_owned())));
        assert_eq!(
            got[1],
            Err((
                3,
                "the field holds 12 bytes, more than the 10 bytes a field may hold".to_owned()
            ))
        );
        assert_eq!(
            got[2],
            Err((
                4,
                "the row is longer than 100 bytes, the most a row may take; nothing after it was read"
                    .to_owned()
            ))
        );
    }
}
