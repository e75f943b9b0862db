//! A team's own database: tally reads it where its tables live, under a role that may only
//! read, and changes nothing in it.
//!
//! The gym and shop demo tables are loaded into a database tally owns, answers are taken
//! there, then the tables are moved where a team might keep them (gym in `public`, shop in a
//! schema `sales`; on SQLite, gym in the main database of a file of its own). tally, opened
//! read-only with `--namespace` and `--only`, must give the same answers, and the database's
//! catalogue (PostgreSQL) or bytes (SQLite) must be identical before and after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

use common::TestDb;

/// The questions asked of both layouts: metrics, a row field, shop metrics by month.
const GYM_QUERY: &str = r#"{ gym {
  metrics(asOf: "2025-06-01T00:00:00Z", conversionFilter: MEMBERSHIP, orderBy: [{ branchName: ASC }]) {
    branchName leads clients conversionRate medianDaysToConvert }
  byMonth: metrics(asOf: "2025-06-01T00:00:00Z", orderBy: [{ signupTime: ASC }]) {
    signupTime(granularity: MONTH) leads clients }
  leadConversions(asOf: "2025-06-01T00:00:00Z", conversionFilter: ALL, limit: 20) {
    userId branchId localUserCreatedAt leadStatus clientConversionEventType }
} }"#;

const SHOP_QUERY: &str = r#"{ shop {
  metrics(asOf: "2025-01-01T00:00:00Z", orderBy: [{ orderTime: ASC }]) {
    month: orderTime(granularity: MONTH) netSales orders aov }
} }"#;

async fn load_demo(db: &DatabaseConnection, models: &[&str]) {
    let opts = tally::demo::DemoOptions {
        scale: 0.05,
        seed: 11,
    };
    for m in models {
        tally::demo::load_demo(db, m, &opts, false).await.unwrap();
    }
}

/// `data` of a query through the library's schema over `db` and `models`; panics on errors.
async fn answer(db: &DatabaseConnection, models: Vec<tally::semantic::Model>, q: &str) -> Value {
    let schema = tally::graphql::build_with(Some(db.clone()), models).unwrap();
    let resp = serde_json::to_value(schema.execute(q).await).unwrap();
    assert!(resp.get("errors").is_none(), "{q}: {resp}");
    resp["data"].clone()
}

