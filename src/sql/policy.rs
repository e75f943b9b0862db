//! Row policies in a statement: every read of a table with a policy reads a filtered CTE
//! instead (`"tally_policy_<table>" AS (SELECT * FROM "<ns>"."<table>" WHERE <condition>)`),
//! put first in the statement's `WITH`, so every part of it — the `asOf` cuts, the model's
//! SQL tables, subqueries at any depth, the saas stage history — sees only the rows the
//! caller may see. The conditions' caller attributes are parameters ([`Param::Caller`]).
//!
//! Statements name tables `"<namespace>"."<table>"` (generated SQL, and the SQL files after
//! their qualifier is pointed at the model's namespace); the one lexer finds those names
//! outside strings and comments. A table named without an alias keeps its name as one
//! (`FROM "tally_policy_payments" AS "payments" WHERE …`).

use super::{Dialect, MARK, Sql, quote};
use crate::lexer::{self, Token, TokenKind};
use crate::plan::{CallerParam, Param};
use crate::semantic::{Policy, PolicyPart};

/// The CTE that reads `table` through its policy.
pub fn cte_name(table: &str) -> String {
    format!("tally_policy_{table}")
}

/// Words after a table name that show it has no alias of its own.
const CLAUSE_WORDS: &[&str] = &[
    "WHERE",
    "GROUP",
    "ORDER",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "CROSS",
    "FULL",
    "NATURAL",
    "ON",
    "USING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "LIMIT",
    "OFFSET",
    "HAVING",
    "WINDOW",
];

/// Whether the tokens from `at` on start without an alias: the end, a `)`, `,` or `;`, or a
/// clause keyword (white space and comments skipped).
fn without_alias(toks: &[Token<'_>], at: usize) -> bool {
    for t in &toks[at.min(toks.len())..] {
        if t.kind.is_comment() {
            continue;
        }
        if t.kind != TokenKind::Text {
            return false;
        }
        let s = t.text.trim_start();
        if s.is_empty() {
            continue;
        }
        if s.starts_with([')', ',', ';']) {
            return true;
        }
        let word: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return CLAUSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(&word));
    }
    true
}

/// `sql` with every read of a table of `policies` pointed at its policy CTE, those CTEs first
/// in its `WITH` (one is added when it has none). Unchanged when it reads none of them.
pub fn apply(sql: Sql, policies: &[Policy], d: &dyn Dialect) -> Sql {
    if policies.is_empty() {
        return sql;
    }
    let toks: Vec<Token<'_>> = lexer::tokens(&sql.text).collect();
    let mut used: Vec<&Policy> = Vec::new();
    let mut text = String::with_capacity(sql.text.len());
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let hit = (t.kind == TokenKind::QuotedIdent)
            .then(|| {
                let dot = toks.get(i + 1)?;
                let name = toks.get(i + 2)?;
                (dot.kind == TokenKind::Text
                    && dot.text == "."
                    && name.kind == TokenKind::QuotedIdent)
                    .then_some(())?;
                policies
                    .iter()
                    .find(|p| quote(&p.namespace) == t.text && quote(&p.table) == name.text)
            })
            .flatten();
        match hit {
            Some(p) => {
                text.push_str(&quote(&cte_name(&p.table)));
                if without_alias(&toks, i + 3) {
                    text.push_str(" AS ");
                    text.push_str(&quote(&p.table));
                }
                if !used.iter().any(|u| u.table == p.table) {
                    used.push(p);
                }
                i += 3;
            }
            None => {
                text.push_str(t.text);
                i += 1;
            }
        }
    }
    if used.is_empty() {
        return sql;
    }
    // where the statement's own WITH list starts (after `WITH` / `WITH RECURSIVE`)
    let mut lead = 0;
    let mut with_end = None;
    for t in lexer::tokens(&text) {
        if t.kind.is_comment() || (t.kind == TokenKind::Text && t.text.trim().is_empty()) {
            lead += t.text.len();
            continue;
        }
        if t.kind == TokenKind::Text {
            let s = t.text;
            let ws = s.len() - s.trim_start().len();
            let rest = &s[ws..];
            let word = |r: &str, w: &str| {
                r.len() >= w.len()
                    && r[..w.len()].eq_ignore_ascii_case(w)
                    && !r[w.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            };
            if word(rest, "WITH") {
                let mut end = lead + ws + 4;
                let after = &rest[4..];
                let ws2 = after.len() - after.trim_start().len();
                if word(&after[ws2..], "RECURSIVE") {
                    end += ws2 + "RECURSIVE".len();
                }
                with_end = Some(end);
            }
        }
        break;
    }
    let mut ctes = Sql::default();
    for (k, p) in used.iter().enumerate() {
        if k > 0 {
            ctes.push(",\n");
        }
        ctes.append(policy_cte(p, d));
    }
    let mut out = Sql::default();
    match with_end {
        Some(end) => {
            out.push(&text[..end]);
            out.push("\n");
            out.append(ctes);
            out.push(",");
            out.push(&text[end..]);
        }
        None => {
            out.push("WITH\n");
            out.append(ctes);
            out.push("\n");
            out.push(&text);
        }
    }
    out.params.extend(sql.params);
    out
}

