//! Leaving out the columns of a SQL table that a statement does not read.
//!
//! A SQL table is a model author's query, embedded whole in every statement that reads the
//! table. PostgreSQL computes only the output columns of a subquery that are read; SQLite
//! does so too, except for a grouped (aggregate) subquery, where it computes every
//! aggregate of every group (`COUNT(DISTINCT …)` included) whether it is read or not. tally
//! cannot parse arbitrary SQL, so it rewrites a SQL table's text only when the text is of a
//! shape it can split safely, and leaves it as written otherwise:
//!
//! - one `SELECT` (after an optional `WITH …`, whose queries are left alone) with a
//!   `GROUP BY`, neither `DISTINCT` nor `UNION` / `INTERSECT` / `EXCEPT` at its level;
//! - a select-list item is replaced by `NULL AS <its name>` (so the columns keep their
//!   names and positions) when all of these hold: it ends in `AS <name>` or is a column
//!   reference (`l.customer_id`); the statement does not read that name; the name appears
//!   nowhere else in the text (a `GROUP BY`, `HAVING`, `ORDER BY` or `WHERE` naming the
//!   alias keeps it); no number in the text after `FROM` equals its position (`GROUP BY 3`
//!   keeps item 3); every function it calls is one of [`ROW_FUNCTIONS`] (aggregates, window
//!   functions and scalar functions that return one value per row: a set-returning
//!   function such as `unnest` would change the rows);
//! - when every item calling `min` or `max` would be replaced, the first of them is kept
//!   (SQLite takes a bare column's value from the row of a lone `min`/`max`).
//!
//! With `GROUP BY` the groups, and so the rows, do not depend on the select list, so the
//! rows are the same and the columns read have the same values.

use crate::lexer::{self, TokenKind};

/// The functions a replaced item may call: aggregates, window functions and scalar
/// functions of PostgreSQL and SQLite that give one value per row or group (lowercase).
pub const ROW_FUNCTIONS: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "total",
    "group_concat",
    "string_agg",
    "array_agg",
    "json_agg",
    "jsonb_agg",
    "json_group_array",
    "json_group_object",
    "bool_and",
    "bool_or",
    "every",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    // window functions
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // scalar
    "cast",
    "coalesce",
    "nullif",
    "ifnull",
    "iif",
    "greatest",
    "least",
    "extract",
    "date_part",
    "date_trunc",
    "to_char",
    "to_timestamp",
    "to_date",
    "age",
    "strftime",
    "julianday",
    "unixepoch",
    "date",
    "time",
    "datetime",
    "floor",
    "ceil",
    "ceiling",
    "round",
    "trunc",
    "abs",
    "sign",
    "sqrt",
    "power",
    "exp",
    "ln",
    "log",
    "mod",
    "substr",
    "substring",
    "lower",
    "upper",
    "length",
    "char_length",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "concat",
    "concat_ws",
    "instr",
    "position",
    "printf",
    "format",
];

/// Words that can stand before `(` without calling a function.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "exists",
    "when",
    "then",
    "else",
    "case",
    "end",
    "as",
    "on",
    "filter",
    "over",
    "within",
    "group",
    "distinct",
    "all",
    "between",
    "like",
    "is",
    "select",
    "from",
    "where",
    "by",
    "any",
    "some",
    "partition",
    "order",
    "rows",
    "range",
    "and",
];

/// One atom of a text: a token of the lexer, text tokens split further into words,
/// numbers, white space and single characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Number,
    Quoted,
    Space,
    Punct,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Atom<'a> {
    kind: Kind,
    text: &'a str,
    start: usize,
}

