//! `social.device`: Devices (`mobile`, `tablet`, `desktop`, `tv`) events are recorded from.
//!
//! Primary key: (`device_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `social.device`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "social", table_name = "device")]
pub struct Model {
    /// Id of the device.
    #[sea_orm(primary_key, auto_increment = false)]
    pub device_id: String,
    /// One of `mobile`, `tablet`, `desktop`, `tv`.
    pub device_type: String,
    /// Operating system of the device.
    pub os: String,
}

/// References from and to `social.device` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `social.content_event` that reference this row.
    #[sea_orm(has_many = "super::content_event::Entity")]
    ContentEvent,
    /// Rows of `social.ad_event` that reference this row.
    #[sea_orm(has_many = "super::ad_event::Entity")]
    AdEvent,
}

impl Related<super::content_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ContentEvent.def()
    }
}

impl Related<super::ad_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AdEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
