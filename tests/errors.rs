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

#[tokio::test]
async fn filters_are_bounded_before_any_sql() {
    let db = TestDb::sqlite().await;
    let schema = tally::graphql::build(Some(db.conn.clone())).unwrap();
    let code = |out: &serde_json::Value| out["errors"][0]["extensions"]["code"].clone();
    // an `in` list past the limit, on a row field and on metrics
    let ids: Vec<String> = (0..1001).map(|i| format!("\"u{i}\"")).collect();
    for q in [
        format!(
            "{{ gym {{ leadConversions(where: {{ userId: {{ in: [{}] }} }}) {{ userId }} }} }}",
            ids.join(", ")
        ),
        format!(
            "{{ gym {{ metrics(where: {{ branchId: {{ in: [{}] }} }}) {{ leads }} }} }}",
            ids.join(", ")
        ),
    ] {
        let out = serde_json::to_value(schema.execute(q.as_str()).await).unwrap();
        assert_eq!(code(&out), "LIMIT_EXCEEDED", "{out}");
        let m = out["errors"][0]["message"].as_str().unwrap();
        assert!(
            m.contains("1001") && m.contains("1000") && m.contains("--max-in-list"),
            "{m}"
        );
        assert_eq!(out["extensions"]["explain"], serde_json::json!([]), "{out}");
    }
    // an `or` of too many branches
    let branches: Vec<String> = (0..201)
        .map(|i| format!("{{ userId: {{ equals: \"u{i}\" }} }}"))
        .collect();
    let q = format!(
        "{{ gym {{ leadConversions(where: {{ or: [{}] }}) {{ userId }} }} }}",
        branches.join(", ")
    );
    let out = serde_json::to_value(schema.execute(q.as_str()).await).unwrap();
    assert_eq!(code(&out), "LIMIT_EXCEEDED", "{out}");
    let m = out["errors"][0]["message"].as_str().unwrap();
    assert!(
        m.contains("202 nodes") && m.contains("--max-filter-nodes") && m.contains("200"),
        "{out}"
    );
    // 100,000 values: refused by the limit, not by the database
    let ids: Vec<String> = (0..100_000).map(|i| format!("\"u{i}\"")).collect();
    let q = format!(
        "{{ gym {{ leadConversions(where: {{ userId: {{ in: [{}] }} }}) {{ userId }} }} }}",
        ids.join(", ")
    );
    let out = serde_json::to_value(schema.execute(q.as_str()).await).unwrap();
    assert_eq!(code(&out), "LIMIT_EXCEEDED", "{out}");
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("userId.in 100000 values"),
        "{out}"
    );
    // at the limits, the request runs
    let ids: Vec<String> = (0..1000).map(|i| format!("\"u{i}\"")).collect();
    let q = format!(
        "{{ gym {{ leadConversions(where: {{ userId: {{ in: [{}] }} }}) {{ userId }} }} }}",
        ids.join(", ")
    );
    let out = serde_json::to_value(schema.execute(q.as_str()).await).unwrap();
    assert_eq!(out["errors"], serde_json::Value::Null, "{out}");
    db.cleanup().await;
}
