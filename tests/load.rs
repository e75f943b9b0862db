//! `tally load`: good loads, idempotence, and rejections (nothing loaded, errors naming file,
//! line, column and reason): changed rows, CRLF files, JSON details, value sets, oversized
//! fields, statistics. Every test runs on SQLite, and also on PostgreSQL when
//! `TEST_DATABASE_URL` is set (a fresh database per test, dropped afterwards); with `CI` set,
//! `TEST_DATABASE_URL` must be.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt as _;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tally::load::{LoadError, LoadOptions, LoadReport, csv_sources, load};

/// A migrated database for one test; `cleanup` drops it.
struct TestDb {
    db: DatabaseConnection,
    /// SQLite: the temporary directory holding the files.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the admin URL and the database's name.
    pg: Option<(String, String)>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tally.db").display());
        let db = tally::db::connect(&url).await.unwrap();
        tally::db::migrate(&db).await.unwrap();
        TestDb {
            db,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres(admin_url: &str) -> TestDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tally_load_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = Database::connect(admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let base = admin_url.split('?').next().unwrap();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        let db = tally::db::connect(&url).await.unwrap();
        tally::db::migrate(&db).await.unwrap();
        TestDb {
            db,
            _dir: None,
            pg: Some((admin_url.to_owned(), name)),
        }
    }

    async fn cleanup(self) {
        self.db.close().await.unwrap();
        if let Some((admin_url, name)) = self.pg {
            let admin = Database::connect(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// Runs `body` on SQLite, then on PostgreSQL when `TEST_DATABASE_URL` is set.
async fn on_each_backend<F, Fut>(body: F)
where
    F: Fn(DatabaseConnection) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut dbs = vec![TestDb::sqlite().await];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => dbs.push(TestDb::postgres(&url).await),
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but TEST_DATABASE_URL is not: the PostgreSQL half would be skipped"
        ),
    }
    for test_db in dbs {
        let outcome = AssertUnwindSafe(body(test_db.db.clone()))
            .catch_unwind()
            .await;
        test_db.cleanup().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

fn fixtures(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/load")
        .join(model)
}

/// A copy of a model's fixtures in a temporary directory, with `replace` written over.
fn fixtures_with(model: &str, replace: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures(model)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    for (file, content) in replace {
        std::fs::write(dir.path().join(file), content).unwrap();
    }
    dir
}

async fn count(db: &DatabaseConnection, model: &str, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) FROM \"{model}\".\"{table}\""),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn load_dir(
    db: &DatabaseConnection,
    model: &str,
    dir: &Path,
    opts: &LoadOptions,
) -> Result<LoadReport, LoadError> {
    load(db, model, csv_sources(model, dir).unwrap(), opts).await
}

/// `(table, rows read, inserted, already present)` of a report.
fn counts(report: &LoadReport) -> Vec<(&str, u64, u64, u64)> {
    report
        .tables
        .iter()
        .map(|t| {
            (
                t.table.as_str(),
                t.rows_read,
                t.rows_inserted,
                t.rows_already_present,
            )
        })
        .collect()
}

/// Loads the fixtures of `model` twice: the first run inserts every row, the second finds
/// them all present and changes nothing.
async fn good_load_twice(db: &DatabaseConnection, model: &str, expected: &[(&str, u64)]) {
    let opts = LoadOptions::default();
    let first = load_dir(db, model, &fixtures(model), &opts).await.unwrap();
    assert_eq!(first.model, model);
    let want: Vec<_> = expected.iter().map(|&(t, n)| (t, n, n, 0)).collect();
    assert_eq!(counts(&first), want);
    for &(table, n) in expected {
        assert_eq!(count(db, model, table).await, n as i64, "{model}.{table}");
    }
    let second = load_dir(db, model, &fixtures(model), &opts).await.unwrap();
    let want: Vec<_> = expected.iter().map(|&(t, n)| (t, n, 0, n)).collect();
    assert_eq!(counts(&second), want);
    for &(table, n) in expected {
        assert_eq!(count(db, model, table).await, n as i64, "{model}.{table}");
    }
}

/// Loads `dir` (a variant of `model`'s fixtures), expects a rejection whose message names
/// each of `needles`, and checks that nothing was loaded.
async fn rejected(db: &DatabaseConnection, model: &str, dir: &Path, needles: &[&str]) -> LoadError {
    let err = load_dir(db, model, dir, &LoadOptions::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, LoadError::Rejected { .. }),
        "not a rejection: {message}"
    );
    for needle in needles {
        assert!(
            message.contains(needle),
            "{needle:?} is not in the message:\n{message}"
        );
    }
    assert!(
        message.ends_with(&format!("nothing was loaded into {model}")),
        "{message}"
    );
    for table in tables(model) {
        assert_eq!(
            count(db, model, table).await,
            0,
            "{model}.{table} was loaded"
        );
    }
    err
}

fn tables(model: &str) -> &'static [&'static str] {
    match model {
        "saas" => entity::saas::TABLES,
        "gym" => entity::gym::TABLES,
        "shop" => entity::shop::TABLES,
        "social" => entity::social::TABLES,
        "web" => entity::web::TABLES,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn saas_loads_and_is_idempotent() {
    on_each_backend(|db| async move {
        good_load_twice(
            &db,
            "saas",
            &[
                ("global_events", 5),
                ("users", 3),
                ("shops", 1),
                ("plans", 2),
                ("invoices", 2),
                ("payments", 1),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn gym_loads_and_is_idempotent() {
    on_each_backend(|db| async move {
        good_load_twice(
            &db,
            "gym",
            &[
                ("dim_branch", 2),
                ("dim_user", 3),
                ("fct_credit_pack_purchases", 2),
                ("fct_membership_purchases", 1),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn shop_loads_nulls_bools_and_forward_self_references() {
    on_each_backend(|db| async move {
        good_load_twice(
            &db,
            "shop",
            &[
                ("customer", 2),
                ("product_category", 3),
                ("product", 3),
                ("campaign", 1),
                ("order_line", 3),
                ("inventory_event", 2),
                ("inventory_snapshot", 2),
            ],
        )
        .await;
    })
    .await;
}

/// References may point at rows stored by an earlier load; sources given in any order are
/// loaded in table order.
#[tokio::test]
async fn references_to_stored_rows_and_any_source_order() {
    on_each_backend(|db| async move {
        let opts = LoadOptions::default();
        let only_branches = fixtures_with("gym", &[]);
        for table in [
            "dim_user",
            "fct_credit_pack_purchases",
            "fct_membership_purchases",
        ] {
            std::fs::remove_file(only_branches.path().join(format!("{table}.csv"))).unwrap();
        }
        load_dir(&db, "gym", only_branches.path(), &opts)
            .await
            .unwrap();
        let mut sources = csv_sources("gym", &fixtures("gym")).unwrap();
        sources.reverse();
        let report = load(&db, "gym", sources, &opts).await.unwrap();
        assert_eq!(
            counts(&report),
            vec![
                ("dim_branch", 2, 0, 2),
                ("dim_user", 3, 3, 0),
                ("fct_credit_pack_purchases", 2, 2, 0),
                ("fct_membership_purchases", 1, 1, 0),
            ]
        );
    })
    .await;
}

/// A row repeated in the same load is inserted once and counted as already present.
#[tokio::test]
async fn repeated_rows_are_inserted_once() {
    let dir = fixtures_with(
        "saas",
        &[(
            "plans.csv",
            "ts,plan_id,invoice_amount\n\
             2024-03-01 00:00:00,p1,29.99\n\
             2024-03-01 00:00:00,p1,29.99\n\
             2024-03-01 01:00:00,p1,29.99\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            let report = load_dir(&db, "saas", &path, &LoadOptions::default())
                .await
                .unwrap();
            let plans = report.tables.iter().find(|t| t.table == "plans").unwrap();
            assert_eq!(
                (
                    plans.rows_read,
                    plans.rows_inserted,
                    plans.rows_already_present
                ),
                (3, 2, 1)
            );
            assert_eq!(count(&db, "saas", "plans").await, 2);
        }
    })
    .await;
}

/// 998 good rows, a bad one on line 1000, more good rows: nothing is loaded (although
/// batches were inserted before the bad line) and the error names file, line and column.
#[tokio::test]
async fn a_bad_line_1000_loads_nothing() {
    a_bad_line_1000_with("\n").await;
}

/// The same with CRLF line endings (Windows exports, Python's csv module): still line 1000.
#[tokio::test]
async fn a_bad_line_1000_of_a_crlf_file_is_line_1000() {
    a_bad_line_1000_with("\r\n").await;
}

async fn a_bad_line_1000_with(eol: &str) {
    let mut users = format!("ts,user_id,creation_timestamp{eol}");
    for i in 2..=1100 {
        if i == 1000 {
            users.push_str(&format!(
                "2024-03-01 09:00:00,u999,2024-03-01 25:00:00{eol}"
            ));
        } else {
            let id = i - 1;
            users.push_str(&format!(
                "2024-03-01 09:00:00,u{id},2024-03-01T09:12:00Z{eol}"
            ));
        }
    }
    let dir = fixtures_with("saas", &[("users.csv", &users)]);
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            let opts = LoadOptions {
                batch_rows: 100,
                ..LoadOptions::default()
            };
            let err = load_dir(&db, "saas", &path, &opts).await.unwrap_err();
            let LoadError::Rejected { errors, more, .. } = &err else {
                panic!("not a rejection: {err}");
            };
            assert_eq!(errors.len(), 1, "{err}");
            assert_eq!(*more, 0);
            let e = &errors[0];
            assert!(e.origin.ends_with("users.csv"), "{e}");
            assert_eq!(e.line, 1000);
            assert_eq!(e.column.as_deref(), Some("creation_timestamp"));
            assert!(
                e.to_string()
                    .contains("users.csv:1000: column creation_timestamp: "),
                "{e}"
            );
            for table in entity::saas::TABLES {
                assert_eq!(count(&db, "saas", table).await, 0, "saas.{table}");
            }
        }
    })
    .await;
}

/// A rejected load leaves what an earlier load stored untouched.
#[tokio::test]
async fn a_rejected_load_keeps_earlier_data() {
    on_each_backend(|db| async move {
        load_dir(&db, "gym", &fixtures("gym"), &LoadOptions::default())
            .await
            .unwrap();
        let dir = fixtures_with(
            "gym",
            &[(
                "dim_user.csv",
                "user_id,branch_id,name,email,created_at\n\
                 gu9,b1,New,new@example.com,2024-05-01T00:00:00Z\n\
                 gu10,b7,Lost,lost@example.com,2024-05-01T00:00:00Z\n",
            )],
        );
        let err = load_dir(&db, "gym", dir.path(), &LoadOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("dim_user.csv:3: column branch_id: \"b7\""),
            "{err}"
        );
        assert_eq!(count(&db, "gym", "dim_user").await, 3);
        assert_eq!(count(&db, "gym", "dim_branch").await, 2);
    })
    .await;
}

#[tokio::test]
async fn unknown_time_zone_is_rejected() {
    let dir = fixtures_with(
        "gym",
        &[(
            "dim_branch.csv",
            "branch_id,name,email,city,country,timezone_id,created_at\n\
             b1,Downtown,d@gym.example,Paris,France,Europe/Paris,2023-01-01T00:00:00Z\n\
             b2,Harbour,h@gym.example,Sydney,Australia,Mars/Olympus,2023-02-01T00:00:00Z\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            rejected(
                &db,
                "gym",
                &path,
                &["dim_branch.csv:3: column timezone_id: \"Mars/Olympus\" is not an IANA time zone"],
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn purchase_of_an_unknown_user_is_rejected() {
    let dir = fixtures_with(
        "gym",
        &[(
            "fct_credit_pack_purchases.csv",
            "user_id,branch_id,credit_pack_id,credit_pack_purchased_at,created_at,credit_pack_purchase_details\n\
             gu1,b1,cp1,2024-01-10T10:00:00Z,2024-01-10T10:00:01Z,\"{\"\"name\"\":\"\"a\"\",\"\"source\"\":\"\"app\"\"}\"\n\
             gu9,b1,cp2,2024-01-10T10:00:00Z,2024-01-10T10:00:01Z,\"{\"\"name\"\":\"\"a\"\",\"\"source\"\":\"\"app\"\"}\"\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            rejected(
                &db,
                "gym",
                &path,
                &["fct_credit_pack_purchases.csv:3: column user_id: \"gu9\" is no dim_user.user_id"],
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_purchase_json_is_rejected() {
    let dir = fixtures_with(
        "gym",
        &[(
            "fct_membership_purchases.csv",
            "user_id,branch_id,user_membership_id,membership_purchased_at,created_at,membership_purchase_details\n\
             gu1,b1,m1,2024-02-01T10:00:00Z,2024-02-01T10:00:00Z,\"{\"\"name\"\":\"\"Monthly\"\",\"\n\
             gu2,b2,m2,2024-02-01T10:00:00Z,2024-02-01T10:00:00Z,\"{\"\"name\"\":\"\"Monthly\"\"}\"\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            rejected(
                &db,
                "gym",
                &path,
                &[
                    "fct_membership_purchases.csv:2: column membership_purchase_details: malformed JSON",
                    "fct_membership_purchases.csv:3: column membership_purchase_details: the JSON must have the keys {name, source}, with string values: key \"source\" is missing",
                ],
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn wrong_metadata_shape_and_bad_enum_are_rejected() {
    let dir = fixtures_with(
        "saas",
        &[(
            "global_events.csv",
            "ts,event_id,event_time,event_type,metadata\n\
             2024-03-01 09:00:00,e1,2024-03-01T09:12:00Z,user_shop_create,\"{\"\"user_id\"\":\"\"u1\"\",\"\"shop_id\"\":\"\"s1\"\"}\"\n\
             2024-03-01 09:00:00,e2,2024-03-01T09:12:00Z,user_signup,\"{\"\"user_id\"\":\"\"u1\"\"}\"\n\
             2024-03-01 09:00:00,e3,2024-03-01T09:12:00Z,user_delete_account,\"{\"\"user_id\"\":7}\"\n\
             2024-03-01 09:30:00,e4,2024-03-01T09:12:00Z,user_delete_account,\"{\"\"user_id\"\":\"\"u1\"\",\"\"why\"\":\"\"x\"\"}\"\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            let err = rejected(
                &db,
                "saas",
                &path,
                &[
                    "global_events.csv:2: column metadata: the JSON of a user_shop_create event_type must have the keys {user_id, shop_id, plan_id}, with string values: key \"plan_id\" is missing",
                    "global_events.csv:3: column event_type: \"user_signup\" is not one of user_account_creation, user_delete_account, user_shop_create, user_shop_delete",
                    "global_events.csv:4: column metadata: the JSON of a user_delete_account event_type must have the keys {user_id}, with string values: \"user_id\" is 7, not a string",
                    "global_events.csv:5: column ts: \"2024-03-01 09:30:00\" is not an hourly partition",
                ],
            )
            .await;
            // line 5's metadata carries a key beyond those tally reads: no error for it
            let LoadError::Rejected { errors, .. } = err else {
                unreachable!()
            };
            assert_eq!(errors.len(), 4, "{errors:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn bad_header_is_rejected() {
    let dir = fixtures_with(
        "saas",
        &[(
            "users.csv",
            "ts,user_id,created\n2024-03-01 09:00:00,u1,2024-03-01T09:12:00Z\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            let err = rejected(
                &db,
                "saas",
                &path,
                &[
                    "users.csv:1: column created: unknown column in the header (saas.users has columns ts, user_id, creation_timestamp)",
                    "users.csv:1: column creation_timestamp: missing from the header",
                ],
            )
            .await;
            // the shops' owners are in the unreadable users.csv: no cascade of errors
            let LoadError::Rejected { errors, .. } = err else {
                unreachable!()
            };
            assert_eq!(errors.len(), 2, "{errors:?}");
        }
    })
    .await;
}

/// Field counts, types and NULLs; `max_errors` keeps the first errors and counts the rest.
#[tokio::test]
async fn errors_are_capped_and_counted() {
    let dir = fixtures_with(
        "saas",
        &[(
            "invoices.csv",
            "ds,invoice_id,user_id,shop_id,invoice_timestamp,invoice_amount\n\
             2024-03-01,i1,u1,s1,2024-03-01T10:06:00Z,29.999\n\
             2024-03-01,i2,u1,s1\n\
             2024/03/01,i3,u1,s1,2024-03-01T10:06:00Z,1\n\
             2024-03-01,,u1,s1,2024-03-01T10:06:00Z,1\n\
             2024-03-01,i5,u1,s1,yesterday,1\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            let opts = LoadOptions {
                max_errors: 3,
                ..LoadOptions::default()
            };
            let err = load_dir(&db, "saas", &path, &opts).await.unwrap_err();
            let message = err.to_string();
            let LoadError::Rejected { errors, more, .. } = &err else {
                panic!("not a rejection: {message}");
            };
            assert_eq!((errors.len(), *more), (3, 2), "{message}");
            let lines: Vec<&str> = message.lines().collect();
            assert!(lines[0].ends_with("invoices.csv:2: column invoice_amount: \"29.999\" is not a decimal with at most 2 decimals (such as -12.34)"), "{message}");
            assert!(lines[1].ends_with("invoices.csv:3: expected 6 fields, found 4"), "{message}");
            assert!(lines[2].ends_with("invoices.csv:4: column ds: \"2024/03/01\" is not a date (YYYY-MM-DD)"), "{message}");
            assert_eq!(lines[3], "… and 2 more");
            assert_eq!(lines[4], "nothing was loaded into saas");
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_files_models_and_tables_are_errors() {
    let dir = fixtures_with("saas", &[("user.csv", "ts,user_id,creation_timestamp\n")]);
    let err = csv_sources("saas", dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("user.csv") && err.contains("\"user\" is not a table of model saas"),
        "{err}"
    );
    let err = csv_sources("sales", &fixtures("saas"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown model \"sales\""), "{err}");
    let empty = tempfile::tempdir().unwrap();
    assert!(csv_sources("saas", empty.path()).is_err());
    on_each_backend(|db| async move {
        let sources = csv_sources("saas", &fixtures("saas")).unwrap();
        let err = load(&db, "gym", sources, &LoadOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, LoadError::Failed(_)), "{err}");
        assert!(
            err.to_string().contains("is not a table of model gym"),
            "{err}"
        );
    })
    .await;
}

/// A `(ts, plan_id)` row of saas.plans as stored.
async fn stored_text(db: &DatabaseConnection, sql: &str) -> String {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

const BRANCHES: &str = "branch_id,name,email,city,country,timezone_id,created_at\n";

/// A branch whose time zone was corrected after it was loaded: an error naming file, line,
/// key and the differing column, nothing loaded; `replace` overwrites it; loading the same
/// rows again changes nothing.
#[tokio::test]
async fn a_changed_row_is_an_error_and_replace_corrects_it() {
    on_each_backend(|db| async move {
        load_dir(&db, "gym", &fixtures("gym"), &LoadOptions::default())
            .await
            .unwrap();
        let corrected = format!(
            "{BRANCHES}\
             b1,Downtown,downtown@gym.example,Paris,France,Europe/Paris,2023-01-01T00:00:00Z\n\
             b2,\"Harbour, East\",harbour@gym.example,Sydney,Australia,Australia/Melbourne,2023-02-01 08:00:00\n\
             b3,North,north@gym.example,Oslo,Norway,Europe/Oslo,2023-03-01T00:00:00Z\n"
        );
        let dir = fixtures_with("gym", &[("dim_branch.csv", &corrected)]);
        let err = load_dir(&db, "gym", dir.path(), &LoadOptions::default())
            .await
            .unwrap_err();
        let LoadError::Rejected { errors, .. } = &err else {
            panic!("not a rejection: {err}");
        };
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].origin.ends_with("dim_branch.csv"), "{err}");
        assert_eq!(errors[0].line, 3);
        assert!(
            err.to_string().contains(
                "dim_branch.csv:3: key branch_id = \"b2\" is already stored with other values: \
                 timezone_id \"Australia/Sydney\" stored, \"Australia/Melbourne\" here \
                 (to overwrite the stored row, load with --replace)"
            ),
            "{err}"
        );
        assert_eq!(count(&db, "gym", "dim_branch").await, 2, "b3 was loaded");

        let replace = LoadOptions {
            replace: true,
            ..LoadOptions::default()
        };
        let report = load_dir(&db, "gym", dir.path(), &replace).await.unwrap();
        let branches = &report.tables[0];
        assert_eq!(
            (
                branches.table.as_str(),
                branches.rows_read,
                branches.rows_inserted,
                branches.rows_replaced,
                branches.rows_already_present
            ),
            ("dim_branch", 3, 1, 1, 1)
        );
        assert_eq!(
            stored_text(
                &db,
                "SELECT timezone_id FROM \"gym\".\"dim_branch\" WHERE branch_id = 'b2'"
            )
            .await,
            "Australia/Melbourne"
        );
        // the same rows again: identical, nothing replaced, with or without replace
        for opts in [&replace, &LoadOptions::default()] {
            let again = load_dir(&db, "gym", dir.path(), opts).await.unwrap();
            assert_eq!(
                (again.tables[0].rows_replaced, again.tables[0].rows_already_present),
                (0, 3)
            );
        }
    })
    .await;
}

/// Within one load, a second row with a key already seen and other values is an error
/// (with or without replace: which one should win is not the loader's guess); an identical
/// repetition (`99.00` after `99`) is not.
#[tokio::test]
async fn a_key_twice_in_one_load_with_other_values_is_an_error() {
    let dir = fixtures_with(
        "saas",
        &[(
            "plans.csv",
            "ts,plan_id,invoice_amount\n\
             2024-03-01 00:00:00,p1,29.99\n\
             2024-03-01 00:00:00,p2,99\n\
             2024-03-01 00:00:00,p2,99.00\n\
             2024-03-01 00:00:00,p1,39.99\n",
        )],
    );
    on_each_backend(|db| {
        let path = dir.path().to_owned();
        async move {
            for replace in [false, true] {
                let opts = LoadOptions {
                    replace,
                    ..LoadOptions::default()
                };
                let err = load_dir(&db, "saas", &path, &opts).await.unwrap_err();
                let LoadError::Rejected { errors, .. } = &err else {
                    panic!("not a rejection: {err}");
                };
                assert_eq!(errors.len(), 1, "{err}");
                assert!(
                    errors[0].to_string().ends_with(
                        "plans.csv:5: key (ts, plan_id) = (\"2024-03-01 00:00:00\", \"p1\") \
                         appears earlier in this load with other values: \
                         invoice_amount 29.99 earlier, 39.99 here"
                    ),
                    "{err}"
                );
                for table in entity::saas::TABLES {
                    assert_eq!(count(&db, "saas", table).await, 0, "saas.{table}");
                }
            }
        }
    })
    .await;
}

/// A type-2 dimension changes by a new version (a later updated_at), which loads; changing
/// a stored version is an error that says so.
#[tokio::test]
async fn a_type2_dimension_changes_by_a_new_version() {
    on_each_backend(|db| async move {
        load_dir(&db, "shop", &fixtures("shop"), &LoadOptions::default())
            .await
            .unwrap();
        let header = "customer_id,first_name,last_name,email,phone,city,state,country,customer_age,updated_at,is_current\n";
        let moved = format!(
            "{header}cu1,Ann,Lee,ann@example.com,,Lyon,,France,34,2024-01-01T00:00:00Z,false\n\
             cu1,Ann,Lee,ann@example.com,,Paris,,France,34,2024-06-01T00:00:00Z,true\n"
        );
        let only = |content: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("customer.csv"), content).unwrap();
            dir
        };
        let dir = only(&moved);
        let err = load_dir(&db, "shop", dir.path(), &LoadOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "customer.csv:2: key (customer_id, updated_at) = (\"cu1\", 2024-01-01T00:00:00Z) \
                 is already stored with other values: is_current true stored, false here \
                 (to change the dimension, load a new version (a later updated_at); \
                 to overwrite this version, load with --replace)"
            ),
            "{err}"
        );
        assert_eq!(count(&db, "shop", "customer").await, 2);
        // the new version alone loads, and the old one stays for asOf before it
        let dir = only(&format!(
            "{header}cu1,Ann,Lee,ann@example.com,,Paris,,France,34,2024-06-01T00:00:00Z,true\n"
        ));
        let report = load_dir(&db, "shop", dir.path(), &LoadOptions::default())
            .await
            .unwrap();
        assert_eq!(counts(&report), vec![("customer", 1, 1, 0)]);
        assert_eq!(count(&db, "shop", "customer").await, 3);
    })
    .await;
}

/// JSON details keep keys beyond those tally reads; a key twice in one object is an error.
#[tokio::test]
async fn json_details_keep_extra_keys_and_reject_duplicate_keys() {
    let header = "user_id,branch_id,credit_pack_id,credit_pack_purchased_at,created_at,credit_pack_purchase_details\n";
    let extra = fixtures_with(
        "gym",
        &[(
            "fct_credit_pack_purchases.csv",
            &format!(
                "{header}gu1,b1,cp1,2024-01-10T10:00:00Z,2024-01-10T10:00:01Z,\"{{\"\"name\"\":\"\"10 credits\"\",\"\"source\"\":\"\"app\"\",\"\"price\"\":49.5}}\"\n"
            ),
        )],
    );
    let duplicate = fixtures_with(
        "gym",
        &[(
            "fct_credit_pack_purchases.csv",
            &format!(
                "{header}gu1,b1,cp1,2024-01-10T10:00:00Z,2024-01-10T10:00:01Z,\"{{\"\"name\"\":\"\"a\"\",\"\"source\"\":\"\"app\"\"}}\"\n\
                 gu2,b2,cp2,2024-01-11T10:00:00Z,2024-01-11T10:00:01Z,\"{{\"\"name\"\":\"\"a\"\",\"\"source\"\":\"\"app\"\",\"\"name\"\":\"\"b\"\"}}\"\n"
            ),
        )],
    );
    on_each_backend(|db| {
        let (extra, duplicate) = (extra.path().to_owned(), duplicate.path().to_owned());
        async move {
            rejected(
                &db,
                "gym",
                &duplicate,
                &["fct_credit_pack_purchases.csv:3: column credit_pack_purchase_details: duplicate key \"name\" in a JSON object"],
            )
            .await;
            load_dir(&db, "gym", &extra, &LoadOptions::default())
                .await
                .unwrap();
            let details = stored_text(
                &db,
                "SELECT CAST(credit_pack_purchase_details AS TEXT) FROM \"gym\".\"fct_credit_pack_purchases\"",
            )
            .await;
            let details: serde_json::Value = serde_json::from_str(&details).unwrap();
            assert_eq!(
                details,
                serde_json::json!({"name": "10 credits", "source": "app", "price": 49.5})
            );
            // loading it again is idempotent (JSON compares by content)
            let again = load_dir(&db, "gym", &extra, &LoadOptions::default())
                .await
                .unwrap();
            assert_eq!(again.tables[2].rows_already_present, 1);
        }
    })
    .await;
}

/// Only value sets a source document defines are enforced: social statuses and content
/// types are free text, saas event types are not.
#[tokio::test]
async fn value_sets_only_where_a_source_document_defines_them() {
    on_each_backend(|db| async move {
        let report = load_dir(&db, "social", &fixtures("social"), &LoadOptions::default())
            .await
            .unwrap();
        assert_eq!(
            counts(&report),
            vec![("user", 2, 2, 0), ("content", 2, 2, 0)]
        );
        assert_eq!(
            stored_text(
                &db,
                "SELECT content_type FROM \"social\".\"content\" WHERE content_id = 'c1'"
            )
            .await,
            "text"
        );
    })
    .await;
}

/// A single 2 GiB field (a sparse file: nothing is written to disk) fails fast, at its line,
/// after reading no more than the row limit; a field over the field limit is an error at
/// its line and column.
#[tokio::test]
async fn oversized_rows_and_fields_fail_fast_at_their_line() {
    use std::io::Write as _;
    let huge = fixtures_with("saas", &[]);
    {
        let path = huge.path().join("users.csv");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(
            b"ts,user_id,creation_timestamp\r\n\
              2024-03-01 09:00:00,u1,2024-03-01T09:12:00Z\r\n\
              2024-03-01 09:00:00,u2,",
        )
        .unwrap();
        f.set_len(2 << 30).unwrap();
    }
    let wide = fixtures_with(
        "saas",
        &[(
            "users.csv",
            &format!(
                "ts,user_id,creation_timestamp\n\
                 2024-03-01 09:00:00,u1,2024-03-01T09:12:00Z\n\
                 2024-03-01 09:00:00,u{},2024-03-01T09:12:00Z\n",
                "9".repeat(300 * 1024)
            ),
        )],
    );
    on_each_backend(|db| {
        let (huge, wide) = (huge.path().to_owned(), wide.path().to_owned());
        async move {
            let started = std::time::Instant::now();
            let sources = tally::load::csv_sources("saas", &huge).unwrap();
            let err = load(&db, "saas", sources, &LoadOptions::default())
                .await
                .unwrap_err();
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{:?}",
                started.elapsed()
            );
            let LoadError::Rejected { errors, .. } = &err else {
                panic!("not a rejection: {err}");
            };
            assert_eq!(errors.len(), 1, "{err}");
            assert!(
                errors[0].to_string().ends_with(
                    "users.csv:3: the row is longer than 64 MiB, the most a row may take; nothing after it was read"
                ),
                "{err}"
            );

            let limits = tally::load::CsvLimits {
                max_field_bytes: 256 * 1024,
                max_row_bytes: 1 << 20,
            };
            let sources = tally::load::csv_sources_with("saas", &wide, limits).unwrap();
            let err = load(&db, "saas", sources, &LoadOptions::default())
                .await
                .unwrap_err();
            let LoadError::Rejected { errors, .. } = &err else {
                panic!("not a rejection: {err}");
            };
            assert_eq!(errors.len(), 1, "{err}");
            assert!(
                errors[0].to_string().ends_with(
                    "users.csv:3: column user_id: the field holds 300 KiB, more than the 256 KiB a field may hold"
                ),
                "{err}"
            );
            for table in entity::saas::TABLES {
                assert_eq!(count(&db, "saas", table).await, 0, "saas.{table}");
            }
        }
    })
    .await;
}

/// A committed load leaves the planner statistics of the tables it wrote fresh.
#[tokio::test]
async fn a_load_refreshes_the_statistics_of_what_it_wrote() {
    on_each_backend(|db| async move {
        load_dir(&db, "gym", &fixtures("gym"), &LoadOptions::default())
            .await
            .unwrap();
        let postgres = db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
        for (table, rows) in [("dim_branch", 2.0), ("dim_user", 3.0)] {
            let sql = if postgres {
                format!(
                    "SELECT CAST(reltuples AS DOUBLE PRECISION) FROM pg_class WHERE oid = CAST('\"gym\".\"{table}\"' AS regclass)"
                )
            } else {
                format!(
                    "SELECT CAST(CAST(stat AS INTEGER) AS REAL) FROM \"gym\".sqlite_stat1 WHERE tbl = '{table}' AND idx IS NOT NULL LIMIT 1"
                )
            };
            let row = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("gym.{table} has no statistics"));
            assert_eq!(row.try_get_by_index::<f64>(0).unwrap(), rows, "gym.{table}");
        }
    })
    .await;
}

/// A load cut off by a database outage (every connection of the database terminated while
/// it writes) commits nothing, and its error says the database is unchanged; loading the
/// same files again afterwards loads them whole. PostgreSQL only: an outage is a server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_cut_off_by_an_outage_leaves_the_database_unchanged() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but TEST_DATABASE_URL is not"
        );
        return;
    };
    let test_db = TestDb::postgres(&admin_url).await;
    let (_, name) = test_db.pg.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = tally::demo::DemoOptions {
        scale: 1.0,
        seed: 7,
    };
    tally::demo::write_csv("web", &opts, dir.path()).unwrap();
    let web = dir.path().join("web");
    let admin = Database::connect(&admin_url).await.unwrap();
    // the outage: once the load is writing, every backend of the database is terminated
    let cutter = {
        let admin = admin.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let busy = format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND state <> 'idle' AND query ILIKE 'INSERT%'"
            );
            let started = std::time::Instant::now();
            loop {
                let row = admin
                    .query_one_raw(Statement::from_string(
                        sea_orm::DbBackend::Postgres,
                        busy.clone(),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                if row.try_get_by_index::<i64>(0).unwrap() > 0 {
                    break;
                }
                assert!(started.elapsed().as_secs() < 60, "the load never wrote");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))
                .await
                .unwrap();
        })
    };
    let sources = csv_sources("web", &web).unwrap();
    let err = load(&test_db.db, "web", sources, &LoadOptions::default())
        .await
        .expect_err("a load whose connection was terminated cannot succeed");
    cutter.await.unwrap();
    assert!(matches!(err, LoadError::Interrupted { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("nothing was loaded into web") && text.contains("the database is unchanged"),
        "{text}"
    );
    // nothing of it is in the database, through a fresh connection
    let base = admin_url.split('?').next().unwrap();
    let fresh = Database::connect(format!("{}/{name}", &base[..base.rfind('/').unwrap()]))
        .await
        .unwrap();
    for table in tables("web") {
        assert_eq!(count(&fresh, "web", table).await, 0, "web.{table}");
    }
    // and loading the same files again loads them whole (the pool replaced its connections)
    let sources = csv_sources("web", &web).unwrap();
    let report = load(&fresh, "web", sources, &LoadOptions::default())
        .await
        .unwrap();
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.rows_inserted == t.rows_read && t.rows_read > 0),
        "{report:?}"
    );
    fresh.close().await.unwrap();
    admin.close().await.unwrap();
    test_db.cleanup().await;
}

/// Loads are counted by outcome for `/metrics`: a committed load and its rows, a rejected
/// one. (Other tests of this binary load at the same time, so the counts grow by at least
/// this test's own.)
#[tokio::test]
async fn loads_are_counted_for_metrics() {
    use std::sync::atomic::Ordering::Relaxed;
    let loads = &tally::engine::guard::LOADS;
    let test_db = TestDb::sqlite().await;
    let (committed, rejected, rows) = (
        loads.committed.load(Relaxed),
        loads.rejected.load(Relaxed),
        loads.rows.load(Relaxed),
    );
    let report = load_dir(
        &test_db.db,
        "gym",
        &fixtures("gym"),
        &LoadOptions::default(),
    )
    .await
    .unwrap();
    let inserted: u64 = report.tables.iter().map(|t| t.rows_inserted).sum();
    assert!(inserted > 0);
    assert!(loads.committed.load(Relaxed) > committed);
    assert!(loads.rows.load(Relaxed) >= rows + inserted);
    let bad = fixtures_with("gym", &[("dim_branch.csv", "branch_id,name\n")]);
    assert!(
        load_dir(&test_db.db, "gym", bad.path(), &LoadOptions::default())
            .await
            .is_err()
    );
    assert!(loads.rejected.load(Relaxed) + loads.failed.load(Relaxed) > rejected);
    let guard = tally::engine::Guard::new(tally::engine::Limits::for_pool(4));
    let text = tally::engine::guard::prometheus(&guard, (1, 1, 4));
    let committed_line = text
        .lines()
        .find(|l| l.starts_with("tally_loads_total{outcome=\"committed\"}"))
        .expect("tally_loads_total in /metrics");
    let shown: u64 = committed_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(shown > committed, "{committed_line}");
    assert!(text.contains("tally_load_rows_total "), "{text}");
    test_db.cleanup().await;
}
