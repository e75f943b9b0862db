//! `gym { clientConversionEvents(…) leadConversions(…) }`: the gym lead-conversion models
//! (`crate::gym`), one GraphQL field per column of the task's figures 1.4.1 and 1.4.2.
//!
//! Types: `Gym`, `ClientConversionEvent`, `LeadConversion`; the enums `LeadStatus`,
//! `ClientConversionEventType`, `ConversionFilter`, `ClientConversionEventField`,
//! `LeadConversionField`; the inputs `ClientConversionEventWhere`, `LeadConversionWhere`,
//! `ClientConversionEventOrder`, `LeadConversionOrder` and the per-type conditions
//! `TextCondition`, `LocalDateTimeCondition`, `LeadStatusCondition`,
//! `ClientConversionEventTypeCondition`, `ConversionFilterCondition`.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ObjectAccessor, SchemaBuilder, TypeRef, ValueAccessor,
};
use async_graphql::{Error, Value};

use super::common;
use crate::error::ApiError;
use crate::gym::{
    Column, ColumnKind, Condition, ConversionFilter, Direction, Filter, Model, OrderBy, Query, Row,
};

/// GraphQL names of a model's types.
struct Names {
    object: &'static str,
    field_enum: &'static str,
    where_input: &'static str,
    order_input: &'static str,
}

/// The GraphQL names of `model`'s types.
fn names(model: Model) -> Names {
    match model {
        Model::ClientConversionEvents => Names {
            object: "ClientConversionEvent",
            field_enum: "ClientConversionEventField",
            where_input: "ClientConversionEventWhere",
            order_input: "ClientConversionEventOrder",
        },
        Model::LeadConversions => Names {
            object: "LeadConversion",
            field_enum: "LeadConversionField",
            where_input: "LeadConversionWhere",
            order_input: "LeadConversionOrder",
        },
    }
}

/// The most `where` objects a request may nest (and/or/not), checked while reading it.
const MAX_WHERE_DEPTH: usize = 16;

/// The GraphQL type of a column's values, and of its condition input.
fn kind_types(kind: ColumnKind) -> (&'static str, &'static str) {
    match kind {
        ColumnKind::Text => (TypeRef::STRING, "TextCondition"),
        ColumnKind::LocalDateTime => (TypeRef::STRING, "LocalDateTimeCondition"),
        ColumnKind::LeadStatus => ("LeadStatus", "LeadStatusCondition"),
        ColumnKind::EventType => (
            "ClientConversionEventType",
            "ClientConversionEventTypeCondition",
        ),
        ColumnKind::EventFilter => ("ConversionFilter", "ConversionFilterCondition"),
    }
}

/// Registers every type of the `gym` field.
pub(crate) fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let mut builder = common::register(builder)
        .register(
            Enum::new("LeadStatus")
                .description("Whether a user has converted.")
                .item(EnumItem::new("LEAD").description("No conversion event counts yet."))
                .item(EnumItem::new("CLIENT").description("A conversion event counts.")),
        )
        .register(
            Enum::new("ClientConversionEventType")
                .description("The kind of purchase that converted a lead.")
                .item(EnumItem::new("MEMBERSHIP").description("A membership purchase."))
                .item(EnumItem::new("USER_CREDIT").description("A credit-pack purchase.")),
        )
        .register(
            Enum::new("ConversionFilter")
                .description("Which purchases may convert a lead.")
                .item(EnumItem::new("MEMBERSHIP").description("Only membership purchases."))
                .item(EnumItem::new("USER_CREDIT").description("Only credit-pack purchases."))
                .item(EnumItem::new("ALL").description(
                    "Both; the earlier first purchase wins, a tie going to MEMBERSHIP.",
                )),
        )
        .register(text_condition())
        .register(local_date_time_condition())
        .register(enum_condition("LeadStatusCondition", "LeadStatus", false))
        .register(enum_condition(
            "ClientConversionEventTypeCondition",
            "ClientConversionEventType",
            true,
        ))
        .register(enum_condition(
            "ConversionFilterCondition",
            "ConversionFilter",
            false,
        ));
    for model in [Model::ClientConversionEvents, Model::LeadConversions] {
        builder = register_model(builder, model);
    }
    builder
}

