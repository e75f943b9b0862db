//! The server's connections over a real socket: a client trickling its headers is cut off at
//! the header-read timeout, an idle keep-alive connection is closed, shutdown stops
//! accepting, lets a running request finish within the shutdown timeout and drops (and
//! cancels) one that outlives it; `tally serve` exits 0 on SIGTERM.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestDb, pg_running, pg_wait_running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every backend under test; in CI PostgreSQL must be there.
async fn backends() -> Vec<TestDb> {
    let dbs = TestDb::all().await;
    if std::env::var_os("CI").is_some() {
        assert_eq!(dbs.len(), 2, "CI needs TEST_DATABASE_URL");
    }
    dbs
}

/// A server over `url` (read-only, the slow model, a request budget of `budget`) with the
/// connection settings `http`, stopped when `stop` is sent; the task ends when it has shut
/// down.
async fn start(
    url: &str,
    budget: Duration,
    http: tally::config::HttpConfig,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let settings = tally::http::Settings {
        engine: Some(tally::engine::Limits {
            statement_timeout: budget,
            max_queries: 2,
            queue_timeout: Duration::from_secs(1),
        }),
        ..Default::default()
    };
    let app = common::slow_app(url, settings).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tally::http::serve_on(listener, app, http, async {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    (addr, tx, task)
}

fn http(header_read: f64, idle: f64, shutdown: f64) -> tally::config::HttpConfig {
    tally::config::HttpConfig {
        cors_origins: Vec::new(),
        header_read_timeout: Duration::from_secs_f64(header_read),
        idle_timeout: Duration::from_secs_f64(idle),
        shutdown_timeout: Duration::from_secs_f64(shutdown),
    }
}

/// Reads until the peer closes (`Ok` with what was read) or `within` passes (`Err`).
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Result<String, String> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(String::from_utf8_lossy(&all).into_owned()),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return Err(String::from_utf8_lossy(&all).into_owned()),
        }
    }
}

fn post(query: &str) -> String {
    let body = serde_json::json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trickling_client_is_cut_off_and_an_idle_one_closed() {
    let db = TestDb::sqlite().await;
    let (addr, stop, task) = start(&db.url, Duration::from_secs(30), http(0.5, 0.8, 5.0)).await;

    // headers sent a byte every 100 ms: cut off at the 0.5 s header-read timeout
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-slow: ")
        .await
        .unwrap();
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            // closed (0), or an error answer before closing
            closed = n == 0 || String::from_utf8_lossy(&probe[..n]).starts_with("HTTP/1.1 408");
            if closed {
                break;
            }
        }
    }
    let took = started.elapsed();
    assert!(closed, "the trickling connection stayed open for {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // a connection opened and left silent is closed too
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    read_to_close(&mut silent, Duration::from_secs(4))
        .await
        .expect("a silent connection is closed");
    assert!(started.elapsed() < Duration::from_secs(3));

    // keep-alive: a first request is answered, then the idle connection is closed
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let text = read_to_close(&mut idle, Duration::from_secs(4))
        .await
        .expect("the idle connection is closed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("ok"), "{text}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // the server still answers new connections
    let mut fresh = TcpStream::connect(addr).await.expect("connect");
    fresh
        .write_all(post("{ __typename }").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = fresh.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shut down")
        .unwrap();
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_drains_running_requests_then_drops_them() {
    for db in backends().await {
        // a request that ends (at its 1 s budget) within the 5 s shutdown timeout is answered
        let (addr, stop, task) =
            start(&db.url, Duration::from_secs(1), http(10.0, 60.0, 5.0)).await;
        let mut running = TcpStream::connect(addr).await.expect("connect");
        running
            .write_all(post("{ slow { metrics { spins } } }").as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // no new connection is accepted
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "{}: the listener is closed",
            db.backend
        );
        let text = read_to_close(&mut running, Duration::from_secs(8))
            .await
            .expect("answered, then closed");
        assert!(text.starts_with("HTTP/1.1 200"), "{}: {text}", db.backend);
        assert!(text.contains("TIMEOUT"), "{}: {text}", db.backend);
        tokio::time::timeout(Duration::from_secs(8), task)
            .await
            .expect("shut down")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{}", db.backend);

        // a request outliving the 0.5 s shutdown timeout is dropped, its statement cancelled
        let (addr, stop, task) =
            start(&db.url, Duration::from_secs(120), http(10.0, 60.0, 0.5)).await;
        let mut running = TcpStream::connect(addr).await.expect("connect");
        running
            .write_all(post("{ slow { metrics { spins } } }").as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        if db.backend == "postgres" {
            assert_eq!(pg_running(&db.conn).await, 1, "the slow statement runs");
        }
        let started = Instant::now();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("shut down")
            .unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{}: {took:?}",
            db.backend
        );
        let text = read_to_close(&mut running, Duration::from_secs(3))
            .await
            .expect("closed");
        assert!(text.is_empty(), "{}: no answer: {text}", db.backend);
        if db.backend == "postgres" {
            // the statement was cancelled
            pg_wait_running(&db.conn, 0, Duration::from_secs(5)).await;
        }
        db.cleanup().await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_0_on_sigterm() {
    use std::io::BufRead as _;
    let db = TestDb::sqlite().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slow");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--db",
            &db.url,
            "--models",
        ])
        .arg(&dir)
        .env_remove("TALLY_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tally");
    let stdout = child.stdout.take().unwrap();
    // the address and the access line, from what the server prints at start
    let (addr, access) = tokio::task::spawn_blocking(move || {
        let mut addr = None;
        let mut access = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.trim().strip_prefix("GraphQL:") {
                addr = rest
                    .trim()
                    .strip_prefix("http://")
                    .and_then(|r| r.strip_suffix("/graphql"))
                    .map(str::to_owned);
            }
            if line.contains("access:") {
                access = line;
                break;
            }
        }
        (addr, access)
    })
    .await
    .unwrap();
    assert!(access.contains("OPEN"), "{access}");
    let addr: SocketAddr = addr
        .expect("the server printed its address")
        .parse()
        .unwrap();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("exits")
    .unwrap()
    .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    db.cleanup().await;
}
