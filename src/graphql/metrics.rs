//! `<model> { metrics(…) { … } }`: the GraphQL API generated from each semantic model.
//!
//! Per model `M` (PascalCase of its name): `MModel` (the model's object, extensible with other
//! modules' fields), `MMetricsRow` (one field per dimension and metric), `MWhere` (one typed
//! filter per dimension, and/or/not), `MOrderBy` (one `SortDirection` per dimension and
//! metric) and `MConversionFilter` when the model has conversion variants. Shared types:
//! `Granularity`, `StringFilter`, `NumberFilter`, `TimeFilter`, `BooleanFilter`, `Decimal`.
//!
//! The selection set is the query: the resolver reads it (aliases included), builds a
//! [`QuerySpec`], and runs the planned statement (cached by normalised request).

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ObjectAccessor, ResolverContext, Scalar, SchemaBuilder, TypeRef, ValueAccessor,
};
use async_graphql::{Error, Value};
use chrono::{DateTime, Utc};

use super::common;
use super::explain::PrebuiltRows;
use crate::engine::Table;
use crate::error::ApiError;
use crate::query::{
    Comparison, Filter, FilterOp, Item, OffsetCalculation, OrderItem, PeriodOffset, QuerySpec,
    ReqValue, Selected, TO_DATE_GRAINS,
};
use crate::semantic::{DimType, Granularity, Model, Unit};

/// The name of the money scalar.
pub(super) const DECIMAL: &str = "Decimal";

/// The field of every metrics row telling whether its time buckets have ended.
pub(super) const IS_COMPLETE: &str = "isComplete";

/// `shop` → `Shop`, `lead_funnel` → `LeadFunnel`.
pub fn pascal(name: &str) -> String {
    name.split('_')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The GraphQL type names of a model.
pub struct TypeNames {
    /// `MModel`
    pub model: String,
    /// `MMetricsRow`
    pub row: String,
    /// `MWhere`
    pub where_input: String,
    /// `MOrderBy`
    pub order: String,
    /// `MConversionFilter`
    pub conversion: String,
}

/// The type names of `model`.
pub fn type_names(model: &Model) -> TypeNames {
    let p = pascal(&model.name);
    TypeNames {
        model: format!("{p}Model"),
        row: format!("{p}MetricsRow"),
        where_input: format!("{p}Where"),
        order: format!("{p}OrderBy"),
        conversion: format!("{p}ConversionFilter"),
    }
}

fn unit_text(u: Unit) -> &'static str {
    match u {
        Unit::Count => "Unit: count (Int).",
        Unit::Currency => "Unit: currency (Decimal string with 2 places).",
        Unit::Percent => "Unit: percent, as a fraction 0..1 (Float, 6 decimals).",
        Unit::Ratio => "Unit: ratio (Float, 6 decimals).",
        Unit::DurationDays => "Unit: duration in days (Float, 4 decimals).",
        Unit::DurationSeconds => "Unit: duration in seconds (Float, 4 decimals).",
        Unit::Number => "Unit: number (Float, 6 decimals).",
    }
}

pub(super) fn metric_type(u: Unit) -> &'static str {
    match u {
        Unit::Count => TypeRef::INT,
        Unit::Currency => DECIMAL,
        _ => TypeRef::FLOAT,
    }
}

pub(super) fn dim_type(t: DimType) -> &'static str {
    match t {
        DimType::String | DimType::Time => TypeRef::STRING,
        DimType::Number => TypeRef::FLOAT,
        DimType::Boolean => TypeRef::BOOLEAN,
    }
}

pub(super) fn filter_type(t: DimType) -> &'static str {
    match t {
        DimType::String => "StringFilter",
        DimType::Number => "NumberFilter",
        DimType::Boolean => "BooleanFilter",
        DimType::Time => "TimeFilter",
    }
}

