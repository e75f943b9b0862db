//! The models against the live database (at server start, after migrations): every physical
//! table exists with exactly the columns the model knows (from the `entity` crate for the
//! shipped namespaces, else from `columns`), and every SQL table runs and returns its
//! declared columns. Problems are reported like the file checks, with the `file:line` of the
//! table's declaration.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::semantic::{Catalog, Model, ModelErrors, Policy, Problem, Table, TableSource};

/// Loads the models (of `dir`, or the embedded ones) for the database `db`: where their tables
/// live (`namespaces` over the files' `namespace`), their physical tables' columns read from
/// the database, SQL tables without tally's state where the database holds none; then checks
/// them against it ([`check_live`]). A problem is a configuration error naming file and line.
pub async fn load_live_models(
    db: &DatabaseConnection,
    dir: Option<&std::path::Path>,
    namespaces: &crate::semantic::Namespaces,
    only: Option<&std::collections::BTreeSet<String>>,
) -> Result<Vec<Model>, crate::error::Error> {
    let catalog = read_catalog(db).await.map_err(|e| {
        crate::error::Error::Database(format!("cannot read the database's tables: {e}"))
    })?;
    let ctx = crate::semantic::LoadContext {
        namespaces: namespaces.clone(),
        catalog: Some(catalog),
        without_state: false,
        only: only.cloned(),
    };
    let models = crate::semantic::load_for(dir, &ctx)
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    for m in &models {
        let todo = m.placeholder_descriptions();
        if !todo.is_empty() {
            tracing::warn!(
                model = %m.name,
                "{} description(s) are still placeholders (TODO:): {}",
                todo.len(),
                todo.join(", ")
            );
        }
    }
    check_live(&models, db)
        .await
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    Ok(models)
}

/// Reads the columns of every table and view the pool's role can read (see
/// [`crate::sql::Dialect::catalog_queries`]).
pub async fn read_catalog(db: &DatabaseConnection) -> Result<Catalog, sea_orm::DbErr> {
    let dialect = super::dialect_of(db);
    let backend = db.get_database_backend();
    let databases: Vec<String> = match dialect.databases_query() {
        Some(q) => db
            .query_all_raw(Statement::from_string(backend, q))
            .await?
            .iter()
            .map(|r| r.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let mut catalog = Catalog::default();
    for q in dialect.catalog_queries(&databases) {
        for r in db.query_all_raw(Statement::from_string(backend, q)).await? {
            let ns: String = r.try_get_by_index(0)?;
            let table: String = r.try_get_by_index(1)?;
            let column: String = r.try_get_by_index(2)?;
            let declared: Option<String> = r.try_get_by_index(3)?;
            let not_null: i32 = r.try_get_by_index(4)?;
            let ty = dialect.column_type(declared.as_deref().unwrap_or(""));
            if not_null != 0 {
                catalog.push_not_null(&ns, &table, column.clone());
            }
            catalog.push(&ns, &table, column, ty);
        }
    }
    Ok(catalog)
}

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
            if let Err(e) = crate::tz::ensure_offsets(db, &model.namespace).await {
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
                TableSource::Physical { namespace, table } => {
                    check_physical(t, namespace, table, db, &mut problems).await;
                }
                TableSource::Sql { .. } => check_sql(t, db, &mut problems).await,
            }
        }
        for p in &model.policies {
            check_policy(p, db, &mut problems).await;
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
    t: &Table,
    ns: &str,
    physical: &str,
    db: &DatabaseConnection,
    problems: &mut Vec<Problem>,
) {
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

/// Runs a row policy's condition once, reading no row: an unknown column or table in it is
/// a problem at the policy's `[[policy]]`. A policy of a table tally keeps for itself (the
/// stage history) is skipped where the database has no such table (tally keeps no state).
async fn check_policy(p: &Policy, db: &DatabaseConnection, problems: &mut Vec<Problem>) {
    let at = |message: String| Problem {
        file: p.defined_at.0.clone(),
        line: p.defined_at.1,
        message,
    };
    match live_columns(db, &p.namespace, &p.table).await {
        Ok(c) if c.is_empty() => {
            if !p.table.starts_with("tally_") {
                problems.push(at(format!(
                    "policy: the database has no table {}.{}",
                    p.namespace, p.table
                )));
            }
            return;
        }
        Ok(_) => {}
        Err(e) => {
            problems.push(at(format!(
                "policy of {}.{}: cannot read its columns: {e}",
                p.namespace, p.table
            )));
            return;
        }
    }
    let dialect = super::dialect_of(db);
    let stmt = crate::sql::policy::probe(p, dialect).to_statement_for(
        dialect,
        db.get_database_backend(),
        Some(&crate::plan::Attributes::new()),
    );
    let result = match stmt {
        Ok(stmt) => db
            .query_all_raw(stmt)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        problems.push(at(format!(
            "policy of {}.{} does not run on the database: {e}",
            p.namespace, p.table
        )));
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
