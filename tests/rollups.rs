//! Rollups declared in model files (docs/SEMANTIC-LAYER.md, "Rollups"): answers read from
//! a rollup equal the answers read from the source rows for every asOf (bucket boundaries
//! and instants within a bucket), explain says which rollup answered or why none could, a
//! write to the source outside the loader stops its use until a refresh, a load keeps it
//! fresh, a read-only database never gets one, and broken declarations are reported with
//! file:line. On SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

use common::TestDb;
use tally::engine::{Engine, Table};
use tally::query::{Filter, FilterOp, Item, QuerySpec, ReqValue, Selected};
use tally::semantic::{Granularity, ModelSource, SourceFile};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dim(name: &str, g: Option<Granularity>) -> Selected {
    Selected {
        key: match g {
            Some(g) => format!("{name}_{}", g.as_str()),
            None => name.into(),
        },
        item: Item::Dimension {
            name: name.into(),
            granularity: g,
        },
    }
}

fn met(name: &str) -> Selected {
    Selected {
        key: name.into(),
        item: Item::Metric { name: name.into() },
    }
}

/// The demo shop data (small), loaded through the loader (which builds the rollups).
async fn shop_db(db: &DatabaseConnection) {
    let opts = tally::demo::DemoOptions {
        scale: 0.05,
        seed: 7,
    };
    tally::demo::load_demo(db, "shop", &opts, false)
        .await
        .unwrap();
}

async fn text_values(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// An engine with the rollups, and one without.
fn engines(db: &DatabaseConnection) -> (Engine, Engine) {
    let with = Engine::with_embedded_models(db.clone()).unwrap();
    let without = Engine::with_embedded_models(db.clone())
        .unwrap()
        .without_rollups();
    (with, without)
}

/// The rows of an answer in a canonical order, as text.
fn canonical(t: &Table) -> Vec<String> {
    let mut rows: Vec<String> = t
        .rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    rows.sort();
    rows
}

/// Runs `spec` on `engine`; the answer and what explain says of the rollup.
async fn run(engine: &Engine, spec: &QuerySpec) -> (Table, Option<String>, Option<String>) {
    let session = engine.session();
    let table: Table<Value> = engine.run(&session, spec).await.unwrap();
    let explained = session.explained();
    let last = explained.last().unwrap().to_json("shop.metrics");
    let text = |k: &str| last.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    assert!(
        last.get("rollup").is_some(),
        "a metrics request of a model with rollups explains the rollup: {last}"
    );
    (table, text("rollup"), text("rollupReason"))
}

/// The requests compared: metrics × dimensions × granularities × filters.
fn requests(store: &str, categories: &[String]) -> Vec<QuerySpec> {
    let metric_sets: Vec<Vec<&str>> = vec![
        vec!["netSales"],
        vec!["orderLines", "unitsSold"],
        vec!["grossSales", "discounts", "discountRate"],
        vec!["taxes", "shipping", "netSales", "orderLines"],
    ];
    let dim_sets: Vec<Vec<Selected>> = vec![
        vec![],
        vec![dim("orderTime", Some(Granularity::Day))],
        vec![dim("orderTime", Some(Granularity::Week))],
        vec![dim("orderTime", Some(Granularity::Month))],
        vec![dim("orderTime", Some(Granularity::Quarter))],
        vec![dim("orderTime", Some(Granularity::Year))],
        vec![dim("categoryName", None)],
        vec![
            dim("storeId", None),
            dim("orderTime", Some(Granularity::Month)),
        ],
        vec![dim("customerCountry", None), dim("hasCampaign", None)],
        vec![dim("campaignName", None)],
    ];
    let mut out = Vec::new();
    for (i, metrics) in metric_sets.iter().enumerate() {
        for (j, dims) in dim_sets.iter().enumerate() {
            let mut s = QuerySpec::new("shop", t("2024-06-30T12:00:00Z"));
            s.fields = dims.clone();
            s.fields.extend(metrics.iter().map(|m| met(m)));
            // a filter on every third request, of three kinds
            match (i + j) % 3 {
                0 => {
                    let v = s.value(ReqValue::Str(store.to_owned()));
                    s.filter = Some(Filter::Cond {
                        dimension: "storeId".into(),
                        op: FilterOp::Equals,
                        args: vec![v],
                    });
                }
                1 => {
                    let args = categories
                        .iter()
                        .map(|c| s.value(ReqValue::Str(c.clone())))
                        .collect();
                    s.filter = Some(Filter::Cond {
                        dimension: "categoryName".into(),
                        op: FilterOp::In,
                        args,
                    });
                }
                _ => {}
            }
            out.push(s);
        }
    }
    out
}

/// Runs every request of `specs` as of every instant of [`AS_OF`] with and without rollups:
/// the same rows, from the rollup `expected` names; how many were compared. Most answers hold
/// non-zero numbers (the comparison is not vacuous).
async fn assert_same(
    with: &Engine,
    without: &Engine,
    specs: &[QuerySpec],
    backend: &str,
    expected: impl Fn(&QuerySpec) -> String,
) -> usize {
    let mut compared = 0;
    let mut nonempty = 0;
    for spec in specs {
        for at in AS_OF {
            let mut spec = spec.clone();
            spec.as_of = t(at);
            let (a, used, reason) = run(with, &spec).await;
            let (b, raw_used, raw_reason) = run(without, &spec).await;
            assert_eq!(
                used.as_deref(),
                Some(expected(&spec).as_str()),
                "{backend}: {spec:?} was not answered from the rollup: {reason:?}"
            );
            assert_eq!(raw_used, None);
            assert!(raw_reason.unwrap().contains("turned off"));
            assert_eq!(
                canonical(&a),
                canonical(&b),
                "{backend}: {spec:?} as of {at}"
            );
            compared += 1;
            let number = |v: &Value| {
                v.as_f64().is_some_and(|x| x != 0.0)
                    || v.as_str()
                        .is_some_and(|s| s.parse::<f64>().is_ok_and(|x| x != 0.0))
            };
            if a.rows.iter().any(|r| r.iter().any(number)) {
                nonempty += 1;
            }
        }
    }
    assert!(nonempty > compared / 2, "{nonempty} of {compared}");
    compared
}

/// The rows of each shop rollup, by name, as their status says.
async fn rollup_rows(db: &DatabaseConnection) -> Vec<(String, i64)> {
    let shop = tally::semantic::load_embedded()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "shop")
        .unwrap();
    tally::rollup::statuses(db, &shop)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.row_count))
        .collect()
}

