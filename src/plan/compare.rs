//! Period-over-period and grain-to-date values: per comparison, a copy of the per-table
//! aggregates of the compared metrics' measures whose rows are moved in time.
//!
//! - An offset (`PREVIOUS_PERIOD`, `YEAR_AGO`) counts each row for the bucket `n` periods
//!   after its own, so the aggregate of bucket `b` is the measure over the rows of the
//!   bucket `n` periods before `b` — computed from those rows (distinct counts and medians
//!   stay exact), whether or not that bucket is in the response.
//! - A grain-to-date value (`toDate: MONTH`) sums each bucket's aggregate with those of the
//!   earlier buckets of its enclosing month (quarter, year).
//!
//! Both read the same `asOf` cuts as the request, and the request's `where` without its
//! top-level conditions on the compared time dimension: those choose which buckets are shown,
//! not which rows an earlier bucket has. Their groups are looked up by the response's groups
//! (`KeysNode::lookups`), never added to them.
//!
//! When the request's `where` names no condition on the compared time dimension, the rows an
//! offset aggregate would read are exactly the rows of the request's own per-table aggregate
//! (less those without a time value): the offset aggregate then reads that aggregate's groups
//! with their bucket keys moved `n` periods later (`TimeShift::reuse`) instead of aggregating
//! the rows a second time. The move is the same key arithmetic as a row's (`key_add` on the
//! bucket key), and it is one-to-one on bucket keys (days, weeks and hours move by a fixed
//! number of wall-clock units, month, quarter and year starts by whole months), so each
//! moved group is the aggregate of exactly the rows of the bucket `n` periods earlier:
//! distinct counts and medians stay exact. A bucket whose earlier bucket has no rows finds no
//! group, as before (0 for counts and sums, null otherwise).
//!
//! When, besides, that aggregate is the response's only node (one measure table, no median
//! computed apart, no conversion, retention, period-average or distinct-window node), its
//! groups are exactly the response's rows, and the statement takes the direct shape an
//! analyst writes (no `keys`):
//!
//! - a grain-to-date sum is no aggregate of its own but a window over the response rows,
//!   `SUM(m) OVER (PARTITION BY the other slots, the bucket's period ORDER BY the bucket)`
//!   ([`ToDateWindow`]): the rows of each bucket are the aggregate's group of that bucket,
//!   every earlier bucket of the period with rows is a group of it, and a sum (count) of the
//!   rows of several buckets is the sum of their sums (counts) — toDate only takes counts and
//!   sums, and buckets nesting in the period, so each bucket lies in one period. The group
//!   without a time value has none (null, 0 for counts and sums, as before).
//! - an offset, when the compared time dimension is the only slot, joins the request's
//!   aggregate a second time on its bucket key equal to the bucket's key moved back `n`
//!   periods (`by_time`, [`super::TimeLookup`]): the move back is the exact inverse of the
//!   move ahead, and an equality never matches a NULL key, so it finds the one group the row
//!   numbers of `keys` found. The key is moved on the probing side, as an analyst writes it,
//!   so that the earlier groups' keys stay plain columns (SQLite indexes them for the join;
//!   a moved key on both sides was a nested loop of `strftime` calls there).
//!
//! With a condition on the compared time dimension the request's aggregate lacks rows of the
//! earlier buckets (the beginning of a month for a sum to date), and the compared values
//! aggregate their own rows as before; with several nodes, a bucket of the response may be no
//! group of the measure's table (its to-date sum would be the window's, not 0), and the
//! compared aggregates are joined through `keys` as before.

use super::aggregate;
use super::metric::ToDateWindow;
use super::{
    AggregateNode, AggregatedMeasure, DimSlot, Need, PlanError, PlannedFilter, Planner, filter,
};
use crate::query::{Comparison, Item, QuerySpec, without_dimension};
use crate::semantic::Granularity;

/// How a compared aggregate moves its rows in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftKind {
    /// Each row counts for the bucket `n` periods of the granularity after its own.
    Ahead(Granularity, i64),
    /// Each bucket sums the buckets since the start of its enclosing period of this
    /// granularity (month, quarter, year).
    ToDate(Granularity),
}

impl ShiftKind {
    /// The suffix of the CTE names of its nodes (`ahead_1_month`, `to_year`).
    pub fn suffix(self) -> String {
        match self {
            ShiftKind::Ahead(g, n) => format!("ahead_{n}_{}", g.as_str()),
            ShiftKind::ToDate(g) => format!("to_{}", g.as_str()),
        }
    }

    /// What it does, for the nodes' descriptions.
    pub fn describe(self) -> String {
        match self {
            ShiftKind::Ahead(g, n) => format!(
                "each row counted {n} {}(s) later (the value of {n} {}(s) before each bucket)",
                g.as_str(),
                g.as_str()
            ),
            ShiftKind::ToDate(g) => format!(
                "summed since the start of each bucket's {} (to date)",
                g.as_str()
            ),
        }
    }
}

/// The time move of a compared [`AggregateNode`].
#[derive(Debug, Clone)]
pub struct TimeShift {
    /// How its rows move.
    pub kind: ShiftKind,
    /// The slot of the compared time dimension.
    pub slot: usize,
    /// The request's `where` without its top-level conditions on the compared time dimension.
    pub filter: Option<PlannedFilter>,
    /// For an offset over exactly the request's rows: the request's own aggregate of the
    /// same table (`agg_<table>`), whose groups are read with the compared bucket key moved
    /// (the node then has the same measures in the same order, and no rows CTE of its own).
    pub reuse: Option<String>,
    /// Looked up in the final SELECT by the value of the compared time slot (the request's
    /// only slot), not through `keys`, and no CTE of its own: an offset read from the
    /// request's aggregate (`reuse`) when that aggregate is the response's only node
    /// ([`super::TimeLookup`]).
    pub by_time: bool,
}

