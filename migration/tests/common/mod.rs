//! Helpers shared by the migration crate's integration tests: a fresh SQLite database
//! with the model databases attached, and a fresh PostgreSQL database.
#![allow(dead_code)] // each test binary uses a part of it

use std::future::Future;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use migration::sea_orm::{
    self, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
    Value,
};
use sea_orm::sqlx;

/// The models, each a PostgreSQL schema or an attached SQLite database.
pub const MODELS: &[&str] = &["saas", "gym", "shop", "social", "web"];

/// Opens `<dir>/tally.db` with `<dir>/tally.<model>.db` attached as `<model>` on every
/// connection.
pub async fn open_sqlite(dir: &Path) -> DatabaseConnection {
    let url = format!("sqlite://{}?mode=rwc", dir.join("tally.db").display());
    let dir = dir.to_path_buf();
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .map_sqlx_sqlite_pool_opts(move |pool| {
            let dir = dir.clone();
            pool.after_connect(move |conn, _meta| {
                let dir = dir.clone();
                Box::pin(async move {
                    for model in MODELS {
                        let file = dir.join(format!("tally.{model}.db"));
                        sqlx::query("ATTACH DATABASE ? AS ?")
                            .bind(file.to_string_lossy().into_owned())
                            .bind(*model)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
        });
    Database::connect(opts).await.unwrap()
}

/// `url` with its database name replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(query) => format!("{host}/{name}?{query}"),
        None => format!("{host}/{name}"),
    }
}

/// When `TEST_DATABASE_URL` is set, creates a database with a random name on that server,
/// runs `f` with a connection to it, and drops the database again, also when `f` panics
/// (the panic is passed on afterwards). Without `TEST_DATABASE_URL` it does nothing.
pub async fn with_fresh_postgres<F, Fut>(f: F)
where
    F: FnOnce(DatabaseConnection) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL part");
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("tally_migration_test_{}_{nanos}", std::process::id());
    let admin = Database::connect(admin_url.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .unwrap();

    let url = with_database(&admin_url, &name);
    let outcome = tokio::spawn(async move {
        let db = Database::connect(url.as_str()).await.unwrap();
        f(db).await;
    })
    .await;

    admin
        .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// Runs a query returning one column of one row and reads it as `T`.
pub async fn scalar<T: sea_orm::TryGetable>(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<Value>,
) -> T {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    let row = db.query_one_raw(stmt).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Runs a query and reads the first column of every row as a string.
pub async fn strings(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Vec<String> {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    db.query_all_raw(stmt)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect()
}

/// The columns of `"<model>"."<table>"`, in order.
pub async fn columns(db: &DatabaseConnection, model: &str, table: &str) -> Vec<String> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            strings(
                db,
                "SELECT name FROM pragma_table_info(?, ?) ORDER BY cid",
                vec![table.into(), model.into()],
            )
            .await
        }
        _ => {
            strings(
                db,
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                vec![model.into(), table.into()],
            )
            .await
        }
    }
}

/// The primary-key columns of `"<model>"."<table>"`, in key order.
pub async fn primary_key(db: &DatabaseConnection, model: &str, table: &str) -> Vec<String> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            strings(
                db,
                "SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk",
                vec![table.into(), model.into()],
            )
            .await
        }
        _ => {
            strings(
                db,
                "SELECT k.column_name::text FROM information_schema.table_constraints c \
                 JOIN information_schema.key_column_usage k \
                   ON k.constraint_schema = c.constraint_schema \
                  AND k.constraint_name = c.constraint_name \
                 WHERE c.constraint_type = 'PRIMARY KEY' \
                   AND c.table_schema = $1 AND c.table_name = $2 \
                 ORDER BY k.ordinal_position",
                vec![model.into(), table.into()],
            )
            .await
        }
    }
}
