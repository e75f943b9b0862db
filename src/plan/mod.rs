//! From a checked [`QuerySpec`] to a [`Plan`]: a tree of typed nodes — the `asOf` cut of
//! every table touched ([`CutNode`]), one aggregate per measure table joined to the dimension
//! tables ([`AggregateNode`]), a node per conversion / retention / period-average /
//! distinct-window metric ([`SpecialNode`]), the union of their dimension values
//! ([`KeysNode`]) and the response ([`OutputNode`]).
//!
//! Nodes hold the model elements they need (tables as [`Arc`]s, dimensions and measures as
//! copies), resolved and checked here: the renderer (`crate::sql::render`) reads the plan
//! and nothing else. Every node carries a one-line description, which the renderer writes as
//! a comment above the node's CTE. The values that differ between requests of one shape are
//! [`Param`]s, bound per request from [`Bindings`].
//!
//! A name the checked request or the validated model should have made impossible is a
//! [`PlanError`] (an internal error), never SQL.
//!
//! A new kind of metric that needs CTEs of its own is a node file here (the node, its value
//! in the final SELECT, and its planning) and a renderer file in `src/sql/render/`, joined by
//! one variant of [`SpecialNode`] and of [`MetricValue`] and their arms in the two dispatch
//! points (`Plan`'s needs here, `Renderer::special_ctes` / `Renderer::metric` there).

mod aggregate;
mod compare;
mod conversion;
mod cut;
mod distinct_window;
mod filter;
mod funnel;
mod keys;
mod metric;
mod output;
mod param;
mod period_average;
mod retention;
mod rows;
mod slot;

use std::sync::Arc;

pub use aggregate::{AggregateNode, AggregatedMeasure};
pub use compare::{ShiftKind, TimeShift};
pub use conversion::{ConversionNode, ConversionValue};
pub use cut::{CutCondition, CutNode, CutSource, LatestRow, sql_params};
pub use distinct_window::{DistinctWindowNode, DistinctWindowValue};
pub use filter::PlannedFilter;
pub use funnel::{FunnelNode, FunnelOut, PlannedStep};
pub use keys::KeysNode;
pub use metric::{CumulativeValue, DerivedValue, MeasureRef, MetricValue, ToDateWindow};
pub use output::{OutType, OutputColumn, OutputNode, OutputValue, TimeLookup};
pub use param::{
    AsOfText, Attributes, BindAs, Bindings, CallerParam, Param, PolicyDenied, bind, caller_value,
    check_caller,
};
pub use period_average::{PeriodAverageNode, PeriodAverageValue};
pub use retention::{RetentionNode, RetentionValue};
pub use rows::{RowOrder, RowsNode, out_type};
pub use slot::DimSlot;

use crate::query::QuerySpec;
use crate::semantic::{
    Dimension, Granularity, Measure, Metric, MetricKind, Model, RetentionEvent, Table,
};

/// How deep metrics may refer to metrics (ratios, derived metrics). Validation rejects
/// cycles; this only bounds the recursion.
const MAX_DEPTH: usize = 32;

/// An internal error: a state that a checked request over a validated model cannot reach
/// (an unknown name, a missing node), found while planning or rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal error while planning the query: {message}")]
pub struct PlanError {
    /// What is wrong.
    pub message: String,
}

impl PlanError {
    /// A new error.
    pub fn new(message: impl Into<String>) -> Self {
        PlanError {
            message: message.into(),
        }
    }
}

/// The plan of one request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The model.
    pub model: String,
    /// The distinct dimension slots (`d0`, `d1`, …) every node groups by.
    pub slots: Vec<DimSlot>,
    /// One `asOf` cut per table the plan touches.
    pub cuts: Vec<CutNode>,
    /// One aggregation per measure table.
    pub aggregates: Vec<AggregateNode>,
    /// Nodes of conversion, retention, period-average and distinct-window metrics.
    pub specials: Vec<SpecialNode>,
    /// The union of the dimension values of every node, when several nodes are grouped.
    pub keys: Option<KeysNode>,
    /// The request's `where`, applied to the rows of every node.
    pub filter: Option<PlannedFilter>,
    /// The response: columns, order, limit and offset.
    pub output: OutputNode,
    /// The tables joined, measure tables first (for `explain`).
    pub join_path: Vec<String>,
    /// A row query's node (the rows of one table); `None` for metrics.
    pub rows: Option<RowsNode>,
    /// A funnel request's node; `None` for metrics and rows.
    pub funnel: Option<FunnelNode>,
}

