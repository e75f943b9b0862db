//! Argument handling shared by the query fields: `asOf`, the sort direction, paging, and the
//! error codes clients can branch on (`extensions.code`).
//!
//! - `asOf` ([`parse_as_of`]): an RFC 3339 instant, default now; otherwise `BAD_AS_OF`.
//! - `limit` / `offset` ([`page`]): `limit` in `1..=10000` (default 100), `offset >= 0`;
//!   otherwise `BAD_ARGUMENT`.
//! - [`SORT_DIRECTION`]: the `ASC | DESC` enum ([`sort_direction_enum`], [`is_descending`]).

use async_graphql::dynamic::{
    Enum, EnumItem, InputValue, ObjectAccessor, SchemaBuilder, TypeRef, ValueAccessor,
};
use std::sync::Arc;

use async_graphql::Error;
use async_graphql::dynamic::ResolverContext;
use chrono::{DateTime, SubsecRound, Utc};

use super::explain::ExplainLog;
use crate::engine::{Engine, Session, StatementExplain};
use crate::error::ApiError;

/// The GraphQL name of the sort-direction enum.
pub(super) const SORT_DIRECTION: &str = "SortDirection";

/// Rows returned when `limit` is not given.
pub(super) const DEFAULT_LIMIT: u64 = 100;

/// The largest `limit` accepted.
pub(super) const MAX_LIMIT: u64 = 10_000;

/// The engine of the request's database.
pub(crate) fn engine<'a>(ctx: &ResolverContext<'a>) -> Result<&'a Arc<Engine>, Error> {
    ctx.data::<Arc<Engine>>()
        .map_err(|_| ApiError::internal("schema", "no engine attached to the schema").into())
}

/// The response path of the field being resolved (`saas.stageCounts`, `a.metrics`).
pub(crate) fn path(ctx: &ResolverContext<'_>) -> String {
    ctx.ctx
        .path_node
        .map(|p| p.to_string_vec().join("."))
        .unwrap_or_default()
}

/// A new session of the engine for the field being resolved, whose statements appear in
/// `extensions.explain` under the field's path.
pub(crate) fn session(ctx: &ResolverContext<'_>) -> Result<Session, Error> {
    let scope = ctx.data_opt::<Arc<crate::engine::RequestScope>>().cloned();
    let session = engine(ctx)?.session_for(scope);
    if let Ok(log) = ctx.data::<ExplainLog>() {
        log.watch(path(ctx), session.trace());
    }
    Ok(session)
}

/// Explains a field answered without SQL (from the loaded models): one entry without a
/// statement under the field's path.
pub(crate) fn explain_without_sql(ctx: &ResolverContext<'_>, label: &str) {
    if let Ok(log) = ctx.data::<ExplainLog>() {
        let trace = crate::engine::Trace::default();
        if let Ok(mut t) = trace.lock() {
            t.push(StatementExplain {
                label: label.to_owned(),
                sql: None,
                params: Vec::new(),
                join_path: Vec::new(),
                plan_micros: 0,
                db_millis: 0.0,
                source: Some("the loaded models (no SQL)".to_owned()),
                cache: None,
                cache_reason: None,
                rollup: None,
                plan: None,
            });
        }
        log.watch(path(ctx), trace);
    }
}

/// A `BAD_ARGUMENT` error, as GraphQL.
pub(super) fn bad_argument(message: impl Into<String>) -> Error {
    ApiError::BadArgument(message.into()).into_graphql()
}

/// The as-of instant of a request: `value` read as RFC 3339 (any offset, converted to UTC),
/// or now when absent; truncated to microseconds, the precision both backends store.
///
/// A value that is not an RFC 3339 instant gives `BAD_AS_OF` with the message
/// `asOf "2024-13-01" is not an RFC 3339 instant (expected e.g. 2024-12-01T00:00:00Z)`.
pub(super) fn parse_as_of(value: Option<&str>) -> Result<DateTime<Utc>, Error> {
    match value {
        None => Ok(Utc::now().trunc_subsecs(6)),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
            .map_err(|_| {
                ApiError::BadAsOf(format!(
                    "asOf {s:?} is not an RFC 3339 instant (expected e.g. 2024-12-01T00:00:00Z)"
                ))
                .into_graphql()
            }),
    }
}

