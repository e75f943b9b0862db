//! Period-over-period and grain-to-date values of a metric ([`Comparison`]), and their checks:
//! which metric kinds have them, which granularities and filters they take.

use super::{Filter, Item, QuerySpec};
use crate::error::ApiError;
use crate::semantic::{DimType, Granularity, MetricKind, Model};

/// A value of a metric other than its own in each bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// The metric in an earlier bucket (`offset`), or what it says about it.
    Offset {
        /// How far back.
        offset: PeriodOffset,
        /// What is returned.
        calculation: OffsetCalculation,
    },
    /// The sum since the start of the enclosing month, quarter or year, up to and including
    /// the bucket (`toDate`).
    ToDate(Granularity),
}

/// How far back an offset value looks, relative to the granularity of the request's time
/// dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodOffset {
    /// The bucket just before.
    PreviousPeriod,
    /// A year earlier: 12 months, 4 quarters or 1 year; 52 weeks for weeks, days and hours
    /// (the same weekday).
    YearAgo,
}

impl PeriodOffset {
    /// The offset as `(granularity, count)` of periods to move forward by, for a bucket of
    /// granularity `g`.
    pub fn step(self, g: Granularity) -> (Granularity, i64) {
        match (self, g) {
            (PeriodOffset::PreviousPeriod, g) => (g, 1),
            (PeriodOffset::YearAgo, Granularity::Month) => (Granularity::Month, 12),
            (PeriodOffset::YearAgo, Granularity::Quarter) => (Granularity::Quarter, 4),
            (PeriodOffset::YearAgo, Granularity::Year) => (Granularity::Year, 1),
            (PeriodOffset::YearAgo, Granularity::Hour | Granularity::Day | Granularity::Week) => {
                (Granularity::Week, 52)
            }
        }
    }

    /// The GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodOffset::PreviousPeriod => "PREVIOUS_PERIOD",
            PeriodOffset::YearAgo => "YEAR_AGO",
        }
    }

    /// From the GraphQL enum value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PREVIOUS_PERIOD" => Some(PeriodOffset::PreviousPeriod),
            "YEAR_AGO" => Some(PeriodOffset::YearAgo),
            _ => None,
        }
    }
}

/// What an offset field returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetCalculation {
    /// The metric in the earlier bucket.
    Value,
    /// The current value minus the earlier one.
    Change,
    /// The current value over the earlier one, minus 1 (null when the earlier one is 0 or
    /// null).
    Growth,
}

/// The granularities `toDate` sums up to: month, quarter, year.
pub const TO_DATE_GRAINS: [Granularity; 3] =
    [Granularity::Month, Granularity::Quarter, Granularity::Year];

impl QuerySpec {
    /// The dimension of the request's one time slot and its granularity, which comparisons
    /// are relative to.
    pub fn comparison_time_slot(&self, model: &Model) -> Option<(&str, Granularity)> {
        let times: Vec<(&str, Option<Granularity>)> = self
            .dimension_slots()
            .into_iter()
            .filter(|(d, _)| model.dimension(d).map(|x| x.dim_type) == Some(DimType::Time))
            .collect();
        match times.as_slice() {
            [(d, Some(g))] => Some((d, *g)),
            _ => None,
        }
    }

    /// Checks every compared metric of the request.
    pub(super) fn check_comparisons(&self, model: &Model) -> Result<(), ApiError> {
        for f in &self.fields {
            let Item::Compared { name, comparison } = &f.item else {
                continue;
            };
            let what = match comparison {
                Comparison::Offset { offset, .. } => format!("{name}(offset: {})", offset.as_str()),
                Comparison::ToDate(g) => {
                    format!("{name}(toDate: {})", g.as_str().to_uppercase())
                }
            };
            let Some((dim, g)) = self.comparison_time_slot(model) else {
                return Err(ApiError::MissingTimeDimension(format!(
                    "{what} is relative to the request's time dimension: select exactly one time dimension, once, with a granularity"
                )));
            };
            check_kind(
                model,
                name,
                &what,
                matches!(comparison, Comparison::ToDate(_)),
            )?;
            if let Comparison::ToDate(grain) = comparison {
                let nests = match g {
                    Granularity::Hour | Granularity::Day => true,
                    Granularity::Month | Granularity::Quarter => g < *grain,
                    Granularity::Week | Granularity::Year => false,
                };
                if !nests {
                    return Err(ApiError::BadGranularity(format!(
                        "{what} sums the {}s of {dim} within each {}: group {dim} by a period that {} is made of (HOUR or DAY{})",
                        g.as_str().to_uppercase(),
                        grain.as_str(),
                        grain.as_str(),
                        match grain {
                            Granularity::Month => String::new(),
                            Granularity::Quarter => ", MONTH".to_owned(),
                            _ => ", MONTH, QUARTER".to_owned(),
                        }
                    )));
                }
            }
            if let Some(filter) = &self.filter
                && nested_on(filter, dim, true)
            {
                return Err(ApiError::BadTimeComparison(format!(
                    "{what}: where holds a condition on {dim} inside or/not; conditions on the compared time dimension must be at the top level (and), as they choose the buckets shown"
                )));
            }
        }
        Ok(())
    }
}

/// Whether `metric` has the comparison: every metric it is built from is simple (ratios and
/// derived metrics over them are computed from the compared measures), and for `toDate`
/// (`additive`) every measure is a count or a sum.
fn check_kind(model: &Model, metric: &str, what: &str, additive: bool) -> Result<(), ApiError> {
    for x in model.metric_tree(metric) {
        let m = &x.name;
        match &x.kind {
            MetricKind::Simple { measure } => {
                if additive
                    && let Some(ms) = model.measure(measure)
                    && !ms.agg.is_additive()
                {
                    return Err(ApiError::BadTimeComparison(format!(
                        "{what}: metric {m} is a {} of rows, which does not add up over buckets; toDate takes metrics whose measures are counts or sums (and ratios or derived metrics of them)",
                        ms.agg.as_str()
                    )));
                }
            }
            MetricKind::Ratio { .. } | MetricKind::Derived { .. } => {}
            other => {
                return Err(ApiError::BadTimeComparison(format!(
                    "{what}: metric {m} is a {} metric, which has no period comparison; offset, toDate and …Growth take simple metrics and ratios or derived metrics of them",
                    other.as_str()
                )));
            }
        }
    }
    Ok(())
}

/// Whether `f` holds a condition on `dim` anywhere but under top-level `and`s (`top`).
fn nested_on(f: &Filter, dim: &str, top: bool) -> bool {
    match f {
        Filter::And(xs) => xs.iter().any(|x| nested_on(x, dim, top)),
        Filter::Or(xs) => xs.iter().any(|x| nested_on(x, dim, false)),
        Filter::Not(x) => nested_on(x, dim, false),
        Filter::Cond { dimension, .. } => !top && dimension == dim,
    }
}

/// `f` without its top-level conditions on `dim` (`None`: nothing is left).
pub fn without_dimension(f: &Filter, dim: &str) -> Option<Filter> {
    match f {
        Filter::And(xs) => Some(Filter::And(
            xs.iter()
                .filter_map(|x| without_dimension(x, dim))
                .collect(),
        )),
        Filter::Cond { dimension, .. } if dimension == dim => None,
        other => Some(other.clone()),
    }
}
