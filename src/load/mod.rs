//! `tally load`: the streaming, validating, all-or-nothing loader of a model's source tables.
//!
//! Rows come as [`source::TableSource`]s (CSV files via [`csv_sources`], or the demo
//! generator) and go through [`load`], which
//!
//! - checks each header against the table's columns, which come from the sea-orm entities
//!   (names, types, nullability, keys; see `schema.rs`), and each row against the column
//!   types and the model's rules and references (`rules.rs`, from `docs/SOURCE-SCHEMA.md`);
//! - inserts the rows in multi-row batches with `ON CONFLICT (key) DO NOTHING`, all in one
//!   transaction that is committed only when no row at all was rejected;
//! - when a batch inserted fewer rows than it holds, reads the stored rows of its keys back
//!   and compares them column by column (`conflict.rs`): an identical row changes nothing
//!   (loading the same rows twice is harmless), a different one is an error naming the key
//!   and the columns, unless [`LoadOptions::replace`] lets it overwrite a row stored before
//!   the load;
//! - never holds a table's rows in memory: only the keys that references point at;
//! - once committed, refreshes the planner statistics of the tables it wrote.

mod conflict;
mod csv_file;
mod rules;
mod schema;
pub mod source;
mod validate;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait, Value};

pub use self::csv_file::CsvLimits;
use self::schema::TableSpec;
use self::source::TableSource;
use crate::error::Error;

/// The most bound parameters one statement may carry on every backend (SQLite allows 32766,
/// PostgreSQL 65535).
const MAX_PARAMS: usize = 32766;

/// How [`load`] behaves.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// How many row errors are reported in full (the others are only counted). At least one
    /// is always kept.
    pub max_errors: usize,
    /// Whether to draw a progress bar on stderr.
    pub progress: bool,
    /// How many rows go into one `INSERT` (fewer when the table is wide, to stay under the
    /// backends' limit of bound parameters).
    pub batch_rows: usize,
    /// Whether a row whose key was stored before this load with other values overwrites the
    /// stored row (instead of being an error). A key that appears twice in one load with
    /// different values is an error either way.
    pub replace: bool,
}

impl Default for LoadOptions {
    /// 20 errors, no progress bar, 1000 rows per `INSERT`, no replacing.
    fn default() -> Self {
        LoadOptions {
            max_errors: 20,
            progress: false,
            batch_rows: 1000,
            replace: false,
        }
    }
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table's name.
    pub table: String,
    /// The rows read from its sources.
    pub rows_read: u64,
    /// The rows that were new and were inserted.
    pub rows_inserted: u64,
    /// The rows that overwrote a stored row with the same key ([`LoadOptions::replace`]).
    pub rows_replaced: u64,
    /// The rows identical to a row already stored (or to an earlier row of the same load).
    pub rows_already_present: u64,
}

/// What a successful [`load`] did, table by table in load order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The model loaded.
    pub model: String,
    /// One report per table that had a source.
    pub tables: Vec<TableReport>,
    /// What a saas load did to the stage history (`None` for other models, or when it could
    /// not be updated and was left stale).
    pub stage_history: Option<crate::saas::history::RefreshReport>,
    /// The rollups of the model rebuilt in the load's transaction (see `crate::rollup`).
    pub rollups: Vec<crate::rollup::RefreshReport>,
}

