//! `saas.shops`: Shop snapshots: one row per shop and hourly partition `ts`, with the shop's
//! owner.
//!
//! Primary key: (`ts`, `shop_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `saas.shops`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "saas", table_name = "shops")]
pub struct Model {
    /// Hourly partition of the snapshot (`YYYY-MM-DD HH:00:00`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub ts: String,
    /// Id of the shop.
    #[sea_orm(primary_key, auto_increment = false)]
    pub shop_id: String,
    /// When the shop was created (UTC).
    pub creation_timestamp: DateTimeUtc,
    /// The user who owns the shop (`users.user_id`).
    pub owner_user_id: String,
}

/// References from and to `saas.shops` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `owner_user_id` → `saas.users.user_id`.
    ///
    /// `users` is partitioned: a join matches the target's row in every partition.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::OwnerUserId",
        to = "super::users::Column::UserId"
    )]
    Users,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
