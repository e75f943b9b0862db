//! `tally load`: good loads, idempotence, and rejections (nothing loaded, errors naming file,
//! line, column and reason). Every test runs on SQLite, and also on PostgreSQL when
//! `TEST_DATABASE_URL` is set (a fresh database per test, dropped afterwards).

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
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        dbs.push(TestDb::postgres(&url).await);
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
    let mut users = String::from("ts,user_id,creation_timestamp\n");
    for i in 2..=1100 {
        if i == 1000 {
            users.push_str("2024-03-01 09:00:00,u999,2024-03-01 25:00:00\n");
        } else {
            let id = i - 1;
            users.push_str(&format!("2024-03-01 09:00:00,u{id},2024-03-01T09:12:00Z\n"));
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
                    "fct_membership_purchases.csv:3: column membership_purchase_details: the JSON must be {name, source} with string values: key \"source\" is missing",
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
            rejected(
                &db,
                "saas",
                &path,
                &[
                    "global_events.csv:2: column metadata: the JSON of a user_shop_create event_type must be {user_id, shop_id, plan_id} with string values: key \"plan_id\" is missing",
                    "global_events.csv:3: column event_type: \"user_signup\" is not one of user_account_creation, user_delete_account, user_shop_create, user_shop_delete",
                    "global_events.csv:4: column metadata: the JSON of a user_delete_account event_type must be {user_id} with string values: \"user_id\" is 7, not a string",
                    "global_events.csv:5: column ts: \"2024-03-01 09:30:00\" is not an hourly partition",
                    "global_events.csv:5: column metadata: the JSON of a user_delete_account event_type must be {user_id} with string values: unexpected key \"why\"",
                ],
            )
            .await;
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
