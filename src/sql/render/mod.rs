//! The renderer: a [`Plan`] and a [`Dialect`] in, one statement out. Each node kind is
//! rendered by its own module; this one dispatches on the node kinds (the CTEs of a special
//! node, the value of a metric) and holds what nodes share (their rows, the slots).

mod aggregate;
mod conversion;
mod cut;
mod distinct_window;
mod expr;
mod funnel;
mod keys;
mod metric;
mod output;
mod period_average;
mod retention;
mod rows;

pub(super) use cut::sql_file;
pub(super) use expr::expr_sql;

use std::collections::HashSet;

use super::{Dialect, Sql, quote};
use crate::plan::{
    DimSlot, MetricValue, Plan, PlanError, RowSource, ShiftKind, SpecialNode, TimeShift,
};
use crate::semantic::{Granularity, Measure, Table};

/// One CTE: its name, the one-line comment above it, its body.
struct Cte {
    name: String,
    description: String,
    body: Sql,
    /// Computed once however often it is read (`AS MATERIALIZED`): for a body whose rows
    /// must be the same at every read (row numbers).
    materialized: bool,
    /// Read into the one CTE that reads it (`AS NOT MATERIALIZED`): see
    /// [`statement`], for the CTEs below an aggregate that the final SELECT reads twice.
    inline: bool,
}

impl Cte {
    fn new(name: impl Into<String>, description: impl Into<String>, body: Sql) -> Cte {
        Cte {
            name: name.into(),
            description: description.into(),
            body,
            materialized: false,
            inline: false,
        }
    }
}

/// Which columns of the SQL tables a statement reads (see [`super::prune`]).
#[derive(Clone, Copy)]
enum Read<'a> {
    /// Every column: the SQL tables' texts as written.
    All,
    /// None: the SQL tables' texts left out (the statement is only read for the names it
    /// uses, never run).
    Nothing,
    /// The columns named by these identifiers (lowercase): the other select-list items of a
    /// SQL table are replaced by `NULL` where its text allows.
    Only(&'a HashSet<String>),
}

/// What rendering one plan keeps.
struct Renderer<'a> {
    plan: &'a Plan,
    d: &'a dyn Dialect,
    /// The request's `where`, rendered once (every node's rows apply it).
    filter: Option<Sql>,
    /// The columns of the SQL tables it reads.
    read: Read<'a>,
}

/// The statement of `plan` for `d`. A statement embedding SQL tables is rendered once
/// without their texts, to learn which names the rest of it uses, then with each text's
/// select-list items those names do not read replaced by `NULL` ([`super::prune`]).
pub(super) fn statement(plan: &Plan, d: &dyn Dialect) -> Result<Sql, PlanError> {
    if !plan.embeds_sql_tables() {
        return statement_reading(plan, d, Read::All);
    }
    let rest = statement_reading(plan, d, Read::Nothing)?;
    let used = super::prune::identifiers(&rest.text);
    statement_reading(plan, d, Read::Only(&used))
}

