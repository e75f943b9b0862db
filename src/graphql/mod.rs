//! The GraphQL schema, built by one function, and its thin resolvers.
//!
//! The schema does not depend on the web framework: [`build`] returns an
//! [`async_graphql::dynamic::Schema`] that `http` serves and `tally query` runs in-process.
//!
//! The semantic layer contributes one field per model (`Query.<model>`, an object assembled
//! from the model's `metrics` field and any fields other modules add to that model), the
//! `catalog`, and the `extensions.explain` of every response that ran metrics.

mod access;
mod catalog;
mod codes;
mod common;
mod explain;
mod funnel;
mod metrics;
mod observe;
mod rows;
mod saas;
mod sources;

use std::sync::Arc;

pub use explain::{Explain, ExplainLog};
pub use metrics::{pascal, type_names};
pub use sources::tables_of;

use async_graphql::dynamic::{Field, Object, Schema, SchemaError};
use sea_orm::DatabaseConnection;

use crate::engine::Engine;
use crate::semantic::Model;

/// What one request may ask for (`serve` flags; docs/OPERATIONS.md). Past a limit the
/// request fails with `LIMIT_EXCEEDED` naming the limit and the value, before any SQL runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Fields a request selects, aliases and every nested field counted
    /// (`--max-fields`, default 2000).
    pub max_fields: usize,
    /// Nesting of selections (`--max-depth`, default 32).
    pub max_depth: usize,
    /// Metrics × dimensions (at least one) selected by one `metrics` field
    /// (`--max-metrics-dimensions`, default 200).
    pub max_metrics_dimensions: usize,
    /// Rows of a `metrics` field without `limit` (`--max-rows`, default 10000): past it the
    /// rows are cut and `extensions.rowsCut` says where.
    pub max_rows: u64,
    /// Values of one `in` / `notIn` list of a `where`, and of all the values a `where` binds
    /// together (`--max-in-list`, `limits.max_in_list`, default 1000).
    pub max_in_list: usize,
    /// Nodes of a `where` tree: every condition and every `and`, `or`, `not`
    /// (`--max-filter-nodes`, `limits.max_filter_nodes`, default 200).
    pub max_filter_nodes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_fields: 2000,
            max_depth: 32,
            max_metrics_dimensions: 200,
            max_rows: common::MAX_LIMIT,
            max_in_list: 1000,
            max_filter_nodes: 200,
        }
    }
}

/// Builds the schema over the models of [`crate::semantic::load_default`] (`$TALLY_MODELS`,
/// `./models`, or the embedded copy); `db` is attached as request data when given (the SDL
/// needs none).
pub fn build(db: Option<DatabaseConnection>) -> Result<Schema, SchemaError> {
    let models = crate::semantic::load_default(None).map_err(|e| SchemaError(e.to_string()))?;
    build_with(db, models)
}

/// Query fields other modules own, by name: a model of that name cannot take the field, so
/// its `<Model>Model` object is added to theirs only when they hand over their fields.
fn taken_fields() -> Vec<&'static str> {
    vec!["sources", "catalog"]
}

/// Fields other modules contribute to a model's object (next to `metrics`).
fn extra_fields(model: &str) -> Vec<Field> {
    match model {
        // stageCounts, journey, transitions, users (src/graphql/saas.rs)
        "saas" => saas::fields(),
        _ => Vec::new(),
    }
}

/// Builds the schema over the given (validated) models.
pub fn build_with(
    db: Option<DatabaseConnection>,
    models: Vec<Model>,
) -> Result<Schema, SchemaError> {
    build_with_saas(db, models, None)
}

/// [`build_with`], with the saas lifecycle fields using `saas` (the settings of the models
/// folder being served) instead of reading the default models folder; a request's own
/// [`crate::saas::SaasConfig`] data still wins.
pub fn build_with_saas(
    db: Option<DatabaseConnection>,
    models: Vec<Model>,
    saas: Option<crate::saas::SaasConfig>,
) -> Result<Schema, SchemaError> {
    build_served(
        db,
        models,
        saas,
        None,
        RequestLimits::default(),
        crate::engine::ResultCacheSettings::off(),
        true,
    )
    .map(|(schema, _)| schema)
}

/// [`build_with_saas`], with the engine bounded by `limits` (time budget, statements at
/// once) instead of its pool's defaults, requests by `request_limits`, and the engine's
/// answers kept by a result cache of `result_cache`, and metrics read from the models'
/// rollups when `rollups`; with the engine's guard (its counters are what `/metrics` shows)
/// when `db` is given.
pub fn build_served(
    db: Option<DatabaseConnection>,
    models: Vec<Model>,
    saas: Option<crate::saas::SaasConfig>,
    limits: Option<crate::engine::Limits>,
    request_limits: RequestLimits,
    result_cache: crate::engine::ResultCacheSettings,
    rollups: bool,
) -> Result<(Schema, Option<Arc<crate::engine::Guard>>), SchemaError> {
    let models: Vec<Arc<Model>> = models.into_iter().map(Arc::new).collect();
    let mut builder = Schema::build("Query", None, None)
        .data(request_limits)
        .extension(explain::Explain)
        .extension(codes::ErrorCodes)
        .extension(observe::Observe);
    builder = sources::register(builder);
    builder = common::register(builder);
    builder = saas::register(builder);
    builder = metrics::register_shared(builder);
    builder = funnel::register_shared(builder);
    builder = catalog::register(builder);
    let mut query = Object::new("Query")
        .description("The root of every tally query.")
        .field(sources::root_field())
        .field(catalog::root_field());
    let taken = taken_fields();
    for m in &models {
        if taken.contains(&m.name.as_str()) {
            continue;
        }
        builder = metrics::register_model(builder, m);
        builder = rows::register(builder, m);
        builder = funnel::register_model(builder, m);
        let mut fields = rows::fields(m);
        fields.extend(funnel::fields(m));
        fields.extend(extra_fields(&m.name));
        builder = builder.register(metrics::model_object(m, fields));
        query = query.field(metrics::root_field(m));
    }
    let mut guard = None;
    if let Some(db) = db {
        let mut engine = Engine::new(db, models.clone());
        if let Some(limits) = limits {
            engine = engine.with_limits(limits);
        }
        if !rollups {
            engine = engine.without_rollups();
        }
        engine = engine.with_result_cache(result_cache);
        guard = Some(engine.guard().clone());
        builder = builder.data(Arc::new(engine));
    }
    builder = builder
        .register(query)
        .data(catalog::CatalogModels(Arc::new(models)));
    if let Some(saas) = saas {
        builder = builder.data(saas);
    }
    builder.finish().map(|schema| (schema, guard))
}

/// The SDL of the served schema (what `tally schema` prints and `schema.graphql` holds).
pub fn sdl() -> String {
    match build(None) {
        Ok(schema) => schema.sdl(),
        Err(e) => format!("# the schema is broken: {e}\n"),
    }
}
