//! Benchmark: the real server (the axum app of `tally::http`) on an ephemeral port, driven by
//! an in-process load generator (hyper, N keep-alive connections), over demo data on SQLite
//! and PostgreSQL. Printed per backend, as requests/s, p50 and p99:
//!
//! - `dashboard (cached)`: the dashboard's own first request (the stage tiles: `stageCounts`
//!   as of the page's instant and a month before), result cache on (64 MiB);
//! - `journey (cached)` / `journey (uncached)`: the dashboard's Sankey (`journey` as of the
//!   page's instant), result cache on and off;
//! - `by-day metrics (uncached)`: `shop` net sales and orders by day, result cache off;
//! - `by-day SQL (driver)`: the statement the server ran for it (from `extensions.explain`),
//!   bound to the same values, run straight on the pool (sea-orm over sqlx);
//! - `by-day metrics, key + row policy`: the same request (cached and uncached) with an API
//!   key whose role's callers bind the shop row policy, the key's stores being every store
//!   (so the answer is the same): the cost of authentication and policies;
//! - `by-day from a rollup`: net sales and order lines by day, which the smallest shop
//!   rollup keeping them answers (uncached), against the same from the order lines (rollups
//!   off).
//!
//! ```text
//! cargo bench --bench serving
//! TALLY_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo bench --bench serving
//! ```
//!
//! Settings (environment):
//! - `TALLY_BENCH_POSTGRES`: a PostgreSQL URL whose server the benchmark may create the
//!   database `tally_bench_serving` on (dropped and loaded again each run); unset: SQLite
//!   only;
//! - `TALLY_BENCH_SCALE`: demo scale of the saas and shop data (default 0.1: about 1 000
//!   users each);
//! - `TALLY_BENCH_CONNECTIONS`: connections of the load generator (default 16);
//! - `TALLY_BENCH_SECONDS`: seconds per measurement, after a one-second warm-up (default 5).
#![cfg_attr(test, allow(dead_code))]

/// The allocator of the `tally` binary (src/main.rs), so that the server here allocates as
/// the real one does (see `tally::allocator`).
#[global_allocator]
static ALLOCATOR: tally::allocator::Allocator = tally::allocator::Allocator {};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use tally::engine::ResultCacheSettings;

/// The dashboard's first request (assets/dashboard: `loadTiles`).
const TILES: &str = "query Tiles($t: String, $t0: String) { saas { now: stageCounts(asOf: $t) { stage count } before: stageCounts(asOf: $t0) { stage count } } }";

/// The dashboard's Sankey: the journey of every user as of the page's instant.
const JOURNEY: &str = "query Journey($t: String) { saas { journey(asOf: $t) { nodes { id label count level } links { source target count } } } }";

/// Net sales and orders by day.
const BY_DAY: &str = r#"{ shop { metrics(asOf: "2025-01-01T00:00:00Z") { day: orderTime(granularity: DAY) netSales orders } } }"#;

/// Net sales and order lines by day: additive, so a rollup of the order lines answers it.
const BY_DAY_ADDITIVE: &str = r#"{ shop { metrics(asOf: "2025-01-01T00:00:00Z") { day: orderTime(granularity: DAY) netSales orderLines } } }"#;

