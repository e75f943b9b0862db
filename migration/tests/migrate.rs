//! Runs the migrations up, down and up again on a fresh SQLite database with the five
//! model databases attached, and (when `TEST_DATABASE_URL` is set, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`) on PostgreSQL in a freshly created database
//! with a random name, dropped at the end. After each `up` it checks that every table
//! exists with its columns and primary key, and that some of the indexes exist; after
//! `down`, that nothing is left.

mod common;

use common::{
    MODELS, columns, open_sqlite, primary_key, scalar, strings, with_database, with_fresh_postgres,
};
use migration::sea_orm::{Database, DatabaseConnection, DbBackend};
use migration::{Migrator, MigratorTrait};

/// Number of tables of each model.
const TABLE_COUNTS: &[(&str, i64)] = &[
    ("saas", 6),
    ("gym", 4),
    ("shop", 7),
    ("social", 6),
    ("web", 7),
];

/// A table checked after `up`: model, table, columns in order, primary key in order.
type Checked = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// Tables whose columns and keys are checked after `up` (a few of each model, including
/// `saas.users` and `web.users`, and `shop.campaign` and `social.campaign`, side by side).
const CHECKED: &[Checked] = &[
    (
        "saas",
        "global_events",
        &["ts", "event_id", "event_time", "event_type", "metadata"],
        &["ts", "event_id"],
    ),
    (
        "saas",
        "users",
        &["ts", "user_id", "creation_timestamp"],
        &["ts", "user_id"],
    ),
    (
        "saas",
        "invoices",
        &[
            "ds",
            "invoice_id",
            "user_id",
            "shop_id",
            "invoice_timestamp",
            "invoice_amount",
        ],
        &["ds", "invoice_id"],
    ),
    (
        "gym",
        "dim_branch",
        &[
            "branch_id",
            "name",
            "email",
            "city",
            "country",
            "timezone_id",
            "created_at",
        ],
        &["branch_id"],
    ),
    (
        "gym",
        "fct_membership_purchases",
        &[
            "user_id",
            "branch_id",
            "user_membership_id",
            "membership_purchased_at",
            "created_at",
            "membership_purchase_details",
        ],
        &["user_membership_id"],
    ),
    (
        "shop",
        "customer",
        &[
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "city",
            "state",
            "country",
            "customer_age",
            "updated_at",
            "is_current",
        ],
        &["customer_id", "updated_at"],
    ),
    (
        "shop",
        "campaign",
        &[
            "campaign_id",
            "campaign_name",
            "campaign_start_time",
            "campaign_end_time",
            "campaign_description",
        ],
        &["campaign_id"],
    ),
    (
        "shop",
        "inventory_snapshot",
        &[
            "snapshot_date",
            "store_id",
            "product_id",
            "quantity_on_hand",
        ],
        &["snapshot_date", "store_id", "product_id"],
    ),
    (
        "social",
        "user",
        &[
            "user_id",
            "status",
            "name",
            "email",
            "phone",
            "created_at",
            "updated_at",
            "is_current",
            "last_active_date",
            "churned_date",
        ],
        &["user_id", "updated_at"],
    ),
    (
        "social",
        "campaign",
        &[
            "campaign_id",
            "campaign_type",
            "campaign_name",
            "campaign_desc",
            "created_at",
            "starttime",
            "endtime",
        ],
        &["campaign_id"],
    ),
    (
        "social",
        "ad_event",
        &[
            "event_id",
            "event_time",
            "event_type",
            "campaign_id",
            "user_id",
            "device_id",
            "ip_address",
            "revenue",
            "cost",
        ],
        &["event_id"],
    ),
    (
        "web",
        "users",
        &[
            "user_id",
            "first_name",
            "last_name",
            "email",
            "phone_number",
            "created_at",
            "updated_at",
            "address_id",
        ],
        &["user_id"],
    ),
    (
        "web",
        "order_items",
        &["order_id", "product_id", "quantity"],
        &["order_id", "product_id"],
    ),
];

/// Indexes checked after `up`: model, table, index name.
const INDEXES: &[(&str, &str, &str)] = &[
    (
        "saas",
        "global_events",
        "global_events_event_type_event_time_idx",
    ),
    ("saas", "global_events", "global_events_event_time_idx"),
    (
        "saas",
        "global_events",
        "global_events_metadata_user_id_idx",
    ),
    (
        "saas",
        "global_events",
        "global_events_metadata_shop_id_idx",
    ),
    ("saas", "users", "users_user_id_ts_idx"),
    (
        "gym",
        "fct_credit_pack_purchases",
        "fct_credit_pack_purchases_user_id_credit_pack_purchased_at_idx",
    ),
    ("shop", "order_line", "order_line_order_time_idx"),
    ("social", "content_event", "content_event_viewer_id_idx"),
    ("web", "users", "users_address_id_idx"),
    ("web", "events", "events_session_id_idx"),
];

/// Number of tables in the namespace of `model`.
async fn table_count(db: &DatabaseConnection, model: &str) -> i64 {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let sql =
                format!(r#"SELECT count(*) FROM "{model}".sqlite_master WHERE type = 'table'"#);
            scalar(db, &sql, vec![]).await
        }
        _ => {
            scalar(
                db,
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                vec![model.into()],
            )
            .await
        }
    }
}

/// Whether the namespace of `model` exists (PostgreSQL; always true on SQLite).
async fn namespace_exists(db: &DatabaseConnection, model: &str) -> bool {
    match db.get_database_backend() {
        DbBackend::Sqlite => true,
        _ => {
            let n: i64 = scalar(
                db,
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
                vec![model.into()],
            )
            .await;
            n == 1
        }
    }
}

