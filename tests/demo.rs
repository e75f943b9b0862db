//! The demo generator: deterministic, seed-sensitive, linear in scale, well-formed, and
//! loadable by the loader with zero validation errors.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use tally::demo::{self, DemoOptions, MODELS};

use common::TestDb;

/// FNV-1a over bytes (stable across runs and machines).
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// Everything learnt from one generation of one model.
struct Summary {
    hash: u64,
    rows: BTreeMap<String, u64>,
}

/// Generates a model, checking every record's shape and value formats on the way.
fn summarise(model: &str, scale: f64, seed: u64) -> Summary {
    let sources = demo::sources(model, &DemoOptions { scale, seed }).unwrap();
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    let mut rows = BTreeMap::new();
    for s in sources {
        assert_eq!(s.origin, format!("demo:{model}"));
        fnv(&mut hash, s.table.as_bytes());
        fnv(&mut hash, s.columns.join(",").as_bytes());
        let mut n = 0u64;
        for row in s.rows {
            let (line, record) = row.unwrap();
            assert_eq!(line, n + 2, "{model}.{}", s.table);
            assert_eq!(
                record.len(),
                s.columns.len(),
                "{model}.{} line {line}: {record:?}",
                s.table
            );
            for (column, value) in s.columns.iter().zip(&record) {
                check_value(model, &s.table, column, value);
                fnv(&mut hash, value.as_bytes());
                fnv(&mut hash, b"\x1f");
            }
            fnv(&mut hash, b"\x1e");
            n += 1;
        }
        rows.insert(s.table.clone(), n);
    }
    Summary { hash, rows }
}

const MONEY_COLUMNS: &[&str] = &[
    "invoice_amount",
    "unit_price",
    "amt",
    "discount",
    "unit_price_at_purchase",
    "tax_amt",
    "shipping_amt",
    "revenue",
    "cost",
    "price",
    "order_cost",
    "shipping_cost",
    "order_total",
];

/// Money has exactly two decimals; timestamps, dates and partitions lie in the calendar.
fn check_value(model: &str, table: &str, column: &str, value: &str) {
    let at = format!("{model}.{table}.{column} = {value:?}");
    if MONEY_COLUMNS.contains(&column) && (model, table) != ("web", "promos") {
        let (int, dec) = value.trim_start_matches('-').split_once('.').expect(&at);
        assert!(
            !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()),
            "{at}"
        );
        assert!(
            dec.len() == 2 && dec.bytes().all(|b| b.is_ascii_digit()),
            "{at}"
        );
    }
    let b = value.as_bytes();
    let is_ts = b.len() == 20 && b[10] == b'T' && b[19] == b'Z' && value.starts_with("20");
    if is_ts && column != "estimated_delivery_at" {
        assert!(
            ("2024-01-01T00:00:00Z"..="2025-12-31T23:59:59Z").contains(&value),
            "{at} is outside the calendar"
        );
    }
    if column == "ts" {
        assert!(value.ends_with(":00:00") && value.len() == 19, "{at}");
        assert!(
            ("2024-01-01 00:00:00"..="2025-12-31 23:00:00").contains(&value),
            "{at}"
        );
    }
    if matches!(
        column,
        "ds" | "snapshot_date" | "last_active_date" | "churned_date"
    ) && !value.is_empty()
    {
        assert!(
            ("2024-01-01"..="2025-12-31").contains(&value) && value.len() == 10,
            "{at}"
        );
    }
}

#[test]
fn generation_is_deterministic() {
    for model in MODELS {
        let a = summarise(model, 0.05, 7);
        let b = summarise(model, 0.05, 7);
        assert_eq!(a.hash, b.hash, "{model}");
        assert_eq!(a.rows, b.rows, "{model}");
        assert!(a.rows.values().all(|n| *n > 0), "{model}: {:?}", a.rows);
    }
}

#[test]
fn different_seeds_give_different_rows() {
    for model in MODELS {
        let a = summarise(model, 0.05, 1);
        let b = summarise(model, 0.05, 2);
        assert_ne!(a.hash, b.hash, "{model}");
    }
}

