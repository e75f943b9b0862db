//! Database time of tally's SQL against a hand-written equivalent (a bench binary that
//! prints its numbers): the shop's average order value by day — net sales
//! (`sum(amt - discount)`), orders (`count(distinct order_id)`) and their ratio — as of
//! 2026-01-01, on every backend.
//!
//! ```sh
//! cargo bench --bench aov_sql
//! TALLY_BENCH_SQLITE=sqlite:///tmp/demo.db TALLY_BENCH_POSTGRES=postgres://postgres@127.0.0.1/demo \
//!     cargo bench --bench aov_sql
//! ```
//!
//! Both statements run with the same driver (`query_all_raw`), interleaved, `TALLY_BENCH_ITERS`
//! times (default 30); medians. The two must return the same days. Databases as in the
//! `slowest` bench: `TALLY_BENCH_SQLITE` / `TALLY_BENCH_POSTGRES` (demo databases loaded
//! beforehand), else fresh ones loaded with the shop's demo data at `TALLY_BENCH_SCALE`
//! (default 1).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "harness/mod.rs"]
mod harness;

use std::time::Instant;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use tally::query::{Item, QuerySpec, Selected};
use tally::semantic::Granularity;

/// The hand-written statement: group on the native day, write it as text once per day.
fn hand_written(backend: &str) -> &'static str {
    if backend == "postgres" {
        r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "day", "net_sales", "orders",
       CAST("net_sales" AS DOUBLE PRECISION) / NULLIF("orders", 0) AS "aov"
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             SUM("amt" - "discount") AS "net_sales", COUNT(DISTINCT "order_id") AS "orders"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY 1"#
    } else {
        r#"SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "day",
       SUM("amt" - "discount") AS "net_sales", COUNT(DISTINCT "order_id") AS "orders",
       CAST(SUM("amt" - "discount") AS REAL) / NULLIF(COUNT(DISTINCT "order_id"), 0) AS "aov"
FROM "shop"."order_line" WHERE "order_time" <= ? GROUP BY 1
ORDER BY 1"#
    }
}

fn first_column(rows: &[sea_orm::QueryResult]) -> Vec<String> {
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("a day"))
        .collect()
}

async fn bench(backend: &str, conn: &DatabaseConnection, iters: usize) {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let model = tally::semantic::load_embedded()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "shop")
        .unwrap();
    let mut spec = QuerySpec::new("shop", at);
    spec.fields.push(Selected {
        key: "day".into(),
        item: Item::Dimension {
            name: "orderTime".into(),
            granularity: Some(Granularity::Day),
        },
    });
    for m in ["netSales", "orders", "aov"] {
        spec.fields.push(Selected {
            key: m.into(),
            item: Item::Metric { name: m.into() },
        });
    }
    spec.check(&model).unwrap();
    let dialect = tally::sql::dialect_of(conn);
    let plan = tally::plan::plan(&model, &spec, dialect.percentile_cont()).unwrap();
    let rendered = tally::sql::render(&plan, dialect).unwrap();
    let db = conn.get_database_backend();
    let tally_stmt = || Statement::from_sql_and_values(db, &rendered.sql, rendered.bind(&spec));
    let hand_stmt = || {
        Statement::from_sql_and_values(
            db,
            hand_written(backend),
            vec![Value::ChronoDateTimeUtc(Some(at))],
        )
    };
    let a = conn.query_all_raw(tally_stmt()).await.unwrap();
    let b = conn.query_all_raw(hand_stmt()).await.unwrap();
    assert_eq!(
        first_column(&a),
        first_column(&b),
        "{backend}: the two statements return different days"
    );
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..iters {
        let s = Instant::now();
        std::hint::black_box(conn.query_all_raw(tally_stmt()).await.unwrap());
        ta.push(s.elapsed());
        let s = Instant::now();
        std::hint::black_box(conn.query_all_raw(hand_stmt()).await.unwrap());
        tb.push(s.elapsed());
    }
    let (ta, tb) = (harness::median(&mut ta), harness::median(&mut tb));
    println!(
        "{backend}: AOV by day, {} days; medians of {iters}: tally's SQL {:.2} ms, hand-written {:.2} ms, ratio {:.2}",
        a.len(),
        ta.as_secs_f64() * 1000.0,
        tb.as_secs_f64() * 1000.0,
        ta.as_secs_f64() / tb.as_secs_f64()
    );
}

fn main() {
    let iters = harness::iters(30);
    harness::run("shop", |backend, conn| async move {
        bench(backend, &conn, iters).await;
    });
}