/// `data` of `tally query` (the binary) with `args`; panics when it fails.
fn cli_answer(args: &[&str], q: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("query")
        .arg(q)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("TALLY_MODELS")
        .env_remove("TALLY_NAMESPACES")
        .env_remove("TALLY_ONLY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tally query {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["data"].clone()
}

/// A fresh PostgreSQL database; `None` (the test returns) only outside CI without
/// `TEST_DATABASE_URL`.
async fn postgres() -> Option<TestDb> {
    TestDb::postgres_unless_skipped().await
}

fn only(models: &[&str]) -> BTreeSet<String> {
    models.iter().map(|m| (*m).to_owned()).collect()
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Everything in the database's own schemas: relations (tables, indexes, views, sequences),
/// functions and triggers, with their schema; sorted.
async fn pg_catalogue(db: &DatabaseConnection) -> Vec<String> {
    let sql = "\
        SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text AS x \
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
        UNION ALL SELECT 'fn ' || n.nspname || '.' || p.proname FROM pg_proc p \
        JOIN pg_namespace n ON n.oid = p.pronamespace \
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
        UNION ALL SELECT 'trigger ' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal \
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace \
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' \
        ORDER BY 1";
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn postgres_tables_in_public_and_sales_read_by_a_select_only_role() {
    let Some(db) = postgres().await else {
        return;
    };
    load_demo(&db.conn, &["gym", "shop"]).await;
    let models = tally::semantic::load_models(None).unwrap();
    let keep = |names: &[&str]| {
        models
            .iter()
            .filter(|m| names.contains(&m.name.as_str()))
            .cloned()
            .collect::<Vec<_>>()
    };
    let gym_before = answer(&db.conn, keep(&["gym"]), GYM_QUERY).await;
    let shop_before = answer(&db.conn, keep(&["shop"]), SHOP_QUERY).await;
    assert!(
        gym_before["gym"]["metrics"].as_array().unwrap().len() > 1,
        "{gym_before}"
    );

    // Where a team keeps them: gym in public, shop in sales; nothing else of tally's.
    let gym_tables: Vec<String> = db
        .conn
        .query_all_raw(Statement::from_string(
            db.conn.get_database_backend(),
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'gym'",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    assert!(
        gym_tables.iter().any(|t| t == "dim_branch"),
        "{gym_tables:?}"
    );
    for t in &gym_tables {
        exec(
            &db.conn,
            &format!("ALTER TABLE gym.\"{t}\" SET SCHEMA public"),
        )
        .await;
    }
    exec(&db.conn, "DROP SCHEMA gym CASCADE").await;
    exec(&db.conn, "ALTER SCHEMA shop RENAME TO sales").await;
    for s in ["saas", "social", "web"] {
        exec(&db.conn, &format!("DROP SCHEMA {s} CASCADE")).await;
    }
    exec(&db.conn, "DROP TABLE IF EXISTS public.seaql_migrations").await;
    exec(&db.conn, "DROP TABLE IF EXISTS public.tally_tz_offsets").await;
    let (_, name) = db.pg.clone().unwrap();
    let role = format!("{name}_reader");
    exec(&db.conn, &format!("CREATE ROLE \"{role}\" LOGIN")).await;
    exec(
        &db.conn,
        &format!("GRANT CONNECT ON DATABASE \"{name}\" TO \"{role}\""),
    )
    .await;
    exec(&db.conn, "REVOKE CREATE ON SCHEMA public FROM PUBLIC").await;
    for s in ["public", "sales"] {
        exec(
            &db.conn,
            &format!("GRANT USAGE ON SCHEMA {s} TO \"{role}\""),
        )
        .await;
        exec(
            &db.conn,
            &format!("GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO \"{role}\""),
        )
        .await;
    }
    let catalogue_before = pg_catalogue(&db.conn).await;

    // The role's URL: same server, same database, user = the reader.
    let (scheme_host, db_name) = db.url.rsplit_once('/').unwrap();
    let host = scheme_host
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(scheme_host);
    let host = host.trim_start_matches("postgres://");
    let reader_url = format!("postgres://{role}@{host}/{db_name}");

    let reader = tally::db::open(&reader_url).await.unwrap();
    let namespaces: tally::semantic::Namespaces = [
        ("gym".to_owned(), "public".to_owned()),
        ("shop".to_owned(), "sales".to_owned()),
    ]
    .into_iter()
    .collect();
    let live =
        tally::engine::load_live_models(&reader, None, &namespaces, Some(&only(&["gym", "shop"])))
            .await
            .unwrap();
    assert_eq!(
        live.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["gym", "shop"]
    );
    assert_eq!(answer(&reader, live.clone(), GYM_QUERY).await, gym_before);
    assert_eq!(answer(&reader, live, SHOP_QUERY).await, shop_before);

    // The same through the binary.
    let args = [
        "--db",
        &reader_url,
        "--namespace",
        "gym=public,shop=sales",
        "--only",
        "gym,shop",
    ];
    assert_eq!(cli_answer(&args, GYM_QUERY), gym_before);
    assert_eq!(cli_answer(&args, SHOP_QUERY), shop_before);

    // Without the mapping the message says where tally looked and how to point it elsewhere.
    let err =
        tally::engine::load_live_models(&reader, None, &Default::default(), Some(&only(&["gym"])))
            .await
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("the database has no table gym.dim_branch")
            && err.contains("--namespace gym="),
        "{err}"
    );
    reader.close().await.unwrap();

    assert_eq!(pg_catalogue(&db.conn).await, catalogue_before);
    exec(&db.conn, &format!("DROP OWNED BY \"{role}\"")).await;
    db.conn.clone().close().await.ok();
    let admin = sea_orm::Database::connect(&db.pg.clone().unwrap().0)
        .await
        .unwrap();
    db.cleanup().await;
    exec(&admin, &format!("DROP ROLE IF EXISTS \"{role}\"")).await;
}

fn sha(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn sqlite_file_of_a_team_is_opened_read_only() {
    let db = TestDb::sqlite().await;
    load_demo(&db.conn, &["gym"]).await;
    let models: Vec<_> = tally::semantic::load_models(None)
        .unwrap()
        .into_iter()
        .filter(|m| m.name == "gym")
        .collect();
    let before = answer(&db.conn, models, GYM_QUERY).await;

    // The team's file: a copy of the gym tables in the main database of a file of its own,
    // in rollback-journal mode, not writable.
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team.db");
    exec(&db.conn, "PRAGMA gym.wal_checkpoint(TRUNCATE)").await;
    let escaped = team.to_string_lossy().replace('\'', "''");
    exec(&db.conn, &format!("VACUUM gym INTO '{escaped}'")).await;
    {
        let c = sea_orm::Database::connect(format!("sqlite://{}", team.display()))
            .await
            .unwrap();
        exec(&c, "PRAGMA journal_mode = DELETE").await;
        c.close().await.unwrap();
    }
    let mut perms = std::fs::metadata(&team).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&team, perms).unwrap();
    let bytes_before = sha(&team);
    let files_before: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    let url = format!("sqlite://{}", team.display());
    let conn = tally::db::open(&url).await.unwrap();
    let namespaces: tally::semantic::Namespaces = [("gym".to_owned(), "main".to_owned())]
        .into_iter()
        .collect();
    let live = tally::engine::load_live_models(&conn, None, &namespaces, Some(&only(&["gym"])))
        .await
        .unwrap();
    assert_eq!(answer(&conn, live, GYM_QUERY).await, before);
    conn.close().await.unwrap();
    assert_eq!(
        cli_answer(
            &["--db", &url, "--namespace", "gym=main", "--only", "gym"],
            GYM_QUERY
        ),
        before
    );
    assert_eq!(sha(&team), bytes_before, "the team's file changed");
    let files_after: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files_after, files_before,
        "tally created files beside the team's"
    );
    db.cleanup().await;
}

#[test]
fn a_database_that_does_not_exist_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.db");
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["query", "{ shop { metrics { netSales } } }", "--db"])
        .arg(format!("sqlite://{}", typo.display()))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("there is no SQLite database at") && stderr.contains("typo.db"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "tally created files"
    );
}

