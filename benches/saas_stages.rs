//! Benchmark: saas stage counts as of several instants over demo data, on PostgreSQL and
//! SQLite.
//!
//! ```text
//! cargo bench --bench saas_stages
//! ```
//!
//! Settings (environment):
//! - `SAAS_BENCH_SCALES`: demo scales, comma-separated (default `1,10`; scale 1 is 10 000
//!   users, scale 100 one million);
//! - `SAAS_BENCH_PG`: a PostgreSQL URL whose server the benchmark may create databases on
//!   (default `postgres://postgres@127.0.0.1:5432/test`; `none` skips PostgreSQL). Query
//!   parameters of the URL are kept for the benchmark's own connection (e.g.
//!   `?options=-c%20work_mem%3D256MB`);
//! - `SAAS_BENCH_DIR`: where the SQLite files go (default `target/saas-bench`);
//! - `SAAS_BENCH_RUNS`: timed runs per instant (default 3; the minimum and median are
//!   printed);
//! - `SAAS_BENCH_SKIP_SQLITE=1`: PostgreSQL only;
//! - `SAAS_BENCH_DIRECT=1`: also time each instant's stage counts computed from the event
//!   tables (`user_stages`, what runs while the stage history is stale) and check they equal
//!   the history's;
//! - `SAAS_BENCH_REBUILD=1`: rebuild the stage history even when it is fresh (to time it).
//!
//! Each scale is loaded once into `tally_bench_saas_<scale>` (PostgreSQL) and
//! `<dir>/scale-<scale>/tally.db` (SQLite) and reused by later runs (it is reloaded only
//! when its `global_events` table is empty). After loading, the tables are analysed.
#![cfg_attr(test, allow(dead_code))]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tally::demo::DemoOptions;
use tally::engine::Session;
use tally::saas::history::Unusable;
use tally::saas::{self, Cohort, SaasConfig, StageSource};

/// The instants stage counts are timed at.
const INSTANTS: &[&str] = &[
    "2024-03-01T00:00:00Z",
    "2024-09-01T00:00:00Z",
    "2025-03-01T00:00:00Z",
    "2025-12-31T23:00:00Z",
];

fn main() {
    run();
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let scales: Vec<f64> = env("SAAS_BENCH_SCALES", "1,10")
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let pg = env("SAAS_BENCH_PG", "postgres://postgres@127.0.0.1:5432/test");
        let dir = env("SAAS_BENCH_DIR", "target/saas-bench");
        let runs: usize = env("SAAS_BENCH_RUNS", "3").parse().unwrap_or(3).max(1);
        let skip_sqlite = std::env::var("SAAS_BENCH_SKIP_SQLITE").is_ok_and(|v| v == "1");
        for scale in scales {
            if pg != "none" {
                let db = postgres_db(&pg, scale).await;
                bench("postgres", &db, scale, runs).await;
                db.close().await.ok();
            }
            if !skip_sqlite {
                let folder = format!("{dir}/scale-{scale}");
                std::fs::create_dir_all(&folder).expect("bench folder");
                let url = format!("sqlite://{folder}/tally.db");
                let db = tally::db::connect(&url).await.expect("connect sqlite");
                bench("sqlite", &db, scale, runs).await;
                db.close().await.ok();
            }
        }
    });
}

/// The benchmark database of `scale` on the server of `admin_url` (created when missing).
async fn postgres_db(admin_url: &str, scale: f64) -> DatabaseConnection {
    let name = format!("tally_bench_saas_{}", scale.to_string().replace('.', "_"));
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to SAAS_BENCH_PG");
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await
        .expect("pg_database")
        .is_some();
    if !exists {
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create bench database");
    }
    admin.close().await.ok();
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(base);
    tally::db::connect(&format!("{server}/{name}{query}"))
        .await
        .expect("connect bench database")
}

/// Rows of a table.
async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) FROM \"saas\".\"{table}\""),
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("count value")
}

