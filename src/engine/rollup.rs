//! Answering metrics from rollups (docs/SEMANTIC-LAYER.md, "Rollups").
//!
//! For each rollup of a model the engine derives, once, a model in which the rollup's event
//! table is a SQL table over the rollup and the newest source rows
//! ([`crate::rollup::union_text`]) and each kept measure is the re-aggregation of its
//! partial (sum of sums, sum of counts, min of minima, max of maxima). A distinct count is
//! the sum of its per-group counts over the rollup's rows plus the distinct count of the
//! values of the source's rows (exact while every value falls in one group of the rollup:
//! the status of its last build says so, and the statement checks it). A metrics request
//! that the derived model can answer exactly is planned over it by the ordinary planner;
//! [`Routes::candidates`] and [`usable`] decide, and say why not otherwise.
//!
//! The rollups' status is read through the field's session (admission control and the
//! time budget apply) and kept per model while the model's namespace's data version (the
//! result cache's, `super::results`) holds: the status table lives in that namespace and
//! every write that could change it (the staleness triggers, a build) moves the version.
//! Without known versions (the result cache off, or its poll behind) it is read for every
//! request. The check inside the statement keeps answers exact either way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::PlanCache;
use super::caller::Caller;
use super::session::Session;
use crate::error::ApiError;
use crate::query::{Filter, FilterOp, Item, QuerySpec, ReqValue};
use crate::rollup::Status;
use crate::semantic::{
    Agg, AsOf, ColType, Dimension, Expr, Granularity, Measure, Metric, MetricKind, Model, Rollup,
    Table, TableSource,
};
use crate::sql::Dialect;

/// A derived model of a rollup and the statements rendered over it.
pub(super) struct Variant {
    /// The model with the rollup's table read from the rollup.
    pub(super) derived: Arc<Model>,
    /// Statements rendered over the derived model, by request shape.
    pub(super) plans: PlanCache,
}

/// A rollup the engine may answer from: the rollup, its derived models and the statements
/// rendered over them.
pub(super) struct Route {
    /// The model's name.
    pub(super) model: String,
    /// The rollup.
    pub(super) rollup: Rollup,
    /// The derived model whose statements check the rollup's freshness (and no distinct
    /// count's exactness): for requests that read no distinct count of it, and for
    /// deciding by a request's shape.
    pub(super) base: Arc<Variant>,
    /// The rollup's definition ([`Rollup::definition`]): a status row of another is not
    /// this rollup's.
    pub(super) definition: String,
    /// Derived models whose statements also check that these distinct counts were exact at
    /// the build (by the measures' names, in the rollup's order), made when first needed.
    variants: Mutex<HashMap<Vec<String>, Arc<Variant>>>,
}

impl Route {
    /// The derived model (and its statements) whose statements read the rollup only while
    /// it is fresh and each of the distinct counts `exact` was exact at its build.
    fn variant(
        &self,
        model: &Model,
        d: &dyn Dialect,
        exact: &[String],
    ) -> Result<Arc<Variant>, String> {
        if exact.is_empty() {
            return Ok(self.base.clone());
        }
        let mut variants = self
            .variants
            .lock()
            .map_err(|_| "the rollup's statements are unreadable".to_owned())?;
        if let Some(v) = variants.get(exact) {
            return Ok(v.clone());
        }
        let v = Arc::new(Variant {
            derived: Arc::new(derive(model, &self.rollup, d, exact)?),
            plans: PlanCache::default(),
        });
        variants.insert(exact.to_vec(), v.clone());
        Ok(v)
    }
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
    status_seen: Mutex<std::collections::HashSet<String>>,
    /// The statuses read per model, with the data version of its namespace before the
    /// read (`None`: no status table).
    statuses: Mutex<HashMap<String, (u64, Statuses)>>,
}

/// The status rows of a model's rollups, `None` when its namespace has no status table.
type Statuses = Arc<Option<Vec<Status>>>;