/// The fields this module adds to the `gym` model object, next to the semantic layer's
/// `metrics`: the two row-level models of the task, as of an instant, in the local time of
/// each user's branch.
pub(crate) fn fields() -> Vec<Field> {
    vec![
        model_field(Model::ClientConversionEvents),
        model_field(Model::LeadConversions),
    ]
}

/// `TextCondition`: comparisons of a text column (byte order).
fn text_condition() -> InputObject {
    let s = || TypeRef::named(TypeRef::STRING);
    InputObject::new("TextCondition")
        .description("Conditions on a text column; all given ones must hold. Comparisons are case-sensitive, in byte order ('B' < 'a'), and false on null.")
        .field(InputValue::new("equals", s()).description("Equal to this."))
        .field(InputValue::new("in", TypeRef::named_nn_list(TypeRef::STRING)).description("Equal to one of these (an empty list matches nothing)."))
        .field(InputValue::new("contains", s()).description("Contains this substring (case-sensitive)."))
        .field(InputValue::new("gt", s()).description("Greater than this, in byte order."))
        .field(InputValue::new("gte", s()).description("Greater than or equal to this, in byte order."))
        .field(InputValue::new("lt", s()).description("Less than this, in byte order."))
        .field(InputValue::new("lte", s()).description("Less than or equal to this, in byte order."))
        .field(InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN)).description("true: the value is null; false: it is not."))
}

/// `LocalDateTimeCondition`: comparisons of a local time column.
fn local_date_time_condition() -> InputObject {
    let s = || TypeRef::named(TypeRef::STRING);
    InputObject::new("LocalDateTimeCondition")
        .description("Conditions on a local time (YYYY-MM-DDTHH:MM:SS in the zone of the user's branch); all given ones must hold, and they are false on null. Values are YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD (a date compares as the start of that day: gte 2024-10-27 is from midnight on).")
        .field(InputValue::new("equals", s()).description("Exactly this local time."))
        .field(InputValue::new("in", TypeRef::named_nn_list(TypeRef::STRING)).description("One of these local times."))
        .field(InputValue::new("gt", s()).description("Later than this."))
        .field(InputValue::new("gte", s()).description("This or later."))
        .field(InputValue::new("lt", s()).description("Earlier than this."))
        .field(InputValue::new("lte", s()).description("This or earlier (a bare date means its midnight)."))
        .field(InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN)).description("true: the value is null; false: it is not."))
}

/// A condition input on an enum column.
fn enum_condition(name: &str, enum_type: &str, nullable: bool) -> InputObject {
    let mut input = InputObject::new(name)
        .description(format!("Conditions on a {enum_type} column; all given ones must hold, and they are false on null."))
        .field(InputValue::new("equals", TypeRef::named(enum_type)).description("Equal to this."))
        .field(InputValue::new("in", TypeRef::named_nn_list(enum_type)).description("Equal to one of these (an empty list matches nothing)."));
    if nullable {
        input = input.field(
            InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN))
                .description("true: the value is null (a LEAD); false: it is not."),
        );
    }
    input
}

