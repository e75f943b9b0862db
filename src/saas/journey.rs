//! The journey Sankey of SEMANTICS §2 and the stage-transition flow, as nodes and links.
//!
//! The journey classifies the users of a cohort level by level; at each level the first
//! listed branch that holds wins, and every node's count is its inflow:
//!
//! ```text
//! SIGNED_UP ─┬─ CREATED_SHOP ─┬─ PAID_INVOICE ─┬─ REPEAT                 (CUSTOMER, ≥ 2 payments)
//!            │                │                ├─ PAID_THEN_DELETED_SHOP (CHURNED by a deletion)
//!            │                │                ├─ PAID_THEN_DID_NOT_PAY  (CHURNED by delinquency only)
//!            │                │                └─ PAID_ONCE              (CUSTOMER, 1 payment)
//!            │                ├─ DELETED_SHOP      (no payment; account or all shops deleted)
//!            │                ├─ DID_NOT_PAY       (no payment; delinquent)
//!            │                └─ AWAITING_PAYMENT  (no payment: PROSPECT)
//!            ├─ DELETED_ACCOUNT (no shop ever; account deleted)
//!            └─ NO_SHOP_YET     (no shop)
//! ```
//!
//! "Created shop" = at least one shop creation counts (reached PROSPECT); "payment" = a
//! payment of the user counts; "Repeat" = at least two distinct `payment_id`s.
//!
//! Correspondence with the stages (holds whenever every user with a payment or an invoice
//! also has a counting shop creation, as in consistent data):
//!
//! - `PROSPECT = AWAITING_PAYMENT`, `LEAD = NO_SHOP_YET`,
//! - `CUSTOMER = REPEAT + PAID_ONCE`,
//! - `CHURNED = DELETED_ACCOUNT + DELETED_SHOP + DID_NOT_PAY + PAID_THEN_DELETED_SHOP +
//!   PAID_THEN_DID_NOT_PAY`.
//!
//! A user whose payment (or delinquent invoice) counts before any of their shop creations
//! does (a late-arriving `user_shop_create`) is still classified by the tree as written:
//! under NO_SHOP_YET, with stage CUSTOMER (or CHURNED).

use super::Stage;

/// A node of the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JourneyNode {
    /// Every user of the cohort (level 0).
    SignedUp,
    /// At least one shop creation counts (level 1).
    CreatedShop,
    /// No shop ever, account deleted (level 1, a leaf).
    DeletedAccount,
    /// No shop, account not deleted (level 1, a leaf).
    NoShopYet,
    /// Created a shop, at least one payment (level 2).
    PaidInvoice,
    /// Created a shop, no payment, account or all shops deleted (level 2, a leaf).
    DeletedShop,
    /// Created a shop, no payment, an invoice delinquent (level 2, a leaf).
    DidNotPay,
    /// Created a shop, no payment, nothing else: a prospect (level 2, a leaf).
    AwaitingPayment,
    /// Paid, CUSTOMER with at least two distinct payments (level 3).
    Repeat,
    /// Paid, CHURNED by a deletion (account or all shops) (level 3).
    PaidThenDeletedShop,
    /// Paid, CHURNED by delinquency only (level 3).
    PaidThenDidNotPay,
    /// Paid, CUSTOMER with exactly one payment (level 3).
    PaidOnce,
}

impl JourneyNode {
    /// Every node, parents before children.
    pub const ALL: [JourneyNode; 12] = [
        JourneyNode::SignedUp,
        JourneyNode::CreatedShop,
        JourneyNode::DeletedAccount,
        JourneyNode::NoShopYet,
        JourneyNode::PaidInvoice,
        JourneyNode::DeletedShop,
        JourneyNode::DidNotPay,
        JourneyNode::AwaitingPayment,
        JourneyNode::Repeat,
        JourneyNode::PaidThenDeletedShop,
        JourneyNode::PaidThenDidNotPay,
        JourneyNode::PaidOnce,
    ];

