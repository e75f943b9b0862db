//! The stage history: every user's lifecycle stage as a function of the as-of instant, kept
//! in `"saas"."tally_stage_history"` so that whole-population questions (stage counts, the
//! journey, transitions, a page of users) read one narrow row per user instead of
//! recomputing every user's facts from the event tables.
//!
//! # Why a history is exact
//!
//! Every row of `global_events`, `payments` and `invoices` starts to count at a fixed instant
//! and counts at every later one (SEMANTICS §1), so each fact `user_stages` decides a stage
//! from is a count over a set that only grows with T. A user's stage can therefore change
//! only where one of their rows starts to count, or where an unpaid invoice becomes overdue.
//! `sql/saas/stage_history(.sqlite).sql` computes the running counts at those instants and
//! keeps one row per interval `[valid_from, valid_to)` over which the stage and its facts stay
//! the same. The stage of u at T is the row of u with `valid_from <= T < valid_to`; the tests
//! compare it with `user_stages` at every interval boundary on both backends.
//!
//! # Freshness
//!
//! The history is derived data, so tally only reads it when it is known to match the source
//! tables. `"saas"."tally_stage_history_status"` (one row) records whether it is fresh and the
//! grace period it was built with. Triggers on `global_events`, `payments` and `invoices`
//! mark it stale on any insert, update, delete (and truncate, on PostgreSQL) — whoever
//! writes, tally's loader or another tool. A reader checks the status in the same snapshot
//! as it reads ([`begin_read`]: REPEATABLE READ on PostgreSQL, one read transaction on
//! SQLite) and falls back to `user_stages` ([`StageSource::Direct`]) when the history is
//! stale, missing or built for another grace period, so an answer is never older than the
//! data. [`refresh`] rebuilds it in one transaction (the server's background
//! [`Refresher`] calls it when a reader found the history stale). The loader brings it up to
//! date inside the transaction of every saas load ([`lock_for_update`] before the first row,
//! [`update_in`] before the commit), so data and history commit together and readers never
//! fall back after a load; when the history was fresh before the load, only the users the
//! load touched ([`Touched`]) are recomputed.
//!
//! On PostgreSQL the triggers lock the status row: the first write after a refresh takes it
//! exclusively to mark the history stale, later writes share it, and [`refresh`] takes it
//! exclusively, so a refresh waits for writers still in flight and can never record as fresh
//! a history that misses their rows. On SQLite a writer excludes every other writer anyway.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::Utc;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, Statement, TransactionTrait,
};

use super::SaasConfig;
use crate::error::Error;
use crate::sql::dialect_of;

/// The history table (in the saas namespace).
pub const TABLE: &str = "tally_stage_history";

/// The status table (one row, `id = 1`).
pub const STATUS_TABLE: &str = crate::semantic::STATE_TABLE;

/// The users a scoped rebuild recomputes (one column, `user_id`).
pub const SCOPE_TABLE: &str = "tally_stage_history_scope";

/// The source tables whose changes make the history stale.
pub const SOURCE_TABLES: [&str; 3] = migration::tally_state::STALENESS_SOURCES;

/// The query whose rows the history holds, PostgreSQL (`$1` = grace in seconds).
pub const BUILD_POSTGRES: &str = include_str!("../../sql/saas/stage_history.sql");

/// The query whose rows the history holds, SQLite (`$1` = grace in seconds).
pub const BUILD_SQLITE: &str = include_str!("../../sql/saas/stage_history.sqlite.sql");

/// The columns of the history table, in the order of the build query.
pub const COLUMNS: &str = "user_id, valid_from, valid_to, signup_time, stage, churn_reason, \
     account_deleted, all_shops_deleted, delinquent, reached_prospect, reached_customer, \
     repeat_payer";

