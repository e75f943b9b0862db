//! What the comparison benchmarks share: how they are driven (named databases or fresh ones
//! with demo data), their settings, and the median of timings.
//!
//! - `TALLY_BENCH_SQLITE` / `TALLY_BENCH_POSTGRES`: databases already holding the data to
//!   measure; when neither is set, a fresh SQLite database (and PostgreSQL when
//!   `TEST_DATABASE_URL` is set) gets demo data at `TALLY_BENCH_SCALE` (default 1);
//! - `TALLY_BENCH_ITERS`: timed runs per side.

use std::future::Future;
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;

use super::common;

/// `TALLY_BENCH_ITERS`, else `default`.
pub fn iters(default: usize) -> usize {
    std::env::var("TALLY_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The median of `v`.
#[allow(dead_code)] // each benchmark compiles this module; not every one takes medians
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `bench(backend, conn)` on the databases `TALLY_BENCH_SQLITE` and
/// `TALLY_BENCH_POSTGRES` name, or, when neither is set, on fresh ones holding the demo data
/// of `model` at `TALLY_BENCH_SCALE` (its load time printed).
#[allow(dead_code)] // each benchmark compiles this module; some drive several models
pub fn run<F, Fut>(model: &'static str, bench: F)
where
    F: Fn(&'static str, DatabaseConnection) -> Fut,
    Fut: Future<Output = ()>,
{
    run_models(&[model], bench)
}

/// [`run`] over the demo data of several `models` (fresh databases hold all of them).
pub fn run_models<F, Fut>(models: &[&'static str], bench: F)
where
    F: Fn(&'static str, DatabaseConnection) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
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
                bench(backend, conn).await;
            }
            return;
        }
        let scale: f64 = std::env::var("TALLY_BENCH_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        for db in common::TestDb::all().await {
            let opts = tally::demo::DemoOptions { scale, seed: 42 };
            for model in models {
                let started = Instant::now();
                tally::cli::load_demo(&db.conn, model, &opts, false)
                    .await
                    .expect("demo data");
                println!(
                    "{}: {model} demo data at scale {scale} loaded in {:.1} s",
                    db.backend,
                    started.elapsed().as_secs_f64()
                );
            }
            // a fresh pool: SQLite's planner reads ANALYZE's statistics only on connections
            // opened after it
            let conn = tally::db::connect(&db.url).await.expect("connect");
            bench(db.backend, conn.clone()).await;
            conn.close().await.ok();
            db.cleanup().await;
        }
    });
}
