//! Metric values that are no node of their own: derived arithmetic and cumulative windows
//! over the output rows (measures, ratios and the nodes' values are rendered by
//! [`Renderer::metric`] and the nodes' modules).

use sea_orm::Value;

use super::super::Sql;
use super::Renderer;
use crate::plan::{CumulativeValue, DerivedValue, Param, PlanError};
use crate::semantic::expr::BinOp;

impl Renderer<'_> {
    pub(super) fn derived(&self, e: &DerivedValue) -> Result<Sql, PlanError> {
        Ok(match e {
            DerivedValue::Metric(m) => Sql::wrap("(", self.metric(m)?, ")"),
            DerivedValue::Int(n) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::BigInt(Some(*n))));
                s
            }
            DerivedValue::Float(n) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::Double(Some(*n))));
                s
            }
            DerivedValue::Neg(a) => Sql::wrap("(-", self.derived(a)?, ")"),
            DerivedValue::Binary(BinOp::Div, a, b) => {
                self.divide(self.derived(a)?, self.derived(b)?)
            }
            DerivedValue::Binary(op, a, b) => {
                let mut s = Sql::raw("(");
                s.append(self.derived(a)?);
                s.push(&format!(" {} ", op.sql()));
                s.append(self.derived(b)?);
                s.push(")");
                s
            }
        })
    }

    /// `SUM(measure) OVER (PARTITION BY the other slots ORDER BY the time slot …)`.
    pub(super) fn cumulative_value(&self, c: &CumulativeValue) -> Result<Sql, PlanError> {
        let others: Vec<String> = (0..self.plan.slots.len())
            .filter(|i| *i != c.time_slot)
            .map(|i| self.slot_ref(i).text)
            .collect();
        let mut s = Sql::raw("SUM(");
        s.append(self.measure_value(&c.measure));
        s.push(") OVER (");
        if !others.is_empty() {
            s.push(&format!("PARTITION BY {} ", others.join(", ")));
        }
        match c.preceding_seconds {
            None => {
                s.push("ORDER BY ");
                s.append(self.slot_ref(c.time_slot));
                s.push(" ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)");
            }
            Some(w) => {
                s.push("ORDER BY ");
                s.append(self.d.key_epoch(self.slot_ref(c.time_slot)));
                s.push(" RANGE BETWEEN ");
                s.param(Param::Value(Value::BigInt(Some(w))));
                s.push(" PRECEDING AND CURRENT ROW)");
            }
        }
        Ok(s)
    }
}