/// Moves every table of schema `from` into `public` (PostgreSQL).
async fn move_to_public(db: &DatabaseConnection, from: &str) {
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            [from.into()],
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    for t in &tables {
        exec(
            db,
            &format!("ALTER TABLE \"{from}\".\"{t}\" SET SCHEMA public"),
        )
        .await;
    }
}

/// `tally init` on the gym tables in `public` (with the foreign keys a team would have):
/// the scaffold validates, serves, and its counts equal the shipped model's and plain SQL's.
#[tokio::test]
async fn init_scaffolds_a_model_that_serves_at_once() {
    let Some(db) = postgres().await else {
        return;
    };
    load_demo(&db.conn, &["gym"]).await;
    let shipped: Vec<_> = tally::semantic::load_models(None)
        .unwrap()
        .into_iter()
        .filter(|m| m.name == "gym")
        .collect();
    let t = "2025-06-01T00:00:00Z";
    let reference = answer(
        &db.conn,
        shipped,
        &format!(r#"{{ gym {{ metrics(asOf: "{t}") {{ leads }} }} }}"#),
    )
    .await;
    move_to_public(&db.conn, "gym").await;
    for s in ["gym", "saas", "shop", "social", "web"] {
        exec(&db.conn, &format!("DROP SCHEMA {s} CASCADE")).await;
    }
    exec(&db.conn, "DROP TABLE IF EXISTS public.seaql_migrations").await;
    exec(
        &db.conn,
        "ALTER TABLE public.dim_user ADD CONSTRAINT user_branch FOREIGN KEY (branch_id) REFERENCES public.dim_branch (branch_id)",
    )
    .await;
    exec(
        &db.conn,
        "COMMENT ON TABLE public.dim_branch IS 'Gym branches.'",
    )
    .await;

    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["init", "--db", &db.url, "--model", "gymnasium", "--out"])
        .arg(out.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(out.path().join("gymnasium/model.toml")).unwrap();
    assert!(text.contains("namespace = \"public\""), "{text}");
    assert!(text.contains("description = \"Gym branches.\""), "{text}");
    assert!(
        text.contains("from = \"dim_user\"\nto = \"dim_branch\"\non = [[\"branch_id\", \"branch_id\"]]\ncardinality = \"many_to_one\""),
        "{text}"
    );
    // A second init does not overwrite it.
    let again = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["init", "--db", &db.url, "--model", "gymnasium", "--out"])
        .arg(out.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!again.status.success());

    let q = format!(
        r#"{{ gymnasium {{ metrics(asOf: "{t}") {{ dimUserCount }}
             byCountry: metrics(asOf: "{t}", orderBy: [{{ country: ASC }}]) {{ country dimUserCount }} }} }}"#
    );
    let data = cli_answer(
        &[
            "--db",
            &db.url,
            "--models",
            out.path().to_str().unwrap(),
            "--only",
            "gymnasium",
        ],
        &q,
    );
    let leads = reference["gym"]["metrics"][0]["leads"].as_i64().unwrap();
    assert!(leads > 0);
    assert_eq!(
        data["gymnasium"]["metrics"][0]["dimUserCount"].as_i64(),
        Some(leads)
    );
    // grouped through the join the scaffold made from the foreign key
    let by_country: i64 = data["gymnasium"]["byCountry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dimUserCount"].as_i64().unwrap())
        .sum();
    assert_eq!(by_country, leads);
    let sql_countries = db
        .conn
        .query_one_raw(Statement::from_string(
            db.conn.get_database_backend(),
            "SELECT count(DISTINCT b.country) FROM public.dim_user u JOIN public.dim_branch b USING (branch_id) \
             WHERE u.created_at <= '2025-06-01T00:00:00Z' AND b.created_at <= '2025-06-01T00:00:00Z'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    let countries = data["gymnasium"]["byCountry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["country"].is_null())
        .count() as i64;
    assert_eq!(countries, sql_countries);
    db.cleanup().await;
}

