//! `shop.product_category`: Product categories, optionally nested through `parent_category_id`.
//!
//! Primary key: (`product_category_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.product_category`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "product_category")]
pub struct Model {
    /// Id of the category.
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_category_id: String,
    /// Name of the category.
    pub category_name: String,
    /// The parent category (`product_category.product_category_id`), if any.
    pub parent_category_id: Option<String>,
}

/// References from and to `shop.product_category` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `parent_category_id` → `shop.product_category.product_category_id` (the parent row of the same table).
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ParentCategoryId",
        to = "Column::ProductCategoryId"
    )]
    Parent,
    /// Rows of `shop.product` that reference this row.
    #[sea_orm(has_many = "super::product::Entity")]
    Product,
    /// Rows of `shop.order_line` that reference this row.
    #[sea_orm(has_many = "super::order_line::Entity")]
    OrderLine,
}

impl Related<super::product::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Product.def()
    }
}

impl Related<super::order_line::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderLine.def()
    }
}

/// Links a row of `shop.product_category` to its parent row (`parent_category_id`).
#[derive(Clone, Copy, Debug)]
pub struct ParentLink;

impl Linked for ParentLink {
    type FromEntity = Entity;
    type ToEntity = Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::Parent.def()]
    }
}

impl ActiveModelBehavior for ActiveModel {}
