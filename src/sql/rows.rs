//! The statement of a row query: the table's `asOf` cut, then its rows with the selected
//! columns, the request's filter (the same conditions as `metrics`), a total order (nulls
//! last; text in byte order; a conversion-filter column in the order of its variants) and
//! one page.

use super::{Param, Renderer, Sql, col, one_line, quote};
use crate::plan::{OutType, RowsNode};
use crate::semantic::Dimension;

impl Renderer<'_> {
    /// The dimension `name`: a row column of a row query, else a model dimension.
    pub(super) fn dimension(&self, name: &str) -> Option<&Dimension> {
        if let Some(node) = &self.plan.rows {
            return self
                .model
                .table(&node.table)
                .and_then(|t| t.rows.as_ref())
                .and_then(|r| r.column(name))
                .map(|c| &c.dimension);
        }
        self.model.dimension(name)
    }

    /// `WITH <cut> SELECT <columns> FROM <cut> WHERE … ORDER BY … LIMIT … OFFSET …`.
    pub(super) fn rows_statement(&self, node: &RowsNode) -> Sql {
        let mut out = Sql::raw("WITH\n");
        for (i, cut) in self.plan.cuts.iter().enumerate() {
            if let Some(t) = self.model.table(&cut.table) {
                if i > 0 {
                    out.push(",\n");
                }
                out.push(&format!(
                    "-- {}\n{} AS (\n  ",
                    one_line(&cut.description),
                    quote(&cut.cte)
                ));
                out.append(self.cut(t));
                out.push("\n)");
            }
        }
        out.push(&format!("\n-- {}\nSELECT ", one_line(&node.description)));
        for (i, (key, c)) in node.columns.iter().enumerate() {
            if i > 0 {
                out.push(",\n  ");
            }
            let x = col(&node.table, &c.column);
            let v = match crate::plan::rows::out_type(c.ty) {
                OutType::Time => self.d.instant_text(x),
                OutType::Bool => self.d.bool_int(x),
                OutType::Float(_) | OutType::Decimal => self.d.float(x),
                OutType::Int => self.d.int(x),
                OutType::String => match c.ty {
                    crate::semantic::ColType::Date => Sql::wrap("CAST(", x, " AS TEXT)"),
                    _ => x,
                },
            };
            out.append(v);
            out.push(&format!(" AS {}", quote(key)));
        }
        if node.columns.is_empty() {
            out.push("1 AS \"tally_row\"");
        }
        out.push(&format!(
            "\nFROM {} AS {}",
            quote(&format!("asof_{}", node.table)),
            quote(&node.table)
        ));
        if let Some(f) = &self.spec.filter {
            out.push("\nWHERE ");
            out.append(self.filter(f));
        }
        let mut keys: Vec<Sql> = Vec::new();
        for o in &node.order {
            let x = col(&node.table, &o.column.column);
            let mut k = match &o.variants {
                Some(variants) => {
                    let mut s = Sql::wrap("CASE ", x, "");
                    for (i, v) in variants.iter().enumerate() {
                        s.push(" WHEN ");
                        s.param(Param::Value(v.clone().into()));
                        s.push(&format!(" THEN {i}"));
                    }
                    s.push(" END");
                    s
                }
                None => match (
                    crate::plan::rows::out_type(o.column.ty),
                    self.d.byte_collation(),
                ) {
                    (OutType::String, Some(c)) => Sql::wrap("", x, &format!(" COLLATE {c}")),
                    _ => x,
                },
            };
            k.push(if o.descending {
                " DESC NULLS LAST"
            } else {
                " ASC NULLS LAST"
            });
            keys.push(k);
        }
        for (i, k) in keys.into_iter().enumerate() {
            out.push(if i == 0 { "\nORDER BY " } else { ", " });
            out.append(k);
        }
        if self.plan.limit {
            out.push("\nLIMIT ");
            out.param(Param::Limit);
        } else if self.plan.offset {
            out.push("\n");
            out.push(self.d.limit_all());
        }
        if self.plan.offset {
            out.push(" OFFSET ");
            out.param(Param::Offset);
        }
        out
    }
}
