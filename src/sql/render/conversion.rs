//! A conversion node: the conversion events (`_hits`), the base events marked when one
//! matches (`_rows`), and per group the base and converted counts; the metric's rate or
//! count.

use sea_orm::Value;

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{ConversionNode, ConversionValue, Param, PlanError};
use crate::semantic::{Agg, ConversionCalc, TimeStorage};

impl Renderer<'_> {
    pub(super) fn conversion_ctes(
        &self,
        n: &ConversionNode,
        out: &mut Vec<Cte>,
    ) -> Result<(), PlanError> {
        let (base, conv) = (&n.base, &n.conversion);
        // the conversion events: distinct values of the matched columns (and times)
        let hits_cte = n.hits_cte();
        let mut hits = Sql::raw("SELECT DISTINCT ");
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
        for (i, cnd) in conds.into_iter().enumerate() {
            hits.push(if i == 0 { "\n  WHERE " } else { " AND " });
            hits.append(cnd);
        }
        out.push(Cte::new(
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
        ));
        // the base events, each marked when a conversion event matches: without a window
        // the hits are distinct keys, so a base row matches at most one of them
        let base_col = |bc: &str| format!("{}.{}", quote(&n.rows.table.name), quote(bc));
        let (join, x) = if n.window.is_none() && self.d.mark_by_in() {
            let keys: Vec<String> = n.on.iter().map(|(bc, _)| base_col(bc)).collect();
            let hits_cols: Vec<String> = (0..n.on.len()).map(|k| format!("\"k{k}\"")).collect();
            (
                None,
                Sql::raw(&format!(
                    "CASE WHEN ({}) IN (SELECT {} FROM {}) THEN 1 ELSE 0 END",
                    keys.join(", "),
                    hits_cols.join(", "),
                    quote(&hits_cte)
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
        // without a window a base row is marked once: a distinct count of the base table's
        // one key column counts distinct values already (as in the aggregates)
        let key_count = n.window.is_none() && base.reads_the_key(&n.rows.table);
        let agg = |v: &str| match base.agg {
            Agg::CountDistinct if key_count => format!("COUNT({v})"),
            Agg::CountDistinct => format!("COUNT(DISTINCT {v})"),
            Agg::Sum => format!("SUM({v})"),
            _ => format!("COUNT({v})"),
        };
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
