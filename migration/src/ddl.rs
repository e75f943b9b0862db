//! DDL helpers shared by the migrations: namespaced table names, the per-model namespace
//! (a PostgreSQL schema, or an attached SQLite database), and index statements.
//!
//! sea-query renders `CREATE INDEX "i" ON "saas"."users" (…)` on every backend, which SQLite
//! rejects for an attached database: there the schema goes on the index name and the table
//! stays unqualified (`CREATE INDEX "saas"."i" ON "users" (…)`). [`create_index_sql`]
//! renders the right statement for each backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DbBackend, Statement};

/// Longest identifier PostgreSQL keeps (longer ones are silently truncated).
const MAX_IDENT_LEN: usize = 63;

/// The namespaced name `"<model>"."<table>"` of a source table, for sea-query statements.
pub fn table(model: &str, table: &str) -> (Alias, Alias) {
    (Alias::new(model), Alias::new(table))
}

/// The name of the index of `table` on `cols`: `<table>_<col>[_<col>…]_idx`.
pub fn index_name(table: &str, cols: &[&str]) -> String {
    format!("{table}_{}_idx", cols.join("_"))
}

/// Quotes an identifier with double quotes (both backends accept them).
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Renders `CREATE INDEX IF NOT EXISTS` for the index of `"<model>"."<table>"` on `cols`
/// (named by [`index_name`]) in the dialect of `backend`:
///
/// - SQLite: `CREATE INDEX IF NOT EXISTS "<model>"."<name>" ON "<table>" (…)`;
/// - PostgreSQL: `CREATE INDEX IF NOT EXISTS "<name>" ON "<model>"."<table>" (…)`.
///
/// Fails on other backends, for an empty column list, and for a name PostgreSQL would
/// truncate.
pub fn create_index_sql(
    backend: DbBackend,
    model: &str,
    table: &str,
    cols: &[&str],
) -> Result<String, DbErr> {
    if cols.is_empty() {
        return Err(DbErr::Custom(format!(
            "index on {model}.{table} needs at least one column"
        )));
    }
    let list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    index_sql(backend, model, table, &index_name(table, cols), &list)
}

/// `CREATE INDEX IF NOT EXISTS` of index `name` on `"<model>"."<table>"` over `list` (quoted
/// columns or expressions, comma-separated), namespaced for `backend` as
/// [`create_index_sql`] says. Fails on other backends and for a name PostgreSQL would
/// truncate.
fn index_sql(
    backend: DbBackend,
    model: &str,
    table: &str,
    name: &str,
    list: &str,
) -> Result<String, DbErr> {
    if name.len() > MAX_IDENT_LEN {
        return Err(DbErr::Custom(format!(
            "index name {name} is longer than {MAX_IDENT_LEN} bytes"
        )));
    }
    let (model, table, name) = (quote(model), quote(table), quote(name));
    match backend {
        DbBackend::Sqlite => Ok(format!(
            "CREATE INDEX IF NOT EXISTS {model}.{name} ON {table} ({list})"
        )),
        DbBackend::Postgres => Ok(format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {model}.{table} ({list})"
        )),
        _ => Err(unsupported(backend)),
    }
}

/// Creates the index of `"<model>"."<table>"` on `cols` (see [`create_index_sql`]).
pub async fn create_index(
    manager: &SchemaManager<'_>,
    model: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let sql = create_index_sql(manager.get_database_backend(), model, table, cols)?;
    manager.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

/// The name of the day-bucket index of `table` on `column`: `<table>_<column>_day_idx`.
pub fn day_index_name(table: &str, column: &str) -> String {
    format!("{table}_{column}_day_idx")
}

/// The day of the instant in `column` in UTC, as tally's SQL writes it for a day bucket on
/// `backend` (a `timestamp` on PostgreSQL, the bucket's text on SQLite): what a day-bucket
/// index holds. On PostgreSQL a one-day `date_bin` of the UTC wall-clock time (see
/// `m20261201_000008_day_buckets_binned`).
pub fn day_bucket_expr(backend: DbBackend, column: &str) -> Result<String, DbErr> {
    let column = quote(column);
    match backend {
        DbBackend::Postgres => Ok(format!(
            "date_bin(INTERVAL '1 day', {column} AT TIME ZONE INTERVAL '+00:00', TIMESTAMP '0001-01-01 00:00:00')"
        )),
        DbBackend::Sqlite => Ok(format!("strftime('%Y-%m-%dT00:00:00Z', {column})")),
        _ => Err(unsupported(backend)),
    }
}

/// The PostgreSQL day bucket tally's SQL wrote before `date_bin`, which
/// `m20261130_000007_day_buckets` indexed (and `m20261201_000008_day_buckets_binned` replaces
/// on the way up, restores on the way down).
pub fn day_bucket_expr_truncated(column: &str) -> String {
    format!("date_trunc('day', {} AT TIME ZONE 'UTC')", quote(column))
}

/// Renders `CREATE INDEX IF NOT EXISTS` for the day-bucket index of `"<model>"."<table>"` on
/// the instant `column` ([`day_bucket_expr`], named by [`day_index_name`]), namespaced as in
/// [`create_index_sql`].
pub fn create_day_index_sql(
    backend: DbBackend,
    model: &str,
    table: &str,
    column: &str,
) -> Result<String, DbErr> {
    let expr = day_bucket_expr(backend, column)?;
    day_index_sql(backend, model, table, column, &expr)
}

/// [`create_day_index_sql`] with the expression `expr`.
pub fn day_index_sql(
    backend: DbBackend,
    model: &str,
    table: &str,
    column: &str,
    expr: &str,
) -> Result<String, DbErr> {
    // PostgreSQL: an index expression in parentheses of its own (required for any expression
    // but a bare function call; harmless here)
    let list = match backend {
        DbBackend::Postgres => format!("({expr})"),
        _ => expr.to_owned(),
    };
    index_sql(backend, model, table, &day_index_name(table, column), &list)
}

/// Makes sure the namespace of `model` exists before its tables are created.
///
/// On PostgreSQL this runs `CREATE SCHEMA IF NOT EXISTS "<model>"`. On SQLite the namespace
/// is a database file the connection layer attaches as `<model>` on every connection;
/// nothing is created, but a missing attachment is reported clearly instead of as
/// "unknown database".
pub async fn create_namespace(manager: &SchemaManager<'_>, model: &str) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    match backend {
        DbBackend::Postgres => {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(model));
            manager.get_connection().execute_unprepared(&sql).await?;
            Ok(())
        }
        DbBackend::Sqlite => {
            let stmt = Statement::from_sql_and_values(
                backend,
                "SELECT 1 FROM pragma_database_list WHERE name = ?",
                [model.into()],
            );
            match manager.get_connection().query_one_raw(stmt).await? {
                Some(_) => Ok(()),
                None => Err(DbErr::Custom(format!(
                    "SQLite database `{model}` is not attached to this connection; \
                     attach the model databases (ATTACH DATABASE '<db>.{model}.db' AS {model}) \
                     on every connection before migrating"
                ))),
            }
        }
        _ => Err(unsupported(backend)),
    }
}

