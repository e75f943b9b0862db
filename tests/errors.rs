//! Database failures reach clients in one shape, whatever the field: `extensions.code`
//! `INTERNAL`, an `errorId` under which the cause is logged, and never the database's own
//! text (table names, driver messages).

mod common;

use common::TestDb;
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn database_failures_are_masked_on_every_field() {
    for db in TestDb::all().await {
        let schema = tally::graphql::build(Some(db.conn.clone())).unwrap();
        // every field reads a table that is gone
        for t in [
            "\"gym\".\"dim_user\"",
            "\"saas\".\"global_events\"",
            "\"shop\".\"order_line\"",
        ] {
            db.conn
                .execute_unprepared(&format!("DROP TABLE {t}"))
                .await
                .unwrap();
        }
        for q in [
            r#"{ gym { leadConversions { userId } } }"#,
            r#"{ gym { metrics { leads } } }"#,
            r#"{ saas { stageCounts(asOf: "2025-01-01T00:00:00Z") { stage count } } }"#,
            r#"{ saas { journey(asOf: "2025-01-01T00:00:00Z") { nodes { id } } } }"#,
            r#"{ saas { users(asOf: "2025-01-01T00:00:00Z") { totalCount } } }"#,
            r#"{ shop { metrics { netSales } } }"#,
            r#"{ sources(model: "gym") { tables { name rowCount } } }"#,
        ] {
            let out = serde_json::to_value(schema.execute(q).await).unwrap();
            let errors = out["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("{q}: {out}"));
            assert!(!errors.is_empty(), "{}: {q}: {out}", db.backend);
            for e in errors {
                assert_eq!(
                    e["extensions"]["code"], "INTERNAL",
                    "{}: {q}: {e}",
                    db.backend
                );
                assert!(e["extensions"]["errorId"].is_string(), "{q}: {e}");
                let m = e["message"].as_str().unwrap().to_lowercase();
                for leak in [
                    "dim_user",
                    "global_events",
                    "order_line",
                    "no such table",
                    "does not exist",
                    "relation",
                ] {
                    assert!(
                        !m.contains(leak),
                        "{}: {q}: the message leaks {leak:?}: {m}",
                        db.backend
                    );
                }
            }
            assert!(out["extensions"]["explain"].is_array(), "{q}: {out}");
        }
        db.cleanup().await;
    }
}
