//! Rollups: tally's pre-aggregated copies of event tables, declared in model files
//! (`[[rollup]]`, see `semantic::Rollup`), and the SQL that reads them.
//!
//! # Storage
//!
//! A rollup `r` of the event table `t` lives in the model's namespace as
//! `tally_rollup_<r>`: one row per UTC bucket (hour or day) and combination of the group-by
//! columns, with the bucket's start (`bucket`, stored like the event time), its end
//! (`bucket_end`) and per measure its partial (`p_<measure>`: the sum, count, distinct
//! count, minimum or maximum of the bucket's rows that pass the measure's filter).
//! `tally_rollup_status` holds one row per rollup: whether it is fresh, the definition it was
//! built for (a fingerprint of grain, columns, measures), when it was built, its rows, the
//! source's rows then, how long the build took, and per distinct count how many of its values
//! fell in more than one group (`distinct_check`).
//!
//! # Exact for every asOf
//!
//! A row of an event table counts as of T when its event time is `<= T`. The rows that count
//! as of T are therefore the rows of the buckets that end at or before T, plus the rows from
//! the start of T's bucket up to T. [`union_text`] is that union: the rollup's rows with
//! `bucket_end <= T`, and the source's rows with `start(T) <= time <= T` as one-row
//! partials. Every bucket the planner groups by (a day, week, month, quarter or year in UTC
//! over a day grain) is a union of whole grain buckets, so re-aggregating the partials (sum
//! of sums, sum of counts, min of minima, max of maxima) gives the same numbers as the raw
//! rows.
//!
//! # Distinct counts
//!
//! A distinct count's per-group counts sum to the distinct count of any coarser grouping
//! exactly when every value falls in one group (one bucket, one combination of the
//! columns). Each build checks that in its own transaction ([`rebuild_in`]) and records it;
//! the union's source rows carry the value itself (`v_<measure>`), which the reader counts
//! distinct, so the answer is the sum of the rollup's counts plus the distinct values of the
//! source rows. An exact rollup has no value both in a bucket ended by T and in T's bucket,
//! so no value is counted in both parts. A statement reading a distinct count checks, with
//! the freshness, that its build found it exact; otherwise it reads only source rows, whose
//! distinct count is the metric itself.
//!
//! # Freshness
//!
//! A rollup is valid only while its source table is unchanged since it was built. Staleness
//! triggers on the source (`migration::tally_state::create_staleness_triggers`, the pattern
//! of the saas stage history) mark its status stale on any write, by whoever writes. The
//! union reads the rollup only while its status row is fresh and of the current definition
//! (checked in the statement itself, so in the statement's snapshot); otherwise it reads the
//! source's rows before T's bucket instead, so an answer is never older than the data. The
//! loader rebuilds the rollups of the tables it wrote inside its transaction
//! ([`update_in_load`]); `tally rollup refresh`, `tally migrate` and the server's start
//! (where tally may write) rebuild stale ones ([`refresh`]).
//!
//! Only tally writes these tables, and only where it may write: never on a database given
//! with `--db` (read-only).

use std::time::Instant;

use chrono::Utc;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait, Value,
};

use crate::error::Error;
use crate::semantic::{
    Agg, ColType, Expr, ExprType, Model, ROLLUP_STATUS_TABLE, Rollup, RollupMeasure, SqlConst,
    Table,
};
use crate::sql::{Dialect, Sql, dialect_of};

/// The name of the staleness triggers of rollups (PostgreSQL; their prefix on SQLite).
pub const STALENESS_TRIGGER: &str = "tally_rollup_stale";

/// The status of one rollup, as its status row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The rollup's name.
    pub name: String,
    /// No write to its source since the build.
    pub fresh: bool,
    /// The definition it was built for ([`Rollup::definition`]).
    pub definition: String,
    /// When the last build finished (RFC 3339), if ever.
    pub built_at: Option<String>,
    /// Rows of the last build.
    pub row_count: i64,
    /// Rows of the source table at the last build.
    pub source_rows: i64,
    /// How long the last build took, in milliseconds.
    pub build_millis: i64,
    /// Per distinct-count measure, how many of its values fell in more than one group at
    /// the last build (`,orders:0,customers:12,`; 0: its partials sum exactly).
    pub distinct_check: String,
}