/// Drops the namespace of `model` after its tables were dropped: `DROP SCHEMA IF EXISTS
/// "<model>" CASCADE` on PostgreSQL; nothing on SQLite (the attached file stays, empty).
pub async fn drop_namespace(manager: &SchemaManager<'_>, model: &str) -> Result<(), DbErr> {
    match manager.get_database_backend() {
        DbBackend::Postgres => {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(model));
            manager.get_connection().execute_unprepared(&sql).await?;
            Ok(())
        }
        DbBackend::Sqlite => Ok(()),
        backend => Err(unsupported(backend)),
    }
}

/// The error for a backend tally does not support.
fn unsupported(backend: DbBackend) -> DbErr {
    DbErr::Custom(format!(
        "tally's migrations support PostgreSQL and SQLite, not {backend:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_statements() {
        assert_eq!(
            create_index_sql(DbBackend::Sqlite, "saas", "users", &["user_id", "ts"]).unwrap(),
            r#"CREATE INDEX IF NOT EXISTS "saas"."users_user_id_ts_idx" ON "users" ("user_id", "ts")"#
        );
        assert_eq!(
            create_index_sql(DbBackend::Postgres, "saas", "users", &["user_id", "ts"]).unwrap(),
            r#"CREATE INDEX IF NOT EXISTS "users_user_id_ts_idx" ON "saas"."users" ("user_id", "ts")"#
        );
        assert!(create_index_sql(DbBackend::Postgres, "saas", "users", &[]).is_err());
        assert!(create_index_sql(DbBackend::MySql, "saas", "users", &["ts"]).is_err());
        let long = "x".repeat(60);
        assert!(create_index_sql(DbBackend::Postgres, "saas", &long, &["ts"]).is_err());
    }

    #[test]
    fn day_index_statements() {
        assert_eq!(
            create_day_index_sql(DbBackend::Sqlite, "shop", "order_line", "order_time").unwrap(),
            r#"CREATE INDEX IF NOT EXISTS "shop"."order_line_order_time_day_idx" ON "order_line" (strftime('%Y-%m-%dT00:00:00Z', "order_time"))"#
        );
        assert_eq!(
            create_day_index_sql(DbBackend::Postgres, "shop", "order_line", "order_time").unwrap(),
            r#"CREATE INDEX IF NOT EXISTS "order_line_order_time_day_idx" ON "shop"."order_line" ((date_bin(INTERVAL '1 day', "order_time" AT TIME ZONE INTERVAL '+00:00', TIMESTAMP '0001-01-01 00:00:00')))"#
        );
        // the expression of m20261130_000007_day_buckets, which m20261201_000008 replaces
        assert_eq!(
            day_index_sql(
                DbBackend::Postgres,
                "shop",
                "order_line",
                "order_time",
                &day_bucket_expr_truncated("order_time")
            )
            .unwrap(),
            r#"CREATE INDEX IF NOT EXISTS "order_line_order_time_day_idx" ON "shop"."order_line" ((date_trunc('day', "order_time" AT TIME ZONE 'UTC')))"#
        );
        assert!(create_day_index_sql(DbBackend::MySql, "shop", "order_line", "t").is_err());
        let long = "x".repeat(60);
        assert!(create_day_index_sql(DbBackend::Postgres, "shop", &long, "t").is_err());
    }
}