/// Registers the types shared by every model.
pub(crate) fn register_shared(builder: SchemaBuilder) -> SchemaBuilder {
    let granularity = Enum::new("Granularity")
        .description("The size of a time bucket. Weeks start on Monday (ISO); buckets are half-open [start, end) and named by their start.")
        .items(Granularity::ALL.iter().map(|g| EnumItem::new(g.as_str().to_uppercase())));
    let s = || TypeRef::named(TypeRef::STRING);
    let sl = || TypeRef::named_nn_list(TypeRef::STRING);
    let f = || TypeRef::named(TypeRef::FLOAT);
    let string_filter = InputObject::new("StringFilter")
        .description("Conditions on a text dimension (all given ones must hold). Comparisons are case-sensitive.")
        .field(InputValue::new("equals", s()).description("Equal to."))
        .field(InputValue::new("notEquals", s()).description("Not equal to (nulls never match)."))
        .field(InputValue::new("in", sl()).description("One of."))
        .field(InputValue::new("notIn", sl()).description("None of (nulls never match)."))
        .field(InputValue::new("contains", s()).description("Contains this text."))
        .field(InputValue::new("startsWith", s()).description("Starts with this text."))
        .field(InputValue::new("gt", s()).description("After, in byte order."))
        .field(InputValue::new("lt", s()).description("Before, in byte order."))
        .field(InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN)).description("true: is null; false: is not null."));
    let number_filter = InputObject::new("NumberFilter")
        .description("Conditions on a number dimension (all given ones must hold).")
        .field(InputValue::new("equals", f()).description("Equal to."))
        .field(InputValue::new("notEquals", f()).description("Not equal to."))
        .field(InputValue::new("in", TypeRef::named_nn_list(TypeRef::FLOAT)).description("One of."))
        .field(InputValue::new("gt", f()).description("Greater than."))
        .field(InputValue::new("gte", f()).description("Greater than or equal to."))
        .field(InputValue::new("lt", f()).description("Less than."))
        .field(InputValue::new("lte", f()).description("Less than or equal to."))
        .field(
            InputValue::new("between", TypeRef::named_nn_list(TypeRef::FLOAT))
                .description("[low, high], both included."),
        )
        .field(
            InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN))
                .description("true: is null; false: is not null."),
        );
    let time_filter = InputObject::new("TimeFilter")
        .description("Conditions on a time dimension's raw (unbucketed) value, with RFC 3339 instants (e.g. 2024-01-01T00:00:00Z). For local-time dimensions the instant's UTC wall-clock digits are compared.")
        .field(InputValue::new("equals", s()).description("At this instant."))
        .field(InputValue::new("gt", s()).description("After."))
        .field(InputValue::new("gte", s()).description("At or after."))
        .field(InputValue::new("lt", s()).description("Before."))
        .field(InputValue::new("lte", s()).description("At or before."))
        .field(InputValue::new("between", sl()).description("[from, to], both included."))
        .field(InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN)).description("true: is null; false: is not null."));
    let boolean_filter = InputObject::new("BooleanFilter")
        .description("Conditions on a boolean dimension.")
        .field(InputValue::new("equals", TypeRef::named(TypeRef::BOOLEAN)).description("Equal to."))
        .field(
            InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN))
                .description("true: is null; false: is not null."),
        );
    let decimal = Scalar::new(DECIMAL)
        .description("Money: an exact decimal number written as a string with two decimal places, e.g. \"1234.50\". Parse it with a decimal type, not a float.")
        .validator(|v| matches!(v, Value::String(_)));
    let offset = Enum::new(PERIOD_OFFSET)
        .description("An earlier bucket, relative to the granularity of the request's one time dimension. The earlier value is the metric over that bucket's rows as of the same asOf, whether or not that bucket is in the response.")
        .item(EnumItem::new(PeriodOffset::PreviousPeriod.as_str()).description("The bucket just before (the previous hour, day, week, month, quarter or year, in the request's time zone)."))
        .item(EnumItem::new(PeriodOffset::YearAgo.as_str()).description("A year earlier: 12 months, 4 quarters or 1 year before; for HOUR, DAY and WEEK, 52 weeks before (the same weekday)."));
    let calculation = Enum::new(OFFSET_CALCULATION)
        .description(
            "What a metric field with `offset` returns (the ratio is the `…Growth` field).",
        )
        .item(EnumItem::new("VALUE").description(
            "The metric in the earlier bucket (0 for counts and sums of a bucket without rows).",
        ))
        .item(
            EnumItem::new("CHANGE")
                .description("The metric minus its value in the earlier bucket."),
        );
    let to_date = Enum::new(TO_DATE)
        .description("Sum the metric from the start of the enclosing month, quarter or year up to and including each bucket (counts and sums, and ratios or derived metrics of them).")
        .items(TO_DATE_GRAINS.iter().map(|g| EnumItem::new(g.as_str().to_uppercase())));
    common::register(builder)
        .register(offset)
        .register(calculation)
        .register(to_date)
        .register(granularity)
        .register(string_filter)
        .register(number_filter)
        .register(time_filter)
        .register(boolean_filter)
        .register(decimal)
}

