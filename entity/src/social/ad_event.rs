//! `social.ad_event`: Ad events (`impression`, `click`, `conversion`) of a user in a campaign,
//! with the revenue and cost attributed to each.
//!
//! Primary key: (`event_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `social.ad_event`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "social", table_name = "ad_event")]
pub struct Model {
    /// Id of the event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// When the event happened (UTC).
    pub event_time: DateTimeUtc,
    /// One of `impression`, `click`, `conversion`.
    pub event_type: String,
    /// The campaign (`campaign.campaign_id`).
    pub campaign_id: String,
    /// The user (business key of `user`).
    pub user_id: String,
    /// The device used (`device.device_id`).
    pub device_id: String,
    /// IP address, if recorded.
    pub ip_address: Option<String>,
    /// Revenue attributed to the event.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub revenue: Decimal,
    /// Cost of the event.
    #[sea_orm(column_type = "Decimal(Some((18, 2)))")]
    pub cost: Decimal,
}

/// References from and to `social.ad_event` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `campaign_id` → `social.campaign.campaign_id`.
    #[sea_orm(
        belongs_to = "super::campaign::Entity",
        from = "Column::CampaignId",
        to = "super::campaign::Column::CampaignId"
    )]
    Campaign,
    /// `device_id` → `social.device.device_id`.
    #[sea_orm(
        belongs_to = "super::device::Entity",
        from = "Column::DeviceId",
        to = "super::device::Column::DeviceId"
    )]
    Device,
}

impl Related<super::campaign::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Campaign.def()
    }
}

impl Related<super::device::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Device.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
