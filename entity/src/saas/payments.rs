//! `saas.payments`: Payments of invoices, one row per payment in the daily partition `ds` it
//! arrived in; a payment carries no amount (it pays its invoice).
//!
//! Primary key: (`ds`, `payment_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `saas.payments`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "saas", table_name = "payments")]
pub struct Model {
    /// Daily partition of the record (`YYYY-MM-DD`); the payment counts from 00:00 UTC of this
    /// day.
    #[sea_orm(primary_key, auto_increment = false)]
    pub ds: Date,
    /// Id of the payment (a UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub payment_id: String,
    /// The invoice paid (`invoices.invoice_id`).
    pub invoice_id: String,
    /// The paying user.
    pub user_id: String,
}

/// References from and to `saas.payments` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `invoice_id` → `saas.invoices.invoice_id`.
    ///
    /// `invoices` is partitioned: a join matches the target's row in every partition.
    #[sea_orm(
        belongs_to = "super::invoices::Entity",
        from = "Column::InvoiceId",
        to = "super::invoices::Column::InvoiceId"
    )]
    Invoices,
}

impl Related<super::invoices::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Invoices.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
