//! Error codes for the errors async-graphql raises itself: a document that does not parse
//! gets `GRAPHQL_PARSE_FAILED`, one that does not validate (unknown fields, arguments, types —
//! with async-graphql's "Did you mean" suggestions) `GRAPHQL_VALIDATION_FAILED`, in
//! `extensions.code` like every error tally raises.
//!
//! Parsing also checks the document against the role of the caller (request data
//! `Arc<auth::Role>`, set by the HTTP layer from the caller's API key; see [`super::access`]):
//! `FORBIDDEN` before any field runs.
//!
//! Validation also enforces the [`super::RequestLimits`] of the whole document: the fields it
//! selects (aliases and nested fields counted, fragments expanded) and its depth; past them
//! the request fails with `LIMIT_EXCEEDED` before any field runs.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Value, Variables};

use crate::error::ApiError;

/// Introspection root fields (`__schema`, `__type`) a request may hold: their answers are
/// big whatever their selection, so aliases of them are not counted as one field each.
const MAX_INTROSPECTIONS: usize = 4;

/// The introspection root fields of every operation of `doc` (through fragments).
fn introspections(doc: &ExecutableDocument) -> usize {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn count(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> usize {
        if depth > 8 {
            return 0;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(matches!(f.node.name.node.as_str(), "__schema" | "__type"))
                }
                Selection::InlineFragment(f) => count(doc, &f.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(s) => doc
                    .fragments
                    .get(&s.node.fragment_name.node)
                    .map(|f| count(doc, &f.node.selection_set.node, depth + 1))
                    .unwrap_or(0),
            })
            .sum()
    }
    doc.operations
        .iter()
        .map(|(_, op)| count(doc, &op.node.selection_set.node, 0))
        .sum()
}

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
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, ApiError::GraphqlParseFailed(String::new()).code()))?;
        let n = introspections(&doc);
        if n > MAX_INTROSPECTIONS {
            let e = ApiError::LimitExceeded(format!(
                "the request asks for {n} introspection fields (__schema, __type); the limit is {MAX_INTROSPECTIONS}"
            ));
            let code = e.code();
            return Err(with_code(ServerError::new(e.message(), None), code));
        }
        // what the caller's role may read, before anything runs
        if let Some(role) = ctx.data_opt::<Arc<crate::auth::Role>>()
            && let Some(models) = ctx.data_opt::<super::catalog::CatalogModels>()
            && let Err(e) = super::access::check(&doc, variables, role, &models.0)
        {
            let code = e.code();
            return Err(with_code(ServerError::new(e.message(), None), code));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, ApiError::GraphqlValidationFailed(String::new()).code()))
                .collect::<Vec<_>>()
        })?;
        let limits = ctx
            .data_opt::<super::RequestLimits>()
            .copied()
            .unwrap_or_default();
        let refuse = |message: String| {
            let e = ApiError::LimitExceeded(message);
            let code = e.code();
            vec![with_code(ServerError::new(e.message(), None), code)]
        };
        if result.complexity > limits.max_fields {
            return Err(refuse(format!(
                "the request selects {} fields (aliases and nested fields counted); the limit is {} (--max-fields)",
                result.complexity, limits.max_fields
            )));
        }
        if result.depth > limits.max_depth {
            return Err(refuse(format!(
                "the request nests selections {} deep; the limit is {} (--max-depth)",
                result.depth, limits.max_depth
            )));
        }
        Ok(result)
    }
}
