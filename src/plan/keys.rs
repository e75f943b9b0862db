//! The union of the dimension values of every node, when several nodes are grouped by the
//! slots: the final SELECT starts from it, so that a group one node lacks is kept.

use super::{AggregateNode, DimSlot, SpecialNode};

/// Every combination of dimension values that any node has (CTE `keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysNode {
    /// The CTE name (`keys`).
    pub cte: String,
    /// The node CTEs whose slot values are united.
    pub sources: Vec<String>,
    /// What it holds.
    pub description: String,
}

/// The keys node, when there are several nodes and slots.
pub(super) fn plan(
    aggregates: &[AggregateNode],
    specials: &[SpecialNode],
    slots: &[DimSlot],
) -> Option<KeysNode> {
    let sources = sources(aggregates, specials);
    (sources.len() > 1 && !slots.is_empty()).then(|| KeysNode {
        cte: "keys".to_owned(),
        sources,
        description: "every combination of dimension values that any table has".to_owned(),
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
