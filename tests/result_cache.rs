//! The result cache (docs/CACHING.md), on every backend under test: a repeated request is a
//! hit; a load through tally's loader and a write by another connection make it a miss
//! (the latter within the documented bound); requests differing only in a bound value never
//! share an answer; the bytes bound holds (least recently used out); 0 bytes turns it off.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::dynamic::Schema;
use common::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value;
use tally::engine::{Guard, ResultCacheSettings};

/// The poll interval the tests run with (long enough that a loaded machine still polls on
/// time: a request after two missed intervals is not cacheable, which the tests would take
/// for a failure).
const POLL: Duration = Duration::from_millis(200);

/// PostgreSQL's own delay before a committed write shows in `pg_stat_user_tables` (a backend
/// flushes its counters within 1 s, or 10 s when it flushed less than 1 s before; see
/// docs/CACHING.md): the bound of a namespace without tally's data-version triggers.
const PG_STATS_DELAY: Duration = Duration::from_secs(10);

/// Slack for a loaded machine on top of a bound (the poll is a task among others); less
/// than [`PG_STATS_DELAY`], so that a test of the exact mechanisms fails if the statistics
/// were what noticed the write.
const SLACK: Duration = Duration::from_secs(2);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/saas/rules");

const USERS: &str = r#"{ saas { metrics(asOf: "2030-01-01T00:00:00Z") { lifecycleUsers } } }"#;

/// Every backend under test; under `CI=true` PostgreSQL must be configured.
async fn backends() -> Vec<TestDb> {
    let dbs = TestDb::all().await;
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(
            dbs.iter().any(|d| d.backend == "postgres"),
            "CI=true: set TEST_DATABASE_URL so the result cache is tested on PostgreSQL"
        );
    }
    dbs
}

