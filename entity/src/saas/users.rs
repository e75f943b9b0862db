//! `saas.users`: User snapshots: one row per user and hourly partition `ts` it was
//! (re)published in; as of T a user is the row from its latest partition with `ts <= T`.
//!
//! Primary key: (`ts`, `user_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `saas.users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "saas", table_name = "users")]
pub struct Model {
    /// Hourly partition of the snapshot (`YYYY-MM-DD HH:00:00`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub ts: String,
    /// Id of the user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// When the user account was created (UTC).
    pub creation_timestamp: DateTimeUtc,
}

/// References from and to `saas.users` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `saas.shops` that reference this row.
    #[sea_orm(has_many = "super::shops::Entity")]
    Shops,
}

impl Related<super::shops::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Shops.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
