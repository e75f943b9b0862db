//! The gym lead-conversion models: `fct_client_conversion_events` and `fct_lead_conversions`
//! (figures 1.4.1 and 1.4.2 of the gym task; rules in SEMANTICS §3).
//!
//! Each model is one SQL file per backend under `sql/gym/` (`<model>.sql` for PostgreSQL,
//! `<model>.sqlite.sql` for SQLite), compiled in with `include_str!`, parameterised only by
//! the as-of instant `$1`. [`client_conversion_events`] and [`lead_conversions`] run the
//! file of the connection's backend wrapped as
//! `SELECT * FROM (<file>) t WHERE … ORDER BY … LIMIT … OFFSET …`; every value of the request
//! is a bound parameter and every column name in the wrapper comes from the fixed column
//! lists below ([`CLIENT_CONVERSION_EVENT_COLUMNS`], [`LEAD_CONVERSION_COLUMNS`]), never
//! from request text.
//!
//! Every column is text (local times are `YYYY-MM-DDTHH:MM:SS` in the zone of the user's
//! branch), so rows are [`Row`]s of optional strings, byte-identical on both backends.
//! Text is compared and sorted in byte order on both backends (`COLLATE "C"` on
//! PostgreSQL), and nulls sort last in both directions.

mod query;

pub use query::{Condition, Direction, Filter, MAX_IN_VALUES, MAX_LEAVES, OrderBy, Query};

use chrono::{DateTime, Utc};
use sea_orm::Statement;

use crate::db::{Backend, backend_of};
use crate::engine::Session;
use crate::error::ApiError;

/// `fct_client_conversion_events` for PostgreSQL.
pub const CLIENT_CONVERSION_EVENTS_POSTGRES: &str =
    include_str!("../../sql/gym/fct_client_conversion_events.sql");
/// `fct_client_conversion_events` for SQLite (local times through `tally_tz_offsets`).
pub const CLIENT_CONVERSION_EVENTS_SQLITE: &str =
    include_str!("../../sql/gym/fct_client_conversion_events.sqlite.sql");
/// `fct_lead_conversions` for PostgreSQL.
pub const LEAD_CONVERSIONS_POSTGRES: &str = include_str!("../../sql/gym/fct_lead_conversions.sql");
/// `fct_lead_conversions` for SQLite (local times through `tally_tz_offsets`).
pub const LEAD_CONVERSIONS_SQLITE: &str =
    include_str!("../../sql/gym/fct_lead_conversions.sqlite.sql");

/// What the values of a column are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// An identifier or a free text (name, source).
    Text,
    /// A local wall-clock time, text `YYYY-MM-DDTHH:MM:SS` (sorts in time order).
    LocalDateTime,
    /// `LEAD` or `CLIENT`.
    LeadStatus,
    /// `MEMBERSHIP` or `USER_CREDIT`.
    EventType,
    /// `MEMBERSHIP`, `USER_CREDIT` or `ALL`.
    EventFilter,
}

/// One output column of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name in the SQL (and the task's figures), e.g. `local_user_created_at`.
    pub name: &'static str,
    /// Its GraphQL field name (camelCase), e.g. `localUserCreatedAt`.
    pub field: &'static str,
    /// Its GraphQL enum value in `orderBy` (the name in upper case), e.g. `LOCAL_USER_CREATED_AT`.
    pub order_key: &'static str,
    /// What its values are.
    pub kind: ColumnKind,
    /// Whether it can be null.
    pub nullable: bool,
    /// What it means (the task's description, with tally's precisions).
    pub description: &'static str,
}

/// Shorthand for the column tables below.
const fn col(
    name: &'static str,
    field: &'static str,
    order_key: &'static str,
    kind: ColumnKind,
    nullable: bool,
    description: &'static str,
) -> Column {
    Column {
        name,
        field,
        order_key,
        kind,
        nullable,
        description,
    }
}

