//! A period-average node: rows with their sub-period (`_rows`), the measure per sub-period
//! (`_sub`), the total per bucket; the metric divides it by the sub-periods started.

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{Param, PeriodAverageNode, PeriodAverageValue, PlanError};
use crate::semantic::{Agg, Granularity, TimeStorage};

impl Renderer<'_> {
    pub(super) fn period_average_ctes(
        &self,
        n: &PeriodAverageNode,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let ms = &n.measure;
        let t = n.time_slot;
        let slot = self.slot(t)?;
        // the bucket is read off the sub-period's period value, once per sub-period rather
        // than per row, where every sub-period lies within one bucket (weeks straddle months)
        let derived = slot
            .bucket(None)
            .filter(|&g| g == n.per || (n.per != Granularity::Week && n.per < g));
        let row_slots: Vec<usize> = (0..self.plan.slots.len())
            .filter(|&i| derived.is_none() || i != t)
            .collect();
        let names: Vec<String> = row_slots.iter().map(|i| format!("d{i}")).collect();
        let mut items = Vec::new();
        for (&i, name) in row_slots.iter().zip(&names) {
            items.push((self.slot_value(i, None, &n.rows.table)?, name.as_str()));
        }
        // the sub-period is only grouped on (and bucketed once per group): its period value
        items.push((self.slot_period(t, Some(n.per), &n.rows.table)?, "s"));
        items.push((self.measure_input(ms, &n.rows.table, true)?, "v"));
        let rows_cte = format!("{}_rows", n.cte);
        out.push(Cte::new(
            &rows_cte,
            format!("rows of {} with their {} (s)", ms.table, n.per.as_str()),
            self.rows_with(
                &n.rows,
                false,
                items,
                None,
                self.request_filter(&n.rows.table)?,
            )?,
        ));
        let keys = names
            .iter()
            .map(|n| quote(n))
            .chain(std::iter::once("\"s\"".to_owned()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = Sql::raw("SELECT ");
        for i in 0..self.plan.slots.len() {
            match derived.filter(|_| i == t) {
                Some(g) => {
                    q.append(self.d.key_bucket(Sql::raw("\"s\""), g, slot.z));
                    q.push(&format!(" AS \"d{i}\", "));
                }
                None => q.push(&format!("\"d{i}\", ")),
            }
        }
        // a distinct count counts the distinct (group, sub-period, value) rows where the
        // backend does that best (a hash aggregate on PostgreSQL, where COUNT(DISTINCT …)
        // sorts every row of every group); else COUNT(DISTINCT …)
        let (agg, from) = match ms.agg {
            Agg::CountDistinct if !self.d.distinct_rows_counted() => {
                ("COUNT(DISTINCT \"v\")", quote(&rows_cte))
            }
            Agg::CountDistinct => (
                "COUNT(\"v\")",
                format!(
                    "(SELECT DISTINCT {keys}, \"v\" FROM {}) AS \"u\"",
                    quote(&rows_cte)
                ),
            ),
            Agg::Sum => ("SUM(\"v\")", quote(&rows_cte)),
            _ => ("COUNT(\"v\")", quote(&rows_cte)),
        };
        q.push(&format!(
            "\"s\", {agg} AS \"m\"\n  FROM {from}\n  GROUP BY {keys}"
        ));
        let sub_cte = format!("{}_sub", n.cte);
        out.push(Cte::new(
            &sub_cte,
            format!("{} per {}", ms.name, n.per.as_str()),
            q,
        ));
        out.push(Cte::new(
            &n.cte,
            &n.description,
            self.group(&sub_cte, "SUM(\"m\") AS \"total\""),
        ));
        Ok(())
    }

    pub(super) fn period_average_value(&self, v: &PeriodAverageValue) -> Result<Sql, PlanError> {
        let (t, g, per_s) = (v.time_slot, v.granularity, v.per_seconds);
        let total = Sql::wrap("COALESCE(", Self::node_col(&v.cte, "total"), ", 0)");
        let b = self.slot_ref(t);
        let slot = self.slot(t)?;
        let end = self.d.key_add(b.clone(), g, 1, slot.z);
        let mut as_of = Sql::default();
        as_of.param(Param::AsOfText(slot.as_of));
        // sub-periods of the bucket that have started as of asOf
        let mut started = Sql::raw("CASE WHEN ");
        started.append(self.ended(t, g, 1)?);
        started.push(" THEN ");
        started.append(self.d.div_floor(
            self.d.seconds_between(b.clone(), end, TimeStorage::Local),
            per_s,
        ));
        started.push(" ELSE ");
        started.append(
            self.d
                .div_floor(self.d.seconds_between(b, as_of, TimeStorage::Local), per_s),
        );
        started.push(" + 1 END");
        Ok(self.divide(total, self.d.greatest(started, Sql::raw("1"))))
    }
}
