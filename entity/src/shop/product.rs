//! `shop.product`: Products, a type-2 slowly changing dimension: one row per version of a
//! product (`product_id` repeats), valid from `updated_at`; `is_current` marks the latest
//! version.
//!
//! Primary key: (`product_id`, `updated_at`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.product`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "product")]
pub struct Model {
    /// Business key of the product (not unique: one row per version).
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    /// Title of the product.
    pub product_title: String,
    /// Brand of the product.
    pub product_brand: String,
    /// Category of the product (`product_category.product_category_id`).
    pub product_category_id: String,
    /// List price of one unit.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub unit_price: Decimal,
    /// Stock keeping unit.
    pub sku: String,
    /// When the product was first created (UTC).
    pub created_at: DateTimeUtc,
    /// When this version became valid (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub updated_at: DateTimeUtc,
    /// Whether this is the product's current version.
    pub is_current: bool,
}

/// References from and to `shop.product` (references into type-2 dimensions are not
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
}

impl Related<super::product_category::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ProductCategory.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
