//! The slowest queries reachable from the shipped schema (a bench binary that prints its
//! numbers):
//!
//! ```sh
//! cargo bench --bench slowest
//! TALLY_BENCH_SQLITE=sqlite:///tmp/demo.db TALLY_BENCH_POSTGRES=postgres://postgres@127.0.0.1/demo \
//!     cargo bench --bench slowest
//! ```
//!
//! Every metric of every shipped model, with no dimension (where the metric allows it) and by
//! each time dimension it reaches at each of its granularities, on every backend, through
//! `Engine::run` (check, plan, render, run, read values), as of 2026-01-01 (after the whole
//! demo calendar). Prints every backend's 10 slowest requests, the requests the check rejects
//! (e.g. a trailing window by a granularity longer than the window) by their code, and the
//! total time.
//!
//! Databases: the demo databases `TALLY_BENCH_SQLITE` and `TALLY_BENCH_POSTGRES` name (loaded
//! beforehand with `tally demo --db …`); otherwise a fresh SQLite database (and a PostgreSQL
//! one when `TEST_DATABASE_URL` is set) loaded with demo data at `TALLY_BENCH_SCALE`
//! (default 1). `TALLY_BENCH_TIMEOUT` (seconds, default 60) bounds each request; a request
//! that exceeds it is listed as such.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use tally::query::{Item, QuerySpec, Selected};
use tally::semantic::{DimType, Model};

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Every request of the enumeration: (label, spec).
fn requests(model: &Model, at: DateTime<Utc>) -> Vec<(String, QuerySpec)> {
    let mut out = Vec::new();
    for m in &model.metrics {
        let metric = Selected {
            key: m.name.clone(),
            item: Item::Metric {
                name: m.name.clone(),
            },
        };
        let mut s = QuerySpec::new(model.name.clone(), at);
        s.fields.push(metric.clone());
        out.push((format!("{}.{}", model.name, m.name), s));
        for d in model.reachable_dimensions(&m.name) {
            if d.dim_type != DimType::Time {
                continue;
            }
            for g in &d.granularities {
                let mut s = QuerySpec::new(model.name.clone(), at);
                s.fields.push(Selected {
                    key: d.name.clone(),
                    item: Item::Dimension {
                        name: d.name.clone(),
                        granularity: Some(*g),
                    },
                });
                s.fields.push(metric.clone());
                out.push((
                    format!("{}.{} by {}({})", model.name, m.name, d.name, g.as_str()),
                    s,
                ));
            }
        }
    }
    out
}

enum Outcome {
    Ran(Duration, usize),
    Rejected(String),
    TimedOut(Duration),
}

async fn bench(backend: &str, conn: DatabaseConnection, timeout: Duration) {
    let models: Vec<Arc<Model>> = tally::semantic::load_embedded()
        .expect("shipped models")
        .into_iter()
        .map(Arc::new)
        .collect();
    let engine = tally::engine::Engine::new(conn, models.clone());
    let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let started = Instant::now();
    let mut results: Vec<(String, Outcome)> = Vec::new();
    for model in &models {
        for (label, spec) in requests(model, at) {
            if let Err(e) = spec.check(model) {
                results.push((label, Outcome::Rejected(e.code().to_owned())));
                continue;
            }
            let t = Instant::now();
            let session = engine.session();
            let run = engine.run::<serde_json::Value>(&session, &spec);
            let outcome = match tokio::time::timeout(timeout, run).await {
                Ok(Ok(table)) => Outcome::Ran(t.elapsed(), table.rows.len()),
                Ok(Err(e)) => panic!("{backend}: {label}: {e:?}"),
                Err(_) => Outcome::TimedOut(t.elapsed()),
            };
            results.push((label, outcome));
        }
    }
    let total = started.elapsed();
    let mut ran: Vec<(&str, Duration, String)> = results
        .iter()
        .filter_map(|(l, o)| match o {
            Outcome::Ran(d, rows) => Some((l.as_str(), *d, format!("{rows} rows"))),
            Outcome::TimedOut(d) => Some((l.as_str(), *d, "TIMED OUT".to_owned())),
            Outcome::Rejected(_) => None,
        })
        .collect();
    ran.sort_by_key(|r| std::cmp::Reverse(r.1));
    let rejected: Vec<String> = results
        .iter()
        .filter_map(|(l, o)| match o {
            Outcome::Rejected(code) => Some(format!("{l} ({code})")),
            _ => None,
        })
        .collect();
    println!(
        "{backend}: {} requests run in {total:.2?} ({} rejected by the check)",
        ran.len(),
        rejected.len()
    );
    println!("{backend}: the 10 slowest:");
    for (label, d, what) in ran.iter().take(10) {
        println!("  {:>10.1} ms  {label}  ({what})", d.as_secs_f64() * 1000.0);
    }
    let over: Vec<&&str> = ran
        .iter()
        .filter(|(_, d, _)| *d > Duration::from_secs(2))
        .map(|(l, _, _)| l)
        .collect();
    println!("{backend}: {} requests above 2 s: {over:?}", over.len());
    if std::env::var("TALLY_BENCH_VERBOSE").is_ok() {
        println!("{backend}: rejected: {}", rejected.join(", "));
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let timeout = Duration::from_secs_f64(env_f64("TALLY_BENCH_TIMEOUT", 60.0));
    rt.block_on(async {
        let named: Vec<(&str, String)> = [
            ("sqlite", std::env::var("TALLY_BENCH_SQLITE").ok()),
            ("postgres", std::env::var("TALLY_BENCH_POSTGRES").ok()),
        ]
        .into_iter()
        .filter_map(|(b, u)| u.map(|u| (b, u)))
        .collect();
        if !named.is_empty() {
            for (backend, url) in named {
                let conn = tally::db::connect(&url).await.expect("connect");
                bench(backend, conn, timeout).await;
            }
            return;
        }
        let scale = env_f64("TALLY_BENCH_SCALE", 1.0);
        for db in common::TestDb::all().await {
            let started = Instant::now();
            let opts = tally::demo::DemoOptions { scale, seed: 42 };
            for m in tally::semantic::load_embedded().expect("shipped models") {
                tally::cli::load_demo(&db.conn, &m.name, &opts, false)
                    .await
                    .expect("demo data");
            }
            println!(
                "{}: demo data at scale {scale} loaded in {:.1?}",
                db.backend,
                started.elapsed()
            );
            bench(db.backend, db.conn.clone(), timeout).await;
            db.cleanup().await;
        }
    });
}
