//! `shop.inventory_snapshot`: Daily inventory snapshots: quantity on hand per store and
//! product.
//!
//! Primary key: (`snapshot_date`, `store_id`, `product_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.inventory_snapshot`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "inventory_snapshot")]
pub struct Model {
    /// Day of the snapshot (it holds at the end of that day).
    #[sea_orm(primary_key, auto_increment = false)]
    pub snapshot_date: Date,
    /// The store.
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    /// The product (business key of `product`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    /// Units on hand.
    pub quantity_on_hand: i32,
}

/// `shop.inventory_snapshot` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