/// Of the rollups `keeps`, the one with the fewest rows (the first of equals in the model
/// file's order), as `shop.<name>`.
fn smallest(sizes: &[(String, i64)], keeps: &[&str]) -> String {
    let order = [
        "daily_sales",
        "daily_sales_by_store",
        "daily_sales_by_category",
        "daily_orders",
        "daily_totals",
    ];
    let mut best: Option<(&str, i64)> = None;
    for name in order.iter().filter(|n| keeps.contains(n)) {
        let rows = sizes.iter().find(|(n, _)| n == name).unwrap().1;
        if best.is_none_or(|(_, r)| rows < r) {
            best = Some((name, rows));
        }
    }
    format!("shop.{}", best.unwrap().0)
}

/// asOf values: bucket boundaries, instants within a bucket, a fraction of a second.
const AS_OF: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-02-29T23:59:59Z",
    "2024-03-15T13:27:41Z",
    "2024-05-05T05:05:05.5Z",
    "2024-07-01T00:00:00Z",
    "2024-09-30T18:00:00Z",
    "2025-01-01T00:00:00Z",
    "2030-01-01T00:00:00Z",
];

#[tokio::test]
async fn answers_from_the_rollup_equal_answers_from_the_rows() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let (with, without) = engines(&db.conn);
        let store = text_values(
            &db.conn,
            "SELECT store_id FROM \"shop\".\"order_line\" ORDER BY store_id LIMIT 1",
        )
        .await
        .remove(0);
        let categories = text_values(
            &db.conn,
            "SELECT category_name FROM \"shop\".\"product_category\" ORDER BY category_name LIMIT 2",
        )
        .await;
        let specs = requests(&store, &categories);
        let sizes = rollup_rows(&db.conn).await;
        let compared = assert_same(&with, &without, &specs, db.backend, |spec| {
            // the smallest rollup that keeps what the request reads
            let mut dims: Vec<&str> = spec.filter_dimensions();
            for f in &spec.fields {
                if let Item::Dimension { name, .. } = &f.item {
                    dims.push(name);
                }
            }
            let mut keeps = vec![
                "daily_sales",
                "daily_sales_by_store",
                "daily_sales_by_category",
                "daily_orders",
                "daily_totals",
            ];
            if dims.iter().any(|d| *d != "orderTime") {
                keeps.retain(|r| *r != "daily_totals");
            }
            if dims.iter().any(|d| d.starts_with("customer")) {
                keeps.retain(|r| *r == "daily_sales");
            }
            if dims.iter().any(|d| d.starts_with("category")) {
                keeps.retain(|r| *r != "daily_orders");
            }
            if dims
                .iter()
                .any(|d| d.starts_with("store") || d.contains("ampaign"))
            {
                keeps.retain(|r| *r != "daily_sales_by_category");
            }
            smallest(&sizes, &keeps)
        })
        .await;
        assert_eq!(compared, 4 * 10 * AS_OF.len());
        db.cleanup().await;
    }
}

/// A condition on `orderTime` of request `s`.
fn on_time(s: &mut QuerySpec, op: FilterOp, at: &str) -> Filter {
    let v = s.value(ReqValue::Time(t(at)));
    Filter::Cond {
        dimension: "orderTime".into(),
        op,
        args: vec![v],
    }
}

/// Filters on the event time at bucket boundaries (`gte` / `lt` a UTC midnight, composed
/// with and, or and not) hold for whole buckets: such requests are answered from the
/// rollup, and equal the rows' answers for every asOf (also those within a bucket, where
/// the rollup's union adds source rows that the filter cuts by their own instants).
#[tokio::test]
async fn filters_on_bucket_boundaries_are_answered_from_the_rollup() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let (with, without) = engines(&db.conn);
        let filters: Vec<fn(&mut QuerySpec) -> Filter> = vec![
            |s| on_time(s, FilterOp::Gte, "2024-03-01T00:00:00Z"),
            |s| {
                Filter::And(vec![
                    on_time(s, FilterOp::Gte, "2024-02-10T00:00:00Z"),
                    on_time(s, FilterOp::Lt, "2024-06-01T00:00:00Z"),
                ])
            },
            |s| {
                Filter::Or(vec![
                    on_time(s, FilterOp::Lt, "2024-02-01T00:00:00Z"),
                    on_time(s, FilterOp::Gte, "2024-05-01T00:00:00Z"),
                ])
            },
            |s| Filter::Not(Box::new(on_time(s, FilterOp::Gte, "2024-04-15T00:00:00Z"))),
        ];
        let dims: Vec<Vec<Selected>> = vec![
            vec![],
            vec![dim("orderTime", Some(Granularity::Day))],
            vec![dim("orderTime", Some(Granularity::Month))],
        ];
        let mut specs = Vec::new();
        for f in &filters {
            for d in &dims {
                let mut s = QuerySpec::new("shop", t("2024-06-30T12:00:00Z"));
                s.fields = d.clone();
                s.fields.extend(["netSales", "orders", "aov"].map(met));
                s.filter = Some(f(&mut s));
                specs.push(s);
            }
        }
        let compared = assert_same(&with, &without, &specs, db.backend, |_| {
            "shop.daily_totals".to_owned()
        })
        .await;
        assert_eq!(compared, 4 * 3 * AS_OF.len());
        db.cleanup().await;
    }
}

