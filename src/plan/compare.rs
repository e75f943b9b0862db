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

use super::aggregate;
use super::{AggregateNode, DimSlot, Need, PlanError, PlannedFilter, Planner, filter};
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
}

/// The compared aggregates of `spec`: one set of per-table aggregates per distinct
/// comparison.
pub(super) fn plan(
    p: &mut Planner<'_>,
    spec: &QuerySpec,
    slots: &[DimSlot],
    percentile_cont: bool,
) -> Result<Vec<AggregateNode>, PlanError> {
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
        return Ok(Vec::new());
    };
    let filter = spec
        .filter
        .as_ref()
        .and_then(|f| without_dimension(f, &dim))
        .map(|f| filter::plan(p, &f, spec.values.len()))
        .transpose()?;
    let mut out = Vec::new();
    for (kind, needs) in by_kind {
        let shift = TimeShift {
            kind,
            slot,
            filter: filter.clone(),
        };
        out.extend(aggregate::plan(p, &needs, percentile_cont, Some(&shift))?);
    }
    Ok(out)
}