/// Registers a model's row, where, order and conversion types (not its model object).
pub(crate) fn register_model(mut builder: SchemaBuilder, model: &Arc<Model>) -> SchemaBuilder {
    let n = type_names(model);
    let mut row = Object::new(&n.row).description(format!(
        "One row of {} metrics: one field per dimension (selecting it groups by it) and per metric.",
        model.name
    ));
    for d in &model.dimensions {
        let desc = match d.dim_type {
            DimType::Time => format!(
                "{} Time dimension: the start of its bucket as RFC 3339{} (granularities: {}).",
                d.description,
                if d.time_storage == crate::semantic::TimeStorage::Local {
                    " local time, no zone"
                } else {
                    " in UTC (with `timezone`: local wall-clock time of that zone, no offset)"
                },
                d.granularities
                    .iter()
                    .map(|g| g.as_str().to_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            t => format!("{} Dimension ({}).", d.description, t.as_str()),
        };
        let mut field = Field::new(
            d.name.clone(),
            TypeRef::named(dim_type(d.dim_type)),
            row_value,
        )
        .description(desc);
        if d.dim_type == DimType::Time {
            let default = if d.granularities.contains(&Granularity::Day) {
                Granularity::Day
            } else {
                d.granularities.first().copied().unwrap_or(Granularity::Day)
            };
            field = field.argument(
                InputValue::new("granularity", TypeRef::named("Granularity"))
                    .default_value(Value::Enum(async_graphql::Name::new(
                        default.as_str().to_uppercase(),
                    )))
                    .description("The bucket size."),
            );
        }
        row = row.field(field);
    }
    for m in &model.metrics {
        row = row.field(
            Field::new(
                m.name.clone(),
                TypeRef::named(metric_type(m.unit)),
                row_value,
            )
            .description(format!(
                "{} {} Kind: {}.",
                m.description,
                unit_text(m.unit),
                m.kind.as_str()
            ))
            .argument(InputValue::new("offset", TypeRef::named(PERIOD_OFFSET)).description(
                "The value in an earlier bucket of the request's time dimension, instead of this bucket's.",
            ))
            .argument(
                InputValue::new("calculation", TypeRef::named(OFFSET_CALCULATION))
                    .default_value(Value::Enum(async_graphql::Name::new("VALUE")))
                    .description("With `offset`: the earlier value, or the change from it."),
            )
            .argument(InputValue::new("toDate", TypeRef::named(TO_DATE)).description(
                "The sum from the start of the enclosing month, quarter or year up to this bucket.",
            )),
        );
        row = row.field(
            Field::new(
                growth_field(&m.name),
                TypeRef::named(TypeRef::FLOAT),
                row_value,
            )
            .description(format!(
                "{}: this bucket's value over the value in the earlier bucket, minus 1 (0.25 is 25% more); null when the earlier value is 0 or null. Float, 6 decimals.",
                m.name
            ))
            .argument(
                InputValue::new("offset", TypeRef::named_nn(PERIOD_OFFSET))
                    .default_value(Value::Enum(async_graphql::Name::new(
                        PeriodOffset::PreviousPeriod.as_str(),
                    )))
                    .description("The earlier bucket."),
            ),
        );
    }
    row = row.field(
        Field::new(
            IS_COMPLETE,
            TypeRef::named_nn(TypeRef::BOOLEAN),
            row_value,
        )
        .description(
            "Whether every time bucket of the row has ended as of asOf (its end <= asOf; true when no time dimension is selected). An incomplete period's numbers can still change; rates that need the following period (churn) are null until it is complete.",
        ),
    );
    let mut where_input = InputObject::new(&n.where_input)
        .description(format!("Filters of {} metrics: one per dimension (conditions on the raw value), combined with and/or/not. All given fields must hold.", model.name));
    for d in &model.dimensions {
        where_input = where_input.field(
            InputValue::new(d.name.clone(), TypeRef::named(filter_type(d.dim_type)))
                .description(d.description.clone()),
        );
    }
    where_input = combinators(where_input, &n.where_input);
    let mut order = InputObject::new(&n.order).description(format!(
        "A sort key of {} metrics: set one field (a selected dimension or metric) per list element.",
        model.name
    ));
    for d in &model.dimensions {
        order = order.field(InputValue::new(
            d.name.clone(),
            TypeRef::named(common::SORT_DIRECTION),
        ));
    }
    for m in &model.metrics {
        order = order.field(InputValue::new(
            m.name.clone(),
            TypeRef::named(common::SORT_DIRECTION),
        ));
    }
    builder = builder.register(row).register(where_input).register(order);
    if !model.conversion_variants.is_empty() {
        builder = builder.register(
            Enum::new(&n.conversion)
                .description(format!(
                    "The named conversion variants of {}: which events convert.",
                    model.name
                ))
                .items(model.conversion_variants.iter().map(|v| {
                    let default = model.default_variant.as_deref() == Some(v.as_str());
                    EnumItem::new(v).description(format!(
                        "The {v} variant of {}'s conversion filter{}.",
                        model.name,
                        if default {
                            " (the default of metrics)"
                        } else {
                            ""
                        }
                    ))
                })),
        );
    }
    builder
}

/// A model's object type, with the `metrics` field and any `extra` fields of other modules.
pub(crate) fn model_object(model: &Arc<Model>, extra: Vec<Field>) -> Object {
    let n = type_names(model);
    let mut obj = Object::new(&n.model)
        .description(model.description.clone())
        .field(metrics_field(model.clone()));
    for f in extra {
        obj = obj.field(f);
    }
    obj
}

/// The `Query.<model>` field.
pub(crate) fn root_field(model: &Arc<Model>) -> Field {
    let n = type_names(model);
    Field::new(model.name.clone(), TypeRef::named_nn(&n.model), |_| {
        FieldFuture::new(async move { Ok(Some(FieldValue::owned_any(()))) })
    })
    .description(model.description.clone())
}

/// A row of the response: its values, in the order of the shared response keys.
pub(super) struct Row {
    keys: Arc<[String]>,
    values: Vec<Value>,
}

/// A field of a metrics row: the row's value under the field's response key. Synchronous
/// and allocation-free apart from the value's clone (a row has a handful of keys, so a
/// linear search beats hashing).
pub(super) fn row_value(ctx: ResolverContext<'_>) -> FieldFuture<'_> {
    let row = match ctx.parent_value.try_downcast_ref::<Row>() {
        Ok(r) => r,
        Err(e) => return FieldFuture::new(async move { Err::<Option<Value>, _>(e) }),
    };
    let f = ctx.ctx.field();
    let key = f.alias().unwrap_or(f.name());
    FieldFuture::Value(
        row.keys
            .iter()
            .position(|k| k == key)
            .and_then(|i| row.values.get(i))
            .cloned()
            .map(FieldValue::value),
    )
}

fn metrics_field(model: Arc<Model>) -> Field {
    let n = type_names(&model);
    let m2 = model.clone();
    let mut field = Field::new("metrics", TypeRef::named_nn_list_nn(&n.row), move |ctx| {
        let model = m2.clone();
        FieldFuture::new(async move {
            Ok(Some(match resolve(&ctx, &model).await? {
                // the rows are in the response already (see `PrebuiltRows`)
                Resolved::Prebuilt => FieldValue::list(std::iter::empty::<FieldValue>()),
                Resolved::Rows(rows) => FieldValue::list(rows.into_iter().map(FieldValue::owned_any)),
            }))
        })
    })
    .description(format!(
        "Metrics of {}: select metrics and dimensions; selecting a dimension groups by it. One SQL statement per field.",
        model.name
    ))
    .argument(common::as_of_argument())
    .argument(InputValue::new("where", TypeRef::named(&n.where_input)).description("Only rows whose dimensions match."))
    .argument(InputValue::new("orderBy", TypeRef::named_nn_list(&n.order)).description("Sort keys, in order (default: by the selected dimensions)."))
    .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)).description(format!("At most this many rows, 1 to {} (default: at most the server's row cap, 10000 unless set otherwise; when more rows match they are cut and extensions.rowsCut names the field).", common::MAX_LIMIT)))
    .argument(common::offset_argument())
    .argument(
        InputValue::new("timezone", TypeRef::named(TypeRef::STRING))
            .description("The IANA time zone time buckets are computed in (default UTC), e.g. Europe/London: buckets are local periods of that zone (daylight saving applied), returned as their local start without offset (2024-04-01T00:00:00); an hour repeated when clocks go back is one bucket. isComplete and period rates compare with asOf in that zone. Same buckets on SQLite and PostgreSQL."),
    );
    if !model.conversion_variants.is_empty() {
        let default = model.default_variant.clone().unwrap_or_default();
        field = field.argument(
            InputValue::new("conversionFilter", TypeRef::named(&n.conversion))
                .description(format!("Which events convert (default {default}).")),
        );
    }
    field
}

