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
    /// Connection timeouts, shutdown, CORS.
    pub http: HttpConfig,
    /// API keys and roles; none: the server is open.
    pub auth: crate::auth::Auth,
    /// The result cache (`--result-cache-bytes`, `--result-cache-poll`; docs/CACHING.md).
    pub result_cache: crate::engine::ResultCacheSettings,
    /// Whether `metrics` requests are answered from the models' rollups when one answers
    /// exactly (`--rollups`, `cache.rollups`; default on).
    pub rollups: bool,
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
            http: HttpConfig::default(),
            auth: crate::auth::Auth::default(),
            result_cache: crate::engine::ResultCacheSettings::default(),
            rollups: true,
        })
    }

    /// The settings of `serve`: each from its flag (or environment variable) when given,
    /// else from the configuration file, else its default.
    pub fn resolve(file: &FileConfig, flags: &ServeFlags) -> Result<ServeConfig, Error> {
        let url = flags.db.clone().or_else(|| file.database.url.clone());
        let demo = if flags.demo {
            Some(true)
        } else if flags.no_demo {
            Some(false)
        } else {
            file.database.demo
        };
        let database = match url {
            None => Database::Embedded {
                demo: demo.unwrap_or(true),
            },
            Some(url) => Database::Given {
                url,
                demo: demo.unwrap_or(false),
            },
        };
        let bind = flags
            .bind
            .clone()
            .or_else(|| file.http.bind.clone())
            .unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let demo_scale = flags.demo_scale.or(file.database.demo_scale).unwrap_or(1.0);
        let models = flags
            .models
            .clone()
            .or_else(|| file.database.models.clone());
        let mut config = ServeConfig::new(database, &bind, demo_scale, models)?;
        config.namespaces = if flags.namespaces.is_empty() {
            let items: Vec<String> = file
                .database
                .namespaces
                .iter()
                .flatten()
                .map(|(m, n)| format!("{m}={n}"))
                .collect();
            parse_namespaces(&items)?
        } else {
            parse_namespaces(&flags.namespaces)?
        };
        config.only = if flags.only.is_empty() {
            parse_only(file.database.only.as_deref().unwrap_or_default())
        } else {
            parse_only(&flags.only)
        };
        let g = &file.guardrails;
        let span =
            |flag: &str, given: Option<f64>, file: Option<Span>, default: Duration| match given {
                Some(v) => seconds(flag, v),
                None => Ok(file.map(|s| s.0).unwrap_or(default)),
            };
        let l = &file.limits;
        let limit = |flag: &str, given: Option<u64>, file: Option<u64>, default: u64| {
            count(flag, given.or(file).unwrap_or(default))
        };
        let defaults = Guardrails::default();
        let request = crate::graphql::RequestLimits::default();
        config.guardrails = Guardrails {
            statement_timeout: span(
                "--statement-timeout",
                flags.statement_timeout,
                g.statement_timeout,
                defaults.statement_timeout,
            )?,
            max_concurrent_queries: flags.max_concurrent_queries.or(g.max_concurrent_queries),
            queue_timeout: span(
                "--queue-timeout",
                flags.queue_timeout,
                g.queue_timeout,
                defaults.queue_timeout,
            )?,
            db_acquire_timeout: span(
                "--db-acquire-timeout",
                flags.db_acquire_timeout,
                g.db_acquire_timeout,
                defaults.db_acquire_timeout,
            )?,
            request: crate::graphql::RequestLimits {
                max_fields: limit(
                    "--max-fields",
                    flags.max_fields,
                    l.max_fields,
                    request.max_fields as u64,
                )? as usize,
                max_depth: limit(
                    "--max-depth",
                    flags.max_depth,
                    l.max_depth,
                    request.max_depth as u64,
                )? as usize,
                max_metrics_dimensions: limit(
                    "--max-metrics-dimensions",
                    flags.max_metrics_dimensions,
                    l.max_metrics_dimensions,
                    request.max_metrics_dimensions as u64,
                )? as usize,
                max_rows: limit("--max-rows", flags.max_rows, l.max_rows, request.max_rows)?,
                max_in_list: limit(
                    "--max-in-list",
                    flags.max_in_list,
                    l.max_in_list,
                    request.max_in_list as u64,
                )? as usize,
                max_filter_nodes: limit(
                    "--max-filter-nodes",
                    flags.max_filter_nodes,
                    l.max_filter_nodes,
                    request.max_filter_nodes as u64,
                )? as usize,
            },
            max_body_bytes: limit(
                "--max-body-bytes",
                flags.max_body_bytes,
                l.max_body_bytes,
                defaults.max_body_bytes as u64,
            )? as usize,
            max_batch: limit(
                "--max-batch",
                flags.max_batch,
                l.max_batch,
                defaults.max_batch as u64,
            )? as usize,
        };
        let h = &file.http;
        let http = HttpConfig::default();
        config.http = HttpConfig {
            cors_origins: check_origins(h.cors_origins.clone().unwrap_or_default())?,
            header_read_timeout: h
                .header_read_timeout
                .map(|s| s.0)
                .unwrap_or(http.header_read_timeout),
            idle_timeout: h.idle_timeout.map(|s| s.0).unwrap_or(http.idle_timeout),
            shutdown_timeout: h
                .shutdown_timeout
                .map(|s| s.0)
                .unwrap_or(http.shutdown_timeout),
        };
        let c = &file.cache;
        let cache = crate::engine::ResultCacheSettings::default();
        config.result_cache = result_cache(
            flags
                .result_cache_bytes
                .or(c.result_cache_bytes)
                .unwrap_or(cache.bytes as u64),
            flags
                .result_cache_poll
                .or(c.poll_interval.map(|s| s.0.as_secs_f64()))
                .unwrap_or(cache.poll_interval.as_secs_f64()),
        )?;
        config.rollups = flags
            .rollups
            .map(|r| r == Switch::On)
            .or(c.rollups)
            .unwrap_or(true);
        config.auth = file.auth()?;
        if flags.allow_open {
            config.auth.allow_open = true;
        }
        Ok(config)
    }

    /// An error when the server would be open (no key) on an address other than loopback
    /// without `--allow-open` / `auth.allow_open`.
    pub fn check_open(&self) -> Result<(), Error> {
        if self.auth.is_open() && !self.bind.ip().is_loopback() && !self.auth.allow_open {
            return Err(Error::Config(format!(
                "refusing to serve {} with no API key: anyone who can reach this address could read every model. Configure keys ([[auth.keys]] in the configuration file; `tally key new --role NAME` makes one), bind 127.0.0.1, or pass --allow-open (auth.allow_open = true) to serve it open on purpose",
                self.bind
            )));
        }
        Ok(())
    }

    /// Whether `/metrics` needs no key: `auth.metrics_public`, by default true on loopback.
    pub fn metrics_public(&self) -> bool {
        self.auth
            .metrics_public
            .unwrap_or_else(|| self.bind.ip().is_loopback())
    }
}

