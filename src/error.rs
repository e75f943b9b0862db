//! Errors: [`Error`] for commands (bad input, bad configuration, database and I/O
//! failures) and [`ApiError`], the one error type of the API, with a code per case.

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

/// Every error a client of the API can receive: one variant per case, each with a stable
/// SHOUTY code (`extensions.code` in GraphQL). The table of codes in
/// `docs/SEMANTIC-LAYER.md` is checked against [`ApiError::CODES`] by a test.
///
/// Internal errors (a database failure, a state that should be impossible) carry only an id:
/// [`ApiError::internal`] logs the cause with that id, and clients see the id and a generic
/// message, never the database's own text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The document does not parse as GraphQL.
    #[error("{0}")]
    GraphqlParseFailed(String),
    /// The document names a field, argument or type the schema does not have.
    #[error("{0}")]
    GraphqlValidationFailed(String),
    /// `asOf` (or another instant argument) is not an RFC 3339 instant.
    #[error("{0}")]
    BadAsOf(String),
    /// Any other argument is out of range or malformed (limit, offset, cursor, cohort, a
    /// value in `where`).
    #[error("{0}")]
    BadArgument(String),
    /// A metrics query selects no metric.
    #[error("{0}")]
    NoMetric(String),
    /// A metric the model does not define.
    #[error("{0}")]
    UnknownMetric(String),
    /// A dimension (or row column) the model does not define.
    #[error("{0}")]
    UnknownDimension(String),
    /// A selected or filtered dimension cannot be reached from a metric's table.
    #[error("{0}")]
    UnreachableDimension(String),
    /// A granularity the dimension does not offer (or one it cannot take).
    #[error("{0}")]
    BadGranularity(String),
    /// A cumulative, retention or period-average metric without its time dimension.
    #[error("{0}")]
    MissingTimeDimension(String),
    /// A period-over-period or grain-to-date value the metric, the grouping or the filter
    /// cannot give.
    #[error("{0}")]
    BadTimeComparison(String),
    /// Ordering by something that is not selected.
    #[error("{0}")]
    BadOrderBy(String),
    /// Not an IANA time zone.
    #[error("{0}")]
    BadTimezone(String),
    /// Not a conversion variant of the model.
    #[error("{0}")]
    BadConversionFilter(String),
    /// A funnel the model does not define, or a step the funnel does not have.
    #[error("{0}")]
    UnknownFunnel(String),
    /// The steps of a funnel request are fewer than two, repeated, or not in the funnel's
    /// order.
    #[error("{0}")]
    BadFunnelSteps(String),
    /// A funnel window that is not one positive length of time.
    #[error("{0}")]
    BadWindow(String),
    /// The settings the field needs are broken (e.g. the saas model's `[saas]` table).
    #[error("{0}")]
    BadConfig(String),
    /// The request is bigger than a limit of the server (the message names it and the value).
    #[error("{0}")]
    LimitExceeded(String),
    /// The request ran past its time budget; its statement was stopped in the database.
    #[error("{0}")]
    Timeout(String),
    /// No turn to run a statement in time: the server is running as many as it may.
    #[error("{0}")]
    Overloaded(String),
    /// The database cannot be reached.
    #[error("{0}")]
    DatabaseUnavailable(String),
    /// No valid credentials: no API key where the server requires one, or an unknown key.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role may not read what the request asks for (the message names it), or
    /// the caller lacks a tenant attribute a row policy needs.
    #[error("{0}")]
    Forbidden(String),
    /// Something failed inside tally or the database; the cause is logged under `id`.
    #[error(
        "internal error {id}: the request could not be answered (the cause is logged under this id)"
    )]
    Internal {
        /// The id the cause was logged with.
        id: String,
    },
}

