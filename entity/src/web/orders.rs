//! `web.orders`: Orders (`preparing`, `shipped`, `delivered`), with costs, promo and shipping
//! details.
//!
//! Primary key: (`order_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.orders`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "orders")]
pub struct Model {
    /// Id of the order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: String,
    /// The ordering user (`users.user_id`).
    pub user_id: String,
    /// The promo applied (`promos.promo_id`), if any.
    pub promo_id: Option<String>,
    /// The delivery address (`addresses.address_id`).
    pub address_id: String,
    /// When the order was placed (UTC).
    pub created_at: DateTimeUtc,
    /// Cost of the ordered items.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub order_cost: Decimal,
    /// Shipping cost.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub shipping_cost: Decimal,
    /// Total of the order.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub order_total: Decimal,
    /// Shipment tracking id, once shipped.
    pub tracking_id: Option<String>,
    /// Shipping service, once shipped.
    pub shipping_service: Option<String>,
    /// Estimated delivery time (UTC), once shipped.
    pub estimated_delivery_at: Option<DateTimeUtc>,
    /// Delivery time (UTC), once delivered.
    pub delivered_at: Option<DateTimeUtc>,
    /// One of `preparing`, `shipped`, `delivered`.
    pub status: String,
}

/// References from and to `web.orders` (references into type-2 dimensions are not
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
    /// `promo_id` → `web.promos.promo_id`.
    #[sea_orm(
        belongs_to = "super::promos::Entity",
        from = "Column::PromoId",
        to = "super::promos::Column::PromoId"
    )]
    Promos,
    /// `address_id` → `web.addresses.address_id`.
    #[sea_orm(
        belongs_to = "super::addresses::Entity",
        from = "Column::AddressId",
        to = "super::addresses::Column::AddressId"
    )]
    Addresses,
    /// Rows of `web.order_items` that reference this row.
    #[sea_orm(has_many = "super::order_items::Entity")]
    OrderItems,
    /// Rows of `web.events` that reference this row.
    #[sea_orm(has_many = "super::events::Entity")]
    Events,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl Related<super::promos::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Promos.def()
    }
}

impl Related<super::addresses::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Addresses.def()
    }
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