#[test]
fn row_counts_scale_linearly() {
    // The main fact table of each model.
    let main: HashMap<&str, &str> = [
        ("saas", "global_events"),
        ("gym", "dim_user"),
        ("shop", "order_line"),
        ("social", "content_event"),
        ("web", "events"),
    ]
    .into_iter()
    .collect();
    for model in MODELS {
        let small = summarise(model, 0.05, 3);
        let big = summarise(model, 0.2, 3);
        let t = main[model];
        let ratio = big.rows[t] as f64 / small.rows[t] as f64;
        assert!(
            (3.0..5.0).contains(&ratio),
            "{model}.{t}: {ratio} ({:?} vs {:?})",
            small.rows,
            big.rows
        );
        let total = |s: &Summary| s.rows.values().sum::<u64>() as f64;
        let ratio = total(&big) / total(&small);
        assert!((2.0..5.0).contains(&ratio), "{model}: total ratio {ratio}");
    }
}

#[test]
fn scale_one_has_about_ten_thousand_users() {
    let saas = summarise("saas", 1.0, 42);
    assert!(saas.rows["global_events"] >= 15_000);
    let users = saas.rows["users"];
    assert!((10_000..11_000).contains(&users), "{users}");
    let social = summarise("social", 1.0, 42);
    let events = social.rows["content_event"] + social.rows["ad_event"];
    assert!((80_000..250_000).contains(&events), "{events}");
}

#[test]
fn bad_options_are_input_errors() {
    let opts = DemoOptions {
        scale: 0.05,
        seed: 1,
    };
    assert!(matches!(
        demo::sources("nope", &opts),
        Err(tally::error::Error::Input(_))
    ));
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
        let opts = DemoOptions { scale, seed: 1 };
        assert!(matches!(
            demo::sources("saas", &opts),
            Err(tally::error::Error::Input(_))
        ));
    }
}

#[test]
fn keys_are_unique() {
    // (table, key columns) from docs/SOURCE-SCHEMA.md.
    let keys: &[(&str, &str, &[&str])] = &[
        ("saas", "global_events", &["ts", "event_id"]),
        ("saas", "users", &["ts", "user_id"]),
        ("saas", "shops", &["ts", "shop_id"]),
        ("saas", "plans", &["ts", "plan_id"]),
        ("saas", "payments", &["ds", "payment_id"]),
        ("saas", "invoices", &["ds", "invoice_id"]),
        ("gym", "dim_user", &["user_id"]),
        ("gym", "fct_credit_pack_purchases", &["credit_pack_id"]),
        ("gym", "fct_membership_purchases", &["user_membership_id"]),
        ("shop", "customer", &["customer_id", "updated_at"]),
        ("shop", "product", &["product_id", "updated_at"]),
        ("shop", "order_line", &["line_item_id"]),
        ("shop", "inventory_event", &["inventory_event_id"]),
        (
            "shop",
            "inventory_snapshot",
            &["snapshot_date", "store_id", "product_id"],
        ),
        ("social", "user", &["user_id", "updated_at"]),
        ("social", "content", &["content_id", "updated_at"]),
        ("social", "content_event", &["event_id"]),
        ("social", "ad_event", &["event_id"]),
        ("social", "device", &["device_id"]),
        ("web", "users", &["user_id"]),
        ("web", "addresses", &["address_id"]),
        ("web", "orders", &["order_id"]),
        ("web", "order_items", &["order_id", "product_id"]),
        ("web", "events", &["event_id"]),
    ];
    for model in MODELS {
        for s in demo::sources(
            model,
            &DemoOptions {
                scale: 0.05,
                seed: 11,
            },
        )
        .unwrap()
        {
            let Some((_, _, cols)) = keys.iter().find(|(m, t, _)| m == model && *t == s.table)
            else {
                continue;
            };
            let idx: Vec<usize> = cols
                .iter()
                .map(|c| s.columns.iter().position(|x| x == c).unwrap())
                .collect();
            let mut seen = HashSet::new();
            let mut current: HashMap<String, usize> = HashMap::new();
            let is_current = s.columns.iter().position(|c| c == "is_current");
            for row in s.rows {
                let (line, r) = row.unwrap();
                let key: Vec<&str> = idx.iter().map(|i| r[*i].as_str()).collect();
                assert!(
                    seen.insert(key.join("\u{1f}")),
                    "{model}.{}: duplicate key at line {line}: {key:?}",
                    s.table
                );
                if let Some(c) = is_current
                    && r[c] == "true"
                {
                    *current.entry(r[idx[0]].clone()).or_default() += 1;
                }
            }
            if is_current.is_some() {
                assert!(
                    current.values().all(|n| *n == 1),
                    "{model}.{}: two current versions",
                    s.table
                );
            }
        }
    }
}

