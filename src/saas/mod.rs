//! The SaaS lifecycle (model `saas`, SEMANTICS §2): every user's stage at any instant, the
//! journey Sankey of a signup cohort, stage transitions between two instants, and the
//! drill-down from users to shops, plans, invoices and payments.
//!
//! The building block is one SQL file per dialect, `sql/saas/user_stages.sql` (PostgreSQL)
//! and `sql/saas/user_stages.sqlite.sql` (SQLite), compiled in with `include_str!`: one row
//! per user existing at T with the stage and the facts it is decided from ([`UserStage`]).
//! Its parameters are `$1` = the as-of instant T and `$2` = the grace period of unpaid
//! invoices in whole seconds ([`SaasConfig::grace_seconds`]). Every function here wraps that
//! file as a subquery (`SELECT … FROM (<file>) AS s WHERE … GROUP BY …`) with every request
//! value bound, so the database does all the counting and only a few rows come back:
//!
//! - [`stage_counts`]: users per stage (all four, zeros included), optionally of a cohort;
//! - [`journey`]: the Sankey of SEMANTICS §2 ([`journey::JourneyNode`]), from grouped facts;
//! - [`transitions`]: stage at T0 → stage at T1 (the file twice, joined on `user_id`);
//! - [`users_page`] / [`users_total`]: the users behind a stage or cohort, paged with
//!   limit and offset
//!   by `user_id` in byte order (the page from `user_stages`, then the page's emails,
//!   payment counts, shop counts and plans from `sql/saas/user_details(.sqlite).sql`);
//! - [`drill`]: shops, plans, invoices and payments of many users / shops / invoices in one
//!   statement each (what the GraphQL dataloaders call).
//!
//! Whole-population questions ([`stage_counts`], [`journey`], [`transitions`], [`users_page`],
//! [`users_total`]) read the **stage history** instead of `user_stages` whenever it is fresh
//! ([`history`]): every user's stage as intervals of the as-of instant, rebuilt after each
//! saas load and marked stale by triggers on any other write, so one narrow scan answers
//! them (0.25 s over a million users on PostgreSQL, where `user_stages` takes 8 s).
//! `user_stages` stays the reference the history is tested against and the fallback while
//! it is stale.
//!
//! The grace period is a setting of the saas model: `[saas] grace_days = 30` in a file of
//! `models/saas/` ([`SaasConfig`], default 30 days).

pub mod drill;
pub mod history;
pub mod journey;

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;

use sea_orm::Statement;

use crate::engine::results::Stored;
use crate::engine::{Engine, Kept, Raw, Session, Table};
use crate::error::{ApiError, Error};
use crate::query::{Filter, FilterOp, Item, QuerySpec, ReqValue, Selected};
use crate::semantic::TableSource;
use crate::sql::{Dialect, Sql};

pub use history::StageSource;
pub use journey::{Flow, FlowLink, FlowNode, JourneyFacts, JourneyNode, TransitionNode};

/// The saas model's table of every user's stage as of `asOf` (a SQL table of the model
/// file), which the lifecycle fields read.
pub const STAGES_TABLE: &str = "stages";

/// `user_stages` for PostgreSQL (`$1` = T as timestamptz, `$2` = grace in seconds).
pub const USER_STAGES_POSTGRES: &str = include_str!("../../sql/saas/user_stages.sql");
/// `user_stages` for SQLite (`$1` = T as RFC 3339 text in UTC, `$2` = grace in seconds).
pub const USER_STAGES_SQLITE: &str = include_str!("../../sql/saas/user_stages.sqlite.sql");

/// `user_details` for PostgreSQL (`$1` = T, `$2` = user ids as a JSON array): the
/// descriptive columns of `user_stages` for a page of users.
pub const USER_DETAILS_POSTGRES: &str = include_str!("../../sql/saas/user_details.sql");
/// `user_details` for SQLite.
pub const USER_DETAILS_SQLITE: &str = include_str!("../../sql/saas/user_details.sqlite.sql");

/// `stages_at` for PostgreSQL: the stage of every user at `$1` from the stage history
/// ([`history`]).
pub const STAGES_AT_POSTGRES: &str = include_str!("../../sql/saas/stages_at.sql");
/// `stages_at` for SQLite.
pub const STAGES_AT_SQLITE: &str = include_str!("../../sql/saas/stages_at.sqlite.sql");

/// The `user_stages` file of `dialect`.
pub fn user_stages_sql(dialect: &dyn Dialect) -> &'static str {
    dialect.sql_text(USER_STAGES_POSTGRES, USER_STAGES_SQLITE)
}

/// Settings of the saas model, read from the `[saas]` table of the model's files:
///
/// ```toml
/// [saas]
/// grace_days = 30   # days after invoice_timestamp before an unpaid invoice is delinquent
/// ```
///
/// Absent table or key: the default (30 days). An invoice is delinquent at T when
/// `invoice_timestamp + grace_days × 86400 s <= T` (inclusive) and no payment for it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaasConfig {
    /// The grace period of unpaid invoices, in days of 86 400 s (0 to 3650).
    pub grace_days: u32,
}

/// The default grace period, in days.
pub const DEFAULT_GRACE_DAYS: u32 = 30;

/// The largest grace period accepted, in days (ten years).
pub const MAX_GRACE_DAYS: u32 = 3650;

impl Default for SaasConfig {
    /// 30 days of grace.
    fn default() -> Self {
        SaasConfig {
            grace_days: DEFAULT_GRACE_DAYS,
        }
    }
}

