//! `shop.customer`: Customers, a type-2 slowly changing dimension: one row per version of a
//! customer (`customer_id` repeats), valid from `updated_at`; `is_current` marks the latest
//! version.
//!
//! Primary key: (`customer_id`, `updated_at`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of `shop.customer`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(schema_name = "shop", table_name = "customer")]
pub struct Model {
    /// Business key of the customer (not unique: one row per version).
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number, if known.
    pub phone: Option<String>,
    /// City.
    pub city: String,
    /// State or region, if any.
    pub state: Option<String>,
    /// Country.
    pub country: String,
    /// Age in years, if known.
    pub customer_age: Option<i32>,
    /// When this version became valid (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub updated_at: DateTimeUtc,
    /// Whether this is the customer's current version.
    pub is_current: bool,
}

/// `shop.customer` has no relations (references into type-2 dimensions are not relations:
/// their business key is not unique).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
