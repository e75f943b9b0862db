//! The gym lead-conversion models (SEMANTICS §1 and §3) on every backend under test: the SQL
//! files, the data-access wrapper, the GraphQL fields, and the time-zone offsets table.
//!
//! The fixture `tests/fixtures/gym/rules/` has one user per rule (see its user names):
//! daylight-saving transitions (Europe/London, America/New_York, Australia/Adelaide),
//! half-hour and 45-minute zones (Asia/Kolkata, Asia/Kathmandu), a purchase at another
//! branch, ties between and within types, a late purchase record, a purchase before the
//! user's created_at, a user created later, fractions of a second, and an upper-case id.

mod common;

use std::path::Path;

use chrono::{DateTime, Utc};
use common::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tally::engine::Session;
use tally::gym::{
    self, Condition, ConversionFilter, Direction, Filter, Model, OrderBy, Query, Row,
};

/// An instant from RFC 3339.
fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Loads the CSV files of `tests/fixtures/gym/<case>/` and fills the offsets table.
async fn load_case(db: &DatabaseConnection, case: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gym")
        .join(case);
    let sources = tally::load::csv_sources("gym", &dir).unwrap();
    tally::load::load(db, "gym", sources, &tally::load::LoadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading {case}: {e:?}"));
    tally::tz::refresh_offsets(db).await.unwrap();
}

/// Rows as plain optional strings.
fn plain(rows: &[Row]) -> Vec<Vec<Option<String>>> {
    rows.iter().map(|r| r.values.clone()).collect()
}

/// An expected row written with `""` for null.
fn row(values: &[&str]) -> Vec<Option<String>> {
    values
        .iter()
        .map(|v| (!v.is_empty()).then(|| (*v).to_owned()))
        .collect()
}

/// fct_client_conversion_events of the fixture as of 2024-12-01T00:00:00Z, worked out by
/// hand from the rules (local times in the zone of the user's branch).
fn expected_events_2024_12_01() -> Vec<Vec<Option<String>>> {
    vec![
        // Byte order: upper case first. A lead in a +05:45 zone.
        row(&[
            "Zed_upper",
            "br_ktm",
            "2024-01-01T05:45:00",
            "LEAD",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]),
        // London: created 00:59:59 GMT; BST from 01:00 UTC; the October pack at 00:59:59 UTC
        // is still BST. The membership (March) converts.
        row(&[
            "u01_lon",
            "br_lon",
            "2024-03-31T00:59:59",
            "CLIENT",
            "MEMBERSHIP",
            "m01",
            "2024-03-31T02:00:00",
            "Monthly",
            "web",
            "m01",
            "2024-03-31T02:00:00",
            "Monthly",
            "web",
            "c01",
            "2024-10-27T01:59:59",
            "10 Class Pack",
            "app",
        ]),
        // New York: 01:59:59 EST, then 03:00 EDT a second later; November 01:30 EDT.
        row(&[
            "u02_nyc",
            "br_nyc",
            "2024-03-10T01:59:59",
            "CLIENT",
            "USER_CREDIT",
            "c02",
            "2024-03-10T03:00:00",
            "5 Class Pack",
            "web",
            "m02",
            "2024-11-03T01:30:00",
            "Annual",
            "front_desk",
            "c02",
            "2024-03-10T03:00:00",
            "5 Class Pack",
            "web",
        ]),
        // No purchases: a lead, every conversion column null. +05:30.
        row(&[
            "u03_kol",
            "br_kol",
            "2024-06-02T00:15:00",
            "LEAD",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]),
        // Adelaide: 01:59:59 ACST, then 03:00 ACDT a second later.
        row(&[
            "u04_adl",
            "br_adl",
            "2024-10-06T01:59:59",
            "CLIENT",
            "MEMBERSHIP",
            "m04",
            "2024-10-06T03:00:00",
            "Monthly",
            "app",
            "m04",
            "2024-10-06T03:00:00",
            "Monthly",
            "app",
            "",
            "",
            "",
            "",
        ]),
        // Bought at the London branch: still Kathmandu local time (10:00 UTC = 15:45).
        row(&[
            "u05_ktm",
            "br_ktm",
            "2024-01-16T00:00:00",
            "CLIENT",
            "MEMBERSHIP",
            "m05",
            "2024-02-01T15:45:00",
            "Intro",
            "referral",
            "m05",
            "2024-02-01T15:45:00",
            "Intro",
            "referral",
            "",
            "",
            "",
            "",
        ]),
        // Same purchase time in both types: MEMBERSHIP, although the pack's record is older.
        row(&[
            "u06_tie_types",
            "br_lon",
            "2024-05-01T09:00:00",
            "CLIENT",
            "MEMBERSHIP",
            "m06",
            "2024-05-01T13:30:00",
            "Monthly",
            "web",
            "m06",
            "2024-05-01T13:00:00",
            "Monthly",
            "web",
            "c06",
            "2024-05-01T13:00:00",
            "Single Class",
            "app",
        ]),
        // Ties within a type: memberships by created_at (tie_m_x), packs by id ('B' < 'a').
        row(&[
            "u07_tie_within",
            "br_lon",
            "2024-06-01T09:00:00",
            "CLIENT",
            "USER_CREDIT",
            "tie_c_B",
            "2024-06-01T10:00:00",
            "B pack",
            "web",
            "tie_m_x",
            "2024-06-01T11:00:00",
            "Early record",
            "app",
            "tie_c_B",
            "2024-06-01T10:00:00",
            "B pack",
            "web",
        ]),
        // The membership's record arrived two days late; known by now, it converts.
        row(&[
            "u08_late_record",
            "br_lon",
            "2024-06-30T09:00:00",
            "CLIENT",
            "MEMBERSHIP",
            "m08",
            "2024-07-03T11:00:00",
            "Monthly",
            "web",
            "m08",
            "2024-07-01T11:00:00",
            "Monthly",
            "web",
            "c08",
            "2024-07-01T13:00:00",
            "Single Class",
            "front_desk",
        ]),
        // A purchase before the user's created_at still counts.
        row(&[
            "u09_before_created",
            "br_nyc",
            "2024-02-10T10:00:00",
            "CLIENT",
            "USER_CREDIT",
            "c09",
            "2024-02-01T10:00:00",
            "Intro 3 Pack",
            "referral",
            "",
            "",
            "",
            "",
            "c09",
            "2024-02-01T10:00:00",
            "Intro 3 Pack",
            "referral",
        ]),
        // u10_future is created after asOf: absent.
        // Fractions: the pack at 10:00:00 beats the membership at 10:00:00.000001 and the
        // other pack at 10:00:00.250.
        row(&[
            "u11_frac",
            "br_adl",
            "2024-07-31T09:30:00",
            "CLIENT",
            "USER_CREDIT",
            "frac_c2",
            "2024-08-01T19:30:00",
            "5 Class Pack",
            "app",
            "frac_m1",
            "2024-08-01T19:30:00",
            "Monthly",
            "app",
            "frac_c2",
            "2024-08-01T19:30:00",
            "5 Class Pack",
            "app",
        ]),
        // 09:59:59.999999 UTC is 15:29:59 local (truncated, not rounded).
        row(&[
            "u12_frac",
            "br_kol",
            "2024-07-31T05:30:00",
            "CLIENT",
            "MEMBERSHIP",
            "frac_m2",
            "2024-08-01T15:30:00",
            "Monthly",
            "app",
            "frac_m2",
            "2024-08-01T15:29:59",
            "Monthly",
            "app",
            "",
            "",
            "",
            "",
        ]),
    ]
}

/// The lead-conversion rows of one user as of 2024-12-01 (the ALL row is the user's row of
/// fct_client_conversion_events, checked separately).
fn expected_filtered_2024_12_01() -> Vec<(&'static str, ConversionFilter, Vec<Option<String>>)> {
    use ConversionFilter::{Membership, UserCredit};
    vec![
        (
            "u01_lon",
            UserCredit,
            row(&[
                "u01_lon",
                "br_lon",
                "2024-03-31T00:59:59",
                "CLIENT",
                "USER_CREDIT",
                "c01",
                "2024-10-27T01:00:00",
                "10 Class Pack",
                "app",
                "USER_CREDIT",
            ]),
        ),
        (
            "u02_nyc",
            Membership,
            row(&[
                "u02_nyc",
                "br_nyc",
                "2024-03-10T01:59:59",
                "CLIENT",
                "MEMBERSHIP",
                "m02",
                "2024-11-03T01:30:00",
                "Annual",
                "front_desk",
                "MEMBERSHIP",
            ]),
        ),
        (
            "u03_kol",
            Membership,
            row(&[
                "u03_kol",
                "br_kol",
                "2024-06-02T00:15:00",
                "LEAD",
                "",
                "",
                "",
                "",
                "",
                "MEMBERSHIP",
            ]),
        ),
        (
            "u05_ktm",
            UserCredit,
            row(&[
                "u05_ktm",
                "br_ktm",
                "2024-01-16T00:00:00",
                "LEAD",
                "",
                "",
                "",
                "",
                "",
                "USER_CREDIT",
            ]),
        ),
        (
            "u06_tie_types",
            UserCredit,
            row(&[
                "u06_tie_types",
                "br_lon",
                "2024-05-01T09:00:00",
                "CLIENT",
                "USER_CREDIT",
                "c06",
                "2024-05-01T12:00:00",
                "Single Class",
                "app",
                "USER_CREDIT",
            ]),
        ),
        (
            "u07_tie_within",
            Membership,
            row(&[
                "u07_tie_within",
                "br_lon",
                "2024-06-01T09:00:00",
                "CLIENT",
                "MEMBERSHIP",
                "tie_m_x",
                "2024-06-01T11:01:00",
                "Early record",
                "app",
                "MEMBERSHIP",
            ]),
        ),
        (
            "u09_before_created",
            Membership,
            row(&[
                "u09_before_created",
                "br_nyc",
                "2024-02-10T10:00:00",
                "LEAD",
                "",
                "",
                "",
                "",
                "",
                "MEMBERSHIP",
            ]),
        ),
    ]
}

/// Checks the structure of fct_lead_conversions against fct_client_conversion_events of the
/// same asOf: three rows per user (MEMBERSHIP, USER_CREDIT, ALL), the ALL row equal to the
/// user's event columns, and each filtered row consistent with the first_* columns.
fn check_lead_structure(events: &[Row], leads: &[Row]) {
    assert_eq!(leads.len(), 3 * events.len());
    for (i, e) in events.iter().enumerate() {
        let rows = &leads[3 * i..3 * i + 3];
        for (r, f) in rows.iter().zip(ConversionFilter::ALL_FILTERS) {
            assert_eq!(r.get("user_id"), e.get("user_id"));
            assert_eq!(r.get("client_conversion_event_filter"), Some(f.as_str()));
            assert_eq!(r.values[..3], e.values[..3]);
        }
        assert_eq!(
            rows[2].values[..9],
            e.values[..9],
            "ALL row of {:?}",
            e.get("user_id")
        );
        let m = &rows[0];
        assert_eq!(
            m.get("client_conversion_event_id"),
            e.get("first_user_membership_id")
        );
        assert_eq!(
            m.get("client_conversion_event_name"),
            e.get("first_membership_name")
        );
        let c = &rows[1];
        assert_eq!(
            c.get("client_conversion_event_id"),
            e.get("first_credit_pack_id")
        );
        assert_eq!(
            c.get("client_conversion_event_source"),
            e.get("first_credit_pack_source")
        );
        for r in rows {
            let client = r.get("client_conversion_event_type").is_some();
            assert_eq!(
                r.get("lead_status"),
                Some(if client { "CLIENT" } else { "LEAD" })
            );
        }
    }
}

/// Both models as of `t`, straight from the SQL files.
async fn both(db: &DatabaseConnection, t: &str) -> (Vec<Row>, Vec<Row>) {
    let events = gym::run_file(&Session::new(db), Model::ClientConversionEvents, at(t))
        .await
        .unwrap();
    let leads = gym::run_file(&Session::new(db), Model::LeadConversions, at(t))
        .await
        .unwrap();
    check_lead_structure(&events, &leads);
    (events, leads)
}

/// The row of `user` (with `filter` for lead conversions).
fn find<'a>(rows: &'a [Row], user: &str, filter: Option<ConversionFilter>) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.get("user_id") == Some(user)
            && filter.is_none_or(|f| r.get("client_conversion_event_filter") == Some(f.as_str()))
    })
}

