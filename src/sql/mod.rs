//! From a [`Plan`] to one parameterised SQL statement per dialect.
//!
//! SQL is assembled from [`Sql`] fragments: text with a marker where each parameter goes,
//! and the parameters in order. Only validated identifiers (model, table, column names) and
//! tally's own constants reach the text; every value from a model file or a request is a
//! [`Param`], bound when the statement runs. The [`Dialect`] trait holds what differs between
//! PostgreSQL and SQLite; [`lexer`] is the one place that reads SQL text (the SQL files of SQL
//! tables).

mod dialect;
pub mod lexer;

pub use crate::plan::{AsOfText, BindAs, Bindings, Param};
pub use dialect::{Dialect, Postgres, Sqlite};

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::plan::{
    AggregateNode, OutType, OutputValue, Plan, PlannedJoin, SpecialKind, SpecialNode,
};
use crate::query::{Filter, FilterOp, QuerySpec};
use crate::semantic::expr::{BinOp, Func};
use crate::semantic::{
    Agg, AsOf, ConversionCalc, DimType, Expr, ExprType, Granularity, MetricKind, Model,
    RetentionEvent, Shift, SqlConst, Table, TableSource, TimeStorage,
};

/// Where a parameter marker sits in [`Sql::text`].
const MARK: char = '\u{1}';

/// A fragment of SQL text and its parameters, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    /// Text without parameters.
    pub fn raw(s: &str) -> Sql {
        Sql {
            text: s.to_owned(),
            params: Vec::new(),
        }
    }
    /// `pre` + `x` + `post`.
    pub fn wrap(pre: &str, x: Sql, post: &str) -> Sql {
        let mut s = Sql::raw(pre);
        s.append(x);
        s.push(post);
        s
    }
    /// Appends text.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    /// Appends a parameter.
    pub fn param(&mut self, p: Param) {
        self.text.push(MARK);
        self.params.push(p);
    }
    /// Appends another fragment.
    pub fn append(&mut self, other: Sql) {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
    }
    /// A quoted identifier (names are validated identifiers; quotes are doubled anyway).
    pub fn ident(name: &str) -> Sql {
        Sql::raw(&quote(name))
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn col(alias: &str, name: &str) -> Sql {
    Sql::raw(&format!("{}.{}", quote(alias), quote(name)))
}

/// A rendered statement: SQL text with the dialect's placeholders, and what each binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The statement.
    pub sql: String,
    /// One per placeholder, in order.
    pub params: Vec<Param>,
    /// The response columns: key and type.
    pub columns: Vec<(String, OutType)>,
    /// The tables joined (for `explain`).
    pub join_path: Vec<String>,
    /// Whether the statement embeds a SQL table (a model's own query file). Such files can
    /// hold whole pipelines, or branches that never run, which PostgreSQL's JIT compiles
    /// anyway: [`crate::exec`] runs these statements with JIT off.
    pub embeds_sql_tables: bool,
}

impl Rendered {
    /// The values to bind for a request (see [`Rendered::bind_with`]).
    pub fn bind(&self, spec: &QuerySpec) -> Vec<Value> {
        self.bind_with(&Bindings::of(spec))
    }

    /// The values to bind for a request of the statement's shape, one per placeholder.
    pub fn bind_with(&self, b: &Bindings<'_>) -> Vec<Value> {
        crate::plan::bind(&self.params, b)
    }
}

/// The value of a bound parameter as JSON (for `explain`).
pub fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(Some(s)) => J::String(s.clone()),
        Value::BigInt(Some(n)) => J::from(*n),
        Value::Double(Some(n)) => J::from(*n),
        Value::Bool(Some(b)) => J::Bool(*b),
        Value::ChronoDateTimeUtc(Some(t)) => {
            J::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        Value::ChronoDate(Some(d)) => J::String(d.to_string()),
        _ => J::Null,
    }
}

/// Renders a plan for `dialect`.
pub fn render(model: &Model, spec: &QuerySpec, plan: &Plan, dialect: &dyn Dialect) -> Rendered {
    let r = Renderer {
        model,
        spec,
        plan,
        d: dialect,
    };
    let sql = r.statement();
    // Markers → placeholders.
    let mut text = String::with_capacity(sql.text.len() + 16);
    let mut n = 0;
    for c in sql.text.chars() {
        if c == MARK {
            n += 1;
            text.push_str(&dialect.placeholder(n));
        } else {
            text.push(c);
        }
    }
    Rendered {
        sql: text,
        params: sql.params,
        columns: plan.output.iter().map(|c| (c.key.clone(), c.ty)).collect(),
        join_path: plan.join_path.clone(),
        embeds_sql_tables: model.tables.iter().any(|t| {
            matches!(t.source, TableSource::Sql { .. })
                && plan.join_path.iter().any(|j| j == &t.name)
        }),
    }
}

struct Renderer<'a> {
    model: &'a Model,
    spec: &'a QuerySpec,
    plan: &'a Plan,
    d: &'a dyn Dialect,
}