impl Status {
    /// How many values of the distinct count `measure` fell in more than one group of the
    /// rollup at its last build; `None` when the build did not check it.
    pub fn shared_values(&self, measure: &str) -> Option<i64> {
        self.distinct_check
            .split(',')
            .filter_map(|x| x.split_once(':'))
            .find(|(m, _)| *m == measure)
            .and_then(|(_, n)| n.parse().ok())
    }

    /// Whether the distinct count `measure` was exact at the last build (every value in one
    /// group).
    pub fn distinct_exact(&self, measure: &str) -> bool {
        self.shared_values(measure) == Some(0)
    }
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// The rollup (`model.name`).
    pub rollup: String,
    /// Rows written.
    pub rows: i64,
    /// Rows of its source table.
    pub source_rows: i64,
    /// Wall time of the build, in milliseconds.
    pub millis: i64,
    /// Per distinct-count measure, the values that fell in more than one group (0: exact).
    pub distinct: Vec<(String, i64)>,
}

impl std::fmt::Display for RefreshReport {
    /// `shop.daily_sales: 1234 rows from 56789 source rows in 0.3 s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows from {} source rows in {:.1} s",
            self.rollup,
            self.rows,
            self.source_rows,
            self.millis as f64 / 1000.0
        )?;
        for (m, shared) in &self.distinct {
            if *shared == 0 {
                write!(f, "; distinct count {m}: exact")?;
            } else {
                write!(
                    f,
                    "; distinct count {m}: {shared} values in more than one group (not answered from it)"
                )?;
            }
        }
        Ok(())
    }
}

fn db_err(what: &str) -> impl Fn(sea_orm::DbErr) -> Error + '_ {
    move |e| Error::Database(format!("rollup: {what}: {e}"))
}

fn plan_err(e: crate::plan::PlanError) -> Error {
    Error::Config(format!("rollup: {e}"))
}

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn qualified(ns: &str, table: &str) -> String {
    format!("{}.{}", q(ns), q(table))
}

/// The source table of `rollup` in `model`.
fn source_table<'m>(model: &'m Model, rollup: &Rollup) -> Result<&'m Table, Error> {
    model
        .table(&rollup.table)
        .map(|t| t.as_ref())
        .ok_or_else(|| Error::Config(format!("rollup {}: no table {}", rollup.name, rollup.table)))
}

/// The measure of `m`'s partial.
fn measure_of<'m>(
    model: &'m Model,
    m: &RollupMeasure,
) -> Result<&'m crate::semantic::Measure, Error> {
    model
        .measure(&m.measure)
        .ok_or_else(|| Error::Config(format!("rollup: no measure {}", m.measure)))
}

/// `CASE WHEN <filter> THEN <x> END`, or `x` without a filter.
fn filtered(
    filter: Option<&Expr>,
    x: Sql,
    otherwise: &str,
    table: &Table,
    d: &dyn Dialect,
) -> Result<Sql, Error> {
    let Some(f) = filter else {
        return Ok(x);
    };
    let mut s = Sql::raw("CASE WHEN ");
    s.append(crate::sql::model_expr(f, table, &table.name, d).map_err(plan_err)?);
    s.push(" THEN ");
    s.append(x);
    s.push(&format!("{otherwise} END"));
    Ok(s)
}

/// The value a distinct count `m` counts of one source row (NULL when the row does not pass
/// the measure's filter).
fn distinct_value(
    model: &Model,
    m: &RollupMeasure,
    table: &Table,
    d: &dyn Dialect,
) -> Result<Sql, Error> {
    let measure = measure_of(model, m)?;
    let e = measure
        .expr
        .as_ref()
        .ok_or_else(|| Error::Config(format!("rollup: measure {} has no expression", m.measure)))?;
    let x = crate::sql::model_expr(e, table, &table.name, d).map_err(plan_err)?;
    filtered(measure.filter.as_ref(), x, "", table, d)
}

/// `COUNT(DISTINCT <value>)`, text compared byte by byte where the dialect can (the same
/// groups: equal text is equal bytes; what the planner writes for distinct counts).
fn count_distinct(model: &Model, m: &RollupMeasure, table: &Table, d: &dyn Dialect, v: Sql) -> Sql {
    match d
        .byte_collation()
        .filter(|_| value_type(model, m, table) == ColType::String)
    {
        Some(c) => Sql::wrap("COUNT(DISTINCT ", v, &format!(" COLLATE {c})")),
        None => Sql::wrap("COUNT(DISTINCT ", v, ")"),
    }
}

