//! A conversion node: the conversion events (`_hits`), the base events marked when one
//! matches (`_rows`), and per group the base and converted counts; the metric's rate or
//! count. Where the dialect counts a conversion in the pass of the request's aggregate of
//! its base table ([`Dialect::conversion_in_aggregate`]), the marked base events are
//! columns of that aggregate's rows and the node's CTE reads its counts from the aggregate
//! ([`Fold`]).
//!
//! [`Dialect::conversion_in_aggregate`]: super::super::Dialect::conversion_in_aggregate

use sea_orm::Value;

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{AggregateNode, ConversionNode, ConversionValue, Param, PlanError, SpecialNode};
use crate::semantic::{Agg, ConversionCalc, TimeStorage};

/// A conversion counted in the pass of a per-table aggregate: the base events are the rows
/// of `plan.aggregates[agg]` (the same table, joins, slots and request filter), each with its
/// base measure's input and mark as columns `cv<j>` and `cx<j>`, counted by the aggregate
/// as `cb<j>` (base) and `cc<j>` (converted). The aggregate's groups are all the groups of
/// its rows, the node's own were those with a base event: a group with none counts 0 base
/// events (or a null sum) and 0 conversions, which the metric reads as it reads a missing
/// group (the rate is null, the count 0), and the aggregate's groups are in the response
/// already.
pub(super) struct Fold {
    /// The aggregate (its index in `plan.aggregates`).
    pub agg: usize,
    /// The conversion node (its index in `plan.specials`).
    pub special: usize,
    /// Its number among the conversions counted by that aggregate.
    pub j: usize,
}

