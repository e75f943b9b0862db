//! Execution: the only place the semantic layer runs SQL.
//!
//! [`run`] binds a [`Rendered`] statement's parameters for a request, runs it as one
//! statement, and reads every column by its planned type into JSON values (money as a
//! decimal string with two places, time buckets as text).

use std::time::{Duration, Instant};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Statement};
use serde_json::Value;

use crate::plan::OutType;
use crate::query::QuerySpec;
use crate::sql::Rendered;

/// The rows of a response and how long the database took.
#[derive(Debug, Clone)]
pub struct Rows {
    /// One `Vec` per row, one value per response column.
    pub rows: Vec<Vec<Value>>,
    /// Time spent in the database (including the transfer of rows).
    pub elapsed: Duration,
    /// The bound values, for `explain`.
    pub params: Vec<sea_orm::Value>,
}

/// Runs a rendered statement for `spec`.
pub async fn run(
    db: &DatabaseConnection,
    rendered: &Rendered,
    spec: &QuerySpec,
) -> Result<Rows, DbErr> {
    let params = rendered.bind(spec);
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        rendered.sql.clone(),
        params.clone(),
    );
    let started = Instant::now();
    let result = db.query_all_raw(stmt).await?;
    let elapsed = started.elapsed();
    let mut rows = Vec::with_capacity(result.len());
    for r in &result {
        let mut row = Vec::with_capacity(rendered.columns.len());
        for (i, (_, ty)) in rendered.columns.iter().enumerate() {
            row.push(read(r, i, *ty)?);
        }
        rows.push(row);
    }
    Ok(Rows {
        rows,
        elapsed,
        params,
    })
}

fn read(r: &QueryResult, i: usize, ty: OutType) -> Result<Value, DbErr> {
    Ok(match ty {
        OutType::Int => r
            .try_get_by_index::<Option<i64>>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        OutType::Bool => r
            .try_get_by_index::<Option<i64>>(i)?
            .map(|v| Value::Bool(v != 0))
            .unwrap_or(Value::Null),
        OutType::Float(dp) => r
            .try_get_by_index::<Option<f64>>(i)?
            .map(|v| {
                let v = match dp {
                    Some(dp) => round_half_away(v, dp).and_then(|d| d.to_f64()).unwrap_or(v),
                    None => v,
                };
                serde_json::Number::from_f64(v)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            })
            .unwrap_or(Value::Null),
        OutType::Decimal => r
            .try_get_by_index::<Option<f64>>(i)?
            .map(|v| Value::String(format_money(v)))
            .unwrap_or(Value::Null),
        OutType::String | OutType::Time => r
            .try_get_by_index::<Option<String>>(i)?
            .map(Value::String)
            .unwrap_or(Value::Null),
    })
}

/// Money as a decimal string with two places (`-0.00` is written `0.00`), rounded by
/// [`round_half_away`].
pub fn format_money(v: f64) -> String {
    let s = match round_half_away(v, 2) {
        Some(d) => format!("{d:.2}"),
        None => format!("{v:.2}"),
    };
    if s == "-0.00" { "0.00".to_owned() } else { s }
}

/// Rounds a double to `dp` decimal places, half away from zero, after reading it with 15
/// significant digits (as PostgreSQL turns a double into a decimal). The last-bit noise of
/// floating-point sums (SQLite) and exact decimal arithmetic (PostgreSQL) therefore round
/// alike: both backends return the same number. `None` for values a decimal cannot hold.
pub fn round_half_away(v: f64, dp: u32) -> Option<Decimal> {
    if !v.is_finite() {
        return None;
    }
    let d = Decimal::from_scientific(&format!("{v:.14e}")).ok()?;
    Some(d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rounds_like_postgres() {
        assert_eq!(format_money(425.515), "425.52");
        assert_eq!(format_money(1702.06 / 4.0), "425.52");
        assert_eq!(format_money(124.57499999999999), "124.58");
        assert_eq!(format_money(0.1 + 0.2), "0.30");
        assert_eq!(format_money(-0.001), "0.00");
        assert_eq!(format_money(-2.675), "-2.68");
        assert_eq!(
            round_half_away(1.0 / 3.0, 6).map(|d| d.to_string()),
            Some("0.333333".into())
        );
    }
}

/// Why [`query`] failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryFailed {
    /// The request is wrong (a code and a message for the user).
    #[error("{0}")]
    User(#[from] crate::query::QueryError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// Checks, plans, renders and runs one request without GraphQL (tests, tools, benchmarks).
pub async fn query(
    db: &DatabaseConnection,
    model: &crate::semantic::Model,
    spec: &QuerySpec,
) -> Result<(Rendered, Rows), QueryFailed> {
    spec.check(model)?;
    let dialect: &dyn crate::sql::Dialect = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => &crate::sql::Postgres,
        _ => &crate::sql::Sqlite,
    };
    if spec.timezone.is_some() && !dialect.time_zones() {
        return Err(crate::query::QueryError::new(
            "TIMEZONE_UNSUPPORTED",
            "time buckets in a zone other than UTC need PostgreSQL",
        )
        .into());
    }
    if dialect.name() == "sqlite" && crate::graphql::needs_tz_offsets(model) {
        crate::tz::ensure_offsets(db)
            .await
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    let plan = crate::plan::plan(model, spec, dialect.percentile_cont());
    let rendered = crate::sql::render(model, spec, &plan, dialect);
    let rows = run(db, &rendered, spec).await?;
    Ok((rendered, rows))
}
