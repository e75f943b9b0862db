//! A period average: a measure computed per sub-period (`per`) of each bucket of a time
//! dimension, summed over the bucket, divided by the sub-periods of the bucket that have
//! started as of `asOf`.

use super::{DimSlot, PlanError, Planner, RowSource, time_slot};
use crate::semantic::{Granularity, Measure, MetricKind};

/// The node of one period-average metric: CTEs `<cte>_rows` (rows with their sub-period
/// `s`), `<cte>_sub` (the measure per sub-period) and `<cte>` (column `total`).
#[derive(Debug, Clone)]
pub struct PeriodAverageNode {
    /// The metric.
    pub metric: String,
    /// The measure computed per sub-period.
    pub measure: Measure,
    /// The measure's table, joined to the dimension tables.
    pub rows: RowSource,
    /// The slot of the time dimension (the buckets).
    pub time_slot: usize,
    /// The sub-period.
    pub per: Granularity,
    /// The final CTE (`pavg_<metric>`).
    pub cte: String,
    /// What it computes.
    pub description: String,
}

/// A period-average metric's value: its node's `total` over the sub-periods started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodAverageValue {
    /// The node's final CTE.
    pub cte: String,
    /// The slot of the time dimension.
    pub time_slot: usize,
    /// The buckets' granularity.
    pub granularity: Granularity,
    /// The length of a sub-period in seconds.
    pub per_seconds: i64,
}

/// The node of period-average metric `metric`.
pub(super) fn plan(
    p: &mut Planner<'_>,
    metric: &str,
    slots: &[DimSlot],
) -> Result<PeriodAverageNode, PlanError> {
    let MetricKind::PeriodAverage {
        measure,
        time_dimension,
        per,
    } = &p.metric(metric)?.kind
    else {
        return Err(PlanError::new(format!(
            "{metric} is not a period-average metric"
        )));
    };
    let per = *per;
    let ms = p.measure(measure)?.clone();
    let (time_slot, _) = time_slot(slots, time_dimension)?;
    let rows = p.rows(&ms.table)?;
    Ok(PeriodAverageNode {
        description: format!(
            "period average {metric}: {} per {}, summed over each bucket",
            ms.name,
            per.as_str()
        ),
        metric: metric.to_owned(),
        cte: format!("pavg_{metric}"),
        measure: ms,
        rows,
        time_slot,
        per,
    })
}
