//! The per-table aggregate: its rows (`rows_<table>`: slot values and measure inputs), the
//! aggregate (`agg_<table>`), and medians by window functions where the backend has no
//! median aggregate (`med_<table>_<i>`).

use super::super::{Sql, quote};
use super::conversion::Fold;
use super::{Cte, Renderer};
use crate::plan::{AggregateNode, MeasureRef, PlanError, ShiftKind, ToDateWindow};
use crate::semantic::{Agg, BinOp, Expr, Measure};

impl Renderer<'_> {
    /// The CTEs of aggregate `a`, counting the conversions `folds` in its pass (their
    /// conversion events first: its rows read them).
    pub(super) fn aggregate_ctes(
        &self,
        a: &AggregateNode,
        folds: &[&Fold],
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        if a.shift.as_ref().is_some_and(|s| s.by_time) {
            // read in the final SELECT from the request's aggregate (`TimeLookup`)
            return Ok(());
        }
        if let Some(own) = a.shift.as_ref().and_then(|s| s.reuse.as_deref()) {
            return self.reused_ctes(a, own, out);
        }
        let table = &a.rows.table;
        // a compared aggregate applies the request's filter less its conditions on the
        // compared time dimension
        let mut filter = match &a.shift {
            Some(s) => s
                .filter
                .as_ref()
                .map(|f| self.filter_on(f, Some(table)))
                .transpose()?
                .into_iter()
                .collect(),
            None => self.request_filter(table)?,
        };
        if let Some(f) = self.shared_measure_filter(a, folds)? {
            filter.push(self.expr(f, table)?);
        }
        // a sum of `a ± b` over two columns never NULL reads both columns (`v<i>a`, `v<i>b`)
        // and adds after the GROUP BY (`SUM(a) ± SUM(b)`): no arithmetic per row
        let mut inputs = Vec::new();
        for (i, m) in a.measures.iter().enumerate() {
            match self.split_sum(&m.measure, a) {
                Some((_, x, y)) => {
                    for (c, part) in [(x, "a"), (y, "b")] {
                        let part_of = Measure {
                            expr: Some(Expr::Column(c.to_owned())),
                            ..m.measure.clone()
                        };
                        inputs.push((
                            self.measure_input(&part_of, table, true)?,
                            format!("v{i}{part}"),
                        ));
                    }
                }
                None => inputs.push((
                    self.measure_input(&m.measure, table, true)?,
                    format!("v{i}"),
                )),
            }
        }
        for f in folds {
            out.push(self.conversion_hits(self.fold_node(f)?)?);
            inputs.extend(self.fold_row_items(f, table)?);
        }
        let extra: Vec<(Sql, &str)> = inputs
            .iter()
            .map(|(s, n)| (s.clone(), n.as_str()))
            .collect();
        out.push(Cte::new(
            &a.rows_cte,
            format!(
                "rows of {} with their dimension values and measure inputs",
                table.name
            ),
            self.rows_moved(&a.rows, true, extra, None, filter, a.shift.as_ref())?,
        ));
        match a.shift.as_ref().map(|s| (s.kind, s.slot)) {
            Some((ShiftKind::ToDate(g), slot)) => {
                let buckets = format!("{}_buckets", a.agg_cte);
                out.push(Cte::new(
                    &buckets,
                    format!(
                        "aggregate {} per bucket, with the key of its {} (tg)",
                        table.name,
                        g.as_str()
                    ),
                    self.aggregate(a, &a.rows_cte, true, "")?,
                ));
                out.push(Cte::new(
                    &a.agg_cte,
                    &a.description,
                    self.to_date(a, &buckets, slot),
                ));
            }
            _ => {
                let mut counts = String::new();
                for f in folds {
                    counts.push_str(&self.fold_aggregates(f)?);
                }
                let agg = self.aggregate(a, &a.rows_cte, false, &counts)?;
                let mut cte = Cte::new(
                    &a.agg_cte,
                    if folds.is_empty() {
                        a.description.clone()
                    } else {
                        format!(
                            "{}, and the base and converted events of {}",
                            a.description,
                            folds
                                .iter()
                                .map(|f| self.fold_node(f).map(|n| n.metric.as_str()))
                                .collect::<Result<Vec<_>, _>>()?
                                .join(", ")
                        )
                    },
                    agg,
                );
                // read by the response and by each folded conversion's CTE: computed once
                cte.materialized = !folds.is_empty();
                out.push(cte);
            }
        }
        for (i, m) in a.measures.iter().enumerate() {
            if let Some(cte) = &m.median_cte {
                out.push(Cte::new(
                    cte,
                    format!(
                        "median of {} by window functions (middle row, or the mean of the two middle rows)",
                        m.measure.name
                    ),
                    self.window_median(a, i),
                ));
            }
        }
        Ok(())
    }

    /// The filter every measure of `a` and every base measure of `folds` has, when they all
    /// have the same one and `a` has no groups: such an aggregate reads only the rows where it
    /// holds (in its rows' `WHERE`, which a SQL table's statement gets pushed into, and which
    /// an index may serve). Its one group is there without rows, and every value is the same
    /// (each reads `NULL` where the filter fails); only `COUNT(*)`, which no metric reads,
    /// counts fewer rows. With groups, a group with no row meeting the filter would be lost.
    fn shared_measure_filter<'a>(
        &self,
        a: &'a AggregateNode,
        folds: &[&Fold],
    ) -> Result<Option<&'a Expr>, PlanError> {
        if !self.plan.slots.is_empty() || a.shift.is_some() {
            return Ok(None);
        }
        let Some(first) = a.measures.first().and_then(|m| m.measure.filter.as_ref()) else {
            return Ok(None);
        };
        if a.measures
            .iter()
            .any(|m| m.measure.filter.as_ref() != Some(first))
        {
            return Ok(None);
        }
        for f in folds {
            if self.fold_node(f)?.base.filter.as_ref() != Some(first) {
                return Ok(None);
            }
        }
        Ok(Some(first))
    }

    /// An offset aggregate read from the request's own aggregate `own` of the same table
    /// (and its medians computed apart): its groups with the compared bucket key moved, the
    /// groups without a time value left out.
    fn reused_ctes(
        &self,
        a: &AggregateNode,
        own: &str,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let Some(shift) = &a.shift else {
            return Err(PlanError::new(format!("{}: not moved in time", a.agg_cte)));
        };
        let ShiftKind::Ahead(g, n) = shift.kind else {
            return Err(PlanError::new(format!(
                "{}: only an offset reads the request's aggregate",
                a.agg_cte
            )));
        };
        let source = self
            .plan
            .aggregates
            .iter()
            .find(|x| x.shift.is_none() && x.agg_cte == own)
            .ok_or_else(|| PlanError::new(format!("{}: no aggregate {own}", a.agg_cte)))?;
        let moved = |from: &str, columns: &[String]| -> Result<Sql, PlanError> {
            let mut s = Sql::raw("SELECT ");
            for i in 0..self.plan.slots.len() {
                let d = Sql::raw(&format!("\"d{i}\""));
                let v = if i == shift.slot {
                    self.d.key_add(d, g, n, self.slot(i)?.z)
                } else {
                    d
                };
                s.append(v);
                s.push(&format!(" AS \"d{i}\", "));
            }
            s.push(&columns.join(", "));
            s.push(&format!(
                "\n  FROM {}\n  WHERE \"d{}\" IS NOT NULL",
                quote(from),
                shift.slot
            ));
            Ok(s)
        };
        let mut columns = vec!["\"n\"".to_owned()];
        columns.extend(
            a.measures
                .iter()
                .enumerate()
                .filter(|(_, m)| m.median_cte.is_none())
                .map(|(i, _)| format!("\"m{i}\"")),
        );
        out.push(Cte::new(&a.agg_cte, &a.description, moved(own, &columns)?));
        for (i, m) in a.measures.iter().enumerate() {
            if let Some(cte) = &m.median_cte {
                let from = source
                    .measures
                    .get(i)
                    .and_then(|x| x.median_cte.as_deref())
                    .ok_or_else(|| {
                        PlanError::new(format!("{cte}: {own} has no median {i} computed apart"))
                    })?;
                out.push(Cte::new(
                    cte,
                    format!(
                        "median of {} in the bucket {n} {}(s) before each bucket: the groups of {from} with their bucket keys moved",
                        m.measure.name,
                        g.as_str()
                    ),
                    moved(from, &["\"m\"".to_owned()])?,
                ));
            }
        }
        Ok(())
    }

    /// The collation that compares bytes, when the measure's input is text and the dialect
    /// has one.
    fn text_collation(
        &self,
        a: &AggregateNode,
        measure: &crate::semantic::Measure,
    ) -> Option<&'static str> {
        use crate::semantic::ExprType;
        let table = &a.rows.table;
        let ty = measure
            .expr
            .as_ref()?
            .infer(&|c| table.column_type(c).map(ExprType::of_col))
            .ok()?;
        self.d.byte_collation().filter(|_| ty == ExprType::String)
    }

    /// The aggregate of the rows of `from`, grouped by the slots (and `tg`, with `to_date`),
    /// with the select-list items `more` (`, …`) after the measures'.
    fn aggregate(
        &self,
        a: &AggregateNode,
        from: &str,
        to_date: bool,
        more: &str,
    ) -> Result<Sql, PlanError> {
        let mut slots = self.slot_list(None);
        if to_date {
            slots.push_str(", \"tg\"");
        }
        let mut s = Sql::raw("SELECT ");
        if !slots.is_empty() {
            s.push(&slots);
            s.push(", ");
        }
        s.push("COUNT(*) AS \"n\"");
        for (i, m) in a.measures.iter().enumerate() {
            if m.median_cte.is_some() {
                continue;
            }
            let v = Sql::raw(&format!("\"v{i}\""));
            let agg = match m.measure.agg {
                Agg::Count => Sql::wrap("COUNT(", v, ")"),
                // the table's one key column: one row per key (after the asOf cut), never
                // multiplied by a join, so its values are distinct already and counting
                // them needs no sort
                Agg::CountDistinct if m.measure.reads_the_key(&a.rows.table) => {
                    Sql::wrap("COUNT(", v, ")")
                }
                Agg::CountDistinct => match self.text_collation(a, &m.measure) {
                    // text compared byte by byte: the same groups (equal text is equal bytes),
                    // without the locale's comparisons (PostgreSQL: ~1.5x faster on ids)
                    Some(c) => Sql::wrap("COUNT(DISTINCT ", v, &format!(" COLLATE {c})")),
                    None => Sql::wrap("COUNT(DISTINCT ", v, ")"),
                },
                Agg::Sum => match self.split_sum(&m.measure, a) {
                    Some((op, _, _)) => Sql::raw(&format!(
                        "(SUM(\"v{i}a\") {} SUM(\"v{i}b\"))",
                        if op == BinOp::Add { "+" } else { "-" }
                    )),
                    None => Sql::wrap("SUM(", v, ")"),
                },
                Agg::Avg => Sql::wrap("AVG(", v, ")"),
                Agg::Min => Sql::wrap("MIN(", v, ")"),
                Agg::Max => Sql::wrap("MAX(", v, ")"),
                Agg::Median => self.d.median(v).ok_or_else(|| {
                    PlanError::new(format!(
                        "median {}: the plan expects a median aggregate, which {} lacks",
                        m.measure.name,
                        self.d.name()
                    ))
                })?,
            };
            s.push(", ");
            s.append(agg);
            s.push(&format!(" AS \"m{i}\""));
        }
        s.push(more);
        s.push(&format!("\n  FROM {}", quote(from)));
        if !slots.is_empty() {
            s.push("\n  GROUP BY ");
            s.push(&slots);
        }
        Ok(s)
    }

    /// Each bucket's measures summed with those of the earlier buckets of its enclosing
    /// period (`tg`), per combination of the other slots.
    fn to_date(&self, a: &AggregateNode, buckets: &str, time_slot: usize) -> Sql {
        let mut part: Vec<String> = (0..self.plan.slots.len())
            .filter(|i| *i != time_slot)
            .map(|i| format!("\"d{i}\""))
            .collect();
        part.push("\"tg\"".to_owned());
        let window = format!(
            "OVER (PARTITION BY {} ORDER BY \"d{time_slot}\" ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
            part.join(", ")
        );
        let mut cols = vec![self.slot_list(None)];
        for i in 0..a.measures.len() {
            cols.push(format!("SUM(\"m{i}\") {window} AS \"m{i}\""));
        }
        Sql::raw(&format!(
            "SELECT {}\n  FROM {}",
            cols.join(", "),
            quote(buckets)
        ))
    }

    fn window_median(&self, a: &AggregateNode, i: usize) -> Sql {
        let slots = self.slot_list(None);
        let part = if slots.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {slots} ")
        };
        let lead = if slots.is_empty() {
            String::new()
        } else {
            format!("{slots}, ")
        };
        Sql::raw(&format!(
            "SELECT {lead}AVG(\"v\") AS \"m\" FROM (SELECT {lead}\"v{i}\" AS \"v\", ROW_NUMBER() OVER ({part}ORDER BY \"v{i}\") AS \"rn\", COUNT(*) OVER ({}) AS \"cnt\"\n    FROM {} WHERE \"v{i}\" IS NOT NULL) AS \"tally_m\"\n  WHERE \"rn\" IN ((\"cnt\" + 1) / 2, (\"cnt\" + 2) / 2){}",
            part.trim_end(),
            quote(&a.rows_cte),
            if slots.is_empty() {
                String::new()
            } else {
                format!("\n  GROUP BY {slots}")
            }
        ))
    }

    /// Whether measure `m` of aggregate `a` is summed as two columns added after the GROUP BY
    /// ([`Measure::split_sum`] on this backend): what both the rows (`v<i>a`, `v<i>b`) and the
    /// aggregate (`SUM(v<i>a) ± SUM(v<i>b)`) are written from.
    fn split_sum<'m>(
        &self,
        m: &'m Measure,
        a: &'m AggregateNode,
    ) -> Option<(BinOp, &'m str, &'m str)> {
        m.split_sum(&a.rows.table, self.d.exact_decimals())
    }

    /// A measure's aggregate in the final SELECT (0 for counts and sums of missing groups);
    /// a grain-to-date sum by a window: the column summed over the response rows of the
    /// bucket's period up to the bucket (none for the group without a time value).
    pub(super) fn measure_value(&self, m: &MeasureRef) -> Sql {
        let mut r = Self::node_col(&m.cte, &m.column);
        if let Some(w) = m.to_date {
            r = self.to_date_window(r, w);
        }
        if m.zero_if_null {
            Sql::wrap("COALESCE(", r, ", 0)")
        } else {
            r
        }
    }

    /// `CASE WHEN bucket IS NULL THEN NULL ELSE SUM(v) OVER (PARTITION BY the other slots,
    /// the bucket's period ORDER BY the bucket ROWS …) END` over the response rows.
    fn to_date_window(&self, v: Sql, w: ToDateWindow) -> Sql {
        let t = self.slot_ref(w.time_slot);
        let z = self.plan.slots.get(w.time_slot).is_some_and(|s| s.z);
        let mut s = Sql::raw("CASE WHEN ");
        s.append(t.clone());
        s.push(" IS NULL THEN NULL ELSE SUM(");
        s.append(v);
        s.push(") OVER (PARTITION BY ");
        for i in (0..self.plan.slots.len()).filter(|i| *i != w.time_slot) {
            s.append(self.slot_ref(i));
            s.push(", ");
        }
        s.append(self.d.key_bucket(t.clone(), w.period, z));
        s.push(" ORDER BY ");
        s.append(t);
        s.push(" ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) END");
        s
    }
}
