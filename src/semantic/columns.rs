//! The physical columns of the shipped source tables, read from the `entity` crate.

use sea_orm::sea_query::ColumnType;
use sea_orm::{ColumnTrait, EntityTrait, IdenStatic, Iterable};

/// The storage type of a column, as far as expressions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// Text.
    String,
    /// An integer.
    Int,
    /// A decimal number (money).
    Decimal,
    /// A floating-point number.
    Float,
    /// A boolean (0/1 on SQLite).
    Bool,
    /// An instant (`timestamptz`; RFC 3339 text in UTC on SQLite).
    Time,
    /// A calendar date.
    Date,
    /// A local wall-clock time as text `YYYY-MM-DDTHH:MM:SS`.
    LocalTime,
    /// A JSON object.
    Json,
}

impl ColType {
    /// Parses a type name as written for the columns of SQL tables.
    pub fn parse(s: &str) -> Option<ColType> {
        Some(match s {
            "string" | "text" => ColType::String,
            "int" | "integer" => ColType::Int,
            "decimal" => ColType::Decimal,
            "float" | "number" => ColType::Float,
            "bool" | "boolean" => ColType::Bool,
            "time" | "timestamp" => ColType::Time,
            "date" => ColType::Date,
            "local_time" => ColType::LocalTime,
            "json" => ColType::Json,
            _ => return None,
        })
    }

    fn of(ty: &ColumnType) -> ColType {
        match ty {
            ColumnType::Integer
            | ColumnType::BigInteger
            | ColumnType::SmallInteger
            | ColumnType::TinyInteger => ColType::Int,
            ColumnType::Decimal(_) | ColumnType::Money(_) => ColType::Decimal,
            ColumnType::Float | ColumnType::Double => ColType::Float,
            ColumnType::Boolean => ColType::Bool,
            ColumnType::Timestamp | ColumnType::TimestampWithTimeZone | ColumnType::DateTime => {
                ColType::Time
            }
            ColumnType::Date => ColType::Date,
            ColumnType::Json | ColumnType::JsonBinary => ColType::Json,
            _ => ColType::String,
        }
    }
}

fn cols<E: EntityTrait>() -> Vec<(String, ColType, bool)> {
    E::Column::iter()
        .map(|c| {
            let def = c.def();
            (
                c.as_str().to_owned(),
                ColType::of(def.get_column_type()),
                !def.is_null(),
            )
        })
        .collect()
}

/// The columns of the shipped table `namespace.table`, or `None` when tally does not ship it.
pub fn physical_columns(namespace: &str, table: &str) -> Option<Vec<(String, ColType)>> {
    shipped(namespace, table).map(|cols| cols.into_iter().map(|(c, t, _)| (c, t)).collect())
}

/// The columns of the shipped table `namespace.table` that are `NOT NULL` in the demo
/// schema, or `None` when tally does not ship it.
pub fn physical_not_null(namespace: &str, table: &str) -> Option<Vec<String>> {
    shipped(namespace, table).map(|cols| {
        cols.into_iter()
            .filter(|(_, _, not_null)| *not_null)
            .map(|(c, _, _)| c)
            .collect()
    })
}

/// The columns of a shipped table: name, type, and whether it is `NOT NULL`.
fn shipped(namespace: &str, table: &str) -> Option<Vec<(String, ColType, bool)>> {
    use entity::{gym, saas, shop, social, web};
    Some(match (namespace, table) {
        ("saas", "global_events") => cols::<saas::global_events::Entity>(),
        ("saas", "users") => cols::<saas::users::Entity>(),
        ("saas", "shops") => cols::<saas::shops::Entity>(),
        ("saas", "plans") => cols::<saas::plans::Entity>(),
        ("saas", "payments") => cols::<saas::payments::Entity>(),
        ("saas", "invoices") => cols::<saas::invoices::Entity>(),
        ("gym", "dim_branch") => cols::<gym::dim_branch::Entity>(),
        ("gym", "dim_user") => cols::<gym::dim_user::Entity>(),
        ("gym", "fct_credit_pack_purchases") => cols::<gym::fct_credit_pack_purchases::Entity>(),
        ("gym", "fct_membership_purchases") => cols::<gym::fct_membership_purchases::Entity>(),
        ("shop", "customer") => cols::<shop::customer::Entity>(),
        ("shop", "product") => cols::<shop::product::Entity>(),
        ("shop", "product_category") => cols::<shop::product_category::Entity>(),
        ("shop", "campaign") => cols::<shop::campaign::Entity>(),
        ("shop", "order_line") => cols::<shop::order_line::Entity>(),
        ("shop", "inventory_event") => cols::<shop::inventory_event::Entity>(),
        ("shop", "inventory_snapshot") => cols::<shop::inventory_snapshot::Entity>(),
        ("social", "user") => cols::<social::user::Entity>(),
        ("social", "content") => cols::<social::content::Entity>(),
        ("social", "campaign") => cols::<social::campaign::Entity>(),
        ("social", "content_event") => cols::<social::content_event::Entity>(),
        ("social", "ad_event") => cols::<social::ad_event::Entity>(),
        ("social", "device") => cols::<social::device::Entity>(),
        ("web", "users") => cols::<web::users::Entity>(),
        ("web", "addresses") => cols::<web::addresses::Entity>(),
        ("web", "products") => cols::<web::products::Entity>(),
        ("web", "orders") => cols::<web::orders::Entity>(),
        ("web", "order_items") => cols::<web::order_items::Entity>(),
        ("web", "promos") => cols::<web::promos::Entity>(),
        ("web", "events") => cols::<web::events::Entity>(),
        _ => return None,
    })
}

/// Whether `namespace` is one of the shipped models (whose tables are all known).
pub(crate) fn is_shipped_namespace(namespace: &str) -> bool {
    entity::MODELS.contains(&namespace)
}
