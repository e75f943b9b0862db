//! `saas.invoices`: Invoices, one row per invoice in the daily partition `ds` it arrived in.
//!
//! Primary key: (`ds`, `invoice_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `saas.invoices`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "saas", table_name = "invoices")]
pub struct Model {
    /// Daily partition of the record (`YYYY-MM-DD`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub ds: Date,
    /// Id of the invoice (a UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub invoice_id: String,
    /// The invoiced user.
    pub user_id: String,
    /// The shop the invoice is for.
    pub shop_id: String,
    /// When the invoice was issued (UTC).
    pub invoice_timestamp: DateTimeUtc,
    /// Amount of the invoice.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub invoice_amount: Decimal,
}

/// References from and to `saas.invoices` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `saas.payments` that reference this row.
    #[sea_orm(has_many = "super::payments::Entity")]
    Payments,
}

impl Related<super::payments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Payments.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