/// One rejected row (or header, line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Where the row comes from: a file path or `demo`.
    pub origin: String,
    /// Its 1-based line in the origin (the header is line 1).
    pub line: u64,
    /// The column at fault, when there is one.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RowError {
    /// `origin:line: column x: reason` (or `origin:line: reason` when no column is at fault).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.origin, self.line)?;
        if let Some(column) = &self.column {
            write!(f, "column {column}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Why [`load`] loaded nothing.
#[derive(Debug)]
pub enum LoadError {
    /// Some rows are invalid; the transaction was rolled back.
    Rejected {
        /// The model whose load was rejected.
        model: String,
        /// The first errors (at most `LoadOptions::max_errors`), in reading order.
        errors: Vec<RowError>,
        /// How many more errors there were.
        more: u64,
    },
    /// The load could not run: unknown model or table, database or I/O failure.
    Failed(Error),
    /// The load stopped after its transaction began (a lost connection, a database that
    /// shut down, an I/O error while reading): the transaction was not committed, so the
    /// database holds what it held before.
    Interrupted {
        /// The model whose load stopped.
        model: String,
        /// What stopped it.
        cause: Error,
    },
}

impl fmt::Display for LoadError {
    /// Every error on its own line, then `… and N more`, then `nothing was loaded`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Rejected {
                model,
                errors,
                more,
            } => {
                for e in errors {
                    writeln!(f, "{e}")?;
                }
                if *more > 0 {
                    writeln!(f, "… and {more} more")?;
                }
                write!(f, "nothing was loaded into {model}")
            }
            LoadError::Failed(e) => write!(f, "{e}"),
            LoadError::Interrupted { model, cause } => write!(
                f,
                "{cause}\nnothing was loaded into {model}: the load stopped before its transaction committed, so the database is unchanged (loading the same files again is safe)"
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Rejected { .. } => None,
            LoadError::Failed(e) | LoadError::Interrupted { cause: e, .. } => Some(e),
        }
    }
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Failed(e)
    }
}

/// The tables of `model` in load order, or an input error naming the known models.
fn tables_of(model: &str) -> Result<&'static [&'static str], Error> {
    schema::tables_of(model).ok_or_else(|| {
        Error::Input(format!(
            "unknown model {model:?} (models: {})",
            schema::model_list()
        ))
    })
}

/// One CSV per table in `dir`, named `<table>.csv`, in load order, read within the default
/// [`CsvLimits`]; see [`csv_sources_with`].
pub fn csv_sources(model: &str, dir: &Path) -> Result<Vec<TableSource>, Error> {
    csv_sources_with(model, dir, CsvLimits::default())
}

/// One CSV per table in `dir`, named `<table>.csv`, in load order; no row or field may pass
/// `limits` (a row error at its line).
///
/// Every file whose extension is `csv` (in any case) must name a table of `model`, or this
/// is an error naming it; other files are ignored. Missing tables are fine, but a directory
/// without any table's CSV is an error. Each file's header is read here; its rows are read
/// by [`load`].
pub fn csv_sources_with(
    model: &str,
    dir: &Path,
    limits: CsvLimits,
) -> Result<Vec<TableSource>, Error> {
    let tables = tables_of(model)?;
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        context: format!("cannot read the directory {}", dir.display()),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                context: format!("cannot read the directory {}", dir.display()),
                source,
            })?
            .path();
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if !is_csv || !path.is_file() {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(index) = tables.iter().position(|t| *t == stem) else {
            return Err(Error::Input(format!(
                "{}: {stem:?} is not a table of model {model} (tables: {})",
                path.display(),
                tables.join(", ")
            )));
        };
        files.push((index, path));
    }
    if files.is_empty() {
        return Err(Error::Input(format!(
            "{} holds no <table>.csv of model {model} (tables: {})",
            dir.display(),
            tables.join(", ")
        )));
    }
    files.sort();
    files
        .into_iter()
        .map(|(index, path)| csv_file::open(tables[index], &path, limits))
        .collect()
}

/// The row errors of a load: the first `max` in full, the others counted.
struct Errors {
    kept: Vec<RowError>,
    more: u64,
    max: usize,
}

impl Errors {
    fn push(&mut self, origin: &str, line: u64, column: Option<&str>, reason: String) {
        if self.kept.len() < self.max {
            self.kept.push(RowError {
                origin: origin.to_owned(),
                line,
                column: column.map(str::to_owned),
                reason,
            });
        } else {
            self.more += 1;
        }
    }

    fn any(&self) -> bool {
        !self.kept.is_empty()
    }
}

/// A referenced column: `(table, column)`.
type Target = (&'static str, &'static str);

/// A reference not satisfied when its row was read; checked again once everything is read
/// (the key may come later: a self-reference, or a table loaded later).
struct Pending {
    origin: usize,
    line: u64,
    column: &'static str,
    value: String,
    target: Target,
}

/// How many values one lookup of stored keys sends.
const LOOKUP_BATCH: usize = 10_000;

/// A valid row waiting in a batch: its line and values.
struct BatchRow {
    line: u64,
    values: Vec<Value>,
}

/// What one batch did.
#[derive(Default, Clone, Copy)]
struct Written {
    inserted: u64,
    replaced: u64,
}

