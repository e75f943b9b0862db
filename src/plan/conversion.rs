//! A conversion metric's node: the base events (rows of the base measure's table), each
//! marked when a conversion event (a row of the conversion measure's table, of the chosen
//! variant) matches it, counted per group.

use std::sync::Arc;

use super::{PlanError, Planner, RowSource};
use crate::semantic::{ConversionCalc, ConversionWindow, Expr, Measure, MetricKind, Table};

/// The node of one conversion metric: CTEs `<cte>_hits` (the conversion events),
/// `<cte>_rows` (the base events, marked) and `<cte>` (columns `base` and `conv`).
#[derive(Debug, Clone)]
pub struct ConversionNode {
    /// The metric.
    pub metric: String,
    /// The base measure: its rows are the base events, its aggregate counts them.
    pub base: Measure,
    /// The base measure's table, joined to the dimension tables.
    pub rows: RowSource,
    /// The conversion measure: its table and filter are the conversion events.
    pub conversion: Measure,
    /// The conversion measure's table.
    pub conversion_table: Arc<Table>,
    /// The CTE of the conversion table's cut.
    pub conversion_cte: String,
    /// `(base column, conversion column)` pairs that must be equal.
    pub on: Vec<(String, String)>,
    /// The conversion must happen within this window after the base event.
    pub window: Option<ConversionWindow>,
    /// The variant chosen (the request's, else the model's default), when the metric has
    /// variants.
    pub variant: Option<String>,
    /// The chosen variant's condition over the conversion table.
    pub variant_condition: Option<Expr>,
    /// Other metrics of the request counting the same base and conversion events (same
    /// measures, `on`, window and variant: a rate and a count of one conversion): they read
    /// this node's `base` and `conv` instead of a node of their own.
    pub shared_with: Vec<String>,
    /// The final CTE (`conv_<metric>`).
    pub cte: String,
    /// What it computes.
    pub description: String,
}

impl ConversionNode {
    /// Whether `other` counts the same events (its `base` and `conv` would be this node's).
    pub fn same_events(&self, other: &ConversionNode) -> bool {
        self.base.name == other.base.name
            && self.conversion.name == other.conversion.name
            && self.on == other.on
            && self.window == other.window
            && self.variant == other.variant
            && self.variant_condition == other.variant_condition
    }

    /// Whether the node computes `metric` (its own, or one sharing it).
    pub fn computes(&self, metric: &str) -> bool {
        self.metric == metric || self.shared_with.iter().any(|m| m == metric)
    }

    /// The CTE of the conversion events.
    pub fn hits_cte(&self) -> String {
        format!("{}_hits", self.cte)
    }
    /// The CTE of the marked base events.
    pub fn rows_cte(&self) -> String {
        format!("{}_rows", self.cte)
    }
}

/// A conversion metric's value: from its node's `base` and `conv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionValue {
    /// The node's final CTE.
    pub cte: String,
    /// Rate or count of converted base events.
    pub calculation: ConversionCalc,
}

/// The node of conversion metric `metric`; `variant`: the request's conversion variant.
pub(super) fn plan(
    p: &mut Planner<'_>,
    metric: &str,
    variant: Option<&str>,
) -> Result<ConversionNode, PlanError> {
    let MetricKind::Conversion(c) = &p.metric(metric)?.kind else {
        return Err(PlanError::new(format!(
            "{metric} is not a conversion metric"
        )));
    };
    let c = c.clone();
    let base = p.measure(&c.base)?.clone();
    let conversion = p.measure(&c.conversion)?.clone();
    // the conversion table first, as `explain` lists it
    p.touch(&conversion.table);
    let conversion_table = p.table(&conversion.table)?;
    let description = format!(
        "conversion {metric}: rows of {} ({}) matched on {} with rows of {} ({}){}",
        base.table,
        c.base,
        c.on.iter()
            .map(|(a, b)| format!("{a} = {b}"))
            .collect::<Vec<_>>()
            .join(", "),
        conversion.table,
        c.conversion,
        c.window
            .as_ref()
            .map(|w| format!(" within {} s", w.seconds))
            .unwrap_or_default()
    );
    let variant = variant
        .map(str::to_owned)
        .or_else(|| p.model.default_variant.clone());
    let variant_condition = c
        .variants
        .iter()
        .find(|(v, _)| Some(v) == variant.as_ref())
        .map(|(_, e)| e.clone());
    if !c.variants.is_empty() && variant_condition.is_none() {
        return Err(PlanError::new(format!(
            "conversion {metric} has no variant {variant:?}"
        )));
    }
    let rows = p.rows(&base.table)?;
    Ok(ConversionNode {
        metric: metric.to_owned(),
        variant: variant.filter(|_| !c.variants.is_empty()),
        variant_condition,
        rows,
        base,
        conversion,
        conversion_cte: super::cut::cte_name(&conversion_table.name),
        conversion_table,
        on: c.on,
        window: c.window,
        shared_with: Vec::new(),
        cte: format!("conv_{metric}"),
        description,
    })
}
