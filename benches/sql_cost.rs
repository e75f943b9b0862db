//! Database time of tally's SQL against a hand-written equivalent, and against the SQL dbt
//! MetricFlow writes, for every shipped metric kind (a bench binary that prints its numbers).
//!
//! ```sh
//! cargo bench --bench sql_cost
//! TALLY_BENCH_SCALE=10 TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench sql_cost
//! TALLY_BENCH_SQLITE=sqlite:///tmp/demo.db TALLY_BENCH_POSTGRES=postgres://postgres@127.0.0.1/demo \
//!     cargo bench --bench sql_cost
//! ```
//!
//! One representative request per metric kind (by day where it has a time), as of
//! 2026-01-01 (after the whole demo calendar), on the shop, social and saas demo data. tally's
//! statement is the one `Engine::run` runs and explains (without rollups: the hand-written
//! statements read the source tables too), with its bound values; the hand-written one is
//! what an analyst would write for the same answer, and MetricFlow's (PostgreSQL only) is
//! read from `benches/metricflow/*.sql` (see the README there). The answers must be equal
//! (every cell; numbers to 1e-9 relative), so the comparison is honest; MetricFlow's
//! cumulative SQL also returns the days without orders (from its time spine), which are
//! left out of the comparison. The statements run with the same driver (`query_all_raw`),
//! in the same session settings (on PostgreSQL planned for their bound values; JIT off for
//! all of a case where tally turns it off for its statement), interleaved (tally's and the
//! hand-written one in alternating order), `TALLY_BENCH_ITERS` times (default 15); medians.
//! `TALLY_BENCH_CASE=text` runs only the kinds whose name contains the text (e.g.
//! `TALLY_BENCH_CASE="period average"`). `TALLY_BENCH_PRINT_SQL=1` prints tally's statements.
//!
//! Databases as in the `slowest` bench: `TALLY_BENCH_SQLITE` / `TALLY_BENCH_POSTGRES` (demo
//! databases with the shop, social and saas models loaded beforehand), else fresh ones loaded with
//! their demo data at `TALLY_BENCH_SCALE` (default 1). MetricFlow's cumulative SQL joins its
//! time spine: the bench creates `mf.time_spine_day` on PostgreSQL when it is missing.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, QueryResult, Statement, TransactionTrait, Value,
};

use tally::query::{Comparison, Item, OffsetCalculation, PeriodOffset, QuerySpec, Selected};
use tally::semantic::Granularity;

