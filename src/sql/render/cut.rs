//! The `asOf` cut of a table: `SELECT <the columns the statement reads, or *> FROM <source>
//! WHERE <conditions>`, or the latest row per key of the rows meeting them.

use super::super::{MARK, Sql, quote};
use super::{Read, Renderer};
use crate::lexer::{self, TokenKind};
use crate::plan::{CutCondition, CutNode, CutSource, Param, PlanError};
use crate::sql::prune::prune;

impl Renderer<'_> {
    pub(super) fn cut(&self, c: &CutNode) -> Result<Sql, PlanError> {
        let src = match &c.source {
            CutSource::Physical { namespace, name } => {
                Sql::raw(&format!("{}.{}", quote(namespace), quote(name)))
            }
            CutSource::Sql {
                postgres,
                sqlite,
                params,
            } => {
                let text = self.d.sql_text(postgres, sqlite);
                let mut s = Sql::raw("(\n");
                match self.read {
                    Read::All => s.append(sql_file(text, params, false)?),
                    Read::Nothing => {}
                    Read::Only(used) => {
                        let pruned = prune(text, |c| used.contains(c));
                        s.append(sql_file(pruned.as_deref().unwrap_or(text), params, false)?)
                    }
                }
                s.push("\n  )");
                s
            }
        };
        let mut where_clause = Sql::default();
        for (i, cond) in c.conditions.iter().enumerate() {
            where_clause.push(if i == 0 { " WHERE " } else { " AND " });
            let (col, op, p) = match cond {
                CutCondition::AtMost(col, p) => (col, " <= ", p),
                CutCondition::Equals(col, p) => (col, " = ", p),
            };
            where_clause.append(Sql::ident(col));
            where_clause.push(op);
            where_clause.param(p.clone());
        }
        Ok(match &c.latest {
            None => {
                let mut s = Sql::raw(&format!("SELECT {} FROM ", self.cut_columns(c)));
                s.append(src);
                s.push(" AS \"tally_s\"");
                s.append(where_clause);
                s
            }
            Some(latest) => {
                let keys: Vec<String> = latest.key.iter().map(|k| quote(k)).collect();
                let mut s = Sql::raw(
                    "SELECT * FROM (SELECT \"tally_s\".*, ROW_NUMBER() OVER (PARTITION BY ",
                );
                s.push(&keys.join(", "));
                s.push(&format!(
                    " ORDER BY {} DESC) AS \"tally_rn\" FROM ",
                    quote(&latest.by)
                ));
                s.append(src);
                s.push(" AS \"tally_s\"");
                s.append(where_clause);
                // `<= 1`, not `= 1` (the same rows: numbers start at 1): PostgreSQL estimates
                // `= 1` on a window's output at 0.5 % of the rows, then joins the cut by a
                // nested loop that grows with the square of the keys
                s.push(") AS \"tally_v\" WHERE \"tally_rn\" <= 1");
                s
            }
        })
    }
}

impl Renderer<'_> {
    /// The select list of a cut without `latest`: `*`, or, in a statement that learnt which
    /// names it reads ([`Read::Only`]), the table's columns it names. A cut read twice or
    /// more is materialised whole by both backends, so a column nobody reads would be
    /// computed all the same: a SQL table's LEFT JOIN that only adds such a column (the saas
    /// stages' plan) is then dropped by PostgreSQL, and SQLite skips a correlated subquery
    /// that only computes one. `*` when it names none of them (a bare `COUNT(*)`).
    fn cut_columns(&self, c: &CutNode) -> String {
        let Read::Only(used) = self.read else {
            return "*".to_owned();
        };
        let read: Vec<String> = c
            .table
            .columns
            .iter()
            .filter(|(name, _)| used.contains(&name.to_lowercase()))
            .map(|(name, _)| quote(name))
            .collect();
        if read.is_empty() || read.len() == c.table.columns.len() {
            "*".to_owned()
        } else {
            read.join(", ")
        }
    }
}

/// A SQL file's text with every `$n` outside strings, quoted identifiers and comments
/// turned into `params[n - 1]` (never spliced). A `$n` without a parameter is an internal
/// error (validation rejects it), or with `lenient` stays as it is written. Parameter
/// markers in the text are dropped.
pub(crate) fn sql_file(text: &str, params: &[Param], lenient: bool) -> Result<Sql, PlanError> {
    let mut s = Sql::default();
    for t in lexer::tokens(text) {
        if let TokenKind::Placeholder(n) = t.kind {
            match n.checked_sub(1).and_then(|k| params.get(k)) {
                Some(p) => {
                    s.param(p.clone());
                    continue;
                }
                None if !lenient => {
                    return Err(PlanError::new(format!(
                        "a SQL table's {} has no parameter ({} declared)",
                        t.text,
                        params.len()
                    )));
                }
                None => {}
            }
        }
        if t.text.contains(MARK) {
            s.push(&t.text.replace(MARK, ""));
        } else {
            s.push(t.text);
        }
    }
    Ok(s)
}