/// What a `metrics` or row resolver produced.
pub(super) enum Resolved {
    /// The response value is in the request's [`PrebuiltRows`].
    Prebuilt,
    /// Rows for async-graphql to resolve field by field (no [`PrebuiltRows`] in the request).
    Rows(Vec<Row>),
}

async fn resolve(ctx: &ResolverContext<'_>, model: &Arc<Model>) -> Result<Resolved, Error> {
    let as_of = common::as_of_arg(&ctx.args)?;
    let mut spec = QuerySpec::new(model.name.clone(), as_of);
    let keys = read_selection(ctx, &mut spec, |f| {
        let name = f.name();
        Ok(if name == IS_COMPLETE {
            Item::IsComplete
        } else if let Some(d) = model.dimension(name) {
            let granularity = if d.dim_type == DimType::Time {
                let mut g = if d.granularities.contains(&Granularity::Day) {
                    Granularity::Day
                } else {
                    d.granularities.first().copied().unwrap_or(Granularity::Day)
                };
                for (arg, v) in f.arguments()? {
                    if arg.as_str() == "granularity"
                        && let Value::Enum(e) = v
                    {
                        g = Granularity::parse(e.as_str()).unwrap_or(g);
                    }
                }
                Some(g)
            } else {
                None
            };
            Item::Dimension {
                name: name.to_owned(),
                granularity,
            }
        } else {
            metric_item(model, f)?
        })
    })?;
    read_args(ctx, &mut spec, &|name| {
        model.dimension(name).map(|d| d.dim_type)
    })?;
    let limits = ctx
        .ctx
        .data_opt::<super::RequestLimits>()
        .copied()
        .unwrap_or_default();
    let metrics = spec
        .fields
        .iter()
        .filter(|f| matches!(f.item, Item::Metric { .. } | Item::Compared { .. }))
        .count();
    let dimensions = spec
        .fields
        .iter()
        .filter(|f| matches!(f.item, Item::Dimension { .. }))
        .count();
    if metrics * dimensions.max(1) > limits.max_metrics_dimensions {
        return Err(ApiError::LimitExceeded(format!(
            "{} selects {metrics} metrics × {dimensions} dimensions = {}; the limit is {} (--max-metrics-dimensions): split it into several fields",
            common::path(ctx),
            metrics * dimensions.max(1),
            limits.max_metrics_dimensions
        ))
        .into_graphql());
    }
    // without `limit`, at most `max_rows` rows: one more is asked for to know whether the
    // answer was cut
    let capped = spec.limit.is_none();
    if capped {
        spec.limit = Some(limits.max_rows + 1);
    }
    let engine = common::engine(ctx)?;
    let session = common::session(ctx)?;
    let mut table = engine
        .run::<Value>(&session, &spec)
        .await
        .map_err(ApiError::into_graphql)?;
    if capped && table.rows.len() as u64 > limits.max_rows {
        table.rows.truncate(limits.max_rows as usize);
        if let Ok(log) = ctx.data::<super::ExplainLog>() {
            log.cut(common::path(ctx), limits.max_rows);
        }
    }
    Ok(deliver(ctx, &keys, &type_names(model).row, table))
}

