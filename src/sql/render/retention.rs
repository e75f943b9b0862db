//! A retention node: the activity (`_rows`), the periods each entity is active in
//! (`_periods`), each entity's previous and next active period (`_flags`), and per group the
//! counts; a retention metric's count or rate, null while the next period is incomplete
//! for churned and retained.

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{PlanError, RetentionNode, RetentionValue};
use crate::semantic::RetentionEvent;

impl Renderer<'_> {
    pub(super) fn retention_ctes(
        &self,
        n: &RetentionNode,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let ms = &n.measure;
        let (t, g) = (n.time_slot, n.granularity);
        let f = match self.request_filter(&n.rows.table)?.into_iter().next() {
            Some(f) => Sql::wrap("CASE WHEN ", f, " THEN 1 ELSE 0 END"),
            None => Sql::raw("1"),
        };
        let e = self.measure_input(ms, &n.rows.table, false)?;
        let mut conds = vec![Sql::wrap("", e.clone(), " IS NOT NULL")];
        if let Some(flt) = &ms.filter {
            conds.push(self.expr(flt, &n.rows.table)?);
        }
        // the period is the backend's period value (cheaper per row than the key on some
        // backends), its key written once per group in the node's last CTE
        let names: Vec<String> = (0..self.plan.slots.len())
            .map(|i| format!("d{i}"))
            .collect();
        let mut items = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let v = if i == t {
                self.slot_period(i, None, &n.rows.table)?
            } else {
                self.slot_value(i, None, &n.rows.table)?
            };
            items.push((v, name.as_str()));
        }
        items.push((e, "e"));
        items.push((f, "f"));
        let rows_cte = format!("{}_rows", n.cte);
        out.push(Cte::new(
            &rows_cte,
            format!(
                "activity of {}: every row with its period, its entity e and f = 1 when the request's filter holds (the neighbouring periods see all activity)",
                ms.name
            ),
            self.rows_with(&n.rows, false, items, None, conds)?,
        ));
        let slots = self.slot_list(None);
        let periods_cte = format!("{}_periods", n.cte);
        // rows without a period are left out after grouping (a condition on the period in
        // WHERE would compute it a second time per row where the rows CTE is inlined)
        out.push(Cte::new(
            &periods_cte,
            "the periods each entity is active in (per combination of the other dimensions)",
            Sql::raw(&format!(
                "SELECT {slots}, \"e\", MAX(\"f\") AS \"f\"\n  FROM {}\n  GROUP BY {slots}, \"e\"\n  HAVING \"d{t}\" IS NOT NULL",
                quote(&rows_cte)
            )),
        ));
        let mut part: Vec<String> = (0..self.plan.slots.len())
            .filter(|i| *i != t)
            .map(|i| format!("\"d{i}\""))
            .collect();
        part.push("\"e\"".to_owned());
        // period values order as time does (native keys, or text of one fixed format)
        let over = format!("OVER (PARTITION BY {} ORDER BY \"d{t}\")", part.join(", "));
        let flags_cte = format!("{}_flags", n.cte);
        out.push(Cte::new(
            &flags_cte,
            "each entity's previous and next active period",
            Sql::raw(&format!(
                "SELECT {slots}, \"f\", LAG(\"d{t}\") {over} AS \"prev\", LEAD(\"d{t}\") {over} AS \"next\"\n  FROM {}",
                quote(&periods_cte)
            )),
        ));
        let z = self.slot(t)?.z;
        let period = Sql::raw(&format!("\"d{t}\""));
        let next = self.d.period_add(period.clone(), g, 1, z);
        let prev = self.d.period_add(period.clone(), g, -1, z);
        // grouped by the period value (an input column: GROUP BY names resolve to the
        // input's columns first), its key written once per group
        let mut s = Sql::raw("SELECT ");
        for i in 0..self.plan.slots.len() {
            if i == t {
                s.append(self.period_key(i, period.clone())?);
                s.push(&format!(" AS \"d{i}\", "));
            } else {
                s.push(&format!("\"d{i}\", "));
            }
        }
        s.push("SUM(\"f\") AS \"active\",");
        s.push("\n    SUM(CASE WHEN \"f\" = 1 AND (\"next\" IS NULL OR \"next\" <> ");
        s.append(next.clone());
        s.push(") THEN 1 ELSE 0 END) AS \"churned\",\n    SUM(CASE WHEN \"f\" = 1 AND \"next\" = ");
        s.append(next);
        s.push(
            " THEN 1 ELSE 0 END) AS \"retained\",\n    SUM(CASE WHEN \"f\" = 1 AND \"prev\" <> ",
        );
        s.append(prev);
        s.push(" THEN 1 ELSE 0 END) AS \"resurrected\",\n    SUM(CASE WHEN \"f\" = 1 AND \"prev\" IS NULL THEN 1 ELSE 0 END) AS \"new\"");
        s.push(&format!(
            "\n  FROM {}\n  GROUP BY {slots}\n  HAVING SUM(\"f\") > 0",
            quote(&flags_cte)
        ));
        out.push(Cte::new(&n.cte, &n.description, s));
        Ok(())
    }

    pub(super) fn retention_value(&self, v: &RetentionValue) -> Result<Sql, PlanError> {
        let count = Sql::wrap(
            "COALESCE(",
            Self::node_col(&v.cte, v.event.as_str()),
            ", 0)",
        );
        let value = if v.rate {
            self.divide(
                count,
                Self::node_col(&v.cte, RetentionEvent::Active.as_str()),
            )
        } else {
            count
        };
        if !v.event.needs_next() {
            return Ok(value);
        }
        let mut s = Sql::raw("CASE WHEN ");
        s.append(self.ended(v.time_slot, v.granularity, 2)?);
        s.push(" THEN ");
        s.append(value);
        s.push(" END");
        Ok(s)
    }
}
