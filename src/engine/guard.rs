//! What bounds the engine's work: the time budget of a request, the number of statements
//! running at once (admission control), and the counters `/metrics` shows.
//!
//! - Every request has a time budget ([`Limits::statement_timeout`], default 30 s) from its
//!   arrival. Each statement gets what is left of it, enforced inside the database
//!   (`crate::sql::interrupt`); past it the field fails with `TIMEOUT`.
//! - At most [`Limits::max_queries`] statements run at once. A statement waits at most
//!   [`Limits::queue_timeout`] for its turn, then fails with `OVERLOADED` (HTTP 503 with
//!   `Retry-After`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Default time budget of a request.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default longest wait for a turn to run a statement.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

/// The engine's bounds on work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The time budget of a request (all its statements), from its arrival.
    pub statement_timeout: Duration,
    /// Statements running at once, at most.
    pub max_queries: usize,
    /// How long a statement waits for its turn before `OVERLOADED`.
    pub queue_timeout: Duration,
}

impl Limits {
    /// The defaults for a pool of `pool_size` connections: a 30 s budget, a 2 s wait, and
    /// two connections fewer than the pool's statements at once (at least one), so
    /// readiness checks and tally's own upkeep find a connection.
    pub fn for_pool(pool_size: u32) -> Limits {
        Limits {
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            max_queries: (pool_size as usize).saturating_sub(2).max(1),
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// Counters of the engine's work since start (read by `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Statements run (completed or failed).
    pub statements: AtomicU64,
    /// Microseconds spent in the database by statements.
    pub db_micros: AtomicU64,
    /// Statements stopped at their request's time budget.
    pub timeouts: AtomicU64,
    /// Statements refused a turn (`OVERLOADED`).
    pub rejected: AtomicU64,
    /// Statements that found the database unavailable.
    pub unavailable: AtomicU64,
    /// Statements abandoned while running (their client went away) and cancelled.
    pub cancelled: AtomicU64,
    /// Requests refused before they ran (body size, batch size).
    pub rejected_requests: AtomicU64,
    /// Statements waiting for their turn now.
    pub waiting: AtomicU64,
    /// Semantic-layer reads answered from the result cache.
    pub result_cache_hits: AtomicU64,
    /// Semantic-layer reads the result cache could not answer (any reason).
    pub result_cache_misses: AtomicU64,
    /// Answers dropped from the result cache to stay within its bytes.
    pub result_cache_evictions: AtomicU64,
    /// Bytes of answers in the result cache now.
    pub result_cache_bytes: AtomicU64,
    /// Answers in the result cache now.
    pub result_cache_entries: AtomicU64,
    /// Fields answered, by field and outcome (`OK` or the error code), with their latency.
    pub fields: std::sync::Mutex<std::collections::BTreeMap<(String, String), Histogram>>,
    /// HTTP requests answered, by route and status, with their latency.
    pub requests: std::sync::Mutex<std::collections::BTreeMap<(String, u16), Histogram>>,
}

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram: counts per bucket of [`LATENCY_BUCKETS`] (not cumulative), the
/// count and the sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (the last slot: above the last bound).
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Observations.
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum: f64,
}

impl Histogram {
    /// Adds one observation of `seconds`.
    pub fn observe(&mut self, seconds: f64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += seconds;
    }
}

impl Counters {
    /// Notes a field (`Type.field`) answered with `outcome` (`OK` or an error code) in
    /// `seconds`.
    pub fn field(&self, field: &str, outcome: &str, seconds: f64) {
        if let Ok(mut m) = self.fields.lock() {
            m.entry((field.to_owned(), outcome.to_owned()))
                .or_default()
                .observe(seconds);
        }
    }

    /// Notes an HTTP request of `route` answered with `status` in `seconds`.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            m.entry((route.to_owned(), status))
                .or_default()
                .observe(seconds);
        }
    }
}

/// The engine's admission control, limits and counters; shared by its sessions.
#[derive(Debug)]
pub struct Guard {
    limits: Limits,
    permits: Semaphore,
    counters: Counters,
}