/// The `PeriodOffset` enum.
const PERIOD_OFFSET: &str = "PeriodOffset";

/// The `OffsetCalculation` enum.
const OFFSET_CALCULATION: &str = "OffsetCalculation";

/// The `ToDate` enum.
const TO_DATE: &str = "ToDate";

/// The field of a metric's growth over an earlier bucket: `netSales` → `netSalesGrowth`.
pub(super) fn growth_field(metric: &str) -> String {
    format!("{metric}Growth")
}

/// A selected metric field: the metric, or with `offset` / `toDate` (or as `…Growth`) one of
/// its compared values.
fn metric_item(model: &Model, f: &async_graphql::SelectionField<'_>) -> Result<Item, Error> {
    let name = f.name();
    let (metric, growth) = match name.strip_suffix("Growth") {
        Some(base) if model.metric(name).is_none() && model.metric(base).is_some() => (base, true),
        _ => (name, false),
    };
    let mut offset = None;
    let mut change = false;
    let mut to_date = None;
    for (arg, v) in f.arguments()? {
        let Value::Enum(e) = v else { continue };
        match arg.as_str() {
            "offset" => offset = PeriodOffset::parse(e.as_str()),
            "calculation" => change = e.as_str() == "CHANGE",
            "toDate" => to_date = Granularity::parse(e.as_str()),
            _ => {}
        }
    }
    // a growth is always against an earlier bucket (the argument's default)
    if growth && offset.is_none() {
        offset = Some(PeriodOffset::PreviousPeriod);
    }
    let comparison = match (offset, to_date) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadTimeComparison(format!(
                "{name}: give offset or toDate, not both"
            ))
            .into_graphql());
        }
        (Some(offset), None) => Some(Comparison::Offset {
            offset,
            calculation: if growth {
                OffsetCalculation::Growth
            } else if change {
                OffsetCalculation::Change
            } else {
                OffsetCalculation::Value
            },
        }),
        (None, _) if change => {
            return Err(ApiError::BadTimeComparison(format!(
                "{name}: calculation: CHANGE is the change from an earlier bucket: give offset too"
            ))
            .into_graphql());
        }
        (None, Some(g)) => Some(Comparison::ToDate(g)),
        (None, None) => None,
    };
    Ok(match comparison {
        Some(comparison) => Item::Compared {
            name: metric.to_owned(),
            comparison,
        },
        None => Item::Metric {
            name: metric.to_owned(),
        },
    })
}

