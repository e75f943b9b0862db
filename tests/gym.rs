//! The gym lead-conversion models (SEMANTICS §1 and §3) on every backend under test: the SQL
//! files, the row queries `gym { clientConversionEvents leadConversions }` of the semantic
//! layer (GraphQL, answered by the engine), and the time-zone offsets table.
//!
//! The fixture `tests/fixtures/gym/rules/` has one user per rule (see its user names):
//! daylight-saving transitions (Europe/London, America/New_York, Australia/Adelaide),
//! half-hour and 45-minute zones (Asia/Kolkata, Asia/Kathmandu), a purchase at another
//! branch, ties between and within types, a late purchase record, a purchase before the
//! user's created_at, a user created later, fractions of a second, and an upper-case id.

mod common;

use std::path::Path;

use async_graphql::dynamic::Schema;
use chrono::{DateTime, Utc};
use common::TestDb;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::{Value, json};

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

/// The two models, for laying out rows (a test-local list of their columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    /// `fct_client_conversion_events`: one row per user.
    ClientConversionEvents,
    /// `fct_lead_conversions`: three rows per user, one per conversion filter.
    LeadConversions,
}

/// The columns of `fct_client_conversion_events`, in the order of figure 1.4.1.
const CLIENT_CONVERSION_EVENT_COLUMNS: &[&str] = &[
    "user_id",
    "branch_id",
    "local_user_created_at",
    "lead_status",
    "client_conversion_event_type",
    "client_conversion_event_id",
    "client_conversion_event_local_created_at",
    "client_conversion_event_name",
    "client_conversion_event_source",
    "first_user_membership_id",
    "first_local_membership_purchased_at",
    "first_membership_name",
    "first_membership_source",
    "first_credit_pack_id",
    "first_local_credit_pack_purchase_at",
    "first_credit_pack_name",
    "first_credit_pack_source",
];

/// The columns of `fct_lead_conversions`, in the order of figure 1.4.2.
const LEAD_CONVERSION_COLUMNS: &[&str] = &[
    "user_id",
    "branch_id",
    "local_user_created_at",
    "lead_status",
    "client_conversion_event_type",
    "client_conversion_event_id",
    "client_conversion_event_local_created_at",
    "client_conversion_event_name",
    "client_conversion_event_source",
    "client_conversion_event_filter",
];

/// The conversion filters, in the order of a user's rows of `fct_lead_conversions`.
const FILTERS: [&str; 3] = [MEMBERSHIP, USER_CREDIT, ALL];
const MEMBERSHIP: &str = "MEMBERSHIP";
const USER_CREDIT: &str = "USER_CREDIT";
const ALL: &str = "ALL";

impl Model {
    /// The model's columns, in the order of the task's figure.
    fn columns(self) -> &'static [&'static str] {
        match self {
            Model::ClientConversionEvents => CLIENT_CONVERSION_EVENT_COLUMNS,
            Model::LeadConversions => LEAD_CONVERSION_COLUMNS,
        }
    }

    /// The model's row field under `gym`.
    fn field(self) -> &'static str {
        match self {
            Model::ClientConversionEvents => "clientConversionEvents",
            Model::LeadConversions => "leadConversions",
        }
    }

    /// The model's SQL file for `backend`, exactly as shipped.
    fn sql(self, backend: DatabaseBackend) -> &'static str {
        match (self, backend) {
            (Model::ClientConversionEvents, DatabaseBackend::Postgres) => {
                include_str!("../sql/gym/fct_client_conversion_events.sql")
            }
            (Model::ClientConversionEvents, _) => {
                include_str!("../sql/gym/fct_client_conversion_events.sqlite.sql")
            }
            (Model::LeadConversions, DatabaseBackend::Postgres) => {
                include_str!("../sql/gym/fct_lead_conversions.sql")
            }
            (Model::LeadConversions, _) => {
                include_str!("../sql/gym/fct_lead_conversions.sqlite.sql")
            }
        }
    }
}