#[tokio::test]
async fn explain_says_why_no_rollup_answered() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let (engine, without) = engines(&db.conn);
        let at = t("2024-04-10T10:00:00Z");
        let cases: Vec<(QuerySpec, &str)> = vec![
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![dim("orderTime", Some(Granularity::Day)), met("customers")];
                    s
                },
                "metric customers reads measure customers, which the rollup does not keep",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![dim("categoryName", None), met("orders")];
                    s
                },
                "metric orders reads measure orders, which the rollup does not keep",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![dim("orderTime", Some(Granularity::Hour)), met("netSales")];
                    s
                },
                "finer than the rollup's grain",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![dim("orderTime", Some(Granularity::Day)), met("netSales")];
                    s.timezone = Some("Europe/London".into());
                    s
                },
                "timezone",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![dim("productBrand", None), met("netSales")];
                    s
                },
                "dimension productBrand is not in the rollup",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![met("netSales")];
                    let v = s.value(ReqValue::Time(t("2024-03-01T12:00:00Z")));
                    s.filter = Some(Filter::Cond {
                        dimension: "orderTime".into(),
                        op: FilterOp::Gte,
                        args: vec![v],
                    });
                    s
                },
                "a filter on orderTime: 2024-03-01T12:00:00Z is not the start of a UTC day",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![met("netSales")];
                    let f = on_time(&mut s, FilterOp::Lte, "2024-03-01T00:00:00Z");
                    s.filter = Some(Filter::Not(Box::new(f)));
                    s
                },
                "a filter on orderTime: lte (only gte and lt a bucket boundary",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![
                        met("netSalesRunningTotal"),
                        dim("orderTime", Some(Granularity::Month)),
                    ];
                    s
                },
                "cumulative",
            ),
            (
                {
                    let mut s = QuerySpec::new("shop", at);
                    s.fields = vec![met("inventoryEvents")];
                    s
                },
                "no metric of the request reads table order_line",
            ),
        ];
        // every rollup says why it cannot answer
        let mut s = QuerySpec::new("shop", at);
        s.fields = vec![dim("productBrand", None), met("netSales")];
        let reason = run(&engine, &s).await.2.unwrap();
        for r in [
            "daily_sales",
            "daily_sales_by_store",
            "daily_orders",
            "daily_totals",
        ] {
            assert!(reason.contains(&format!("shop.{r}: ")), "{reason}");
        }
        for (spec, why) in cases {
            let (a, used, reason) = run(&engine, &spec).await;
            assert_eq!(used, None, "{spec:?}");
            let reason = reason.unwrap();
            assert!(
                reason.contains(why),
                "{}: {reason:?} lacks {why:?}",
                db.backend
            );
            // answered from the rows, like the engine without rollups
            let (b, _, _) = run(&without, &spec).await;
            assert_eq!(canonical(&a), canonical(&b));
        }
        db.cleanup().await;
    }
}

/// A one-row request that the rollup answers.
fn net_sales_by_month(at: &str) -> QuerySpec {
    let mut s = QuerySpec::new("shop", t(at));
    s.fields = vec![
        dim("orderTime", Some(Granularity::Month)),
        met("netSales"),
        met("orderLines"),
    ];
    s
}

#[tokio::test]
async fn a_write_outside_the_loader_stops_the_rollup_until_a_refresh() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let (engine, without) = engines(&db.conn);
        let spec = net_sales_by_month("2024-12-31T00:00:00Z");
        let (before, used, _) = run(&engine, &spec).await;
        let monthly = used.unwrap();
        assert!(monthly.starts_with("shop.daily_"), "{monthly}");
        // a copy of a line, under a new id, written with plain SQL (an ETL job, psql)
        db.conn
            .execute_unprepared(
                "INSERT INTO \"shop\".\"order_line\" (line_item_id, order_id, order_time, \
                 customer_id, campaign_id, store_id, product_id, product_category_id, count, amt, \
                 discount, unit_price_at_purchase, tax_amt, shipping_amt, line_number) \
                 SELECT 'extra-line', order_id, order_time, customer_id, campaign_id, store_id, \
                 product_id, product_category_id, count, amt, discount, unit_price_at_purchase, \
                 tax_amt, shipping_amt, 99 FROM \"shop\".\"order_line\" WHERE order_time < '2024-06-01' ORDER BY line_item_id LIMIT 1",
            )
            .await
            .unwrap();
        let (stale, used, reason) = run(&engine, &spec).await;
        assert_eq!(used, None, "{}: a stale rollup is not used", db.backend);
        assert!(reason.unwrap().contains("is stale"));
        let (raw, _, _) = run(&without, &spec).await;
        assert_eq!(canonical(&stale), canonical(&raw));
        assert_ne!(canonical(&stale), canonical(&before), "the new row counts");
        // after a refresh it is used again, with the new row
        let models = tally::semantic::load_embedded().unwrap();
        let reports = tally::rollup::refresh_all(&db.conn, &models, false)
            .await
            .unwrap();
        let rebuilt: Vec<&str> = reports.iter().map(|r| r.rollup.as_str()).collect();
        assert_eq!(
            rebuilt,
            [
                "shop.daily_sales",
                "shop.daily_sales_by_store",
                "shop.daily_sales_by_category",
                "shop.daily_orders",
                "shop.daily_totals",
                "social.hourly_ads"
            ],
            "the stale rollups of order_line are rebuilt, and the never built one"
        );
        let (fresh, used, _) = run(&engine, &spec).await;
        assert_eq!(used.as_deref(), Some(monthly.as_str()));
        assert_eq!(canonical(&fresh), canonical(&raw));
        // a write again, then a load through the loader: it commits a fresh rollup
        db.conn
            .execute_unprepared(
                "DELETE FROM \"shop\".\"order_line\" WHERE line_item_id = 'extra-line'",
            )
            .await
            .unwrap();
        assert_eq!(run(&engine, &spec).await.1, None);
        shop_db(&db.conn).await;
        let (loaded, used, _) = run(&engine, &spec).await;
        assert_eq!(used.as_deref(), Some(monthly.as_str()));
        assert_eq!(canonical(&loaded), canonical(&before));
        db.cleanup().await;
    }
}