/// One test at a time: a load through tally's loader tells every engine of the process that
/// the model's data changed (the in-process bump does not tell databases apart), so a load
/// in one test would turn another test's expected hits into misses.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The saas fixtures loaded into `db` through tally's loader; then the pool that migrated
/// and loaded is closed and a fresh one returned. On PostgreSQL a backend's write counters
/// reach `pg_stat_user_tables` when it exits, else up to ten seconds after it goes idle:
/// closing the writers' connections makes the data versions the tests start from final.
async fn load_fixtures(db: &TestDb) -> DatabaseConnection {
    let sources = tally::load::csv_sources("saas", std::path::Path::new(FIXTURES)).unwrap();
    tally::load::load(
        &db.conn,
        "saas",
        sources,
        &tally::load::LoadOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{}: loading saas: {e:?}", db.backend));
    db.conn.clone().close().await.ok();
    tally::db::connect(&db.url).await.expect("a fresh pool")
}

/// The served schema over `db` with a result cache of `bytes`, and its engine's guard.
fn schema(conn: &DatabaseConnection, bytes: usize) -> (Schema, Arc<Guard>) {
    let models = tally::semantic::load_models(None).unwrap();
    let settings = ResultCacheSettings {
        bytes,
        poll_interval: POLL,
    };
    let (schema, guard) = tally::graphql::build_served(
        Some(conn.clone()),
        models,
        None,
        None,
        tally::graphql::RequestLimits::default(),
        settings,
        true,
    )
    .unwrap();
    (schema, guard.unwrap())
}

/// The response to `q` as JSON; it must hold no error.
async fn run(schema: &Schema, q: &str) -> Value {
    let out = serde_json::to_value(schema.execute(q).await).unwrap();
    assert!(out.get("errors").is_none(), "{q}: {out}");
    out
}

/// `(cache, cacheReason)` of the response's only explained statement.
fn cache_of(out: &Value) -> (String, String) {
    let explain = out["extensions"]["explain"].as_array().unwrap();
    assert_eq!(explain.len(), 1, "{out}");
    (
        explain[0]["cache"].as_str().unwrap().to_owned(),
        explain[0]["cacheReason"].as_str().unwrap_or("").to_owned(),
    )
}

fn users(out: &Value) -> i64 {
    out["data"]["saas"]["metrics"][0]["lifecycleUsers"]
        .as_i64()
        .unwrap()
}

/// Waits for the first poll of the data versions (until then nothing is cacheable).
async fn warm(schema: &Schema) {
    let started = Instant::now();
    loop {
        let out = run(
            schema,
            "{ saas { metrics(asOf: \"2001-01-01T00:00:00Z\") { lifecycleUsers } } }",
        )
        .await;
        let (_, reason) = cache_of(&out);
        if !reason.starts_with("not cacheable") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the data versions were never read: {reason}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `q` until the cache answers it (a hit), within the documented staleness bound: on
/// PostgreSQL the write counters of a commit reach `pg_stat_user_tables` up to a second or
/// (on an idle backend) ten seconds later, and each arrival is a new data version. Returns
/// the hit.
async fn settled(schema: &Schema, q: &str) -> Value {
    let started = Instant::now();
    loop {
        let out = run(schema, q).await;
        if cache_of(&out).0 == "hit" {
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "never a hit: {out}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_repeated_request_hits_and_a_load_through_tally_misses() {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let (schema, guard) = schema(&conn, 1 << 20);
        warm(&schema).await;
        // the fixtures' writes have reached the data versions
        settled(
            &schema,
            "{ saas { metrics(asOf: \"2002-01-01T00:00:00Z\") { lifecycleUsers } } }",
        )
        .await;
        let first = run(&schema, USERS).await;
        assert_eq!(
            cache_of(&first),
            ("miss".to_owned(), "no entry".to_owned()),
            "{}",
            db.backend
        );
        let second = run(&schema, USERS).await;
        assert_eq!(cache_of(&second).0, "hit", "{}: {second}", db.backend);
        assert_eq!(second["data"], first["data"], "{}", db.backend);
        let hits = guard
            .counters()
            .result_cache_hits
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(hits >= 1, "{}", db.backend);

        // one more user, through tally's loader: the next answer is computed again
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("global_events.csv"),
            "ts,event_id,event_time,event_type,metadata\n\
             2025-01-01 00:00:00,ev_cache_load,2025-01-01T00:00:00Z,user_account_creation,\"{\"\"user_id\"\":\"\"u_cache_load\"\",\"\"email\"\":\"\"c@example.com\"\"}\"\n",
        )
        .unwrap();
        let sources = tally::load::csv_sources("saas", dir.path()).unwrap();
        tally::load::load(&conn, "saas", sources, &Default::default())
            .await
            .unwrap();
        // (a loaded machine may delay a poll past its bound: that request misses as not
        // cacheable, keeps nothing, and the next one sees the entry of the old version)
        let mut third = run(&schema, USERS).await;
        for _ in 0..10 {
            if !cache_of(&third).1.contains("data versions not current") {
                break;
            }
            tokio::time::sleep(POLL).await;
            third = run(&schema, USERS).await;
        }
        assert_eq!(
            cache_of(&third),
            ("miss".to_owned(), "version changed".to_owned()),
            "{}",
            db.backend
        );
        assert_eq!(users(&third), users(&first) + 1, "{}", db.backend);
        // hits again once the load's counters have arrived, with the same answer
        let fourth = settled(&schema, USERS).await;
        assert_eq!(fourth["data"], third["data"], "{}", db.backend);

        // asOf absent is now: each request has its own instant, so none shares an answer
        let now = "{ saas { metrics { lifecycleUsers } } }";
        run(&schema, now).await;
        let again = run(&schema, now).await;
        assert_eq!(cache_of(&again).0, "miss", "{}: {again}", db.backend);
        conn.close().await.ok();
        db.cleanup().await;
    }
}

/// A connection of another tool: one connection (on PostgreSQL one backend, whose
/// statistics flushes the tests control), the model files attached on SQLite.
async fn outside_writer(db: &TestDb) -> DatabaseConnection {
    if db.backend == "postgres" {
        let mut opts = sea_orm::ConnectOptions::new(db.url.clone());
        opts.max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        sea_orm::Database::connect(opts).await.unwrap()
    } else {
        tally::db::connect(&db.url).await.unwrap()
    }
}

/// `INSERT` of one user's account creation into `saas.global_events` (its id from `key`).
fn insert_user(backend: sea_orm::DatabaseBackend, key: &str) -> sea_orm::Statement {
    let placeholders = if backend == sea_orm::DatabaseBackend::Postgres {
        "$1, $2, CAST($3 AS timestamptz), $4, CAST($5 AS jsonb)"
    } else {
        "?, ?, ?, ?, ?"
    };
    sea_orm::Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO \"saas\".\"global_events\" (ts, event_id, event_time, event_type, metadata) VALUES ({placeholders})"
        ),
        [
            "2025-02-01 00:00:00".into(),
            format!("ev_{key}").into(),
            "2025-02-01T00:00:00+00:00".into(),
            "user_account_creation".into(),
            format!(r#"{{"user_id": "u_{key}", "email": "{key}@example.com"}}"#).into(),
        ],
    )
}

/// Runs `q` until its answer is `want`; fails past `bound` (+ [`SLACK`]) after `since`.
async fn answers_within(
    schema: &Schema,
    q: &str,
    want: i64,
    since: Instant,
    bound: Duration,
    what: &str,
) {
    loop {
        let seen = users(&run(schema, q).await);
        if seen == want {
            return;
        }
        assert!(
            since.elapsed() < bound + SLACK,
            "{what}: the cache still answered {seen} (not {want}) {:?} after the write (bound {bound:?})",
            since.elapsed()
        );
        tokio::time::sleep(POLL / 2).await;
    }
}

/// A database tally owns (migrated by tally): SQLite's `data_version` and, on PostgreSQL,
/// tally's data-version triggers make an outside write show within two polls, even from a
/// writer that stays connected and idle after committing and whose statistics have not been
/// flushed (it flushed less than a second before its commit: PostgreSQL holds its counters
/// back for ten seconds).
#[tokio::test]
async fn a_write_by_another_connection_misses_within_two_polls() {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let (schema, _) = schema(&conn, 1 << 20);
        warm(&schema).await;
        let before = users(&run(&schema, USERS).await);
        assert_eq!(
            cache_of(&run(&schema, USERS).await).0,
            "hit",
            "{}",
            db.backend
        );
        let other = outside_writer(&db).await;
        // a read that makes the writer's backend flush its statistics when it goes idle ...
        other
            .execute_unprepared("SELECT count(*) FROM \"saas\".\"global_events\"")
            .await
            .unwrap();
        // ... so that the counters of this write, committed within the second, wait 10 s
        other
            .execute_raw(insert_user(other.get_database_backend(), "cache_outside"))
            .await
            .unwrap();
        let written = Instant::now();
        answers_within(&schema, USERS, before + 1, written, 2 * POLL, db.backend).await;
        // and the new answer stays
        assert_eq!(
            users(&run(&schema, USERS).await),
            before + 1,
            "{}",
            db.backend
        );
        other.close().await.ok();
        conn.close().await.ok();
        db.cleanup().await;
    }
}

/// A write in flight is never counted before it commits: polls that run while it is open
/// leave the version alone (the answers computed meanwhile, without it, are right), a
/// rolled-back write changes nothing, and the commit of another shows within two polls
/// (a version moved before the commit would have kept the answer computed without it); a
/// transaction whose first write was rolled back to a savepoint still counts its next one.
#[tokio::test]
async fn writes_count_when_they_commit_and_a_rollback_changes_nothing() {
    let _serial = SERIAL.lock().await;
    use sea_orm::TransactionTrait as _;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let (schema, _) = schema(&conn, 1 << 20);
        warm(&schema).await;
        let before = users(&run(&schema, USERS).await);
        let other = outside_writer(&db).await;
        let backend = other.get_database_backend();

        let txn = other.begin().await.unwrap();
        txn.execute_raw(insert_user(backend, "cache_rolled_back"))
            .await
            .unwrap();
        // several polls see the write in flight; the answers stay right
        for _ in 0..4 {
            tokio::time::sleep(POLL).await;
            assert_eq!(users(&run(&schema, USERS).await), before, "{}", db.backend);
        }
        txn.rollback().await.unwrap();
        for _ in 0..4 {
            tokio::time::sleep(POLL).await;
            assert_eq!(users(&run(&schema, USERS).await), before, "{}", db.backend);
        }
        // the rollback moved no version: the answer is still served from the cache
        assert_eq!(
            cache_of(&run(&schema, USERS).await).0,
            "hit",
            "{}",
            db.backend
        );

        let txn = other.begin().await.unwrap();
        txn.execute_raw(insert_user(backend, "cache_committed"))
            .await
            .unwrap();
        for _ in 0..4 {
            tokio::time::sleep(POLL).await;
            // computed (or served) without the write, under the version of the polls
            assert_eq!(users(&run(&schema, USERS).await), before, "{}", db.backend);
        }
        txn.commit().await.unwrap();
        let committed = Instant::now();
        answers_within(&schema, USERS, before + 1, committed, 2 * POLL, db.backend).await;

        // a write undone by rolling back to a savepoint, then another: the second counts
        // (the first statement's bump went with its savepoint)
        let txn = other.begin().await.unwrap();
        txn.execute_unprepared("SAVEPOINT undone").await.unwrap();
        txn.execute_raw(insert_user(backend, "cache_undone"))
            .await
            .unwrap();
        txn.execute_unprepared("ROLLBACK TO SAVEPOINT undone")
            .await
            .unwrap();
        txn.execute_raw(insert_user(backend, "cache_after_savepoint"))
            .await
            .unwrap();
        txn.commit().await.unwrap();
        let committed = Instant::now();
        answers_within(&schema, USERS, before + 2, committed, 2 * POLL, db.backend).await;
        other.close().await.ok();
        conn.close().await.ok();
        db.cleanup().await;
    }
}

