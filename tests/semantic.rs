//! The semantic layer end to end: model files, GraphQL metrics on both backends, asOf, and
//! the properties of the numbers (additivity, identical backends).

mod common;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use common::TestDb;
use tally::query::{Filter, FilterOp, Item, OrderItem, QuerySpec, ReqValue, Selected};
use tally::semantic::{Agg, DimType, Granularity, MetricKind, Model, ModelSource, SourceFile};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

// ------------------------------------------------------------------ fixtures

const SHOP: &[(&str, &str)] = &[
    (
        "product_category",
        "product_category_id,category_name,parent_category_id\ncat-a,Apparel,\ncat-b,Books,\n",
    ),
    (
        "campaign",
        "campaign_id,campaign_name,campaign_start_time,campaign_end_time,campaign_description\ncamp1,Spring,2024-03-01T00:00:00Z,,\n",
    ),
    (
        "customer",
        "customer_id,first_name,last_name,email,phone,city,state,country,customer_age,updated_at,is_current\n\
         cu1,Ann,Lee,ann@example.com,,Lyon,,France,34,2024-01-01T00:00:00Z,false\n\
         cu1,Ann,Lee,ann@example.com,,Berlin,,Germany,35,2024-03-15T00:00:00Z,true\n\
         cu2,Raj,Patel,raj@example.com,,Austin,TX,USA,,2024-01-02T00:00:00Z,true\n",
    ),
    (
        "product",
        "product_id,product_title,product_brand,product_category_id,unit_price,sku,created_at,updated_at,is_current\n\
         p1,Shirt,Acme,cat-a,20.00,S1,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,true\n\
         p2,Novel,Pages,cat-b,10.00,S2,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,true\n",
    ),
    (
        "order_line",
        "line_item_id,order_id,order_time,customer_id,campaign_id,store_id,product_id,product_category_id,count,amt,discount,unit_price_at_purchase,tax_amt,shipping_amt,line_number\n\
         l1,o1,2024-03-01T10:00:00Z,cu1,camp1,s1,p1,cat-a,2,40.00,5.00,20.00,4,1,1\n\
         l2,o1,2024-03-01T10:00:00Z,cu1,camp1,s1,p2,cat-b,1,10.00,0,10.00,1,0,2\n\
         l3,o2,2024-03-05T12:00:00Z,cu2,,s1,p1,cat-a,1,20.00,0,20.00,2,0,1\n\
         l4,o3,2024-03-20T08:00:00Z,cu1,,s2,p2,cat-b,3,30.00,1.50,10.00,3,0,1\n\
         l5,o4,2024-04-02T09:00:00Z,cu2,camp1,s2,p1,cat-a,1,20.00,2.00,20.00,2,0,1\n",
    ),
];

/// Rows that arrive later, all after 2024-04-30: they never change an answer as of then.
const SHOP_LATE: &[(&str, &str)] = &[
    (
        "product_category",
        "product_category_id,category_name,parent_category_id\ncat-c,Cameras,\n",
    ),
    (
        "customer",
        "customer_id,first_name,last_name,email,phone,city,state,country,customer_age,updated_at,is_current\n\
         cu2,Raj,Patel,raj@example.com,,Toronto,ON,Canada,41,2024-05-02T00:00:00Z,true\n",
    ),
    (
        "order_line",
        "line_item_id,order_id,order_time,customer_id,campaign_id,store_id,product_id,product_category_id,count,amt,discount,unit_price_at_purchase,tax_amt,shipping_amt,line_number\n\
         l6,o5,2024-05-01T00:00:00Z,cu2,,s1,p1,cat-c,1,99.00,0,99.00,0,0,1\n\
         l7,o1,2024-04-30T00:00:01Z,cu1,camp1,s1,p2,cat-b,1,10.00,0,10.00,0,0,3\n",
    ),
];

async fn load(db: &TestDb, model: &str, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (table, text) in files {
        std::fs::write(dir.path().join(format!("{table}.csv")), text).unwrap();
    }
    let sources = tally::load::csv_sources(model, dir.path()).unwrap();
    tally::load::load(&db.conn, model, sources, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("loading {model}: {e}"));
}

async fn gql(db: &TestDb, query: &str) -> Value {
    let schema = tally::graphql::build(Some(db.conn.clone())).expect("schema");
    let res = schema.execute(query).await;
    serde_json::to_value(&res).unwrap()
}

fn data(v: &Value, path: &str) -> Value {
    assert!(v.get("errors").is_none(), "{v}");
    let mut cur = &v["data"];
    for p in path.split('.') {
        cur = &cur[p];
    }
    cur.clone()
}

