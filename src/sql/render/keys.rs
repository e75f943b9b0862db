//! The keys node: each node's rows numbered once, and the union of the slot values of every
//! node grouped, with the number of each node's row of the group.

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::KeysNode;

impl Renderer<'_> {
    pub(super) fn keys_ctes(&self, k: &KeysNode, out: &mut Vec<Cte>) {
        for cte in &k.sources {
            let mut c = Cte::new(
                KeysNode::keyed(cte),
                format!("the rows of {cte}, numbered (tally_rid)"),
                Sql::raw(&format!(
                    "SELECT {}.*, ROW_NUMBER() OVER () AS \"tally_rid\" FROM {}",
                    quote(cte),
                    quote(cte)
                )),
            );
            c.materialized = true;
            out.push(c);
        }
        let slots = self.slot_list(None);
        let mut keys = Sql::raw(&format!("SELECT {slots}"));
        for i in 0..k.sources.len() {
            keys.push(&format!(", MAX(\"r{i}\") AS \"r{i}\""));
        }
        keys.push(" FROM (");
        for (i, cte) in k.sources.iter().enumerate() {
            if i > 0 {
                keys.push("\n    UNION ALL");
            }
            keys.push(&format!("\n    SELECT {slots}"));
            for j in 0..k.sources.len() {
                if i == j {
                    keys.push(&format!(", \"tally_rid\" AS \"r{j}\""));
                } else {
                    keys.push(&format!(", CAST(NULL AS BIGINT) AS \"r{j}\""));
                }
            }
            keys.push(&format!(" FROM {}", quote(&KeysNode::keyed(cte))));
        }
        keys.push(&format!("\n  ) AS \"tally_u\"\n  GROUP BY {slots}"));
        // groups only looked up (earlier buckets, to-date sums) are not groups of the response
        let own: Vec<String> = k
            .sources
            .iter()
            .enumerate()
            .filter(|(_, cte)| !k.lookups.contains(cte))
            .map(|(i, _)| format!("MAX(\"r{i}\") IS NOT NULL"))
            .collect();
        if own.len() < k.sources.len() && !own.is_empty() {
            keys.push(&format!("\n  HAVING {}", own.join(" OR ")));
        }
        out.push(Cte::new(&k.cte, &k.description, keys));
    }
}
