//! Expressions of model files over a table's columns, and the request's `where`.

use sea_orm::Value;

use super::super::{Sql, quote};
use super::Renderer;
use crate::plan::{Param, PlanError, PlannedFilter};
use crate::query::FilterOp;
use crate::semantic::expr::Func;
use crate::semantic::{DimType, Expr, ExprType, Table, TimeStorage};

impl Renderer<'_> {
    /// An expression of a model file over the columns of `table` (aliased by its name).
    pub(super) fn expr(&self, e: &Expr, table: &Table) -> Result<Sql, PlanError> {
        self.expr_at(e, table, &table.name)
    }

    /// An expression of a model file over the columns of `table`, aliased `alias`.
    pub(super) fn expr_at(&self, e: &Expr, table: &Table, alias: &str) -> Result<Sql, PlanError> {
        expr_sql(self.d, e, table, alias)
    }

    /// The request's filter.
    pub(super) fn filter(&self, f: &PlannedFilter) -> Result<Sql, PlanError> {
        self.filter_on(f, None)
    }

    /// Whether `f` compares a time axis (read on each node's own table).
    pub(super) fn on_axis(f: &PlannedFilter) -> bool {
        match f {
            PlannedFilter::And(xs) | PlannedFilter::Or(xs) => xs.iter().any(Self::on_axis),
            PlannedFilter::Not(x) => Self::on_axis(x),
            PlannedFilter::Cond { dimension, .. } => !dimension.axis.is_empty(),
        }
    }

    /// The request's filter over the rows of `rows` (the table a time axis is read on).
    pub(super) fn filter_on(
        &self,
        f: &PlannedFilter,
        rows: Option<&Table>,
    ) -> Result<Sql, PlanError> {
        Ok(match f {
            // `and: []` and `or: []` are valid requests: true and false
            PlannedFilter::And(xs) if xs.is_empty() => Sql::raw("1 = 1"),
            PlannedFilter::Or(xs) if xs.is_empty() => Sql::raw("1 = 0"),
            PlannedFilter::And(xs) | PlannedFilter::Or(xs) => {
                let kw = if matches!(f, PlannedFilter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let mut s = Sql::raw("(");
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        s.push(kw);
                    }
                    s.append(self.filter_on(x, rows)?);
                }
                s.push(")");
                s
            }
            // two-valued: a comparison with a null is false, so `not` is the exact complement
            PlannedFilter::Not(x) => {
                Sql::wrap("NOT COALESCE((", self.filter_on(x, rows)?, "), FALSE)")
            }
            PlannedFilter::Cond {
                dimension,
                table,
                op,
                args,
            } => {
                let x = match rows {
                    Some(t) if !dimension.axis.is_empty() => {
                        let e = dimension.axis_on(&t.name).ok_or_else(|| {
                            PlanError::new(format!(
                                "the time axis {} is not on table {}",
                                dimension.name, t.name
                            ))
                        })?;
                        self.expr(e, t)?
                    }
                    _ => self.expr(&dimension.expr, table)?,
                };
                let x = Sql::wrap("(", x, ")");
                // text ranges compare in byte order on every backend
                let ranged = match (dimension.dim_type, self.d.byte_collation()) {
                    (DimType::String, Some(c)) => {
                        Sql::wrap("", x.clone(), &format!(" COLLATE {c}"))
                    }
                    _ => x.clone(),
                };
                let arg = |k: usize| -> Result<Sql, PlanError> {
                    let p = args.get(k).ok_or_else(|| {
                        PlanError::new(format!(
                            "where {}: {op:?} without value #{k}",
                            dimension.name
                        ))
                    })?;
                    let mut s = Sql::default();
                    s.param(p.clone());
                    Ok(s)
                };
                let cmp = |x: Sql, op: &str, k: usize| -> Result<Sql, PlanError> {
                    let mut s = x;
                    s.push(op);
                    s.append(arg(k)?);
                    Ok(s)
                };
                match op {
                    FilterOp::Equals => cmp(x, " = ", 0)?,
                    FilterOp::NotEquals => cmp(x, " <> ", 0)?,
                    FilterOp::Gt => cmp(ranged, " > ", 0)?,
                    FilterOp::Gte => cmp(ranged, " >= ", 0)?,
                    FilterOp::Lt => cmp(ranged, " < ", 0)?,
                    FilterOp::Lte => cmp(ranged, " <= ", 0)?,
                    FilterOp::Between => {
                        let mut s = Sql::raw("(");
                        s.append(cmp(ranged.clone(), " >= ", 0)?);
                        s.push(" AND ");
                        s.append(cmp(ranged, " <= ", 1)?);
                        s.push(")");
                        s
                    }
                    // `in: []` is a valid request that matches nothing (`notIn: []`: all)
                    FilterOp::In | FilterOp::NotIn if args.is_empty() => {
                        Sql::raw(if *op == FilterOp::In {
                            "1 = 0"
                        } else {
                            "1 = 1"
                        })
                    }
                    FilterOp::In | FilterOp::NotIn => {
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
                            s.append(arg(k)?);
                        }
                        s.push(")");
                        s
                    }
                    FilterOp::Contains => self.d.contains(x, arg(0)?),
                    FilterOp::StartsWith => {
                        let mut s = Sql::raw("substr(");
                        s.append(x);
                        s.push(", 1, length(");
                        s.append(arg(0)?);
                        s.push(")) = ");
                        s.append(arg(0)?);
                        s
                    }
                    FilterOp::IsNull => Sql::wrap("", x, " IS NULL"),
                    FilterOp::IsNotNull => Sql::wrap("", x, " IS NOT NULL"),
                }
            }
        })
    }
}

