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
        let key = format!("{}|{}", dialect.name(), spec.cache_key());
        if let Ok(map) = self.entries.lock()
            && let Some(r) = map.get(&key)
        {
            return Ok((r.clone(), true));
        }
        let plan = crate::plan::plan(model, spec, dialect.percentile_cont())?;
        let rendered = Arc::new(crate::sql::render(&plan, dialect)?);
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(key, rendered.clone());
        }
        Ok((rendered, false))
    }
}
