//! A period-average node: rows with their sub-period (`_rows`), the measure per sub-period
//! (`_sub`), the total per bucket; the metric divides it by the sub-periods started.

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{Param, PeriodAverageNode, PeriodAverageValue, PlanError};
use crate::semantic::{Agg, TimeStorage};

impl Renderer<'_> {
    pub(super) fn period_average_ctes(
        &self,
        n: &PeriodAverageNode,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let ms = &n.measure;
        let sub = self.slot_value(n.time_slot, Some(n.per), &n.rows.table)?;
        let rows_cte = format!("{}_rows", n.cte);
        out.push(Cte::new(
            &rows_cte,
            format!("rows of {} with their {} (s)", ms.table, n.per.as_str()),
            self.rows_from(
                &n.rows,
                vec![
                    (sub, "s"),
                    (self.measure_input(ms, &n.rows.table, true)?, "v"),
                ],
                None,
                self.request_filter(&n.rows.table)?,
            )?,
        ));
        let agg = match ms.agg {
            Agg::CountDistinct => "COUNT(DISTINCT \"v\")",
            Agg::Sum => "SUM(\"v\")",
            _ => "COUNT(\"v\")",
        };
        let slots = self.slot_list(None);
        let sub_cte = format!("{}_sub", n.cte);
        out.push(Cte::new(
            &sub_cte,
            format!("{} per {}", ms.name, n.per.as_str()),
            Sql::raw(&format!(
                "SELECT {slots}, \"s\", {agg} AS \"m\"\n  FROM {}\n  GROUP BY {slots}, \"s\"",
                quote(&rows_cte)
            )),
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
