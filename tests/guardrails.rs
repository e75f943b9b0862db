//! The server's guardrails over a real socket, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL: the request's time budget stops a slow statement inside the database
//! (`TIMEOUT`), a client that hangs up has its statement cancelled, admission control
//! answers `OVERLOADED` (HTTP 503, `Retry-After`), `/healthz` never waits on the pool,
//! `/readyz` asks the database, and a database that refuses connections gives
//! `DATABASE_UNAVAILABLE` fast and service resumes by itself.
//!
//! Request limits: body size, operations per batch, fields and depth of a document,
//! metrics × dimensions of a `metrics` field (`LIMIT_EXCEEDED`, naming limit and value), and
//! the row cap of `metrics` without `limit` (`extensions.rowsCut`).
//!
//! The slow statement is the `slow` test model (`tests/fixtures/slow`): a recursive count to
//! two billion, minutes on either backend.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{TestDb, pg_wait_running};
use sea_orm::ConnectionTrait;
use tally::engine::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW: &str = "{ slow { metrics { spins } } }";

/// Every backend under test; in CI PostgreSQL must be there.
async fn backends() -> Vec<TestDb> {
    let dbs = TestDb::all().await;
    if std::env::var_os("CI").is_some() {
        assert_eq!(dbs.len(), 2, "CI needs TEST_DATABASE_URL");
    }
    dbs
}

/// A server over `url` (read-only) serving the slow model with `limits`.
async fn start(url: &str, limits: Limits) -> SocketAddr {
    start_with(
        url,
        tally::http::Settings {
            engine: Some(limits),
            ..Default::default()
        },
    )
    .await
}

/// A server over `url` (read-only) serving the slow model with `settings`.
async fn start_with(url: &str, settings: tally::http::Settings) -> SocketAddr {
    let app = common::slow_app(url, settings).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    addr
}

fn limits(timeout: f64, max_queries: usize, queue: f64) -> Limits {
    Limits {
        statement_timeout: Duration::from_secs_f64(timeout),
        max_queries,
        queue_timeout: Duration::from_secs_f64(queue),
    }
}