/// The API key of the guardrails measurement.
const KEY: &str = "tally-bench-serving-key";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() {
    tally::allocator::keep_freed_memory();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let scale: f64 = env("TALLY_BENCH_SCALE", "0.1")
        .parse()
        .expect("TALLY_BENCH_SCALE");
    let connections: usize = env("TALLY_BENCH_CONNECTIONS", "16")
        .parse()
        .expect("TALLY_BENCH_CONNECTIONS");
    let seconds: f64 = env("TALLY_BENCH_SECONDS", "5")
        .parse()
        .expect("TALLY_BENCH_SECONDS");
    let load = Load {
        connections,
        duration: Duration::from_secs_f64(seconds),
    };
    println!(
        "serving benchmark: scale {scale}, {connections} connections, {seconds} s per measurement, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("load average before: {}", loadavg());
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = format!("sqlite://{}", dir.path().join("tally.db").display());
    bench_backend("sqlite", &sqlite, scale, &load).await;
    if let Ok(admin) = std::env::var("TALLY_BENCH_POSTGRES") {
        let url = fresh_postgres(&admin).await;
        bench_backend("postgres", &url, scale, &load).await;
    }
    println!("load average after: {}", loadavg());
}

/// `/proc/loadavg`'s first three fields.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `tally_bench_serving` on the server of `admin`, dropped and created again.
async fn fresh_postgres(admin: &str) -> String {
    let conn = sea_orm::Database::connect(admin)
        .await
        .expect("connect to TALLY_BENCH_POSTGRES");
    for sql in [
        "DROP DATABASE IF EXISTS tally_bench_serving WITH (FORCE)",
        "CREATE DATABASE tally_bench_serving",
    ] {
        conn.execute_unprepared(sql).await.expect(sql);
    }
    conn.close().await.ok();
    let (base, _) = admin.split_once('?').map_or((admin, ""), |(b, q)| (b, q));
    let (server, _) = base.rsplit_once('/').expect("the URL names a database");
    format!("{server}/tally_bench_serving")
}

async fn bench_backend(backend: &str, url: &str, scale: f64, load: &Load) {
    let conn = tally::db::connect(url).await.expect("connect");
    tally::db::migrate(&conn).await.expect("migrate");
    let started = Instant::now();
    for model in ["saas", "shop"] {
        let opts = tally::demo::DemoOptions { scale, seed: 42 };
        tally::demo::load_demo(&conn, model, &opts, false)
            .await
            .expect("demo data");
    }
    println!(
        "\n{backend}: demo data (saas, shop) loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let open = |cache| tally::http::Settings {
        result_cache: cache,
        ..Default::default()
    };
    let cached = serve(&conn, open(ResultCacheSettings::default()), true).await;
    let uncached = serve(&conn, open(ResultCacheSettings::off()), true).await;

    // the dashboard's instant: the page's load time, and a month before it
    let now = chrono::Utc::now();
    let t = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let t0 = (now - chrono::Months::new(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let tiles = Arc::new(
        json!({ "query": TILES, "variables": { "t": t, "t0": t0 } })
            .to_string()
            .into_bytes(),
    );
    let r = load.http(cached, tiles, None).await;
    let stats = scrape(cached).await;
    r.print(&format!("{backend} dashboard (cached)"));
    println!("    result cache: {stats}");

    // the Sankey, kept and computed each time
    let journey = Arc::new(
        json!({ "query": JOURNEY, "variables": { "t": t } })
            .to_string()
            .into_bytes(),
    );
    let kept = post(cached, &journey).await;
    let again = post(cached, &journey).await;
    assert_eq!(
        again["extensions"]["explain"][0]["cache"], "hit",
        "{backend}: the journey was not kept: {again}"
    );
    assert_eq!(
        kept["data"],
        post(uncached, &journey).await["data"],
        "{backend}: the kept journey differs from the computed one"
    );
    let r = load.http(cached, journey.clone(), None).await;
    r.print(&format!("{backend} journey (cached)"));
    println!("    result cache: {}", scrape(cached).await);
    let r = load.http(uncached, journey, None).await;
    r.print(&format!("{backend} journey (uncached)"));

    let by_day = Arc::new(json!({ "query": BY_DAY }).to_string().into_bytes());
    let r = load.http(uncached, by_day.clone(), None).await;
    r.print(&format!("{backend} by-day metrics (uncached)"));

    // the statement the server ran, bound to the same values, straight on the driver
    let answer = post(uncached, &by_day).await;
    let explain = &answer["extensions"]["explain"][0];
    let sql = explain["sql"].as_str().expect("explained SQL").to_owned();
    let postgres = backend == "postgres";
    let values: Vec<sea_orm::Value> = explain["params"]
        .as_array()
        .expect("params")
        .iter()
        .map(|v| value_of(v, postgres))
        .collect();
    let rows = answer["data"]["shop"]["metrics"]
        .as_array()
        .map_or(0, Vec::len);
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), &sql, values);
    let direct = conn
        .query_all_raw(stmt.clone())
        .await
        .map_or(0, |r| r.len());
    assert_eq!(
        direct, rows,
        "{backend}: the driver's rows differ from the server's"
    );
    let r = load.driver(&conn, stmt).await;
    r.print(&format!("{backend} by-day SQL (driver, {rows} rows)"));

    // authentication and the shop row policy, the key's stores being every store
    let stores: Vec<String> = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT DISTINCT store_id FROM \"shop\".\"order_line\" ORDER BY store_id",
        ))
        .await
        .expect("stores")
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("store_id"))
        .collect();
    let toml = format!(
        "[auth]\nmetrics_public = true\n\n[auth.roles.stores]\nexplain_sql = true\n\n[[auth.keys]]\nname = \"bench\"\nrole = \"stores\"\nhash = \"{}\"\nattributes = {{ store_id = [{}] }}\n",
        tally::auth::hash_key(KEY),
        stores
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let auth = tally::config::FileConfig::parse(&toml, "bench.toml")
        .and_then(|f| f.auth())
        .expect("auth");
    let keyed = |cache| tally::http::Settings {
        result_cache: cache,
        auth: Arc::new(auth.clone()),
        ..Default::default()
    };
    let keyed_cached = serve(&conn, keyed(ResultCacheSettings::default()), true).await;
    let keyed_uncached = serve(&conn, keyed(ResultCacheSettings::off()), true).await;
    let key = Some(Arc::new(KEY.to_owned()));
    let same = post_with(keyed_uncached, &by_day, key.as_deref().map(String::as_str)).await;
    assert_eq!(
        same["data"], answer["data"],
        "{backend}: the keyed answer differs from the open one"
    );
    assert!(
        same["extensions"]["explain"][0]["sql"]
            .as_str()
            .is_some_and(|sql| sql.contains("tally_policy_order_line")),
        "{backend}: the row policy did not apply: {same}"
    );
    for (cache, open_addr, keyed_addr) in [
        ("cached", cached, keyed_cached),
        ("uncached", uncached, keyed_uncached),
    ] {
        let a = load.http(open_addr, by_day.clone(), None).await;
        let b = load.http(keyed_addr, by_day.clone(), key.clone()).await;
        let (ra, rb) = (a.rate(), b.rate());
        a.print(&format!("{backend} by-day ({cache}), open"));
        b.print(&format!(
            "{backend} by-day ({cache}), key + row policy ({} stores)",
            stores.len()
        ));
        println!(
            "    overhead of key + policy ({cache}): {:+.1}% requests/s",
            (ra - rb) / ra * 100.0
        );
    }

    // a rollup's answer against the order lines'
    let additive = Arc::new(json!({ "query": BY_DAY_ADDITIVE }).to_string().into_bytes());
    let raw = serve(&conn, open(ResultCacheSettings::off()), false).await;
    let used = post(uncached, &additive).await;
    let rollup = used["extensions"]["explain"][0]["rollup"].clone();
    assert!(rollup.is_string(), "{backend}: no rollup answered: {used}");
    assert_eq!(
        used["data"],
        post(raw, &additive).await["data"],
        "{backend}: the rollup's answer differs"
    );
    let a = load.http(raw, additive.clone(), None).await;
    let b = load.http(uncached, additive, None).await;
    let (ra, rb) = (a.rate(), b.rate());
    a.print(&format!(
        "{backend} by-day net sales + order lines, order lines (uncached)"
    ));
    b.print(&format!(
        "{backend} by-day net sales + order lines, rollup {rollup} (uncached)"
    ));
    println!("    rollup speed-up: {:.2}x requests/s", rb / ra);
    conn.close().await.ok();
}