impl SaasConfig {
    /// The grace period in seconds (what the SQL's `$2` takes).
    pub fn grace_seconds(&self) -> i64 {
        i64::from(self.grace_days) * 86_400
    }

    /// The `[saas]` settings of one model file's text: `Ok(None)` when the file has no
    /// `[saas]` table; an error when the text is not TOML or `grace_days` is not an integer
    /// in `0..=3650`. Other keys of `[saas]` are left to the semantic layer.
    pub fn from_toml(text: &str) -> Result<Option<SaasConfig>, Error> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| Error::Config(format!("saas model file is not TOML: {e}")))?;
        let Some(saas) = table.get("saas") else {
            return Ok(None);
        };
        let saas = saas
            .as_table()
            .ok_or_else(|| Error::Config("[saas] must be a table".to_owned()))?;
        let mut config = SaasConfig::default();
        if let Some(v) = saas.get("grace_days") {
            let days = v
                .as_integer()
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| *d <= MAX_GRACE_DAYS)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "[saas] grace_days must be a whole number of days from 0 to {MAX_GRACE_DAYS}, not {v:?}"
                    ))
                })?;
            config.grace_days = days;
        }
        Ok(Some(config))
    }

    /// The settings of the saas model in the models folder `dir` (`dir/saas/*.toml`, the
    /// first file with a `[saas]` table in name order), or in the embedded copy of the
    /// shipped models when `dir` is `None`; the default when no file sets them.
    pub fn load(dir: Option<&Path>) -> Result<SaasConfig, Error> {
        let mut texts: Vec<(String, String)> = Vec::new();
        match dir {
            Some(dir) => {
                let folder = dir.join("saas");
                if folder.is_dir() {
                    let entries = std::fs::read_dir(&folder).map_err(|source| Error::Io {
                        context: format!("reading {}", folder.display()),
                        source,
                    })?;
                    let mut paths: Vec<_> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                        .collect();
                    paths.sort();
                    for p in paths {
                        let text = std::fs::read_to_string(&p).map_err(|source| Error::Io {
                            context: format!("reading {}", p.display()),
                            source,
                        })?;
                        texts.push((p.display().to_string(), text));
                    }
                }
            }
            None => {
                for (model, path, text) in crate::semantic::EMBEDDED_MODELS {
                    if *model == "saas" {
                        texts.push(((*path).to_owned(), (*text).to_owned()));
                    }
                }
            }
        }
        for (path, text) in texts {
            match SaasConfig::from_toml(&text) {
                Ok(Some(c)) => return Ok(c),
                Ok(None) => {}
                Err(Error::Config(m)) => return Err(Error::Config(format!("{path}: {m}"))),
                Err(e) => return Err(e),
            }
        }
        Ok(SaasConfig::default())
    }

    /// The settings of the models folder tally serves ([`crate::semantic::models_dir`]:
    /// `$TALLY_MODELS`, `./models`, else the embedded copy).
    pub fn load_default() -> Result<SaasConfig, Error> {
        SaasConfig::load(crate::semantic::models_dir(None).as_deref())
    }
}

/// A lifecycle stage (SEMANTICS §2), decided by the first rule that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// No shop creation counts (and not churned).
    Lead,
    /// At least one shop creation counts, no payment (and not churned).
    Prospect,
    /// At least one payment counts (and not churned).
    Customer,
    /// The account is deleted, every created shop is deleted, or an invoice is delinquent.
    Churned,
}

impl Stage {
    /// The four stages in lifecycle order (the order of [`stage_counts`]).
    pub const ALL: [Stage; 4] = [
        Stage::Lead,
        Stage::Prospect,
        Stage::Customer,
        Stage::Churned,
    ];

    /// Its name in the SQL and in GraphQL: `LEAD`, `PROSPECT`, `CUSTOMER`, `CHURNED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Lead => "LEAD",
            Stage::Prospect => "PROSPECT",
            Stage::Customer => "CUSTOMER",
            Stage::Churned => "CHURNED",
        }
    }

    /// The stage named `s` (as [`Stage::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Why a user is churned: the first churn rule that holds, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChurnReason {
    /// The user's `user_delete_account` counts.
    AccountDeleted,
    /// The user created at least one shop and every one of them is deleted.
    AllShopsDeleted,
    /// An invoice of the user is delinquent (and no deletion holds).
    Delinquent,
}