impl Routes {
    /// The routes of `models` for `d`; a rollup whose derived model cannot be built is left
    /// out (logged).
    pub(super) fn new(models: &[Arc<Model>], d: &dyn Dialect) -> Routes {
        let mut routes = Vec::new();
        for model in models {
            for rollup in &model.rollups {
                match derive(model, rollup, d, &[]) {
                    Ok(derived) => routes.push(Route {
                        model: model.name.clone(),
                        definition: rollup.definition(model),
                        rollup: rollup.clone(),
                        base: Arc::new(Variant {
                            derived: Arc::new(derived),
                            plans: PlanCache::default(),
                        }),
                        variants: Mutex::default(),
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
            statuses: Default::default(),
        }
    }

    /// Whether any rollup may be read (rollups are on and some model declares one).
    pub(super) fn active(&self) -> bool {
        !self.disabled && !self.routes.is_empty()
    }

    /// The routes that could answer `spec` by its shape, or why none can (each rollup's
    /// reason, `; ` between them). `None`: the request is not a metrics request (no rollup
    /// applies).
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
        // every rollup's reason: the one a user would change the request (or the model) for
        // is rarely the first rollup's
        let mut reasons = Vec::new();
        let mut out = Vec::new();
        for route in self.routes.iter().filter(|r| r.model == model.name) {
            match why_not(model, route, spec) {
                None => out.push(route),
                Some(reason) => {
                    reasons.push(format!("{}.{}: {reason}", model.name, route.rollup.name))
                }
            }
        }
        if out.is_empty() {
            return Some(Err(if reasons.is_empty() {
                format!("no rollup of model {} can be read here", model.name)
            } else {
                reasons.join("; ")
            }));
        }
        Some(Ok(out))
    }
}

/// Why `route` cannot answer `spec` exactly, `None` when it can (its freshness aside).
fn why_not(model: &Model, route: &Route, spec: &QuerySpec) -> Option<String> {
    let rollup = &route.rollup;
    let derived = &route.base.derived;
    if let Some(zone) = spec.timezone.as_deref()
        && let Some(why) = zone_reason(zone, rollup.grain)
    {
        return Some(format!("timezone {zone:?}: {why}"));
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
        if is_event_time(model, rollup, name)
            && let Some(reason) = spec
                .filter
                .as_ref()
                .and_then(|f| event_time_filter_reason(f, spec, name, rollup.grain))
        {
            return Some(format!(
                "a filter on {name}: {reason} (the rollup keeps whole {}s, not the instants within them)",
                rollup.grain.as_str()
            ));
        }
    }
    if let Err(e) = spec.check(derived) {
        return Some(format!("the request does not fit the rollup: {e}"));
    }
    None
}

/// Why the buckets of `zone` cannot be made of the rollup's UTC buckets of `grain`, `None`
/// when they can: UTC; or an hour rollup and a zone whose offset from UTC is a whole number
/// of hours and changes only on a whole UTC hour (1970 to 2060, daylight saving included:
/// `Europe/London`, `America/New_York`, not `Asia/Kolkata` at +05:30), where every instant of
/// a UTC hour falls in the same local hour, and so in the same local day, week, month….
fn zone_reason(zone: &str, grain: Granularity) -> Option<String> {
    if matches!(zone, "UTC" | "Etc/UTC") {
        return None;
    }
    if grain != Granularity::Hour {
        return Some(format!("the rollup's buckets are UTC {}s", grain.as_str()));
    }
    if hour_aligned(zone) {
        return None;
    }
    Some(
        "its offset from UTC is not a whole number of hours at every instant (the rollup's buckets are UTC hours)"
            .to_owned(),
    )
}

/// Whether every offset of `zone` is a whole number of hours and every change of it falls on
/// a whole UTC hour (computed once per zone; an unknown zone is not).
fn hour_aligned(zone: &str) -> bool {
    static KNOWN: std::sync::LazyLock<Mutex<HashMap<String, bool>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(&b) = KNOWN
        .lock()
        .ok()
        .and_then(|k| k.get(zone).copied())
        .as_ref()
    {
        return b;
    }
    let aligned = zone.parse::<chrono_tz::Tz>().is_ok_and(|tz| {
        crate::tz::intervals(tz).iter().all(|i| {
            i.offset_seconds % 3600 == 0
                && i.valid_from
                    .is_none_or(|t| t.timestamp().rem_euclid(3600) == 0)
        })
    });
    if let Ok(mut k) = KNOWN.lock() {
        k.insert(zone.to_owned(), aligned);
    }
    aligned
}

/// Why a condition of `filter` on the event time `name` could tell apart instants of one
/// bucket of `grain` (UTC hours or days), `None` when none can. A rollup row stands for
/// its bucket by the bucket's start, so a condition is exact on it only when it holds for
/// every instant of a bucket or for none: `gte` and `lt` a bucket boundary (`orderTime:
/// {gte: "2024-10-01T00:00:00Z", lt: "2025-01-01T00:00:00Z"}` on a day rollup), and
/// `isNull` / `isNotNull`. Composed with `and`, `or` and `not`, such conditions stay
/// exact. The source rows the union adds (asOf's bucket, or all of them when the rollup
/// is not fresh) keep their own instants, so any condition is exact on them.
fn event_time_filter_reason(
    filter: &Filter,
    spec: &QuerySpec,
    name: &str,
    grain: Granularity,
) -> Option<String> {
    match filter {
        Filter::And(xs) | Filter::Or(xs) => xs
            .iter()
            .find_map(|x| event_time_filter_reason(x, spec, name, grain)),
        Filter::Not(x) => event_time_filter_reason(x, spec, name, grain),
        Filter::Cond { dimension, .. } if dimension != name => None,
        Filter::Cond { op, args, .. } => match op {
            FilterOp::IsNull | FilterOp::IsNotNull => None,
            FilterOp::Gte | FilterOp::Lt => {
                let seconds = grain.fixed_seconds()?;
                args.iter().find_map(|&i| match spec.values.get(i) {
                    Some(ReqValue::Time(t))
                        if t.timestamp().rem_euclid(seconds) == 0
                            && t.timestamp_subsec_nanos() == 0 =>
                    {
                        None
                    }
                    Some(ReqValue::Time(t)) => Some(format!(
                        "{} is not the start of a UTC {}",
                        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                        grain.as_str()
                    )),
                    _ => Some("a value that is not an instant".to_owned()),
                })
            }
            other => Some(format!(
                "{} (only gte and lt a bucket boundary hold for a whole bucket or for none of it)",
                other.request_name()
            )),
        },
    }
}

/// Why dimension `name` cannot be read with the rollup, `None` when it can.
fn dimension_reason(model: &Model, route: &Route, name: &str) -> Option<String> {
    let table = &route.rollup.table;
    let dim = model.dimension(name)?;
    if route.base.derived.dimension(name).is_none() {
        return Some(format!(
            "dimension {name} is not in the rollup (it reads columns of {table} the rollup does not keep)"
        ));
    }
    if dim.table != *table
        && model.join_path(table, &dim.table).is_some()
        && route.base.derived.join_path(table, &dim.table).is_none()
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

/// The prefix of the measures and metrics a derived model adds for a distinct count: the
/// distinct count of the source rows' values (`tally_raw_<name>`) and the sum of the
/// rollup's per-group counts (`tally_rolled_<metric>`).
const HIDDEN: &str = "tally_";

/// The model in which `rollup`'s table reads the rollup (see the module doc); its
/// statements read the rollup only while it is fresh and each of the distinct counts
/// `exact` was exact at its build.
fn derive(
    model: &Model,
    rollup: &Rollup,
    d: &dyn Dialect,
    exact: &[String],
) -> Result<Model, String> {
    let source = model
        .table(&rollup.table)
        .ok_or_else(|| format!("no table {}", rollup.table))?;
    if source.conversion_filter.is_some() {
        return Err(format!(
            "table {} has a conversion filter, which a rollup does not keep",
            rollup.table
        ));
    }
    let (text, params) =
        crate::rollup::union_text(model, rollup, d, exact).map_err(|e| e.to_string())?;
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
    for m in rollup.distinct_measures() {
        columns.push((
            m.value_column(),
            crate::rollup::value_type(model, m, source),
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
        not_null: Vec::new(),
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
    // the table's measures: the rollup's, re-aggregated; the others are gone. A distinct
    // count is the sum of its per-group counts (rollup rows) plus the distinct count of the
    // source rows' values: two measures, added by its metrics below
    out.measures = model
        .measures
        .iter()
        .flat_map(|m| {
            if m.table != rollup.table {
                return vec![m.clone()];
            }
            let Some(r) = rollup.measure(&m.name) else {
                return Vec::new();
            };
            let mut kept = vec![Measure {
                name: m.name.clone(),
                table: m.table.clone(),
                agg: r.combine,
                expr: Some(Expr::Column(r.column.clone())),
                filter: None,
                description: m.description.clone(),
            }];
            if r.is_distinct() {
                kept.push(Measure {
                    name: format!("{HIDDEN}raw_{}", m.name),
                    table: m.table.clone(),
                    agg: Agg::CountDistinct,
                    expr: Some(Expr::Column(r.value_column())),
                    filter: None,
                    description: m.description.clone(),
                });
            }
            kept
        })
        .collect();
    let mut metrics: Vec<Metric> = Vec::new();
    for metric in model
        .metrics
        .iter()
        .filter(|m| metric_kept(model, &out, rollup, &m.name, 0))
    {
        let distinct = match &metric.kind {
            MetricKind::Simple { measure } => rollup.measure(measure).filter(|r| r.is_distinct()),
            _ => None,
        };
        let Some(r) = distinct else {
            metrics.push(metric.clone());
            continue;
        };
        // rolled + raw; a value is in one of them only (see the module doc)
        let rolled = format!("{HIDDEN}rolled_{}", metric.name);
        let raw = format!("{HIDDEN}raw_{}", metric.name);
        metrics.push(Metric {
            name: rolled.clone(),
            kind: MetricKind::Simple {
                measure: r.measure.clone(),
            },
            ..metric.clone()
        });
        metrics.push(Metric {
            name: raw.clone(),
            kind: MetricKind::Simple {
                measure: format!("{HIDDEN}raw_{}", r.measure),
            },
            ..metric.clone()
        });
        metrics.push(Metric {
            kind: MetricKind::Derived {
                expr: Expr::Binary(
                    crate::semantic::expr::BinOp::Add,
                    Box::new(Expr::Column(rolled)),
                    Box::new(Expr::Column(raw)),
                ),
            },
            ..metric.clone()
        });
    }
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

/// The rollup chosen for a request: the route and the derived model its statement is
/// planned over.
pub(super) type Chosen<'a> = (&'a Route, Arc<Variant>);

/// Of `candidates` (routes that could answer `spec` by its shape), the one with the fewest
/// rows among those whose status says they are fresh, of their definition, and exact for
/// the distinct counts `spec` reads, or why none is; and where the status came from (for
/// explain). `version`: the data version of the model's namespace, when known (then a
/// status read at that version is used again). Fails only as the session's statements do
/// (`TIMEOUT`, `OVERLOADED`, `DATABASE_UNAVAILABLE`).
pub(super) async fn usable<'a>(
    routes: &Routes,
    session: &Session,
    d: &dyn Dialect,
    model: &Model,
    spec: &QuerySpec,
    candidates: &[&'a Route],
    version: Result<u64, String>,
) -> Result<(Result<Chosen<'a>, String>, String), ApiError> {
    let (statuses, note) = match status(routes, session, model, version).await? {
        (Ok(s), note) => (s, note),
        (Err(reason), note) => return Ok((Err(reason), note)),
    };
    let Some(statuses) = statuses.as_ref() else {
        return Ok((
            Err(
                "no rollup is built in this database: tally may not write to this database (a database given with --db is only read), or no refresh ran (tally rollup refresh)"
                    .to_owned(),
            ),
            note,
        ));
    };
    let mut reason = None;
    let mut best: Option<(&'a Route, Vec<String>, i64)> = None;
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
            Some(s) => match distinct_needed(model, &route.rollup, spec, s) {
                Err(why) => {
                    reason.get_or_insert(why);
                }
                Ok(exact) => {
                    if best.as_ref().is_none_or(|(_, _, rows)| s.row_count < *rows) {
                        best = Some((route, exact, s.row_count));
                    }
                }
            },
        }
    }
    let chosen = match best {
        Some((route, exact, _)) => route.variant(model, d, &exact).map(|v| (route, v)),
        None => Err(reason.unwrap_or_else(|| "no rollup is usable".to_owned())),
    };
    Ok((chosen, note))
}

/// The distinct counts of `rollup` that `spec` reads, when the status `s` says each was
/// exact at the build (every value in one group), or why one was not.
fn distinct_needed(
    model: &Model,
    rollup: &Rollup,
    spec: &QuerySpec,
    s: &Status,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in rollup.distinct_measures() {
        let Some(metric) = spec
            .metric_names()
            .into_iter()
            .find(|name| model.metric_measures(name).contains(&m.measure))
        else {
            continue;
        };
        if !s.distinct_exact(&m.measure) {
            let grouping = if rollup.columns.is_empty() {
                format!("a value with rows in two {}s", rollup.grain.as_str())
            } else {
                format!(
                    "a value with rows in two {}s, or under two combinations of {}",
                    rollup.grain.as_str(),
                    rollup.columns.join(", ")
                )
            };
            return Err(match s.shared_values(&m.measure) {
                Some(n) => format!(
                    "metric {metric}: measure {:?} is a distinct count and {n} of its values fall in more than one group of {}.{} ({grouping}), so the sum of per-group counts would count them twice",
                    m.measure, model.name, rollup.name
                ),
                None => format!(
                    "metric {metric}: measure {:?} is a distinct count whose exactness in {}.{} was not checked at its last build (tally rollup refresh --all checks it)",
                    m.measure, model.name, rollup.name
                ),
            });
        }
        out.push(m.measure.clone());
    }
    Ok(out)
}

/// The status rows of `model`'s rollups (`None`: no status table), or why they could not be
/// read; and where they came from: the engine's copy while the namespace's data `version`
/// is the one it was read at, else a read through `session` (kept when the version is
/// known).
async fn status(
    routes: &Routes,
    session: &Session,
    model: &Model,
    version: Result<u64, String>,
) -> Result<(Result<Statuses, String>, String), ApiError> {
    if let Ok(v) = &version
        && let Ok(kept) = routes.statuses.lock()
        && let Some((at, s)) = kept.get(&model.name)
        && at == v
    {
        return Ok((
            Ok(s.clone()),
            format!(
                "the engine's copy (the data version of namespace {} has not moved since it was read)",
                model.namespace
            ),
        ));
    }
    let seen = routes
        .status_seen
        .lock()
        .map(|s| s.contains(&model.name))
        .unwrap_or(false);
    let d = session.dialect();
    let backend = session.db().get_database_backend();
    let label = "rollup status";
    let mut millis = 0.0;
    let read = async {
        if !seen {
            let (rows, ms) = session
                .query_unrecorded(
                    session.db(),
                    label,
                    crate::rollup::status_exists_statement(d, backend, model),
                )
                .await?;
            millis += ms;
            if rows.is_empty() {
                return Ok(None);
            }
        }
        let (rows, ms) = session
            .query_unrecorded(
                session.db(),
                label,
                crate::rollup::status_statement(backend, model),
            )
            .await?;
        millis += ms;
        Ok::<_, ApiError>(Some(rows))
    }
    .await;
    let rows = match read {
        Ok(rows) => rows,
        Err(ApiError::Internal { id }) => {
            return Ok((
                Err(format!(
                    "the rollups' status could not be read (error id {id})"
                )),
                "not read".to_owned(),
            ));
        }
        Err(e) => return Err(e),
    };
    let statuses = match rows.map(|r| crate::rollup::parse_statuses(&r)).transpose() {
        Ok(s) => s,
        Err(e) => {
            let id = match ApiError::internal("rollup status", e) {
                ApiError::Internal { id } => id,
                other => other.to_string(),
            };
            return Ok((
                Err(format!(
                    "the rollups' status could not be read (error id {id})"
                )),
                "not read".to_owned(),
            ));
        }
    };
    if statuses.is_some()
        && !seen
        && let Ok(mut s) = routes.status_seen.lock()
    {
        s.insert(model.name.clone());
    }
    let statuses = Arc::new(statuses);
    let kept = match version {
        Ok(v) => {
            if let Ok(mut k) = routes.statuses.lock() {
                k.insert(model.name.clone(), (v, statuses.clone()));
            }
            String::new()
        }
        Err(why) => format!("; not kept: {why}"),
    };
    Ok((
        Ok(statuses),
        format!(
            "read from {}.{} ({millis:.3} ms){kept}",
            model.namespace,
            crate::semantic::ROLLUP_STATUS_TABLE
        ),
    ))
}
