//! Answering metrics from rollups (docs/SEMANTIC-LAYER.md, "Rollups").
//!
//! For each rollup of a model the engine derives, once, a model in which the rollup's event
//! table is a SQL table over the rollup and the newest source rows
//! ([`crate::rollup::union_text`]) and each kept measure is the re-aggregation of its
//! partial (sum of sums, sum of counts, min of minima, max of maxima). A metrics request
//! that the derived model can answer exactly is planned over it by the ordinary planner;
//! [`Routes::choose`] decides, and says why not otherwise.

use std::sync::Arc;

use super::PlanCache;
use super::caller::Caller;
use crate::query::{Item, QuerySpec};
use crate::semantic::{
    AsOf, ColType, Dimension, Expr, Measure, Metric, MetricKind, Model, Rollup, Table, TableSource,
};
use crate::sql::Dialect;

/// A rollup the engine may answer from: the rollup, its derived model and the statements
/// rendered over it.
pub(super) struct Route {
    /// The model's name.
    pub(super) model: String,
    /// The rollup.
    pub(super) rollup: Rollup,
    /// The model with the rollup's table read from the rollup.
    pub(super) derived: Arc<Model>,
    /// The rollup's definition ([`Rollup::definition`]): a status row of another is not
    /// this rollup's.
    pub(super) definition: String,
    /// Statements rendered over the derived model, by request shape.
    pub(super) plans: PlanCache,
}

/// Every rollup route of an engine.
#[derive(Default)]
pub(super) struct Routes {
    /// The routes, in model and file order.
    pub(super) routes: Vec<Route>,
    /// Rollups are not used (`Engine::without_rollups`).
    pub(super) disabled: bool,
    /// Models whose namespace is known to hold the rollup status table (tally never drops
    /// it), whose status is then read without looking for it first.
    status_seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Routes {
    /// The routes of `models` for `d`; a rollup whose derived model cannot be built is left
    /// out (logged).
    pub(super) fn new(models: &[Arc<Model>], d: &dyn Dialect) -> Routes {
        let mut routes = Vec::new();
        for model in models {
            for rollup in &model.rollups {
                match derive(model, rollup, d) {
                    Ok(derived) => routes.push(Route {
                        model: model.name.clone(),
                        definition: rollup.definition(model),
                        rollup: rollup.clone(),
                        derived: Arc::new(derived),
                        plans: PlanCache::default(),
                    }),
                    Err(e) => {
                        tracing::warn!("rollup {}.{} is not used: {e}", model.name, rollup.name)
                    }
                }
            }
        }
        Routes {
            routes,
            disabled: false,
            status_seen: Default::default(),
        }
    }

    /// The routes that could answer `spec` by its shape, or why none can (the first
    /// rollup's reason). `None`: the request is not a metrics request (no rollup applies).
    pub(super) fn candidates<'a>(
        &'a self,
        model: &Model,
        spec: &QuerySpec,
        caller: Option<&Caller>,
    ) -> Option<Result<Vec<&'a Route>, String>> {
        if spec.rows.is_some() {
            return None;
        }
        if model.rollups.is_empty() {
            return Some(Err(format!("model {} declares no rollup", model.name)));
        }
        if self.disabled {
            return Some(Err("rollups are turned off for this server".to_owned()));
        }
        if caller.is_some_and(|c| !c.attributes.is_empty()) {
            return Some(Err(
                "the caller has tenant attributes: a row policy may apply, and a rollup holds every tenant's rows"
                    .to_owned(),
            ));
        }
        let mut first_reason = None;
        let mut out = Vec::new();
        for route in self.routes.iter().filter(|r| r.model == model.name) {
            match why_not(model, route, spec) {
                None => out.push(route),
                Some(reason) => {
                    first_reason
                        .get_or_insert(format!("{}.{}: {reason}", model.name, route.rollup.name));
                }
            }
        }
        if out.is_empty() {
            return Some(Err(first_reason.unwrap_or_else(|| {
                format!("no rollup of model {} can be read here", model.name)
            })));
        }
        Some(Ok(out))
    }
}