/// Registers a model's object, field enum, where and order inputs.
fn register_model(builder: SchemaBuilder, model: Model) -> SchemaBuilder {
    let n = names(model);
    let mut object = Object::new(n.object).description(match model {
        Model::ClientConversionEvents => "One user as of asOf, with their first membership, first credit pack and client conversion event (fct_client_conversion_events, figure 1.4.1).",
        Model::LeadConversions => "One user under one conversion filter as of asOf, with the conversion event that filter allows (fct_lead_conversions, figure 1.4.2).",
    });
    let mut field_enum =
        Enum::new(n.field_enum).description(format!("A column of {} to sort by.", n.object));
    let mut where_input = InputObject::new(n.where_input).description(format!(
        "A filter on {} rows: every given field condition, and, or and not must hold.",
        n.object
    ));
    for (i, c) in model.columns().iter().enumerate() {
        let (value_type, condition_type) = kind_types(c.kind);
        let ty = if c.nullable {
            TypeRef::named(value_type)
        } else {
            TypeRef::named_nn(value_type)
        };
        object = object.field(
            Field::new(c.field, ty, move |ctx| {
                FieldFuture::new(async move {
                    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                    Ok(row.values.get(i).and_then(|v| v.clone()).map(Value::from))
                })
            })
            .description(c.description),
        );
        field_enum = field_enum
            .item(EnumItem::new(c.order_key).description(format!("{} ({}).", c.field, c.name)));
        where_input = where_input.field(
            InputValue::new(c.field, TypeRef::named(condition_type))
                .description(format!("Condition on {}.", c.field)),
        );
    }
    where_input = where_input
        .field(
            InputValue::new("and", TypeRef::named_nn_list(n.where_input))
                .description("Every one of these filters holds."),
        )
        .field(
            InputValue::new("or", TypeRef::named_nn_list(n.where_input))
                .description("At least one of these filters holds (an empty list: none)."),
        )
        .field(
            InputValue::new("not", TypeRef::named(n.where_input)).description(
                "This filter does not hold (the exact complement: null values included).",
            ),
        );
    let order_input = InputObject::new(n.order_input)
        .description(format!("A sort key of {} rows.", n.object))
        .field(InputValue::new("field", TypeRef::named_nn(n.field_enum)).description("The column."))
        .field(
            InputValue::new("direction", TypeRef::named(common::SORT_DIRECTION))
                .default_value(Value::Enum(async_graphql::Name::new("ASC")))
                .description("The direction (default ASC)."),
        );
    builder
        .register(object)
        .register(field_enum)
        .register(where_input)
        .register(order_input)
}

/// The `clientConversionEvents` or `leadConversions` field of `Gym`.
fn model_field(model: Model) -> Field {
    let n = names(model);
    let (name, description) = match model {
        Model::ClientConversionEvents => (
            "clientConversionEvents",
            "fct_client_conversion_events: one row per user created at or before asOf, with the user's first membership and first credit pack (purchase time then record created_at both <= asOf) and the earlier of the two as the conversion event (a tie goes to MEMBERSHIP). Local times are in the zone of the user's branch. Default order: userId.",
        ),
        Model::LeadConversions => (
            "leadConversions",
            "fct_lead_conversions: three rows per user created at or before asOf, one per conversion filter (MEMBERSHIP, USER_CREDIT, ALL), each with the conversion event that filter allows. Default order: userId, then MEMBERSHIP, USER_CREDIT, ALL.",
        ),
    };
    let mut field = Field::new(name, TypeRef::named_nn_list_nn(n.object), move |ctx| {
        FieldFuture::new(async move {
            let session = common::session(&ctx)?;
            let args = &ctx.args;
            let as_of = common::as_of_arg(args)?;
            let page = common::page_args(args)?;
            let conversion_filter = match args.get("conversionFilter") {
                Some(v) if !v.is_null() => Some(
                    ConversionFilter::parse(v.enum_name()?)
                        .ok_or_else(|| common::bad_argument("unknown conversion filter"))?,
                ),
                _ => None,
            };
            let filter = match args.get("where") {
                Some(v) if !v.is_null() => Some(read_where(model, &v.object()?, 0)?),
                _ => None,
            };
            let order_by = match args.get("orderBy") {
                Some(v) if !v.is_null() => read_order(model, v)?,
                _ => Vec::new(),
            };
            let query = Query {
                filter,
                order_by,
                limit: Some(page.limit),
                offset: page.offset,
            };
            let rows = match model {
                Model::ClientConversionEvents => {
                    crate::gym::client_conversion_events(&session, as_of, &query).await
                }
                Model::LeadConversions => {
                    crate::gym::lead_conversions(&session, as_of, conversion_filter, &query).await
                }
            }
            .map_err(ApiError::into_graphql)?;
            Ok(Some(FieldValue::list(
                rows.into_iter().map(FieldValue::owned_any),
            )))
        })
    })
    .description(description)
    .argument(common::as_of_argument());
    if model == Model::LeadConversions {
        field = field.argument(
            InputValue::new("conversionFilter", TypeRef::named("ConversionFilter")).description(
                "Only the rows of this conversion filter (default: all three rows per user).",
            ),
        );
    }
    field
        .argument(InputValue::new("where", TypeRef::named(n.where_input)).description("Only the rows this filter holds for."))
        .argument(
            InputValue::new("orderBy", TypeRef::named_nn_list(n.order_input))
                .description("Sort keys, in order of precedence; userId (then the conversion filter) always breaks ties."),
        )
        .argument(common::limit_argument())
        .argument(common::offset_argument())
}

