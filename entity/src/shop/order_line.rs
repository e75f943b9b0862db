//! `shop.order_line`: Order lines: one row per product line of an order, with quantity and
//! amounts.
//!
//! Primary key: (`line_item_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.order_line`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "order_line")]
pub struct Model {
    /// Id of the order line.
    #[sea_orm(primary_key, auto_increment = false)]
    pub line_item_id: String,
    /// The order the line belongs to.
    pub order_id: String,
    /// When the order was placed (UTC).
    pub order_time: DateTimeUtc,
    /// The ordering customer (business key of `customer`).
    pub customer_id: String,
    /// The campaign the order is attributed to (`campaign.campaign_id`), if any.
    pub campaign_id: Option<String>,
    /// The store that sold the line.
    pub store_id: String,
    /// The product sold (business key of `product`).
    pub product_id: String,
    /// The product's category at purchase (`product_category.product_category_id`).
    pub product_category_id: String,
    /// Number of units.
    pub count: i32,
    /// Gross amount of the line (`count` × unit price); net sales are `amt - discount`.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub amt: Decimal,
    /// Discount granted on the line.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub discount: Decimal,
    /// Unit price paid.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub unit_price_at_purchase: Decimal,
    /// Tax amount.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub tax_amt: Decimal,
    /// Shipping amount.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub shipping_amt: Decimal,
    /// Position of the line within its order.
    pub line_number: i32,
}

/// References from and to `shop.order_line` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `product_category_id` → `shop.product_category.product_category_id`.
    #[sea_orm(
        belongs_to = "super::product_category::Entity",
        from = "Column::ProductCategoryId",
        to = "super::product_category::Column::ProductCategoryId"
    )]
    ProductCategory,
    /// `campaign_id` → `shop.campaign.campaign_id`.
    #[sea_orm(
        belongs_to = "super::campaign::Entity",
        from = "Column::CampaignId",
        to = "super::campaign::Column::CampaignId"
    )]
    Campaign,
}

impl Related<super::product_category::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ProductCategory.def()
    }
}

impl Related<super::campaign::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Campaign.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
