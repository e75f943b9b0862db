//! The saas lifecycle (SEMANTICS §1–2) on every backend under test: the `user_stages` SQL,
//! stage counts, the journey, transitions, the users drill-down through GraphQL (with the
//! number of SQL statements counted), asOf stability, and the grace setting.
//!
//! The fixture `tests/fixtures/saas/rules/` has one user per rule (see its README and the
//! user ids): a lead, a prospect, a repeat customer, a customer paying once (the same
//! payment_id in two partitions), an account deleted before any shop, all shops deleted,
//! one of two shops deleted, an invoice delinquent from exactly invoice_timestamp + 30 days,
//! a resurrected customer, late-arriving events, an account deleted with a shop and an
//! overdue invoice, a paid customer who deleted the shop, a later signup, a late-arriving
//! invoice, a paid customer with an overdue invoice, and a user known only to the users
//! dimension. Plan `plan_starter` costs 9.00 until the partition 2024-05-01 00:00:00 and
//! 12.00 from it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use common::TestDb;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tally::demo::DemoOptions;
use tally::engine::Session;
use tally::load::source::TableSource;
use tally::saas::{self, ChurnReason, Cohort, Flow, SaasConfig, Stage, UserFilter, UserStage};

/// An instant from RFC 3339.
fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The main instant of the fixture's expectations.
const T_MAIN: &str = "2024-06-01T00:00:00Z";

/// The fixture's CSV files.
fn rules_sources() -> Vec<TableSource> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saas/rules");
    tally::load::csv_sources("saas", &dir).unwrap()
}

/// Loads sources into `db` (all or nothing).
async fn load(db: &DatabaseConnection, sources: Vec<TableSource>) {
    tally::load::load(db, "saas", sources, &tally::load::LoadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading saas: {e:?}"));
}

/// Only the rows of `sources` known at `cut`: `ts` (hourly partitions) and `ds` (daily) not
/// after it.
fn known_at(sources: Vec<TableSource>, cut: DateTime<Utc>) -> Vec<TableSource> {
    let ts_cut = cut.format("%Y-%m-%d %H:%M:%S").to_string();
    let ds_cut = cut.format("%Y-%m-%d").to_string();
    sources
        .into_iter()
        .map(|s| {
            let (col, limit) = if let Some(i) = s.columns.iter().position(|c| c == "ts") {
                (i, ts_cut.clone())
            } else {
                let i = s.columns.iter().position(|c| c == "ds").unwrap();
                (i, ds_cut.clone())
            };
            TableSource {
                rows: Box::new(s.rows.filter(move |r| match r {
                    Ok((_, rec)) => rec[col] <= limit,
                    Err(_) => true,
                })),
                ..s
            }
        })
        .collect()
}

/// Every user's stage and churn reason at `t` (default settings).
async fn stages(
    db: &DatabaseConnection,
    t: &str,
) -> BTreeMap<String, (Stage, Option<ChurnReason>)> {
    saas::user_stages(&Session::new(db), at(t), &SaasConfig::default())
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.user_id, (u.stage, u.churn_reason)))
        .collect()
}

/// A user's expected stage and churn reason (`None`: the user does not exist yet).
type Expected = Option<(Stage, Option<ChurnReason>)>;

/// The rules: (instant, user, expected).
fn rule_expectations() -> Vec<(&'static str, &'static str, Expected)> {
    use ChurnReason as R;
    use Stage as S;
    let churned = |r| Some((S::Churned, Some(r)));
    vec![
        (T_MAIN, "u01_lead", Some((S::Lead, None))),
        (T_MAIN, "u02_prospect", Some((S::Prospect, None))),
        (T_MAIN, "u03_repeat", Some((S::Customer, None))),
        (T_MAIN, "u04_paid_once", Some((S::Customer, None))),
        (T_MAIN, "u05_deleted_no_shop", churned(R::AccountDeleted)),
        (T_MAIN, "u06_all_shops_deleted", churned(R::AllShopsDeleted)),
        (T_MAIN, "u07_one_shop_left", Some((S::Prospect, None))),
        (T_MAIN, "u08_delinquent", churned(R::Delinquent)),
        (T_MAIN, "u09_resurrected", Some((S::Customer, None))),
        (T_MAIN, "u10_late_events", Some((S::Prospect, None))),
        (T_MAIN, "u12_deleted_with_shop", churned(R::AccountDeleted)),
        (T_MAIN, "u13_paid_then_deleted", churned(R::AllShopsDeleted)),
        (T_MAIN, "u14_later", None),
        (T_MAIN, "u16_late_invoice", churned(R::Delinquent)),
        (T_MAIN, "u17_paid_then_unpaid", churned(R::Delinquent)),
        (T_MAIN, "u99_dimension_only", None),
        // A payment counts from 00:00 UTC of its ds (pay04: ds 2024-05-11).
        (
            "2024-05-10T23:59:59Z",
            "u04_paid_once",
            Some((S::Prospect, None)),
        ),
        (
            "2024-05-11T00:00:00Z",
            "u04_paid_once",
            Some((S::Customer, None)),
        ),
        // The grace boundary is inclusive: i08 of 2024-04-01T00:00:00Z + 30 days.
        (
            "2024-04-30T23:59:59Z",
            "u08_delinquent",
            Some((S::Prospect, None)),
        ),
        (
            "2024-04-30T23:59:59.999999Z",
            "u08_delinquent",
            Some((S::Prospect, None)),
        ),
        (
            "2024-05-01T00:00:00Z",
            "u08_delinquent",
            churned(R::Delinquent),
        ),
        (
            "2024-05-01T00:00:00.000001Z",
            "u08_delinquent",
            churned(R::Delinquent),
        ),
        // Resurrection: i09b (2024-02-16T12:00) overdue from 2024-03-17T12:00, paid ds 04-10.
        (
            "2024-03-17T11:59:59Z",
            "u09_resurrected",
            Some((S::Customer, None)),
        ),
        (
            "2024-03-17T12:00:00Z",
            "u09_resurrected",
            churned(R::Delinquent),
        ),
        (
            "2024-04-09T23:59:59Z",
            "u09_resurrected",
            churned(R::Delinquent),
        ),
        (
            "2024-04-10T00:00:00Z",
            "u09_resurrected",
            Some((S::Customer, None)),
        ),
        // Late-arriving events: the creation (event_time 02-01T10:00) arrives in ts
        // 2024-02-03 05:00:00, the shop creation (02-05T10:00) in ts 2024-02-07 00:00:00.
        ("2024-02-02T00:00:00Z", "u10_late_events", None),
        ("2024-02-03T04:59:59Z", "u10_late_events", None),
        (
            "2024-02-03T05:00:00Z",
            "u10_late_events",
            Some((S::Lead, None)),
        ),
        (
            "2024-02-06T23:59:59Z",
            "u10_late_events",
            Some((S::Lead, None)),
        ),
        (
            "2024-02-07T00:00:00Z",
            "u10_late_events",
            Some((S::Prospect, None)),
        ),
        // All shops deleted: the second deletion at 03-02T10:00.
        (
            "2024-03-01T12:00:00Z",
            "u06_all_shops_deleted",
            Some((S::Prospect, None)),
        ),
        (
            "2024-03-02T10:00:00Z",
            "u06_all_shops_deleted",
            churned(R::AllShopsDeleted),
        ),
        // Account deletion before any shop.
        (
            "2024-02-01T09:59:59Z",
            "u05_deleted_no_shop",
            Some((S::Lead, None)),
        ),
        (
            "2024-02-01T10:00:00Z",
            "u05_deleted_no_shop",
            churned(R::AccountDeleted),
        ),
        // Deleted with a shop: delinquent first (i12 02-01 + 30 days), then deleted.
        (
            "2024-03-02T00:00:00Z",
            "u12_deleted_with_shop",
            churned(R::Delinquent),
        ),
        (
            "2024-04-01T10:00:00Z",
            "u12_deleted_with_shop",
            churned(R::AccountDeleted),
        ),
        // A late invoice counts only from its ds (2024-05-15), then is overdue at once.
        (
            "2024-05-14T23:59:59Z",
            "u16_late_invoice",
            Some((S::Prospect, None)),
        ),
        (
            "2024-05-15T00:00:00Z",
            "u16_late_invoice",
            churned(R::Delinquent),
        ),
        // Paid, then deleted the only shop (02-10T10:00).
        (
            "2024-02-10T09:59:59Z",
            "u13_paid_then_deleted",
            Some((S::Customer, None)),
        ),
        (
            "2024-02-10T10:00:00Z",
            "u13_paid_then_deleted",
            churned(R::AllShopsDeleted),
        ),
    ]
}

