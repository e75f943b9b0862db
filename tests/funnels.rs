//! Funnels (docs/SEMANTIC-LAYER.md, "Funnels") on both backends: hand-computed fixtures
//! (web: same session and product; social: per campaign, ties), the demo data against a
//! funnel computed separately in Rust from plain SQL reads, the two overcount guards
//! (a conversion metric with its own base metric; a filtered funnel is the funnel of the
//! filtered entities), the Sankey, and the errors.

mod common;

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use common::{TestDb, WEB, code, data, gql, load_csv as load};
use tally::query::{FunnelSpec, QuerySpec, WindowPer, Within};

/// Every backend under test; under `CI=true` PostgreSQL must be there.
async fn backends() -> Vec<TestDb> {
    let dbs = TestDb::all().await;
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        assert_eq!(dbs.len(), 2, "CI needs TEST_DATABASE_URL");
    }
    dbs
}

async fn load_demo(db: &TestDb, model: &str, scale: f64) {
    let sources =
        tally::demo::sources(model, &tally::demo::DemoOptions { scale, seed: 7 }).unwrap();
    tally::load::load(&db.conn, model, sources, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("loading demo {model}: {e}"));
}

/// `[step, entities, conversionFromPrevious, conversionFromFirst, dropOff, median]` rows.
fn steps(v: &Value) -> Vec<Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["step"],
                r["entities"],
                r["conversionFromPrevious"],
                r["conversionFromFirst"],
                r["dropOff"],
                r["medianSecondsFromPrevious"]
            ])
        })
        .collect()
}

const ALL: &str =
    "step entities conversionFromPrevious conversionFromFirst dropOff medianSecondsFromPrevious";

// ------------------------------------------------------------------ web: hand-computed

const WEB_FUNNEL: &str = "name: PURCHASE, steps: [PAGE_VIEW, ADD_TO_CART, CHECKOUT]";