/// The saas model on a database where tally keeps no state: its tables in another schema,
/// no stage history. The lifecycle answers are computed from the events, equal the answers
/// from the history, and explain says so.
#[tokio::test]
async fn saas_lifecycle_without_stage_history_on_a_read_only_database() {
    let Some(db) = postgres().await else {
        return;
    };
    load_demo(&db.conn, &["saas"]).await;
    let q = r#"{ saas {
      stageCounts(asOf: "2025-01-01T00:00:00Z") { stage count }
      journey(cohort: { from: "2024-01-01T00:00:00Z", to: "2024-07-01T00:00:00Z" }, asOf: "2025-01-01T00:00:00Z") { nodes { id count } links { source target count } }
      users(asOf: "2025-01-01T00:00:00Z", stage: CUSTOMER, limit: 5) { totalCount edges { node { userId stage } } }
    } }"#;
    let models: Vec<_> = tally::semantic::load_models(None)
        .unwrap()
        .into_iter()
        .filter(|m| m.name == "saas")
        .collect();
    let with_history = answer(&db.conn, models, q).await;
    assert!(
        with_history["saas"]["stageCounts"][0]["count"]
            .as_i64()
            .unwrap()
            > 0,
        "{with_history}"
    );
    exec(&db.conn, "ALTER SCHEMA saas RENAME TO lifecycle").await;
    for t in [
        "tally_stage_history",
        "tally_stage_history_status",
        "tally_stage_history_scope",
    ] {
        exec(
            &db.conn,
            &format!("DROP TABLE IF EXISTS lifecycle.{t} CASCADE"),
        )
        .await;
    }
    let reader = tally::db::open(&db.url).await.unwrap();
    let namespaces: tally::semantic::Namespaces = [("saas".to_owned(), "lifecycle".to_owned())]
        .into_iter()
        .collect();
    let live = tally::engine::load_live_models(&reader, None, &namespaces, Some(&only(&["saas"])))
        .await
        .unwrap();
    let schema = tally::graphql::build_with(Some(reader.clone()), live).unwrap();
    let resp = serde_json::to_value(schema.execute(q).await).unwrap();
    assert!(resp.get("errors").is_none(), "{resp}");
    assert_eq!(resp["data"], with_history);
    let explain = resp["extensions"]["explain"].to_string();
    assert!(
        explain.contains("direct (no stage history in this database)"),
        "{explain}"
    );
    reader.close().await.unwrap();
    db.cleanup().await;
}
