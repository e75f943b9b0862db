//! Row policies: a condition per physical table that restricts its rows by attributes of the
//! caller (docs/SEMANTIC-LAYER.md, "Row policies").
//!
//! ```toml
//! [[policy]]
//! table = "fct_membership_purchases"
//! condition = "user_id IN (SELECT user_id FROM \"gym\".\"dim_user\" WHERE branch_id = caller.branch_id)"
//! description = "A branch sees the memberships of its own users."
//! ```
//!
//! The condition is SQL from the model file (trusted like the model's SQL files), read by the
//! one lexer: `caller.NAME` outside strings, quoted identifiers and comments stands for the
//! caller's attribute `NAME`, bound as a parameter (never spliced): after `IN` as the list of
//! the attribute's values, elsewhere as its one value. Tables named `"<model>"."…"` in the
//! condition are read where the model lives (like its SQL files), unfiltered.

use crate::lexer::{self, TokenKind};

/// A validated row policy of one physical table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The namespace of the table.
    pub namespace: String,
    /// The physical table.
    pub table: String,
    /// The condition, as pieces of SQL text and caller attributes.
    pub condition: Vec<PolicyPart>,
    /// The condition as written in the model file (for descriptions and explain).
    pub text: String,
    /// Where the policy is declared: `(file, line)`.
    pub defined_at: (String, usize),
}

/// A piece of a policy's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPart {
    /// SQL text (comments removed), copied as it is.
    Sql(String),
    /// `caller.NAME`: the caller's attribute `name`, as its list of values after `IN`
    /// (`list`), else as its one value.
    Attribute {
        /// The attribute's name.
        name: String,
        /// Whether it stands for the list of the attribute's values (`IN caller.NAME`).
        list: bool,
    },
}

impl Policy {
    /// The caller attributes the condition reads, each once, in order.
    pub fn attributes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.condition {
            if let PolicyPart::Attribute { name, .. } = p
                && !out.contains(&name.as_str())
            {
                out.push(name);
            }
        }
        out
    }
}

/// The prefix every caller attribute is written with in a condition.
const CALLER: &str = "caller";

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Whether `text` (what precedes an attribute) ends with the keyword `IN`.
fn ends_with_in(text: &str) -> bool {
    let t = text.trim_end();
    if t.len() < 2 || !t.is_char_boundary(t.len() - 2) {
        return false;
    }
    let (head, word) = t.split_at(t.len() - 2);
    word.eq_ignore_ascii_case("in") && !head.chars().next_back().is_some_and(is_ident_char)
}

