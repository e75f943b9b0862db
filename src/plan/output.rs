//! The response: the final SELECT's columns (slots, metric values, `isComplete`), the CTEs
//! it joins on the slot values, its order, limit and offset.

use super::metric::Resolver;
use super::{
    AggregateNode, DerivedValue, DimSlot, KeysNode, MetricValue, PlanError, Planner, ShiftKind,
    SpecialNode, ToDateWindow,
};
use crate::query::{Comparison, Item, OffsetCalculation, QuerySpec};
use crate::semantic::expr::BinOp;
use crate::semantic::{DimType, Granularity, Unit};

/// The final SELECT.
#[derive(Debug, Clone)]
pub struct OutputNode {
    /// The response columns (`c<i>`).
    pub columns: Vec<OutputColumn>,
    /// The CTE it starts from: `keys`, or the only node.
    pub from: String,
    /// The other CTEs: with `keys`, every node, joined on its row of the group; without
    /// slots, cross joined (each has one row).
    pub joined: Vec<String>,
    /// Offsets looked up by the value of the compared time slot (the only slot), in the
    /// request's own aggregate, not through `keys`.
    pub by_time: Vec<TimeLookup>,
    /// Sort keys: (column index, descending); then the other slot columns ascending.
    pub order: Vec<(usize, bool)>,
    /// Whether `LIMIT` is bound.
    pub limit: bool,
    /// Whether `OFFSET` is bound.
    pub offset: bool,
    /// What it returns.
    pub description: String,
}

/// An offset read from the request's own aggregate by its bucket key: the final SELECT
/// joins `source AS cte ON cte.d<slot> = (from.d<slot> moved `periods` of `grain` back)`.
/// The move back is the exact inverse of a row's move ahead (bucket starts move by whole
/// wall-clock units or whole months), and an equality never matches a NULL key: the group
/// found is the one of the bucket `periods` earlier, as through `keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLookup {
    /// The alias, the compared aggregate's CTE name (`agg_<table>_ahead_<n>_<grain>`), which
    /// the metric values read.
    pub cte: String,
    /// The request's aggregate it reads (`agg_<table>`).
    pub source: String,
    /// The compared time slot.
    pub slot: usize,
    /// The grain of the move.
    pub grain: Granularity,
    /// How many periods earlier.
    pub periods: i64,
}

/// One response column.
#[derive(Debug, Clone)]
pub struct OutputColumn {
    /// The response key.
    pub key: String,
    /// What it holds.
    pub value: OutputValue,
    /// Its type.
    pub ty: OutType,
}

/// What a response column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    /// A dimension slot (index into [`super::Plan::slots`]).
    Slot(usize),
    /// A metric's value.
    Metric(MetricValue),
    /// Whether every time bucket of the row has ended as of `asOf`: the slots of time
    /// dimensions and their granularities (none: always).
    Complete(Vec<(usize, Granularity)>),
    /// A column of a row query (index into [`super::RowsNode::columns`]), or a value of a
    /// funnel row (index into [`super::FunnelNode::outputs`]).
    Column(usize),
}

/// The type a response column is read and returned as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutType {
    /// A 64-bit integer.
    Int,
    /// A float, rounded to the given decimals (`None`: as stored).
    Float(Option<u32>),
    /// Money: rounded to 2 decimals, returned as a decimal string.
    Decimal,
    /// Text.
    String,
    /// A boolean.
    Bool,
    /// A time bucket's start, RFC 3339 text.
    Time,
}

impl OutType {
    /// Decimal places values are rounded to (`None`: not rounded).
    pub fn decimals(self) -> Option<u32> {
        match self {
            OutType::Float(d) => d,
            OutType::Decimal => Some(2),
            _ => None,
        }
    }

    /// The type of a metric's values.
    pub fn of_unit(u: Unit) -> OutType {
        match u {
            Unit::Count => OutType::Int,
            Unit::Currency => OutType::Decimal,
            u => OutType::Float(u.decimals()),
        }
    }
    /// The type of a dimension's values.
    pub fn of_dim(t: DimType) -> OutType {
        match t {
            DimType::String => OutType::String,
            DimType::Number => OutType::Float(None),
            DimType::Boolean => OutType::Bool,
            DimType::Time => OutType::Time,
        }
    }
}

