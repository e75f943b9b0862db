//! What period-over-period, grain-to-date and shared-time-axis values cost (a bench binary
//! that prints its numbers):
//!
//! ```sh
//! cargo bench --bench time_compare
//! TALLY_BENCH_SCALE=10 TEST_DATABASE_URL=postgres://… cargo bench --bench time_compare
//! ```
//!
//! On shop demo data (`TALLY_BENCH_SCALE`, default 1), on every backend, medians of
//! `TALLY_BENCH_ITERS` (default 20) interleaved GraphQL requests by day: the metrics alone;
//! with their previous-day and year-ago values and growths; with their month- and
//! year-to-date sums; and two tables on the shared time axis. Each compared request reads
//! the order lines once more per comparison, so its cost is a small multiple of the plain
//! request's.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

const CASES: [(&str, &str); 4] = [
    ("plain", "d: orderTime(granularity: DAY) netSales orders"),
    (
        "previous + year ago",
        "d: orderTime(granularity: DAY) netSales orders p: netSales(offset: PREVIOUS_PERIOD) g: netSalesGrowth y: netSalesGrowth(offset: YEAR_AGO) po: orders(offset: PREVIOUS_PERIOD)",
    ),
    (
        "month + year to date",
        "d: orderTime(granularity: DAY) netSales orders mtd: netSales(toDate: MONTH) ytd: netSales(toDate: YEAR)",
    ),
    (
        "metricTime, two tables",
        "d: metricTime(granularity: DAY) netSales orders inventoryChange",
    ),
];

async fn run() {
    let scale: f64 = std::env::var("TALLY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let n: usize = std::env::var("TALLY_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for db in common::TestDb::all().await {
        let opts = tally::demo::DemoOptions { scale, seed: 42 };
        tally::cli::load_demo(&db.conn, "shop", &opts, false)
            .await
            .unwrap();
        let schema = tally::graphql::build(Some(db.conn.clone())).unwrap();
        let queries: Vec<String> = CASES
            .iter()
            .map(|(_, sel)| {
                format!(r#"{{ shop {{ metrics(asOf: "2025-01-01T00:00:00Z") {{ {sel} }} }} }}"#)
            })
            .collect();
        let mut rows = Vec::new();
        for q in &queries {
            let r = schema.execute(q.as_str()).await;
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            let v = serde_json::to_value(&r).unwrap();
            rows.push(
                v["data"]["shop"]["metrics"]
                    .as_array()
                    .map_or(0, |a| a.len()),
            );
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); queries.len()];
        // interleaved, so that drifts of the machine hit every case alike
        for _ in 0..n {
            for (q, t) in queries.iter().zip(times.iter_mut()) {
                let s = Instant::now();
                std::hint::black_box(schema.execute(q.as_str()).await);
                t.push(s.elapsed());
            }
        }
        let medians: Vec<Duration> = times
            .into_iter()
            .map(|mut v| {
                v.sort();
                v[v.len() / 2]
            })
            .collect();
        for (((name, _), m), r) in CASES.iter().zip(&medians).zip(&rows) {
            println!(
                "{} scale {scale}: {name}: {r} rows, median of {n} {m:?} ({:.2}x plain)",
                db.backend,
                m.as_secs_f64() / medians[0].as_secs_f64()
            );
        }
        db.cleanup().await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}