#[tokio::test]
async fn stage_rules_on_the_fixture() {
    let mut per_backend = Vec::new();
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let mut seen = Vec::new();
        for (t, user, want) in rule_expectations() {
            let got = stages(&db.conn, t).await.get(user).copied();
            assert_eq!(got, want, "{} at {t}: {user}", db.backend);
            seen.push(got);
        }
        per_backend.push(seen);
        db.cleanup().await;
    }
    assert!(per_backend.windows(2).all(|w| w[0] == w[1]));
}

/// The `user_stages` rows at T_MAIN, as expected field by field for a few users.
#[tokio::test]
async fn user_stage_facts() {
    let mut per_backend: Vec<Vec<UserStage>> = Vec::new();
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let rows = saas::user_stages(&Session::new(&db.conn), at(T_MAIN), &SaasConfig::default())
            .await
            .unwrap();
        let ids: Vec<&str> = rows.iter().map(|u| u.user_id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "byte order of user_id");
        assert_eq!(rows.len(), 14, "{}", db.backend);
        let by: BTreeMap<&str, &UserStage> = rows.iter().map(|u| (u.user_id.as_str(), u)).collect();
        let u04 = by["u04_paid_once"];
        assert_eq!(
            u04.payment_count, 1,
            "one distinct payment_id in two partitions"
        );
        assert_eq!(u04.plan_id.as_deref(), Some("plan_starter"));
        assert_eq!(
            u04.plan_invoice_amount.as_deref(),
            Some("12.00"),
            "price of the 2024-05-01 partition"
        );
        assert_eq!(u04.email.as_deref(), Some("u04_paid_once@example.com"));
        assert_eq!(u04.signup_time, at("2024-01-13T10:00:00Z"));
        let u07 = by["u07_one_shop_left"];
        assert_eq!((u07.shops_created, u07.shops_live), (2, 1));
        assert_eq!(
            u07.plan_id.as_deref(),
            Some("plan_basic"),
            "plan of the live shop"
        );
        let u09 = by["u09_resurrected"];
        assert_eq!(
            (u09.payment_count, u09.delinquent, u09.reached_customer),
            (2, false, true)
        );
        let u12 = by["u12_deleted_with_shop"];
        assert!(u12.account_deleted && u12.delinquent && !u12.all_shops_deleted);
        assert_eq!(u12.churn_reason, Some(ChurnReason::AccountDeleted));
        let u10 = by["u10_late_events"];
        assert_eq!(
            u10.signup_time,
            at("2024-02-01T10:00:00Z"),
            "event_time, not ts"
        );
        assert!(by["u01_lead"].plan_id.is_none() && by["u01_lead"].plan_invoice_amount.is_none());
        // Before the price change the plan costs 9.00; before 01-20T11:00 u07's latest live
        // shop is s07a (plan_pro), deleted on 03-01.
        let early = saas::user_stages(
            &Session::new(&db.conn),
            at("2024-02-15T00:00:00Z"),
            &SaasConfig::default(),
        )
        .await
        .unwrap();
        let u04 = early.iter().find(|u| u.user_id == "u04_paid_once").unwrap();
        assert_eq!(u04.plan_invoice_amount.as_deref(), Some("9.00"));
        let u07 = early
            .iter()
            .find(|u| u.user_id == "u07_one_shop_left")
            .unwrap();
        assert_eq!(u07.plan_id.as_deref(), Some("plan_pro"));
        // A page (user_stages for the stage, user_details for the rest) equals the file.
        let (page, more) = saas::users_page(
            &Session::new(&db.conn),
            at(T_MAIN),
            &SaasConfig::default(),
            &UserFilter::default(),
            0,
            None,
        )
        .await
        .unwrap();
        assert!(!more);
        assert_eq!(page, rows, "{}: users_page vs user_stages", db.backend);
        per_backend.push(rows);
        db.cleanup().await;
    }
    assert!(per_backend.windows(2).all(|w| w[0] == w[1]));
}

/// Checks the journey's own invariants: every non-root node's count is its inflow, every
/// inner node's outflow is its count.
fn check_flow_balance(f: &Flow, what: &str) {
    for n in &f.nodes {
        if n.level > 0 {
            assert_eq!(f.inflow(&n.id), n.count, "{what}: inflow of {}", n.id);
        }
        let out = f.outflow(&n.id);
        let has_children = f.links.iter().any(|l| l.source == n.id);
        if has_children {
            assert_eq!(out, n.count, "{what}: outflow of {}", n.id);
        }
    }
}

/// Stage counts as a map.
fn count_map(counts: &[(Stage, i64)]) -> BTreeMap<&'static str, i64> {
    counts.iter().map(|(s, n)| (s.as_str(), *n)).collect()
}

