//! Benchmark: what row policies cost. The same GraphQL fields answered unscoped and for a
//! tenant's caller (gym: one branch; saas: ten users; shop: one store) over the demo data of
//! the gym, saas and shop models, on PostgreSQL and SQLite.
//!
//! ```text
//! cargo bench --bench policies
//! ```
//!
//! Settings (environment):
//! - `POLICY_BENCH_SCALE`: the demo scale (default `1`: about 10 000 users per model);
//! - `POLICY_BENCH_RUNS`: timed runs per field and caller (default 5; minimum and median
//!   are printed);
//! - `TEST_DATABASE_URL`: PostgreSQL is timed too when it is set (a fresh database is created
//!   on its server and dropped afterwards, as the tests do).
//!
//! Each backend gets a fresh database (tests/common's `TestDb`), loaded with the demo.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tally::demo::DemoOptions;
use tally::engine::{Caller, RequestScope};

/// The fields timed.
const FIELDS: &[(&str, &str)] = &[
    (
        "gym metrics",
        "{ gym { metrics(asOf: \"2025-06-01T00:00:00Z\") { signupTime(granularity: MONTH) leads clients conversionRate } } }",
    ),
    (
        "gym rows",
        "{ gym { leadConversions(asOf: \"2025-06-01T00:00:00Z\", limit: 100) { userId branchId leadStatus } } }",
    ),
    (
        "shop metrics",
        "{ shop { metrics(asOf: \"2025-06-01T00:00:00Z\") { orderTime(granularity: MONTH) netSales orders } } }",
    ),
    (
        "saas stageCounts",
        "{ saas { stageCounts(asOf: \"2025-06-01T00:00:00Z\") { stage count } } }",
    ),
    (
        "saas users",
        "{ saas { users(asOf: \"2025-06-01T00:00:00Z\", limit: 20) { totalCount edges { node { userId stage shops { shopId } } } } } }",
    ),
];

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let scale: f64 = env("POLICY_BENCH_SCALE", "1").parse().expect("a scale");
        let runs: usize = env("POLICY_BENCH_RUNS", "5").parse().unwrap_or(5).max(1);
        for db in common::TestDb::all().await {
            bench(db.backend, &db.conn, scale, runs).await;
            db.cleanup().await;
        }
    });
}

async fn first_strings(db: &DatabaseConnection, sql: &str, n: usize) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect(sql);
    rows.iter()
        .take(n)
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect()
}

/// Loads the demo, then times every field unscoped and for a tenant.
async fn bench(backend: &str, db: &DatabaseConnection, scale: f64, runs: usize) {
    let started = Instant::now();
    for m in ["saas", "gym", "shop"] {
        tally::demo::load_demo(db, m, &DemoOptions { scale, seed: 42 }, false)
            .await
            .expect("load demo");
    }
    println!("{backend}: loaded scale {scale} in {:?}", started.elapsed());
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "branch_id".to_owned(),
        first_strings(
            db,
            "SELECT branch_id FROM \"gym\".\"dim_branch\" ORDER BY branch_id",
            1,
        )
        .await,
    );
    attributes.insert(
        "user_ids".to_owned(),
        first_strings(
            db,
            "SELECT DISTINCT user_id FROM \"saas\".\"payments\" ORDER BY user_id",
            10,
        )
        .await,
    );
    attributes.insert(
        "store_id".to_owned(),
        first_strings(
            db,
            "SELECT DISTINCT store_id FROM \"shop\".\"order_line\" ORDER BY store_id",
            1,
        )
        .await,
    );
    let tenant = Arc::new(Caller::new("tenant", attributes));
    let models = tally::semantic::load_embedded().expect("models");
    let schema = tally::graphql::build_with(Some(db.clone()), models).expect("schema");
    println!(
        "{backend}, scale {scale}, {runs} runs: field | unscoped min / median | tenant min / median"
    );
    for (name, query) in FIELDS {
        let mut times = [Vec::new(), Vec::new()];
        for (k, caller) in [None, Some(tenant.clone())].into_iter().enumerate() {
            // one warm-up run (plan cache, zones), then the timed runs
            for run in 0..=runs {
                let scope = RequestScope::for_caller("bench".to_owned(), None, caller.clone());
                let started = Instant::now();
                let resp = schema
                    .execute(async_graphql::Request::new(*query).data(scope))
                    .await;
                let took = started.elapsed();
                assert!(resp.errors.is_empty(), "{name}: {:?}", resp.errors);
                if run > 0 {
                    times[k].push(took);
                }
            }
        }
        let stat = |v: &mut Vec<Duration>| {
            v.sort();
            format!("{:>8.1?} / {:>8.1?}", v[0], v[v.len() / 2])
        };
        let (open, scoped) = times.split_at_mut(1);
        println!(
            "  {name:<17} | {} | {}",
            stat(&mut open[0]),
            stat(&mut scoped[0])
        );
    }
}