/// Reads the selection set of a `metrics` or row field into `spec.fields` (aliases kept,
/// duplicates once), `item` saying what each selected field is; returns the response keys
/// of a row in selection order, with whether each is `__typename`.
pub(super) fn read_selection(
    ctx: &ResolverContext<'_>,
    spec: &mut QuerySpec,
    mut item: impl FnMut(&async_graphql::SelectionField<'_>) -> Result<Item, Error>,
) -> Result<Vec<(String, bool)>, Error> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    for f in ctx.ctx.field().selection_set() {
        let name = f.name();
        let key = f.alias().unwrap_or(name).to_owned();
        if !keys.iter().any(|(k, _)| *k == key) {
            keys.push((key.clone(), name == "__typename"));
        }
        if name.starts_with("__") {
            continue;
        }
        let sel = Selected {
            key,
            item: item(&f)?,
        };
        if !spec.fields.contains(&sel) {
            spec.fields.push(sel);
        }
    }
    Ok(keys)
}

/// `LIMIT_EXCEEDED` for a `where` (of the field at `path`) with more nodes than
/// `max_filter_nodes` or binding more values than `max_in_list`, checked before any SQL
/// is built.
pub(super) fn check_filter_size(
    filter: &Filter,
    values: usize,
    limits: &super::RequestLimits,
    path: &str,
) -> Result<(), Error> {
    fn nodes(f: &Filter) -> usize {
        match f {
            Filter::And(xs) | Filter::Or(xs) => 1 + xs.iter().map(nodes).sum::<usize>(),
            Filter::Not(x) => 1 + nodes(x),
            Filter::Cond { .. } => 1,
        }
    }
    let n = nodes(filter);
    if n > limits.max_filter_nodes {
        return Err(ApiError::LimitExceeded(format!(
            "the where of {path} holds {n} nodes (conditions, and, or, not); the limit is {} (--max-filter-nodes, limits.max_filter_nodes)",
            limits.max_filter_nodes
        ))
        .into_graphql());
    }
    if values > limits.max_in_list {
        return Err(ApiError::LimitExceeded(format!(
            "the where of {path} binds {values} values in all; the limit is {} (--max-in-list, limits.max_in_list)",
            limits.max_in_list
        ))
        .into_graphql());
    }
    Ok(())
}