impl Guard {
    /// A guard with `limits`.
    pub fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            permits: Semaphore::new(limits.max_queries.max(1)),
            counters: Counters::default(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Statements running now.
    pub fn running(&self) -> usize {
        self.limits
            .max_queries
            .max(1)
            .saturating_sub(self.permits.available_permits())
    }

    /// Waits up to `wait` for a turn to run a statement.
    pub(crate) async fn admit(&self, wait: Duration) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(p) = self.permits.try_acquire() {
            return Some(p);
        }
        self.counters.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::time::timeout(wait, self.permits.acquire())
            .await
            .ok()
            .and_then(Result::ok);
        self.counters.waiting.fetch_sub(1, Ordering::Relaxed);
        permit
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One request as the engine sees it: when its budget ends, its id, and what went wrong
/// that decides its HTTP status. Put into the GraphQL request's data by `http`.
#[derive(Debug)]
pub struct RequestScope {
    /// The request id (`x-request-id`).
    pub id: String,
    /// When its time budget ends; `None`: the engine's budget from each session's start.
    pub deadline: Option<Instant>,
    /// Who is asking; `None`: an open server's anonymous caller (no row policy applies).
    pub caller: Option<Arc<super::Caller>>,
    overloaded: AtomicBool,
    unavailable: AtomicBool,
}

impl RequestScope {
    /// A request with id `id` whose budget ends at `deadline`.
    pub fn new(id: String, deadline: Option<Instant>) -> Arc<RequestScope> {
        RequestScope::for_caller(id, deadline, None)
    }

    /// A request of `caller` with id `id` whose budget ends at `deadline`.
    pub fn for_caller(
        id: String,
        deadline: Option<Instant>,
        caller: Option<Arc<super::Caller>>,
    ) -> Arc<RequestScope> {
        Arc::new(RequestScope {
            id,
            deadline,
            caller,
            overloaded: AtomicBool::new(false),
            unavailable: AtomicBool::new(false),
        })
    }

    /// Whether a statement of the request was refused a turn (`OVERLOADED`).
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// Whether a statement of the request found the database unavailable.
    pub fn unavailable(&self) -> bool {
        self.unavailable.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_overloaded(&self) {
        self.overloaded.store(true, Ordering::Relaxed);
    }

    pub(crate) fn mark_unavailable(&self) {
        self.unavailable.store(true, Ordering::Relaxed);
    }
}

/// Loads run in this process (the loader counts them: `tally serve`'s demo data, and any
/// embedder's loads), by outcome, and the rows they inserted; `/metrics` shows them.
#[derive(Debug, Default)]
pub struct LoadCounters {
    /// Loads committed.
    pub committed: AtomicU64,
    /// Loads rejected for invalid rows (nothing loaded).
    pub rejected: AtomicU64,
    /// Loads that stopped before committing, or whose commit failed (nothing loaded, or
    /// the outcome of a lost commit unknown).
    pub failed: AtomicU64,
    /// Rows inserted or replaced by committed loads.
    pub rows: AtomicU64,
}

/// The load counters of this process.
pub static LOADS: LoadCounters = LoadCounters {
    committed: AtomicU64::new(0),
    rejected: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    rows: AtomicU64::new(0),
};

/// A duration as the flags take it: `30 s`, `1.5 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// The counters of `guard` and the pool's `(open, idle, max)` connections in the Prometheus
/// text format (version 0.0.4).
pub fn prometheus(guard: &Guard, pool: (u32, usize, u32)) -> String {
    use std::fmt::Write as _;
    let c = guard.counters();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "tally_db_statements_total",
        "counter",
        "Statements run for answers.",
        load(&c.statements).to_string(),
    );
    metric(
        "tally_db_seconds_total",
        "counter",
        "Seconds spent in the database by statements, rows transferred included.",
        format!("{}", load(&c.db_micros) as f64 / 1e6),
    );
    metric(
        "tally_db_timeouts_total",
        "counter",
        "Statements stopped at their request's time budget (TIMEOUT).",
        load(&c.timeouts).to_string(),
    );
    metric(
        "tally_db_rejected_total",
        "counter",
        "Statements refused a turn (OVERLOADED).",
        load(&c.rejected).to_string(),
    );
    metric(
        "tally_db_unavailable_total",
        "counter",
        "Statements that found the database unavailable (DATABASE_UNAVAILABLE).",
        load(&c.unavailable).to_string(),
    );
    metric(
        "tally_db_cancelled_total",
        "counter",
        "Statements cancelled in the database after their client went away.",
        load(&c.cancelled).to_string(),
    );
    metric(
        "tally_http_rejected_total",
        "counter",
        "Requests refused before they ran (body size, batch size).",
        load(&c.rejected_requests).to_string(),
    );
    metric(
        "tally_db_statements_running",
        "gauge",
        "Statements running now.",
        guard.running().to_string(),
    );
    metric(
        "tally_db_statements_waiting",
        "gauge",
        "Statements waiting for their turn now.",
        load(&c.waiting).to_string(),
    );
    metric(
        "tally_db_statements_max",
        "gauge",
        "Statements that may run at once (--max-concurrent-queries).",
        guard.limits().max_queries.to_string(),
    );
    metric(
        "tally_result_cache_hits_total",
        "counter",
        "Reads (semantic-layer, lifecycle and sources statements) answered from the result cache.",
        load(&c.result_cache_hits).to_string(),
    );
    metric(
        "tally_result_cache_misses_total",
        "counter",
        "Reads the result cache could not answer (no entry, version changed, disabled, not cacheable).",
        load(&c.result_cache_misses).to_string(),
    );
    metric(
        "tally_result_cache_evictions_total",
        "counter",
        "Answers dropped from the result cache to stay within --result-cache-bytes.",
        load(&c.result_cache_evictions).to_string(),
    );
    metric(
        "tally_result_cache_bytes",
        "gauge",
        "Bytes of answers in the result cache.",
        load(&c.result_cache_bytes).to_string(),
    );
    metric(
        "tally_result_cache_entries",
        "gauge",
        "Answers in the result cache.",
        load(&c.result_cache_entries).to_string(),
    );
    let _ = writeln!(
        out,
        "# HELP tally_loads_total Loads run in this process, by outcome.\n# TYPE tally_loads_total counter\ntally_loads_total{{outcome=\"committed\"}} {}\ntally_loads_total{{outcome=\"rejected\"}} {}\ntally_loads_total{{outcome=\"failed\"}} {}\n# HELP tally_load_rows_total Rows inserted or replaced by committed loads.\n# TYPE tally_load_rows_total counter\ntally_load_rows_total {}",
        load(&LOADS.committed),
        load(&LOADS.rejected),
        load(&LOADS.failed),
        load(&LOADS.rows)
    );
    let (open, idle, max) = pool;
    let _ = writeln!(
        out,
        "# HELP tally_db_pool_connections Connections of the pool, by state.\n# TYPE tally_db_pool_connections gauge\ntally_db_pool_connections{{state=\"in_use\"}} {}\ntally_db_pool_connections{{state=\"idle\"}} {idle}\ntally_db_pool_connections{{state=\"max\"}} {max}",
        (open as usize).saturating_sub(idle)
    );
    let histogram = |out: &mut String, name: &str, help: &str, rows: Vec<(String, Histogram)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, h) in rows {
            let mut cumulative = 0;
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i];
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
    };
    let fields = c
        .fields
        .lock()
        .map(|m| {
            m.iter()
                .map(|((f, code), h)| (format!("field=\"{f}\",code=\"{code}\""), h.clone()))
                .collect()
        })
        .unwrap_or_default();
    histogram(
        &mut out,
        "tally_graphql_field_seconds",
        "GraphQL fields answered, by field and outcome (OK or the error code; field (request): refused before any field ran), and their latency.",
        fields,
    );
    let requests = c
        .requests
        .lock()
        .map(|m| {
            m.iter()
                .map(|((r, status), h)| (format!("route=\"{r}\",status=\"{status}\""), h.clone()))
                .collect()
        })
        .unwrap_or_default();
    histogram(
        &mut out,
        "tally_http_request_seconds",
        "HTTP requests answered, by route and status, and their latency.",
        requests,
    );
    out
}