    /// Its id (`SIGNED_UP`, …, `PAID_THEN_DELETED_SHOP`, …).
    pub fn id(self) -> &'static str {
        match self {
            JourneyNode::SignedUp => "SIGNED_UP",
            JourneyNode::CreatedShop => "CREATED_SHOP",
            JourneyNode::DeletedAccount => "DELETED_ACCOUNT",
            JourneyNode::NoShopYet => "NO_SHOP_YET",
            JourneyNode::PaidInvoice => "PAID_INVOICE",
            JourneyNode::DeletedShop => "DELETED_SHOP",
            JourneyNode::DidNotPay => "DID_NOT_PAY",
            JourneyNode::AwaitingPayment => "AWAITING_PAYMENT",
            JourneyNode::Repeat => "REPEAT",
            JourneyNode::PaidThenDeletedShop => "PAID_THEN_DELETED_SHOP",
            JourneyNode::PaidThenDidNotPay => "PAID_THEN_DID_NOT_PAY",
            JourneyNode::PaidOnce => "PAID_ONCE",
        }
    }

    /// Its label, as SEMANTICS §2 writes it (two pairs of nodes share a label).
    pub fn label(self) -> &'static str {
        match self {
            JourneyNode::SignedUp => "Signed up",
            JourneyNode::CreatedShop => "Created shop",
            JourneyNode::DeletedAccount => "Deleted account",
            JourneyNode::NoShopYet => "No shop yet",
            JourneyNode::PaidInvoice => "Paid invoice",
            JourneyNode::DeletedShop | JourneyNode::PaidThenDeletedShop => "Deleted shop",
            JourneyNode::DidNotPay | JourneyNode::PaidThenDidNotPay => "Did not pay",
            JourneyNode::AwaitingPayment => "Awaiting payment",
            JourneyNode::Repeat => "Repeat",
            JourneyNode::PaidOnce => "Paid once",
        }
    }

    /// Its parent (`None` for the root).
    pub fn parent(self) -> Option<JourneyNode> {
        match self {
            JourneyNode::SignedUp => None,
            JourneyNode::CreatedShop | JourneyNode::DeletedAccount | JourneyNode::NoShopYet => {
                Some(JourneyNode::SignedUp)
            }
            JourneyNode::PaidInvoice
            | JourneyNode::DeletedShop
            | JourneyNode::DidNotPay
            | JourneyNode::AwaitingPayment => Some(JourneyNode::CreatedShop),
            JourneyNode::Repeat
            | JourneyNode::PaidThenDeletedShop
            | JourneyNode::PaidThenDidNotPay
            | JourneyNode::PaidOnce => Some(JourneyNode::PaidInvoice),
        }
    }

    /// Its depth: 0 for the root.
    pub fn level(self) -> i64 {
        match self.parent() {
            None => 0,
            Some(p) => p.level() + 1,
        }
    }
}

/// What the journey needs to know of a user (or of a group of users alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JourneyFacts {
    /// The stage at T.
    pub stage: Stage,
    /// At least one shop creation counts.
    pub reached_prospect: bool,
    /// The account deletion counts.
    pub account_deleted: bool,
    /// Every created shop deleted (at least one created).
    pub all_shops_deleted: bool,
    /// An invoice is delinquent.
    pub delinquent: bool,
    /// Distinct payments counting (only 0, 1 and "2 or more" matter).
    pub payment_count: i64,
}

/// The leaf of the journey a user ends in (first listed branch that holds, level by level).
pub fn journey_leaf(f: &JourneyFacts) -> JourneyNode {
    if !f.reached_prospect {
        return if f.account_deleted {
            JourneyNode::DeletedAccount
        } else {
            JourneyNode::NoShopYet
        };
    }
    if f.payment_count < 1 {
        return if f.account_deleted || f.all_shops_deleted {
            JourneyNode::DeletedShop
        } else if f.delinquent {
            JourneyNode::DidNotPay
        } else {
            JourneyNode::AwaitingPayment
        };
    }
    let by_deletion = f.account_deleted || f.all_shops_deleted;
    match f.stage {
        Stage::Customer if f.payment_count >= 2 => JourneyNode::Repeat,
        Stage::Churned if by_deletion => JourneyNode::PaidThenDeletedShop,
        Stage::Churned => JourneyNode::PaidThenDidNotPay,
        _ => JourneyNode::PaidOnce,
    }
}

