//! `social.user`: Users, a type-2 slowly changing dimension: one row per version of a user
//! (`user_id` repeats), valid from `updated_at`; `is_current` marks the latest version.
//!
//! Primary key: (`user_id`, `updated_at`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `social.user`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "social", table_name = "user")]
pub struct Model {
    /// Business key of the user (not unique: one row per version).
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// One of `active`, `inactive`, `churned`.
    pub status: String,
    /// Name of the user.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number, if known.
    pub phone: Option<String>,
    /// When the user signed up (UTC).
    pub created_at: DateTimeUtc,
    /// When this version became valid (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub updated_at: DateTimeUtc,
    /// Whether this is the user's current version.
    pub is_current: bool,
    /// Last day the user was active, if known.
    pub last_active_date: Option<Date>,
    /// Day the user churned, if they did.
    pub churned_date: Option<Date>,
}

/// `social.user` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
