//! [`Session`]: the engine's execution of statements for one field of a request. Every read
//! statement tally runs for an answer goes through [`Session::query`], which times it, keeps
//! what `extensions.explain` shows of it, and turns a database failure into an internal
//! [`ApiError`] whose cause is logged (never shown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, QueryResult, Statement, TransactionSession as _,
    TransactionTrait,
};

use chrono::{DateTime, Utc};

use super::Table;
use super::guard::{Guard, Limits, RequestScope};
use super::results::{self, Lookup, Pending, ResultCache, Stored};
use super::values::Raw;
use crate::error::ApiError;
use crate::semantic::Model;
use crate::sql::Dialect;
use crate::sql::interrupt::{self, Failure};

/// What `extensions.explain` shows of one statement (or of a field answered without SQL).
#[derive(Debug, Clone, PartialEq)]
pub struct StatementExplain {
    /// What the statement computes (`metrics`, `stage counts`, `users page`, …).
    pub label: String,
    /// The statement with its placeholders; `None` for a field answered without SQL.
    pub sql: Option<String>,
    /// The bound values, in placeholder order.
    pub params: Vec<serde_json::Value>,
    /// The tables joined, measure tables first (semantic-layer queries).
    pub join_path: Vec<String>,
    /// Time spent checking, planning and rendering (or finding the plan in the cache).
    pub plan_micros: u64,
    /// Time spent in the database, transfer of rows included.
    pub db_millis: f64,
    /// Which path answered, when there is a choice (e.g. the saas stage history or the
    /// direct computation from the events).
    pub source: Option<String>,
    /// Whether the result cache answered: `hit` or `miss`; `None`: a statement the cache
    /// does not keep (shown as a miss, not cacheable).
    pub cache: Option<&'static str>,
    /// Why the result cache missed.
    pub cache_reason: Option<String>,
    /// For a metrics request of a model with rollups: the rollup that answered, or why none
    /// could.
    pub rollup: Option<RollupChoice>,
    /// How PostgreSQL planned the statement (`planMode`: `custom`, for its values, or
    /// `generic`) and why (`planReason`); `None` where tally leaves it to the server.
    pub plan: Option<(&'static str, String)>,
}

/// Which rollup answered a metrics request (`rollup` in explain), or why none could
/// (`rollupReason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupChoice {
    /// `model.rollup`, when one answered.
    pub used: Option<String>,
    /// Why no rollup answered.
    pub reason: Option<String>,
    /// Where the rollups' status came from (`rollupStatus`): read from the status table
    /// (and how long that took), or the engine's copy, kept while the model's data version
    /// holds; `None` when no status was needed.
    pub status: Option<String>,
}

impl StatementExplain {
    /// The entry as JSON, under the response path `path`.
    pub fn to_json(&self, path: &str) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("path".into(), path.into());
        m.insert("label".into(), self.label.clone().into());
        m.insert(
            "sql".into(),
            self.sql
                .clone()
                .map(serde_json::Value::String)
                .unwrap_or(serde_json::Value::Null),
        );
        m.insert("params".into(), self.params.clone().into());
        m.insert(
            "joinPath".into(),
            self.join_path
                .iter()
                .map(|t| serde_json::Value::String(t.clone()))
                .collect::<Vec<_>>()
                .into(),
        );
        m.insert("planMicros".into(), self.plan_micros.into());
        m.insert("dbMillis".into(), self.db_millis.into());
        if let Some(s) = &self.source {
            m.insert("source".into(), s.clone().into());
        }
        if self.sql.is_some() {
            m.insert("cache".into(), self.cache.unwrap_or("miss").into());
            let reason = match (self.cache, &self.cache_reason) {
                (_, Some(r)) => Some(r.clone()),
                (None, None) => Some(NOT_KEPT.to_owned()),
                _ => None,
            };
            if let Some(r) = reason {
                m.insert("cacheReason".into(), r.into());
            }
        }
        if let Some((mode, reason)) = &self.plan {
            m.insert("planMode".into(), (*mode).into());
            m.insert("planReason".into(), reason.clone().into());
        }
        if let Some(r) = &self.rollup {
            let text = |x: &Option<String>| {
                x.clone()
                    .map(serde_json::Value::String)
                    .unwrap_or(serde_json::Value::Null)
            };
            m.insert("rollup".into(), text(&r.used));
            if r.reason.is_some() {
                m.insert("rollupReason".into(), text(&r.reason));
            }
            if r.status.is_some() {
                m.insert("rollupStatus".into(), text(&r.status));
            }
        }
        serde_json::Value::Object(m)
    }
}