/// The partial of `m` over one source row: the value a sum, minimum or maximum
/// aggregates (NULL when the row does not pass the filter), or 1/0 for a count; NULL for a
/// distinct count (whose rows carry their value in `v_<measure>` instead).
fn row_partial(
    model: &Model,
    m: &RollupMeasure,
    table: &Table,
    d: &dyn Dialect,
) -> Result<Sql, Error> {
    let measure = measure_of(model, m)?;
    let expr = |e: &Expr| crate::sql::model_expr(e, table, &table.name, d).map_err(plan_err);
    match m.agg {
        Agg::CountDistinct => Ok(Sql::raw("NULL")),
        Agg::Count => {
            let counted = match &measure.expr {
                Some(e) => Sql::wrap("CASE WHEN ", expr(e)?, " IS NULL THEN 0 ELSE 1 END"),
                None => Sql::raw("1"),
            };
            filtered(measure.filter.as_ref(), counted, " ELSE 0", table, d)
        }
        _ => {
            let e = measure.expr.as_ref().ok_or_else(|| {
                Error::Config(format!("rollup: measure {} has no expression", m.measure))
            })?;
            filtered(measure.filter.as_ref(), expr(e)?, "", table, d)
        }
    }
}

/// The partial of `m` over a bucket's source rows.
fn bucket_partial(
    model: &Model,
    m: &RollupMeasure,
    table: &Table,
    d: &dyn Dialect,
) -> Result<Sql, Error> {
    if m.is_distinct() {
        let v = distinct_value(model, m, table, d)?;
        return Ok(count_distinct(model, m, table, d, v));
    }
    let row = row_partial(model, m, table, d)?;
    Ok(match m.agg {
        Agg::Min => Sql::wrap("MIN(", row, ")"),
        Agg::Max => Sql::wrap("MAX(", row, ")"),
        // counts are sums of the rows' 1/0
        _ => Sql::wrap("SUM(", row, ")"),
    })
}

/// The source's time column of `rollup`, aliased by the table's name.
fn time_col(table: &Table, rollup: &Rollup) -> Sql {
    Sql::raw(&format!("{}.{}", q(&table.name), q(&rollup.time)))
}

/// `SELECT <lead>, <columns>, <partials> FROM <source> AS <table>\n<rest>`: per bucket
/// (`bucketed`: the partials aggregated, for a `GROUP BY`) or per row (then followed by the
/// values of the distinct counts).
fn select_source(
    model: &Model,
    rollup: &Rollup,
    d: &dyn Dialect,
    lead: Sql,
    bucketed: bool,
    rest: Sql,
) -> Result<Sql, Error> {
    let table = source_table(model, rollup)?;
    let mut s = Sql::raw("SELECT ");
    s.append(lead);
    for c in &rollup.columns {
        s.push(&format!(", {}.{}", q(&table.name), q(c)));
    }
    for m in &rollup.measures {
        s.push(", ");
        s.append(if bucketed {
            bucket_partial(model, m, table, d)?
        } else {
            row_partial(model, m, table, d)?
        });
    }
    if !bucketed {
        for m in rollup.distinct_measures() {
            s.push(", ");
            s.append(distinct_value(model, m, table, d)?);
        }
    }
    s.push(&format!(
        "\nFROM {} AS {}\n",
        qualified(&model.namespace, &rollup.physical),
        q(&table.name)
    ));
    s.append(rest);
    Ok(s)
}

/// `SELECT <bucket>, <bucket_end>, <columns>, <partials> FROM <source> GROUP BY …`: the
/// rollup's rows, computed from its source.
pub fn build_select(model: &Model, rollup: &Rollup, d: &dyn Dialect) -> Result<Sql, Error> {
    let table = source_table(model, rollup)?;
    let mut lead = d.utc_bucket(time_col(table, rollup), rollup.grain);
    lead.push(", ");
    lead.append(d.utc_bucket_end(time_col(table, rollup), rollup.grain));
    let groups: Vec<String> = (1..=rollup.columns.len() + 2)
        .map(|i| i.to_string())
        .collect();
    // a row without an event time never counts (NULL <= asOf is not true)
    let mut rest = Sql::raw("WHERE ");
    rest.append(time_col(table, rollup));
    rest.push(&format!(" IS NOT NULL\nGROUP BY {}", groups.join(", ")));
    select_source(model, rollup, d, lead, true, rest)
}

