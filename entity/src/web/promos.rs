//! `web.promos`: Promo codes (`active` or `inactive`) and their discounts.
//!
//! Primary key: (`promo_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.promos`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "promos")]
pub struct Model {
    /// Id (code) of the promo.
    #[sea_orm(primary_key, auto_increment = false)]
    pub promo_id: String,
    /// Discount the promo grants (a whole amount).
    pub discount: i32,
    /// One of `active`, `inactive`.
    pub status: String,
}

/// References from and to `web.promos` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `web.orders` that reference this row.
    #[sea_orm(has_many = "super::orders::Entity")]
    Orders,
}

impl Related<super::orders::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Orders.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