/// `and`, `or` and `not` of a `…Where` input named `name`.
pub(super) fn combinators(input: InputObject, name: &str) -> InputObject {
    input
        .field(
            InputValue::new("and", TypeRef::named_nn_list(name)).description("All of these hold."),
        )
        .field(
            InputValue::new("or", TypeRef::named_nn_list(name))
                .description("At least one of these holds."),
        )
        .field(InputValue::new("not", TypeRef::named(name)).description(
            "This does not hold (the exact complement: a comparison with a null is false).",
        ))
}

/// Reads the `where`, `orderBy`, `limit`, `offset`, `timezone` and `conversionFilter`
/// arguments of a `metrics` or row field into `spec`; `lookup` gives the type of a field
/// the filter names (a dimension, or a row column).
pub(super) fn read_args(
    ctx: &ResolverContext<'_>,
    spec: &mut QuerySpec,
    lookup: &dyn Fn(&str) -> Option<DimType>,
) -> Result<(), Error> {
    if let Some(w) = ctx.args.get("where")
        && !w.is_null()
    {
        let obj = w.object()?;
        let limits = ctx
            .ctx
            .data_opt::<super::RequestLimits>()
            .copied()
            .unwrap_or_default();
        let path = common::path(ctx);
        let before = spec.values.len();
        let filter = read_where(lookup, &obj, &mut spec.values, &limits, &path, 0)?;
        check_filter_size(&filter, spec.values.len() - before, &limits, &path)?;
        spec.filter = Some(filter);
    }
    if let Some(o) = ctx.args.get("orderBy")
        && !o.is_null()
    {
        for item in o.list()?.iter() {
            for (k, v) in item.object()?.iter() {
                if v.is_null() {
                    continue;
                }
                spec.order.push(OrderItem {
                    target: k.to_string(),
                    descending: common::is_descending(Some(v))?,
                });
            }
        }
    }
    if let Some(l) = ctx.args.get("limit")
        && !l.is_null()
    {
        spec.limit = Some(common::page(Some(l.i64()?), None)?.limit);
    }
    if let Some(o) = ctx.args.get("offset")
        && !o.is_null()
    {
        let off = common::page(None, Some(o.i64()?))?.offset;
        if off > 0 {
            spec.offset = Some(off);
        }
    }
    if let Some(tz) = ctx.args.get("timezone")
        && !tz.is_null()
    {
        let tz = tz.string()?;
        if !is_utc(tz) {
            spec.timezone = Some(tz.to_owned());
        }
    }
    if let Some(cf) = ctx.args.get("conversionFilter")
        && !cf.is_null()
    {
        spec.conversion_filter = Some(cf.enum_name()?.to_owned());
    }
    Ok(())
}

/// Hands the rows of `table` to async-graphql: one object per row with the selected
/// response keys (`keys`: key and whether it is `__typename`) — in the request's
/// [`PrebuiltRows`] when there is one, else as [`Row`]s resolved field by field.
pub(super) fn deliver(
    ctx: &ResolverContext<'_>,
    keys: &[(String, bool)],
    type_name: &str,
    table: Table<Value>,
) -> Resolved {
    if let Ok(stash) = ctx.ctx.data::<PrebuiltRows>() {
        // one object per row, keys in selection order
        let type_name = Value::from(type_name);
        let slots: Vec<(async_graphql::Name, Option<usize>)> = keys
            .iter()
            .map(|(k, typename)| {
                let col = if *typename {
                    None
                } else {
                    table.columns.iter().position(|(c, _)| c == k)
                };
                (async_graphql::Name::new(k), col)
            })
            .collect();
        let list: Vec<Value> = table
            .rows
            .into_iter()
            .map(|mut values| {
                let mut obj = async_graphql::indexmap::IndexMap::with_capacity(slots.len());
                for (name, col) in &slots {
                    let v = match col {
                        Some(i) => values
                            .get_mut(*i)
                            .map(|v| std::mem::replace(v, Value::Null))
                            .unwrap_or(Value::Null),
                        None => type_name.clone(),
                    };
                    obj.insert(name.clone(), v);
                }
                Value::Object(obj)
            })
            .collect();
        stash.put(common::path(ctx), Value::List(list));
        return Resolved::Prebuilt;
    }
    let keys: Arc<[String]> = table.columns.iter().map(|(k, _)| k.clone()).collect();
    Resolved::Rows(
        table
            .rows
            .into_iter()
            .map(|values| Row {
                keys: keys.clone(),
                values,
            })
            .collect(),
    )
}

