//! `social.campaign`: Ad campaigns.
//!
//! Primary key: (`campaign_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `social.campaign`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "social", table_name = "campaign")]
pub struct Model {
    /// Id of the campaign.
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: String,
    /// Type of the campaign.
    pub campaign_type: String,
    /// Name of the campaign.
    pub campaign_name: String,
    /// Description of the campaign, if any.
    pub campaign_desc: Option<String>,
    /// When the campaign was created (UTC).
    pub created_at: DateTimeUtc,
    /// When the campaign started (UTC).
    pub starttime: DateTimeUtc,
    /// When the campaign ended (UTC), if it has.
    pub endtime: Option<DateTimeUtc>,
}

/// References from and to `social.campaign` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `social.ad_event` that reference this row.
    #[sea_orm(has_many = "super::ad_event::Entity")]
    AdEvent,
}

impl Related<super::ad_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AdEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
