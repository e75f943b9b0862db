//! `web.order_items`: Items of orders: quantity of a product in an order.
//!
//! Primary key: (`order_id`, `product_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.order_items`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "order_items")]
pub struct Model {
    /// The order (`orders.order_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    /// The product (`products.product_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    /// Units ordered.
    pub quantity: i32,
}

/// References from and to `web.order_items` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `order_id` → `web.orders.order_id`.
    #[sea_orm(
        belongs_to = "super::orders::Entity",
        from = "Column::OrderId",
        to = "super::orders::Column::OrderId"
    )]
    Orders,
    /// `product_id` → `web.products.product_id`.
    #[sea_orm(
        belongs_to = "super::products::Entity",
        from = "Column::ProductId",
        to = "super::products::Column::ProductId"
    )]
    Products,
}

impl Related<super::orders::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Orders.def()
    }
}

impl Related<super::products::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Products.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
