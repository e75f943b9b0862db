//! `social.content_event`: Engagement events (`view`, `like`, `comment`, `share`) of a viewer
//! on a content item.
//!
//! Primary key: (`event_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `social.content_event`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "social", table_name = "content_event")]
pub struct Model {
    /// Id of the event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// When the event happened (UTC).
    pub event_time: DateTimeUtc,
    /// One of `view`, `like`, `comment`, `share`.
    pub event_type: String,
    /// The content (business key of `content`).
    pub content_id: String,
    /// The content's creator (business key of `user`).
    pub creator_id: String,
    /// The engaging user (business key of `user`).
    pub viewer_id: String,
    /// The device used (`device.device_id`).
    pub device_id: String,
    /// IP address, if recorded.
    pub ip_address: Option<String>,
}

/// References from and to `social.content_event` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `device_id` → `social.device.device_id`.
    #[sea_orm(
        belongs_to = "super::device::Entity",
        from = "Column::DeviceId",
        to = "super::device::Column::DeviceId"
    )]
    Device,
}

impl Related<super::device::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Device.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
