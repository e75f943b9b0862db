//! tally's funnel against the same funnel written by hand in SQL (a bench binary that prints
//! its numbers): the web model's 4-step PURCHASE funnel (page view → add to cart → checkout →
//! shipped, same session and product), grouped by product, with the median seconds between
//! steps, as of 2026-01-01.
//!
//! ```sh
//! tally demo --db postgres://postgres@127.0.0.1/demo --model web --scale 10
//! TALLY_BENCH_POSTGRES=postgres://postgres@127.0.0.1/demo cargo bench --bench funnel
//! ```
//!
//! tally's side is the whole engine path (`Engine::run`: check, plan cache, bind, run in a
//! session, read every value); the hand-written side is one statement run with the same
//! driver (`query_all_raw`). Interleaved, `TALLY_BENCH_ITERS` times (default 15); medians.
//! Both must count the same journeys per product and step. Without `TALLY_BENCH_POSTGRES`
//! (or with `TALLY_BENCH_SQLITE`), fresh databases are loaded with the web demo data at
//! `TALLY_BENCH_SCALE` (default 1).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use tally::query::{FunnelSpec, FunnelValue, Item, QuerySpec, Selected, WindowPer};

/// The funnel by hand: each step's events, the earliest page view per (session, product),
/// then per step the earliest event strictly after the previous one; per product the counts
/// and the median seconds between steps.
fn hand_written(backend: &str) -> String {
    let (p, epoch, median) = if backend == "postgres" {
        (
            "$1",
            "CAST(EXTRACT(EPOCH FROM date_trunc('second', {})) AS BIGINT)",
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY {})",
        )
    } else {
        ("?1", "unixepoch({})", "")
    };
    let e = |c: &str| epoch.replace("{}", c);
    let ev = |extra_join: &str, product: &str, kind: &str, distinct: &str| {
        format!(
            "SELECT {distinct}e.session_id AS s, {product} AS p, {} AS t FROM web.events AS e {extra_join}\n  WHERE e.event_type = '{kind}' AND {product} IS NOT NULL AND e.created_at <= {p}",
            e("e.created_at")
        )
    };
    let items = "JOIN web.order_items AS oi ON oi.order_id = e.order_id";
    let step = |k: usize, src: &str| {
        format!(
            "f{k} AS (SELECT a.s, a.p, MIN(x.t) AS t, MIN(x.t) - a.t AS dt FROM f{} AS a JOIN {src} AS x ON x.s = a.s AND x.p = a.p AND x.t > a.t GROUP BY a.s, a.p, a.t)",
            k - 1
        )
    };
    let med = |k: usize| {
        if median.is_empty() {
            // SQLite has no percentile_cont: the middle of each product's sorted values
            format!(
                "(SELECT AVG(dt) FROM (SELECT f{k}.dt, ROW_NUMBER() OVER (ORDER BY f{k}.dt) AS rn, COUNT(*) OVER () AS c FROM f1 AS g JOIN f{k} ON f{k}.s = g.s AND f{k}.p = g.p WHERE g.p = f1.p) AS m WHERE rn IN ((c + 1) / 2, (c + 2) / 2))"
            )
        } else {
            median.replace("{}", &format!("f{k}.dt"))
        }
    };
    let grouped = if median.is_empty() {
        // per product in a subquery (the medians are correlated)
        format!(
            "SELECT pr.name, COUNT(*), COUNT(f2.s), COUNT(f3.s), COUNT(f4.s), {}, {}, {} FROM f1 LEFT JOIN f2 ON f2.s = f1.s AND f2.p = f1.p LEFT JOIN f3 ON f3.s = f1.s AND f3.p = f1.p LEFT JOIN f4 ON f4.s = f1.s AND f4.p = f1.p LEFT JOIN web.products AS pr ON pr.product_id = f1.p GROUP BY pr.name, f1.p ORDER BY pr.name",
            med(2),
            med(3),
            med(4)
        )
    } else {
        format!(
            "SELECT pr.name, COUNT(*), COUNT(f2.s), COUNT(f3.s), COUNT(f4.s), {}, {}, {} FROM f1 LEFT JOIN f2 ON f2.s = f1.s AND f2.p = f1.p LEFT JOIN f3 ON f3.s = f1.s AND f3.p = f1.p LEFT JOIN f4 ON f4.s = f1.s AND f4.p = f1.p LEFT JOIN web.products AS pr ON pr.product_id = f1.p GROUP BY pr.name ORDER BY pr.name COLLATE \"C\"",
            med(2),
            med(3),
            med(4)
        )
    };
    format!(
        "WITH v AS ({}),\na AS ({}),\nc AS ({}),\nsh AS ({}),\nf1 AS (SELECT s, p, MIN(t) AS t FROM v GROUP BY s, p),\n{},\n{},\n{}\n{grouped}",
        ev("", "e.product_id", "page_view", ""),
        ev("", "e.product_id", "add_to_cart", ""),
        ev(items, "oi.product_id", "checkout", ""),
        ev(items, "oi.product_id", "package_shipped", "DISTINCT "),
        step(2, "a"),
        step(3, "c"),
        step(4, "sh"),
    )
}

