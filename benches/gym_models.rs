//! Timings of the gym row fields on demo data: load, then for `gym { clientConversionEvents }`
//! and `gym { leadConversions }` through GraphQL (the engine's row queries) — every row, page
//! by page, and a filtered, ordered page — next to the model's SQL file run by hand; on
//! SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.
//!
//! `TALLY_BENCH_SCALE=10 TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench gym_models`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use async_graphql::dynamic::Schema;
use chrono::{DateTime, Utc};
use common::TestDb;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

/// The largest page a row field returns.
const PAGE: usize = 10_000;

/// The row fields, with their SQL files (PostgreSQL, SQLite).
const FIELDS: [(&str, &str, &str); 2] = [
    (
        "clientConversionEvents",
        include_str!("../sql/gym/fct_client_conversion_events.sql"),
        include_str!("../sql/gym/fct_client_conversion_events.sqlite.sql"),
    ),
    (
        "leadConversions",
        include_str!("../sql/gym/fct_lead_conversions.sql"),
        include_str!("../sql/gym/fct_lead_conversions.sqlite.sql"),
    ),
];

const AS_OF: &str = "2026-01-01T00:00:00Z";

fn main() {
    let scale: f64 = std::env::var("TALLY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(scale));
}

/// Runs `query` and returns the number of rows of `gym.<field>` (panics on an error).
async fn rows(schema: &Schema, field: &str, query: &str) -> usize {
    let out = serde_json::to_value(schema.execute(query).await).expect("json");
    assert!(out.get("errors").is_none(), "{query}: {out}");
    out["data"]["gym"][field]
        .as_array()
        .expect("a list of rows")
        .len()
}

async fn run(scale: f64) {
    let opts = tally::demo::DemoOptions { scale, seed: 42 };
    let t: DateTime<Utc> = AS_OF.parse().expect("instant");
    for db in TestDb::all().await {
        let started = Instant::now();
        let sources = tally::demo::sources("gym", &opts).expect("demo");
        tally::load::load(
            &db.conn,
            "gym",
            sources,
            &tally::load::LoadOptions::default(),
        )
        .await
        .expect("load");
        let loaded = started.elapsed();
        let schema = tally::graphql::build(Some(db.conn.clone())).expect("schema");
        // the schema's first request prepares the engine (and, on SQLite, the offsets)
        rows(
            &schema,
            "clientConversionEvents",
            &format!(
                "{{ gym {{ clientConversionEvents(asOf: \"{AS_OF}\", limit: 1) {{ userId }} }} }}"
            ),
        )
        .await;
        for (field, postgres, sqlite) in FIELDS {
            let backend = db.conn.get_database_backend();
            let sql = if backend == DatabaseBackend::Postgres {
                postgres
            } else {
                sqlite
            };
            let started = Instant::now();
            let file_rows = db
                .conn
                .query_all_raw(Statement::from_sql_and_values(backend, sql, [t.into()]))
                .await
                .expect("the SQL file")
                .len();
            let file = started.elapsed();

            // every row, every column, page by page
            let columns = if field == "leadConversions" {
                "userId branchId localUserCreatedAt leadStatus clientConversionEventType \
                 clientConversionEventId clientConversionEventLocalCreatedAt \
                 clientConversionEventName clientConversionEventSource clientConversionEventFilter"
            } else {
                "userId branchId localUserCreatedAt leadStatus clientConversionEventType \
                 clientConversionEventId clientConversionEventLocalCreatedAt \
                 clientConversionEventName clientConversionEventSource firstUserMembershipId \
                 firstLocalMembershipPurchasedAt firstMembershipName firstMembershipSource \
                 firstCreditPackId firstLocalCreditPackPurchaseAt firstCreditPackName \
                 firstCreditPackSource"
            };
            let started = Instant::now();
            let mut all = 0;
            let mut pages = 0;
            loop {
                let n = rows(
                    &schema,
                    field,
                    &format!(
                        "{{ gym {{ {field}(asOf: \"{AS_OF}\", limit: {PAGE}, offset: {all}) {{ {columns} }} }} }}"
                    ),
                )
                .await;
                all += n;
                pages += 1;
                if n < PAGE {
                    break;
                }
            }
            let every = started.elapsed();
            assert_eq!(all, file_rows, "{field}: GraphQL and the SQL file differ");

            // a filtered, ordered page
            let conversion = if field == "leadConversions" {
                "conversionFilter: ALL, "
            } else {
                ""
            };
            let started = Instant::now();
            let page = rows(
                &schema,
                field,
                &format!(
                    "{{ gym {{ {field}(asOf: \"{AS_OF}\", {conversion}\
                     where: {{ leadStatus: {{ equals: \"CLIENT\" }} }}, \
                     orderBy: [{{ localUserCreatedAt: DESC }}], limit: 100) {{ {columns} }} }} }}"
                ),
            )
            .await;
            let paged = started.elapsed();
            println!(
                "{:<8} scale {scale}: load {loaded:>8.2?}; {field:<22} SQL file {file_rows:>7} rows in {file:>8.2?}; \
                 GraphQL {all:>7} rows in {pages} pages in {every:>8.2?}; filtered page of {page} in {paged:.2?}",
                db.backend,
            );
        }
        db.cleanup().await;
    }
}