/// Why a statement run with [`Session::query`] (not [`Session::read`]) is not in the result
/// cache.
const NOT_KEPT: &str = "not cacheable: run with Session::query, which hands back the database's rows as they come and keeps none (every field of the API reads through the cache)";

/// What a kept read ([`Session::read`]) needs besides its statement: the model whose
/// namespaces it reads, the instant it is as of, and how each column is read.
#[derive(Debug, Clone, Copy)]
pub struct Kept<'a> {
    /// The model the statement reads (its namespaces, with those the statement names, are
    /// the data versions the answer is kept under).
    pub model: &'a str,
    /// The resolved `asOf` of the request (`None`: an answer that depends on no instant).
    pub as_of: Option<DateTime<Utc>>,
    /// How each column is read, in order.
    pub columns: &'a [Raw],
}

/// The statements a session ran, shared by its clones (dataloaders keep running statements
/// for a field after its resolver returned).
pub type Trace = Arc<Mutex<Vec<StatementExplain>>>;

/// The engine's execution for one field: the pool, the dialect, the trace of what ran, and
/// the bounds of its request (time budget, admission control; see [`super::guard`]).
/// Cheap to clone; clones share the trace.
#[derive(Clone)]
pub struct Session {
    db: DatabaseConnection,
    dialect: &'static dyn Dialect,
    models: Arc<[Arc<Model>]>,
    trace: Trace,
    guard: Arc<Guard>,
    deadline: Instant,
    scope: Option<Arc<RequestScope>>,
    /// The engine's result cache (off for sessions made without an engine).
    results: ResultCache,
    /// The namespaces each model's statements can read, by model.
    reads: Arc<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("dialect", &self.dialect.name())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session on `db` answering for the models tally ships, with the dialect of its
    /// backend and an empty trace (tests and tools; the API's sessions come from
    /// [`super::Engine::session`], with the served models).
    pub fn new(db: &DatabaseConnection) -> Session {
        static EMBEDDED: OnceLock<Arc<[Arc<Model>]>> = OnceLock::new();
        let models = EMBEDDED.get_or_init(|| {
            crate::semantic::load_embedded()
                .map(|ms| ms.into_iter().map(Arc::new).collect())
                .unwrap_or_default()
        });
        Session::with_models(db, models.clone())
    }

    /// A session on `db` answering for `models`, with the default limits of its pool.
    pub(crate) fn with_models(db: &DatabaseConnection, models: Arc<[Arc<Model>]>) -> Session {
        let guard = Arc::new(Guard::new(Limits::for_pool(super::pool_size(db))));
        Session::guarded(db, models, guard, None)
    }

    /// A session on `db` answering for `models` under `guard`, for the request `scope` (its
    /// budget ends at the scope's deadline, or one budget from now).
    pub(crate) fn guarded(
        db: &DatabaseConnection,
        models: Arc<[Arc<Model>]>,
        guard: Arc<Guard>,
        scope: Option<Arc<RequestScope>>,
    ) -> Session {
        let deadline = scope
            .as_ref()
            .and_then(|s| s.deadline)
            .unwrap_or_else(|| Instant::now() + guard.limits().statement_timeout);
        Session {
            // off until an engine hands its own (`with_results`): a disabled cache needs no
            // namespaces
            results: ResultCache::disabled(),
            reads: Arc::default(),
            db: db.clone(),
            dialect: super::dialect_of(db),
            models,
            trace: Trace::default(),
            guard,
            deadline,
            scope,
        }
    }

    /// The session reading through the engine's result cache `results`, with the
    /// namespaces each model reads (`reads`).
    pub(crate) fn with_results(
        mut self,
        results: ResultCache,
        reads: Arc<HashMap<String, Vec<String>>>,
    ) -> Session {
        self.results = results;
        self.reads = reads;
        self
    }

