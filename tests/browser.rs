//! The dashboard in a real browser: starts `tally serve` with demo data on a free loopback
//! port and runs `tests/browser/dashboard.mjs`, which drives Debian's chromium headless
//! (through `playwright-core` from npm, pointed at `/usr/bin/chromium`; nothing downloads a
//! browser) and checks the dashboard's numbers against the API's.
//!
//! Needs `node`, `chromium` (`CHROMIUM`, default `/usr/bin/chromium`) and
//! `tests/browser/node_modules` (`npm ci` in `tests/browser`); `.ci/run` installs them. When
//! one is missing the test fails under `CI=true`, and elsewhere says loudly that it did not
//! run. Screenshots are written to `$CARGO_TARGET_TMPDIR/dashboard-screenshots` (printed).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What is missing to run the browser test, if anything.
fn missing(root: &Path, chromium: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        out.push("node (apt-get install -y nodejs npm)".to_owned());
    }
    if !chromium.exists() {
        out.push(format!(
            "{} (apt-get install -y chromium)",
            chromium.display()
        ));
    }
    if !root
        .join("tests/browser/node_modules/playwright-core")
        .is_dir()
    {
        out.push("tests/browser/node_modules (cd tests/browser && npm ci)".to_owned());
    }
    out
}

#[test]
fn dashboard_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let missing = missing(&root, &chromium);
    if !missing.is_empty() {
        let msg = format!(
            "the dashboard browser test cannot run: missing {}",
            missing.join(", ")
        );
        if in_ci() {
            panic!("{msg} (CI=true: this is a failure; .ci/run installs them)");
        }
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n"
        );
        return;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("tally.db").display());
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "serve",
            "--db",
            &db,
            "--demo",
            "--bind",
            "127.0.0.1:0",
            "--demo-scale",
            "0.05",
        ])
        .current_dir(&root)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tally serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);

    // `serve` prints its URLs once the demo data is loaded and it listens.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("tally: {line}");
            if let Some(url) = line.trim().strip_prefix("dashboard: ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let dashboard = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("tally serve printed its dashboard URL");
    let base = dashboard
        .strip_suffix("/dashboard")
        .expect("the dashboard URL ends with /dashboard")
        .to_owned();
    println!(
        "tally is serving demo data at {base} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let out = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .env("TALLY_URL", &base)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", &shots)
        .current_dir(root.join("tests/browser"))
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    drop(server);
    assert!(out.status.success(), "the browser checks failed: see above");
    assert!(
        text.contains(" passed, 0 failed"),
        "the browser checks did not finish"
    );
    let _ = writeln!(
        std::io::stderr(),
        "dashboard screenshots: {} ({:.1} s in all)",
        shots.display(),
        started.elapsed().as_secs_f64()
    );
}