impl Plan {
    /// Whether the statement embeds a SQL table (a model's own query file).
    pub fn embeds_sql_tables(&self) -> bool {
        self.cuts
            .iter()
            .any(|c| matches!(c.source, CutSource::Sql { .. }))
    }
}

/// The rows a node reads: a table's `asOf` cut, joined to the dimension tables.
#[derive(Debug, Clone)]
pub struct RowSource {
    /// The table (the measure's, the base events', the activity's).
    pub table: Arc<Table>,
    /// The CTE of its cut.
    pub cte: String,
    /// Joins from the table to the dimension tables, in order, each once.
    pub joins: Vec<PlannedJoin>,
}

/// One join of a node's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJoin {
    /// The table joined from (its alias).
    pub from: String,
    /// The table joined (its alias).
    pub to: String,
    /// The CTE of the joined table's cut.
    pub to_cte: String,
    /// `(from column, to column)` pairs, oriented the way the join is followed.
    pub on: Vec<(String, String)>,
}

/// A node computing metrics that a per-table aggregate cannot: its CTEs end in one whose
/// columns are the slots `d0..` and the node's values.
#[derive(Debug, Clone)]
pub enum SpecialNode {
    /// A conversion metric.
    Conversion(Box<ConversionNode>),
    /// Retention counts of a `count_distinct` measure.
    Retention(RetentionNode),
    /// A period average.
    PeriodAverage(PeriodAverageNode),
    /// A cumulative metric over a `count_distinct` measure.
    DistinctWindow(DistinctWindowNode),
}

impl SpecialNode {
    /// The node's final CTE (the prefix of its other CTEs).
    pub fn cte(&self) -> &str {
        match self {
            SpecialNode::Conversion(n) => &n.cte,
            SpecialNode::Retention(n) => &n.cte,
            SpecialNode::PeriodAverage(n) => &n.cte,
            SpecialNode::DistinctWindow(n) => &n.cte,
        }
    }

    /// What the node computes.
    pub fn description(&self) -> &str {
        match self {
            SpecialNode::Conversion(n) => &n.description,
            SpecialNode::Retention(n) => &n.description,
            SpecialNode::PeriodAverage(n) => &n.description,
            SpecialNode::DistinctWindow(n) => &n.description,
        }
    }

    /// The rows the node reads.
    pub fn rows(&self) -> &RowSource {
        match self {
            SpecialNode::Conversion(n) => &n.rows,
            SpecialNode::Retention(n) => &n.rows,
            SpecialNode::PeriodAverage(n) => &n.rows,
            SpecialNode::DistinctWindow(n) => &n.rows,
        }
    }
}

/// What a metric needs computed below the final SELECT.
#[derive(Debug, Clone, PartialEq)]
enum Need {
    /// A measure of the per-table aggregate of its table.
    Measure(String),
    /// A conversion node (by metric).
    Conversion(String),
    /// A retention node (by measure, along a time dimension) and a count it computes.
    Retention(String, String, RetentionEvent),
    /// A period-average node (by metric).
    PeriodAverage(String),
    /// A distinct-window node (by metric).
    DistinctWindow(String),
}

