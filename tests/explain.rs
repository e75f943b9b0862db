//! Every field of the served schema explains itself: a request that selects any one field
//! (of `Query`, or of a model's object) gets `extensions.explain` entries under that field's
//! path — the statements it ran, or an entry without SQL for a field answered from the
//! loaded models. The fields are found by introspection, so a new field is covered without
//! touching this test.

mod common;

use common::TestDb;
use serde_json::{Value, json};

/// The introspection the walk needs: every type's fields, their arguments and types.
const INTROSPECT: &str = r#"{ __schema { queryType { name } types { name kind enumValues { name } fields {
  name args { name type { kind name ofType { kind name ofType { kind name } } } }
  type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"#;

/// The named type under list and non-null wrappers.
fn named(ty: &Value) -> (&str, &str) {
    let mut t = ty;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (t["kind"].as_str().unwrap(), t["name"].as_str().unwrap())
}

/// A value for every required argument: an instant, or an enum's first value (a funnel).
fn required_args(types: &[Value], field: &Value) -> String {
    let args: Vec<String> = field["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"]["kind"] == "NON_NULL")
        .map(|a| {
            let (kind, ty) = named(&a["type"]);
            let name = a["name"].as_str().unwrap();
            if kind == "ENUM" {
                let t = types.iter().find(|t| t["name"] == ty).unwrap();
                return format!("{name}: {}", t["enumValues"][0]["name"].as_str().unwrap());
            }
            assert_eq!(
                ty, "String",
                "required argument {} of {}",
                a["name"], field["name"]
            );
            format!("{name}: \"2025-01-01T00:00:00Z\"")
        })
        .collect();
    if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    }
}

/// A selection of `type_name`: its leaf fields and, to a depth, its object fields; a
/// metrics row selects one metric (`metric`), since any combination must be valid.
fn selection(types: &[Value], type_name: &str, metric: Option<&str>, depth: usize) -> String {
    if let Some(m) = metric
        && type_name.ends_with("MetricsRow")
    {
        return format!("{{ {m} }}");
    }
    // a funnel row groups by what it selects, and not every dimension reaches every step
    if type_name.ends_with("FunnelRow") {
        return "{ step entities }".to_owned();
    }
    let t = types.iter().find(|t| t["name"] == type_name).unwrap();
    let Some(fields) = t["fields"].as_array() else {
        return String::new(); // a scalar or enum: no selection
    };
    let mut out = Vec::new();
    for f in fields {
        let name = f["name"].as_str().unwrap();
        let (kind, inner) = named(&f["type"]);
        match kind {
            "SCALAR" | "ENUM" => out.push(name.to_owned()),
            "OBJECT" if depth > 0 => out.push(format!(
                "{name}{} {}",
                required_args(types, f),
                selection(types, inner, metric, depth - 1)
            )),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push("__typename".to_owned());
    }
    format!("{{ {} }}", out.join(" "))
}

#[tokio::test]
async fn every_field_carries_explain() {
    for db in TestDb::all().await {
        let schema = tally::graphql::build(Some(db.conn.clone())).unwrap();
        let intro = serde_json::to_value(schema.execute(INTROSPECT).await).unwrap();
        let types = intro["data"]["__schema"]["types"]
            .as_array()
            .unwrap()
            .clone();
        let catalog = serde_json::to_value(
            schema
                .execute("{ catalog { models { name metrics { name } } } }")
                .await,
        )
        .unwrap();
        let first_metric = |model: &str| -> Option<String> {
            catalog["data"]["catalog"]["models"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == model)
                .and_then(|m| m["metrics"][0]["name"].as_str())
                .map(str::to_owned)
        };
        let query_type = types.iter().find(|t| t["name"] == "Query").unwrap();
        // (document, path the explain must name)
        let mut cases: Vec<(String, String)> = Vec::new();
        for f in query_type["fields"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            let (_, inner) = named(&f["type"]);
            if inner == format!("{}Model", tally::graphql::pascal(name)) {
                let model_type = types.iter().find(|t| t["name"] == inner).unwrap();
                let metric = first_metric(name);
                for g in model_type["fields"].as_array().unwrap() {
                    let gname = g["name"].as_str().unwrap();
                    let (_, ginner) = named(&g["type"]);
                    let sel = selection(&types, ginner, metric.as_deref(), 4);
                    cases.push((
                        format!(
                            "{{ {name} {{ {gname}{} {sel} }} }}",
                            required_args(&types, g)
                        ),
                        format!("{name}.{gname}"),
                    ));
                }
            } else {
                let sel = selection(&types, inner, None, 4);
                cases.push((
                    format!("{{ {name}{} {sel} }}", required_args(&types, f)),
                    name.to_owned(),
                ));
            }
        }
        assert!(cases.len() >= 10, "{cases:?}");
        for (doc, path) in &cases {
            let out = serde_json::to_value(schema.execute(doc.as_str()).await).unwrap();
            assert_eq!(out["errors"], Value::Null, "{}: {doc}: {out}", db.backend);
            let explain = out["extensions"]["explain"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: no explain for {doc}: {out}", db.backend));
            let mine: Vec<&Value> = explain
                .iter()
                .filter(|e| e["path"].as_str().unwrap_or("").starts_with(path.as_str()))
                .collect();
            assert!(
                !mine.is_empty(),
                "{}: no explain under {path}: {out}",
                db.backend
            );
            for e in mine {
                // a statement with its parameters and timings, or an entry without SQL
                assert!(e["sql"].is_string() || e["source"].is_string(), "{e}");
                assert!(e["params"].is_array() && e["dbMillis"].is_number(), "{e}");
                if let Some(sql) = e["sql"].as_str() {
                    assert!(!sql.is_empty());
                }
            }
        }
        // a response explains the fields of every model it touches, each under its path
        let out = serde_json::to_value(
            schema
                .execute("{ catalog { models { name } } a: sources(model: \"gym\") { tables { name rowCount } } }")
                .await,
        )
        .unwrap();
        let paths: Vec<&str> = out["extensions"]["explain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"catalog"), "{paths:?}");
        assert!(
            paths.iter().any(|p| p.starts_with("a.0.tables")),
            "{paths:?}"
        );
        assert_eq!(json!(out["errors"]), Value::Null);
        db.cleanup().await;
    }
}
