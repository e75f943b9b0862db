//! The second half of the semantic layer end to end, on both backends: conversion,
//! retention and period-average metrics, distinct trailing windows, `isComplete`, time-zone
//! buckets (SQLite as PostgreSQL, across daylight-saving changes), the metrics of the shipped
//! models built on them (social churn and stickiness, web product conversion and session
//! duration, shop customer lifetime value and inventory on hand, saas stages), and the
//! validation of the new model-file elements.

mod common;

use serde_json::{Value, json};

use common::{TestDb, WEB, code, data, gql, load_csv as load};
use tally::semantic::{ModelSource, SourceFile};

// ------------------------------------------------------------------ social: retention

const SOCIAL_USERS: &str = "user_id,status,name,email,phone,created_at,updated_at,is_current,last_active_date,churned_date\n\
c1,active,C,c@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n\
u1,active,A,a@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n\
u2,active,B,b@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n\
u3,active,D,d@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n\
u4,active,E,e@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n\
u5,active,F,f@x.io,,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true,,\n";
const SOCIAL_DEVICES: &str = "device_id,device_type,os\nd1,mobile,iOS\nd2,desktop,Windows\n";
const SOCIAL_CONTENT: &str = "content_id,content_type,content_name,content_desc,creator_id,created_at,updated_at,is_current\n\
k1,post,Hello,,c1,2023-12-01T00:00:00Z,2023-12-01T00:00:00Z,true\n";
const CE_HEADER: &str =
    "event_id,event_time,event_type,content_id,creator_id,viewer_id,device_id,ip_address\n";

/// Who is active when (a view of k1 by the user on the device):
/// u1 Jan, Feb, Apr; u2 Jan, Mar; u3 Feb, Mar (twice), Apr (desktop); u4 Mar 31 23:30 UTC
/// (desktop; April in London); u5 Jan 1, Apr.
const SOCIAL_EVENTS: &[(&str, &str, &str, &str)] = &[
    ("e01", "2024-01-10T10:00:00Z", "u1", "d1"),
    ("e02", "2024-02-05T10:00:00Z", "u1", "d1"),
    ("e03", "2024-04-02T10:00:00Z", "u1", "d1"),
    ("e04", "2024-01-20T10:00:00Z", "u2", "d1"),
    ("e05", "2024-03-03T10:00:00Z", "u2", "d1"),
    ("e06", "2024-02-14T10:00:00Z", "u3", "d1"),
    ("e07", "2024-03-15T10:00:00Z", "u3", "d1"),
    ("e08", "2024-03-16T10:00:00Z", "u3", "d1"),
    ("e09", "2024-03-31T23:30:00Z", "u4", "d2"),
    ("e10", "2024-01-01T00:30:00Z", "u5", "d1"),
    ("e11", "2024-04-10T10:00:00Z", "u5", "d1"),
    ("e12", "2024-04-05T10:00:00Z", "u3", "d2"),
];

fn content_events(rows: &[(&str, &str, &str, &str)]) -> String {
    let mut s = CE_HEADER.to_owned();
    for (id, t, viewer, device) in rows {
        s.push_str(&format!("{id},{t},view,k1,c1,{viewer},{device},\n"));
    }
    s
}

async fn load_social(db: &TestDb, events: &[(&str, &str, &str, &str)]) {
    let ce = content_events(events);
    load(
        db,
        "social",
        &[
            ("user", SOCIAL_USERS),
            ("device", SOCIAL_DEVICES),
            ("content", SOCIAL_CONTENT),
            ("content_event", &ce),
        ],
    )
    .await;
}