/// A node of a flow: id, label, count of users, level (column of the Sankey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowNode {
    /// A stable id, unique in the flow.
    pub id: String,
    /// What to print on the node.
    pub label: String,
    /// Users in the node.
    pub count: i64,
    /// Its column, 0 first.
    pub level: i64,
}

/// A link of a flow: users going from `source` to `target` (node ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLink {
    /// The id of the node the users come from.
    pub source: String,
    /// The id of the node they go to.
    pub target: String,
    /// How many users.
    pub count: i64,
}

/// A Sankey-ready flow: nodes and links.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flow {
    /// Every node, zero counts included, in a fixed order.
    pub nodes: Vec<FlowNode>,
    /// Every link, zero counts included, in a fixed order.
    pub links: Vec<FlowLink>,
}

impl Flow {
    /// The count of the node with id `id` (0 when there is no such node).
    pub fn node_count(&self, id: &str) -> i64 {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.count)
            .unwrap_or(0)
    }

    /// Users flowing into node `id` (the sum of links whose target it is).
    pub fn inflow(&self, id: &str) -> i64 {
        self.links
            .iter()
            .filter(|l| l.target == id)
            .map(|l| l.count)
            .sum()
    }

    /// Users flowing out of node `id`.
    pub fn outflow(&self, id: &str) -> i64 {
        self.links
            .iter()
            .filter(|l| l.source == id)
            .map(|l| l.count)
            .sum()
    }
}

/// The journey flow of groups of users `(facts, how many)`.
pub fn journey_flow(groups: &[(JourneyFacts, i64)]) -> Flow {
    let mut counts = [0i64; 12];
    let index = |n: JourneyNode| JourneyNode::ALL.iter().position(|x| *x == n).unwrap_or(0);
    for (facts, n) in groups {
        let mut node = Some(journey_leaf(facts));
        while let Some(x) = node {
            counts[index(x)] += n;
            node = x.parent();
        }
    }
    let nodes = JourneyNode::ALL
        .iter()
        .map(|n| FlowNode {
            id: n.id().to_owned(),
            label: n.label().to_owned(),
            count: counts[index(*n)],
            level: n.level(),
        })
        .collect();
    let links = JourneyNode::ALL
        .iter()
        .filter_map(|n| {
            n.parent().map(|p| FlowLink {
                source: p.id().to_owned(),
                target: n.id().to_owned(),
                count: counts[index(*n)],
            })
        })
        .collect();
    Flow { nodes, links }
}

/// Where a user starts in a transition flow: a stage at T0, or not existing yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionNode {
    /// The user's account creation does not count at T0.
    NotSignedUp,
    /// The user's stage at T0.
    Stage(Stage),
}

impl TransitionNode {
    /// Every starting node: NOT_SIGNED_UP, then the stages in lifecycle order.
    pub const ALL: [TransitionNode; 5] = [
        TransitionNode::NotSignedUp,
        TransitionNode::Stage(Stage::Lead),
        TransitionNode::Stage(Stage::Prospect),
        TransitionNode::Stage(Stage::Customer),
        TransitionNode::Stage(Stage::Churned),
    ];

    /// Its name: `NOT_SIGNED_UP` or the stage's.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionNode::NotSignedUp => "NOT_SIGNED_UP",
            TransitionNode::Stage(s) => s.as_str(),
        }
    }

    /// The node named `s`.
    pub fn parse(s: &str) -> Option<TransitionNode> {
        TransitionNode::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The label of a stage on a node.
fn stage_label(s: Stage) -> &'static str {
    match s {
        Stage::Lead => "Lead",
        Stage::Prospect => "Prospect",
        Stage::Customer => "Customer",
        Stage::Churned => "Churned",
    }
}

