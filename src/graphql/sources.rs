//! `sources`: the source tables of every model with their row counts.

use async_graphql::Value;
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputValue, Object, SchemaBuilder, TypeRef,
};

use crate::engine::results::Stored;
use crate::engine::{Kept, Raw, Session};
use crate::error::ApiError;

use crate::db::MODELS;

/// One model's name and tables, passed from the `sources` field to its children.
struct ModelRef {
    name: &'static str,
    tables: &'static [&'static str],
}

/// The tables of a model, in load order (empty for an unknown model).
pub fn tables_of(model: &str) -> &'static [&'static str] {
    match model {
        "saas" => entity::saas::TABLES,
        "gym" => entity::gym::TABLES,
        "shop" => entity::shop::TABLES,
        "social" => entity::social::TABLES,
        "web" => entity::web::TABLES,
        _ => &[],
    }
}

/// Registers the `SourceModel` and `SourceTable` types.
pub(crate) fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let model = Object::new("SourceModel")
        .description("A model's source tables, as loaded into the database.")
        .field(
            Field::new("name", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let m = ctx.parent_value.try_downcast_ref::<ModelRef>()?;
                    Ok(Some(Value::from(m.name)))
                })
            })
            .description("The model's name, which is also its namespace (schema) in the database."),
        )
        .field(
            Field::new(
                "tables",
                TypeRef::named_nn_list_nn("SourceTable"),
                |ctx| {
                    FieldFuture::new(async move {
                        let m = ctx.parent_value.try_downcast_ref::<ModelRef>()?;
                        let session = super::common::session(&ctx)?;
                        let counts = row_counts(&session, m.name, m.tables)
                            .await
                            .map_err(ApiError::into_graphql)?;
                        Ok(Some(FieldValue::list(counts.into_iter().map(|(t, n)| {
                            FieldValue::owned_any(TableCount { name: t, rows: n })
                        }))))
                    })
                },
            )
            .description("The model's tables in load order, with their row counts (one SQL statement per model)."),
        );
    let table = Object::new("SourceTable")
        .description("A source table and how many rows it holds.")
        .field(
            Field::new("name", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                FieldFuture::new(async move {
                    let t = ctx.parent_value.try_downcast_ref::<TableCount>()?;
                    Ok(Some(Value::from(t.name)))
                })
            })
            .description("The table's name, exactly as in the source documents."),
        )
        .field(
            Field::new("rowCount", TypeRef::named_nn(TypeRef::INT), |ctx| {
                FieldFuture::new(async move {
                    let t = ctx.parent_value.try_downcast_ref::<TableCount>()?;
                    Ok(Some(Value::from(t.rows)))
                })
            })
            .description("Rows stored, every partition and version included (unit: count)."),
        );
    builder.register(model).register(table)
}

/// The `sources(model:)` field of `Query`.
pub(crate) fn root_field() -> Field {
    Field::new("sources", TypeRef::named_nn_list_nn("SourceModel"), |ctx| {
        FieldFuture::new(async move {
            let wanted = ctx
                .args
                .get("model")
                .map(|v| v.string().map(str::to_owned))
                .transpose()?;
            if let Some(w) = &wanted
                && !MODELS.contains(&w.as_str())
            {
                return Err(ApiError::BadArgument(format!(
                    "unknown model {w:?}; the models are {}",
                    MODELS.join(", ")
                ))
                .into_graphql());
            }
            super::common::explain_without_sql(&ctx, "source models");
            let models = MODELS
                .iter()
                .filter(|m| wanted.as_deref().is_none_or(|w| w == **m))
                .map(|m| {
                    FieldValue::owned_any(ModelRef {
                        name: m,
                        tables: tables_of(m),
                    })
                });
            Ok(Some(FieldValue::list(models)))
        })
    })
    .argument(
        InputValue::new("model", TypeRef::named(TypeRef::STRING))
            .description("Only this model (saas, gym, shop, social, web)."),
    )
    .description("The source tables of every model (or of one) with their row counts.")
}

/// A table's name and row count.
struct TableCount {
    name: &'static str,
    rows: i64,
}

/// Counts the rows of every table of a model in one statement.
async fn row_counts(
    session: &Session,
    model: &'static str,
    tables: &'static [&'static str],
) -> Result<Vec<(&'static str, i64)>, ApiError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    // Table names come from the entity crate, never from the request.
    let sql = tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!("SELECT CAST({i} AS BIGINT) AS idx, COUNT(*) AS n FROM \"{model}\".\"{t}\"")
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    // Under a scoped caller the tables with a row policy are counted through it.
    let stmt = session.statement(model, crate::sql::Sql::raw(&sql), "row counts")?;
    // kept by the result cache under the model's namespaces (and those the statement
    // names); row counts depend on no instant
    let kept = Kept {
        model,
        as_of: None,
        columns: &[Raw::Int, Raw::Int],
    };
    let rows = session
        .read(session.db(), "row counts", stmt, &kept)
        .await?;
    let mut counts = vec![0i64; tables.len()];
    for row in &rows.rows {
        let (Some(Stored::Int(idx)), Some(Stored::Int(n))) = (row.first(), row.get(1)) else {
            return Err(ApiError::internal(
                "row counts",
                format!("a row of the counts is {row:?}"),
            ));
        };
        if let Some(slot) = usize::try_from(*idx).ok().and_then(|i| counts.get_mut(i)) {
            *slot = *n;
        }
    }
    Ok(tables.iter().copied().zip(counts).collect())
}