/// One order line, written with plain SQL (not through tally's loader).
const ONE_LINE: &str = "INSERT INTO \"shop\".\"order_line\" (line_item_id, order_id, order_time, \
     customer_id, campaign_id, store_id, product_id, product_category_id, count, \
     unit_price_at_purchase, amt, discount, tax_amt, shipping_amt, line_number) VALUES ('l1', 'o1', \
     '2024-01-02T10:00:00+00:00', 'c1', NULL, 's1', 'p1', 'cat1', 2, 5, 10, 1, 0, 0, 1)";

/// A writer that may write the order lines but not tally's own tables (an ETL role) still
/// writes: the staleness and data-version triggers run as their owner. Its write marks the
/// rollups stale (they are no longer read) and moves the data version (PostgreSQL).
#[tokio::test]
async fn a_writer_without_rights_on_tallys_tables_still_writes_and_stales_the_rollups() {
    let Some(db) = TestDb::postgres_unless_skipped().await else {
        return;
    };
    shop_db(&db.conn).await;
    let (engine, _) = engines(&db.conn);
    let spec = net_sales_by_month("2024-12-31T00:00:00Z");
    assert!(run(&engine, &spec).await.1.is_some());
    let (admin_url, name) = db.pg.clone().unwrap();
    let role = format!("{name}_etl");
    for sql in [
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!("GRANT CONNECT ON DATABASE \"{name}\" TO \"{role}\""),
        format!("GRANT USAGE ON SCHEMA shop TO \"{role}\""),
        format!("GRANT SELECT, INSERT ON shop.order_line TO \"{role}\""),
    ] {
        db.conn.execute_unprepared(&sql).await.unwrap();
    }
    let version = |c: DatabaseConnection| async move {
        text_values(
            &c,
            "SELECT CAST(COALESCE(SUM(writes), 0) AS TEXT) FROM shop.tally_data_version",
        )
        .await
        .remove(0)
    };
    let before = version(db.conn.clone()).await;
    let (base, _) = db.url.rsplit_once('/').unwrap();
    let host = base.rsplit_once('@').map_or(base, |(_, h)| h);
    let host = host.trim_start_matches("postgres://");
    let etl = sea_orm::Database::connect(format!("postgres://{role}@{host}/{name}"))
        .await
        .unwrap();
    etl.execute_unprepared(
        "INSERT INTO shop.order_line (line_item_id, order_id, order_time, customer_id, \
         campaign_id, store_id, product_id, product_category_id, count, amt, discount, \
         unit_price_at_purchase, tax_amt, shipping_amt, line_number) \
         SELECT 'etl-line', order_id, order_time, customer_id, campaign_id, store_id, \
         product_id, product_category_id, count, amt, discount, unit_price_at_purchase, \
         tax_amt, shipping_amt, 98 FROM shop.order_line WHERE order_time < '2024-06-01' \
         ORDER BY line_item_id LIMIT 1",
    )
    .await
    .expect("a writer with rights on the order lines only may insert");
    etl.close().await.ok();
    assert_ne!(
        version(db.conn.clone()).await,
        before,
        "the data version moved"
    );
    let (_, used, reason) = run(&engine, &spec).await;
    assert_eq!(used, None);
    assert!(reason.unwrap().contains("is stale"));
    db.conn
        .execute_unprepared(&format!("DROP OWNED BY \"{role}\""))
        .await
        .unwrap();
    db.cleanup().await;
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP ROLE IF EXISTS \"{role}\""))
        .await
        .unwrap();
}

async fn has_table(db: &DatabaseConnection, table: &str) -> bool {
    let d = tally::sql::dialect_of(db);
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        d.table_exists_query("shop"),
        [table.into()],
    ))
    .await
    .unwrap()
    .is_some()
}

#[tokio::test]
async fn a_read_only_database_never_gets_a_rollup() {
    for db in TestDb::all().await {
        // migrated and holding rows, but written without tally's loader
        db.conn.execute_unprepared(ONE_LINE).await.unwrap();
        let ro = tally::db::open(&db.url).await.unwrap();
        let engine = Engine::with_embedded_models(ro.clone()).unwrap();
        let (answer, used, reason) =
            run(&engine, &net_sales_by_month("2024-02-01T00:00:00Z")).await;
        assert_eq!(used, None);
        assert!(
            reason
                .unwrap()
                .contains("tally may not write to this database"),
            "{}",
            db.backend
        );
        assert_eq!(answer.rows.len(), 1);
        assert!(!has_table(&db.conn, "tally_rollup_daily_sales").await);
        assert!(!has_table(&db.conn, "tally_rollup_status").await);
        // the server on a given database only reads: refreshing there fails, writing nothing
        let models = tally::semantic::load_embedded().unwrap();
        assert!(
            tally::rollup::refresh_all(&ro, &models, false)
                .await
                .is_err()
        );
        assert!(!has_table(&db.conn, "tally_rollup_daily_sales").await);
        ro.close().await.ok();
        db.cleanup().await;
    }
}