/// The `serve` flags (each `None`, `false` or empty when given neither on the command line
/// nor in its environment variable: then the configuration file, else the default, holds).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct ServeFlags {
    /// Database URL: sqlite://FILE or postgres://USER@HOST/DB. Read-only unless --demo.
    #[arg(long = "db", env = "DATABASE_URL")]
    pub db: Option<String>,
    /// Address to listen on [default: 127.0.0.1:4000].
    #[arg(long, env = "TALLY_BIND")]
    pub bind: Option<String>,
    /// Embedded default only: do not load demo data into the new database.
    #[arg(long, conflicts_with = "demo")]
    pub no_demo: bool,
    /// Write into the --db database: create the demo schema (migrate) and load demo data
    /// when it holds no rows.
    #[arg(long)]
    pub demo: bool,
    /// Scale of the demo data loaded into an empty database [default: 1].
    #[arg(long)]
    pub demo_scale: Option<f64>,
    /// Where a model's tables live: MODEL=NAMESPACE (a PostgreSQL schema or an attached
    /// SQLite database, e.g. gym=public); repeatable, or comma-separated in
    /// TALLY_NAMESPACES. Overrides the model file's `namespace`.
    #[arg(long = "namespace", env = "TALLY_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Serve only these models (comma-separated, e.g. gym,shop): for a database that
    /// holds the tables of some models only.
    #[arg(long, env = "TALLY_ONLY", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Folder of model files (`<dir>/<model>/*.toml`); default `$TALLY_MODELS`, else
    /// `./models`, else the models built into the binary.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Serve with no API key on an address other than loopback (anyone who reaches it
    /// reads every model).
    #[arg(long, env = "TALLY_ALLOW_OPEN")]
    pub allow_open: bool,
    /// Time budget of a request, in seconds: its statements are stopped inside the
    /// database when it is spent (TIMEOUT) [default: 30].
    #[arg(long, env = "TALLY_STATEMENT_TIMEOUT")]
    pub statement_timeout: Option<f64>,
    /// Statements run at once, at most (default: the pool's connections minus two).
    #[arg(long, env = "TALLY_MAX_CONCURRENT_QUERIES")]
    pub max_concurrent_queries: Option<usize>,
    /// Seconds a statement waits for its turn before OVERLOADED (HTTP 503) [default: 2].
    #[arg(long, env = "TALLY_QUEUE_TIMEOUT")]
    pub queue_timeout: Option<f64>,
    /// Seconds a statement waits for a database connection before
    /// DATABASE_UNAVAILABLE (HTTP 503) [default: 2].
    #[arg(long, env = "TALLY_DB_ACQUIRE_TIMEOUT")]
    pub db_acquire_timeout: Option<f64>,
    /// Bytes of a request body, at most (LIMIT_EXCEEDED, HTTP 413) [default: 1048576].
    #[arg(long, env = "TALLY_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<u64>,
    /// Operations of a batch request, at most [default: 10].
    #[arg(long, env = "TALLY_MAX_BATCH")]
    pub max_batch: Option<u64>,
    /// Fields a request selects, at most (aliases and nested fields counted)
    /// [default: 2000].
    #[arg(long, env = "TALLY_MAX_FIELDS")]
    pub max_fields: Option<u64>,
    /// Nesting of a request's selections, at most [default: 32].
    #[arg(long, env = "TALLY_MAX_DEPTH")]
    pub max_depth: Option<u64>,
    /// Metrics × dimensions one `metrics` field selects, at most [default: 200].
    #[arg(long, env = "TALLY_MAX_METRICS_DIMENSIONS")]
    pub max_metrics_dimensions: Option<u64>,
    /// Rows of a `metrics` field without `limit`, at most (the rest is cut and
    /// extensions.rowsCut says so) [default: 10000].
    #[arg(long, env = "TALLY_MAX_ROWS")]
    pub max_rows: Option<u64>,
    /// Values of one `in` / `notIn` list, and of all the values one `where` binds, at
    /// most [default: 1000].
    #[arg(long, env = "TALLY_MAX_IN_LIST")]
    pub max_in_list: Option<u64>,
    /// Nodes (conditions, and, or, not) of one `where`, at most [default: 200].
    #[arg(long, env = "TALLY_MAX_FILTER_NODES")]
    pub max_filter_nodes: Option<u64>,
    /// Bytes of answers the result cache keeps (least recently used out first); 0 turns it
    /// off. A cached answer is never older than the data by more than the bound of
    /// docs/CACHING.md [default: 67108864].
    #[arg(long, env = "TALLY_RESULT_CACHE_BYTES")]
    pub result_cache_bytes: Option<u64>,
    /// Seconds between two reads of the data versions (how the result cache notices writes
    /// by other tools) [default: 0.25].
    #[arg(long, env = "TALLY_RESULT_CACHE_POLL")]
    pub result_cache_poll: Option<f64>,
    /// Answer `metrics` requests from the models' rollups when one answers exactly (`off`:
    /// always from the source rows, e.g. to compare) [default: on].
    #[arg(long, env = "TALLY_ROLLUPS", value_enum)]
    pub rollups: Option<Switch>,
}