impl ChurnReason {
    /// Its name: `ACCOUNT_DELETED`, `ALL_SHOPS_DELETED`, `DELINQUENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChurnReason::AccountDeleted => "ACCOUNT_DELETED",
            ChurnReason::AllShopsDeleted => "ALL_SHOPS_DELETED",
            ChurnReason::Delinquent => "DELINQUENT",
        }
    }

    /// The reason named `s`.
    pub fn parse(s: &str) -> Option<ChurnReason> {
        [
            ChurnReason::AccountDeleted,
            ChurnReason::AllShopsDeleted,
            ChurnReason::Delinquent,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A half-open signup window `[from, to)` on the time of the account creation event (UTC);
/// a missing bound is open. The cohort as of T is the users existing at T whose signup time
/// is in the window (it can grow with T as late events arrive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cohort {
    /// Signed up at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Signed up strictly before this instant.
    pub to: Option<DateTime<Utc>>,
}

/// One row of `user_stages`: a user existing at T, their stage and its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStage {
    /// The user (`metadata.user_id` of the account creation).
    pub user_id: String,
    /// The email of the account creation event.
    pub email: Option<String>,
    /// `event_time` of the (earliest counting) account creation.
    pub signup_time: DateTime<Utc>,
    /// The stage at T.
    pub stage: Stage,
    /// Why the user is churned (`None` unless [`Stage::Churned`]).
    pub churn_reason: Option<ChurnReason>,
    /// The user's account deletion counts.
    pub account_deleted: bool,
    /// At least one shop created and every created shop deleted.
    pub all_shops_deleted: bool,
    /// An invoice of the user is delinquent at T.
    pub delinquent: bool,
    /// At least one shop creation counts.
    pub reached_prospect: bool,
    /// At least one payment counts.
    pub reached_customer: bool,
    /// At least two distinct payment_ids count.
    pub repeat_payer: bool,
    /// Distinct `payment_id`s of the user counting at T.
    pub payment_count: i64,
    /// Distinct shops created: the shop_ids of the user's counting `user_shop_create`
    /// events (ownership comes from their metadata).
    pub shops_created: i64,
    /// Created shops not deleted at T.
    pub shops_live: i64,
    /// The user's plan as of T: the `plan_id` of the creation event of the user's latest
    /// created live shop, else of the latest created shop (ties: greatest shop_id).
    pub plan_id: Option<String>,
    /// That plan's invoice amount as of T (latest `plans` partition `ts <= T`), a decimal
    /// string with 2 places.
    pub plan_invoice_amount: Option<String>,
}

/// The columns of `user_stages`, in the order [`UserStage`] reads them.
const USER_COLUMNS: &str = "s.user_id, s.email, s.signup_time, s.stage, s.churn_reason, \
     s.account_deleted, s.all_shops_deleted, s.delinquent, s.reached_prospect, \
     s.reached_customer, s.payment_count, s.shops_created, s.shops_live, s.plan_id, \
     s.plan_invoice_amount, s.repeat_payer";

/// An instant as GraphQL and the tests show it: RFC 3339 in UTC with `Z`, a fraction only
/// when non-zero (`2024-03-01T10:00:00Z`).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A row of a lifecycle answer, as kept by the result cache ([`Session::read`]).
pub(crate) type Row = [Stored];

/// Reads an instant column (kept as RFC 3339 text: [`Raw::Instant`]).
pub(crate) fn get_time(r: &Row, i: usize) -> Result<Option<DateTime<Utc>>, Error> {
    match r.get(i) {
        None | Some(Stored::Null) => Ok(None),
        Some(Stored::Text(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| Error::Database(format!("reading a saas timestamp {s:?}: {e}"))),
        Some(v) => Err(Error::Database(format!(
            "reading a saas timestamp: column {i} holds {v:?}"
        ))),
    }
}

/// Reads a text column ([`Raw::Text`], or money kept as text: [`Raw::Money`]).
pub(crate) fn get_text(r: &Row, i: usize) -> Result<Option<String>, Error> {
    match r.get(i) {
        None | Some(Stored::Null) => Ok(None),
        Some(Stored::Text(s)) => Ok(Some(s.clone())),
        Some(v) => Err(Error::Database(format!(
            "reading a saas column: column {i} holds {v:?}"
        ))),
    }
}

/// Reads an integer column (counts, 0/1 flags: [`Raw::Int`]); null reads as 0.
pub(crate) fn get_int(r: &Row, i: usize) -> Result<i64, Error> {
    match r.get(i) {
        None | Some(Stored::Null) => Ok(0),
        Some(Stored::Int(v)) => Ok(*v),
        Some(v) => Err(Error::Database(format!(
            "reading a saas count: column {i} holds {v:?}"
        ))),
    }
}

/// Reads a money column (a double rounded to 2 places in SQL, kept as a 2-place decimal
/// string: [`Raw::Money`]).
pub(crate) fn get_money(r: &Row, i: usize) -> Result<Option<String>, Error> {
    get_text(r, i)
}

/// ` AND <alias>.signup_time >= <from> AND … < <to>` for the cohort's bounds, bound.
pub(crate) fn cohort_sql(sql: &mut Sql, alias: &str, cohort: &Cohort) {
    if let Some(from) = cohort.from {
        sql.push(&format!(" AND {alias}.signup_time >= "));
        sql.value(from);
    }
    if let Some(to) = cohort.to {
        sql.push(&format!(" AND {alias}.signup_time < "));
        sql.value(to);
    }
}

/// The statement of `sql` (every parameter a constant) for `session`'s dialect.
/// The saas model's tables are read through their row policies when the session's caller is
/// scoped (see [`Session::statement`]).
pub(crate) fn statement(session: &Session, sql: Sql) -> Result<Statement, ApiError> {
    session.statement("saas", sql, "saas statement")
}

/// Runs a statement as of `as_of` through the result cache and returns its rows, each
/// column read as `columns` says; `what` names it in explain and errors.
pub(crate) async fn query(
    session: &Session,
    sql: Sql,
    what: &str,
    as_of: DateTime<Utc>,
    columns: &[Raw],
) -> Result<Arc<Table<Stored>>, ApiError> {
    let stmt = statement(session, sql)?;
    session
        .read(session.db(), what, stmt, &kept(as_of, columns))
        .await
}

/// What the result cache keeps a lifecycle answer under: the saas model's namespaces (the
/// stage history's tables live there), `as_of`, the columns.
fn kept(as_of: DateTime<Utc>, columns: &[Raw]) -> Kept<'_> {
    Kept {
        model: "saas",
        as_of: Some(as_of),
        columns,
    }
}

