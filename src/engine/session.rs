//! [`Session`]: the engine's execution of statements for one field of a request. Every read
//! statement tally runs for an answer goes through [`Session::query`], which times it, keeps
//! what `extensions.explain` shows of it, and turns a database failure into an internal
//! [`ApiError`] whose cause is logged (never shown).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Statement};

use crate::error::ApiError;
use crate::semantic::Model;
use crate::sql::Dialect;

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
        serde_json::Value::Object(m)
    }
}

/// The statements a session ran, shared by its clones (dataloaders keep running statements
/// for a field after its resolver returned).
pub type Trace = Arc<Mutex<Vec<StatementExplain>>>;

/// The engine's execution for one field: the pool, the dialect, and the trace of what ran.
/// Cheap to clone; clones share the trace.
#[derive(Clone)]
pub struct Session {
    db: DatabaseConnection,
    dialect: &'static dyn Dialect,
    models: Arc<[Arc<Model>]>,
    trace: Trace,
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

    /// A session on `db` answering for `models`.
    pub(crate) fn with_models(db: &DatabaseConnection, models: Arc<[Arc<Model>]>) -> Session {
        Session {
            db: db.clone(),
            dialect: super::dialect_of(db),
            models,
            trace: Trace::default(),
        }
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

    /// Notes which path answered (`source` of the last entry), e.g. `stage history`.
    pub fn note_source(&self, source: &str) {
        if let Ok(mut v) = self.trace.lock()
            && let Some(last) = v.last_mut()
        {
            last.source = Some(source.to_owned());
        }
    }

    /// Runs a read statement on `conn` (the pool, or a read transaction of it) and returns
    /// its rows; `label` names it in explain and in the log. A database failure is logged
    /// with the SQL and becomes an internal error.
    pub async fn query(
        &self,
        conn: &impl ConnectionTrait,
        label: &str,
        stmt: Statement,
    ) -> Result<Vec<QueryResult>, ApiError> {
        self.query_planned(conn, label, stmt, Vec::new(), 0).await
    }

    /// [`Session::query`] for a planned statement: with the tables it joins and the time its
    /// planning took, for explain.
    pub async fn query_planned(
        &self,
        conn: &impl ConnectionTrait,
        label: &str,
        stmt: Statement,
        join_path: Vec<String>,
        plan_micros: u64,
    ) -> Result<Vec<QueryResult>, ApiError> {
        let sql = stmt.sql.clone();
        let params: Vec<serde_json::Value> = stmt
            .values
            .as_ref()
            .map(|v| v.0.iter().map(crate::sql::value_json).collect())
            .unwrap_or_default();
        let started = Instant::now();
        let result = conn.query_all_raw(stmt).await;
        let db_millis = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        let rows = result
            .map_err(|e| ApiError::internal(label, format!("{e}; SQL: {}", one_line(&sql))))?;
        self.record(StatementExplain {
            label: label.to_owned(),
            sql: Some(sql),
            params,
            join_path,
            plan_micros,
            db_millis,
            source: None,
        });
        Ok(rows)
    }
}

/// `sql` on one line, for the log.
fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
