//! A request as a typed [`QuerySpec`] (no GraphQL types), and its validation against a model.
//!
//! The GraphQL layer turns a `metrics` field (its selection set and arguments) into a
//! `QuerySpec`; [`QuerySpec::check`] validates it against the [`Model`] with user errors that
//! carry a code and, for unknown names, the nearest valid name.

mod compare;

pub use compare::{Comparison, OffsetCalculation, PeriodOffset, TO_DATE_GRAINS, without_dimension};
mod funnel;

use chrono::{DateTime, Utc};

pub use funnel::{
    FIRST_STEP_TIME, FunnelSpec, FunnelValue, StepFilter, WindowPer, Within, picked_steps,
};

use crate::error::ApiError;
use crate::semantic::{DimType, Granularity, MetricKind, Model};

/// A validated request of one model: metrics (aggregated, grouped by the selected
/// dimensions), or, when [`QuerySpec::rows`] names a table, a row query (the rows of that
/// table, with the selected columns).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    /// The model asked.
    pub model: String,
    /// A row query: the table (with a `rows` field) whose rows are listed. `None`: metrics.
    pub rows: Option<String>,
    /// What is selected, in selection order (response key and what it is).
    pub fields: Vec<Selected>,
    /// The `where` filter over dimensions.
    pub filter: Option<Filter>,
    /// Sort keys, in order.
    pub order: Vec<OrderItem>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Skip this many rows first.
    pub offset: Option<u64>,
    /// The instant whose knowledge the answer uses.
    pub as_of: DateTime<Utc>,
    /// The IANA time zone time buckets are computed in (`None`: UTC).
    pub timezone: Option<String>,
    /// The named conversion variant (`None`: the model's default).
    pub conversion_filter: Option<String>,
    /// The values the filter compares with, referenced by index from [`Filter::Cond`].
    pub values: Vec<ReqValue>,
    /// A funnel request: the funnel, its steps and window (`None`: metrics or rows).
    pub funnel: Option<FunnelSpec>,
}

/// One selected field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selected {
    /// The response key (the alias, or the field name).
    pub key: String,
    /// The dimension or metric.
    pub item: Item,
}

/// A selected dimension or metric.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// A dimension; time dimensions carry a granularity.
    Dimension {
        /// Its name.
        name: String,
        /// Its granularity (time dimensions only).
        granularity: Option<Granularity>,
    },
    /// A metric.
    Metric {
        /// Its name.
        name: String,
    },
    /// A metric's value in an earlier bucket, or summed to date (`netSales(offset: …)`,
    /// `netSales(toDate: …)`, `netSalesGrowth(offset: …)`).
    Compared {
        /// The metric.
        name: String,
        /// Which value.
        comparison: Comparison,
    },
    /// `isComplete`: whether every time bucket of the row has ended as of `asOf`.
    IsComplete,
    /// A column of a row query (its field name).
    Column {
        /// The column's field name (`userId`).
        name: String,
    },
    /// A value of a funnel row.
    Funnel(FunnelValue),
}

/// A filter over dimensions (their raw values: time dimensions are compared unbucketed).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All hold.
    And(Vec<Filter>),
    /// One holds.
    Or(Vec<Filter>),
    /// Does not hold.
    Not(Box<Filter>),
    /// A comparison of one dimension.
    Cond {
        /// The dimension.
        dimension: String,
        /// The comparison.
        op: FilterOp,
        /// Indexes into [`QuerySpec::values`].
        args: Vec<usize>,
    },
}