/// `on` or `off`, for flags that turn a feature on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Turned on.
    On,
    /// Turned off.
    Off,
}

/// The CORS origins of `http.cors_origins`: each `scheme://host[:port]`, no `*`.
fn check_origins(origins: Vec<String>) -> Result<Vec<String>, Error> {
    for o in &origins {
        let ok = (o.starts_with("http://") || o.starts_with("https://"))
            && !o.contains('*')
            && !o.ends_with('/')
            && o.split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains('/'))
            && axum::http::HeaderValue::from_str(o).is_ok();
        if !ok {
            return Err(Error::Config(format!(
                "http.cors_origins: {o:?} is not an origin like \"https://app.example.com\" (a scheme, a host, an optional port; no path, no *)"
            )));
        }
    }
    Ok(origins)
}

/// The address of the server on the network, and how its connections are kept
/// (`[http]`; docs/CONFIGURATION.md).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Origins a browser may call `/graphql` from (`http.cors_origins`); empty: CORS is off.
    pub cors_origins: Vec<String>,
    /// Longest time a client may take to send a request's headers (`http.header_read_timeout`,
    /// default 10 s).
    pub header_read_timeout: Duration,
    /// Longest time a connection may stay open with no request (`http.idle_timeout`, default
    /// 60 s).
    pub idle_timeout: Duration,
    /// Longest time running requests are given to finish after SIGTERM or Ctrl-C
    /// (`http.shutdown_timeout`, default 10 s).
    pub shutdown_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            cors_origins: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A duration written as text in the configuration file: `"30s"`, `"1.5s"`, `"500ms"`,