/// The column list of the rollup table, in the order of [`build_select`].
fn storage_columns(rollup: &Rollup) -> Vec<String> {
    let mut out = vec![q("bucket"), q("bucket_end")];
    out.extend(rollup.columns.iter().map(|c| q(c)));
    out.extend(rollup.measures.iter().map(|m| q(&m.column)));
    out
}

/// The type of `m`'s partial.
pub fn partial_type(model: &Model, m: &RollupMeasure, table: &Table) -> ColType {
    if matches!(m.agg, Agg::Count | Agg::CountDistinct) {
        return ColType::Int;
    }
    value_type(model, m, table)
}

/// The type of the value `m` aggregates over a row.
pub fn value_type(model: &Model, m: &RollupMeasure, table: &Table) -> ColType {
    let expr = model.measure(&m.measure).and_then(|x| x.expr.clone());
    match expr {
        Some(Expr::Column(c)) => table.column_type(&c).unwrap_or(ColType::Decimal),
        Some(e) => match e.infer(&|c| table.column_type(c).map(ExprType::of_col)) {
            Ok(ExprType::Time) => ColType::Time,
            Ok(ExprType::String) => ColType::String,
            _ => ColType::Decimal,
        },
        None => ColType::Decimal,
    }
}

/// `CREATE TABLE IF NOT EXISTS` of the rollup's table.
fn create_table(model: &Model, rollup: &Rollup, d: &dyn Dialect) -> Result<String, Error> {
    let table = source_table(model, rollup)?;
    let time = d.column_sql_type(ColType::Time);
    let mut cols = vec![
        format!("{} {time} NOT NULL", q("bucket")),
        format!("{} {time} NOT NULL", q("bucket_end")),
    ];
    for c in &rollup.columns {
        let ty = table.column_type(c).unwrap_or(ColType::String);
        cols.push(format!("{} {}", q(c), d.column_sql_type(ty)));
    }
    for m in &rollup.measures {
        let ty = partial_type(model, m, table);
        let ty = if m.agg == Agg::Sum && ty == ColType::Int {
            ColType::Decimal
        } else {
            ty
        };
        cols.push(format!("{} {}", q(&m.column), d.column_sql_type(ty)));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        qualified(&model.namespace, &rollup.storage_table()),
        cols.join(", ")
    ))
}

/// The condition "the rollup's status is fresh, of its current definition, and each of the
/// distinct counts `exact` was exact at its build (every value in one group)", over bound
/// values.
fn fresh_condition(model: &Model, rollup: &Rollup, exact: &[String]) -> Sql {
    let mut s = Sql::raw(&format!(
        "EXISTS (SELECT 1 FROM {} WHERE \"name\" = ",
        qualified(&model.namespace, ROLLUP_STATUS_TABLE)
    ));
    s.value(rollup.name.clone());
    s.push(" AND \"fresh\" = 1 AND \"definition\" = ");
    s.value(rollup.definition(model));
    for m in exact {
        // `,orders:0,` among the checks; `_` and `%` of a name matched as themselves
        let name = m
            .replace('\\', "\\\\")
            .replace('_', "\\_")
            .replace('%', "\\%");
        s.push(" AND \"distinct_check\" LIKE ");
        s.value(format!("%,{name}:0,%"));
        s.push(" ESCAPE '\\'");
    }
    s.push(")");
    s
}

/// The source's rows meeting `cond` as one-row partials, in the columns of the rollup.
fn source_rows(model: &Model, rollup: &Rollup, d: &dyn Dialect, cond: Sql) -> Result<Sql, Error> {
    let table = source_table(model, rollup)?;
    select_source(
        model,
        rollup,
        d,
        time_col(table, rollup),
        false,
        Sql::wrap("WHERE ", cond, ""),
    )
}