// ------------------------------------------------------------------ model files

#[test]
fn shipped_models_validate_from_disk_and_embedded() {
    let disk = tally::semantic::load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")))
        .unwrap_or_else(|e| panic!("{e}"));
    let embedded = tally::semantic::load_embedded().unwrap_or_else(|e| panic!("{e}"));
    let names = |ms: &[Model]| ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&disk), ["saas", "gym", "shop", "social", "web"]);
    assert_eq!(names(&embedded), ["saas", "gym", "shop", "social", "web"]);
    for m in &embedded {
        let d = disk.iter().find(|x| x.name == m.name).unwrap();
        assert_eq!(d.metrics.len(), m.metrics.len());
        for metric in &m.metrics {
            assert!(!metric.description.is_empty());
        }
    }
}

const BAD: &str = r#"[model]
name = "bad"
namespace = "shop"
description = "A broken model."

[[table]]
name = "order_line"
as_of = { kind = "event", time = "order_time" }
description = "Order lines."

[[table]]
name = "nope"
physical = "no_such_table"
as_of = { kind = "static" }
description = "Not a table."

[[table]]
name = "product_category"
as_of = { kind = "static" }
description = "Categories."

[[table]]
name = "category_again"
physical = "product_category"
key = ["product_category_id"]
as_of = { kind = "static" }
description = "The same categories again."

[[join]]
from = "order_line"
to = "product_category"
on = [["product_category_id", "product_category_id"]]
cardinality = "one_to_many"

[[join]]
from = "order_line"
to = "category_again"
on = [["product_category_id", "product_category_id"]]
cardinality = "many_to_one"

[[join]]
from = "order_line"
to = "category_again"
on = [["store_id", "product_category_id"]]
cardinality = "many_to_one"

[[dimension]]
name = "categoryName"
table = "category_again"
expr = "category_name"
type = "string"
description = "Ambiguous: two joins lead there."

[[dimension]]
name = "store"
table = "order_line"
expr = "store_idd"
type = "string"
description = "A typo in the column."

[[dimension]]
name = "storeId"
table = "order_line"
expr = "store_id"
type = "string"
granularities = ["day"]
description = "Not a time dimension."

[[measure]]
name = "store_sum"
table = "order_line"
agg = "sum"
expr = "store_id"
description = "A sum over text."

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
name = "lines"
measure = "lines"
unit = "count"
description = "Lines again."

[[metric]]
name = "ghost"
measure = "no_measure"
unit = "count"
description = "An unknown measure."

[[metric]]
name = "loopA"
kind = "derived"
expr = "loopB + 1"
unit = "number"
description = "A cycle."

[[metric]]
name = "loopB"
kind = "derived"
expr = "loopA * 2"
unit = "number"
description = "A cycle."
"#;

#[test]
fn a_bad_model_file_lists_every_problem_with_file_and_line() {
    let src = ModelSource {
        folder: "bad".into(),
        files: vec![SourceFile {
            path: "models/bad/model.toml".into(),
            text: BAD.into(),
        }],
        sql_roots: vec![],
    };
    let err = tally::semantic::load_sources(&[src]).unwrap_err();
    let text = err.to_string();
    let line_of = |needle: &str| BAD.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let expect = [
        (line_of("no_such_table"), "unknown table shop.no_such_table"),
        (line_of("one_to_many"), "fan out"),
        (line_of("store_idd"), "unknown column \"store_idd\""),
        (
            line_of("granularities = [\"day\"]"),
            "takes no granularities",
        ),
        (line_of("name = \"store_sum\"") + 3, "sum over a String"),
        (
            BAD.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("name = \"lines\""))
                .nth(2)
                .unwrap()
                .0
                + 1,
            "metric \"lines\" is defined twice",
        ),
        (line_of("no_measure"), "unknown measure \"no_measure\""),
        (line_of("name = \"categoryName\"") - 1, "ambiguous"),
    ];
    for (line, msg) in expect {
        assert!(
            err.problems
                .iter()
                .any(|p| p.file == "models/bad/model.toml"
                    && p.line == line
                    && p.message.contains(msg)),
            "expected {msg:?} at line {line} in:\n{text}"
        );
    }
    assert!(text.contains("depends on itself"), "{text}");
    assert!(
        text.contains("order_line → category_again | order_line → category_again"),
        "{text}"
    );
    assert!(text.starts_with("the model files have"), "{text}");
    // a TOML syntax error is reported with its line too
    let src = ModelSource {
        folder: "bad".into(),
        files: vec![SourceFile {
            path: "x.toml".into(),
            text: "[model]\nname = \"x\"\ndescription = \"d\"\n[[table]\n".into(),
        }],
        sql_roots: vec![],
    };
    let err = tally::semantic::load_sources(&[src]).unwrap_err();
    assert_eq!(err.problems[0].file, "x.toml");
    assert_eq!(err.problems[0].line, 4, "{err}");
}

