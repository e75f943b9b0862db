//! The engine: the one place tally answers reads.
//!
//! An [`Engine`] is built once per database: the pool, its [`Dialect`], the validated models
//! and the caches (rendered statements by request shape, time zones whose offsets are
//! ready). Every field of the API reads through it:
//!
//! - semantic-layer queries, metrics and row queries ([`Engine::run`]): a checked
//!   [`QuerySpec`] is planned and rendered (or found in the plan cache), bound and run as
//!   one statement;
//! - the lifecycle features (`src/saas`) and the catalog of sources build their statements
//!   with the same SQL pieces and read them through a [`Session`] ([`Session::read`]),
//!   whose result cache is the engine's.
//!
//! A [`Session`] is the engine's execution for one field: it runs statements, records what
//! `extensions.explain` shows of each, and turns database failures into internal
//! [`ApiError`]s (cause logged under an id, never shown). Besides the engine only the
//! loader, migrations and the saas stage-history builder run SQL (they write).

mod cache;
mod caller;
pub mod guard;
mod live;
mod plan_choice;
pub mod policy;
pub mod results;
mod rollup;
mod session;
pub mod values;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sea_orm::{DatabaseConnection, Statement};

pub use cache::PlanCache;
pub use caller::Caller;
pub use guard::{Guard, Limits, RequestScope};
pub use live::{check_live, load_live_models, read_catalog};
pub use results::{ResultCache, ResultCacheSettings};
pub use session::{Kept, RollupChoice, Session, StatementExplain, Trace};
pub use values::{Cell, Raw};

use crate::error::ApiError;
use crate::plan::OutType;
use crate::query::QuerySpec;
use crate::semantic::Model;
use crate::sql::Dialect;
pub use crate::sql::dialect_of;

/// The rows of an answer: the response columns (key and type) and one value per column.
#[derive(Debug, Clone)]
pub struct Table<V = serde_json::Value> {
    /// The response columns: key and type, in order.
    pub columns: Vec<(String, OutType)>,
    /// One `Vec` per row, one value per column.
    pub rows: Vec<Vec<V>>,
}

/// One engine per database: pool, dialect, models and caches.
pub struct Engine {
    db: DatabaseConnection,
    dialect: &'static dyn Dialect,
    models: Arc<[Arc<Model>]>,
    plans: PlanCache,
    /// Models whose SQL tables read `tally_tz_offsets` on this dialect (computed when the
    /// models are loaded into the engine, not by reading SQL at request time).
    offsets_needed: HashSet<String>,
    /// Time zones whose offsets are in `tally_tz_offsets`.
    zones_ready: Mutex<HashSet<String>>,
    /// Time budget, admission control and counters of every session.
    guard: Arc<Guard>,
    /// Answers of every read of its sessions (off unless [`Engine::with_result_cache`]).
    results: ResultCache,
    /// The namespaces each model's statements can read, by model (the result cache's
    /// data versions).
    reads: Arc<HashMap<String, Vec<String>>>,
    /// The rollups metrics requests may be answered from.
    rollups: rollup::Routes,
}

