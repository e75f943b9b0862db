//! The union of the dimension values of every node, when several nodes are grouped by the
//! slots: the final SELECT starts from it, so that a group one node lacks is kept.
//!
//! Nodes are joined to it by row number, not by their slot values: a NULL value is a group
//! of its own (equality that holds for two NULLs), which no database can hash-join on, and
//! a nested loop over the groups of two nodes grows with the square of the groups. Each
//! node's rows are numbered once (`keyed_<node>`); `keys` groups the slot values of every
//! node (GROUP BY puts NULLs in one group, exactly as `IS NOT DISTINCT FROM` matches them)
//! and keeps per node the number of its row of that group (`r<i>`); the final SELECT joins
//! each node on `tally_rid = r<i>`, an equality of integers.

use super::{AggregateNode, DimSlot, SpecialNode};

/// Every combination of dimension values that any node has (CTE `keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysNode {
    /// The CTE name (`keys`).
    pub cte: String,
    /// The node CTEs whose slot values are united, in the order of their row-number
    /// columns `r<i>`.
    pub sources: Vec<String>,
    /// The sources whose groups are only looked up, never added (period-over-period and
    /// grain-to-date aggregates): a group is kept when another source has it.
    pub lookups: Vec<String>,
    /// What it holds.
    pub description: String,
}

impl KeysNode {
    /// The CTE that numbers the rows of node `cte` (column `tally_rid`).
    pub fn keyed(cte: &str) -> String {
        format!("keyed_{cte}")
    }
}

/// The keys node, when there are slots and several nodes to join (medians computed apart
/// included).
pub(super) fn plan(
    aggregates: &[AggregateNode],
    specials: &[SpecialNode],
    slots: &[DimSlot],
) -> Option<KeysNode> {
    let sources = joinable(aggregates, specials);
    let mut lookups = Vec::new();
    for a in aggregates
        .iter()
        .filter(|a| a.shift.is_some() && !by_time(a))
    {
        lookups.push(a.agg_cte.clone());
        lookups.extend(a.measures.iter().filter_map(|m| m.median_cte.clone()));
    }
    (sources.len() > 1 && !slots.is_empty()).then(|| KeysNode {
        cte: "keys".to_owned(),
        sources,
        lookups,
        description: "every combination of dimension values that any node has, with the number of each node's row of it (r<i>)".to_owned(),
    })
}

/// The CTEs the final SELECT joins on the slot values: the per-table aggregates, then the
/// special nodes.
pub(super) fn sources(aggregates: &[AggregateNode], specials: &[SpecialNode]) -> Vec<String> {
    aggregates
        .iter()
        .map(|a| a.agg_cte.clone())
        .chain(specials.iter().map(|n| n.cte().to_owned()))
        .collect()
}

/// Whether `a` is looked up by the compared time slot's value in the final SELECT, not
/// through `keys`.
pub(super) fn by_time(a: &AggregateNode) -> bool {
    a.shift.as_ref().is_some_and(|s| s.by_time)
}

/// Every CTE of a row per group joined through `keys`: [`sources`] and the medians computed
/// apart, less the aggregates looked up by the time slot's value.
fn joinable(aggregates: &[AggregateNode], specials: &[SpecialNode]) -> Vec<String> {
    let mut out = Vec::new();
    for a in aggregates.iter().filter(|a| !by_time(a)) {
        out.push(a.agg_cte.clone());
        out.extend(a.measures.iter().filter_map(|m| m.median_cte.clone()));
    }
    out.extend(specials.iter().map(|n| n.cte().to_owned()));
    out
}