/// The column of `model` whose GraphQL field is `field`.
fn column_of_field(model: Model, field: &str) -> Option<&'static Column> {
    model.columns().iter().find(|c| c.field == field)
}

/// Reads a `…Where` input object into a [`Filter`].
fn read_where(model: Model, obj: &ObjectAccessor<'_>, depth: usize) -> Result<Filter, Error> {
    if depth > MAX_WHERE_DEPTH {
        return Err(common::bad_argument(format!(
            "where nests and/or/not more than {MAX_WHERE_DEPTH} levels deep"
        )));
    }
    let mut all = Vec::new();
    for (key, value) in obj.iter() {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "and" | "or" => {
                let items = value
                    .list()?
                    .iter()
                    .map(|v| read_where(model, &v.object()?, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                all.push(if key.as_str() == "and" {
                    Filter::And(items)
                } else {
                    Filter::Or(items)
                });
            }
            "not" => all.push(Filter::Not(Box::new(read_where(
                model,
                &value.object()?,
                depth + 1,
            )?))),
            field => {
                let c = column_of_field(model, field)
                    .ok_or_else(|| common::bad_argument(format!("unknown where field {field}")))?;
                for condition in read_conditions(&value.object()?)? {
                    all.push(Filter::Column {
                        column: c.name.to_owned(),
                        condition,
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

/// Reads a condition input (`TextCondition`, …) into its conditions.
fn read_conditions(obj: &ObjectAccessor<'_>) -> Result<Vec<Condition>, Error> {
    // Enum values arrive as enum names, strings as strings.
    fn text(v: &ValueAccessor<'_>) -> Result<String, Error> {
        match v.as_value() {
            Value::Enum(name) => Ok(name.to_string()),
            _ => Ok(v.string()?.to_owned()),
        }
    }
    let mut out = Vec::new();
    for (key, value) in obj.iter() {
        if value.is_null() {
            continue;
        }
        let condition = match key.as_str() {
            "equals" => Condition::Equals(text(&value)?),
            "in" => Condition::In(
                value
                    .list()?
                    .iter()
                    .map(|v| text(&v))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            "contains" => Condition::Contains(text(&value)?),
            "gt" => Condition::Gt(text(&value)?),
            "gte" => Condition::Gte(text(&value)?),
            "lt" => Condition::Lt(text(&value)?),
            "lte" => Condition::Lte(text(&value)?),
            "isNull" => Condition::IsNull(value.boolean()?),
            other => return Err(common::bad_argument(format!("unknown condition {other}"))),
        };
        out.push(condition);
    }
    Ok(out)
}

/// Reads an `orderBy` list.
fn read_order(model: Model, value: ValueAccessor<'_>) -> Result<Vec<OrderBy>, Error> {
    value
        .list()?
        .iter()
        .map(|item| {
            let obj = item.object()?;
            let key = obj.try_get("field")?.enum_name()?.to_owned();
            let c = model
                .columns()
                .iter()
                .find(|c| c.order_key == key)
                .ok_or_else(|| common::bad_argument(format!("unknown sort field {key}")))?;
            let direction = if common::is_descending(obj.get("direction"))? {
                Direction::Desc
            } else {
                Direction::Asc
            };
            Ok(OrderBy {
                column: c.name.to_owned(),
                direction,
            })
        })
        .collect()
}