/// `SELECT <the status columns><extra> FROM <status> WHERE id = 1<suffix>` (read by
/// [`read_status`]).
fn status_select(extra: &str, suffix: &str) -> String {
    format!(
        "SELECT fresh, grace_seconds, built_at, row_count, build_millis{extra} FROM {} \
         WHERE id = 1{suffix}",
        qualified(STATUS_TABLE)
    )
}

/// Where whole-population stage questions read stages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageSource {
    /// The stage history: one row per user and interval.
    History,
    /// `user_stages` computed from the event tables, because the history is not usable.
    Direct(Unusable),
}

/// Why the history was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// The history tables do not exist (never prepared on this database).
    Missing,
    /// A source table changed since the last build.
    Stale,
    /// It was built for another grace period.
    OtherGrace,
}

impl StageSource {
    /// `history`, or `direct (stale)` etc., as `extensions` and logs show it.
    pub fn describe(self) -> &'static str {
        match self {
            StageSource::History => "history",
            StageSource::Direct(Unusable::Missing) => "direct (no stage history)",
            StageSource::Direct(Unusable::Stale) => "direct (stage history stale)",
            StageSource::Direct(Unusable::OtherGrace) => {
                "direct (stage history built for another grace period)"
            }
        }
    }
}

/// The status row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// No source table changed since the build.
    pub fresh: bool,
    /// The grace period (seconds) of the build; -1 before the first build.
    pub grace_seconds: i64,
    /// When the last build finished (RFC 3339), if ever.
    pub built_at: Option<String>,
    /// Rows of the last build.
    pub row_count: i64,
    /// How long the last build took, in milliseconds.
    pub build_millis: i64,
}

impl Status {
    /// Where a reader with `config` reads stages from, given this status.
    pub fn source_for(&self, config: &SaasConfig) -> StageSource {
        if !self.fresh {
            StageSource::Direct(Unusable::Stale)
        } else if self.grace_seconds != config.grace_seconds() {
            StageSource::Direct(Unusable::OtherGrace)
        } else {
            StageSource::History
        }
    }
}

/// What [`refresh`], [`rebuild_in`] or [`update_in`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// Rows written.
    pub rows: i64,
    /// Wall time of the build, in milliseconds.
    pub millis: i64,
    /// How many users were recomputed when only some were ([`update_in`]); `None` for a
    /// whole rebuild.
    pub scoped_users: Option<i64>,
}

impl std::fmt::Display for RefreshReport {
    /// `rebuilt: 31865 rows in 0.5 s` or `14 users recomputed: 40 rows in 0.0 s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scoped_users {
            Some(n) => write!(f, "{n} users recomputed: ")?,
            None => f.write_str("rebuilt: ")?,
        }
        write!(
            f,
            "{} rows in {:.1} s",
            self.rows,
            self.millis as f64 / 1000.0
        )
    }
}

fn db_err(what: &str) -> impl Fn(sea_orm::DbErr) -> Error + '_ {
    move |e| Error::Database(format!("saas stage history: {what}: {e}"))
}

fn qualified(table: &str) -> String {
    format!("\"saas\".\"{table}\"")
}

/// Creates the history, status and scope tables when they are missing (`tally migrate`
/// creates them; this is for a database migrated by an older tally), without the triggers.
pub async fn ensure_tables(db: &impl ConnectionTrait) -> Result<(), Error> {
    migration::tally_state::up(db)
        .await
        .map_err(db_err("creating its tables"))
}

/// Creates the history and status tables and the staleness triggers when they are missing
/// (idempotent; run at server start and before every refresh).
pub async fn ensure(db: &impl ConnectionTrait) -> Result<(), Error> {
    ensure_tables(db).await?;
    migration::tally_state::staleness_triggers(db)
        .await
        .map_err(db_err("creating its triggers"))
}

