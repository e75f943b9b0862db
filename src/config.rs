//! Typed settings shared by the commands, with their documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// The address `tally serve` listens on when neither `--bind` nor `TALLY_BIND` is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:4000";

/// The database `tally serve` answers from, and what it may do to it.
#[derive(Debug, Clone)]
pub enum Database {
    /// No database given: tally's own SQLite file [`crate::db::DEFAULT_URL`], created and
    /// migrated at start, with demo data loaded into it when it is empty (unless `demo` is
    /// false: `--no-demo`).
    Embedded {
        /// Load demo data when the database holds no rows.
        demo: bool,
    },
    /// A database tally is given (`--db`, `DATABASE_URL`). It belongs to its users: tally
    /// reads it and writes nothing, unless `demo` (`--demo`) asks it to migrate it and load
    /// demo data when it is empty.
    Given {
        /// The URL.
        url: String,
        /// Migrate and load demo data into an empty database.
        demo: bool,
    },
}

impl Database {
    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            Database::Embedded { .. } => crate::db::DEFAULT_URL,
            Database::Given { url, .. } => url,
        }
    }

    /// Whether tally may write to it (migrate, demo data, its saas stage history).
    pub fn writable(&self) -> bool {
        match self {
            Database::Embedded { .. } => true,
            Database::Given { demo, .. } => *demo,
        }
    }

    /// Whether demo data is loaded into it when it holds no rows.
    pub fn demo_when_empty(&self) -> bool {
        match self {
            Database::Embedded { demo } | Database::Given { demo, .. } => *demo,
        }
    }
}

pub use crate::semantic::Namespaces;

/// Parses `MODEL=NAMESPACE` items (`--namespace`, `TALLY_NAMESPACES`).
pub fn parse_namespaces(items: &[String]) -> Result<Namespaces, Error> {
    let mut out = Namespaces::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let Some((model, namespace)) = item.split_once('=') else {
            return Err(Error::Config(format!(
                "--namespace {item:?} is not MODEL=NAMESPACE (e.g. gym=public)"
            )));
        };
        let (model, namespace) = (model.trim(), namespace.trim());
        let ident = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        };
        if !ident(model) || !ident(namespace) {
            return Err(Error::Config(format!(
                "--namespace {item:?}: the model and the namespace must be identifiers (letters, digits, _)"
            )));
        }
        if out.insert(model.to_owned(), namespace.to_owned()).is_some() {
            return Err(Error::Config(format!(
                "--namespace names the model {model:?} twice"
            )));
        }
    }
    Ok(out)
}

/// The models of `--only` (empty: every model).
pub fn parse_only(items: &[String]) -> Option<std::collections::BTreeSet<String>> {
    let set: std::collections::BTreeSet<String> = items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    (!set.is_empty()).then_some(set)
}

/// What bounds the server's work (`serve` flags; docs/OPERATIONS.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guardrails {
    /// Time budget of a request (`--statement-timeout`, default 30 s).
    pub statement_timeout: Duration,
    /// Statements at once (`--max-concurrent-queries`); `None`: the pool's size minus two.
    pub max_concurrent_queries: Option<usize>,
    /// Longest wait for a turn (`--queue-timeout`, default 2 s).
    pub queue_timeout: Duration,
    /// Longest wait for a database connection (`--db-acquire-timeout`, default 2 s).
    pub db_acquire_timeout: Duration,
    /// What one GraphQL request may select (fields, depth, metrics × dimensions, rows).
    pub request: crate::graphql::RequestLimits,
    /// Bytes of a request body (`--max-body-bytes`, default 1 MiB).
    pub max_body_bytes: usize,
    /// Operations of a batch (`--max-batch`, default 10).
    pub max_batch: usize,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            statement_timeout: crate::engine::guard::DEFAULT_STATEMENT_TIMEOUT,
            max_concurrent_queries: None,
            queue_timeout: crate::engine::guard::DEFAULT_QUEUE_TIMEOUT,
            db_acquire_timeout: crate::db::DEFAULT_ACQUIRE_TIMEOUT,
            request: crate::graphql::RequestLimits::default(),
            max_body_bytes: 1 << 20,
            max_batch: 10,
        }
    }
}

impl Guardrails {
    /// The engine's limits over a pool of `pool_size` connections; an error when more
    /// statements at once are asked for than the pool has connections.
    pub fn limits(&self, pool_size: u32) -> Result<crate::engine::Limits, Error> {
        let mut limits = crate::engine::Limits::for_pool(pool_size);
        limits.statement_timeout = self.statement_timeout;
        limits.queue_timeout = self.queue_timeout;
        if let Some(n) = self.max_concurrent_queries {
            if n == 0 || n > pool_size as usize {
                return Err(Error::Config(format!(
                    "--max-concurrent-queries {n}: must be between 1 and the pool's {pool_size} connections"
                )));
            }
            limits.max_queries = n;
        }
        Ok(limits)
    }
}

/// `value` of the flag `flag`: at least 1, else a configuration error.
pub fn count(flag: &str, value: u64) -> Result<u64, Error> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(Error::Config(format!("{flag} {value}: must be 1 or more")))
    }
}

/// `value` seconds of the flag `flag`: positive and finite, else a configuration error.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, Error> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Error::Config(format!(
            "{flag} {value}: must be a number of seconds greater than 0 and at most 86400"
        )))
    }
}

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The database and what tally may do to it.
    pub database: Database,
    /// Socket address to listen on.
    pub bind: SocketAddr,
    /// Scale of the demo data (1.0 ≈ 10k users per model).
    pub demo_scale: f64,
    /// Folder of model files; `None`: `$TALLY_MODELS`, `./models`, or the built-in models.
    pub models_dir: Option<PathBuf>,
    /// Where models' tables live, overriding their files' `namespace`.
    pub namespaces: Namespaces,
    /// Serve only these models (`--only`), `None`: every model.
    pub only: Option<std::collections::BTreeSet<String>>,
    /// Time budget, admission control and the database's wait.
    pub guardrails: Guardrails,
    /// The result cache (`--result-cache-bytes`, `--result-cache-poll`; docs/CACHING.md).
    pub result_cache: crate::engine::ResultCacheSettings,
}

impl ServeConfig {
    /// Builds the settings, checking the bind address.
    pub fn new(
        database: Database,
        bind: &str,
        demo_scale: f64,
        models_dir: Option<PathBuf>,
    ) -> Result<Self, Error> {
        let bind = bind.parse().map_err(|e| {
            Error::Config(format!(
                "bind address {bind:?} is not a socket address like 127.0.0.1:4000 ({e})"
            ))
        })?;
        Ok(Self {
            database,
            bind,
            demo_scale,
            models_dir,
            namespaces: Namespaces::new(),
            only: None,
            guardrails: Guardrails::default(),
            result_cache: crate::engine::ResultCacheSettings::default(),
        })
    }
}

/// The result cache of `--result-cache-bytes` (0: off) and `--result-cache-poll` seconds
/// (between 0.01 and 60).
pub fn result_cache(bytes: u64, poll: f64) -> Result<crate::engine::ResultCacheSettings, Error> {
    if !(poll.is_finite() && (0.01..=60.0).contains(&poll)) {
        return Err(Error::Config(format!(
            "--result-cache-poll {poll}: must be a number of seconds between 0.01 and 60"
        )));
    }
    let bytes = usize::try_from(bytes).map_err(|_| {
        Error::Config(format!(
            "--result-cache-bytes {bytes}: more than this machine can address"
        ))
    })?;
    Ok(crate::engine::ResultCacheSettings {
        bytes,
        poll_interval: Duration::from_secs_f64(poll),
    })
}
