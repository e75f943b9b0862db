//! `web.products`: Products of the web shop, with price and units in stock.
//!
//! Primary key: (`product_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.products`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "products")]
pub struct Model {
    /// Id of the product.
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    /// Name of the product.
    pub name: String,
    /// Unit price.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub price: Decimal,
    /// Units in stock.
    pub inventory: i32,
}

/// References from and to `web.products` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `web.order_items` that reference this row.
    #[sea_orm(has_many = "super::order_items::Entity")]
    OrderItems,
    /// Rows of `web.events` that reference this row.
    #[sea_orm(has_many = "super::events::Entity")]
    Events,
}

impl Related<super::order_items::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderItems.def()
    }
}

impl Related<super::events::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