#[tokio::test]
async fn rules_on_every_backend() {
    let mut results = Vec::new();
    for db in TestDb::all().await {
        load_case(&db.conn, "rules").await;
        let (events, leads) = both(&db.conn, "2024-12-01T00:00:00Z").await;
        assert_eq!(
            plain(&events),
            expected_events_2024_12_01(),
            "{}",
            db.backend
        );
        for (user, filter, want) in expected_filtered_2024_12_01() {
            let got = find(&leads, user, Some(filter)).unwrap();
            assert_eq!(got.values, want, "{} {user} {filter:?}", db.backend);
        }

        // asOf before the late membership record of u08: it is invisible, the pack converts,
        // and under MEMBERSHIP u08 is a lead.
        let (events, leads) = both(&db.conn, "2024-07-02T00:00:00Z").await;
        let u08 = find(&events, "u08_late_record", None).unwrap();
        assert_eq!(u08.get("client_conversion_event_id"), Some("c08"));
        assert_eq!(u08.get("first_user_membership_id"), None);
        let m = find(
            &leads,
            "u08_late_record",
            Some(ConversionFilter::Membership),
        )
        .unwrap();
        assert_eq!(m.get("lead_status"), Some("LEAD"));
        // The cut is inclusive on both times.
        let (events, _) = both(&db.conn, "2024-07-03T10:00:00Z").await;
        let u08 = find(&events, "u08_late_record", None).unwrap();
        assert_eq!(u08.get("client_conversion_event_id"), Some("m08"));

        // The pack c01 was purchased at 00:59:59 but recorded at 01:00:00.
        let (events, _) = both(&db.conn, "2024-10-27T00:59:59Z").await;
        let u01 = find(&events, "u01_lon", None).unwrap();
        assert_eq!(u01.get("first_credit_pack_id"), None);
        let (events, _) = both(&db.conn, "2024-10-27T01:00:00Z").await;
        let u01 = find(&events, "u01_lon", None).unwrap();
        assert_eq!(u01.get("first_credit_pack_id"), Some("c01"));

        // c06 was recorded at 11:00 but purchased at 12:00: invisible at 11:30.
        let (events, leads) = both(&db.conn, "2024-05-01T11:30:00Z").await;
        let u06 = find(&events, "u06_tie_types", None).unwrap();
        assert_eq!(u06.get("lead_status"), Some("LEAD"));
        assert_eq!(u06.get("first_credit_pack_id"), None);
        assert!(
            find(&leads, "u06_tie_types", Some(ConversionFilter::UserCredit))
                .is_some_and(|r| r.get("lead_status") == Some("LEAD"))
        );

        // A user exists from its created_at (inclusive), a purchase counts from its time.
        let (events, _) = both(&db.conn, "2024-10-05T16:29:59.999999Z").await;
        let u04 = find(&events, "u04_adl", None).unwrap();
        assert_eq!(u04.get("lead_status"), Some("LEAD"));
        let (events, _) = both(&db.conn, "2024-10-05T16:30:00Z").await;
        let u04 = find(&events, "u04_adl", None).unwrap();
        assert_eq!(u04.get("lead_status"), Some("CLIENT"));
        let (events, _) = both(&db.conn, "2024-10-05T16:29:58Z").await;
        assert!(find(&events, "u04_adl", None).is_none());

        // Users created after asOf are absent; later they are there.
        let (events, _) = both(&db.conn, "2024-12-01T00:00:00Z").await;
        assert!(find(&events, "u10_future", None).is_none());
        let (events, leads) = both(&db.conn, "2025-06-01T00:00:00Z").await;
        let u10 = find(&events, "u10_future", None).unwrap();
        assert_eq!(
            u10.get("local_user_created_at"),
            Some("2025-01-01T05:30:00")
        );
        assert_eq!(
            u10.get("client_conversion_event_local_created_at"),
            Some("2025-01-02T05:30:00")
        );
        assert_eq!(leads.len(), 3 * 13);
        // Before anyone exists: no rows.
        let (events, leads) = both(&db.conn, "2023-06-01T00:00:00Z").await;
        assert!(events.is_empty() && leads.is_empty());

        let mut snapshot = Vec::new();
        for t in [
            "2024-07-02T00:00:00Z",
            "2024-12-01T00:00:00Z",
            "2025-06-01T00:00:00Z",
        ] {
            let (e, l) = both(&db.conn, t).await;
            snapshot.push((plain(&e), plain(&l)));
        }
        results.push((db.backend, snapshot));
        db.cleanup().await;
    }
    // Byte-identical on every backend.
    for pair in results.windows(2) {
        assert_eq!(pair[0].1, pair[1].1, "{} vs {}", pair[0].0, pair[1].0);
    }
}

