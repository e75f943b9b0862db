//! `web.addresses`: Postal addresses of users and orders.
//!
//! Primary key: (`address_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `web.addresses`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "web", table_name = "addresses")]
pub struct Model {
    /// Id of the address.
    #[sea_orm(primary_key, auto_increment = false)]
    pub address_id: String,
    /// Street address.
    pub address: String,
    /// Postal code.
    pub zipcode: String,
    /// State.
    pub state: String,
    /// Country.
    pub country: String,
}

/// References from and to `web.addresses` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `web.users` that reference this row.
    #[sea_orm(has_many = "super::users::Entity")]
    Users,
    /// Rows of `web.orders` that reference this row.
    #[sea_orm(has_many = "super::orders::Entity")]
    Orders,
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

impl ActiveModelBehavior for ActiveModel {}
