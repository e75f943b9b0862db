//! The `asOf` cut of one table: the rows of the table that count as of the request's `asOf`
//! (docs/SEMANTIC-LAYER.md, "`as_of` kinds").

use std::sync::Arc;

use super::{Param, PlanError, Planner};
use crate::semantic::{AsOf, Shift, SqlConst, Table, TableSource};

/// The `asOf` cut of one table.
#[derive(Debug, Clone)]
pub struct CutNode {
    /// The logical table.
    pub table: Arc<Table>,
    /// The CTE name (`asof_<table>`).
    pub cte: String,
    /// Where the rows come from.
    pub source: CutSource,
    /// The conditions a row must meet, all of them (`column <= value` for the time
    /// columns, `column = value` for the conversion-variant column).
    pub conditions: Vec<CutCondition>,
    /// Keyed tables: only the latest row per key (of the rows meeting the conditions).
    pub latest: Option<LatestRow>,
    /// What the cut keeps.
    pub description: String,
}

/// Where a cut's rows come from.
#[derive(Debug, Clone)]
pub enum CutSource {
    /// A physical table: `"<namespace>"."<name>"`.
    Physical {
        /// The model's namespace.
        namespace: String,
        /// The physical table.
        name: String,
    },
    /// A SQL table: a query per dialect whose `$n` is `params[n - 1]`.
    Sql {
        /// The PostgreSQL text.
        postgres: Arc<str>,
        /// The SQLite text.
        sqlite: Arc<str>,
        /// `$1` (the as-of instant, shifted), then the table's constants.
        params: Vec<Param>,
    },
}

/// One condition of a cut.
#[derive(Debug, Clone, PartialEq)]
pub enum CutCondition {
    /// `column <= value`.
    AtMost(String, Param),
    /// `column = value`.
    Equals(String, Param),
}

/// Per key, the row with the greatest `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestRow {
    /// The business key.
    pub key: Vec<String>,
    /// The column ordering the rows of a key.
    pub by: String,
}

/// The CTE of the cut of `table` (`asof_<table>`).
pub(super) fn cte_name(table: &str) -> String {
    format!("asof_{table}")
}

/// The `$1`, `$2`, … of a SQL table: the as-of instant (moved back by `shift`), then its
/// constants. Empty for a physical table.
pub fn sql_params(table: &Table) -> Vec<Param> {
    let TableSource::Sql { params, .. } = &table.source else {
        return Vec::new();
    };
    std::iter::once(Param::AsOf(table.as_of_shift))
        .chain(params.iter().map(|v| {
            Param::Value(match v {
                SqlConst::Int(x) => sea_orm::Value::BigInt(Some(*x)),
                SqlConst::Float(x) => sea_orm::Value::Double(Some(*x)),
                SqlConst::Text(x) => sea_orm::Value::String(Some(x.clone())),
            })
        }))
        .collect()
}

/// The cut of `table`.
pub(super) fn plan(p: &mut Planner<'_>, table: &str) -> Result<CutNode, PlanError> {
    let t = p.table(table)?;
    let source = match &t.source {
        TableSource::Physical { namespace, table } => CutSource::Physical {
            namespace: namespace.clone(),
            name: table.clone(),
        },
        TableSource::Sql {
            postgres, sqlite, ..
        } => CutSource::Sql {
            postgres: postgres.clone(),
            sqlite: sqlite.clone(),
            params: sql_params(&t),
        },
    };
    let sh = t.as_of_shift;
    let le = |c: &String, p: Param| CutCondition::AtMost(c.clone(), p);
    let mut conditions = Vec::new();
    let mut latest = None;
    match &t.as_of {
        AsOf::Event { time } => conditions.push(le(time, Param::AsOf(sh))),
        AsOf::PartitionTs { ts, time, key } => {
            conditions.push(le(ts, Param::AsOfPartitionTs(sh)));
            if let Some(time) = time {
                conditions.push(le(time, Param::AsOf(sh)));
            }
            if !key.is_empty() {
                latest = Some(LatestRow {
                    key: key.clone(),
                    by: ts.clone(),
                });
            }
        }
        AsOf::PartitionDs { ds, time } => {
            conditions.push(le(ds, Param::AsOfDate(sh)));
            if let Some(time) = time {
                conditions.push(le(time, Param::AsOf(sh)));
            }
        }
        AsOf::Record { time, created } => {
            conditions.push(le(time, Param::AsOf(sh)));
            conditions.push(le(created, Param::AsOf(sh)));
        }
        AsOf::Type2 { key, updated } => {
            conditions.push(le(updated, Param::AsOf(sh)));
            latest = Some(LatestRow {
                key: key.clone(),
                by: updated.clone(),
            });
        }
        AsOf::Static | AsOf::Sql => {}
    }
    if let Some(cf) = &t.conversion_filter {
        conditions.push(CutCondition::Equals(
            cf.column.clone(),
            Param::ConversionFilter(cf.default.clone()),
        ));
    }
    Ok(CutNode {
        cte: cte_name(&t.name),
        description: description(&t),
        table: t,
        source,
        conditions,
        latest,
    })
}

fn description(t: &Table) -> String {
    let base = match &t.as_of {
        AsOf::Event { time } => format!("asOf cut of {}: event rows with {time} <= asOf", t.name),
        AsOf::PartitionTs { ts, time, key } => {
            let mut s = format!("asOf cut of {}: partitions {ts} <= asOf", t.name);
            if let Some(time) = time {
                s.push_str(&format!(" and {time} <= asOf"));
            }
            if !key.is_empty() {
                s.push_str(&format!(
                    "; per {} the row of the latest partition",
                    key.join(", ")
                ));
            }
            s
        }
        AsOf::PartitionDs { ds, time } => {
            let mut s = format!("asOf cut of {}: partitions {ds} <= date(asOf)", t.name);
            if let Some(time) = time {
                s.push_str(&format!(" and {time} <= asOf"));
            }
            s
        }
        AsOf::Record { time, created } => {
            format!(
                "asOf cut of {}: {time} <= asOf and {created} <= asOf",
                t.name
            )
        }
        AsOf::Type2 { key, updated } => format!(
            "asOf cut of {}: per {} the version with the greatest {updated} <= asOf",
            t.name,
            key.join(", ")
        ),
        AsOf::Static => format!("{}: not time-dependent", t.name),
        AsOf::Sql => format!("{}: SQL table, asOf bound as its $1", t.name),
    };
    match t.as_of_shift {
        Some(Shift::Seconds(x)) => format!("{base} (as of asOf minus {x} s)"),
        Some(Shift::Months(m)) => format!("{base} (as of asOf minus {m} month(s))"),
        None => base,
    }
}
