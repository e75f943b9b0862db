//! The GraphQL schema, built by one function, and its thin resolvers.
//!
//! The schema does not depend on the web framework: [`build`] returns an
//! [`async_graphql::dynamic::Schema`] that `http` serves and `tally query` runs in-process.

mod sources;

pub use sources::tables_of;

use async_graphql::dynamic::{Schema, SchemaError};
use sea_orm::DatabaseConnection;

/// Depth and complexity limits that keep a request from asking for unbounded work.
const MAX_DEPTH: usize = 32;

/// Builds the schema; `db` is attached as request data when given (the SDL needs none).
pub fn build(db: Option<DatabaseConnection>) -> Result<Schema, SchemaError> {
    let mut builder = Schema::build("Query", None, None)
        .limit_depth(MAX_DEPTH)
        .enable_suggestions();
    builder = sources::register(builder);
    let query = async_graphql::dynamic::Object::new("Query")
        .description("The root of every tally query.")
        .field(sources::root_field());
    builder = builder.register(query);
    if let Some(db) = db {
        builder = builder.data(db);
    }
    builder.finish()
}

/// The SDL of the served schema (what `tally schema` prints and `schema.graphql` holds).
pub fn sdl() -> String {
    match build(None) {
        Ok(schema) => schema.sdl(),
        Err(e) => format!("# the schema is broken: {e}\n"),
    }
}