impl Filter {
    /// The dimension names it compares, each once, in order.
    pub fn dimensions(&self) -> Vec<&str> {
        fn walk<'a>(f: &'a Filter, out: &mut Vec<&'a str>) {
            match f {
                Filter::And(xs) | Filter::Or(xs) => xs.iter().for_each(|x| walk(x, out)),
                Filter::Not(x) => walk(x, out),
                Filter::Cond { dimension, .. } => {
                    if !out.contains(&dimension.as_str()) {
                        out.push(dimension);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

/// A comparison of a dimension with values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `= v`
    Equals,
    /// `<> v`
    NotEquals,
    /// `IN (v, …)`
    In,
    /// `NOT IN (v, …)`
    NotIn,
    /// Contains the text `v` (case-sensitive).
    Contains,
    /// Starts with the text `v`.
    StartsWith,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
    /// `> v`
    Gt,
    /// `>= v`
    Gte,
    /// `< v`
    Lt,
    /// `<= v`
    Lte,
    /// `>= a AND <= b`
    Between,
}

impl FilterOp {
    /// The operator's name in a request's `where` (`isNull: false` for [`FilterOp::IsNotNull`]).
    pub fn request_name(self) -> &'static str {
        match self {
            FilterOp::Equals => "equals",
            FilterOp::NotEquals => "notEquals",
            FilterOp::In => "in",
            FilterOp::NotIn => "notIn",
            FilterOp::Contains => "contains",
            FilterOp::StartsWith => "startsWith",
            FilterOp::IsNull => "isNull",
            FilterOp::IsNotNull => "isNull: false",
            FilterOp::Gt => "gt",
            FilterOp::Gte => "gte",
            FilterOp::Lt => "lt",
            FilterOp::Lte => "lte",
            FilterOp::Between => "between",
        }
    }

    /// The operator a request's `where` names `name`, of those that compare with one value.
    pub fn single_valued(name: &str) -> Option<FilterOp> {
        [
            FilterOp::Equals,
            FilterOp::NotEquals,
            FilterOp::Contains,
            FilterOp::StartsWith,
            FilterOp::Gt,
            FilterOp::Gte,
            FilterOp::Lt,
            FilterOp::Lte,
        ]
        .into_iter()
        .find(|op| op.request_name() == name)
    }
}

/// A value from the request.
#[derive(Debug, Clone, PartialEq)]
pub enum ReqValue {
    /// Text.
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// An instant.
    Time(DateTime<Utc>),
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderItem {
    /// A selected dimension or metric name.
    pub target: String,
    /// Descending instead of ascending.
    pub descending: bool,
}

/// The candidate nearest to `name`, when it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|(_, s)| *s >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

fn did_you_mean(name: &str, candidates: Vec<&str>) -> String {
    match suggest(name, candidates) {
        Some(s) => format!(" Did you mean \"{s}\"?"),
        None => String::new(),
    }
}

/// `d` (the dimension `dim`) at granularity `g`: a time dimension takes one it offers, other
/// dimensions none; else `BAD_GRANULARITY`.
fn granularity_fits(
    d: &str,
    dim: &crate::semantic::Dimension,
    g: Option<Granularity>,
) -> Result<(), ApiError> {
    match (dim.dim_type, g) {
        (DimType::Time, Some(g)) if !dim.granularities.contains(&g) => {
            Err(ApiError::BadGranularity(format!(
                "{d} has no {} granularity (it has {})",
                g.as_str().to_uppercase(),
                dim.granularities
                    .iter()
                    .map(|g| g.as_str().to_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        (DimType::Time, None) => Err(ApiError::BadGranularity(format!("{d} needs a granularity"))),
        (t, Some(_)) if t != DimType::Time => Err(ApiError::BadGranularity(format!(
            "{d} is not a time dimension: it takes no granularity"
        ))),
        _ => Ok(()),
    }
}

impl QuerySpec {
    /// A spec with nothing selected, for `model` as of `as_of`.
    pub fn new(model: impl Into<String>, as_of: DateTime<Utc>) -> Self {
        QuerySpec {
            model: model.into(),
            rows: None,
            fields: Vec::new(),
            filter: None,
            order: Vec::new(),
            limit: None,
            offset: None,
            as_of,
            timezone: None,
            conversion_filter: None,
            values: Vec::new(),
            funnel: None,
        }
    }

    /// Adds a value and returns its index (for [`Filter::Cond`]).
    pub fn value(&mut self, v: ReqValue) -> usize {
        self.values.push(v);
        self.values.len() - 1
    }

    /// The selected metric names (compared ones included), without duplicates.
    pub fn metric_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.fields {
            if let Item::Metric { name } | Item::Compared { name, .. } = &f.item
                && !out.contains(&name.as_str())
            {
                out.push(name);
            }
        }
        out
    }

    /// The distinct (dimension, granularity) pairs selected, in order.
    pub fn dimension_slots(&self) -> Vec<(&str, Option<Granularity>)> {
        let mut out: Vec<(&str, Option<Granularity>)> = Vec::new();
        for f in &self.fields {
            if let Item::Dimension { name, granularity } = &f.item
                && !out.contains(&(name.as_str(), *granularity))
            {
                out.push((name, *granularity));
            }
        }
        out
    }

    /// Dimension names the filter uses.
    pub fn filter_dimensions(&self) -> Vec<&str> {
        self.filter
            .as_ref()
            .map(Filter::dimensions)
            .unwrap_or_default()
    }

    /// The normalised request: everything that shapes the SQL, without the bound values and
    /// the as-of instant. Two requests with the same key share a plan.
    pub fn cache_key(&self) -> String {
        let kinds: Vec<&str> = self
            .values
            .iter()
            .map(|v| match v {
                ReqValue::Str(_) => "s",
                ReqValue::Num(_) => "n",
                ReqValue::Bool(_) => "b",
                ReqValue::Time(_) => "t",
            })
            .collect();
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}|{}|{}",
            self.model,
            self.rows,
            self.funnel,
            self.fields,
            self.filter,
            self.order,
            self.limit.is_some(),
            self.offset.is_some(),
            self.timezone.is_some(),
            self.conversion_filter.as_deref().unwrap_or(""),
            kinds.join(",")
        )
    }

    /// A row query of `table` of `model` as of `as_of`, nothing selected yet.
    pub fn rows_of(
        model: impl Into<String>,
        table: impl Into<String>,
        as_of: DateTime<Utc>,
    ) -> Self {
        let mut spec = QuerySpec::new(model, as_of);
        spec.rows = Some(table.into());
        spec
    }

    /// Checks every name and combination against `model`.
    pub fn check(&self, model: &Model) -> Result<(), ApiError> {
        if let Some(table) = &self.rows {
            return self.check_rows(model, table);
        }
        if let Some(f) = &self.funnel {
            return self.check_funnel(model, f);
        }
        let dim_names = || {
            model
                .dimensions
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
        };
        let metrics = self.metric_names();
        if metrics.is_empty() {
            return Err(ApiError::NoMetric(format!(
                "select at least one metric of {} (dimensions group metrics; the metrics are {})",
                model.name,
                model
                    .metrics
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for m in &metrics {
            if model.metric(m).is_none() {
                let candidates = model.metrics.iter().map(|m| m.name.as_str()).collect();
                return Err(ApiError::UnknownMetric(format!(
                    "unknown metric \"{m}\" of {}.{}",
                    model.name,
                    did_you_mean(m, candidates)
                )));
            }
        }
        for (d, g) in self.dimension_slots() {
            let Some(dim) = model.dimension(d) else {
                return Err(ApiError::UnknownDimension(format!(
                    "unknown dimension \"{d}\" of {}.{}",
                    model.name,
                    did_you_mean(d, dim_names())
                )));
            };
            granularity_fits(d, dim, g)?;
        }
        for d in self.filter_dimensions() {
            if model.dimension(d).is_none() {
                return Err(ApiError::UnknownDimension(format!(
                    "where: unknown dimension \"{d}\" of {}.{}",
                    model.name,
                    did_you_mean(d, dim_names())
                )));
            }
        }
        // Every measure's table reaches every dimension used.
        let mut used_dims: Vec<&str> = self.dimension_slots().into_iter().map(|(d, _)| d).collect();
        for d in self.filter_dimensions() {
            if !used_dims.contains(&d) {
                used_dims.push(d);
            }
        }
        for m in &metrics {
            for measure in model.metric_measures(m) {
                let Some(ms) = model.measure(&measure) else {
                    continue;
                };
                for d in &used_dims {
                    let Some(dim) = model.dimension(d) else {
                        continue;
                    };
                    if !dim.axis.is_empty() {
                        if dim.axis_on(&ms.table).is_none() {
                            return Err(ApiError::UnreachableDimension(format!(
                                "metric {m} cannot be grouped or filtered by {d}: its measure {measure} counts rows of table {}, which has no time column on the time axis {d} (it maps {})",
                                ms.table,
                                dim.axis
                                    .iter()
                                    .map(|(t, _)| t.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )));
                        }
                        continue;
                    }
                    if model.join_path(&ms.table, &dim.table).is_none() {
                        return Err(ApiError::UnreachableDimension(format!(
                            "metric {m} cannot be grouped or filtered by {d}: its measure {measure} counts rows of table {}, and no many-to-one join path leads from {} to {} (the table of {d})",
                            ms.table, ms.table, dim.table
                        )));
                    }
                }
            }
            // cumulative, retention and period-average metrics need their time dimension
            self.check_time_metrics(model, m)?;
        }
        self.check_comparisons(model)?;
        for o in &self.order {
            let selected = self.fields.iter().any(|f| match &f.item {
                Item::Dimension { name, .. } | Item::Metric { name } => *name == o.target,
                Item::IsComplete
                | Item::Column { .. }
                | Item::Compared { .. }
                | Item::Funnel(_) => false,
            });
            if !selected {
                return Err(ApiError::BadOrderBy(format!(
                    "orderBy {}: select it to order by it",
                    o.target
                )));
            }
        }
        self.check_zone_and_variant(model)
    }

    /// The granularity of the one slot of `time_dimension`, or `MISSING_TIME_DIMENSION`.
    fn one_time_slot(
        &self,
        metric: &str,
        time_dimension: &str,
        what: &str,
    ) -> Result<Granularity, ApiError> {
        let grains: Vec<Option<Granularity>> = self
            .dimension_slots()
            .into_iter()
            .filter(|(d, _)| *d == time_dimension)
            .map(|(_, g)| g)
            .collect();
        match grains.as_slice() {
            [Some(g)] => Ok(*g),
            _ => Err(ApiError::MissingTimeDimension(format!(
                "metric {metric} {what} {time_dimension}: select {time_dimension} once, with a granularity"
            ))),
        }
    }

    /// Checks a row query: the table lists its rows, every selected, filtered and sorted
    /// column is one of its columns, and the time zone and conversion variant exist.
    fn check_rows(&self, model: &Model, table: &str) -> Result<(), ApiError> {
        let rows = model
            .table(table)
            .and_then(|t| t.rows.as_ref())
            .ok_or_else(|| {
                ApiError::BadArgument(format!("table {table:?} of {} lists no rows", model.name))
            })?;
        let fields = || {
            rows.columns
                .iter()
                .map(|c| c.field.as_str())
                .collect::<Vec<_>>()
        };
        let unknown = |what: &str, name: &str| {
            ApiError::UnknownDimension(format!(
                "{what}unknown column \"{name}\" of {}.{}.{}",
                model.name,
                rows.field,
                did_you_mean(name, fields())
            ))
        };
        for f in &self.fields {
            match &f.item {
                Item::Column { name } if rows.column(name).is_some() => {}
                Item::Column { name }
                | Item::Dimension { name, .. }
                | Item::Metric { name }
                | Item::Compared { name, .. } => {
                    return Err(unknown("", name));
                }
                Item::IsComplete => return Err(unknown("", "isComplete")),
                Item::Funnel(_) => return Err(unknown("", "a funnel value")),
            }
        }
        for d in self.filter_dimensions() {
            if rows.column(d).is_none() {
                return Err(unknown("where: ", d));
            }
        }
        for o in &self.order {
            if rows.column(&o.target).is_none() {
                return Err(ApiError::BadOrderBy(format!(
                    "orderBy: {} is not a column of {}.{}",
                    o.target, model.name, rows.field
                )));
            }
        }
        self.check_zone_and_variant(model)
    }

    /// The time zone is an IANA zone and the conversion variant one of the model's.
    pub(super) fn check_zone_and_variant(&self, model: &Model) -> Result<(), ApiError> {
        if let Some(tz) = &self.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(ApiError::BadTimezone(format!(
                "timezone {tz:?} is not an IANA time zone (e.g. Europe/London)"
            )));
        }
        if let Some(cf) = &self.conversion_filter
            && !model.conversion_variants.contains(cf)
        {
            return Err(ApiError::BadConversionFilter(format!(
                "{} has no conversion variant {cf:?}",
                model.name
            )));
        }
        Ok(())
    }

    fn check_time_metrics(&self, model: &Model, metric: &str) -> Result<(), ApiError> {
        for x in model.metric_tree(metric) {
            match &x.kind {
                MetricKind::Cumulative {
                    time_dimension,
                    window_seconds,
                    ..
                } => {
                    let g = self.one_time_slot(metric, time_dimension, "accumulates along")?;
                    if let Some(w) = window_seconds {
                        match g.fixed_seconds() {
                            Some(s) if s <= *w => {}
                            _ => {
                                return Err(ApiError::BadGranularity(format!(
                                    "metric {metric} sums a trailing window of {} hours: group {time_dimension} by HOUR, DAY or WEEK no longer than the window",
                                    w / 3600
                                )));
                            }
                        }
                    }
                }
                MetricKind::Retention { time_dimension, .. } => {
                    self.one_time_slot(
                        metric,
                        time_dimension,
                        "compares each period with its neighbours along",
                    )?;
                }
                MetricKind::PeriodAverage {
                    time_dimension,
                    per,
                    ..
                } => {
                    let g =
                        self.one_time_slot(metric, time_dimension, "averages over the periods of")?;
                    if g <= *per {
                        return Err(ApiError::BadGranularity(format!(
                            "metric {metric} averages over the {}s of each bucket: group {time_dimension} by a longer period than {}",
                            per.as_str(),
                            per.as_str().to_uppercase()
                        )));
                    }
                }
                MetricKind::Ratio { .. }
                | MetricKind::Derived { .. }
                | MetricKind::Simple { .. }
                | MetricKind::Conversion(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names() {
        assert_eq!(
            suggest("convRate", ["conversionRate", "leads"]),
            Some("conversionRate")
        );
        assert_eq!(
            suggest("netsales", ["netSales", "orders"]),
            Some("netSales")
        );
        assert_eq!(suggest("zzz", ["netSales", "orders"]), None);
    }
}
