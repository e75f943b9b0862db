//! A distinct-window node: rows with their values (`_rows`), and per bucket the distinct
//! values of the rows whose bucket is in the bucket's window — counted in time linear in the
//! rows (and their logarithm), never rows × buckets:
//!
//! 1. `_seen`: each value's distinct buckets (per combination of the other slots), as
//!    epochs `e`, with the value's previous and next bucket.
//! 2. `_events`: a bucket `e` puts the value in the windows of the buckets `b` with
//!    `e <= b < e + w` (`b - w < e <= b`, the window's definition). Consecutive buckets of
//!    one value closer than `w` overlap, so a value's windows merge into runs: `+1` where a
//!    run starts (no previous bucket within `w`), `-1` at `e + w` where it ends (no next
//!    bucket within `w`). Since the beginning (no `w`): `+1` at the value's first bucket.
//! 3. The node: every bucket the rows have, with the running sum of the events up to and
//!    including its epoch — the values whose runs cover it, each once.

use sea_orm::Value;

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{DistinctWindowNode, DistinctWindowValue, Param, PlanError};

impl Renderer<'_> {
    pub(super) fn distinct_window_ctes(
        &self,
        n: &DistinctWindowNode,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let ms = &n.measure;
        let t = n.time_slot;
        let rows_cte = format!("{}_rows", n.cte);
        out.push(Cte::new(
            &rows_cte,
            format!("rows of {} with their values of {}", ms.table, ms.name),
            self.rows_from(
                &n.rows,
                vec![(self.measure_input(ms, &n.rows.table, true)?, "v")],
                None,
                self.request_filter(&n.rows.table)?,
            )?,
        ));
        let rows = quote(&rows_cte);
        // the other slots: the windows' partition
        let others: Vec<String> = (0..self.plan.slots.len())
            .filter(|i| *i != t)
            .map(|i| format!("\"d{i}\""))
            .collect();
        let lead =
            |v: &[String]| -> String { v.iter().map(|x| format!("{x}, ")).collect::<String>() };
        let others_lead = lead(&others);
        let mut part = others.clone();
        part.push("\"v\"".to_owned());
        let epoch = self.d.key_epoch(Sql::raw(&format!("\"d{t}\""))).text;
        let w = |s: &mut Sql| {
            s.param(Param::Value(Value::BigInt(Some(
                n.window_seconds.unwrap_or(0),
            ))))
        };

        let seen_cte = format!("{}_seen", n.cte);
        let events_cte = format!("{}_events", n.cte);
        match n.window_seconds {
            Some(_) => {
                let over = format!("OVER (PARTITION BY {} ORDER BY \"e\")", part.join(", "));
                out.push(Cte::new(
                    &seen_cte,
                    format!(
                        "each value of {} with its distinct buckets (epoch e) and its previous and next one",
                        ms.name
                    ),
                    Sql::raw(&format!(
                        "SELECT {others_lead}\"e\", LAG(\"e\") {over} AS \"prev\", LEAD(\"e\") {over} AS \"next\"\n  FROM (SELECT {others_lead}\"v\", {epoch} AS \"e\" FROM (SELECT DISTINCT {others_lead}\"v\", \"d{t}\" FROM {rows} WHERE \"v\" IS NOT NULL AND \"d{t}\" IS NOT NULL) AS \"tally_d\") AS \"tally_s\""
                    )),
                ));
                let mut s = Sql::raw(&format!(
                    "SELECT {others_lead}\"e\" AS \"t\", 1 AS \"delta\" FROM {} WHERE \"prev\" IS NULL OR \"e\" - \"prev\" >= ",
                    quote(&seen_cte)
                ));
                w(&mut s);
                s.push(&format!("\n  UNION ALL\n  SELECT {others_lead}\"e\" + "));
                w(&mut s);
                s.push(&format!(
                    ", -1 FROM {} WHERE \"next\" IS NULL OR \"next\" - \"e\" >= ",
                    quote(&seen_cte)
                ));
                w(&mut s);
                out.push(Cte::new(
                    &events_cte,
                    "+1 where a run of a value's windows starts, -1 where it ends",
                    s,
                ));
            }
            None => {
                out.push(Cte::new(
                    &events_cte,
                    format!("+1 at the first bucket (epoch) of each value of {}", ms.name),
                    Sql::raw(&format!(
                        "SELECT {others_lead}MIN({epoch}) AS \"t\", 1 AS \"delta\"\n  FROM {rows} WHERE \"v\" IS NOT NULL AND \"d{t}\" IS NOT NULL\n  GROUP BY {}",
                        part.join(", ")
                    )),
                ));
            }
        }
        let slots = self.slot_list(None);
        let part_by = if others.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {} ", others.join(", "))
        };
        out.push(Cte::new(
            &n.cte,
            &n.description,
            Sql::raw(&format!(
                "SELECT {slots}, \"m\" FROM (\n    SELECT {slots}, \"b\", SUM(\"delta\") OVER ({part_by}ORDER BY \"t\" RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS \"m\"\n    FROM (SELECT {slots}, {epoch} AS \"t\", 0 AS \"delta\", 1 AS \"b\" FROM (SELECT DISTINCT {slots} FROM {rows} WHERE \"d{t}\" IS NOT NULL) AS \"tally_b\"\n      UNION ALL\n      SELECT {}\"t\", \"delta\", 0 FROM {}) AS \"tally_e\"\n  ) AS \"tally_w\"\n  WHERE \"b\" = 1",
                self.events_slots(t),
                quote(&events_cte)
            )),
        ));
        Ok(())
    }

    /// The slots of an events row, in slot order: the other slots as they are, no bucket.
    fn events_slots(&self, t: usize) -> String {
        (0..self.plan.slots.len())
            .map(|i| {
                if i == t {
                    "NULL, ".to_owned()
                } else {
                    format!("\"d{i}\", ")
                }
            })
            .collect()
    }

    pub(super) fn distinct_window_value(&self, v: &DistinctWindowValue) -> Sql {
        Sql::wrap("COALESCE(", Self::node_col(&v.cte, "m"), ", 0)")
    }
}
