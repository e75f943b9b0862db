//! Period-over-period values (`offset: PREVIOUS_PERIOD | YEAR_AGO`, `calculation: CHANGE`,
//! `…Growth`), grain-to-date sums (`toDate: MONTH | QUARTER | YEAR`) and the shared time axis
//! (`metricTime`) on both backends, every number worked out by hand in the comments.

mod common;

use serde_json::{Value, json};

use common::TestDb;

async fn load(db: &TestDb, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (table, text) in files {
        std::fs::write(dir.path().join(format!("{table}.csv")), text).unwrap();
    }
    let sources = tally::load::csv_sources("shop", dir.path()).unwrap();
    tally::load::load(&db.conn, "shop", sources, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("loading shop: {e}"));
}

async fn gql(db: &TestDb, query: &str) -> Value {
    let schema = tally::graphql::build(Some(db.conn.clone())).expect("schema");
    serde_json::to_value(schema.execute(query).await).unwrap()
}

fn rows(v: &Value) -> Value {
    assert!(v.get("errors").is_none(), "{v}");
    v["data"]["shop"]["metrics"].clone()
}

fn error(v: &Value) -> (String, String) {
    let e = &v["errors"][0];
    (
        e["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {v}"))
            .to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Net sales (amt − discount) per order line, one order per line:
///
/// | line | order_time (UTC) | net | London day |
/// |---|---|---|---|
/// | a1 | 2023-02-10 10:00 | 100 | |
/// | a2 | 2023-03-15 10:00 | 50 | |
/// | b1 | 2024-01-15 10:00 | 10 | |
/// | b2 | 2024-01-20 10:00 | 20 | |
/// | (no line in February 2024) | | | |
/// | b3 | 2024-03-02 10:00 | 40 (45 − 5) | |
/// | b4 | 2024-03-20 10:00 | 60 | |
/// | b5 | 2024-04-05 10:00 | 30 | |
/// | b6 | 2024-05-10 10:00 | 0 (5 − 5) | |
/// | b7 | 2024-06-01 10:00 | 25 | |
/// | c4 | 2024-10-25 23:30 | 3 | 26 Oct (00:30 BST) |
/// | c1 | 2024-10-26 23:30 | 7 | 27 Oct (00:30 BST) |
/// | c2 | 2024-10-27 23:30 | 11 | 27 Oct (23:30 GMT: the 25-hour day) |
/// | c3 | 2024-10-28 00:30 | 13 | 28 Oct |
///
/// By month (UTC): 2023-02 100, 2023-03 50, 2024-01 30, 2024-03 100, 2024-04 30, 2024-05 0,
/// 2024-06 25. Inventory events: 1 March −1, 10 March +5, 3 May +1, 1 July −2.
fn fixture() -> Vec<(&'static str, String)> {
    let lines = [
        ("a1", "o101", "2023-02-10T10:00:00Z", "100.00", "0"),
        ("a2", "o102", "2023-03-15T10:00:00Z", "50.00", "0"),
        ("b1", "o1", "2024-01-15T10:00:00Z", "10.00", "0"),
        ("b2", "o2", "2024-01-20T10:00:00Z", "20.00", "0"),
        ("b3", "o3", "2024-03-02T10:00:00Z", "45.00", "5.00"),
        ("b4", "o4", "2024-03-20T10:00:00Z", "60.00", "0"),
        ("b5", "o5", "2024-04-05T10:00:00Z", "30.00", "0"),
        ("b6", "o6", "2024-05-10T10:00:00Z", "5.00", "5.00"),
        ("b7", "o7", "2024-06-01T10:00:00Z", "25.00", "0"),
        ("c4", "o14", "2024-10-25T23:30:00Z", "3.00", "0"),
        ("c1", "o11", "2024-10-26T23:30:00Z", "7.00", "0"),
        ("c2", "o12", "2024-10-27T23:30:00Z", "11.00", "0"),
        ("c3", "o13", "2024-10-28T00:30:00Z", "13.00", "0"),
    ];
    let mut ol = "line_item_id,order_id,order_time,customer_id,campaign_id,store_id,product_id,product_category_id,count,amt,discount,unit_price_at_purchase,tax_amt,shipping_amt,line_number\n".to_owned();
    for (id, order, t, amt, discount) in lines {
        ol.push_str(&format!(
            "{id},{order},{t},cu1,,s1,p1,cat-a,1,{amt},{discount},{amt},0,0,1\n"
        ));
    }
    vec![
        (
            "product_category",
            "product_category_id,category_name,parent_category_id\ncat-a,Apparel,\n".to_owned(),
        ),
        (
            "customer",
            "customer_id,first_name,last_name,email,phone,city,state,country,customer_age,updated_at,is_current\n\
             cu1,Ann,Lee,ann@example.com,,Lyon,,France,34,2022-01-01T00:00:00Z,true\n"
                .to_owned(),
        ),
        (
            "product",
            "product_id,product_title,product_brand,product_category_id,unit_price,sku,created_at,updated_at,is_current\n\
             p1,Shirt,Acme,cat-a,20.00,S1,2022-01-01T00:00:00Z,2022-01-01T00:00:00Z,true\n"
                .to_owned(),
        ),
        ("order_line", ol),
        (
            "inventory_event",
            "inventory_event_id,event_type,event_time,store_id,product_id,quantity_change,reference_order_id\n\
             i1,sale,2024-03-01T12:00:00Z,s1,p1,-1,\n\
             i2,restock,2024-03-10T23:00:00Z,s1,p1,5,\n\
             i3,return,2024-05-03T00:00:00Z,s1,p1,1,\n\
             i4,sale,2024-07-01T00:00:00Z,s1,p1,-2,\n"
                .to_owned(),
        ),
    ]
}

async fn loaded() -> Vec<TestDb> {
    let files = fixture();
    let files: Vec<(&str, &str)> = files.iter().map(|(t, s)| (*t, s.as_str())).collect();
    let mut out = Vec::new();
    for db in TestDb::all().await {
        load(&db, &files).await;
        out.push(db);
    }
    out
}

#[tokio::test]
async fn previous_period_year_ago_change_and_growth() {
    for db in loaded().await {
        // From March 2024 on, as of 15 June (June incomplete).
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-06-15T00:00:00Z", where: { orderTime: { gte: "2024-03-01T00:00:00Z" } }) {
            m: orderTime(granularity: MONTH) netSales
            prev: netSales(offset: PREVIOUS_PERIOD)
            change: netSales(offset: PREVIOUS_PERIOD, calculation: CHANGE)
            growth: netSalesGrowth
            yago: netSales(offset: YEAR_AGO) yagoGrowth: netSalesGrowth(offset: YEAR_AGO)
            ordersPrev: orders(offset: PREVIOUS_PERIOD) aovPrev: aov(offset: PREVIOUS_PERIOD)
            isComplete } } }"#).await;
        assert_eq!(
            rows(&v),
            json!([
                // March: February had no rows: 0 (not January's 30); growth 100 / 0: null.
                // A year earlier: March 2023, 50 → growth 100 / 50 − 1 = 1. aov of February:
                // 0 / 0 orders: null.
                { "m": "2024-03-01T00:00:00Z", "netSales": "100.00", "prev": "0.00", "change": "100.00", "growth": null,
                  "yago": "50.00", "yagoGrowth": 1.0, "ordersPrev": 0, "aovPrev": null, "isComplete": true },
                // April: March 100 → change −70, growth 30 / 100 − 1 = −0.7; aov of March:
                // 100 / 2 orders = 50. April 2023: no rows.
                { "m": "2024-04-01T00:00:00Z", "netSales": "30.00", "prev": "100.00", "change": "-70.00", "growth": -0.7,
                  "yago": "0.00", "yagoGrowth": null, "ordersPrev": 2, "aovPrev": "50.00", "isComplete": true },
                // May: 0 after 30 → −30, growth 0 / 30 − 1 = −1.
                { "m": "2024-05-01T00:00:00Z", "netSales": "0.00", "prev": "30.00", "change": "-30.00", "growth": -1.0,
                  "yago": "0.00", "yagoGrowth": null, "ordersPrev": 1, "aovPrev": "30.00", "isComplete": true },
                // June (incomplete): 25 after May's 0 → growth null (division by 0).
                { "m": "2024-06-01T00:00:00Z", "netSales": "25.00", "prev": "0.00", "change": "25.00", "growth": null,
                  "yago": "0.00", "yagoGrowth": null, "ordersPrev": 1, "aovPrev": "0.00", "isComplete": false }
            ]),
            "{}",
            db.backend
        );
        // The first bucket's previous value comes from outside the filtered range: April's
        // previous month is March (100).
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-06-15T00:00:00Z", where: { orderTime: { gte: "2024-04-01T00:00:00Z", lt: "2024-05-01T00:00:00Z" } }) {
            m: orderTime(granularity: MONTH) netSales prev: netSales(offset: PREVIOUS_PERIOD) } } }"#).await;
        assert_eq!(
            rows(&v),
            json!([{ "m": "2024-04-01T00:00:00Z", "netSales": "30.00", "prev": "100.00" }]),
            "{}",
            db.backend
        );
        // Without a filter, every month with rows; and the request's asOf cuts the earlier
        // buckets too.
        let v = gql(&db, r#"{ a: shop { metrics(asOf: "2024-04-10T00:00:00Z") { m: orderTime(granularity: MONTH) prev: netSales(offset: PREVIOUS_PERIOD) } }
                              b: shop { metrics(asOf: "2024-03-10T00:00:00Z") { m: orderTime(granularity: MONTH) netSales ytd: netSales(toDate: YEAR) isComplete } } }"#).await;
        assert!(v.get("errors").is_none(), "{v}");
        // a: Feb 2023 ← Jan 2023 (0), Mar 2023 ← 100, Jan 2024 ← Dec 2023 (0), Mar 2024 ← Feb
        // (0), Apr 2024 ← Mar 100.
        assert_eq!(
            v["data"]["a"]["metrics"],
            json!([
                { "m": "2023-02-01T00:00:00Z", "prev": "0.00" },
                { "m": "2023-03-01T00:00:00Z", "prev": "100.00" },
                { "m": "2024-01-01T00:00:00Z", "prev": "0.00" },
                { "m": "2024-03-01T00:00:00Z", "prev": "0.00" },
                { "m": "2024-04-01T00:00:00Z", "prev": "100.00" }
            ]),
            "{}",
            db.backend
        );
        // b: as of 10 March, March holds b3 only (40), incomplete; the year to date is
        // January's 30 + 40.
        assert_eq!(
            v["data"]["b"]["metrics"][3],
            json!({ "m": "2024-03-01T00:00:00Z", "netSales": "40.00", "ytd": "70.00", "isComplete": false }),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn month_quarter_and_year_to_date() {
    for db in loaded().await {
        // Days from 15 March 2024 on: the sums start at the start of each month, quarter and
        // year whatever the filter.
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-06-15T00:00:00Z", where: { orderTime: { gte: "2024-03-15T00:00:00Z" } }) {
            d: orderTime(granularity: DAY) netSales
            mtd: netSales(toDate: MONTH) qtd: netSales(toDate: QUARTER) ytd: netSales(toDate: YEAR)
            linesYtd: orderLines(toDate: YEAR) } } }"#).await;
        assert_eq!(
            rows(&v),
            json!([
                // 20 March: MTD 40 + 60; QTD = YTD 10 + 20 + 40 + 60 = 130; lines 4.
                { "d": "2024-03-20T00:00:00Z", "netSales": "60.00", "mtd": "100.00", "qtd": "130.00", "ytd": "130.00", "linesYtd": 4 },
                // 5 April: a new month and quarter: 30; YTD 130 + 30.
                { "d": "2024-04-05T00:00:00Z", "netSales": "30.00", "mtd": "30.00", "qtd": "30.00", "ytd": "160.00", "linesYtd": 5 },
                // 10 May: 0 this month; QTD 30 + 0; YTD 160.
                { "d": "2024-05-10T00:00:00Z", "netSales": "0.00", "mtd": "0.00", "qtd": "30.00", "ytd": "160.00", "linesYtd": 6 },
                // 1 June: 25; QTD 30 + 0 + 25 = 55; YTD 185.
                { "d": "2024-06-01T00:00:00Z", "netSales": "25.00", "mtd": "25.00", "qtd": "55.00", "ytd": "185.00", "linesYtd": 7 }
            ]),
            "{}",
            db.backend
        );
        // By month: QTD and YTD; March's quarter holds January's 30.
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-06-15T00:00:00Z", where: { orderTime: { gte: "2024-03-01T00:00:00Z" } }) {
            m: orderTime(granularity: MONTH) qtd: netSales(toDate: QUARTER) ytd: netSales(toDate: YEAR) } } }"#).await;
        assert_eq!(
            rows(&v),
            json!([
                { "m": "2024-03-01T00:00:00Z", "qtd": "130.00", "ytd": "130.00" },
                { "m": "2024-04-01T00:00:00Z", "qtd": "30.00", "ytd": "160.00" },
                { "m": "2024-05-01T00:00:00Z", "qtd": "30.00", "ytd": "160.00" },
                { "m": "2024-06-01T00:00:00Z", "qtd": "55.00", "ytd": "185.00" }
            ]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn daylight_saving_in_london() {
    for db in loaded().await {
        // London days: 26 Oct 3; 27 Oct (25 hours: 26 Oct 23:00 UTC to 28 Oct 00:00 UTC)
        // 7 + 11 = 18; 28 Oct 13. In UTC the days would be 25 Oct 3, 26 Oct 7, 27 Oct 11,
        // 28 Oct 13.
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-11-01T00:00:00Z", timezone: "Europe/London", where: { orderTime: { gte: "2024-10-20T00:00:00Z" } }) {
            d: orderTime(granularity: DAY) netSales prev: netSales(offset: PREVIOUS_PERIOD)
            change: netSales(offset: PREVIOUS_PERIOD, calculation: CHANGE) mtd: netSales(toDate: MONTH) } } }"#).await;
        assert_eq!(
            rows(&v),
            json!([
                { "d": "2024-10-26T00:00:00", "netSales": "3.00", "prev": "0.00", "change": "3.00", "mtd": "3.00" },
                { "d": "2024-10-27T00:00:00", "netSales": "18.00", "prev": "3.00", "change": "15.00", "mtd": "21.00" },
                { "d": "2024-10-28T00:00:00", "netSales": "13.00", "prev": "18.00", "change": "-5.00", "mtd": "34.00" }
            ]),
            "{}",
            db.backend
        );
        // Only 28 October (from its local midnight, 00:00 GMT): its previous day is the whole
        // 25-hour 27 October, outside the filter.
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-11-01T00:00:00Z", timezone: "Europe/London", where: { orderTime: { gte: "2024-10-28T00:00:00Z" } }) {
            d: orderTime(granularity: DAY) netSales prev: netSales(offset: PREVIOUS_PERIOD) growth: netSalesGrowth } } }"#).await;
        assert_eq!(
            rows(&v),
            // 13 / 18 − 1 = −0.277778
            json!([{ "d": "2024-10-28T00:00:00", "netSales": "13.00", "prev": "18.00", "growth": -0.277778 }]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn comparison_errors() {
    for db in loaded().await {
        let cases = [
            // a distinct count does not add up over days
            (
                r#"{ shop { metrics { d: orderTime(granularity: DAY) orders(toDate: MONTH) } } }"#,
                "BAD_TIME_COMPARISON",
                "count_distinct",
            ),
            // a cumulative metric has no offset
            (
                r#"{ shop { metrics { d: orderTime(granularity: DAY) netSalesRunningTotal(offset: PREVIOUS_PERIOD) } } }"#,
                "BAD_TIME_COMPARISON",
                "netSalesRunningTotal",
            ),
            (
                r#"{ shop { metrics { netSales(offset: PREVIOUS_PERIOD) } } }"#,
                "MISSING_TIME_DIMENSION",
                "one time dimension",
            ),
            (
                r#"{ shop { metrics { w: orderTime(granularity: WEEK) netSales(toDate: MONTH) } } }"#,
                "BAD_GRANULARITY",
                "WEEK",
            ),
            // aov = net sales / orders, a distinct count
            (
                r#"{ shop { metrics { m: orderTime(granularity: MONTH) aov(toDate: YEAR) } } }"#,
                "BAD_TIME_COMPARISON",
                "orders",
            ),
            (
                r#"{ shop { metrics { m: orderTime(granularity: MONTH) netSales(calculation: CHANGE) } } }"#,
                "BAD_TIME_COMPARISON",
                "give offset too",
            ),
            (
                r#"{ shop { metrics { m: orderTime(granularity: MONTH) netSales(offset: YEAR_AGO, toDate: YEAR) } } }"#,
                "BAD_TIME_COMPARISON",
                "not both",
            ),
            (
                r#"{ shop { metrics(where: { or: [{ orderTime: { gte: "2024-01-01T00:00:00Z" } }, { categoryName: { equals: "Apparel" } }] }) { m: orderTime(granularity: MONTH) netSales(offset: PREVIOUS_PERIOD) } } }"#,
                "BAD_TIME_COMPARISON",
                "inside or/not",
            ),
        ];
        for (q, want, text) in cases {
            let (code, message) = error(&gql(&db, q).await);
            assert_eq!(code, want, "{q}: {message}");
            assert!(message.contains(text), "{q}: {message}");
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn shared_time_axis_across_two_tables() {
    for db in loaded().await {
        // Order lines by order_time, inventory events by event_time, each aggregated on its
        // own table and joined on the month: no fan-out (March: 2 lines, 2 events).
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-06-15T00:00:00Z", where: { metricTime: { gte: "2024-01-01T00:00:00Z" } }) {
            m: metricTime(granularity: MONTH) netSales orderLines inventoryChange inventoryEvents
            invPrev: inventoryChange(offset: PREVIOUS_PERIOD) } } }"#).await;
        assert_eq!(
            rows(&v),
            json!([
                { "m": "2024-01-01T00:00:00Z", "netSales": "30.00", "orderLines": 2, "inventoryChange": 0, "inventoryEvents": 0, "invPrev": 0 },
                // −1 + 5
                { "m": "2024-03-01T00:00:00Z", "netSales": "100.00", "orderLines": 2, "inventoryChange": 4, "inventoryEvents": 2, "invPrev": 0 },
                { "m": "2024-04-01T00:00:00Z", "netSales": "30.00", "orderLines": 1, "inventoryChange": 0, "inventoryEvents": 0, "invPrev": 4 },
                // the return of 3 May; the sale of 1 July is after asOf
                { "m": "2024-05-01T00:00:00Z", "netSales": "0.00", "orderLines": 1, "inventoryChange": 1, "inventoryEvents": 1, "invPrev": 0 },
                { "m": "2024-06-01T00:00:00Z", "netSales": "25.00", "orderLines": 1, "inventoryChange": 0, "inventoryEvents": 0, "invPrev": 1 }
            ]),
            "{}",
            db.backend
        );
        // The table's own time dimension still reaches its own table only.
        let (code, _) = error(
            &gql(
                &db,
                r#"{ shop { metrics { m: orderTime(granularity: MONTH) netSales inventoryChange } } }"#,
            )
            .await,
        );
        assert_eq!(code, "UNREACHABLE_DIMENSION");
        // A table without a column on the axis: the error names the metric and the table.
        let (code, message) = error(
            &gql(
                &db,
                r#"{ shop { metrics { m: metricTime(granularity: MONTH) customerLifetimeValue } } }"#,
            )
            .await,
        );
        assert_eq!(code, "UNREACHABLE_DIMENSION");
        assert!(
            message.contains("customerLifetimeValue") && message.contains("customer_value"),
            "{message}"
        );
        db.cleanup().await;
    }
}

const BAD_AXIS: &str = r#"
[model]
name = "badaxis"
namespace = "shop"
description = "Time axes with problems."

[[table]]
name = "order_line"
key = ["line_item_id"]
as_of = { kind = "event", time = "order_time" }
description = "Order lines."

[[measure]]
name = "lines"
table = "order_line"
agg = "count"
description = "Lines."

[[metric]]
name = "lines"
measure = "lines"
unit = "count"
description = "Lines."

[[metric]]
name = "linesGrowth"
measure = "lines"
unit = "count"
description = "Takes the name of the growth field of lines."

[[time_axis]]
name = "badTable"
tables = { no_such_table = "order_time" }
description = "An unknown table."

[[time_axis]]
name = "notInstant"
tables = { order_line = "order_id" }
description = "Not a time column."
"#;

#[test]
fn bad_time_axes_are_reported_with_their_lines() {
    let err = tally::semantic::load_sources(&[tally::semantic::ModelSource {
        folder: "badaxis".into(),
        files: vec![tally::semantic::SourceFile {
            path: "badaxis.toml".into(),
            text: BAD_AXIS.into(),
        }],
        sql_roots: vec![],
    }])
    .unwrap_err();
    let text = err.to_string();
    let line_of = |needle: &str| BAD_AXIS.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (line, msg) in [
        (
            line_of("name = \"linesGrowth\""),
            "is the growth field of metric \"lines\"",
        ),
        (
            line_of("no_such_table"),
            "time axis \"badTable\": unknown table \"no_such_table\"",
        ),
        (line_of("order_id"), "not an instant"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("badaxis.toml:{line}: ")) && l.contains(msg)),
            "line {line}, {msg:?} in:\n{text}"
        );
    }
}