impl Renderer<'_> {
    fn statement(&self) -> Sql {
        let mut ctes: Vec<(String, String, Sql)> = Vec::new();
        for cut in &self.plan.cuts {
            if let Some(t) = self.model.table(&cut.table) {
                ctes.push((cut.cte.clone(), cut.description.clone(), self.cut(t)));
            }
        }
        for a in &self.plan.aggregates {
            ctes.push((
                a.rows_cte.clone(),
                format!(
                    "rows of {} with their dimension values and measure inputs",
                    a.table
                ),
                self.rows(a),
            ));
            ctes.push((a.agg_cte.clone(), a.description.clone(), self.aggregate(a)));
            for i in &a.window_medians {
                ctes.push((
                    median_cte(a, *i),
                    format!(
                        "median of {} by window functions (middle row, or the mean of the two middle rows)",
                        a.measures.get(*i).map(String::as_str).unwrap_or("")
                    ),
                    self.window_median(a, *i),
                ));
            }
        }
        for n in &self.plan.specials {
            self.special_ctes(n, &mut ctes);
        }
        let sources = self.sources();
        if sources.len() > 1 && !self.plan.slots.is_empty() {
            let mut keys = Sql::default();
            for (i, cte) in sources.iter().enumerate() {
                if i > 0 {
                    keys.push("\n  UNION\n  ");
                }
                keys.push("SELECT ");
                keys.push(&self.slot_list(None));
                keys.push(" FROM ");
                keys.push(&quote(cte));
            }
            ctes.push((
                "keys".to_owned(),
                "every combination of dimension values that any table has".to_owned(),
                keys,
            ));
        }
        let mut out = Sql::raw("WITH\n");
        for (i, (name, desc, body)) in ctes.into_iter().enumerate() {
            if i > 0 {
                out.push(",\n");
            }
            out.push(&format!(
                "-- {}\n{} AS (\n  ",
                one_line(&desc),
                quote(&name)
            ));
            out.append(body);
            out.push("\n)");
        }
        out.push("\n-- the response: metrics from the per-table aggregates, joined on the dimension values\n");
        out.append(self.select());
        out
    }

    fn source(&self, t: &Table) -> Sql {
        match &t.source {
            TableSource::Physical(p) => {
                Sql::raw(&format!("{}.{}", quote(&self.model.namespace), quote(p)))
            }
            TableSource::Sql {
                postgres,
                sqlite,
                params,
            } => {
                let text = self.d.sql_text(postgres, sqlite);
                let mut s = Sql::raw("(\n");
                s.append(sql_file(text, params, t.as_of_shift));
                s.push("\n  )");
                s
            }
        }
    }

    fn cut(&self, t: &Table) -> Sql {
        let src = self.source(t);
        let mut conds: Vec<Sql> = Vec::new();
        let le = |c: &str, p: Param| {
            let mut s = Sql::ident(c);
            s.push(" <= ");
            s.param(p);
            s
        };
        let mut ranked: Option<(Vec<String>, String)> = None;
        let sh = t.as_of_shift;
        match &t.as_of {
            AsOf::Event { time } => conds.push(le(time, Param::AsOf(sh))),
            AsOf::PartitionTs { ts, time, key } => {
                conds.push(le(ts, Param::AsOfPartitionTs(sh)));
                if let Some(time) = time {
                    conds.push(le(time, Param::AsOf(sh)));
                }
                if !key.is_empty() {
                    ranked = Some((key.clone(), ts.clone()));
                }
            }
            AsOf::PartitionDs { ds, time } => {
                conds.push(le(ds, Param::AsOfDate(sh)));
                if let Some(time) = time {
                    conds.push(le(time, Param::AsOf(sh)));
                }
            }
            AsOf::Record { time, created } => {
                conds.push(le(time, Param::AsOf(sh)));
                conds.push(le(created, Param::AsOf(sh)));
            }
            AsOf::Type2 { key, updated } => {
                conds.push(le(updated, Param::AsOf(sh)));
                ranked = Some((key.clone(), updated.clone()));
            }
            AsOf::Static | AsOf::Sql => {}
        }
        if let Some(cf) = &t.conversion_filter {
            let mut s = Sql::ident(&cf.column);
            s.push(" = ");
            s.param(Param::ConversionFilter(cf.default.clone()));
            conds.push(s);
        }
        let where_clause = |conds: Vec<Sql>| {
            let mut s = Sql::default();
            for (i, c) in conds.into_iter().enumerate() {
                s.push(if i == 0 { " WHERE " } else { " AND " });
                s.append(c);
            }
            s
        };
        match ranked {
            None => {
                let mut s = Sql::raw("SELECT * FROM ");
                s.append(src);
                s.push(" AS \"tally_s\"");
                s.append(where_clause(conds));
                s
            }
            Some((key, by)) => {
                let keys: Vec<String> = key.iter().map(|k| quote(k)).collect();
                let mut s = Sql::raw(
                    "SELECT * FROM (SELECT \"tally_s\".*, ROW_NUMBER() OVER (PARTITION BY ",
                );
                s.push(&keys.join(", "));
                s.push(&format!(
                    " ORDER BY {} DESC) AS \"tally_rn\" FROM ",
                    quote(&by)
                ));
                s.append(src);
                s.push(" AS \"tally_s\"");
                s.append(where_clause(conds));
                s.push(") AS \"tally_v\" WHERE \"tally_rn\" = 1");
                s
            }
        }
    }

    fn slot_list(&self, prefix: Option<&str>) -> String {
        (0..self.plan.slots.len())
            .map(|i| match prefix {
                Some(p) => format!("{}.\"d{i}\"", quote(p)),
                None => format!("\"d{i}\""),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether bucket texts of slot `i` end in `Z` (instants and dates in UTC), rather than
    /// being local wall-clock text (local-time columns, or instants with `timezone`).
    fn slot_z(&self, i: usize) -> bool {
        let Some(dim) = self
            .plan
            .slots
            .get(i)
            .and_then(|s| self.model.dimension(&s.dimension))
        else {
            return true;
        };
        match dim.time_storage {
            TimeStorage::Local => false,
            TimeStorage::Instant => self.spec.timezone.is_none(),
            TimeStorage::Date => true,
        }
    }

    /// `asOf` written like the bucket texts of slot `i`.
    fn slot_as_of(&self, i: usize) -> Param {
        let local = self
            .plan
            .slots
            .get(i)
            .and_then(|s| self.model.dimension(&s.dimension))
            .is_some_and(|d| d.time_storage == TimeStorage::Local);
        Param::AsOfText(if local {
            AsOfText::UtcDigits
        } else if self.slot_z(i) {
            AsOfText::Utc
        } else {
            AsOfText::Zone
        })
    }

    /// The value of slot `i` for a row of its dimension's table: the dimension's expression,
    /// bucketed (at `grain`, else the slot's granularity) for time dimensions.
    fn slot_value(&self, i: usize, grain: Option<Granularity>) -> Option<Sql> {
        let slot = self.plan.slots.get(i)?;
        let dim = self.model.dimension(&slot.dimension)?;
        let e = self.expr(&dim.expr, &dim.table);
        Some(match grain.or(slot.granularity) {
            Some(g) if dim.dim_type == DimType::Time => {
                let tz = self.spec.timezone.is_some() && dim.time_storage == TimeStorage::Instant;
                self.d.time_bucket(e, dim.time_storage, g, tz)
            }
            _ => e,
        })
    }

    /// `SELECT d0.., items FROM asof_<table> AS <table> LEFT JOIN … [extra_join] WHERE conds`.
    fn rows_from(
        &self,
        table: &str,
        joins: &[PlannedJoin],
        extra: Vec<(Sql, &str)>,
        extra_join: Option<Sql>,
        conds: Vec<Sql>,
    ) -> Sql {
        let mut s = Sql::raw("SELECT ");
        let mut items: Vec<Sql> = Vec::new();
        for i in 0..self.plan.slots.len() {
            if let Some(v) = self.slot_value(i, None) {
                items.push(Sql::wrap("", v, &format!(" AS \"d{i}\"")));
            }
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
            quote(&format!("asof_{table}")),
            quote(table)
        ));
        for j in joins {
            let Some(join) = self.model.joins.get(j.step.join) else {
                continue;
            };
            s.push(&format!(
                "\n  LEFT JOIN {} AS {} ON ",
                quote(&format!("asof_{}", j.to)),
                quote(&j.to)
            ));
            let conds: Vec<String> = join
                .on
                .iter()
                .map(|(fc, tc)| {
                    let (from_col, to_col) = if j.step.reversed { (tc, fc) } else { (fc, tc) };
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
        s
    }

    /// A measure's input for one row: its expression (1 for `COUNT(*)`), and `NULL` when its
    /// filter does not hold.
    fn measure_input(&self, m: &crate::semantic::Measure, with_filter: bool) -> Sql {
        let value = match &m.expr {
            Some(e) => self.expr(e, &m.table),
            None => Sql::raw("1"),
        };
        match &m.filter {
            Some(f) if with_filter => {
                let mut s = Sql::raw("CASE WHEN ");
                s.append(self.expr(f, &m.table));
                s.push(" THEN ");
                s.append(value);
                s.push(" END");
                s
            }
            _ => value,
        }
    }

    fn rows(&self, a: &AggregateNode) -> Sql {
        let mut extra = Vec::new();
        let names: Vec<String> = (0..a.measures.len()).map(|i| format!("v{i}")).collect();
        for (i, m) in a.measures.iter().enumerate() {
            let Some(ms) = self.model.measure(m) else {
                continue;
            };
            extra.push((self.measure_input(ms, true), names[i].as_str()));
        }
        let conds = self.spec.filter.iter().map(|f| self.filter(f)).collect();
        self.rows_from(&a.table, &a.joins, extra, None, conds)
    }

    fn aggregate(&self, a: &AggregateNode) -> Sql {
        let slots = self.slot_list(None);
        let mut s = Sql::raw("SELECT ");
        if !slots.is_empty() {
            s.push(&slots);
            s.push(", ");
        }
        s.push("COUNT(*) AS \"n\"");
        for (i, m) in a.measures.iter().enumerate() {
            if a.window_medians.contains(&i) {
                continue;
            }
            let Some(ms) = self.model.measure(m) else {
                continue;
            };
            let v = Sql::raw(&format!("\"v{i}\""));
            let agg = match ms.agg {
                Agg::Count => Sql::wrap("COUNT(", v, ")"),
                Agg::CountDistinct => Sql::wrap("COUNT(DISTINCT ", v, ")"),
                Agg::Sum => Sql::wrap("SUM(", v, ")"),
                Agg::Avg => Sql::wrap("AVG(", v, ")"),
                Agg::Min => Sql::wrap("MIN(", v, ")"),
                Agg::Max => Sql::wrap("MAX(", v, ")"),
                Agg::Median => self
                    .d
                    .median(v.clone())
                    .unwrap_or_else(|| Sql::wrap("AVG(", v, ")")),
            };
            s.push(", ");
            s.append(agg);
            s.push(&format!(" AS \"m{i}\""));
        }
        s.push(&format!("\n  FROM {}", quote(&a.rows_cte)));
        if !slots.is_empty() {
            s.push("\n  GROUP BY ");
            s.push(&slots);
        }
        s
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

    /// The column holding a measure's aggregate in the final SELECT.
    fn measure_ref(&self, measure: &str) -> Sql {
        for a in &self.plan.aggregates {
            if let Some(i) = a.measures.iter().position(|m| m == measure) {
                if a.window_medians.contains(&i) {
                    return Sql::raw(&format!("{}.\"m\"", quote(&median_cte(a, i))));
                }
                return Sql::raw(&format!("{}.\"m{i}\"", quote(&a.agg_cte)));
            }
        }
        Sql::raw("NULL")
    }

    /// The CTEs the final SELECT joins on the slot values: the per-table aggregates, then
    /// the special nodes.
    fn sources(&self) -> Vec<String> {
        self.plan
            .aggregates
            .iter()
            .map(|a| a.agg_cte.clone())
            .chain(self.plan.specials.iter().map(|n| n.cte.clone()))
            .collect()
    }

    /// The CTE the final SELECT starts from (`keys` when several sources have slots).
    fn base(&self) -> String {
        let sources = self.sources();
        if sources.len() > 1 && !self.plan.slots.is_empty() {
            "keys".to_owned()
        } else {
            sources.into_iter().next().unwrap_or_default()
        }
    }

    fn slot_ref(&self, i: usize) -> Sql {
        Sql::raw(&format!("{}.\"d{i}\"", quote(&self.base())))
    }

    /// The one slot of a time dimension (checked by the query).
    fn time_slot(&self, dimension: &str) -> (usize, Granularity) {
        self.plan
            .slots
            .iter()
            .enumerate()
            .find(|(_, s)| s.dimension == dimension)
            .map(|(i, s)| (i, s.granularity.unwrap_or(Granularity::Day)))
            .unwrap_or((0, Granularity::Day))
    }

    /// `bucket + n periods <= asOf` for slot `i` (bucket texts compare in time order).
    fn ended(&self, i: usize, g: Granularity, n: i64) -> Sql {
        let mut s = self.d.bucket_add(self.slot_ref(i), g, n, self.slot_z(i));
        s.push(" <= ");
        s.param(self.slot_as_of(i));
        s
    }

    fn special_col(n: &str, col: &str) -> Sql {
        Sql::raw(&format!("{}.{}", quote(n), quote(col)))
    }

    /// The CTEs of a special node (the last one is `n.cte`).
    fn special_ctes(&self, n: &SpecialNode, out: &mut Vec<(String, String, Sql)>) {
        let group = |from: &str, aggs: &str| -> Sql {
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
        };
        let request_filter: Vec<Sql> = self.spec.filter.iter().map(|f| self.filter(f)).collect();
        match &n.kind {
            SpecialKind::Conversion { metric } => {
                let Some(MetricKind::Conversion(c)) = self.model.metric(metric).map(|m| &m.kind)
                else {
                    return;
                };
                let (Some(base), Some(conv)) = (
                    self.model.measure(&c.base),
                    self.model.measure(&c.conversion),
                ) else {
                    return;
                };
                // the conversion events: distinct values of the matched columns (and times)
                let hits_cte = format!("{}_hits", n.cte);
                let mut hits = Sql::raw("SELECT DISTINCT ");
                let mut cols: Vec<String> =
                    c.on.iter()
                        .enumerate()
                        .map(|(k, (_, cc))| format!("\"tally_c\".{} AS \"k{k}\"", quote(cc)))
                        .collect();
                if let Some(w) = &c.window {
                    cols.push(format!(
                        "\"tally_c\".{} AS \"t\"",
                        quote(&w.conversion_time)
                    ));
                }
                hits.push(&cols.join(", "));
                hits.push(&format!(
                    "\n  FROM {} AS \"tally_c\"",
                    quote(&format!("asof_{}", conv.table))
                ));
                let mut conds: Vec<Sql> = Vec::new();
                if let Some(f) = &conv.filter {
                    conds.push(self.expr_at(f, &conv.table, "tally_c"));
                }
                let variant = self
                    .spec
                    .conversion_filter
                    .clone()
                    .or_else(|| self.model.default_variant.clone());
                if let Some((_, e)) = c.variants.iter().find(|(v, _)| Some(v) == variant.as_ref()) {
                    conds.push(self.expr_at(e, &conv.table, "tally_c"));
                }
                for (i, cnd) in conds.into_iter().enumerate() {
                    hits.push(if i == 0 { "\n  WHERE " } else { " AND " });
                    hits.append(cnd);
                }
                out.push((
                    hits_cte.clone(),
                    format!(
                        "conversion events of {metric}: {} rows{}",
                        conv.table,
                        variant
                            .as_ref()
                            .filter(|_| !c.variants.is_empty())
                            .map(|v| format!(" of variant {v}"))
                            .unwrap_or_default()
                    ),
                    hits,
                ));
                // the base events, each marked when a conversion event matches
                let mut join = Sql::raw(&format!(
                    "LEFT JOIN {} AS \"tally_h\" ON ",
                    quote(&hits_cte)
                ));
                let on: Vec<String> =
                    c.on.iter()
                        .enumerate()
                        .map(|(k, (bc, _))| {
                            format!(
                                "\"tally_h\".\"k{k}\" = {}.{}",
                                quote(&base.table),
                                quote(bc)
                            )
                        })
                        .collect();
                join.push(&on.join(" AND "));
                if let Some(w) = &c.window {
                    let secs = self.d.seconds_between(
                        col(&base.table, &w.base_time),
                        Sql::raw("\"tally_h\".\"t\""),
                        TimeStorage::Instant,
                    );
                    join.push(" AND ");
                    join.append(secs.clone());
                    join.push(" >= 0 AND ");
                    join.append(secs);
                    join.push(" <= ");
                    join.param(Param::Value(Value::BigInt(Some(w.seconds))));
                }
                let mut conds = request_filter;
                if let Some(f) = &base.filter {
                    conds.push(self.expr(f, &base.table));
                }
                let x = Sql::raw("CASE WHEN \"tally_h\".\"k0\" IS NOT NULL THEN 1 ELSE 0 END");
                let rows = self.rows_from(
                    &n.table,
                    &n.joins,
                    vec![(self.measure_input(base, false), "v"), (x, "x")],
                    Some(join),
                    conds,
                );
                let rows_cte = format!("{}_rows", n.cte);
                out.push((
                    rows_cte.clone(),
                    format!(
                        "base events of {metric} ({} rows), marked x = 1 when they convert",
                        base.table
                    ),
                    rows,
                ));
                let agg = |v: &str| match base.agg {
                    Agg::CountDistinct => format!("COUNT(DISTINCT {v})"),
                    Agg::Sum => format!("SUM({v})"),
                    _ => format!("COUNT({v})"),
                };
                out.push((
                    n.cte.clone(),
                    n.description.clone(),
                    group(
                        &rows_cte,
                        &format!(
                            "{} AS \"base\", {} AS \"conv\"",
                            agg("\"v\""),
                            agg("CASE WHEN \"x\" = 1 THEN \"v\" END")
                        ),
                    ),
                ));
            }
            SpecialKind::Retention {
                measure,
                time_dimension,
            } => {
                let Some(ms) = self.model.measure(measure) else {
                    return;
                };
                let (t, g) = self.time_slot(time_dimension);
                let f = match request_filter.into_iter().next() {
                    Some(f) => Sql::wrap("CASE WHEN ", f, " THEN 1 ELSE 0 END"),
                    None => Sql::raw("1"),
                };
                let e = self.measure_input(ms, false);
                let mut conds = vec![Sql::wrap("", e.clone(), " IS NOT NULL")];
                if let Some(flt) = &ms.filter {
                    conds.push(self.expr(flt, &ms.table));
                }
                let rows_cte = format!("{}_rows", n.cte);
                out.push((
                    rows_cte.clone(),
                    format!(
                        "activity of {measure}: every row with its entity e and f = 1 when the request's filter holds (the neighbouring periods see all activity)"
                    ),
                    self.rows_from(&n.table, &n.joins, vec![(e, "e"), (f, "f")], None, conds),
                ));
                let slots = self.slot_list(None);
                let periods_cte = format!("{}_periods", n.cte);
                out.push((
                    periods_cte.clone(),
                    "the periods each entity is active in (per combination of the other dimensions)"
                        .to_owned(),
                    Sql::raw(&format!(
                        "SELECT {slots}, \"e\", MAX(\"f\") AS \"f\"\n  FROM {}\n  WHERE \"d{t}\" IS NOT NULL\n  GROUP BY {slots}, \"e\"",
                        quote(&rows_cte)
                    )),
                ));
                let mut part: Vec<String> = (0..self.plan.slots.len())
                    .filter(|i| *i != t)
                    .map(|i| format!("\"d{i}\""))
                    .collect();
                part.push("\"e\"".to_owned());
                let collate = self
                    .d
                    .byte_collation()
                    .map(|c| format!(" COLLATE {c}"))
                    .unwrap_or_default();
                let over = format!(
                    "OVER (PARTITION BY {} ORDER BY \"d{t}\"{collate})",
                    part.join(", ")
                );
                let flags_cte = format!("{}_flags", n.cte);
                out.push((
                    flags_cte.clone(),
                    "each entity's previous and next active period".to_owned(),
                    Sql::raw(&format!(
                        "SELECT {slots}, \"f\", LAG(\"d{t}\") {over} AS \"prev\", LEAD(\"d{t}\") {over} AS \"next\"\n  FROM {}",
                        quote(&periods_cte)
                    )),
                ));
                let z = self.slot_z(t);
                let next = self.d.bucket_add(Sql::raw(&format!("\"d{t}\"")), g, 1, z);
                let prev = self.d.bucket_add(Sql::raw(&format!("\"d{t}\"")), g, -1, z);
                let mut s = Sql::raw(&format!("SELECT {slots}, SUM(\"f\") AS \"active\","));
                s.push("\n    SUM(CASE WHEN \"f\" = 1 AND (\"next\" IS NULL OR \"next\" <> ");
                s.append(next.clone());
                s.push(") THEN 1 ELSE 0 END) AS \"churned\",\n    SUM(CASE WHEN \"f\" = 1 AND \"next\" = ");
                s.append(next);
                s.push(" THEN 1 ELSE 0 END) AS \"retained\",\n    SUM(CASE WHEN \"f\" = 1 AND \"prev\" <> ");
                s.append(prev);
                s.push(" THEN 1 ELSE 0 END) AS \"resurrected\",\n    SUM(CASE WHEN \"f\" = 1 AND \"prev\" IS NULL THEN 1 ELSE 0 END) AS \"new\"");
                s.push(&format!(
                    "\n  FROM {}\n  GROUP BY {slots}\n  HAVING SUM(\"f\") > 0",
                    quote(&flags_cte)
                ));
                out.push((n.cte.clone(), n.description.clone(), s));
            }
            SpecialKind::PeriodAverage { metric } => {
                let Some(MetricKind::PeriodAverage {
                    measure,
                    time_dimension,
                    per,
                }) = self.model.metric(metric).map(|m| &m.kind)
                else {
                    return;
                };
                let Some(ms) = self.model.measure(measure) else {
                    return;
                };
                let (t, _) = self.time_slot(time_dimension);
                let Some(sub) = self.slot_value(t, Some(*per)) else {
                    return;
                };
                let rows_cte = format!("{}_rows", n.cte);
                out.push((
                    rows_cte.clone(),
                    format!("rows of {} with their {} (s)", ms.table, per.as_str()),
                    self.rows_from(
                        &n.table,
                        &n.joins,
                        vec![(sub, "s"), (self.measure_input(ms, true), "v")],
                        None,
                        request_filter,
                    ),
                ));
                let agg = match ms.agg {
                    Agg::CountDistinct => "COUNT(DISTINCT \"v\")",
                    Agg::Sum => "SUM(\"v\")",
                    _ => "COUNT(\"v\")",
                };
                let slots = self.slot_list(None);
                let sub_cte = format!("{}_sub", n.cte);
                out.push((
                    sub_cte.clone(),
                    format!("{measure} per {}", per.as_str()),
                    Sql::raw(&format!(
                        "SELECT {slots}, \"s\", {agg} AS \"m\"\n  FROM {}\n  GROUP BY {slots}, \"s\"",
                        quote(&rows_cte)
                    )),
                ));
                out.push((
                    n.cte.clone(),
                    n.description.clone(),
                    group(&sub_cte, "SUM(\"m\") AS \"total\""),
                ));
            }
            SpecialKind::DistinctWindow { metric } => {
                let Some(MetricKind::Cumulative {
                    measure,
                    time_dimension,
                    window_seconds,
                }) = self.model.metric(metric).map(|m| &m.kind)
                else {
                    return;
                };
                let Some(ms) = self.model.measure(measure) else {
                    return;
                };
                let (t, _) = self.time_slot(time_dimension);
                let rows_cte = format!("{}_rows", n.cte);
                out.push((
                    rows_cte.clone(),
                    format!("rows of {} with their values of {measure}", ms.table),
                    self.rows_from(
                        &n.table,
                        &n.joins,
                        vec![(self.measure_input(ms, true), "v")],
                        None,
                        request_filter,
                    ),
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
                if let Some(w) = window_seconds {
                    s.push(&format!(
                        " AND {} > {} - ",
                        epoch("tally_r"),
                        epoch("tally_b")
                    ));
                    s.param(Param::Value(Value::BigInt(Some(*w))));
                }
                s.push(&format!("\n  GROUP BY {bslots}"));
                out.push((n.cte.clone(), n.description.clone(), s));
            }
        }
    }

    fn measure_value(&self, measure: &str) -> Sql {
        let r = self.measure_ref(measure);
        match self.model.measure(measure).map(|m| m.agg) {
            Some(Agg::Count | Agg::CountDistinct | Agg::Sum) => Sql::wrap("COALESCE(", r, ", 0)"),
            _ => r,
        }
    }

    /// A metric's (unrounded) value in the final SELECT.
    fn metric(&self, name: &str, depth: usize) -> Sql {
        let Some(m) = self.model.metric(name) else {
            return Sql::raw("NULL");
        };
        if depth > 32 {
            return Sql::raw("NULL");
        }
        match &m.kind {
            MetricKind::Simple { measure } => self.measure_value(measure),
            MetricKind::Ratio {
                numerator,
                denominator,
            } => self.divide(
                self.metric(numerator, depth + 1),
                self.metric(denominator, depth + 1),
            ),
            MetricKind::Derived { expr } => self.derived(expr, depth),
            MetricKind::Conversion(c) => {
                let cte = format!("conv_{name}");
                let conv = Sql::wrap("COALESCE(", Self::special_col(&cte, "conv"), ", 0)");
                match c.calculation {
                    ConversionCalc::Rate => self.divide(conv, Self::special_col(&cte, "base")),
                    ConversionCalc::Conversions => conv,
                }
            }
            MetricKind::Retention {
                measure,
                time_dimension,
                event,
                rate,
            } => {
                let cte = format!("ret_{measure}");
                let count = Sql::wrap("COALESCE(", Self::special_col(&cte, event.as_str()), ", 0)");
                let v = if *rate {
                    self.divide(
                        count,
                        Self::special_col(&cte, RetentionEvent::Active.as_str()),
                    )
                } else {
                    count
                };
                if event.needs_next() {
                    let (t, g) = self.time_slot(time_dimension);
                    let mut s = Sql::raw("CASE WHEN ");
                    s.append(self.ended(t, g, 2));
                    s.push(" THEN ");
                    s.append(v);
                    s.push(" END");
                    s
                } else {
                    v
                }
            }
            MetricKind::PeriodAverage {
                time_dimension,
                per,
                ..
            } => {
                let cte = format!("pavg_{name}");
                let total = Sql::wrap("COALESCE(", Self::special_col(&cte, "total"), ", 0)");
                let (t, g) = self.time_slot(time_dimension);
                let per_s = per.fixed_seconds().unwrap_or(86_400);
                let b = self.slot_ref(t);
                let z = self.slot_z(t);
                let end = self.d.bucket_add(b.clone(), g, 1, z);
                let mut as_of = Sql::default();
                as_of.param(self.slot_as_of(t));
                // sub-periods of the bucket that have started as of asOf
                let mut started = Sql::raw("CASE WHEN ");
                started.append(self.ended(t, g, 1));
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
                self.divide(total, self.d.greatest(started, Sql::raw("1")))
            }
            MetricKind::Cumulative { .. }
                if self.plan.specials.iter().any(|n| {
                    n.kind
                        == SpecialKind::DistinctWindow {
                            metric: name.to_owned(),
                        }
                }) =>
            {
                Sql::wrap(
                    "COALESCE(",
                    Self::special_col(&format!("dwin_{name}"), "m"),
                    ", 0)",
                )
            }
            MetricKind::Cumulative {
                measure,
                time_dimension,
                window_seconds,
            } => {
                let time_slot = self
                    .plan
                    .slots
                    .iter()
                    .position(|s| s.dimension == *time_dimension)
                    .unwrap_or(0);
                let others: Vec<String> = (0..self.plan.slots.len())
                    .filter(|i| *i != time_slot)
                    .map(|i| self.slot_ref(i).text)
                    .collect();
                let mut s = Sql::raw("SUM(");
                s.append(self.measure_value(measure));
                s.push(") OVER (");
                if !others.is_empty() {
                    s.push(&format!("PARTITION BY {} ", others.join(", ")));
                }
                match window_seconds {
                    None => {
                        s.push("ORDER BY ");
                        s.append(self.slot_ref(time_slot));
                        s.push(" ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)");
                    }
                    Some(w) => {
                        let grain = self
                            .plan
                            .slots
                            .get(time_slot)
                            .and_then(|s| s.granularity)
                            .and_then(|g| g.fixed_seconds())
                            .unwrap_or(0);
                        s.push("ORDER BY ");
                        s.append(self.d.bucket_epoch(self.slot_ref(time_slot)));
                        s.push(" RANGE BETWEEN ");
                        s.param(Param::Value(Value::BigInt(Some((w - grain).max(0)))));
                        s.push(" PRECEDING AND CURRENT ROW)");
                    }
                }
                s
            }
        }
    }

    fn divide(&self, a: Sql, b: Sql) -> Sql {
        let mut s = Sql::raw("(");
        s.append(self.d.float(a));
        s.push(" / NULLIF(");
        s.append(self.d.float(b));
        s.push(", 0))");
        s
    }

    fn derived(&self, e: &Expr, depth: usize) -> Sql {
        match e {
            Expr::Column(m) => Sql::wrap("(", self.metric(m, depth + 1), ")"),
            Expr::Int(n) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::BigInt(Some(*n))));
                s
            }
            Expr::Float(n) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::Double(Some(*n))));
                s
            }
            Expr::Neg(a) => Sql::wrap("(-", self.derived(a, depth), ")"),
            Expr::Binary(BinOp::Div, a, b) => {
                self.divide(self.derived(a, depth), self.derived(b, depth))
            }
            Expr::Binary(op, a, b) => {
                let mut s = Sql::raw("(");
                s.append(self.derived(a, depth));
                s.push(&format!(" {} ", op.sql()));
                s.append(self.derived(b, depth));
                s.push(")");
                s
            }
            _ => Sql::raw("NULL"),
        }
    }

    fn select(&self) -> Sql {
        let mut inner = Sql::raw("SELECT ");
        for (i, c) in self.plan.output.iter().enumerate() {
            if i > 0 {
                inner.push(",\n    ");
            }
            let v = match &c.value {
                OutputValue::Slot(s) => {
                    let r = self.slot_ref(*s);
                    match c.ty {
                        OutType::Float(_) => self.d.float(r),
                        OutType::Bool => self.d.bool_int(r),
                        _ => r,
                    }
                }
                OutputValue::Metric(m) => {
                    // Unrounded: exec rounds every backend's double the same way.
                    let v = self.metric(m, 0);
                    match c.ty {
                        OutType::Int => self.d.int(v),
                        _ => self.d.float(v),
                    }
                }
                OutputValue::Complete => {
                    let mut conds: Vec<Sql> = Vec::new();
                    for (i, slot) in self.plan.slots.iter().enumerate() {
                        if let Some(g) = slot.granularity
                            && self
                                .model
                                .dimension(&slot.dimension)
                                .is_some_and(|d| d.dim_type == DimType::Time)
                        {
                            conds.push(self.ended(i, g, 1));
                        }
                    }
                    if conds.is_empty() {
                        self.d.int(Sql::raw("1"))
                    } else {
                        let mut s = Sql::raw("CASE WHEN ");
                        for (i, cnd) in conds.into_iter().enumerate() {
                            if i > 0 {
                                s.push(" AND ");
                            }
                            s.append(cnd);
                        }
                        s.push(" THEN 1 ELSE 0 END");
                        self.d.int(s)
                    }
                }
            };
            inner.append(v);
            inner.push(&format!(" AS \"c{i}\""));
        }
        // FROM
        let aggs = &self.plan.aggregates;
        let slots = self.plan.slots.len();
        let on = |left: &str, right: &str| -> String {
            if slots == 0 {
                return String::new();
            }
            let conds: Vec<String> = (0..slots)
                .map(|i| {
                    format!(
                        "{}.\"d{i}\" {} {}.\"d{i}\"",
                        quote(right),
                        self.d.null_safe_eq(),
                        quote(left)
                    )
                })
                .collect();
            format!(" ON {}", conds.join(" AND "))
        };
        let join_kw = if slots == 0 {
            "CROSS JOIN"
        } else {
            "LEFT JOIN"
        };
        let base = self.base();
        inner.push(&format!("\n  FROM {}", quote(&base)));
        for (ai, a) in aggs.iter().enumerate() {
            if a.agg_cte != base {
                inner.push(&format!(
                    "\n  {join_kw} {}{}",
                    quote(&a.agg_cte),
                    on(&base, &a.agg_cte)
                ));
            }
            let _ = ai;
            for i in &a.window_medians {
                let m = median_cte(a, *i);
                inner.push(&format!("\n  {join_kw} {}{}", quote(&m), on(&base, &m)));
            }
        }
        for n in &self.plan.specials {
            if n.cte != base {
                inner.push(&format!(
                    "\n  {join_kw} {}{}",
                    quote(&n.cte),
                    on(&base, &n.cte)
                ));
            }
        }
        // ORDER BY on the result's columns.
        let mut order: Vec<String> = Vec::new();
        let mut used: Vec<usize> = Vec::new();
        let collate = |i: usize| -> String {
            match (
                self.plan.output.get(i).map(|c| c.ty),
                self.d.byte_collation(),
            ) {
                (Some(OutType::String), Some(c)) => format!(" COLLATE {c}"),
                _ => String::new(),
            }
        };
        let key = |i: usize| -> String {
            let col = Sql::raw(&format!("\"c{i}\""));
            match self.plan.output.get(i).map(|c| (c.ty.decimals(), &c.value)) {
                // metrics sort by their rounded value, as returned
                Some((Some(n), OutputValue::Metric(_))) => self.d.round(col, n).text,
                _ => format!("{}{}", col.text, collate(i)),
            }
        };
        for (i, desc) in &self.plan.order {
            order.push(format!(
                "{} {}",
                key(*i),
                if *desc {
                    "DESC NULLS LAST"
                } else {
                    "ASC NULLS LAST"
                }
            ));
            used.push(*i);
        }
        for (i, c) in self.plan.output.iter().enumerate() {
            if matches!(c.value, OutputValue::Slot(_)) && !used.contains(&i) {
                order.push(format!("\"c{i}\"{} ASC NULLS LAST", collate(i)));
            }
        }
        let mut s = Sql::raw("SELECT * FROM (\n  ");
        s.append(inner);
        s.push("\n) AS \"tally_result\"");
        if !order.is_empty() {
            s.push("\nORDER BY ");
            s.push(&order.join(", "));
        }
        if self.plan.limit {
            s.push("\nLIMIT ");
            s.param(Param::Limit);
        } else if self.plan.offset {
            s.push("\n");
            s.push(self.d.limit_all());
        }
        if self.plan.offset {
            s.push(" OFFSET ");
            s.param(Param::Offset);
        }
        s
    }

    fn filter(&self, f: &Filter) -> Sql {
        match f {
            Filter::And(xs) | Filter::Or(xs) => {
                if xs.is_empty() {
                    return Sql::raw(if matches!(f, Filter::And(_)) {
                        "1 = 1"
                    } else {
                        "1 = 0"
                    });
                }
                let kw = if matches!(f, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let mut s = Sql::raw("(");
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        s.push(kw);
                    }
                    s.append(self.filter(x));
                }
                s.push(")");
                s
            }
            Filter::Not(x) => Sql::wrap("NOT (", self.filter(x), ")"),
            Filter::Cond {
                dimension,
                op,
                args,
            } => {
                let Some(dim) = self.model.dimension(dimension) else {
                    return Sql::raw("1 = 0");
                };
                let how = match (dim.dim_type, dim.time_storage) {
                    (DimType::Time, TimeStorage::Instant) => BindAs::Instant,
                    (DimType::Time, TimeStorage::Date) => BindAs::Date,
                    (DimType::Time, TimeStorage::Local) => BindAs::Local,
                    _ => BindAs::Plain,
                };
                let x = Sql::wrap("(", self.expr(&dim.expr, &dim.table), ")");
                let arg = |k: usize| {
                    let mut s = Sql::default();
                    s.param(Param::Request(
                        args.get(k).copied().unwrap_or(usize::MAX),
                        how,
                    ));
                    s
                };
                let cmp = |x: Sql, op: &str, k: usize| {
                    let mut s = x;
                    s.push(op);
                    s.append(arg(k));
                    s
                };
                match op {
                    FilterOp::Equals => cmp(x, " = ", 0),
                    FilterOp::NotEquals => cmp(x, " <> ", 0),
                    FilterOp::Gt => cmp(x, " > ", 0),
                    FilterOp::Gte => cmp(x, " >= ", 0),
                    FilterOp::Lt => cmp(x, " < ", 0),
                    FilterOp::Lte => cmp(x, " <= ", 0),
                    FilterOp::Between => {
                        let mut s = Sql::raw("(");
                        s.append(cmp(x.clone(), " >= ", 0));
                        s.push(" AND ");
                        s.append(cmp(x, " <= ", 1));
                        s.push(")");
                        s
                    }
                    FilterOp::In | FilterOp::NotIn => {
                        if args.is_empty() {
                            return Sql::raw(if *op == FilterOp::In {
                                "1 = 0"
                            } else {
                                "1 = 1"
                            });
                        }
                        let mut s = x;
                        s.push(if *op == FilterOp::In {
                            " IN ("
                        } else {
                            " NOT IN ("
                        });
                        for k in 0..args.len() {
                            if k > 0 {
                                s.push(", ");
                            }
                            s.append(arg(k));
                        }
                        s.push(")");
                        s
                    }
                    FilterOp::Contains => self.d.contains(x, arg(0)),
                    FilterOp::StartsWith => {
                        let mut s = Sql::raw("substr(");
                        s.append(x);
                        s.push(", 1, length(");
                        s.append(arg(0));
                        s.push(")) = ");
                        s.append(arg(0));
                        s
                    }
                    FilterOp::IsNull => Sql::wrap("", x, " IS NULL"),
                    FilterOp::IsNotNull => Sql::wrap("", x, " IS NOT NULL"),
                }
            }
        }
    }

    /// An expression of a model file over the columns of `table` (its alias).
    fn expr(&self, e: &Expr, table: &str) -> Sql {
        self.expr_at(e, table, table)
    }

    /// An expression of a model file over the columns of `table`, aliased `alias`.
    fn expr_at(&self, e: &Expr, table: &str, alias: &str) -> Sql {
        let t = self.model.table(table);
        let types = |c: &str| t.and_then(|t| t.column_type(c)).map(ExprType::of_col);
        let sub = |x: &Expr| self.expr_at(x, table, alias);
        match e {
            Expr::Column(c) => col(alias, c),
            Expr::Int(n) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::BigInt(Some(*n))));
                s
            }
            Expr::Float(n) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::Double(Some(*n))));
                s
            }
            Expr::Str(v) => {
                let mut s = Sql::default();
                s.param(Param::Value(Value::String(Some(v.clone()))));
                s
            }
            Expr::Bool(b) => Sql::raw(if *b { "(1 = 1)" } else { "(1 = 0)" }),
            Expr::Null => Sql::raw("NULL"),
            Expr::Neg(a) => Sql::wrap("(-", sub(a), ")"),
            Expr::Not(a) => Sql::wrap("(NOT ", sub(a), ")"),
            Expr::Binary(op, a, b) => {
                let mut s = Sql::raw("(");
                s.append(sub(a));
                s.push(&format!(" {} ", op.sql()));
                s.append(sub(b));
                s.push(")");
                s
            }
            Expr::IsNull(a, neg) => Sql::wrap(
                "(",
                sub(a),
                if *neg { " IS NOT NULL)" } else { " IS NULL)" },
            ),
            Expr::In(a, list, neg) => {
                let mut s = Sql::raw("(");
                s.append(sub(a));
                s.push(if *neg { " NOT IN (" } else { " IN (" });
                for (i, x) in list.iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.append(sub(x));
                }
                s.push("))");
                s
            }
            Expr::Case(whens, els) => {
                let mut s = Sql::raw("CASE");
                for (c, v) in whens {
                    s.push(" WHEN ");
                    s.append(sub(c));
                    s.push(" THEN ");
                    s.append(sub(v));
                }
                if let Some(e) = els {
                    s.push(" ELSE ");
                    s.append(sub(e));
                }
                s.push(" END");
                s
            }
            Expr::Call(f, args) => {
                let arg = |i: usize| args.get(i).map(&sub).unwrap_or_else(|| Sql::raw("NULL"));
                let list = |name: &str| {
                    let mut s = Sql::raw(&format!("{name}("));
                    for i in 0..args.len() {
                        if i > 0 {
                            s.push(", ");
                        }
                        s.append(arg(i));
                    }
                    s.push(")");
                    s
                };
                match f {
                    Func::Coalesce => list("COALESCE"),
                    Func::Nullif => list("NULLIF"),
                    Func::Abs => list("ABS"),
                    Func::Lower => list("LOWER"),
                    Func::Upper => list("UPPER"),
                    Func::JsonText => {
                        let key = match args.get(1) {
                            Some(Expr::Str(k)) => k.clone(),
                            _ => String::new(),
                        };
                        self.d.json_text(arg(0), &key)
                    }
                    Func::DaysBetween | Func::SecondsBetween => {
                        let st = match args.first().and_then(|a| a.infer(&types).ok()) {
                            Some(ExprType::Date) => TimeStorage::Date,
                            Some(ExprType::LocalTime) => TimeStorage::Local,
                            _ => TimeStorage::Instant,
                        };
                        let secs = self.d.float(self.d.seconds_between(arg(0), arg(1), st));
                        if *f == Func::DaysBetween {
                            Sql::wrap("(", secs, " / 86400)")
                        } else {
                            secs
                        }
                    }
                }
            }
        }
    }
}