/// Runs a statement over the stages of every user as of `as_of` and returns its rows (each
/// column read as `columns` says) and where the stages came from (`None`: the result
/// cache answered); `what` names it in explain and errors. `build` writes the statement for
/// the [`StageSource`] forced, if any (see [`stages_from`]).
///
/// The result cache is asked first: a kept answer needs no transaction. Otherwise the
/// statement runs in a read transaction that first reads the stage history's status in
/// the same snapshot ([`history::begin_read`]): the history when it is fresh and built for
/// `config`'s grace period, else `user_stages`. On PostgreSQL `jit` is off in that
/// transaction (like `SET LOCAL`): the plan of `user_stages` over many users is costed far
/// above `jit_optimize_above_cost`, and compiling its ~200 expressions took longer than the
/// query itself (1.8 s of JIT at 300 000 users). When the history was not usable and the
/// server installed a [`history::Refresher`], a background refresh is started.
pub(crate) async fn query_stages(
    session: &Session,
    config: &SaasConfig,
    what: &str,
    read: (DateTime<Utc>, &[Raw]),
    build: impl FnOnce(Option<StageSource>) -> Result<Sql, ApiError>,
) -> Result<(Arc<Table<Stored>>, Option<StageSource>), ApiError> {
    query_stages_from(session, config, what, read, None, build).await
}

/// [`query_stages`], reading from `force` when given instead of what the history's status
/// says (benchmarks and tests compare the two).
async fn query_stages_from(
    session: &Session,
    config: &SaasConfig,
    what: &str,
    (as_of, columns): (DateTime<Utc>, &[Raw]),
    force: Option<StageSource>,
    build: impl FnOnce(Option<StageSource>) -> Result<Sql, ApiError>,
) -> Result<(Arc<Table<Stored>>, Option<StageSource>), ApiError> {
    // the statement does not depend on the history's status (the stages table reads it in
    // the statement's own snapshot; a forced source is in the text): ask the cache first
    let stmt = statement(session, build(force)?)?;
    let kept = kept(as_of, columns);
    let pending = match session.look_up(what, &stmt, &kept) {
        Ok(table) => return Ok((table, None)),
        Err(pending) => pending,
    };
    let (txn, chosen) = history::begin_read(session.db(), config).await?;
    let source = force.unwrap_or(chosen);
    let rows = session
        .read_missed(&txn, what, stmt, &kept, pending)
        .await?;
    session.note_source(source.describe());
    txn.commit()
        .await
        .map_err(|e| ApiError::internal(what, e))?;
    if chosen != StageSource::History {
        history::kick_installed(config);
    }
    tracing::debug!(what, source = source.describe(), "saas stages read");
    Ok((rows, Some(source)))
}

/// The stages of every user as of `as_of` as a subquery named `alias`, their `$1` and `$2`
/// bound to `as_of` and `config`'s grace period: the saas model's `stages` table (which
/// reads the stage history when its status, in the statement's own snapshot, says it is
/// usable, and `user_stages` otherwise), or, when `force` says so, `stages_at` (the history,
/// whatever its status) or `user_stages` (tests and benchmarks compare the two). All give
/// `user_id`, `signup_time`, `stage`, `churn_reason`, the stage facts and `repeat_payer`.
pub(crate) fn stages_from(
    force: Option<StageSource>,
    session: &Session,
    alias: &str,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
) -> Result<Sql, ApiError> {
    let dialect = session.dialect();
    let file = match force {
        Some(StageSource::History) => &located(
            session,
            dialect.sql_text(STAGES_AT_POSTGRES, STAGES_AT_SQLITE),
        ),
        Some(StageSource::Direct(_)) => &located(session, user_stages_sql(dialect)),
        None => match session
            .model("saas")
            .and_then(|m| m.table(STAGES_TABLE))
            .map(|t| &t.source)
        {
            Some(TableSource::Sql {
                postgres, sqlite, ..
            }) => &std::borrow::Cow::Borrowed(dialect.sql_text(postgres, sqlite)),
            _ => {
                return Err(ApiError::BadConfig(format!(
                    "the saas model has no SQL table {STAGES_TABLE:?}: the lifecycle fields read it"
                )));
            }
        },
    };
    subquery(file, alias, as_of, config)
}