/// `"2m"`, `"1h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

/// Parses a duration: a number (a fraction allowed) and a unit, `ms`, `s`, `m` or `h`;
/// greater than 0 and at most a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "{text:?} is not a duration: write a number and a unit, like \"30s\", \"1.5s\", \"500ms\", \"2m\""
            ));
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration: write a number and a unit, like \"30s\", \"1.5s\", \"500ms\", \"2m\"")
    })?;
    let seconds = value * scale;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!(
            "{text:?}: a duration must be greater than 0 and at most a day"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Span;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration as text, like \"30s\", \"1.5s\" or \"500ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Span, E> {
                parse_duration(v).map(Span).map_err(E::custom)
            }
        }
        d.deserialize_str(Visit)
    }
}

/// `tally.toml`, as written (docs/CONFIGURATION.md documents every key). Every key is
/// optional; flags and their environment variables win over the file, which wins over the
/// defaults.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `[database]`.
    pub database: DatabaseFile,
    /// `[http]`.
    pub http: HttpFile,
    /// `[guardrails]`.
    pub guardrails: GuardrailsFile,
    /// `[limits]`.
    pub limits: LimitsFile,
    /// `[cache]`.
    pub cache: CacheFile,
    /// `[auth]`, its roles and keys.
    pub auth: AuthFile,
}

/// `[database]` of `tally.toml`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseFile {
    /// `url` (`--db`, `DATABASE_URL`); none: the embedded SQLite file.
    pub url: Option<String>,
    /// `demo`: load demo data into an empty database (embedded: default true; a given
    /// database: default false, and true lets tally write to it).
    pub demo: Option<bool>,
    /// `demo_scale` (`--demo-scale`, default 1.0).
    pub demo_scale: Option<f64>,
    /// `models`: folder of model files (`--models`).
    pub models: Option<PathBuf>,
    /// `namespaces = { gym = "public" }` (`--namespace`).
    pub namespaces: Option<std::collections::BTreeMap<String, String>>,
    /// `only = ["gym"]` (`--only`).
    pub only: Option<Vec<String>>,
}

