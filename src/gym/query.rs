//! Filters, orderings and paging of the gym models, and the wrapper query built from them.
//!
//! The wrapper is `SELECT * FROM (<model file>) t WHERE … ORDER BY … LIMIT $n OFFSET $m`.
//! Column names come only from the model's fixed column list (an unknown name is an error,
//! never spliced); every value is a bound parameter (`$1` is the as-of instant).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sea_orm::Value;

use super::{Column, ColumnKind, ConversionFilter, Model};
use crate::db::Backend;
use crate::error::Error;

/// The most comparisons a filter may hold (leaves of the and/or/not tree).
pub const MAX_LEAVES: usize = 200;

/// The most values an `in` list, and a whole filter, may bind.
pub const MAX_IN_VALUES: usize = 1000;

/// The deepest an and/or/not tree may nest.
const MAX_DEPTH: usize = 16;

/// A comparison of one column with request values. Text compares in byte order on both
/// backends; local times (`YYYY-MM-DDTHH:MM:SS`) compare in time order, and a bare date
/// `YYYY-MM-DD` compares as the start of that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Equal to the value.
    Equals(String),
    /// Equal to one of the values (an empty list matches nothing).
    In(Vec<String>),
    /// Contains the value (case-sensitive substring).
    Contains(String),
    /// Greater than the value.
    Gt(String),
    /// Greater than or equal to the value.
    Gte(String),
    /// Less than the value.
    Lt(String),
    /// Less than or equal to the value.
    Lte(String),
    /// Null (`true`) or not null (`false`).
    IsNull(bool),
}

/// A row filter. A comparison with a null value is false (never unknown), so `Not` is the
/// exact complement of its filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// A condition on the column called `column` (a name of the model's column list).
    Column {
        /// The column's SQL name, e.g. `lead_status`.
        column: String,
        /// The comparison.
        condition: Condition,
    },
    /// Every filter holds (an empty list always holds).
    And(Vec<Filter>),
    /// At least one filter holds (an empty list never holds).
    Or(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending (nulls last).
    #[default]
    Asc,
    /// Descending (nulls last).
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// The column's SQL name, e.g. `local_user_created_at`.
    pub column: String,
    /// The direction.
    pub direction: Direction,
}

/// Which rows of a model, in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Only the rows this filter holds for (all rows when `None`).
    pub filter: Option<Filter>,
    /// Sort keys, then `user_id` ascending (and, for `fct_lead_conversions`, MEMBERSHIP,
    /// USER_CREDIT, ALL) to make the order total.
    pub order_by: Vec<OrderBy>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u64>,
    /// Skip this many rows first.
    pub offset: u64,
}

impl Default for Query {
    /// Every row, ordered by user.
    fn default() -> Self {
        Query {
            filter: None,
            order_by: Vec::new(),
            limit: None,
            offset: 0,
        }
    }
}

/// Accumulates bound values and hands out their placeholders (`$2`, `$3`, …).
struct Binds {
    values: Vec<Value>,
}

impl Binds {
    fn push(&mut self, v: Value) -> String {
        self.values.push(v);
        format!("${}", self.values.len())
    }
}

