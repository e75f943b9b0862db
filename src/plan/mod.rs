//! From a checked [`QuerySpec`] to a [`Plan`]: which tables are cut by `asOf`, how each
//! measure table is joined to the dimensions and aggregated on its own, and how the
//! aggregates are combined into the response columns.
//!
//! Every node carries a one-line description, which the SQL renderer writes as a comment
//! above the node's CTE.

mod param;

pub use param::{AsOfText, BindAs, Bindings, Param, bind};

use crate::query::{Filter, Item, QuerySpec};
use crate::semantic::{Agg, DimType, Granularity, JoinStep, MetricKind, Model, Unit};

/// What a metric needs computed below the final SELECT.
#[derive(Debug, Clone, PartialEq)]
enum Need {
    /// A measure of the per-table aggregate of its table.
    Measure(String),
    /// A node of its own (conversion, retention, period average, distinct window).
    Special(SpecialKind),
}

/// The plan of one request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The model.
    pub model: String,
    /// One `asOf` cut per table the plan touches.
    pub cuts: Vec<CutNode>,
    /// One aggregation per measure table.
    pub aggregates: Vec<AggregateNode>,
    /// Nodes of conversion, retention, period-average and distinct-window metrics.
    pub specials: Vec<SpecialNode>,
    /// The distinct dimension slots (`d0`, `d1`, …) every aggregate groups by.
    pub slots: Vec<DimSlot>,
    /// The response columns.
    pub output: Vec<OutputColumn>,
    /// Sort keys: (output column index, descending).
    pub order: Vec<(usize, bool)>,
    /// Whether `LIMIT` / `OFFSET` are bound.
    pub limit: bool,
    /// Whether `OFFSET` is bound.
    pub offset: bool,
    /// The tables joined, measure tables first (for `explain`).
    pub join_path: Vec<String>,
}

/// The `asOf` cut of one table.
#[derive(Debug, Clone)]
pub struct CutNode {
    /// The logical table.
    pub table: String,
    /// The CTE name (`asof_<table>`).
    pub cte: String,
    /// What the cut keeps.
    pub description: String,
}

/// A dimension slot: a dimension at a granularity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimSlot {
    /// The dimension.
    pub dimension: String,
    /// Its granularity (time dimensions).
    pub granularity: Option<Granularity>,
}

/// The per-table aggregation of the measures of one table.
#[derive(Debug, Clone)]
pub struct AggregateNode {
    /// The measure table.
    pub table: String,
    /// The row CTE (`rows_<table>`): the table joined to the dimension tables and filtered.
    pub rows_cte: String,
    /// The aggregate CTE (`agg_<table>`).
    pub agg_cte: String,
    /// Joins from the table to the dimension tables, in order, each once.
    pub joins: Vec<PlannedJoin>,
    /// The measures aggregated here (column `m<i>` of `agg_cte`, value `v<i>` of `rows_cte`).
    pub measures: Vec<String>,
    /// Indexes (into `measures`) of medians computed by window functions in their own CTE
    /// (`med_<table>_<i>`) on backends without `percentile_cont`.
    pub window_medians: Vec<usize>,
    /// What it does.
    pub description: String,
}

/// A node computing metrics that a per-table aggregate cannot: its CTEs end in one whose
/// columns are the slots `d0..` and the node's values.
#[derive(Debug, Clone)]
pub struct SpecialNode {
    /// The table whose rows it reads (the base, activity or measure table).
    pub table: String,
    /// Joins from the table to the dimension tables.
    pub joins: Vec<PlannedJoin>,
    /// The final CTE of the node (prefix of its other CTEs).
    pub cte: String,
    /// What it computes.
    pub kind: SpecialKind,
    /// What it does.
    pub description: String,
}

/// What a [`SpecialNode`] computes.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecialKind {
    /// A conversion metric: columns `base` and `conv`.
    Conversion {
        /// The metric.
        metric: String,
    },
    /// Retention counts of a `count_distinct` measure along a time dimension: columns
    /// `active`, `churned`, `retained`, `resurrected`, `new`.
    Retention {
        /// The measure.
        measure: String,
        /// The time dimension (its one slot is the period).
        time_dimension: String,
    },
    /// A period average: column `total` (the sum over the sub-periods).
    PeriodAverage {
        /// The metric.
        metric: String,
    },
    /// A cumulative metric over a `count_distinct` measure: column `m`.
    DistinctWindow {
        /// The metric.
        metric: String,
    },
}