/// The GraphQL field of a column: `local_user_created_at` → `localUserCreatedAt`.
fn field(column: &str) -> String {
    tally::semantic::camel_case(column)
}

/// One row of a model: the values of its columns, in their order (null is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    model: Model,
    values: Vec<Option<String>>,
}

impl Row {
    /// The value of the column called `name` (`None` when null or not a column).
    fn get(&self, name: &str) -> Option<&str> {
        let i = self.model.columns().iter().position(|c| *c == name)?;
        self.values.get(i)?.as_deref()
    }
}

/// Runs a model's SQL file exactly as written, `$1` = `as_of` bound as a `DateTime<Utc>`
/// (a timestamptz on PostgreSQL, RFC 3339 text on SQLite): what a person running the file
/// by hand gets. The offsets table must be filled (`load_case` does it).
async fn run_file(db: &DatabaseConnection, model: Model, as_of: &str) -> Vec<Row> {
    let backend = db.get_database_backend();
    let stmt = Statement::from_sql_and_values(backend, model.sql(backend), [at(as_of).into()]);
    let rows = db
        .query_all_raw(stmt)
        .await
        .unwrap_or_else(|e| panic!("{model:?} as of {as_of}: {e}"));
    let n = model.columns().len();
    rows.iter()
        .map(|r| Row {
            model,
            values: (0..n)
                .map(|i| r.try_get_by_index::<Option<String>>(i).unwrap())
                .collect(),
        })
        .collect()
}

/// Rows as plain optional strings.
fn plain(rows: &[Row]) -> Vec<Vec<Option<String>>> {
    rows.iter().map(|r| r.values.clone()).collect()
}

