//! `social.content`: Content items (`post`, `photo`, `video`, `story`, `reel`), a type-2 slowly
//! changing dimension: one row per version (`content_id` repeats), valid from `updated_at`.
//!
//! Primary key: (`content_id`, `updated_at`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `social.content`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "social", table_name = "content")]
pub struct Model {
    /// Business key of the content (not unique: one row per version).
    #[sea_orm(primary_key, auto_increment = false)]
    pub content_id: String,
    /// One of `post`, `photo`, `video`, `story`, `reel`.
    pub content_type: String,
    /// Name of the content.
    pub content_name: String,
    /// Description of the content, if any.
    pub content_desc: Option<String>,
    /// The creating user (business key of `user`).
    pub creator_id: String,
    /// When the content was created (UTC).
    pub created_at: DateTimeUtc,
    /// When this version became valid (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub updated_at: DateTimeUtc,
    /// Whether this is the content's current version.
    pub is_current: bool,
}

/// `social.content` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