/// Reads the status row; `None` when the status table does not exist.
pub async fn status(conn: &impl ConnectionTrait) -> Result<Option<Status>, Error> {
    let backend = conn.get_database_backend();
    let exists = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            dialect_of(conn).table_exists_query("saas"),
            [STATUS_TABLE.into()],
        ))
        .await
        .map_err(db_err("looking for its status"))?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let row = conn
        .query_one_raw(Statement::from_string(backend, status_select("", "")))
        .await
        .map_err(db_err("reading its status"))?;
    row.map(|r| read_status(&r)).transpose()
}

/// Starts a read-only transaction whose reads all see one snapshot (REPEATABLE READ on
/// PostgreSQL; on SQLite a transaction's reads always do), with `jit` off on PostgreSQL (see
/// `query_stages` in `saas`), and decides there where stages are read from — in one
/// statement, which reads the status row and (on PostgreSQL) turns JIT off.
pub async fn begin_read(
    db: &DatabaseConnection,
    config: &SaasConfig,
) -> Result<(DatabaseTransaction, StageSource), Error> {
    let dialect = dialect_of(db);
    let txn = begin_snapshot(db).await?;
    let jit_off = dialect
        .jit_off_expression()
        .map(|e| format!(", ({e})"))
        .unwrap_or_default();
    let read = status_select(&jit_off, "");
    match txn
        .query_one_raw(Statement::from_string(db.get_database_backend(), read))
        .await
    {
        Ok(Some(r)) => {
            let status = read_status(&r)?;
            Ok((txn, status.source_for(config)))
        }
        Ok(None) => Ok((txn, StageSource::Direct(Unusable::Missing))),
        Err(_) => {
            // No status table (never prepared here). A failed statement ends a PostgreSQL
            // transaction, so start again without reading it.
            let _ = txn.rollback().await;
            let txn = begin_snapshot(db).await?;
            if let Some(jit_off) = dialect.jit_off() {
                txn.execute_unprepared(jit_off)
                    .await
                    .map_err(db_err("turning JIT off"))?;
            }
            Ok((txn, StageSource::Direct(Unusable::Missing)))
        }
    }
}

/// A transaction whose reads see one snapshot.
async fn begin_snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, Error> {
    let (isolation, access) = dialect_of(db).snapshot_read();
    db.begin_with_config(isolation, access)
        .await
        .map_err(db_err("beginning a read"))
}

/// A [`Status`] from the columns fresh, grace_seconds, built_at, row_count, build_millis.
fn read_status(r: &sea_orm::QueryResult) -> Result<Status, Error> {
    // an integer column: `bigint` or `integer` on PostgreSQL, INTEGER on SQLite; null is 0
    let int = |i: usize| match r.try_get_by_index::<Option<i64>>(i) {
        Ok(v) => Ok(v.unwrap_or(0)),
        Err(_) => r
            .try_get_by_index::<Option<i32>>(i)
            .map(|v| v.map(i64::from).unwrap_or(0))
            .map_err(|e| Error::Database(format!("reading the stage history's status: {e}"))),
    };
    Ok(Status {
        fresh: int(0)? != 0,
        grace_seconds: int(1)?,
        built_at: r
            .try_get_by_index::<Option<String>>(2)
            .map_err(|e| Error::Database(format!("reading the stage history's status: {e}")))?,
        row_count: int(3)?,
        build_millis: int(4)?,
    })
}

/// Rebuilds the history for `config`'s grace period in one transaction and marks it fresh;
/// creates its tables and triggers first when missing.
pub async fn refresh(db: &DatabaseConnection, config: &SaasConfig) -> Result<RefreshReport, Error> {
    ensure(db).await?;
    let txn = db.begin().await.map_err(db_err("beginning a refresh"))?;
    let report = rebuild_in(&txn, config).await?;
    txn.commit().await.map_err(db_err("committing it"))?;
    // the history lives in the saas namespace: answers read through it are out of date
    crate::engine::results::bump("saas");
    if let Err(e) = analyze(db).await {
        // statistics are a hint for the planner: the rebuild itself is committed
        tracing::warn!("{e}");
    }
    Ok(report)
}

