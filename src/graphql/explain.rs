//! `extensions.explain`: every metrics field of a request adds what it ran — the SQL, its
//! bound parameters, the tables joined, planning and database time — to the response.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest,
};
use async_graphql::{Request, Response, ServerResult, Value};

/// The per-request list of explain entries, attached to the request as data.
#[derive(Debug, Clone, Default)]
pub struct ExplainLog(Arc<Mutex<Vec<serde_json::Value>>>);

impl ExplainLog {
    /// Adds one entry.
    pub fn push(&self, entry: serde_json::Value) {
        if let Ok(mut v) = self.0.lock() {
            v.push(entry);
        }
    }

    fn take(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// The extension factory to add to the schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct Explain;

impl ExtensionFactory for Explain {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ExplainExtension {
            log: ExplainLog::default(),
        })
    }
}

struct ExplainExtension {
    log: ExplainLog,
}

#[async_graphql::async_trait::async_trait]
impl Extension for ExplainExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(self.log.clone())).await
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let entries = self.log.take();
        if !entries.is_empty()
            && let Ok(v) = Value::from_json(serde_json::Value::Array(entries))
        {
            response.extensions.insert("explain".to_owned(), v);
        }
        response
    }
}