/// The journey ↔ stage correspondences (exact when every paying or invoiced user has a
/// counting shop creation, as in the fixture).
fn check_journey_matches_stages(f: &Flow, counts: &BTreeMap<&str, i64>, what: &str) {
    let n = |id: &str| f.node_count(id);
    assert_eq!(
        n("SIGNED_UP"),
        counts.values().sum::<i64>(),
        "{what}: SIGNED_UP"
    );
    assert_eq!(n("NO_SHOP_YET"), counts["LEAD"], "{what}: LEAD");
    assert_eq!(
        n("AWAITING_PAYMENT"),
        counts["PROSPECT"],
        "{what}: PROSPECT"
    );
    assert_eq!(
        n("REPEAT") + n("PAID_ONCE"),
        counts["CUSTOMER"],
        "{what}: CUSTOMER"
    );
    assert_eq!(
        n("DELETED_ACCOUNT")
            + n("DELETED_SHOP")
            + n("DID_NOT_PAY")
            + n("PAID_THEN_DELETED_SHOP")
            + n("PAID_THEN_DID_NOT_PAY"),
        counts["CHURNED"],
        "{what}: CHURNED"
    );
}

#[tokio::test]
async fn stage_counts_journey_and_transitions_on_the_fixture() {
    let mut per_backend = Vec::new();
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let cfg = SaasConfig::default();
        let all = Cohort::default();
        let counts = saas::stage_counts(&Session::new(&db.conn), at(T_MAIN), &cfg, &all)
            .await
            .unwrap();
        let counts = count_map(&counts);
        assert_eq!(
            counts,
            BTreeMap::from([
                ("LEAD", 1),
                ("PROSPECT", 3),
                ("CUSTOMER", 3),
                ("CHURNED", 7)
            ]),
            "{}",
            db.backend
        );
        let journey = saas::journey(&Session::new(&db.conn), at(T_MAIN), &cfg, &all)
            .await
            .unwrap();
        let got: BTreeMap<&str, i64> = journey
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.count))
            .collect();
        assert_eq!(
            got,
            BTreeMap::from([
                ("SIGNED_UP", 14),
                ("CREATED_SHOP", 12),
                ("DELETED_ACCOUNT", 1),
                ("NO_SHOP_YET", 1),
                ("PAID_INVOICE", 5),
                ("DELETED_SHOP", 2),
                ("DID_NOT_PAY", 2),
                ("AWAITING_PAYMENT", 3),
                ("REPEAT", 2),
                ("PAID_THEN_DELETED_SHOP", 1),
                ("PAID_THEN_DID_NOT_PAY", 1),
                ("PAID_ONCE", 1),
            ]),
            "{}",
            db.backend
        );
        assert_eq!(journey.links.len(), 11);
        check_flow_balance(&journey, "fixture journey");
        check_journey_matches_stages(&journey, &counts, "fixture");

        // A cohort: signed up in [2024-01-15, 2024-01-21) — u06, u07, u08, u09, u12.
        let cohort = Cohort {
            from: Some(at("2024-01-15T00:00:00Z")),
            to: Some(at("2024-01-21T00:00:00Z")),
        };
        let c = count_map(
            &saas::stage_counts(&Session::new(&db.conn), at(T_MAIN), &cfg, &cohort)
                .await
                .unwrap(),
        );
        assert_eq!(
            c,
            BTreeMap::from([
                ("LEAD", 0),
                ("PROSPECT", 1),
                ("CUSTOMER", 1),
                ("CHURNED", 3)
            ])
        );
        let j = saas::journey(&Session::new(&db.conn), at(T_MAIN), &cfg, &cohort)
            .await
            .unwrap();
        check_flow_balance(&j, "cohort journey");
        check_journey_matches_stages(&j, &c, "cohort");
        // The cohort of February grows as u10's late creation arrives.
        let feb = Cohort {
            from: Some(at("2024-02-01T00:00:00Z")),
            to: Some(at("2024-03-01T00:00:00Z")),
        };
        let before = saas::journey(
            &Session::new(&db.conn),
            at("2024-02-03T04:00:00Z"),
            &cfg,
            &feb,
        )
        .await
        .unwrap();
        let after = saas::journey(
            &Session::new(&db.conn),
            at("2024-02-03T05:00:00Z"),
            &cfg,
            &feb,
        )
        .await
        .unwrap();
        assert_eq!(
            (
                before.node_count("SIGNED_UP"),
                after.node_count("SIGNED_UP")
            ),
            (0, 1)
        );

        // Transitions from 2024-02-02 to T_MAIN.
        let t = saas::transitions(
            &Session::new(&db.conn),
            at("2024-02-02T00:00:00Z"),
            at(T_MAIN),
            &cfg,
            &all,
        )
        .await
        .unwrap();
        let links: BTreeMap<(String, String), i64> = t
            .links
            .iter()
            .filter(|l| l.count > 0)
            .map(|l| ((l.source.clone(), l.target.clone()), l.count))
            .collect();
        let want: BTreeMap<(String, String), i64> = [
            ("LEAD", "LEAD", 1),
            ("PROSPECT", "PROSPECT", 2),
            ("PROSPECT", "CUSTOMER", 1),
            ("PROSPECT", "CHURNED", 4),
            ("CUSTOMER", "CUSTOMER", 2),
            ("CUSTOMER", "CHURNED", 2),
            ("CHURNED", "CHURNED", 1),
            ("NOT_SIGNED_UP", "PROSPECT", 1),
        ]
        .into_iter()
        .map(|(a, b, n)| ((format!("from:{a}"), format!("to:{b}")), n))
        .collect();
        assert_eq!(links, want, "{}", db.backend);
        assert_eq!(t.links.len(), 20);
        check_flow_balance(&t, "transitions");
        for s in Stage::ALL {
            assert_eq!(
                t.node_count(&format!("to:{}", s.as_str())),
                counts[s.as_str()]
            );
        }
        // Same instant on both sides: the identity.
        let same = saas::transitions(&Session::new(&db.conn), at(T_MAIN), at(T_MAIN), &cfg, &all)
            .await
            .unwrap();
        assert!(same.links.iter().all(|l| l.count == 0
            || l.source.trim_start_matches("from:") == l.target.trim_start_matches("to:")));
        assert!(
            saas::transitions(
                &Session::new(&db.conn),
                at(T_MAIN),
                at("2024-01-01T00:00:00Z"),
                &cfg,
                &all
            )
            .await
            .is_err()
        );
        per_backend.push((counts, journey, t));
        db.cleanup().await;
    }
    assert!(per_backend.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn grace_is_a_setting() {
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let ten = SaasConfig { grace_days: 10 };
        // i08 (2024-04-01T00:00) with 10 days of grace: delinquent from 04-11T00:00.
        let get = |rows: Vec<UserStage>| {
            rows.into_iter()
                .find(|u| u.user_id == "u08_delinquent")
                .map(|u| u.stage)
        };
        let session = Session::new(&db.conn);
        let s = |t| saas::user_stages(&session, at(t), &ten);
        assert_eq!(
            get(s("2024-04-10T23:59:59Z").await.unwrap()),
            Some(Stage::Prospect)
        );
        assert_eq!(
            get(s("2024-04-11T00:00:00Z").await.unwrap()),
            Some(Stage::Churned)
        );
        let zero = SaasConfig { grace_days: 0 };
        let rows = saas::user_stages(&Session::new(&db.conn), at("2024-04-01T00:00:00Z"), &zero)
            .await
            .unwrap();
        assert_eq!(get(rows), Some(Stage::Churned));
        // A schema built with the served models' setting answers with it.
        let models = tally::semantic::load_embedded().unwrap();
        let schema =
            tally::graphql::build_with_saas(Some(db.conn.clone()), models, Some(ten)).unwrap();
        let q = r#"{ saas { users(asOf: "2024-04-11T00:00:00Z", stage: CHURNED) {
            edges { node { userId } } } } }"#;
        let churned = run(&schema, q).await.to_string();
        assert!(
            churned.contains("u08_delinquent"),
            "{}: {churned}",
            db.backend
        );
        let q = q.replace("2024-04-11T00:00:00Z", "2024-04-10T23:59:59Z");
        let churned = run(&schema, &q).await.to_string();
        assert!(
            !churned.contains("u08_delinquent"),
            "{}: {churned}",
            db.backend
        );
        db.cleanup().await;
    }
    // The model's setting, parsed from a model file.
    assert_eq!(
        SaasConfig::from_toml("[model]\nname = \"saas\"\n\n[saas]\ngrace_days = 45\n").unwrap(),
        Some(SaasConfig { grace_days: 45 })
    );
    assert_eq!(SaasConfig::default().grace_days, 30);
}