/// The compared values of a request: aggregates moved in time, and grain-to-date sums
/// computed by windows over the request's own aggregate.
#[derive(Debug, Default)]
pub(super) struct Compared {
    /// The compared aggregates.
    pub(super) aggregates: Vec<AggregateNode>,
    /// The grain-to-date sums read by a window.
    pub(super) windows: Vec<ToDateWindow>,
}

/// The compared aggregates of `spec`: one set of per-table aggregates per distinct
/// comparison.
/// `main`: the request's own per-table aggregates; `alone`: whether `main` is one aggregate
/// and the response's only node (no median computed apart, no special node).
pub(super) fn plan(
    p: &mut Planner<'_>,
    spec: &QuerySpec,
    slots: &[DimSlot],
    percentile_cont: bool,
    main: &[AggregateNode],
    alone: bool,
) -> Result<Compared, PlanError> {
    let mut by_kind: Vec<(ShiftKind, Vec<Need>)> = Vec::new();
    let mut time: Option<(String, usize)> = None;
    for f in &spec.fields {
        let Item::Compared { name, comparison } = &f.item else {
            continue;
        };
        let (dim, g) = spec.comparison_time_slot(p.model).ok_or_else(|| {
            PlanError::new(format!("{name} is compared without one time dimension"))
        })?;
        let slot = slots
            .iter()
            .position(|s| s.dimension.name == dim && s.granularity == Some(g))
            .ok_or_else(|| PlanError::new(format!("the time dimension {dim} has no slot")))?;
        time = Some((dim.to_owned(), slot));
        let kind = match comparison {
            Comparison::Offset { offset, .. } => {
                let (grain, n) = offset.step(g);
                ShiftKind::Ahead(grain, n)
            }
            Comparison::ToDate(grain) => ShiftKind::ToDate(*grain),
        };
        let i = match by_kind.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                by_kind.push((kind, Vec::new()));
                by_kind.len() - 1
            }
        };
        p.needs(name, &mut by_kind[i].1, 0)?;
    }
    let Some((dim, slot)) = time else {
        return Ok(Compared::default());
    };
    let filter = spec
        .filter
        .as_ref()
        .and_then(|f| without_dimension(f, &dim))
        .map(|f| filter::plan(p, &f, spec.values.len()))
        .transpose()?;
    // every row of the request is a row of the compared aggregates: no condition of the
    // request's `where` chooses buckets of the compared time dimension
    let same_rows = !spec.filter_dimensions().contains(&dim.as_str());
    // the request's aggregate is the response: its groups are the response's rows
    let direct = same_rows && alone && main.len() == 1;
    let mut out = Compared::default();
    for (kind, needs) in by_kind {
        let shift = TimeShift {
            kind,
            slot,
            filter: filter.clone(),
            reuse: None,
            by_time: false,
        };
        match kind {
            ShiftKind::ToDate(period) if direct => out.windows.push(ToDateWindow {
                time_slot: slot,
                period,
            }),
            ShiftKind::Ahead(..) if same_rows => {
                let shift = TimeShift {
                    by_time: direct && slots.len() == 1,
                    ..shift
                };
                out.aggregates.extend(reused(p, &needs, main, &shift)?);
            }
            _ => out
                .aggregates
                .extend(aggregate::plan(p, &needs, percentile_cont, Some(&shift))?),
        }
    }
    Ok(out)
}

/// The offset aggregates of `needs` read from the request's own aggregates `main`: per table
/// of the measures needed, a copy of that table's aggregate (every measure of it, in order)
/// whose groups are its groups with the compared bucket key moved.
fn reused(
    p: &Planner<'_>,
    needs: &[Need],
    main: &[AggregateNode],
    shift: &TimeShift,
) -> Result<Vec<AggregateNode>, PlanError> {
    let suffix = shift.kind.suffix();
    let mut out: Vec<AggregateNode> = Vec::new();
    for need in needs {
        let Need::Measure(measure) = need else {
            continue;
        };
        let table = &p.measure(measure)?.table;
        if out.iter().any(|a| a.rows.table.name == *table) {
            continue;
        }
        let own = main
            .iter()
            .find(|a| a.shift.is_none() && a.rows.table.name == *table)
            .ok_or_else(|| {
                PlanError::new(format!(
                    "measure {measure}: the request has no aggregate of table {table}"
                ))
            })?;
        let agg_cte = format!("{}_{suffix}", own.agg_cte);
        out.push(AggregateNode {
            rows: own.rows.clone(),
            rows_cte: own.rows_cte.clone(),
            measures: own
                .measures
                .iter()
                .enumerate()
                .map(|(i, m)| AggregatedMeasure {
                    measure: m.measure.clone(),
                    median_cte: m
                        .median_cte
                        .as_ref()
                        .map(|_| format!("med_{table}_{suffix}_{i}")),
                })
                .collect(),
            description: format!(
                "{}; {}: the groups of {} with their bucket keys moved",
                own.description,
                shift.kind.describe(),
                own.agg_cte
            ),
            shift: Some(TimeShift {
                reuse: Some(own.agg_cte.clone()),
                ..shift.clone()
            }),
            agg_cte,
        });
    }
    Ok(out)
}
