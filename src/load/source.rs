//! Where rows come from: a CSV file or a generator, as a stream of string records.

/// One CSV record: the fields of a row in the order of [`TableSource::columns`].
pub type Record = Vec<String>;

/// A failure to read a record (the line is the 1-based line of the source).
#[derive(Debug, Clone)]
pub struct ReadError {
    /// 1-based line number in the source (the header is line 1).
    pub line: u64,
    /// The column at fault, when there is one.
    pub column: Option<String>,
    /// What went wrong.
    pub reason: String,
}

/// The rows of one table, in their textual (CSV) form, streamed: nothing is held in memory.
pub struct TableSource {
    /// The table they belong to, as named in `docs/SOURCE-SCHEMA.md` (`global_events`).
    pub table: String,
    /// Where they come from, for error messages: a file path or `demo`.
    pub origin: String,
    /// The column names of the header, in the order of every record.
    pub columns: Vec<String>,
    /// The records; the `u64` is the 1-based line number of the record in its origin
    /// (2 for the first record after the header).
    pub rows: Box<dyn Iterator<Item = Result<(u64, Record), ReadError>> + Send>,
}

impl std::fmt::Debug for TableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSource")
            .field("table", &self.table)
            .field("origin", &self.origin)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}