/// One join of an aggregate's row CTE.
#[derive(Debug, Clone)]
pub struct PlannedJoin {
    /// The join followed.
    pub step: JoinStep,
    /// The table joined from (its alias).
    pub from: String,
    /// The table joined (its alias).
    pub to: String,
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
    /// A dimension slot (index into [`Plan::slots`]).
    Slot(usize),
    /// A metric.
    Metric(String),
    /// Whether every time bucket of the row has ended as of `asOf`.
    Complete,
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

fn needs(model: &Model, metric: &str, out: &mut Vec<Need>, depth: usize) {
    if depth > 64 {
        return;
    }
    let Some(m) = model.metric(metric) else {
        return;
    };
    let mut push = |n: Need| {
        if !out.contains(&n) {
            out.push(n);
        }
    };
    match &m.kind {
        MetricKind::Simple { measure } => push(Need::Measure(measure.clone())),
        MetricKind::Cumulative { measure, .. } => {
            if model.measure(measure).is_some_and(|x| x.agg.is_additive()) {
                push(Need::Measure(measure.clone()));
            } else {
                push(Need::Special(SpecialKind::DistinctWindow {
                    metric: m.name.clone(),
                }));
            }
        }
        MetricKind::Ratio {
            numerator,
            denominator,
        } => {
            needs(model, numerator, out, depth + 1);
            needs(model, denominator, out, depth + 1);
        }
        MetricKind::Derived { expr } => {
            for name in expr.identifiers() {
                needs(model, &name, out, depth + 1);
            }
        }
        MetricKind::Conversion(_) => push(Need::Special(SpecialKind::Conversion {
            metric: m.name.clone(),
        })),
        MetricKind::Retention {
            measure,
            time_dimension,
            ..
        } => push(Need::Special(SpecialKind::Retention {
            measure: measure.clone(),
            time_dimension: time_dimension.clone(),
        })),
        MetricKind::PeriodAverage { .. } => push(Need::Special(SpecialKind::PeriodAverage {
            metric: m.name.clone(),
        })),
    }
}

/// The joins from `table` to every table of `dim_tables` it reaches, each once, in order.
fn joins_for(
    model: &Model,
    table: &str,
    dim_tables: &[String],
    touched: &mut Vec<String>,
) -> Vec<PlannedJoin> {
    let mut joins: Vec<PlannedJoin> = Vec::new();
    for dt in dim_tables {
        let Some(path) = model.join_path(table, dt) else {
            continue;
        };
        let mut at = table.to_owned();
        for step in path {
            let Some(j) = model.joins.get(step.join) else {
                continue;
            };
            let next = if step.reversed {
                j.from.clone()
            } else {
                j.to.clone()
            };
            if !joins.iter().any(|x| x.to == next) {
                joins.push(PlannedJoin {
                    step,
                    from: at.clone(),
                    to: next.clone(),
                });
            }
            touch(&next, touched);
            at = next;
        }
    }
    joins
}

fn touch(t: &str, touched: &mut Vec<String>) {
    if !touched.iter().any(|x| x == t) {
        touched.push(t.to_owned());
    }
}

/// Plans a checked spec. `percentile_cont`: whether the backend computes medians natively.
pub fn plan(model: &Model, spec: &QuerySpec, percentile_cont: bool) -> Plan {
    let slots: Vec<DimSlot> = spec
        .dimension_slots()
        .into_iter()
        .map(|(d, g)| DimSlot {
            dimension: d.to_owned(),
            granularity: g,
        })
        .collect();
    let mut all_needs: Vec<Need> = Vec::new();
    for m in spec.metric_names() {
        needs(model, m, &mut all_needs, 0);
    }
    // Measures by table, in first-use order.
    let mut by_table: Vec<(String, Vec<String>)> = Vec::new();
    for need in &all_needs {
        let Need::Measure(measure) = need else {
            continue;
        };
        let Some(ms) = model.measure(measure) else {
            continue;
        };
        match by_table.iter_mut().find(|(t, _)| *t == ms.table) {
            Some((_, list)) => list.push(measure.clone()),
            None => by_table.push((ms.table.clone(), vec![measure.clone()])),
        }
    }
    let mut dim_tables: Vec<String> = Vec::new();
    for s in &slots {
        if let Some(d) = model.dimension(&s.dimension)
            && !dim_tables.contains(&d.table)
        {
            dim_tables.push(d.table.clone());
        }
    }
    for d in spec.filter_dimensions() {
        if let Some(d) = model.dimension(d)
            && !dim_tables.contains(&d.table)
        {
            dim_tables.push(d.table.clone());
        }
    }
    let mut touched: Vec<String> = Vec::new();
    let mut aggregates = Vec::new();
    for (table, measures) in by_table {
        touch(&table, &mut touched);
        let joins = joins_for(model, &table, &dim_tables, &mut touched);
        let window_medians: Vec<usize> = if percentile_cont {
            Vec::new()
        } else {
            measures
                .iter()
                .enumerate()
                .filter(|(_, m)| model.measure(m).is_some_and(|x| x.agg == Agg::Median))
                .map(|(i, _)| i)
                .collect()
        };
        let mut description = format!("aggregate {} per table: {}", table, measures.join(", "));
        if !joins.is_empty() {
            description.push_str(&format!(
                "; joined to {}",
                joins
                    .iter()
                    .map(|j| j.to.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        aggregates.push(AggregateNode {
            rows_cte: format!("rows_{table}"),
            agg_cte: format!("agg_{table}"),
            table,
            joins,
            measures,
            window_medians,
            description,
        });
    }
    let mut specials = Vec::new();
    for need in all_needs {
        let Need::Special(kind) = need else {
            continue;
        };
        let measure_table = |m: &str| model.measure(m).map(|x| x.table.clone());
        let (table, cte, description) = match &kind {
            SpecialKind::Conversion { metric } => {
                let Some(MetricKind::Conversion(c)) = model.metric(metric).map(|m| &m.kind) else {
                    continue;
                };
                let (Some(bt), Some(ct)) = (measure_table(&c.base), measure_table(&c.conversion))
                else {
                    continue;
                };
                touch(&ct, &mut touched);
                let desc = format!(
                    "conversion {metric}: rows of {bt} ({}) matched on {} with rows of {ct} ({}){}",
                    c.base,
                    c.on.iter()
                        .map(|(a, b)| format!("{a} = {b}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.conversion,
                    c.window
                        .as_ref()
                        .map(|w| format!(" within {} s", w.seconds))
                        .unwrap_or_default()
                );
                (bt, format!("conv_{metric}"), desc)
            }
            SpecialKind::Retention {
                measure,
                time_dimension,
            } => {
                let Some(t) = measure_table(measure) else {
                    continue;
                };
                let desc = format!(
                    "retention of {measure} along the periods of {time_dimension}: active, churned (not in the next period), retained, resurrected (not in the previous one, in an earlier one), new"
                );
                (t, format!("ret_{measure}"), desc)
            }
            SpecialKind::PeriodAverage { metric } => {
                let Some(MetricKind::PeriodAverage { measure, per, .. }) =
                    model.metric(metric).map(|m| &m.kind)
                else {
                    continue;
                };
                let Some(t) = measure_table(measure) else {
                    continue;
                };
                let desc = format!(
                    "period average {metric}: {measure} per {}, summed over each bucket",
                    per.as_str()
                );
                (t, format!("pavg_{metric}"), desc)
            }
            SpecialKind::DistinctWindow { metric } => {
                let Some(MetricKind::Cumulative { measure, .. }) =
                    model.metric(metric).map(|m| &m.kind)
                else {
                    continue;
                };
                let Some(t) = measure_table(measure) else {
                    continue;
                };
                let desc = format!(
                    "cumulative {metric}: distinct {measure} of the rows of each bucket's window"
                );
                (t, format!("dwin_{metric}"), desc)
            }
        };
        touch(&table, &mut touched);
        let joins = joins_for(model, &table, &dim_tables, &mut touched);
        specials.push(SpecialNode {
            table,
            joins,
            cte,
            kind,
            description,
        });
    }
    let cuts = touched
        .iter()
        .filter_map(|t| model.table(t))
        .map(|t| CutNode {
            table: t.name.clone(),
            cte: format!("asof_{}", t.name),
            description: cut_description(t),
        })
        .collect();
    let mut output = Vec::new();
    for f in &spec.fields {
        let (value, ty) = match &f.item {
            Item::Dimension { name, granularity } => {
                let idx = slots
                    .iter()
                    .position(|s| s.dimension == *name && s.granularity == *granularity)
                    .unwrap_or(0);
                let ty = model
                    .dimension(name)
                    .map(|d| OutType::of_dim(d.dim_type))
                    .unwrap_or(OutType::String);
                (OutputValue::Slot(idx), ty)
            }
            Item::Metric { name } => {
                let ty = model
                    .metric(name)
                    .map(|m| OutType::of_unit(m.unit))
                    .unwrap_or(OutType::Float(None));
                (OutputValue::Metric(name.clone()), ty)
            }
            Item::IsComplete => (OutputValue::Complete, OutType::Bool),
        };
        output.push(OutputColumn {
            key: f.key.clone(),
            value,
            ty,
        });
    }
    let mut order = Vec::new();
    for o in &spec.order {
        let idx = output.iter().position(|c| match &c.value {
            OutputValue::Slot(i) => slots.get(*i).is_some_and(|s| s.dimension == o.target),
            OutputValue::Metric(m) => *m == o.target,
            OutputValue::Complete => false,
        });
        if let Some(i) = idx
            && !order.iter().any(|(x, _)| *x == i)
        {
            order.push((i, o.descending));
        }
    }
    Plan {
        model: model.name.clone(),
        cuts,
        aggregates,
        specials,
        slots,
        output,
        order,
        limit: spec.limit.is_some(),
        offset: spec.offset.is_some(),
        join_path: touched,
    }
}

fn cut_description(t: &crate::semantic::Table) -> String {
    use crate::semantic::AsOf;
    let base = match &t.as_of {
        AsOf::Event { time } => format!("asOf cut of {}: event rows with {time} <= asOf", t.name),
        AsOf::PartitionTs { ts, time, key } => {
            let mut s = format!("asOf cut of {}: partitions {ts} <= asOf", t.name);
            if let Some(time) = time {
                s.push_str(&format!(" and {time} <= asOf"));
            }
            if !key.is_empty() {
                s.push_str(&format!(
                    "; per {} the row of the latest partition",
                    key.join(", ")
                ));
            }
            s
        }
        AsOf::PartitionDs { ds, time } => {
            let mut s = format!("asOf cut of {}: partitions {ds} <= date(asOf)", t.name);
            if let Some(time) = time {
                s.push_str(&format!(" and {time} <= asOf"));
            }
            s
        }
        AsOf::Record { time, created } => {
            format!(
                "asOf cut of {}: {time} <= asOf and {created} <= asOf",
                t.name
            )
        }
        AsOf::Type2 { key, updated } => format!(
            "asOf cut of {}: per {} the version with the greatest {updated} <= asOf",
            t.name,
            key.join(", ")
        ),
        AsOf::Static => format!("{}: not time-dependent", t.name),
        AsOf::Sql => format!("{}: SQL table, asOf bound as its $1", t.name),
    };
    match t.as_of_shift {
        Some(shift) => format!("{base} (as of asOf {})", shift_text(shift)),
        None => base,
    }
}

fn shift_text(s: crate::semantic::Shift) -> String {
    match s {
        crate::semantic::Shift::Seconds(x) => format!("minus {x} s"),
        crate::semantic::Shift::Months(m) => format!("minus {m} month(s)"),
    }
}

/// Whether a metric is a cumulative one (window function over the output rows).
pub fn is_cumulative(model: &Model, metric: &str) -> bool {
    model
        .metric(metric)
        .is_some_and(|m| matches!(m.kind, MetricKind::Cumulative { .. }))
}

/// Filters are applied to the rows of every aggregate (they name dimensions).
pub fn filter_of(spec: &QuerySpec) -> Option<&Filter> {
    spec.filter.as_ref()
}
