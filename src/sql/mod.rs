//! From a [`Plan`] to one parameterised SQL statement per dialect.
//!
//! SQL is assembled from [`Sql`] fragments: text with a marker where each parameter goes,
//! and the parameters in order. Only validated identifiers (model, table, column names) and
//! tally's own constants reach the text; every value from a model file or a request is a
//! [`Param`], bound when the statement runs. The [`Dialect`] trait holds what differs between
//! PostgreSQL and SQLite; [`lexer`] is the one place that reads SQL text (the SQL files of SQL
//! tables). Each plan node is rendered by its own module under `render/`.

mod dialect;
pub mod interrupt;
pub mod policy;
pub mod prune;

mod render;

pub use crate::plan::{AsOfText, BindAs, Bindings, Param};
pub use dialect::{
    Access, Dialect, Introspection, NamespaceVersion, Postgres, SQLITE_STATE, Sqlite,
    VersionMechanism, VersionProbe, dialect_of, dialect_of_url, sqlite_model_path,
};

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::plan::{OutType, Plan, PlanError};
use crate::query::QuerySpec;
use crate::semantic::Table;

/// Where a parameter marker sits in [`Sql::text`].
const MARK: char = '\u{1}';

/// A fragment of SQL text and its parameters, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    /// Text without parameters.
    pub fn raw(s: &str) -> Sql {
        Sql {
            text: s.to_owned(),
            params: Vec::new(),
        }
    }
    /// `pre` + `x` + `post`.
    pub fn wrap(pre: &str, x: Sql, post: &str) -> Sql {
        let mut s = Sql::raw(pre);
        s.append(x);
        s.push(post);
        s
    }
    /// Appends text.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    /// Appends a parameter.
    pub fn param(&mut self, p: Param) {
        self.text.push(MARK);
        self.params.push(p);
    }
    /// Appends another fragment.
    pub fn append(&mut self, other: Sql) {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
    }
    /// A quoted identifier (names are validated identifiers; quotes are doubled anyway).
    pub fn ident(name: &str) -> Sql {
        Sql::raw(&quote(name))
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Appends a bound constant (a value tally computed, never spliced into the text).
    pub fn value(&mut self, v: impl Into<Value>) {
        self.param(Param::Value(v.into()));
    }

    /// The statement of a fragment whose parameters are all constants ([`Sql::value`], the
    /// values of a [`file`]), for `dialect`: its text with the dialect's placeholders and the
    /// values. A parameter that needs a request to bind is an internal error.
    pub fn to_statement(
        self,
        dialect: &dyn Dialect,
        backend: sea_orm::DatabaseBackend,
    ) -> Result<sea_orm::Statement, PlanError> {
        self.to_statement_for(dialect, backend, None)
    }

    /// [`Sql::to_statement`], with the caller attributes of its row policies
    /// ([`Param::Caller`], see [`policy::apply`]) bound from `caller` (checked first with
    /// [`crate::plan::check_caller`]).
    pub fn to_statement_for(
        self,
        dialect: &dyn Dialect,
        backend: sea_orm::DatabaseBackend,
        caller: Option<&crate::plan::Attributes>,
    ) -> Result<sea_orm::Statement, PlanError> {
        let (text, params) = self.finish(dialect);
        let values = params
            .into_iter()
            .map(|p| match p {
                Param::Value(v) => Ok(v),
                Param::Caller(c) if caller.is_some() => Ok(crate::plan::caller_value(&c, caller)),
                other => Err(PlanError::new(format!(
                    "a constant statement has the request parameter {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(sea_orm::Statement::from_sql_and_values(
            backend, text, values,
        ))
    }

    /// The text with the dialect's placeholders, and the parameters.
    fn finish(self, dialect: &dyn Dialect) -> (String, Vec<Param>) {
        let mut text = String::with_capacity(self.text.len() + 16);
        let mut n = 0;
        for c in self.text.chars() {
            if c == MARK {
                n += 1;
                text.push_str(&dialect.placeholder(n));
            } else {
                text.push(c);
            }
        }
        (text, self.params)
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL file as a fragment: its text (comments and all) with every `$n` outside quotes and
/// comments bound to `values[n - 1]` (read by the one lexer); a `$n` without a value is an
/// internal error.
pub fn file(text: &str, values: Vec<Value>) -> Result<Sql, PlanError> {
    let params: Vec<Param> = values.into_iter().map(Param::Value).collect();
    render::sql_file(text, &params, false)
}

/// An expression of a model file over the columns of `table` (aliased `alias`) for
/// `dialect`, its literals as bound constants (tally's own statements over a table: a
/// rollup's build and its union with the newest rows).
pub fn model_expr(
    e: &crate::semantic::Expr,
    table: &Table,
    alias: &str,
    dialect: &dyn Dialect,
) -> Result<Sql, PlanError> {
    render::expr_sql(dialect, e, table, alias)
}

impl Sql {
    /// The text in the form of a SQL table's (`$first`, `$first + 1`, … where its
    /// parameters go) and its constant values; a parameter that needs a request to bind is
    /// an internal error.
    pub fn numbered(self, first: usize) -> Result<(String, Vec<Value>), PlanError> {
        let mut text = String::with_capacity(self.text.len() + 16);
        let mut n = first;
        for c in self.text.chars() {
            if c == MARK {
                text.push_str(&format!("${n}"));
                n += 1;
            } else {
                text.push(c);
            }
        }
        let values = self
            .params
            .into_iter()
            .map(|p| match p {
                Param::Value(v) => Ok(v),
                other => Err(PlanError::new(format!(
                    "a constant fragment has the request parameter {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((text, values))
    }
}

/// A rendered statement: SQL text with the dialect's placeholders, and what each binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The statement.
    pub sql: String,
    /// One per placeholder, in order.
    pub params: Vec<Param>,
    /// The response columns: key and type.
    pub columns: Vec<(String, OutType)>,
    /// The tables joined (for `explain`).
    pub join_path: Vec<String>,
    /// Whether the statement embeds a SQL table (a model's own query file). Such files can
    /// hold whole pipelines, or branches that never run, which PostgreSQL's JIT compiles
    /// anyway: the engine runs these statements with JIT off (`crate::sql::interrupt::arm`).
    pub embeds_sql_tables: bool,
}

impl Rendered {
    /// The values to bind for a request (see [`Rendered::bind_with`]).
    pub fn bind(&self, spec: &QuerySpec) -> Vec<Value> {
        self.bind_with(&Bindings::of(spec))
    }

    /// The values to bind for a request of the statement's shape, one per placeholder.
    pub fn bind_with(&self, b: &Bindings<'_>) -> Vec<Value> {
        crate::plan::bind(&self.params, b)
    }
}

/// The value of a bound parameter as JSON (for `explain`).
pub fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(Some(s)) => J::String(s.clone()),
        Value::BigInt(Some(n)) => J::from(*n),
        Value::Double(Some(n)) => J::from(*n),
        Value::Bool(Some(b)) => J::Bool(*b),
        Value::ChronoDateTimeUtc(Some(t)) => {
            J::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        Value::ChronoDate(Some(d)) => J::String(d.to_string()),
        _ => J::Null,
    }
}

/// Renders a plan for `dialect`. An error is an internal one (a plan that names a node or a
/// parameter it does not have).
pub fn render(plan: &Plan, dialect: &dyn Dialect) -> Result<Rendered, PlanError> {
    render_scoped(plan, dialect, &[])
}

/// [`render`], reading every table of `policies` through its row policy
/// ([`policy::apply`]): the caller attributes become [`Param::Caller`]s.
pub fn render_scoped(
    plan: &Plan,
    dialect: &dyn Dialect,
    policies: &[crate::semantic::Policy],
) -> Result<Rendered, PlanError> {
    let statement = policy::apply(render::statement(plan, dialect)?, policies, dialect);
    let (sql, params) = statement.finish(dialect);
    Ok(Rendered {
        sql,
        params,
        columns: plan
            .output
            .columns
            .iter()
            .map(|c| (c.key.clone(), c.ty))
            .collect(),
        join_path: plan.join_path.clone(),
        embeds_sql_tables: plan.embeds_sql_tables(),
    })
}

/// A statement that reads no row but fails when a SQL table's text does not run or lacks one
/// of its declared columns: `SELECT <columns> FROM (<text>) AS "tally_s" WHERE 1 = 0`, with
/// its parameters bound for `as_of` (the live-database check at server start). `None` for a
/// physical table.
pub fn probe_sql_table(
    table: &Table,
    dialect: &dyn Dialect,
    as_of: DateTime<Utc>,
) -> Option<(String, Vec<Value>)> {
    let crate::semantic::TableSource::Sql {
        postgres, sqlite, ..
    } = &table.source
    else {
        return None;
    };
    let text = dialect.sql_text(postgres, sqlite);
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| format!("\"tally_s\".{}", quote(c)))
        .collect();
    let mut s = Sql::raw(&format!("SELECT {} FROM (\n", cols.join(", ")));
    // A `$n` the table has no parameter for (validation rejects it) stays as it is written:
    // the probe exists to let the database judge the text, and it rejects an unbound `$n`.
    match render::sql_file(text, &crate::plan::sql_params(table), true) {
        Ok(body) => s.append(body),
        // lenient: never an error
        Err(_) => s.push(text),
    }
    s.push("\n) AS \"tally_s\" WHERE 1 = 0");
    let (sql, params) = s.finish(dialect);
    Some((sql, crate::plan::bind(&params, &Bindings::as_of(as_of))))
}