#[tokio::test]
async fn wrapper_filters_orders_and_pages() {
    for db in TestDb::all().await {
        load_case(&db.conn, "rules").await;
        let t = at("2024-12-01T00:00:00Z");
        let all_events = gym::run_file(&Session::new(&db.conn), Model::ClientConversionEvents, t)
            .await
            .unwrap();
        let all_leads = gym::run_file(&Session::new(&db.conn), Model::LeadConversions, t)
            .await
            .unwrap();

        // No filter: the file's rows in the file's order.
        let got = gym::client_conversion_events(&Session::new(&db.conn), t, &Query::default())
            .await
            .unwrap();
        assert_eq!(got, all_events);
        let got = gym::lead_conversions(&Session::new(&db.conn), t, None, &Query::default())
            .await
            .unwrap();
        assert_eq!(got, all_leads);

        // conversionFilter + where: the leads when only memberships convert.
        let q = Query {
            filter: Some(Filter::Column {
                column: "lead_status".into(),
                condition: Condition::Equals("LEAD".into()),
            }),
            ..Query::default()
        };
        let got = gym::lead_conversions(
            &Session::new(&db.conn),
            t,
            Some(ConversionFilter::Membership),
            &q,
        )
        .await
        .unwrap();
        let users: Vec<_> = got.iter().map(|r| r.get("user_id").unwrap()).collect();
        assert_eq!(users, ["Zed_upper", "u03_kol", "u09_before_created"]);

        // not is the exact complement (null event types included).
        let q = Query {
            filter: Some(Filter::Not(Box::new(Filter::Column {
                column: "client_conversion_event_type".into(),
                condition: Condition::Equals("MEMBERSHIP".into()),
            }))),
            ..Query::default()
        };
        let got = gym::client_conversion_events(&Session::new(&db.conn), t, &q)
            .await
            .unwrap();
        let want: Vec<_> = all_events
            .iter()
            .filter(|r| r.get("client_conversion_event_type") != Some("MEMBERSHIP"))
            .cloned()
            .collect();
        assert_eq!(got, want);

        // Byte-order ranges, contains, in, isNull, or.
        let q = Query {
            filter: Some(Filter::Or(vec![
                Filter::And(vec![
                    Filter::Column {
                        column: "user_id".into(),
                        condition: Condition::Gte("u".into()),
                    },
                    Filter::Column {
                        column: "user_id".into(),
                        condition: Condition::Lt("u05".into()),
                    },
                ]),
                Filter::Column {
                    column: "first_credit_pack_name".into(),
                    condition: Condition::Contains("pack".into()),
                },
                Filter::Column {
                    column: "branch_id".into(),
                    condition: Condition::In(vec!["br_ktm".into()]),
                },
            ])),
            order_by: vec![OrderBy {
                column: "user_id".into(),
                direction: Direction::Desc,
            }],
            ..Query::default()
        };
        let got = gym::client_conversion_events(&Session::new(&db.conn), t, &q)
            .await
            .unwrap();
        let users: Vec<_> = got.iter().map(|r| r.get("user_id").unwrap()).collect();
        assert_eq!(
            users,
            [
                "u07_tie_within",
                "u05_ktm",
                "u04_adl",
                "u03_kol",
                "u02_nyc",
                "u01_lon",
                "Zed_upper"
            ]
        );
        let q = Query {
            filter: Some(Filter::Column {
                column: "first_user_membership_id".into(),
                condition: Condition::IsNull(true),
            }),
            ..Query::default()
        };
        let got = gym::client_conversion_events(&Session::new(&db.conn), t, &q)
            .await
            .unwrap();
        assert_eq!(got.len(), 3);

        // Local-time ranges (a bare date is its midnight), order by local time with nulls
        // last, paging.
        let q = Query {
            filter: Some(Filter::Column {
                column: "first_local_credit_pack_purchase_at".into(),
                condition: Condition::Gte("2024-06-01".into()),
            }),
            order_by: vec![OrderBy {
                column: "first_local_credit_pack_purchase_at".into(),
                direction: Direction::Desc,
            }],
            limit: Some(2),
            offset: 1,
        };
        let got = gym::client_conversion_events(&Session::new(&db.conn), t, &q)
            .await
            .unwrap();
        let users: Vec<_> = got.iter().map(|r| r.get("user_id").unwrap()).collect();
        assert_eq!(users, ["u11_frac", "u08_late_record"]);

        let q = Query {
            order_by: vec![OrderBy {
                column: "client_conversion_event_local_created_at".into(),
                direction: Direction::Asc,
            }],
            ..Query::default()
        };
        let got =
            gym::lead_conversions(&Session::new(&db.conn), t, Some(ConversionFilter::All), &q)
                .await
                .unwrap();
        let times: Vec<_> = got
            .iter()
            .map(|r| r.get("client_conversion_event_local_created_at"))
            .collect();
        let mut sorted = times.clone();
        sorted.sort_by_key(|v| (v.is_none(), *v));
        assert_eq!(times, sorted);
        assert_eq!(times.last(), Some(&None));

        // Unknown columns and malformed local times are input errors.
        let bad = Query {
            order_by: vec![OrderBy {
                column: "user_id; DROP TABLE x".into(),
                direction: Direction::Asc,
            }],
            ..Query::default()
        };
        assert!(matches!(
            gym::client_conversion_events(&Session::new(&db.conn), t, &bad).await,
            Err(tally::error::ApiError::BadArgument(_))
        ));
        db.cleanup().await;
    }
}

