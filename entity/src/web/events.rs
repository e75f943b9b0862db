//! `web.events`: Web events (`page_view`, `add_to_cart`, `checkout`, `package_shipped`) of a
//! user's session.
//!
//! Primary key: (`event_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "events")]
pub struct Model {
    /// Id of the event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// The browsing session.
    pub session_id: String,
    /// The user (`users.user_id`).
    pub user_id: String,
    /// URL of the page.
    pub page_url: String,
    /// When the event happened (UTC).
    pub created_at: DateTimeUtc,
    /// One of `page_view`, `add_to_cart`, `checkout`, `package_shipped`.
    pub event_type: String,
    /// The order concerned (`orders.order_id`), for checkout and shipping events.
    pub order_id: Option<String>,
    /// The product concerned (`products.product_id`), for page views and add-to-cart events.
    pub product_id: Option<String>,
}

/// References from and to `web.events` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `user_id` → `web.users.user_id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::UserId"
    )]
    Users,
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

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
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