fn median_cte(a: &AggregateNode, i: usize) -> String {
    format!("med_{}_{i}", a.table)
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// A SQL file's text with its `$1` (outside strings, quoted identifiers and comments) turned
/// into the as-of parameter (moved back by `shift`), and `$2`, `$3`, … into the table's
/// constants. Parameter markers in the text are dropped.
fn sql_file(text: &str, consts: &[SqlConst], shift: Option<Shift>) -> Sql {
    use lexer::TokenKind;
    let mut s = Sql::default();
    for t in lexer::tokens(text) {
        if let TokenKind::Placeholder(n) = t.kind {
            let p = if n == 1 {
                Some(Param::AsOf(shift))
            } else {
                consts.get(n.wrapping_sub(2)).map(|v| {
                    Param::Value(match v {
                        SqlConst::Int(x) => Value::BigInt(Some(*x)),
                        SqlConst::Float(x) => Value::Double(Some(*x)),
                        SqlConst::Text(x) => Value::String(Some(x.clone())),
                    })
                })
            };
            if let Some(p) = p {
                s.param(p);
                continue;
            }
        }
        if t.text.contains(MARK) {
            s.push(&t.text.replace(MARK, ""));
        } else {
            s.push(t.text);
        }
    }
    s
}

/// A statement that reads no row but fails when a SQL table's text does not run or lacks one
/// of its declared columns: `SELECT <columns> FROM (<text>) AS "tally_s" WHERE 1 = 0`, with
/// its parameters bound for `as_of` (the live-database check at server start). `None` for a
/// physical table.
pub fn probe_sql_table(
    table: &Table,
    dialect: &dyn Dialect,
    as_of: DateTime<Utc>,
) -> Option<(String, Vec<Value>)> {
    let TableSource::Sql {
        postgres,
        sqlite,
        params,
    } = &table.source
    else {
        return None;
    };
    let text = dialect.sql_text(postgres, sqlite);
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| format!("\"tally_s\".{}", quote(c)))
        .collect();
    let mut s = Sql::raw(&format!("SELECT {} FROM (\n", cols.join(", ")));
    s.append(sql_file(text, params, table.as_of_shift));
    s.push("\n) AS \"tally_s\" WHERE 1 = 0");
    let mut out = String::with_capacity(s.text.len());
    let mut n = 0;
    for c in s.text.chars() {
        if c == MARK {
            n += 1;
            out.push_str(&dialect.placeholder(n));
        } else {
            out.push(c);
        }
    }
    Some((out, crate::plan::bind(&s.params, &Bindings::as_of(as_of))))
}