/// Why `route` cannot answer `spec` exactly, `None` when it can (its freshness aside).
fn why_not(model: &Model, route: &Route, spec: &QuerySpec) -> Option<String> {
    let rollup = &route.rollup;
    let derived = &route.derived;
    let utc = spec
        .timezone
        .as_deref()
        .is_none_or(|z| matches!(z, "UTC" | "Etc/UTC"));
    if !utc {
        return Some(format!(
            "timezone {:?}: the rollup's buckets are UTC {}s",
            spec.timezone.as_deref().unwrap_or(""),
            rollup.grain.as_str()
        ));
    }
    let mut reads_table = false;
    for name in spec.metric_names() {
        let touches = model
            .metric_measures(name)
            .iter()
            .filter_map(|m| model.measure(m))
            .any(|m| m.table == rollup.table);
        reads_table |= touches;
        if touches && derived.metric(name).is_none() {
            return Some(metric_reason(model, rollup, name));
        }
    }
    if !reads_table {
        return Some(format!(
            "no metric of the request reads table {}",
            rollup.table
        ));
    }
    for f in &spec.fields {
        if let Item::Dimension { name, granularity } = &f.item {
            if let Some(reason) = dimension_reason(model, route, name) {
                return Some(reason);
            }
            if let Some(g) = granularity
                && is_event_time(model, rollup, name)
                && *g < rollup.grain
            {
                return Some(format!(
                    "{name} by {}: finer than the rollup's grain ({})",
                    g.as_str(),
                    rollup.grain.as_str()
                ));
            }
        }
    }
    for name in spec.filter_dimensions() {
        if let Some(reason) = dimension_reason(model, route, name) {
            return Some(format!("the filter's {reason}"));
        }
        if is_event_time(model, rollup, name) {
            return Some(format!(
                "a filter on {name}: the rollup keeps whole {}s, not the instants within them",
                rollup.grain.as_str()
            ));
        }
    }
    if let Err(e) = spec.check(derived) {
        return Some(format!("the request does not fit the rollup: {e}"));
    }
    None
}

/// Why dimension `name` cannot be read with the rollup, `None` when it can.
fn dimension_reason(model: &Model, route: &Route, name: &str) -> Option<String> {
    let table = &route.rollup.table;
    let dim = model.dimension(name)?;
    if route.derived.dimension(name).is_none() {
        return Some(format!(
            "dimension {name} is not in the rollup (it reads columns of {table} the rollup does not keep)"
        ));
    }
    if dim.table != *table
        && model.join_path(table, &dim.table).is_some()
        && route.derived.join_path(table, &dim.table).is_none()
    {
        return Some(format!(
            "dimension {name} is not in the rollup (its table {} is joined from {table} over columns the rollup does not keep)",
            dim.table
        ));
    }
    None
}

/// Whether dimension `name` is the rollup table's event time.
fn is_event_time(model: &Model, rollup: &Rollup, name: &str) -> bool {
    model
        .dimension(name)
        .is_some_and(|d| d.table == rollup.table && d.expr == Expr::Column(rollup.time.clone()))
}

/// Why the derived model has no metric `name` (which reads the rollup's table).
fn metric_reason(model: &Model, rollup: &Rollup, name: &str) -> String {
    let Some(metric) = model.metric(name) else {
        return format!("no metric {name}");
    };
    if !matches!(
        metric.kind,
        MetricKind::Simple { .. } | MetricKind::Ratio { .. } | MetricKind::Derived { .. }
    ) {
        return format!(
            "metric {name} is a {} metric (only simple, ratio and derived metrics are answered from rollups)",
            metric.kind.as_str()
        );
    }
    for m in model.metric_measures(name) {
        let Some(measure) = model.measure(&m) else {
            continue;
        };
        if measure.table != rollup.table || rollup.measure(&m).is_some() {
            continue;
        }
        if let Some(why) = crate::semantic::not_reaggregatable(measure) {
            return format!("metric {name}: {why}");
        }
        return format!("metric {name} reads measure {m}, which the rollup does not keep");
    }
    format!("metric {name} is built from metrics the rollup cannot answer")
}

/// The model in which `rollup`'s table reads the rollup (see the module doc).
fn derive(model: &Model, rollup: &Rollup, d: &dyn Dialect) -> Result<Model, String> {
    let source = model
        .table(&rollup.table)
        .ok_or_else(|| format!("no table {}", rollup.table))?;
    if source.conversion_filter.is_some() {
        return Err(format!(
            "table {} has a conversion filter, which a rollup does not keep",
            rollup.table
        ));
    }
    let (text, params) = crate::rollup::union_text(model, rollup, d).map_err(|e| e.to_string())?;
    let mut columns = vec![(rollup.time.clone(), ColType::Time)];
    for c in &rollup.columns {
        columns.push((c.clone(), source.column_type(c).unwrap_or(ColType::String)));
    }
    for m in &rollup.measures {
        columns.push((
            m.column.clone(),
            crate::rollup::partial_type(model, m, source),
        ));
    }
    let text: Arc<str> = text.into();
    let table = Table {
        name: source.name.clone(),
        source: TableSource::Sql {
            postgres: text.clone(),
            sqlite: text,
            params,
            without_state: false,
        },
        key: Vec::new(),
        as_of: AsOf::Sql,
        description: format!(
            "{} read from rollup {} (buckets ended by asOf, then the rows of asOf's bucket)",
            source.name, rollup.name
        ),
        columns,
        conversion_filter: None,
        rows: None,
        as_of_shift: source.as_of_shift,
        defined_at: rollup.defined_at.clone(),
    };
    let kept = |c: &String| rollup.columns.contains(c);
    let mut out = model.clone();
    out.rollups = Vec::new();
    out.tables = model
        .tables
        .iter()
        .map(|t| {
            if t.name == rollup.table {
                Arc::new(table.clone())
            } else {
                t.clone()
            }
        })
        .collect();
    // joins from (or into) the table only over kept columns
    out.joins = model
        .joins
        .iter()
        .filter(|j| {
            (j.from != rollup.table || j.on.iter().all(|(a, _)| kept(a)))
                && (j.to != rollup.table || j.on.iter().all(|(_, b)| kept(b)))
        })
        .cloned()
        .collect();
    out.dimensions = model
        .dimensions
        .iter()
        .filter(|dim| dimension_kept(dim, rollup))
        .cloned()
        .collect();
    // the table's measures: the rollup's, re-aggregated; the others are gone
    out.measures = model
        .measures
        .iter()
        .filter_map(|m| {
            if m.table != rollup.table {
                return Some(m.clone());
            }
            let r = rollup.measure(&m.name)?;
            Some(Measure {
                name: m.name.clone(),
                table: m.table.clone(),
                agg: r.combine,
                expr: Some(Expr::Column(r.column.clone())),
                filter: None,
                description: m.description.clone(),
            })
        })
        .collect();
    let metrics: Vec<Metric> = model
        .metrics
        .iter()
        .filter(|m| metric_kept(model, &out, rollup, &m.name, 0))
        .cloned()
        .collect();
    out.metrics = metrics;
    Ok(out)
}

