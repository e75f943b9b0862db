//! The configuration file and the command line: errors name file, line, column and key;
//! `tally.example.toml` parses and holds the defaults; flags win over the file, which wins
//! over the defaults; `tally serve` refuses a non-loopback address with no key; `tally key new`
//! prints a key and the lines holding its hash.

use std::time::Duration;

use tally::config::{FileConfig, ServeConfig, ServeFlags};

fn error_of(text: &str) -> String {
    FileConfig::parse(text, "tally.toml")
        .expect_err("an error")
        .to_string()
}

#[test]
fn errors_name_the_file_line_column_and_key() {
    // an unknown key
    let e = error_of("[http]\nbind = \"127.0.0.1:4000\"\nbnd = \"x\"\n");
    assert!(e.contains("tally.toml:3:1:"), "{e}");
    assert!(e.contains("http.bnd") && e.contains("unknown field"), "{e}");
    // an unknown section
    let e = error_of("[guardrail]\nstatement_timeout = \"1s\"\n");
    assert!(
        e.contains("tally.toml:1:") && e.contains("guardrail"),
        "{e}"
    );
    // a wrong type
    let e = error_of("[limits]\nmax_rows = 10\nmax_batch = \"ten\"\n");
    assert!(e.contains("tally.toml:3:13:"), "{e}");
    assert!(
        e.contains("limits.max_batch") && e.contains("invalid type"),
        "{e}"
    );
    // a bad duration, and a number where a duration is expected
    let e = error_of("\n[guardrails]\nstatement_timeout = \"30 seconds\"\n");
    assert!(e.contains("tally.toml:3:21:"), "{e}");
    assert!(
        e.contains("guardrails.statement_timeout") && e.contains("\"30s\""),
        "{e}"
    );
    let e = error_of("[http]\nidle_timeout = 60\n");
    assert!(
        e.contains("tally.toml:2:") && e.contains("http.idle_timeout"),
        "{e}"
    );
    // inside a role, and a key's table
    let e = error_of("[auth.roles.a]\nexplain_sq = true\n");
    assert!(
        e.contains("tally.toml:2:1:") && e.contains("auth.roles.a.explain_sq"),
        "{e}"
    );
    let e = error_of("[[auth.keys]]\nhash = \"sha256:00\"\nrole = 3\n");
    assert!(
        e.contains("tally.toml:3:8:") && e.contains("auth.keys.role"),
        "{e}"
    );
}

