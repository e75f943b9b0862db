//! A cumulative metric over a `count_distinct` measure: the distinct values of the rows
//! whose bucket is in each bucket's window (a running total cannot add distinct counts).

use super::{DimSlot, PlanError, Planner, RowSource, time_slot};
use crate::semantic::{Measure, MetricKind};

/// The node of one distinct-window metric: CTEs `<cte>_rows` (rows with their values `v`)
/// and `<cte>` (column `m`).
#[derive(Debug, Clone)]
pub struct DistinctWindowNode {
    /// The metric.
    pub metric: String,
    /// The `count_distinct` measure.
    pub measure: Measure,
    /// The measure's table, joined to the dimension tables.
    pub rows: RowSource,
    /// The slot of the time dimension.
    pub time_slot: usize,
    /// The trailing window in seconds (`None`: since the beginning).
    pub window_seconds: Option<i64>,
    /// The final CTE (`dwin_<metric>`).
    pub cte: String,
    /// What it computes.
    pub description: String,
}

/// A distinct-window metric's value: its node's `m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctWindowValue {
    /// The node's final CTE.
    pub cte: String,
}

/// The node of cumulative metric `metric` over a distinct count.
pub(super) fn plan(
    p: &mut Planner<'_>,
    metric: &str,
    slots: &[DimSlot],
) -> Result<DistinctWindowNode, PlanError> {
    let MetricKind::Cumulative {
        measure,
        time_dimension,
        window_seconds,
    } = &p.metric(metric)?.kind
    else {
        return Err(PlanError::new(format!(
            "{metric} is not a cumulative metric"
        )));
    };
    let window_seconds = *window_seconds;
    let ms = p.measure(measure)?.clone();
    let (time_slot, _) = time_slot(slots, time_dimension)?;
    let rows = p.rows(&ms.table)?;
    Ok(DistinctWindowNode {
        description: format!(
            "cumulative {metric}: distinct {} of the rows of each bucket's window",
            ms.name
        ),
        metric: metric.to_owned(),
        cte: format!("dwin_{metric}"),
        measure: ms,
        rows,
        time_slot,
        window_seconds,
    })
}
