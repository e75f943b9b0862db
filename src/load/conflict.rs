//! Rows whose key is already stored: reading the stored rows back, comparing them with the
//! rows of a load column by column, and describing the differences.
//!
//! Values are compared as the database keeps them: decimals by value at the column's scale
//! (SQLite hands them back as floating point), timestamps to the microsecond (PostgreSQL's
//! resolution), JSON objects by content (key order aside); everything else exactly.

use std::collections::HashMap;

use chrono::SecondsFormat;
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query, ValueTuple};
use sea_orm::{ConnectionTrait, QueryResult, Value};

use super::schema::{Kind, TableSpec};
use crate::error::Error;

/// The rows stored under some keys: key text ([`key_text`]) → values in column order.
pub(crate) type StoredRows = HashMap<String, Vec<Value>>;

/// The values of `spec`'s key columns in `row`.
fn key_values<'a>(spec: &'a TableSpec, row: &'a [Value]) -> impl Iterator<Item = &'a Value> {
    spec.key.iter().map(move |&i| &row[i])
}

/// A text that identifies the key of `row` (equal keys give equal texts).
pub(crate) fn key_text(spec: &TableSpec, row: &[Value]) -> String {
    let mut out = String::new();
    for (n, &i) in spec.key.iter().enumerate() {
        if n > 0 {
            out.push('\u{1f}');
        }
        out.push_str(&canonical(spec.columns[i].kind, &row[i]));
    }
    out
}

/// The key of `row` for messages: `key user_id = "u1"` or `key (ts, user_id) = (…, …)`.
pub(crate) fn describe_key(spec: &TableSpec, row: &[Value]) -> String {
    let names: Vec<&str> = spec.key.iter().map(|&i| spec.columns[i].name).collect();
    let values: Vec<String> = spec
        .key
        .iter()
        .map(|&i| show(spec.columns[i].kind, &row[i]))
        .collect();
    if names.len() == 1 {
        format!("key {} = {}", names[0], values[0])
    } else {
        format!("key ({}) = ({})", names.join(", "), values.join(", "))
    }
}

/// A value as a text that is equal for values the database keeps as equal.
fn canonical(kind: Kind, v: &Value) -> String {
    match (kind, v) {
        (Kind::Decimal { scale, .. }, Value::Decimal(Some(d))) => {
            d.round_dp(scale).normalize().to_string()
        }
        (_, Value::ChronoDateTimeUtc(Some(t))) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        (_, Value::String(Some(s))) => s.clone(),
        _ => show(kind, v),
    }
}

/// The longest value shown in a message, in characters.
const SHOWN: usize = 80;

/// A value for messages: strings and JSON quoted (cut at [`SHOWN`] characters), `NULL`.
pub(crate) fn show(kind: Kind, v: &Value) -> String {
    let text = match v {
        Value::String(Some(s)) => format!("{s:?}"),
        Value::Int(Some(n)) => n.to_string(),
        Value::BigInt(Some(n)) => n.to_string(),
        Value::Decimal(Some(d)) => match kind {
            Kind::Decimal { scale, .. } => d.round_dp(scale).to_string(),
            _ => d.to_string(),
        },
        Value::Bool(Some(b)) => b.to_string(),
        Value::ChronoDateTimeUtc(Some(t)) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        Value::ChronoDate(Some(d)) => d.to_string(),
        Value::Json(Some(j)) => format!("{:?}", j.to_string()),
        _ => "NULL".to_owned(),
    };
    if text.chars().count() > SHOWN {
        let cut: String = text.chars().take(SHOWN).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Whether two values of a column are the same as the database keeps them.
fn same(kind: Kind, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Decimal(Some(x)), Value::Decimal(Some(y))) => match kind {
            Kind::Decimal { scale, .. } => x.round_dp(scale) == y.round_dp(scale),
            _ => x == y,
        },
        (Value::ChronoDateTimeUtc(Some(x)), Value::ChronoDateTimeUtc(Some(y))) => {
            (*x - *y).num_nanoseconds().is_some_and(|n| n.abs() < 1000)
        }
        (Value::Json(Some(x)), Value::Json(Some(y))) => x == y,
        _ => a == b,
    }
}