/// A schema over `conn` whose SQL statements are counted.
fn counted_schema(conn: &DatabaseConnection) -> (async_graphql::dynamic::Schema, Arc<AtomicUsize>) {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut conn = conn.clone();
    let c = counter.clone();
    conn.set_metric_callback(move |info| {
        // the statements of the answer, not the engine's arming of each one (its time
        // budget: `tally::sql::interrupt`)
        if !tally::sql::interrupt::is_arming(&info.statement.sql) {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    (tally::graphql::build(Some(conn)).unwrap(), counter)
}

/// Runs a query and returns its data, failing on errors.
async fn run(schema: &async_graphql::dynamic::Schema, q: &str) -> Value {
    let res = schema.execute(q).await;
    assert!(res.errors.is_empty(), "{q}\n{:?}", res.errors);
    res.data.into_json().unwrap()
}

/// The error codes of a query's response.
async fn error_codes(schema: &async_graphql::dynamic::Schema, q: &str) -> Vec<String> {
    let res = schema.execute(q).await;
    res.errors
        .iter()
        .map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|v| v.to_string().trim_matches('"').to_owned())
                .unwrap_or_default()
        })
        .collect()
}

const USERS_QUERY: &str = r#"
  saas {
    users(asOf: "ASOF", limit: FIRST STAGE) {
      totalCount
      pageInfo { hasNextPage }
      edges { node { userId email signupTime stage churnReason paymentCount planId
        shops { shopId createdAt deleted plan { planId invoiceAmount }
          invoices { invoiceId invoiceAmount invoiceTimestamp ds delinquent payments { paymentId ds } } } } }
    }
  }"#;

fn users_query(as_of: &str, first: usize, stage: Option<&str>) -> String {
    format!(
        "{{{}}}",
        USERS_QUERY
            .replace("ASOF", as_of)
            .replace("FIRST", &first.to_string())
            .replace(
                "STAGE",
                &stage.map(|s| format!("stage: {s}")).unwrap_or_default()
            )
    )
}