/// A lifecycle SQL file's text reading the saas model's tables where they live: the files name
/// them `"saas"."…"`, pointed at the model's namespace when it is mapped elsewhere (the model's
/// own SQL tables are pointed there when the model loads).
pub(crate) fn located<'a>(session: &Session, text: &'a str) -> std::borrow::Cow<'a, str> {
    match session.model("saas").map(|m| m.namespace.as_str()) {
        Some(ns) if ns != "saas" => {
            std::borrow::Cow::Owned(crate::lexer::requalify(text, "saas", ns))
        }
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// `(<file>) AS <alias>` with the file's `$1` = `as_of` and `$2` = the grace period.
fn subquery(
    file: &str,
    alias: &str,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
) -> Result<Sql, ApiError> {
    let mut s = Sql::raw("(\n");
    s.append(
        crate::sql::file(file, vec![as_of.into(), config.grace_seconds().into()])
            .map_err(|e| ApiError::internal("saas stages", e))?,
    );
    s.push(&format!("\n) AS {alias}"));
    Ok(s)
}

/// The semantic-layer query behind `stageCounts`: the saas model's `lifecycleUsers` metric
/// grouped by `stage`, of the signup cohort when given (`signupCohort` in `[from, to)`).
pub fn stage_counts_query(as_of: DateTime<Utc>, cohort: &Cohort) -> QuerySpec {
    let mut spec = QuerySpec::new("saas", as_of);
    spec.fields = vec![
        Selected {
            key: "stage".to_owned(),
            item: Item::Dimension {
                name: "stage".to_owned(),
                granularity: None,
            },
        },
        Selected {
            key: "count".to_owned(),
            item: Item::Metric {
                name: "lifecycleUsers".to_owned(),
            },
        },
    ];
    let mut conds = Vec::new();
    for (bound, op) in [(cohort.from, FilterOp::Gte), (cohort.to, FilterOp::Lt)] {
        if let Some(t) = bound {
            let i = spec.value(ReqValue::Time(t));
            conds.push(Filter::Cond {
                dimension: "signupCohort".to_owned(),
                op,
                args: vec![i],
            });
        }
    }
    if !conds.is_empty() {
        spec.filter = Some(Filter::And(conds));
    }
    spec
}

/// Users per stage as of `as_of` (of `cohort`), answered by the engine as the saas model's
/// stage metric ([`stage_counts_query`]): all four stages in lifecycle order, zeros
/// included. The grace period is the model's (`[saas] grace_days`).
pub async fn stage_counts_by_metric(
    engine: &Engine,
    session: &Session,
    as_of: DateTime<Utc>,
    cohort: &Cohort,
) -> Result<Vec<(Stage, i64)>, ApiError> {
    let table = engine
        .run::<serde_json::Value>(session, &stage_counts_query(as_of, cohort))
        .await?;
    let stateless = session
        .model("saas")
        .and_then(|m| m.table(STAGES_TABLE))
        .is_some_and(|t| {
            matches!(
                t.source,
                TableSource::Sql {
                    without_state: true,
                    ..
                }
            )
        });
    if stateless {
        session.note_source("direct (no stage history in this database)");
    }
    let mut counts: Vec<(Stage, i64)> = Stage::ALL.iter().map(|s| (*s, 0)).collect();
    for row in &table.rows {
        let name = row.first().and_then(|v| v.as_str()).unwrap_or_default();
        let stage = Stage::parse(name).ok_or_else(|| {
            ApiError::internal(
                "stage counts",
                format!("the stages table gave stage {name:?}"),
            )
        })?;
        let n = row.get(1).and_then(|v| v.as_i64()).unwrap_or(0);
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == stage) {
            slot.1 += n;
        }
    }
    Ok(counts)
}

/// Users per stage as of `as_of` (of `cohort`) with the grace period of `config`, computed
/// by the lifecycle's own statement (the reference [`stage_counts_by_metric`] is checked
/// against): all four stages in lifecycle order, zeros included.
pub async fn stage_counts(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    cohort: &Cohort,
) -> Result<Vec<(Stage, i64)>, ApiError> {
    stage_counts_from(session, as_of, config, cohort, None).await
}

/// [`stage_counts`] read from `force` when given (the stage history without looking at its
/// status, or `user_stages`), else from where the history's status says.
pub async fn stage_counts_from(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    cohort: &Cohort,
    force: Option<StageSource>,
) -> Result<Vec<(Stage, i64)>, ApiError> {
    let columns = [Raw::Text, Raw::Int];
    let read = (as_of, &columns[..]);
    let (rows, _) = query_stages_from(session, config, "stage counts", read, force, |force| {
        let mut sql = Sql::raw("SELECT s.stage, COUNT(*) AS n FROM ");
        sql.append(stages_from(force, session, "s", as_of, config)?);
        sql.push(" WHERE 1 = 1");
        cohort_sql(&mut sql, "s", cohort);
        sql.push(" GROUP BY s.stage");
        Ok(sql)
    })
    .await?;
    let mut counts: Vec<(Stage, i64)> = Stage::ALL.iter().map(|s| (*s, 0)).collect();
    for r in &rows.rows {
        let name = get_text(r, 0)?.unwrap_or_default();
        let stage = Stage::parse(&name)
            .ok_or_else(|| Error::Database(format!("user_stages gave stage {name:?}")))?;
        let n = get_int(r, 1)?;
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == stage) {
            slot.1 += n;
        }
    }
    Ok(counts)
}

