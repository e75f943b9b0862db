//! Error codes for the errors async-graphql raises itself: a document that does not parse
//! gets `GRAPHQL_PARSE_FAILED`, one that does not validate (unknown fields, arguments, types —
//! with async-graphql's "Did you mean" suggestions) `GRAPHQL_VALIDATION_FAILED`, in
//! `extensions.code` like every error tally raises.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Value, Variables};

use crate::error::ApiError;

/// The extension factory to add to the schema.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

/// Sets `extensions.code` unless the error already carries one.
fn with_code(mut e: ServerError, code: &str) -> ServerError {
    let ext = e.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", Value::from(code));
    }
    e
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, ApiError::GraphqlParseFailed(String::new()).code()))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, ApiError::GraphqlValidationFailed(String::new()).code()))
                .collect()
        })
    }
}
