//! Raw rows against the shop's rollups (a bench binary that prints its
//! numbers): "net sales and order lines by day" and "net sales and orders by day" (a
//! distinct count, from `daily_totals`) as of an instant within a day, through
//! `Engine::run`, on every backend: the database's time (explain's `dbMillis`) and the
//! end-to-end time of the call (checking, planning or the plan cache, binding, running,
//! reading the rows; no result cache).
//!
//! ```sh
//! cargo bench --bench rollup
//! TALLY_BENCH_SCALE=10 cargo bench --bench rollup
//! TALLY_BENCH_SQLITE=sqlite:///tmp/demo.db TALLY_BENCH_POSTGRES=postgres://postgres@127.0.0.1/demo \
//!     cargo bench --bench rollup
//! ```
//!
//! Databases: `TALLY_BENCH_SQLITE` / `TALLY_BENCH_POSTGRES` (demo databases loaded
//! beforehand; their rollups are refreshed first, so these must be databases tally may write
//! to), else fresh ones (SQLite, and PostgreSQL when `TEST_DATABASE_URL` is set) loaded with
//! the shop's demo data at `TALLY_BENCH_SCALE` (default 1). Each request runs
//! `TALLY_BENCH_ITERS` times (default 30), interleaved; medians. Both must give the same
//! rows.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use tally::engine::{Engine, Table};
use tally::query::{Item, QuerySpec, Selected};
use tally::semantic::Granularity;

fn spec(metrics: &[&str]) -> QuerySpec {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2025-06-15T12:34:56Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut spec = QuerySpec::new("shop", at);
    spec.fields.push(Selected {
        key: "day".into(),
        item: Item::Dimension {
            name: "orderTime".into(),
            granularity: Some(Granularity::Day),
        },
    });
    for m in metrics {
        spec.fields.push(Selected {
            key: (*m).into(),
            item: Item::Metric { name: (*m).into() },
        });
    }
    spec
}

/// One run: the answer, the database's milliseconds, the call's duration, the rollup used.
async fn once(engine: &Engine, spec: &QuerySpec) -> (Table, f64, Duration, Option<String>) {
    let session = engine.session();
    let started = Instant::now();
    let table: Table = engine.run(&session, spec).await.expect("answer");
    let took = started.elapsed();
    let last = session.explained().pop().expect("explained");
    let used = last.rollup.and_then(|r| r.used);
    (table, last.db_millis, took, used)
}

async fn bench(backend: &str, conn: &DatabaseConnection, iters: usize) {
    let models = tally::semantic::load_embedded().expect("models");
    let refreshed = tally::rollup::refresh_all(conn, &models, false)
        .await
        .expect("rollups refreshed");
    for r in refreshed {
        println!("{backend}: rollup {r}");
    }
    let shop = models.iter().find(|m| m.name == "shop").expect("shop");
    for s in tally::rollup::statuses(conn, shop)
        .await
        .expect("status")
        .unwrap_or_default()
    {
        println!(
            "{backend}: rollup shop.{}: {} rows from {} source rows, built in {} ms",
            s.name, s.row_count, s.source_rows, s.build_millis
        );
    }
    let raw = Engine::with_embedded_models(conn.clone())
        .expect("engine")
        .without_rollups();
    let rolled = Engine::with_embedded_models(conn.clone()).expect("engine");
    let cases: [(&str, &[&str], Option<&str>); 2] = [
        (
            "net sales and order lines by day",
            &["netSales", "orderLines"],
            None,
        ),
        (
            "net sales and orders by day",
            &["netSales", "orders"],
            Some("shop.daily_totals"),
        ),
    ];
    for (label, metrics, expected) in cases {
        case(
            backend,
            &raw,
            &rolled,
            label,
            &spec(metrics),
            expected,
            iters,
        )
        .await;
    }
}

/// One request, raw rows against the rollup: the same rows, the medians printed.
async fn case(
    backend: &str,
    raw: &Engine,
    rolled: &Engine,
    label: &str,
    spec: &QuerySpec,
    expected: Option<&str>,
    iters: usize,
) {
    let (a, _, _, used_a) = once(raw, spec).await;
    let (b, _, _, used_b) = once(rolled, spec).await;
    assert_eq!(used_a, None);
    let used = used_b.expect("a rollup answers");
    if let Some(e) = expected {
        assert_eq!(used, e, "{backend}: {label}");
    }
    assert_eq!(a.rows, b.rows, "{backend}: the same days and numbers");
    let (mut raw_db, mut raw_all, mut r_db, mut r_all) = (vec![], vec![], vec![], vec![]);
    for _ in 0..iters {
        let (_, db, all, _) = once(raw, spec).await;
        raw_db.push(db);
        raw_all.push(all.as_secs_f64() * 1000.0);
        let (_, db, all, _) = once(rolled, spec).await;
        r_db.push(db);
        r_all.push(all.as_secs_f64() * 1000.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw_db, raw_all, r_db, r_all) = (
        median(&mut raw_db),
        median(&mut raw_all),
        median(&mut r_db),
        median(&mut r_all),
    );
    println!(
        "{backend}: {label}, {} days; medians of {iters}: \
         raw rows db {raw_db:.2} ms / end to end {raw_all:.2} ms; \
         rollup {used} db {r_db:.2} ms / end to end {r_all:.2} ms; speed-up {:.1}x (db), {:.1}x (end to end)",
        a.rows.len(),
        raw_db / r_db,
        raw_all / r_all
    );
}

fn main() {
    let iters = harness::iters(30);
    harness::run("shop", |backend, conn| async move {
        bench(backend, &conn, iters).await;
    });
}