/// Parses a condition: its pieces, or what is wrong with it. `model` and `namespace`: tables
/// named `"<model>"."…"` are read from `"<namespace>"."…"`.
pub fn parse_condition(
    text: &str,
    model: &str,
    namespace: &str,
) -> Result<Vec<PolicyPart>, String> {
    if text.trim().is_empty() {
        return Err("the condition is empty".to_owned());
    }
    for t in lexer::tokens(text) {
        let unterminated = match t.kind {
            TokenKind::String => !(t.text.len() >= 2 && t.text.ends_with('\'')),
            TokenKind::QuotedIdent => !(t.text.len() >= 2 && t.text.ends_with('"')),
            TokenKind::BlockComment => !t.text.ends_with("*/") || t.text.len() < 4,
            _ => false,
        };
        if unterminated {
            return Err(format!(
                "unterminated {} at {:?}",
                match t.kind {
                    TokenKind::String => "string",
                    TokenKind::QuotedIdent => "quoted identifier",
                    _ => "comment",
                },
                t.text.chars().take(20).collect::<String>()
            ));
        }
        match t.kind {
            TokenKind::Placeholder(_) => {
                return Err(format!(
                    "{} is not allowed: a policy binds caller attributes only (caller.NAME)",
                    t.text
                ));
            }
            TokenKind::DollarString => {
                return Err("dollar-quoted strings are not allowed in a policy".to_owned());
            }
            TokenKind::Text if t.text.contains(';') => {
                return Err("a policy is one condition: `;` is not allowed".to_owned());
            }
            _ => {}
        }
    }
    let stripped = lexer::strip_comments(text);
    let located = if model == namespace {
        stripped
    } else {
        lexer::requalify(&stripped, model, namespace)
    };
    let mut parts: Vec<PolicyPart> = Vec::new();
    let mut sql = String::new();
    for t in lexer::tokens(&located) {
        if t.kind != TokenKind::Text {
            sql.push_str(t.text);
            continue;
        }
        let s = t.text;
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            let word_start = !s[..i].chars().next_back().is_some_and(is_ident_char);
            let is_caller = word_start
                && rest.len() >= CALLER.len()
                && rest[..CALLER.len()].eq_ignore_ascii_case(CALLER)
                && !rest[CALLER.len()..]
                    .chars()
                    .next()
                    .is_some_and(is_ident_char);
            if !is_caller {
                let c = rest.chars().next().unwrap_or(' ');
                sql.push(c);
                i += c.len_utf8();
                continue;
            }
            let after = &rest[CALLER.len()..];
            let Some(name_text) = after.strip_prefix('.') else {
                return Err(format!(
                    "`{CALLER}` must be followed by `.NAME` (a caller attribute), at {:?}",
                    rest.chars().take(20).collect::<String>()
                ));
            };
            let name: String = name_text
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.chars().next().is_some_and(is_ident_start) {
                return Err(format!(
                    "`{CALLER}.` must be followed by an attribute name (letters, digits, _), at {:?}",
                    rest.chars().take(20).collect::<String>()
                ));
            }
            let list = ends_with_in(&sql);
            i += CALLER.len() + 1 + name.len();
            parts.push(PolicyPart::Sql(std::mem::take(&mut sql)));
            parts.push(PolicyPart::Attribute { name, list });
        }
    }
    if !sql.is_empty() {
        parts.push(PolicyPart::Sql(sql));
    }
    parts.retain(|p| !matches!(p, PolicyPart::Sql(s) if s.is_empty()));
    if !parts
        .iter()
        .any(|p| matches!(p, PolicyPart::Attribute { .. }))
    {
        return Err(format!(
            "the condition reads no caller attribute (write `{CALLER}.NAME` where the caller's value goes)"
        ));
    }
    Ok(parts)
}

/// A word of SQL text for [`unfiltered_reads`]: an identifier (`quoted` when written
/// `"…"`), or one character of punctuation (strings, comments and placeholders are `?`).
#[derive(Debug, PartialEq)]
struct Word {
    text: String,
    quoted: bool,
    ident: bool,
}

fn words(sql: &str) -> Vec<Word> {
    let mut out = Vec::new();
    for t in lexer::tokens(sql) {
        match t.kind {
            TokenKind::Text => {
                let mut chars = t.text.char_indices().peekable();
                while let Some((i, c)) = chars.next() {
                    if is_ident_start(c) {
                        let mut end = i + c.len_utf8();
                        while let Some((j, d)) = chars.peek().copied() {
                            if !is_ident_char(d) {
                                break;
                            }
                            end = j + d.len_utf8();
                            chars.next();
                        }
                        out.push(Word {
                            text: t.text[i..end].to_ascii_lowercase(),
                            quoted: false,
                            ident: true,
                        });
                    } else if !c.is_whitespace() {
                        out.push(Word {
                            text: c.to_string(),
                            quoted: false,
                            ident: false,
                        });
                    }
                }
            }
            TokenKind::QuotedIdent => out.push(Word {
                text: t
                    .text
                    .trim_start_matches('"')
                    .trim_end_matches('"')
                    .replace("\"\"", "\""),
                quoted: true,
                ident: true,
            }),
            k if k.is_comment() => {}
            _ => out.push(Word {
                text: "?".to_owned(),
                quoted: false,
                ident: false,
            }),
        }
    }
    out
}