/// The most connections `db`'s pool opens.
pub fn pool_size(db: &DatabaseConnection) -> u32 {
    dialect_of(db).pool_state(db).2
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dialect", &self.dialect.name())
            .field(
                "models",
                &self.models.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine over `db` answering for `models`.
    pub fn new(db: DatabaseConnection, models: Vec<Arc<Model>>) -> Engine {
        let dialect = dialect_of(&db);
        let models_for_rollups = models.clone();
        let offsets_needed = models
            .iter()
            .filter(|m| !dialect.time_zones() && m.reads_tz_offsets)
            .map(|m| m.name.clone())
            .collect();
        let reads = Arc::new(
            models
                .iter()
                .map(|m| (m.name.clone(), results::namespaces_of(m)))
                .collect(),
        );
        Engine {
            results: ResultCache::disabled(),
            reads,
            dialect,
            models: models.into(),
            plans: PlanCache::default(),
            offsets_needed,
            zones_ready: Mutex::new(HashSet::new()),
            guard: Arc::new(Guard::new(Limits::for_pool(pool_size(&db)))),
            rollups: rollup::Routes::new(&models_for_rollups, dialect),
            db,
        }
    }

    /// The engine without rollups: every metrics request reads the source tables (tests
    /// compare both; `rollup: null` in explain says so).
    pub fn without_rollups(mut self) -> Engine {
        self.rollups.disabled = true;
        self
    }

    /// The engine with `limits` instead of its pool's defaults.
    pub fn with_limits(mut self, limits: Limits) -> Engine {
        self.guard = Arc::new(Guard::new(limits));
        self
    }

    /// The engine with a result cache of `settings` (see [`results`]); its data-version
    /// poll runs on the current Tokio runtime while the engine lives, also with the cache
    /// off when the engine reads rollups (which keep their status by the data versions):
    /// call [`Engine::without_rollups`] first to have none.
    pub fn with_result_cache(mut self, settings: ResultCacheSettings) -> Engine {
        let mut read: Vec<String> = self.reads.values().flatten().cloned().collect();
        read.sort_unstable();
        read.dedup();
        let versions = self.rollups.active();
        self.results = ResultCache::new(&self.db, settings, read, versions);
        self
    }

    /// The result cache's settings.
    pub fn result_cache(&self) -> ResultCacheSettings {
        self.results.settings()
    }

    /// The time budget, admission control and counters of its sessions.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// The engine over `db` with the models tally ships (tests and tools).
    pub fn with_embedded_models(db: DatabaseConnection) -> Result<Engine, ApiError> {
        let models =
            crate::semantic::load_embedded().map_err(|e| ApiError::BadConfig(e.to_string()))?;
        Ok(Engine::new(db, models.into_iter().map(Arc::new).collect()))
    }

    /// The pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The dialect of the pool's backend.
    pub fn dialect(&self) -> &'static dyn Dialect {
        self.dialect
    }

    /// The models the engine answers for.
    pub fn models(&self) -> &[Arc<Model>] {
        &self.models
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.models.iter().find(|m| m.name == name)
    }

    /// A new session (execution with its own trace) on this engine's pool.
    pub fn session(&self) -> Session {
        self.session_for(None)
    }

    /// A new session for the request `scope`: its budget ends at the scope's deadline, and
    /// what bounds it (`OVERLOADED`, `DATABASE_UNAVAILABLE`) is noted in the scope.
    pub fn session_for(&self, scope: Option<Arc<RequestScope>>) -> Session {
        Session::guarded(&self.db, self.models.clone(), self.guard.clone(), scope)
            .with_results(self.results.clone(), self.reads.clone())
    }

    /// The one entry point of semantic-layer reads, metrics and row queries alike: checks
    /// `spec` against its model, plans and renders it (or finds the statement in the plan
    /// cache), binds the request's values and runs it in `session`, which records its
    /// explain. Values are read into `V` by their planned type.
    pub async fn run<V: Cell>(
        &self,
        session: &Session,
        spec: &QuerySpec,
    ) -> Result<Table<V>, ApiError> {
        let started = Instant::now();
        let model = self.model(&spec.model).ok_or_else(|| {
            ApiError::UnknownMetric(format!("there is no model {:?}", spec.model))
        })?;
        spec.check(model)?;
        self.prepare_zones(model, spec).await?;
        let caller = policy::scope(session, model);
        // a rollup that answers exactly, or why none does (metrics requests only); a rollup
        // holds every tenant's rows, so none answers where a row policy applies
        let tenant = session
            .caller()
            .map(|c| c.as_ref())
            .filter(|_| caller.is_some());
        let (route, choice) = match self.rollups.candidates(model, spec, tenant) {
            None => (None, None),
            Some(Err(reason)) => (
                None,
                Some(RollupChoice {
                    used: None,
                    reason: Some(reason),
                    status: None,
                }),
            ),
            Some(Ok(candidates)) => {
                let version = self
                    .results
                    .data_version(std::slice::from_ref(&model.namespace));
                let (chosen, status) = rollup::usable(
                    &self.rollups,
                    session,
                    self.dialect,
                    model,
                    spec,
                    &candidates,
                    version,
                )
                .await?;
                match chosen {
                    Ok((r, variant)) => (
                        Some(variant),
                        Some(RollupChoice {
                            used: Some(format!("{}.{}", r.model, r.rollup.name)),
                            reason: None,
                            status: Some(status),
                        }),
                    ),
                    Err(reason) => (
                        None,
                        Some(RollupChoice {
                            used: None,
                            reason: Some(reason),
                            status: Some(status),
                        }),
                    ),
                }
            }
        };
        let scoped = caller.is_some();
        let ((rendered, plan_choice), _hit) = match &route {
            Some(r) => r
                .plans
                .get_or_render_chosen(&r.derived, spec, self.dialect, scoped),
            None => self
                .plans
                .get_or_render_chosen(model, spec, self.dialect, scoped),
        }
        .map_err(|e| ApiError::internal("planning", e))?;
        let plan_micros = started.elapsed().as_micros() as u64;
        if let Some(attributes) = caller {
            policy::check(model, &rendered.params, attributes)?;
        }
        let params = rendered.bind_with(&crate::plan::Bindings {
            caller,
            ..crate::plan::Bindings::of(spec)
        });
        let label = if spec.rows.is_some() {
            "rows"
        } else if spec.funnel.is_some() {
            "funnel"
        } else {
            "metrics"
        };
        let reads = self
            .reads
            .get(&model.name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let counters = self.guard.counters();
        let columns = format!("{:?}", rendered.columns);
        let pending = match self.results.lookup(
            counters,
            &rendered.sql,
            &params,
            Some(spec.as_of),
            &columns,
            reads,
        ) {
            results::Lookup::Hit(table) => {
                session.record(StatementExplain {
                    label: label.to_owned(),
                    sql: Some(rendered.sql.clone()),
                    params: params.iter().map(crate::sql::value_json).collect(),
                    join_path: rendered.join_path.clone(),
                    plan_micros,
                    db_millis: 0.0,
                    source: None,
                    cache: Some("hit"),
                    cache_reason: None,
                    rollup: None,
                    plan: None,
                });
                if let Some(choice) = choice {
                    session.note_rollup(choice);
                }
                return Ok(results::convert(&table));
            }
            results::Lookup::Miss(pending) => pending,
        };
        let stmt =
            Statement::from_sql_and_values(self.db.get_database_backend(), &rendered.sql, params);
        let join_path = rendered.join_path.clone();
        // planned for the values or generically, as measured (`plan_choice`); JIT off for
        // statements that embed SQL tables (see `Rendered::embeds_sql_tables`)
        let run = self
            .dialect
            .reuses_generic_plans()
            .then(|| plan_choice.next());
        let settings = crate::sql::interrupt::Settings {
            jit_off: rendered.embeds_sql_tables,
            plan_cache_mode: run.map(|r| r.mode.setting()),
        };
        let (result, db_millis) = session
            .query_planned(&self.db, label, stmt, join_path, plan_micros, settings)
            .await?;
        if let Some(run) = run {
            plan_choice.record(run.mode, (db_millis * 1000.0) as u64);
            session.note_plan(run.mode.name(), run.reason());
        }
        if let Some(choice) = choice {
            session.note_rollup(choice);
        }
        let mut rows = Vec::with_capacity(result.len());
        for r in &result {
            let mut row = Vec::with_capacity(rendered.columns.len());
            for (i, (_, ty)) in rendered.columns.iter().enumerate() {
                row.push(
                    values::read(r, i, *ty)
                        .map_err(|e| ApiError::internal("metrics: reading a value", e))?,
                );
            }
            rows.push(row);
        }
        let table = Arc::new(Table {
            columns: rendered.columns.clone(),
            rows,
        });
        let mut reason = pending.reason.clone();
        if let Some(more) = self.results.store(counters, pending, &table) {
            reason = format!("{reason}; {more}");
        }
        session.note_cache("miss", Some(reason));
        Ok(results::convert(&table))
    }

    /// What the dialect needs before `spec` runs: on a backend without time zones, the UTC
    /// offsets of the request's zone and of the zones the model's SQL tables read.
    async fn prepare_zones(&self, model: &Model, spec: &QuerySpec) -> Result<(), ApiError> {
        if let Some(zone) = &spec.timezone
            && !self.dialect.time_zones()
            && !self.zone_ready(zone)
        {
            crate::tz::ensure_zone(&self.db, zone)
                .await
                .map_err(|e| ApiError::internal("time-zone offsets", e))?;
            self.set_zone_ready(zone);
        }
        if self.offsets_needed.contains(&model.name) {
            crate::tz::ensure_offsets(&self.db, &model.namespace)
                .await
                .map_err(|e| ApiError::internal("time-zone offsets", e))?;
        }
        Ok(())
    }

    fn zone_ready(&self, zone: &str) -> bool {
        self.zones_ready
            .lock()
            .map(|z| z.contains(zone))
            .unwrap_or(false)
    }

    fn set_zone_ready(&self, zone: &str) {
        if let Ok(mut z) = self.zones_ready.lock() {
            z.insert(zone.to_owned());
        }
    }
}
