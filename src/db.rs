//! Database connections: the only place that knows how a URL becomes a connection pool.
//!
//! Every model lives in its own namespace (see `docs/SOURCE-SCHEMA.md`): a schema per model on
//! PostgreSQL, an attached database file per model on SQLite. Either way a table is addressed
//! as `"<model>"."<table>"`, so the SQL tally generates is the same text on both backends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migration::MigratorTrait as _;
use sea_orm::sqlx::{self, Executor as _};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::error::Error;

/// The models tally ships, in the order they are migrated and loaded.
pub const MODELS: &[&str] = entity::MODELS;

/// The database URL used when none is given: an SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://tally.db";

/// Which kind of database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (plus one attached file per model).
    Sqlite,
    /// PostgreSQL or a PostgreSQL-compatible engine (one schema per model).
    Postgres,
}

impl Backend {
    /// The backend of a URL, or an error naming the URL's scheme.
    pub fn of_url(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Config(format!(
                "database URL {url:?} is neither sqlite:… nor postgres://…"
            )))
        }
    }
}

/// The file an SQLite URL names, or `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// The file that holds `model`'s tables next to the main SQLite file `main`:
/// `tally.db` → `tally.saas.db`.
pub fn sqlite_model_path(main: &Path, model: &str) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tally".to_owned());
    main.with_file_name(format!("{stem}.{model}.db"))
}

/// Opens a pool on `url`, creating the SQLite files when they do not exist yet.
///
/// On SQLite every pooled connection attaches one database file per model (`saas`, `gym`, …),
/// turns on WAL and foreign keys off (references are checked by the loader), and waits up to
/// 10 s for a lock instead of failing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    let backend = Backend::of_url(url)?;
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    match backend {
        Backend::Postgres => {
            opts.max_connections(16).min_connections(1);
        }
        Backend::Sqlite => {
            let main = sqlite_path(url).ok_or_else(|| {
                Error::Config(format!(
                    "SQLite URL {url:?} names no file; tally keeps each model in a file next to the main one (e.g. sqlite://tally.db)"
                ))
            })?;
            let attachments: Vec<(String, String)> = MODELS
                .iter()
                .map(|m| {
                    (
                        (*m).to_owned(),
                        sqlite_model_path(&main, m).to_string_lossy().into_owned(),
                    )
                })
                .collect();
            opts.max_connections(8).min_connections(1);
            opts.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(false)
            });
            opts.map_sqlx_sqlite_pool_opts(move |pool| {
                let attachments = attachments.clone();
                pool.after_connect(move |conn, _meta| {
                    let attachments = attachments.clone();
                    Box::pin(async move {
                        for (name, file) in &attachments {
                            sqlx::query("ATTACH DATABASE ? AS ?")
                                .bind(file)
                                .bind(name)
                                .execute(&mut *conn)
                                .await?;
                            let pragma = format!("PRAGMA \"{name}\".journal_mode = WAL");
                            conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                        }
                        Ok(())
                    })
                })
            });
        }
    }
    Database::connect(opts)
        .await
        .map_err(|e| Error::Database(format!("cannot connect to {}: {e}", redact(url))))
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Brings the database's schema up to date: all migrations of all models, and the tables
/// tally keeps for itself (the saas stage history's, the time-zone offsets).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), Error> {
    migration::Migrator::up(db, None)
        .await
        .map_err(|e| Error::Database(format!("migration failed: {e}")))?;
    migration::tally_state::up(db)
        .await
        .map_err(|e| Error::Database(format!("creating tally's own tables failed: {e}")))
}
