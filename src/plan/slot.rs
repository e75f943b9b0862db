//! Dimension slots: each distinct (dimension, granularity) selected is a column `d<i>` of
//! every node, and how its bucket texts are written.

use std::sync::Arc;

use super::{AsOfText, PlanError, Planner};
use crate::semantic::{DimType, Dimension, Granularity, Table, TimeStorage};

/// A dimension slot: a dimension at a granularity.
#[derive(Debug, Clone)]
pub struct DimSlot {
    /// The dimension.
    pub dimension: Dimension,
    /// Its table (the expression's columns are this table's).
    pub table: Arc<Table>,
    /// Its granularity (time dimensions).
    pub granularity: Option<Granularity>,
    /// Whether its instants are bucketed in the request's time zone.
    pub in_zone: bool,
    /// Whether its bucket texts end in `Z` (instants and dates in UTC), rather than being
    /// local wall-clock text (local-time columns, or instants with `timezone`).
    pub z: bool,
    /// `asOf` written like its bucket texts.
    pub as_of: AsOfText,
}

impl DimSlot {
    /// The granularity its values are bucketed by: a time dimension's (at `grain` when
    /// given, else the slot's); `None` for other dimensions.
    pub fn bucket(&self, grain: Option<Granularity>) -> Option<Granularity> {
        match grain.or(self.granularity) {
            Some(g) if self.dimension.dim_type == DimType::Time => Some(g),
            _ => None,
        }
    }
}

/// The slot of `dimension` at `granularity`; `timezone`: whether the request has one.
pub(super) fn plan(
    p: &mut Planner<'_>,
    dimension: &str,
    granularity: Option<Granularity>,
    timezone: bool,
) -> Result<DimSlot, PlanError> {
    let dim = p.dimension(dimension)?.clone();
    let table = p.table(&dim.table)?;
    let z = match dim.time_storage {
        TimeStorage::Local => false,
        TimeStorage::Instant => !timezone,
        TimeStorage::Date => true,
    };
    let as_of = if dim.time_storage == TimeStorage::Local {
        AsOfText::UtcDigits
    } else if z {
        AsOfText::Utc
    } else {
        AsOfText::Zone
    };
    Ok(DimSlot {
        in_zone: timezone && dim.time_storage == TimeStorage::Instant,
        z,
        as_of,
        dimension: dim,
        table,
        granularity,
    })
}