/// Emptying a table (PostgreSQL `TRUNCATE`, SQLite's `DELETE` without a condition) moves
/// the version: the cached answer gives way to the empty table's within two polls.
#[tokio::test]
async fn emptying_a_table_moves_the_version() {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let (schema, _) = schema(&conn, 1 << 20);
        warm(&schema).await;
        let before = users(&run(&schema, USERS).await);
        assert!(before > 0, "{}", db.backend);
        assert_eq!(
            cache_of(&run(&schema, USERS).await).0,
            "hit",
            "{}",
            db.backend
        );
        let other = outside_writer(&db).await;
        let empty = if db.backend == "postgres" {
            "TRUNCATE \"saas\".\"global_events\""
        } else {
            "DELETE FROM \"saas\".\"global_events\""
        };
        other.execute_unprepared(empty).await.unwrap();
        let emptied = Instant::now();
        answers_within(&schema, USERS, 0, emptied, 2 * POLL, db.backend).await;
        other.close().await.ok();
        conn.close().await.ok();
        db.cleanup().await;
    }
}

/// The data-version triggers and their table, function and counter (PostgreSQL; SQLite
/// triggers of that name, which tally never creates).
async fn version_triggers(conn: &DatabaseConnection) -> i64 {
    let sql = if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'tally_data_version') \
         + (SELECT count(*) FROM pg_class WHERE relname = 'tally_data_version') \
         + (SELECT count(*) FROM pg_proc WHERE proname = 'tally_data_version')"
    } else {
        "SELECT count(*) FROM \"saas\".sqlite_master WHERE name LIKE 'tally_data_version%'"
    };
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// The tables of the models' namespaces without an enabled-always data-version trigger
/// (PostgreSQL).
async fn tables_without_trigger(conn: &DatabaseConnection) -> Vec<String> {
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT n.nspname || '.' || c.relname FROM pg_class AS c \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             WHERE n.nspname IN ('saas', 'gym', 'shop', 'social', 'web') AND c.relkind = 'r' \
             AND c.relname <> 'tally_data_version' AND NOT EXISTS (SELECT 1 FROM pg_trigger AS t \
             WHERE t.tgrelid = c.oid AND t.tgname = 'tally_data_version' AND t.tgenabled = 'A') \
             ORDER BY 1",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Makes `db` a database tally did not install anything in (one from before the triggers,
/// or somebody else's): its data-version triggers, function and counters dropped.
async fn strip_version_triggers(db: &TestDb, conn: &DatabaseConnection) {
    if db.backend != "postgres" {
        return;
    }
    for ns in tally::db::MODELS {
        conn.execute_unprepared(&format!(
            "DROP FUNCTION IF EXISTS \"{ns}\".\"tally_data_version\"() CASCADE; \
                 DROP TABLE IF EXISTS \"{ns}\".\"tally_data_version\""
        ))
        .await
        .unwrap();
    }
    assert_eq!(version_triggers(conn).await, 0);
}

/// `tally serve --db URL` (read-only) until its log says how the result cache reads the saas
/// namespace's data version; that line. The server is stopped after.
async fn served_mechanism_line(url: &str) -> String {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--db",
            url,
            "--result-cache-poll",
            "0.05",
        ])
        .env_remove("TALLY_CONFIG")
        .env("RUST_LOG", "info,sqlx=warn,sea_orm=warn")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tally");
    let stderr = child.stderr.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("result cache: ") && line.contains("saas: ") {
                    return line;
                }
                seen.push(line);
            }
            panic!("no result-cache line in the log:\n{}", seen.join("\n"));
        }),
    )
    .await;
    child.kill().ok();
    child.wait().ok();
    line.expect("the result-cache line within a minute")
        .unwrap()
}

