//! A metric's value in the final SELECT, resolved: ratios and derived metrics become trees
//! over the columns of the nodes that compute their measures.

use super::{
    AggregateNode, ConversionValue, DimSlot, DistinctWindowValue, MAX_DEPTH, PeriodAverageValue,
    PlanError, Planner, RetentionValue, ShiftKind, SpecialNode, time_slot,
};
use crate::semantic::expr::BinOp;
use crate::semantic::{Agg, Expr, Granularity, MetricKind};

/// What a metric's value is computed from.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// A measure of a per-table aggregate.
    Measure(MeasureRef),
    /// `numerator / denominator` (null when the denominator is 0).
    Ratio(Box<MetricValue>, Box<MetricValue>),
    /// Arithmetic over metrics.
    Derived(DerivedValue),
    /// A running total or trailing window over the output rows.
    Cumulative(CumulativeValue),
    /// A conversion node's rate or count.
    Conversion(ConversionValue),
    /// A retention node's count or rate.
    Retention(RetentionValue),
    /// A period-average node's average.
    PeriodAverage(PeriodAverageValue),
    /// A distinct-window node's count.
    DistinctWindow(DistinctWindowValue),
}

/// The column holding a measure's aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRef {
    /// The CTE (`agg_<table>`, or `med_<table>_<i>` for a median by window functions).
    pub cte: String,
    /// Its column (`m<i>`, or `m`).
    pub column: String,
    /// Counts and sums of groups without rows are 0 rather than null.
    pub zero_if_null: bool,
    /// For a grain-to-date sum read from the request's own aggregate: the window over the
    /// response rows that sums the column since the start of each bucket's period.
    pub to_date: Option<ToDateWindow>,
}

/// A grain-to-date sum computed in the final SELECT as
/// `SUM(column) OVER (PARTITION BY the other slots, the bucket's period ORDER BY the bucket)`
/// over the rows of the request's own aggregate (see `compare`: only where those rows are
/// exactly the response's rows and every bucket's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToDateWindow {
    /// The slot of the compared time dimension.
    pub time_slot: usize,
    /// The period summed to date (month, quarter, year).
    pub period: Granularity,
}

/// A derived metric's expression.
#[derive(Debug, Clone, PartialEq)]
pub enum DerivedValue {
    /// A metric.
    Metric(Box<MetricValue>),
    /// An integer literal.
    Int(i64),
    /// A decimal literal.
    Float(f64),
    /// `-x`.
    Neg(Box<DerivedValue>),
    /// `a op b` (`/` is a float division, null when dividing by 0).
    Binary(BinOp, Box<DerivedValue>, Box<DerivedValue>),
}

/// A cumulative metric over an additive measure: a window over the output rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CumulativeValue {
    /// The measure accumulated.
    pub measure: MeasureRef,
    /// The slot of the time dimension (the window's order).
    pub time_slot: usize,
    /// For a trailing window: the seconds before a bucket's start whose buckets are summed
    /// (the window less one bucket); `None`: since the beginning.
    pub preceding_seconds: Option<i64>,
}

/// Resolves metric values against the nodes of a plan.
pub(super) struct Resolver<'p, 'm> {
    pub(super) p: &'p Planner<'m>,
    pub(super) slots: &'p [DimSlot],
    pub(super) aggregates: &'p [AggregateNode],
    pub(super) specials: &'p [SpecialNode],
    /// Measures are read from the aggregates moved this way (`None`: the request's own).
    pub(super) shift: Option<ShiftKind>,
    /// Grain-to-date sums computed by a window over the request's own aggregate, not by an
    /// aggregate of their own.
    pub(super) windows: &'p [ToDateWindow],
}

