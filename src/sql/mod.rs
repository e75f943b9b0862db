//! From a [`Plan`] to one parameterised SQL statement per dialect.
//!
//! SQL is assembled from [`Sql`] fragments: text with a marker where each parameter goes,
//! and the parameters in order. Only validated identifiers (model, table, column names) and
//! tally's own constants reach the text; every value from a model file or a request is a
//! [`Param`], bound when the statement runs. The [`Dialect`] trait holds what differs between
//! PostgreSQL and SQLite.

mod dialect;

pub use dialect::{Dialect, Postgres, Sqlite};

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::plan::{AggregateNode, OutType, OutputValue, Plan};
use crate::query::{Filter, FilterOp, QuerySpec, ReqValue};
use crate::semantic::expr::{BinOp, Func};
use crate::semantic::{
    Agg, AsOf, DimType, Expr, ExprType, MetricKind, Model, Table, TableSource, TimeStorage,
};

/// Where a parameter marker sits in [`Sql::text`].
const MARK: char = '\u{1}';

/// A parameter of a rendered statement, resolved against the request when it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// The as-of instant.
    AsOf,
    /// The as-of instant as partition text `YYYY-MM-DD HH:MM:SS` (UTC).
    AsOfPartitionTs,
    /// The as-of instant's UTC date.
    AsOfDate,
    /// A constant (a literal of a model file).
    Value(Value),
    /// A request value, bound as the compared dimension is stored.
    Request(usize, BindAs),
    /// The request's time zone.
    TimeZone,
    /// The request's limit.
    Limit,
    /// The request's offset.
    Offset,
    /// The request's conversion variant, or this default.
    ConversionFilter(String),
}

/// How a request value is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAs {
    /// As it is.
    Plain,
    /// A time compared with an instant column.
    Instant,
    /// A time compared with a date column (its UTC date).
    Date,
    /// A time compared with local wall-clock text (its `YYYY-MM-DDTHH:MM:SS` digits).
    Local,
}

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
}

impl Rendered {
    /// The values to bind for a request.
    pub fn bind(&self, spec: &QuerySpec) -> Vec<Value> {
        self.params.iter().map(|p| bind_one(p, spec)).collect()
    }
}

fn bind_one(p: &Param, spec: &QuerySpec) -> Value {
    match p {
        Param::AsOf => Value::ChronoDateTimeUtc(Some(spec.as_of)),
        Param::AsOfPartitionTs => {
            Value::String(Some(spec.as_of.format("%Y-%m-%d %H:%M:%S").to_string()))
        }
        Param::AsOfDate => Value::ChronoDate(Some(spec.as_of.date_naive())),
        Param::Value(v) => v.clone(),
        Param::Request(i, how) => match spec.values.get(*i) {
            None => Value::String(None),
            Some(ReqValue::Str(s)) => Value::String(Some(s.clone())),
            Some(ReqValue::Num(n)) => Value::Double(Some(*n)),
            Some(ReqValue::Bool(b)) => Value::Bool(Some(*b)),
            Some(ReqValue::Time(t)) => bind_time(*t, *how),
        },
        Param::TimeZone => Value::String(Some(
            spec.timezone.clone().unwrap_or_else(|| "UTC".to_owned()),
        )),
        Param::Limit => Value::BigInt(Some(
            spec.limit
                .map(|l| l.min(i64::MAX as u64) as i64)
                .unwrap_or(-1),
        )),
        Param::Offset => Value::BigInt(Some(
            spec.offset
                .map(|l| l.min(i64::MAX as u64) as i64)
                .unwrap_or(0),
        )),
        Param::ConversionFilter(default) => Value::String(Some(
            spec.conversion_filter
                .clone()
                .unwrap_or_else(|| default.clone()),
        )),
    }
}