/// The journey (Sankey) of `cohort` as of `as_of`: the nodes and links of SEMANTICS §2
/// ([`journey::JOURNEY_NODES`]), counts of users, zero counts included.
pub async fn journey(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    cohort: &Cohort,
) -> Result<Flow, ApiError> {
    let columns = [
        Raw::Text,
        Raw::Int,
        Raw::Int,
        Raw::Int,
        Raw::Int,
        Raw::Int,
        Raw::Int,
    ];
    let (rows, _) = query_stages(session, config, "journey", (as_of, &columns), |force| {
        let mut sql = Sql::raw(
            "SELECT s.stage, s.reached_prospect, s.account_deleted, s.all_shops_deleted, \
             s.delinquent, s.reached_customer + s.repeat_payer AS payments, COUNT(*) AS n FROM ",
        );
        sql.append(stages_from(force, session, "s", as_of, config)?);
        sql.push(" WHERE 1 = 1");
        cohort_sql(&mut sql, "s", cohort);
        sql.push(
            " GROUP BY s.stage, s.reached_prospect, s.account_deleted, s.all_shops_deleted, \
             s.delinquent, s.reached_customer + s.repeat_payer",
        );
        Ok(sql)
    })
    .await?;
    let mut groups = Vec::with_capacity(rows.rows.len());
    for r in &rows.rows {
        let name = get_text(r, 0)?.unwrap_or_default();
        let stage = Stage::parse(&name)
            .ok_or_else(|| Error::Database(format!("user_stages gave stage {name:?}")))?;
        let facts = JourneyFacts {
            stage,
            reached_prospect: get_int(r, 1)? != 0,
            account_deleted: get_int(r, 2)? != 0,
            all_shops_deleted: get_int(r, 3)? != 0,
            delinquent: get_int(r, 4)? != 0,
            payment_count: get_int(r, 5)?,
        };
        groups.push((facts, get_int(r, 6)?));
    }
    Ok(journey::journey_flow(&groups))
}

/// Stage transitions of `cohort` (as of `to`) from the instant `from` to the instant `to`:
/// a node per stage at `from` (plus [`TransitionNode::NotSignedUp`] for users not existing
/// at `from`), a node per stage at `to`, and a link per pair, zero counts included.
/// `from` must not be later than `to`.
pub async fn transitions(
    session: &Session,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    config: &SaasConfig,
    cohort: &Cohort,
) -> Result<Flow, ApiError> {
    if from > to {
        return Err(ApiError::BadArgument(format!(
            "transitions: from ({}) is later than to ({})",
            format_time(from),
            format_time(to)
        )));
    }
    let columns = [Raw::Text, Raw::Text, Raw::Int];
    let (rows, _) = query_stages(session, config, "transitions", (to, &columns), |force| {
        // b: the stages as of `to`; a: the stages as of `from`
        let mut sql = Sql::raw(
            "SELECT COALESCE(a.stage, 'NOT_SIGNED_UP') AS from_stage, b.stage AS to_stage, \
             COUNT(*) AS n FROM ",
        );
        sql.append(stages_from(force, session, "b", to, config)?);
        sql.push(" LEFT JOIN ");
        sql.append(stages_from(force, session, "a", from, config)?);
        sql.push(" ON a.user_id = b.user_id WHERE 1 = 1");
        cohort_sql(&mut sql, "b", cohort);
        sql.push(" GROUP BY COALESCE(a.stage, 'NOT_SIGNED_UP'), b.stage");
        Ok(sql)
    })
    .await?;
    let mut pairs = Vec::with_capacity(rows.rows.len());
    for r in &rows.rows {
        let from_name = get_text(r, 0)?.unwrap_or_default();
        let to_name = get_text(r, 1)?.unwrap_or_default();
        let from_node = TransitionNode::parse(&from_name)
            .ok_or_else(|| Error::Database(format!("transitions gave stage {from_name:?}")))?;
        let to_stage = Stage::parse(&to_name)
            .ok_or_else(|| Error::Database(format!("transitions gave stage {to_name:?}")))?;
        pairs.push((from_node, to_stage, get_int(r, 2)?));
    }
    Ok(journey::transition_flow(&pairs))
}

/// Which users a drill-down lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only users in this stage.
    pub stage: Option<Stage>,
    /// Only users of this signup cohort.
    pub cohort: Cohort,
}

/// ` AND s.stage = <stage>` and the cohort bounds of `filter`, bound.
fn filter_sql(sql: &mut Sql, filter: &UserFilter) {
    if let Some(stage) = filter.stage {
        sql.push(" AND s.stage = ");
        sql.value(stage.as_str());
    }
    cohort_sql(sql, "s", &filter.cohort);
}

/// Reads the stage and churn reason of a `user_stages` row from the columns at `stage` and
/// `reason`.
fn read_stage(
    r: &Row,
    stage: usize,
    reason: usize,
) -> Result<(Stage, Option<ChurnReason>), ApiError> {
    let stage_name = get_text(r, stage)?.unwrap_or_default();
    let stage = Stage::parse(&stage_name)
        .ok_or_else(|| Error::Database(format!("user_stages gave stage {stage_name:?}")))?;
    let churn_reason = match get_text(r, reason)? {
        Some(s) => Some(
            ChurnReason::parse(&s)
                .ok_or_else(|| Error::Database(format!("user_stages gave churn reason {s:?}")))?,
        ),
        None => None,
    };
    Ok((stage, churn_reason))
}

/// How the columns [`USER_COLUMNS`] are read.
const USER_RAW: [Raw; 16] = [
    Raw::Text,
    Raw::Text,
    Raw::Instant,
    Raw::Text,
    Raw::Text,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Text,
    Raw::Money,
    Raw::Int,
];

/// Reads a [`UserStage`] from the columns [`USER_COLUMNS`].
fn read_user(r: &Row) -> Result<UserStage, ApiError> {
    let (stage, churn_reason) = read_stage(r, 3, 4)?;
    Ok(UserStage {
        user_id: get_text(r, 0)?.unwrap_or_default(),
        email: get_text(r, 1)?,
        signup_time: get_time(r, 2)?
            .ok_or_else(|| Error::Database("user_stages gave no signup_time".to_owned()))?,
        stage,
        churn_reason,
        account_deleted: get_int(r, 5)? != 0,
        all_shops_deleted: get_int(r, 6)? != 0,
        delinquent: get_int(r, 7)? != 0,
        reached_prospect: get_int(r, 8)? != 0,
        reached_customer: get_int(r, 9)? != 0,
        payment_count: get_int(r, 10)?,
        shops_created: get_int(r, 11)?,
        shops_live: get_int(r, 12)?,
        plan_id: get_text(r, 13)?,
        plan_invoice_amount: get_money(r, 14)?,
        repeat_payer: get_int(r, 15)? != 0,
    })
}