/// The user ids of `rows`, in order.
fn users(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.get("user_id").unwrap()).collect()
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
fn expected_filtered_2024_12_01() -> Vec<(&'static str, &'static str, Vec<Option<String>>)> {
    vec![
        (
            "u01_lon",
            USER_CREDIT,
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
            MEMBERSHIP,
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
            MEMBERSHIP,
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
            USER_CREDIT,
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
            USER_CREDIT,
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
            MEMBERSHIP,
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
            MEMBERSHIP,
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
        for (r, f) in rows.iter().zip(FILTERS) {
            assert_eq!(r.get("user_id"), e.get("user_id"));
            assert_eq!(r.get("client_conversion_event_filter"), Some(f));
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

/// The schema over `db`, as served.
fn schema(db: &DatabaseConnection) -> Schema {
    tally::graphql::build(Some(db.clone())).unwrap()
}

/// Runs a GraphQL request and returns its JSON (`data`, `errors`, `extensions`).
async fn graphql(schema: &Schema, query: &str) -> Value {
    serde_json::to_value(schema.execute(query).await).unwrap()
}

/// The code of the first error of a response.
fn code(out: &Value) -> &Value {
    &out["errors"][0]["extensions"]["code"]
}

/// The GraphQL selection of every column of `model`.
fn selection(model: Model) -> String {
    model
        .columns()
        .iter()
        .map(|c| field(c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// GraphQL rows (every column selected) as rows of `model`.
fn json_rows(model: Model, rows: &Value) -> Vec<Row> {
    rows.as_array()
        .unwrap_or_else(|| panic!("not a list of rows: {rows}"))
        .iter()
        .map(|r| Row {
            model,
            values: model
                .columns()
                .iter()
                .map(|c| r[field(c)].as_str().map(str::to_owned))
                .collect(),
        })
        .collect()
}

/// The rows of `gym { <model's field>(<args>) }`, every column selected. The response has
/// no error and carries the explain of the field's statement.
async fn rows(schema: &Schema, model: Model, args: &str) -> Vec<Row> {
    let q = format!(
        "{{ gym {{ {}({args}) {{ {} }} }} }}",
        model.field(),
        selection(model)
    );
    let out = graphql(schema, &q).await;
    assert!(out.get("errors").is_none(), "{q}: {out}");
    let explain = out["extensions"]["explain"].as_array().unwrap();
    assert!(
        explain
            .iter()
            .any(|e| e["path"] == format!("gym.{}", model.field())
                && e["label"] == "rows"
                && e["sql"].is_string()),
        "{out}"
    );
    json_rows(model, &out["data"]["gym"][model.field()])
}

/// Every row of `model` as of `t` through its row field, page by page (the largest page).
async fn all_rows(schema: &Schema, model: Model, t: &str) -> Vec<Row> {
    const PAGE: usize = 10_000;
    let mut out = Vec::new();
    loop {
        let page = rows(
            schema,
            model,
            &format!("asOf: \"{t}\", limit: {PAGE}, offset: {}", out.len()),
        )
        .await;
        let n = page.len();
        out.extend(page);
        if n < PAGE {
            return out;
        }
    }
}

/// Both models as of `t`, straight from the SQL files; their row fields give the same rows
/// in the same order.
async fn both(db: &DatabaseConnection, schema: &Schema, t: &str) -> (Vec<Row>, Vec<Row>) {
    let events = run_file(db, Model::ClientConversionEvents, t).await;
    let leads = run_file(db, Model::LeadConversions, t).await;
    check_lead_structure(&events, &leads);
    assert_eq!(
        all_rows(schema, Model::ClientConversionEvents, t).await,
        events,
        "clientConversionEvents as of {t}"
    );
    assert_eq!(
        all_rows(schema, Model::LeadConversions, t).await,
        leads,
        "leadConversions as of {t}"
    );
    (events, leads)
}

/// The row of `user` (with `filter` for lead conversions).
fn find<'a>(rows: &'a [Row], user: &str, filter: Option<&str>) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.get("user_id") == Some(user)
            && filter.is_none_or(|f| r.get("client_conversion_event_filter") == Some(f))
    })
}

#[tokio::test]
async fn rules_on_every_backend() {
    let mut results = Vec::new();
    for db in TestDb::all().await {
        load_case(&db.conn, "rules").await;
        let schema = schema(&db.conn);
        let (events, leads) = both(&db.conn, &schema, "2024-12-01T00:00:00Z").await;
        assert_eq!(
            plain(&events),
            expected_events_2024_12_01(),
            "{}",
            db.backend
        );
        for (user, filter, want) in expected_filtered_2024_12_01() {
            let got = find(&leads, user, Some(filter)).unwrap();
            assert_eq!(got.values, want, "{} {user} {filter}", db.backend);
        }

        // asOf before the late membership record of u08: it is invisible, the pack converts,
        // and under MEMBERSHIP u08 is a lead.
        let (events, leads) = both(&db.conn, &schema, "2024-07-02T00:00:00Z").await;
        let u08 = find(&events, "u08_late_record", None).unwrap();
        assert_eq!(u08.get("client_conversion_event_id"), Some("c08"));
        assert_eq!(u08.get("first_user_membership_id"), None);
        let m = find(&leads, "u08_late_record", Some(MEMBERSHIP)).unwrap();
        assert_eq!(m.get("lead_status"), Some("LEAD"));
        // The cut is inclusive on both times.
        let (events, _) = both(&db.conn, &schema, "2024-07-03T10:00:00Z").await;
        let u08 = find(&events, "u08_late_record", None).unwrap();
        assert_eq!(u08.get("client_conversion_event_id"), Some("m08"));

        // The pack c01 was purchased at 00:59:59 but recorded at 01:00:00.
        let (events, _) = both(&db.conn, &schema, "2024-10-27T00:59:59Z").await;
        let u01 = find(&events, "u01_lon", None).unwrap();
        assert_eq!(u01.get("first_credit_pack_id"), None);
        let (events, _) = both(&db.conn, &schema, "2024-10-27T01:00:00Z").await;
        let u01 = find(&events, "u01_lon", None).unwrap();
        assert_eq!(u01.get("first_credit_pack_id"), Some("c01"));

        // c06 was recorded at 11:00 but purchased at 12:00: invisible at 11:30.
        let (events, leads) = both(&db.conn, &schema, "2024-05-01T11:30:00Z").await;
        let u06 = find(&events, "u06_tie_types", None).unwrap();
        assert_eq!(u06.get("lead_status"), Some("LEAD"));
        assert_eq!(u06.get("first_credit_pack_id"), None);
        assert!(
            find(&leads, "u06_tie_types", Some(USER_CREDIT))
                .is_some_and(|r| r.get("lead_status") == Some("LEAD"))
        );

        // A user exists from its created_at (inclusive), a purchase counts from its time.
        let (events, _) = both(&db.conn, &schema, "2024-10-05T16:29:59.999999Z").await;
        let u04 = find(&events, "u04_adl", None).unwrap();
        assert_eq!(u04.get("lead_status"), Some("LEAD"));
        let (events, _) = both(&db.conn, &schema, "2024-10-05T16:30:00Z").await;
        let u04 = find(&events, "u04_adl", None).unwrap();
        assert_eq!(u04.get("lead_status"), Some("CLIENT"));
        let (events, _) = both(&db.conn, &schema, "2024-10-05T16:29:58Z").await;
        assert!(find(&events, "u04_adl", None).is_none());

        // Users created after asOf are absent; later they are there.
        let (events, _) = both(&db.conn, &schema, "2024-12-01T00:00:00Z").await;
        assert!(find(&events, "u10_future", None).is_none());
        let (events, leads) = both(&db.conn, &schema, "2025-06-01T00:00:00Z").await;
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
        let (events, leads) = both(&db.conn, &schema, "2023-06-01T00:00:00Z").await;
        assert!(events.is_empty() && leads.is_empty());

        let mut snapshot = Vec::new();
        for t in [
            "2024-07-02T00:00:00Z",
            "2024-12-01T00:00:00Z",
            "2025-06-01T00:00:00Z",
        ] {
            let (e, l) = both(&db.conn, &schema, t).await;
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
async fn row_queries_filter_order_and_page() {
    for db in TestDb::all().await {
        load_case(&db.conn, "rules").await;
        let schema = schema(&db.conn);
        let t = "2024-12-01T00:00:00Z";
        let all_events = run_file(&db.conn, Model::ClientConversionEvents, t).await;
        let all_leads = run_file(&db.conn, Model::LeadConversions, t).await;
        let events = |args: String| {
            let schema = schema.clone();
            async move {
                rows(
                    &schema,
                    Model::ClientConversionEvents,
                    &format!("asOf: \"{t}\", {args}"),
                )
                .await
            }
        };
        let leads = |args: String| {
            let schema = schema.clone();
            async move {
                rows(
                    &schema,
                    Model::LeadConversions,
                    &format!("asOf: \"{t}\", {args}"),
                )
                .await
            }
        };

        // No filter: the file's rows in the file's order (the default page, 100 rows, holds
        // them all).
        assert_eq!(events(String::new()).await, all_events);
        assert_eq!(leads(String::new()).await, all_leads);

        // conversionFilter + where: the leads when only memberships convert.
        let got = leads(
            r#"conversionFilter: MEMBERSHIP, where: { leadStatus: { equals: "LEAD" } }"#.into(),
        )
        .await;
        assert_eq!(users(&got), ["Zed_upper", "u03_kol", "u09_before_created"]);
        assert!(
            got.iter()
                .all(|r| r.get("client_conversion_event_filter") == Some(MEMBERSHIP))
        );

        // not is the exact complement (null event types included) …
        let got = events(
            r#"where: { not: { clientConversionEventType: { equals: "MEMBERSHIP" } } }"#.into(),
        )
        .await;
        let want: Vec<_> = all_events
            .iter()
            .filter(|r| r.get("client_conversion_event_type") != Some(MEMBERSHIP))
            .cloned()
            .collect();
        assert_eq!(got, want);
        // … whereas notEquals, a comparison, never holds on a null.
        let got =
            events(r#"where: { clientConversionEventType: { notEquals: "MEMBERSHIP" } }"#.into())
                .await;
        let want: Vec<_> = all_events
            .iter()
            .filter(|r| r.get("client_conversion_event_type") == Some(USER_CREDIT))
            .cloned()
            .collect();
        assert_eq!(got, want);

        // Byte-order ranges, contains, in, isNull, or. (StringFilter has gt but no gte: no id
        // is "u" itself, so `gt: "u"` keeps the rows the old `gte "u"` kept.)
        let got = events(
            r#"where: { or: [
                 { and: [{ userId: { gt: "u" } }, { userId: { lt: "u05" } }] },
                 { firstCreditPackName: { contains: "pack" } },
                 { branchId: { in: ["br_ktm"] } }
               ] },
               orderBy: [{ userId: DESC }]"#
                .into(),
        )
        .await;
        assert_eq!(
            users(&got),
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
        let got = events(r#"where: { firstUserMembershipId: { isNull: true } }"#.into()).await;
        assert_eq!(got.len(), 3);
        assert_eq!(users(&got), ["Zed_upper", "u03_kol", "u09_before_created"]);

        // Local-time ranges, order by local time with nulls last, paging. A local time is
        // compared with the UTC digits of an RFC 3339 instant: the old bare date
        // "2024-06-01" (its midnight) is now "2024-06-01T00:00:00Z".
        let got = events(
            r#"where: { firstLocalCreditPackPurchaseAt: { gte: "2024-06-01T00:00:00Z" } },
               orderBy: [{ firstLocalCreditPackPurchaseAt: DESC }], limit: 2, offset: 1"#
                .into(),
        )
        .await;
        assert_eq!(users(&got), ["u11_frac", "u08_late_record"]);
        // The same instant written with another offset: its UTC digits are what counts.
        let got = events(
            r#"where: { firstLocalCreditPackPurchaseAt: { gte: "2024-06-01T02:00:00+02:00" } },
               orderBy: [{ firstLocalCreditPackPurchaseAt: DESC }], limit: 2, offset: 1"#
                .into(),
        )
        .await;
        assert_eq!(users(&got), ["u11_frac", "u08_late_record"]);
        let got =
            events(r#"where: { userId: { startsWith: "u1", notIn: ["u11_frac"] } }"#.into()).await;
        assert_eq!(users(&got), ["u12_frac"]);

        for direction in ["ASC", "DESC"] {
            let got = leads(format!(
                "conversionFilter: ALL, orderBy: [{{ clientConversionEventLocalCreatedAt: {direction} }}]"
            ))
            .await;
            let times: Vec<_> = got
                .iter()
                .map(|r| r.get("client_conversion_event_local_created_at"))
                .collect();
            let mut sorted = times.clone();
            if direction == "ASC" {
                sorted.sort_by_key(|v| (v.is_none(), *v));
            } else {
                sorted.sort_by_key(|v| (v.is_none(), std::cmp::Reverse(*v)));
            }
            assert_eq!(times, sorted, "{direction}");
            assert_eq!(times.last(), Some(&None), "{direction}");
            assert_eq!(got.len(), 12);
        }

        // After the request's keys, the default order: userId, then MEMBERSHIP, USER_CREDIT,
        // ALL. Text sorts in byte order ("CLIENT" < "LEAD").
        let got = leads(r#"orderBy: [{ leadStatus: DESC }]"#.into()).await;
        let mut want = all_leads.clone();
        want.sort_by_key(|r| std::cmp::Reverse(r.get("lead_status").map(str::to_owned)));
        assert_eq!(got, want);
        // The conversion filter sorts in the order of its variants, not as text.
        let got =
            leads(r#"orderBy: [{ clientConversionEventFilter: DESC }, { userId: DESC }]"#.into())
                .await;
        let mut want = all_leads.clone();
        want.sort_by_key(|r| {
            let f = r.get("client_conversion_event_filter").unwrap();
            let rank = FILTERS.iter().position(|x| *x == f).unwrap();
            (
                std::cmp::Reverse(rank),
                std::cmp::Reverse(r.get("user_id").unwrap().to_owned()),
            )
        });
        assert_eq!(got, want);

        // Paging through the default order gives the rows of the file, page by page.
        let mut paged = Vec::new();
        for offset in (0..all_leads.len()).step_by(7) {
            paged.extend(leads(format!("limit: 7, offset: {offset}")).await);
        }
        assert_eq!(paged, all_leads);
        assert!(
            leads(format!("offset: {}", all_leads.len()))
                .await
                .is_empty()
        );

        // An unknown column is no longer an input error of tally's own but a GraphQL
        // validation error: the Where and OrderBy inputs list the columns.
        for bad in [
            r#"orderBy: [{ user_id: ASC }]"#,
            r#"where: { user_id: { equals: "x" } }"#,
            r#"orderBy: [{ field: USER_ID, direction: ASC }]"#,
        ] {
            let out = graphql(
                &schema,
                &format!("{{ gym {{ clientConversionEvents({bad}) {{ userId }} }} }}"),
            )
            .await;
            assert_eq!(code(&out), "GRAPHQL_VALIDATION_FAILED", "{bad}: {out}");
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn graphql_equals_the_sql_files() {
    for db in TestDb::all().await {
        load_case(&db.conn, "rules").await;
        let schema = schema(&db.conn);
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
            let out = graphql(&schema, &q).await;
            assert!(out.get("errors").is_none(), "{out}");
            let paths: Vec<_> = out["extensions"]["explain"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["path"].as_str().unwrap())
                .collect();
            assert!(paths.contains(&"gym.clientConversionEvents"), "{out}");
            assert!(paths.contains(&"gym.leadConversions"), "{out}");
            assert_eq!(
                json_rows(
                    Model::ClientConversionEvents,
                    &out["data"]["gym"]["clientConversionEvents"]
                ),
                run_file(&db.conn, Model::ClientConversionEvents, t).await
            );
            assert_eq!(
                json_rows(
                    Model::LeadConversions,
                    &out["data"]["gym"]["leadConversions"]
                ),
                run_file(&db.conn, Model::LeadConversions, t).await
            );
        }

        // conversionFilter, a typed where with and/or/not, orderBy, paging.
        let out = graphql(
            &schema,
            r#"{ gym { leadConversions(
                asOf: "2024-12-01T00:00:00+01:00", conversionFilter: USER_CREDIT,
                where: { not: { leadStatus: { equals: "CLIENT" } },
                         or: [{ branchId: { in: ["br_lon", "br_ktm"] } }, { userId: { contains: "kol" } }] },
                orderBy: [{ localUserCreatedAt: DESC }],
                limit: 2) { userId leadStatus clientConversionEventType clientConversionEventFilter } } }"#,
        )
        .await;
        assert!(out.get("errors").is_none(), "{out}");
        assert!(out["extensions"]["explain"].is_array(), "{out}");
        assert_eq!(
            out["data"]["gym"]["leadConversions"],
            json!([
                { "userId": "u03_kol", "leadStatus": "LEAD", "clientConversionEventType": null, "clientConversionEventFilter": "USER_CREDIT" },
                { "userId": "u05_ktm", "leadStatus": "LEAD", "clientConversionEventType": null, "clientConversionEventFilter": "USER_CREDIT" },
            ])
        );
        let out = graphql(
            &schema,
            r#"{ gym { clientConversionEvents(asOf: "2024-12-01T00:00:00Z",
                where: { clientConversionEventType: { isNull: false }, localUserCreatedAt: { lt: "2024-03-31T00:00:00Z" } },
                orderBy: [{ clientConversionEventType: ASC }, { userId: DESC }],
                offset: 1) { userId } } }"#,
        )
        .await;
        assert!(out.get("errors").is_none(), "{out}");
        assert!(out["extensions"]["explain"].is_array(), "{out}");
        assert_eq!(
            out["data"]["gym"]["clientConversionEvents"],
            json!([{ "userId": "u09_before_created" }, { "userId": "u02_nyc" }])
        );

        // Errors carry codes.
        let out = graphql(
            &schema,
            r#"{ gym { clientConversionEvents(asOf: "2024-13-01") { userId } } }"#,
        )
        .await;
        assert_eq!(code(&out), "BAD_AS_OF", "{out}");
        assert_eq!(
            out["errors"][0]["message"],
            "asOf \"2024-13-01\" is not an RFC 3339 instant (expected e.g. 2024-12-01T00:00:00Z)"
        );
        for (args, want) in [
            ("limit: 0", "BAD_ARGUMENT"),
            ("limit: 10001", "BAD_ARGUMENT"),
            ("offset: -1", "BAD_ARGUMENT"),
            (
                r#"where: { localUserCreatedAt: { gt: "yesterday" } }"#,
                "BAD_ARGUMENT",
            ),
            // a local-time filter takes instants: the old bare date is not one
            (
                r#"where: { localUserCreatedAt: { lt: "2024-03-31" } }"#,
                "BAD_ARGUMENT",
            ),
            // lead status, event type and conversion filter are plain strings now
            (
                r#"where: { leadStatus: { equals: CLIENT } }"#,
                "GRAPHQL_VALIDATION_FAILED",
            ),
            (
                r#"where: { nope: { equals: "x" } }"#,
                "GRAPHQL_VALIDATION_FAILED",
            ),
            ("conversionFilter: EVERYTHING", "GRAPHQL_VALIDATION_FAILED"),
        ] {
            let out = graphql(
                &schema,
                &format!("{{ gym {{ leadConversions({args}) {{ userId }} }} }}"),
            )
            .await;
            assert_eq!(code(&out), want, "{args}: {out}");
        }
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
        "GymLeadConversionsRow",
        "GymClientConversionEventsRow",
        "GymLeadConversionsWhere",
        "GymClientConversionEventsWhere",
        "GymLeadConversionsOrderBy",
        "GymClientConversionEventsOrderBy",
        "GymConversionFilter",
    ] {
        assert!(sdl.contains(name), "{name} missing from the schema");
    }
    // The old hand-written gym types are gone.
    for name in [
        "type LeadConversion ",
        "type ClientConversionEvent ",
        "input TextCondition",
        "input LocalDateTimeCondition",
        "enum LeadStatus",
    ] {
        assert!(!sdl.contains(name), "{name} still in the schema");
    }
    // In the SDL, a described item is preceded by a string: look for undescribed fields of
    // the gym types and of the inputs and enums they use.
    let gym_types = [
        "GymModel",
        "GymLeadConversionsRow",
        "GymClientConversionEventsRow",
        "GymLeadConversionsWhere",
        "GymClientConversionEventsWhere",
        "GymLeadConversionsOrderBy",
        "GymClientConversionEventsOrderBy",
        "GymConversionFilter",
        "StringFilter",
        "TimeFilter",
        "SortDirection",
    ];
    // The values of the generated conversion enum (MEMBERSHIP, USER_CREDIT, ALL) have no
    // description of their own, unlike the old hand-written ConversionFilter enum: the
    // schema generates `<Model>ConversionFilter` from the model's variant names only. Its
    // type is described (checked below); its values are listed here until the model file can
    // describe them.
    let undescribed_values = ["MEMBERSHIP", "USER_CREDIT", "ALL"];
    let mut seen = Vec::new();
    let mut current = "";
    let mut previous = "";
    for line in sdl.lines() {
        let l = line.trim();
        if let Some(rest) = l
            .strip_prefix("type ")
            .or_else(|| l.strip_prefix("input "))
            .or_else(|| l.strip_prefix("enum "))
        {
            let name = rest.split_whitespace().next().unwrap_or("");
            current = if gym_types.contains(&name) { name } else { "" };
            if !current.is_empty() {
                assert!(previous.ends_with('"'), "undescribed type {name}");
                seen.push(name);
            }
        } else if !current.is_empty()
            && !l.is_empty()
            && l != "}"
            && !l.starts_with('"')
            && !l.ends_with('"')
            && !l.starts_with(')')
            && !(current == "GymConversionFilter" && undescribed_values.contains(&l))
        {
            assert!(previous.ends_with('"'), "undescribed in {current}: {l}");
        }
        if l == "}" {
            current = "";
        }
        previous = l;
    }
    seen.sort_unstable();
    let mut want = gym_types.to_vec();
    want.sort_unstable();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn offsets_table_matches_postgres_time_zones() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    load_case(&db.conn, "rules").await;
    // The intervals tally computes for SQLite, bound as JSON rows.
    let zones: Vec<String> = db
        .conn
        .query_all_raw(Statement::from_string(
            db.conn.get_database_backend(),
            r#"SELECT DISTINCT timezone_id FROM "gym"."dim_branch""#,
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    let mut offsets = Vec::new();
    for zone in &zones {
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        // the intervals that cover 2023-2026 (the instants checked below)
        for i in tally::tz::intervals(tz).into_iter().filter(|i| {
            i.valid_to_text().as_str() > "2023" && i.valid_from_text().as_str() < "2027"
        }) {
            offsets.push(serde_json::json!({
                "zone": zone,
                "valid_from": i.valid_from_text(),
                "offset_seconds": i.offset_seconds,
            }));
        }
    }
    let offsets = serde_json::Value::Array(offsets).to_string();
    // Every 15 minutes of 2023-2026, in every zone of the fixture: the computed offset gives
    // the same local time as AT TIME ZONE.
    let sql = r#"
        WITH instants AS (
            SELECT generate_series(timestamptz '2023-01-01T00:00:00Z',
                                   timestamptz '2027-01-01T00:00:00Z', interval '15 minutes') AS ts
        ), zones AS (SELECT DISTINCT timezone_id AS zone FROM "gym"."dim_branch"),
        offsets AS MATERIALIZED (
            SELECT * FROM jsonb_to_recordset(CAST($1 AS jsonb))
                AS x(zone text, valid_from text, offset_seconds integer)
        )
        SELECT count(*) AS n,
               count(*) FILTER (WHERE to_char(ts AT TIME ZONE zone, 'YYYY-MM-DD"T"HH24:MI:SS')
                   IS DISTINCT FROM to_char((ts AT TIME ZONE 'UTC') + make_interval(secs => (
                       SELECT o.offset_seconds FROM offsets o
                       WHERE o.zone = zones.zone
                         AND o.valid_from <= to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
                       ORDER BY o.valid_from DESC LIMIT 1)), 'YYYY-MM-DD"T"HH24:MI:SS')) AS bad
        FROM instants CROSS JOIN zones"#;
    let row = db
        .conn
        .query_one_raw(Statement::from_sql_and_values(
            db.conn.get_database_backend(),
            sql,
            [offsets.into()],
        ))
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
    // No refresh_offsets call: the row query fills the table itself.
    let events = rows(
        &schema(&db.conn),
        Model::ClientConversionEvents,
        r#"asOf: "2024-12-01T00:00:00Z""#,
    )
    .await;
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
        let schema = schema(&db.conn);
        let mut snapshot = Vec::new();
        for t in [
            "2024-06-01T00:00:00Z",
            "2025-03-30T01:00:00Z",
            "2026-01-01T00:00:00Z",
        ] {
            let (events, leads) = both(&db.conn, &schema, t).await;
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
            // Without limit, a row field returns one page of 100 rows.
            if leads.len() > 100 {
                let page = rows(&schema, Model::LeadConversions, &format!("asOf: \"{t}\"")).await;
                assert_eq!(page[..], leads[..100]);
            }
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
