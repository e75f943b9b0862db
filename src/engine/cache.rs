//! The plan cache: rendered statements by the shape of the request, so a repeated request
//! skips planning and rendering and only binds its values; with each, how PostgreSQL plans
//! it (its [`PlanChoice`], measured over the statement's runs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::plan_choice::PlanChoice;
use crate::query::QuerySpec;
use crate::semantic::Model;
use crate::sql::{Dialect, Rendered};

/// Rendered statements by normalised request (see [`QuerySpec::cache_key`]).
#[derive(Debug, Default)]
pub struct PlanCache {
    entries: Mutex<HashMap<String, Entry>>,
}

/// A cached statement and its plan choice.
type Entry = (Arc<Rendered>, Arc<PlanChoice>);

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
        let ((rendered, _), hit) = self.get_or_render_chosen(model, spec, dialect, false)?;
        Ok((rendered, hit))
    }

    /// [`PlanCache::get_or_render`], with the statement's plan choice, reading the model's
    /// tables through their row policies when `scoped` (a caller with tenant attributes).
    /// Scoped and unscoped statements are kept under different keys: one is never served for
    /// the other.
    pub(super) fn get_or_render_chosen(
        &self,
        model: &Model,
        spec: &QuerySpec,
        dialect: &dyn Dialect,
        scoped: bool,
    ) -> Result<(Entry, bool), crate::plan::PlanError> {
        let scope = if scoped { "policies" } else { "open" };
        let key = format!("{}|{scope}|{}", dialect.name(), spec.cache_key());
        if let Ok(map) = self.entries.lock()
            && let Some(e) = map.get(&key)
        {
            return Ok((e.clone(), true));
        }
        let plan = crate::plan::plan(model, spec, dialect.percentile_cont())?;
        let policies: &[crate::semantic::Policy] = if scoped { &model.policies } else { &[] };
        let rendered = Arc::new(crate::sql::render_scoped(&plan, dialect, policies)?);
        let entry = (rendered, Arc::new(PlanChoice::default()));
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(key, entry.clone());
        }
        Ok((entry, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Item, Selected};

    fn spec(metric: &str) -> QuerySpec {
        let at = "2025-01-01T00:00:00Z".parse().expect("instant");
        let mut s = QuerySpec::new("shop", at);
        s.fields = vec![Selected {
            key: metric.into(),
            item: Item::Metric {
                name: metric.into(),
            },
        }];
        s
    }

    #[test]
    fn statements_are_told_apart() {
        let shop = crate::semantic::load_embedded()
            .expect("models")
            .into_iter()
            .find(|m| m.name == "shop")
            .expect("shop");
        let cache = PlanCache::default();
        let d = crate::sql::Postgres;
        let choice = |metric: &str| {
            let ((_, c), _) = cache
                .get_or_render_chosen(&shop, &spec(metric), &d, false)
                .expect("rendered");
            c
        };
        let a = choice("netSales");
        assert!(Arc::ptr_eq(&a, &choice("netSales")));
        assert!(!Arc::ptr_eq(&a, &choice("orders")));
    }
}