fn shop_with(extra: &str) -> Vec<ModelSource> {
    let text = tally::semantic::EMBEDDED_MODELS
        .iter()
        .find(|(m, _, _)| *m == "shop")
        .unwrap()
        .2;
    vec![ModelSource {
        folder: "shop".into(),
        files: vec![SourceFile {
            path: "models/shop/model.toml".into(),
            text: format!("{text}\n{extra}"),
        }],
        sql_roots: Vec::new(),
    }]
}

#[test]
fn broken_rollups_are_reported_with_file_and_line() {
    let base = tally::semantic::EMBEDDED_MODELS
        .iter()
        .find(|(m, _, _)| *m == "shop")
        .unwrap()
        .2
        .lines()
        .count()
        + 1;
    let extra = "[[rollup]]\n\
        name = \"bad\"\n\
        table = \"order_line\"\n\
        grain = \"week\"\n\
        columns = [\"store_id\", \"no_such_column\"]\n\
        measures = [\"net_sales\", \"orders\", \"median_line_net_sales\", \"avg_unit_price\", \"inventory_events\", \"nope\"]\n\
        \n\
        [[rollup]]\n\
        name = \"stock\"\n\
        table = \"product\"\n\
        grain = \"day\"\n\
        measures = [\"net_sales\"]\n";
    let err = tally::semantic::load_sources(&shop_with(extra)).unwrap_err();
    let text = err.to_string();
    let at = |offset: usize, needle: &str| {
        let want = format!("models/shop/model.toml:{}: ", base + offset);
        assert!(
            err.problems
                .iter()
                .any(|p| p.to_string().starts_with(&want) && p.message.contains(needle)),
            "no problem at {want} with {needle:?} in:\n{text}"
        );
    };
    at(4, "grain \"week\" is not hour or day");
    at(5, "no column \"no_such_column\"");
    at(6, "median");
    at(6, "avg");
    at(6, "aggregates table \"inventory_event\"");
    at(6, "unknown measure \"nope\"");
    at(10, "needs an event table");
    // the shipped rollup is valid
    let shop = tally::semantic::load_embedded().unwrap();
    let shop = shop.iter().find(|m| m.name == "shop").unwrap();
    assert_eq!(shop.rollups.len(), 5);
    assert!(shop.rollups[3].measure("orders").unwrap().is_distinct());
    assert_eq!(shop.rollups[0].storage_table(), "tally_rollup_daily_sales");
}

/// `tally migrate` builds the rollups; a write outside tally makes them stale; `tally rollup
/// refresh` rebuilds only stale ones, `--all` every one.
#[tokio::test]
async fn the_command_line_builds_and_refreshes_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let tally = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("TALLY_MODELS")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let migrated = tally(&["migrate", "--db", &url]);
    assert!(
        migrated.contains("rollup shop.daily_sales_by_category: 0 rows from 0 source rows"),
        "{migrated}"
    );
    let db = tally::db::connect(&url).await.unwrap();
    let fresh = |db: DatabaseConnection| async move {
        let shop = tally::semantic::load_embedded()
            .unwrap()
            .into_iter()
            .find(|m| m.name == "shop")
            .unwrap();
        tally::rollup::statuses(&db, &shop)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .map(|s| (s.name.clone(), s.fresh, s.row_count))
            .collect::<Vec<_>>()
    };
    assert!(
        fresh(db.clone())
            .await
            .iter()
            .all(|(_, f, n)| *f && *n == 0)
    );
    assert!(tally(&["rollup", "refresh", "--db", &url]).contains("every rollup is fresh"));
    db.execute_unprepared(ONE_LINE).await.unwrap();
    assert!(fresh(db.clone()).await.iter().all(|(_, f, _)| !*f), "stale");
    let refreshed = tally(&["rollup", "refresh", "--db", &url]);
    assert_eq!(
        refreshed.matches("rows from 1 source rows").count(),
        5,
        "{refreshed}"
    );
    assert!(
        refreshed.contains("daily_orders: 1 rows from 1 source rows in")
            && refreshed.contains("distinct count orders: exact"),
        "{refreshed}"
    );
    assert!(
        fresh(db.clone())
            .await
            .iter()
            .all(|(_, f, n)| *f && *n == 1)
    );
    let all = tally(&["rollup", "refresh", "--all", "--db", &url]);
    assert_eq!(all.matches("rollup shop.").count(), 5, "{all}");
    db.close().await.ok();
}

