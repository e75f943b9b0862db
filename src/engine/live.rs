//! The models against the live database (at server start, after migrations): every physical
//! table exists with exactly the columns the model knows (from the `entity` crate for the
//! shipped namespaces, else from `columns`), and every SQL table runs and returns its
//! declared columns. Problems are reported like the file checks, with the `file:line` of the
//! table's declaration.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::semantic::{Model, ModelErrors, Problem, Table, TableSource};

/// Checks every table of `models` against the database `db`; all problems are returned
/// together (a database that cannot be read is one problem per table).
///
/// Call it once the database is migrated (`http::serve`, after `db::migrate`): a model whose
/// tables do not match the database then stops the server with one message.
pub async fn check_live(models: &[Model], db: &DatabaseConnection) -> Result<(), ModelErrors> {
    let mut problems = Vec::new();
    let offsets = !super::dialect_of(db).time_zones();
    for model in models {
        if offsets && model.reads_tz_offsets {
            // the SQLite twins of the gym SQL read the offsets table: make it exist
            if let Err(e) = crate::tz::ensure_offsets(db).await {
                problems.push(problem(
                    model.tables.first().map(|t| t.as_ref()),
                    format!(
                        "model {}: cannot prepare the time-zone offsets: {e}",
                        model.name
                    ),
                ));
            }
        }
        for t in &model.tables {
            match &t.source {
                TableSource::Physical(physical) => {
                    check_physical(model, t, physical, db, &mut problems).await;
                }
                TableSource::Sql { .. } => check_sql(t, db, &mut problems).await,
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ModelErrors { problems })
    }
}

fn problem(t: Option<&Table>, message: String) -> Problem {
    let (file, line) = t
        .map(|t| t.defined_at.clone())
        .unwrap_or_else(|| (String::new(), 1));
    Problem {
        file,
        line,
        message,
    }
}

/// The columns of `namespace.table` in the database, in their order (empty: no such table).
async fn live_columns(
    db: &DatabaseConnection,
    namespace: &str,
    table: &str,
) -> Result<Vec<String>, sea_orm::DbErr> {
    let (sql, values) = super::dialect_of(db).columns_query(namespace, table);
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    db.query_all_raw(stmt)
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect()
}

async fn check_physical(
    model: &Model,
    t: &Table,
    physical: &str,
    db: &DatabaseConnection,
    problems: &mut Vec<Problem>,
) {
    let ns = &model.namespace;
    let live = match live_columns(db, ns, physical).await {
        Ok(c) => c,
        Err(e) => {
            problems.push(problem(
                Some(t),
                format!(
                    "table {:?}: cannot read the columns of {ns}.{physical}: {e}",
                    t.name
                ),
            ));
            return;
        }
    };
    if live.is_empty() {
        problems.push(problem(
            Some(t),
            format!(
                "table {:?}: {ns}.{physical} does not exist in the database (not migrated?)",
                t.name
            ),
        ));
        return;
    }
    for (c, _) in &t.columns {
        if !live.contains(c) {
            problems.push(problem(
                Some(t),
                format!(
                    "table {:?}: column {c:?} is in the model but not in the database's {ns}.{physical}",
                    t.name
                ),
            ));
        }
    }
    for c in &live {
        if t.column_type(c).is_none() {
            problems.push(problem(
                Some(t),
                format!(
                    "table {:?}: the database's {ns}.{physical} has column {c:?}, which the model does not know",
                    t.name
                ),
            ));
        }
    }
}

async fn check_sql(t: &Table, db: &DatabaseConnection, problems: &mut Vec<Problem>) {
    let dialect = super::dialect_of(db);
    let Some((sql, values)) = crate::sql::probe_sql_table(t, dialect, Utc::now()) else {
        return;
    };
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    if let Err(e) = db.query_all_raw(stmt).await {
        problems.push(problem(
            Some(t),
            format!(
                "sql table {:?} does not run on the database, or lacks a declared column ({}): {e}",
                t.name,
                t.columns
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
}