/// A database given read-only (`serve --db`) gets no triggers: the server installs nothing,
/// says it reads the statistics, and an outside write still shows within the statistics'
/// bound. Migrating it (what `tally migrate`, `load`, `demo`, `serve --demo` do) installs the
/// triggers on every table of the models' namespaces, once: outside writes then show within
/// two polls.
#[tokio::test]
async fn a_read_only_database_gets_no_triggers_until_it_is_migrated() {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let admin = load_fixtures(&db).await;
        strip_version_triggers(&db, &admin).await;

        let line = served_mechanism_line(&db.url).await;
        let want = if db.backend == "postgres" {
            "saas: statistics (bound 10.1 s"
        } else {
            "saas: exact (data_version; bound 0.1 s)"
        };
        assert!(line.contains(want), "{}: {line}", db.backend);
        assert_eq!(version_triggers(&admin).await, 0, "{}", db.backend);

        let read_only = tally::db::open(&db.url).await.unwrap();
        let (served, _) = schema(&read_only, 1 << 20);
        warm(&served).await;
        let before = users(&run(&served, USERS).await);
        let other = outside_writer(&db).await;
        other
            .execute_raw(insert_user(other.get_database_backend(), "cache_read_only"))
            .await
            .unwrap();
        let written = Instant::now();
        let bound = 2 * POLL
            + if db.backend == "postgres" {
                PG_STATS_DELAY
            } else {
                Duration::ZERO
            };
        answers_within(&served, USERS, before + 1, written, bound, db.backend).await;
        assert_eq!(version_triggers(&admin).await, 0, "{}", db.backend);
        read_only.close().await.ok();

        // a migration installs them, on every table; a second one adds nothing
        tally::db::migrate(&admin).await.unwrap();
        if db.backend == "postgres" {
            assert_eq!(tables_without_trigger(&admin).await, Vec::<String>::new());
            let installed = version_triggers(&admin).await;
            assert!(installed > 10, "{installed}");
            tally::db::migrate(&admin).await.unwrap();
            assert_eq!(version_triggers(&admin).await, installed);
            let line = served_mechanism_line(&db.url).await;
            assert!(
                line.contains("saas: exact (triggers; bound 0.1 s)"),
                "{line}"
            );
        } else {
            assert_eq!(version_triggers(&admin).await, 0);
        }
        // the same writer (idle since its write) writes again: two polls now
        let read_only = tally::db::open(&db.url).await.unwrap();
        let (schema, _) = schema(&read_only, 1 << 20);
        warm(&schema).await;
        let before = users(&run(&schema, USERS).await);
        other
            .execute_unprepared("SELECT count(*) FROM \"saas\".\"global_events\"")
            .await
            .unwrap();
        other
            .execute_raw(insert_user(other.get_database_backend(), "cache_migrated"))
            .await
            .unwrap();
        answers_within(
            &schema,
            USERS,
            before + 1,
            Instant::now(),
            2 * POLL,
            db.backend,
        )
        .await;
        other.close().await.ok();
        read_only.close().await.ok();
        admin.close().await.ok();
        db.cleanup().await;
    }
}