/// The rows of `rollup`'s table as of `$1` as a SQL table's text (for `d`) and the
/// constants it binds as `$2`, `$3`, …: the rollup's buckets that end at or before `$1`,
/// and the source's rows from the start of `$1`'s bucket up to `$1` as one-row partials
/// (all the source's rows up to `$1` when the rollup is not fresh, or when one of the
/// distinct counts `exact` was not exact at its build). The columns are the event time (a
/// bucket's start for rollup rows), the group-by columns, the partials (NULL for a distinct
/// count in a source row) and the values of the distinct counts (NULL in rollup rows).
pub fn union_text(
    model: &Model,
    rollup: &Rollup,
    d: &dyn Dialect,
    exact: &[String],
) -> Result<(String, Vec<SqlConst>), Error> {
    let table = source_table(model, rollup)?;
    let as_of = || Sql::raw("$1");
    let mut s = Sql::raw(&format!("SELECT {} AS {}", q("bucket"), q(&rollup.time)));
    for c in &rollup.columns {
        s.push(&format!(", {}", q(c)));
    }
    for m in &rollup.measures {
        s.push(&format!(", {}", q(&m.column)));
    }
    for m in rollup.distinct_measures() {
        s.push(&format!(", NULL AS {}", q(&m.value_column())));
    }
    s.push(&format!(
        "\nFROM {}\nWHERE {} <= $1 AND ",
        qualified(&model.namespace, &rollup.storage_table()),
        q("bucket_end")
    ));
    s.append(fresh_condition(model, rollup, exact));
    // the rows of asOf's bucket up to asOf
    let mut tail = time_col(table, rollup);
    tail.push(" >= ");
    tail.append(d.utc_bucket(as_of(), rollup.grain));
    tail.push(" AND ");
    tail.append(time_col(table, rollup));
    tail.push(" <= $1");
    s.push("\nUNION ALL\n");
    s.append(source_rows(model, rollup, d, tail)?);
    // A rollup that is not fresh is not read: the earlier rows come from the source. The
    // bound is one scalar subquery, computed once (NULL, so no row, while it is fresh), that
    // both backends use as the bound of an index range instead of testing every row.
    let mut before = time_col(table, rollup);
    before.push(" < (SELECT CASE WHEN ");
    before.append(fresh_condition(model, rollup, exact));
    before.push(" THEN NULL ELSE ");
    before.append(d.utc_bucket(as_of(), rollup.grain));
    before.push(" END)");
    s.push("\nUNION ALL\n");
    s.append(source_rows(model, rollup, d, before)?);
    let (text, values) = s.numbered(2).map_err(plan_err)?;
    let consts = values
        .into_iter()
        .map(|v| match v {
            Value::BigInt(Some(x)) => Ok(SqlConst::Int(x)),
            Value::Double(Some(x)) => Ok(SqlConst::Float(x)),
            Value::String(Some(x)) => Ok(SqlConst::Text(x)),
            other => Err(Error::Config(format!(
                "rollup {}: a constant {other:?} a SQL table cannot bind",
                rollup.name
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((text, consts))
}

/// The status table's DDL (idempotent).
fn status_ddl(ns: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\"name\" TEXT PRIMARY KEY, \"source_table\" TEXT NOT NULL, \
         \"fresh\" BIGINT NOT NULL, \"definition\" TEXT NOT NULL, \"built_at\" TEXT, \
         \"row_count\" BIGINT NOT NULL, \"source_rows\" BIGINT NOT NULL, \
         \"build_millis\" BIGINT NOT NULL, \"distinct_check\" TEXT NOT NULL DEFAULT '')",
        qualified(ns, ROLLUP_STATUS_TABLE)
    )
}

/// Adds the columns later versions of tally keep in the status table to one an earlier
/// version created (`distinct_check`).
async fn upgrade_status(conn: &impl ConnectionTrait, ns: &str) -> Result<(), Error> {
    let (sql, values) = dialect_of(conn).columns_query(ns, ROLLUP_STATUS_TABLE);
    let columns = conn
        .query_all_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await
        .map_err(db_err("reading its status table's columns"))?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err("reading its status table's columns"))?;
    if !columns.iter().any(|c| c == "distinct_check") {
        conn.execute_unprepared(&format!(
            "ALTER TABLE {} ADD COLUMN \"distinct_check\" TEXT NOT NULL DEFAULT ''",
            qualified(ns, ROLLUP_STATUS_TABLE)
        ))
        .await
        .map_err(db_err("adding distinct_check to its status table"))?;
    }
    Ok(())
}

/// Creates the status table of `model`'s rollups and the staleness triggers on their source
/// tables when missing (only where tally may write). Nothing for a model without rollups.
pub async fn ensure(conn: &impl ConnectionTrait, model: &Model) -> Result<(), Error> {
    if model.rollups.is_empty() {
        return Ok(());
    }
    conn.execute_unprepared(&status_ddl(&model.namespace))
        .await
        .map_err(db_err("creating its status table"))?;
    upgrade_status(conn, &model.namespace).await?;
    let mut sources: Vec<&str> = model.rollups.iter().map(|r| r.physical.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    migration::tally_state::create_staleness_triggers(
        conn,
        &migration::tally_state::Staleness {
            namespace: &model.namespace,
            status: ROLLUP_STATUS_TABLE,
            trigger: STALENESS_TRIGGER,
            sources: &sources,
            rows: "source_table = {source}",
        },
    )
    .await
    .map_err(db_err("creating its staleness triggers"))
}

/// The statement that answers a row when `model`'s namespace holds the rollups' status
/// table (for `d`, on `backend`).
pub fn status_exists_statement(
    d: &dyn Dialect,
    backend: sea_orm::DbBackend,
    model: &Model,
) -> Statement {
    Statement::from_sql_and_values(
        backend,
        d.table_exists_query(&model.namespace),
        [ROLLUP_STATUS_TABLE.into()],
    )
}

/// The statement reading the status rows of `model`'s rollups (every column, so a table an
/// earlier version of tally created, without the later columns, is read too).
pub fn status_statement(backend: sea_orm::DbBackend, model: &Model) -> Statement {
    Statement::from_string(
        backend,
        format!(
            "SELECT * FROM {} ORDER BY \"name\"",
            qualified(&model.namespace, ROLLUP_STATUS_TABLE)
        ),
    )
}

/// The statuses of the rows of a [`status_statement`].
pub fn parse_statuses(rows: &[sea_orm::QueryResult]) -> Result<Vec<Status>, Error> {
    rows.iter().map(read_status).collect()
}

/// The status rows of `model`'s rollups; `None` when its namespace has no status table
/// (tally never built a rollup in this database).
pub async fn statuses(
    conn: &impl ConnectionTrait,
    model: &Model,
) -> Result<Option<Vec<Status>>, Error> {
    let backend = conn.get_database_backend();
    let exists = conn
        .query_one_raw(status_exists_statement(dialect_of(conn), backend, model))
        .await
        .map_err(db_err("looking for its status"))?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let rows = conn
        .query_all_raw(status_statement(backend, model))
        .await
        .map_err(db_err("reading its status"))?;
    parse_statuses(&rows).map(Some)
}

fn read_status(r: &sea_orm::QueryResult) -> Result<Status, Error> {
    let e = db_err("reading its status");
    Ok(Status {
        name: r.try_get::<String>("", "name").map_err(&e)?,
        fresh: r.try_get::<i64>("", "fresh").map_err(&e)? != 0,
        definition: r.try_get::<String>("", "definition").map_err(&e)?,
        built_at: r.try_get::<Option<String>>("", "built_at").map_err(&e)?,
        row_count: r.try_get::<i64>("", "row_count").map_err(&e)?,
        source_rows: r.try_get::<i64>("", "source_rows").map_err(&e)?,
        build_millis: r.try_get::<i64>("", "build_millis").map_err(&e)?,
        // absent from a status table of an earlier tally: no distinct count checked
        distinct_check: r
            .try_get::<String>("", "distinct_check")
            .unwrap_or_default(),
    })
}

/// Rebuilds `rollup` of `model` inside `txn` and marks it fresh there (its table is
/// recreated when it was built for another definition). The status table must exist
/// ([`ensure`]). On PostgreSQL the status row is locked first, so the rebuild waits for
/// writers of the source still in flight (their triggers hold it) and none can slip in.
pub async fn rebuild_in(
    txn: &DatabaseTransaction,
    model: &Model,
    rollup: &Rollup,
) -> Result<RefreshReport, Error> {
    let d = dialect_of(txn);
    let backend = txn.get_database_backend();
    let started = Instant::now();
    let status = qualified(&model.namespace, ROLLUP_STATUS_TABLE);
    let definition = rollup.definition(model);
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO {status} (\"name\", \"source_table\", \"fresh\", \"definition\", \"built_at\", \
             \"row_count\", \"source_rows\", \"build_millis\") VALUES ($1, $2, 0, '', NULL, 0, 0, 0) \
             ON CONFLICT (\"name\") DO NOTHING"
        ),
        [rollup.name.clone().into(), rollup.physical.clone().into()],
    ))
    .await
    .map_err(db_err("adding its status"))?;
    let lock = match d.for_update() {
        Some(for_update) => {
            format!("SELECT \"definition\" FROM {status} WHERE \"name\" = $1{for_update}")
        }
        None => format!(
            "UPDATE {status} SET \"fresh\" = 0 WHERE \"name\" = $1 RETURNING \"definition\""
        ),
    };
    let before = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            lock,
            [rollup.name.clone().into()],
        ))
        .await
        .map_err(db_err("locking its status"))?
        .map(|r| r.try_get_by_index::<String>(0))
        .transpose()
        .map_err(db_err("locking its status"))?
        .unwrap_or_default();
    let storage = qualified(&model.namespace, &rollup.storage_table());
    if before != definition {
        txn.execute_unprepared(&format!("DROP TABLE IF EXISTS {storage}"))
            .await
            .map_err(db_err("dropping its table of another definition"))?;
    }
    txn.execute_unprepared(&create_table(model, rollup, d)?)
        .await
        .map_err(db_err("creating its table"))?;
    // writes to tally's rollup tables move the namespace's data version like any other
    migration::tally_state::data_version_triggers(
        txn,
        &model.namespace,
        Some(&[rollup.storage_table().as_str(), ROLLUP_STATUS_TABLE]),
    )
    .await
    .map_err(db_err("installing its data-version triggers"))?;
    txn.execute_unprepared(&format!("DELETE FROM {storage}"))
        .await
        .map_err(db_err("clearing it"))?;
    let mut insert = Sql::raw(&format!(
        "INSERT INTO {storage} ({})\n",
        storage_columns(rollup).join(", ")
    ));
    insert.append(build_select(model, rollup, d)?);
    let rows = txn
        .execute_raw(insert.to_statement(d, backend).map_err(plan_err)?)
        .await
        .map_err(db_err("building it"))?
        .rows_affected();
    let rows = i64::try_from(rows).unwrap_or(i64::MAX);
    let source_rows = txn
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                "SELECT COUNT(*) FROM {}",
                qualified(&model.namespace, &rollup.physical)
            ),
        ))
        .await
        .map_err(db_err("counting its source"))?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()
        .map_err(db_err("counting its source"))?
        .unwrap_or(0);
    let mut distinct = Vec::new();
    for m in rollup.distinct_measures() {
        distinct.push((
            m.measure.clone(),
            shared_values(txn, model, rollup, m).await?,
        ));
    }
    let check: String = distinct.iter().map(|(m, n)| format!("{m}:{n},")).collect();
    let check = if check.is_empty() {
        String::new()
    } else {
        format!(",{check}")
    };
    let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE {status} SET \"fresh\" = 1, \"definition\" = $1, \"built_at\" = $2, \
             \"row_count\" = $3, \"source_rows\" = $4, \"build_millis\" = $5, \"source_table\" = $6, \
             \"distinct_check\" = $8 WHERE \"name\" = $7"
        ),
        [
            definition.into(),
            Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .into(),
            rows.into(),
            source_rows.into(),
            millis.into(),
            rollup.physical.clone().into(),
            rollup.name.clone().into(),
            check.into(),
        ],
    ))
    .await
    .map_err(db_err("recording its status"))?;
    Ok(RefreshReport {
        rollup: format!("{}.{}", model.name, rollup.name),
        rows,
        source_rows,
        millis,
        distinct,
    })
}

