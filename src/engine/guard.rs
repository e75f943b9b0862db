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
        tokio::time::timeout(wait, self.permits.acquire())
            .await
            .ok()
            .and_then(Result::ok)
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
    overloaded: AtomicBool,
    unavailable: AtomicBool,
}

impl RequestScope {
    /// A request with id `id` whose budget ends at `deadline`.
    pub fn new(id: String, deadline: Option<Instant>) -> Arc<RequestScope> {
        Arc::new(RequestScope {
            id,
            deadline,
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

/// A duration as the flags take it: `30 s`, `1.5 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}