fn atoms(sql: &str) -> Vec<Atom<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    for t in lexer::tokens(sql) {
        let start = at;
        at += t.text.len();
        match t.kind {
            TokenKind::Text => {
                let b = t.text.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    let c = b[i];
                    let (kind, len) = if c.is_ascii_whitespace() {
                        let n = b[i..]
                            .iter()
                            .take_while(|x| x.is_ascii_whitespace())
                            .count();
                        (Kind::Space, n)
                    } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
                        let n = b[i..]
                            .iter()
                            .take_while(|x| {
                                x.is_ascii_alphanumeric()
                                    || **x == b'_'
                                    || **x == b'$'
                                    || **x >= 0x80
                            })
                            .count();
                        (Kind::Word, n)
                    } else if c.is_ascii_digit() {
                        let n = b[i..]
                            .iter()
                            .take_while(|x| x.is_ascii_alphanumeric() || **x == b'.')
                            .count();
                        (Kind::Number, n)
                    } else {
                        let n = t.text[i..].chars().next().map_or(1, char::len_utf8);
                        (Kind::Punct, n)
                    };
                    out.push(Atom {
                        kind,
                        text: &t.text[i..i + len],
                        start: start + i,
                    });
                    i += len;
                }
            }
            TokenKind::QuotedIdent => out.push(Atom {
                kind: Kind::Quoted,
                text: t.text,
                start,
            }),
            k if k.is_comment() => out.push(Atom {
                kind: Kind::Space,
                text: t.text,
                start,
            }),
            _ => out.push(Atom {
                kind: Kind::Other,
                text: t.text,
                start,
            }),
        }
    }
    out
}

/// The name an identifier atom stands for, lowercase (SQLite compares names without case;
/// PostgreSQL folds unquoted names): `None` for other atoms.
fn ident(a: &Atom<'_>) -> Option<String> {
    match a.kind {
        Kind::Word => Some(a.text.to_lowercase()),
        Kind::Quoted => {
            let inner = a.text.strip_prefix('"')?;
            let inner = inner.strip_suffix('"').unwrap_or(inner);
            Some(inner.replace("\"\"", "\"").to_lowercase())
        }
        _ => None,
    }
}

/// Every identifier of `sql` (words and quoted identifiers, lowercase): what a statement
/// may read.
pub fn identifiers(sql: &str) -> std::collections::HashSet<String> {
    atoms(sql).iter().filter_map(ident).collect()
}

fn is_word(a: &Atom<'_>, w: &str) -> bool {
    a.kind == Kind::Word && a.text.eq_ignore_ascii_case(w)
}

/// One select-list item: its atoms (indices into the text's atoms, white space left out).
struct Item {
    atoms: Vec<usize>,
}