fn statement_reading(plan: &Plan, d: &dyn Dialect, read: Read<'_>) -> Result<Sql, PlanError> {
    let mut r = Renderer {
        plan,
        d,
        filter: None,
        read,
    };
    r.filter = plan.filter.as_ref().map(|f| r.filter(f)).transpose()?;
    if let Some(node) = &plan.rows {
        return r.rows_statement(node);
    }
    if let Some(node) = &plan.funnel {
        return r.funnel_statement(node);
    }
    let mut ctes: Vec<Cte> = Vec::new();
    for cut in &plan.cuts {
        ctes.push(Cte::new(&cut.cte, &cut.description, r.cut(cut)?));
    }
    let folds = r.folds();
    for (i, a) in plan.aggregates.iter().enumerate() {
        let mine: Vec<&conversion::Fold> = folds.iter().filter(|f| f.agg == i).collect();
        r.aggregate_ctes(a, &mine, &mut ctes)?;
    }
    // An offset looked up by its bucket reads the request's aggregate a second time, and
    // SQLite then counts every CTE below it as read twice and writes each out (the rows of
    // the table, twice over) instead of reading them into the aggregate. They are each read
    // by one CTE (the request has one aggregate and no other node), and PostgreSQL reads a
    // CTE read once into its reader anyway: `NOT MATERIALIZED` on both.
    if !plan.output.by_time.is_empty() {
        for c in ctes
            .iter_mut()
            .filter(|c| !plan.output.by_time.iter().any(|l| l.source == c.name))
        {
            c.inline = true;
        }
    }
    for (i, n) in plan.specials.iter().enumerate() {
        match folds.iter().find(|f| f.special == i) {
            Some(f) => ctes.push(r.folded_conversion_cte(f)?),
            None => r.special_ctes(n, &mut ctes)?,
        }
    }
    if let Some(k) = plan.keys.as_ref().filter(|_| r.bucket_join().is_none()) {
        r.keys_ctes(k, &mut ctes);
    }
    let mut out = Renderer::with(ctes);
    out.push(&format!("\n-- {}\n", one_line(&plan.output.description)));
    out.append(r.select()?);
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl Renderer<'_> {
    /// `WITH` and the CTEs, each under its one-line comment.
    fn with(ctes: Vec<Cte>) -> Sql {
        let mut out = Sql::raw("WITH\n");
        for (i, cte) in ctes.into_iter().enumerate() {
            if i > 0 {
                out.push(",\n");
            }
            out.push(&format!(
                "-- {}\n{} AS {}(\n  ",
                one_line(&cte.description),
                quote(&cte.name),
                if cte.materialized {
                    "MATERIALIZED "
                } else if cte.inline {
                    "NOT MATERIALIZED "
                } else {
                    ""
                }
            ));
            out.append(cte.body);
            out.push("\n)");
        }
        out
    }

    /// The CTEs of a special node (the last one is the node's own).
    fn special_ctes(&self, n: &SpecialNode, out: &mut Vec<Cte>) -> Result<(), PlanError> {
        match n {
            SpecialNode::Conversion(x) => self.conversion_ctes(x, out),
            SpecialNode::Retention(x) => self.retention_ctes(x, out),
            SpecialNode::PeriodAverage(x) => self.period_average_ctes(x, out),
            SpecialNode::DistinctWindow(x) => self.distinct_window_ctes(x, out),
        }
    }

    /// A metric's (unrounded) value in the final SELECT.
    fn metric(&self, v: &MetricValue) -> Result<Sql, PlanError> {
        match v {
            MetricValue::Measure(m) => Ok(self.measure_value(m)),
            MetricValue::Ratio(a, b) => Ok(self.divide(self.metric(a)?, self.metric(b)?)),
            MetricValue::Derived(e) => self.derived(e),
            MetricValue::Cumulative(c) => self.cumulative_value(c),
            MetricValue::Conversion(c) => Ok(self.conversion_value(c)),
            MetricValue::Retention(x) => self.retention_value(x),
            MetricValue::PeriodAverage(x) => self.period_average_value(x),
            MetricValue::DistinctWindow(x) => Ok(self.distinct_window_value(x)),
        }
    }

    fn slot(&self, i: usize) -> Result<&DimSlot, PlanError> {
        self.plan
            .slots
            .get(i)
            .ok_or_else(|| PlanError::new(format!("no dimension slot d{i}")))
    }

    /// `"d0", "d1", …` (prefixed by an alias).
    fn slot_list(&self, prefix: Option<&str>) -> String {
        (0..self.plan.slots.len())
            .map(|i| match prefix {
                Some(p) => format!("{}.\"d{i}\"", quote(p)),
                None => format!("\"d{i}\""),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `SELECT d0.., aggs FROM from [GROUP BY d0..]`.
    fn group(&self, from: &str, aggs: &str) -> Sql {
        let slots = self.slot_list(None);
        let mut s = Sql::raw("SELECT ");
        if !slots.is_empty() {
            s.push(&slots);
            s.push(", ");
        }
        s.push(aggs);
        s.push(&format!("\n  FROM {}", quote(from)));
        if !slots.is_empty() {
            s.push(&format!("\n  GROUP BY {slots}"));
        }
        s
    }

    /// The value of slot `i` for a row of its dimension's table: the dimension's expression,
    /// bucketed (at `grain`, else the slot's granularity) for time dimensions, as the
    /// backend's native bucket key (written as text only in the final SELECT, once per
    /// group: [`Renderer::slot_text`]).
    /// A time axis is read on `rows`, the table of the row.
    fn slot_value(
        &self,
        i: usize,
        grain: Option<Granularity>,
        rows: &Table,
    ) -> Result<Sql, PlanError> {
        self.slot_bucket(i, grain, rows, false)
    }

    /// [`Renderer::slot_value`], bucketed as the backend's period value
    /// ([`Dialect::period_value`]) for nodes that write
    /// the key once per group ([`Renderer::period_key`]).
    fn slot_period(
        &self,
        i: usize,
        grain: Option<Granularity>,
        rows: &Table,
    ) -> Result<Sql, PlanError> {
        self.slot_bucket(i, grain, rows, true)
    }

    /// The key of slot `i` from its period value `v` (a column of [`Renderer::slot_period`]
    /// at the slot's granularity); other slots' values as they are.
    fn period_key(&self, i: usize, v: Sql) -> Result<Sql, PlanError> {
        let slot = self.slot(i)?;
        Ok(match slot.bucket(None) {
            Some(g) => self.d.period_key(v, g, slot.z),
            None => v,
        })
    }

    fn slot_bucket(
        &self,
        i: usize,
        grain: Option<Granularity>,
        rows: &Table,
        period: bool,
    ) -> Result<Sql, PlanError> {
        let slot = self.slot(i)?;
        let e = if slot.dimension.axis.is_empty() {
            self.expr(&slot.dimension.expr, &slot.table)?
        } else {
            let e = slot.dimension.axis_on(&rows.name).ok_or_else(|| {
                PlanError::new(format!(
                    "the time axis {} is not on table {}",
                    slot.dimension.name, rows.name
                ))
            })?;
            self.expr(e, rows)?
        };
        let st = slot.dimension.time_storage;
        Ok(match slot.bucket(grain) {
            Some(g) if period => self.d.period_value(e, st, g, slot.in_zone),
            Some(g) => self.d.time_key(e, st, g, slot.in_zone),
            None => e,
        })
    }

    /// `SELECT d0.., items FROM asof_<table> AS <table> LEFT JOIN … [extra_join] WHERE conds`.
    fn rows_from(
        &self,
        rows: &RowSource,
        extra: Vec<(Sql, &str)>,
        extra_join: Option<Sql>,
        conds: Vec<Sql>,
    ) -> Result<Sql, PlanError> {
        self.rows_moved(rows, true, extra, extra_join, conds, None)
    }

    /// [`Renderer::rows_from`], with the slots `d0..` only when `slots`.
    fn rows_with(
        &self,
        rows: &RowSource,
        slots: bool,
        extra: Vec<(Sql, &str)>,
        extra_join: Option<Sql>,
        conds: Vec<Sql>,
    ) -> Result<Sql, PlanError> {
        self.rows_moved(rows, slots, extra, extra_join, conds, None)
    }

    /// [`Renderer::rows_from`], with the compared time slot moved by `shift`: `n` periods
    /// later for an offset; for a grain-to-date value, with the enclosing period's key as
    /// column `tg`. Rows without a time value are left out. The slots `d0..` only when
    /// `slots`.
    fn rows_moved(
        &self,
        rows: &RowSource,
        slots: bool,
        extra: Vec<(Sql, &str)>,
        extra_join: Option<Sql>,
        mut conds: Vec<Sql>,
        shift: Option<&TimeShift>,
    ) -> Result<Sql, PlanError> {
        let mut s = Sql::raw("SELECT ");
        let mut items: Vec<Sql> = Vec::new();
        for i in (0..self.plan.slots.len()).filter(|_| slots) {
            let mut v = self.slot_value(i, None, &rows.table)?;
            if let Some(sh) = shift.filter(|sh| sh.slot == i) {
                conds.push(Sql::wrap("", v.clone(), " IS NOT NULL"));
                if let ShiftKind::Ahead(g, n) = sh.kind {
                    v = self.d.key_add(v, g, n, self.slot(i)?.z);
                }
            }
            items.push(Sql::wrap("", v, &format!(" AS \"d{i}\"")));
        }
        if let Some(TimeShift {
            kind: ShiftKind::ToDate(g),
            slot,
            ..
        }) = shift
        {
            items.push(Sql::wrap(
                "",
                self.slot_value(*slot, Some(*g), &rows.table)?,
                " AS \"tg\"",
            ));
        }
        for (v, name) in extra {
            items.push(Sql::wrap("", v, &format!(" AS {}", quote(name))));
        }
        for (i, it) in items.into_iter().enumerate() {
            if i > 0 {
                s.push(",\n    ");
            }
            s.append(it);
        }
        s.push(&format!(
            "\n  FROM {} AS {}",
            quote(&rows.cte),
            quote(&rows.table.name)
        ));
        for j in &rows.joins {
            s.push(&format!(
                "\n  LEFT JOIN {} AS {} ON ",
                quote(&j.to_cte),
                quote(&j.to)
            ));
            let conds: Vec<String> =
                j.on.iter()
                    .map(|(from_col, to_col)| {
                        format!(
                            "{}.{} = {}.{}",
                            quote(&j.to),
                            quote(to_col),
                            quote(&j.from),
                            quote(from_col)
                        )
                    })
                    .collect();
            s.push(&conds.join(" AND "));
        }
        if let Some(j) = extra_join {
            s.push("\n  ");
            s.append(j);
        }
        for (i, c) in conds.into_iter().enumerate() {
            s.push(if i == 0 { "\n  WHERE " } else { " AND " });
            s.append(c);
        }
        Ok(s)
    }

    /// The request's filter over the rows of `rows`, as a list of conditions (empty or
    /// one); rendered once, unless it compares a time axis, which is read on each table.
    fn request_filter(&self, rows: &Table) -> Result<Vec<Sql>, PlanError> {
        match &self.plan.filter {
            Some(f) if Self::on_axis(f) => Ok(vec![self.filter_on(f, Some(rows))?]),
            _ => Ok(self.filter.iter().cloned().collect()),
        }
    }

    /// A measure's input for one row of `table`: its expression (1 for `COUNT(*)`), and
    /// `NULL` when its filter does not hold (`with_filter`).
    fn measure_input(
        &self,
        m: &Measure,
        table: &Table,
        with_filter: bool,
    ) -> Result<Sql, PlanError> {
        let value = match &m.expr {
            Some(e) => self.expr(e, table)?,
            None => Sql::raw("1"),
        };
        Ok(match &m.filter {
            Some(f) if with_filter => {
                let mut s = Sql::raw("CASE WHEN ");
                s.append(self.expr(f, table)?);
                s.push(" THEN ");
                s.append(value);
                s.push(" END");
                s
            }
            _ => value,
        })
    }

    /// A slot's column in the final SELECT (a time slot's native bucket key): the first
    /// value of the nodes joined on their buckets ([`Renderer::bucket_join`]), else the
    /// `keys` column.
    fn slot_ref(&self, i: usize) -> Sql {
        match (self.bucket_join(), &self.plan.keys) {
            (Some(_), Some(k)) => Sql::raw(&Self::coalesced(&k.sources, i)),
            _ => Sql::raw(&format!("{}.\"d{i}\"", quote(&self.plan.output.from))),
        }
    }

    /// `COALESCE("<node>"."d<i>", …)` over `nodes` (the one column when there is one).
    fn coalesced(nodes: &[String], i: usize) -> String {
        let cols: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}.\"d{i}\"", quote(n)))
            .collect();
        match cols.as_slice() {
            [one] => one.clone(),
            _ => format!("COALESCE({})", cols.join(", ")),
        }
    }

    /// The constant of the dialect's `FULL JOIN` on time buckets
    /// ([`Dialect::bucket_join_constant`]), when the final SELECT joins the nodes so: the
    /// nodes are joined through `keys` (several, grouped by slots), every slot is a time
    /// bucket, and no node is only looked up (offsets and grain-to-date values keep `keys`).
    fn bucket_join(&self) -> Option<&'static str> {
        let k = self.plan.keys.as_ref()?;
        let buckets = self.plan.slots.iter().all(|s| s.bucket(None).is_some());
        (k.lookups.is_empty() && buckets)
            .then(|| self.d.bucket_join_constant())
            .flatten()
    }

    /// A slot's value in the response: a time slot's bucket key written as text, other
    /// slots as they are.
    fn slot_text(&self, i: usize) -> Result<Sql, PlanError> {
        let slot = self.slot(i)?;
        Ok(match slot.bucket(None) {
            Some(_) => self.d.key_text(self.slot_ref(i), slot.z),
            None => self.slot_ref(i),
        })
    }

    /// `bucket + n periods <= asOf` for slot `i` (bucket texts compare in time order).
    fn ended(&self, i: usize, g: Granularity, n: i64) -> Result<Sql, PlanError> {
        let slot = self.slot(i)?;
        let mut s = self
            .d
            .key_text(self.d.key_add(self.slot_ref(i), g, n, slot.z), slot.z);
        s.push(" <= ");
        s.param(crate::plan::Param::AsOfText(slot.as_of));
        Ok(s)
    }

    /// `a / b` as a float division, null when `b` is 0.
    fn divide(&self, a: Sql, b: Sql) -> Sql {
        let mut s = Sql::raw("(");
        s.append(self.d.float(a));
        s.push(" / NULLIF(");
        s.append(self.d.float(b));
        s.push(", 0))");
        s
    }

    /// `"<cte>"."<column>"`.
    fn node_col(cte: &str, column: &str) -> Sql {
        Sql::raw(&format!("{}.{}", quote(cte), quote(column)))
    }
}