/// The columns both models start with (figure 1.4.1 and 1.4.2 share them).
macro_rules! common_columns {
    () => {
        [
            col("user_id", "userId", "USER_ID", ColumnKind::Text, false,
                "Identifier of the user."),
            col("branch_id", "branchId", "BRANCH_ID", ColumnKind::Text, false,
                "Identifier of the user's branch (whose time zone all local times of the row are in)."),
            col("local_user_created_at", "localUserCreatedAt", "LOCAL_USER_CREATED_AT",
                ColumnKind::LocalDateTime, true,
                "When the user was created, local time of the user's branch (YYYY-MM-DDTHH:MM:SS, daylight saving applied). Null only when the branch is unknown."),
            col("lead_status", "leadStatus", "LEAD_STATUS", ColumnKind::LeadStatus, false,
                "LEAD until a conversion event counts as of asOf, then CLIENT."),
            col("client_conversion_event_type", "clientConversionEventType",
                "CLIENT_CONVERSION_EVENT_TYPE", ColumnKind::EventType, true,
                "Type of the conversion event: MEMBERSHIP or USER_CREDIT (credit pack); null for a LEAD."),
            col("client_conversion_event_id", "clientConversionEventId",
                "CLIENT_CONVERSION_EVENT_ID", ColumnKind::Text, true,
                "Identifier of the conversion event: the user_membership_id or the credit_pack_id of the purchase; null for a LEAD."),
            col("client_conversion_event_local_created_at", "clientConversionEventLocalCreatedAt",
                "CLIENT_CONVERSION_EVENT_LOCAL_CREATED_AT", ColumnKind::LocalDateTime, true,
                "When the conversion event's purchase record was created (its created_at, not its purchase time), local time of the user's branch; null for a LEAD."),
            col("client_conversion_event_name", "clientConversionEventName",
                "CLIENT_CONVERSION_EVENT_NAME", ColumnKind::Text, true,
                "Name of the purchased membership or credit pack (purchase details' name); null for a LEAD."),
            col("client_conversion_event_source", "clientConversionEventSource",
                "CLIENT_CONVERSION_EVENT_SOURCE", ColumnKind::Text, true,
                "Source of the purchase (purchase details' source); null for a LEAD."),
        ]
    };
}

/// The columns of `fct_client_conversion_events`, in the order of figure 1.4.1.
pub const CLIENT_CONVERSION_EVENT_COLUMNS: &[Column] = &{
    let c = common_columns!();
    [
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7],
        c[8],
        col(
            "first_user_membership_id",
            "firstUserMembershipId",
            "FIRST_USER_MEMBERSHIP_ID",
            ColumnKind::Text,
            true,
            "Identifier of the user's first membership purchase (smallest purchase time, then created_at, then id in byte order); null when none counts.",
        ),
        col(
            "first_local_membership_purchased_at",
            "firstLocalMembershipPurchasedAt",
            "FIRST_LOCAL_MEMBERSHIP_PURCHASED_AT",
            ColumnKind::LocalDateTime,
            true,
            "When the first membership was purchased, local time of the user's branch (even when bought at another branch).",
        ),
        col(
            "first_membership_name",
            "firstMembershipName",
            "FIRST_MEMBERSHIP_NAME",
            ColumnKind::Text,
            true,
            "Name of the first membership.",
        ),
        col(
            "first_membership_source",
            "firstMembershipSource",
            "FIRST_MEMBERSHIP_SOURCE",
            ColumnKind::Text,
            true,
            "Source of the first membership purchase.",
        ),
        col(
            "first_credit_pack_id",
            "firstCreditPackId",
            "FIRST_CREDIT_PACK_ID",
            ColumnKind::Text,
            true,
            "Identifier of the user's first credit-pack purchase (smallest purchase time, then created_at, then id in byte order); null when none counts.",
        ),
        col(
            "first_local_credit_pack_purchase_at",
            "firstLocalCreditPackPurchaseAt",
            "FIRST_LOCAL_CREDIT_PACK_PURCHASE_AT",
            ColumnKind::LocalDateTime,
            true,
            "When the first credit pack was purchased, local time of the user's branch (even when bought at another branch).",
        ),
        col(
            "first_credit_pack_name",
            "firstCreditPackName",
            "FIRST_CREDIT_PACK_NAME",
            ColumnKind::Text,
            true,
            "Name of the first credit pack.",
        ),
        col(
            "first_credit_pack_source",
            "firstCreditPackSource",
            "FIRST_CREDIT_PACK_SOURCE",
            ColumnKind::Text,
            true,
            "Source of the first credit-pack purchase.",
        ),
    ]
};

/// The columns of `fct_lead_conversions`, in the order of figure 1.4.2.
pub const LEAD_CONVERSION_COLUMNS: &[Column] = &{
    let c = common_columns!();
    [
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7],
        c[8],
        col(
            "client_conversion_event_filter",
            "clientConversionEventFilter",
            "CLIENT_CONVERSION_EVENT_FILTER",
            ColumnKind::EventFilter,
            false,
            "Which purchases could convert the user in this row: MEMBERSHIP (memberships only), USER_CREDIT (credit packs only) or ALL (both). Every user has one row of each.",
        ),
    ]
};

/// The two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// `fct_client_conversion_events`: one row per user.
    ClientConversionEvents,
    /// `fct_lead_conversions`: three rows per user, one per [`ConversionFilter`].
    LeadConversions,
}