fn is_utc(tz: &str) -> bool {
    matches!(
        tz,
        "UTC"
            | "Etc/UTC"
            | "Etc/UCT"
            | "UCT"
            | "Etc/Zulu"
            | "Zulu"
            | "Etc/GMT"
            | "GMT"
            | "Universal"
            | "Etc/Universal"
    )
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            common::bad_argument(format!(
                "{s:?} is not an RFC 3339 instant (e.g. 2024-01-01T00:00:00Z)"
            ))
        })
}

fn read_value(t: DimType, v: &ValueAccessor<'_>) -> Result<ReqValue, Error> {
    Ok(match t {
        DimType::String => ReqValue::Str(v.string()?.to_owned()),
        DimType::Number => ReqValue::Num(v.f64()?),
        DimType::Boolean => ReqValue::Bool(v.boolean()?),
        DimType::Time => ReqValue::Time(parse_time(v.string()?)?),
    })
}

pub(super) fn read_where(
    lookup: &dyn Fn(&str) -> Option<DimType>,
    obj: &ObjectAccessor<'_>,
    values: &mut Vec<ReqValue>,
    limits: &super::RequestLimits,
    path: &str,
    depth: usize,
) -> Result<Filter, Error> {
    if depth > 16 {
        return Err(common::bad_argument(
            "where nests too deeply (16 levels at most)",
        ));
    }
    let mut all = Vec::new();
    for (k, v) in obj.iter() {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "and" | "or" => {
                let mut xs = Vec::new();
                for item in v.list()?.iter() {
                    xs.push(read_where(
                        lookup,
                        &item.object()?,
                        values,
                        limits,
                        path,
                        depth + 1,
                    )?);
                }
                all.push(if k.as_str() == "and" {
                    Filter::And(xs)
                } else {
                    Filter::Or(xs)
                });
            }
            "not" => all.push(Filter::Not(Box::new(read_where(
                lookup,
                &v.object()?,
                values,
                limits,
                path,
                depth + 1,
            )?))),
            dim => {
                let Some(dim_type) = lookup(dim) else {
                    return Err(common::bad_argument(format!("unknown dimension {dim:?}")));
                };
                for (op, arg) in v.object()?.iter() {
                    if arg.is_null() {
                        continue;
                    }
                    let mut push = |x: ReqValue| {
                        values.push(x);
                        values.len() - 1
                    };
                    let (fop, args) = match op.as_str() {
                        "isNull" => {
                            let yes = arg.boolean()?;
                            (
                                if yes {
                                    FilterOp::IsNull
                                } else {
                                    FilterOp::IsNotNull
                                },
                                Vec::new(),
                            )
                        }
                        "in" | "notIn" | "between" => {
                            let list = arg.list()?;
                            if list.len() > limits.max_in_list {
                                return Err(ApiError::LimitExceeded(format!(
                                    "the where of {path} gives {dim}.{op} {} values; the limit is {} (--max-in-list, limits.max_in_list)",
                                    list.len(),
                                    limits.max_in_list
                                ))
                                .into_graphql());
                            }
                            let mut idx = Vec::new();
                            for x in list.iter() {
                                idx.push(push(read_value(dim_type, &x)?));
                            }
                            if op.as_str() == "between" && idx.len() != 2 {
                                return Err(common::bad_argument(format!(
                                    "{dim}.between takes [low, high]"
                                )));
                            }
                            let fop = match op.as_str() {
                                "in" => FilterOp::In,
                                "notIn" => FilterOp::NotIn,
                                _ => FilterOp::Between,
                            };
                            (fop, idx)
                        }
                        other => {
                            let Some(fop) = FilterOp::single_valued(other) else {
                                return Err(common::bad_argument(format!(
                                    "unknown condition {other:?} on {dim}"
                                )));
                            };
                            (fop, vec![push(read_value(dim_type, &arg)?)])
                        }
                    };
                    all.push(Filter::Cond {
                        dimension: dim.to_owned(),
                        op: fop,
                        args,
                    });
                }
            }
        }
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        Filter::And(all)
    })
}
