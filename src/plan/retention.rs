//! Retention of a `count_distinct` measure along a time dimension: the periods each entity
//! is active in, its previous and next active period, and per group the active, churned,
//! retained, resurrected and new entities.

use super::{DimSlot, PlanError, Planner, RowSource, time_slot};
use crate::semantic::{Granularity, Measure, RetentionEvent};

/// The node of the retention metrics of one measure along one time dimension: CTEs
/// `<cte>_rows`, `<cte>_periods`, `<cte>_flags` and `<cte>` (columns `active`, `churned`,
/// `retained`, `resurrected`, `new`).
#[derive(Debug, Clone)]
pub struct RetentionNode {
    /// The `count_distinct` measure: its rows are the activity, its expression the entity.
    pub measure: Measure,
    /// The measure's table, joined to the dimension tables.
    pub rows: RowSource,
    /// The slot of the time dimension (the period).
    pub time_slot: usize,
    /// The period.
    pub granularity: Granularity,
    /// The final CTE (`ret_<measure>`).
    pub cte: String,
    /// What it computes.
    pub description: String,
}

/// A retention metric's value: one count of its node, or its rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionValue {
    /// The node's final CTE.
    pub cte: String,
    /// Which entities are counted.
    pub event: RetentionEvent,
    /// Divided by the active entities.
    pub rate: bool,
    /// The slot of the time dimension.
    pub time_slot: usize,
    /// The period.
    pub granularity: Granularity,
}

/// The retention node of `measure` along `time_dimension`.
pub(super) fn plan(
    p: &mut Planner<'_>,
    measure: &str,
    time_dimension: &str,
    slots: &[DimSlot],
) -> Result<RetentionNode, PlanError> {
    let ms = p.measure(measure)?.clone();
    let (time_slot, granularity) = time_slot(slots, time_dimension)?;
    let rows = p.rows(&ms.table)?;
    Ok(RetentionNode {
        description: format!(
            "retention of {measure} along the periods of {time_dimension}: active, churned (not in the next period), retained, resurrected (not in the previous one, in an earlier one), new"
        ),
        cte: format!("ret_{measure}"),
        measure: ms,
        rows,
        time_slot,
        granularity,
    })
}