/// The social model's hourly ad rollup: by hour and coarser, by campaign and device, with
/// counts whose filters bind literals (`event_type = 'click'`), sums and ratios.
#[tokio::test]
async fn social_ads_from_the_hourly_rollup_equal_the_rows() {
    for db in TestDb::all().await {
        let opts = tally::demo::DemoOptions {
            scale: 0.05,
            seed: 7,
        };
        tally::demo::load_demo(&db.conn, "social", &opts, false)
            .await
            .unwrap();
        let (with, without) = engines(&db.conn);
        let mut specs = Vec::new();
        for metrics in [
            vec!["impressions", "clicks", "ctr"],
            vec!["revenue", "cost", "roas", "conversions"],
        ] {
            for dims in [
                vec![dim("adEventTime", Some(Granularity::Hour))],
                vec![
                    dim("adEventTime", Some(Granularity::Day)),
                    dim("campaignName", None),
                ],
                vec![
                    dim("deviceType", None),
                    dim("adEventTime", Some(Granularity::Month)),
                ],
                vec![dim("campaignType", None), dim("os", None)],
            ] {
                let mut s = QuerySpec::new("social", t("2024-01-01T00:00:00Z"));
                s.fields = dims;
                s.fields.extend(metrics.iter().map(|m| met(m)));
                specs.push(s);
            }
        }
        // in zones whose offset is always whole hours, local buckets are made of UTC hours
        // (daylight saving included: the social calendar crosses its changes)
        for zone in ["America/New_York", "Europe/London"] {
            for g in [Granularity::Hour, Granularity::Day, Granularity::Week] {
                let mut s = QuerySpec::new("social", t("2024-01-01T00:00:00Z"));
                s.fields = vec![dim("adEventTime", Some(g)), met("impressions"), met("roas")];
                s.timezone = Some(zone.into());
                specs.push(s);
            }
        }
        let compared = assert_same(&with, &without, &specs, db.backend, |_| {
            "social.hourly_ads".to_owned()
        })
        .await;
        assert_eq!(compared, 14 * AS_OF.len());
        // not at +05:30: a UTC hour spans two local hours
        let mut s = QuerySpec::new("social", t("2024-01-01T00:00:00Z"));
        s.fields = vec![
            dim("adEventTime", Some(Granularity::Day)),
            met("impressions"),
        ];
        s.timezone = Some("Asia/Kolkata".into());
        let (a, used, reason) = run(&with, &s).await;
        assert_eq!(used, None);
        let reason = reason.unwrap();
        assert!(reason.contains("not a whole number of hours"), "{reason}");
        assert_eq!(canonical(&a), canonical(&run(&without, &s).await.0));
        db.cleanup().await;
    }
}

/// Distinct-count requests (orders, aov = netSales / orders) by day and coarser, by store or
/// campaign, filtered on them.
fn order_requests(store: &str) -> Vec<QuerySpec> {
    let metric_sets: Vec<Vec<&str>> = vec![
        vec!["orders"],
        vec!["netSales", "orders"],
        vec!["aov", "orderLines", "discountRate"],
    ];
    let dim_sets: Vec<Vec<Selected>> = vec![
        vec![],
        vec![dim("orderTime", Some(Granularity::Day))],
        vec![dim("orderTime", Some(Granularity::Week))],
        vec![dim("orderTime", Some(Granularity::Month))],
        vec![dim("orderTime", Some(Granularity::Year))],
        vec![dim("storeId", None)],
        vec![
            dim("campaignName", None),
            dim("orderTime", Some(Granularity::Quarter)),
        ],
        vec![dim("hasCampaign", None), dim("storeId", None)],
    ];
    let mut out = Vec::new();
    for (i, metrics) in metric_sets.iter().enumerate() {
        for (j, dims) in dim_sets.iter().enumerate() {
            let mut s = QuerySpec::new("shop", t("2024-06-30T12:00:00Z"));
            s.fields = dims.clone();
            s.fields.extend(metrics.iter().map(|m| met(m)));
            if (i + j) % 3 == 0 {
                let v = s.value(ReqValue::Str(store.to_owned()));
                s.filter = Some(Filter::Cond {
                    dimension: "storeId".into(),
                    op: FilterOp::Equals,
                    args: vec![v],
                });
            }
            out.push(s);
        }
    }
    out
}

#[tokio::test]
async fn distinct_counts_from_the_rollup_equal_the_rows() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let (with, without) = engines(&db.conn);
        let store = text_values(
            &db.conn,
            "SELECT store_id FROM \"shop\".\"order_line\" ORDER BY store_id LIMIT 1",
        )
        .await
        .remove(0);
        // the demo's orders keep their time, store and campaign on every line: exact
        let shop = tally::semantic::load_embedded()
            .unwrap()
            .into_iter()
            .find(|m| m.name == "shop")
            .unwrap();
        let status = tally::rollup::statuses(&db.conn, &shop)
            .await
            .unwrap()
            .unwrap();
        let orders = status.iter().find(|s| s.name == "daily_orders").unwrap();
        assert_eq!(orders.distinct_check, ",orders:0,", "{}", db.backend);
        assert!(orders.distinct_exact("orders"));
        let specs = order_requests(&store);
        let compared = assert_same(&with, &without, &specs, db.backend, |spec| {
            // by time alone, the daily totals (fewer rows); by store or campaign, or filtered
            // by store, the orders by day, store and campaign
            let mut dims: Vec<&str> = spec.filter_dimensions();
            for f in &spec.fields {
                if let Item::Dimension { name, .. } = &f.item {
                    dims.push(name);
                }
            }
            if dims.iter().all(|d| *d == "orderTime") {
                "shop.daily_totals".to_owned()
            } else {
                "shop.daily_orders".to_owned()
            }
        })
        .await;
        assert_eq!(compared, 3 * 8 * AS_OF.len());
        db.cleanup().await;
    }
}

/// Orders and net sales by day as of `at`.
fn orders_by_day(at: &str) -> QuerySpec {
    let mut s = QuerySpec::new("shop", t(at));
    s.fields = vec![
        dim("orderTime", Some(Granularity::Day)),
        dim("storeId", None),
        met("netSales"),
        met("orders"),
    ];
    s
}

/// A line of an existing order (the first one of 2024-03-10) in another store: the order then
/// falls in two groups of `daily_orders`.
const STRADDLING_LINE: &str = "INSERT INTO \"shop\".\"order_line\" (line_item_id, order_id, order_time, \
     customer_id, campaign_id, store_id, product_id, product_category_id, count, amt, \
     discount, unit_price_at_purchase, tax_amt, shipping_amt, line_number) \
     SELECT 'straddling-line', order_id, order_time, customer_id, campaign_id, 'another-store', \
     product_id, product_category_id, count, amt, discount, unit_price_at_purchase, \
     tax_amt, shipping_amt, 98 FROM \"shop\".\"order_line\" \
     WHERE order_time >= '2024-03-10' ORDER BY order_time, line_item_id LIMIT 1";