#[tokio::test]
async fn users_drill_down_through_graphql() {
    let mut per_backend = Vec::new();
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let (schema, statements) = counted_schema(&db.conn);

        // Every user on one page: 9 statements (the stage history's status and the page, its
        // details, the status and the total, shops, plans, invoices, payments).
        statements.store(0, Ordering::SeqCst);
        let all = run(&schema, &users_query(T_MAIN, 100, None)).await;
        assert_eq!(statements.load(Ordering::SeqCst), 9, "{}", db.backend);
        let conn = &all["saas"]["users"];
        assert_eq!(conn["totalCount"], json!(14));
        assert_eq!(conn["pageInfo"]["hasNextPage"], json!(false));
        let edges = conn["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 14);
        let user = |id: &str| {
            edges
                .iter()
                .map(|e| &e["node"])
                .find(|n| n["userId"] == json!(id))
                .unwrap()
                .clone()
        };
        assert_eq!(
            user("u04_paid_once"),
            json!({
                "userId": "u04_paid_once", "email": "u04_paid_once@example.com",
                "signupTime": "2024-01-13T10:00:00Z", "stage": "CUSTOMER", "churnReason": null,
                "paymentCount": 1, "planId": "plan_starter",
                "shops": [{ "shopId": "s04", "createdAt": "2024-01-13T11:00:00Z", "deleted": false,
                  "plan": { "planId": "plan_starter", "invoiceAmount": "12.00" },
                  "invoices": [{ "invoiceId": "i04", "invoiceAmount": "9.00",
                    "invoiceTimestamp": "2024-05-10T00:00:00Z", "ds": "2024-05-10", "delinquent": false,
                    "payments": [{ "paymentId": "pay04", "ds": "2024-05-11" }] }] }]
            })
        );
        let u16 = user("u16_late_invoice");
        assert_eq!(u16["churnReason"], json!("DELINQUENT"));
        assert_eq!(u16["shops"][0]["invoices"][0]["delinquent"], json!(true));
        assert_eq!(u16["shops"][0]["invoices"][0]["ds"], json!("2024-05-15"));
        let u06 = user("u06_all_shops_deleted");
        let deleted: Vec<_> = u06["shops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["deleted"].clone())
            .collect();
        assert_eq!(deleted, vec![json!(true), json!(true)]);
        let u09 = user("u09_resurrected");
        let inv = u09["shops"][0]["invoices"].as_array().unwrap();
        assert_eq!(inv.len(), 2);
        assert!(inv.iter().all(|i| i["delinquent"] == json!(false)));
        assert!(user("u01_lead")["shops"].as_array().unwrap().is_empty());

        // Earlier: plan_starter at 9.00, u09's second invoice delinquent and unpaid.
        let early = run(&schema, &users_query("2024-04-01T00:00:00Z", 100, None)).await;
        let node = |v: &Value, id: &str| {
            v["saas"]["users"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone())
                .find(|n| n["userId"] == json!(id))
                .unwrap()
        };
        assert_eq!(
            node(&early, "u04_paid_once")["shops"][0]["plan"]["invoiceAmount"],
            json!("9.00")
        );
        let u09 = node(&early, "u09_resurrected");
        assert_eq!(u09["stage"], json!("CHURNED"));
        assert_eq!(u09["shops"][0]["invoices"][1]["delinquent"], json!(true));
        assert_eq!(u09["shops"][0]["invoices"][1]["payments"], json!([]));

        // Paging: 3 per page through everyone (limit and offset), no overlap, no gap;
        // each page costs at most the same 9 statements.
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let q = users_query(T_MAIN, 3, None)
                .replace("limit: 3", &format!("limit: 3, offset: {offset}"));
            statements.store(0, Ordering::SeqCst);
            let page = run(&schema, &q).await;
            assert!(statements.load(Ordering::SeqCst) <= 9);
            let c = &page["saas"]["users"];
            for e in c["edges"].as_array().unwrap() {
                seen.push(e["node"]["userId"].as_str().unwrap().to_owned());
            }
            if c["pageInfo"]["hasNextPage"] == json!(false) {
                break;
            }
            offset += 3;
        }
        let all_ids: Vec<String> = edges
            .iter()
            .map(|e| e["node"]["userId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(seen, all_ids);

        // totalCount per stage = stageCounts, and the nodes agree with the filter.
        let sc = run(
            &schema,
            &format!("{{ saas {{ stageCounts(asOf: \"{T_MAIN}\") {{ stage count }} }} }}"),
        )
        .await;
        for row in sc["saas"]["stageCounts"].as_array().unwrap() {
            let stage = row["stage"].as_str().unwrap();
            let page = run(&schema, &users_query(T_MAIN, 100, Some(stage))).await;
            let c = &page["saas"]["users"];
            assert_eq!(c["totalCount"], row["count"], "{stage}");
            let edges = c["edges"].as_array().unwrap();
            assert_eq!(edges.len() as i64, row["count"].as_i64().unwrap());
            assert!(edges.iter().all(|e| e["node"]["stage"] == json!(stage)));
        }

        // The journey and transitions through GraphQL, with the metrics field beside them.
        let j = run(
            &schema,
            &format!(
                "{{ saas {{ journey(asOf: \"{T_MAIN}\", cohort: {{ from: \"2024-01-01T00:00:00Z\", to: \"2024-02-01T00:00:00Z\" }}) {{ nodes {{ id label count level }} links {{ source target count }} }}
                   transitions(from: \"2024-02-02T00:00:00Z\", to: \"{T_MAIN}\") {{ nodes {{ id count }} links {{ source target count }} }} }} }}"
            ),
        )
        .await;
        let nodes = j["saas"]["journey"]["nodes"].as_array().unwrap();
        assert_eq!(
            nodes[0],
            json!({ "id": "SIGNED_UP", "label": "Signed up", "count": 13, "level": 0 })
        );
        assert_eq!(
            j["saas"]["transitions"]["nodes"][0],
            json!({ "id": "from:NOT_SIGNED_UP", "count": 1 })
        );

        // Errors: bad asOf, bad offset, bad limit, reversed transitions.
        let codes = error_codes(
            &schema,
            "{ saas { stageCounts(asOf: \"2024-13-01\") { count } } }",
        )
        .await;
        assert_eq!(codes, vec!["BAD_AS_OF"]);
        let codes = error_codes(&schema, "{ saas { users(offset: -1) { totalCount } } }").await;
        assert_eq!(codes, vec!["BAD_ARGUMENT"]);
        let codes = error_codes(&schema, "{ saas { users(limit: 0) { totalCount } } }").await;
        assert_eq!(codes, vec!["BAD_ARGUMENT"]);
        let codes = error_codes(&schema, "{ saas { transitions(from: \"2024-05-01T00:00:00Z\", to: \"2024-01-01T00:00:00Z\") { nodes { id } } } }").await;
        assert_eq!(codes, vec!["BAD_ARGUMENT"]);
        let codes = error_codes(&schema, "{ saas { transitions(from: \"yesterday\", to: \"2024-01-01T00:00:00Z\") { nodes { id } } } }").await;
        assert_eq!(codes, vec!["BAD_AS_OF"]);
        let codes = error_codes(
            &schema,
            "{ saas { journey(cohort: { from: \"2024-02-01\" }) { nodes { id } } } }",
        )
        .await;
        assert_eq!(codes, vec!["BAD_ARGUMENT"]);

        // A request may carry its own grace setting.
        let req = async_graphql::Request::new(
            "{ saas { stageCounts(asOf: \"2024-04-11T00:00:00Z\") { stage count } } }",
        )
        .data(SaasConfig { grace_days: 10 });
        let res = schema.execute(req).await;
        assert!(res.errors.is_empty(), "{:?}", res.errors);
        per_backend.push((all, early, j));
        db.cleanup().await;
    }
    assert!(per_backend.windows(2).all(|w| w[0] == w[1]));
}

/// The instants the demo checks run at (the demo calendar is 2024–2025).
const DEMO_INSTANTS: &[&str] = &[
    "2024-01-15T00:00:00Z",
    "2024-04-01T12:34:56Z",
    "2024-09-30T23:59:59.5Z",
    "2025-01-01T00:00:00Z",
    "2025-07-01T00:00:00Z",
    "2026-01-01T00:00:00Z",
];

/// The demo's saas sources at a small scale.
fn demo_sources(scale: f64) -> Vec<TableSource> {
    tally::demo::sources("saas", &DemoOptions { scale, seed: 7 }).unwrap()
}

#[tokio::test]
async fn journey_invariants_on_demo_data() {
    let mut per_backend = Vec::new();
    for db in TestDb::all().await {
        load(&db.conn, demo_sources(0.05)).await;
        let cfg = SaasConfig::default();
        let mut results = Vec::new();
        for t in DEMO_INSTANTS {
            let as_of = at(t);
            for cohort in [
                Cohort::default(),
                Cohort {
                    from: Some(at("2024-03-01T00:00:00Z")),
                    to: Some(at("2024-06-01T00:00:00Z")),
                },
            ] {
                let counts = saas::stage_counts(&Session::new(&db.conn), as_of, &cfg, &cohort)
                    .await
                    .unwrap();
                let counts_map = count_map(&counts);
                let journey = saas::journey(&Session::new(&db.conn), as_of, &cfg, &cohort)
                    .await
                    .unwrap();
                let what = format!("{} demo at {t}", db.backend);
                check_flow_balance(&journey, &what);
                // Users whose payment or invoice counts before their shop creation does (a
                // late user_shop_create) sit under NO_SHOP_YET with another stage; count
                // them from the per-user rows and check the correspondences up to them.
                let rows = saas::user_stages(&Session::new(&db.conn), as_of, &cfg)
                    .await
                    .unwrap();
                let in_cohort = |u: &&UserStage| {
                    cohort.from.is_none_or(|f| u.signup_time >= f)
                        && cohort.to.is_none_or(|x| u.signup_time < x)
                };
                let odd: BTreeMap<&str, i64> = rows
                    .iter()
                    .filter(in_cohort)
                    .filter(|u| !u.reached_prospect && !u.account_deleted && u.stage != Stage::Lead)
                    .fold(BTreeMap::new(), |mut m, u| {
                        *m.entry(u.stage.as_str()).or_default() += 1;
                        m
                    });
                let odd_n = |s: &str| odd.get(s).copied().unwrap_or(0);
                let n = |id: &str| journey.node_count(id);
                assert_eq!(n("SIGNED_UP"), counts_map.values().sum::<i64>(), "{what}");
                assert_eq!(
                    n("NO_SHOP_YET"),
                    counts_map["LEAD"] + odd.values().sum::<i64>(),
                    "{what}"
                );
                assert_eq!(n("AWAITING_PAYMENT"), counts_map["PROSPECT"], "{what}");
                assert_eq!(
                    n("REPEAT") + n("PAID_ONCE") + odd_n("CUSTOMER"),
                    counts_map["CUSTOMER"],
                    "{what}"
                );
                assert_eq!(
                    n("DELETED_ACCOUNT")
                        + n("DELETED_SHOP")
                        + n("DID_NOT_PAY")
                        + n("PAID_THEN_DELETED_SHOP")
                        + n("PAID_THEN_DID_NOT_PAY")
                        + odd_n("CHURNED"),
                    counts_map["CHURNED"],
                    "{what}"
                );
                // A page of everyone equals the whole file (user_details ≡ its steps).
                let (page, _) = saas::users_page(
                    &Session::new(&db.conn),
                    as_of,
                    &cfg,
                    &UserFilter::default(),
                    0,
                    None,
                )
                .await
                .unwrap();
                assert!(page == rows, "{what}: users_page vs user_stages");
                // Stage counts = the users rows per stage = users_total per stage.
                for (stage, count) in &counts {
                    let per_rows = rows
                        .iter()
                        .filter(in_cohort)
                        .filter(|u| u.stage == *stage)
                        .count() as i64;
                    assert_eq!(per_rows, *count, "{what}: {}", stage.as_str());
                    let filter = UserFilter {
                        stage: Some(*stage),
                        cohort,
                    };
                    let total = saas::users_total(&Session::new(&db.conn), as_of, &cfg, &filter)
                        .await
                        .unwrap();
                    assert_eq!(total, *count, "{what}: total {}", stage.as_str());
                }
                results.push((
                    counts,
                    journey,
                    odd.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Vec<_>>(),
                ));
            }
        }
        // The demo data has every stage and every journey leaf at the end of 2025.
        let last = &results[results.len() - 2];
        assert!(last.0.iter().all(|(_, n)| *n > 0), "{:?}", last.0);
        assert!(
            last.1.nodes.iter().all(|n| n.count > 0),
            "{:?}",
            last.1.nodes
        );
        per_backend.push(results);
        db.cleanup().await;
    }
    assert!(
        per_backend.windows(2).all(|w| w[0] == w[1]),
        "backends differ"
    );
}

#[tokio::test]
async fn answers_as_of_t_do_not_change_when_later_data_arrives() {
    for db in TestDb::all().await {
        let cfg = SaasConfig::default();
        let cut = at("2024-10-01T00:00:00Z");
        // Only what was known at the cut, then everything.
        load(&db.conn, known_at(demo_sources(0.05), cut)).await;
        load(&db.conn, known_at(rules_sources(), cut)).await;
        let instants = [
            "2024-03-01T00:00:00Z",
            "2024-06-15T08:00:00Z",
            "2024-10-01T00:00:00Z",
        ];
        let mut before = Vec::new();
        for t in instants {
            let t = at(t);
            before.push((
                saas::user_stages(&Session::new(&db.conn), t, &cfg)
                    .await
                    .unwrap(),
                saas::journey(&Session::new(&db.conn), t, &cfg, &Cohort::default())
                    .await
                    .unwrap(),
                saas::transitions(
                    &Session::new(&db.conn),
                    at("2024-02-01T00:00:00Z"),
                    t,
                    &cfg,
                    &Cohort::default(),
                )
                .await
                .unwrap(),
                tally::saas::drill::shops_of_users(
                    &Session::new(&db.conn),
                    t,
                    &["usr_0000001".to_owned(), "u07_one_shop_left".to_owned()],
                )
                .await
                .unwrap()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            ));
        }
        load(&db.conn, demo_sources(0.05)).await;
        load(&db.conn, rules_sources()).await;
        let later = saas::user_stages(&Session::new(&db.conn), at("2025-06-01T00:00:00Z"), &cfg)
            .await
            .unwrap();
        assert!(later.len() > before[2].0.len(), "the later data adds users");
        for (i, t) in instants.iter().enumerate() {
            let t = at(t);
            let after = (
                saas::user_stages(&Session::new(&db.conn), t, &cfg)
                    .await
                    .unwrap(),
                saas::journey(&Session::new(&db.conn), t, &cfg, &Cohort::default())
                    .await
                    .unwrap(),
                saas::transitions(
                    &Session::new(&db.conn),
                    at("2024-02-01T00:00:00Z"),
                    t,
                    &cfg,
                    &Cohort::default(),
                )
                .await
                .unwrap(),
                tally::saas::drill::shops_of_users(
                    &Session::new(&db.conn),
                    t,
                    &["usr_0000001".to_owned(), "u07_one_shop_left".to_owned()],
                )
                .await
                .unwrap()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            );
            assert!(
                after == before[i],
                "{} at {t}: the answer changed",
                db.backend
            );
        }
        db.cleanup().await;
    }
}

/// Every `valid_from` of the stage history (the instants where some user's stage or facts
/// change), in time order.
async fn history_boundaries(db: &DatabaseConnection) -> Vec<DateTime<Utc>> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT DISTINCT to_char(valid_from AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM \"saas\".\"tally_stage_history\""
        }
        _ => "SELECT DISTINCT valid_from FROM \"saas\".\"tally_stage_history\"",
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let mut out: Vec<DateTime<Utc>> = rows
        .iter()
        .map(|r| at(&r.try_get_by_index::<String>(0).unwrap()))
        .collect();
    out.sort();
    out
}

/// Checks that the stage history and `user_stages` give the same users, stages and facts at
/// every boundary of the history and one microsecond before it (at most `max` boundaries,
/// evenly spread), and that stage counts read through the history equal the direct ones.
async fn check_history_matches(db: &TestDb, cfg: &SaasConfig, max: usize) {
    use tally::saas::history::{StageSource, Unusable};
    let status = saas::history::status(&db.conn).await.unwrap().unwrap();
    assert!(status.fresh, "{}: the load rebuilt the history", db.backend);
    assert_eq!(status.grace_seconds, cfg.grace_seconds());
    let bounds = history_boundaries(&db.conn).await;
    assert!(
        bounds.len() > 10,
        "{}: {} boundaries",
        db.backend,
        bounds.len()
    );
    let step = bounds.len().div_ceil(max).max(1);
    let mut checked = 0;
    for b in bounds.iter().step_by(step) {
        for t in [*b - chrono::Duration::microseconds(1), *b] {
            let h = saas::core_stages_from(&Session::new(&db.conn), t, cfg, StageSource::History)
                .await
                .unwrap();
            let d = saas::core_stages_from(
                &Session::new(&db.conn),
                t,
                cfg,
                StageSource::Direct(Unusable::Stale),
            )
            .await
            .unwrap();
            assert_eq!(h, d, "{}: history vs user_stages at {t}", db.backend);
            checked += 1;
        }
    }
    assert!(checked >= 20, "{}: {checked} instants", db.backend);
}

#[tokio::test]
async fn stage_history_equals_user_stages_at_every_boundary() {
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        check_history_matches(&db, &SaasConfig::default(), usize::MAX).await;
        // Another grace period: readers with it compute directly until a rebuild for it.
        let cfg = SaasConfig { grace_days: 3 };
        let t = at(T_MAIN);
        let direct = saas::stage_counts(&Session::new(&db.conn), t, &cfg, &Cohort::default())
            .await
            .unwrap();
        saas::history::refresh(&db.conn, &cfg).await.unwrap();
        check_history_matches(&db, &cfg, usize::MAX).await;
        assert_eq!(
            saas::stage_counts(&Session::new(&db.conn), t, &cfg, &Cohort::default())
                .await
                .unwrap(),
            direct
        );
    }
}

#[tokio::test]
async fn stage_history_equals_user_stages_on_demo_data() {
    for db in TestDb::all().await {
        load(&db.conn, demo_sources(0.05)).await;
        check_history_matches(&db, &SaasConfig::default(), 40).await;
    }
}

#[tokio::test]
async fn writes_by_any_tool_make_the_history_stale() {
    use sea_orm::ConnectionTrait;
    use tally::saas::history::{StageSource, Unusable};
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let cfg = SaasConfig::default();
        let t = at("2030-01-01T00:00:00Z");
        let before = saas::stage_counts(&Session::new(&db.conn), t, &cfg, &Cohort::default())
            .await
            .unwrap();
        let status = saas::history::status(&db.conn).await.unwrap().unwrap();
        assert_eq!(status.source_for(&cfg), StageSource::History);
        // A new user, written by another tool straight into the table.
        db.conn
            .execute_unprepared(
                "INSERT INTO \"saas\".\"global_events\" (ts, event_id, event_time, event_type, metadata) \
                 VALUES ('2025-01-01 00:00:00', 'ev_outside_tally', '2025-01-01T00:00:00+00:00', \
                 'user_account_creation', '{\"user_id\": \"u_outside\", \"email\": \"o@example.com\"}')",
            )
            .await
            .unwrap();
        let status = saas::history::status(&db.conn).await.unwrap().unwrap();
        assert_eq!(
            status.source_for(&cfg),
            StageSource::Direct(Unusable::Stale),
            "{}",
            db.backend
        );
        let after = saas::stage_counts(&Session::new(&db.conn), t, &cfg, &Cohort::default())
            .await
            .unwrap();
        let leads = |c: &[(Stage, i64)]| c.iter().find(|(s, _)| *s == Stage::Lead).unwrap().1;
        assert_eq!(leads(&after), leads(&before) + 1, "{}", db.backend);
        // Rebuilt, the history answers the same.
        let report = saas::history::refresh(&db.conn, &cfg).await.unwrap();
        assert!(report.rows > 0);
        let status = saas::history::status(&db.conn).await.unwrap().unwrap();
        assert_eq!(status.source_for(&cfg), StageSource::History);
        assert_eq!(
            saas::stage_counts(&Session::new(&db.conn), t, &cfg, &Cohort::default())
                .await
                .unwrap(),
            after
        );
        // Deletes count as writes too.
        db.conn
            .execute_unprepared(
                "DELETE FROM \"saas\".\"global_events\" WHERE event_id = 'ev_outside_tally'",
            )
            .await
            .unwrap();
        let status = saas::history::status(&db.conn).await.unwrap().unwrap();
        assert!(!status.fresh, "{}", db.backend);
        assert_eq!(
            saas::stage_counts(&Session::new(&db.conn), t, &cfg, &Cohort::default())
                .await
                .unwrap(),
            before
        );
    }
}