/// A bound value from its explain JSON: on PostgreSQL an instant is bound as one (tally
/// binds `timestamptz` values there), elsewhere as the text explain shows.
fn value_of(v: &Value, postgres: bool) -> sea_orm::Value {
    match v {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) if postgres => t.with_timezone(&chrono::Utc).into(),
            _ => s.clone().into(),
        },
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        _ => sea_orm::Value::String(None),
    }
}

/// The app over `conn` with `settings` (rollups used or not), served on an ephemeral port.
async fn serve(
    conn: &DatabaseConnection,
    settings: tally::http::Settings,
    rollups: bool,
) -> SocketAddr {
    let models = tally::semantic::load_models(None).expect("models");
    let settings = tally::http::Settings {
        rollups,
        ..settings
    };
    let app = tally::http::app_with_settings(
        conn.clone(),
        models,
        Some(tally::saas::SaasConfig::default()),
        settings,
    )
    .expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

/// One POST of `body` to `/graphql` on a connection of its own, as JSON.
async fn post(addr: SocketAddr, body: &[u8]) -> Value {
    post_with(addr, body, None).await
}

/// [`post`] with the API key `key`.
async fn post_with(addr: SocketAddr, body: &[u8], key: Option<&str>) -> Value {
    let mut client = Client::connect(addr).await;
    client.key = key.map(str::to_owned);
    let (status, bytes) = client.post("/graphql", body).await.expect("POST");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The result cache's counters from `/metrics`.
async fn scrape(addr: SocketAddr) -> String {
    let mut client = Client::connect(addr).await;
    let (_, bytes) = client.get("/metrics").await.expect("GET /metrics");
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .filter(|l| l.starts_with("tally_result_cache_"))
        .map(|l| l.trim_start_matches("tally_result_cache_"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A keep-alive HTTP/1 connection.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
    /// Sent as `Authorization: Bearer …`.
    key: Option<String>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        Client {
            sender,
            host: addr.to_string(),
            key: None,
        }
    }

    async fn send(
        &mut self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), hyper::Error> {
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn post(&mut self, path: &str, body: &[u8]) -> Result<(u16, Bytes), hyper::Error> {
        let mut req = hyper::Request::post(path)
            .header("host", &self.host)
            .header("content-type", "application/json");
        if let Some(key) = &self.key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        self.send(req).await
    }

    async fn get(&mut self, path: &str) -> Result<(u16, Bytes), hyper::Error> {
        let req = hyper::Request::get(path)
            .header("host", &self.host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.send(req).await
    }
}

/// How hard and how long to push.
struct Load {
    connections: usize,
    duration: Duration,
}

/// What a measurement saw.
struct Outcome {
    latencies: Vec<Duration>,
    failures: usize,
    elapsed: Duration,
}

impl Outcome {
    /// Requests answered per second.
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(mut self, what: &str) {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let at = |q: f64| {
            self.latencies
                .get(
                    ((n as f64 * q).ceil() as usize)
                        .saturating_sub(1)
                        .min(n.saturating_sub(1)),
                )
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "  {what:<44} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({n} requests, {} failed)",
            n as f64 / self.elapsed.as_secs_f64(),
            at(0.50),
            at(0.99),
            self.failures
        );
    }
}

/// One task's latencies (after the warm-up) and failures.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failures: usize,
}

impl Tally {
    fn note(&mut self, started: Instant, warm_until: Instant, ok: bool) {
        if started < warm_until {
            return;
        }
        if ok {
            self.latencies.push(started.elapsed());
        } else {
            self.failures += 1;
        }
    }
}

impl Load {
    /// When the warm-up ends and when the measurement ends, from now.
    fn window(&self) -> (Instant, Instant) {
        let warm_until = Instant::now() + Duration::from_secs(1);
        (warm_until, warm_until + self.duration)
    }

    /// POSTs `body` to `/graphql` from every connection, one request at a time each, for
    /// the duration (after a one-second warm-up); a response other than 200 without errors
    /// is a failure.
    async fn http(
        &self,
        addr: SocketAddr,
        body: Arc<Vec<u8>>,
        key: Option<Arc<String>>,
    ) -> Outcome {
        let (warm_until, end) = self.window();
        let mut tasks = Vec::new();
        for _ in 0..self.connections {
            let body = body.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                client.key = key.map(|k| k.as_ref().clone());
                let mut tally = Tally::default();
                loop {
                    let started = Instant::now();
                    if started >= end {
                        return tally;
                    }
                    let ok = match client.post("/graphql", &body).await {
                        Ok((200, bytes)) => !bytes.windows(9).any(|w| w == b"\"errors\":"),
                        _ => false,
                    };
                    tally.note(started, warm_until, ok);
                }
            }));
        }
        self.collect(tasks).await
    }

    /// Runs `stmt` on the pool from as many tasks as connections, for the duration.
    async fn driver(&self, conn: &DatabaseConnection, stmt: Statement) -> Outcome {
        let (warm_until, end) = self.window();
        let mut tasks = Vec::new();
        for _ in 0..self.connections {
            let conn = conn.clone();
            let stmt = stmt.clone();
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let started = Instant::now();
                    if started >= end {
                        return tally;
                    }
                    let ok = conn.query_all_raw(stmt.clone()).await.is_ok();
                    tally.note(started, warm_until, ok);
                }
            }));
        }
        self.collect(tasks).await
    }

    async fn collect(&self, tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Outcome {
        let mut out = Outcome {
            latencies: Vec::new(),
            failures: 0,
            elapsed: self.duration,
        };
        for t in tasks {
            let tally = t.await.expect("load task");
            out.latencies.extend(tally.latencies);
            out.failures += tally.failures;
        }
        out
    }
}
