//! A row query's statement: the table's `asOf` cut, then its rows with the selected columns,
//! the request's filter (the conditions of metrics), a total order (nulls last; text in byte
//! order; a conversion-filter column in the order of its variants) and one page.

use super::super::{Sql, quote};
use super::{Cte, Renderer};
use crate::plan::{OutType, Param, PlanError, RowsNode, out_type};
use crate::semantic::ColType;

impl Renderer<'_> {
    /// `WITH <cut> SELECT <columns> FROM <cut> WHERE … ORDER BY … LIMIT … OFFSET …`.
    pub(super) fn rows_statement(&self, node: &RowsNode) -> Result<Sql, PlanError> {
        let mut ctes = Vec::new();
        for cut in &self.plan.cuts {
            ctes.push(Cte::new(&cut.cte, &cut.description, self.cut(cut)?));
        }
        let mut out = Self::with(ctes);
        out.push(&format!(
            "\n-- {}\nSELECT ",
            super::one_line(&node.description)
        ));
        let col = |c: &str| Sql::raw(&format!("{}.{}", quote(&node.table), quote(c)));
        for (i, (c, key)) in node
            .columns
            .iter()
            .zip(self.plan.output.columns.iter().map(|o| &o.key))
            .enumerate()
        {
            if i > 0 {
                out.push(",\n  ");
            }
            let x = col(&c.column);
            out.append(match out_type(c.ty) {
                OutType::Time => self.d.instant_text(x),
                OutType::Bool => self.d.bool_int(x),
                OutType::Float(_) | OutType::Decimal => self.d.float(x),
                OutType::Int => self.d.int(x),
                OutType::String if c.ty == ColType::Date => Sql::wrap("CAST(", x, " AS TEXT)"),
                OutType::String => x,
            });
            out.push(&format!(" AS {}", quote(key)));
        }
        if node.columns.is_empty() {
            out.push("1 AS \"tally_row\"");
        }
        out.push(&format!(
            "\nFROM {} AS {}",
            quote(&node.cte),
            quote(&node.table)
        ));
        if let Some(f) = &self.filter {
            out.push("\nWHERE ");
            out.append(f.clone());
        }
        for (i, o) in node.order.iter().enumerate() {
            out.push(if i == 0 { "\nORDER BY " } else { ", " });
            let x = col(&o.column.column);
            out.append(match &o.variants {
                Some(variants) => {
                    let mut s = Sql::wrap("CASE ", x, "");
                    for (k, v) in variants.iter().enumerate() {
                        s.push(" WHEN ");
                        s.param(Param::Value(v.clone().into()));
                        s.push(&format!(" THEN {k}"));
                    }
                    s.push(" END");
                    s
                }
                None => match (out_type(o.column.ty), self.d.byte_collation()) {
                    (OutType::String, Some(c)) => Sql::wrap("", x, &format!(" COLLATE {c}")),
                    _ => x,
                },
            });
            out.push(if o.descending {
                " DESC NULLS LAST"
            } else {
                " ASC NULLS LAST"
            });
        }
        self.page(&mut out);
        Ok(out)
    }
}