impl Model {
    /// The model's table name in the task (`fct_client_conversion_events`).
    pub fn name(self) -> &'static str {
        match self {
            Model::ClientConversionEvents => "fct_client_conversion_events",
            Model::LeadConversions => "fct_lead_conversions",
        }
    }

    /// The model's SQL file for `backend` (one query, `$1` = as-of instant).
    pub fn sql(self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Model::ClientConversionEvents, Backend::Postgres) => CLIENT_CONVERSION_EVENTS_POSTGRES,
            (Model::ClientConversionEvents, Backend::Sqlite) => CLIENT_CONVERSION_EVENTS_SQLITE,
            (Model::LeadConversions, Backend::Postgres) => LEAD_CONVERSIONS_POSTGRES,
            (Model::LeadConversions, Backend::Sqlite) => LEAD_CONVERSIONS_SQLITE,
        }
    }

    /// The model's output columns, in the order of the task's figure.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Model::ClientConversionEvents => CLIENT_CONVERSION_EVENT_COLUMNS,
            Model::LeadConversions => LEAD_CONVERSION_COLUMNS,
        }
    }

    /// The column called `name`, if the model has one.
    pub fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }
}

/// Which purchases can convert a lead in `fct_lead_conversions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionFilter {
    /// Only membership purchases.
    Membership,
    /// Only credit-pack purchases.
    UserCredit,
    /// Both.
    All,
}

impl ConversionFilter {
    /// The three filters, in the order rows are listed.
    pub const ALL_FILTERS: [ConversionFilter; 3] = [
        ConversionFilter::Membership,
        ConversionFilter::UserCredit,
        ConversionFilter::All,
    ];

    /// Its value in `client_conversion_event_filter` (`MEMBERSHIP`, `USER_CREDIT`, `ALL`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionFilter::Membership => "MEMBERSHIP",
            ConversionFilter::UserCredit => "USER_CREDIT",
            ConversionFilter::All => "ALL",
        }
    }

    /// The filter named `s` (as [`ConversionFilter::as_str`] writes it).
    pub fn parse(s: &str) -> Option<ConversionFilter> {
        Self::ALL_FILTERS.into_iter().find(|f| f.as_str() == s)
    }
}

/// One output row: the values of the model's columns, in their order (null is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The model the row comes from.
    pub model: Model,
    /// One value per column of `model.columns()`.
    pub values: Vec<Option<String>>,
}

impl Row {
    /// The value of the column called `name` (`None` when null or not a column).
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.model.columns().iter().position(|c| c.name == name)?;
        self.values.get(i)?.as_deref()
    }
}

/// `fct_client_conversion_events` as of `as_of`, filtered, ordered and paged by `query`.
pub async fn client_conversion_events(
    session: &Session,
    as_of: DateTime<Utc>,
    query: &Query,
) -> Result<Vec<Row>, ApiError> {
    run(session, Model::ClientConversionEvents, as_of, None, query).await
}

/// `fct_lead_conversions` as of `as_of`: the rows of `conversion_filter` only (all three rows
/// per user when `None`), filtered, ordered and paged by `query`.
pub async fn lead_conversions(
    session: &Session,
    as_of: DateTime<Utc>,
    conversion_filter: Option<ConversionFilter>,
    query: &Query,
) -> Result<Vec<Row>, ApiError> {
    run(
        session,
        Model::LeadConversions,
        as_of,
        conversion_filter,
        query,
    )
    .await
}

/// Runs a model's SQL file exactly as it is (no wrapper), `$1` = `as_of`: what a person
/// running the file by hand gets. Used by tests to check the wrapped queries.
pub async fn run_file(
    session: &Session,
    model: Model,
    as_of: DateTime<Utc>,
) -> Result<Vec<Row>, ApiError> {
    let backend = backend_of(session.db());
    prepare(session).await?;
    let stmt = Statement::from_sql_and_values(
        session.db().get_database_backend(),
        model.sql(backend),
        [as_of.into()],
    );
    fetch(session, model, stmt).await
}

/// Runs `model` through the wrapper built by [`query::build`].
async fn run(
    session: &Session,
    model: Model,
    as_of: DateTime<Utc>,
    conversion_filter: Option<ConversionFilter>,
    query: &Query,
) -> Result<Vec<Row>, ApiError> {
    let backend = backend_of(session.db());
    let (sql, values) = query::build(model, backend, as_of, conversion_filter, query)?;
    prepare(session).await?;
    let stmt = Statement::from_sql_and_values(session.db().get_database_backend(), sql, values);
    fetch(session, model, stmt).await
}

/// What a backend needs before the gym SQL runs: on SQLite, the offsets of every branch zone.
async fn prepare(session: &Session) -> Result<(), ApiError> {
    if !session.dialect().time_zones() {
        crate::tz::ensure_offsets(session.db())
            .await
            .map_err(|e| ApiError::internal("time-zone offsets", e))?;
    }
    Ok(())
}

/// Runs `stmt` and reads every column of `model` as optional text.
async fn fetch(session: &Session, model: Model, stmt: Statement) -> Result<Vec<Row>, ApiError> {
    let rows = session.query(session.db(), model.name(), stmt).await?;
    let columns = model.columns();
    rows.iter()
        .map(|r| {
            let values = (0..columns.len())
                .map(|i| r.try_get_by_index::<Option<String>>(i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::internal(model.name(), e))?;
            Ok(Row { model, values })
        })
        .collect()
}
