//! The keys node: the union of the slot values of every node.

use super::super::{Sql, quote};
use super::Renderer;
use crate::plan::KeysNode;

impl Renderer<'_> {
    pub(super) fn keys(&self, k: &KeysNode) -> Sql {
        let mut keys = Sql::default();
        for (i, cte) in k.sources.iter().enumerate() {
            if i > 0 {
                keys.push("\n  UNION\n  ");
            }
            keys.push("SELECT ");
            keys.push(&self.slot_list(None));
            keys.push(" FROM ");
            keys.push(&quote(cte));
        }
        keys
    }
}
