//! `gym.dim_branch`: Gym branches, with the IANA time zone local times are reported in.
//!
//! Primary key: (`branch_id`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `gym.dim_branch`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "gym", table_name = "dim_branch")]
pub struct Model {
    /// Id of the branch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub branch_id: String,
    /// Name of the branch.
    pub name: String,
    /// Email used by the branch.
    pub email: String,
    /// City where the branch is located.
    pub city: String,
    /// Country where the branch is located.
    pub country: String,
    /// IANA time zone of the branch (e.g. `Europe/London`).
    pub timezone_id: String,
    /// When the branch was created (UTC).
    pub created_at: DateTimeUtc,
}

/// References from and to `gym.dim_branch` (references into type-2 dimensions are not
/// relations: their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Rows of `gym.dim_user` that reference this row.
    #[sea_orm(has_many = "super::dim_user::Entity")]
    DimUser,
    /// Rows of `gym.fct_credit_pack_purchases` that reference this row.
    #[sea_orm(has_many = "super::fct_credit_pack_purchases::Entity")]
    FctCreditPackPurchases,
    /// Rows of `gym.fct_membership_purchases` that reference this row.
    #[sea_orm(has_many = "super::fct_membership_purchases::Entity")]
    FctMembershipPurchases,
}

impl Related<super::dim_user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DimUser.def()
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