/// How SQL text reads `namespace.table` in ways the policy rewrite does not see: the name
/// without quotes (`gym.dim_user`, `"gym".dim_user`), or the table without its namespace
/// after `FROM` / `JOIN` (unless the text defines a CTE of that name). One message per
/// kind found.
pub fn unfiltered_reads(sql: &str, namespace: &str, table: &str) -> Vec<String> {
    let w = words(sql);
    let is = |x: &Word, name: &str| {
        x.ident
            && if x.quoted {
                x.text == name
            } else {
                x.text.eq_ignore_ascii_case(name)
            }
    };
    let dot = |k: usize| w.get(k).is_some_and(|x| !x.ident && x.text == ".");
    let cte = (0..w.len()).any(|k| {
        is(&w[k], table)
            && w.get(k + 1)
                .is_some_and(|x| x.ident && !x.quoted && x.text == "as")
            && w.get(k + 2).is_some_and(|x| {
                (!x.ident && x.text == "(")
                    || (x.ident && !x.quoted && matches!(x.text.as_str(), "materialized" | "not"))
            })
    });
    let mut out = Vec::new();
    for k in 0..w.len() {
        if is(&w[k], namespace) && dot(k + 1) && w.get(k + 2).is_some_and(|x| is(x, table)) {
            if !(w[k].quoted && w[k + 2].quoted) {
                let m = format!(
                    "names {namespace}.{table} without quotes: write \"{namespace}\".\"{table}\" so its row policy applies"
                );
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            continue;
        }
        let unqualified = k > 0
            && is(&w[k], table)
            && !dot(k + 1)
            && w[k - 1].ident
            && !w[k - 1].quoted
            && matches!(w[k - 1].text.as_str(), "from" | "join");
        if unqualified && !cte {
            let m = format!(
                "reads {table} without its namespace: write \"{namespace}\".\"{table}\" so its row policy applies"
            );
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn attr(name: &str, list: bool) -> PolicyPart {
        PolicyPart::Attribute {
            name: name.to_owned(),
            list,
        }
    }

    #[test]
    fn scalar_and_list_attributes() {
        let sql = |t: &str| PolicyPart::Sql(t.into());
        // `in` inside a word is not the keyword; `caller` inside a word is not the caller
        for (text, want) in [
            (
                "branch_id = caller.branch_id",
                vec![sql("branch_id = "), attr("branch_id", false)],
            ),
            (
                "user_id IN caller.user_ids -- c\n",
                vec![sql("user_id IN "), attr("user_ids", true), sql(" \n")],
            ),
            (
                "login = caller.x AND mycaller = 1",
                vec![sql("login = "), attr("x", false), sql(" AND mycaller = 1")],
            ),
        ] {
            assert_eq!(parse_condition(text, "m", "m").unwrap(), want, "{text}");
        }
    }

    #[test]
    fn subqueries_are_requalified_and_strings_left_alone() {
        let p = parse_condition(
            "user_id IN (SELECT user_id FROM \"gym\".\"dim_user\" WHERE branch_id = caller.branch_id AND 'caller.x' <> '')",
            "gym",
            "public",
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                PolicyPart::Sql(
                    "user_id IN (SELECT user_id FROM \"public\".\"dim_user\" WHERE branch_id = "
                        .into()
                ),
                attr("branch_id", false),
                PolicyPart::Sql(" AND 'caller.x' <> '')".into()),
            ]
        );
    }

    #[test]
    fn reads_that_escape_the_rewrite_are_found() {
        let ok = "WITH users AS (SELECT 1) SELECT * FROM \"saas\".\"users\" AS u JOIN users ON TRUE -- FROM users\n";
        assert!(unfiltered_reads(ok, "saas", "users").is_empty());
        let bad = unfiltered_reads(
            "SELECT * FROM saas.users JOIN \"saas\".users ON TRUE",
            "saas",
            "users",
        );
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].contains("without quotes"));
        let bad = unfiltered_reads("SELECT * FROM payments p", "saas", "payments");
        assert!(bad[0].contains("without its namespace"), "{bad:?}");
        // a column of the same name is not a read
        assert!(unfiltered_reads("SELECT users FROM x", "saas", "users").is_empty());
    }

    #[test]
    fn bad_conditions_say_why() {
        for (text, wanted) in [
            ("", "empty"),
            ("branch_id = 'x", "unterminated string"),
            ("branch_id = $1", "$1 is not allowed"),
            ("branch_id = caller", "must be followed by `.NAME`"),
            ("branch_id = caller.", "attribute name"),
            ("branch_id = caller.b; DROP TABLE x", "`;`"),
            ("branch_id = 'b1'", "reads no caller attribute"),
            ("a = caller.b /* open", "unterminated comment"),
        ] {
            let e = parse_condition(text, "gym", "gym").unwrap_err();
            assert!(e.contains(wanted), "{text}: {e}");
        }
    }
}
