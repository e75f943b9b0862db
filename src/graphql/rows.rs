//! `<model> { <rowsField>(…) { … } }`: the row queries of a model — one field per table that
//! lists its rows (`rows = { field = … }` in the model file), answered by the engine like
//! `metrics`, with the same argument style.
//!
//! Per row field `f` of model `M`: `MFRow` (one field per column, camelCase), `MFWhere` (the
//! typed filters of `metrics` — `StringFilter`, `NumberFilter`, `TimeFilter`,
//! `BooleanFilter` — per column, and/or/not) and `MFOrderBy` (one `SortDirection` per
//! column, one key per list element), `F` being `f` in PascalCase. Arguments: `asOf`,
//! `conversionFilter` (when the table has a conversion-filter column: only that variant's
//! rows; all of them when absent), `where`, `orderBy`, `limit` (1 to 10000, default 100),
//! `offset`.

use std::sync::Arc;

use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, SchemaBuilder, TypeRef,
};

use super::common;
use super::metrics::{Resolved, deliver, pascal, read_args, read_selection, row_value, type_names};
use crate::error::ApiError;
use crate::query::{Item, QuerySpec};
use crate::semantic::{ColType, Model, RowsField, Table};

/// The GraphQL type names of a row field.
struct RowNames {
    row: String,
    where_input: String,
    order: String,
}

fn names(model: &Model, rows: &RowsField) -> RowNames {
    let p = format!("{}{}", pascal(&model.name), pascal(&rows.field));
    RowNames {
        row: format!("{p}Row"),
        where_input: format!("{p}Where"),
        order: format!("{p}OrderBy"),
    }
}

/// The GraphQL type of a column's values.
fn value_type(ty: ColType) -> &'static str {
    match ty {
        ColType::Int => TypeRef::INT,
        ColType::Float => TypeRef::FLOAT,
        ColType::Decimal => super::metrics::DECIMAL,
        ColType::Bool => TypeRef::BOOLEAN,
        ColType::String | ColType::Time | ColType::Date | ColType::LocalTime | ColType::Json => {
            TypeRef::STRING
        }
    }
}

/// What a column's values look like, for its description.
fn value_text(ty: ColType) -> &'static str {
    match ty {
        ColType::Time => " An instant, RFC 3339 in UTC with whole seconds (2024-03-01T09:30:00Z).",
        ColType::Date => " A date, YYYY-MM-DD.",
        ColType::LocalTime => {
            " A local wall-clock time, YYYY-MM-DDTHH:MM:SS; filters compare the UTC digits of an RFC 3339 instant with it (gte: \"2024-10-27T00:00:00Z\" is from local midnight on)."
        }
        ColType::Decimal => " Money, a decimal string with 2 places.",
        _ => "",
    }
}

/// The tables of `model` that list their rows.
fn row_tables(model: &Model) -> impl Iterator<Item = (&Table, &RowsField)> {
    model
        .tables
        .iter()
        .filter_map(|t| t.rows.as_ref().map(|r| (t.as_ref(), r)))
}

/// Registers the row, where and order types of every row field of `model`.
pub(crate) fn register(mut builder: SchemaBuilder, model: &Arc<Model>) -> SchemaBuilder {
    for (t, rows) in row_tables(model) {
        let n = names(model, rows);
        let mut row = Object::new(&n.row).description(t.description.clone());
        let mut where_input = InputObject::new(&n.where_input).description(format!(
            "Filters of {}.{} rows: one per column (the same conditions as metrics), combined with and/or/not. All given fields must hold; a comparison with a null value does not hold.",
            model.name, rows.field
        ));
        let mut order = InputObject::new(&n.order).description(format!(
            "A sort key of {}.{} rows: set one column per list element (nulls last either way).",
            model.name, rows.field
        ));
        for c in &rows.columns {
            let ty = if c.key {
                TypeRef::named_nn(value_type(c.ty))
            } else {
                TypeRef::named(value_type(c.ty))
            };
            row = row.field(
                Field::new(c.field.clone(), ty, row_value).description(format!(
                    "Column {} of {}.{}",
                    c.column,
                    t.name,
                    value_text(c.ty)
                )),
            );
            where_input = where_input.field(
                InputValue::new(
                    c.field.clone(),
                    TypeRef::named(super::metrics::filter_type(c.dimension.dim_type)),
                )
                .description(format!("Condition on {}.", c.column)),
            );
            order = order.field(
                InputValue::new(c.field.clone(), TypeRef::named(common::SORT_DIRECTION))
                    .description(format!("Sort by {}.", c.column)),
            );
        }
        where_input = super::metrics::combinators(where_input, &n.where_input);
        builder = builder.register(row).register(where_input).register(order);
    }
    builder
}

/// The row fields of `model`'s object.
pub(crate) fn fields(model: &Arc<Model>) -> Vec<Field> {
    row_tables(model)
        .map(|(t, rows)| field(model.clone(), t, rows))
        .collect()
}

fn field(model: Arc<Model>, t: &Table, rows: &RowsField) -> Field {
    let n = names(&model, rows);
    let table = t.name.clone();
    let row_type = n.row.clone();
    let conversion = t
        .conversion_filter
        .as_ref()
        .map(|_| type_names(&model).conversion);
    let mut f = Field::new(rows.field.clone(), TypeRef::named_nn_list_nn(&n.row), move |ctx| {
        let model = model.clone();
        let table = table.clone();
        let row_type = row_type.clone();
        FieldFuture::new(async move {
            let as_of = common::as_of_arg(&ctx.args)?;
            let mut spec = QuerySpec::rows_of(model.name.clone(), table.clone(), as_of);
            let keys = read_selection(&ctx, &mut spec, |f| {
                Ok(Item::Column {
                    name: f.name().to_owned(),
                })
            })?;
            let rows = model.table(&table).and_then(|t| t.rows.as_ref());
            read_args(&ctx, &mut spec, &|name| {
                rows.and_then(|r| r.column(name)).map(|c| c.dimension.dim_type)
            })?;
            // a page: at most `limit` rows (default 100)
            if spec.limit.is_none() {
                spec.limit = Some(common::DEFAULT_LIMIT);
            }
            let engine = common::engine(&ctx)?;
            let session = common::session(&ctx)?;
            let table = engine
                .run::<async_graphql::Value>(&session, &spec)
                .await
                .map_err(ApiError::into_graphql)?;
            Ok(Some(match deliver(&ctx, &keys, &row_type, table) {
                Resolved::Prebuilt => FieldValue::list(std::iter::empty::<FieldValue>()),
                Resolved::Rows(rows) => FieldValue::list(rows.into_iter().map(FieldValue::owned_any)),
            }))
        })
    })
    .description(format!(
        "{} One SQL statement; the page is sorted totally (the given keys, then the table's default order and key).",
        rows.description
    ))
    .argument(common::as_of_argument());
    if let Some(conversion) = conversion {
        f = f.argument(
            InputValue::new("conversionFilter", TypeRef::named(conversion)).description(
                "Only the rows of this conversion variant (default: the rows of every variant).",
            ),
        );
    }
    f.argument(
        InputValue::new("where", TypeRef::named(&n.where_input))
            .description("Only the rows this filter holds for."),
    )
    .argument(
        InputValue::new("orderBy", TypeRef::named_nn_list(&n.order)).description(
            "Sort keys, in order of precedence (then the table's default order and key).",
        ),
    )
    .argument(common::limit_argument())
    .argument(common::offset_argument())
}
