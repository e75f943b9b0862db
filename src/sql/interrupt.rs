//! Stopping a running statement inside the database: what differs between the drivers (the
//! SQL text differences are [`super::Dialect`]'s).
//!
//! The engine runs every read statement in a transaction of its own (or a savepoint of the
//! caller's) and *arms* it first with [`arm`]:
//!
//! - **PostgreSQL**: `set_config('statement_timeout', …, true)` (`SET LOCAL`) bounds the
//!   statement inside the database; the backend's pid and the transaction's start are kept.
//!   The same statement sets the transaction's planner settings the caller asks for
//!   ([`Settings`]: `plan_cache_mode`, JIT off).
//!   A statement abandoned while it runs (the client went away, the engine's own deadline
//!   passed) is cancelled with `pg_cancel_backend(pid)` from a fresh connection (never one of
//!   the pool's, which may all be busy), only if that same transaction is still active.
//! - **SQLite**: every pooled connection has an id (a temporary table holds it, see
//!   [`install_sqlite`]) and a progress handler that reads the connection's slot every few
//!   hundred virtual-machine steps: the statement is interrupted when its deadline passes or
//!   when it is abandoned. The slot is cleared when the connection returns to the pool.
//!
//! [`classify`] tells a database failure's kind (unavailable, cancelled) without exposing
//! its text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sea_orm::sqlx;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};

/// How a backend stops a running statement; its [`super::Dialect`] says which
/// ([`super::Dialect::interrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// A per-transaction `statement_timeout`, and `pg_cancel_backend` from a fresh
    /// connection when the statement is abandoned (PostgreSQL).
    StatementTimeout,
    /// The connection's progress handler reading its slot (SQLite).
    ProgressHandler,
}

/// Virtual-machine steps between two checks of an SQLite statement's deadline.
const SQLITE_PROGRESS_STEPS: i32 = 1000;

/// How long a cancellation may take to connect to PostgreSQL.
const CANCEL_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A statement armed to stop at its deadline; dropping it before [`Armed::finish`] (the
/// statement was abandoned) cancels the statement in the database.
#[derive(Debug)]
pub struct Armed {
    kind: Kind,
    done: bool,
}

#[derive(Debug)]
enum Kind {
    Postgres {
        pid: i32,
        xact_start: String,
        options: Arc<sqlx::postgres::PgConnectOptions>,
    },
    Sqlite {
        budget: Arc<SqliteBudget>,
    },
    None,
}

impl Armed {
    /// The statement completed (or failed by itself): nothing to cancel.
    pub fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        match &self.kind {
            Kind::Sqlite { budget } if !self.done => {
                budget.cancelled.store(true, Ordering::SeqCst);
            }
            Kind::Postgres {
                pid,
                xact_start,
                options,
            } if !self.done => {
                let (pid, xact_start, options) = (*pid, xact_start.clone(), options.clone());
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        match cancel_postgres(pid, &xact_start, &options).await {
                            Ok(true) => {
                                tracing::info!(pid, "abandoned statement cancelled")
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(pid, "cancelling a statement failed: {e}"),
                        }
                    });
                }
            }
            _ => {}
        }
    }
}

/// Cancels the statement of backend `pid` if the transaction that started at `xact_start` is
/// still running it; whether a statement was cancelled.
async fn cancel_postgres(
    pid: i32,
    xact_start: &str,
    options: &sqlx::postgres::PgConnectOptions,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = tokio::time::timeout(
        CANCEL_CONNECT_TIMEOUT,
        sqlx::postgres::PgConnection::connect_with(options),
    )
    .await
    .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let cancelled: Option<bool> = sqlx::query_scalar(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
         WHERE pid = $1 AND xact_start = $2::timestamptz AND state = 'active'",
    )
    .bind(pid)
    .bind(xact_start)
    .fetch_optional(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(cancelled.unwrap_or(false))
}

/// Planner settings of an armed statement, for its transaction only (PostgreSQL; other
/// backends have none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// JIT compilation off (statements that embed SQL tables:
    /// `crate::sql::Rendered::embeds_sql_tables`).
    pub jit_off: bool,
    /// `plan_cache_mode` (`force_custom_plan`, `force_generic_plan`); `None`: the server's.
    pub plan_cache_mode: Option<&'static str>,
}

/// The statement that arms a PostgreSQL statement (`$1`: the timeout in milliseconds, `$2`:
/// whether JIT is turned off, `$3`: `plan_cache_mode`, empty for the server's own), all for
/// the transaction only (`set_config(…, true)`, i.e. `SET LOCAL`). Settings a
/// Postgres-compatible engine does not have are left alone.
const ARM_POSTGRES: &str = "SELECT set_config('statement_timeout', $1, true) AS t, \
     (SELECT set_config('plan_cache_mode', $3, true) \
      WHERE $3 <> '' AND current_setting('plan_cache_mode', true) IS NOT NULL) AS p, \
     (SELECT set_config('jit', 'off', true) \
      WHERE $2 AND current_setting('jit', true) IS NOT NULL) AS j, \
     pg_backend_pid() AS pid, \
     to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS xs";

/// The statement that finds a pooled SQLite connection's id.
const ARM_SQLITE: &str = "SELECT id FROM temp.tally_connection";

/// Whether `sql` is one of the statements [`arm`] runs (not part of an answer; tests that
/// count an answer's statements leave them out).
pub fn is_arming(sql: &str) -> bool {
    sql == ARM_POSTGRES || sql == ARM_SQLITE
}