/// A selected field of a case's request.
enum F {
    /// A dimension (time dimensions with a granularity).
    Dim(&'static str, Option<Granularity>),
    /// A metric.
    Metric(&'static str),
    /// A metric in the previous bucket.
    Previous(&'static str),
    /// A metric summed to date.
    ToDate(&'static str, Granularity),
}

/// One metric kind: tally's request, the hand-written statements (`$1` / `?1`: asOf), and
/// MetricFlow's SQL where it has one.
struct Case {
    kind: &'static str,
    model: &'static str,
    fields: &'static [F],
    postgres: &'static str,
    sqlite: &'static str,
    metricflow: Option<&'static str>,
}

const DAY: Option<Granularity> = Some(Granularity::Day);
const MONTH: Option<Granularity> = Some(Granularity::Month);

/// The SQLite twin of a PostgreSQL SQL table text (`$1` is `?1` there).
fn sqlite_file(text: &str) -> String {
    text.replace("$1", "?1")
}

const INVENTORY_PG: &str = include_str!("../models/shop/inventory_on_hand.sql");
const INVENTORY_SQLITE: &str = include_str!("../models/shop/inventory_on_hand.sqlite.sql");

fn cases() -> Vec<Case> {
    vec![
        Case {
            kind: "simple: sum, count",
            model: "shop",
            fields: &[
                F::Dim("orderTime", DAY),
                F::Metric("netSales"),
                F::Metric("orderLines"),
            ],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "s", "n"
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             SUM("amt" - "discount") AS "s", COUNT(*) AS "n"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time"), SUM("amt" - "discount"), COUNT(*)
FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1 ORDER BY 1"#,
            metricflow: None,
        },
        Case {
            kind: "simple: count_distinct",
            model: "shop",
            fields: &[
                F::Dim("orderTime", DAY),
                F::Metric("orders"),
                F::Metric("customers"),
            ],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "o", "c"
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             COUNT(DISTINCT "order_id") AS "o", COUNT(DISTINCT "customer_id") AS "c"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time"), COUNT(DISTINCT "order_id"), COUNT(DISTINCT "customer_id")
FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1 ORDER BY 1"#,
            metricflow: None,
        },
        Case {
            kind: "simple: avg",
            model: "shop",
            fields: &[F::Dim("orderTime", DAY), F::Metric("averageUnitPrice")],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "a"
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             AVG("unit_price_at_purchase") AS "a"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time"), AVG("unit_price_at_purchase")
FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1 ORDER BY 1"#,
            metricflow: None,
        },
        Case {
            kind: "simple: median",
            model: "shop",
            fields: &[F::Dim("orderTime", DAY), F::Metric("medianLineNetSales")],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "m"
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             percentile_cont(0.5) WITHIN GROUP (ORDER BY "amt" - "discount") AS "m"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT "d", AVG("v")
FROM (SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "d", "amt" - "discount" AS "v",
             ROW_NUMBER() OVER (PARTITION BY strftime('%Y-%m-%dT00:00:00Z', "order_time") ORDER BY "amt" - "discount") AS "i",
             COUNT(*) OVER (PARTITION BY strftime('%Y-%m-%dT00:00:00Z', "order_time")) AS "n"
      FROM "shop"."order_line" WHERE "order_time" <= ?1) AS "r"
WHERE "i" IN (("n" + 1) / 2, ("n" + 2) / 2)
GROUP BY "d" ORDER BY "d""#,
            metricflow: None,
        },
        Case {
            kind: "ratio (aov)",
            model: "shop",
            fields: &[
                F::Dim("orderTime", DAY),
                F::Metric("netSales"),
                F::Metric("orders"),
                F::Metric("aov"),
            ],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "net_sales", "orders",
       CAST("net_sales" AS DOUBLE PRECISION) / NULLIF("orders", 0)
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             SUM("amt" - "discount") AS "net_sales", COUNT(DISTINCT "order_id") AS "orders"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time"),
       SUM("amt" - "discount"), COUNT(DISTINCT "order_id"),
       CAST(SUM("amt" - "discount") AS REAL) / NULLIF(COUNT(DISTINCT "order_id"), 0)
FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1 ORDER BY 1"#,
            metricflow: Some(include_str!("metricflow/aov_by_day.sql")),
        },
        Case {
            kind: "derived",
            model: "shop",
            fields: &[F::Dim("orderTime", DAY), F::Metric("discountRate")],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), CAST("disc" AS DOUBLE PRECISION) / NULLIF("gross", 0)
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d",
             SUM("discount") AS "disc", SUM("amt") AS "gross"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time"), CAST(SUM("discount") AS REAL) / NULLIF(SUM("amt"), 0)
FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1 ORDER BY 1"#,
            metricflow: None,
        },
        Case {
            kind: "cumulative: running total",
            model: "shop",
            fields: &[F::Dim("orderTime", DAY), F::Metric("netSalesRunningTotal")],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), SUM("s") OVER (ORDER BY "d" ROWS UNBOUNDED PRECEDING)
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT "d", SUM("s") OVER (ORDER BY "d" ROWS UNBOUNDED PRECEDING)
FROM (SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            metricflow: Some(include_str!("metricflow/running_total_by_day.sql")),
        },
        Case {
            kind: "cumulative: trailing 7 days (sum)",
            model: "shop",
            fields: &[F::Dim("orderTime", DAY), F::Metric("netSalesTrailing7Days")],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       SUM("s") OVER (ORDER BY "d" RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW)
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT "d", SUM("s") OVER (ORDER BY "j" RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)
FROM (SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "d",
             CAST(julianday(substr("order_time", 1, 10)) AS INTEGER) AS "j", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1, 2) AS "t"
ORDER BY "d""#,
            metricflow: Some(include_str!("metricflow/trailing_7_days_by_day.sql")),
        },
        Case {
            kind: "cumulative: trailing 30 days (distinct)",
            model: "social",
            fields: &[
                F::Dim("activityTime", DAY),
                F::Metric("activeUsersTrailing30Days"),
            ],
            postgres: r#"WITH "a" AS (
  SELECT date_trunc('day', "event_time" AT TIME ZONE 'UTC') AS "d", "viewer_id" AS "u"
  FROM "social"."content_event" WHERE "event_time" <= $1
  UNION
  SELECT date_trunc('day', "event_time" AT TIME ZONE 'UTC'), "user_id"
  FROM "social"."ad_event" WHERE "event_time" <= $1),
"days" AS (SELECT DISTINCT "d" FROM "a")
SELECT to_char("days"."d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), COUNT(DISTINCT "a"."u")
FROM "days" JOIN "a" ON "a"."d" > "days"."d" - INTERVAL '30 days' AND "a"."d" <= "days"."d"
GROUP BY "days"."d" ORDER BY "days"."d""#,
            sqlite: r#"WITH "a" AS (
  SELECT CAST(julianday(substr("event_time", 1, 10)) AS INTEGER) AS "j", "viewer_id" AS "u"
  FROM "social"."content_event" WHERE "event_time" <= ?1
  UNION
  SELECT CAST(julianday(substr("event_time", 1, 10)) AS INTEGER), "user_id"
  FROM "social"."ad_event" WHERE "event_time" <= ?1),
"days" AS (SELECT DISTINCT "j" FROM "a")
SELECT strftime('%Y-%m-%dT00:00:00Z', "days"."j" + 0.5), COUNT(DISTINCT "a"."u")
FROM "days" JOIN "a" ON "a"."j" > "days"."j" - 30 AND "a"."j" <= "days"."j"
GROUP BY "days"."j" ORDER BY "days"."j""#,
            metricflow: None,
        },
        Case {
            kind: "retention (churn rate)",
            model: "social",
            fields: &[F::Dim("activityTime", MONTH), F::Metric("churnRate")],
            postgres: r#"WITH "a" AS (
  SELECT date_trunc('month', "event_time" AT TIME ZONE 'UTC') AS "m", "viewer_id" AS "u"
  FROM "social"."content_event" WHERE "event_time" <= $1
  UNION
  SELECT date_trunc('month', "event_time" AT TIME ZONE 'UTC'), "user_id"
  FROM "social"."ad_event" WHERE "event_time" <= $1)
SELECT to_char("a"."m", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       CASE WHEN "a"."m" + INTERVAL '2 months' <= CAST($1 AS timestamptz) AT TIME ZONE 'UTC'
            THEN CAST(COUNT(*) FILTER (WHERE "n"."u" IS NULL) AS DOUBLE PRECISION) / COUNT(*) END
FROM "a" LEFT JOIN "a" AS "n" ON "n"."u" = "a"."u" AND "n"."m" = "a"."m" + INTERVAL '1 month'
GROUP BY "a"."m" ORDER BY "a"."m""#,
            sqlite: r#"WITH "a" AS (
  SELECT strftime('%Y-%m-01T00:00:00Z', "event_time") AS "m", "viewer_id" AS "u"
  FROM "social"."content_event" WHERE "event_time" <= ?1
  UNION
  SELECT strftime('%Y-%m-01T00:00:00Z', "event_time"), "user_id"
  FROM "social"."ad_event" WHERE "event_time" <= ?1)
SELECT "a"."m",
       CASE WHEN strftime('%Y-%m-%dT%H:%M:%SZ', "a"."m", '+2 months') <= ?1
            THEN CAST(SUM("n"."u" IS NULL) AS REAL) / COUNT(*) END
FROM "a" LEFT JOIN "a" AS "n" ON "n"."u" = "a"."u" AND "n"."m" = strftime('%Y-%m-01T00:00:00Z', "a"."m", '+1 month')
GROUP BY "a"."m" ORDER BY "a"."m""#,
            metricflow: None,
        },
        Case {
            kind: "period average (avg DAU)",
            model: "social",
            fields: &[
                F::Dim("activityTime", MONTH),
                F::Metric("averageDailyActiveUsers"),
            ],
            postgres: r#"WITH "a" AS (
  SELECT date_trunc('day', "event_time" AT TIME ZONE 'UTC') AS "d", "viewer_id" AS "u"
  FROM "social"."content_event" WHERE "event_time" <= $1
  UNION
  SELECT date_trunc('day', "event_time" AT TIME ZONE 'UTC'), "user_id"
  FROM "social"."ad_event" WHERE "event_time" <= $1),
"dau" AS (SELECT date_trunc('month', "d") AS "m", COUNT(*) AS "n" FROM "a" GROUP BY "d")
SELECT to_char("m", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       CAST(SUM("n") AS DOUBLE PRECISION) / EXTRACT(DAY FROM LEAST("m" + INTERVAL '1 month',
           date_trunc('day', CAST($1 AS timestamptz) AT TIME ZONE 'UTC') + INTERVAL '1 day') - "m")
FROM "dau" GROUP BY "m" ORDER BY "m""#,
            sqlite: r#"WITH "a" AS (
  SELECT substr("event_time", 1, 10) AS "d", "viewer_id" AS "u"
  FROM "social"."content_event" WHERE "event_time" <= ?1
  UNION
  SELECT substr("event_time", 1, 10), "user_id"
  FROM "social"."ad_event" WHERE "event_time" <= ?1),
"dau" AS (SELECT substr("d", 1, 7) || '-01' AS "m", COUNT(*) AS "n" FROM "a" GROUP BY "d")
SELECT "m" || 'T00:00:00Z',
       CAST(SUM("n") AS REAL) / (julianday(MIN(date("m", '+1 month'), date(?1, '+1 day'))) - julianday("m"))
FROM "dau" GROUP BY "m" ORDER BY "m""#,
            metricflow: None,
        },
        Case {
            kind: "SQL table (customer_value)",
            model: "shop",
            fields: &[
                F::Dim("firstOrderTime", MONTH),
                F::Metric("customerLifetimeValue"),
            ],
            postgres: r#"SELECT to_char("m", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), AVG("ns")
FROM (SELECT date_trunc('month', MIN("order_time") AT TIME ZONE 'UTC') AS "m", SUM("amt" - "discount") AS "ns"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY "customer_id") AS "c"
GROUP BY "m" ORDER BY "m""#,
            sqlite: r#"SELECT "m", AVG("ns")
FROM (SELECT strftime('%Y-%m-01T00:00:00Z', MIN("order_time")) AS "m", SUM("amt" - "discount") AS "ns"
      FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY "customer_id") AS "c"
GROUP BY "m" ORDER BY "m""#,
            metricflow: None,
        },
        Case {
            kind: "SQL table (inventory_on_hand)",
            model: "shop",
            fields: &[F::Dim("stockStoreId", None), F::Metric("inventoryOnHand")],
            postgres: "inventory",
            sqlite: "inventory",
            metricflow: None,
        },
        Case {
            kind: "segment (recencyBand)",
            model: "shop",
            fields: &[
                F::Dim("recencyBand", None),
                F::Metric("customersWithOrders"),
            ],
            postgres: r#"SELECT "band", COUNT(*)
FROM (SELECT CASE WHEN "days" <= 30 THEN '0-30 days' WHEN "days" <= 90 THEN '31-90 days'
                  WHEN "days" <= 365 THEN '91-365 days' ELSE 'over 365 days' END AS "band"
      FROM (SELECT FLOOR(EXTRACT(EPOCH FROM (CAST($1 AS timestamptz) - MAX("order_time"))) / 86400) AS "days"
            FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY "customer_id") AS "c") AS "b"
GROUP BY "band" ORDER BY "band""#,
            sqlite: r#"SELECT "band", COUNT(*)
FROM (SELECT CASE WHEN "days" <= 30 THEN '0-30 days' WHEN "days" <= 90 THEN '31-90 days'
                  WHEN "days" <= 365 THEN '91-365 days' ELSE 'over 365 days' END AS "band"
      FROM (SELECT (CAST(strftime('%s', ?1) AS INTEGER) - CAST(strftime('%s', MAX("order_time")) AS INTEGER)) / 86400 AS "days"
            FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY "customer_id") AS "c") AS "b"
GROUP BY "band" ORDER BY "band""#,
            metricflow: None,
        },
        Case {
            kind: "time axis (metricTime, 2 tables)",
            model: "shop",
            fields: &[
                F::Dim("metricTime", DAY),
                F::Metric("netSales"),
                F::Metric("inventoryChange"),
            ],
            postgres: r#"SELECT to_char(COALESCE("o"."d", "i"."d"), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), COALESCE("o"."s", 0), COALESCE("i"."q", 0)
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "o"
FULL JOIN (SELECT date_trunc('day', "event_time" AT TIME ZONE 'UTC') AS "d", SUM("quantity_change") AS "q"
      FROM "shop"."inventory_event" WHERE "event_time" <= $1 GROUP BY 1) AS "i" ON "i"."d" = "o"."d"
ORDER BY 1"#,
            sqlite: r#"SELECT COALESCE("o"."d", "i"."d"), COALESCE("o"."s", 0), COALESCE("i"."q", 0)
FROM (SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1) AS "o"
FULL JOIN (SELECT strftime('%Y-%m-%dT00:00:00Z', "event_time") AS "d", SUM("quantity_change") AS "q"
      FROM "shop"."inventory_event" WHERE "event_time" <= ?1 GROUP BY 1) AS "i" ON "i"."d" = "o"."d"
ORDER BY 1"#,
            metricflow: None,
        },
        Case {
            kind: "offset (previous period)",
            model: "shop",
            fields: &[
                F::Dim("orderTime", DAY),
                F::Metric("netSales"),
                F::Previous("netSales"),
            ],
            postgres: r#"WITH "s" AS (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1)
SELECT to_char("c"."d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "c"."s", COALESCE("p"."s", 0)
FROM "s" AS "c" LEFT JOIN "s" AS "p" ON "p"."d" = "c"."d" - INTERVAL '1 day'
ORDER BY "c"."d""#,
            sqlite: r#"WITH "s" AS (SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1)
SELECT "c"."d", "c"."s", COALESCE("p"."s", 0)
FROM "s" AS "c" LEFT JOIN "s" AS "p" ON "p"."d" = strftime('%Y-%m-%dT00:00:00Z', "c"."d", '-1 day')
ORDER BY "c"."d""#,
            metricflow: None,
        },
        Case {
            kind: "toDate (month to date)",
            model: "shop",
            fields: &[
                F::Dim("orderTime", DAY),
                F::Metric("netSales"),
                F::ToDate("netSales", Granularity::Month),
            ],
            postgres: r#"SELECT to_char("d", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), "s",
       SUM("s") OVER (PARTITION BY date_trunc('month', "d") ORDER BY "d")
FROM (SELECT date_trunc('day', "order_time" AT TIME ZONE 'UTC') AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= $1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            sqlite: r#"SELECT "d", "s", SUM("s") OVER (PARTITION BY substr("d", 1, 7) ORDER BY "d")
FROM (SELECT strftime('%Y-%m-%dT00:00:00Z', "order_time") AS "d", SUM("amt" - "discount") AS "s"
      FROM "shop"."order_line" WHERE "order_time" <= ?1 GROUP BY 1) AS "t"
ORDER BY "d""#,
            metricflow: None,
        },
        Case {
            kind: "conversion (customerChurnRate)",
            model: "saas",
            fields: &[
                F::Metric("customerChurnRate"),
                F::Metric("churnedCustomers"),
                F::Metric("customersMonthAgo"),
            ],
            postgres: CHURN,
            sqlite: CHURN,
            metricflow: None,
        },
    ]
}

/// The hand-written churn statement (both backends; `$1` / `?1`: asOf, `$2` / `?2`: one
/// month before it): the customers of one month before (the stage history's row of each
/// user holding that instant) left-joined to the churned users as of asOf. The stage
/// history is the table tally's `stages` tables read while it is fresh (the demo builds it).
const CHURN: &str = r#"SELECT CAST(COUNT("n"."user_id") AS DOUBLE PRECISION) / NULLIF(COUNT(*), 0), COUNT("n"."user_id"), COUNT(*)
FROM "saas"."tally_stage_history" AS "b"
LEFT JOIN "saas"."tally_stage_history" AS "n"
  ON "n"."user_id" = "b"."user_id" AND "n"."valid_from" <= $1 AND $1 < "n"."valid_to" AND "n"."stage" = 'CHURNED'
WHERE "b"."valid_from" <= $2 AND $2 < "b"."valid_to" AND "b"."stage" = 'CUSTOMER'"#;

/// The hand-written statement of `case` on `backend`.
fn hand_written(case: &Case, backend: &str) -> String {
    let pg = backend == "postgres";
    if case.postgres == "inventory" {
        let table = if pg {
            INVENTORY_PG.to_owned()
        } else {
            sqlite_file(INVENTORY_SQLITE)
        };
        return format!(
            "SELECT \"store_id\", SUM(\"quantity_on_hand\") FROM ({table}) AS \"i\" GROUP BY \"store_id\" ORDER BY \"store_id\""
        );
    }
    if case.postgres == CHURN {
        return if pg {
            CHURN
                .replace("$1", "CAST($1 AS timestamptz)")
                .replace("$2", "CAST($2 AS timestamptz)")
        } else {
            sqlite_file(CHURN).replace("$2", "?2")
        };
    }
    if pg { case.postgres } else { case.sqlite }.to_owned()
}

/// The values the hand-written statement of `case` binds: asOf, and for the churn one the
/// instant one month before (the SQLite stage history keeps instants as `+00:00` text).
fn hand_values(case: &Case, backend: &str, as_of: &Value) -> Vec<Value> {
    if case.postgres != CHURN {
        return vec![as_of.clone()];
    }
    let [at, before] = ["2026-01-01T00:00:00Z", "2025-12-01T00:00:00Z"];
    if backend == "postgres" {
        [at, before]
            .map(|t| Value::String(Some(t.to_owned())))
            .to_vec()
    } else {
        [at, before]
            .map(|t| Value::String(Some(t.replace('Z', "+00:00"))))
            .to_vec()
    }
}

fn spec_of(case: &Case, at: DateTime<Utc>) -> QuerySpec {
    let mut spec = QuerySpec::new(case.model, at);
    for (i, f) in case.fields.iter().enumerate() {
        let item = match f {
            F::Dim(name, granularity) => Item::Dimension {
                name: (*name).into(),
                granularity: *granularity,
            },
            F::Metric(name) => Item::Metric {
                name: (*name).into(),
            },
            F::Previous(name) => Item::Compared {
                name: (*name).into(),
                comparison: Comparison::Offset {
                    offset: PeriodOffset::PreviousPeriod,
                    calculation: OffsetCalculation::Value,
                },
            },
            F::ToDate(name, g) => Item::Compared {
                name: (*name).into(),
                comparison: Comparison::ToDate(*g),
            },
        };
        spec.fields.push(Selected {
            key: format!("f{i}"),
            item,
        });
    }
    spec
}

/// A cell of an answer, compared across statements.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Text(String),
    Num(f64),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (Cell::Num(a), Cell::Num(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            _ => false,
        }
    }
}

fn cell(r: &QueryResult, i: usize) -> Cell {
    fn num(x: Option<f64>) -> Cell {
        x.map_or(Cell::Null, Cell::Num)
    }
    if let Ok(v) = r.try_get_by_index::<Option<String>>(i) {
        return match v {
            None => Cell::Null,
            Some(s) => match s.parse::<f64>() {
                Ok(x) => Cell::Num(x),
                Err(_) => Cell::Text(s),
            },
        };
    }
    if let Ok(v) = r.try_get_by_index::<Option<i64>>(i) {
        return num(v.map(|x| x as f64));
    }
    if let Ok(v) = r.try_get_by_index::<Option<i32>>(i) {
        return num(v.map(f64::from));
    }
    if let Ok(v) = r.try_get_by_index::<Option<f64>>(i) {
        return num(v);
    }
    if let Ok(v) = r.try_get_by_index::<Option<rust_decimal::Decimal>>(i) {
        return num(v.and_then(|d| d.to_f64()));
    }
    panic!("column {i}: a type the bench does not read")
}

/// The cells of columns `columns` of every row, rows in the order of their first cell.
fn rows(result: &[QueryResult], columns: impl Iterator<Item = usize> + Clone) -> Vec<Vec<Cell>> {
    let mut out: Vec<Vec<Cell>> = result
        .iter()
        .map(|r| columns.clone().map(|i| cell(r, i)).collect())
        .collect();
    out.sort_by_key(|r| format!("{:?}", r[0]));
    out
}

/// Runs `stmt` and returns its rows and the time it took. On PostgreSQL, in a transaction
/// planned for the bound values (`plan_cache_mode = force_custom_plan`: the statement's own
/// cost, not the driver's reuse of a generic plan, which the engine chooses per statement by
/// measuring), and with `jit_off`, JIT off first (as the engine runs statements embedding SQL
/// tables).
async fn timed(
    conn: &DatabaseConnection,
    stmt: Statement,
    jit_off: Option<&str>,
) -> (Duration, Vec<QueryResult>) {
    let pg = conn.get_database_backend() == sea_orm::DbBackend::Postgres;
    if !pg && jit_off.is_none() {
        let s = Instant::now();
        let rows = conn.query_all_raw(stmt).await.expect("statement");
        return (s.elapsed(), rows);
    }
    let s = Instant::now();
    let txn = conn.begin().await.expect("begin");
    if pg {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await
            .expect("custom plans");
    }
    if let Some(sql) = jit_off {
        txn.execute_unprepared(sql).await.expect("jit off");
    }
    let rows = txn.query_all_raw(stmt).await.expect("statement");
    txn.commit().await.expect("commit");
    (s.elapsed(), rows)
}

/// MetricFlow's time spine (`benches/metricflow/models/time_spine_day.sql`), created where
/// it is missing.
async fn time_spine(conn: &DatabaseConnection) {
    conn.execute_unprepared(
        "CREATE SCHEMA IF NOT EXISTS \"mf\";
         CREATE TABLE IF NOT EXISTS \"mf\".\"time_spine_day\" AS
           SELECT CAST(d AS date) AS date_day
           FROM generate_series(date '2020-01-01', date '2027-12-31', interval '1 day') AS d",
    )
    .await
    .expect("MetricFlow's time spine");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench(backend: &str, conn: &DatabaseConnection, iters: usize) {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let pg = backend == "postgres";
    if pg {
        time_spine(conn).await;
    }
    let engine = tally::engine::Engine::with_embedded_models(conn.clone())
        .unwrap()
        .without_rollups();
    let dialect = engine.dialect();
    let db = conn.get_database_backend();
    let as_of = if pg {
        Value::ChronoDateTimeUtc(Some(at))
    } else {
        Value::String(Some("2026-01-01T00:00:00Z".to_owned()))
    };
    let mut table = Vec::new();
    let only = std::env::var("TALLY_BENCH_CASE").ok();
    for case in cases() {
        if only.as_deref().is_some_and(|o| !case.kind.contains(o)) {
            continue;
        }
        let spec = spec_of(&case, at);
        let model = engine.model(case.model).unwrap().clone();
        spec.check(&model).unwrap();
        let plan = tally::plan::plan(&model, &spec, dialect.percentile_cont()).unwrap();
        let rendered = tally::sql::render(&plan, dialect).unwrap();
        let params = rendered.bind(&spec);
        if std::env::var_os("TALLY_BENCH_PRINT_SQL").is_some() {
            println!(
                "{backend}: {}: tally's statement:\n{}\n",
                case.kind, rendered.sql
            );
        }
        // the statement and values are what the engine runs and explains
        let session = engine.session();
        let answer = engine
            .run::<serde_json::Value>(&session, &spec)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {}: {e:?}", case.kind));
        let explained = session.explained();
        assert_eq!(explained[0].sql.as_deref(), Some(rendered.sql.as_str()));
        assert_eq!(
            explained[0].params,
            params
                .iter()
                .map(tally::sql::value_json)
                .collect::<Vec<_>>()
        );
        let jit_off = if rendered.embeds_sql_tables {
            dialect.jit_off()
        } else {
            None
        };
        let columns = rendered.columns.len();
        let hand = hand_written(&case, backend);
        let tally_stmt = || Statement::from_sql_and_values(db, &rendered.sql, params.clone());
        let hand_values = hand_values(&case, backend, &as_of);
        let hand_stmt = || Statement::from_sql_and_values(db, &hand, hand_values.clone());
        let mf_stmt = |sql: &str| Statement::from_sql_and_values(db, sql, vec![]);
        let metricflow = case.metricflow.filter(|_| pg);

        let (_, a) = timed(conn, tally_stmt(), jit_off).await;
        let (_, b) = timed(conn, hand_stmt(), jit_off).await;
        let tally_rows = rows(&a, 0..columns);
        assert_eq!(tally_rows.len(), answer.rows.len());
        assert!(!tally_rows.is_empty(), "{backend}: {}: no rows", case.kind);
        assert_eq!(
            tally_rows,
            rows(&b, 0..columns),
            "{backend}: {}: tally's and the hand-written statement answer differently",
            case.kind
        );
        let mut extra_days = 0;
        if let Some(sql) = metricflow {
            // its days as text, for the comparison only (the timed statement is MetricFlow's own)
            let check = format!(
                "SELECT to_char(\"metric_time__day\", 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \"mf\".* FROM ({sql}) AS \"mf\""
            );
            let (_, c) = timed(conn, mf_stmt(&check), jit_off).await;
            let days: std::collections::HashSet<String> =
                tally_rows.iter().map(|r| format!("{:?}", r[0])).collect();
            // metric_time__day (a timestamp, column 1) is read as the text of column 0
            let mf_rows = rows(&c, std::iter::once(0).chain(2..1 + columns));
            let total = mf_rows.len();
            let mf_rows: Vec<Vec<Cell>> = mf_rows
                .into_iter()
                .filter(|r| days.contains(&format!("{:?}", r[0])))
                .collect();
            extra_days = total - mf_rows.len();
            assert_eq!(
                tally_rows, mf_rows,
                "{backend}: {}: tally's and MetricFlow's statement answer differently",
                case.kind
            );
        }

        let (mut ta, mut tb, mut tc) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iters {
            // which of tally's and the hand-written statement runs first alternates: the one
            // right after a long statement (MetricFlow's cumulative SQL burns seconds of CPU)
            // runs measurably slower on a shared machine
            if i % 2 == 0 {
                ta.push(timed(conn, tally_stmt(), jit_off).await.0);
                tb.push(timed(conn, hand_stmt(), jit_off).await.0);
            } else {
                tb.push(timed(conn, hand_stmt(), jit_off).await.0);
                ta.push(timed(conn, tally_stmt(), jit_off).await.0);
            }
            if let Some(sql) = metricflow {
                tc.push(timed(conn, mf_stmt(sql), jit_off).await.0);
            }
        }
        let (ta, tb) = (harness::median(&mut ta), harness::median(&mut tb));
        let tc = (!tc.is_empty()).then(|| harness::median(&mut tc));
        let mf = match tc {
            Some(tc) => format!(
                "MetricFlow {:8.2} ms ({} rows, {extra_days} days without rows) tally/MetricFlow {:5.2}",
                ms(tc),
                tally_rows.len() + extra_days,
                ta.as_secs_f64() / tc.as_secs_f64()
            ),
            None => String::new(),
        };
        println!(
            "{backend}: {:40} {:5} rows: tally {:8.2} ms, hand-written {:8.2} ms, tally/hand {:5.2}  {mf}",
            case.kind,
            tally_rows.len(),
            ms(ta),
            ms(tb),
            ta.as_secs_f64() / tb.as_secs_f64()
        );
        table.push((case.kind, ta, tb, tc));
    }
    println!(
        "\n| kind | backend | tally ms | hand-written ms | MetricFlow ms | tally / hand | tally / MetricFlow |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (kind, ta, tb, tc) in table {
        println!(
            "| {kind} | {backend} | {:.2} | {:.2} | {} | {:.2} | {} |",
            ms(ta),
            ms(tb),
            tc.map_or("".to_owned(), |t| format!("{:.2}", ms(t))),
            ta.as_secs_f64() / tb.as_secs_f64(),
            tc.map_or("".to_owned(), |t| format!(
                "{:.2}",
                ta.as_secs_f64() / t.as_secs_f64()
            )),
        );
    }
}

fn main() {
    let iters = harness::iters(15);
    harness::run_models(&["shop", "social", "saas"], |backend, conn| async move {
        bench(backend, &conn, iters).await;
    });
}
