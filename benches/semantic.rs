//! Benchmarks of the semantic layer (a bench binary that prints its numbers):
//!
//! ```sh
//! cargo bench --bench semantic
//! TALLY_BENCH_SCALE=10 TEST_DATABASE_URL=postgres://… cargo bench --bench semantic
//! ```
//!
//! - `plan_and_render`: check + plan + render (no cache) of a typical request, and of a
//!   request of 80 metrics by 10 dimensions; and a plan-cache hit.
//! - `end_to_end_vs_raw_sql`: a GraphQL metrics request against the same SQL run directly
//!   with the same driver (`query_all_raw`), and against `engine.run` (the statement plus
//!   reading every cell into typed, rounded values), on demo data (`TALLY_BENCH_SCALE`,
//!   default 1), on every backend; medians of `TALLY_BENCH_ITERS` (default 20) interleaved
//!   runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};

use tally::query::{Filter, FilterOp, Item, QuerySpec, ReqValue, Selected};
use tally::semantic::{Granularity, Model, ModelSource, SourceFile};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dim(name: &str, g: Option<Granularity>) -> Selected {
    Selected {
        key: name.into(),
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

fn typical() -> (Model, QuerySpec) {
    let model = tally::semantic::load_embedded()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "shop")
        .unwrap();
    let mut s = QuerySpec::new("shop", t("2025-01-01T00:00:00Z"));
    s.fields = vec![
        dim("orderTime", Some(Granularity::Week)),
        dim("categoryName", None),
        met("netSales"),
        met("orders"),
        met("aov"),
    ];
    let v = s.value(ReqValue::Time(t("2024-01-01T00:00:00Z")));
    s.filter = Some(Filter::Cond {
        dimension: "orderTime".into(),
        op: FilterOp::Gte,
        args: vec![v],
    });
    (model, s)
}

/// A model of one fact table with 10 dimensions and 80 metrics (over 80 filtered measures).
fn wide() -> (Model, QuerySpec) {
    let mut toml = String::from(
        "[model]\nname = \"wide\"\nnamespace = \"shop\"\ndescription = \"Benchmark.\"\n\
         [[table]]\nname = \"order_line\"\nas_of = { kind = \"event\", time = \"order_time\" }\ndescription = \"Lines.\"\n\
         [[table]]\nname = \"product_category\"\nkey = [\"product_category_id\"]\nas_of = { kind = \"static\" }\ndescription = \"Categories.\"\n\
         [[table]]\nname = \"customer\"\nkey = [\"customer_id\", \"updated_at\"]\nas_of = { kind = \"type2\", key = [\"customer_id\"], updated = \"updated_at\" }\ndescription = \"Customers.\"\n\
         [[join]]\nfrom = \"order_line\"\nto = \"product_category\"\non = [[\"product_category_id\", \"product_category_id\"]]\ncardinality = \"many_to_one\"\n\
         [[join]]\nfrom = \"order_line\"\nto = \"customer\"\non = [[\"customer_id\", \"customer_id\"]]\ncardinality = \"many_to_one\"\n",
    );
    let dims = [
        ("d0", "order_line", "order_time", "time"),
        ("d1", "order_line", "store_id", "string"),
        ("d2", "order_line", "campaign_id", "string"),
        ("d3", "order_line", "product_id", "string"),
        ("d4", "product_category", "category_name", "string"),
        ("d5", "product_category", "parent_category_id", "string"),
        ("d6", "customer", "country", "string"),
        ("d7", "customer", "city", "string"),
        ("d8", "customer", "state", "string"),
        ("d9", "order_line", "line_number", "number"),
    ];
    for (n, table, expr, ty) in dims {
        toml.push_str(&format!(
            "[[dimension]]\nname = \"{n}\"\ntable = \"{table}\"\nexpr = \"{expr}\"\ntype = \"{ty}\"\ndescription = \"x\"\n"
        ));
    }
    for i in 0..80 {
        let (agg, expr) = match i % 4 {
            0 => ("sum", "amt - discount"),
            1 => ("count_distinct", "order_id"),
            2 => ("sum", "count"),
            _ => ("avg", "unit_price_at_purchase"),
        };
        toml.push_str(&format!(
            "[[measure]]\nname = \"m{i}\"\ntable = \"order_line\"\nagg = \"{agg}\"\nexpr = \"{expr}\"\nfilter = \"line_number > {i}\"\ndescription = \"x\"\n\
             [[metric]]\nname = \"metric{i}\"\nmeasure = \"m{i}\"\nunit = \"number\"\ndescription = \"x\"\n"
        ));
    }
    let src = ModelSource {
        folder: "wide".into(),
        files: vec![SourceFile {
            path: "wide.toml".into(),
            text: toml,
        }],
        sql_roots: vec![],
    };
    let model = tally::semantic::load_sources(&[src])
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let mut s = QuerySpec::new("wide", t("2025-01-01T00:00:00Z"));
    for (n, _, _, ty) in dims {
        s.fields
            .push(dim(n, (ty == "time").then_some(Granularity::Month)));
    }
    for i in 0..80 {
        s.fields.push(met(&format!("metric{i}")));
    }
    (model, s)
}

fn time<F: FnMut()>(n: u32, mut f: F) -> Duration {
    for _ in 0..(n / 10).max(1) {
        f();
    }
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed() / n
}

fn plan_and_render() {
    let d = tally::sql::Postgres;
    for (name, (model, spec), n) in [
        ("typical", typical(), 2000),
        ("80 metrics x 10 dimensions", wide(), 100),
    ] {
        let per = time(n, || {
            spec.check(&model).unwrap();
            let plan = tally::plan::plan(&model, &spec, true).unwrap();
            let r = tally::sql::render(&plan, &d).unwrap();
            std::hint::black_box(r);
        });
        let cache = tally::engine::PlanCache::default();
        let hit = time(n, || {
            std::hint::black_box(cache.get_or_render(&model, &spec, &d).unwrap());
        });
        println!("{name}: check+plan+render {per:?}; plan-cache hit {hit:?}");
    }
}

async fn end_to_end_vs_raw_sql() {
    let scale: f64 = std::env::var("TALLY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let query = r#"{ shop { metrics(asOf: "2025-01-01T00:00:00Z") { week: orderTime(granularity: WEEK) categoryName netSales orders aov } } }"#;
    for db in common::TestDb::all().await {
        let started = Instant::now();
        let opts = tally::demo::DemoOptions { scale, seed: 42 };
        tally::cli::load_demo(&db.conn, "shop", &opts, false)
            .await
            .unwrap();
        println!(
            "{}: shop demo data at scale {scale} loaded in {:?}",
            db.backend,
            started.elapsed()
        );
        let schema = tally::graphql::build(Some(db.conn.clone())).unwrap();
        let first = schema.execute(query).await;
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        let json = serde_json::to_value(&first).unwrap();
        let rows = json["data"]["shop"]["metrics"].as_array().unwrap().len();
        // the same statement and values, run directly with the same driver
        let (model, mut spec) = typical();
        spec.filter = None;
        spec.values.clear();
        spec.fields = vec![
            Selected {
                key: "week".into(),
                item: Item::Dimension {
                    name: "orderTime".into(),
                    granularity: Some(Granularity::Week),
                },
            },
            dim("categoryName", None),
            met("netSales"),
            met("orders"),
            met("aov"),
        ];
        let dialect: &dyn tally::sql::Dialect = if db.backend == "postgres" {
            &tally::sql::Postgres
        } else {
            &tally::sql::Sqlite
        };
        let plan = tally::plan::plan(&model, &spec, dialect.percentile_cont()).unwrap();
        let rendered = tally::sql::render(&plan, dialect).unwrap();
        // the statement the GraphQL request ran (its explain)
        if let Some(ran) = json["extensions"]["explain"][0]["sql"].as_str() {
            assert_eq!(rendered.sql, ran);
        }
        let sql = rendered.sql.clone();
        let values = rendered.bind(&spec);
        let engine =
            tally::engine::Engine::new(db.conn.clone(), vec![std::sync::Arc::new(model.clone())]);
        let n: u32 = std::env::var("TALLY_BENCH_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        let (mut raw, mut exec, mut gql) = (Vec::new(), Vec::new(), Vec::new());
        // interleaved, so that drifts of the machine hit all three alike; medians
        for _ in 0..n {
            let s = Instant::now();
            let stmt = Statement::from_sql_and_values(
                db.conn.get_database_backend(),
                sql.clone(),
                values.clone(),
            );
            let r = db.conn.query_all_raw(stmt).await.unwrap();
            std::hint::black_box(r);
            raw.push(s.elapsed());
            let s = Instant::now();
            let r = engine
                .run::<serde_json::Value>(&engine.session(), &spec)
                .await
                .unwrap();
            std::hint::black_box(r);
            exec.push(s.elapsed());
            let s = Instant::now();
            let r = schema.execute(query).await;
            std::hint::black_box(r);
            gql.push(s.elapsed());
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (raw, exec, gql) = (median(&mut raw), median(&mut exec), median(&mut gql));
        println!(
            "{}: {rows} rows; medians of {n}: raw SQL {raw:?}, engine.run (cached plan + SQL + typed values) {exec:?}, GraphQL end to end {gql:?}, ratio {:.3}",
            db.backend,
            gql.as_secs_f64() / raw.as_secs_f64()
        );
        db.cleanup().await;
    }
}

fn main() {
    plan_and_render();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(end_to_end_vs_raw_sql());
}
