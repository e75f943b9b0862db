//! `extensions.explain`: every field of a request adds what it ran — the SQL of each
//! statement, its bound parameters, the tables joined, planning and database time, and the
//! path that answered — to the response (an entry without SQL for a field answered from
//! the loaded models).
//!
//! The same extension puts the rows of `metrics` fields in the response as their resolver
//! built them ([`PrebuiltRows`]): one object per row with the selected response keys, so
//! that thousands of cells do not each go through a field resolver.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest, NextResolve,
    ResolveInfo,
};
use async_graphql::{Request, Response, ServerResult, Value};

use crate::engine::Trace;

/// The explain of a request: the trace of every field's session, by response path, and the
/// fields whose rows were cut at the row cap (`extensions.rowsCut`); attached to the
/// request as data.
#[derive(Debug, Clone, Default)]
pub struct ExplainLog(
    Arc<Mutex<Vec<(String, Trace)>>>,
    Arc<Mutex<Vec<(String, u64)>>>,
);

impl ExplainLog {
    /// Notes that the rows of the field at `path` were cut after `rows` rows.
    pub fn cut(&self, path: String, rows: u64) {
        if let Ok(mut v) = self.1.lock() {
            v.push((path, rows));
        }
    }

    fn take_cuts(&self) -> Vec<serde_json::Value> {
        self.1
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
            .into_iter()
            .map(|(path, rows)| serde_json::json!({ "path": path, "rows": rows }))
            .collect()
    }

    /// Shows what `trace` records under the response path `path`.
    pub fn watch(&self, path: String, trace: Trace) {
        if let Ok(mut v) = self.0.lock() {
            v.push((path, trace));
        }
    }

    fn take(&self) -> Vec<serde_json::Value> {
        let fields = self
            .0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        let mut out = Vec::new();
        for (path, trace) in fields {
            if let Ok(entries) = trace.lock() {
                out.extend(entries.iter().map(|e| e.to_json(&path)));
            }
        }
        out
    }
}

/// The response value of `metrics` and row fields by response path (`shop.metrics`,
/// `a.metrics`, `gym.leadConversions`),
/// built by their resolver; attached to the request as data by [`Explain`], whose resolve
/// hook returns it in place of the (empty) list the resolver hands to async-graphql.
#[derive(Debug, Clone, Default)]
pub(crate) struct PrebuiltRows(Arc<Mutex<Vec<(String, Value)>>>);

impl PrebuiltRows {
    /// Keeps the value of the field at `path`.
    pub(crate) fn put(&self, path: String, value: Value) {
        if let Ok(mut v) = self.0.lock() {
            v.push((path, value));
        }
    }

    fn take(&self, path: &str) -> Option<Value> {
        let mut v = self.0.lock().ok()?;
        let i = v.iter().position(|(p, _)| p == path)?;
        Some(v.swap_remove(i).1)
    }
}

/// The extension factory to add to the schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct Explain;

impl ExtensionFactory for Explain {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ExplainExtension {
            log: ExplainLog::default(),
            rows: PrebuiltRows::default(),
        })
    }
}

struct ExplainExtension {
    log: ExplainLog,
    rows: PrebuiltRows,
}

#[async_graphql::async_trait::async_trait]
impl Extension for ExplainExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(self.log.clone()).data(self.rows.clone()))
            .await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // the fields of a model's object (`metrics`, row fields) may have their rows ready
        let is_model_field = info.parent_type.ends_with("Model");
        let path = is_model_field.then(|| info.path_node.to_string_vec().join("."));
        let value = next.run(ctx, info).await?;
        if let Some(rows) = path.and_then(|p| self.rows.take(&p)) {
            return Ok(Some(rows));
        }
        Ok(value)
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        // every response explains itself: an empty list when nothing ran (a request that
        // failed before any field did)
        let entries = self.log.take();
        if let Ok(v) = Value::from_json(serde_json::Value::Array(entries)) {
            response.extensions.insert("explain".to_owned(), v);
        }
        // the fields whose rows stopped at the row cap: `[{ path, rows }]`
        let cuts = self.log.take_cuts();
        if !cuts.is_empty()
            && let Ok(v) = Value::from_json(serde_json::Value::Array(cuts))
        {
            response.extensions.insert("rowsCut".to_owned(), v);
        }
        response
    }
}