/// `sql` with every select-list item whose column `read` does not ask for replaced by
/// `NULL AS <name>`, when the text has the shape described in the module documentation;
/// `None` when nothing is replaced.
pub fn prune(sql: &str, read: impl Fn(&str) -> bool) -> Option<String> {
    let all = atoms(sql);
    // significant atoms with their paren depth
    let sig: Vec<(usize, i32)> = {
        let mut depth = 0;
        let mut v = Vec::new();
        for (i, a) in all.iter().enumerate() {
            if a.kind == Kind::Space {
                continue;
            }
            if a.kind == Kind::Punct && a.text == ")" {
                depth -= 1;
            }
            v.push((i, depth));
            if a.kind == Kind::Punct && a.text == "(" {
                depth += 1;
            }
        }
        v
    };
    let first = sig.first()?;
    if !(is_word(&all[first.0], "select") || is_word(&all[first.0], "with")) {
        return None;
    }
    let sel = sig
        .iter()
        .position(|&(i, d)| d == 0 && is_word(&all[i], "select"))?;
    let mut k = sel + 1;
    if let Some(&(i, _)) = sig.get(k) {
        if is_word(&all[i], "distinct") {
            return None;
        }
        if is_word(&all[i], "all") {
            k += 1;
        }
    }
    // the items, up to FROM
    let mut items: Vec<Item> = vec![Item { atoms: Vec::new() }];
    let from = loop {
        let &(i, d) = sig.get(k)?;
        if d < 0 {
            return None;
        }
        if d == 0 && is_word(&all[i], "from") {
            break k;
        }
        if d == 0 && all[i].kind == Kind::Punct && all[i].text == "," {
            items.push(Item { atoms: Vec::new() });
        } else {
            items.last_mut()?.atoms.push(i);
        }
        k += 1;
    };
    // after FROM: a GROUP BY, no set operation, one statement; numbers that may be positions
    let mut grouped = false;
    let mut positions = std::collections::HashSet::new();
    for w in sig[from..].windows(2) {
        let ((i, d), (j, _)) = (w[0], w[1]);
        if d == 0 {
            let a = &all[i];
            if ["union", "intersect", "except"]
                .iter()
                .any(|s| is_word(a, s))
                || (a.kind == Kind::Punct && a.text == ";")
            {
                return None;
            }
            if is_word(a, "group") && is_word(&all[j], "by") {
                grouped = true;
            }
        }
    }
    for &(i, _) in &sig[from..] {
        let a = &all[i];
        if a.kind == Kind::Punct && a.text == ";" && sig.last().map(|x| x.0) != Some(i) {
            return None;
        }
        if a.kind == Kind::Number
            && let Ok(n) = a.text.parse::<usize>()
        {
            positions.insert(n);
        }
    }
    if !grouped {
        return None;
    }
    // how often each name occurs in the whole text
    let mut occurrences: std::collections::HashMap<String, usize> = Default::default();
    for a in &all {
        if let Some(n) = ident(a) {
            *occurrences.entry(n).or_default() += 1;
        }
    }
    let calls = |item: &Item| -> Vec<String> {
        item.atoms
            .windows(2)
            .filter(|w| {
                all[w[0]].kind == Kind::Word
                    && all[w[1]].kind == Kind::Punct
                    && all[w[1]].text == "("
            })
            .map(|w| all[w[0]].text.to_lowercase())
            .filter(|f| !KEYWORDS.contains(&f.as_str()))
            .collect()
    };
    // (item index, name atom) of every item that may be replaced
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut min_max: Vec<usize> = Vec::new();
    let mut kept_min_max = false;
    for (n, item) in items.iter().enumerate() {
        let a = &item.atoms;
        let uses_min_max = calls(item).iter().any(|f| f == "min" || f == "max");
        let name = match a.as_slice() {
            [.., x, y] if is_word(&all[*x], "as") && ident(&all[*y]).is_some() => Some(*y),
            [y] if ident(&all[*y]).is_some() => Some(*y),
            [_, dot, y]
                if all[*dot].text == "."
                    && ident(&all[*y]).is_some()
                    && ident(&all[a[0]]).is_some() =>
            {
                Some(*y)
            }
            _ => None,
        };
        let replace = name.filter(|&y| {
            let Some(id) = ident(&all[y]) else {
                return false;
            };
            // the name occurs only here; an item that is a bare column names it once more
            let own = a
                .iter()
                .filter(|&&x| ident(&all[x]).as_deref() == Some(&id))
                .count();
            !read(&id)
                && occurrences.get(&id).copied().unwrap_or(0) == own
                && !positions.contains(&(n + 1))
                && a.len() > 1
                && calls(item)
                    .iter()
                    .all(|f| ROW_FUNCTIONS.contains(&f.as_str()))
        });
        match replace {
            Some(y) => {
                if uses_min_max {
                    min_max.push(out.len());
                }
                out.push((n, y));
            }
            None => kept_min_max |= uses_min_max,
        }
    }
    if !kept_min_max && let Some(&first) = min_max.first() {
        out.remove(first);
    }
    if out.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(sql.len());
    let mut at = 0;
    for (n, y) in out {
        let a = &items[n].atoms;
        let (s, e) = (
            all[a[0]].start,
            all[*a.last()?].start + all[*a.last()?].text.len(),
        );
        text.push_str(&sql[at..s]);
        text.push_str("NULL AS ");
        text.push_str(all[y].text);
        at = e;
    }
    text.push_str(&sql[at..]);
    Some(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::prune;

    const TABLE: &str = "SELECT\n    l.customer_id,\n    SUM(l.amt - l.discount) AS net_sales,\n    COUNT(DISTINCT l.order_id) AS orders,\n    MIN(l.order_time) AS first_order_time,\n    MAX(l.order_time) AS last_order_time\nFROM \"shop\".\"order_line\" AS l\nWHERE l.order_time <= $1\nGROUP BY l.customer_id";

    fn only<'a>(names: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |c: &str| names.contains(&c)
    }

    #[test]
    fn replaces_the_items_not_read() {
        let out = prune(
            TABLE,
            only(&["customer_id", "net_sales", "first_order_time"]),
        )
        .unwrap();
        assert_eq!(
            out,
            "SELECT\n    l.customer_id,\n    SUM(l.amt - l.discount) AS net_sales,\n    NULL AS orders,\n    MIN(l.order_time) AS first_order_time,\n    NULL AS last_order_time\nFROM \"shop\".\"order_line\" AS l\nWHERE l.order_time <= $1\nGROUP BY l.customer_id"
        );
    }

    #[test]
    fn keeps_one_min_or_max() {
        let out = prune(TABLE, only(&["net_sales"])).unwrap();
        assert!(
            out.contains("MIN(l.order_time) AS first_order_time"),
            "{out}"
        );
        assert!(out.contains("NULL AS last_order_time"), "{out}");
        assert!(out.contains("NULL AS orders"), "{out}");
        // the grouping column is named in GROUP BY
        assert!(out.contains("l.customer_id,"), "{out}");
    }

    #[test]
    fn leaves_other_shapes_alone() {
        let none = only(&[]);
        // no GROUP BY, DISTINCT, set operations, several statements
        assert_eq!(prune("SELECT a, SUM(b) AS s FROM t", &none), None);
        assert_eq!(
            prune("SELECT DISTINCT a, SUM(b) AS s FROM t GROUP BY a", &none),
            None
        );
        assert_eq!(
            prune(
                "SELECT a, SUM(b) AS s FROM t GROUP BY a UNION SELECT 1, 2",
                &none
            ),
            None
        );
        assert_eq!(
            prune(
                "SELECT a, SUM(b) AS s FROM t GROUP BY a; DROP TABLE t",
                &none
            ),
            None
        );
        // a set-returning function, an unknown function
        assert_eq!(
            prune("SELECT a, unnest(b) AS u FROM t GROUP BY a, b", &none),
            None
        );
        assert_eq!(
            prune("SELECT a, my_fn(b) AS u FROM t GROUP BY a, b", &none),
            None
        );
        // a name used elsewhere, a position
        assert_eq!(
            prune(
                "SELECT a, SUM(b) AS s FROM t GROUP BY a HAVING s > 0",
                &none
            ),
            None
        );
        assert_eq!(
            prune("SELECT SUM(b) AS s, a FROM t GROUP BY 2 ORDER BY 1", &none),
            None
        );
    }

    #[test]
    fn the_shipped_customer_value_tables_are_pruned() {
        for text in [
            include_str!("../../models/shop/customer_value.sql"),
            include_str!("../../models/shop/customer_value.sqlite.sql"),
        ] {
            // customerLifetimeValue by firstOrderTime
            let out = prune(
                text,
                only(&["customer_id", "net_sales", "first_order_time"]),
            )
            .unwrap();
            for gone in ["orders", "last_order_time", "days_since_last_order"] {
                assert!(out.contains(&format!("NULL AS {gone}")), "{gone}: {out}");
            }
            assert!(
                out.contains("SUM(l.amt - l.discount) AS net_sales"),
                "{out}"
            );
            assert!(
                out.contains("MIN(l.order_time) AS first_order_time"),
                "{out}"
            );
            assert!(!out.contains("COUNT(DISTINCT"), "{out}");
        }
    }

    #[test]
    fn reads_past_with_and_keeps_positions() {
        let sql = "WITH x AS (SELECT * FROM t) SELECT a, COUNT(*) AS n, SUM(\"b\") AS \"S\" FROM x GROUP BY 1";
        assert_eq!(
            prune(sql, only(&["a"])).unwrap(),
            "WITH x AS (SELECT * FROM t) SELECT a, NULL AS n, NULL AS \"S\" FROM x GROUP BY 1"
        );
        assert_eq!(
            prune(sql, only(&["a", "s"])).unwrap(),
            "WITH x AS (SELECT * FROM t) SELECT a, NULL AS n, SUM(\"b\") AS \"S\" FROM x GROUP BY 1"
        );
    }
}