/// The state of one load between tables.
struct Loader<'a> {
    /// The database outside the load's transaction: what was stored before the load.
    db: &'a DatabaseConnection,
    txn: &'a DatabaseTransaction,
    opts: &'a LoadOptions,
    errors: Errors,
    /// The values of every referenced column loaded by this load.
    keys: HashMap<Target, HashSet<String>>,
    /// References to check again at the end.
    pending: Vec<Pending>,
    /// The origins of the sources, indexed by `Pending::origin`.
    origins: Vec<String>,
    /// Tables whose header was rejected: their keys are unknown, so references to them
    /// are not checked.
    unreadable: HashSet<&'static str>,
    /// What a saas load touched, for the stage history (`None`: not collected, because the
    /// history will be rebuilt whole).
    touched: Option<crate::saas::history::Touched>,
    /// Stop collecting `touched` past this many users (a whole rebuild is cheaper then).
    touched_limit: usize,
    /// The keys (`conflict::key_text`) of the rows this load replaced, per table.
    replaced: HashMap<&'static str, HashSet<String>>,
}

/// Validates and inserts all `sources` of `model` in ONE transaction, committed only when
/// no row at all was rejected.
///
/// Sources are loaded in the model's table order (`entity::<model>::TABLES`) whatever their
/// order here; several sources may feed the same table. A row identical to a stored row
/// (stored before, or earlier in this load) is skipped and reported as already present, so
/// loading the same data twice changes nothing. A row whose key is stored with other values
/// is an error naming its key and the columns that differ, unless `opts.replace` is set and
/// the stored row was there before the load: then it overwrites it. Row errors are collected (up to `opts.max_errors` in full, the rest counted)
/// while every remaining row is still validated; then the transaction is rolled back and
/// [`LoadError::Rejected`] lists them. Each load is counted by outcome for `/metrics`.
pub async fn load(
    db: &DatabaseConnection,
    model: &str,
    sources: Vec<TableSource>,
    opts: &LoadOptions,
) -> Result<LoadReport, LoadError> {
    use std::sync::atomic::Ordering::Relaxed;
    let counters = &crate::engine::guard::LOADS;
    let outcome = load_once(db, model, sources, opts).await;
    match &outcome {
        Ok(report) => {
            counters.committed.fetch_add(1, Relaxed);
            let rows: u64 = report
                .tables
                .iter()
                .map(|t| t.rows_inserted + t.rows_replaced)
                .sum();
            counters.rows.fetch_add(rows, Relaxed);
        }
        Err(LoadError::Rejected { .. }) => {
            counters.rejected.fetch_add(1, Relaxed);
        }
        Err(_) => {
            counters.failed.fetch_add(1, Relaxed);
        }
    }
    outcome
}