#[tokio::test]
async fn the_background_refresher_rebuilds_a_stale_history() {
    use sea_orm::ConnectionTrait;
    use tally::saas::history::{Refresher, StageSource, Unusable};
    for db in TestDb::all().await {
        load(&db.conn, rules_sources()).await;
        let cfg = SaasConfig::default();
        db.conn
            .execute_unprepared("DELETE FROM \"saas\".\"payments\" WHERE payment_id = 'pay04'")
            .await
            .unwrap();
        let status = saas::history::status(&db.conn).await.unwrap().unwrap();
        assert_eq!(
            status.source_for(&cfg),
            StageSource::Direct(Unusable::Stale)
        );
        let direct = saas::stage_counts(
            &Session::new(&db.conn),
            at(T_MAIN),
            &cfg,
            &Cohort::default(),
        )
        .await
        .unwrap();
        let refresher = Refresher::new(db.conn.clone(), cfg);
        assert!(refresher.kick(), "{}: a refresh starts", db.backend);
        assert!(!refresher.kick(), "{}: only one at a time", db.backend);
        for _ in 0..600 {
            if !refresher.is_running() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!refresher.is_running(), "{}: the refresh ended", db.backend);
        let status = saas::history::status(&db.conn).await.unwrap().unwrap();
        assert_eq!(
            status.source_for(&cfg),
            StageSource::History,
            "{}",
            db.backend
        );
        assert!(status.built_at.is_some() && status.row_count > 0);
        assert_eq!(
            saas::stage_counts(
                &Session::new(&db.conn),
                at(T_MAIN),
                &cfg,
                &Cohort::default()
            )
            .await
            .unwrap(),
            direct,
            "{}",
            db.backend
        );
    }
}