/// The output of `spec` over the planned nodes.
pub(super) fn plan(
    p: &Planner<'_>,
    spec: &QuerySpec,
    slots: &[DimSlot],
    aggregates: &[AggregateNode],
    specials: &[SpecialNode],
    keys: Option<&KeysNode>,
    windows: &[ToDateWindow],
) -> Result<OutputNode, PlanError> {
    let resolver = Resolver {
        p,
        slots,
        aggregates,
        specials,
        shift: None,
        windows,
    };
    let mut columns = Vec::new();
    for f in &spec.fields {
        let (value, ty) = match &f.item {
            Item::Dimension { name, granularity } => {
                let idx = slots
                    .iter()
                    .position(|s| s.dimension.name == *name && s.granularity == *granularity)
                    .ok_or_else(|| PlanError::new(format!("dimension {name} has no slot")))?;
                (
                    OutputValue::Slot(idx),
                    OutType::of_dim(slots[idx].dimension.dim_type),
                )
            }
            Item::Metric { name } => (
                OutputValue::Metric(resolver.value(name, 0)?),
                OutType::of_unit(p.metric(name)?.unit),
            ),
            Item::Compared { name, comparison } => {
                let ty = OutType::of_unit(p.metric(name)?.unit);
                compared(&resolver, spec, name, *comparison, ty)?
            }
            Item::IsComplete => (
                OutputValue::Complete(
                    slots
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| s.bucket(None).map(|g| (i, g)))
                        .collect(),
                ),
                OutType::Bool,
            ),
            Item::Column { name } => {
                return Err(PlanError::new(format!(
                    "column {name} selected in a metrics query"
                )));
            }
            Item::Funnel(v) => {
                return Err(PlanError::new(format!(
                    "funnel value {v:?} selected in a metrics query"
                )));
            }
        };
        columns.push(OutputColumn {
            key: f.key.clone(),
            value,
            ty,
        });
    }
    let mut order = Vec::new();
    for o in &spec.order {
        let idx = spec
            .fields
            .iter()
            .position(|f| match &f.item {
                Item::Dimension { name, .. } | Item::Metric { name } => *name == o.target,
                Item::IsComplete
                | Item::Column { .. }
                | Item::Compared { .. }
                | Item::Funnel(_) => false,
            })
            .ok_or_else(|| PlanError::new(format!("orderBy {}: not selected", o.target)))?;
        if !order.iter().any(|(x, _)| *x == idx) {
            order.push((idx, o.descending));
        }
    }
    let sources = super::keys::sources(aggregates, specials);
    let from = match keys {
        Some(k) => k.cte.clone(),
        None => sources
            .into_iter()
            .next()
            .ok_or_else(|| PlanError::new("no node computes the metrics"))?,
    };
    let joined = match keys {
        // every node, by its row of each group
        Some(k) => k.sources.clone(),
        None => {
            let mut joined = Vec::new();
            for a in aggregates.iter().filter(|a| !super::keys::by_time(a)) {
                if a.agg_cte != from {
                    joined.push(a.agg_cte.clone());
                }
                joined.extend(a.measures.iter().filter_map(|m| m.median_cte.clone()));
            }
            for n in specials {
                if n.cte() != from {
                    joined.push(n.cte().to_owned());
                }
            }
            joined
        }
    };
    let mut by_time = Vec::new();
    for a in aggregates.iter().filter(|a| super::keys::by_time(a)) {
        match a.shift.as_ref() {
            Some(super::TimeShift {
                kind: ShiftKind::Ahead(grain, periods),
                slot,
                reuse: Some(source),
                ..
            }) => by_time.push(TimeLookup {
                cte: a.agg_cte.clone(),
                source: source.clone(),
                slot: *slot,
                grain: *grain,
                periods: *periods,
            }),
            _ => {
                return Err(PlanError::new(format!(
                    "{}: only an offset read from the request's aggregate is looked up by its bucket",
                    a.agg_cte
                )));
            }
        }
    }
    Ok(OutputNode {
        columns,
        from,
        joined,
        by_time,
        order,
        limit: spec.limit.is_some(),
        offset: spec.offset.is_some(),
        description:
            "the response: metrics from the per-table aggregates, joined on the dimension values"
                .to_owned(),
    })
}

/// The value and type of a compared metric: from the aggregates moved in time, and for a
/// change or a growth, with the metric's own value.
fn compared(
    resolver: &Resolver<'_, '_>,
    spec: &QuerySpec,
    name: &str,
    comparison: Comparison,
    ty: OutType,
) -> Result<(OutputValue, OutType), PlanError> {
    let (_, g) = spec
        .comparison_time_slot(resolver.p.model)
        .ok_or_else(|| PlanError::new(format!("{name} is compared without a time dimension")))?;
    let kind = match comparison {
        Comparison::Offset { offset, .. } => {
            let (grain, n) = offset.step(g);
            ShiftKind::Ahead(grain, n)
        }
        Comparison::ToDate(grain) => ShiftKind::ToDate(grain),
    };
    let moved = Resolver {
        shift: Some(kind),
        ..*resolver
    };
    let earlier = moved.value(name, 0)?;
    let metric = |v: MetricValue| Box::new(DerivedValue::Metric(Box::new(v)));
    Ok(match comparison {
        Comparison::ToDate(_)
        | Comparison::Offset {
            calculation: OffsetCalculation::Value,
            ..
        } => (OutputValue::Metric(earlier), ty),
        Comparison::Offset {
            calculation: OffsetCalculation::Change,
            ..
        } => (
            OutputValue::Metric(MetricValue::Derived(DerivedValue::Binary(
                BinOp::Sub,
                metric(resolver.value(name, 0)?),
                metric(earlier),
            ))),
            ty,
        ),
        Comparison::Offset {
            calculation: OffsetCalculation::Growth,
            ..
        } => (
            // current / earlier - 1; the division is null when the earlier value is 0
            OutputValue::Metric(MetricValue::Derived(DerivedValue::Binary(
                BinOp::Sub,
                Box::new(DerivedValue::Binary(
                    BinOp::Div,
                    metric(resolver.value(name, 0)?),
                    metric(earlier),
                )),
                Box::new(DerivedValue::Int(1)),
            ))),
            OutType::Float(crate::semantic::Unit::Ratio.decimals()),
        ),
    })
}