/// Whether a dimension reads only what the rollup keeps: a dimension of another table, or
/// one of the rollup's table over its group-by columns, or its event time itself.
fn dimension_kept(dim: &Dimension, rollup: &Rollup) -> bool {
    if dim.table != rollup.table {
        return true;
    }
    if dim.expr == Expr::Column(rollup.time.clone()) {
        return true;
    }
    dim.expr
        .identifiers()
        .iter()
        .all(|c| rollup.columns.contains(c))
}

/// Whether metric `name` can be answered over the derived model `out`: a metric that reads
/// no measure of the rollup's table, or a simple metric of a kept measure, or a ratio or
/// derived metric of such.
fn metric_kept(model: &Model, out: &Model, rollup: &Rollup, name: &str, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    let Some(metric) = model.metric(name) else {
        return false;
    };
    let touches = model
        .metric_measures(name)
        .iter()
        .filter_map(|m| model.measure(m))
        .any(|m| m.table == rollup.table);
    if !touches {
        return true;
    }
    match &metric.kind {
        MetricKind::Simple { measure } => out.measure(measure).is_some(),
        MetricKind::Ratio {
            numerator,
            denominator,
        } => {
            metric_kept(model, out, rollup, numerator, depth + 1)
                && metric_kept(model, out, rollup, denominator, depth + 1)
        }
        MetricKind::Derived { expr } => expr
            .identifiers()
            .iter()
            .all(|m| metric_kept(model, out, rollup, m, depth + 1)),
        _ => false,
    }
}

/// Of `candidates`, the one with the fewest rows among those whose status row says they
/// are fresh and of their definition, or why none is.
pub(super) async fn usable<'a>(
    routes: &Routes,
    db: &sea_orm::DatabaseConnection,
    model: &Model,
    candidates: &[&'a Route],
) -> Result<&'a Route, String> {
    let seen = routes
        .status_seen
        .lock()
        .map(|s| s.contains(&model.name))
        .unwrap_or(false);
    let read = if seen {
        crate::rollup::read_statuses(db, model).await.map(Some)
    } else {
        crate::rollup::statuses(db, model).await
    };
    if let Ok(Some(_)) = &read
        && !seen
        && let Ok(mut s) = routes.status_seen.lock()
    {
        s.insert(model.name.clone());
    }
    let statuses = match read {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{e}");
            return Err("the rollups' status could not be read".to_owned());
        }
    };
    let Some(statuses) = statuses else {
        return Err(
            "no rollup is built in this database: tally may not write to this database (a database given with --db is only read), or no refresh ran (tally rollup refresh)"
                .to_owned(),
        );
    };
    let mut reason = None;
    let mut best: Option<(&'a Route, i64)> = None;
    for route in candidates {
        let name = format!("{}.{}", model.name, route.rollup.name);
        match statuses.iter().find(|s| s.name == route.rollup.name) {
            None => {
                reason.get_or_insert(format!("{name} is not built (tally rollup refresh)"));
            }
            Some(s) if s.definition != route.definition => {
                reason.get_or_insert(format!(
                    "{name} was built for another definition (tally rollup refresh rebuilds it)"
                ));
            }
            Some(s) if !s.fresh => {
                reason.get_or_insert(format!(
                    "{name} is stale: its source table changed since it was built{} (a load or tally rollup refresh rebuilds it)",
                    s.built_at
                        .as_deref()
                        .map(|t| format!(" at {t}"))
                        .unwrap_or_default()
                ));
            }
            Some(s) => {
                if best.is_none_or(|(_, rows)| s.row_count < rows) {
                    best = Some((route, s.row_count));
                }
            }
        }
    }
    match best {
        Some((route, _)) => Ok(route),
        None => Err(reason.unwrap_or_else(|| "no rollup is usable".to_owned())),
    }
}