/// Plans a checked spec. `percentile_cont`: whether the backend computes medians natively.
pub fn plan(model: &Model, spec: &QuerySpec, percentile_cont: bool) -> Result<Plan, PlanError> {
    let mut p = Planner {
        model,
        tables: Vec::new(),
        touched: Vec::new(),
        dim_tables: Vec::new(),
        row_columns: Vec::new(),
    };
    if let Some(table) = &spec.rows {
        return rows::plan(&mut p, spec, table);
    }
    if let Some(f) = &spec.funnel {
        return funnel::plan(&mut p, spec, f);
    }
    let mut slots = Vec::new();
    for (d, g) in spec.dimension_slots() {
        slots.push(slot::plan(&mut p, d, g, spec.timezone.is_some())?);
    }
    let mut needs = Vec::new();
    for m in spec.metric_names() {
        p.needs(m, &mut needs, 0)?;
    }
    // a time axis is read on each measure's own table: nothing to join
    for s in &slots {
        if s.dimension.axis.is_empty() && !p.dim_tables.contains(&s.dimension.table) {
            p.dim_tables.push(s.dimension.table.clone());
        }
    }
    let filter = p.request_filter(spec)?;
    let mut aggregates = aggregate::plan(&mut p, &needs, percentile_cont, None)?;
    // one aggregate is the only node of the response: no median computed apart, no special
    let alone = aggregates.len() == 1
        && aggregates
            .iter()
            .all(|a| a.measures.iter().all(|m| m.median_cte.is_none()))
        && needs.iter().all(|n| matches!(n, Need::Measure(_)));
    let compared = compare::plan(&mut p, spec, &slots, percentile_cont, &aggregates, alone)?;
    aggregates.extend(compared.aggregates);
    let mut specials: Vec<SpecialNode> = Vec::new();
    for need in &needs {
        let node = match need {
            Need::Measure(_) => continue,
            Need::Conversion(metric) => {
                let node = conversion::plan(&mut p, metric, spec.conversion_filter.as_deref())?;
                // a rate and a count of the same conversion read one node
                let same = specials.iter_mut().find_map(|n| match n {
                    SpecialNode::Conversion(x) if x.same_events(&node) => Some(x),
                    _ => None,
                });
                if let Some(x) = same {
                    x.shared_with.push(metric.clone());
                    continue;
                }
                SpecialNode::Conversion(Box::new(node))
            }
            Need::Retention(measure, time_dimension, event) => {
                // the metrics of one measure along one time dimension read one node
                let same = specials.iter_mut().find_map(|n| match n {
                    SpecialNode::Retention(x)
                        if x.measure.name == *measure && x.time_dimension == *time_dimension =>
                    {
                        Some(x)
                    }
                    _ => None,
                });
                if let Some(x) = same {
                    x.add_event(*event);
                    continue;
                }
                SpecialNode::Retention(retention::plan(
                    &mut p,
                    measure,
                    time_dimension,
                    &[*event],
                    &slots,
                )?)
            }
            Need::PeriodAverage(metric) => {
                SpecialNode::PeriodAverage(period_average::plan(&mut p, metric, &slots)?)
            }
            Need::DistinctWindow(metric) => {
                SpecialNode::DistinctWindow(distinct_window::plan(&mut p, metric, &slots)?)
            }
        };
        specials.push(node);
    }
    let cuts = p
        .touched
        .clone()
        .iter()
        .map(|t| cut::plan(&mut p, t))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = keys::plan(&aggregates, &specials, &slots);
    let output = output::plan(
        &p,
        spec,
        &slots,
        &aggregates,
        &specials,
        keys.as_ref(),
        &compared.windows,
    )?;
    Ok(Plan {
        model: model.name.clone(),
        slots,
        cuts,
        aggregates,
        specials,
        keys,
        filter,
        output,
        join_path: p.touched,
        rows: None,
        funnel: None,
    })
}

/// What planning keeps while it walks the request.
struct Planner<'a> {
    model: &'a Model,
    /// The tables resolved so far, shared by the nodes that read them.
    tables: Vec<Arc<Table>>,
    /// The tables the plan reads, in first-use order (each gets an `asOf` cut).
    touched: Vec<String>,
    /// The tables of the dimensions selected or filtered on.
    dim_tables: Vec<String>,
    /// A row query's columns, which its filter names like dimensions.
    row_columns: Vec<Dimension>,
}

