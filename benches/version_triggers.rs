//! The cost of the data-version triggers (docs/CACHING.md) on a load (a bench binary that
//! prints its numbers): the demo data of every model at `TALLY_BENCH_SCALE` (default 1)
//! loaded through tally's loader into a fresh, migrated PostgreSQL database, with the
//! triggers tally's migration installs and without them (dropped after the migration; the
//! rollup builder puts them back on the few rollup tables it builds, in both cases),
//! `TALLY_BENCH_ITERS` times each (default 2), interleaved; medians.
//!
//! ```sh
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench version_triggers
//! ```
//!
//! PostgreSQL only (SQLite needs no triggers: its `data_version` is exact): the server
//! `TEST_DATABASE_URL` names, on which it creates and drops its databases.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait as _;

/// Loads every model's demo data into a fresh database, with or without the triggers; the
/// time of the loads and the rows they wrote.
async fn load(scale: f64, triggers: bool) -> (Duration, u64) {
    let db = common::TestDb::postgres()
        .await
        .expect("TEST_DATABASE_URL names the PostgreSQL server to measure on");
    if !triggers {
        for ns in tally::db::MODELS {
            db.conn
                .execute_unprepared(&format!(
                    "DROP FUNCTION \"{ns}\".\"tally_data_version\"() CASCADE; \
                     DROP TABLE \"{ns}\".\"tally_data_version\""
                ))
                .await
                .expect("dropping the triggers");
        }
    }
    let opts = tally::demo::DemoOptions { scale, seed: 42 };
    let started = Instant::now();
    let mut rows = 0;
    for model in tally::db::MODELS {
        let report = tally::demo::load_demo(&db.conn, model, &opts, false)
            .await
            .expect("demo data");
        rows += report
            .tables
            .iter()
            .map(|t| t.rows_inserted + t.rows_replaced)
            .sum::<u64>();
    }
    let took = started.elapsed();
    // the triggers were there (or not) during the whole load (the rollup builder installs
    // them on the rollup tables it builds, in both cases)
    let installed = db
        .conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid \
             WHERE t.tgname = 'tally_data_version' AND c.relname NOT LIKE 'tally\\_rollup\\_%'",
        ))
        .await
        .expect("pg_trigger")
        .and_then(|r| r.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0);
    assert_eq!(installed > 0, triggers, "{installed} triggers");
    if triggers {
        // how many writing statements the triggers counted
        let sums = tally::db::MODELS
            .iter()
            .map(|ns| format!("SELECT sum(writes) AS n FROM \"{ns}\".\"tally_data_version\""))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let counted = db
            .conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT sum(n)::bigint FROM ({sums}) AS s"),
            ))
            .await
            .expect("the counters")
            .and_then(|r| r.try_get_by_index::<i64>(0).ok())
            .unwrap_or(0);
        println!("  the triggers counted {counted} writing statements");
    }
    db.cleanup().await;
    (took, rows)
}

fn main() {
    let scale: f64 = std::env::var("TALLY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let iters: usize = std::env::var("TALLY_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        let mut rows = 0;
        for i in 0..iters {
            // interleaved, the first side alternating
            for triggers in [i % 2 == 0, i % 2 != 0] {
                let (took, n) = load(scale, triggers).await;
                rows = n;
                println!(
                    "run {}: {} triggers: {:.2} s ({n} rows)",
                    i + 1,
                    if triggers { "with" } else { "without" },
                    took.as_secs_f64()
                );
                if triggers {
                    with.push(took);
                } else {
                    without.push(took);
                }
            }
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (w, wo) = (median(&mut with), median(&mut without));
        println!(
            "postgres: demo load of every model at scale {scale} ({rows} rows), median of {iters}: \
             with triggers {:.2} s, without {:.2} s ({:+.1} %)",
            w.as_secs_f64(),
            wo.as_secs_f64(),
            (w.as_secs_f64() / wo.as_secs_f64() - 1.0) * 100.0
        );
    });
}