/// Every row of the stage history as text, in (user_id, valid_from) order.
async fn history_rows(db: &DatabaseConnection) -> Vec<Vec<Option<String>>> {
    use sea_orm::{ConnectionTrait, Statement};
    let cols = [
        "user_id",
        "valid_from",
        "valid_to",
        "signup_time",
        "stage",
        "churn_reason",
        "account_deleted",
        "all_shops_deleted",
        "delinquent",
        "reached_prospect",
        "reached_customer",
        "repeat_payer",
    ];
    let select: Vec<String> = cols.iter().map(|c| format!("CAST({c} AS TEXT)")).collect();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT {} FROM \"saas\".\"tally_stage_history\" ORDER BY user_id, valid_from",
                select.join(", ")
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (0..cols.len())
                .map(|i| r.try_get_by_index::<Option<String>>(i).unwrap())
                .collect()
        })
        .collect()
}

/// In-memory CSV rows for one saas table.
fn rows_of(table: &str, columns: &[&str], rows: &[&[&str]]) -> TableSource {
    let records: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| Ok((i as u64 + 2, r.iter().map(|s| (*s).to_owned()).collect())))
        .collect();
    TableSource {
        table: table.to_owned(),
        origin: format!("{table}.csv"),
        columns: columns.iter().map(|s| (*s).to_owned()).collect(),
        rows: Box::new(records.into_iter()),
    }
}

