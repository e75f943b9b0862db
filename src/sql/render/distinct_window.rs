//! A distinct-window node: rows with their values (`_rows`), and per bucket the distinct
//! values of the rows whose bucket is in the bucket's window.

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
                self.request_filter(),
            )?,
        ));
        let slots = self.slot_list(None);
        let bslots = self.slot_list(Some("tally_b"));
        let mut on: Vec<String> = (0..self.plan.slots.len())
            .filter(|i| *i != t)
            .map(|i| {
                format!(
                    "\"tally_r\".\"d{i}\" {} \"tally_b\".\"d{i}\"",
                    self.d.null_safe_eq()
                )
            })
            .collect();
        let epoch = |a: &str| {
            self.d
                .bucket_epoch(Sql::raw(&format!("\"{a}\".\"d{t}\"")))
                .text
        };
        on.push(format!("{} <= {}", epoch("tally_r"), epoch("tally_b")));
        let mut s = Sql::raw(&format!(
            "SELECT {bslots}, COUNT(DISTINCT \"tally_r\".\"v\") AS \"m\"\n  FROM (SELECT DISTINCT {slots} FROM {rows}) AS \"tally_b\"\n  JOIN {rows} AS \"tally_r\" ON {}",
            on.join(" AND "),
            rows = quote(&rows_cte)
        ));
        if let Some(w) = n.window_seconds {
            s.push(&format!(
                " AND {} > {} - ",
                epoch("tally_r"),
                epoch("tally_b")
            ));
            s.param(Param::Value(Value::BigInt(Some(w))));
        }
        s.push(&format!("\n  GROUP BY {bslots}"));
        out.push(Cte::new(&n.cte, &n.description, s));
        Ok(())
    }

    pub(super) fn distinct_window_value(&self, v: &DistinctWindowValue) -> Sql {
        Sql::wrap("COALESCE(", Self::node_col(&v.cte, "m"), ", 0)")
    }
}
