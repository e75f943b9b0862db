//! `gym.dim_user`: Gym users; a user is a lead until their first membership or credit-pack
//! purchase makes them a client.
//!
//! Primary key: (`user_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `gym.dim_user`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "gym", table_name = "dim_user")]
pub struct Model {
    /// Id of the user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// The user's branch (`dim_branch.branch_id`).
    pub branch_id: String,
    /// Name of the user.
    pub name: String,
    /// Email used by the user.
    pub email: String,
    /// When the user was created (UTC).
    pub created_at: DateTimeUtc,
}

/// References from and to `gym.dim_user` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `branch_id` → `gym.dim_branch.branch_id`.
    #[sea_orm(
        belongs_to = "super::dim_branch::Entity",
        from = "Column::BranchId",
        to = "super::dim_branch::Column::BranchId"
    )]
    DimBranch,
    /// Rows of `gym.fct_credit_pack_purchases` that reference this row.
    #[sea_orm(has_many = "super::fct_credit_pack_purchases::Entity")]
    FctCreditPackPurchases,
    /// Rows of `gym.fct_membership_purchases` that reference this row.
    #[sea_orm(has_many = "super::fct_membership_purchases::Entity")]
    FctMembershipPurchases,
}

impl Related<super::dim_branch::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DimBranch.def()
    }
}

impl Related<super::fct_credit_pack_purchases::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FctCreditPackPurchases.def()
    }
}

impl Related<super::fct_membership_purchases::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FctMembershipPurchases.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
