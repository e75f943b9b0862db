//! A funnel's statement: the `asOf` cuts of the steps' tables; per step its events
//! (`fun_s<k>`: entity, properties, time in epoch seconds); each entity's anchor, its earliest
//! first-step event (`fun_1`, with the dimension values grouped by); for each next step the
//! earliest event strictly after the previous step's, within the window (`fun_<k>`); every
//! anchor, and every entity reaching each later step with its seconds from the previous
//! one (`fun_all`, a union of the steps, numbered for medians); per group the
//! entities reaching each step and the medians (`fun_g`); one response row per group and step.

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{FunnelNode, FunnelOut, OutType, PlanError, PlannedStep};
use crate::query::FunnelValue;
use crate::semantic::{DimType, TimeStorage};

impl Renderer<'_> {
    /// `WITH <cuts>, <funnel CTEs> SELECT … ORDER BY <groups>, <step>`.
    pub(super) fn funnel_statement(&self, n: &FunnelNode) -> Result<Sql, PlanError> {
        let mut ctes = Vec::new();
        for cut in &self.plan.cuts {
            ctes.push(Cte::new(&cut.cte, &cut.description, self.cut(cut)?));
        }
        let np = n.steps.first().map(|s| s.properties.len()).unwrap_or(0);
        let props = |alias: Option<&str>| -> Vec<String> {
            (0..np)
                .map(|i| match alias {
                    Some(a) => format!("{}.\"p{i}\"", quote(a)),
                    None => format!("\"p{i}\""),
                })
                .collect()
        };
        // the events of every step
        for (k, s) in n.steps.iter().enumerate() {
            ctes.push(Cte::new(
                format!("{}_s{}", n.cte, k + 1),
                format!(
                    "events of step {} ({}): entity, properties, time in seconds",
                    s.name, s.rows.table.name
                ),
                self.step_events(s, k == 0)?,
            ));
        }
        // the anchors: each entity's earliest first-step event
        let mut order = vec!["\"t\"".to_owned()];
        for (i, s) in self.plan.slots.iter().enumerate() {
            order.push(format!(
                "\"d{i}\"{}",
                self.collate(s.dimension.dim_type == DimType::String)
            ));
        }
        let mut cols = vec!["\"e\"".to_owned()];
        cols.extend(props(None));
        cols.push("\"t\" AS \"t1\"".to_owned());
        cols.push("\"t\"".to_owned());
        let slots = self.slot_list(None);
        if !slots.is_empty() {
            cols.push(slots.clone());
        }
        let mut anchor = Sql::raw(&format!(
            "SELECT {}\n  FROM (SELECT \"tally_x\".*, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}) AS \"tally_rn\" FROM {} AS \"tally_x\") AS \"tally_y\"\n  WHERE \"tally_rn\" <= 1",
            cols.join(", "),
            std::iter::once("\"e\"".to_owned())
                .chain(props(None))
                .collect::<Vec<_>>()
                .join(", "),
            order.join(", "),
            quote(&format!("{}_s1", n.cte))
        ));
        if self.filter.is_some() {
            anchor.push(" AND \"f\" = 1");
        }
        ctes.push(Cte::new(
            format!("{}_1", n.cte),
            format!(
                "anchors: per entity and properties their earliest {} event (ties: by the groups){}",
                n.steps[0].name,
                if self.filter.is_some() {
                    ", kept when it matches the request's filter"
                } else {
                    ""
                }
            ),
            anchor,
        ));
        // each next step: the earliest event after the previous step's, within the window
        for k in 2..=n.steps.len() {
            let prev = format!("{}_{}", n.cte, k - 1);
            let mut s = Sql::raw("SELECT \"a\".\"e\", ");
            for p in props(Some("a")) {
                s.push(&format!("{p}, "));
            }
            let groups = self.slot_list(Some("a"));
            if !groups.is_empty() {
                s.push(&format!("{groups}, "));
            }
            s.push(&format!(
                "\"a\".\"t1\", MIN(\"s\".\"t\") AS \"t\", MIN(\"s\".\"t\") - \"a\".\"t\" AS \"dt\"\n  FROM {} AS \"a\"\n  JOIN {} AS \"s\" ON \"s\".\"e\" = \"a\".\"e\"",
                quote(&prev),
                quote(&format!("{}_s{k}", n.cte))
            ));
            for i in 0..np {
                s.push(&format!(" AND \"s\".\"p{i}\" = \"a\".\"p{i}\""));
            }
            s.push(" AND \"s\".\"t\" > \"a\".\"t\"");
            if let Some(w) = n.window {
                s.push(&format!(
                    " AND \"s\".\"t\" <= \"a\".{} + ",
                    if n.overall { "\"t1\"" } else { "\"t\"" }
                ));
                s.value(w);
            }
            s.push("\n  GROUP BY \"a\".\"e\", ");
            for p in props(Some("a")) {
                s.push(&format!("{p}, "));
            }
            if !groups.is_empty() {
                s.push(&format!("{groups}, "));
            }
            s.push("\"a\".\"t1\", \"a\".\"t\"");
            ctes.push(Cte::new(
                format!("{}_{k}", n.cte),
                format!(
                    "entities reaching step {}: its earliest event strictly after step {}{}",
                    n.steps[k - 1].name,
                    n.steps[k - 2].name,
                    if n.window.is_some() {
                        " and within the window"
                    } else {
                        ""
                    }
                ),
                s,
            ));
        }
        // one row per anchor (k = 1) and per entity reaching a later step k, with the seconds
        // from the previous step: a union of the steps, so no step is joined to the anchors
        // again (SQLite would scan a step's rows once per anchor)
        let native = self.d.median(Sql::raw("x")).is_some();
        let groups = self.slot_list(None);
        let lead = if groups.is_empty() {
            String::new()
        } else {
            format!("{groups}, ")
        };
        let branches: Vec<String> = (1..=n.steps.len())
            .map(|k| {
                let dt = if k == 1 { "NULL" } else { "\"dt\"" };
                format!(
                    "SELECT {lead}{k} AS \"k\", {dt} AS \"dt\" FROM {}",
                    quote(&format!("{}_{k}", n.cte))
                )
            })
            .collect();
        let union = branches.join("\n  UNION ALL ");
        let all = if native {
            format!("SELECT * FROM (\n  {union}\n) AS \"tally_u\"")
        } else {
            // the backend has no median aggregate: the middle rows by number, per group and step
            format!(
                "SELECT \"tally_u\".*, ROW_NUMBER() OVER (PARTITION BY {lead}\"k\" ORDER BY (\"dt\" IS NULL), \"dt\") AS \"rn\", COUNT(\"dt\") OVER (PARTITION BY {lead}\"k\") AS \"c\"\n  FROM (\n  {union}\n) AS \"tally_u\""
            )
        };
        ctes.push(Cte::new(
            format!("{}_all", n.cte),
            "every anchor (k = 1) and every entity reaching step k with the seconds from the previous step, numbered per group and step",
            Sql::raw(&all),
        ));
        let mut aggs = vec!["COUNT(CASE WHEN \"k\" = 1 THEN 1 END) AS \"n1\"".to_owned()];
        for k in 2..=n.steps.len() {
            aggs.push(format!(
                "COUNT(CASE WHEN \"k\" = {k} THEN 1 END) AS \"n{k}\""
            ));
            let dt = format!("CASE WHEN \"k\" = {k} THEN \"dt\" END");
            let median = match self.d.median(Sql::raw(&dt)) {
                Some(m) => m.text,
                None => format!(
                    "AVG(CASE WHEN \"k\" = {k} AND \"rn\" IN ((\"c\" + 1) / 2, (\"c\" + 2) / 2) THEN \"dt\" END)"
                ),
            };
            aggs.push(format!("{median} AS \"m{k}\""));
        }
        ctes.push(Cte::new(
            &self.plan.output.from,
            "per group: entities reaching each step, median seconds from the previous step",
            self.group(&format!("{}_all", n.cte), &aggs.join(", ")),
        ));
        let mut out = Self::with(ctes);
        out.push(&format!(
            "\n-- {}\nSELECT * FROM (\n  SELECT ",
            super::one_line(&self.plan.output.description)
        ));
        for (i, c) in self.plan.output.columns.iter().enumerate() {
            let o = n
                .outputs
                .get(i)
                .ok_or_else(|| PlanError::new(format!("funnel column #{i} has no value")))?;
            out.append(self.funnel_value(n, *o, c.ty)?);
            out.push(&format!(" AS \"c{i}\",\n    "));
        }
        out.push(&format!(
            "\"k\" AS \"tally_k\"\n  FROM {} CROSS JOIN (",
            quote(&self.plan.output.from)
        ));
        let ks: Vec<String> = (1..=n.steps.len())
            .map(|k| format!("SELECT {k} AS \"k\""))
            .collect();
        out.push(&ks.join(" UNION ALL "));
        out.push(") AS \"tally_steps\"\n) AS \"tally_result\"\nORDER BY ");
        let mut keys = Vec::new();
        for (i, (c, o)) in self
            .plan
            .output
            .columns
            .iter()
            .zip(n.outputs.iter())
            .enumerate()
        {
            if matches!(o, FunnelOut::Slot(_)) {
                keys.push(format!(
                    "\"c{i}\"{} ASC NULLS LAST",
                    self.collate(c.ty == OutType::String)
                ));
            }
        }
        keys.push("\"tally_k\"".to_owned());
        out.push(&keys.join(", "));
        Ok(out)
    }

    /// ` COLLATE "C"` for text on backends that need it (byte order), else nothing.
    fn collate(&self, text: bool) -> String {
        match self.d.byte_collation() {
            Some(c) if text => format!(" COLLATE {c}"),
            _ => String::new(),
        }
    }

    /// A step's events: entity `e`, properties `p<i>`, time `t` in seconds (a date as the
    /// last second of its day); the first step's also with the slots `d<i>` and, with a
    /// request filter, `f` (1 when it holds).
    fn step_events(&self, s: &PlannedStep, first: bool) -> Result<Sql, PlanError> {
        let t = &s.rows.table;
        let mut time = self.d.epoch_seconds(self.expr(&s.time, t)?, s.time_storage);
        if s.time_storage == TimeStorage::Date {
            time = Sql::wrap("(", time, " + 86399)");
        }
        let mut items = vec![(self.expr(&s.entity, t)?, "e".to_owned())];
        for (i, p) in s.properties.iter().enumerate() {
            items.push((self.expr(p, t)?, format!("p{i}")));
        }
        items.push((time, "t".to_owned()));
        let mut conds = Vec::new();
        if let Some(c) = &s.condition {
            conds.push(self.expr(c, t)?);
        }
        conds.push(Sql::wrap("", self.expr(&s.entity, t)?, " IS NOT NULL"));
        conds.push(Sql::wrap("", self.expr(&s.time, t)?, " IS NOT NULL"));
        if let Some(f) = &s.filter {
            conds.push(self.filter(f)?);
        }
        if first && let Some(f) = &self.filter {
            items.push((
                Sql::wrap("CASE WHEN ", f.clone(), " THEN 1 ELSE 0 END"),
                "f".to_owned(),
            ));
        }
        let extra = items.iter().map(|(x, n)| (x.clone(), n.as_str())).collect();
        self.rows_with(&s.rows, first, extra, None, conds)
    }

    /// A response column of a funnel row, for the step `"k"` of the group's row of `fun_g`.
    fn funnel_value(&self, n: &FunnelNode, o: FunnelOut, ty: OutType) -> Result<Sql, PlanError> {
        let steps = n.steps.len();
        let g = |c: &str| format!("{}.\"{c}\"", quote(&self.plan.output.from));
        // CASE "k" WHEN k THEN f(k) … END over the steps `ks`
        let case = |ks: std::ops::RangeInclusive<usize>, f: &dyn Fn(usize) -> String| {
            let mut s = String::from("CASE \"k\"");
            for k in ks {
                s.push_str(&format!(" WHEN {k} THEN {}", f(k)));
            }
            s.push_str(" END");
            Sql::raw(&s)
        };
        let entities = || case(1..=steps, &|k| g(&format!("n{k}")));
        let previous = || case(2..=steps, &|k| g(&format!("n{}", k - 1)));
        Ok(match o {
            FunnelOut::Slot(i) => {
                let r = self.slot_text(i)?;
                match (ty, self.slot(i)?.dimension.dim_type) {
                    (_, DimType::Number) => self.d.float(r),
                    (_, DimType::Boolean) => self.d.bool_int(r),
                    _ => r,
                }
            }
            FunnelOut::Value(FunnelValue::Step) => {
                let mut s = Sql::raw("CASE \"k\"");
                for (k, step) in n.steps.iter().enumerate() {
                    s.push(&format!(" WHEN {} THEN ", k + 1));
                    s.value(step.name.clone());
                }
                s.push(" END");
                s
            }
            FunnelOut::Value(FunnelValue::Entities) => self.d.int(entities()),
            FunnelOut::Value(FunnelValue::ConversionFromPrevious) => {
                self.divide(entities(), previous())
            }
            FunnelOut::Value(FunnelValue::ConversionFromFirst) => {
                self.divide(entities(), Sql::raw(&g("n1")))
            }
            FunnelOut::Value(FunnelValue::DropOff) => {
                let mut s = previous();
                s.push(" - ");
                s.append(entities());
                self.d.int(Sql::wrap("(", s, ")"))
            }
            FunnelOut::Value(FunnelValue::MedianSecondsFromPrevious) => {
                self.d.float(case(2..=steps, &|k| g(&format!("m{k}"))))
            }
            FunnelOut::Value(FunnelValue::FirstStepTime(_)) => {
                return Err(PlanError::new(
                    "the first step's time is a slot, not a value",
                ));
            }
        })
    }
}
