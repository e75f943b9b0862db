//! Counts every field of the API that reads (`Query.*` and the fields of a model's object,
//! e.g. `ShopModel.metrics`): by field and outcome (`OK` or the error's code), with its
//! latency, into the engine's counters that `/metrics` shows.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

use crate::engine::Engine;

/// The extension factory to add to the schema.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Observe)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Observe {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let counted = (info.parent_type == "Query" || info.parent_type.ends_with("Model"))
            && !info.name.starts_with("__");
        if !counted {
            return next.run(ctx, info).await;
        }
        let field = format!("{}.{}", info.parent_type, info.name);
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        if let Some(engine) = ctx.data_opt::<Arc<Engine>>() {
            let outcome = match &result {
                Ok(_) => "OK".to_owned(),
                Err(e) => e
                    .extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .and_then(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "UNKNOWN".to_owned()),
            };
            engine
                .guard()
                .counters()
                .field(&field, &outcome, started.elapsed().as_secs_f64());
        }
        result
    }
}