fn bind_time(t: DateTime<Utc>, how: BindAs) -> Value {
    match how {
        BindAs::Date => Value::ChronoDate(Some(t.date_naive())),
        BindAs::Local => Value::String(Some(t.format("%Y-%m-%dT%H:%M:%S").to_string())),
        BindAs::Instant | BindAs::Plain => Value::ChronoDateTimeUtc(Some(t)),
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
        let multi = self.plan.aggregates.len() > 1;
        if multi && !self.plan.slots.is_empty() {
            let mut keys = Sql::default();
            for (i, a) in self.plan.aggregates.iter().enumerate() {
                if i > 0 {
                    keys.push("\n  UNION\n  ");
                }
                keys.push("SELECT ");
                keys.push(&self.slot_list(None));
                keys.push(" FROM ");
                keys.push(&quote(&a.agg_cte));
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
            TableSource::Sql { postgres, sqlite } => {
                let text = if self.d.name() == "postgres" {
                    postgres
                } else {
                    sqlite
                };
                let mut s = Sql::raw("(\n");
                s.append(sql_file(text));
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
        match &t.as_of {
            AsOf::Event { time } => conds.push(le(time, Param::AsOf)),
            AsOf::PartitionTs { ts, time, key } => {
                conds.push(le(ts, Param::AsOfPartitionTs));
                if let Some(time) = time {
                    conds.push(le(time, Param::AsOf));
                }
                if !key.is_empty() {
                    ranked = Some((key.clone(), ts.clone()));
                }
            }
            AsOf::PartitionDs { ds, time } => {
                conds.push(le(ds, Param::AsOfDate));
                if let Some(time) = time {
                    conds.push(le(time, Param::AsOf));
                }
            }
            AsOf::Record { time, created } => {
                conds.push(le(time, Param::AsOf));
                conds.push(le(created, Param::AsOf));
            }
            AsOf::Type2 { key, updated } => {
                conds.push(le(updated, Param::AsOf));
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

    fn rows(&self, a: &AggregateNode) -> Sql {
        let mut s = Sql::raw("SELECT ");
        let mut items: Vec<Sql> = Vec::new();
        for (i, slot) in self.plan.slots.iter().enumerate() {
            let Some(dim) = self.model.dimension(&slot.dimension) else {
                continue;
            };
            let e = self.expr(&dim.expr, &dim.table);
            let v = match slot.granularity {
                Some(g) if dim.dim_type == DimType::Time => {
                    let tz = self.spec.timezone.is_some()
                        && self.d.time_zones()
                        && dim.time_storage == TimeStorage::Instant;
                    self.d.time_bucket(e, dim.time_storage, g, tz)
                }
                _ => e,
            };
            items.push(Sql::wrap("", v, &format!(" AS \"d{i}\"")));
        }
        for (i, m) in a.measures.iter().enumerate() {
            let Some(ms) = self.model.measure(m) else {
                continue;
            };
            let value = match &ms.expr {
                Some(e) => self.expr(e, &ms.table),
                None => Sql::raw("1"),
            };
            let value = match &ms.filter {
                Some(f) => {
                    let mut s = Sql::raw("CASE WHEN ");
                    s.append(self.expr(f, &ms.table));
                    s.push(" THEN ");
                    s.append(value);
                    s.push(" END");
                    s
                }
                None => value,
            };
            items.push(Sql::wrap("", value, &format!(" AS \"v{i}\"")));
        }
        for (i, it) in items.into_iter().enumerate() {
            if i > 0 {
                s.push(",\n    ");
            }
            s.append(it);
        }
        s.push(&format!(
            "\n  FROM {} AS {}",
            quote(&format!("asof_{}", a.table)),
            quote(&a.table)
        ));
        for j in &a.joins {
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
        if let Some(f) = &self.spec.filter {
            s.push("\n  WHERE ");
            s.append(self.filter(f));
        }
        s
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

    fn slot_ref(&self, i: usize) -> Sql {
        let base = if self.plan.aggregates.len() > 1 && !self.plan.slots.is_empty() {
            "keys".to_owned()
        } else {
            self.plan
                .aggregates
                .first()
                .map(|a| a.agg_cte.clone())
                .unwrap_or_default()
        };
        Sql::raw(&format!("{}.\"d{i}\"", quote(&base)))
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
        let base = if aggs.len() > 1 && slots > 0 {
            "keys".to_owned()
        } else {
            aggs.first().map(|a| a.agg_cte.clone()).unwrap_or_default()
        };
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
        let t = self.model.table(table);
        let types = |c: &str| t.and_then(|t| t.column_type(c)).map(ExprType::of_col);
        match e {
            Expr::Column(c) => col(table, c),
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
            Expr::Neg(a) => Sql::wrap("(-", self.expr(a, table), ")"),
            Expr::Not(a) => Sql::wrap("(NOT ", self.expr(a, table), ")"),
            Expr::Binary(op, a, b) => {
                let mut s = Sql::raw("(");
                s.append(self.expr(a, table));
                s.push(&format!(" {} ", op.sql()));
                s.append(self.expr(b, table));
                s.push(")");
                s
            }
            Expr::IsNull(a, neg) => Sql::wrap(
                "(",
                self.expr(a, table),
                if *neg { " IS NOT NULL)" } else { " IS NULL)" },
            ),
            Expr::In(a, list, neg) => {
                let mut s = Sql::raw("(");
                s.append(self.expr(a, table));
                s.push(if *neg { " NOT IN (" } else { " IN (" });
                for (i, x) in list.iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.append(self.expr(x, table));
                }
                s.push("))");
                s
            }
            Expr::Case(whens, els) => {
                let mut s = Sql::raw("CASE");
                for (c, v) in whens {
                    s.push(" WHEN ");
                    s.append(self.expr(c, table));
                    s.push(" THEN ");
                    s.append(self.expr(v, table));
                }
                if let Some(e) = els {
                    s.push(" ELSE ");
                    s.append(self.expr(e, table));
                }
                s.push(" END");
                s
            }
            Expr::Call(f, args) => {
                let arg = |i: usize| {
                    args.get(i)
                        .map(|a| self.expr(a, table))
                        .unwrap_or_else(|| Sql::raw("NULL"))
                };
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

/// A SQL file's text with its `$1` (outside quotes) turned into the as-of parameter.
fn sql_file(text: &str) -> Sql {
    let mut s = Sql::default();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut buf = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            buf.push(c);
            i += 1;
            while i < chars.len() {
                buf.push(chars[i]);
                i += 1;
                if chars[i - 1] == c {
                    break;
                }
            }
            continue;
        }
        if c == '$'
            && chars.get(i + 1) == Some(&'1')
            && !chars.get(i + 2).is_some_and(char::is_ascii_digit)
        {
            s.push(&buf);
            buf.clear();
            s.param(Param::AsOf);
            i += 2;
            continue;
        }
        if c == MARK {
            i += 1;
            continue;
        }
        buf.push(c);
        i += 1;
    }
    s.push(&buf);
    s
}