async fn load_once(
    db: &DatabaseConnection,
    model: &str,
    sources: Vec<TableSource>,
    opts: &LoadOptions,
) -> Result<LoadReport, LoadError> {
    let tables = tables_of(model)?;
    let mut sources = sources;
    let mut specs: HashMap<&'static str, TableSpec> = HashMap::new();
    for source in &sources {
        let Some(&table) = tables.iter().find(|t| **t == source.table) else {
            return Err(Error::Input(format!(
                "{}: {:?} is not a table of model {model} (tables: {})",
                source.origin,
                source.table,
                tables.join(", ")
            ))
            .into());
        };
        if !specs.contains_key(table) {
            let spec = schema::describe_table(model, table)
                .unwrap_or_else(|| Err(format!("no entity describes {model}.{table}")))
                .map_err(Error::Config)?;
            specs.insert(table, spec);
        }
    }
    sources.sort_by_key(|s| tables.iter().position(|t| *t == s.table));

    let txn = db
        .begin()
        .await
        .map_err(|e| Error::Database(format!("cannot begin a transaction: {e}")))?;
    let mut loader = Loader {
        db,
        txn: &txn,
        opts,
        errors: Errors {
            kept: Vec::new(),
            more: 0,
            max: opts.max_errors.max(1),
        },
        keys: HashMap::new(),
        pending: Vec::new(),
        origins: Vec::new(),
        unreadable: HashSet::new(),
        touched: None,
        touched_limit: 0,
        replaced: HashMap::new(),
    };
    let mut history_before = None;
    // the grace period the history is kept for: that of the models tally serves
    let saas_config = if model == "saas" {
        crate::saas::SaasConfig::load_default().unwrap_or_default()
    } else {
        crate::saas::SaasConfig::default()
    };
    if model == "saas" {
        // The stage history's tables and staleness triggers exist before any row is written,
        // and no other writer can change the saas tables unnoticed until this load commits.
        crate::saas::history::ensure(&txn).await?;
        history_before = crate::saas::history::lock_for_update(&txn)
            .await?
            .filter(|s| s.source_for(&saas_config) == crate::saas::StageSource::History);
        if let Some(before) = &history_before {
            // Only a usable history can be updated user by user. A user has about three
            // history rows: past a tenth of the users, rebuild everything.
            loader.touched_limit = usize::try_from(before.row_count / 30).unwrap_or(0);
            loader.touched = Some(crate::saas::history::Touched::default());
        }
    }
    let outcome = loader.run(sources, &specs).await;
    let Loader {
        errors, touched, ..
    } = loader;
    let rejected = errors.any();
    match outcome {
        Ok(tables) if !rejected => {
            let stage_history = if model == "saas" {
                // collection stopped (None) when too many users were touched
                let whole = touched.is_none();
                let touched = touched.unwrap_or_default();
                let before = history_before.as_ref().filter(|_| !whole);
                update_stage_history(&txn, &saas_config, &touched, before).await
            } else {
                None
            };
            // the model's rollups commit with the rows they are built from
            let rollups = crate::rollup::update_in_load(&txn, model).await;
            txn.commit().await.map_err(|e| {
                Error::Database(format!(
                    "cannot commit the load of {model}: {e}; if the connection was lost during the commit, the database may or may not hold the load: loading the same files again is safe (rows already present are skipped)"
                ))
            })?;
            // cached answers over the model's tables are out of date from now on
            crate::engine::results::bump(model);
            analyze_written(db, model, &tables).await;
            if model == "gym" {
                // Local times of the gym models need the offsets of every branch's zone.
                crate::tz::refresh_offsets(db).await?;
            }
            if stage_history
                .as_ref()
                .is_some_and(|r| r.scoped_users.is_none())
            {
                // statistics are a hint for the planner: a failure here loses nothing
                if let Err(e) = crate::saas::history::analyze(db).await {
                    tracing::warn!("{e}");
                }
            }

            Ok(LoadReport {
                model: model.to_owned(),
                tables,
                stage_history,
                rollups,
            })
        }
        Ok(_) => {
            txn.rollback().await.map_err(|e| {
                Error::Database(format!("cannot roll back the load of {model}: {e}"))
            })?;
            Err(LoadError::Rejected {
                model: model.to_owned(),
                errors: errors.kept,
                more: errors.more,
            })
        }
        Err(cause) => {
            // the failure is what matters; the transaction is rolled back either way (a lost
            // connection never commits it)
            let _ = txn.rollback().await;
            Err(LoadError::Interrupted {
                model: model.to_owned(),
                cause,
            })
        }
    }
}

/// Brings the saas stage history up to date inside the load's transaction `txn` (with the
/// grace period of the models tally serves), in a savepoint: the load and its history commit
/// together. Only the users the load `touched` are recomputed when the history was usable
/// `before` the load; otherwise it is rebuilt whole. A failure is logged and rolled back to the savepoint, not returned: the load
/// still commits, with the history marked stale by its triggers, so readers compute stages
/// from the tables until a later refresh succeeds. Returns whether it rebuilt.
async fn update_stage_history(
    txn: &sea_orm::DatabaseTransaction,
    config: &crate::saas::SaasConfig,
    touched: &crate::saas::history::Touched,
    before: Option<&crate::saas::history::Status>,
) -> Option<crate::saas::history::RefreshReport> {
    let savepoint = match txn.begin().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("saas stage history not updated: {e}");
            return None;
        }
    };
    match crate::saas::history::update_in(&savepoint, config, touched, before).await {
        Ok(r) => match savepoint.commit().await {
            Ok(()) => Some(r),
            Err(e) => {
                tracing::warn!("saas stage history not updated: {e}");
                None
            }
        },
        Err(e) => {
            let _ = savepoint.rollback().await;
            tracing::warn!(
                "saas stage history not updated (stages are computed from the tables until it is): {e}"
            );
            None
        }
    }
}

