//! Database connections: a URL becomes a connection pool (what differs between the
//! backends — pool size, SQLite's attached files — is the dialect's `configure_pool`).
//!
//! Every model lives in its own namespace (see `docs/SOURCE-SCHEMA.md`): a schema per model on
//! PostgreSQL, an attached database file per model on SQLite. Either way a table is addressed
//! as `"<model>"."<table>"`, so the SQL tally generates is the same text on both backends.

use std::time::Duration;

use migration::MigratorTrait as _;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::error::Error;
use crate::sql::Access;

/// The models tally ships, in the order they are migrated and loaded.
pub const MODELS: &[&str] = entity::MODELS;

/// The database URL used when none is given: an SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://tally.db";

/// Opens a pool on a database tally owns (`migrate`, `load`, `demo`, the embedded default),
/// creating the SQLite files when they do not exist yet.
///
/// On SQLite every pooled connection attaches one database file per model (`saas`, `gym`, …),
/// turns on WAL and foreign keys off (references are checked by the loader), and waits up to
/// 10 s for a lock instead of failing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    connect_with(url, Access::ReadWrite, COMMAND_ACQUIRE_TIMEOUT).await
}

/// Opens a pool on a database tally is given (`serve --db`, `query`): nothing is created or
/// written. An SQLite file must exist and is opened read-only (with the model files beside it
/// that exist); every PostgreSQL transaction is read-only.
pub async fn open(url: &str) -> Result<DatabaseConnection, Error> {
    connect_with(url, Access::ReadOnly, COMMAND_ACQUIRE_TIMEOUT).await
}

/// How long the commands (`load`, `migrate`, `query`, …) wait for a pooled connection.
const COMMAND_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a statement of `serve` waits for a pooled connection (or for a new one to open)
/// before it fails: short, so that a request during a database outage fails fast
/// (`DATABASE_UNAVAILABLE`) instead of hanging.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// [`connect`] (`writable`) or [`open`], waiting at most `acquire_timeout` for a pooled
/// connection (`serve --db-acquire-timeout`).
pub async fn connect_serving(
    url: &str,
    writable: bool,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, Error> {
    let access = if writable {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    connect_with(url, access, acquire_timeout).await
}

async fn connect_with(
    url: &str,
    access: Access,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, Error> {
    let dialect = crate::sql::dialect_of_url(url).ok_or_else(|| {
        Error::Config(format!(
            "database URL {url:?} is neither sqlite:… nor postgres://…"
        ))
    })?;
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(acquire_timeout);
    dialect
        .configure_pool(&mut opts, url, MODELS, access)
        .map_err(Error::Config)?;
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

/// Brings the database's schema up to date: all migrations of all models, the tables
/// tally keeps for itself (the saas stage history's), and on PostgreSQL the data-version
/// triggers on every table of the models' namespaces (`docs/CACHING.md`; installed where
/// missing, so a database migrated before them gets them at its next migration).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), Error> {
    migration::Migrator::up(db, None)
        .await
        .map_err(|e| Error::Database(format!("migration failed: {e}")))?;
    migration::tally_state::up(db)
        .await
        .map_err(|e| Error::Database(format!("creating tally's own tables failed: {e}")))?;
    for namespace in MODELS {
        migration::tally_state::data_version_triggers(db, namespace, None)
            .await
            .map_err(|e| {
                Error::Database(format!(
                    "installing the data-version triggers of {namespace} failed: {e}"
                ))
            })?;
    }
    Ok(())
}