/// A statement that reads no row but fails when `p`'s condition does not run on the
/// database (an unknown column or table): the policy CTE read with `WHERE 1 = 0`.
pub fn probe(p: &Policy, d: &dyn Dialect) -> Sql {
    let read = Sql::raw(&format!(
        "SELECT 1 FROM {}.{} WHERE 1 = 0",
        quote(&p.namespace),
        quote(&p.table)
    ));
    apply(read, std::slice::from_ref(p), d)
}

/// `text` (the SQL before a list attribute) with its closing `IN` written as `= ANY` (`NOT
/// IN` as `<> ALL`, the same three-valued logic), or `None` when it does not end with `IN`.
fn any_for_in(text: &str) -> Option<String> {
    let t = text.trim_end();
    let n = t.len();
    if n < 2 || !t.is_char_boundary(n - 2) || !t[n - 2..].eq_ignore_ascii_case("in") {
        return None;
    }
    let before = &t[..n - 2];
    if before
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let b = before.trim_end();
    let m = b.len();
    let negated = m >= 3
        && b.is_char_boundary(m - 3)
        && b[m - 3..].eq_ignore_ascii_case("not")
        && !b[..m - 3]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    Some(if negated {
        format!("{} <> ALL", b[..m - 3].trim_end())
    } else {
        format!("{before}= ANY")
    })
}

