//! Timings of the gym models on demo data: load, tz offsets, the whole of each model, and a
//! filtered, ordered page — on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.
//!
//! `TALLY_BENCH_SCALE=10 TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench gym_models`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use chrono::{DateTime, Utc};
use common::TestDb;
use tally::engine::Session;
use tally::gym::{self, Condition, ConversionFilter, Direction, Filter, Model, OrderBy, Query};

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

async fn run(scale: f64) {
    let opts = tally::demo::DemoOptions { scale, seed: 42 };
    let t: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("instant");
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
        for model in [Model::ClientConversionEvents, Model::LeadConversions] {
            let started = Instant::now();
            let rows = gym::run_file(&Session::new(&db.conn), model, t)
                .await
                .expect("run");
            let whole = started.elapsed();
            let started = Instant::now();
            let page = Query {
                filter: Some(Filter::Column {
                    column: "lead_status".into(),
                    condition: Condition::Equals("CLIENT".into()),
                }),
                order_by: vec![OrderBy {
                    column: "local_user_created_at".into(),
                    direction: Direction::Desc,
                }],
                limit: Some(100),
                offset: 0,
            };
            let paged = match model {
                Model::ClientConversionEvents => {
                    gym::client_conversion_events(&Session::new(&db.conn), t, &page).await
                }
                Model::LeadConversions => {
                    gym::lead_conversions(
                        &Session::new(&db.conn),
                        t,
                        Some(ConversionFilter::All),
                        &page,
                    )
                    .await
                }
            }
            .expect("page");
            println!(
                "{:<8} scale {scale}: load {loaded:>8.2?}; {:<28} {:>7} rows in {whole:>8.2?}; page of {} in {:.2?}",
                db.backend,
                model.name(),
                rows.len(),
                paged.len(),
                started.elapsed()
            );
        }
        db.cleanup().await;
    }
}