impl Renderer<'_> {
    /// The conversions counted in the pass of an aggregate: nodes without a window whose
    /// rows are those of an aggregate not moved in time, in a statement without lookups by
    /// bucket (whose CTEs are read into their one reader), on a dialect that counts them so.
    pub(super) fn folds(&self) -> Vec<Fold> {
        let mut folds: Vec<Fold> = Vec::new();
        let foldable = self.d.conversion_in_aggregate()
            && self.d.mark_by_in()
            && self.plan.output.by_time.is_empty();
        if !foldable {
            return folds;
        }
        for (special, node) in self.plan.specials.iter().enumerate() {
            let SpecialNode::Conversion(n) = node else {
                continue;
            };
            if n.window.is_some() {
                continue;
            }
            let same_rows = |a: &AggregateNode| {
                a.shift.is_none()
                    && a.rows.cte == n.rows.cte
                    && a.rows.table.name == n.rows.table.name
                    && a.rows.joins == n.rows.joins
            };
            if let Some(agg) = self.plan.aggregates.iter().position(same_rows) {
                let j = folds.iter().filter(|f| f.agg == agg).count();
                folds.push(Fold { agg, special, j });
            }
        }
        folds
    }

    /// The conversion node of a fold.
    pub(super) fn fold_node(&self, f: &Fold) -> Result<&ConversionNode, PlanError> {
        match self.plan.specials.get(f.special) {
            Some(SpecialNode::Conversion(n)) => Ok(n),
            _ => Err(PlanError::new(format!(
                "special node {} is no conversion",
                f.special
            ))),
        }
    }

    /// The columns a fold adds to its aggregate's rows: the base measure's input where the
    /// base filter holds (`cv<j>`), and 1 where the row's keys are among the conversion
    /// events' (`cx<j>`; looked up only where the base filter holds).
    pub(super) fn fold_row_items(
        &self,
        f: &Fold,
        table: &crate::semantic::Table,
    ) -> Result<Vec<(Sql, String)>, PlanError> {
        let n = self.fold_node(f)?;
        let mut mark = Sql::raw("CASE WHEN ");
        if let Some(cond) = &n.base.filter {
            mark.push("(");
            mark.append(self.expr(cond, table)?);
            mark.push(") AND ");
        }
        mark.push(&self.keys_in_hits(n));
        mark.push(" THEN 1 ELSE 0 END");
        Ok(vec![
            (
                self.measure_input(&n.base, table, true)?,
                format!("cv{}", f.j),
            ),
            (mark, format!("cx{}", f.j)),
        ])
    }

    /// The aggregates a fold adds to its aggregate: `cb<j>` and `cc<j>`.
    pub(super) fn fold_aggregates(&self, f: &Fold) -> Result<String, PlanError> {
        let n = self.fold_node(f)?;
        let (v, x) = (format!("\"cv{}\"", f.j), format!("\"cx{}\"", f.j));
        Ok(format!(
            ", {} AS \"cb{j}\", {} AS \"cc{j}\"",
            Self::conversion_agg(n, &v),
            Self::conversion_agg(n, &format!("CASE WHEN {x} = 1 THEN {v} END")),
            j = f.j
        ))
    }

    /// The node's CTE of a fold: the aggregate's groups with its `base` and `conv`.
    pub(super) fn folded_conversion_cte(&self, f: &Fold) -> Result<Cte, PlanError> {
        let n = self.fold_node(f)?;
        let a = self
            .plan
            .aggregates
            .get(f.agg)
            .ok_or_else(|| PlanError::new(format!("no aggregate {}", f.agg)))?;
        Ok(Cte::new(
            &n.cte,
            format!("{}, counted in {}", n.description, a.agg_cte),
            Sql::raw(&format!(
                "SELECT {}\"cb{j}\" AS \"base\", \"cc{j}\" AS \"conv\"\n  FROM {}",
                self.slot_list(None)
                    .split(", ")
                    .filter(|d| !d.is_empty())
                    .map(|d| format!("{d}, "))
                    .collect::<String>(),
                quote(&a.agg_cte),
                j = f.j
            )),
        ))
    }

    /// `(k0, k1, …) IN (SELECT "k0", … FROM <hits>)` over the base table's key columns.
    fn keys_in_hits(&self, n: &ConversionNode) -> String {
        let keys: Vec<String> =
            n.on.iter()
                .map(|(bc, _)| format!("{}.{}", quote(&n.rows.table.name), quote(bc)))
                .collect();
        let hits_cols: Vec<String> = (0..n.on.len()).map(|k| format!("\"k{k}\"")).collect();
        format!(
            "({}) IN (SELECT {} FROM {})",
            keys.join(", "),
            hits_cols.join(", "),
            quote(&n.hits_cte())
        )
    }

    /// The aggregate of the base events' values `v` (`COUNT(v)` where a distinct count of
    /// the base table's one key column counts distinct values already: without a window a
    /// base row is marked once, as in the aggregates).
    fn conversion_agg(n: &ConversionNode, v: &str) -> String {
        let key_count = n.window.is_none() && n.base.reads_the_key(&n.rows.table);
        match n.base.agg {
            Agg::CountDistinct if key_count => format!("COUNT({v})"),
            Agg::CountDistinct => format!("COUNT(DISTINCT {v})"),
            Agg::Sum => format!("SUM({v})"),
            _ => format!("COUNT({v})"),
        }
    }

    /// The conversion events of `n` (`<node>_hits`): the values of the matched columns (and
    /// times) of the conversion table's rows meeting the conversion measure's filter and the
    /// variant's condition; distinct ones when a base row is joined to them (read by `IN`,
    /// they need not be).
    pub(super) fn conversion_hits(&self, n: &ConversionNode) -> Result<Cte, PlanError> {
        let conv = &n.conversion;
        let by_in = n.window.is_none() && self.d.mark_by_in();
        let hits_cte = n.hits_cte();
        let mut hits = Sql::raw(if by_in { "SELECT " } else { "SELECT DISTINCT " });
        let mut cols: Vec<String> =
            n.on.iter()
                .enumerate()
                .map(|(k, (_, cc))| format!("\"tally_c\".{} AS \"k{k}\"", quote(cc)))
                .collect();
        if let Some(w) = &n.window {
            cols.push(format!(
                "\"tally_c\".{} AS \"t\"",
                quote(&w.conversion_time)
            ));
        }
        hits.push(&cols.join(", "));
        hits.push(&format!(
            "\n  FROM {} AS \"tally_c\"",
            quote(&n.conversion_cte)
        ));
        let mut conds: Vec<Sql> = Vec::new();
        if let Some(f) = &conv.filter {
            conds.push(self.expr_at(f, &n.conversion_table, "tally_c")?);
        }
        if let Some(e) = &n.variant_condition {
            conds.push(self.expr_at(e, &n.conversion_table, "tally_c")?);
        }
        if !conds.is_empty() {
            let mut all = Sql::default();
            for (i, cnd) in conds.into_iter().enumerate() {
                if i > 0 {
                    all.push(" AND ");
                }
                all.append(cnd);
            }
            hits.push("\n  WHERE ");
            hits.append(if by_in {
                self.d.scanned_condition(all)
            } else {
                all
            });
        }
        Ok(Cte::new(
            &hits_cte,
            format!(
                "conversion events of {}: {} rows{}",
                n.metric,
                conv.table,
                n.variant
                    .as_ref()
                    .map(|v| format!(" of variant {v}"))
                    .unwrap_or_default()
            ),
            hits,
        ))
    }

    pub(super) fn conversion_ctes(
        &self,
        n: &ConversionNode,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let base = &n.base;
        out.push(self.conversion_hits(n)?);
        let hits_cte = n.hits_cte();
        // the base events, each marked when a conversion event matches: without a window
        // the hits are distinct keys (or read by `IN`), so a base row matches at most one
        // of them
        let base_col = |bc: &str| format!("{}.{}", quote(&n.rows.table.name), quote(bc));
        let (join, x) = if n.window.is_none() && self.d.mark_by_in() {
            (
                None,
                Sql::raw(&format!(
                    "CASE WHEN {} THEN 1 ELSE 0 END",
                    self.keys_in_hits(n)
                )),
            )
        } else {
            let mut join = Sql::raw(&format!(
                "LEFT JOIN {} AS \"tally_h\" ON ",
                quote(&hits_cte)
            ));
            let on: Vec<String> =
                n.on.iter()
                    .enumerate()
                    .map(|(k, (bc, _))| format!("\"tally_h\".\"k{k}\" = {}", base_col(bc)))
                    .collect();
            join.push(&on.join(" AND "));
            if let Some(w) = &n.window {
                let secs = self.d.seconds_between(
                    Self::node_col(&n.rows.table.name, &w.base_time),
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
            (
                Some(join),
                Sql::raw("CASE WHEN \"tally_h\".\"k0\" IS NOT NULL THEN 1 ELSE 0 END"),
            )
        };
        let mut conds = self.request_filter(&n.rows.table)?;
        if let Some(f) = &base.filter {
            conds.push(self.expr(f, &n.rows.table)?);
        }
        let rows = self.rows_from(
            &n.rows,
            vec![
                (self.measure_input(base, &n.rows.table, false)?, "v"),
                (x, "x"),
            ],
            join,
            conds,
        )?;
        let rows_cte = n.rows_cte();
        out.push(Cte::new(
            &rows_cte,
            format!(
                "base events of {} ({} rows), marked x = 1 when they convert",
                n.metric, base.table
            ),
            rows,
        ));
        let agg = |v: &str| Self::conversion_agg(n, v);
        out.push(Cte::new(
            &n.cte,
            &n.description,
            self.group(
                &rows_cte,
                &format!(
                    "{} AS \"base\", {} AS \"conv\"",
                    agg("\"v\""),
                    agg("CASE WHEN \"x\" = 1 THEN \"v\" END")
                ),
            ),
        ));
        Ok(())
    }

    pub(super) fn conversion_value(&self, v: &ConversionValue) -> Sql {
        let conv = Sql::wrap("COALESCE(", Self::node_col(&v.cte, "conv"), ", 0)");
        match v.calculation {
            ConversionCalc::Rate => self.divide(conv, Self::node_col(&v.cte, "base")),
            ConversionCalc::Conversions => conv,
        }
    }
}