/// Loads `sources` and returns what the load did to the stage history.
async fn load_reporting(
    db: &DatabaseConnection,
    sources: Vec<TableSource>,
) -> saas::history::RefreshReport {
    tally::load::load(db, "saas", sources, &tally::load::LoadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading saas: {e:?}"))
        .stage_history
        .expect("the load updated the stage history")
}

#[tokio::test]
async fn a_small_load_recomputes_only_the_users_it_touched() {
    for db in TestDb::all().await {
        let cfg = SaasConfig::default();
        // First load: no history yet, so a whole build.
        let first = load_reporting(&db.conn, demo_sources(0.05)).await;
        assert_eq!(first.scoped_users, None, "{}", db.backend);
        // The rules fixture: 15 new users (14 with an account), so only they are computed.
        let second = load_reporting(&db.conn, rules_sources()).await;
        assert_eq!(second.scoped_users, Some(15), "{}: {second}", db.backend);
        let incremental = history_rows(&db.conn).await;
        saas::history::refresh(&db.conn, &cfg).await.unwrap();
        assert_eq!(history_rows(&db.conn).await, incremental, "{}", db.backend);
        // Rows that change other users than the ones they name: a deletion of u02's shop
        // named for u01, a payment of u02's invoice by u03, a late invoice of u04.
        let before_third = history_rows(&db.conn).await;
        let third = load_reporting(
            &db.conn,
            vec![
                rows_of(
                    "global_events",
                    &["ts", "event_id", "event_time", "event_type", "metadata"],
                    &[&[
                        "2024-07-02 00:00:00",
                        "e_inc_1",
                        "2024-07-01T09:00:00Z",
                        "user_shop_delete",
                        r#"{"user_id":"u01_lead","shop_id":"s02"}"#,
                    ]],
                ),
                rows_of(
                    "invoices",
                    &[
                        "ds",
                        "invoice_id",
                        "user_id",
                        "shop_id",
                        "invoice_timestamp",
                        "invoice_amount",
                    ],
                    &[&[
                        "2024-06-20",
                        "i_inc_1",
                        "u04_paid_once",
                        "s04",
                        "2024-06-10T00:00:00Z",
                        "9.00",
                    ]],
                ),
                rows_of(
                    "payments",
                    &["ds", "payment_id", "invoice_id", "user_id"],
                    &[&["2024-06-25", "pay_inc_1", "i02", "u03_repeat"]],
                ),
            ],
        )
        .await;
        let scoped = third.scoped_users.expect("a scoped update");
        assert_eq!(scoped, 4, "{}: u01, u02, u03, u04: {third}", db.backend);
        let incremental = history_rows(&db.conn).await;
        assert_ne!(
            incremental, before_third,
            "{}: the load changed stages",
            db.backend
        );
        saas::history::refresh(&db.conn, &cfg).await.unwrap();
        assert_eq!(history_rows(&db.conn).await, incremental, "{}", db.backend);
        check_history_matches(&db, &cfg, 60).await;
    }
}

#[tokio::test]
async fn semantic_stage_metrics_are_the_same_from_the_history_and_from_the_tables() {
    use sea_orm::ConnectionTrait;
    for db in TestDb::all().await {
        load(&db.conn, demo_sources(0.05)).await;
        load(&db.conn, rules_sources()).await;
        let schema = tally::graphql::build(Some(db.conn.clone())).unwrap();
        let q = r#"{ saas {
            a: metrics(asOf: "2024-06-01T00:00:00Z") { stage churnReason plan lifecycleUsers }
            b: metrics(asOf: "2025-03-01T00:00:00Z") {
              c: signupCohort(granularity: MONTH) lifecycleUsers reachedProspect
              reachedCustomer leadToCustomerRate }
            c: metrics(asOf: "2025-03-01T00:00:00Z") {
              customersMonthAgo churnedCustomers customerChurnRate }
        } }"#;
        let fresh = run(&schema, q).await;
        assert!(
            fresh["saas"]["a"].as_array().unwrap().len() > 5,
            "{}: {fresh}",
            db.backend
        );
        // The same with the history unusable: the statements compute from the tables.
        db.conn
            .execute_unprepared("UPDATE \"saas\".\"tally_stage_history_status\" SET fresh = 0")
            .await
            .unwrap();
        let stale = run(&schema, q).await;
        assert_eq!(fresh, stale, "{}", db.backend);
    }
}

/// A rate and a count of the same conversion (customerChurnRate, churnedCustomers) read one
/// conversion node; another conversion (the weekly rate) keeps its own. Each value equals the
/// metric asked alone, also with the aggregate of the base table asked with them (counted in
/// one pass with the conversion on SQLite).
#[tokio::test]
async fn conversion_metrics_of_the_same_events_share_one_node() {
    for db in TestDb::all().await {
        let opts = DemoOptions {
            scale: 0.05,
            seed: 3,
        };
        tally::demo::load_demo(&db.conn, "saas", &opts, false)
            .await
            .unwrap();
        let engine = tally::engine::Engine::with_embedded_models(db.conn.clone()).unwrap();
        let at = DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ask = |metrics: &[&str]| {
            let mut spec = tally::query::QuerySpec::new("saas", at);
            for m in metrics {
                spec.fields.push(tally::query::Selected {
                    key: (*m).to_owned(),
                    item: tally::query::Item::Metric {
                        name: (*m).to_owned(),
                    },
                });
            }
            spec
        };
        let run = |spec: tally::query::QuerySpec| {
            let engine = &engine;
            async move {
                let session = engine.session();
                let t: tally::engine::Table<Value> = engine.run(&session, &spec).await.unwrap();
                let sql = session.explained()[0].sql.clone().unwrap();
                (t.rows[0].clone(), sql)
            }
        };
        let all = [
            "customerChurnRate",
            "churnedCustomers",
            "customerChurnRateWeek",
        ];
        let (row, sql) = run(ask(&all)).await;
        assert_eq!(
            sql.matches("\"conv_customerChurnRate\" AS").count(),
            1,
            "{sql}"
        );
        assert!(!sql.contains("conv_churnedCustomers"), "{sql}");
        assert!(sql.contains("\"conv_customerChurnRateWeek\" AS"), "{sql}");
        assert!(
            row[1].as_i64().unwrap() > 0,
            "{}: churned customers",
            db.backend
        );
        for (i, m) in all.iter().enumerate() {
            let (alone, _) = run(ask(&[m])).await;
            assert_eq!(alone[0], row[i], "{}: {m}", db.backend);
        }
        // with the aggregate of its base table in the request, SQLite counts the conversion
        // in that aggregate's pass (PostgreSQL in a pass of its own): the same numbers
        let with_base = ["customersMonthAgo", "customerChurnRate", "churnedCustomers"];
        let (row, sql) = run(ask(&with_base)).await;
        let folded = sql.contains("AS \"cb0\"") && !sql.contains("conv_customerChurnRate_rows");
        assert_eq!(folded, db.backend == "sqlite", "{}: {sql}", db.backend);
        for (i, m) in with_base.iter().enumerate() {
            let (alone, _) = run(ask(&[m])).await;
            assert_eq!(alone[0], row[i], "{}: {m} with its base", db.backend);
        }
        db.cleanup().await;
    }
}
