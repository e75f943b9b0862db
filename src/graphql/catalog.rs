//! `catalog`: the models, their metrics and dimensions, units and valid combinations, for
//! BI tools and the explorer.

use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, SchemaBuilder, TypeRef,
};

use crate::semantic::{Dimension, Metric, Model};

/// A metric and the model it belongs to.
struct MetricRef(Arc<Model>, usize);

/// A dimension and the model it belongs to.
struct DimensionRef(Arc<Model>, usize);

fn string_field(name: &str, description: &str, f: fn(&FieldValue<'_>) -> Option<String>) -> Field {
    Field::new(name, TypeRef::named_nn(TypeRef::STRING), move |ctx| {
        FieldFuture::new(async move { Ok(f(ctx.parent_value).map(Value::from)) })
    })
    .description(description)
}

fn metric_of<'a>(v: &'a FieldValue<'_>) -> Option<(&'a Model, &'a Metric)> {
    let r = v.downcast_ref::<MetricRef>()?;
    Some((&r.0, r.0.metrics.get(r.1)?))
}

fn dimension_of<'a>(v: &'a FieldValue<'_>) -> Option<(&'a Model, &'a Dimension)> {
    let r = v.downcast_ref::<DimensionRef>()?;
    Some((&r.0, r.0.dimensions.get(r.1)?))
}

/// The role of the request's caller (set by the HTTP layer from its API key): the catalog
/// lists only what it may read. `None`: an open server, everything.
fn role<'a>(ctx: &'a async_graphql::dynamic::ResolverContext<'_>) -> Option<&'a crate::auth::Role> {
    ctx.data_opt::<Arc<crate::auth::Role>>().map(|r| r.as_ref())
}

