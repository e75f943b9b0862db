//! `saas.plans`: Plan dimension snapshots: one row per plan and hourly partition `ts`, with the
//! amount a shop on the plan is invoiced.
//!
//! Primary key: (`ts`, `plan_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `saas.plans`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "saas", table_name = "plans")]
pub struct Model {
    /// Hourly partition of the snapshot (`YYYY-MM-DD HH:00:00`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub ts: String,
    /// Id of the plan.
    #[sea_orm(primary_key, auto_increment = false)]
    pub plan_id: String,
    /// Amount invoiced for the plan.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub invoice_amount: Decimal,
}

/// `saas.plans` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