/// How many values of the distinct count `m` fall in more than one group (bucket and
/// combination of the columns) of `rollup`, just built in `txn` (so in the build's
/// snapshot): 0 when the sum of its partials equals the distinct count over the whole
/// table (each value counted once in exactly one group), else the values seen in several
/// groups (a `GROUP BY value HAVING COUNT(*) > 1` over the distinct groups of each value).
async fn shared_values(
    txn: &DatabaseTransaction,
    model: &Model,
    rollup: &Rollup,
    m: &RollupMeasure,
) -> Result<i64, Error> {
    let d = dialect_of(txn);
    let backend = txn.get_database_backend();
    let table = source_table(model, rollup)?;
    let source = qualified(&model.namespace, &rollup.physical);
    let mut counted = time_col(table, rollup);
    counted.push(" IS NOT NULL");
    let mut sum = Sql::raw(&format!(
        "(SELECT COALESCE(SUM({}), 0) FROM {}) - (SELECT ",
        q(&m.column),
        qualified(&model.namespace, &rollup.storage_table())
    ));
    sum.append(count_distinct(
        model,
        m,
        table,
        d,
        distinct_value(model, m, table, d)?,
    ));
    sum.push(&format!(" FROM {source} AS {} WHERE ", q(&table.name)));
    sum.append(counted.clone());
    sum.push(")");
    // a numeric sum less a count: an integer
    let sum = Sql::wrap("SELECT ", d.int(sum), "");
    let one = |sql: Sql, what: &'static str| async move {
        txn.query_one_raw(sql.to_statement(d, backend).map_err(plan_err)?)
            .await
            .map_err(db_err(what))?
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()
            .map_err(db_err(what))
            .map(Option::unwrap_or_default)
    };
    let extra = one(sum, "checking its distinct counts").await?;
    if extra == 0 {
        return Ok(0);
    }
    // the values in more than one group
    let mut probe = Sql::raw("SELECT COUNT(*) FROM (SELECT \"v\" FROM (SELECT DISTINCT ");
    probe.append(distinct_value(model, m, table, d)?);
    probe.push(" AS \"v\", ");
    probe.append(d.utc_bucket(time_col(table, rollup), rollup.grain));
    probe.push(" AS \"tally_bucket\"");
    for c in &rollup.columns {
        probe.push(&format!(", {}.{}", q(&table.name), q(c)));
    }
    probe.push(&format!(" FROM {source} AS {} WHERE ", q(&table.name)));
    probe.append(counted);
    probe.push(") AS \"tally_groups\" WHERE \"v\" IS NOT NULL GROUP BY \"v\" HAVING COUNT(*) > 1) AS \"tally_shared\"");
    one(probe, "finding values in several groups").await
}