#[test]
fn write_csv_writes_one_file_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        scale: 0.02,
        seed: 5,
    };
    let written = demo::write_csv("gym", &opts, dir.path()).unwrap();
    let expected: u64 = summarise("gym", 0.02, 5).rows.values().sum();
    assert_eq!(written, expected);
    let mut lines = 0u64;
    for table in [
        "dim_branch",
        "dim_user",
        "fct_credit_pack_purchases",
        "fct_membership_purchases",
    ] {
        let path = dir.path().join("gym").join(format!("{table}.csv"));
        let mut reader = csv::Reader::from_path(&path).unwrap();
        for record in reader.records() {
            record.unwrap();
            lines += 1;
        }
    }
    assert_eq!(lines, written);
}

/// Every model's demo data loads through the validating loader on every backend with no
/// rejected row, and loading it again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_loads_without_errors() {
    let opts = DemoOptions {
        scale: 0.05,
        seed: 42,
    };
    for db in TestDb::all().await {
        for model in MODELS {
            let sources = demo::sources(model, &opts).unwrap();
            let report = tally::load::load(
                &db.conn,
                model,
                sources,
                &tally::load::LoadOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{} {model}: {e}", db.backend));
            let expected = summarise(model, 0.05, 42).rows;
            for t in &report.tables {
                assert_eq!(t.rows_read, expected[&t.table], "{model}.{}", t.table);
                assert_eq!(t.rows_inserted, t.rows_read, "{model}.{}", t.table);
                assert_eq!(t.rows_already_present, 0, "{model}.{}", t.table);
            }
            assert_eq!(report.tables.len(), expected.len(), "{model}");
            let again = tally::load::load(
                &db.conn,
                model,
                demo::sources(model, &opts).unwrap(),
                &tally::load::LoadOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{} {model} again: {e}", db.backend));
            for t in &again.tables {
                assert_eq!(
                    t.rows_inserted, 0,
                    "{} {model}.{} twice",
                    db.backend, t.table
                );
                assert_eq!(t.rows_already_present, t.rows_read, "{model}.{}", t.table);
            }
        }
        db.cleanup().await;
    }
}

/// The rows of a small generation are pinned: the same on every machine and every run. When
/// the generator is changed on purpose, update these (the failure message prints the new ones).
#[test]
fn rows_are_pinned() {
    let expected: [(&str, u64); 5] = [
        ("saas", 4042708207649709593),
        ("gym", 13336262571349516589),
        ("shop", 5120155296033536197),
        ("social", 9136770688028109829),
        ("web", 1484097481681929087),
    ];
    let actual: Vec<(&str, u64)> = MODELS
        .iter()
        .map(|m| (*m, summarise(m, 0.01, 42).hash))
        .collect();
    assert_eq!(actual, expected.to_vec(), "pinned demo hashes changed");
}

/// A by-day request (UTC) over each event table of `DAY_BUCKETS`: (model, time dimension,
/// metric of that table, index name).
const BY_DAY: &[(&str, &str, &str, &str)] = &[
    (
        "saas",
        "eventTime",
        "signups",
        "global_events_event_time_day_idx",
    ),
    (
        "saas",
        "invoiceTime",
        "invoices",
        "invoices_invoice_timestamp_day_idx",
    ),
    (
        "shop",
        "orderTime",
        "netSales",
        "order_line_order_time_day_idx",
    ),
    (
        "shop",
        "inventoryTime",
        "inventoryEvents",
        "inventory_event_event_time_day_idx",
    ),
    (
        "social",
        "contentEventTime",
        "views",
        "content_event_event_time_day_idx",
    ),
    (
        "social",
        "adEventTime",
        "impressions",
        "ad_event_event_time_day_idx",
    ),
    ("web", "eventTime", "pageViews", "events_created_at_day_idx"),
    ("web", "orderTime", "orders", "orders_created_at_day_idx"),
];

/// The day-bucket indexes the migrations create hold the very expression tally's SQL groups
/// on for a by-day request in UTC, on both backends: the planner reads the rows in day order
/// from the index (PostgreSQL, with sorts, hashing and other scans priced out, so that the test
/// does not depend on the table's size; SQLite as it plans after the loader's ANALYZE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_day_requests_read_the_day_bucket_indexes() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    use tally::query::{Item, QuerySpec, Selected};
    use tally::semantic::Granularity;

    let buckets = migration::m20261130_000007_day_buckets::DAY_BUCKETS;
    assert_eq!(BY_DAY.len(), buckets.len());
    for (model, table, column) in buckets {
        let name = migration::ddl::day_index_name(table, column);
        assert!(
            BY_DAY.iter().any(|(m, _, _, i)| m == model && *i == name),
            "{model}.{table}: no by-day request in BY_DAY"
        );
    }
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut dbs = vec![TestDb::sqlite().await];
    dbs.extend(TestDb::postgres_unless_skipped().await);
    for db in dbs {
        let opts = DemoOptions {
            scale: 0.05,
            seed: 42,
        };
        for model in ["saas", "shop", "social", "web"] {
            let sources = demo::sources(model, &opts).unwrap();
            tally::load::load(&db.conn, model, sources, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("{} {model}: {e}", db.backend));
        }
        let engine = tally::engine::Engine::with_embedded_models(db.conn.clone())
            .unwrap()
            .without_rollups();
        let dialect = engine.dialect();
        for (model, dim, metric, index) in BY_DAY {
            let mut spec = QuerySpec::new(*model, at);
            spec.fields.push(Selected {
                key: "d".into(),
                item: Item::Dimension {
                    name: (*dim).into(),
                    granularity: Some(Granularity::Day),
                },
            });
            spec.fields.push(Selected {
                key: "m".into(),
                item: Item::Metric {
                    name: (*metric).into(),
                },
            });
            let m = engine.model(model).unwrap().clone();
            spec.check(&m).unwrap();
            let plan = tally::plan::plan(&m, &spec, dialect.percentile_cont()).unwrap();
            let rendered = tally::sql::render(&plan, dialect).unwrap();
            let params = rendered.bind(&spec);
            let backend = db.conn.get_database_backend();
            let txn = db.conn.begin().await.unwrap();
            let explain = if db.backend == "postgres" {
                for s in ["seqscan", "bitmapscan", "sort", "hashagg"] {
                    let s = format!("SET LOCAL enable_{s} = off");
                    txn.execute_unprepared(&s).await.unwrap();
                }
                "EXPLAIN "
            } else {
                "EXPLAIN QUERY PLAN "
            };
            let rows = txn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    format!("{explain}{}", rendered.sql),
                    params,
                ))
                .await
                .unwrap_or_else(|e| panic!("{} {model}.{dim}: {e}", db.backend));
            txn.rollback().await.unwrap();
            let plan_text = rows
                .iter()
                .map(|r| {
                    let col = if db.backend == "postgres" { 0 } else { 3 };
                    r.try_get_by_index::<String>(col).unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                plan_text.contains(index),
                "{} {model}.{dim} by day does not read {index}:\n{plan_text}\n{}",
                db.backend,
                rendered.sql
            );
        }
        db.cleanup().await;
    }
}