#[tokio::test]
async fn a_distinct_count_is_read_from_the_rollup_only_while_exact() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let (engine, without) = engines(&db.conn);
        let models = tally::semantic::load_embedded().unwrap();
        let spec = orders_by_day("2024-06-30T12:00:00Z");
        let (before, used, _) = run(&engine, &spec).await;
        assert_eq!(used.as_deref(), Some("shop.daily_orders"), "{}", db.backend);
        // a write after the build: stale, not used, the answer from the rows
        db.conn.execute_unprepared(STRADDLING_LINE).await.unwrap();
        let (stale, used, reason) = run(&engine, &spec).await;
        assert_eq!(used, None);
        assert!(reason.unwrap().contains("daily_orders is stale"));
        let (raw, _, _) = run(&without, &spec).await;
        assert_eq!(canonical(&stale), canonical(&raw), "{}", db.backend);
        assert_ne!(canonical(&stale), canonical(&before), "the new line counts");
        // rebuilt: the order is in two groups, so orders is not read from the rollup...
        tally::rollup::refresh_all(&db.conn, &models, false)
            .await
            .unwrap();
        let (inexact, used, reason) = run(&engine, &spec).await;
        assert_eq!(used, None, "{}", db.backend);
        let reason = reason.unwrap();
        assert!(
            reason.contains(
                "metric orders: measure \"orders\" is a distinct count and 1 of its values fall in more than one group of shop.daily_orders"
            ) && reason.contains("would count them twice"),
            "{}: {reason}",
            db.backend
        );
        assert_eq!(canonical(&inexact), canonical(&raw));
        // ...while its sums still are
        let mut sums = spec.clone();
        sums.fields.retain(|f| f.key != "orders");
        let mut sums_by_store = sums.clone();
        sums_by_store.fields.push(dim("storeId", None));
        let (a, used, _) = run(&engine, &sums_by_store).await;
        assert!(used.is_some(), "{}", db.backend);
        assert_eq!(
            canonical(&a),
            canonical(&run(&without, &sums_by_store).await.0)
        );
        // the straddling line removed and rebuilt: exact again
        db.conn
            .execute_unprepared(
                "DELETE FROM \"shop\".\"order_line\" WHERE line_item_id = 'straddling-line'",
            )
            .await
            .unwrap();
        tally::rollup::refresh_all(&db.conn, &models, false)
            .await
            .unwrap();
        let (again, used, _) = run(&engine, &spec).await;
        assert_eq!(used.as_deref(), Some("shop.daily_orders"));
        assert_eq!(canonical(&again), canonical(&before));
        db.cleanup().await;
    }
}

