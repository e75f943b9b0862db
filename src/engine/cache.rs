//! The plan cache: rendered statements by the shape of the request, so a repeated request
//! skips planning and rendering and only binds its values.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::query::QuerySpec;
use crate::semantic::Model;
use crate::sql::{Dialect, Rendered};

/// Rendered statements by normalised request (see [`QuerySpec::cache_key`]).
#[derive(Debug, Default)]
pub struct PlanCache {
    entries: Mutex<HashMap<String, Arc<Rendered>>>,
}

/// Most entries kept before the cache starts over.
const CACHE_CAPACITY: usize = 1024;

impl PlanCache {
    /// The statement for `spec` on `dialect`, planned and rendered on a miss; whether it was
    /// a hit. A plan error is a state a checked request cannot reach (an internal error).
    pub fn get_or_render(
        &self,
        model: &Model,
        spec: &QuerySpec,
        dialect: &dyn Dialect,
    ) -> Result<(Arc<Rendered>, bool), crate::plan::PlanError> {
        self.get_or_render_scoped(model, spec, dialect, false)
    }

    /// [`PlanCache::get_or_render`], reading the model's tables through their row policies
    /// when `scoped` (a caller with tenant attributes). Scoped and unscoped statements are
    /// kept under different keys: one is never served for the other.
    pub fn get_or_render_scoped(
        &self,
        model: &Model,
        spec: &QuerySpec,
        dialect: &dyn Dialect,
        scoped: bool,
    ) -> Result<(Arc<Rendered>, bool), crate::plan::PlanError> {
        let scope = if scoped { "policies" } else { "open" };
        let key = format!("{}|{scope}|{}", dialect.name(), spec.cache_key());
        if let Ok(map) = self.entries.lock()
            && let Some(r) = map.get(&key)
        {
            return Ok((r.clone(), true));
        }
        let plan = crate::plan::plan(model, spec, dialect.percentile_cont())?;
        let policies: &[crate::semantic::Policy] = if scoped { &model.policies } else { &[] };
        let rendered = Arc::new(crate::sql::render_scoped(&plan, dialect, policies)?);
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(key, rendered.clone());
        }
        Ok((rendered, false))
    }
}