/// The `asOf` argument: an optional RFC 3339 string.
pub(super) fn as_of_argument() -> InputValue {
    InputValue::new("asOf", TypeRef::named(TypeRef::STRING)).description(
        "The instant the answer is as of (RFC 3339, e.g. 2024-12-01T00:00:00Z; default: now). \
         Only rows known at that instant count: the same asOf gives the same answer after \
         more data arrives.",
    )
}

/// Reads the `asOf` argument of a field (see [`parse_as_of`]); an explicit null is now.
pub(super) fn as_of_arg(args: &ObjectAccessor<'_>) -> Result<DateTime<Utc>, Error> {
    let raw = match args.get("asOf") {
        Some(v) if !v.is_null() => Some(v.string()?),
        _ => None,
    };
    parse_as_of(raw)
}

/// The `SortDirection` enum: `ASC` | `DESC`.
pub(super) fn sort_direction_enum() -> Enum {
    Enum::new(SORT_DIRECTION)
        .description("Sort direction. Text sorts in byte order; nulls come last either way.")
        .item(EnumItem::new("ASC").description("Smallest first."))
        .item(EnumItem::new("DESC").description("Largest first."))
}

/// Whether a `SortDirection` value is `DESC` (null or absent is `ASC`).
pub(super) fn is_descending(value: Option<ValueAccessor<'_>>) -> Result<bool, Error> {
    match value {
        Some(v) if !v.is_null() => match v.enum_name()? {
            "ASC" => Ok(false),
            "DESC" => Ok(true),
            other => Err(bad_argument(format!("unknown sort direction {other:?}"))),
        },
        _ => Ok(false),
    }
}

/// Registers the shared types (`SortDirection`); registering them twice is harmless.
pub(super) fn register(builder: SchemaBuilder) -> SchemaBuilder {
    builder.register(sort_direction_enum())
}

/// A validated page: how many rows, after how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Page {
    /// At most this many rows, `1..=MAX_LIMIT`.
    pub limit: u64,
    /// Rows skipped first.
    pub offset: u64,
}

/// Validates `limit` (`1..=10000`, default 100) and `offset` (`>= 0`, default 0);
/// `BAD_ARGUMENT` otherwise.
pub(super) fn page(limit: Option<i64>, offset: Option<i64>) -> Result<Page, Error> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_argument(format!("limit must be between 1 and {MAX_LIMIT}, not {n}"))
            })?,
    };
    let offset = match offset {
        None => 0,
        Some(n) => u64::try_from(n)
            .map_err(|_| bad_argument(format!("offset must be 0 or more, not {n}")))?,
    };
    Ok(Page { limit, offset })
}

/// The `limit` argument.
pub(super) fn limit_argument() -> InputValue {
    InputValue::new("limit", TypeRef::named(TypeRef::INT)).description(format!(
        "At most this many rows, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
    ))
}

/// The `offset` argument.
pub(super) fn offset_argument() -> InputValue {
    InputValue::new("offset", TypeRef::named(TypeRef::INT))
        .description("Skip this many rows first (default 0), for paging with limit.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn code(e: &Error) -> Option<String> {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .map(|v| v.to_string())
    }

    #[test]
    fn as_of() {
        let t = parse_as_of(Some("2024-10-27T02:00:00+01:00")).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-10-27T01:00:00+00:00");
        let e = parse_as_of(Some("2024-13-01")).unwrap_err();
        assert_eq!(
            e.message,
            "asOf \"2024-13-01\" is not an RFC 3339 instant (expected e.g. 2024-12-01T00:00:00Z)"
        );
        assert_eq!(code(&e).as_deref(), Some("\"BAD_AS_OF\""));
        assert!(parse_as_of(None).is_ok());
    }

    #[test]
    fn paging() {
        assert_eq!(
            page(None, None).unwrap(),
            Page {
                limit: 100,
                offset: 0
            }
        );
        assert_eq!(
            page(Some(10_000), Some(7)).unwrap(),
            Page {
                limit: 10_000,
                offset: 7
            }
        );
        for (l, o) in [
            (Some(0), None),
            (Some(10_001), None),
            (Some(-1), None),
            (None, Some(-1)),
        ] {
            let e = page(l, o).unwrap_err();
            assert_eq!(code(&e).as_deref(), Some("\"BAD_ARGUMENT\""));
        }
    }
}