/// The names of the indexes of `"<model>"."<table>"`.
async fn indexes(db: &DatabaseConnection, model: &str, table: &str) -> Vec<String> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let sql = format!(
                r#"SELECT name FROM "{model}".sqlite_master WHERE type = 'index' AND tbl_name = ?"#
            );
            strings(db, &sql, vec![table.into()]).await
        }
        _ => {
            strings(
                db,
                "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
                vec![model.into(), table.into()],
            )
            .await
        }
    }
}

/// The declared type of a column on PostgreSQL (`information_schema.columns.data_type`,
/// with precision and scale for numerics).
async fn pg_type(db: &DatabaseConnection, model: &str, table: &str, column: &str) -> String {
    scalar(
        db,
        "SELECT data_type::text || coalesce('(' || numeric_precision || ',' || numeric_scale || ')', '') \
         || CASE is_nullable WHEN 'YES' THEN ' null' ELSE '' END \
         FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
        vec![model.into(), table.into(), column.into()],
    )
    .await
}

/// Checks the state after `up`: every model's tables, the checked tables' columns and
/// keys, and some indexes.
async fn check_up(db: &DatabaseConnection) {
    for (model, count) in TABLE_COUNTS {
        assert!(
            namespace_exists(db, model).await,
            "namespace {model} missing"
        );
        assert_eq!(table_count(db, model).await, *count, "tables of {model}");
    }
    for (model, table, cols, key) in CHECKED {
        assert_eq!(
            columns(db, model, table).await,
            *cols,
            "columns of {model}.{table}"
        );
        assert_eq!(
            primary_key(db, model, table).await,
            *key,
            "key of {model}.{table}"
        );
    }
    for (model, table, index) in INDEXES {
        let found = indexes(db, model, table).await;
        assert!(
            found.iter().any(|i| i == index),
            "index {index} of {model}.{table} missing; found {found:?}"
        );
    }
    if db.get_database_backend() == DbBackend::Postgres {
        let types = [
            ("saas", "global_events", "ts", "character varying"),
            (
                "saas",
                "global_events",
                "event_time",
                "timestamp with time zone",
            ),
            ("saas", "global_events", "metadata", "jsonb"),
            ("saas", "invoices", "ds", "date"),
            ("saas", "invoices", "invoice_amount", "numeric(18,2)"),
            ("shop", "customer", "customer_age", "integer(32,0) null"),
            ("shop", "customer", "is_current", "boolean"),
            ("shop", "customer", "phone", "character varying null"),
            ("social", "user", "churned_date", "date null"),
        ];
        for (model, table, column, ty) in types {
            assert_eq!(
                pg_type(db, model, table, column).await,
                ty,
                "{model}.{table}.{column}"
            );
        }
    }
}

/// Checks the state after `down`: no table left in any model's namespace, and on
/// PostgreSQL no schema left either.
async fn check_down(db: &DatabaseConnection) {
    for model in MODELS {
        assert_eq!(table_count(db, model).await, 0, "tables left in {model}");
        if db.get_database_backend() == DbBackend::Postgres {
            assert!(!namespace_exists(db, model).await, "schema {model} left");
        }
    }
}

/// Runs `up`, `down`, `up` with the checks in between.
async fn up_down_up(db: &DatabaseConnection) {
    Migrator::up(db, None).await.unwrap();
    check_up(db).await;
    // A second `up` has nothing to do.
    Migrator::up(db, None).await.unwrap();
    Migrator::down(db, None).await.unwrap();
    check_down(db).await;
    Migrator::up(db, None).await.unwrap();
    check_up(db).await;
}

#[tokio::test]
async fn sqlite_up_down_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(dir.path()).await;
    up_down_up(&db).await;
    // The tables went into the model files, the bookkeeping stayed in the main file.
    let main: i64 = scalar(
        &db,
        "SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name <> 'seaql_migrations'",
        vec![],
    )
    .await;
    assert_eq!(main, 0);
    db.close().await.unwrap();
    for model in MODELS {
        assert!(dir.path().join(format!("tally.{model}.db")).exists());
    }
}

#[tokio::test]
async fn sqlite_without_attachments_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tally.db").display()
    );
    let db = Database::connect(url).await.unwrap();
    let err = Migrator::up(&db, None).await.unwrap_err().to_string();
    assert!(err.contains("not attached"), "{err}");
}

#[tokio::test]
async fn postgres_up_down_up() {
    with_fresh_postgres(|db| async move {
        up_down_up(&db).await;
        db.close().await.unwrap();
    })
    .await;
}

/// A database migrated before tally grouped days with `date_bin` (up to the first day-bucket
/// migration) gets its day-bucket indexes rebuilt on the new expression by the next `up`,
/// and the old ones back on the way down.
#[tokio::test]
async fn postgres_day_bucket_indexes_follow_the_expression() {
    with_fresh_postgres(|db| async move {
        let def = |db: DatabaseConnection| async move {
            scalar::<String>(
                &db,
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'shop' AND indexname = 'order_line_order_time_day_idx'",
                vec![],
            )
            .await
        };
        // the seven migrations up to m20261130_000007_day_buckets
        Migrator::up(&db, Some(7)).await.unwrap();
        let before = def(db.clone()).await;
        assert!(before.contains("date_trunc('day'"), "{before}");
        Migrator::up(&db, None).await.unwrap();
        let after = def(db.clone()).await;
        assert!(
            after.contains("date_bin('1 day'::interval")
                && after.contains("'0001-01-01 00:00:00'::timestamp without time zone"),
            "{after}"
        );
        Migrator::down(&db, Some(1)).await.unwrap();
        assert_eq!(def(db.clone()).await, before);
        db.close().await.unwrap();
    })
    .await;
}

#[test]
fn database_url_rewrite() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