// ------------------------------------------------------------------ SQL snapshots

fn shop() -> Model {
    tally::semantic::load_embedded()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "shop")
        .unwrap()
}

fn model(name: &str) -> Model {
    tally::semantic::load_embedded()
        .unwrap()
        .into_iter()
        .find(|m| m.name == name)
        .unwrap()
}

fn dim(key: &str, name: &str, g: Option<Granularity>) -> Selected {
    Selected {
        key: key.into(),
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

fn snapshot_cases() -> Vec<(&'static str, Model, QuerySpec)> {
    let at = t("2024-03-31T00:00:00Z");
    let mut out = Vec::new();
    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![
        dim("categoryName", "categoryName", None),
        met("netSales"),
        met("orders"),
        met("aov"),
    ];
    s.order = vec![OrderItem {
        target: "netSales".into(),
        descending: true,
    }];
    s.limit = Some(10);
    out.push(("shop_aov_by_category", shop(), s));

    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![
        dim("week", "orderTime", Some(Granularity::Week)),
        dim("customerCountry", "customerCountry", None),
        met("netSales"),
        met("netSalesRunningTotal"),
        met("medianLineNetSales"),
    ];
    let a = s.value(ReqValue::Str("Books".into()));
    let b = s.value(ReqValue::Time(t("2024-03-01T00:00:00Z")));
    s.filter = Some(Filter::And(vec![
        Filter::Cond {
            dimension: "categoryName".into(),
            op: FilterOp::NotEquals,
            args: vec![a],
        },
        Filter::Cond {
            dimension: "orderTime".into(),
            op: FilterOp::Gte,
            args: vec![b],
        },
    ]));
    out.push(("shop_weekly_by_country_type2", shop(), s));

    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![
        dim("productBrand", "productBrand", None),
        met("netSales"),
        met("inventoryChange"),
    ];
    out.push(("shop_two_tables", shop(), s));

    let mut s = QuerySpec::new("saas", at);
    s.fields = vec![
        dim("month", "signupTime", Some(Granularity::Month)),
        met("users"),
        met("invoicedAmount"),
        met("payments"),
    ];
    out.push(("saas_partitions", model("saas"), s));

    let mut s = QuerySpec::new("gym", at);
    s.fields = vec![
        dim("branchCountry", "branchCountry", None),
        met("leads"),
        met("clients"),
        met("conversionRate"),
        met("medianDaysToConvert"),
    ];
    s.conversion_filter = Some("MEMBERSHIP".into());
    out.push(("gym_conversion", model("gym"), s));

    let mut s = QuerySpec::new("social", at);
    s.fields = vec![
        dim("day", "adEventTime", Some(Granularity::Day)),
        met("ctr"),
        met("roas"),
    ];
    s.timezone = Some("Europe/London".into());
    out.push(("social_ads_local_days", model("social"), s));

    let mut s = QuerySpec::new("social", at);
    s.fields = vec![
        dim("month", "activityTime", Some(Granularity::Month)),
        dim("deviceType", "deviceType", None),
        met("churnRate"),
        met("resurrectedUsers"),
        met("stickiness"),
        Selected {
            key: "isComplete".into(),
            item: Item::IsComplete,
        },
    ];
    let v = s.value(ReqValue::Str("mobile".into()));
    s.filter = Some(Filter::Cond {
        dimension: "os".into(),
        op: FilterOp::NotEquals,
        args: vec![v],
    });
    out.push(("social_retention_stickiness", model("social"), s));

    let mut s = QuerySpec::new("social", at);
    s.fields = vec![
        dim("day", "activityTime", Some(Granularity::Day)),
        met("dauMau"),
    ];
    out.push(("social_dau_mau", model("social"), s));

    let mut s = QuerySpec::new("web", at);
    s.fields = vec![
        dim("productName", "productName", None),
        met("productConversionRate"),
        met("sessions"),
    ];
    s.conversion_filter = Some("ADD_TO_CART".into());
    out.push(("web_product_conversion", model("web"), s));
    out
}

#[test]
fn sql_snapshots_per_dialect() {
    let dialects: [&dyn tally::sql::Dialect; 2] = [&tally::sql::Postgres, &tally::sql::Sqlite];
    for (name, model, spec) in snapshot_cases() {
        spec.check(&model).unwrap_or_else(|e| panic!("{name}: {e}"));
        for d in dialects {
            let plan = tally::plan::plan(&model, &spec, d.percentile_cont()).unwrap();
            let r = tally::sql::render(&plan, d).unwrap();
            let text = format!("{}\n\n-- params: {:?}", r.sql, r.bind(&spec));
            insta::assert_snapshot!(format!("{name}__{}", d.name()), text);
        }
    }
}

/// A statement rendered for one request is bound for another of the same shape (the plan
/// cache): same SQL, and the values of the other request.
#[test]
fn a_rendered_statement_is_bound_per_request() {
    let model = model("social");
    let request = |at: &str, os: &str, limit: u64, zone: &str| {
        let mut s = QuerySpec::new("social", t(at));
        s.fields = vec![
            dim("month", "activityTime", Some(Granularity::Month)),
            met("churnRate"),
            met("averageDailyActiveUsers"),
        ];
        let v = s.value(ReqValue::Str(os.into()));
        s.filter = Some(Filter::Cond {
            dimension: "os".into(),
            op: FilterOp::NotEquals,
            args: vec![v],
        });
        s.limit = Some(limit);
        s.timezone = Some(zone.into());
        s
    };
    let a = request("2024-03-31T00:00:00Z", "ios", 10, "Europe/London");
    let b = request("2024-06-30T12:00:00Z", "android", 3, "Asia/Tokyo");
    assert_eq!(a.cache_key(), b.cache_key());
    for d in [
        &tally::sql::Postgres as &dyn tally::sql::Dialect,
        &tally::sql::Sqlite,
    ] {
        let render = |s: &QuerySpec| {
            let plan = tally::plan::plan(&model, s, d.percentile_cont()).unwrap();
            tally::sql::render(&plan, d).unwrap()
        };
        let (ra, rb) = (render(&a), render(&b));
        assert_eq!(ra.sql, rb.sql);
        assert_eq!(ra.bind(&b), rb.bind(&b));
        assert_eq!(
            ra.bind_with(&tally::sql::Bindings::of(&b)),
            rb.bind(&b),
            "{}",
            d.name()
        );
        assert_ne!(ra.bind(&a), ra.bind(&b));
    }
}

/// Names and values a checked request cannot have are internal errors of the planner, never
/// SQL that silently answers something else.
#[test]
fn unchecked_requests_are_plan_errors_not_sql() {
    let model = shop();
    let at = t("2024-03-31T00:00:00Z");
    let plan_err = |s: &QuerySpec| {
        assert!(s.check(&model).is_err());
        tally::plan::plan(&model, s, true).unwrap_err().message
    };
    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![met("noSuchMetric")];
    assert!(plan_err(&s).contains("unknown metric"));
    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![met("netSales")];
    s.filter = Some(Filter::Cond {
        dimension: "noSuchDimension".into(),
        op: FilterOp::IsNull,
        args: vec![],
    });
    assert!(plan_err(&s).contains("unknown dimension"));
    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![met("netSalesRunningTotal")];
    assert!(plan_err(&s).contains("orderTime is not selected"));
    // malformed filters the GraphQL layer never builds
    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![met("netSales")];
    let v = s.value(ReqValue::Time(at));
    for (op, args) in [(FilterOp::Between, vec![v]), (FilterOp::Gte, vec![v + 1])] {
        s.filter = Some(Filter::Cond {
            dimension: "orderTime".into(),
            op,
            args,
        });
        assert!(tally::plan::plan(&model, &s, true).is_err(), "{op:?}");
    }
    // a plan that counts on a median aggregate, rendered for a backend without one
    let mut s = QuerySpec::new("shop", at);
    s.fields = vec![met("medianLineNetSales")];
    let plan = tally::plan::plan(&model, &s, true).unwrap();
    assert!(tally::sql::render(&plan, &tally::sql::Postgres).is_ok());
    assert!(tally::sql::render(&plan, &tally::sql::Sqlite).is_err());
}

// ------------------------------------------------------------------ results on fixtures

#[tokio::test]
async fn shop_metrics_on_a_fixture() {
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z") { netSales orders aov medianLineNetSales discountRate grossSales unitsSold } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([{ "netSales": "93.50", "orders": 3, "aov": "31.17", "medianLineNetSales": "24.25", "discountRate": 0.065, "grossSales": "100.00", "unitsSold": 7 }]),
            "{}",
            db.backend
        );
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z") { categoryName netSales orders aov medianLineNetSales } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([
                { "categoryName": "Apparel", "netSales": "55.00", "orders": 2, "aov": "27.50", "medianLineNetSales": "27.50" },
                { "categoryName": "Books", "netSales": "38.50", "orders": 2, "aov": "19.25", "medianLineNetSales": "19.25" }
            ]),
            "{}",
            db.backend
        );
        // type-2 customers: the country as known at asOf
        let v = gql(&db, r#"{ a: shop { metrics(asOf: "2024-03-31T00:00:00Z") { customerCountry netSales } } b: shop { metrics(asOf: "2024-03-10T00:00:00Z") { customerCountry netSales } } }"#).await;
        assert_eq!(
            data(&v, "a.metrics"),
            json!([{ "customerCountry": "Germany", "netSales": "73.50" }, { "customerCountry": "USA", "netSales": "20.00" }])
        );
        assert_eq!(
            data(&v, "b.metrics"),
            json!([{ "customerCountry": "France", "netSales": "45.00" }, { "customerCountry": "USA", "netSales": "20.00" }])
        );
        // weeks (Monday), running total and trailing window, ordering by an alias's field
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z", orderBy: [{ orderTime: DESC }]) { week: orderTime(granularity: WEEK) netSales netSalesRunningTotal } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([
                { "week": "2024-03-18T00:00:00Z", "netSales": "28.50", "netSalesRunningTotal": "93.50" },
                { "week": "2024-03-04T00:00:00Z", "netSales": "20.00", "netSalesRunningTotal": "65.00" },
                { "week": "2024-02-26T00:00:00Z", "netSales": "45.00", "netSalesRunningTotal": "45.00" }
            ])
        );
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z") { day: orderTime(granularity: DAY) netSalesTrailing7Days } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([
                { "day": "2024-03-01T00:00:00Z", "netSalesTrailing7Days": "45.00" },
                { "day": "2024-03-05T00:00:00Z", "netSalesTrailing7Days": "65.00" },
                { "day": "2024-03-20T00:00:00Z", "netSalesTrailing7Days": "28.50" }
            ])
        );
        // campaign (null: none), where, limit/offset
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z") { campaignName hasCampaign netSales } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([{ "campaignName": "Spring", "hasCampaign": true, "netSales": "45.00" }, { "campaignName": null, "hasCampaign": false, "netSales": "48.50" }])
        );
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z", where: { categoryName: { equals: "Books" } }) { netSales } } }"#).await;
        assert_eq!(data(&v, "shop.metrics"), json!([{ "netSales": "38.50" }]));
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-04-30T00:00:00Z", where: { or: [{ orderTime: { gte: "2024-03-20T00:00:00Z" } }, { customerCountry: { in: ["France"] } }] }) { netSales orders } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([{ "netSales": "46.50", "orders": 2 }]),
            "{}",
            db.backend
        );
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z", orderBy: [{ netSales: ASC }], limit: 1, offset: 1) { storeId netSales } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([{ "storeId": "s1", "netSales": "65.00" }])
        );
        // explain
        let ex = &v["extensions"]["explain"][0];
        assert_eq!(ex["path"], "shop.metrics");
        assert!(ex["sql"].as_str().unwrap().starts_with("WITH"));
        assert_eq!(ex["params"][0], "2024-03-31T00:00:00Z");
        assert_eq!(ex["joinPath"], json!(["order_line"]));
        assert!(ex["planMicros"].is_u64() && ex["dbMillis"].is_number());
        db.cleanup().await;
    }
}