/// Rebuilds every rollup of `model` that is not fresh for its current definition (every
/// one with `all`), each in its own transaction; creates the status table and triggers
/// first. Only where tally may write.
pub async fn refresh(
    db: &DatabaseConnection,
    model: &Model,
    all: bool,
) -> Result<Vec<RefreshReport>, Error> {
    if model.rollups.is_empty() {
        return Ok(Vec::new());
    }
    ensure(db, model).await?;
    let current = statuses(db, model).await?.unwrap_or_default();
    let mut out = Vec::new();
    for rollup in &model.rollups {
        let fresh = current
            .iter()
            .any(|s| s.name == rollup.name && s.fresh && s.definition == rollup.definition(model));
        if fresh && !all {
            continue;
        }
        let txn = db.begin().await.map_err(db_err("beginning a refresh"))?;
        let report = rebuild_in(&txn, model, rollup).await?;
        txn.commit().await.map_err(db_err("committing it"))?;
        out.push(report);
    }
    Ok(out)
}

/// Brings the rollups of the model loaded as `model_name` up to date inside the load's
/// transaction `txn` (the models are those tally serves: the models folder, or the
/// embedded ones), so data and rollups commit together. Done in a savepoint: a failure is
/// logged and the load still commits, with the rollups marked stale by their triggers (and
/// not read until rebuilt).
pub async fn update_in_load(txn: &DatabaseTransaction, model_name: &str) -> Vec<RefreshReport> {
    let Ok(models) = crate::semantic::load_default(None) else {
        return Vec::new();
    };
    let Some(model) = models.iter().find(|m| m.name == model_name) else {
        return Vec::new();
    };
    if model.rollups.is_empty() {
        return Vec::new();
    }
    let outcome = async {
        let savepoint = txn.begin().await.map_err(db_err("beginning a savepoint"))?;
        ensure(&savepoint, model).await?;
        let mut out = Vec::new();
        for rollup in &model.rollups {
            out.push(rebuild_in(&savepoint, model, rollup).await?);
        }
        savepoint.commit().await.map_err(db_err("committing it"))?;
        Ok::<_, Error>(out)
    }
    .await;
    match outcome {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("rollups of {model_name} not rebuilt (not used until they are): {e}");
            Vec::new()
        }
    }
}

/// [`refresh`] for each of `models` (the server's start where tally may write, `tally
/// migrate`, `tally rollup refresh`).
pub async fn refresh_all<M: std::borrow::Borrow<Model>>(
    db: &DatabaseConnection,
    models: &[M],
    all: bool,
) -> Result<Vec<RefreshReport>, Error> {
    let mut out = Vec::new();
    for model in models {
        out.extend(refresh(db, model.borrow(), all).await?);
    }
    Ok(out)
}