/// `"tally_policy_<table>" AS (SELECT * FROM "<ns>"."<table>" WHERE <condition>)` under a
/// comment naming the policy.
fn policy_cte(p: &Policy, d: &dyn Dialect) -> Sql {
    let table = format!("{}.{}", p.namespace, p.table);
    let mut s = Sql::raw(&format!(
        "-- row policy of {table}: {}\n{} AS (\n  SELECT * FROM {}.{} WHERE ",
        p.text.replace(['\n', '\r'], " "),
        quote(&cte_name(&p.table)),
        quote(&p.namespace),
        quote(&p.table)
    ));
    s.push("(");
    let array = d.json_array(&MARK.to_string());
    for (i, part) in p.condition.iter().enumerate() {
        match part {
            // policy text is trusted model-file SQL; markers cannot occur in it
            PolicyPart::Sql(t) => {
                let t = t.replace(MARK, "");
                let list_next = matches!(
                    p.condition.get(i + 1),
                    Some(PolicyPart::Attribute { list: true, .. })
                );
                match array
                    .as_ref()
                    .filter(|_| list_next)
                    .and_then(|_| any_for_in(&t))
                {
                    Some(any) => s.push(&any),
                    None => s.push(&t),
                }
            }
            PolicyPart::Attribute { name, list } => {
                let param = Param::Caller(CallerParam {
                    attribute: name.clone(),
                    list: *list,
                    table: table.clone(),
                });
                if *list {
                    let after_any = array.is_some()
                        && i > 0
                        && matches!(&p.condition[i - 1], PolicyPart::Sql(t) if any_for_in(t).is_some());
                    s.push("(");
                    match (&array, after_any) {
                        (Some(a), true) => s.push(a),
                        _ => s.push(&d.json_values(&MARK.to_string())),
                    }
                    s.push(")");
                    s.params.push(param);
                } else {
                    s.param(param);
                }
            }
        }
    }
    s.push(")\n)");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sql::{Postgres, Sqlite};

    fn policy(ns: &str, table: &str, cond: &str) -> Policy {
        Policy {
            namespace: ns.into(),
            table: table.into(),
            condition: crate::semantic::parse_condition(cond, ns, ns).unwrap(),
            text: cond.into(),
            defined_at: ("m.toml".into(), 1),
        }
    }

    #[test]
    fn reads_are_pointed_at_policy_ctes() {
        let ps = [policy("gym", "dim_user", "branch_id = caller.branch_id")];
        let mut sql = Sql::raw("WITH a AS (SELECT * FROM \"gym\".\"dim_user\" AS u WHERE x = ");
        sql.param(Param::Limit);
        sql.push(") SELECT * FROM a JOIN \"gym\".\"dim_user\" ON TRUE, '\"gym\".\"dim_user\"'");
        let out = apply(sql, &ps, &Postgres);
        let (text, params) = out.finish(&Postgres);
        assert_eq!(
            text,
            "WITH\n-- row policy of gym.dim_user: branch_id = caller.branch_id\n\
             \"tally_policy_dim_user\" AS (\n  SELECT * FROM \"gym\".\"dim_user\" WHERE (branch_id = $1)\n), \
             a AS (SELECT * FROM \"tally_policy_dim_user\" AS u WHERE x = $2) SELECT * FROM a \
             JOIN \"tally_policy_dim_user\" AS \"dim_user\" ON TRUE, '\"gym\".\"dim_user\"'"
        );
        assert!(matches!(&params[0], Param::Caller(c) if c.attribute == "branch_id" && !c.list));
        assert_eq!(params[1], Param::Limit);
    }

    #[test]
    fn lists_and_statements_without_with() {
        let ps = [policy("saas", "payments", "user_id IN caller.user_ids")];
        let sql = Sql::raw("SELECT COUNT(*) FROM \"saas\".\"payments\"");
        let (text, params) = apply(sql, &ps, &Sqlite).finish(&Sqlite);
        assert!(
            text.starts_with("WITH\n-- row policy of saas.payments")
                && text.contains("WHERE (user_id IN (SELECT value FROM json_each(?)))")
                && text.ends_with("FROM \"tally_policy_payments\" AS \"payments\""),
            "{text}"
        );
        assert!(matches!(&params[0], Param::Caller(c) if c.list));
        // PostgreSQL tests a row against an array (NOT IN: against every element)
        let (text, _) = apply(
            Sql::raw("SELECT COUNT(*) FROM \"saas\".\"payments\""),
            &ps,
            &Postgres,
        )
        .finish(&Postgres);
        assert!(
            text.contains(
                "WHERE (user_id = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))))"
            ),
            "{text}"
        );
        assert_eq!(any_for_in("a NOT IN "), Some("a <> ALL".to_owned()));
        assert_eq!(any_for_in("x in"), Some("x = ANY".to_owned()));
        assert_eq!(any_for_in("x = join"), None);
        assert_eq!(any_for_in("knot IN "), Some("knot = ANY".to_owned()));
        // a statement reading no policy table is left alone
        let other = Sql::raw("SELECT 1 FROM \"saas\".\"plans\"");
        assert_eq!(apply(other.clone(), &ps, &Sqlite), other);
    }
}