/// [`fixture`] with one more line of order o3 in March 2024 (x1, 10): March then has 3
/// lines of 2 orders, net 40 + 60 + 10 = 110.
async fn loaded_with_second_line() -> Vec<TestDb> {
    let mut files = fixture();
    for (table, text) in files.iter_mut() {
        if *table == "order_line" {
            text.push_str("x1,o3,2024-03-25T10:00:00Z,cu1,,s1,p1,cat-a,1,10.00,0,10.00,0,0,2\n");
        }
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(t, s)| (*t, s.as_str())).collect();
    let mut out = Vec::new();
    for db in TestDb::all().await {
        load(&db, &files).await;
        out.push(db);
    }
    out
}

/// Without a filter on the compared time dimension, the earlier values are read from the
/// request's own per-bucket aggregate: every bucket with rows is in it, the earlier bucket's
/// key is the same arithmetic, and a bucket whose earlier bucket has no rows (the first one,
/// one after a gap) gets the value over no rows. The same request with a filter on the time
/// dimension that keeps every row aggregates the rows a second time: the answers are equal.
#[tokio::test]
async fn offsets_without_a_time_filter_read_the_request_aggregate() {
    let fields = "m: orderTime(granularity: MONTH) netSales prev: netSales(offset: PREVIOUS_PERIOD)
        yago: netSales(offset: YEAR_AGO) growth: netSalesGrowth orders
        ordersPrev: orders(offset: PREVIOUS_PERIOD) ordersYago: orders(offset: YEAR_AGO)
        aovPrev: aov(offset: PREVIOUS_PERIOD) medPrev: medianLineNetSales(offset: PREVIOUS_PERIOD)";
    for db in loaded_with_second_line().await {
        // As of 1 July 2024 (the October lines are cut).
        let v = gql(
            &db,
            &format!(r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z") {{ {fields} }} }} }}"#),
        )
        .await;
        let expected = json!([
            // The first bucket: January 2023 and February 2022 have no rows: 0, 0 orders,
            // aov 0 / 0 and the median of no lines null; growth 100 / 0 null.
            { "m": "2023-02-01T00:00:00Z", "netSales": "100.00", "prev": "0.00", "yago": "0.00", "growth": null,
              "orders": 1, "ordersPrev": 0, "ordersYago": 0, "aovPrev": null, "medPrev": null },
            // March 2023 ← February 2023: 100, 1 order, aov 100, median 100; 50 / 100 − 1.
            { "m": "2023-03-01T00:00:00Z", "netSales": "50.00", "prev": "100.00", "yago": "0.00", "growth": -0.5,
              "orders": 1, "ordersPrev": 1, "ordersYago": 0, "aovPrev": "100.00", "medPrev": "100.00" },
            // January 2024 after a gap of nine months: December 2023 has no rows.
            { "m": "2024-01-01T00:00:00Z", "netSales": "30.00", "prev": "0.00", "yago": "0.00", "growth": null,
              "orders": 2, "ordersPrev": 0, "ordersYago": 0, "aovPrev": null, "medPrev": null },
            // March 2024: February 2024 has no rows (not January's 30); a year ago across the
            // gap: March 2023, 50, 1 order.
            { "m": "2024-03-01T00:00:00Z", "netSales": "110.00", "prev": "0.00", "yago": "50.00", "growth": null,
              "orders": 2, "ordersPrev": 0, "ordersYago": 1, "aovPrev": null, "medPrev": null },
            // April ← March: 110 over 2 distinct orders of 3 lines (a sum of per-line counts
            // would say 3): aov 55; median of 40, 60, 10: 40; growth 30 / 110 − 1.
            { "m": "2024-04-01T00:00:00Z", "netSales": "30.00", "prev": "110.00", "yago": "0.00", "growth": -0.727273,
              "orders": 1, "ordersPrev": 2, "ordersYago": 0, "aovPrev": "55.00", "medPrev": "40.00" },
            // May ← April: 30, 1 order.
            { "m": "2024-05-01T00:00:00Z", "netSales": "0.00", "prev": "30.00", "yago": "0.00", "growth": -1.0,
              "orders": 1, "ordersPrev": 1, "ordersYago": 0, "aovPrev": "30.00", "medPrev": "30.00" },
            // June ← May: 0 over 1 order; growth 25 / 0 null.
            { "m": "2024-06-01T00:00:00Z", "netSales": "25.00", "prev": "0.00", "yago": "0.00", "growth": null,
              "orders": 1, "ordersPrev": 1, "ordersYago": 0, "aovPrev": "0.00", "medPrev": "0.00" }
        ]);
        assert_eq!(rows(&v), expected, "{}", db.backend);
        let v = gql(
            &db,
            &format!(
                r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z", where: {{ orderTime: {{ gte: "2000-01-01T00:00:00Z" }} }}) {{ {fields} }} }} }}"#
            ),
        )
        .await;
        assert_eq!(rows(&v), expected, "{}", db.backend);
        // By London day, no filter: the 25-hour 27 October's previous day is 26 October (3),
        // 28 October's is the whole 27 October (7 + 11); 52 weeks before 28 October 2024
        // (30 October 2023) has no rows. The first day, 10 February 2023, has no earlier day.
        let v = gql(
            &db,
            r#"{ shop { metrics(asOf: "2024-11-01T00:00:00Z", timezone: "Europe/London") {
            d: orderTime(granularity: DAY) netSales prev: netSales(offset: PREVIOUS_PERIOD)
            yago: netSales(offset: YEAR_AGO) ordersPrev: orders(offset: PREVIOUS_PERIOD) } } }"#,
        )
        .await;
        let all = rows(&v);
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 13, "{}: {all:?}", db.backend);
        assert_eq!(
            all[0],
            json!({ "d": "2023-02-10T00:00:00", "netSales": "100.00", "prev": "0.00", "yago": "0.00", "ordersPrev": 0 }),
            "{}",
            db.backend
        );
        assert_eq!(
            all[10..],
            [
                json!({ "d": "2024-10-26T00:00:00", "netSales": "3.00", "prev": "0.00", "yago": "0.00", "ordersPrev": 0 }),
                json!({ "d": "2024-10-27T00:00:00", "netSales": "18.00", "prev": "3.00", "yago": "0.00", "ordersPrev": 1 }),
                json!({ "d": "2024-10-28T00:00:00", "netSales": "13.00", "prev": "18.00", "yago": "0.00", "ordersPrev": 2 })
            ],
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

/// The statements a response ran (`extensions.explain`), joined.
fn sql_of(v: &Value) -> String {
    v["extensions"]["explain"]
        .as_array()
        .unwrap_or_else(|| panic!("no explain in {v}"))
        .iter()
        .filter_map(|e| e["sql"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Without a filter on the compared time dimension, when one table's aggregate is the whole
/// response, a sum to date is a window over that aggregate and an offset joins that aggregate
/// again on the bucket moved back (no `keys`, no second aggregation); the answers are the ones of the
/// plan that aggregates the rows again (the same request with a filter on the time dimension
/// that keeps every row), including distinct counts and ratios moved by an offset.
#[tokio::test]
async fn to_date_and_offsets_without_a_time_filter_take_the_direct_shape() {
    let by_day = "d: orderTime(granularity: DAY) netSales lines: orderLines
        mtd: netSales(toDate: MONTH) qtd: netSales(toDate: QUARTER) ytd: netSales(toDate: YEAR)
        linesMtd: orderLines(toDate: MONTH) prev: netSales(offset: PREVIOUS_PERIOD)
        ordersPrev: orders(offset: PREVIOUS_PERIOD) aovPrev: aov(offset: PREVIOUS_PERIOD)
        change: netSales(offset: PREVIOUS_PERIOD, calculation: CHANGE)";
    for db in loaded_with_second_line().await {
        let direct = gql(
            &db,
            &format!(r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z") {{ {by_day} }} }} }}"#),
        )
        .await;
        let sql = sql_of(&direct);
        assert!(!sql.contains("\"keys\""), "{}: {sql}", db.backend);
        assert!(!sql.contains("_to_"), "{}: {sql}", db.backend);
        assert!(sql.contains("OVER (PARTITION BY"), "{}: {sql}", db.backend);
        assert!(
            sql.contains(
                "LEFT JOIN \"agg_order_line\" AS \"agg_order_line_ahead_1_day\" ON \"agg_order_line_ahead_1_day\".\"d0\" = "
            ),
            "{}: {sql}",
            db.backend
        );
        let all = rows(&direct);
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 10, "{}: {all:?}", db.backend);
        // 2 March 2024: the month's first line (40); the quarter holds January's 30; the
        // previous day (1 March) has no rows.
        assert_eq!(
            all[4],
            json!({ "d": "2024-03-02T00:00:00Z", "netSales": "40.00", "lines": 1, "mtd": "40.00", "qtd": "70.00",
                    "ytd": "70.00", "linesMtd": 1, "prev": "0.00", "ordersPrev": 0, "aovPrev": null, "change": "40.00" }),
            "{}",
            db.backend
        );
        // 25 March: x1 (10) after 2 and 20 March (40 + 60) in the month: 110, 3 lines.
        assert_eq!(
            all[6],
            json!({ "d": "2024-03-25T00:00:00Z", "netSales": "10.00", "lines": 1, "mtd": "110.00", "qtd": "140.00",
                    "ytd": "140.00", "linesMtd": 3, "prev": "0.00", "ordersPrev": 0, "aovPrev": null, "change": "10.00" }),
            "{}",
            db.backend
        );
        // The old plan (rows aggregated again), with a filter that keeps every row.
        let again = gql(
            &db,
            &format!(
                r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z", where: {{ orderTime: {{ gte: "2000-01-01T00:00:00Z" }} }}) {{ {by_day} }} }} }}"#
            ),
        )
        .await;
        let sql = sql_of(&again);
        assert!(
            sql.contains("\"agg_order_line_to_month\""),
            "{}: {sql}",
            db.backend
        );
        assert_eq!(rows(&direct), rows(&again), "{}", db.backend);
        db.cleanup().await;
    }
}

/// A filter on the compared time dimension leaves the earlier days of a month out of the
/// request's aggregate, which the sums to date still add: those keep aggregating their own
/// rows. The direct shape's rows from 20 March on are the filtered request's rows.
#[tokio::test]
async fn to_date_with_a_time_filter_still_sums_the_whole_period() {
    let fields = "d: orderTime(granularity: DAY) netSales mtd: netSales(toDate: MONTH)
        ytd: netSales(toDate: YEAR) prev: netSales(offset: PREVIOUS_PERIOD)";
    for db in loaded_with_second_line().await {
        let filtered = gql(
            &db,
            &format!(
                r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z", where: {{ orderTime: {{ gte: "2024-03-20T00:00:00Z" }} }}) {{ {fields} }} }} }}"#
            ),
        )
        .await;
        let got = rows(&filtered);
        // 20 March: 2 March's 40 is outside the filter but in the month (40 + 60).
        assert_eq!(
            got[0],
            json!({ "d": "2024-03-20T00:00:00Z", "netSales": "60.00", "mtd": "100.00", "ytd": "130.00", "prev": "0.00" }),
            "{}",
            db.backend
        );
        let all = gql(
            &db,
            &format!(r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z") {{ {fields} }} }} }}"#),
        )
        .await;
        let all = rows(&all);
        let tail: Vec<Value> = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["d"].as_str().unwrap() >= "2024-03-20")
            .cloned()
            .collect();
        assert_eq!(Value::Array(tail), got, "{}", db.backend);
        db.cleanup().await;
    }
}

/// The direct shape with a second slot: the window sums each campaign's days apart (the
/// lines without a campaign, NULL, are one group of their own, as in `keys`); the offset
/// keeps `keys` (a NULL campaign must meet a NULL campaign). Two tables: `keys` and the
/// compared aggregates as before, a day without order lines to date 0. Every answer equals
/// the one of the old plan (a filter on the time dimension that keeps every row).
#[tokio::test]
async fn to_date_by_a_second_dimension_and_across_two_tables() {
    let mut files = fixture();
    for (table, text) in files.iter_mut() {
        if *table == "order_line" {
            text.push_str("x2,o20,2024-03-21T10:00:00Z,cu1,k1,s1,p1,cat-a,1,8.00,0,8.00,0,0,1\n");
            text.push_str("x3,o21,2024-03-22T10:00:00Z,cu1,k1,s1,p1,cat-a,1,4.00,0,4.00,0,0,1\n");
        }
        if *table == "inventory_event" {
            text.push_str("i5,restock,2024-03-21T09:00:00Z,s1,p1,3,\n");
        }
    }
    files.push((
        "campaign",
        "campaign_id,campaign_name,campaign_start_time,campaign_end_time,campaign_description\n\
         k1,Spring,2024-03-01T00:00:00Z,2024-03-31T00:00:00Z,\n"
            .to_owned(),
    ));
    let files: Vec<(&str, &str)> = files.iter().map(|(t, s)| (*t, s.as_str())).collect();
    for db in TestDb::all().await {
        load(&db, &files).await;
        let by_campaign = "d: orderTime(granularity: DAY) c: campaignId netSales
            mtd: netSales(toDate: MONTH) prev: netSales(offset: PREVIOUS_PERIOD)";
        let q = |filter: &str, fields: &str| {
            format!(
                r#"{{ shop {{ metrics(asOf: "2024-07-01T00:00:00Z"{filter}) {{ {fields} }} }} }}"#
            )
        };
        let keep = r#", where: { orderTime: { gte: "2000-01-01T00:00:00Z" } }"#;
        let direct = gql(&db, &q("", by_campaign)).await;
        let sql = sql_of(&direct);
        assert!(!sql.contains("_to_"), "{}: {sql}", db.backend);
        let got = rows(&direct);
        let march: Vec<Value> = got
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["d"].as_str().unwrap().starts_with("2024-03"))
            .cloned()
            .collect();
        assert_eq!(
            march,
            vec![
                json!({ "d": "2024-03-02T00:00:00Z", "c": null, "netSales": "40.00", "mtd": "40.00", "prev": "0.00" }),
                json!({ "d": "2024-03-20T00:00:00Z", "c": null, "netSales": "60.00", "mtd": "100.00", "prev": "0.00" }),
                // k1's month starts at its own first line; 20 March (no campaign) is not its
                json!({ "d": "2024-03-21T00:00:00Z", "c": "k1", "netSales": "8.00", "mtd": "8.00", "prev": "0.00" }),
                json!({ "d": "2024-03-22T00:00:00Z", "c": "k1", "netSales": "4.00", "mtd": "12.00", "prev": "8.00" }),
            ],
            "{}",
            db.backend
        );
        assert_eq!(
            got,
            rows(&gql(&db, &q(keep, by_campaign)).await),
            "{}",
            db.backend
        );
        // Two tables on the time axis: 21 March has both, 1 March and 10 March events only.
        let two = "d: metricTime(granularity: DAY) netSales inventoryChange
            mtd: netSales(toDate: MONTH) invMtd: inventoryChange(toDate: MONTH)";
        let v = gql(&db, &q("", two)).await;
        let sql = sql_of(&v);
        assert!(sql.contains("\"keys\""), "{}: {sql}", db.backend);
        let got = rows(&v);
        let day = |d: &str| {
            got.as_array()
                .unwrap()
                .iter()
                .find(|r| r["d"] == d)
                .cloned()
                .unwrap_or_else(|| panic!("{}: no row {d} in {got}", db.backend))
        };
        let tenth = day("2024-03-10T00:00:00Z");
        assert_eq!(
            (
                &tenth["netSales"],
                &tenth["inventoryChange"],
                &tenth["invMtd"]
            ),
            (&json!("0.00"), &json!(5), &json!(4)),
            "{}",
            db.backend
        );
        assert_eq!(
            day("2024-03-21T00:00:00Z"),
            json!({ "d": "2024-03-21T00:00:00Z", "netSales": "8.00", "inventoryChange": 3, "mtd": "108.00", "invMtd": 7 }),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

/// The direct shape changes nothing of what toDate accepts: a week does not nest in a
/// month or a year, a distinct count (alone or in a ratio) does not add up over buckets.
#[tokio::test]
async fn to_date_still_refuses_weeks_and_distinct_counts() {
    let db = TestDb::sqlite().await;
    load(
        &db,
        &fixture()
            .iter()
            .map(|(t, s)| (*t, s.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    for (q, want, text) in [
        (
            r#"{ shop { metrics { w: orderTime(granularity: WEEK) netSales(toDate: YEAR) } } }"#,
            "BAD_GRANULARITY",
            "WEEK",
        ),
        (
            r#"{ shop { metrics { d: orderTime(granularity: DAY) customers(toDate: MONTH) } } }"#,
            "BAD_TIME_COMPARISON",
            "count_distinct",
        ),
        (
            r#"{ shop { metrics { d: orderTime(granularity: DAY) netSales aov(toDate: MONTH) } } }"#,
            "BAD_TIME_COMPARISON",
            "orders",
        ),
    ] {
        let (code, message) = error(&gql(&db, q).await);
        assert_eq!(code, want, "{q}: {message}");
        assert!(message.contains(text), "{q}: {message}");
    }
    db.cleanup().await;
}