/// After a whole rebuild: fresh planner statistics for the history, and on PostgreSQL the
/// rows the rebuild replaced given back (`VACUUM (ANALYZE)`), so that the next rebuild reuses
/// their space instead of growing the table that every stage question scans.
pub async fn analyze(db: &DatabaseConnection) -> Result<(), Error> {
    let sql = dialect_of(db).reclaim_and_analyze(&qualified(TABLE));
    db.execute_unprepared(&sql)
        .await
        .map(|_| ())
        .map_err(db_err("analysing it"))
}

/// Rebuilds the history inside the transaction `txn` and marks it fresh there: the rows
/// become visible, and the history fresh, when `txn` commits. The loader calls it in its own
/// transaction, so a load and its history commit together and readers never see one without
/// the other. The tables must exist ([`ensure`]).
pub async fn rebuild_in(
    txn: &DatabaseTransaction,
    config: &SaasConfig,
) -> Result<RefreshReport, Error> {
    let dialect = dialect_of(txn);
    let started = Instant::now();
    let status_table = qualified(STATUS_TABLE);
    if let Some(settings) = dialect.bulk_build_settings() {
        txn.execute_unprepared(settings)
            .await
            .map_err(db_err("session settings"))?;
    }
    // Waits for writers still in flight (they hold the row, see the module doc); on a
    // backend without row locks the first write takes the database's write lock, so no
    // writer can slip in from here on.
    let lock = match dialect.for_update() {
        Some(for_update) => format!("SELECT fresh FROM {status_table} WHERE id = 1{for_update}"),
        None => format!("UPDATE {status_table} SET fresh = 0 WHERE id = 1"),
    };
    txn.execute_unprepared(&lock)
        .await
        .map_err(db_err("locking its status"))?;
    txn.execute_unprepared(&format!("DELETE FROM {}", qualified(TABLE)))
        .await
        .map_err(db_err("clearing it"))?;
    let rows = build_into(txn, config, false).await?;
    let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    record_fresh(txn, config, rows, millis).await?;
    Ok(RefreshReport {
        rows,
        millis,
        scoped_users: None,
    })
}

/// Inserts the build query's rows (every user, or only the scope's when `scoped`); returns
/// how many.
async fn build_into(
    txn: &DatabaseTransaction,
    config: &SaasConfig,
    scoped: bool,
) -> Result<i64, Error> {
    let db_backend = txn.get_database_backend();
    let build = dialect_of(txn).sql_text(BUILD_POSTGRES, BUILD_SQLITE);
    let inserted = txn
        .execute_raw(Statement::from_sql_and_values(
            db_backend,
            format!("INSERT INTO {} ({COLUMNS})\n{build}", qualified(TABLE)),
            [config.grace_seconds().into(), i32::from(scoped).into()],
        ))
        .await
        .map_err(db_err("building it"))?
        .rows_affected();
    Ok(i64::try_from(inserted).unwrap_or(i64::MAX))
}

/// Marks the history fresh for `config`'s grace period, with its row count and build time.
async fn record_fresh(
    txn: &DatabaseTransaction,
    config: &SaasConfig,
    rows: i64,
    millis: i64,
) -> Result<(), Error> {
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        format!(
            "UPDATE {} SET fresh = 1, grace_seconds = $1, built_at = $2, \
             row_count = $3, build_millis = $4 WHERE id = 1",
            qualified(STATUS_TABLE)
        ),
        [
            config.grace_seconds().into(),
            super::format_time(Utc::now()).into(),
            rows.into(),
            millis.into(),
        ],
    ))
    .await
    .map(|_| ())
    .map_err(db_err("recording its status"))
}