/// `[http]` of `tally.toml`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpFile {
    /// `bind` (`--bind`, `TALLY_BIND`, default 127.0.0.1:4000).
    pub bind: Option<String>,
    /// `cors_origins` (default none: CORS off).
    pub cors_origins: Option<Vec<String>>,
    /// `header_read_timeout` (default "10s").
    pub header_read_timeout: Option<Span>,
    /// `idle_timeout` (default "60s").
    pub idle_timeout: Option<Span>,
    /// `shutdown_timeout` (default "10s").
    pub shutdown_timeout: Option<Span>,
}

/// `[guardrails]` of `tally.toml`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailsFile {
    /// `statement_timeout` (default "30s").
    pub statement_timeout: Option<Span>,
    /// `max_concurrent_queries` (default: the pool's connections minus two).
    pub max_concurrent_queries: Option<usize>,
    /// `queue_timeout` (default "2s").
    pub queue_timeout: Option<Span>,
    /// `db_acquire_timeout` (default "2s").
    pub db_acquire_timeout: Option<Span>,
}

/// `[limits]` of `tally.toml`: what one request may ask for.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsFile {
    /// `max_body_bytes` (default 1048576).
    pub max_body_bytes: Option<u64>,
    /// `max_batch` (default 10).
    pub max_batch: Option<u64>,
    /// `max_fields` (default 2000).
    pub max_fields: Option<u64>,
    /// `max_depth` (default 32).
    pub max_depth: Option<u64>,
    /// `max_metrics_dimensions` (default 200).
    pub max_metrics_dimensions: Option<u64>,
    /// `max_rows` (default 10000).
    pub max_rows: Option<u64>,
    /// `max_in_list` (default 1000).
    pub max_in_list: Option<u64>,
    /// `max_filter_nodes` (default 200).
    pub max_filter_nodes: Option<u64>,
}

/// `[cache]` of `tally.toml`: the result cache (docs/CACHING.md).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheFile {
    /// `result_cache_bytes` (`--result-cache-bytes`, default 67108864; 0 turns it off).
    pub result_cache_bytes: Option<u64>,
    /// `poll_interval` (`--result-cache-poll`, default "250ms").
    pub poll_interval: Option<Span>,
    /// `rollups` (`--rollups on|off`, default true): answer `metrics` requests from the
    /// models' rollups when one answers exactly.
    pub rollups: Option<bool>,
}

/// `[auth]` of `tally.toml`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthFile {
    /// `allow_open`: serve with no key on an address other than loopback (`--allow-open`).
    pub allow_open: Option<bool>,
    /// `metrics_public`: `/metrics` needs no key (default: true when bound to loopback).
    pub metrics_public: Option<bool>,
    /// `[auth.roles.NAME]`.
    pub roles: std::collections::BTreeMap<String, RoleFile>,
    /// `[[auth.keys]]`.
    pub keys: Vec<KeyFile>,
}

/// `[auth.roles.NAME]` of `tally.toml`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleFile {
    /// `models`: the models it may read (default all).
    pub models: Option<Vec<String>>,
    /// `introspection` (default true).
    pub introspection: Option<bool>,
    /// `explain_sql` (default false).
    pub explain_sql: Option<bool>,
    /// `statement_timeout`: its own time budget (default `guardrails.statement_timeout`).
    pub statement_timeout: Option<Span>,
    /// `unscoped`: row policies do not apply to it (default false).
    pub unscoped: Option<bool>,
    /// `[auth.roles.NAME.allow.MODEL]`: metrics, dimensions, fields.
    pub allow: std::collections::BTreeMap<String, crate::auth::ModelAccess>,
}

/// `[[auth.keys]]` of `tally.toml`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyFile {
    /// `name`: a label for logs.
    pub name: Option<String>,
    /// `hash`: `sha256:` and 64 hex digits (`tally key new`).
    pub hash: String,
    /// `role`.
    pub role: String,
    /// `attributes = { branch_id = ["b1"] }`.
    pub attributes: std::collections::BTreeMap<String, Vec<String>>,
}