impl ApiError {
    /// Every code with what it means, in the order of the documentation table.
    pub const CODES: &'static [(&'static str, &'static str)] = &[
        ("GRAPHQL_PARSE_FAILED", "the document does not parse"),
        (
            "GRAPHQL_VALIDATION_FAILED",
            "unknown field, argument or input field, or a wrong type — with \"Did you mean …\"",
        ),
        (
            "BAD_AS_OF",
            "`asOf`, `from` or `to` is not an RFC 3339 instant",
        ),
        (
            "BAD_ARGUMENT",
            "limit/offset/first out of range, a bad cursor or cohort, `from` later than `to`, a bad value in `where`, `between` without two values, a filter too big, an unknown model",
        ),
        ("NO_METRIC", "only dimensions selected in `metrics`"),
        ("UNKNOWN_METRIC", "a metric the model does not define"),
        (
            "UNKNOWN_DIMENSION",
            "a dimension or row column the model does not define",
        ),
        (
            "UNREACHABLE_DIMENSION",
            "a selected or filtered dimension cannot be reached from a metric's measure table by many-to-one joins (the message names the tables)",
        ),
        (
            "BAD_GRANULARITY",
            "a granularity the dimension does not offer, a trailing window with a calendar granularity, a period average by a period not longer than its `per`",
        ),
        (
            "MISSING_TIME_DIMENSION",
            "a cumulative, retention or period-average metric without its time dimension selected once; a comparison (`offset`, `toDate`, `…Growth`) without one time dimension selected",
        ),
        (
            "BAD_TIME_COMPARISON",
            "`offset` or `…Growth` of a metric kind that has none (cumulative, conversion, retention, period average), `toDate` of a metric that is not additive (its measures must be counts or sums), `offset` with `toDate`, `calculation: CHANGE` without `offset`, a condition on the compared time dimension inside `or`/`not`",
        ),
        ("BAD_ORDER_BY", "ordering by a field that is not selected"),
        ("BAD_TIMEZONE", "not an IANA zone"),
        (
            "BAD_CONVERSION_FILTER",
            "not a conversion variant of the model",
        ),
        (
            "UNKNOWN_FUNNEL",
            "a funnel the model does not define, or a step the funnel does not have (the message lists them)",
        ),
        (
            "BAD_FUNNEL_STEPS",
            "fewer than two steps, a step given twice, or steps not in the funnel's order (the message gives the order)",
        ),
        (
            "BAD_WINDOW",
            "`within` is not one positive length (set exactly one of minutes, hours, days, weeks)",
        ),
        (
            "BAD_CONFIG",
            "the settings a field needs are broken (the message names the file)",
        ),
        (
            "LIMIT_EXCEEDED",
            "the request is bigger than the server takes: body size, operations per batch, fields per request, depth, metrics × dimensions of a `metrics` field (the message names the limit, its flag and the value)",
        ),
        (
            "TIMEOUT",
            "the request ran past its time budget (`--statement-timeout`, default 30 s; the message names it); the statement was stopped inside the database",
        ),
        (
            "OVERLOADED",
            "no turn to run a statement within `--queue-timeout` (at most `--max-concurrent-queries` run at once; the message names both); HTTP 503 with `Retry-After`",
        ),
        (
            "DATABASE_UNAVAILABLE",
            "the database cannot be reached (no connection within `--db-acquire-timeout`, a lost connection, a database shutting down); HTTP 503; service resumes by itself when the database is back",
        ),
        (
            "UNAUTHENTICATED",
            "no API key where the server requires one, or a key it does not know; HTTP 401",
        ),
        (
            "FORBIDDEN",
            "the caller's role may not read the model, metric, field or feature the message names, or the caller lacks a tenant attribute a row policy needs",
        ),
        (
            "INTERNAL",
            "the database or tally failed; the message carries only an id, under which the cause (with the SQL) is logged",
        ),
    ];

    /// The code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::GraphqlParseFailed(_) => "GRAPHQL_PARSE_FAILED",
            ApiError::GraphqlValidationFailed(_) => "GRAPHQL_VALIDATION_FAILED",
            ApiError::BadAsOf(_) => "BAD_AS_OF",
            ApiError::BadArgument(_) => "BAD_ARGUMENT",
            ApiError::NoMetric(_) => "NO_METRIC",
            ApiError::UnknownMetric(_) => "UNKNOWN_METRIC",
            ApiError::UnknownDimension(_) => "UNKNOWN_DIMENSION",
            ApiError::UnreachableDimension(_) => "UNREACHABLE_DIMENSION",
            ApiError::BadGranularity(_) => "BAD_GRANULARITY",
            ApiError::MissingTimeDimension(_) => "MISSING_TIME_DIMENSION",
            ApiError::BadTimeComparison(_) => "BAD_TIME_COMPARISON",
            ApiError::BadOrderBy(_) => "BAD_ORDER_BY",
            ApiError::BadTimezone(_) => "BAD_TIMEZONE",
            ApiError::BadConversionFilter(_) => "BAD_CONVERSION_FILTER",
            ApiError::UnknownFunnel(_) => "UNKNOWN_FUNNEL",
            ApiError::BadFunnelSteps(_) => "BAD_FUNNEL_STEPS",
            ApiError::BadWindow(_) => "BAD_WINDOW",
            ApiError::BadConfig(_) => "BAD_CONFIG",
            ApiError::LimitExceeded(_) => "LIMIT_EXCEEDED",
            ApiError::Timeout(_) => "TIMEOUT",
            ApiError::Overloaded(_) => "OVERLOADED",
            ApiError::DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::Internal { .. } => "INTERNAL",
        }
    }

    /// An internal error: logs `cause` (what tally was doing, the database's text, the SQL)
    /// under a fresh id and returns the error that carries only that id.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> ApiError {
        let id = error_id();
        tracing::error!(error_id = %id, context, cause = %cause, "internal error");
        ApiError::Internal { id }
    }

    /// The message, as the client sees it.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The GraphQL error: the message and `extensions.code` (and `extensions.errorId` for an
    /// internal error). Resolvers must convert with this (`map_err(ApiError::into_graphql)`):
    /// async-graphql's blanket `From<impl Display>` would drop the code.
    pub fn into_graphql(self) -> async_graphql::Error {
        use async_graphql::ErrorExtensions as _;
        let code = self.code();
        let id = match &self {
            ApiError::Internal { id } => Some(id.clone()),
            _ => None,
        };
        async_graphql::Error::new(self.message()).extend_with(|_, e| {
            e.set("code", code);
            if let Some(id) = &id {
                e.set("errorId", id.as_str());
            }
        })
    }
}

