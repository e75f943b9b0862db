//! Test support: a fresh, migrated database per test on every backend under test.
//!
//! SQLite always (a temporary folder per test); PostgreSQL too when `TEST_DATABASE_URL` is set
//! (a database with a random name per test, created from that URL and dropped by `cleanup`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// A migrated database that belongs to one test.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// An open pool on it.
    pub conn: DatabaseConnection,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    /// The admin URL and the database name (PostgreSQL).
    pub pg: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "tally_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

impl TestDb {
    /// A fresh SQLite database in its own temporary folder.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("tally.db").display());
        let conn = tally::db::connect(&url).await.expect("connect sqlite");
        tally::db::migrate(&conn).await.expect("migrate sqlite");
        TestDb {
            url,
            conn,
            backend: "sqlite",
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh PostgreSQL database, when `TEST_DATABASE_URL` is set.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("TEST_DATABASE_URL").ok()?;
        let name = unique_name();
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        admin
            .execute_raw(Statement::from_string(
                admin.get_database_backend(),
                format!("CREATE DATABASE \"{name}\""),
            ))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .expect("TEST_DATABASE_URL names a database");
        let url = format!("{base}/{name}");
        let conn = tally::db::connect(&url).await.expect("connect postgres");
        tally::db::migrate(&conn).await.expect("migrate postgres");
        Some(TestDb {
            url,
            conn,
            backend: "postgres",
            _dir: None,
            pg: Some((admin_url, name)),
        })
    }

    /// [`TestDb::postgres`], which CI must have: `None` (the caller returns) only outside CI
    /// (`CI=true`) without `TEST_DATABASE_URL`.
    pub async fn postgres_unless_skipped() -> Option<TestDb> {
        let db = TestDb::postgres().await;
        if db.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI needs TEST_DATABASE_URL"
            );
            eprintln!("TEST_DATABASE_URL is not set: PostgreSQL part skipped");
        }
        db
    }

    /// Every backend under test: SQLite, then PostgreSQL when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        if let Some(pg) = TestDb::postgres().await {
            dbs.push(pg);
        }
        dbs
    }

    /// Closes the pool and drops the PostgreSQL database (also done on drop, e.g. when a
    /// test panics).
    pub async fn cleanup(mut self) {
        self.conn.clone().close().await.ok();
        if let Some((admin_url, name)) = self.pg.take() {
            drop_database(&admin_url, &name).await;
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = sea_orm::Database::connect(admin_url).await {
        let _ = admin
            .execute_raw(Statement::from_string(
                admin.get_database_backend(),
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ))
            .await;
        admin.close().await.ok();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // A panicking test never reaches `cleanup`: drop its database from a thread
            // with a runtime of its own (this may run inside the test's runtime).
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_database(&admin_url, &name));
                }
            })
            .join();
        }
    }
}

/// How many statements of the `slow` test model (`tests/fixtures/slow`) PostgreSQL is
/// running in the current database.
pub async fn pg_running(conn: &DatabaseConnection) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%RECURSIVE n(i)%' AND pid <> pg_backend_pid()",
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    row.try_get("", "n").expect("n")
}