fn spec(at: DateTime<Utc>) -> QuerySpec {
    let mut spec = QuerySpec::funnel_of(
        "web",
        FunnelSpec {
            name: "PURCHASE".into(),
            steps: Vec::new(),
            within: None,
            per: WindowPer::Step,
            step_filters: Vec::new(),
        },
        at,
    );
    spec.fields.push(Selected {
        key: "productName".into(),
        item: Item::Dimension {
            name: "productName".into(),
            granularity: None,
        },
    });
    for (k, v) in [
        ("step", FunnelValue::Step),
        ("entities", FunnelValue::Entities),
        (
            "conversionFromPrevious",
            FunnelValue::ConversionFromPrevious,
        ),
        (
            "medianSecondsFromPrevious",
            FunnelValue::MedianSecondsFromPrevious,
        ),
    ] {
        spec.fields.push(Selected {
            key: k.into(),
            item: Item::Funnel(v),
        });
    }
    spec
}

async fn bench(backend: &str, conn: &DatabaseConnection, iters: usize) {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let engine = tally::engine::Engine::with_embedded_models(conn.clone()).unwrap();
    let spec = spec(at);
    let db = conn.get_database_backend();
    let hand = hand_written(backend);
    let hand_stmt =
        || Statement::from_sql_and_values(db, &hand, vec![Value::ChronoDateTimeUtc(Some(at))]);
    let run_tally = || async {
        let session = engine.session();
        engine
            .run::<serde_json::Value>(&session, &spec)
            .await
            .unwrap()
    };
    // the same journeys per product and step
    let t = run_tally().await;
    let mut mine: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &t.rows {
        mine.entry(r[0].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(r[2].as_i64().unwrap());
    }
    let h = conn.query_all_raw(hand_stmt()).await.unwrap();
    let mut theirs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &h {
        let name: Option<String> = r.try_get_by_index(0).unwrap();
        theirs.insert(
            name.unwrap_or_default(),
            (1..=4)
                .map(|i| r.try_get_by_index::<i64>(i).unwrap())
                .collect(),
        );
    }
    assert_eq!(
        mine, theirs,
        "{backend}: tally and the hand-written SQL disagree"
    );
    let journeys: i64 = mine.values().map(|v| v[0]).sum();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..iters {
        let s = Instant::now();
        std::hint::black_box(run_tally().await);
        ta.push(s.elapsed());
        let s = Instant::now();
        std::hint::black_box(conn.query_all_raw(hand_stmt()).await.unwrap());
        tb.push(s.elapsed());
    }
    let (ta, tb) = (harness::median(&mut ta), harness::median(&mut tb));
    println!(
        "{backend}: web PURCHASE funnel (4 steps) by product, {} products, {journeys} journeys; medians of {iters}: tally {:.2} ms, hand-written SQL {:.2} ms, ratio {:.2}",
        mine.len(),
        ta.as_secs_f64() * 1000.0,
        tb.as_secs_f64() * 1000.0,
        ta.as_secs_f64() / tb.as_secs_f64()
    );
}

fn main() {
    let iters = harness::iters(15);
    harness::run("web", |backend, conn| async move {
        bench(backend, &conn, iters).await;
    });
}
