//! `shop.campaign`: Marketing campaigns that orders can be attributed to.
//!
//! Primary key: (`campaign_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.campaign`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "campaign")]
pub struct Model {
    /// Id of the campaign.
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: String,
    /// Name of the campaign.
    pub campaign_name: String,
    /// When the campaign started (UTC).
    pub campaign_start_time: DateTimeUtc,
    /// When the campaign ended (UTC), if it has.
    pub campaign_end_time: Option<DateTimeUtc>,
    /// Description of the campaign, if any.
    pub campaign_description: Option<String>,
}

/// References from and to `shop.campaign` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `shop.order_line` that reference this row.
    #[sea_orm(has_many = "super::order_line::Entity")]
    OrderLine,
}

impl Related<super::order_line::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrderLine.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
