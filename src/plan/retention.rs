//! Retention of a `count_distinct` measure along a time dimension: the periods each entity
//! is active in, its previous and next active period, and per group the active, churned,
//! retained, resurrected and new entities.

use super::{DimSlot, PlanError, Planner, RowSource, time_slot};
use crate::semantic::{Granularity, Measure, RetentionEvent};

/// The node of the retention metrics of one measure along one time dimension: CTEs
/// `<cte>_rows`, `<cte>_periods`, `<cte>_flags` and `<cte>` (columns `active` and the
/// counts of [`RetentionNode::events`]).
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
    /// The counts the request's metrics read (`active` is always computed): the statement
    /// looks up each entity's next active period only for churned and retained, its previous
    /// one only for resurrected and new.
    pub events: Vec<RetentionEvent>,
    /// The time dimension's name (for the description).
    pub time_dimension: String,
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

/// The retention node of `measure` along `time_dimension`, computing `events`.
pub(super) fn plan(
    p: &mut Planner<'_>,
    measure: &str,
    time_dimension: &str,
    events: &[RetentionEvent],
    slots: &[DimSlot],
) -> Result<RetentionNode, PlanError> {
    let ms = p.measure(measure)?.clone();
    let (time_slot, granularity) = time_slot(slots, time_dimension)?;
    let rows = p.rows(&ms.table)?;
    let mut node = RetentionNode {
        description: String::new(),
        cte: format!("ret_{measure}"),
        measure: ms,
        rows,
        time_slot,
        granularity,
        events: Vec::new(),
        time_dimension: time_dimension.to_owned(),
    };
    for e in events {
        node.add_event(*e);
    }
    node.describe();
    Ok(node)
}

impl RetentionNode {
    /// Whether the node computes `event` (`active` always).
    pub fn computes(&self, event: RetentionEvent) -> bool {
        event == RetentionEvent::Active || self.events.contains(&event)
    }

    /// Adds `event` to the counts the node computes (another metric of the request reads it).
    pub(super) fn add_event(&mut self, event: RetentionEvent) {
        if self.computes(event) {
            return;
        }
        self.events.push(event);
        // one fixed order, whatever order the metrics come in
        self.events
            .sort_by_key(|e| RetentionEvent::ALL.iter().position(|x| x == e));
        self.describe();
    }

    fn describe(&mut self) {
        let mut counts = vec!["active"];
        counts.extend(self.events.iter().map(|e| match e {
            RetentionEvent::Churned => "churned (not in the next period)",
            RetentionEvent::Resurrected => {
                "resurrected (not in the previous one, in an earlier one)"
            }
            e => e.as_str(),
        }));
        self.description = format!(
            "retention of {} along the periods of {}: {}",
            self.measure.name,
            self.time_dimension,
            counts.join(", ")
        );
    }
}