/// Runs a GraphQL request and returns its JSON (`data` and `errors`).
async fn graphql(db: &DatabaseConnection, query: &str) -> serde_json::Value {
    let schema = tally::graphql::build(Some(db.clone())).unwrap();
    let response = schema.execute(query).await;
    serde_json::to_value(&response).unwrap()
}

/// The GraphQL selection of every column of `model`.
fn selection(model: Model) -> String {
    model
        .columns()
        .iter()
        .map(|c| c.field)
        .collect::<Vec<_>>()
        .join(" ")
}

/// GraphQL rows as optional strings, in the model's column order.
fn json_rows(model: Model, rows: &serde_json::Value) -> Vec<Vec<Option<String>>> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            model
                .columns()
                .iter()
                .map(|c| r[c.field].as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn graphql_equals_the_sql_files() {
    for db in TestDb::all().await {
        load_case(&db.conn, "rules").await;
        for t in [
            "2024-07-02T00:00:00Z",
            "2024-12-01T00:00:00Z",
            "2025-06-01T00:00:00Z",
        ] {
            let q = format!(
                "{{ gym {{ clientConversionEvents(asOf: \"{t}\", limit: 10000) {{ {} }} \
                 leadConversions(asOf: \"{t}\", limit: 10000) {{ {} }} }} }}",
                selection(Model::ClientConversionEvents),
                selection(Model::LeadConversions)
            );
            let out = graphql(&db.conn, &q).await;
            assert!(out.get("errors").is_none(), "{out}");
            let events = gym::run_file(
                &Session::new(&db.conn),
                Model::ClientConversionEvents,
                at(t),
            )
            .await
            .unwrap();
            let leads = gym::run_file(&Session::new(&db.conn), Model::LeadConversions, at(t))
                .await
                .unwrap();
            assert_eq!(
                json_rows(
                    Model::ClientConversionEvents,
                    &out["data"]["gym"]["clientConversionEvents"]
                ),
                plain(&events)
            );
            assert_eq!(
                json_rows(
                    Model::LeadConversions,
                    &out["data"]["gym"]["leadConversions"]
                ),
                plain(&leads)
            );
        }

        // conversionFilter, a typed where with and/or/not, orderBy, paging.
        let out = graphql(
            &db.conn,
            r#"{ gym { leadConversions(
                asOf: "2024-12-01T00:00:00+01:00", conversionFilter: USER_CREDIT,
                where: { not: { leadStatus: { equals: CLIENT } },
                         or: [{ branchId: { in: ["br_lon", "br_ktm"] } }, { userId: { contains: "kol" } }] },
                orderBy: [{ field: LOCAL_USER_CREATED_AT, direction: DESC }],
                limit: 2) { userId leadStatus clientConversionEventType clientConversionEventFilter } } }"#,
        )
        .await;
        assert!(out.get("errors").is_none(), "{out}");
        assert_eq!(
            out["data"]["gym"]["leadConversions"],
            serde_json::json!([
                { "userId": "u03_kol", "leadStatus": "LEAD", "clientConversionEventType": null, "clientConversionEventFilter": "USER_CREDIT" },
                { "userId": "u05_ktm", "leadStatus": "LEAD", "clientConversionEventType": null, "clientConversionEventFilter": "USER_CREDIT" },
            ])
        );
        let out = graphql(
            &db.conn,
            r#"{ gym { clientConversionEvents(asOf: "2024-12-01T00:00:00Z",
                where: { clientConversionEventType: { isNull: false }, localUserCreatedAt: { lt: "2024-03-31" } },
                orderBy: [{ field: CLIENT_CONVERSION_EVENT_TYPE }, { field: USER_ID, direction: DESC }],
                offset: 1) { userId } } }"#,
        )
        .await;
        assert!(out.get("errors").is_none(), "{out}");
        assert_eq!(
            out["data"]["gym"]["clientConversionEvents"],
            serde_json::json!([{ "userId": "u09_before_created" }, { "userId": "u02_nyc" }])
        );

        // Errors carry codes.
        let code = |out: &serde_json::Value| out["errors"][0]["extensions"]["code"].clone();
        let out = graphql(
            &db.conn,
            r#"{ gym { clientConversionEvents(asOf: "2024-13-01") { userId } } }"#,
        )
        .await;
        assert_eq!(code(&out), "BAD_AS_OF", "{out}");
        assert_eq!(
            out["errors"][0]["message"],
            "asOf \"2024-13-01\" is not an RFC 3339 instant (expected e.g. 2024-12-01T00:00:00Z)"
        );
        let out = graphql(
            &db.conn,
            r#"{ gym { leadConversions(limit: 0) { userId } } }"#,
        )
        .await;
        assert_eq!(code(&out), "BAD_ARGUMENT", "{out}");
        let out = graphql(
            &db.conn,
            r#"{ gym { leadConversions(offset: -1) { userId } } }"#,
        )
        .await;
        assert_eq!(code(&out), "BAD_ARGUMENT", "{out}");
        let out = graphql(
            &db.conn,
            r#"{ gym { leadConversions(where: { localUserCreatedAt: { gt: "yesterday" } }) { userId } } }"#,
        )
        .await;
        assert_eq!(code(&out), "BAD_ARGUMENT", "{out}");
        db.cleanup().await;
    }
}