/// `ORDER BY` of user ids in byte order on both backends.
fn by_user_id(dialect: &dyn Dialect) -> String {
    match dialect.byte_collation() {
        Some(c) => format!("s.user_id COLLATE {c}"),
        None => "s.user_id".to_owned(),
    }
}

/// Every user existing at `as_of` with their stage, in `user_id` byte order: the whole
/// `user_stages` file, every column (tests and tools; a page of users is [`users_page`]).
pub async fn user_stages(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
) -> Result<Vec<UserStage>, ApiError> {
    let dialect = session.dialect();
    let mut sql = Sql::raw(&format!("SELECT {USER_COLUMNS} FROM "));
    sql.append(subquery(
        &located(session, user_stages_sql(dialect)),
        "s",
        as_of,
        config,
    )?);
    sql.push(&format!(" ORDER BY {}", by_user_id(dialect)));
    let rows = query(session, sql, "user stages", as_of, &USER_RAW).await?;
    rows.rows.iter().map(|r| read_user(r)).collect()
}

/// The columns of `user_stages` a page is selected and ordered by: the stage and its facts,
/// not the descriptive columns (which `user_details` adds for the page's users only).
const CORE_COLUMNS: &str = "s.user_id, s.signup_time, s.stage, s.churn_reason, \
     s.account_deleted, s.all_shops_deleted, s.delinquent, s.reached_prospect, \
     s.reached_customer, s.repeat_payer";

/// How the columns [`CORE_COLUMNS`] are read.
const CORE_RAW: [Raw; 10] = [
    Raw::Text,
    Raw::Instant,
    Raw::Text,
    Raw::Text,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Int,
];

/// How the columns of `user_details` are read: user_id, email, payment_count, shops_created,
/// shops_live, plan_id, plan_invoice_amount.
const DETAILS_RAW: [Raw; 7] = [
    Raw::Text,
    Raw::Text,
    Raw::Int,
    Raw::Int,
    Raw::Int,
    Raw::Text,
    Raw::Money,
];

/// Reads a [`UserStage`] from the columns [`CORE_COLUMNS`] (descriptive fields empty).
fn read_core(r: &Row) -> Result<UserStage, ApiError> {
    let (stage, churn_reason) = read_stage(r, 2, 3)?;
    Ok(UserStage {
        user_id: get_text(r, 0)?.unwrap_or_default(),
        email: None,
        signup_time: get_time(r, 1)?
            .ok_or_else(|| Error::Database("user_stages gave no signup_time".to_owned()))?,
        stage,
        churn_reason,
        account_deleted: get_int(r, 4)? != 0,
        all_shops_deleted: get_int(r, 5)? != 0,
        delinquent: get_int(r, 6)? != 0,
        reached_prospect: get_int(r, 7)? != 0,
        reached_customer: get_int(r, 8)? != 0,
        repeat_payer: get_int(r, 9)? != 0,
        payment_count: 0,
        shops_created: 0,
        shops_live: 0,
        plan_id: None,
        plan_invoice_amount: None,
    })
}

/// Fills the descriptive columns (email, payment_count, shop counts, plan) of `users` as of
/// `as_of` with ONE statement (`user_details`), whatever their number.
async fn add_details(
    session: &Session,
    as_of: DateTime<Utc>,
    users: &mut [UserStage],
) -> Result<(), ApiError> {
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
    let keys = serde_json::to_string(&ids)
        .map_err(|e| Error::Database(format!("encoding saas user ids: {e}")))?;
    let text = session
        .dialect()
        .sql_text(USER_DETAILS_POSTGRES, USER_DETAILS_SQLITE);
    let sql = crate::sql::file(&located(session, text), vec![as_of.into(), keys.into()])
        .map_err(|e| ApiError::internal("user details", e))?;
    let rows = query(session, sql, "user details", as_of, &DETAILS_RAW).await?;
    let mut by_id = std::collections::HashMap::with_capacity(rows.rows.len());
    for r in &rows.rows {
        by_id.insert(get_text(r, 0)?.unwrap_or_default(), r);
    }
    for u in users.iter_mut() {
        if let Some(r) = by_id.get(&u.user_id) {
            u.email = get_text(r, 1)?;
            u.payment_count = get_int(r, 2)?;
            u.shops_created = get_int(r, 3)?;
            u.shops_live = get_int(r, 4)?;
            u.plan_id = get_text(r, 5)?;
            u.plan_invoice_amount = get_money(r, 6)?;
        }
    }
    Ok(())
}