/// What a load wrote that can change stages: the users named by its rows, the shops of its
/// lifecycle events (their creators are affected too), and the invoices its payments pay
/// (their owners are affected too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// `metadata.user_id` of events, `user_id` of payments and invoices.
    pub users: std::collections::BTreeSet<String>,
    /// `metadata.shop_id` of events.
    pub shops: std::collections::BTreeSet<String>,
    /// `invoice_id` of payments.
    pub invoices: std::collections::BTreeSet<String>,
}

impl Touched {
    /// Whether nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.shops.is_empty() && self.invoices.is_empty()
    }
}

/// Locks the history's status for a writer that will update the history in its own
/// transaction `txn` (the loader, before it writes a row), and returns the status as it was
/// before this transaction: only when the history was usable then can [`update_in`]
/// recompute just the users the transaction touched. On PostgreSQL the status row is locked until
/// `txn` ends, so no other writer can change a source table unnoticed meanwhile; on
/// SQLite the first write takes the database's write lock. The tables must exist
/// ([`ensure`]).
pub async fn lock_for_update(txn: &DatabaseTransaction) -> Result<Option<Status>, Error> {
    let lock = match dialect_of(txn).for_update() {
        Some(for_update) => status_select("", for_update),
        None => {
            // the first write takes the database's write lock
            txn.execute_unprepared(&format!(
                "UPDATE {} SET fresh = fresh WHERE id = 1",
                qualified(STATUS_TABLE)
            ))
            .await
            .map_err(db_err("locking its status"))?;
            status_select("", "")
        }
    };
    let row = txn
        .query_one_raw(Statement::from_string(txn.get_database_backend(), lock))
        .await
        .map_err(db_err("locking its status"))?;
    row.map(|r| read_status(&r)).transpose()
}

/// Brings the history up to date inside `txn` after the transaction's own writes, and marks
/// it fresh there. When the history was usable for `config` before them (`before`, from
/// [`lock_for_update`]), only the users they touched are recomputed: their rows are deleted
/// and rebuilt by the same query restricted to them. Otherwise, or when `touched` names
/// about a tenth of the users or more (rows / 30; a user has about three rows), everything
/// is rebuilt ([`rebuild_in`]).
pub async fn update_in(
    txn: &DatabaseTransaction,
    config: &SaasConfig,
    touched: &Touched,
    before: Option<&Status>,
) -> Result<RefreshReport, Error> {
    let db_backend = txn.get_database_backend();
    let Some(before) = before.filter(|s| s.source_for(config) == StageSource::History) else {
        return rebuild_in(txn, config).await;
    };
    let touched_users = i64::try_from(touched.users.len()).unwrap_or(i64::MAX);
    if touched_users.saturating_mul(30) > before.row_count {
        return rebuild_in(txn, config).await;
    }
    let started = Instant::now();
    let scope = qualified(SCOPE_TABLE);
    let json = |set: &std::collections::BTreeSet<String>| {
        serde_json::to_string(set).map_err(|e| Error::Database(format!("encoding ids: {e}")))
    };
    let (users, shops, invoices) = (
        json(&touched.users)?,
        json(&touched.shops)?,
        json(&touched.invoices)?,
    );
    let dialect = dialect_of(txn);
    let list = |p: &str| dialect.json_values(p);
    txn.execute_unprepared(&format!("DELETE FROM {scope}"))
        .await
        .map_err(db_err("clearing its scope"))?;
    let scoped = txn
        .execute_raw(Statement::from_sql_and_values(
            db_backend,
            format!(
                "INSERT INTO {scope} (user_id) \
             SELECT DISTINCT u.user_id FROM ( \
               SELECT value AS user_id FROM ({}) AS a \
               UNION SELECT e.metadata ->> 'user_id' FROM \"saas\".\"global_events\" AS e \
                 WHERE e.event_type = 'user_shop_create' AND e.metadata ->> 'shop_id' IN ({}) \
               UNION SELECT i.user_id FROM \"saas\".\"invoices\" AS i \
                 WHERE i.invoice_id IN ({}) \
             ) AS u WHERE u.user_id IS NOT NULL",
                list("$1"),
                list("$2"),
                list("$3")
            ),
            [users.into(), shops.into(), invoices.into()],
        ))
        .await
        .map_err(db_err("filling its scope"))?
        .rows_affected();
    // Its size for the planner, which otherwise guesses a thousand-odd rows and reads whole
    // tables instead of probing the user_id indexes.
    txn.execute_unprepared(&format!("ANALYZE {scope}"))
        .await
        .map_err(db_err("analysing its scope"))?;
    // the history's user_id is in byte order on PostgreSQL: compare in it to use its key
    let in_byte_order = dialect_of(txn)
        .byte_collation()
        .map(|c| format!(" COLLATE {c}"))
        .unwrap_or_default();
    let deleted = txn
        .execute_unprepared(&format!(
            "DELETE FROM {} WHERE user_id IN (SELECT user_id{in_byte_order} FROM {scope})",
            qualified(TABLE)
        ))
        .await
        .map_err(db_err("clearing the scope's rows"))?
        .rows_affected();
    let rows = build_into(txn, config, true).await?;
    let millis = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let total = before.row_count - i64::try_from(deleted).unwrap_or(i64::MAX) + rows;
    record_fresh(txn, config, total, millis).await?;
    Ok(RefreshReport {
        rows,
        millis,
        scoped_users: Some(i64::try_from(scoped).unwrap_or(i64::MAX)),
    })
}