#[tokio::test]
async fn social_churn_resurrection_and_stickiness() {
    let monthly = r#"{ social { metrics(asOf: "2024-04-15T00:00:00Z") { m: activityTime(granularity: MONTH) activeUsers churnedUsers churnRate retainedUsers resurrectedUsers newUsers averageDailyActiveUsers stickiness isComplete } } }"#;
    for db in TestDb::all().await {
        load_social(&db, SOCIAL_EVENTS).await;
        let v = gql(&db, monthly).await;
        assert_eq!(
            data(&v, "social.metrics"),
            json!([
                { "m": "2024-01-01T00:00:00Z", "activeUsers": 3, "churnedUsers": 2, "churnRate": 0.666667, "retainedUsers": 1, "resurrectedUsers": 0, "newUsers": 3, "averageDailyActiveUsers": 0.096774, "stickiness": 0.032258, "isComplete": true },
                { "m": "2024-02-01T00:00:00Z", "activeUsers": 2, "churnedUsers": 1, "churnRate": 0.5, "retainedUsers": 1, "resurrectedUsers": 0, "newUsers": 1, "averageDailyActiveUsers": 0.068966, "stickiness": 0.034483, "isComplete": true },
                // April is not complete on 2024-04-15: March's churn is not known yet
                { "m": "2024-03-01T00:00:00Z", "activeUsers": 3, "churnedUsers": null, "churnRate": null, "retainedUsers": null, "resurrectedUsers": 1, "newUsers": 1, "averageDailyActiveUsers": 0.129032, "stickiness": 0.043011, "isComplete": true },
                // 15 days of April have started (the 15th at 00:00, asOf itself)
                { "m": "2024-04-01T00:00:00Z", "activeUsers": 3, "churnedUsers": null, "churnRate": null, "retainedUsers": null, "resurrectedUsers": 2, "newUsers": 0, "averageDailyActiveUsers": 0.2, "stickiness": 0.066667, "isComplete": false }
            ]),
            "{}",
            db.backend
        );
        // Once May has ended, March and April churn are known.
        let v = gql(&db, r#"{ social { metrics(asOf: "2024-06-01T00:00:00Z", where: { activityTime: { gte: "2024-03-01T00:00:00Z" } }) { m: activityTime(granularity: MONTH) activeUsers churnedUsers churnRate isComplete } } }"#).await;
        assert_eq!(
            data(&v, "social.metrics"),
            json!([
                { "m": "2024-03-01T00:00:00Z", "activeUsers": 3, "churnedUsers": 2, "churnRate": 0.666667, "isComplete": true },
                { "m": "2024-04-01T00:00:00Z", "activeUsers": 3, "churnedUsers": 3, "churnRate": 1.0, "isComplete": true }
            ]),
            "{}",
            db.backend
        );
        // `where` picks who is counted in M; the next period sees all their activity (u3 is
        // active in April on a desktop only: retained from March on mobile).
        let v = gql(&db, r#"{ social { metrics(asOf: "2024-06-01T00:00:00Z", where: { deviceType: { equals: "mobile" } }) { m: activityTime(granularity: MONTH) activeUsers churnRate } } }"#).await;
        assert_eq!(
            data(&v, "social.metrics"),
            json!([
                { "m": "2024-01-01T00:00:00Z", "activeUsers": 3, "churnRate": 0.666667 },
                { "m": "2024-02-01T00:00:00Z", "activeUsers": 2, "churnRate": 0.5 },
                { "m": "2024-03-01T00:00:00Z", "activeUsers": 2, "churnRate": 0.5 },
                { "m": "2024-04-01T00:00:00Z", "activeUsers": 2, "churnRate": 1.0 }
            ]),
            "{}",
            db.backend
        );
        // The other selected dimensions split the activity: per device type.
        let v = gql(&db, r#"{ social { metrics(asOf: "2024-06-01T00:00:00Z") { m: activityTime(granularity: MONTH) deviceType activeUsers newUsers churnedUsers } } }"#).await;
        assert_eq!(
            data(&v, "social.metrics"),
            json!([
                { "m": "2024-01-01T00:00:00Z", "deviceType": "mobile", "activeUsers": 3, "newUsers": 3, "churnedUsers": 2 },
                { "m": "2024-02-01T00:00:00Z", "deviceType": "mobile", "activeUsers": 2, "newUsers": 1, "churnedUsers": 1 },
                { "m": "2024-03-01T00:00:00Z", "deviceType": "desktop", "activeUsers": 1, "newUsers": 1, "churnedUsers": 1 },
                { "m": "2024-03-01T00:00:00Z", "deviceType": "mobile", "activeUsers": 2, "newUsers": 0, "churnedUsers": 2 },
                { "m": "2024-04-01T00:00:00Z", "deviceType": "desktop", "activeUsers": 1, "newUsers": 1, "churnedUsers": 1 },
                { "m": "2024-04-01T00:00:00Z", "deviceType": "mobile", "activeUsers": 2, "newUsers": 0, "churnedUsers": 2 }
            ]),
            "{}",
            db.backend
        );
        // DAU / rolling 30-day MAU: buckets starting in (day - 30 days, day]
        let v = gql(&db, r#"{ social { metrics(asOf: "2024-04-15T00:00:00Z") { d: activityTime(granularity: DAY) activeUsers activeUsersTrailing30Days dauMau } } }"#).await;
        let rows = data(&v, "social.metrics");
        let day = |d: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["d"] == d)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            day("2024-01-01T00:00:00Z"),
            json!({ "d": "2024-01-01T00:00:00Z", "activeUsers": 1, "activeUsersTrailing30Days": 1, "dauMau": 1.0 })
        );
        assert_eq!(
            day("2024-03-15T00:00:00Z"),
            json!({ "d": "2024-03-15T00:00:00Z", "activeUsers": 1, "activeUsersTrailing30Days": 2, "dauMau": 0.5 })
        );
        assert_eq!(
            day("2024-04-10T00:00:00Z"),
            json!({ "d": "2024-04-10T00:00:00Z", "activeUsers": 1, "activeUsersTrailing30Days": 4, "dauMau": 0.25 })
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn social_months_in_london() {
    let q = r#"{ social { metrics(asOf: "2024-04-15T00:00:00Z", timezone: "Europe/London") { m: activityTime(granularity: MONTH) activeUsers resurrectedUsers newUsers churnRate averageDailyActiveUsers stickiness isComplete } } }"#;
    for db in TestDb::all().await {
        load_social(&db, SOCIAL_EVENTS).await;
        let rows = data(&gql(&db, q).await, "social.metrics");
        // u4's 2024-03-31T23:30Z is 00:30 on 1 April in London (BST).
        assert_eq!(
            rows,
            json!([
                { "m": "2024-01-01T00:00:00", "activeUsers": 3, "resurrectedUsers": 0, "newUsers": 3, "churnRate": 0.666667, "averageDailyActiveUsers": 0.096774, "stickiness": 0.032258, "isComplete": true },
                { "m": "2024-02-01T00:00:00", "activeUsers": 2, "resurrectedUsers": 0, "newUsers": 1, "churnRate": 0.5, "averageDailyActiveUsers": 0.068966, "stickiness": 0.034483, "isComplete": true },
                { "m": "2024-03-01T00:00:00", "activeUsers": 2, "resurrectedUsers": 1, "newUsers": 0, "churnRate": null, "averageDailyActiveUsers": 0.096774, "stickiness": 0.048387, "isComplete": true },
                { "m": "2024-04-01T00:00:00", "activeUsers": 4, "resurrectedUsers": 2, "newUsers": 1, "churnRate": null, "averageDailyActiveUsers": 0.266667, "stickiness": 0.066667, "isComplete": false }
            ]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn social_answers_at_t_ignore_later_activity() {
    let queries = [
        r#"{ social { metrics(asOf: "2024-04-15T00:00:00Z") { m: activityTime(granularity: MONTH) activeUsers churnedUsers churnRate resurrectedUsers newUsers stickiness isComplete } } }"#,
        r#"{ social { metrics(asOf: "2024-04-15T00:00:00Z") { d: activityTime(granularity: WEEK) dauMau averageDailyActiveUsers } } }"#,
    ];
    let late: &[(&str, &str, &str, &str)] = &[
        ("e20", "2024-04-20T10:00:00Z", "u2", "d1"),
        ("e21", "2024-05-02T10:00:00Z", "u4", "d1"),
    ];
    for db in TestDb::all().await {
        load_social(&db, SOCIAL_EVENTS).await;
        let mut before = Vec::new();
        for q in queries {
            before.push(data(&gql(&db, q).await, "social.metrics"));
        }
        let ce = content_events(late);
        load(&db, "social", &[("content_event", &ce)]).await;
        for (q, b) in queries.iter().zip(&before) {
            assert_eq!(&data(&gql(&db, q).await, "social.metrics"), b, "{q}");
        }
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ time zones on SQLite

#[tokio::test]
async fn time_zone_buckets_across_daylight_saving_changes() {
    // 2024-03-31 01:00 UTC: London goes from GMT to BST; 2024-10-27 01:00 UTC: back.
    let events: &[(&str, &str, &str, &str)] = &[
        ("t1", "2024-03-31T00:30:00Z", "u1", "d1"), // 00:30 GMT
        ("t2", "2024-03-31T01:30:00Z", "u1", "d1"), // 02:30 BST
        ("t3", "2024-10-26T23:30:00Z", "u1", "d1"), // 00:30 BST on the 27th
        ("t4", "2024-10-27T00:30:00Z", "u1", "d1"), // 01:30 BST
        ("t5", "2024-10-27T01:30:00Z", "u1", "d1"), // 01:30 GMT: the same local hour
    ];
    let q = |g: &str, tz: &str| {
        format!(
            r#"{{ social {{ metrics(asOf: "2024-12-01T00:00:00Z"{tz}) {{ t: contentEventTime(granularity: {g}) views }} }} }}"#
        )
    };
    let london = r#", timezone: "Europe/London""#;
    let new_york = r#", timezone: "America/New_York""#;
    let mut results = Vec::new();
    for db in TestDb::all().await {
        load_social(&db, events).await;
        let rows = |v: Value| data(&v, "social.metrics");
        let hours = rows(gql(&db, &q("HOUR", london)).await);
        assert_eq!(
            hours,
            json!([
                { "t": "2024-03-31T00:00:00", "views": 1 },
                { "t": "2024-03-31T02:00:00", "views": 1 },
                { "t": "2024-10-27T00:00:00", "views": 1 },
                { "t": "2024-10-27T01:00:00", "views": 2 }
            ]),
            "{}",
            db.backend
        );
        let days = rows(gql(&db, &q("DAY", london)).await);
        assert_eq!(
            days,
            json!([{ "t": "2024-03-31T00:00:00", "views": 2 }, { "t": "2024-10-27T00:00:00", "views": 3 }]),
            "{}",
            db.backend
        );
        let weeks = rows(gql(&db, &q("WEEK", london)).await);
        assert_eq!(
            weeks,
            json!([{ "t": "2024-03-25T00:00:00", "views": 2 }, { "t": "2024-10-21T00:00:00", "views": 3 }])
        );
        let utc_days = rows(gql(&db, &q("DAY", "")).await);
        assert_eq!(
            utc_days,
            json!([
                { "t": "2024-03-31T00:00:00Z", "views": 2 },
                { "t": "2024-10-26T00:00:00Z", "views": 1 },
                { "t": "2024-10-27T00:00:00Z", "views": 2 }
            ])
        );
        // a zone nobody asked for before is filled in on demand (SQLite)
        let ny = rows(gql(&db, &q("DAY", new_york)).await);
        assert_eq!(
            ny,
            json!([{ "t": "2024-03-30T00:00:00", "views": 2 }, { "t": "2024-10-26T00:00:00", "views": 3 }]),
            "{}",
            db.backend
        );
        let quarters = rows(gql(&db, &q("QUARTER", london)).await);
        assert_eq!(
            quarters,
            json!([{ "t": "2024-01-01T00:00:00", "views": 2 }, { "t": "2024-10-01T00:00:00", "views": 3 }]),
            "{}",
            db.backend
        );
        results.push((hours, days, weeks, ny));
        db.cleanup().await;
    }
    if let [a, b] = results.as_slice() {
        assert_eq!(a, b);
    }
}

// ------------------------------------------------------------------ web: conversion

#[tokio::test]
async fn web_product_conversion_and_session_duration() {
    for db in TestDb::all().await {
        load(&db, "web", WEB).await;
        let v = gql(&db, r#"{ web { metrics(asOf: "2024-02-02T00:00:00Z") { productName productConversionRate productConversions } } }"#).await;
        // SEMANTICS §6: sessions with a checkout whose order contains P / sessions with a page
        // view of P. p1 (Fern) is viewed in s1, s2, s4 and in the checked-out orders of s1 (o1)
        // and s4 (o3): 2/3. p2 (Cactus) is viewed in s2, s3 and in the checked-out orders of
        // s2 (o2) and s4 (o3): 2/2 — s4 bought it without viewing it, and counts.
        assert_eq!(
            data(&v, "web.metrics"),
            json!([
                { "productName": "Cactus", "productConversionRate": 1.0, "productConversions": 2 },
                { "productName": "Fern", "productConversionRate": 0.666667, "productConversions": 2 }
            ]),
            "{}",
            db.backend
        );
        let v = gql(&db, r#"{ web { metrics(asOf: "2024-02-02T00:00:00Z", conversionFilter: ADD_TO_CART) { productName productConversionRate } } }"#).await;
        assert_eq!(
            data(&v, "web.metrics"),
            json!([
                { "productName": "Cactus", "productConversionRate": 0.5 },
                { "productName": "Fern", "productConversionRate": 0.333333 }
            ])
        );
        let v = gql(&db, r#"{ web { metrics(asOf: "2024-02-02T00:00:00Z") { productConversionRate productConversions averageSessionDuration medianSessionDuration sessionsStarted } } }"#).await;
        assert_eq!(
            data(&v, "web.metrics"),
            json!([{ "productConversionRate": 0.75, "productConversions": 3, "averageSessionDuration": 525.0, "medianSessionDuration": 450.0, "sessionsStarted": 4 }]),
            "{}",
            db.backend
        );
        // as of 13:10, s4's checkout has not happened: one conversion of Fern out of three
        let v = gql(&db, r#"{ web { metrics(asOf: "2024-02-01T13:10:00Z") { productName productConversionRate } } }"#).await;
        assert_eq!(
            data(&v, "web.metrics"),
            json!([
                { "productName": "Cactus", "productConversionRate": 0.5 },
                { "productName": "Fern", "productConversionRate": 0.333333 }
            ])
        );
        // sessions cannot be grouped by a product: the message says why
        let v = gql(
            &db,
            r#"{ web { metrics { productName averageSessionDuration } } }"#,
        )
        .await;
        assert_eq!(code(&v), "UNREACHABLE_DIMENSION");
        let v = gql(&db, r#"{ web { metrics(asOf: "2024-02-01T13:10:00Z") { productConversions averageSessionDuration } } }"#).await;
        assert_eq!(
            data(&v, "web.metrics"),
            json!([{ "productConversions": 2, "averageSessionDuration": 225.0 }])
        );
        db.cleanup().await;
    }
}

/// A model of its own over the web tables: a conversion within a window, and the
/// conversion of a count (not distinct) base.
const WEB_WINDOW: &str = r#"
[model]
name = "funnel"
namespace = "web"
description = "Page views followed by a checkout of the viewed product."

[[table]]
name = "events"
key = ["event_id"]
as_of = { kind = "event", time = "created_at" }
description = "Events."

[[table]]
name = "checkouts"
sql = { postgres = "web/product_conversions.sql", sqlite = "web/product_conversions.sql" }
key = ["session_id", "product_id", "created_at", "kind"]
columns = { session_id = "string", product_id = "string", created_at = "time", kind = "string" }
description = "Product conversions."

[[dimension]]
name = "product"
table = "events"
expr = "product_id"
type = "string"
description = "Viewed product."

[[measure]]
name = "viewing_sessions"
table = "events"
agg = "count_distinct"
expr = "session_id"
filter = "event_type = 'page_view' AND product_id IS NOT NULL"
description = "Sessions viewing a product."

[[measure]]
name = "views"
table = "events"
agg = "count"
filter = "event_type = 'page_view' AND product_id IS NOT NULL"
description = "Product page views."

[[measure]]
name = "checkout_rows"
table = "checkouts"
agg = "count"
filter = "kind = 'CHECKOUT'"
description = "Checkouts of a product."

[[metric]]
name = "within6Minutes"
kind = "conversion"
base = "viewing_sessions"
conversion = "checkout_rows"
on = [["session_id", "session_id"], ["product_id", "product_id"]]
window = "6 minutes"
times = ["created_at", "created_at"]
unit = "percent"
description = "Viewing sessions that bought the product within 6 minutes of the view."

[[metric]]
name = "viewsConverted"
kind = "conversion"
base = "views"
conversion = "checkout_rows"
on = [["session_id", "session_id"], ["product_id", "product_id"]]
calculation = "conversions"
unit = "count"
description = "Page views whose session bought the product."
"#;

#[tokio::test]
async fn conversion_windows_and_counted_bases() {
    let models = tally::semantic::load_sources(&[ModelSource {
        folder: "funnel".into(),
        files: vec![SourceFile {
            path: "funnel.toml".into(),
            text: WEB_WINDOW.into(),
        }],
        sql_roots: vec![],
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    for db in TestDb::all().await {
        load(&db, "web", WEB).await;
        let schema = tally::graphql::build_with(Some(db.conn.clone()), models.clone()).unwrap();
        let v = serde_json::to_value(
            schema
                .execute(r#"{ funnel { metrics(asOf: "2024-03-01T00:00:00Z") { product within6Minutes viewsConverted } } }"#)
                .await,
        )
        .unwrap();
        // s1 viewed p1 10 minutes before its checkout, s4 20 minutes: too late; s2 viewed p2
        // 4 minutes before buying it
        assert_eq!(
            data(&v, "funnel.metrics"),
            json!([
                { "product": "p1", "within6Minutes": 0.0, "viewsConverted": 2 },
                { "product": "p2", "within6Minutes": 0.5, "viewsConverted": 1 }
            ]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ shop: CLV, inventory

const SHOP: &[(&str, &str)] = &[
    (
        "product_category",
        "product_category_id,category_name,parent_category_id\ncat-a,Apparel,\ncat-b,Books,\n",
    ),
    (
        "customer",
        "customer_id,first_name,last_name,email,phone,city,state,country,customer_age,updated_at,is_current\n\
         cu1,Ann,Lee,ann@example.com,,Lyon,,France,34,2024-01-01T00:00:00Z,false\n\
         cu1,Ann,Lee,ann@example.com,,Berlin,,Germany,35,2024-03-15T00:00:00Z,true\n\
         cu2,Raj,Patel,raj@example.com,,Austin,TX,USA,,2024-01-02T00:00:00Z,true\n",
    ),
    (
        "product",
        "product_id,product_title,product_brand,product_category_id,unit_price,sku,created_at,updated_at,is_current\n\
         p1,Shirt,Acme,cat-a,20.00,S1,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,true\n\
         p2,Novel,Pages,cat-b,10.00,S2,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,true\n",
    ),
    (
        "order_line",
        "line_item_id,order_id,order_time,customer_id,campaign_id,store_id,product_id,product_category_id,count,amt,discount,unit_price_at_purchase,tax_amt,shipping_amt,line_number\n\
         l1,o1,2024-03-01T10:00:00Z,cu1,,s1,p1,cat-a,2,40.00,5.00,20.00,4,1,1\n\
         l2,o1,2024-03-01T10:00:00Z,cu1,,s1,p2,cat-b,1,10.00,0,10.00,1,0,2\n\
         l3,o2,2024-03-05T12:00:00Z,cu2,,s1,p1,cat-a,1,20.00,0,20.00,2,0,1\n\
         l4,o3,2024-03-20T08:00:00Z,cu1,,s2,p2,cat-b,3,30.00,1.50,10.00,3,0,1\n\
         l5,o4,2024-04-02T09:00:00Z,cu2,,s2,p1,cat-a,1,20.00,2.00,20.00,2,0,1\n",
    ),
    (
        "inventory_snapshot",
        "snapshot_date,store_id,product_id,quantity_on_hand\n\
         2024-03-01,s1,p1,10\n\
         2024-03-10,s1,p1,7\n",
    ),
    (
        "inventory_event",
        "inventory_event_id,event_type,event_time,store_id,product_id,quantity_change,reference_order_id\n\
         i1,sale,2024-03-01T12:00:00Z,s1,p1,-1,\n\
         i2,restock,2024-03-10T23:00:00Z,s1,p1,5,\n\
         i3,return,2024-03-11T00:00:00Z,s1,p1,1,\n\
         i4,sale,2024-03-12T10:00:00Z,s1,p1,-2,\n\
         i5,restock,2024-03-05T00:00:00Z,s2,p2,3,\n",
    ),
];

#[tokio::test]
async fn shop_customer_lifetime_value_and_inventory_on_hand() {
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        // cu1: 35 + 10 + 28.50; cu2: 20 (and 18 more on 2 April)
        let v = gql(&db, r#"{ a: shop { metrics(asOf: "2024-03-31T00:00:00Z") { customerLifetimeValue medianCustomerLifetimeValue customersWithOrders } } b: shop { metrics(asOf: "2024-04-30T00:00:00Z") { customerCountry customerLifetimeValue } } c: shop { metrics(asOf: "2024-03-10T00:00:00Z") { customerCountry m: firstOrderTime(granularity: MONTH) customerLifetimeValue } } }"#).await;
        assert_eq!(
            data(&v, "a.metrics"),
            json!([{ "customerLifetimeValue": "46.75", "medianCustomerLifetimeValue": "46.75", "customersWithOrders": 2 }]),
            "{}",
            db.backend
        );
        assert_eq!(
            data(&v, "b.metrics"),
            json!([{ "customerCountry": "Germany", "customerLifetimeValue": "73.50" }, { "customerCountry": "USA", "customerLifetimeValue": "38.00" }])
        );
        assert_eq!(
            data(&v, "c.metrics"),
            json!([
                { "customerCountry": "France", "m": "2024-03-01T00:00:00Z", "customerLifetimeValue": "45.00" },
                { "customerCountry": "USA", "m": "2024-03-01T00:00:00Z", "customerLifetimeValue": "20.00" }
            ])
        );
        // s1/p1: the 1 March snapshot until 10 March has ended; then 7, plus the return at
        // exactly 11 March 00:00 (after the snapshot's day) and the sale of the 12th.
        // s2/p2 has no snapshot: 0 + its restock.
        let q = |t: &str| {
            format!(
                r#"{{ shop {{ metrics(asOf: "{t}") {{ stockStoreId productTitle inventoryOnHand }} }} }}"#
            )
        };
        let on_hand = |v: &Value| -> Vec<(String, i64)> {
            data(v, "shop.metrics")
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        format!(
                            "{}/{}",
                            r["stockStoreId"].as_str().unwrap(),
                            r["productTitle"].as_str().unwrap()
                        ),
                        r["inventoryOnHand"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        let s = |x: &str, n: i64| (x.to_owned(), n);
        assert_eq!(
            on_hand(&gql(&db, &q("2024-03-01T23:59:59Z")).await),
            [s("s1/Shirt", -1)]
        );
        assert_eq!(
            on_hand(&gql(&db, &q("2024-03-10T12:00:00Z")).await),
            [s("s1/Shirt", 10), s("s2/Novel", 3)]
        );
        assert_eq!(
            on_hand(&gql(&db, &q("2024-03-11T00:00:00Z")).await),
            [s("s1/Shirt", 8), s("s2/Novel", 3)]
        );
        assert_eq!(
            on_hand(&gql(&db, &q("2024-03-12T12:00:00Z")).await),
            [s("s1/Shirt", 6), s("s2/Novel", 3)]
        );
        let v = gql(&db, r#"{ shop { metrics(asOf: "2024-03-12T12:00:00Z") { productBrand inventoryOnHand } } }"#).await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([{ "productBrand": "Acme", "inventoryOnHand": 6 }, { "productBrand": "Pages", "inventoryOnHand": 3 }])
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ saas: stages

#[tokio::test]
async fn saas_stage_metrics_agree_with_the_lifecycle_fields() {
    let at = "2024-09-01T00:00:00Z";
    let month_ago = "2024-08-01T00:00:00Z";
    let mut results = Vec::new();
    for db in TestDb::all().await {
        let opts = tally::demo::DemoOptions {
            scale: 0.05,
            seed: 3,
        };
        tally::cli::load_demo(&db.conn, "saas", &opts, false)
            .await
            .unwrap();
        let v = gql(&db, &format!(r#"{{ saas {{ metrics(asOf: "{at}") {{ stage lifecycleUsers }} stageCounts(asOf: "{at}") {{ stage count }} transitions(from: "{month_ago}", to: "{at}") {{ links {{ source target count }} }} m: metrics(asOf: "{at}") {{ customersMonthAgo churnedCustomers customerChurnRate }} }} }}"#)).await;
        // users per stage = stageCounts
        let mut by_stage: Vec<(String, i64)> = data(&v, "saas.metrics")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["stage"].as_str().unwrap().to_owned(),
                    r["lifecycleUsers"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut counts: Vec<(String, i64)> = data(&v, "saas.stageCounts")
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["count"].as_i64().unwrap() > 0)
            .map(|r| {
                (
                    r["stage"].as_str().unwrap().to_owned(),
                    r["count"].as_i64().unwrap(),
                )
            })
            .collect();
        by_stage.sort();
        counts.sort();
        assert_eq!(by_stage, counts, "{}", db.backend);
        // customer churn over [T - 1 month, T) = transitions CUSTOMER → CHURNED / CUSTOMER at T0
        let links = data(&v, "saas.transitions.links");
        let from_customer: i64 = links
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["source"] == "from:CUSTOMER")
            .map(|l| l["count"].as_i64().unwrap())
            .sum();
        let churned: i64 = links
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["source"] == "from:CUSTOMER" && l["target"] == "to:CHURNED")
            .map(|l| l["count"].as_i64().unwrap())
            .sum();
        let m = &data(&v, "saas.m")[0];
        assert!(from_customer > 0 && churned > 0, "{links}");
        assert_eq!(m["customersMonthAgo"].as_i64().unwrap(), from_customer);
        assert_eq!(m["churnedCustomers"].as_i64().unwrap(), churned);
        let rate = m["customerChurnRate"].as_f64().unwrap();
        assert!((rate - churned as f64 / from_customer as f64).abs() < 1e-6);
        // the same over a week, three months and a year before T
        for (from, base, metric) in [
            (
                "2024-08-25T00:00:00Z",
                "customersWeekAgo",
                "customerChurnRateWeek",
            ),
            (
                "2024-06-01T00:00:00Z",
                "customersQuarterAgo",
                "customerChurnRateQuarter",
            ),
            (
                "2023-09-01T00:00:00Z",
                "customersYearAgo",
                "customerChurnRateYear",
            ),
        ] {
            let v = gql(&db, &format!(r#"{{ saas {{ transitions(from: "{from}", to: "{at}") {{ links {{ source target count }} }} metrics(asOf: "{at}") {{ {base} {metric} }} }} }}"#)).await;
            let links = data(&v, "saas.transitions.links");
            let count = |to: Option<&str>| -> i64 {
                links
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|l| l["source"] == "from:CUSTOMER")
                    .filter(|l| to.is_none_or(|t| l["target"] == t))
                    .map(|l| l["count"].as_i64().unwrap())
                    .sum()
            };
            let (customers, churned) = (count(None), count(Some("to:CHURNED")));
            // the demo's customers start in 2024: a year before T there are none
            assert_eq!(
                customers == 0,
                base == "customersYearAgo",
                "{base}: {customers}"
            );
            let m = &data(&v, "saas.metrics")[0];
            assert_eq!(
                m[base].as_i64().unwrap(),
                customers,
                "{metric} {}",
                db.backend
            );
            if customers == 0 {
                assert!(m[metric].is_null(), "{metric}: {m}");
            } else {
                let rate = m[metric].as_f64().unwrap();
                assert!(
                    (rate - churned as f64 / customers as f64).abs() < 1e-6,
                    "{metric}: {m}"
                );
            }
        }
        // cohort conversion rates: per signup month and plan, each a ratio of the flags
        let v = gql(&db, &format!(r#"{{ saas {{ metrics(asOf: "{at}") {{ c: signupCohort(granularity: MONTH) plan lifecycleUsers reachedProspect reachedCustomer reachedProspectAndCustomer leadToProspectRate prospectToCustomerRate leadToCustomerRate isComplete }} }} }}"#)).await;
        let rows = data(&v, "saas.metrics");
        assert!(rows.as_array().unwrap().len() > 3);
        for r in rows.as_array().unwrap() {
            let n = |k: &str| r[k].as_i64().unwrap() as f64;
            let close = |k: &str, x: f64| {
                assert!((r[k].as_f64().unwrap() - x).abs() < 1e-6, "{k} in {r}");
            };
            close(
                "leadToProspectRate",
                n("reachedProspect") / n("lifecycleUsers"),
            );
            close(
                "leadToCustomerRate",
                n("reachedCustomer") / n("lifecycleUsers"),
            );
            if n("reachedProspect") > 0.0 {
                close(
                    "prospectToCustomerRate",
                    n("reachedProspectAndCustomer") / n("reachedProspect"),
                );
            } else {
                assert!(r["prospectToCustomerRate"].is_null());
            }
        }
        results.push((data(&v, "saas.metrics"), m.clone()));
        db.cleanup().await;
    }
    if let [a, b] = results.as_slice() {
        assert_eq!(a, b, "saas differs between SQLite and PostgreSQL");
    }
}

// ------------------------------------------------------------------ request errors

#[tokio::test]
async fn new_kinds_check_their_time_dimension() {
    let db = TestDb::sqlite().await;
    let v = gql(&db, r#"{ social { metrics { churnRate } } }"#).await;
    assert_eq!(code(&v), "MISSING_TIME_DIMENSION");
    let v = gql(
        &db,
        r#"{ social { metrics { deviceType averageDailyActiveUsers } } }"#,
    )
    .await;
    assert_eq!(code(&v), "MISSING_TIME_DIMENSION");
    let v = gql(
        &db,
        r#"{ social { metrics { activityTime(granularity: DAY) stickiness } } }"#,
    )
    .await;
    assert_eq!(code(&v), "BAD_GRANULARITY");
    let v = gql(
        &db,
        r#"{ social { metrics { activityTime(granularity: MONTH) dauMau } } }"#,
    )
    .await;
    assert_eq!(code(&v), "BAD_GRANULARITY");
    let v = gql(
        &db,
        r#"{ social { metrics(timezone: "Nowhere/Else") { activeUsers } } }"#,
    )
    .await;
    assert_eq!(code(&v), "BAD_TIMEZONE");
    // isComplete without time dimensions is true
    let v = gql(&db, r#"{ social { metrics { activeUsers isComplete } } }"#).await;
    assert_eq!(
        data(&v, "social.metrics"),
        json!([{ "activeUsers": 0, "isComplete": true }])
    );
    db.cleanup().await;
}

// ------------------------------------------------------------------ model-file validation

const BAD_KINDS: &str = r#"[model]
name = "bad"
namespace = "web"
description = "Broken new kinds."

[bad]
days = 3

[other]
x = 1

[[table]]
name = "events"
key = ["event_id"]
as_of = { kind = "event", time = "created_at", shift = "+1 day" }
description = "Events."

[[table]]
name = "sq"
sql = { postgres = "web/sessions.sql", sqlite = "web/sessions.sql", params = ["nope * 2"] }
key = ["session_id"]
columns = { session_id = "string", started_at = "time" }
description = "Sessions."

[[dimension]]
name = "isComplete"
table = "events"
expr = "event_type"
type = "string"
description = "Reserved."

[[dimension]]
name = "eventTime"
table = "events"
expr = "created_at"
type = "time"
description = "Time."

[[measure]]
name = "sessions"
table = "events"
agg = "count_distinct"
expr = "session_id"
description = "Sessions."

[[measure]]
name = "total"
table = "events"
agg = "sum"
expr = "1"
description = "A sum."

[[metric]]
name = "noOn"
kind = "conversion"
base = "sessions"
conversion = "sessions"
unit = "percent"
description = "No on."

[[metric]]
name = "windowNoTimes"
kind = "conversion"
base = "sessions"
conversion = "sessions"
on = [["session_id", "session_id"]]
window = "1 day"
unit = "percent"
description = "A window needs times."

[[metric]]
name = "badVariant"
kind = "conversion"
base = "sessions"
conversion = "sessions"
on = [["session_id", "session_id"]]
variants = [["ok", "event_type = 'checkout'"], ["NUM", "1 + 1"]]
unit = "percent"
description = "Variants."

[[metric]]
name = "retainSum"
kind = "retention"
measure = "total"
time_dimension = "eventTime"
retention = "churned"
unit = "count"
description = "Retention over a sum."

[[metric]]
name = "retainRateCount"
kind = "retention"
measure = "sessions"
time_dimension = "eventTime"
retention = "churned"
calculation = "rate"
unit = "count"
description = "A rate with a count unit."

[[metric]]
name = "avgPerMonth"
kind = "period_average"
measure = "sessions"
time_dimension = "eventTime"
per = "month"
unit = "number"
description = "Per month is not offered."
"#;

#[test]
fn bad_new_kinds_are_reported_with_their_lines() {
    let err = tally::semantic::load_sources(&[ModelSource {
        folder: "bad".into(),
        files: vec![SourceFile {
            path: "bad.toml".into(),
            text: BAD_KINDS.into(),
        }],
        sql_roots: vec![],
    }])
    .unwrap_err();
    let text = err.to_string();
    let line_of = |needle: &str| BAD_KINDS.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (line, msg) in [
        (line_of("[other]"), "unknown section [other]"),
        (line_of("shift = \"+1 day\""), "shift \"+1 day\""),
        (line_of("params = [\"nope"), "unknown setting \"nope\""),
        (
            line_of("name = \"isComplete\""),
            "is a field of every metrics row",
        ),
        (line_of("name = \"noOn\"") - 1, "needs `on"),
        (line_of("name = \"windowNoTimes\"") - 1, "needs `times"),
        (line_of("variants = ["), "\"ok\" is not SHOUTY_SNAKE"),
        (line_of("variants = ["), "not a condition"),
        (
            line_of("name = \"retainSum\"") - 1,
            "retention needs a count_distinct measure",
        ),
        (
            line_of("name = \"retainRateCount\"") - 1,
            "a retention rate has the unit percent or ratio",
        ),
        (line_of("per = \"month\""), "per \"month\" is hour or day"),
    ] {
        assert!(
            err.problems
                .iter()
                .any(|p| p.line == line && p.message.contains(msg)),
            "expected {msg:?} at line {line} in:\n{text}"
        );
    }
    // a SQL file reading a parameter its table does not declare
    let src = r#"[model]
name = "p"
namespace = "saas"
description = "Params."

[[table]]
name = "stages"
sql = { postgres = "sql/saas/user_stages.sql", sqlite = "sql/saas/user_stages.sqlite.sql" }
key = ["user_id"]
columns = { user_id = "string" }
description = "Stages without their grace parameter."
"#;
    let err = tally::semantic::load_sources(&[ModelSource {
        folder: "p".into(),
        files: vec![SourceFile {
            path: "p.toml".into(),
            text: src.into(),
        }],
        sql_roots: vec![],
    }])
    .unwrap_err();
    assert!(
        err.to_string().contains("its only parameter must be $1"),
        "{err}"
    );
}

// ------------------------------------------------------------------ the live database

#[tokio::test]
async fn models_are_checked_against_the_live_database() {
    let models = tally::semantic::load_embedded().unwrap();
    for db in TestDb::all().await {
        // a freshly migrated database matches every shipped model, SQL tables included
        tally::engine::check_live(&models, &db.conn)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.backend));
        for sql in [
            r#"ALTER TABLE "shop"."campaign" ADD COLUMN "budget" TEXT"#,
            r#"ALTER TABLE "shop"."campaign" RENAME COLUMN "campaign_description" TO "notes""#,
        ] {
            use sea_orm::ConnectionTrait;
            db.conn.execute_unprepared(sql).await.unwrap();
        }
        let err = tally::engine::check_live(&models, &db.conn)
            .await
            .unwrap_err();
        let text = err.to_string();
        let shop = tally::semantic::EMBEDDED_MODELS
            .iter()
            .find(|(m, _, _)| *m == "shop")
            .unwrap()
            .2;
        let campaign_line = shop
            .lines()
            .position(|l| l.contains("name = \"campaign\""))
            .unwrap();
        // the table's [[table]] line
        let line = campaign_line;
        for msg in [
            "column \"campaign_description\" is in the model but not in the database's shop.campaign",
            "has column \"budget\", which the model does not know",
            "has column \"notes\", which the model does not know",
        ] {
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.file == "models/shop/model.toml"
                        && p.line == line
                        && p.message.contains(msg)),
                "{}: expected {msg:?} at models/shop/model.toml:{line} in:\n{text}",
                db.backend
            );
        }
        // a SQL table whose declared columns the query does not return
        let src = ModelSource {
            folder: "w".into(),
            files: vec![SourceFile {
                path: "w.toml".into(),
                text: "[model]\nname = \"w\"\nnamespace = \"web\"\ndescription = \"d\"\n\n[[table]]\nname = \"sessions\"\nsql = { postgres = \"web/sessions.sql\", sqlite = \"web/sessions.sql\" }\nkey = [\"session_id\"]\ncolumns = { session_id = \"string\", duration = \"float\" }\ndescription = \"Sessions.\"\n".into(),
            }],
            sql_roots: vec![],
        };
        let m = tally::semantic::load_sources(&[src]).unwrap();
        let err = tally::engine::check_live(&m, &db.conn).await.unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(
            (err.problems[0].file.as_str(), err.problems[0].line),
            ("w.toml", 6)
        );
        assert!(
            err.problems[0].message.contains("sql table \"sessions\""),
            "{err}"
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ response shape

#[tokio::test]
async fn rows_follow_the_selection_aliases_fragments_and_directives() {
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        let v = gql(
            &db,
            r#"{ shop { metrics(asOf: "2024-03-31T00:00:00Z") { __typename ...F n: netSales o: orders @skip(if: true) ... on ShopMetricsRow { categoryName @include(if: true) } week: orderTime(granularity: MONTH) netSales } } }
               fragment F on ShopMetricsRow { categoryName isComplete }"#,
        )
        .await;
        assert_eq!(
            data(&v, "shop.metrics"),
            json!([
                // March has not ended on the 31st
                { "__typename": "ShopMetricsRow", "categoryName": "Apparel", "isComplete": false, "n": "55.00", "week": "2024-03-01T00:00:00Z", "netSales": "55.00" },
                { "__typename": "ShopMetricsRow", "categoryName": "Books", "isComplete": false, "n": "38.50", "week": "2024-03-01T00:00:00Z", "netSales": "38.50" }
            ]),
            "{}",
            db.backend
        );
        // key order is the selection's
        let keys: Vec<String> = data(&v, "shop.metrics")[0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "__typename",
                "categoryName",
                "isComplete",
                "n",
                "week",
                "netSales"
            ]
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------------------------ NULL groups across nodes

/// Two measure tables grouped by dimensions of a table both reach, whose values are NULL for
/// one product: the NULL group of one table's aggregate must meet the NULL group of the
/// other's (one row, both values), as every other group does.
const NULL_KEYS: &str = r#"
[model]
name = "nullkeys"
namespace = "shop"
description = "Sales and inventory by brand and price, NULL for the Acme products."

[[table]]
name = "order_line"
key = ["line_item_id"]
as_of = { kind = "event", time = "order_time" }
description = "Order lines."

[[table]]
name = "inventory_event"
key = ["inventory_event_id"]
as_of = { kind = "event", time = "event_time" }
description = "Inventory movements."

[[table]]
name = "product"
key = ["product_id", "updated_at"]
as_of = { kind = "type2", key = ["product_id"], updated = "updated_at" }
description = "Products."

[[join]]
from = "order_line"
to = "product"
on = [["product_id", "product_id"]]
cardinality = "many_to_one"

[[join]]
from = "inventory_event"
to = "product"
on = [["product_id", "product_id"]]
cardinality = "many_to_one"

[[dimension]]
name = "brand"
table = "product"
expr = "nullif(product_brand, 'Acme')"
type = "string"
description = "Brand, NULL for Acme."

[[dimension]]
name = "price"
table = "product"
expr = "nullif(unit_price, 20)"
type = "number"
description = "Unit price, NULL for 20."

[[dimension]]
name = "inventoryTime"
table = "inventory_event"
expr = "event_time"
type = "time"
description = "When the inventory moved."

[[dimension]]
name = "neverTime"
table = "inventory_event"
expr = "nullif(event_time, event_time)"
type = "time"
description = "A time that is always NULL."

[[dimension]]
name = "movedTime"
table = "inventory_event"
expr = "nullif(event_time, CASE WHEN quantity_change = 5 THEN event_time END)"
type = "time"
description = "When the inventory moved, NULL for the restocks of 5."

[[dimension]]
name = "productAdded"
table = "product"
expr = "nullif(created_at, CASE WHEN product_brand = 'Acme' THEN created_at END)"
type = "time"
description = "When the product was added, NULL for Acme."

[[time_axis]]
name = "day"
tables = { order_line = "order_time", inventory_event = "event_time" }
description = "When the line or the movement happened."

[[measure]]
name = "net_sales"
table = "order_line"
agg = "sum"
expr = "amt - discount"
description = "Net sales."

[[measure]]
name = "inventory_change"
table = "inventory_event"
agg = "sum"
expr = "quantity_change"
description = "Inventory change."

[[measure]]
name = "stores_moving"
table = "inventory_event"
agg = "count_distinct"
expr = "store_id"
description = "Stores with a movement."

[[metric]]
name = "netSales"
measure = "net_sales"
unit = "currency"
description = "Net sales."

[[metric]]
name = "inventoryChange"
measure = "inventory_change"
unit = "count"
description = "Inventory change."

[[metric]]
name = "storesActive"
kind = "retention"
measure = "stores_moving"
time_dimension = "movedTime"
retention = "active"
unit = "count"
description = "Stores with a movement in the period."

[[metric]]
name = "storesChurned"
kind = "retention"
measure = "stores_moving"
time_dimension = "movedTime"
retention = "churned"
unit = "count"
description = "Stores with a movement in the period and none in the next."

[[metric]]
name = "storesRetained"
kind = "retention"
measure = "stores_moving"
time_dimension = "movedTime"
retention = "retained"
unit = "count"
description = "Stores with a movement in the period and in the next."

[[metric]]
name = "storesResurrected"
kind = "retention"
measure = "stores_moving"
time_dimension = "movedTime"
retention = "resurrected"
unit = "count"
description = "Stores with a movement in the period, none in the previous one, one earlier."

[[metric]]
name = "storesNew"
kind = "retention"
measure = "stores_moving"
time_dimension = "movedTime"
retention = "new"
unit = "count"
description = "Stores with a first movement in the period."

[[metric]]
name = "storesMovingTrailing2Days"
kind = "cumulative"
measure = "stores_moving"
time_dimension = "inventoryTime"
window = "2 days"
unit = "count"
description = "Stores with a movement in the 2 days ending with each bucket."
"#;

#[tokio::test]
async fn null_groups_meet_across_joined_nodes() {
    let models = tally::semantic::load_sources(&[ModelSource {
        folder: "nullkeys".into(),
        files: vec![SourceFile {
            path: "nullkeys.toml".into(),
            text: NULL_KEYS.into(),
        }],
        sql_roots: vec![],
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        let schema = tally::graphql::build_with(Some(db.conn.clone()), models.clone()).unwrap();
        let run = |q: &'static str| {
            let schema = schema.clone();
            async move { serde_json::to_value(schema.execute(q).await).unwrap() }
        };
        // p1 (Acme, 20): lines 35 + 20, inventory -1 + 5 + 1; p2 (Pages, 10): line 10, +3
        let v = run(r#"{ nullkeys { metrics(asOf: "2024-03-11T12:00:00Z") { brand netSales inventoryChange } } }"#).await;
        assert_eq!(
            data(&v, "nullkeys.metrics"),
            json!([
                { "brand": "Pages", "netSales": "10.00", "inventoryChange": 3 },
                { "brand": null, "netSales": "55.00", "inventoryChange": 5 }
            ]),
            "{}",
            db.backend
        );
        let v = run(r#"{ nullkeys { metrics(asOf: "2024-03-11T12:00:00Z") { brand price netSales inventoryChange } } }"#).await;
        assert_eq!(
            data(&v, "nullkeys.metrics"),
            json!([
                { "brand": "Pages", "price": 10.0, "netSales": "10.00", "inventoryChange": 3 },
                { "brand": null, "price": null, "netSales": "55.00", "inventoryChange": 5 }
            ]),
            "{}",
            db.backend
        );
        // an aggregate and a distinct window partitioned by a NULL brand: s1 moves p1 on
        // Mar 1, 10 (23:00) and 11; s2 moves p2 on Mar 5
        let v = run(r#"{ nullkeys { metrics(asOf: "2024-03-11T12:00:00Z") { brand day: inventoryTime(granularity: DAY) inventoryChange storesMovingTrailing2Days } } }"#).await;
        assert_eq!(
            data(&v, "nullkeys.metrics"),
            json!([
                { "brand": "Pages", "day": "2024-03-05T00:00:00Z", "inventoryChange": 3, "storesMovingTrailing2Days": 1 },
                { "brand": null, "day": "2024-03-01T00:00:00Z", "inventoryChange": -1, "storesMovingTrailing2Days": 1 },
                { "brand": null, "day": "2024-03-10T00:00:00Z", "inventoryChange": 5, "storesMovingTrailing2Days": 1 },
                { "brand": null, "day": "2024-03-11T00:00:00Z", "inventoryChange": 1, "storesMovingTrailing2Days": 1 }
            ]),
            "{}",
            db.backend
        );
        // time buckets only (joined on the buckets on PostgreSQL): days of one table only,
        // and a NULL month (Acme) meeting a NULL month; lines l1 35 (p1), l2 10 (p2) on
        // Mar 1, l3 20 (p1) on Mar 5; movements p1 -1 Mar 1, +5 Mar 10, +1 Mar 11, p2 +3 Mar 5
        let v = run(r#"{ nullkeys { metrics(asOf: "2024-03-11T12:00:00Z") { d: day(granularity: DAY) added: productAdded(granularity: MONTH) netSales inventoryChange } } }"#).await;
        assert_eq!(
            data(&v, "nullkeys.metrics"),
            json!([
                { "d": "2024-03-01T00:00:00Z", "added": "2024-01-01T00:00:00Z", "netSales": "10.00", "inventoryChange": 0 },
                { "d": "2024-03-01T00:00:00Z", "added": null, "netSales": "35.00", "inventoryChange": -1 },
                { "d": "2024-03-05T00:00:00Z", "added": "2024-01-01T00:00:00Z", "netSales": "0.00", "inventoryChange": 3 },
                { "d": "2024-03-05T00:00:00Z", "added": null, "netSales": "20.00", "inventoryChange": 0 },
                { "d": "2024-03-10T00:00:00Z", "added": null, "netSales": "0.00", "inventoryChange": 5 },
                { "d": "2024-03-11T00:00:00Z", "added": null, "netSales": "0.00", "inventoryChange": 1 }
            ]),
            "{}",
            db.backend
        );
        // a NULL time is the NULL bucket at every granularity (SQLite's quarters included)
        for g in ["HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR"] {
            let q = format!(
                r#"{{ nullkeys {{ metrics(asOf: "2024-03-11T12:00:00Z") {{ q: neverTime(granularity: {g}) inventoryChange }} }} }}"#
            );
            let v = serde_json::to_value(schema.execute(q.as_str()).await).unwrap();
            assert_eq!(
                data(&v, "nullkeys.metrics"),
                json!([{ "q": null, "inventoryChange": 8 }]),
                "{g} on {}",
                db.backend
            );
        }
        db.cleanup().await;
    }
}

/// Retention along a time whose value is NULL for some rows: such a row is no activity (no
/// period of its own, no neighbour of the entity's periods), whichever counts a request
/// reads (each set of counts looks up only the neighbours it needs).
#[tokio::test]
async fn retention_leaves_out_rows_without_a_period() {
    let models = tally::semantic::load_sources(&[ModelSource {
        folder: "nullkeys".into(),
        files: vec![SourceFile {
            path: "nullkeys.toml".into(),
            text: NULL_KEYS.into(),
        }],
        sql_roots: vec![],
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    // s1 moves on Mar 1, 10 (the restock of 5: no time), 11 and 12; s2 on Mar 5
    let all = json!([
        { "d": "2024-03-01T00:00:00Z", "storesActive": 1, "storesChurned": 1, "storesRetained": 0, "storesResurrected": 0, "storesNew": 1 },
        { "d": "2024-03-05T00:00:00Z", "storesActive": 1, "storesChurned": 1, "storesRetained": 0, "storesResurrected": 0, "storesNew": 1 },
        { "d": "2024-03-11T00:00:00Z", "storesActive": 1, "storesChurned": 0, "storesRetained": 1, "storesResurrected": 1, "storesNew": 0 },
        { "d": "2024-03-12T00:00:00Z", "storesActive": 1, "storesChurned": 1, "storesRetained": 0, "storesResurrected": 0, "storesNew": 0 }
    ]);
    let metrics = [
        "storesActive",
        "storesChurned",
        "storesRetained",
        "storesResurrected",
        "storesNew",
    ];
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        let schema = tally::graphql::build_with(Some(db.conn.clone()), models.clone()).unwrap();
        let run = |fields: String| {
            let schema = schema.clone();
            async move {
                let q = format!(
                    r#"{{ nullkeys {{ metrics(asOf: "2024-04-30T00:00:00Z") {{ d: movedTime(granularity: DAY) {fields} }} }} }}"#
                );
                serde_json::to_value(schema.execute(q.as_str()).await).unwrap()
            }
        };
        let v = run(metrics.join(" ")).await;
        assert_eq!(data(&v, "nullkeys.metrics"), all, "{}", db.backend);
        // one count at a time: the same numbers
        for m in metrics {
            let v = run(m.to_owned()).await;
            let expected: Vec<Value> = all
                .as_array()
                .unwrap()
                .iter()
                .map(|r| json!({ "d": r["d"], m: r[m] }))
                .collect();
            assert_eq!(
                data(&v, "nullkeys.metrics"),
                Value::Array(expected),
                "{m} on {}",
                db.backend
            );
        }
        db.cleanup().await;
    }
}

// ------------------------------------------------- shop segments, taxes; social sign-ups

/// Behavioural segments of shop customers as of T (order count, spend, recency), taxes and
/// shipping, the customer and campaign id dimensions; social sign-ups and registered users
/// as of T from the type-2 `user` table. Expected values are worked out by hand from the
/// fixtures (comments give the arithmetic).
#[tokio::test]
async fn shop_segments_taxes_and_social_sign_ups() {
    const USERS: &str = "user_id,status,name,email,phone,created_at,updated_at,is_current,last_active_date,churned_date\n\
        u1,active,A,a@x.io,,2024-01-10T00:00:00Z,2024-01-10T00:00:00Z,true,,\n\
        u2,active,B,b@x.io,,2024-01-20T00:00:00Z,2024-01-20T00:00:00Z,false,,\n\
        u2,inactive,B,b@x.io,,2024-01-20T00:00:00Z,2024-03-01T00:00:00Z,true,,\n\
        u3,active,C,c@x.io,,2024-02-05T00:00:00Z,2024-02-05T00:00:00Z,true,,\n\
        u4,active,D,d@x.io,,2024-02-28T00:00:00Z,2024-03-02T00:00:00Z,true,,\n";
    for db in TestDb::all().await {
        load(&db, "shop", SHOP).await;
        load(&db, "social", &[("user", USERS)]).await;
        let v = gql(&db, r#"{
            late: shop { metrics(asOf: "2024-04-30T00:00:00Z") { recencyBand orderCountBand spendBand daysSinceLastOrder customersWithOrders customerNetSales } }
            early: shop { metrics(asOf: "2024-03-10T00:00:00Z") { recencyBand orderCountBand daysSinceLastOrder customersWithOrders } }
            stores: shop { metrics(asOf: "2024-04-30T00:00:00Z") { storeId taxes shipping netSales } }
            customers: shop { metrics(asOf: "2024-04-30T00:00:00Z") { customerId campaignId netSales orders } }
            before: social { metrics(asOf: "2024-03-01T00:00:00Z") { signUpTime(granularity: MONTH) signUps registeredUsers } }
            after: social { metrics(asOf: "2024-04-01T00:00:00Z") { signUpTime(granularity: MONTH) signUps registeredUsers } }
            status: social { metrics(asOf: "2024-04-01T00:00:00Z") { userStatus signUps } }
        }"#).await;
        // As of 30 April: cu1 ordered o1 (1 March) and o3 (20 March 08:00): 2 orders,
        // 35 + 10 + 28.50 = 73.50, 40 days and 16 hours before asOf; cu2 ordered o2 (5 March)
        // and o4 (2 April 09:00): 2 orders, 20 + 18 = 38, 27 days and 15 hours before.
        let late = data(&v, "late.metrics");
        let rows: Vec<(String, String, String, f64, i64, String)> = late
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["recencyBand"].as_str().unwrap().to_owned(),
                    r["orderCountBand"].as_str().unwrap().to_owned(),
                    r["spendBand"].as_str().unwrap().to_owned(),
                    r["daysSinceLastOrder"].as_f64().unwrap(),
                    r["customersWithOrders"].as_i64().unwrap(),
                    r["customerNetSales"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let row = |a: &str, b: &str, c: &str, d: f64, e: i64, f: &str| {
            (a.to_owned(), b.to_owned(), c.to_owned(), d, e, f.to_owned())
        };
        assert_eq!(
            rows,
            [
                row("0-30 days", "2-3 orders", "under 100", 27.0, 1, "38.00"),
                row("31-90 days", "2-3 orders", "under 100", 40.0, 1, "73.50")
            ],
            "{}",
            db.backend
        );
        // As of 10 March: cu2's only order o2 was 4 days 12 hours before, cu1's o1 8 days
        // 14 hours before; one order each.
        let early: Vec<(String, String, f64, i64)> = data(&v, "early.metrics")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["recencyBand"].as_str().unwrap().to_owned(),
                    r["orderCountBand"].as_str().unwrap().to_owned(),
                    r["daysSinceLastOrder"].as_f64().unwrap(),
                    r["customersWithOrders"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            early,
            [
                ("0-30 days".to_owned(), "1 order".to_owned(), 4.0, 1),
                ("0-30 days".to_owned(), "1 order".to_owned(), 8.0, 1)
            ],
            "{}",
            db.backend
        );
        // s1 sold l1, l2, l3: tax 4 + 1 + 2, shipping 1; s2 sold l4, l5: tax 3 + 2, shipping 0.
        assert_eq!(
            data(&v, "stores.metrics"),
            json!([
                { "storeId": "s1", "taxes": "7.00", "shipping": "1.00", "netSales": "65.00" },
                { "storeId": "s2", "taxes": "5.00", "shipping": "0.00", "netSales": "46.50" }
            ]),
            "{}",
            db.backend
        );
        assert_eq!(
            data(&v, "customers.metrics"),
            json!([
                { "customerId": "cu1", "campaignId": null, "netSales": "73.50", "orders": 2 },
                { "customerId": "cu2", "campaignId": null, "netSales": "38.00", "orders": 2 }
            ]),
            "{}",
            db.backend
        );
        // As of 1 March u4 is not known yet (its first version is from 2 March): two
        // sign-ups in January, one in February.
        assert_eq!(
            data(&v, "before.metrics"),
            json!([
                { "signUpTime": "2024-01-01T00:00:00Z", "signUps": 2, "registeredUsers": 2 },
                { "signUpTime": "2024-02-01T00:00:00Z", "signUps": 1, "registeredUsers": 3 }
            ]),
            "{}",
            db.backend
        );
        assert_eq!(
            data(&v, "after.metrics"),
            json!([
                { "signUpTime": "2024-01-01T00:00:00Z", "signUps": 2, "registeredUsers": 2 },
                { "signUpTime": "2024-02-01T00:00:00Z", "signUps": 2, "registeredUsers": 4 }
            ]),
            "{}",
            db.backend
        );
        // u2's version of 1 March is inactive; one sign-up counts once whatever its versions.
        assert_eq!(
            data(&v, "status.metrics"),
            json!([{ "userStatus": "active", "signUps": 3 }, { "userStatus": "inactive", "signUps": 1 }]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

// ------------------------------------------------- saas: collected amount, keyed rows

/// The collected amount of a period (SEMANTICS §2: amounts of invoices whose earliest
/// counting payment has its ds in the period, each paid invoice once) and the users, shops
/// and plans tables listed as of T by the keyed-row rule (the row of the latest partition
/// `ts <= T`). Expected values are worked out by hand from the fixture.
#[tokio::test]
async fn saas_collected_amount_and_keyed_rows() {
    const FILES: &[(&str, &str)] = &[
        (
            "users",
            "ts,user_id,creation_timestamp\n\
             2024-01-01 08:00:00,u1,2024-01-01T08:10:00Z\n\
             2024-01-02 09:00:00,u2,2024-01-02T09:30:00Z\n\
             2024-01-05 00:00:00,u1,2024-01-01T08:10:00Z\n",
        ),
        (
            "shops",
            "ts,shop_id,creation_timestamp,owner_user_id\n\
             2024-01-03 00:00:00,s1,2024-01-03T00:00:00Z,u1\n\
             2024-01-04 00:00:00,s2,2024-01-04T00:00:00Z,u2\n",
        ),
        (
            "plans",
            "ts,plan_id,invoice_amount\n\
             2024-01-01 00:00:00,basic,10.00\n\
             2024-02-01 00:00:00,basic,12.00\n\
             2024-01-01 00:00:00,pro,50.00\n",
        ),
        (
            "invoices",
            "ds,invoice_id,user_id,shop_id,invoice_timestamp,invoice_amount\n\
             2024-01-31,i1,u1,s1,2024-01-31T10:00:00Z,50.00\n\
             2024-02-01,i2,u1,s1,2024-02-01T00:00:00Z,30.00\n\
             2024-02-10,i3,u2,s2,2024-02-10T12:00:00Z,20.00\n\
             2024-03-05,i4,u2,s2,2024-03-05T00:00:00Z,99.00\n",
        ),
        (
            "payments",
            "ds,payment_id,invoice_id,user_id\n\
             2024-01-31,p1,i1,u1\n\
             2024-02-15,p2,i1,u1\n\
             2024-02-03,p3,i2,u1\n\
             2024-03-01,p4,i3,u2\n\
             2024-03-04,p5,i4,u2\n",
        ),
    ];
    let collected = |t: &str| {
        format!(
            r#"{{ saas {{ metrics(asOf: "{t}") {{ collectionDay(granularity: MONTH) collectedAmount collectedInvoices }} }} }}"#
        )
    };
    for db in TestDb::all().await {
        load(&db, "saas", FILES).await;
        // 5:00 on 31 January: p1 counts (from 00:00 of its ds) but i1 (10:00) does not yet.
        let v = gql(&db, &collected("2024-01-31T05:00:00Z")).await;
        assert_eq!(data(&v, "saas.metrics"), json!([]), "{}", db.backend);
        // End of February: i1 collected on 31 January (once, though paid twice), i2 on 3
        // February; i3's payment (ds 1 March) does not count yet.
        let v = gql(&db, &collected("2024-02-29T23:59:59Z")).await;
        assert_eq!(
            data(&v, "saas.metrics"),
            json!([
                { "collectionDay": "2024-01-01T00:00:00Z", "collectedAmount": "50.00", "collectedInvoices": 1 },
                { "collectionDay": "2024-02-01T00:00:00Z", "collectedAmount": "30.00", "collectedInvoices": 1 }
            ]),
            "{}",
            db.backend
        );
        // 4 March 12:00: i3 collected on 1 March; i4 (ds 5 March) does not count yet, so its
        // payment of 4 March collects nothing.
        let v = gql(&db, &collected("2024-03-04T12:00:00Z")).await;
        assert_eq!(
            data(&v, "saas.metrics")[2],
            json!({ "collectionDay": "2024-03-01T00:00:00Z", "collectedAmount": "20.00", "collectedInvoices": 1 }),
            "{}",
            db.backend
        );
        // 6 March: i4 counts, collected by its payment of 4 March: 20 + 99 in March.
        let v = gql(&db, &collected("2024-03-06T00:00:00Z")).await;
        assert_eq!(
            data(&v, "saas.metrics")[2],
            json!({ "collectionDay": "2024-03-01T00:00:00Z", "collectedAmount": "119.00", "collectedInvoices": 2 }),
            "{}",
            db.backend
        );
        let v = gql(
            &db,
            r#"{
            u1: saas { userRecords(asOf: "2024-01-01T12:00:00Z") { userId ts } }
            u2: saas { userRecords(asOf: "2024-01-06T00:00:00Z") { userId ts creationTimestamp } }
            s1: saas { shopRecords(asOf: "2024-01-02T00:00:00Z") { shopId } }
            s2: saas { shopRecords(asOf: "2024-01-04T00:00:00Z") { shopId ownerUserId } }
            p1: saas { planRecords(asOf: "2024-01-15T00:00:00Z") { planId invoiceAmount } }
            p2: saas { planRecords(asOf: "2024-02-01T00:00:00Z") { planId invoiceAmount } }
        }"#,
        )
        .await;
        assert_eq!(
            data(&v, "u1.userRecords"),
            json!([{ "userId": "u1", "ts": "2024-01-01 08:00:00" }]),
            "{}",
            db.backend
        );
        assert_eq!(
            data(&v, "u2.userRecords"),
            json!([
                { "userId": "u1", "ts": "2024-01-05 00:00:00", "creationTimestamp": "2024-01-01T08:10:00Z" },
                { "userId": "u2", "ts": "2024-01-02 09:00:00", "creationTimestamp": "2024-01-02T09:30:00Z" }
            ]),
            "{}",
            db.backend
        );
        assert_eq!(data(&v, "s1.shopRecords"), json!([]), "{}", db.backend);
        assert_eq!(
            data(&v, "s2.shopRecords"),
            json!([{ "shopId": "s1", "ownerUserId": "u1" }, { "shopId": "s2", "ownerUserId": "u2" }]),
            "{}",
            db.backend
        );
        // The partition of 1 February 00:00 counts at exactly that instant.
        assert_eq!(
            data(&v, "p1.planRecords"),
            json!([{ "planId": "basic", "invoiceAmount": "10.00" }, { "planId": "pro", "invoiceAmount": "50.00" }]),
            "{}",
            db.backend
        );
        assert_eq!(
            data(&v, "p2.planRecords"),
            json!([{ "planId": "basic", "invoiceAmount": "12.00" }, { "planId": "pro", "invoiceAmount": "50.00" }]),
            "{}",
            db.backend
        );
        db.cleanup().await;
    }
}

/// SQLite's period values (what retention and period averages group rows by, cheaper than
/// the keys) stand for exactly the buckets of the keys: for every text a time column may
/// hold (offsets, fractions, a space for the `T`, a day the month does not have, julian day
/// numbers, years before 0000, text that is no time at all, NULL), the key written from the
/// period value is the key `time_key` writes, and from the period value moved by a period
/// the key moved by `key_add` (for keys from year 0000 on: `key_add` cannot read earlier
/// ones).
#[tokio::test]
async fn sqlite_period_values_give_the_keys() {
    use sea_orm::ConnectionTrait;
    use tally::semantic::{Granularity, TimeStorage};
    use tally::sql::{Dialect, Sql, Sqlite};

    let db = TestDb::sqlite().await;
    let values: Vec<sea_orm::Value> = vec![
        "2024-03-31T23:59:59+00:00".into(),
        "2024-03-31T23:30:00.999Z".into(),
        "2024-03-31T22:30:00-02:00".into(),
        "2024-01-01T00:30:00+01:00".into(),
        "2024-02-29 12:00:00".into(),
        "2024-02-31T00:00:00Z".into(),
        "2023-12-31".into(),
        "0000-01-01T00:00:00+05:00".into(),
        "-0044-03-15T12:00:00Z".into(),
        "2460400.75".into(),
        sea_orm::Value::Double(Some(1_000.5)),
        sea_orm::Value::BigInt(Some(2_460_000)),
        "yesterday".into(),
        "2024-13-01T00:00:00Z".into(),
        sea_orm::Value::String(None),
    ];
    let grains = Granularity::ALL;
    let d = Sqlite;
    let mut checked = 0;
    let cases = values.len() * 3 * grains.len();
    for v in values {
        for st in [TimeStorage::Instant, TimeStorage::Local, TimeStorage::Date] {
            let z = st != TimeStorage::Local;
            for g in grains {
                let x = || {
                    let mut s = Sql::raw("");
                    s.value(v.clone());
                    s
                };
                let mut q = Sql::raw("SELECT ");
                q.append(d.time_key(x(), st, g, false));
                q.push(", ");
                q.append(d.period_key(d.period_value(x(), st, g, false), g, z));
                for n in [1, -1] {
                    q.push(", ");
                    q.append(d.key_add(d.time_key(x(), st, g, false), g, n, z));
                    q.push(", ");
                    let moved = d.period_add(d.period_value(x(), st, g, false), g, n, z);
                    q.append(d.period_key(moved, g, z));
                }
                let stmt = q.to_statement(&d, db.conn.get_database_backend()).unwrap();
                let row = db.conn.query_one_raw(stmt).await.unwrap().unwrap();
                let cells: Vec<Option<String>> = (0..6)
                    .map(|i| row.try_get_by_index::<Option<String>>(i).unwrap())
                    .collect();
                assert_eq!(cells[0], cells[1], "{v:?} {st:?} {g:?}: {cells:?}");
                // a key before year 0000 (`-001-…`, as strftime writes it) is text strftime
                // cannot read back: `key_add` gives NULL there, where the period moves
                if !cells[0].as_deref().is_some_and(|k| k.starts_with('-')) {
                    assert_eq!(cells[2], cells[3], "{v:?} {st:?} {g:?}: {cells:?}");
                    assert_eq!(cells[4], cells[5], "{v:?} {st:?} {g:?}: {cells:?}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, cases);
    db.cleanup().await;
}