/// An expression of a model file over the columns of `table`, aliased `alias`, for `d`
/// (the plan's renderer, and tally's own statements over a table such as a rollup's build).
pub(crate) fn expr_sql(
    d: &dyn crate::sql::Dialect,
    e: &Expr,
    table: &Table,
    alias: &str,
) -> Result<Sql, PlanError> {
    let sub = |x: &Expr| expr_sql(d, x, table, alias);
    let param = |p: Param| {
        let mut s = Sql::default();
        s.param(p);
        s
    };
    Ok(match e {
        Expr::Column(c) => Sql::raw(&format!("{}.{}", quote(alias), quote(c))),
        Expr::Int(n) => param(Param::Value(Value::BigInt(Some(*n)))),
        Expr::Float(n) => param(Param::Value(Value::Double(Some(*n)))),
        Expr::Str(v) => param(Param::Value(Value::String(Some(v.clone())))),
        // the literals of a model file's expression
        Expr::Bool(b) => Sql::raw(if *b { "(1 = 1)" } else { "(1 = 0)" }),
        Expr::Null => Sql::raw("NULL"),
        Expr::Neg(a) => Sql::wrap("(-", sub(a)?, ")"),
        Expr::Not(a) => Sql::wrap("(NOT ", sub(a)?, ")"),
        Expr::Binary(op, a, b) => {
            let mut s = Sql::raw("(");
            s.append(sub(a)?);
            s.push(&format!(" {} ", op.sql()));
            s.append(sub(b)?);
            s.push(")");
            s
        }
        Expr::IsNull(a, neg) => Sql::wrap(
            "(",
            sub(a)?,
            if *neg { " IS NOT NULL)" } else { " IS NULL)" },
        ),
        Expr::In(a, list, neg) => {
            let mut s = Sql::raw("(");
            s.append(sub(a)?);
            s.push(if *neg { " NOT IN (" } else { " IN (" });
            for (i, x) in list.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.append(sub(x)?);
            }
            s.push("))");
            s
        }
        Expr::Case(whens, els) => {
            let mut s = Sql::raw("CASE");
            for (c, v) in whens {
                s.push(" WHEN ");
                s.append(sub(c)?);
                s.push(" THEN ");
                s.append(sub(v)?);
            }
            if let Some(e) = els {
                s.push(" ELSE ");
                s.append(sub(e)?);
            }
            s.push(" END");
            s
        }
        Expr::Call(f, args) => {
            let arg = |i: usize| match args.get(i) {
                Some(a) => sub(a),
                None => Err(PlanError::new(format!(
                    "{f:?} without argument #{i} (validated expressions have it)"
                ))),
            };
            let list = |name: &str| -> Result<Sql, PlanError> {
                let mut s = Sql::raw(&format!("{name}("));
                for i in 0..args.len() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.append(arg(i)?);
                }
                s.push(")");
                Ok(s)
            };
            match f {
                Func::Coalesce => list("COALESCE")?,
                Func::Nullif => list("NULLIF")?,
                Func::Abs => list("ABS")?,
                Func::Lower => list("LOWER")?,
                Func::Upper => list("UPPER")?,
                Func::JsonText => {
                    let Some(Expr::Str(key)) = args.get(1) else {
                        return Err(PlanError::new(
                            "json_text without a 'key' literal (validated expressions have it)",
                        ));
                    };
                    d.json_text(arg(0)?, key)
                }
                Func::DaysBetween | Func::SecondsBetween => {
                    let types = |c: &str| table.column_type(c).map(ExprType::of_col);
                    let st = match args.first().and_then(|a| a.infer(&types).ok()) {
                        Some(ExprType::Date) => TimeStorage::Date,
                        Some(ExprType::LocalTime) => TimeStorage::Local,
                        _ => TimeStorage::Instant,
                    };
                    let secs = d.float(d.seconds_between(arg(0)?, arg(1)?, st));
                    if *f == Func::DaysBetween {
                        Sql::wrap("(", secs, " / 86400)")
                    } else {
                        secs
                    }
                }
            }
        }
    })
}