#[test]
fn every_field_and_argument_has_a_description() {
    let sdl = tally::graphql::sdl();
    for name in [
        "clientConversionEvents",
        "leadConversions",
        "conversionFilter",
        "clientConversionEventFilter",
        "firstLocalCreditPackPurchaseAt",
        "localUserCreatedAt",
        "LOCAL_USER_CREATED_AT",
    ] {
        assert!(sdl.contains(name), "{name} missing from the schema");
    }
    // In the SDL, a described item is preceded by a string: look for undescribed fields of
    // the gym types.
    let mut in_gym_type = false;
    let mut previous = "";
    for line in sdl.lines() {
        let l = line.trim();
        if let Some(rest) = l
            .strip_prefix("type ")
            .or_else(|| l.strip_prefix("input "))
            .or_else(|| l.strip_prefix("enum "))
        {
            let name = rest.split_whitespace().next().unwrap_or("");
            in_gym_type = [
                "Gym",
                "ClientConversionEvent",
                "LeadConversion",
                "ClientConversionEventWhere",
                "LeadConversionWhere",
                "ClientConversionEventOrder",
                "LeadConversionOrder",
                "TextCondition",
                "LocalDateTimeCondition",
                "LeadStatusCondition",
                "ClientConversionEventTypeCondition",
                "ConversionFilterCondition",
                "LeadStatus",
                "ClientConversionEventType",
                "ConversionFilter",
                "ClientConversionEventField",
                "LeadConversionField",
                "SortDirection",
            ]
            .contains(&name);
        } else if in_gym_type
            && !l.is_empty()
            && l != "}"
            && !l.starts_with('"')
            && !l.ends_with('"')
            && !l.starts_with(')')
        {
            assert!(previous.ends_with('"'), "undescribed: {l}");
        }
        if l == "}" {
            in_gym_type = false;
        }
        previous = l;
    }
}