impl From<Error> for ApiError {
    /// Input errors of the data layer are `BAD_ARGUMENT`, configuration errors `BAD_CONFIG`;
    /// everything else is internal (logged, only its id shown).
    fn from(e: Error) -> Self {
        match e {
            Error::Input(m) => ApiError::BadArgument(m),
            Error::Config(m) => ApiError::BadConfig(m),
            other => ApiError::internal("data layer", other),
        }
    }
}

/// A short id for an internal error, unique within the process and unlikely to repeat
/// across restarts: milliseconds since the epoch and a counter, in hex.
fn error_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{millis:x}-{n:04x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The table of codes in docs/SEMANTIC-LAYER.md is [`ApiError::CODES`], row for row.
    #[test]
    fn documented_codes_are_the_enum() {
        let doc = include_str!("../docs/SEMANTIC-LAYER.md");
        let start = doc.find("### Errors (`extensions.code`)").unwrap();
        let section = &doc[start..];
        let end = section[4..]
            .find("\n### ")
            .map(|i| i + 4)
            .unwrap_or(section.len());
        let rows: Vec<(String, String)> = section[..end]
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
                (
                    cells[0].trim().trim_matches('`').to_owned(),
                    cells[1].trim().to_owned(),
                )
            })
            .collect();
        let codes: Vec<(String, String)> = ApiError::CODES
            .iter()
            .map(|(c, d)| ((*c).to_owned(), (*d).to_owned()))
            .collect();
        assert_eq!(rows, codes);
    }

    /// Every variant's code is in [`ApiError::CODES`], and internal errors show only an id.
    #[test]
    fn every_variant_is_documented() {
        let all = [
            ApiError::GraphqlParseFailed(String::new()),
            ApiError::GraphqlValidationFailed(String::new()),
            ApiError::BadAsOf(String::new()),
            ApiError::BadArgument(String::new()),
            ApiError::NoMetric(String::new()),
            ApiError::UnknownMetric(String::new()),
            ApiError::UnknownDimension(String::new()),
            ApiError::UnreachableDimension(String::new()),
            ApiError::BadGranularity(String::new()),
            ApiError::MissingTimeDimension(String::new()),
            ApiError::BadTimeComparison(String::new()),
            ApiError::BadOrderBy(String::new()),
            ApiError::BadTimezone(String::new()),
            ApiError::BadConversionFilter(String::new()),
            ApiError::UnknownFunnel(String::new()),
            ApiError::BadFunnelSteps(String::new()),
            ApiError::BadWindow(String::new()),
            ApiError::BadConfig(String::new()),
            ApiError::LimitExceeded(String::new()),
            ApiError::Timeout(String::new()),
            ApiError::Overloaded(String::new()),
            ApiError::DatabaseUnavailable(String::new()),
            ApiError::Unauthenticated(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::internal("test", "relation \"secret\" does not exist"),
        ];
        assert_eq!(all.len(), ApiError::CODES.len());
        for (e, (code, _)) in all.iter().zip(ApiError::CODES) {
            assert_eq!(e.code(), *code);
        }
        let internal = all.last().unwrap().clone().into_graphql();
        assert!(!internal.message.contains("secret"), "{}", internal.message);
        let ext = internal.extensions.unwrap();
        assert_eq!(ext.get("code").unwrap().to_string(), "\"INTERNAL\"");
        assert!(ext.get("errorId").is_some());
    }
}