#[tokio::test]
async fn as_of_answers_never_change_when_later_rows_arrive() {
    let queries = [
        r#"{ shop { metrics(asOf: "2024-04-30T00:00:00Z") { categoryName netSales orders aov } } }"#,
        r#"{ shop { metrics(asOf: "2024-04-30T00:00:00Z") { customerCountry customerCity customerAge netSales } } }"#,
        r#"{ shop { metrics(asOf: "2024-04-30T00:00:00Z") { m: orderTime(granularity: MONTH) netSales netSalesRunningTotal medianLineNetSales } } }"#,
        r#"{ shop { metrics(asOf: "2024-04-30T00:00:00Z") { productBrand campaignName netSales unitsSold } } }"#,
    ];
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        let mut before = Vec::new();
        for q in queries {
            before.push(data(&gql(&db, q).await, "shop.metrics"));
        }
        load(&db, "shop", SHOP_LATE).await;
        for (q, b) in queries.iter().zip(&before) {
            assert_eq!(&data(&gql(&db, q).await, "shop.metrics"), b, "{q}");
        }
        // and the new rows do count later
        let v = gql(
            &db,
            r#"{ shop { metrics(asOf: "2024-06-01T00:00:00Z") { netSales } } }"#,
        )
        .await;
        assert_eq!(data(&v, "shop.metrics"), json!([{ "netSales": "220.50" }]));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn errors_carry_codes_and_suggestions() {
    let db = TestDb::sqlite().await;
    let v = gql(&db, r#"{ shop { metrics { netSale } } }"#).await;
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("Did you mean \"netSales\""), "{msg}");
    let v = gql(
        &db,
        r#"{ shop { metrics(asOf: "2024-13-01") { netSales } } }"#,
    )
    .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_AS_OF");
    let v = gql(&db, r#"{ shop { metrics { orderTime inventoryChange } } }"#).await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "UNREACHABLE_DIMENSION",
        "{v}"
    );
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("inventory_event")
    );
    let v = gql(&db, r#"{ shop { metrics { categoryName } } }"#).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "NO_METRIC");
    let v = gql(
        &db,
        r#"{ shop { metrics(orderBy: [{ orders: DESC }]) { netSales } } }"#,
    )
    .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_ORDER_BY");
    let v = gql(
        &db,
        r#"{ shop { metrics(timezone: "Mars/Base") { netSales } } }"#,
    )
    .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_TIMEZONE");
    let v = gql(&db, r#"{ shop { metrics { netSalesRunningTotal } } }"#).await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"],
        "MISSING_TIME_DIMENSION"
    );
    let v = gql(&db, r#"{ shop { metrics(limit: 0) { netSales } } }"#).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_ARGUMENT");
    let v = gql(
        &db,
        r#"{ shop { metrics(where: { categoryNam: { equals: "x" } }) { netSales } } }"#,
    )
    .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("categoryNam"),
        "{v}"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn catalog_lists_models_metrics_and_dimensions() {
    let db = TestDb::sqlite().await;
    let v = gql(&db, r#"{ catalog { models { name description metrics { name description unit kind dimensions } dimensions { name description type granularities } } } }"#).await;
    let models = data(&v, "catalog.models");
    let names: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["saas", "gym", "shop", "social", "web"]);
    let shop = &models[2];
    let aov = shop["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "aov")
        .unwrap();
    assert_eq!(aov["unit"], "currency");
    assert_eq!(aov["kind"], "ratio");
    assert!(
        aov["dimensions"]
            .as_array()
            .unwrap()
            .contains(&json!("categoryName"))
    );
    assert!(
        !aov["dimensions"]
            .as_array()
            .unwrap()
            .contains(&json!("inventoryEventType"))
    );
    let ot = shop["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "orderTime")
        .unwrap();
    assert_eq!(ot["type"], "time");
    assert_eq!(
        ot["granularities"],
        json!(["HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR"])
    );
    db.cleanup().await;
}

// ------------------------------------------------------------------ properties on demo data

/// The time dimension a metric must be selected with (cumulative, retention and period
/// average metrics, also through ratios and derived metrics), and whether it is a trailing
/// window (which needs a granularity no longer than the window).
fn time_dimension_of(model: &Model, metric: &str) -> Option<(String, bool)> {
    match &model.metric(metric)?.kind {
        MetricKind::Cumulative {
            time_dimension,
            window_seconds,
            ..
        } => Some((time_dimension.clone(), window_seconds.is_some())),
        MetricKind::Retention { time_dimension, .. }
        | MetricKind::PeriodAverage { time_dimension, .. } => Some((time_dimension.clone(), false)),
        MetricKind::Ratio {
            numerator,
            denominator,
        } => time_dimension_of(model, numerator).or_else(|| time_dimension_of(model, denominator)),
        MetricKind::Derived { expr } => expr
            .identifiers()
            .iter()
            .find_map(|m| time_dimension_of(model, m)),
        _ => None,
    }
}

/// The requests compared across backends and checked for additivity: every metric of a model
/// that needs no time dimension by each dimension it reaches (time ones by MONTH), and
/// ungrouped; every other metric by its time dimension (MONTH, or WEEK for trailing windows).
fn demo_specs(model: &Model, at: DateTime<Utc>) -> Vec<(String, QuerySpec)> {
    let mut out = Vec::new();
    let simple: Vec<&str> = model
        .metrics
        .iter()
        .filter(|m| time_dimension_of(model, &m.name).is_none())
        .map(|m| m.name.as_str())
        .collect();
    for d in &model.dimensions {
        let metrics: Vec<&str> = simple
            .iter()
            .copied()
            .filter(|m| {
                model
                    .reachable_dimensions(m)
                    .iter()
                    .any(|x| x.name == d.name)
            })
            .collect();
        if metrics.is_empty() {
            continue;
        }
        let mut s = QuerySpec::new(model.name.clone(), at);
        let g = (d.dim_type == DimType::Time).then_some(Granularity::Month);
        s.fields.push(dim(&d.name, &d.name, g));
        s.fields.extend(metrics.iter().map(|m| met(m)));
        out.push((d.name.clone(), s));
    }
    for m in &model.metrics {
        if let Some((td, window)) = time_dimension_of(model, &m.name) {
            let mut s = QuerySpec::new(model.name.clone(), at);
            let g = if window {
                Granularity::Week
            } else {
                Granularity::Month
            };
            s.fields.push(dim(&td, &td, Some(g)));
            s.fields.push(met(&m.name));
            out.push((format!("{} by {td}", m.name), s));
        }
    }
    let mut s = QuerySpec::new(model.name.clone(), at);
    s.fields.extend(simple.iter().map(|m| met(m)));
    out.push(("total".to_owned(), s));
    out
}

fn as_decimal(v: &Value) -> rust_decimal::Decimal {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_i64().map(rust_decimal::Decimal::from).unwrap(),
        Value::Null => rust_decimal::Decimal::ZERO,
        other => panic!("not a number: {other}"),
    }
}

#[tokio::test]
async fn demo_data_additivity_and_identical_backends() {
    let at = t("2024-09-01T00:00:00Z");
    let models = tally::semantic::load_embedded().unwrap();
    let mut results: Vec<Vec<(String, Vec<Vec<Value>>)>> = Vec::new();
    for db in TestDb::all().await {
        let opts = tally::demo::DemoOptions {
            scale: 0.02,
            seed: 11,
        };
        for m in &models {
            tally::cli::load_demo(&db.conn, &m.name, &opts, false)
                .await
                .unwrap();
        }
        let mut mine = Vec::new();
        for model in &models {
            let specs = demo_specs(model, at);
            let mut total: Option<(QuerySpec, Vec<Value>)> = None;
            let mut grouped = Vec::new();
            for (name, spec) in specs {
                let rows = run_spec(&db.conn, model, &spec)
                    .await
                    .unwrap_or_else(|e| panic!("{} by {name}: {e}", model.name));
                if name == "total" {
                    total = Some((spec.clone(), rows.rows[0].clone()));
                } else {
                    grouped.push((name.clone(), spec.clone(), rows.rows.clone()));
                }
                mine.push((format!("{}.{name}", model.name), rows.rows));
            }
            // additive metrics: the sum over any categorical dimension is the total
            let (tspec, trow) = total.unwrap();
            for (dname, spec, rows) in grouped {
                if model
                    .dimension(&dname)
                    .is_none_or(|d| d.dim_type == DimType::Time)
                {
                    continue;
                }
                for (ci, f) in spec.fields.iter().enumerate().skip(1) {
                    let Item::Metric { name } = &f.item else {
                        continue;
                    };
                    let metric = model.metric(name).unwrap();
                    let MetricKind::Simple { measure } = &metric.kind else {
                        continue;
                    };
                    if !model.measure(measure).unwrap().agg.is_additive() {
                        continue;
                    }
                    let sum: rust_decimal::Decimal = rows.iter().map(|r| as_decimal(&r[ci])).sum();
                    let ti = tspec.fields.iter().position(|x| x.key == *name).unwrap();
                    assert_eq!(
                        sum,
                        as_decimal(&trow[ti]),
                        "{}: {name} by {dname} on {}",
                        model.name,
                        db.backend
                    );
                }
            }
        }
        results.push(mine);
        db.cleanup().await;
    }
    if let [sqlite, postgres] = results.as_slice() {
        for ((name, a), (_, b)) in sqlite.iter().zip(postgres) {
            assert_eq!(a, b, "{name} differs between SQLite and PostgreSQL");
        }
    }
}

#[tokio::test]
async fn gym_conversion_filters_on_demo_data() {
    let model = model("gym");
    let at = t("2024-10-27T01:00:00Z");
    let mut results = Vec::new();
    for db in TestDb::all().await {
        let opts = tally::demo::DemoOptions {
            scale: 0.02,
            seed: 5,
        };
        tally::cli::load_demo(&db.conn, "gym", &opts, false)
            .await
            .unwrap();
        let mut mine = Vec::new();
        for cf in ["ALL", "MEMBERSHIP", "USER_CREDIT"] {
            let mut s = QuerySpec::new("gym", at);
            s.fields = vec![
                dim("branchCountry", "branchCountry", None),
                dim("branchName", "branchName", None),
                met("leads"),
                met("clients"),
                met("conversionRate"),
                met("avgDaysToConvert"),
                met("medianDaysToConvert"),
            ];
            s.conversion_filter = Some(cf.into());
            let rows = run_spec(&db.conn, &model, &s)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!rows.rows.is_empty());
            for r in &rows.rows {
                let (leads, clients) = (r[2].as_i64().unwrap(), r[3].as_i64().unwrap());
                assert!(clients <= leads);
                let rate = r[4].as_f64().unwrap();
                assert!((rate - clients as f64 / leads as f64).abs() < 1e-6);
            }
            mine.push(rows.rows);
        }
        // ALL converts at least as many users as either filter alone
        let clients = |i: usize| -> i64 { mine[i].iter().map(|r| r[3].as_i64().unwrap()).sum() };
        assert!(clients(0) >= clients(1) && clients(0) >= clients(2));
        results.push(mine);
        db.cleanup().await;
    }
    if let [a, b] = results.as_slice() {
        assert_eq!(a, b, "gym differs between SQLite and PostgreSQL");
    }
    let _ = Agg::Count;
}

/// Answers `spec` through the engine, as the API does.
async fn run_spec(
    db: &sea_orm::DatabaseConnection,
    model: &Model,
    spec: &QuerySpec,
) -> Result<tally::engine::Table, tally::error::ApiError> {
    let engine = tally::engine::Engine::new(db.clone(), vec![std::sync::Arc::new(model.clone())]);
    engine.run(&engine.session(), spec).await
}

/// A sum of `a - b` over two columns never NULL is computed as the sum of `a` minus the sum
/// of `b` only where the arithmetic is exact: decimals on a backend with exact decimals,
/// integers anywhere; never with a column that may be NULL, nor for floats.
#[test]
fn sums_of_differences_split_only_when_exact_and_never_null() {
    use tally::semantic::{BinOp, ColType};
    let shop = model("shop");
    let lines = shop.table("order_line").unwrap();
    let net = shop.measure("net_sales").unwrap();
    assert_eq!(
        net.split_sum(lines, true),
        Some((BinOp::Sub, "amt", "discount"))
    );
    // SQLite keeps decimals as floating point
    assert_eq!(net.split_sum(lines, false), None);
    // a column that may be NULL
    let mut nullable = (**lines).clone();
    nullable.not_null.retain(|c| c != "discount");
    assert_eq!(net.split_sum(&nullable, true), None);
    // integers add exactly on every backend; floats on none
    let mut ints = (**lines).clone();
    for (c, t) in ints.columns.iter_mut() {
        if c == "amt" || c == "discount" {
            *t = ColType::Int;
        }
    }
    assert_eq!(
        net.split_sum(&ints, false),
        Some((BinOp::Sub, "amt", "discount"))
    );
    let mut floats = (**lines).clone();
    for (c, t) in floats.columns.iter_mut() {
        if c == "amt" {
            *t = ColType::Float;
        }
    }
    assert_eq!(net.split_sum(&floats, true), None);
    // not a sum, or not two columns
    let units = shop.measure("units").unwrap();
    assert_eq!(units.split_sum(lines, true), None);
}

/// The live catalog says which columns are `NOT NULL`, on both backends, as the demo schema
/// declares them (what lets a sum of differences split on a team's own tables too).
#[tokio::test]
async fn the_catalog_reads_not_null_columns() {
    let mut dbs = vec![TestDb::sqlite().await];
    dbs.extend(TestDb::postgres_unless_skipped().await);
    for db in dbs {
        let catalog = tally::engine::read_catalog(&db.conn).await.unwrap();
        let not_null = catalog.not_null("shop", "order_line");
        for c in ["amt", "discount", "order_id", "order_time"] {
            assert!(not_null.iter().any(|x| x == c), "{}: {c}", db.backend);
        }
        assert!(
            !not_null.iter().any(|x| x == "campaign_id"),
            "{}: campaign_id may be NULL",
            db.backend
        );
        let from_schema = tally::semantic::physical_not_null("shop", "order_line").unwrap();
        let mut a = not_null.clone();
        let mut b = from_schema.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{}", db.backend);
        db.cleanup().await;
    }
}
