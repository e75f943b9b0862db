//! `gym.fct_credit_pack_purchases`: Credit-pack purchases, one row per purchased credit pack.
//!
//! Primary key: (`credit_pack_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `gym.fct_credit_pack_purchases`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "gym", table_name = "fct_credit_pack_purchases")]
pub struct Model {
    /// The buying user (`dim_user.user_id`).
    pub user_id: String,
    /// The branch (`dim_branch.branch_id`).
    pub branch_id: String,
    /// Id of the purchased credit pack.
    #[sea_orm(primary_key, auto_increment = false)]
    pub credit_pack_id: String,
    /// When the credit pack was purchased (UTC).
    pub credit_pack_purchased_at: DateTimeUtc,
    /// When the purchase record was created (UTC).
    pub created_at: DateTimeUtc,
    /// Purchase details, a JSON object `{name, source}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub credit_pack_purchase_details: Json,
}

/// References from and to `gym.fct_credit_pack_purchases` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `user_id` → `gym.dim_user.user_id`.
    #[sea_orm(
        belongs_to = "super::dim_user::Entity",
        from = "Column::UserId",
        to = "super::dim_user::Column::UserId"
    )]
    DimUser,
    /// `branch_id` → `gym.dim_branch.branch_id`.
    #[sea_orm(
        belongs_to = "super::dim_branch::Entity",
        from = "Column::BranchId",
        to = "super::dim_branch::Column::BranchId"
    )]
    DimBranch,
}

impl Related<super::dim_user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DimUser.def()
    }
}

impl Related<super::dim_branch::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DimBranch.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
