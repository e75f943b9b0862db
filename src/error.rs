//! Errors: user errors (bad input, bad configuration) kept apart from internal ones.

/// Everything that can go wrong in tally outside a GraphQL request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (flags, environment, URLs) is wrong; the message says which part.
    #[error("configuration error: {0}")]
    Config(String),
    /// The database refused or failed; the message says what tally was doing.
    #[error("database error: {0}")]
    Database(String),
    /// Input data (a CSV file, a demo option) is wrong; the message names where.
    #[error("{0}")]
    Input(String),
    /// An I/O error while reading or writing a file.
    #[error("{context}: {source}")]
    Io {
        /// What tally was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::Database(e.to_string())
    }
}