impl Loader<'_> {
    /// Loads every source (already in load order), then checks the pending references.
    async fn run(
        &mut self,
        sources: Vec<TableSource>,
        specs: &HashMap<&'static str, TableSpec>,
    ) -> Result<Vec<TableReport>, Error> {
        // the keys that the loaded tables reference, as loaded by this load (the stored ones
        // are looked up at the end, only for the references this load leaves open)
        let mut models: HashMap<Target, &'static str> = HashMap::new();
        for spec in specs.values() {
            for r in &spec.references {
                let target = (r.target_table, r.target_column);
                self.keys.entry(target).or_default();
                models.insert(target, spec.model);
            }
        }
        let mut reports: Vec<TableReport> = Vec::new();
        for source in sources {
            let Some(spec) = specs.get(source.table.as_str()) else {
                continue; // cannot happen: every source's spec was built
            };
            let (read, written) = self.load_table(spec, source).await?;
            let present = read.saturating_sub(written.inserted + written.replaced);
            match reports.iter_mut().find(|r| r.table == spec.table) {
                Some(report) => {
                    report.rows_read += read;
                    report.rows_inserted += written.inserted;
                    report.rows_replaced += written.replaced;
                    report.rows_already_present += present;
                }
                None => reports.push(TableReport {
                    table: spec.table.to_owned(),
                    rows_read: read,
                    rows_inserted: written.inserted,
                    rows_replaced: written.replaced,
                    rows_already_present: present,
                }),
            }
        }
        let pending = std::mem::take(&mut self.pending);
        // references not found in this load: the stored keys among them, one lookup per
        // target and batch of values
        let mut open: HashMap<Target, HashSet<&str>> = HashMap::new();
        for p in &pending {
            if !self.unreadable.contains(p.target.0)
                && !self
                    .keys
                    .get(&p.target)
                    .is_some_and(|k| k.contains(&p.value))
            {
                open.entry(p.target).or_default().insert(p.value.as_str());
            }
        }
        let mut stored: HashMap<Target, HashSet<String>> = HashMap::new();
        for (target, values) in open {
            let model = models.get(&target).copied().unwrap_or_default();
            let values: Vec<&str> = values.into_iter().collect();
            let found = self.stored_among(model, target, &values).await?;
            stored.insert(target, found);
        }
        for p in pending {
            let (table, column) = p.target;
            if self.unreadable.contains(table)
                || self
                    .keys
                    .get(&p.target)
                    .is_some_and(|k| k.contains(&p.value))
                || stored.get(&p.target).is_some_and(|k| k.contains(&p.value))
            {
                continue;
            }
            self.errors.push(
                &self.origins[p.origin],
                p.line,
                Some(p.column),
                format!(
                    "{:?} is no {table}.{column} (neither in this load nor already stored)",
                    p.value
                ),
            );
        }
        Ok(reports)
    }

    /// Which of `values` are stored in `target` (looked up in batches of
    /// [`LOOKUP_BATCH`], each one statement with the values as one JSON parameter).
    async fn stored_among(
        &self,
        model: &'static str,
        (table, column): Target,
        values: &[&str],
    ) -> Result<HashSet<String>, Error> {
        let failed =
            |e: String| Error::Database(format!("cannot read {model}.{table}.{column}: {e}"));
        let backend = self.txn.get_database_backend();
        let list = crate::sql::dialect_of(self.txn).json_values("$1");
        let sql = format!(
            "SELECT DISTINCT \"{column}\" FROM \"{model}\".\"{table}\" WHERE \"{column}\" IN ({list})"
        );
        let mut keys = HashSet::new();
        for chunk in values.chunks(LOOKUP_BATCH) {
            let json = serde_json::to_string(chunk).map_err(|e| failed(e.to_string()))?;
            let rows = self
                .txn
                .query_all_raw(sea_orm::Statement::from_sql_and_values(
                    backend,
                    sql.clone(),
                    [json.into()],
                ))
                .await
                .map_err(|e| failed(e.to_string()))?;
            for row in rows {
                let key: Option<String> =
                    row.try_get_by_index(0).map_err(|e| failed(e.to_string()))?;
                keys.extend(key);
            }
        }
        Ok(keys)
    }

    /// Maps the header of `source` onto the columns of `spec`: for each column, the index of
    /// its field in every record. `None` (and errors) when the header is not exactly the
    /// table's columns.
    fn map_header(&mut self, spec: &TableSpec, source: &TableSource) -> Option<Vec<usize>> {
        let mut positions = vec![usize::MAX; spec.columns.len()];
        let mut ok = true;
        for (at, name) in source.columns.iter().enumerate() {
            match spec.index_of(name) {
                Some(i) if positions[i] == usize::MAX => positions[i] = at,
                Some(_) => {
                    ok = false;
                    self.errors.push(
                        &source.origin,
                        1,
                        Some(name),
                        "appears twice in the header".to_owned(),
                    );
                }
                None => {
                    ok = false;
                    self.errors.push(
                        &source.origin,
                        1,
                        Some(name),
                        format!(
                            "unknown column in the header ({}.{} has columns {})",
                            spec.model,
                            spec.table,
                            spec.column_list()
                        ),
                    );
                }
            }
        }
        for (i, column) in spec.columns.iter().enumerate() {
            if positions[i] == usize::MAX {
                ok = false;
                self.errors.push(
                    &source.origin,
                    1,
                    Some(column.name),
                    "missing from the header".to_owned(),
                );
            }
        }
        ok.then_some(positions)
    }

    /// Validates and inserts one source; returns the rows read, and what was written.
    async fn load_table(
        &mut self,
        spec: &TableSpec,
        source: TableSource,
    ) -> Result<(u64, Written), Error> {
        let Some(positions) = self.map_header(spec, &source) else {
            self.unreadable.insert(spec.table);
            return Ok((0, Written::default()));
        };
        let origin_index = self.origins.len();
        self.origins.push(source.origin.clone());
        let origin = source.origin.as_str();
        // (column index, referenced column) of this table's references
        let references: Vec<(usize, Target, &'static str)> = spec
            .references
            .iter()
            .filter_map(|r| {
                let i = spec.index_of(r.column)?;
                Some((i, (r.target_table, r.target_column), r.column))
            })
            .collect();
        // (column index, target) of this table's columns that other tables reference
        let tracked: Vec<(usize, Target)> = self
            .keys
            .keys()
            .filter(|(table, _)| *table == spec.table)
            .filter_map(|&target| Some((spec.index_of(target.1)?, target)))
            .collect();
        let batch_rows = self
            .opts
            .batch_rows
            .min(MAX_PARAMS / spec.columns.len().max(1))
            .max(1);
        let bar = progress_bar(self.opts.progress, spec);
        let mut batch: Vec<BatchRow> = Vec::with_capacity(batch_rows);
        let mut read = 0u64;
        let mut written = Written::default();

        for item in source.rows {
            read += 1;
            bar.inc(1);
            let (line, record) = match item {
                Ok(row) => row,
                Err(e) => {
                    self.errors
                        .push(origin, e.line, e.column.as_deref(), e.reason);
                    continue;
                }
            };
            if record.len() != positions.len() {
                self.errors.push(
                    origin,
                    line,
                    None,
                    format!(
                        "expected {} fields, found {}",
                        positions.len(),
                        record.len()
                    ),
                );
                continue;
            }
            let field = |name: &str| spec.index_of(name).map(|i| record[positions[i]].as_str());
            let mut values = Vec::with_capacity(spec.columns.len());
            let mut row_ok = true;
            for (i, column) in spec.columns.iter().enumerate() {
                let text = record[positions[i]].as_str();
                let checked = validate::parse_field(column, text).and_then(|value| {
                    if let Some(variants) = &column.variants
                        && !text.is_empty()
                    {
                        validate::check_one_of(text, variants.iter().map(String::as_str))?;
                    }
                    for rule in &column.rules {
                        validate::check_rule(rule, text, &value, field)?;
                    }
                    Ok(value)
                });
                match checked {
                    Ok(value) => values.push(value),
                    Err(reason) => {
                        row_ok = false;
                        self.errors.push(origin, line, Some(column.name), reason);
                    }
                }
            }
            for &(i, target) in &tracked {
                let text = &record[positions[i]];
                if !text.is_empty()
                    && let Some(keys) = self.keys.get_mut(&target)
                    && !keys.contains(text.as_str())
                {
                    keys.insert(text.clone());
                }
            }
            for &(i, target, column) in &references {
                let text = &record[positions[i]];
                if !text.is_empty() && !self.keys.get(&target).is_some_and(|k| k.contains(text)) {
                    self.pending.push(Pending {
                        origin: origin_index,
                        line,
                        column,
                        value: text.clone(),
                        target,
                    });
                }
            }
            if row_ok {
                self.note_touched(spec, &field);
            }
            if self.errors.any() {
                batch.clear(); // nothing will be committed: stop inserting
            } else if row_ok {
                batch.push(BatchRow { line, values });
                if batch.len() >= batch_rows {
                    self.write(spec, origin, &mut batch, &mut written).await?;
                }
            }
        }
        if !self.errors.any() {
            self.write(spec, origin, &mut batch, &mut written).await?;
        }
        bar.finish_with_message(format!(
            "{}.{}: {read} rows read, {} new, {} replaced",
            spec.model, spec.table, written.inserted, written.replaced
        ));
        Ok((read, written))
    }

    /// Inserts (and empties) a batch; when some of its keys were already stored, compares
    /// those rows with the stored ones (see [`Loader::resolve`]).
    async fn write(
        &mut self,
        spec: &TableSpec,
        origin: &str,
        batch: &mut Vec<BatchRow>,
        written: &mut Written,
    ) -> Result<(), Error> {
        let inserted = self.insert(spec, batch).await?;
        written.inserted += inserted;
        if inserted < batch.len() as u64 {
            written.replaced += self.resolve(spec, origin, batch).await?;
        }
        batch.clear();
        Ok(())
    }

    /// Compares the rows of a batch with the rows stored under their keys (after the batch's
    /// insert, so each row meets either itself, an earlier row of this load or a row stored
    /// before it). A different row is an error, or with `replace` overwrites a row stored
    /// before the load. Returns how many rows were replaced.
    async fn resolve(
        &mut self,
        spec: &TableSpec,
        origin: &str,
        batch: &[BatchRow],
    ) -> Result<u64, Error> {
        let rows: Vec<&[Value]> = batch.iter().map(|r| r.values.as_slice()).collect();
        let mut current = conflict::stored_rows(self.txn, spec, &rows).await?;
        // the rows that differ from what this load's transaction sees
        let differing: Vec<&BatchRow> = batch
            .iter()
            .filter(|r| {
                current
                    .get(&conflict::key_text(spec, &r.values))
                    .is_none_or(|stored| !conflict::differences(spec, &r.values, stored).is_empty())
            })
            .collect();
        if differing.is_empty() {
            return Ok(0);
        }
        // what was stored before the load, read outside its transaction
        let rows: Vec<&[Value]> = differing.iter().map(|r| r.values.as_slice()).collect();
        let before = conflict::stored_rows(self.db, spec, &rows).await?;
        let type2 = spec
            .key
            .iter()
            .any(|&i| spec.columns[i].name == "updated_at");
        let mut replaced = 0;
        for row in differing {
            let key = conflict::key_text(spec, &row.values);
            let Some(stored) = current.get(&key) else {
                return Err(Error::Database(format!(
                    "{origin}:{}: the row with {} was neither inserted nor found in {}.{}",
                    row.line,
                    conflict::describe_key(spec, &row.values),
                    spec.model,
                    spec.table
                )));
            };
            let columns = conflict::differences(spec, &row.values, stored);
            if columns.is_empty() {
                continue; // the same as a row this batch replaced just before
            }
            let replaced_here = self
                .replaced
                .get(spec.table)
                .is_some_and(|keys| keys.contains(&key));
            let stored_before = !replaced_here
                && before
                    .get(&key)
                    .is_some_and(|b| conflict::differences(spec, b, stored).is_empty());
            if stored_before && self.opts.replace {
                conflict::replace(self.txn, spec, &row.values).await?;
                // the users of the row it replaced are unknown: rebuild the stage history
                self.touched = None;
                self.replaced
                    .entry(spec.table)
                    .or_default()
                    .insert(key.clone());
                current.insert(key, row.values.clone());
                replaced += 1;
                continue;
            }
            let reason = if stored_before {
                let hint = if type2 {
                    "to change the dimension, load a new version (a later updated_at); to overwrite this version, load with --replace"
                } else {
                    "to overwrite the stored row, load with --replace"
                };
                format!(
                    "{} is already stored with other values: {} ({hint})",
                    conflict::describe_key(spec, &row.values),
                    conflict::describe_differences(spec, &columns, &row.values, stored, "stored"),
                )
            } else {
                format!(
                    "{} appears earlier in this load with other values: {}",
                    conflict::describe_key(spec, &row.values),
                    conflict::describe_differences(spec, &columns, &row.values, stored, "earlier"),
                )
            };
            self.errors.push(origin, row.line, None, reason);
        }
        Ok(replaced)
    }

    /// Notes what a valid saas row touches for the stage history (see
    /// [`crate::saas::history::Touched`]); stops collecting past `touched_limit` users.
    fn note_touched<'r>(&mut self, spec: &TableSpec, field: &impl Fn(&str) -> Option<&'r str>) {
        let Some(touched) = self.touched.as_mut() else {
            return;
        };
        let add = |set: &mut std::collections::BTreeSet<String>, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty())
                && !set.contains(v)
            {
                set.insert(v.to_owned());
            }
        };
        match spec.table {
            "global_events" => {
                let meta: Option<serde_json::Value> =
                    field("metadata").and_then(|m| serde_json::from_str(m).ok());
                let text = |k: &str| meta.as_ref().and_then(|m| m.get(k)?.as_str());
                add(&mut touched.users, text("user_id"));
                add(&mut touched.shops, text("shop_id"));
            }
            "payments" => {
                add(&mut touched.users, field("user_id"));
                add(&mut touched.invoices, field("invoice_id"));
            }
            "invoices" => add(&mut touched.users, field("user_id")),
            _ => {}
        }
        if touched.users.len() > self.touched_limit {
            self.touched = None;
        }
    }

    /// Inserts the rows of a batch, skipping those whose key is already stored; returns how
    /// many were inserted.
    async fn insert(&self, spec: &TableSpec, batch: &[BatchRow]) -> Result<u64, Error> {
        if batch.is_empty() {
            return Ok(0);
        }
        let failed = |e: String| {
            Error::Database(format!(
                "cannot insert into {}.{}: {e}",
                spec.model, spec.table
            ))
        };
        let mut insert = Query::insert();
        insert
            .into_table((Alias::new(spec.model), Alias::new(spec.table)))
            .columns(spec.columns.iter().map(|c| Alias::new(c.name)))
            .on_conflict(
                OnConflict::columns(spec.key.iter().map(|&i| Alias::new(spec.columns[i].name)))
                    .do_nothing()
                    .to_owned(),
            );
        for row in batch {
            insert
                .values(row.values.iter().cloned().map(Expr::Value))
                .map_err(|e| failed(e.to_string()))?;
        }
        let statement = self.txn.get_database_backend().build(&insert);
        let result = self
            .txn
            .execute_raw(statement)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(result.rows_affected())
    }
}

/// Refreshes the planner statistics of the tables a committed load wrote (on PostgreSQL
/// `VACUUM (ANALYZE)`, which also marks the new rows visible to index-only scans; on SQLite
/// `ANALYZE`): without them a planner can take a freshly loaded table for an empty one.
/// Statistics are a hint: a failure is logged, the load stays committed.
async fn analyze_written(db: &DatabaseConnection, model: &str, tables: &[TableReport]) {
    let dialect = crate::sql::dialect_of(db);
    for t in tables {
        if t.rows_inserted + t.rows_replaced == 0 {
            continue;
        }
        let sql = dialect.reclaim_and_analyze(&format!("\"{model}\".\"{}\"", t.table));
        if let Err(e) = db.execute_unprepared(&sql).await {
            tracing::warn!(
                "the statistics of {model}.{} were not refreshed: {e}",
                t.table
            );
        }
    }
}

/// A spinner counting the rows of one table on stderr, or a hidden bar.
fn progress_bar(visible: bool, spec: &TableSpec) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: {human_pos} rows ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.set_message(format!("{}.{}", spec.model, spec.table));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