impl FileConfig {
    /// Reads `path` (`--config`, `TALLY_CONFIG`).
    pub fn load(path: &std::path::Path) -> Result<FileConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("cannot read the configuration file {}", path.display()),
            source,
        })?;
        FileConfig::parse(&text, &path.display().to_string())
    }

    /// Parses `text` (the file `name`): an error names `name:line:column`, the key, and
    /// what is wrong.
    pub fn parse(text: &str, name: &str) -> Result<FileConfig, Error> {
        toml::from_str::<FileConfig>(text).map_err(|e| {
            let (line, column, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (1, 1, String::new()),
            };
            let key = if key.is_empty() {
                String::new()
            } else {
                format!(" {key}:")
            };
            Error::Config(format!(
                "{name}:{line}:{column}:{key} {}",
                e.message().trim()
            ))
        })
    }

    /// The auth settings: roles and keys checked (a key's hash, its role, attribute names).
    pub fn auth(&self) -> Result<crate::auth::Auth, Error> {
        use std::sync::Arc;
        let mut auth = crate::auth::Auth {
            allow_open: self.auth.allow_open.unwrap_or(false),
            metrics_public: self.auth.metrics_public,
            ..Default::default()
        };
        for (name, r) in &self.auth.roles {
            if !crate::auth::is_name(name) {
                return Err(Error::Config(format!(
                    "auth.roles.{name}: a role's name must be letters, digits and _"
                )));
            }
            let role = crate::auth::Role {
                name: name.clone(),
                models: r.models.as_ref().map(|m| m.iter().cloned().collect()),
                allow: r.allow.clone(),
                introspection: r.introspection.unwrap_or(true),
                explain_sql: r.explain_sql.unwrap_or(false),
                statement_timeout: r.statement_timeout.map(|s| s.0),
                unscoped: r.unscoped.unwrap_or(false),
            };
            auth.roles.insert(name.clone(), Arc::new(role));
        }
        for (i, k) in self.auth.keys.iter().enumerate() {
            let at = format!("auth.keys[{i}]");
            let hash = crate::auth::parse_hash(&k.hash)
                .map_err(|e| Error::Config(format!("{at}.hash: {e}")))?;
            if !auth.roles.contains_key(&k.role) {
                let known: Vec<&str> = auth.roles.keys().map(String::as_str).collect();
                return Err(Error::Config(format!(
                    "{at}.role: no role {:?} is configured (the roles are: {})",
                    k.role,
                    if known.is_empty() {
                        "none; add [auth.roles.NAME]".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            if let Some(bad) = k.attributes.keys().find(|a| !crate::auth::is_name(a)) {
                return Err(Error::Config(format!(
                    "{at}.attributes: {bad:?} must be letters, digits and _"
                )));
            }
            if auth.keys.iter().any(|x| x.hash == hash) {
                return Err(Error::Config(format!(
                    "{at}.hash: the same key is configured twice"
                )));
            }
            auth.keys.push(crate::auth::ApiKey {
                name: k.name.clone().unwrap_or_else(|| k.hash[7..15].to_owned()),
                hash,
                role: k.role.clone(),
                attributes: k.attributes.clone(),
            });
        }
        Ok(auth)
    }
}

/// Line and column (from 1) of byte `offset` of `text`, and the dotted key being set there:
/// the table header in force and the key at the start of the line.
fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    let mut table = String::new();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(h) = l
            .strip_prefix("[[")
            .and_then(|h| h.split("]]").next())
            .or_else(|| l.strip_prefix('[').and_then(|h| h.split(']').next()))
        {
            table = h.trim().to_owned();
        }
    }
    let this = text[line_start..].lines().next().unwrap_or("").trim();
    if this.starts_with('[') {
        let header = this.trim_start_matches('[').split(']').next().unwrap_or("");
        return (line, column, header.trim().to_owned());
    }
    let key = this
        .split_once('=')
        .map(|(k, _)| k.trim().to_owned())
        .unwrap_or_default();
    let full = match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    };
    (line, column, full)
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