/// Polls `pg_running` until it equals `want`, up to `within`; how long it took.
pub async fn pg_wait_running(conn: &DatabaseConnection, want: i64, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let n = pg_running(conn).await;
        if n == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{n} slow statements still running after {within:?} (wanted {want})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The app over `url` (read-only) serving the `slow` test model (`tests/fixtures/slow`: a
/// recursive count to two billion, minutes on either backend) with `settings`.
pub async fn slow_app(url: &str, settings: tally::http::Settings) -> axum::Router {
    let conn = tally::db::connect_serving(url, false, Duration::from_secs(2))
        .await
        .expect("pool");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slow");
    let models = tally::engine::load_live_models(&conn, Some(&dir), &Default::default(), None)
        .await
        .expect("slow model");
    tally::http::app_with_settings(conn, models, None, settings).expect("app")
}

/// A small web model fixture (CSV text per table): two users, two products (p1 Fern, p2
/// Cactus), four sessions s1..s4 with page views, add-to-carts and checkouts of orders o1..o3.
pub const WEB: &[(&str, &str)] = &[
    (
        "addresses",
        "address_id,address,zipcode,state,country\na1,1 Main St,10001,NY,US\n",
    ),
    (
        "users",
        "user_id,first_name,last_name,email,phone_number,created_at,updated_at,address_id\n\
         u1,Ann,Lee,a@x.io,,2024-01-01T00:00:00Z,,a1\n\
         u2,Bob,Ray,b@x.io,,2024-01-01T00:00:00Z,,a1\n",
    ),
    (
        "products",
        "product_id,name,price,inventory\np1,Fern,10.00,5\np2,Cactus,20.00,5\n",
    ),
    (
        "orders",
        "order_id,user_id,promo_id,address_id,created_at,order_cost,shipping_cost,order_total,tracking_id,shipping_service,estimated_delivery_at,delivered_at,status\n\
         o1,u1,,a1,2024-02-01T10:10:00Z,10.00,1.00,11.00,,,,,preparing\n\
         o2,u1,,a1,2024-02-01T11:05:00Z,20.00,1.00,21.00,,,,,preparing\n\
         o3,u2,,a1,2024-02-01T13:20:00Z,30.00,1.00,31.00,,,,,preparing\n",
    ),
    (
        "order_items",
        "order_id,product_id,quantity\no1,p1,1\no2,p2,1\no3,p1,1\no3,p2,1\n",
    ),
    (
        "events",
        "event_id,session_id,user_id,page_url,created_at,event_type,order_id,product_id\n\
         v1,s1,u1,/p1,2024-02-01T10:00:00Z,page_view,,p1\n\
         v2,s1,u1,/p1,2024-02-01T10:05:00Z,add_to_cart,,p1\n\
         v3,s1,u1,/checkout,2024-02-01T10:10:00Z,checkout,o1,\n\
         v4,s2,u1,/p1,2024-02-01T11:00:00Z,page_view,,p1\n\
         v5,s2,u1,/p2,2024-02-01T11:01:00Z,page_view,,p2\n\
         v6,s2,u1,/p2,2024-02-01T11:02:00Z,add_to_cart,,p2\n\
         v7,s2,u1,/checkout,2024-02-01T11:05:00Z,checkout,o2,\n\
         v8,s3,u2,/p2,2024-02-01T12:00:00Z,page_view,,p2\n\
         v9,s4,u2,/p1,2024-02-01T13:00:00Z,page_view,,p1\n\
         v10,s4,u2,/checkout,2024-02-01T13:20:00Z,checkout,o3,\n",
    ),
];

/// Loads `files` (`(table, CSV text)`) into `db` as the model `model`, through tally's loader.
pub async fn load_csv(db: &TestDb, model: &str, files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (table, text) in files {
        std::fs::write(dir.path().join(format!("{table}.csv")), text).expect("write CSV");
    }
    let sources = tally::load::csv_sources(model, dir.path()).expect("CSV sources");
    tally::load::load(&db.conn, model, sources, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("loading {model}: {e}"));
}

/// `query` run on the schema tally builds over `db` (shipped models), as JSON.
pub async fn gql(db: &TestDb, query: &str) -> serde_json::Value {
    let schema = tally::graphql::build(Some(db.conn.clone())).expect("schema");
    serde_json::to_value(schema.execute(query).await).expect("JSON")
}

/// The value at `path` (dotted) under `data`, asserting there are no errors.
pub fn data(v: &serde_json::Value, path: &str) -> serde_json::Value {
    assert!(v.get("errors").is_none(), "{v}");
    let mut cur = &v["data"];
    for p in path.split('.') {
        cur = &cur[p];
    }
    cur.clone()
}

/// The code of the first error.
pub fn code(v: &serde_json::Value) -> String {
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {v}"))
        .to_owned()
}