impl Planner<'_> {
    fn table(&mut self, name: &str) -> Result<Arc<Table>, PlanError> {
        if let Some(t) = self.tables.iter().find(|t| t.name == name) {
            return Ok(t.clone());
        }
        let t = self
            .model
            .table(name)
            .ok_or_else(|| PlanError::new(format!("unknown table {name:?}")))?
            .clone();
        self.tables.push(t.clone());
        Ok(t)
    }

    fn dimension(&self, name: &str) -> Result<&Dimension, PlanError> {
        if !self.row_columns.is_empty() {
            return self
                .row_columns
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| PlanError::new(format!("unknown column {name:?}")));
        }
        self.model
            .dimension(name)
            .ok_or_else(|| PlanError::new(format!("unknown dimension {name:?}")))
    }

    fn measure(&self, name: &str) -> Result<&Measure, PlanError> {
        self.model
            .measure(name)
            .ok_or_else(|| PlanError::new(format!("unknown measure {name:?}")))
    }

    fn metric(&self, name: &str) -> Result<&Metric, PlanError> {
        self.model
            .metric(name)
            .ok_or_else(|| PlanError::new(format!("unknown metric {name:?}")))
    }

    /// The request's filter, planned, with the tables of its dimensions added to the
    /// dimension tables the rows join.
    fn request_filter(&mut self, spec: &QuerySpec) -> Result<Option<PlannedFilter>, PlanError> {
        for d in spec.filter_dimensions() {
            let dim = self.dimension(d)?;
            let table = dim.table.clone();
            if dim.axis.is_empty() && !self.dim_tables.contains(&table) {
                self.dim_tables.push(table);
            }
        }
        spec.filter
            .as_ref()
            .map(|f| filter::plan(self, f, spec.values.len()))
            .transpose()
    }

    fn touch(&mut self, table: &str) {
        if !self.touched.iter().any(|x| x == table) {
            self.touched.push(table.to_owned());
        }
    }

    /// What `metric` needs computed, added to `out` (each once, in first-use order).
    fn needs(&self, metric: &str, out: &mut Vec<Need>, depth: usize) -> Result<(), PlanError> {
        if depth > MAX_DEPTH {
            return Err(PlanError::new(format!(
                "metric {metric}: metrics nest deeper than {MAX_DEPTH}"
            )));
        }
        let m = self.metric(metric)?;
        let mut push = |n: Need| {
            if !out.contains(&n) {
                out.push(n);
            }
        };
        match &m.kind {
            MetricKind::Simple { measure } => push(Need::Measure(measure.clone())),
            MetricKind::Cumulative { measure, .. } => {
                if self.measure(measure)?.agg.is_additive() {
                    push(Need::Measure(measure.clone()));
                } else {
                    push(Need::DistinctWindow(m.name.clone()));
                }
            }
            MetricKind::Ratio {
                numerator,
                denominator,
            } => {
                self.needs(numerator, out, depth + 1)?;
                self.needs(denominator, out, depth + 1)?;
            }
            MetricKind::Derived { expr } => {
                for name in expr.identifiers() {
                    self.needs(&name, out, depth + 1)?;
                }
            }
            MetricKind::Conversion(_) => push(Need::Conversion(m.name.clone())),
            MetricKind::Retention {
                measure,
                time_dimension,
                event,
                ..
            } => push(Need::Retention(
                measure.clone(),
                time_dimension.clone(),
                *event,
            )),
            MetricKind::PeriodAverage { .. } => push(Need::PeriodAverage(m.name.clone())),
        }
        Ok(())
    }

    /// The rows of `table` joined to every dimension table (which the checked request
    /// guarantees it reaches); touches the tables read.
    fn rows(&mut self, table: &str) -> Result<RowSource, PlanError> {
        self.touch(table);
        let mut joins: Vec<PlannedJoin> = Vec::new();
        for dt in self.dim_tables.clone() {
            let path = self.model.join_path(table, &dt).ok_or_else(|| {
                PlanError::new(format!("no join path from table {table} to table {dt}"))
            })?;
            let mut at = table.to_owned();
            for step in path {
                let j = self
                    .model
                    .joins
                    .get(step.join)
                    .ok_or_else(|| PlanError::new(format!("unknown join #{}", step.join)))?;
                let next = if step.reversed { &j.from } else { &j.to };
                if !joins.iter().any(|x| x.to == *next) {
                    joins.push(PlannedJoin {
                        from: at.clone(),
                        to: next.clone(),
                        to_cte: cut::cte_name(next),
                        on: j
                            .on
                            .iter()
                            .map(|(fc, tc)| {
                                if step.reversed {
                                    (tc.clone(), fc.clone())
                                } else {
                                    (fc.clone(), tc.clone())
                                }
                            })
                            .collect(),
                    });
                }
                self.touch(next);
                at = next.clone();
            }
        }
        Ok(RowSource {
            table: self.table(table)?,
            cte: cut::cte_name(table),
            joins,
        })
    }
}

/// The one slot of a time dimension (the checked request selects it once, with a
/// granularity): its index and granularity.
fn time_slot(slots: &[DimSlot], dimension: &str) -> Result<(usize, Granularity), PlanError> {
    slots
        .iter()
        .enumerate()
        .find(|(_, s)| s.dimension.name == dimension)
        .and_then(|(i, s)| Some((i, s.granularity?)))
        .ok_or_else(|| {
            PlanError::new(format!(
                "the time dimension {dimension} is not selected with a granularity"
            ))
        })
}