/// Arms the statement about to run in `txn` (a transaction or savepoint of `db`'s pool, on
/// one connection) to stop after `budget`, with the planner `settings` (where the backend has
/// them: PostgreSQL).
pub async fn arm(
    db: &DatabaseConnection,
    txn: &impl ConnectionTrait,
    budget: Duration,
    settings: Settings,
) -> Result<Armed, DbErr> {
    let backend = db.get_database_backend();
    match super::dialect_of(db).interrupt() {
        Some(Interrupt::StatementTimeout) => {
            let millis = budget.as_millis().clamp(1, i32::MAX as u128).to_string();
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    ARM_POSTGRES,
                    [
                        millis.into(),
                        settings.jit_off.into(),
                        settings.plan_cache_mode.unwrap_or("").into(),
                    ],
                ))
                .await?
                .ok_or_else(|| DbErr::Custom("arming a statement returned no row".into()))?;
            let pid: i32 = row.try_get("", "pid")?;
            let xact_start: String = row.try_get("", "xs")?;
            Ok(Armed {
                kind: Kind::Postgres {
                    pid,
                    xact_start,
                    options: db.get_postgres_connection_pool().connect_options(),
                },
                done: false,
            })
        }
        Some(Interrupt::ProgressHandler) => {
            let row = txn
                .query_one_raw(Statement::from_string(backend, ARM_SQLITE))
                .await?;
            let Some(row) = row else {
                return Ok(Armed {
                    kind: Kind::None,
                    done: false,
                });
            };
            let id: i64 = row.try_get("", "id")?;
            let Some(slot) = slot_of(id) else {
                return Ok(Armed {
                    kind: Kind::None,
                    done: false,
                });
            };
            let b = Arc::new(SqliteBudget {
                deadline: Instant::now() + budget,
                cancelled: AtomicBool::new(false),
            });
            if let Ok(mut current) = slot.current.lock() {
                *current = Some(b.clone());
            }
            Ok(Armed {
                kind: Kind::Sqlite { budget: b },
                done: false,
            })
        }
        None => Ok(Armed {
            kind: Kind::None,
            done: false,
        }),
    }
}

/// What an armed SQLite statement may spend.
#[derive(Debug)]
struct SqliteBudget {
    deadline: Instant,
    cancelled: AtomicBool,
}

/// The armed statement of one pooled SQLite connection, read by its progress handler.
#[derive(Debug, Default)]
struct Slot {
    current: Mutex<Option<Arc<SqliteBudget>>>,
}

impl Slot {
    /// Whether the running statement may go on.
    fn proceed(&self) -> bool {
        // never block the connection's thread: a slot being armed is not yet running
        let Ok(current) = self.current.try_lock() else {
            return true;
        };
        match current.as_ref() {
            Some(b) => !b.cancelled.load(Ordering::Relaxed) && Instant::now() < b.deadline,
            None => true,
        }
    }

    fn clear(&self) {
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
    }
}

fn slots() -> &'static Mutex<HashMap<i64, Arc<Slot>>> {
    static SLOTS: OnceLock<Mutex<HashMap<i64, Arc<Slot>>>> = OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

fn slot_of(id: i64) -> Option<Arc<Slot>> {
    slots().lock().ok().and_then(|s| s.get(&id).cloned())
}

/// Gives a new pooled SQLite connection its id (in `temp.tally_connection`) and the progress
/// handler that stops its armed statements (called by the pool's `after_connect`).
pub async fn install_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    use std::sync::atomic::AtomicI64;
    static NEXT: AtomicI64 = AtomicI64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS tally_connection (id INTEGER NOT NULL)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM temp.tally_connection")
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO temp.tally_connection (id) VALUES (?)")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let slot = Arc::new(Slot::default());
    if let Ok(mut s) = slots().lock() {
        s.insert(id, slot.clone());
    }
    let handler_slot = slot.clone();
    let mut handle = conn.lock_handle().await?;
    handle.set_progress_handler(SQLITE_PROGRESS_STEPS, move || handler_slot.proceed());
    Ok(())
}

/// Clears the armed statement of a pooled SQLite connection returning to the pool (called by
/// the pool's `after_release`), so nothing that runs on it later is stopped by a budget that
/// is not its own.
pub async fn release_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM temp.tally_connection")
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(slot) = id.and_then(slot_of) {
        slot.clear();
    }
    Ok(true)
}

/// What kind of failure a database error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database cannot be reached (no connection in time, connection lost, shutting
    /// down).
    Unavailable,
    /// The statement was stopped (statement timeout, cancellation, SQLite interrupt).
    Cancelled,
    /// Anything else (a bug in a statement, a constraint, …).
    Other,
}

/// The kind of the failure `e`.
pub fn classify(e: &DbErr) -> Failure {
    use sea_orm::RuntimeErr;
    let sqlx_err = match e {
        // no connection could be had (or opened): whatever the database said
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Failure::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => {
            s.as_ref()
        }
        _ => return Failure::Other,
    };
    match sqlx_err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Failure::Unavailable,
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                // query_canceled (statement timeout, pg_cancel_backend); SQLITE_INTERRUPT
                "57014" | "9" => Failure::Cancelled,
                // admin_shutdown, crash_shutdown, cannot_connect_now
                "57P01" | "57P02" | "57P03" => Failure::Unavailable,
                c if c.starts_with("08") => Failure::Unavailable,
                _ if d.message() == "interrupted" => Failure::Cancelled,
                _ => Failure::Other,
            }
        }
        _ => Failure::Other,
    }
}
