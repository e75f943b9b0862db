//! `saas.global_events`: Lifecycle events (`user_account_creation`, `user_delete_account`,
//! `user_shop_create`, `user_shop_delete`), one row per event in the hourly partition `ts` it
//! arrived in; the event details are in `metadata`.
//!
//! Primary key: (`ts`, `event_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `saas.global_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "saas", table_name = "global_events")]
pub struct Model {
    /// Hourly partition the row arrived in (`YYYY-MM-DD HH:00:00`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub ts: String,
    /// Unique id of the event (a UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// When the event happened (UTC).
    pub event_time: DateTimeUtc,
    /// One of `user_account_creation`, `user_delete_account`, `user_shop_create`,
    /// `user_shop_delete`.
    pub event_type: String,
    /// Event details, all string values: `{user_id, email}` for an account creation,
    /// `{user_id}` for an account deletion, `{user_id, shop_id, plan_id}` for a shop creation,
    /// `{user_id, shop_id}` for a shop deletion.
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
}

/// `saas.global_events` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
