//! The result cache: answers of every read tally runs for a field (semantic-layer reads
//! through [`super::Engine::run`], and the statements of the saas lifecycle fields and of
//! `sources` read through [`super::Session::read`]) kept in memory, so a repeated request
//! costs no database round trip, and never older than the data by more than the bound
//! docs/CACHING.md states.
//!
//! An answer is keyed by the rendered statement, its bound values (a row policy's values
//! among them) and the resolved `asOf` instant (so tenants, filters and instants never share
//! an entry), and stored with the **data version** of every namespace its statement can read
//! (the model's, those of its physical tables, those its SQL tables and the statement itself
//! name). A namespace's version moves on:
//!
//! - every write by tally in this process (the loader, hence the demo data, and the saas
//!   stage-history builder call [`bump`] once they commit);
//! - every write by anything else, noticed by a background poll of the database every
//!   [`ResultCacheSettings::poll_interval`] ([`crate::sql::VersionProbe`]: SQLite's
//!   `data_version`; on PostgreSQL the counters tally's triggers bump where tally installed
//!   them, else the table statistics). The first poll logs which mechanism each namespace
//!   the models read uses, and any later change of it.
//!
//! An entry whose versions differ from the current ones is a miss. Entries are served only
//! while the last poll started less than two intervals ago: when polls fail or fall behind,
//! every read goes to the database. Memory is bounded in bytes, least recently used first
//! out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::Table;
use super::guard::{Counters, Guard};
use super::values::Cell;
use crate::semantic::{Model, TableSource};
use crate::sql::{NamespaceVersion, VersionMechanism};

/// Default memory of the cache (`--result-cache-bytes`): 64 MiB.
pub const DEFAULT_BYTES: usize = 64 << 20;

/// Default interval of the data-version poll (`--result-cache-poll`): 250 ms.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The result cache's settings (`serve` flags; docs/CACHING.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultCacheSettings {
    /// Bytes of answers kept, at most (`--result-cache-bytes`); 0 turns the cache off.
    pub bytes: usize,
    /// How often the data versions are read from the database (`--result-cache-poll`).
    pub poll_interval: Duration,
}

