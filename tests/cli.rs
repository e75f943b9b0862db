//! The `tally` binary as a script or an analyst uses it: demo → CSV files → load → query.

use std::path::Path;
use std::process::{Command, Output};

fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tally")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn counts(db: &str) -> String {
    let out = tally(&[
        "query",
        "--db",
        db,
        "--format",
        "csv",
        r#"{ sources(model: "gym") { tables { name rowCount } } }"#,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn demo_files_load_idempotently_and_export_as_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("csv");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = tally(&[
        "demo",
        "--model",
        "gym",
        "--scale",
        "0.02",
        "--out",
        out_dir.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gym_dir = out_dir.join("gym");
    assert!(gym_dir.join("dim_user.csv").exists());

    let load = |dir: &Path| {
        tally(&[
            "load",
            "--db",
            &db,
            "--model",
            "gym",
            "--dir",
            dir.to_str().expect("path"),
        ])
    };
    let first = load(&gym_dir);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let after_first = counts(&db);
    assert!(
        after_first.starts_with("tables.name,tables.rowCount\n"),
        "{after_first}"
    );
    assert!(after_first.contains("dim_user,200\n"), "{after_first}");

    let second = load(&gym_dir);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains("0 inserted"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(
        counts(&db),
        after_first,
        "loading the same files twice changes nothing"
    );
}

#[test]
fn a_broken_line_1000_loads_nothing_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let files = dir.path().join("gym");
    std::fs::create_dir_all(&files).expect("mkdir");
    std::fs::write(
        files.join("dim_branch.csv"),
        "branch_id,name,email,city,country,timezone_id,created_at\n\
         b1,Central,c@example.com,London,UK,Europe/London,2024-01-01T00:00:00Z\n",
    )
    .expect("write");
    let mut users = String::from("user_id,branch_id,name,email,created_at\n");
    for i in 2..1000 {
        users.push_str(&format!(
            "u{i},b1,User {i},u{i}@example.com,2024-02-01T10:00:00Z\n"
        ));
    }
    users.push_str("u1000,b1,User 1000,u1000@example.com,2024-02-30T10:00:00Z\n");
    std::fs::write(files.join("dim_user.csv"), users).expect("write");

    let out = tally(&[
        "load",
        "--db",
        &db,
        "--model",
        "gym",
        "--dir",
        files.to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("dim_user.csv:1000"), "{err}");
    assert!(err.contains("created_at"), "{err}");
    assert!(err.contains("nothing was loaded"), "{err}");
    let after = counts(&db);
    assert!(
        after.contains("dim_branch,0\n") && after.contains("dim_user,0\n"),
        "{after}"
    );
}

#[test]
fn unknown_model_and_bad_vars_are_clear_errors() {
    let out = tally(&["load", "--model", "gim", "--dir", "."]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown model \"gim\""),
        "{}",
        text(&out.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = tally(&["query", "--db", &db, "{ sources { name } }", "--vars", "[1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--vars is not a JSON object"),
        "{}",
        text(&out.stderr)
    );
}
