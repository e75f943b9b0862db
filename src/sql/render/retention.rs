//! A retention node: the activity (`_rows`), the periods each entity is active in
//! (`_periods`), each entity's previous and next active period where a count the request
//! reads needs it (`_flags`), and per group the counts the request reads; a retention
//! metric's count or rate, null while the next period is incomplete for churned and
//! retained.

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
        // grouped and ordered by the window's partition and order below, so that SQLite runs
        // the window over its input as it comes instead of sorting it again. Rows without a
        // period are kept here (a period of NULL, first or last in its partition, so it
        // stands for no neighbour) and left out after the window: a condition on the period
        // here, `HAVING` included (both backends move a `HAVING` on grouped columns into
        // `WHERE`), computes it a second time per row where the rows CTE is inlined.
        let mut part: Vec<String> = (0..self.plan.slots.len())
            .filter(|i| *i != t)
            .map(|i| format!("\"d{i}\""))
            .collect();
        part.push("\"e\"".to_owned());
        let order = format!("{}, \"d{t}\"", part.join(", "));
        out.push(Cte::new(
            &periods_cte,
            "the periods each entity is active in (per combination of the other dimensions)",
            Sql::raw(&format!(
                "SELECT {slots}, \"e\", MAX(\"f\") AS \"f\"\n  FROM {}\n  GROUP BY {order}\n  ORDER BY {order}",
                quote(&rows_cte)
            )),
        ));
        // period values order as time does (native keys, or text of one fixed format)
        let over = format!("OVER (PARTITION BY {} ORDER BY \"d{t}\")", part.join(", "));
        let prev = n.events.iter().any(|e| e.needs_prev());
        let next = n.events.iter().any(|e| e.needs_next());
        let mut neighbours = String::new();
        if prev {
            neighbours.push_str(&format!(", LAG(\"d{t}\") {over} AS \"prev\""));
        }
        if next {
            neighbours.push_str(&format!(", LEAD(\"d{t}\") {over} AS \"next\""));
        }
        let flags_cte = format!("{}_flags", n.cte);
        out.push(Cte::new(
            &flags_cte,
            match (prev, next) {
                (true, true) => "each entity's previous and next active period",
                (true, false) => "each entity's previous active period",
                (false, true) => "each entity's next active period",
                (false, false) => "each entity's active periods",
            },
            Sql::raw(&format!(
                "SELECT {slots}, \"f\"{neighbours}\n  FROM {}",
                quote(&periods_cte)
            )),
        ));
        let z = self.slot(t)?.z;
        let period = Sql::raw(&format!("\"d{t}\""));
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
        s.push("SUM(\"f\") AS \"active\"");
        // only the counts the request reads: each costs a date computation per row
        for e in &n.events {
            let cond = match e {
                RetentionEvent::Churned => {
                    let mut c = Sql::raw("(\"next\" IS NULL OR \"next\" <> ");
                    c.append(self.d.period_add(period.clone(), g, 1, z));
                    c.push(")");
                    c
                }
                RetentionEvent::Retained => Sql::wrap(
                    "\"next\" = ",
                    self.d.period_add(period.clone(), g, 1, z),
                    "",
                ),
                RetentionEvent::Resurrected => Sql::wrap(
                    "\"prev\" <> ",
                    self.d.period_add(period.clone(), g, -1, z),
                    "",
                ),
                RetentionEvent::New => Sql::raw("\"prev\" IS NULL"),
                RetentionEvent::Active => continue,
            };
            s.push(",\n    SUM(CASE WHEN \"f\" = 1 AND ");
            s.append(cond);
            s.push(&format!(" THEN 1 ELSE 0 END) AS \"{}\"", e.as_str()));
        }
        s.push(&format!(
            "\n  FROM {}\n  WHERE \"d{t}\" IS NOT NULL\n  GROUP BY {slots}\n  HAVING SUM(\"f\") > 0",
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