impl Resolver<'_, '_> {
    /// The value of metric `name`.
    pub(super) fn value(&self, name: &str, depth: usize) -> Result<MetricValue, PlanError> {
        if depth > MAX_DEPTH {
            return Err(PlanError::new(format!(
                "metric {name}: metrics nest deeper than {MAX_DEPTH}"
            )));
        }
        let m = self.p.metric(name)?;
        let special = |f: &dyn Fn(&SpecialNode) -> bool| {
            self.specials
                .iter()
                .find(|n| f(n))
                .map(|n| n.cte().to_owned())
                .ok_or_else(|| PlanError::new(format!("metric {name}: no node computes it")))
        };
        Ok(match &m.kind {
            MetricKind::Simple { measure } => MetricValue::Measure(self.measure(measure)?),
            MetricKind::Ratio {
                numerator,
                denominator,
            } => MetricValue::Ratio(
                Box::new(self.value(numerator, depth + 1)?),
                Box::new(self.value(denominator, depth + 1)?),
            ),
            MetricKind::Derived { expr } => MetricValue::Derived(self.derived(expr, depth)?),
            MetricKind::Conversion(c) => MetricValue::Conversion(ConversionValue {
                cte: special(&|n| matches!(n, SpecialNode::Conversion(x) if x.computes(name)))?,
                calculation: c.calculation,
            }),
            MetricKind::Retention {
                measure,
                time_dimension,
                event,
                rate,
            } => {
                let (time_slot, granularity) = time_slot(self.slots, time_dimension)?;
                MetricValue::Retention(RetentionValue {
                    cte: special(&|n| {
                        matches!(n, SpecialNode::Retention(x)
                            if x.measure.name == *measure && x.time_slot == time_slot)
                    })?,
                    event: *event,
                    rate: *rate,
                    time_slot,
                    granularity,
                })
            }
            MetricKind::PeriodAverage {
                time_dimension,
                per,
                ..
            } => {
                let (time_slot, granularity) = time_slot(self.slots, time_dimension)?;
                MetricValue::PeriodAverage(PeriodAverageValue {
                    cte: special(
                        &|n| matches!(n, SpecialNode::PeriodAverage(x) if x.metric == name),
                    )?,
                    time_slot,
                    granularity,
                    per_seconds: per.fixed_seconds().ok_or_else(|| {
                        PlanError::new(format!("metric {name}: per {} is not fixed", per.as_str()))
                    })?,
                })
            }
            MetricKind::Cumulative {
                measure,
                time_dimension,
                window_seconds,
            } => {
                if !self.p.measure(measure)?.agg.is_additive() {
                    return Ok(MetricValue::DistinctWindow(DistinctWindowValue {
                        cte: special(
                            &|n| matches!(n, SpecialNode::DistinctWindow(x) if x.metric == name),
                        )?,
                    }));
                }
                let (time_slot, granularity) = time_slot(self.slots, time_dimension)?;
                let preceding_seconds = match window_seconds {
                    None => None,
                    Some(w) => {
                        let grain = granularity.fixed_seconds().ok_or_else(|| {
                            PlanError::new(format!(
                                "metric {name}: a trailing window by {}",
                                granularity.as_str()
                            ))
                        })?;
                        Some((w - grain).max(0))
                    }
                };
                MetricValue::Cumulative(CumulativeValue {
                    measure: self.measure(measure)?,
                    time_slot,
                    preceding_seconds,
                })
            }
        })
    }

    /// The column of a measure's aggregate.
    fn measure(&self, measure: &str) -> Result<MeasureRef, PlanError> {
        // a grain-to-date sum by a window reads the request's own aggregate
        let window = match self.shift {
            Some(ShiftKind::ToDate(g)) => self.windows.iter().find(|w| w.period == g).copied(),
            _ => None,
        };
        let shift = if window.is_some() { None } else { self.shift };
        for a in self.aggregates {
            if a.shift.as_ref().map(|s| s.kind) != shift {
                continue;
            }
            if let Some(i) = a.measures.iter().position(|m| m.measure.name == measure) {
                let m = &a.measures[i];
                let zero_if_null =
                    matches!(m.measure.agg, Agg::Count | Agg::CountDistinct | Agg::Sum);
                return Ok(match &m.median_cte {
                    Some(_) if window.is_some() => {
                        return Err(PlanError::new(format!(
                            "measure {measure}: a median summed to date"
                        )));
                    }
                    Some(cte) => MeasureRef {
                        cte: cte.clone(),
                        column: "m".to_owned(),
                        zero_if_null,
                        to_date: None,
                    },
                    None => MeasureRef {
                        cte: a.agg_cte.clone(),
                        column: format!("m{i}"),
                        zero_if_null,
                        to_date: window,
                    },
                });
            }
        }
        Err(PlanError::new(format!(
            "measure {measure} is in no aggregate"
        )))
    }

    fn derived(&self, e: &Expr, depth: usize) -> Result<DerivedValue, PlanError> {
        Ok(match e {
            Expr::Column(m) => DerivedValue::Metric(Box::new(self.value(m, depth + 1)?)),
            Expr::Int(n) => DerivedValue::Int(*n),
            Expr::Float(n) => DerivedValue::Float(*n),
            Expr::Neg(a) => DerivedValue::Neg(Box::new(self.derived(a, depth)?)),
            Expr::Binary(op, a, b) => DerivedValue::Binary(
                *op,
                Box::new(self.derived(a, depth)?),
                Box::new(self.derived(b, depth)?),
            ),
            other => {
                return Err(PlanError::new(format!(
                    "a derived metric's expression is arithmetic over metrics, not {other:?}"
                )));
            }
        })
    }
}