#[tokio::test]
async fn offsets_table_matches_postgres_time_zones() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    load_case(&db.conn, "rules").await;
    // Every 15 minutes of 2023-2026, in every zone of the fixture: the table's offset gives
    // the same local time as AT TIME ZONE.
    let sql = r#"
        WITH instants AS (
            SELECT generate_series(timestamptz '2023-01-01T00:00:00Z',
                                   timestamptz '2027-01-01T00:00:00Z', interval '15 minutes') AS ts
        ), zones AS (SELECT DISTINCT timezone_id AS zone FROM "gym"."dim_branch")
        SELECT count(*) AS n,
               count(*) FILTER (WHERE to_char(ts AT TIME ZONE zone, 'YYYY-MM-DD"T"HH24:MI:SS')
                   IS DISTINCT FROM to_char((ts AT TIME ZONE 'UTC') + make_interval(secs => (
                       SELECT o.offset_seconds FROM public.tally_tz_offsets o
                       WHERE o.zone = zones.zone
                         AND o.valid_from <= to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
                       ORDER BY o.valid_from DESC LIMIT 1)), 'YYYY-MM-DD"T"HH24:MI:SS')) AS bad
        FROM instants CROSS JOIN zones"#;
    let row = db
        .conn
        .query_one_raw(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    let bad: i64 = row.try_get("", "bad").unwrap();
    assert!(n > 500_000);
    assert_eq!(bad, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn offsets_are_refreshed_before_sqlite_queries() {
    let db = TestDb::sqlite().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gym/rules");
    let sources = tally::load::csv_sources("gym", &dir).unwrap();
    tally::load::load(
        &db.conn,
        "gym",
        sources,
        &tally::load::LoadOptions::default(),
    )
    .await
    .unwrap();
    // No refresh_offsets call: the query fills the table itself.
    let events = gym::client_conversion_events(
        &Session::new(&db.conn),
        at("2024-12-01T00:00:00Z"),
        &Query::default(),
    )
    .await
    .unwrap();
    assert_eq!(plain(&events), expected_events_2024_12_01());
    // Refreshing again adds nothing.
    assert_eq!(tally::tz::refresh_offsets(&db.conn).await.unwrap(), 0);
    db.cleanup().await;
}

#[tokio::test]
async fn demo_data_is_identical_on_every_backend() {
    let opts = tally::demo::DemoOptions {
        scale: 0.05,
        seed: 7,
    };
    let mut results = Vec::new();
    for db in TestDb::all().await {
        let sources = tally::demo::sources("gym", &opts).unwrap();
        tally::load::load(
            &db.conn,
            "gym",
            sources,
            &tally::load::LoadOptions::default(),
        )
        .await
        .unwrap();
        tally::tz::refresh_offsets(&db.conn).await.unwrap();
        let mut snapshot = Vec::new();
        for t in [
            "2024-06-01T00:00:00Z",
            "2025-03-30T01:00:00Z",
            "2026-01-01T00:00:00Z",
        ] {
            let (events, leads) = both(&db.conn, t).await;
            let users = db
                .conn
                .query_one_raw(Statement::from_sql_and_values(
                    db.conn.get_database_backend(),
                    r#"SELECT COUNT(*) AS n FROM "gym"."dim_user" WHERE created_at <= $1"#,
                    [at(t).into()],
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap();
            assert_eq!(events.len() as i64, users);
            assert!(
                events
                    .iter()
                    .all(|r| r.get("local_user_created_at").is_some())
            );
            snapshot.push((plain(&events), plain(&leads)));
        }
        assert!(!snapshot[2].0.is_empty());
        results.push((db.backend, snapshot));
        db.cleanup().await;
    }
    for pair in results.windows(2) {
        assert!(
            pair[0].1 == pair[1].1,
            "{} and {} differ",
            pair[0].0,
            pair[1].0
        );
    }
}
