//! API keys and roles through the real HTTP app: a missing or unknown key is 401
//! `UNAUTHENTICATED`; a document touching what the role may not read is `FORBIDDEN` naming it
//! (aliases, fragments and variables included); explain SQL per role; a role's own time
//! budget; `/metrics` behind a key; CORS and the pages' Content-Security-Policy; the filter
//! limits of a request.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use common::TestDb;
use tally::config::FileConfig;

const ADMIN_KEY: &str = "tally_admin_key_for_tests";
const BRANCH_KEY: &str = "tally_branch_key_for_tests";

/// A configuration with an unscoped admin seeing SQL and a branch manager reading part of
/// gym, without SQL, with a short budget.
fn config() -> FileConfig {
    let text = format!(
        r#"
[auth]
metrics_public = false

[auth.roles.admin]
unscoped = true
explain_sql = true

[auth.roles.branch]
models = ["gym", "slow"]
introspection = false
statement_timeout = "300ms"

[auth.roles.branch.allow.gym]
metrics = ["leads", "clients"]
dimensions = ["branchName", "signupTime"]
fields = ["metrics"]

[[auth.keys]]
name = "admin"
hash = "{}"
role = "admin"

[[auth.keys]]
hash = "{}"
role = "branch"
attributes = {{ branch_id = ["b1", "b2"] }}
"#,
        tally::auth::hash_key(ADMIN_KEY),
        tally::auth::hash_key(BRANCH_KEY)
    );
    FileConfig::parse(&text, "test.toml").expect("config parses")
}

fn settings() -> tally::http::Settings {
    tally::http::Settings {
        auth: Arc::new(config().auth().expect("auth")),
        metrics_public: false,
        cors_origins: vec!["https://app.example.com".to_owned()],
        ..Default::default()
    }
}

