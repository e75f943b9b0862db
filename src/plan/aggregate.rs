//! The per-table aggregate: the measures of one table, aggregated over its rows joined to
//! the dimension tables, grouped by the slots. Measures of different tables are aggregated
//! apart and joined on the slot values, so nothing is double counted.

use super::{Need, PlanError, Planner, RowSource, TimeShift};
use crate::semantic::{Agg, Measure};

/// The per-table aggregation of the measures of one table.
#[derive(Debug, Clone)]
pub struct AggregateNode {
    /// The measure table, joined to the dimension tables.
    pub rows: RowSource,
    /// The row CTE (`rows_<table>`): the rows with their slot values `d<i>` and measure
    /// inputs `v<i>`.
    pub rows_cte: String,
    /// The aggregate CTE (`agg_<table>`): column `m<i>` per measure.
    pub agg_cte: String,
    /// The measures aggregated here, in order.
    pub measures: Vec<AggregatedMeasure>,
    /// What it does.
    pub description: String,
    /// For a period-over-period or grain-to-date value: how its rows move in time (its
    /// groups are looked up by the response's, never added to them).
    pub shift: Option<TimeShift>,
}

/// One measure of an [`AggregateNode`].
#[derive(Debug, Clone)]
pub struct AggregatedMeasure {
    /// The measure.
    pub measure: Measure,
    /// A median computed by window functions in a CTE of its own (`med_<table>_<i>`, column
    /// `m`), on backends without `percentile_cont`.
    pub median_cte: Option<String>,
}

/// One aggregate per table of the measures needed, tables in first-use order; moved in time
/// by `shift` when given.
pub(super) fn plan(
    p: &mut Planner<'_>,
    needs: &[Need],
    percentile_cont: bool,
    shift: Option<&TimeShift>,
) -> Result<Vec<AggregateNode>, PlanError> {
    let suffix = shift
        .map(|s| format!("_{}", s.kind.suffix()))
        .unwrap_or_default();
    let mut by_table: Vec<(String, Vec<Measure>)> = Vec::new();
    for need in needs {
        let Need::Measure(measure) = need else {
            continue;
        };
        let ms = p.measure(measure)?.clone();
        match by_table.iter_mut().find(|(t, _)| *t == ms.table) {
            Some((_, list)) => list.push(ms),
            None => by_table.push((ms.table.clone(), vec![ms])),
        }
    }
    let mut out = Vec::new();
    for (table, measures) in by_table {
        let rows = p.rows(&table)?;
        let mut description = format!(
            "aggregate {} per table: {}",
            table,
            measures
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = shift {
            description.push_str(&format!("; {}", s.kind.describe()));
        }
        if !rows.joins.is_empty() {
            description.push_str(&format!(
                "; joined to {}",
                rows.joins
                    .iter()
                    .map(|j| j.to.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push(AggregateNode {
            rows_cte: format!("rows_{table}{suffix}"),
            agg_cte: format!("agg_{table}{suffix}"),
            measures: measures
                .into_iter()
                .enumerate()
                .map(|(i, measure)| AggregatedMeasure {
                    median_cte: (!percentile_cont && measure.agg == Agg::Median)
                        .then(|| format!("med_{table}{suffix}_{i}")),
                    measure,
                })
                .collect(),
            rows,
            description,
            shift: shift.cloned(),
        });
    }
    Ok(out)
}