/// A rollup by category keeping orders: an order with lines of two categories is in two
/// groups, which the build finds; explain says how many.
#[tokio::test]
async fn orders_by_category_are_not_exact_and_explain_says_why() {
    let extra = "[[rollup]]\n\
        name = \"orders_by_category\"\n\
        table = \"order_line\"\n\
        grain = \"day\"\n\
        columns = [\"product_category_id\"]\n\
        measures = [\"net_sales\", \"orders\"]\n";
    let mut shop = tally::semantic::load_sources(&shop_with(extra))
        .unwrap()
        .remove(0);
    shop.rollups.retain(|r| r.name == "orders_by_category");
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let reports = tally::rollup::refresh_all(&db.conn, std::slice::from_ref(&shop), false)
            .await
            .unwrap();
        assert_eq!(reports.len(), 1);
        // the orders with lines in two categories of one day, counted in SQL
        let expected: i64 = db
            .conn
            .query_one_raw(Statement::from_string(
                db.conn.get_database_backend(),
                "SELECT COUNT(*) FROM (SELECT order_id FROM \"shop\".\"order_line\" \
                 GROUP BY order_id HAVING COUNT(DISTINCT product_category_id) > 1) AS x",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        assert!(expected > 0);
        assert_eq!(reports[0].distinct, vec![("orders".to_owned(), expected)]);
        let status = tally::rollup::statuses(&db.conn, &shop)
            .await
            .unwrap()
            .unwrap();
        let s = status
            .iter()
            .find(|s| s.name == "orders_by_category")
            .unwrap();
        assert_eq!(s.shared_values("orders"), Some(expected));
        let engine = Engine::new(db.conn.clone(), vec![std::sync::Arc::new(shop.clone())]);
        let without =
            Engine::new(db.conn.clone(), vec![std::sync::Arc::new(shop.clone())]).without_rollups();
        let mut spec = QuerySpec::new("shop", t("2024-06-30T12:00:00Z"));
        spec.fields = vec![dim("categoryName", None), met("orders")];
        let (a, used, reason) = run(&engine, &spec).await;
        assert_eq!(used, None);
        let reason = reason.unwrap();
        assert!(
            reason.contains(&format!(
                "metric orders: measure \"orders\" is a distinct count and {expected} of its values fall in more than one group of shop.orders_by_category"
            )),
            "{}: {reason}",
            db.backend
        );
        assert_eq!(canonical(&a), canonical(&run(&without, &spec).await.0));
        // net sales by category are read from it
        let mut sales = QuerySpec::new("shop", t("2024-06-30T12:00:00Z"));
        sales.fields = vec![dim("categoryName", None), met("netSales")];
        let (a, used, _) = run(&engine, &sales).await;
        assert_eq!(used.as_deref(), Some("shop.orders_by_category"));
        assert_eq!(canonical(&a), canonical(&run(&without, &sales).await.0));
        db.cleanup().await;
    }
}

/// What explain says of where the rollups' status came from.
async fn status_note(engine: &Engine, spec: &QuerySpec) -> (Table, Option<String>, String) {
    let session = engine.session();
    let table: Table<Value> = engine.run(&session, spec).await.unwrap();
    let last = session.explained().pop().unwrap().to_json("shop.metrics");
    let used = last["rollup"].as_str().map(str::to_owned);
    let note = last["rollupStatus"].as_str().unwrap().to_owned();
    (table, used, note)
}

/// The engine keeps the rollups' status while the shop namespace's data version holds: a
/// repeated request does not read it; a write by tally moves the version and the next
/// request reads it again (and notices a stale rollup at once); a copy that is behind still
/// answers exactly (the statement checks the status itself). Without the result cache's
/// versions the status is read for every request.
#[tokio::test]
async fn the_rollup_status_is_kept_while_the_data_version_holds() {
    for db in TestDb::all().await {
        shop_db(&db.conn).await;
        let without = Engine::with_embedded_models(db.conn.clone())
            .unwrap()
            .without_rollups();
        // without versions: read every time, through the session
        let plain = Engine::with_embedded_models(db.conn.clone()).unwrap();
        for _ in 0..2 {
            let (_, used, note) = status_note(&plain, &orders_by_day("2024-05-05T05:05:05Z")).await;
            assert_eq!(used.as_deref(), Some("shop.daily_orders"));
            assert!(
                note.starts_with("read from shop.tally_rollup_status (")
                    && note.contains("not kept"),
                "{note}"
            );
        }
        // with versions (a poll too slow to notice anything during the test)
        let engine = Engine::with_embedded_models(db.conn.clone())
            .unwrap()
            .with_result_cache(tally::engine::ResultCacheSettings {
                bytes: 1 << 20,
                poll_interval: std::time::Duration::from_secs(60),
            });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (_, used, note) = status_note(&engine, &orders_by_day("2024-05-01T00:00:00Z")).await;
        assert_eq!(used.as_deref(), Some("shop.daily_orders"));
        assert!(
            note.starts_with("read from shop.tally_rollup_status ("),
            "{}: {note}",
            db.backend
        );
        assert!(!note.contains("not kept"), "{note}");
        // the next request uses the copy: one statement, the answer's (other tests of this
        // binary load shop data in parallel, moving the version: a few tries)
        let mut kept = false;
        for i in 0..5 {
            let reads = db_statements(&engine);
            let (_, used, note) =
                status_note(&engine, &orders_by_day(&format!("2024-05-02T00:00:0{i}Z"))).await;
            assert_eq!(used.as_deref(), Some("shop.daily_orders"));
            if note.starts_with("the engine's copy") {
                assert_eq!(
                    db_statements(&engine),
                    reads + 1,
                    "one statement: the answer's"
                );
                kept = true;
                break;
            }
            assert!(note.starts_with("read from"), "{note}");
        }
        assert!(
            kept,
            "{}: the status was read for every request",
            db.backend
        );
        // a write outside tally, not yet seen by the poll: the copy says fresh, the
        // statement sees the rollup stale and reads the rows; exact either way
        db.conn.execute_unprepared(STRADDLING_LINE).await.unwrap();
        let spec = orders_by_day("2024-06-30T12:00:00Z");
        let (a, used, note) = status_note(&engine, &spec).await;
        assert!(
            (note.starts_with("the engine's copy") && used.is_some())
                || (note.starts_with("read from") && used.is_none()),
            "{note} {used:?}"
        );
        assert_eq!(
            canonical(&a),
            canonical(&run(&without, &spec).await.0),
            "{}",
            db.backend
        );
        // tally's writers move the version as they commit: read again, stale at once
        tally::engine::results::bump("shop");
        let spec = orders_by_day("2024-06-30T12:00:01Z");
        let (b, used, note) = status_note(&engine, &spec).await;
        assert!(note.starts_with("read from"), "{note}");
        assert_eq!(used, None, "{}: stale", db.backend);
        assert_eq!(canonical(&b), canonical(&run(&without, &spec).await.0));
        // a load (tally's loader) rebuilds and moves the version: used again at once
        db.conn
            .execute_unprepared(
                "DELETE FROM \"shop\".\"order_line\" WHERE line_item_id = 'straddling-line'",
            )
            .await
            .unwrap();
        shop_db(&db.conn).await;
        let (_, used, note) = status_note(&engine, &orders_by_day("2024-06-30T12:00:02Z")).await;
        assert!(note.starts_with("read from"), "{note}");
        assert_eq!(used.as_deref(), Some("shop.daily_orders"), "{}", db.backend);
        // with the result cache off (--result-cache-bytes 0) the versions are still polled
        // for the rollups, from the first request that could read one: the status is kept
        // all the same
        let uncached = Engine::with_embedded_models(db.conn.clone())
            .unwrap()
            .with_result_cache(tally::engine::ResultCacheSettings {
                bytes: 0,
                poll_interval: std::time::Duration::from_secs(60),
            });
        let (_, _, note) = status_note(&uncached, &orders_by_day("2024-05-03T00:00:00Z")).await;
        assert!(note.contains("not read yet"), "{note}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut kept = false;
        for i in 0..5 {
            let (_, used, note) = status_note(
                &uncached,
                &orders_by_day(&format!("2024-05-03T00:00:0{i}Z")),
            )
            .await;
            assert_eq!(used.as_deref(), Some("shop.daily_orders"));
            assert!(!note.contains("not kept"), "{}: {note}", db.backend);
            if note.starts_with("the engine's copy") {
                kept = true;
                break;
            }
        }
        assert!(kept, "{}: no copy without the cache", db.backend);
        db.cleanup().await;
    }
}

/// The statements the engine's sessions ran.
fn db_statements(engine: &Engine) -> u64 {
    engine
        .guard()
        .counters()
        .statements
        .load(std::sync::atomic::Ordering::SeqCst)
}