/// Builds the statement text and its values for `model` on `backend`.
pub(super) fn build(
    model: Model,
    backend: Backend,
    as_of: DateTime<Utc>,
    conversion_filter: Option<ConversionFilter>,
    query: &Query,
) -> Result<(String, Vec<Value>), Error> {
    let mut binds = Binds {
        values: vec![as_of.into()],
    };
    let mut conditions = Vec::new();
    if let Some(f) = conversion_filter {
        let p = binds.push(f.as_str().into());
        conditions.push(format!("t.client_conversion_event_filter = {p}"));
    }
    if let Some(filter) = &query.filter {
        let mut budget = Budget::default();
        conditions.push(render(model, backend, filter, &mut binds, &mut budget, 0)?);
    }
    let mut sql = String::with_capacity(model.sql(backend).len() + 256);
    sql.push_str("SELECT * FROM (\n");
    sql.push_str(model.sql(backend));
    sql.push_str("\n) t");
    if !conditions.is_empty() {
        sql.push_str("\nWHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str("\nORDER BY ");
    let mut keys = Vec::new();
    for o in &query.order_by {
        let c = column(model, &o.column)?;
        let dir = match o.direction {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        };
        keys.push(format!("{} {dir} NULLS LAST", sort_expr(backend, c)));
    }
    keys.push(format!(
        "{} ASC",
        sort_expr(backend, column(model, "user_id")?)
    ));
    if model == Model::LeadConversions {
        keys.push(
            "CASE t.client_conversion_event_filter WHEN 'MEMBERSHIP' THEN 1 \
             WHEN 'USER_CREDIT' THEN 2 ELSE 3 END ASC"
                .to_owned(),
        );
    }
    sql.push_str(&keys.join(", "));
    let limit = match query.limit {
        Some(n) => i64::try_from(n).unwrap_or(i64::MAX),
        None => -1,
    };
    let offset = i64::try_from(query.offset)
        .map_err(|_| Error::Input(format!("offset {} is too large", query.offset)))?;
    match (backend, limit) {
        // PostgreSQL has no "LIMIT -1"; LIMIT ALL is the same as none.
        (Backend::Postgres, -1) => {
            let o = binds.push(offset.into());
            sql.push_str(&format!("\nOFFSET {o}"));
        }
        _ => {
            let l = binds.push(limit.into());
            let o = binds.push(offset.into());
            sql.push_str(&format!("\nLIMIT {l} OFFSET {o}"));
        }
    }
    Ok((sql, binds.values))
}

/// The column called `name` of `model`, or an input error listing the columns.
fn column(model: Model, name: &str) -> Result<&'static Column, Error> {
    model.column(name).ok_or_else(|| {
        Error::Input(format!(
            "{} has no column {name:?} (columns: {})",
            model.name(),
            model
                .columns()
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// The column as a sort or range key: byte order on both backends.
fn sort_expr(backend: Backend, c: &Column) -> String {
    match backend {
        Backend::Postgres => format!("t.{} COLLATE \"C\"", c.name),
        Backend::Sqlite => format!("t.{}", c.name),
    }
}

/// How much of its budget a filter has used.
#[derive(Default)]
struct Budget {
    leaves: usize,
    values: usize,
}

/// Renders `filter` as a condition that is never null.
fn render(
    model: Model,
    backend: Backend,
    filter: &Filter,
    binds: &mut Binds,
    budget: &mut Budget,
    depth: usize,
) -> Result<String, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Input(format!(
            "the filter nests and/or/not more than {MAX_DEPTH} levels deep"
        )));
    }
    match filter {
        Filter::And(items) | Filter::Or(items) => {
            let (op, empty) = match filter {
                Filter::And(_) => (" AND ", "(1 = 1)"),
                _ => (" OR ", "(1 = 0)"),
            };
            if items.is_empty() {
                return Ok(empty.to_owned());
            }
            let parts = items
                .iter()
                .map(|f| render(model, backend, f, binds, budget, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("({})", parts.join(op)))
        }
        Filter::Not(inner) => Ok(format!(
            "(NOT {})",
            render(model, backend, inner, binds, budget, depth + 1)?
        )),
        Filter::Column {
            column: name,
            condition,
        } => {
            budget.leaves += 1;
            if budget.leaves > MAX_LEAVES {
                return Err(Error::Input(format!(
                    "the filter has more than {MAX_LEAVES} conditions"
                )));
            }
            let c = column(model, name)?;
            leaf(backend, c, condition, binds, budget)
        }
    }
}

/// Renders one comparison, wrapped in `(… IS TRUE)` so that it is false, not null, on a
/// null value.
fn leaf(
    backend: Backend,
    c: &Column,
    condition: &Condition,
    binds: &mut Binds,
    budget: &mut Budget,
) -> Result<String, Error> {
    let mut value = |v: &str, binds: &mut Binds| -> Result<String, Error> {
        budget.values += 1;
        if budget.values > MAX_IN_VALUES {
            return Err(Error::Input(format!(
                "the filter binds more than {MAX_IN_VALUES} values"
            )));
        }
        check_value(c, v)?;
        Ok(binds.push(v.to_owned().into()))
    };
    let col = format!("t.{}", c.name);
    let range = |op: &str, p: String| format!("({} {op} {p}) IS TRUE", sort_expr(backend, c));
    let sql = match condition {
        Condition::Equals(v) => format!("({col} = {}) IS TRUE", value(v, binds)?),
        Condition::In(vs) => {
            if vs.is_empty() {
                "(1 = 0)".to_owned()
            } else {
                let ps = vs
                    .iter()
                    .map(|v| value(v, binds))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({col} IN ({})) IS TRUE", ps.join(", "))
            }
        }
        Condition::Contains(v) => {
            let p = value(v, binds)?;
            match backend {
                Backend::Postgres => format!("(strpos({col}, {p}) > 0) IS TRUE"),
                Backend::Sqlite => format!("(instr({col}, {p}) > 0) IS TRUE"),
            }
        }
        Condition::Gt(v) => range(">", value(v, binds)?),
        Condition::Gte(v) => range(">=", value(v, binds)?),
        Condition::Lt(v) => range("<", value(v, binds)?),
        Condition::Lte(v) => range("<=", value(v, binds)?),
        Condition::IsNull(true) => format!("({col} IS NULL)"),
        Condition::IsNull(false) => format!("({col} IS NOT NULL)"),
    };
    Ok(sql)
}

/// Rejects a value a column can never be compared with meaningfully: a local time must be
/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`.
fn check_value(c: &Column, v: &str) -> Result<(), Error> {
    if c.kind != ColumnKind::LocalDateTime {
        return Ok(());
    }
    let ok = (v.len() == 10 && NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok())
        || (v.len() == 19 && NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{}: {v:?} is not a local time (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)",
            c.name
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-10-27T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn binds_every_value_and_names_only_known_columns() {
        let q = Query {
            filter: Some(Filter::Not(Box::new(Filter::Or(vec![
                Filter::Column {
                    column: "user_id".into(),
                    condition: Condition::In(vec!["a'; DROP TABLE x; --".into(), "b".into()]),
                },
                Filter::Column {
                    column: "local_user_created_at".into(),
                    condition: Condition::Gte("2024-10-27".into()),
                },
            ])))),
            order_by: vec![OrderBy {
                column: "branch_id".into(),
                direction: Direction::Desc,
            }],
            limit: Some(10),
            offset: 5,
        };
        let (sql, values) = build(
            Model::LeadConversions,
            Backend::Postgres,
            t0(),
            Some(ConversionFilter::All),
            &q,
        )
        .unwrap();
        assert!(!sql.contains("DROP TABLE"));
        assert_eq!(values.len(), 1 + 1 + 3 + 2);
        assert!(sql.contains("t.client_conversion_event_filter = $2"));
        assert!(sql.contains("(NOT ((t.user_id IN ($3, $4)) IS TRUE OR (t.local_user_created_at COLLATE \"C\" >= $5) IS TRUE))"));
        assert!(sql.contains(
            "ORDER BY t.branch_id COLLATE \"C\" DESC NULLS LAST, t.user_id COLLATE \"C\" ASC, CASE"
        ));
        assert!(sql.ends_with("LIMIT $6 OFFSET $7"));

        let bad = Query {
            filter: Some(Filter::Column {
                column: "user_id = user_id OR 1".into(),
                condition: Condition::IsNull(true),
            }),
            ..Query::default()
        };
        assert!(
            build(
                Model::ClientConversionEvents,
                Backend::Sqlite,
                t0(),
                None,
                &bad
            )
            .is_err()
        );
        let bad_time = Query {
            filter: Some(Filter::Column {
                column: "local_user_created_at".into(),
                condition: Condition::Lt("27/10/2024".into()),
            }),
            ..Query::default()
        };
        assert!(
            build(
                Model::ClientConversionEvents,
                Backend::Sqlite,
                t0(),
                None,
                &bad_time
            )
            .is_err()
        );
    }

    #[test]
    fn no_limit() {
        let (pg, v) = build(
            Model::ClientConversionEvents,
            Backend::Postgres,
            t0(),
            None,
            &Query::default(),
        )
        .unwrap();
        assert!(pg.ends_with("OFFSET $2") && !pg.contains("LIMIT $"));
        assert_eq!(v.len(), 2);
        let (lite, _) = build(
            Model::ClientConversionEvents,
            Backend::Sqlite,
            t0(),
            None,
            &Query::default(),
        )
        .unwrap();
        assert!(lite.ends_with("LIMIT $2 OFFSET $3"));
    }
}
