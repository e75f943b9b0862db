//! `shop.inventory_event`: Inventory movements (`restock`, `sale`, `return`, `adjustment`) of a
//! product in a store.
//!
//! Primary key: (`inventory_event_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.inventory_event`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "inventory_event")]
pub struct Model {
    /// Id of the inventory event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub inventory_event_id: String,
    /// One of `restock`, `sale`, `return`, `adjustment`.
    pub event_type: String,
    /// When the movement happened (UTC).
    pub event_time: DateTimeUtc,
    /// The store.
    pub store_id: String,
    /// The product (business key of `product`).
    pub product_id: String,
    /// Change of the quantity on hand (negative for outflows).
    pub quantity_change: i32,
    /// The order that caused the movement, if any.
    pub reference_order_id: Option<String>,
}

/// `shop.inventory_event` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