/// The columns (indexes) where `new` differs from `stored`.
pub(crate) fn differences(spec: &TableSpec, new: &[Value], stored: &[Value]) -> Vec<usize> {
    spec.columns
        .iter()
        .enumerate()
        .filter(|&(i, c)| !same(c.kind, &new[i], &stored[i]))
        .map(|(i, _)| i)
        .collect()
}

/// The differences for messages: `name "Ann" stored, "Anne" here; …`.
pub(crate) fn describe_differences(
    spec: &TableSpec,
    columns: &[usize],
    new: &[Value],
    stored: &[Value],
    stored_is: &str,
) -> String {
    columns
        .iter()
        .map(|&i| {
            let kind = spec.columns[i].kind;
            format!(
                "{} {} {stored_is}, {} here",
                spec.columns[i].name,
                show(kind, &stored[i]),
                show(kind, &new[i])
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads one stored value of `kind` at `index` of `row`.
fn read_value(row: &QueryResult, index: usize, kind: Kind) -> Result<Value, sea_orm::DbErr> {
    let i = index;
    Ok(match kind {
        Kind::Text => Value::String(row.try_get_by_index(i)?),
        Kind::Int32 => Value::Int(row.try_get_by_index(i)?),
        Kind::Int64 => Value::BigInt(row.try_get_by_index(i)?),
        Kind::Decimal { .. } => Value::Decimal(row.try_get_by_index(i)?),
        Kind::Bool => Value::Bool(row.try_get_by_index(i)?),
        Kind::Timestamp => Value::ChronoDateTimeUtc(row.try_get_by_index(i)?),
        Kind::Date => Value::ChronoDate(row.try_get_by_index(i)?),
        Kind::Json => Value::Json(
            row.try_get_by_index::<Option<serde_json::Value>>(i)?
                .map(Box::new),
        ),
    })
}

/// The stored rows of `spec`'s table whose key is that of one of `rows`, read through `conn`
/// (the load's transaction, or a connection of its own to see what was stored before it).
pub(crate) async fn stored_rows<C: ConnectionTrait>(
    conn: &C,
    spec: &TableSpec,
    rows: &[&[Value]],
) -> Result<StoredRows, Error> {
    let failed = |e: String| {
        Error::Database(format!(
            "cannot read the stored rows of {}.{}: {e}",
            spec.model, spec.table
        ))
    };
    let mut stored = StoredRows::new();
    // each row binds its key's values: stay under every backend's limit of parameters
    let per_statement = (super::MAX_PARAMS / spec.key.len().max(1)).max(1);
    for chunk in rows.chunks(per_statement) {
        let key_columns = spec
            .key
            .iter()
            .map(|&i| Expr::col(Alias::new(spec.columns[i].name)));
        let tuples = chunk
            .iter()
            .map(|row| ValueTuple::Many(key_values(spec, row).cloned().collect()));
        let mut select = Query::select();
        select
            .columns(spec.columns.iter().map(|c| Alias::new(c.name)))
            .from((Alias::new(spec.model), Alias::new(spec.table)))
            .and_where(Expr::tuple(key_columns).in_tuples(tuples));
        let statement = conn.get_database_backend().build(&select);
        let found = conn
            .query_all_raw(statement)
            .await
            .map_err(|e| failed(e.to_string()))?;
        for row in found {
            let values = spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| read_value(&row, i, c.kind))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| failed(e.to_string()))?;
            stored.insert(key_text(spec, &values), values);
        }
    }
    Ok(stored)
}

/// Overwrites the stored row with the key of `row` with `row`.
pub(crate) async fn replace<C: ConnectionTrait>(
    conn: &C,
    spec: &TableSpec,
    row: &[Value],
) -> Result<(), Error> {
    let mut update = Query::update();
    update.table((Alias::new(spec.model), Alias::new(spec.table)));
    for (i, column) in spec.columns.iter().enumerate() {
        if !spec.key.contains(&i) {
            update.value(Alias::new(column.name), row[i].clone());
        }
    }
    for &i in &spec.key {
        update.and_where(Expr::col(Alias::new(spec.columns[i].name)).eq(row[i].clone()));
    }
    let statement = conn.get_database_backend().build(&update);
    conn.execute_raw(statement).await.map_err(|e| {
        Error::Database(format!(
            "cannot replace a row of {}.{}: {e}",
            spec.model, spec.table
        ))
    })?;
    Ok(())
}