    /// Who is asking, when the request has an authenticated caller.
    pub fn caller(&self) -> Option<&Arc<super::Caller>> {
        self.scope.as_ref().and_then(|s| s.caller.as_ref())
    }

    /// When the session's time budget ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The model called `name`, among those the session answers for.
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The dialect of the pool's backend.
    pub fn dialect(&self) -> &'static dyn Dialect {
        self.dialect
    }

    /// The trace, shared with every clone of this session.
    pub fn trace(&self) -> Trace {
        self.trace.clone()
    }

    /// What ran so far.
    pub fn explained(&self) -> Vec<StatementExplain> {
        self.trace.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Adds an entry to the trace.
    pub fn record(&self, entry: StatementExplain) {
        if let Ok(mut v) = self.trace.lock() {
            v.push(entry);
        }
    }

    /// Notes whether the result cache answered the last entry (`hit` or `miss`) and why it
    /// missed.
    pub fn note_cache(&self, status: &'static str, reason: Option<String>) {
        if let Ok(mut v) = self.trace.lock()
            && let Some(last) = v.last_mut()
        {
            last.cache = Some(status);
            last.cache_reason = reason;
        }
    }

    /// Notes which path answered (`source` of the last entry), e.g. `stage history`.
    pub fn note_source(&self, source: &str) {
        if let Ok(mut v) = self.trace.lock()
            && let Some(last) = v.last_mut()
        {
            last.source = Some(source.to_owned());
        }
    }

    /// Notes how the database planned the last entry's statement and why (`planMode`,
    /// `planReason`).
    pub fn note_plan(&self, mode: &'static str, reason: String) {
        if let Ok(mut v) = self.trace.lock()
            && let Some(last) = v.last_mut()
        {
            last.plan = Some((mode, reason));
        }
    }

    /// Notes which rollup answered (or why none could) on the last entry.
    pub fn note_rollup(&self, choice: RollupChoice) {
        if let Ok(mut v) = self.trace.lock()
            && let Some(last) = v.last_mut()
        {
            last.rollup = Some(choice);
        }
    }

    /// Looks `stmt` up in the result cache as [`Kept`] describes it: on a hit the answer,
    /// already recorded in the trace (`cache: hit`, `dbMillis` 0); on a miss what
    /// [`Session::read_missed`] needs to run it and keep its answer. Hits and misses are
    /// counted for `/metrics`.
    pub fn look_up(
        &self,
        label: &str,
        stmt: &Statement,
        kept: &Kept<'_>,
    ) -> Result<Arc<Table<Stored>>, Pending> {
        let params: &[sea_orm::Value] = stmt.values.as_ref().map(|v| v.0.as_slice()).unwrap_or(&[]);
        let model = self.reads.get(kept.model).map(Vec::as_slice).unwrap_or(&[]);
        let namespaces = results::namespaces_in(&stmt.sql, model);
        let columns = format!("{:?}", kept.columns);
        match self.results.lookup(
            self.guard.counters(),
            &stmt.sql,
            params,
            kept.as_of,
            &columns,
            &namespaces,
        ) {
            Lookup::Hit(table) => {
                self.record(StatementExplain {
                    label: label.to_owned(),
                    sql: Some(stmt.sql.clone()),
                    params: params.iter().map(crate::sql::value_json).collect(),
                    join_path: Vec::new(),
                    plan_micros: 0,
                    db_millis: 0.0,
                    source: None,
                    cache: Some("hit"),
                    cache_reason: None,
                    rollup: None,
                    plan: None,
                });
                Ok(table)
            }
            Lookup::Miss(pending) => Err(pending),
        }
    }

    /// Runs `stmt` on `conn` after [`Session::look_up`] missed (`pending`), reads its rows
    /// as `kept.columns` says, keeps the answer in the result cache and notes the miss and
    /// why in the trace.
    pub async fn read_missed(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
        kept: &Kept<'_>,
        pending: Pending,
    ) -> Result<Arc<Table<Stored>>, ApiError> {
        let rows = self.query(conn, label, stmt).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(kept.columns.len());
            for (i, raw) in kept.columns.iter().enumerate() {
                row.push(
                    super::values::read_raw(r, i, *raw, self.dialect).map_err(|e| {
                        ApiError::internal(label, format!("reading column {i}: {e}"))
                    })?,
                );
            }
            out.push(row);
        }
        let table = Arc::new(Table {
            columns: kept
                .columns
                .iter()
                .map(|c| (String::new(), c.out_type()))
                .collect(),
            rows: out,
        });
        let mut reason = pending.reason.clone();
        if let Some(more) = self.results.store(self.guard.counters(), pending, &table) {
            reason = format!("{reason}; {more}");
        }
        self.note_cache("miss", Some(reason));
        Ok(table)
    }

    /// Reads `stmt` on `conn` through the result cache: the kept answer while the data it
    /// reads is unchanged (keyed by the statement, its bound values with their types, the
    /// `asOf` instant and the columns' types), else the database's, then kept. `label`
    /// names it in explain and in errors.
    pub async fn read(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
        kept: &Kept<'_>,
    ) -> Result<Arc<Table<Stored>>, ApiError> {
        match self.look_up(label, &stmt, kept) {
            Ok(table) => Ok(table),
            Err(pending) => self.read_missed(conn, label, stmt, kept, pending).await,
        }
    }

    /// Runs a read statement on `conn` (the pool, or a read transaction of it) and returns
    /// its rows; `label` names it in explain and in the log. A database failure is logged
    /// with the SQL and becomes an internal error.
    pub async fn query(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
    ) -> Result<Vec<QueryResult>, ApiError> {
        let settings = interrupt::Settings::default();
        let (rows, _) = self
            .query_planned(conn, label, stmt, Vec::new(), 0, settings)
            .await?;
        Ok(rows)
    }

    /// [`Session::query`] for a planned statement: with the tables it joins and the time its
    /// planning took, for explain.
    ///
    /// The statement waits for a turn (admission control: `OVERLOADED` past the guard's
    /// wait), runs in a transaction of its own on `conn` (a savepoint when `conn` is already
    /// a transaction) armed to stop inside the database when the request's budget ends
    /// (`TIMEOUT`), and is cancelled in the database when its future is dropped (the client
    /// went away). A database that cannot be reached is `DATABASE_UNAVAILABLE`. `settings`
    /// are the planner's for it (PostgreSQL: JIT, `plan_cache_mode`). The rows, and the
    /// milliseconds the database took.
    pub async fn query_planned(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
        join_path: Vec<String>,
        plan_micros: u64,
        settings: interrupt::Settings,
    ) -> Result<(Vec<QueryResult>, f64), ApiError> {
        let sql = stmt.sql.clone();
        let params: Vec<serde_json::Value> = stmt
            .values
            .as_ref()
            .map(|v| v.0.iter().map(crate::sql::value_json).collect())
            .unwrap_or_default();
        let (rows, db_millis) = self.run(conn, label, stmt, settings).await?;
        self.record(StatementExplain {
            label: label.to_owned(),
            sql: Some(sql),
            params,
            join_path,
            plan_micros,
            db_millis,
            source: None,
            cache: None,
            cache_reason: None,
            rollup: None,
            plan: None,
        });
        Ok((rows, db_millis))
    }

    /// [`Session::query`] without an explain entry of its own (admission control, the
    /// budget, cancellation and error masking alike): the rows and the milliseconds the
    /// database took. For a small read that decides how the field's statement is written
    /// (the rollups' status), which the field's entry mentions instead.
    pub(crate) async fn query_unrecorded(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
    ) -> Result<(Vec<QueryResult>, f64), ApiError> {
        self.run(conn, label, stmt, interrupt::Settings::default())
            .await
    }

    /// [`Session::query_unrecorded`], with the planner `settings`.
    async fn run(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
        settings: interrupt::Settings,
    ) -> Result<(Vec<QueryResult>, f64), ApiError> {
        let sql = stmt.sql.clone();
        let limits = self.guard.limits();
        let left = self.left().ok_or_else(|| self.timeout())?;
        let wait = limits.queue_timeout.min(left);
        let Some(_permit) = self.guard.admit(wait).await else {
            if wait < limits.queue_timeout {
                return Err(self.timeout());
            }
            Guard::count(&self.guard.counters().rejected);
            if let Some(scope) = &self.scope {
                scope.mark_overloaded();
            }
            return Err(ApiError::Overloaded(format!(
                "the server is busy: {} statements are running (--max-concurrent-queries {}) and none finished within the queue timeout of {} (--queue-timeout); try again shortly",
                limits.max_queries,
                limits.max_queries,
                super::guard::seconds(limits.queue_timeout)
            )));
        };
        let started = Instant::now();
        // counts the statement as cancelled when this future is dropped while it runs
        let abandoned = Abandoned(Some(&self.guard.counters().cancelled));
        let result = self.run_armed(conn, label, stmt, settings).await;
        abandoned.finish();
        let elapsed = started.elapsed();
        let counters = self.guard.counters();
        Guard::count(&counters.statements);
        counters.db_micros.fetch_add(
            elapsed.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let db_millis = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        let rows = result.map_err(|(what, e)| self.failure(label, what, &e, &sql))?;
        Ok((rows, db_millis))
    }

    /// Runs `stmt` in a transaction (or savepoint) of `conn` armed with what is left of the
    /// budget, with the planner `settings`; on failure, what was being done and the error.
    async fn run_armed(
        &self,
        conn: &(impl ConnectionTrait + TransactionTrait),
        label: &str,
        stmt: Statement,
        settings: interrupt::Settings,
    ) -> Result<Vec<QueryResult>, (&'static str, sea_orm::DbErr)> {
        let left = self.left().unwrap_or(Duration::from_millis(1));
        let txn = conn.begin().await.map_err(|e| ("begin", e))?;
        let armed = interrupt::arm(&self.db, &txn, left, settings)
            .await
            .map_err(|e| ("arm", e))?;
        // the database stops the statement at the deadline; this is the backstop should it
        // not answer (dropping the future cancels the statement)
        let backstop = left + Duration::from_secs(1);
        let rows = match tokio::time::timeout(backstop, txn.query_all_raw(stmt)).await {
            Ok(r) => {
                armed.finish();
                r.map_err(|e| ("query", e))?
            }
            Err(_) => {
                drop(armed);
                tracing::warn!(label, "statement outlived its budget: cancelled");
                return Err((
                    "query",
                    sea_orm::DbErr::Custom("the statement outlived its budget".into()),
                ));
            }
        };
        txn.commit().await.map_err(|e| ("commit", e))?;
        Ok(rows)
    }

    /// What is left of the budget, `None` when it is spent.
    fn left(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    fn timeout(&self) -> ApiError {
        Guard::count(&self.guard.counters().timeouts);
        ApiError::Timeout(format!(
            "the request ran longer than its time budget of {} (--statement-timeout) and was stopped; ask for less (a shorter period, fewer dimensions, a coarser granularity) or raise the budget",
            super::guard::seconds(self.guard.limits().statement_timeout)
        ))
    }

    /// The API error of a failed statement.
    pub(crate) fn failure(
        &self,
        label: &str,
        what: &str,
        e: &sea_orm::DbErr,
        sql: &str,
    ) -> ApiError {
        match interrupt::classify(e) {
            Failure::Unavailable => {
                Guard::count(&self.guard.counters().unavailable);
                if let Some(scope) = &self.scope {
                    scope.mark_unavailable();
                }
                tracing::warn!(label, what, "database unavailable: {e}");
                ApiError::DatabaseUnavailable(
                    "the database cannot be reached right now; try again shortly".to_owned(),
                )
            }
            _ if self.left().is_none() => self.timeout(),
            Failure::Cancelled => {
                Guard::count(&self.guard.counters().cancelled);
                ApiError::internal(label, format!("{what}: statement cancelled: {e}"))
            }
            _ => ApiError::internal(label, format!("{what}: {e}; SQL: {}", one_line(sql))),
        }
    }
}

/// Counts a statement abandoned while it runs (its request's future dropped): the statement
/// itself is cancelled by `crate::sql::interrupt`.
struct Abandoned<'a>(Option<&'a std::sync::atomic::AtomicU64>);

impl Abandoned<'_> {
    fn finish(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            Guard::count(c);
        }
    }
}

/// `sql` on one line, for the log.
fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