/// Registers the catalog's types.
pub(crate) fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let catalog = Object::new("Catalog")
        .description("What can be asked: every model with its metrics and dimensions.")
        .field(
            Field::new("models", TypeRef::named_nn_list_nn("CatalogModel"), |ctx| {
                FieldFuture::new(async move {
                    let models = ctx.data::<CatalogModels>()?;
                    let wanted = ctx
                        .args
                        .get("name")
                        .map(|v| v.string().map(str::to_owned))
                        .transpose()?;
                    Ok(Some(FieldValue::list(
                        models
                            .0
                            .iter()
                            .filter(|m| wanted.as_deref().is_none_or(|w| w == m.name))
                            .filter(|m| role(&ctx).is_none_or(|r| r.may_read_model(&m.name)))
                            .map(|m| FieldValue::owned_any(m.clone())),
                    )))
                })
            })
            .argument(
                InputValue::new("name", TypeRef::named(TypeRef::STRING))
                    .description("Only this model."),
            )
            .description("The models, in the order they are served."),
        );
    let model = Object::new("CatalogModel")
        .description("A model: a group of source tables and the metrics defined over them.")
        .field(string_field(
            "name",
            "The model's name: its field on Query.",
            |v| v.downcast_ref::<Arc<Model>>().map(|m| m.name.clone()),
        ))
        .field(string_field(
            "description",
            "What the model is about.",
            |v| {
                v.downcast_ref::<Arc<Model>>()
                    .map(|m| m.description.clone())
            },
        ))
        .field(
            Field::new(
                "metrics",
                TypeRef::named_nn_list_nn("CatalogMetric"),
                |ctx| {
                    FieldFuture::new(async move {
                        let m = ctx.parent_value.try_downcast_ref::<Arc<Model>>()?;
                        let role = role(&ctx);
                        Ok(Some(FieldValue::list(
                            (0..m.metrics.len())
                                .filter(|i| {
                                    role.is_none_or(|r| {
                                        r.may_use_metric(&m.name, &m.metrics[*i].name)
                                    })
                                })
                                .map(|i| FieldValue::owned_any(MetricRef(m.clone(), i))),
                        )))
                    })
                },
            )
            .description("The model's metrics."),
        )
        .field(
            Field::new(
                "dimensions",
                TypeRef::named_nn_list_nn("CatalogDimension"),
                |ctx| {
                    FieldFuture::new(async move {
                        let m = ctx.parent_value.try_downcast_ref::<Arc<Model>>()?;
                        let role = role(&ctx);
                        Ok(Some(FieldValue::list(
                            (0..m.dimensions.len())
                                .filter(|i| {
                                    role.is_none_or(|r| {
                                        r.may_use_dimension(&m.name, &m.dimensions[*i].name)
                                    })
                                })
                                .map(|i| FieldValue::owned_any(DimensionRef(m.clone(), i))),
                        )))
                    })
                },
            )
            .description("The model's dimensions."),
        )
        .field(
            Field::new(
                "conversionVariants",
                TypeRef::named_nn_list_nn(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let m = ctx.parent_value.try_downcast_ref::<Arc<Model>>()?;
                        Ok(Some(Value::List(
                            m.conversion_variants
                                .iter()
                                .map(|v| Value::from(v.as_str()))
                                .collect(),
                        )))
                    })
                },
            )
            .description(
                "The values of the model's conversionFilter argument (empty: it has none).",
            ),
        );
    let metric = Object::new("CatalogMetric")
        .description("A metric: a named number, with its unit and kind.")
        .field(string_field("name", "The metric's field name.", |v| metric_of(v).map(|(_, m)| m.name.clone())))
        .field(string_field("description", "What it means.", |v| metric_of(v).map(|(_, m)| m.description.clone())))
        .field(string_field(
            "unit",
            "Its unit: count (Int), currency (Decimal), percent or ratio (Float fraction), duration_days, duration_seconds or number (Float).",
            |v| metric_of(v).map(|(_, m)| m.unit.as_str().to_owned()),
        ))
        .field(string_field(
            "kind",
            "How it is computed: simple, ratio, derived, cumulative, conversion, retention or period_average.",
            |v| metric_of(v).map(|(_, m)| m.kind.as_str().to_owned()),
        ))
        .field(
            Field::new("dimensions", TypeRef::named_nn_list_nn(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let Some((model, m)) = metric_of(ctx.parent_value) else {
                        return Ok(None);
                    };
                    Ok(Some(Value::List(
                        model
                            .reachable_dimensions(&m.name)
                            .iter()
                            .filter(|d| role(&ctx).is_none_or(|r| r.may_use_dimension(&model.name, &d.name)))
                            .map(|d| Value::from(d.name.as_str()))
                            .collect(),
                    )))
                })
            })
            .description("The dimensions it can be grouped and filtered by (the valid combinations)."),
        );
    let dimension = Object::new("CatalogDimension")
        .description("A dimension: something to group and filter metrics by.")
        .field(string_field("name", "The dimension's field name.", |v| {
            dimension_of(v).map(|(_, d)| d.name.clone())
        }))
        .field(string_field("description", "What it is.", |v| {
            dimension_of(v).map(|(_, d)| d.description.clone())
        }))
        .field(string_field(
            "type",
            "Its type: string, number, boolean or time.",
            |v| dimension_of(v).map(|(_, d)| d.dim_type.as_str().to_owned()),
        ))
        .field(string_field(
            "table",
            "The logical table it is read from.",
            |v| dimension_of(v).map(|(_, d)| d.table.clone()),
        ))
        .field(
            Field::new(
                "granularities",
                TypeRef::named_nn_list_nn("Granularity"),
                |ctx| {
                    FieldFuture::new(async move {
                        let Some((_, d)) = dimension_of(ctx.parent_value) else {
                            return Ok(None);
                        };
                        Ok(Some(Value::List(
                            d.granularities
                                .iter()
                                .map(|g| {
                                    Value::Enum(async_graphql::Name::new(g.as_str().to_uppercase()))
                                })
                                .collect(),
                        )))
                    })
                },
            )
            .description("For time dimensions, the granularities offered (empty otherwise)."),
        );
    builder
        .register(catalog)
        .register(model)
        .register(metric)
        .register(dimension)
}

/// The models as request data for the catalog.
#[derive(Clone)]
pub(crate) struct CatalogModels(pub(crate) Arc<Vec<Arc<Model>>>);

/// The `catalog` field of `Query`.
pub(crate) fn root_field() -> Field {
    Field::new("catalog", TypeRef::named_nn("Catalog"), |ctx| {
        FieldFuture::new(async move {
            super::common::explain_without_sql(&ctx, "catalog");
            Ok(Some(FieldValue::owned_any(())))
        })
    })
    .description("What can be asked: models, metrics (with units and kinds), dimensions (with types and granularities) and which combine.")
}