impl Default for ResultCacheSettings {
    fn default() -> Self {
        ResultCacheSettings {
            bytes: DEFAULT_BYTES,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

impl ResultCacheSettings {
    /// No cache: every read goes to the database.
    pub fn off() -> Self {
        ResultCacheSettings {
            bytes: 0,
            ..ResultCacheSettings::default()
        }
    }

    /// Whether answers are kept at all.
    pub fn enabled(&self) -> bool {
        self.bytes > 0
    }

    /// How old a served answer may be, past the database mechanism's own delay: two poll
    /// intervals (an entry is served only while the last poll started less than that ago).
    pub fn staleness_bound(&self) -> Duration {
        self.poll_interval * 2
    }
}

/// Writes tally made in this process, by namespace.
static WRITES: LazyLock<RwLock<HashMap<String, u64>>> = LazyLock::new(Default::default);

/// Notes that tally wrote to `namespace` (and committed): every cached answer reading it is
/// out of date from now on, in every engine of the process.
pub fn bump(namespace: &str) {
    if let Ok(mut w) = WRITES.write() {
        *w.entry(namespace.to_owned()).or_default() += 1;
    }
}

fn writes(namespace: &str) -> u64 {
    WRITES
        .read()
        .ok()
        .and_then(|w| w.get(namespace).copied())
        .unwrap_or(0)
}

/// One value of a cached answer, read once from the database and handed out as JSON or
/// GraphQL values.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// `null`.
    Null,
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

impl Cell for Stored {
    fn null() -> Self {
        Stored::Null
    }
    fn int(v: i64) -> Self {
        Stored::Int(v)
    }
    fn bool(v: bool) -> Self {
        Stored::Bool(v)
    }
    fn float(v: f64) -> Self {
        Stored::Float(v)
    }
    fn text(v: String) -> Self {
        Stored::Text(v)
    }
}

impl Stored {
    /// The value as `V`.
    pub fn to<V: Cell>(&self) -> V {
        match self {
            Stored::Null => V::null(),
            Stored::Int(v) => V::int(*v),
            Stored::Bool(v) => V::bool(*v),
            Stored::Float(v) => V::float(*v),
            Stored::Text(v) => V::text(v.clone()),
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Stored>()
            + match self {
                Stored::Text(s) => s.capacity(),
                _ => 0,
            }
    }
}

/// The answer as `V` values.
pub fn convert<V: Cell>(table: &Table<Stored>) -> Table<V> {
    Table {
        columns: table.columns.clone(),
        rows: table
            .rows
            .iter()
            .map(|r| r.iter().map(Stored::to).collect())
            .collect(),
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A current answer.
    Hit(Arc<Table<Stored>>),
    /// No current answer: run the statement, then [`ResultCache::store`] its answer.
    Miss(Pending),
}

/// A miss: why, and what storing its answer needs.
#[derive(Debug)]
pub struct Pending {
    /// The key, `None` when the answer may not be kept.
    key: Option<String>,
    /// The versions read before the statement runs.
    version: u64,
    /// Why it missed (`extensions.explain`'s `cacheReason`).
    pub reason: String,
}

/// The result cache of one engine (see the module's documentation). Cheap to clone: clones
/// share the answers (every session of an engine holds one).
#[derive(Debug, Clone)]
pub struct ResultCache {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    settings: ResultCacheSettings,
    /// Whether the data versions may be polled (the cache is on, or rollups read them).
    polled: bool,
    /// What a poll started on first use needs (the cache off, rollups on): the database and
    /// the namespaces the models read; taken when it starts.
    lazy: Mutex<Option<(DatabaseConnection, Vec<String>)>>,
    /// Whether `lazy` still waits (read without the lock on every request).
    lazy_pending: std::sync::atomic::AtomicBool,
    lru: Mutex<Lru>,
    watch: Mutex<Watch>,
}

/// What the poll saw.
#[derive(Debug, Default)]
struct Watch {
    /// Changes seen by namespace.
    changes: HashMap<String, u64>,
    /// The last token by namespace.
    tokens: HashMap<String, String>,
    /// How each namespace was read by the last poll.
    mechanisms: HashMap<String, VersionMechanism>,
    /// When the last successful poll started.
    polled: Option<Instant>,
    /// Why the last poll failed, when it did.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// Keys by last use, oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    table: Arc<Table<Stored>>,
    version: u64,
    bytes: usize,
    used: u64,
}

impl Lru {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let e = self.entries.remove(key)?;
        self.order.remove(&e.used);
        self.bytes -= e.bytes;
        Some(e)
    }
}

/// The namespaces `model`'s statements can read: its own, its physical tables', and those
/// its SQL tables name (`"ns".` or `ns.` before a name; a word that is no namespace is
/// harmless: its version never moves).
pub fn namespaces_of(model: &Model) -> Vec<String> {
    let mut out = BTreeSet::from([model.namespace.clone()]);
    for t in &model.tables {
        match &t.source {
            TableSource::Physical { namespace, .. } => {
                out.insert(namespace.clone());
            }
            TableSource::Sql {
                postgres, sqlite, ..
            } => {
                qualifiers(postgres, &mut out);
                qualifiers(sqlite, &mut out);
            }
        }
    }
    out.into_iter().collect()
}

/// The namespaces a statement's text names: `namespaces` (those of the model it reads) and
/// every identifier followed by `.` in `sql` (`"ns"."table"`, `ns.table`; an alias such as
/// `s.` is harmless: no namespace has its name, so its version never moves).
pub fn namespaces_in(sql: &str, namespaces: &[String]) -> Vec<String> {
    let mut out: BTreeSet<String> = namespaces.iter().cloned().collect();
    qualifiers(sql, &mut out);
    out.into_iter().collect()
}

/// The identifiers followed by `.` in `sql` (quoted or not).
fn qualifiers(sql: &str, out: &mut BTreeSet<String>) {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j] != b'"' {
                j += 1;
            }
            if j + 1 < b.len() && b[j + 1] == b'.' {
                out.insert(sql[start..j].to_owned());
            }
            i = j + 1;
        } else if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' {
                out.insert(sql[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
}

impl ResultCache {
    /// A cache that is off (keeps nothing, polls nothing): one shared by every session made
    /// without an engine and every engine without [`ResultCacheSettings`], so that making a
    /// session allocates none.
    pub fn disabled() -> ResultCache {
        static OFF: std::sync::OnceLock<ResultCache> = std::sync::OnceLock::new();
        OFF.get_or_init(|| ResultCache {
            shared: Arc::new(Shared {
                settings: ResultCacheSettings::off(),
                polled: false,
                lazy: Mutex::new(None),
                lazy_pending: Default::default(),
                lru: Mutex::new(Lru::default()),
                watch: Mutex::new(Watch::default()),
            }),
        })
        .clone()
    }

    /// A cache with `settings` over `db`; when enabled, its poll runs on the current Tokio
    /// runtime until the cache is dropped (without a runtime the cache stays off). When it
    /// is off and `versions` asks for the data versions anyway (rollups keep their status
    /// by them), the poll starts at the first [`ResultCache::data_version`]: a process that
    /// never reads a rollup never polls. `read`: the namespaces the models read, whose
    /// mechanism the poll logs.
    pub fn new(
        db: &DatabaseConnection,
        settings: ResultCacheSettings,
        read: Vec<String>,
        versions: bool,
    ) -> ResultCache {
        let shared = Arc::new(Shared {
            settings,
            polled: settings.enabled() || versions,
            lazy: Mutex::new(None),
            lazy_pending: Default::default(),
            lru: Mutex::new(Lru::default()),
            watch: Mutex::new(Watch::default()),
        });
        if settings.enabled() {
            start_poll(&shared, db.clone(), read);
        } else if versions && let Ok(mut lazy) = shared.lazy.lock() {
            *lazy = Some((db.clone(), read));
            shared.lazy_pending.store(true, Ordering::Release);
        }
        ResultCache { shared }
    }

    /// The settings.
    pub fn settings(&self) -> ResultCacheSettings {
        self.shared.settings
    }

    /// The current version of `namespaces`, `Err(why)` when it is not known well enough to
    /// serve from the cache.
    fn version(&self, namespaces: &[String]) -> Result<u64, String> {
        let w = self
            .shared
            .watch
            .lock()
            .map_err(|_| "the data versions are unreadable".to_owned())?;
        let bound = self.shared.settings.staleness_bound();
        match (w.polled, &w.error) {
            (_, Some(e)) => return Err(format!("data versions unknown: {e}")),
            (None, None) => return Err("data versions not read yet".to_owned()),
            (Some(t), None) if t.elapsed() > bound => {
                return Err(format!(
                    "data versions not current (last read {} ms ago)",
                    t.elapsed().as_millis()
                ));
            }
            _ => {}
        }
        Ok(namespaces
            .iter()
            .map(|ns| w.changes.get(ns).copied().unwrap_or(0) + writes(ns))
            .fold(0u64, u64::wrapping_add))
    }

    /// The data version of `namespaces` (it moves with every write to them), or why it is
    /// not known well enough to keep anything by it (nothing polls them, or the poll failed
    /// or fell behind).
    pub fn data_version(&self, namespaces: &[String]) -> Result<u64, String> {
        if !self.shared.polled {
            return Err(
                "data versions are not read (--result-cache-bytes 0 and no rollup)".to_owned(),
            );
        }
        if self.shared.lazy_pending.swap(false, Ordering::AcqRel)
            && let Some((db, read)) = self.shared.lazy.lock().ok().and_then(|mut l| l.take())
        {
            start_poll(&self.shared, db, read);
        }
        self.version(namespaces)
    }

    /// Looks up the answer of `sql` bound to `params` as of `as_of` (`None`: an answer
    /// that does not depend on an instant), read into `columns` (the type of each column, as
    /// text: one statement read two ways is two answers), reading `namespaces`.
    pub fn lookup(
        &self,
        counters: &Counters,
        sql: &str,
        params: &[sea_orm::Value],
        as_of: Option<DateTime<Utc>>,
        columns: &str,
        namespaces: &[String],
    ) -> Lookup {
        let miss = |key: Option<String>, version: u64, reason: String| {
            Guard::count(&counters.result_cache_misses);
            Lookup::Miss(Pending {
                key,
                version,
                reason,
            })
        };
        if !self.shared.settings.enabled() {
            return miss(None, 0, "disabled (--result-cache-bytes 0)".to_owned());
        }
        let version = match self.version(namespaces) {
            Ok(v) => v,
            Err(why) => return miss(None, 0, format!("not cacheable: {why}")),
        };
        // a 128-bit digest of the instant, the values (their Debug text keeps their types
        // and exact values) and the statement: statements and their values run to
        // kilobytes, entries stay small
        let key = digest(&[
            &as_of
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default(),
            &format!("{params:?}"),
            columns,
            sql,
        ]);
        let Ok(mut lru) = self.shared.lru.lock() else {
            return miss(None, 0, "not cacheable: the cache is unreadable".to_owned());
        };
        let reason = match lru.entries.get(&key).map(|e| e.version == version) {
            Some(true) => {
                lru.tick += 1;
                let tick = lru.tick;
                let Lru { entries, order, .. } = &mut *lru;
                if let Some(e) = entries.get_mut(&key) {
                    order.remove(&e.used);
                    e.used = tick;
                    order.insert(tick, key.clone());
                    Guard::count(&counters.result_cache_hits);
                    return Lookup::Hit(e.table.clone());
                }
                "no entry"
            }
            Some(false) => {
                lru.remove(&key);
                gauges(counters, &lru);
                "version changed"
            }
            None => "no entry",
        };
        drop(lru);
        miss(Some(key), version, reason.to_owned())
    }

    /// Keeps `table`, the answer of the miss `pending`, unless it is too big (more than a
    /// quarter of the cache): then the reason to add to the miss's.
    pub fn store(
        &self,
        counters: &Counters,
        pending: Pending,
        table: &Arc<Table<Stored>>,
    ) -> Option<String> {
        let key = pending.key?;
        let cells: usize = table
            .rows
            .iter()
            .map(|r| {
                r.iter().map(Stored::bytes).sum::<usize>() + std::mem::size_of::<Vec<Stored>>()
            })
            .sum();
        let columns: usize = table
            .columns
            .iter()
            .map(|(k, _)| k.capacity() + std::mem::size_of::<(String, crate::plan::OutType)>())
            .sum();
        // the key is held twice (map and order), plus the bookkeeping of an entry
        let bytes = cells + columns + 2 * key.len() + 128;
        let limit = self.shared.settings.bytes / 4;
        if bytes > limit {
            return Some(format!(
                "too big to keep ({bytes} bytes; an answer may take a quarter of --result-cache-bytes, {limit} bytes)"
            ));
        }
        let Ok(mut lru) = self.shared.lru.lock() else {
            return None;
        };
        lru.remove(&key);
        lru.tick += 1;
        let used = lru.tick;
        lru.order.insert(used, key.clone());
        lru.entries.insert(
            key,
            Entry {
                table: table.clone(),
                version: pending.version,
                bytes,
                used,
            },
        );
        lru.bytes += bytes;
        while lru.bytes > self.shared.settings.bytes {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(e) = lru.entries.remove(&oldest) {
                lru.bytes -= e.bytes;
                Guard::count(&counters.result_cache_evictions);
            }
        }
        gauges(counters, &lru);
        None
    }
}

/// Sets the bytes and entries gauges from `lru`.
fn gauges(counters: &Counters, lru: &Lru) {
    counters
        .result_cache_bytes
        .store(lru.bytes as u64, Ordering::Relaxed);
    counters
        .result_cache_entries
        .store(lru.entries.len() as u64, Ordering::Relaxed);
}

/// A 128-bit digest of `parts` (two SipHash passes told apart by a prefix; a `str` hashes
/// with a closing byte UTF-8 never holds, so parts cannot run into each other).
fn digest(parts: &[&str]) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let pass = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        for p in parts {
            p.hash(&mut h);
        }
        h.finish()
    };
    format!("{:016x}{:016x}", pass(1), pass(2))
}

/// How `mechanism` bounds the age of a served answer, in words (docs/CACHING.md, "The
/// bound").
pub fn describe(mechanism: VersionMechanism, settings: &ResultCacheSettings) -> String {
    let polls = settings.staleness_bound().as_secs_f64();
    match mechanism {
        VersionMechanism::DataVersion => format!("exact (data_version; bound {polls} s)"),
        VersionMechanism::Triggers => format!("exact (triggers; bound {polls} s)"),
        VersionMechanism::Statistics {
            without_trigger,
            tables,
        } => {
            let which = if without_trigger == tables {
                String::new()
            } else {
                format!(" for {without_trigger} of {tables} tables, triggers for the rest")
            };
            format!(
                "statistics{which} (bound {} s, {} s at worst)",
                polls + 10.0,
                polls + 60.0
            )
        }
    }
}

/// The log line of the mechanisms of the namespaces in `read`, `None` when the probe listed
/// none of them.
fn mechanisms_line(
    mechanisms: &HashMap<String, VersionMechanism>,
    read: &[String],
    settings: &ResultCacheSettings,
) -> Option<String> {
    let parts: Vec<String> = read
        .iter()
        .filter_map(|ns| {
            mechanisms
                .get(ns)
                .map(|m| format!("{ns}: {}", describe(*m, settings)))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Starts the poll of `shared`'s data versions on the current Tokio runtime (without one,
/// the versions stay unknown and say why).
fn start_poll(shared: &Arc<Shared>, db: DatabaseConnection, read: Vec<String>) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(poll(Arc::downgrade(shared), db, shared.settings, read));
        }
        Err(_) => {
            if let Ok(mut w) = shared.watch.lock() {
                w.error = Some("no runtime to poll the data versions on".to_owned());
            }
        }
    }
}

/// Reads the data versions every `settings.poll_interval` while the cache lives.
async fn poll(
    shared: Weak<Shared>,
    db: DatabaseConnection,
    settings: ResultCacheSettings,
    read: Vec<String>,
) {
    let mut logged: Option<String> = None;
    let mut probe: Option<crate::sql::VersionProbe> = None;
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let started = Instant::now();
        if probe.is_none() {
            match crate::sql::VersionProbe::open(&db).await {
                Ok(p) => probe = Some(p),
                Err(e) => {
                    note_failure(&shared, e);
                    continue;
                }
            }
        }
        let Some(p) = probe.as_mut() else {
            continue;
        };
        match p.read().await {
            Ok(versions) => {
                if let Ok(mut w) = shared.watch.lock() {
                    let first = w.polled.is_none() || w.error.is_some();
                    w.mechanisms.clear();
                    for NamespaceVersion {
                        namespace: ns,
                        token,
                        mechanism,
                    } in versions
                    {
                        let changed = w.tokens.get(&ns).is_some_and(|t| *t != token);
                        // after a failed poll, writes may have been missed: everything moves
                        if changed || first {
                            *w.changes.entry(ns.clone()).or_default() += 1;
                        }
                        w.mechanisms.insert(ns.clone(), mechanism);
                        w.tokens.insert(ns, token);
                    }
                    if first {
                        // namespaces that vanished, or were never listed, move too
                        for v in w.changes.values_mut() {
                            *v += 1;
                        }
                    }
                    w.polled = Some(started);
                    w.error = None;
                    let line = mechanisms_line(&w.mechanisms, &read, &settings);
                    if line.is_some() && line != logged {
                        if let Some(line) = &line {
                            tracing::info!("result cache: {line}");
                        }
                        logged = line;
                    }
                }
            }
            Err(e) => {
                // a new probe next time (the connection may be gone)
                probe = None;
                note_failure(&shared, e);
            }
        }
    }
}

fn note_failure(shared: &Shared, e: String) {
    tracing::warn!("result cache: {e}");
    if let Ok(mut w) = shared.watch.lock() {
        w.error = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_find_quoted_and_bare_namespaces() {
        let mut out = BTreeSet::new();
        qualifiers(
            "SELECT e.x FROM \"saas\".\"events\" AS e JOIN gym.users u ON 'a.b' = \"col\"",
            &mut out,
        );
        assert!(out.contains("saas") && out.contains("gym") && out.contains("e"));
        assert!(!out.contains("col"));
    }

    #[test]
    fn mechanisms_are_described_with_their_bound() {
        let s = ResultCacheSettings::default();
        assert_eq!(
            describe(VersionMechanism::Triggers, &s),
            "exact (triggers; bound 0.5 s)"
        );
        assert_eq!(
            describe(VersionMechanism::DataVersion, &s),
            "exact (data_version; bound 0.5 s)"
        );
        let all = VersionMechanism::Statistics {
            without_trigger: 3,
            tables: 3,
        };
        assert_eq!(
            describe(all, &s),
            "statistics (bound 10.5 s, 60.5 s at worst)"
        );
        let some = VersionMechanism::Statistics {
            without_trigger: 1,
            tables: 9,
        };
        assert!(!some.exact() && VersionMechanism::Triggers.exact());
        assert_eq!(
            describe(some, &s),
            "statistics for 1 of 9 tables, triggers for the rest (bound 10.5 s, 60.5 s at worst)"
        );
        let line = mechanisms_line(
            &HashMap::from([
                ("shop".to_owned(), VersionMechanism::Triggers),
                ("web".to_owned(), all),
            ]),
            &["shop".to_owned(), "absent".to_owned(), "web".to_owned()],
            &s,
        );
        assert_eq!(
            line.as_deref(),
            Some(
                "shop: exact (triggers; bound 0.5 s); web: statistics (bound 10.5 s, 60.5 s at worst)"
            )
        );
    }

    #[test]
    fn bump_moves_only_its_namespace() {
        let (a, b) = (writes("results_test_a"), writes("results_test_b"));
        bump("results_test_a");
        assert_eq!(writes("results_test_a"), a + 1);
        assert_eq!(writes("results_test_b"), b);
    }
}