/// A table added later to a namespace with triggers, without one, is still watched (by its
/// statistics): the namespace reports the statistics for it, and a write to it shows.
#[tokio::test]
async fn a_table_added_without_a_trigger_is_watched_by_its_statistics() {
    let _serial = SERIAL.lock().await;
    let Some(db) = backends()
        .await
        .into_iter()
        .find(|d| d.backend == "postgres")
    else {
        return;
    };
    let conn = load_fixtures(&db).await;
    let mut probe = tally::sql::VersionProbe::open(&conn).await.unwrap();
    let saas = |v: Vec<tally::sql::NamespaceVersion>| {
        v.into_iter().find(|v| v.namespace == "saas").unwrap()
    };
    let first = saas(probe.read().await.unwrap());
    assert_eq!(first.mechanism, tally::sql::VersionMechanism::Triggers);
    conn.execute_unprepared("CREATE TABLE \"saas\".\"added_later\" (x integer)")
        .await
        .unwrap();
    let added = saas(probe.read().await.unwrap());
    assert_ne!(added.token, first.token);
    let tables = match added.mechanism {
        tally::sql::VersionMechanism::Statistics {
            without_trigger: 1,
            tables,
        } => tables,
        other => panic!("{other:?}"),
    };
    assert!(tables > 1, "{tables}");
    // a write to it reaches the token once its statistics are flushed (here: at exit)
    let other = outside_writer(&db).await;
    other
        .execute_unprepared("INSERT INTO \"saas\".\"added_later\" VALUES (1)")
        .await
        .unwrap();
    other.close().await.ok();
    let started = Instant::now();
    loop {
        let now = saas(probe.read().await.unwrap());
        if now.token != added.token {
            break;
        }
        assert!(
            started.elapsed() < PG_STATS_DELAY + SLACK,
            "the write to a table without a trigger never moved the version"
        );
        tokio::time::sleep(POLL).await;
    }
    conn.close().await.ok();
    db.cleanup().await;
}