#[test]
fn durations_take_a_unit() {
    use tally::config::parse_duration;
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    for bad in ["30", "s", "0s", "-1s", "2d", "1.5.1s", "25h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

/// The error of the auth settings of `text`.
fn auth_error(text: &str) -> String {
    FileConfig::parse(text, "t.toml")
        .expect("parses")
        .auth()
        .expect_err("an auth error")
        .to_string()
}

#[test]
fn auth_settings_are_checked() {
    let hash = tally::auth::hash_key("k");
    let e = auth_error(&format!(
        "[[auth.keys]]\nhash = \"{hash}\"\nrole = \"nobody\"\n"
    ));
    assert!(
        e.contains("auth.keys[0].role") && e.contains("nobody"),
        "{e}"
    );
    let e = auth_error("[auth.roles.r]\n[[auth.keys]]\nhash = \"abc\"\nrole = \"r\"\n");
    assert!(
        e.contains("auth.keys[0].hash") && e.contains("sha256:"),
        "{e}"
    );
    let key = format!("[[auth.keys]]\nhash = \"{hash}\"\nrole = \"r\"\n");
    let e = auth_error(&format!("[auth.roles.r]\n{key}{key}"));
    assert!(
        e.contains("auth.keys[1].hash") && e.contains("twice"),
        "{e}"
    );
    // an allow list naming what the model lacks stops the server
    let auth = FileConfig::parse(
        "[auth.roles.r.allow.gym]\nmetrics = [\"leads\", \"revenew\"]\n",
        "t.toml",
    )
    .unwrap()
    .auth()
    .unwrap();
    let models = tally::semantic::load_models(None).unwrap();
    let e = auth.check_against(&models).unwrap_err().to_string();
    assert!(
        e.contains("auth.roles.r.allow.gym.metrics") && e.contains("revenew"),
        "{e}"
    );
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.example.toml"))
        .expect("tally.example.toml")
}

#[test]
fn the_example_parses_and_holds_the_defaults() {
    let file = FileConfig::parse(&example(), "tally.example.toml").expect("parses");
    let from_example = ServeConfig::resolve(&file, &ServeFlags::default()).unwrap();
    let defaults = ServeConfig::resolve(&FileConfig::default(), &ServeFlags::default()).unwrap();
    assert_eq!(from_example.guardrails, defaults.guardrails);
    assert_eq!(from_example.http, defaults.http);
    assert_eq!(from_example.bind, defaults.bind);
    assert_eq!(from_example.demo_scale, defaults.demo_scale);
    assert_eq!(from_example.auth, defaults.auth);
    assert_eq!(from_example.database.url(), defaults.database.url());
    assert_eq!(
        from_example.database.demo_when_empty(),
        defaults.database.demo_when_empty()
    );
    assert_eq!(defaults.guardrails, tally::config::Guardrails::default());
    assert_eq!(defaults.http, tally::config::HttpConfig::default());
    assert!(defaults.auth.is_open() && defaults.metrics_public());

    // the commented roles and keys are valid once uncommented
    let text = example();
    let start = text.find("# [auth.roles.admin]").expect("roles example");
    let uncommented: String = text[start..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let file = FileConfig::parse(&uncommented, "roles").expect("roles parse");
    let auth = file.auth().expect("roles and keys are consistent");
    assert_eq!(auth.roles.len(), 2);
    assert_eq!(auth.keys.len(), 2);
    assert!(auth.roles["admin"].unscoped && auth.roles["admin"].explain_sql);
    let branch = &auth.roles["branch_manager"];
    assert_eq!(branch.statement_timeout, Some(Duration::from_secs(10)));
    assert!(branch.may_use_metric("gym", "leads") && !branch.may_use_metric("gym", "clients"));
    assert!(!branch.may_read_model("shop"));
    assert_eq!(auth.keys[1].attributes["branch_id"], vec!["b1".to_owned()]);
    let models = tally::semantic::load_models(None).unwrap();
    auth.check_against(&models)
        .expect("the example names real metrics and dimensions");
}

#[test]
fn flags_win_over_the_file_which_wins_over_the_defaults() {
    let file = FileConfig::parse(
        r#"
[database]
url = "sqlite://file.db"
only = ["gym"]
namespaces = { gym = "public" }

[http]
bind = "127.0.0.1:5000"
cors_origins = ["https://app.example.com"]
shutdown_timeout = "1.5s"

[guardrails]
statement_timeout = "5s"
queue_timeout = "500ms"

[limits]
max_rows = 50
max_in_list = 10

[cache]
rollups = false
"#,
        "t.toml",
    )
    .unwrap();
    let c = ServeConfig::resolve(&file, &ServeFlags::default()).unwrap();
    assert_eq!(c.database.url(), "sqlite://file.db");
    assert!(
        !c.database.writable(),
        "a given database is read-only by default"
    );
    assert_eq!(c.bind.port(), 5000);
    assert_eq!(c.guardrails.statement_timeout, Duration::from_secs(5));
    assert_eq!(c.guardrails.queue_timeout, Duration::from_millis(500));
    assert_eq!(c.guardrails.db_acquire_timeout, Duration::from_secs(2));
    assert_eq!(c.guardrails.request.max_rows, 50);
    assert_eq!(c.guardrails.request.max_in_list, 10);
    assert_eq!(c.guardrails.request.max_filter_nodes, 200);
    assert_eq!(c.http.shutdown_timeout, Duration::from_millis(1500));
    assert_eq!(c.http.header_read_timeout, Duration::from_secs(10));
    assert_eq!(
        c.http.cors_origins,
        vec!["https://app.example.com".to_owned()]
    );
    assert_eq!(c.only.unwrap().into_iter().collect::<Vec<_>>(), vec!["gym"]);
    assert_eq!(c.namespaces["gym"], "public");
    assert!(!c.rollups, "cache.rollups = false turns rollups off");
    assert!(
        ServeConfig::resolve(&FileConfig::default(), &ServeFlags::default())
            .unwrap()
            .rollups,
        "rollups are on by default"
    );

    let flags = ServeFlags {
        db: Some("sqlite://flag.db".into()),
        bind: Some("127.0.0.1:6000".into()),
        statement_timeout: Some(7.0),
        max_rows: Some(70),
        only: vec!["shop".into()],
        demo: true,
        rollups: Some(tally::config::Switch::On),
        ..Default::default()
    };
    let c = ServeConfig::resolve(&file, &flags).unwrap();
    assert!(c.rollups, "--rollups on wins over the file");
    assert_eq!(c.database.url(), "sqlite://flag.db");
    assert!(c.database.writable());
    assert_eq!(c.bind.port(), 6000);
    assert_eq!(c.guardrails.statement_timeout, Duration::from_secs(7));
    assert_eq!(c.guardrails.queue_timeout, Duration::from_millis(500));
    assert_eq!(c.guardrails.request.max_rows, 70);
    assert_eq!(
        c.only.unwrap().into_iter().collect::<Vec<_>>(),
        vec!["shop"]
    );

    // a bad origin, a zero limit
    let bad = FileConfig::parse("[http]\ncors_origins = [\"*\"]\n", "t.toml").unwrap();
    let e = ServeConfig::resolve(&bad, &ServeFlags::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("http.cors_origins"), "{e}");
    let zero = FileConfig::parse("[limits]\nmax_in_list = 0\n", "t.toml").unwrap();
    let e = ServeConfig::resolve(&zero, &ServeFlags::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--max-in-list"), "{e}");
}

#[test]
fn an_open_server_is_refused_off_loopback() {
    let open = |bind: &str, allow: bool| {
        let flags = ServeFlags {
            bind: Some(bind.into()),
            allow_open: allow,
            ..Default::default()
        };
        ServeConfig::resolve(&FileConfig::default(), &flags)
            .unwrap()
            .check_open()
    };
    assert!(open("127.0.0.1:4000", false).is_ok());
    assert!(open("[::1]:4000", false).is_ok());
    let e = open("0.0.0.0:4000", false).unwrap_err().to_string();
    assert!(
        e.contains("--allow-open") && e.contains("0.0.0.0:4000"),
        "{e}"
    );
    assert!(open("0.0.0.0:4000", true).is_ok());
    // with a key, any address
    let file = FileConfig::parse(
        &format!(
            "[http]\nbind = \"0.0.0.0:4000\"\n[auth.roles.r]\n[[auth.keys]]\nhash = \"{}\"\nrole = \"r\"\n",
            tally::auth::hash_key("k")
        ),
        "t.toml",
    )
    .unwrap();
    let c = ServeConfig::resolve(&file, &ServeFlags::default()).unwrap();
    assert!(c.check_open().is_ok());
    assert!(!c.metrics_public(), "/metrics is private off loopback");

    // the binary stops before it touches any database
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--db",
            "sqlite:///nonexistent/x.db",
        ])
        .env_remove("TALLY_CONFIG")
        .env_remove("TALLY_ALLOW_OPEN")
        .output()
        .expect("run tally");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no API key") && err.contains("--allow-open"),
        "{err}"
    );
}

#[test]
fn key_new_prints_a_key_and_the_lines_holding_its_hash() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "key",
            "new",
            "--role",
            "analyst",
            "--attr",
            "branch_id=b1",
            "--attr",
            "branch_id=b2",
        ])
        .output()
        .expect("run tally");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let key = text.lines().next().unwrap().trim();
    assert!(key.starts_with("tally_"), "{text}");
    let lines: String = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(
        !lines.contains(key),
        "the file lines must not hold the key: {text}"
    );
    let file = FileConfig::parse(&format!("[auth.roles.analyst]\n{lines}\n"), "pasted").unwrap();
    let auth = file.auth().unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
    let who = auth.authenticate(&headers).unwrap().expect("an identity");
    assert_eq!(who.role.name, "analyst");
    let caller = who.caller.expect("a scoped role has a caller");
    assert_eq!(caller.attribute("branch_id").unwrap(), ["b1", "b2"]);
}