/// Loads `scale` when needed, then times stage counts (and one journey) at each instant.
async fn bench(backend: &str, db: &DatabaseConnection, scale: f64, runs: usize) {
    tally::db::migrate(db).await.expect("migrate");
    if count(db, "global_events").await == 0 {
        let started = Instant::now();
        let sources = tally::demo::sources("saas", &DemoOptions { scale, seed: 42 }).expect("demo");
        tally::load::load(db, "saas", sources, &tally::load::LoadOptions::default())
            .await
            .expect("load demo");
        println!(
            "{backend} scale {scale}: loaded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let analyse = if backend == "postgres" {
            "ANALYZE"
        } else {
            "ANALYZE saas"
        };
        db.execute_unprepared(analyse).await.expect("analyze");
    }
    let mut sizes = Vec::new();
    for t in ["global_events", "users", "shops", "invoices", "payments"] {
        sizes.push(format!("{t} {}", count(db, t).await));
    }
    println!("{backend} scale {scale}: {}", sizes.join(", "));
    let config = SaasConfig::default();
    let status = saas::history::status(db).await.expect("history status");
    let fresh = status
        .as_ref()
        .is_some_and(|s| s.source_for(&config) == StageSource::History);
    if !fresh || std::env::var("SAAS_BENCH_REBUILD").is_ok_and(|v| v == "1") {
        let report = saas::history::refresh(db, &config)
            .await
            .expect("refresh the stage history");
        println!(
            "{backend} scale {scale}: stage history rebuilt: {} rows in {:.1} s",
            report.rows,
            report.millis as f64 / 1000.0
        );
    } else if let Some(s) = status {
        println!(
            "{backend} scale {scale}: stage history fresh: {} rows, built in {:.1} s",
            s.row_count,
            s.build_millis as f64 / 1000.0
        );
    }
    let direct_too = std::env::var("SAAS_BENCH_DIRECT").is_ok_and(|v| v == "1");
    let engine = tally::engine::Engine::with_embedded_models(db.clone()).expect("models");
    for t in INSTANTS {
        let as_of: DateTime<Utc> = DateTime::parse_from_rfc3339(t)
            .expect("instant")
            .with_timezone(&Utc);
        let mut times: Vec<Duration> = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            // what the stageCounts field runs: the stage metric, through the engine
            counts =
                saas::stage_counts_by_metric(&engine, &engine.session(), as_of, &Cohort::default())
                    .await
                    .expect("stage counts");
            times.push(started.elapsed());
        }
        let lifecycle = saas::stage_counts(&Session::new(db), as_of, &config, &Cohort::default())
            .await
            .expect("lifecycle stage counts");
        assert_eq!(
            lifecycle, counts,
            "the metric and the lifecycle statement differ at {t}"
        );
        times.sort();
        let users: i64 = counts.iter().map(|(_, n)| n).sum();
        let shown: Vec<String> = counts
            .iter()
            .map(|(s, n)| format!("{}={n}", s.as_str()))
            .collect();
        println!(
            "{backend} scale {scale}: stageCounts asOf {t}: min {:.3} s, median {:.3} s ({users} users: {})",
            times[0].as_secs_f64(),
            times[times.len() / 2].as_secs_f64(),
            shown.join(" ")
        );
        if direct_too {
            // The same counts computed from the event tables (user_stages), once.
            let started = Instant::now();
            let direct = saas::stage_counts_from(
                &Session::new(db),
                as_of,
                &config,
                &Cohort::default(),
                Some(StageSource::Direct(Unusable::Stale)),
            )
            .await
            .expect("direct stage counts");
            println!(
                "{backend} scale {scale}: stageCounts asOf {t} from user_stages: {:.3} s, {}",
                started.elapsed().as_secs_f64(),
                if direct == counts {
                    "same counts"
                } else {
                    "DIFFERENT COUNTS"
                }
            );
            assert_eq!(direct, counts, "history and user_stages differ at {t}");
        }
    }
    let as_of = DateTime::parse_from_rfc3339(INSTANTS[INSTANTS.len() - 1])
        .expect("instant")
        .with_timezone(&Utc);
    let started = Instant::now();
    saas::journey(&Session::new(db), as_of, &config, &Cohort::default())
        .await
        .expect("journey");
    println!(
        "{backend} scale {scale}: journey asOf {}: {:.3} s",
        INSTANTS[INSTANTS.len() - 1],
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    saas::transitions(
        &Session::new(db),
        DateTime::parse_from_rfc3339(INSTANTS[1])
            .expect("instant")
            .with_timezone(&Utc),
        as_of,
        &config,
        &Cohort::default(),
    )
    .await
    .expect("transitions");
    println!(
        "{backend} scale {scale}: transitions {} -> {}: {:.3} s",
        INSTANTS[1],
        INSTANTS[INSTANTS.len() - 1],
        started.elapsed().as_secs_f64()
    );
    let filter = saas::UserFilter {
        stage: Some(saas::Stage::Customer),
        cohort: Cohort::default(),
    };
    let started = Instant::now();
    let (page, _) = saas::users_page(&Session::new(db), as_of, &config, &filter, 0, Some(50))
        .await
        .expect("users page");
    println!(
        "{backend} scale {scale}: first page of 50 CUSTOMER users (with details): {:.3} s ({} users)",
        started.elapsed().as_secs_f64(),
        page.len()
    );
}