/// The transition flow of `(stage at T0, stage at T1, how many)`: nodes `from:<X>` (level 0:
/// NOT_SIGNED_UP and the four stages) and `to:<STAGE>` (level 1), and the 20 links between
/// them, zero counts included.
pub fn transition_flow(pairs: &[(TransitionNode, Stage, i64)]) -> Flow {
    let count = |f: Option<TransitionNode>, t: Option<Stage>| -> i64 {
        pairs
            .iter()
            .filter(|(a, b, _)| f.is_none_or(|f| f == *a) && t.is_none_or(|t| t == *b))
            .map(|(_, _, n)| n)
            .sum()
    };
    let mut nodes = Vec::with_capacity(9);
    for f in TransitionNode::ALL {
        nodes.push(FlowNode {
            id: format!("from:{}", f.as_str()),
            label: match f {
                TransitionNode::NotSignedUp => "Not signed up".to_owned(),
                TransitionNode::Stage(s) => stage_label(s).to_owned(),
            },
            count: count(Some(f), None),
            level: 0,
        });
    }
    for t in Stage::ALL {
        nodes.push(FlowNode {
            id: format!("to:{}", t.as_str()),
            label: stage_label(t).to_owned(),
            count: count(None, Some(t)),
            level: 1,
        });
    }
    let mut links = Vec::with_capacity(20);
    for f in TransitionNode::ALL {
        for t in Stage::ALL {
            links.push(FlowLink {
                source: format!("from:{}", f.as_str()),
                target: format!("to:{}", t.as_str()),
                count: count(Some(f), Some(t)),
            });
        }
    }
    Flow { nodes, links }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        stage: Stage,
        prospect: bool,
        deleted: bool,
        all: bool,
        delinquent: bool,
        payments: i64,
    ) -> JourneyFacts {
        JourneyFacts {
            stage,
            reached_prospect: prospect,
            account_deleted: deleted,
            all_shops_deleted: all,
            delinquent,
            payment_count: payments,
        }
    }

    #[test]
    fn leaves() {
        use JourneyNode as J;
        use Stage as S;
        assert_eq!(
            journey_leaf(&facts(S::Lead, false, false, false, false, 0)),
            J::NoShopYet
        );
        assert_eq!(
            journey_leaf(&facts(S::Churned, false, true, false, false, 0)),
            J::DeletedAccount
        );
        assert_eq!(
            journey_leaf(&facts(S::Churned, true, true, false, true, 0)),
            J::DeletedShop
        );
        assert_eq!(
            journey_leaf(&facts(S::Churned, true, false, true, false, 0)),
            J::DeletedShop
        );
        assert_eq!(
            journey_leaf(&facts(S::Churned, true, false, false, true, 0)),
            J::DidNotPay
        );
        assert_eq!(
            journey_leaf(&facts(S::Prospect, true, false, false, false, 0)),
            J::AwaitingPayment
        );
        assert_eq!(
            journey_leaf(&facts(S::Customer, true, false, false, false, 2)),
            J::Repeat
        );
        assert_eq!(
            journey_leaf(&facts(S::Customer, true, false, false, false, 1)),
            J::PaidOnce
        );
        assert_eq!(
            journey_leaf(&facts(S::Churned, true, false, true, true, 3)),
            J::PaidThenDeletedShop
        );
        assert_eq!(
            journey_leaf(&facts(S::Churned, true, false, false, true, 3)),
            J::PaidThenDidNotPay
        );
    }

    #[test]
    fn flows_balance() {
        let groups = vec![
            (facts(Stage::Lead, false, false, false, false, 0), 5),
            (facts(Stage::Customer, true, false, false, false, 4), 3),
            (facts(Stage::Churned, true, false, false, true, 0), 2),
        ];
        let f = journey_flow(&groups);
        assert_eq!(f.node_count("SIGNED_UP"), 10);
        for n in &f.nodes {
            if n.level > 0 {
                assert_eq!(f.inflow(&n.id), n.count, "{}", n.id);
            }
            if f.outflow(&n.id) > 0 {
                assert_eq!(f.outflow(&n.id), n.count, "{}", n.id);
            }
        }
        assert_eq!(f.links.len(), 11);
        let t = transition_flow(&[(TransitionNode::NotSignedUp, Stage::Lead, 4)]);
        assert_eq!(t.links.len(), 20);
        assert_eq!(t.node_count("from:NOT_SIGNED_UP"), 4);
        assert_eq!(t.node_count("to:LEAD"), 4);
    }
}