/// An HTTP/1.1 answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends a raw request and reads the whole answer (`Connection: close`).
async fn send(addr: SocketAddr, request: String) -> Answer {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn post_request(query: &str, extra_headers: &str) -> String {
    let body = serde_json::json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

async fn post(addr: SocketAddr, query: &str) -> Answer {
    send(addr, post_request(query, "")).await
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Starts a slow request and returns its socket once the request is sent (the caller hangs
/// up by dropping it).
async fn start_slow(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(post_request(SLOW, "").as_bytes())
        .await
        .expect("write");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_past_its_budget_is_stopped_in_the_database() {
    for db in backends().await {
        let addr = start(&db.url, limits(1.0, 4, 2.0)).await;
        let started = Instant::now();
        let answer = post(addr, SLOW).await;
        let took = started.elapsed();
        eprintln!("{}: TIMEOUT after {took:?} (budget 1 s)", db.backend);
        let json = answer.json();
        let error = &json["errors"][0];
        assert_eq!(
            error["extensions"]["code"], "TIMEOUT",
            "{}: {json}",
            db.backend
        );
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains("time budget of 1 s") && message.contains("--statement-timeout"),
            "{message}"
        );
        assert!(
            error["extensions"]["requestId"].is_string(),
            "request id in the error: {json}"
        );
        // stopped by the database at the budget, not by the engine's backstop (budget + 1 s)
        assert!(
            took < Duration::from_millis(1600),
            "{}: TIMEOUT after {took:?}",
            db.backend
        );
        if db.backend == "postgres" {
            // stopped by the database itself: nothing left running
            pg_wait_running(&db.conn, 0, Duration::from_millis(500)).await;
        }
        // the server goes on answering
        let ok = post(addr, "{ sources { name } }").await;
        assert_eq!(ok.status, 200);
        assert!(ok.json()["errors"].is_null(), "{}", ok.body);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_run_with_their_budget_and_their_plans_are_measured() {
    for db in backends().await {
        let addr = start(&db.url, limits(20.0, 4, 2.0)).await;
        // one statement, six runs (another asOf each: no cached answer): the first three
        // planned for their values, the next three with the generic plan (see
        // `engine::plan_choice`)
        let mut modes = Vec::new();
        for day in 1..=6 {
            let answer = post(
                addr,
                &format!(
                    "{{ slow {{ metrics(asOf: \"2026-01-0{day}T00:00:00Z\") {{ planCacheMode jit statementTimeout settingRows }} }} }}"
                ),
            )
            .await;
            let json = answer.json();
            assert!(json["errors"].is_null(), "{}: {json}", db.backend);
            let row = &json["data"]["slow"]["metrics"][0];
            assert_eq!(row["settingRows"], 1, "{}: {json}", db.backend);
            modes.push(row["planCacheMode"].as_str().expect("mode").to_owned());
            // explain says how the statement was planned, and why
            let entry = &json["extensions"]["explain"][0];
            if db.backend != "postgres" {
                assert!(entry["planMode"].is_null(), "{}: {entry}", db.backend);
                continue;
            }
            let (mode, n) = if day <= 3 {
                ("custom", day)
            } else {
                ("generic", day - 3)
            };
            assert_eq!(entry["planMode"], mode, "{entry}");
            assert_eq!(
                entry["planReason"].as_str().expect("planReason"),
                format!(
                    "sampling: run {n} of 3 planned {}, before choosing the faster mode",
                    if day <= 3 {
                        "for its values"
                    } else {
                        "generically"
                    }
                ),
                "{entry}"
            );
            // the statement embeds a SQL table: no JIT
            assert_eq!(row["jit"], "off", "{json}");
            // the request's budget left, in force inside the database (PostgreSQL shows
            // whole seconds as `20s`, else milliseconds)
            let timeout = row["statementTimeout"].as_str().expect("timeout");
            let millis: f64 = match timeout.strip_suffix("ms") {
                Some(ms) => ms.parse().expect("milliseconds"),
                None => {
                    timeout
                        .strip_suffix('s')
                        .expect("seconds")
                        .parse::<f64>()
                        .expect("seconds")
                        * 1000.0
                }
            };
            assert!(
                (15_000.0..=20_000.0).contains(&millis),
                "statement_timeout {timeout}"
            );
        }
        let want: Vec<&str> = if db.backend == "postgres" {
            [["force_custom_plan"; 3], ["force_generic_plan"; 3]].concat()
        } else {
            vec!["none"; 6]
        };
        assert_eq!(modes, want, "{}", db.backend);
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_hangs_up_has_its_statements_cancelled() {
    for db in backends().await {
        // as many slow requests as the pool has connections, each with a long budget
        let pool = if db.backend == "postgres" { 16 } else { 8 };
        let addr = start(&db.url, limits(120.0, pool, 2.0)).await;
        let mut sockets = Vec::new();
        for _ in 0..pool {
            sockets.push(start_slow(addr).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if db.backend == "postgres" {
            pg_wait_running(&db.conn, pool as i64, Duration::from_secs(5)).await;
        }
        // liveness never waits on the busy pool
        let started = Instant::now();
        let health = get(addr, "/healthz").await;
        assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
        assert!(started.elapsed() < Duration::from_millis(500));
        // every client hangs up
        let hung_up = Instant::now();
        drop(sockets);
        if db.backend == "postgres" {
            let gone = pg_wait_running(&db.conn, 0, Duration::from_secs(1)).await;
            eprintln!("postgres: {pool} abandoned statements gone {gone:?} after the hang-up");
        }
        // the connections are free again: a cheap query and readiness answer at once
        let cheap = post(addr, "{ sources { name tables { name rowCount } } }").await;
        let metrics = get(addr, "/metrics").await.body;
        assert!(
            metrics.contains(&format!("\ntally_db_cancelled_total {pool}\n")),
            "{metrics}"
        );
        assert!(cheap.json()["errors"].is_null(), "{}", cheap.body);
        let ready = get(addr, "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
        let freed = hung_up.elapsed();
        eprintln!(
            "{}: cheap query answered {freed:?} after the hang-up",
            db.backend
        );
        assert!(
            freed < Duration::from_secs(2),
            "{}: {freed:?} until a cheap query was answered",
            db.backend
        );
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_many_statements_at_once_is_overloaded_with_retry_after() {
    for db in backends().await {
        let addr = start(&db.url, limits(10.0, 1, 0.2)).await;
        let busy = start_slow(addr).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let answer = post(addr, "{ sources { name tables { name rowCount } } }").await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(answer.header("retry-after"), Some("1"));
        let json = answer.json();
        let error = &json["errors"][0];
        assert_eq!(error["extensions"]["code"], "OVERLOADED", "{json}");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains("--max-concurrent-queries 1") && message.contains("0.2 s"),
            "{message}"
        );
        drop(busy);
        // once the slow one is gone, the same request is answered
        let started = Instant::now();
        loop {
            let answer = post(addr, "{ sources { name } }").await;
            if answer.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{}",
                answer.body
            );
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_ids_go_in_and_out() {
    let db = TestDb::sqlite().await;
    let addr = start(&db.url, limits(5.0, 2, 1.0)).await;
    let answer = send(
        addr,
        post_request("{ slow { metrics { nope } } }", "x-request-id: abc-123\r\n"),
    )
    .await;
    assert_eq!(answer.header("x-request-id"), Some("abc-123"));
    assert_eq!(
        answer.json()["errors"][0]["extensions"]["requestId"],
        "abc-123"
    );
    // an id that is not sane is replaced
    let answer = send(
        addr,
        post_request("{ sources { name } }", "x-request-id: a b\r\n"),
    )
    .await;
    let id = answer.header("x-request-id").expect("an id");
    assert!(!id.is_empty() && id != "a b", "{id}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_fails_fast_and_service_resumes() {
    let Some(db) = TestDb::postgres().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs TEST_DATABASE_URL"
        );
        return;
    };
    let (admin_url, name) = db.pg.clone().expect("a PostgreSQL database");
    let addr = start(&db.url, limits(10.0, 4, 1.0)).await;
    let ok = post(addr, "{ sources { name tables { name rowCount } } }").await;
    assert!(ok.json()["errors"].is_null(), "{}", ok.body);
    let admin = sea_orm::Database::connect(&admin_url).await.expect("admin");
    let run = |sql: String| {
        let admin = admin.clone();
        async move {
            admin
                .execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    // the outage: no new connections, every open one cut
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    run(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .await;
    let started = Instant::now();
    let answer = post(addr, "{ sources { name tables { name rowCount } } }").await;
    let took = started.elapsed();
    eprintln!("outage: DATABASE_UNAVAILABLE after {took:?}");
    assert_eq!(answer.status, 503, "{}", answer.body);
    let json = answer.json();
    assert_eq!(
        json["errors"][0]["extensions"]["code"], "DATABASE_UNAVAILABLE",
        "{json}"
    );
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let ready = get(addr, "/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 200);
    // the database is back: service resumes without a restart
    run(format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    let back = Instant::now();
    loop {
        let answer = post(addr, "{ sources { name tables { name rowCount } } }").await;
        if answer.status == 200 && answer.json()["errors"].is_null() {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(5), "{}", answer.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "outage: answering again {:?} after the database came back",
        back.elapsed()
    );
    assert_eq!(get(addr, "/readyz").await.status, 200);
    admin.close().await.ok();
    db.cleanup().await;
}

fn assert_limit(answer: &Answer, status: u16, needles: &[&str]) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let json = answer.json();
    let error = &json["errors"][0];
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{json}");
    let message = error["message"].as_str().expect("message");
    for n in needles {
        assert!(message.contains(n), "{message:?} lacks {n:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_limits_name_the_limit_and_the_value() {
    let db = TestDb::sqlite().await;
    let settings = tally::http::Settings {
        engine: Some(limits(5.0, 2, 1.0)),
        request: tally::graphql::RequestLimits {
            max_fields: 50,
            max_depth: 6,
            max_metrics_dimensions: 1,
            max_rows: 20,
            ..Default::default()
        },
        max_body_bytes: 4096,
        max_batch: 3,
        ..Default::default()
    };
    let addr = start_with(&db.url, settings).await;

    // body size: refused on the declared length before it is read, and on the bytes read
    let answer = send(
        addr,
        "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert_limit(
        &answer,
        413,
        &["300000000 bytes", "4096 bytes (--max-body-bytes)"],
    );
    let big = format!("{{ sources {{ name }} }} #{}", "x".repeat(5000));
    let chunk = serde_json::json!({ "query": big }).to_string();
    let answer = send(
        addr,
        format!(
            "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        ),
    )
    .await;
    assert_limit(&answer, 413, &["more than 4096 bytes", "--max-body-bytes"]);

    // operations per batch
    let op = serde_json::json!({ "query": "{ sources { name } }" });
    let batch = serde_json::Value::Array(vec![op.clone(); 4]).to_string();
    let answer = send(
        addr,
        format!(
            "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{batch}",
            batch.len()
        ),
    )
    .await;
    assert_limit(&answer, 400, &["4 operations", "limit is 3 (--max-batch)"]);
    let batch = serde_json::Value::Array(vec![op; 3]).to_string();
    let answer = send(
        addr,
        format!(
            "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{batch}",
            batch.len()
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json().as_array().map(Vec::len), Some(3));

    // fields, aliases counted
    let aliases: String = (0..30)
        .map(|i| format!(" a{i}: sources {{ name }}"))
        .collect();
    let answer = post(addr, &format!("{{{aliases} }}")).await;
    assert_limit(
        &answer,
        200,
        &["selects 60 fields", "limit is 50 (--max-fields)"],
    );

    // introspection root fields, however few fields they select
    let answer = post(
        addr,
        "{ a: __schema { queryType { name } } b: __schema { queryType { name } } c: __type(name: \"Query\") { name } ...f } fragment f on Query { d: __schema { queryType { name } } e: __schema { queryType { name } } }",
    )
    .await;
    assert_limit(&answer, 200, &["5 introspection fields", "limit is 4"]);

    // depth
    let answer = post(
        addr,
        "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }",
    )
    .await;
    assert_limit(&answer, 200, &["7 deep", "limit is 6 (--max-depth)"]);

    // metrics × dimensions of one metrics field
    let answer = post(addr, "{ slow { metrics { fiftyId fifties spins } } }").await;
    assert_limit(
        &answer,
        200,
        &[
            "slow.metrics selects 2 metrics × 1 dimensions = 2",
            "limit is 1 (--max-metrics-dimensions)",
        ],
    );

    // the row cap: without limit at most max_rows rows, and the response says it cut them
    let answer = post(addr, "{ slow { metrics { fiftyId fifties } } }").await;
    let json = answer.json();
    assert!(json["errors"].is_null(), "{json}");
    let rows = json["data"]["slow"]["metrics"].as_array().expect("rows");
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0]["fiftyId"], "01");
    assert_eq!(rows[19]["fiftyId"], "20");
    assert_eq!(
        json["extensions"]["rowsCut"],
        serde_json::json!([{ "path": "slow.metrics", "rows": 20 }])
    );
    // an explicit limit is the client's: no cut reported
    let answer = post(addr, "{ slow { metrics(limit: 30) { fiftyId fifties } } }").await;
    let json = answer.json();
    assert_eq!(
        json["data"]["slow"]["metrics"].as_array().map(Vec::len),
        Some(30)
    );
    assert!(json["extensions"]["rowsCut"].is_null(), "{json}");
    // under the cap: all rows, no cut
    let answer = post(
        addr,
        r#"{ slow { metrics(where: { fiftyId: { in: ["01", "02"] } }) { fiftyId fifties } } }"#,
    )
    .await;
    let json = answer.json();
    assert_eq!(
        json["data"]["slow"]["metrics"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
    assert!(json["extensions"]["rowsCut"].is_null(), "{json}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_a_known_sequence_of_requests() {
    let db = TestDb::sqlite().await;
    let settings = tally::http::Settings {
        engine: Some(limits(1.0, 2, 1.0)),
        max_body_bytes: 4096,
        ..Default::default()
    };
    let addr = start_with(&db.url, settings).await;
    for _ in 0..2 {
        let ok = post(addr, "{ sources { name } }").await;
        assert!(ok.json()["errors"].is_null(), "{}", ok.body);
    }
    let bad = post(addr, r#"{ slow { metrics(asOf: "nope") { fifties } } }"#).await;
    assert_eq!(bad.json()["errors"][0]["extensions"]["code"], "BAD_AS_OF");
    let rows = post(addr, "{ slow { metrics { fiftyId fifties } } }").await;
    assert!(rows.json()["errors"].is_null(), "{}", rows.body);
    let slow = post(addr, SLOW).await;
    assert_eq!(slow.json()["errors"][0]["extensions"]["code"], "TIMEOUT");
    let invalid = post(addr, "{ nope }").await;
    assert_eq!(
        invalid.json()["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let too_big = send(
        addr,
        "POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n"
            .to_owned(),
    )
    .await;
    assert_eq!(too_big.status, 413);
    assert_eq!(get(addr, "/healthz").await.status, 200);

    let answer = get(addr, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        answer.headers
    );
    let text = answer.body;
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let field = |f: &str, code: &str| {
        value(&format!(
            "tally_graphql_field_seconds_count{{field=\"{f}\",code=\"{code}\"}}"
        ))
    };
    assert_eq!(field("Query.sources", "OK"), 2.0);
    assert_eq!(field("SlowModel.metrics", "BAD_AS_OF"), 1.0);
    assert_eq!(field("SlowModel.metrics", "OK"), 1.0);
    assert_eq!(field("SlowModel.metrics", "TIMEOUT"), 1.0);
    assert_eq!(field("(request)", "GRAPHQL_VALIDATION_FAILED"), 1.0);
    // the timed-out field took about its budget: in the 1 s..2.5 s buckets
    assert_eq!(
        value(
            "tally_graphql_field_seconds_bucket{field=\"SlowModel.metrics\",code=\"TIMEOUT\",le=\"0.5\"}"
        ),
        0.0
    );
    assert_eq!(
        value(
            "tally_graphql_field_seconds_bucket{field=\"SlowModel.metrics\",code=\"TIMEOUT\",le=\"2.5\"}"
        ),
        1.0
    );
    // two statements ran (the fifty rows, the slow one); the slow one took about 1 s
    assert_eq!(value("tally_db_statements_total"), 2.0);
    let db_seconds = value("tally_db_seconds_total");
    assert!((0.9..2.0).contains(&db_seconds), "{db_seconds}");
    assert_eq!(value("tally_db_timeouts_total"), 1.0);
    assert_eq!(value("tally_db_rejected_total"), 0.0);
    assert_eq!(value("tally_http_rejected_total"), 1.0);
    assert_eq!(value("tally_db_statements_running"), 0.0);
    assert_eq!(value("tally_db_statements_max"), 2.0);
    assert_eq!(value("tally_db_pool_connections{state=\"max\"}"), 8.0);
    assert_eq!(
        value("tally_http_request_seconds_count{route=\"/graphql\",status=\"200\"}"),
        6.0
    );
    assert_eq!(
        value("tally_http_request_seconds_count{route=\"/graphql\",status=\"413\"}"),
        1.0
    );
    assert_eq!(
        value("tally_http_request_seconds_count{route=\"/healthz\",status=\"200\"}"),
        1.0
    );
    db.cleanup().await;
}
