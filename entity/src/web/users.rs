//! `web.users`: Users of the web shop.
//!
//! Primary key: (`user_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "users")]
pub struct Model {
    /// Id of the user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number, if known.
    pub phone_number: Option<String>,
    /// When the user signed up (UTC).
    pub created_at: DateTimeUtc,
    /// When the user was last updated (UTC), if ever.
    pub updated_at: Option<DateTimeUtc>,
    /// The user's address (`addresses.address_id`).
    pub address_id: String,
}

/// References from and to `web.users` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `address_id` → `web.addresses.address_id`.
    #[sea_orm(
        belongs_to = "super::addresses::Entity",
        from = "Column::AddressId",
        to = "super::addresses::Column::AddressId"
    )]
    Addresses,
    /// Rows of `web.orders` that reference this row.
    #[sea_orm(has_many = "super::orders::Entity")]
    Orders,
    /// Rows of `web.events` that reference this row.
    #[sea_orm(has_many = "super::events::Entity")]
    Events,
}

impl Related<super::addresses::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Addresses.def()
    }
}

impl Related<super::orders::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Orders.def()
    }
}

impl Related<super::events::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