/// Refreshes the history in the background when asked, one refresh at a time (the server
/// keeps one and asks whenever a reader found the history unusable).
#[derive(Clone)]
pub struct Refresher {
    db: DatabaseConnection,
    config: SaasConfig,
    running: Arc<AtomicBool>,
    /// When the last refresh failed: no new one starts within [`RETRY_AFTER`] of it.
    failed_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

/// How long the [`Refresher`] waits after a failed refresh before it tries again.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

impl Refresher {
    /// A refresher of the history of `db` for `config`.
    pub fn new(db: DatabaseConnection, config: SaasConfig) -> Refresher {
        Refresher {
            db,
            config,
            running: Arc::new(AtomicBool::new(false)),
            failed_at: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Starts a refresh on the tokio runtime unless one is running or the last one failed
    /// less than [`RETRY_AFTER`] ago; returns whether it did.
    pub fn kick(&self) -> bool {
        let recently_failed = self
            .failed_at
            .lock()
            .map(|f| f.is_some_and(|t| t.elapsed() < RETRY_AFTER))
            .unwrap_or(false);
        if recently_failed || self.running.swap(true, Ordering::SeqCst) {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = refresh(&this.db, &this.config).await;
            let failed = match outcome {
                Ok(r) => {
                    tracing::info!(
                        rows = r.rows,
                        millis = r.millis,
                        "saas stage history refreshed"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!(
                        "saas stage history not refreshed (stages are computed from the tables; retrying after {} s): {e}",
                        RETRY_AFTER.as_secs()
                    );
                    Some(Instant::now())
                }
            };
            if let Ok(mut f) = this.failed_at.lock() {
                *f = failed;
            }
            this.running.store(false, Ordering::SeqCst);
        });
        true
    }

    /// Whether a refresh is running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

/// The refresher of the server's database, once installed.
static INSTALLED: OnceLock<Refresher> = OnceLock::new();

/// Makes `refresher` the process's background refresher (the server does this at start):
/// readers that find the history unusable then start a refresh. Only the first call counts.
pub fn install(refresher: Refresher) {
    let _ = INSTALLED.set(refresher);
}

/// Starts a background refresh with the installed refresher, if any, none is running and
/// it builds for `config` (a request with its own grace period does not rebuild the
/// server's history).
pub(crate) fn kick_installed(config: &SaasConfig) {
    if let Some(r) = INSTALLED.get()
        && r.config == *config
    {
        r.kick();
    }
}