/// One page of the users of `filter` as of `as_of`, in `user_id` byte order: at most `limit`
/// of them (all when `None`) after skipping `offset`, and whether more follow.
///
/// Two statements whatever the page size: the page (`user_stages` reading only the stage
/// and its facts, so PostgreSQL skips the descriptive steps), then `user_details` for the
/// page's users.
pub async fn users_page(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    filter: &UserFilter,
    offset: u64,
    limit: Option<u64>,
) -> Result<(Vec<UserStage>, bool), ApiError> {
    let dialect = session.dialect();
    let order = by_user_id(dialect);
    let (rows, _) = query_stages(session, config, "users", (as_of, &CORE_RAW), |force| {
        let mut sql = Sql::raw(&format!("SELECT {CORE_COLUMNS} FROM "));
        sql.append(stages_from(force, session, "s", as_of, config)?);
        sql.push(" WHERE 1 = 1");
        filter_sql(&mut sql, filter);
        sql.push(&format!(" ORDER BY {order}"));
        match limit {
            Some(n) => {
                sql.push(" LIMIT ");
                sql.value(i64::try_from(n.saturating_add(1)).unwrap_or(i64::MAX));
            }
            None if offset > 0 => sql.push(&format!(" {}", dialect.limit_all())),
            None => {}
        }
        if offset > 0 {
            sql.push(" OFFSET ");
            sql.value(i64::try_from(offset).unwrap_or(i64::MAX));
        }
        Ok(sql)
    })
    .await?;
    let mut users = rows
        .rows
        .iter()
        .map(|r| read_core(r))
        .collect::<Result<Vec<_>, _>>()?;
    let has_next = match limit {
        Some(n) if users.len() as u64 > n => {
            users.truncate(usize::try_from(n).unwrap_or(usize::MAX));
            true
        }
        _ => false,
    };
    add_details(session, as_of, &mut users).await?;
    Ok((users, has_next))
}

/// How many users `filter` selects as of `as_of` (all pages).
pub async fn users_total(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    filter: &UserFilter,
) -> Result<i64, ApiError> {
    let (rows, _) = query_stages(
        session,
        config,
        "users total",
        (as_of, &[Raw::Int]),
        |force| {
            let mut sql = Sql::raw("SELECT COUNT(*) AS n FROM ");
            sql.append(stages_from(force, session, "s", as_of, config)?);
            sql.push(" WHERE 1 = 1");
            filter_sql(&mut sql, filter);
            Ok(sql)
        },
    )
    .await?;
    match rows.rows.first() {
        Some(r) => Ok(get_int(r, 0)?),
        None => Ok(0),
    }
}

/// Every user existing at `as_of` with their stage and its facts (not the descriptive
/// columns: no email, counts or plan), in `user_id` byte order, read from `source` as given:
/// [`StageSource::History`] reads the stage history without looking at its status (it must
/// have been built, for `config`'s grace period), a [`StageSource::Direct`] computes
/// `user_stages`. For tests and benchmarks that compare the two; everything else lets
/// `query_stages` choose.
pub async fn core_stages_from(
    session: &Session,
    as_of: DateTime<Utc>,
    config: &SaasConfig,
    source: StageSource,
) -> Result<Vec<UserStage>, ApiError> {
    let dialect = session.dialect();
    let mut sql = Sql::raw(&format!("SELECT {CORE_COLUMNS} FROM "));
    sql.append(stages_from(Some(source), session, "s", as_of, config)?);
    sql.push(&format!(" ORDER BY {}", by_user_id(dialect)));
    let rows = query(session, sql, "core stages", as_of, &CORE_RAW).await?;
    rows.rows.iter().map(|r| read_core(r)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_from_toml() {
        assert_eq!(
            SaasConfig::from_toml("[model]\nname = 'saas'\n").unwrap(),
            None
        );
        assert_eq!(
            SaasConfig::from_toml("[saas]\ngrace_days = 10\n").unwrap(),
            Some(SaasConfig { grace_days: 10 })
        );
        assert_eq!(
            SaasConfig::from_toml("[saas]\n").unwrap(),
            Some(SaasConfig::default())
        );
        assert!(SaasConfig::from_toml("[saas]\ngrace_days = -1\n").is_err());
        assert!(SaasConfig::from_toml("[saas]\ngrace_days = '30'\n").is_err());
        assert_eq!(SaasConfig::default().grace_seconds(), 2_592_000);
        assert!(SaasConfig::load(None).is_ok());
    }

    #[test]
    fn lifecycle_files_name_policy_tables_so_the_rewrite_finds_them() {
        let models = crate::semantic::load_embedded().unwrap();
        let saas = models.iter().find(|m| m.name == "saas").unwrap();
        assert!(saas.policies.len() >= 5);
        let files = [
            USER_STAGES_POSTGRES,
            USER_STAGES_SQLITE,
            USER_DETAILS_POSTGRES,
            USER_DETAILS_SQLITE,
            STAGES_AT_POSTGRES,
            STAGES_AT_SQLITE,
            include_str!("../../sql/saas/drill_shops.sql"),
            include_str!("../../sql/saas/drill_shops.sqlite.sql"),
            include_str!("../../sql/saas/drill_plans.sql"),
            include_str!("../../sql/saas/drill_plans.sqlite.sql"),
            include_str!("../../sql/saas/drill_invoices.sql"),
            include_str!("../../sql/saas/drill_invoices.sqlite.sql"),
            include_str!("../../sql/saas/drill_payments.sql"),
            include_str!("../../sql/saas/drill_payments.sqlite.sql"),
        ];
        for text in files {
            for p in &saas.policies {
                let found = crate::semantic::unfiltered_reads(text, &p.namespace, &p.table);
                assert!(found.is_empty(), "{found:?}");
            }
        }
    }

    #[test]
    fn stage_names() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stage::parse("lead"), None);
    }
}
