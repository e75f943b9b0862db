//! The server as a user meets it: the explorer, GraphQL, health, and the committed SDL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use common::TestDb;

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, String, String) {
    let res = app.clone().oneshot(req).await.expect("request");
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

async fn graphql(app: &axum::Router, query: &str) -> serde_json::Value {
    let body = serde_json::json!({ "query": query }).to_string();
    let req = Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let (status, _, text) = send(app, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).expect("json response")
}

#[test]
fn schema_graphql_is_what_the_server_serves() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .unwrap_or_default();
    let served = tally::graphql::sdl();
    assert!(
        committed == served,
        "schema.graphql is stale: refresh it with `cargo run -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn explorer_is_served_without_external_urls() {
    let db = TestDb::sqlite().await;
    let app = tally::http::app(db.conn.clone()).expect("app");
    let (status, ctype, html) =
        send(&app, Request::get("/").body(Body::empty()).expect("req")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(html.contains("<title>tally explorer</title>"), "{html}");
    for attr in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "url(http",
        "//cdn",
    ] {
        assert!(
            !html.contains(attr),
            "the explorer page loads an external URL ({attr})"
        );
    }
    // Every asset the page references is served by the binary.
    let mut assets = 0;
    for part in html.split("\"explorer/").skip(1) {
        let file = part.split('"').next().expect("asset name");
        let (status, _, body) = send(
            &app,
            Request::get(format!("/explorer/{file}"))
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "/explorer/{file}");
        assert!(!body.is_empty());
        assets += 1;
    }
    assert!(
        assets >= 4,
        "the page references its scripts and styles under explorer/"
    );
    let (status, _, _) = send(
        &app,
        Request::get("/explorer/nope.js")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    db.cleanup().await;
}

#[tokio::test]
async fn graphql_answers_introspection_and_health() {
    for db in TestDb::all().await {
        let app = tally::http::app(db.conn.clone()).expect("app");
        let json = graphql(&app, "{ __schema { queryType { name } } }").await;
        assert_eq!(
            json["data"]["__schema"]["queryType"]["name"], "Query",
            "{json}"
        );
        let (status, _, body) = send(
            &app,
            Request::get("/healthz").body(Body::empty()).expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "ok\n");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn sources_lists_every_table_with_real_counts() {
    for db in TestDb::all().await {
        let app = tally::http::app(db.conn.clone()).expect("app");
        let json = graphql(&app, "{ sources { name tables { name rowCount } } }").await;
        let models = json["data"]["sources"].as_array().expect("models");
        let names: Vec<&str> = models
            .iter()
            .map(|m| m["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["saas", "gym", "shop", "social", "web"]);
        for m in models {
            for t in m["tables"].as_array().unwrap_or_else(|| panic!("{json}")) {
                assert_eq!(t["rowCount"], 0, "{} is empty before any load", t["name"]);
            }
        }
        let opts = tally::demo::DemoOptions {
            scale: 0.02,
            seed: 7,
        };
        let report = tally::cli::load_demo(&db.conn, "gym", &opts, false)
            .await
            .expect("demo load");
        let json = graphql(
            &app,
            r#"{ sources(model: "gym") { tables { name rowCount } } }"#,
        )
        .await;
        let tables = json["data"]["sources"][0]["tables"]
            .as_array()
            .unwrap_or_else(|| panic!("{json}"));
        for t in tables {
            let loaded = report
                .tables
                .iter()
                .find(|r| r.table == t["name"].as_str().expect("name"))
                .map(|r| r.rows_inserted)
                .unwrap_or(0);
            assert_eq!(t["rowCount"].as_u64(), Some(loaded), "{}", t["name"]);
        }
        assert!(tables.iter().any(|t| t["rowCount"].as_u64() > Some(0)));
        let json = graphql(&app, r#"{ sources(model: "gymm") { name } }"#).await;
        let msg = json["errors"][0]["message"].as_str().expect("error");
        assert!(msg.contains("unknown model \"gymm\""), "{msg}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn parse_and_validation_errors_carry_codes_and_suggestions() {
    let db = TestDb::sqlite().await;
    let app = tally::http::app(db.conn.clone()).expect("app");
    let json = graphql(&app, "{ gym { metrics { convRate } } }").await;
    let err = &json["errors"][0];
    assert_eq!(
        err["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{json}"
    );
    let msg = err["message"].as_str().expect("message");
    assert!(msg.contains("Did you mean \"conversionRate\""), "{msg}");
    let json = graphql(&app, "{ gym { metrics { ").await;
    assert_eq!(
        json["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
        "{json}"
    );
    let json = graphql(
        &app,
        r#"{ shop { metrics(asOf: "2024-13-01") { netSales } } }"#,
    )
    .await;
    assert_eq!(
        json["errors"][0]["extensions"]["code"], "BAD_AS_OF",
        "{json}"
    );
    db.cleanup().await;
}