/// The journeys (session, product) of the fixture, by hand:
/// (s1,p1) view 10:00, add 10:05 (+300 s), checkout of o1 10:10 (+300 s);
/// (s2,p1) view 11:00, no add-to-cart of p1: dropped after the view;
/// (s2,p2) view 11:01, add 11:02 (+60 s), checkout of o2 11:05 (+180 s);
/// (s3,p2) view 12:00, dropped; (s4,p1) view 13:00, bought in o3 without an add-to-cart:
/// dropped after the view (steps are in strict order).
#[tokio::test]
async fn web_purchase_funnel_by_hand() {
    for db in backends().await {
        load(&db, "web", WEB).await;
        let b = db.backend;
        let q = |args: &str, fields: &str| {
            format!(
                r#"{{ web {{ funnel({WEB_FUNNEL}, asOf: "2024-02-02T00:00:00Z"{args}) {{ {fields} }} }} }}"#
            )
        };
        let v = gql(&db, &q("", ALL)).await;
        assert_eq!(
            steps(&data(&v, "web.funnel")),
            vec![
                json!(["PAGE_VIEW", 5, null, 1.0, null, null]),
                json!(["ADD_TO_CART", 2, 0.4, 0.4, 3, 180.0]),
                json!(["CHECKOUT", 2, 1.0, 0.4, 0, 240.0]),
            ],
            "{b}"
        );
        // by product: Cactus (s2,p2), (s3,p2); Fern (s1,p1), (s2,p1), (s4,p1)
        let v = gql(&db, &q("", &format!("productName {ALL}"))).await;
        let rows = data(&v, "web.funnel");
        let by: Vec<Value> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                json!([
                    r["productName"],
                    r["step"],
                    r["entities"],
                    r["conversionFromPrevious"],
                    r["medianSecondsFromPrevious"]
                ])
            })
            .collect();
        assert_eq!(
            by,
            vec![
                json!(["Cactus", "PAGE_VIEW", 2, null, null]),
                json!(["Cactus", "ADD_TO_CART", 1, 0.5, 60.0]),
                json!(["Cactus", "CHECKOUT", 1, 1.0, 180.0]),
                json!(["Fern", "PAGE_VIEW", 3, null, null]),
                json!(["Fern", "ADD_TO_CART", 1, 0.333333, 300.0]),
                json!(["Fern", "CHECKOUT", 1, 1.0, 300.0]),
            ],
            "{b}"
        );
        // a filter: the numbers of the filtered journeys (Fern's), percentages of them
        let v = gql(
            &db,
            &q(r#", where: { productName: { equals: "Fern" } }"#, ALL),
        )
        .await;
        assert_eq!(
            steps(&data(&v, "web.funnel")),
            vec![
                json!(["PAGE_VIEW", 3, null, 1.0, null, null]),
                json!(["ADD_TO_CART", 1, 0.333333, 0.333333, 2, 300.0]),
                json!(["CHECKOUT", 1, 1.0, 0.333333, 0, 300.0]),
            ],
            "{b}"
        );
        // a step's own filter: only Cactus add-to-carts count as ADD_TO_CART
        let v = gql(
            &db,
            &q(
                r#", stepWhere: [{ step: ADD_TO_CART, where: { productName: { equals: "Cactus" } } }]"#,
                "step entities",
            ),
        )
        .await;
        assert_eq!(
            data(&v, "web.funnel"),
            json!([
                { "step": "PAGE_VIEW", "entities": 5 },
                { "step": "ADD_TO_CART", "entities": 1 },
                { "step": "CHECKOUT", "entities": 1 }
            ]),
            "{b}"
        );
        // windows per step: (s1,p1)'s add-to-cart is 5 minutes after its view
        let v = gql(&db, &q(", within: { minutes: 4 }", "step entities")).await;
        assert_eq!(
            data(&v, "web.funnel"),
            json!([
                { "step": "PAGE_VIEW", "entities": 5 },
                { "step": "ADD_TO_CART", "entities": 1 },
                { "step": "CHECKOUT", "entities": 1 }
            ]),
            "{b}"
        );
        let v = gql(&db, &q(", within: { minutes: 5 }", "entities")).await;
        assert_eq!(
            data(&v, "web.funnel"),
            json!([{ "entities": 5 }, { "entities": 2 }, { "entities": 2 }]),
            "the window is inclusive ({b})"
        );
        // overall: (s1,p1)'s checkout is 10 minutes after its view, (s2,p2)'s 4
        let v = gql(
            &db,
            &q(", within: { minutes: 9 }, per: OVERALL", "entities"),
        )
        .await;
        assert_eq!(
            data(&v, "web.funnel"),
            json!([{ "entities": 5 }, { "entities": 2 }, { "entities": 1 }]),
            "{b}"
        );
        // asOf applies to every step: at 11:03 (s2,p2)'s checkout is not known
        let v = gql(
            &db,
            &format!(r#"{{ web {{ funnel({WEB_FUNNEL}, asOf: "2024-02-01T11:03:00Z") {{ entities }} }} }}"#),
        )
        .await;
        assert_eq!(
            data(&v, "web.funnel"),
            json!([{ "entities": 3 }, { "entities": 2 }, { "entities": 1 }]),
            "{b}"
        );
        // grouped by the first step's time (by hour)
        let v = gql(
            &db,
            &q("", "hour: firstStepTime(granularity: HOUR) step entities"),
        )
        .await;
        let first: Vec<Value> = data(&v, "web.funnel")
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["step"] == "PAGE_VIEW")
            .map(|r| json!([r["hour"], r["entities"]]))
            .collect();
        assert_eq!(
            first,
            vec![
                json!(["2024-02-01T10:00:00Z", 1]),
                json!(["2024-02-01T11:00:00Z", 2]),
                json!(["2024-02-01T12:00:00Z", 1]),
                json!(["2024-02-01T13:00:00Z", 1]),
            ],
            "{b}"
        );
        // the Sankey: steps, dropped nodes, links
        let v = gql(
            &db,
            &format!(r#"{{ web {{ funnelSankey({WEB_FUNNEL}, asOf: "2024-02-02T00:00:00Z") {{ nodes {{ id label value }} links {{ source target value }} }} }} }}"#),
        )
        .await;
        assert_eq!(
            data(&v, "web.funnelSankey"),
            json!({
                "nodes": [
                    { "id": "PAGE_VIEW", "label": "Viewed the product", "value": 5 },
                    { "id": "ADD_TO_CART", "label": "Added it to the cart", "value": 2 },
                    { "id": "CHECKOUT", "label": "Checked out", "value": 2 },
                    { "id": "DROPPED_AFTER_PAGE_VIEW", "label": "Dropped after Viewed the product", "value": 3 },
                    { "id": "DROPPED_AFTER_ADD_TO_CART", "label": "Dropped after Added it to the cart", "value": 0 }
                ],
                "links": [
                    { "source": "PAGE_VIEW", "target": "ADD_TO_CART", "value": 2 },
                    { "source": "PAGE_VIEW", "target": "DROPPED_AFTER_PAGE_VIEW", "value": 3 },
                    { "source": "ADD_TO_CART", "target": "CHECKOUT", "value": 2 },
                    { "source": "ADD_TO_CART", "target": "DROPPED_AFTER_ADD_TO_CART", "value": 0 }
                ]
            }),
            "{b}"
        );
        // every step picked (the fixture ships nothing): the fourth step is empty
        let v = gql(
            &db,
            r#"{ web { funnel(name: PURCHASE, asOf: "2024-02-02T00:00:00Z") { step entities } } }"#,
        )
        .await;
        assert_eq!(
            data(&v, "web.funnel")[3],
            json!({ "step": "SHIPPED", "entities": 0 })
        );
        // explain names the funnel's statement
        assert!(
            v["extensions"]["explain"][0]["sql"]
                .as_str()
                .is_some_and(|s| s.contains("\"fun_1\"") && s.contains("\"asof_events\"")),
            "{v}"
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ social: ties, campaigns

const SOCIAL: &[(&str, &str)] = &[
    (
        "user",
        "user_id,status,name,email,phone,created_at,updated_at,is_current,last_active_date,churned_date\n\
         u1,active,A,a@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n\
         u2,active,B,b@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n",
    ),
    ("device", "device_id,device_type,os\nd1,mobile,iOS\n"),
    (
        "campaign",
        "campaign_id,campaign_type,campaign_name,campaign_desc,created_at,starttime,endtime\n\
         c1,search,Spring,,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,\n\
         c2,display,Summer,,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,\n",
    ),
    (
        "ad_event",
        "event_id,event_time,event_type,campaign_id,user_id,device_id,ip_address,revenue,cost\n\
         a1,2024-03-01T10:00:00Z,impression,c1,u1,d1,,0.00,0.10\n\
         a2,2024-03-01T10:00:00Z,click,c1,u1,d1,,0.00,0.50\n\
         a3,2024-03-01T10:30:00Z,conversion,c1,u1,d1,,9.00,0.00\n\
         a4,2024-03-01T10:00:00Z,impression,c1,u2,d1,,0.00,0.10\n\
         a5,2024-03-01T10:01:00Z,click,c1,u2,d1,,0.00,0.50\n\
         a6,2024-03-01T10:02:00Z,conversion,c1,u2,d1,,5.00,0.00\n\
         a7,2024-03-01T11:00:00Z,impression,c2,u2,d1,,0.00,0.10\n\
         a8,2024-03-01T11:05:00Z,click,c1,u2,d1,,0.00,0.50\n",
    ),
];

/// (u1,c1): the click at the impression's second is a tie, not a later step: dropped.
/// (u2,c1): impression, click +60 s, conversion +60 s. (u2,c2): an impression; the click at
/// 11:05 is of c1, another campaign: dropped.
#[tokio::test]
async fn social_ad_funnel_per_campaign_with_ties() {
    for db in backends().await {
        load(&db, "social", SOCIAL).await;
        let v = gql(
            &db,
            &format!(r#"{{ social {{ funnel(name: AD_CONVERSION, asOf: "2024-04-01T00:00:00Z") {{ {ALL} }} }} }}"#),
        )
        .await;
        assert_eq!(
            steps(&data(&v, "social.funnel")),
            vec![
                json!(["IMPRESSION", 3, null, 1.0, null, null]),
                json!(["CLICK", 1, 0.333333, 0.333333, 2, 60.0]),
                json!(["CONVERSION", 1, 1.0, 0.333333, 0, 60.0]),
            ],
            "{}",
            db.backend
        );
        let v = gql(
            &db,
            r#"{ social { funnel(name: AD_CONVERSION, steps: [IMPRESSION, CONVERSION], asOf: "2024-04-01T00:00:00Z") { campaignName step entities } } }"#,
        )
        .await;
        // without the click step, (u1,c1)'s conversion follows its impression
        assert_eq!(
            data(&v, "social.funnel"),
            json!([
                { "campaignName": "Spring", "step": "IMPRESSION", "entities": 2 },
                { "campaignName": "Spring", "step": "CONVERSION", "entities": 2 },
                { "campaignName": "Summer", "step": "IMPRESSION", "entities": 1 },
                { "campaignName": "Summer", "step": "CONVERSION", "entities": 0 }
            ]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ errors

#[tokio::test]
async fn bad_funnel_requests_have_codes() {
    let db = TestDb::sqlite().await;
    let cases = [
        (
            "steps: [CHECKOUT, PAGE_VIEW]",
            "BAD_FUNNEL_STEPS",
            "comes before",
        ),
        ("steps: [PAGE_VIEW, PAGE_VIEW]", "BAD_FUNNEL_STEPS", "twice"),
        ("steps: [PAGE_VIEW]", "BAD_FUNNEL_STEPS", "at least two"),
        ("within: { days: 0 }", "BAD_WINDOW", "positive"),
        ("within: { days: 1, hours: 2 }", "BAD_WINDOW", "exactly one"),
        ("within: {}", "BAD_WINDOW", "no length"),
        ("steps: [NOPE]", "GRAPHQL_VALIDATION_FAILED", "NOPE"),
    ];
    for (args, want, text) in cases {
        let v = gql(
            &db,
            &format!("{{ web {{ funnel(name: PURCHASE, {args}) {{ step entities }} }} }}"),
        )
        .await;
        assert_eq!(code(&v), want, "{args}: {v}");
        let msg = v["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains(text), "{args}: {msg}");
    }
    // a dimension the first step's table does not reach
    let v = gql(&db, "{ web { funnel(name: PURCHASE) { eventType step } } }").await;
    assert_eq!(code(&v), "UNREACHABLE_DIMENSION", "{v}");
    let v = gql(
        &db,
        r#"{ web { funnel(name: PURCHASE, where: { state: { equals: "NY" } }) { step } } }"#,
    )
    .await;
    assert_eq!(code(&v), "UNREACHABLE_DIMENSION", "{v}");
    // grouped by a dimension its first step reaches when the request starts elsewhere
    let v = gql(
        &db,
        "{ web { funnel(name: PURCHASE, steps: [ADD_TO_CART, CHECKOUT]) { eventType step entities } } }",
    )
    .await;
    assert_eq!(data(&v, "web.funnel"), json!([]), "no events, no groups");
    // a step filter of a step not asked for, or over a dimension the step does not reach
    let v = gql(
        &db,
        r#"{ web { funnel(name: PURCHASE, steps: [PAGE_VIEW, ADD_TO_CART], stepWhere: [{ step: CHECKOUT, where: { productName: { equals: "Fern" } } }]) { step } } }"#,
    )
    .await;
    assert_eq!(code(&v), "BAD_FUNNEL_STEPS", "{v}");
    let v = gql(
        &db,
        r#"{ web { funnel(name: PURCHASE, stepWhere: [{ step: CHECKOUT, where: { pageUrl: { equals: "/x" } } }]) { step } } }"#,
    )
    .await;
    assert_eq!(code(&v), "UNREACHABLE_DIMENSION", "{v}");
    // names the enums cannot guard: through the engine
    let engine = tally::engine::Engine::with_embedded_models(db.conn.clone()).unwrap();
    let session = engine.session();
    let run = |name: &str, steps: &[&str]| {
        let mut spec = QuerySpec::funnel_of(
            "web",
            FunnelSpec {
                name: name.to_owned(),
                steps: steps.iter().map(|s| (*s).to_owned()).collect(),
                within: Some(Within {
                    days: Some(1),
                    ..Default::default()
                }),
                per: WindowPer::Step,
                step_filters: Vec::new(),
            },
            chrono::Utc::now(),
        );
        spec.fields.push(tally::query::Selected {
            key: "entities".into(),
            item: tally::query::Item::Funnel(tally::query::FunnelValue::Entities),
        });
        spec
    };
    let e = engine
        .run::<Value>(&session, &run("PURCHASES", &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "UNKNOWN_FUNNEL");
    assert!(e.message().contains("Did you mean \"PURCHASE\""), "{e}");
    let e = engine
        .run::<Value>(&session, &run("PURCHASE", &["PAGE_VIEW", "SIGNED_UP"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "UNKNOWN_FUNNEL");
    assert!(
        e.message()
            .contains("PAGE_VIEW, ADD_TO_CART, CHECKOUT, SHIPPED"),
        "{e}"
    );
    db.cleanup().await;
}

// ------------------------------------------------------------------ demo data vs Rust

/// A funnel computed in Rust: `events[k]` are step k's events `(entity, properties, t)`;
/// per (entity, properties) its earliest step-1 event, then greedily the earliest event of
/// each next step strictly after the previous one, within `window` of the previous step.
/// Returns per step the journeys reaching it and the median seconds from the previous step.
fn rust_funnel(
    events: &[Vec<(String, String, i64)>],
    window: Option<i64>,
) -> Vec<(i64, Option<f64>)> {
    let mut by_key: Vec<BTreeMap<(String, String), Vec<i64>>> = Vec::new();
    for step in events {
        let mut m: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for (e, p, t) in step {
            m.entry((e.clone(), p.clone())).or_default().push(*t);
        }
        for ts in m.values_mut() {
            ts.sort_unstable();
        }
        by_key.push(m);
    }
    let mut counts = vec![0i64; events.len()];
    let mut dts: Vec<Vec<i64>> = vec![Vec::new(); events.len()];
    for (key, ts) in &by_key[0] {
        let mut t = ts[0];
        counts[0] += 1;
        for k in 1..events.len() {
            let next = by_key[k]
                .get(key)
                .and_then(|xs| xs.iter().find(|x| **x > t).copied())
                .filter(|x| window.is_none_or(|w| *x <= t + w));
            match next {
                Some(x) => {
                    counts[k] += 1;
                    dts[k].push(x - t);
                    t = x;
                }
                None => break,
            }
        }
    }
    counts
        .into_iter()
        .zip(dts)
        .map(|(n, mut d)| {
            d.sort_unstable();
            let m = match d.len() {
                0 => None,
                l if l % 2 == 1 => Some(d[l / 2] as f64),
                l => Some((d[l / 2 - 1] + d[l / 2]) as f64 / 2.0),
            };
            (n, m)
        })
        .collect()
}

/// Plain SQL rows `(entity, property, seconds)` (the text is the same on both backends: the
/// seconds are computed in Rust from the stored text or timestamp).
async fn read_events(db: &TestDb, sql: &str) -> Vec<(String, String, i64)> {
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let e: String = r.try_get_by_index(0).unwrap();
            let p: Option<String> = r.try_get_by_index(1).unwrap();
            let t: String = r.try_get_by_index(2).unwrap();
            let t = if t.len() == 10 {
                // a date: the last second of its day
                chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                    .unwrap()
                    .and_hms_opt(23, 59, 59)
                    .unwrap()
                    .and_utc()
                    .timestamp()
            } else {
                chrono::DateTime::parse_from_rfc3339(&t.replace(' ', "T"))
                    .or_else(|_| chrono::DateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%#z"))
                    .unwrap_or_else(|e| panic!("{t}: {e}"))
                    .timestamp()
            };
            (e, p.unwrap_or_default(), t)
        })
        .collect()
}

fn as_text(backend: &str, col: &str) -> String {
    if backend == "postgres" {
        format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    } else {
        col.to_owned()
    }
}

fn compare(b: &str, got: &Value, want: &[(i64, Option<f64>)]) {
    let rows = got.as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "{b}: {got}");
    for (r, (n, m)) in rows.iter().zip(want) {
        assert_eq!(r["entities"], json!(n), "{b}: {got}");
        match m {
            Some(m) => assert!(
                (r["medianSecondsFromPrevious"].as_f64().unwrap() - m).abs() < 1e-6,
                "{b}: {got} vs {want:?}"
            ),
            None => assert!(r["medianSecondsFromPrevious"].is_null(), "{b}: {got}"),
        }
    }
    assert!(
        want[0].0 > 0 && want[1].0 > 0,
        "{b}: the demo funnel is not empty: {want:?}"
    );
}

#[tokio::test]
async fn demo_funnels_match_a_separate_computation() {
    let as_of = "2099-01-01T00:00:00Z";
    for db in backends().await {
        let b = db.backend;
        load_demo(&db, "web", 0.05).await;
        load_demo(&db, "saas", 0.05).await;
        // web: page view → add to cart → checkout (the order's products) → shipped
        let ts = as_text(b, "e.created_at");
        let views = read_events(&db, &format!("SELECT e.session_id, e.product_id, {ts} FROM web.events AS e WHERE e.event_type = 'page_view' AND e.product_id IS NOT NULL")).await;
        let adds = read_events(&db, &format!("SELECT e.session_id, e.product_id, {ts} FROM web.events AS e WHERE e.event_type = 'add_to_cart' AND e.product_id IS NOT NULL")).await;
        let checkouts = read_events(&db, &format!("SELECT e.session_id, oi.product_id, {ts} FROM web.events AS e JOIN web.order_items AS oi ON oi.order_id = e.order_id WHERE e.event_type = 'checkout'")).await;
        let shipped = read_events(&db, &format!("SELECT e.session_id, oi.product_id, {ts} FROM web.events AS e JOIN web.order_items AS oi ON oi.order_id = e.order_id WHERE e.event_type = 'package_shipped'")).await;
        let want = rust_funnel(
            &[
                views.clone(),
                adds.clone(),
                checkouts.clone(),
                shipped.clone(),
            ],
            None,
        );
        let v = gql(&db, &format!(r#"{{ web {{ funnel(name: PURCHASE, asOf: "{as_of}") {{ step entities medianSecondsFromPrevious }} }} }}"#)).await;
        compare(b, &data(&v, "web.funnel"), &want);
        let want = rust_funnel(&[views, adds, checkouts, shipped], Some(600));
        let v = gql(&db, &format!(r#"{{ web {{ funnel(name: PURCHASE, asOf: "{as_of}", within: {{ minutes: 10 }}) {{ step entities medianSecondsFromPrevious }} }} }}"#)).await;
        compare(b, &data(&v, "web.funnel"), &want);
        // saas: account creation → shop creation → payment → a later payment (a payment's
        // ds read as the end of its day)
        let ts = as_text(b, "g.event_time");
        let uid = if b == "postgres" {
            "g.metadata->>'user_id'"
        } else {
            "json_extract(g.metadata, '$.user_id')"
        };
        let signups = read_events(&db, &format!("SELECT {uid}, NULL, {ts} FROM saas.global_events AS g WHERE g.event_type = 'user_account_creation'")).await;
        let shops = read_events(&db, &format!("SELECT {uid}, NULL, {ts} FROM saas.global_events AS g WHERE g.event_type = 'user_shop_create'")).await;
        let ds = if b == "postgres" {
            "CAST(p.ds AS TEXT)"
        } else {
            "p.ds"
        };
        let payments = read_events(
            &db,
            &format!("SELECT p.user_id, NULL, {ds} FROM saas.payments AS p"),
        )
        .await;
        let want = rust_funnel(&[signups, shops, payments.clone(), payments], None);
        let v = gql(&db, &format!(r#"{{ saas {{ funnel(name: ONBOARDING, asOf: "{as_of}") {{ step entities medianSecondsFromPrevious }} }} }}"#)).await;
        compare(b, &data(&v, "saas.funnel"), &want);
        assert!(want[3].0 > 0, "{b}: repeat payments exist: {want:?}");
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ overcount guards

/// Every group of `alone` has the same `key` in `together`; the groups only `together` has
/// (another metric's rows) have no number for `key` (null, or a count of 0).
fn same_numbers(alone: &Value, together: &Value, group: &str, key: &str, b: &str) {
    let map = |v: &Value| -> BTreeMap<String, Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(group).map(|g| g.to_string()).unwrap_or_default(),
                    r[key].clone(),
                )
            })
            .collect()
    };
    let (a, t) = (map(alone), map(together));
    assert!(!a.is_empty(), "{b}: {key}");
    for (g, v) in &a {
        assert_eq!(t.get(g), Some(v), "{b}: {key} of group {g}");
    }
    for (g, v) in &t {
        if !a.contains_key(g) {
            assert!(
                v.is_null() || *v == json!(0),
                "{b}: {key} of group {g} only together: {v}"
            );
        }
    }
}

/// (1) A conversion metric with its own base metric in one `metrics` request gives the numbers
/// each gives alone. (2) A filtered funnel is the funnel of the filtered entities: its rows
/// are the group's rows of the grouped funnel, and its percentages those of that group.
#[tokio::test]
async fn conversion_and_filter_do_not_overcount() {
    for db in backends().await {
        let b = db.backend;
        load_demo(&db, "saas", 0.05).await;
        load_demo(&db, "web", 0.05).await;
        let as_of = "2024-11-01T00:00:00Z";
        for dims in ["", "plan"] {
            let one =
                |m: &str| format!(r#"{{ saas {{ metrics(asOf: "{as_of}") {{ {dims} {m} }} }} }}"#);
            let both = gql(
                &db,
                &one("customerChurnRate churnedCustomers customersMonthAgo"),
            )
            .await;
            let rate = gql(&db, &one("customerChurnRate")).await;
            let conv = gql(&db, &one("churnedCustomers")).await;
            let base = gql(&db, &one("customersMonthAgo")).await;
            let both = data(&both, "saas.metrics");
            assert!(
                both.as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["customersMonthAgo"].as_i64().unwrap_or(0) > 0),
                "{b}: {both}"
            );
            for (alone, key) in [
                (rate, "customerChurnRate"),
                (conv, "churnedCustomers"),
                (base, "customersMonthAgo"),
            ] {
                same_numbers(&data(&alone, "saas.metrics"), &both, "plan", key, b);
            }
        }
        // web: the same for productConversions and productViewSessions by product
        let q =
            |m: &str| format!(r#"{{ web {{ metrics(asOf: "{as_of}") {{ productName {m} }} }} }}"#);
        let both = data(
            &gql(
                &db,
                &q("productConversionRate productViewSessions productConversions"),
            )
            .await,
            "web.metrics",
        );
        for key in [
            "productConversionRate",
            "productViewSessions",
            "productConversions",
        ] {
            let alone = data(&gql(&db, &q(key)).await, "web.metrics");
            same_numbers(&alone, &both, "productName", key, b);
        }
        // (2) every product's filtered funnel is its row of the grouped funnel
        let grouped = data(
            &gql(&db, &format!(r#"{{ web {{ funnel(name: PURCHASE, asOf: "{as_of}") {{ productName {ALL} }} }} }}"#)).await,
            "web.funnel",
        );
        let mut products: Vec<String> = grouped
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["productName"].as_str().map(str::to_owned))
            .collect();
        products.dedup();
        assert!(products.len() > 3, "{b}: {products:?}");
        for p in products.iter().take(4) {
            let filtered = data(
                &gql(&db, &format!(r#"{{ web {{ funnel(name: PURCHASE, asOf: "{as_of}", where: {{ productName: {{ equals: "{p}" }} }}) {{ {ALL} }} }} }}"#)).await,
                "web.funnel",
            );
            let rows: Vec<Value> = grouped
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["productName"] == json!(p))
                .cloned()
                .collect();
            assert_eq!(steps(&filtered), steps(&json!(rows)), "{b}: {p}");
            // and it is not the unfiltered population's percentages
            assert_eq!(filtered[0]["conversionFromFirst"], json!(1.0));
        }
        db.cleanup().await;
    }
}