async fn app(db: &TestDb, settings: tally::http::Settings) -> axum::Router {
    let models = tally::semantic::load_models(None).expect("models");
    tally::http::app_with_settings(db.conn.clone(), models, None, settings).expect("app")
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn code(&self) -> String {
        self.json()["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
    fn message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn post(
    app: &axum::Router,
    headers: &[(&str, &str)],
    query: &str,
    variables: serde_json::Value,
) -> Answer {
    let mut req = Request::post("/graphql").header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
    send(app, req.body(Body::from(body)).expect("request")).await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_401_and_the_pages_stay_public() {
    let db = TestDb::sqlite().await;
    let app = app(&db, settings()).await;
    let q = "{ gym { metrics { leads } } }";
    for headers in [
        vec![],
        vec![("authorization", "Bearer tally_not_a_key")],
        vec![("x-api-key", "tally_not_a_key")],
        vec![("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
    ] {
        let a = post(&app, &headers, q, serde_json::Value::Null).await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "{headers:?}: {}",
            a.body
        );
        assert_eq!(a.code(), "UNAUTHENTICATED", "{}", a.body);
        assert!(
            a.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{:?}",
            a.headers
        );
        assert!(a.message().contains("key"), "{}", a.body);
    }
    // both ways of presenting a known key are answered
    let auth = bearer(ADMIN_KEY);
    for headers in [
        vec![("authorization", auth.as_str())],
        vec![("x-api-key", ADMIN_KEY)],
    ] {
        let a = post(&app, &headers, q, serde_json::Value::Null).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(a.json()["errors"].is_null(), "{}", a.body);
    }
    // the pages and liveness hold no data: no key needed; /metrics needs one here
    for path in ["/", "/dashboard", "/healthz"] {
        let a = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
    }
    let a = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let a = send(
        &app,
        Request::get("/metrics")
            .header("authorization", bearer(BRANCH_KEY))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("tally_"), "{}", a.body);
    db.cleanup().await;
}

#[tokio::test]
async fn what_a_role_may_not_read_is_forbidden_before_it_runs() {
    let db = TestDb::sqlite().await;
    let app = app(&db, settings()).await;
    let auth = bearer(BRANCH_KEY);
    let key = [("authorization", auth.as_str())];
    let forbidden: &[(&str, serde_json::Value, &str)] = &[
        (
            "{ shop { metrics { orders } } }",
            serde_json::Value::Null,
            "the model shop",
        ),
        // a metric outside the list, under an alias
        (
            "{ gym { metrics { n: leads c: conversionRate } } }",
            serde_json::Value::Null,
            "the metric gym.conversionRate",
        ),
        // through a fragment spread and an inline fragment
        (
            "query { gym { ...F } } fragment F on GymModel { metrics { ... on GymMetricsRow { avgDaysToConvert } } }",
            serde_json::Value::Null,
            "the metric gym.avgDaysToConvert",
        ),
        // a dimension outside the list: selected, filtered (through a variable), sorted
        (
            "{ gym { metrics { leads branchCity } } }",
            serde_json::Value::Null,
            "the dimension gym.branchCity",
        ),
        (
            "query($w: GymWhere) { gym { metrics(where: $w) { leads } } }",
            serde_json::json!({ "w": { "or": [{ "branchName": { "equals": "x" } }, { "not": { "branchId": { "equals": "b9" } } }] } }),
            "the dimension gym.branchId",
        ),
        (
            "{ gym { metrics(orderBy: [{ branchCountry: ASC }]) { leads } } }",
            serde_json::Value::Null,
            "the dimension gym.branchCountry",
        ),
        // a field of the model outside the list
        (
            "{ gym { leadConversions { userId } } }",
            serde_json::Value::Null,
            "the field gym.leadConversions",
        ),
        // introspection
        (
            "{ __schema { queryType { name } } }",
            serde_json::Value::Null,
            "introspect",
        ),
        (
            "query { ... on Query { __type(name: \"GymModel\") { name } } }",
            serde_json::Value::Null,
            "introspect",
        ),
        // row counts of every model, when the role reads only some
        ("{ sources { name } }", serde_json::Value::Null, "sources"),
    ];
    for (q, vars, needle) in forbidden {
        let a = post(&app, &key, q, vars.clone()).await;
        assert_eq!(a.code(), "FORBIDDEN", "{q}: {}", a.body);
        let m = a.message();
        assert!(m.contains(needle) && m.contains("branch"), "{q}: {m}");
        // nothing ran
        assert!(a.json()["data"].is_null(), "{q}: {}", a.body);
        assert_eq!(
            a.json()["extensions"]["explain"],
            serde_json::json!([]),
            "{q}: {}",
            a.body
        );
    }
    // what the role may read is answered
    let a = post(
        &app,
        &key,
        "query($w: GymWhere) { gym { m: metrics(where: $w) { leads clients month: signupTime(granularity: MONTH) branchName } } }",
        serde_json::json!({ "w": { "branchName": { "in": ["a", "b"] } } }),
    )
    .await;
    assert!(a.json()["errors"].is_null(), "{}", a.body);
    assert!(a.json()["data"]["gym"]["m"].is_array(), "{}", a.body);
    // the catalog lists what the role may read, and only that
    let a = post(
        &app,
        &key,
        "{ catalog { models { name metrics { name dimensions } dimensions { name } } } }",
        serde_json::Value::Null,
    )
    .await;
    let models = a.json()["data"]["catalog"]["models"].clone();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("a list: {v}"))
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&models), ["gym"], "{}", a.body);
    assert_eq!(
        names(&models[0]["metrics"]),
        ["leads", "clients"],
        "{}",
        a.body
    );
    assert_eq!(
        names(&models[0]["dimensions"]),
        ["branchName", "signupTime"],
        "{}",
        a.body
    );
    assert_eq!(
        models[0]["metrics"][0]["dimensions"],
        serde_json::json!(["branchName", "signupTime"]),
        "{}",
        a.body
    );
    // the admin reads everything, introspection included
    let admin = bearer(ADMIN_KEY);
    for q in [
        "{ shop { metrics { orders } } }",
        "{ gym { leadConversions(limit: 1) { userId } metrics { conversionRate branchCity } } }",
        "{ __schema { queryType { name } } }",
        "{ catalog { models(name: \"shop\") { metrics { name } } } }",
    ] {
        let a = post(
            &app,
            &[("authorization", admin.as_str())],
            q,
            serde_json::Value::Null,
        )
        .await;
        assert!(a.json()["errors"].is_null(), "{q}: {}", a.body);
    }
    db.cleanup().await;
}

#[tokio::test]
async fn explain_shows_sql_only_to_roles_that_may_see_it() {
    let db = TestDb::sqlite().await;
    let app = app(&db, settings()).await;
    let q = "{ gym { metrics { leads } } }";
    let admin = bearer(ADMIN_KEY);
    let a = post(
        &app,
        &[("authorization", admin.as_str())],
        q,
        serde_json::Value::Null,
    )
    .await;
    let e = &a.json()["extensions"]["explain"][0];
    assert!(
        e["sql"].as_str().is_some_and(|s| s.contains("SELECT")),
        "{}",
        a.body
    );
    assert!(e["params"].is_array(), "{}", a.body);
    assert!(e.get("sqlHidden").is_none(), "{}", a.body);

    let branch = bearer(BRANCH_KEY);
    let a = post(
        &app,
        &[("authorization", branch.as_str())],
        q,
        serde_json::Value::Null,
    )
    .await;
    assert!(a.json()["errors"].is_null(), "{}", a.body);
    let entries = a.json()["extensions"]["explain"]
        .as_array()
        .cloned()
        .unwrap();
    assert!(!entries.is_empty(), "{}", a.body);
    for e in entries {
        assert!(e["sql"].is_null(), "{e}");
        assert!(e.get("params").is_none(), "{e}");
        assert!(
            e["sqlHidden"].as_str().unwrap().contains("explain_sql"),
            "{e}"
        );
        assert_eq!(e["path"], "gym.metrics", "{e}");
        assert!(
            e["dbMillis"].is_number() && e["planMicros"].is_number(),
            "{e}"
        );
    }
    assert!(!a.body.contains("SELECT"), "{}", a.body);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_has_its_own_time_budget() {
    let db = TestDb::sqlite().await;
    let mut settings = settings();
    settings.engine = Some(tally::engine::Limits {
        statement_timeout: Duration::from_secs(60),
        max_queries: 2,
        queue_timeout: Duration::from_secs(1),
    });
    let app = common::slow_app(&db.url, settings).await;
    let branch = bearer(BRANCH_KEY);
    let started = Instant::now();
    let a = post(
        &app,
        &[("authorization", branch.as_str())],
        "{ slow { metrics { spins } } }",
        serde_json::Value::Null,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(a.code(), "TIMEOUT", "{}", a.body);
    let m = a.message();
    assert!(
        m.contains("0.3 s (auth.roles.branch.statement_timeout)"),
        "{m}"
    );
    // stopped at the role's 300 ms, far from the server's 60 s
    assert!(took < Duration::from_secs(10), "{took:?}");
    db.cleanup().await;
}

#[tokio::test]
async fn cors_answers_listed_origins_only_and_pages_carry_a_csp() {
    let db = TestDb::sqlite().await;
    let app = app(&db, settings()).await;
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/graphql")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app, preflight("https://app.example.com")).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        a.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        a.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(a.headers.get("access-control-allow-credentials").is_none());
    let a = send(&app, preflight("https://evil.example.com")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.headers.get("access-control-allow-origin").is_none());
    // an actual request from the listed origin is labelled; another origin's is not
    for (origin, allowed) in [
        ("https://app.example.com", true),
        ("https://evil.example.com", false),
    ] {
        let admin = bearer(ADMIN_KEY);
        let a = post(
            &app,
            &[("origin", origin), ("authorization", admin.as_str())],
            "{ __typename }",
            serde_json::Value::Null,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(
            a.headers.get("access-control-allow-origin").is_some(),
            allowed,
            "{origin}: {:?}",
            a.headers
        );
    }
    // off by default: a preflight is refused, nothing is labelled
    let open = self::app(&db, tally::http::Settings::default()).await;
    let a = send(&open, preflight("https://app.example.com")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.headers.get("access-control-allow-origin").is_none());

    for path in ["/", "/dashboard"] {
        let a = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'self'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
    }
    db.cleanup().await;
}

#[tokio::test]
async fn filters_past_their_limits_are_refused_over_http() {
    let db = TestDb::sqlite().await;
    let app = app(
        &db,
        tally::http::Settings {
            request: tally::graphql::RequestLimits {
                max_in_list: 3,
                max_filter_nodes: 4,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let refused = |query: &'static str| {
        let app = app.clone();
        async move {
            let a = post(&app, &[], query, serde_json::Value::Null).await;
            assert_eq!(a.code(), "LIMIT_EXCEEDED", "{}", a.body);
            a.message()
        }
    };
    let m = refused(
        "{ gym { metrics(where: { branchName: { in: [\"a\", \"b\", \"c\", \"d\"] } }) { leads } } }",
    )
    .await;
    for needle in [
        "branchName.in 4 values",
        "the limit is 3",
        "--max-in-list",
        "limits.max_in_list",
    ] {
        assert!(m.contains(needle), "{needle}: {m}");
    }
    // 5 nodes: an `or`, two conditions, a `not` and its condition
    let m = refused(
        "{ gym { leadConversions(where: { or: [{ userId: { equals: \"a\" } }, { leadStatus: { equals: \"LEAD\" } }, { not: { userId: { equals: \"b\" } } }] }) { userId } } }",
    )
    .await;
    for needle in [
        "holds 5 nodes",
        "the limit is 4",
        "--max-filter-nodes",
        "gym.leadConversions",
    ] {
        assert!(m.contains(needle), "{needle}: {m}");
    }
    // at the limits, the request runs
    let a = post(
        &app,
        &[],
        "{ gym { metrics(where: { or: [{ branchName: { in: [\"a\", \"b\"] } }, { branchId: { equals: \"x\" } }] }) { leads } } }",
        serde_json::Value::Null,
    )
    .await;
    assert!(a.json()["errors"].is_null(), "{}", a.body);
    db.cleanup().await;
}

#[tokio::test]
async fn the_callers_role_and_attributes_reach_the_engine() {
    let db = TestDb::sqlite().await;
    let auth = config().auth().expect("auth");
    let models = tally::semantic::load_models(None).expect("models");
    let engine =
        tally::engine::Engine::new(db.conn.clone(), models.into_iter().map(Arc::new).collect());
    let identity = |key: &str| {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", bearer(key).parse().unwrap());
        auth.authenticate(&headers).expect("a known key")
    };
    let budget = Duration::from_secs(30);
    // a scoped role: the session sees the key's role and attributes, and the role's budget
    let branch = identity(BRANCH_KEY);
    let scope = tally::auth::request_scope(branch.as_ref(), "r1".into(), budget);
    let left = scope.deadline.unwrap() - Instant::now();
    assert!(left <= Duration::from_millis(300), "{left:?}");
    let session = engine.session_for(Some(scope));
    let caller = session.caller().expect("a caller");
    assert_eq!(caller.role, "branch");
    assert_eq!(caller.attribute("branch_id").unwrap(), ["b1", "b2"]);
    // an unscoped role and an open server: no caller, the server's budget
    let admin = identity(ADMIN_KEY);
    assert!(admin.is_some());
    for who in [admin.as_ref(), None] {
        let scope = tally::auth::request_scope(who, "r2".into(), budget);
        assert!(scope.deadline.unwrap() - Instant::now() > Duration::from_secs(29));
        assert!(engine.session_for(Some(scope)).caller().is_none());
    }
    db.cleanup().await;
}