#[tokio::test]
async fn requests_differing_only_in_a_bound_value_never_share() {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let (schema, _) = schema(&conn, 1 << 20);
        warm(&schema).await;
        let by_stage = run(
            &schema,
            r#"{ saas { metrics(asOf: "2030-01-01T00:00:00Z") { stage lifecycleUsers } } }"#,
        )
        .await;
        let rows = by_stage["data"]["saas"]["metrics"]
            .as_array()
            .unwrap()
            .clone();
        assert!(rows.len() >= 2, "{}: {by_stage}", db.backend);
        let q = |stage: &str| {
            format!(
                r#"{{ saas {{ metrics(asOf: "2030-01-01T00:00:00Z", where: {{ stage: {{ equals: "{stage}" }} }}) {{ lifecycleUsers }} }} }}"#
            )
        };
        for _ in 0..2 {
            for row in &rows {
                let stage = row["stage"].as_str().unwrap();
                let out = run(&schema, &q(stage)).await;
                assert_eq!(
                    users(&out),
                    row["lifecycleUsers"].as_i64().unwrap(),
                    "{}: {stage}: {out}",
                    db.backend
                );
            }
        }
        // the same statement, each value its own entry: the second round hit
        let out = run(&schema, &q(rows[0]["stage"].as_str().unwrap())).await;
        assert_eq!(cache_of(&out).0, "hit", "{}", db.backend);
        // two instants (bound values too) give their own answers
        let early = run(
            &schema,
            r#"{ saas { metrics(asOf: "2024-01-10T12:00:00Z") { lifecycleUsers } } }"#,
        )
        .await;
        let late = run(&schema, USERS).await;
        assert!(users(&early) < users(&late), "{}", db.backend);
        conn.close().await.ok();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_bytes_bound_holds_least_recently_used_out() {
    let _serial = SERIAL.lock().await;
    use std::sync::atomic::Ordering::Relaxed;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let limit = 8 * 1024;
        let (schema, guard) = schema(&conn, limit);
        warm(&schema).await;
        let at = |day: u32| {
            format!(
                r#"{{ saas {{ metrics(asOf: "2024-02-{day:02}T00:00:00Z") {{ stage lifecycleUsers }} }} }}"#
            )
        };
        for day in 1..=28 {
            let out = run(&schema, &at(day)).await;
            let (_, reason) = cache_of(&out);
            assert!(
                !reason.contains("not cacheable") && !reason.contains("too big"),
                "{}: {reason}: {out}",
                db.backend
            );
            let bytes = guard.counters().result_cache_bytes.load(Relaxed);
            assert!(bytes as usize <= limit, "{}: {bytes} bytes", db.backend);
        }
        let c = guard.counters();
        assert!(
            c.result_cache_evictions.load(Relaxed) > 0,
            "{}: {} entries, {} bytes, {} hits, {} misses",
            db.backend,
            c.result_cache_entries.load(Relaxed),
            c.result_cache_bytes.load(Relaxed),
            c.result_cache_hits.load(Relaxed),
            c.result_cache_misses.load(Relaxed)
        );
        // the newest is kept, the oldest was evicted
        let newest = run(&schema, &at(28)).await;
        assert_eq!(
            cache_of(&newest).0,
            "hit",
            "{}: {:?}",
            db.backend,
            cache_of(&newest)
        );
        assert_eq!(
            cache_of(&run(&schema, &at(1)).await),
            ("miss".to_owned(), "no entry".to_owned()),
            "{}",
            db.backend
        );
        // /metrics shows the counters
        let text = tally::engine::guard::prometheus(&guard, (1, 1, 1));
        for name in [
            "tally_result_cache_hits_total",
            "tally_result_cache_misses_total",
            "tally_result_cache_evictions_total",
            "tally_result_cache_bytes",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
        conn.close().await.ok();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn zero_bytes_turns_it_off_and_a_too_big_answer_is_not_kept() {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let conn = load_fixtures(&db).await;
        let (off, guard) = schema(&conn, 0);
        for _ in 0..2 {
            let out = run(&off, USERS).await;
            assert_eq!(
                cache_of(&out),
                (
                    "miss".to_owned(),
                    "disabled (--result-cache-bytes 0)".to_owned()
                ),
                "{}",
                db.backend
            );
        }
        let hits = guard
            .counters()
            .result_cache_hits
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(hits, 0, "{}", db.backend);

        let (tiny, _) = schema(&conn, 256);
        warm(&tiny).await;
        for _ in 0..2 {
            let (status, reason) = cache_of(&run(&tiny, USERS).await);
            assert_eq!(status, "miss", "{}", db.backend);
            assert!(
                reason.contains("too big to keep"),
                "{}: {reason}",
                db.backend
            );
        }
        conn.close().await.ok();
        db.cleanup().await;
    }
}

// The lifecycle fields and `sources`: their statements are kept like the semantic layer's.

/// `(cache, cacheReason)` of every explained statement of a response (entries without SQL,
/// such as `sources`' own, have none).
fn caches_of(out: &Value) -> Vec<(String, String)> {
    out["extensions"]["explain"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["sql"].is_null())
        .map(|e| {
            (
                e["cache"].as_str().unwrap().to_owned(),
                e["cacheReason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Whether every statement of the response was answered by the cache.
fn all_hits(out: &Value) -> bool {
    let c = caches_of(out);
    !c.is_empty() && c.iter().all(|(status, _)| status == "hit")
}

/// The response to `q` for `caller` (a tenant under the saas row policies), as JSON.
async fn run_as(schema: &Schema, q: &str, caller: Option<Arc<tally::engine::Caller>>) -> Value {
    let scope = tally::engine::RequestScope::for_caller("result-cache".to_owned(), None, caller);
    let out = serde_json::to_value(
        schema
            .execute(async_graphql::Request::new(q).data(scope))
            .await,
    )
    .unwrap();
    assert!(out.get("errors").is_none(), "{q}: {out}");
    out
}

/// A caller whose saas rows are those of `users`.
fn tenant(users: &[&str]) -> Arc<tally::engine::Caller> {
    let mut a = std::collections::BTreeMap::new();
    a.insert(
        "user_ids".to_owned(),
        users.iter().map(|u| (*u).to_owned()).collect(),
    );
    Arc::new(tally::engine::Caller::new("tenant", a))
}

/// Runs `q` for `caller` until every statement of it is a hit (within the staleness bound,
/// as [`settled`]); returns the hit.
async fn settled_as(schema: &Schema, q: &str, caller: Option<Arc<tally::engine::Caller>>) -> Value {
    let started = Instant::now();
    loop {
        let out = run_as(schema, q, caller.clone()).await;
        if all_hits(&out) {
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "never a hit: {out}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The response to `q` for `caller` once the cache could be consulted: a request that came
/// while the poll of the data versions was late (a loaded machine) is asked again.
async fn current_as(schema: &Schema, q: &str, caller: Option<Arc<tally::engine::Caller>>) -> Value {
    let started = Instant::now();
    loop {
        let out = run_as(schema, q, caller.clone()).await;
        let late = caches_of(&out)
            .iter()
            .any(|(_, r)| r.contains("data versions not current"));
        if !late || started.elapsed() > Duration::from_secs(10) {
            return out;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A lifecycle read under test: its request and the number one more signed-up user adds one
/// to.
struct Lifecycle {
    query: &'static str,
    count: fn(&Value) -> i64,
}

fn signed_up(out: &Value) -> i64 {
    out["data"]["saas"]["journey"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "SIGNED_UP")
        .unwrap()["count"]
        .as_i64()
        .unwrap()
}

fn transitioned(out: &Value) -> i64 {
    out["data"]["saas"]["transitions"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["count"].as_i64().unwrap())
        .sum()
}

fn listed(out: &Value) -> i64 {
    let c = &out["data"]["saas"]["users"];
    let total = c["totalCount"].as_i64().unwrap();
    assert_eq!(total, c["edges"].as_array().unwrap().len() as i64, "{out}");
    total
}

fn events(out: &Value) -> i64 {
    out["data"]["sources"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "global_events")
        .unwrap()["rowCount"]
        .as_i64()
        .unwrap()
}

const JOURNEY: Lifecycle = Lifecycle {
    query: r#"{ saas { journey(asOf: "2030-01-01T00:00:00Z") { nodes { id count } links { source target count } } } }"#,
    count: signed_up,
};

const TRANSITIONS: Lifecycle = Lifecycle {
    query: r#"{ saas { transitions(from: "2024-03-01T00:00:00Z", to: "2030-01-01T00:00:00Z") { nodes { id count } links { source target count } } } }"#,
    count: transitioned,
};

const USERS_PAGE: Lifecycle = Lifecycle {
    query: r#"{ saas { users(asOf: "2030-01-01T00:00:00Z", limit: 500) { totalCount pageInfo { hasNextPage } edges { node { userId email stage paymentCount planId shops { shopId createdAt deleted plan { planId invoiceAmount } invoices { invoiceId invoiceAmount invoiceTimestamp delinquent payments { paymentId ds } } } } } } } }"#,
    count: listed,
};

const SOURCES: Lifecycle = Lifecycle {
    query: r#"{ sources(model: "saas") { name tables { name rowCount } } }"#,
    count: events,
};

/// For `case` on every backend: a repeated request is a hit with an equal answer; two
/// tenants under the saas row policies never share an answer; a load through tally's loader
/// makes the next one a miss with the new answer; on SQLite a write by another connection
/// does too (within the bound).
async fn lifecycle_reads_are_kept(case: &Lifecycle) {
    let _serial = SERIAL.lock().await;
    for db in backends().await {
        let be = db.backend;
        let q = case.query;
        let conn = load_fixtures(&db).await;
        let (schema, guard) = schema(&conn, 1 << 20);
        warm(&schema).await;
        let hits = |g: &Guard| {
            g.counters()
                .result_cache_hits
                .load(std::sync::atomic::Ordering::Relaxed)
        };

        // repeated: a hit, the same answer, counted
        let first = run(&schema, q).await;
        assert!(
            caches_of(&first).iter().all(|(s, _)| s == "miss"),
            "{be}: {first}"
        );
        let before = hits(&guard);
        let again = settled_as(&schema, q, None).await;
        assert_eq!(again["data"], first["data"], "{be}");
        assert!(hits(&guard) > before, "{be}");
        let n = (case.count)(&first);

        // two tenants: each its own answer, never the other's (before any write: on
        // PostgreSQL a write's statistics may move the data versions seconds later)
        let (a, b) = (
            tenant(&["u01_lead"]),
            tenant(&["u02_prospect", "u03_repeat"]),
        );
        let (off, _) = schema_off(&conn);
        let a_alone = run_as(&off, q, Some(a.clone())).await;
        let b_alone = run_as(&off, q, Some(b.clone())).await;
        assert_ne!(a_alone["data"], b_alone["data"], "{be}");
        let a_kept = settled_as(&schema, q, Some(a.clone())).await;
        assert_eq!(a_kept["data"], a_alone["data"], "{be}");
        let b_first = run_as(&schema, q, Some(b.clone())).await;
        assert!(
            caches_of(&b_first).iter().all(|(s, _)| s == "miss"),
            "{be}: another tenant was served a kept answer: {b_first}"
        );
        assert_eq!(b_first["data"], b_alone["data"], "{be}");
        let b_kept = settled_as(&schema, q, Some(b)).await;
        assert_eq!(b_kept["data"], b_alone["data"], "{be}");
        let a_again = current_as(&schema, q, Some(a)).await;
        assert!(all_hits(&a_again), "{be}: {a_again}");
        assert_eq!(a_again["data"], a_alone["data"], "{be}");
        // nor the unscoped answer
        let all = run(&schema, q).await;
        assert_ne!(all["data"], a_alone["data"], "{be}");

        // one more user through tally's loader: computed again, with the user
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("global_events.csv"),
            "ts,event_id,event_time,event_type,metadata\n\
             2025-01-01 00:00:00,ev_cache_load,2025-01-01T00:00:00Z,user_account_creation,\"{\"\"user_id\"\":\"\"u_cache_load\"\",\"\"email\"\":\"\"c@example.com\"\"}\"\n",
        )
        .unwrap();
        let sources = tally::load::csv_sources("saas", dir.path()).unwrap();
        tally::load::load(&conn, "saas", sources, &Default::default())
            .await
            .unwrap();
        let loaded = run(&schema, q).await;
        // a miss: the version changed (or, on a loaded machine, the poll was late)
        let statuses = caches_of(&loaded);
        let late = statuses
            .iter()
            .any(|(_, r)| r.contains("data versions not current"));
        assert!(
            late || statuses
                .iter()
                .any(|(s, r)| s == "miss" && r == "version changed"),
            "{be}: {statuses:?} {loaded}"
        );
        assert!(!all_hits(&loaded), "{be}: {loaded}");
        assert_eq!((case.count)(&loaded), n + 1, "{be}: {loaded}");
        let kept = settled_as(&schema, q, None).await;
        assert_eq!(kept["data"], loaded["data"], "{be}");

        // a write by another connection (SQLite: seen within two polls)
        if be == "sqlite" {
            let other = tally::db::connect(&db.url).await.unwrap();
            other
                .execute_unprepared(
                    "INSERT INTO \"saas\".\"global_events\" (ts, event_id, event_time, event_type, metadata) \
                     VALUES ('2025-02-01 00:00:00', 'ev_cache_outside', '2025-02-01T00:00:00+00:00', \
                     'user_account_creation', '{\"user_id\": \"u_cache_outside\", \"email\": \"x@example.com\"}')",
                )
                .await
                .unwrap();
            let written = Instant::now();
            let deadline = 2 * POLL + Duration::from_secs(2);
            loop {
                let out = run(&schema, q).await;
                if (case.count)(&out) == n + 2 {
                    assert!(!all_hits(&out), "{be}: {out}");
                    break;
                }
                assert_eq!((case.count)(&out), n + 1, "{be}: {out}");
                assert!(
                    written.elapsed() < deadline,
                    "{be}: the cache still answered {} after an outside write",
                    n + 1
                );
                tokio::time::sleep(POLL / 2).await;
            }
            other.close().await.ok();
        }

        conn.close().await.ok();
        db.cleanup().await;
    }
}

/// The served schema over `conn` without a result cache (the reference answers).
fn schema_off(conn: &DatabaseConnection) -> (Schema, Arc<Guard>) {
    schema(conn, 0)
}

#[tokio::test]
async fn journey_answers_are_kept_until_the_data_changes() {
    lifecycle_reads_are_kept(&JOURNEY).await;
}

#[tokio::test]
async fn transitions_answers_are_kept_until_the_data_changes() {
    lifecycle_reads_are_kept(&TRANSITIONS).await;
}

#[tokio::test]
async fn users_pages_and_their_drill_down_are_kept_until_the_data_changes() {
    lifecycle_reads_are_kept(&USERS_PAGE).await;
}

#[tokio::test]
async fn sources_row_counts_are_kept_until_the_data_changes() {
    lifecycle_reads_are_kept(&SOURCES).await;
}
