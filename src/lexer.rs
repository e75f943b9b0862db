//! The one lexer for SQL text that tally reads or rewrites (the SQL files of SQL tables):
//! it splits a text into [`Token`]s — plain text, `'…'` strings, `"…"` quoted identifiers,
//! `$tag$…$tag$` dollar-quoted strings, `-- …` and `/* … */` comments, and `$n`
//! placeholders — so that callers never scan quotes and comments by hand.
//!
//! The rules are PostgreSQL's, which SQLite's text (tally's SQLite files use no syntax
//! beyond it) follows too:
//! - `'…'` with `''` for a quote; `E'…'` also takes backslash escapes.
//! - `"…"` with `""` for a quote.
//! - `$tag$…$tag$` (`tag` empty or an identifier) is a string; its content is not looked into.
//! - `-- …` runs to the end of the line (the newline is not part of the comment); `/* … */`
//!   does not nest.
//! - `$n` (digits) is a placeholder, unless the `$` continues an identifier (`a$1`).
//!
//! An unterminated string, identifier or comment runs to the end of the text. Concatenating
//! the tokens' texts gives the input back.

/// What a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Anything else: keywords, identifiers, numbers, operators, white space.
    Text,
    /// A string literal `'…'` (or `E'…'`).
    String,
    /// A quoted identifier `"…"`.
    QuotedIdent,
    /// A dollar-quoted string `$tag$…$tag$`.
    DollarString,
    /// A line comment `-- …`, without its newline.
    LineComment,
    /// A block comment `/* … */`.
    BlockComment,
    /// A placeholder `$n` (its number; `usize::MAX` when it does not fit).
    Placeholder(usize),
}

impl TokenKind {
    /// Whether the token is a comment.
    pub fn is_comment(self) -> bool {
        matches!(self, TokenKind::LineComment | TokenKind::BlockComment)
    }
}

/// One token: its kind and its exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What it is.
    pub kind: TokenKind,
    /// Its text, as in the input (quotes, comment markers and `$` included).
    pub text: &'a str,
}

/// The tokens of `sql`, in order.
pub fn tokens(sql: &str) -> Lexer<'_> {
    Lexer { sql, at: 0 }
}

/// An iterator over the [`Token`]s of a text (see [`tokens`]).
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    sql: &'a str,
    at: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<'a> Lexer<'a> {
    /// The kind and byte length of the token that starts at `i`, when it is not text.
    fn special_at(&self, i: usize) -> Option<(TokenKind, usize)> {
        let b = self.sql.as_bytes();
        let rest = &self.sql[i..];
        let prev_ident = i > 0 && is_ident_char(b[i - 1]);
        match b[i] {
            b'\'' => {
                // E'…': the E was already emitted as text only when it belongs to a word
                let escapes = i > 0
                    && (b[i - 1] == b'E' || b[i - 1] == b'e')
                    && !(i > 1 && is_ident_char(b[i - 2]));
                Some((TokenKind::String, quoted_len(rest, b'\'', escapes)))
            }
            b'"' => Some((TokenKind::QuotedIdent, quoted_len(rest, b'"', false))),
            b'-' if rest.starts_with("--") => Some((
                TokenKind::LineComment,
                rest.find('\n').unwrap_or(rest.len()),
            )),
            b'/' if rest.starts_with("/*") => Some((
                TokenKind::BlockComment,
                rest[2..].find("*/").map(|k| k + 4).unwrap_or(rest.len()),
            )),
            b'$' if !prev_ident => {
                let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    let n = rest[1..=digits].parse().unwrap_or(usize::MAX);
                    return Some((TokenKind::Placeholder(n), 1 + digits));
                }
                // $tag$ … $tag$
                let tag_len = rest[1..]
                    .bytes()
                    .enumerate()
                    .take_while(|(k, c)| {
                        if *k == 0 {
                            is_ident_start(*c)
                        } else {
                            is_ident_char(*c) && *c != b'$'
                        }
                    })
                    .count();
                if rest.as_bytes().get(1 + tag_len) != Some(&b'$') {
                    return None;
                }
                let tag = &rest[..tag_len + 2];
                let body = &rest[tag.len()..];
                body.find(tag)
                    .map(|k| (TokenKind::DollarString, tag.len() + k + tag.len()))
            }
            _ => None,
        }
    }
}

/// The byte length of the quoted token at the start of `s` (opened by `q`; a doubled `q`
/// stands for itself; `escapes`: a backslash escapes the next character).
fn quoted_len(s: &str, q: u8, escapes: bool) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    // unterminated; never split a character when an escape jumped past the end
    s.len()
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let start = self.at;
        if start >= self.sql.len() {
            return None;
        }
        if let Some((kind, len)) = self.special_at(start) {
            let end = (start + len).min(self.sql.len());
            self.at = end;
            return Some(Token {
                kind,
                text: &self.sql[start..end],
            });
        }
        // text up to the next special token (a special token never starts mid-character:
        // every opener is ASCII)
        let b = self.sql.as_bytes();
        let mut i = start + 1;
        while i < b.len() {
            if matches!(b[i], b'\'' | b'"' | b'-' | b'/' | b'$') && self.special_at(i).is_some() {
                break;
            }
            i += 1;
        }
        self.at = i;
        Some(Token {
            kind: TokenKind::Text,
            text: &self.sql[start..i],
        })
    }
}

/// `sql` without its comments (a line comment's newline stays).
pub fn strip_comments(sql: &str) -> String {
    tokens(sql)
        .filter(|t| !t.kind.is_comment())
        .map(|t| t.text)
        .collect()
}

/// `sql` with every qualifier `"from".` (a quoted identifier followed by a dot, outside
/// strings and comments) replaced by `"to".`: how a model's SQL files, which name their
/// model's tables `"gym"."dim_user"`, read them from the namespace the model is mapped to.
pub fn requalify(sql: &str, from: &str, to: &str) -> String {
    let quoted_from = format!("\"{}\"", from.replace('"', "\"\""));
    let quoted_to = format!("\"{}\"", to.replace('"', "\"\""));
    let toks: Vec<Token<'_>> = tokens(sql).collect();
    let mut out = String::with_capacity(sql.len());
    for (i, t) in toks.iter().enumerate() {
        let qualifies = t.kind == TokenKind::QuotedIdent
            && t.text == quoted_from
            && toks
                .get(i + 1)
                .is_some_and(|n| n.kind == TokenKind::Text && n.text.starts_with('.'));
        out.push_str(if qualifies { &quoted_to } else { t.text });
    }
    out
}

/// The placeholders of `sql` (outside strings, identifiers and comments), in order.
pub fn placeholders(sql: &str) -> Vec<usize> {
    tokens(sql)
        .filter_map(|t| match t.kind {
            TokenKind::Placeholder(n) => Some(n),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requalify_moves_only_the_models_qualifier() {
        let sql = "SELECT \"gym\".x, '\"gym\".y' FROM \"gym\".\"dim_user\" AS u -- \"gym\".z\n JOIN \"gym\" AS g ON TRUE";
        assert_eq!(
            requalify(sql, "gym", "public"),
            "SELECT \"public\".x, '\"gym\".y' FROM \"public\".\"dim_user\" AS u -- \"gym\".z\n JOIN \"gym\" AS g ON TRUE"
        );
    }

    fn kinds(sql: &str) -> Vec<(TokenKind, &str)> {
        tokens(sql).map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn splits_every_kind_and_gives_the_text_back() {
        let sql = "SELECT 'a''$1' AS \"x\"\"$2\", $3 -- $4 'q\n/* $5 */ $$ $6 $$ $t$ $7 $t$ $8";
        let ks = kinds(sql);
        assert_eq!(
            ks,
            vec![
                (TokenKind::Text, "SELECT "),
                (TokenKind::String, "'a''$1'"),
                (TokenKind::Text, " AS "),
                (TokenKind::QuotedIdent, "\"x\"\"$2\""),
                (TokenKind::Text, ", "),
                (TokenKind::Placeholder(3), "$3"),
                (TokenKind::Text, " "),
                (TokenKind::LineComment, "-- $4 'q"),
                (TokenKind::Text, "\n"),
                (TokenKind::BlockComment, "/* $5 */"),
                (TokenKind::Text, " "),
                (TokenKind::DollarString, "$$ $6 $$"),
                (TokenKind::Text, " "),
                (TokenKind::DollarString, "$t$ $7 $t$"),
                (TokenKind::Text, " "),
                (TokenKind::Placeholder(8), "$8"),
            ]
        );
        assert_eq!(ks.iter().map(|(_, t)| *t).collect::<String>(), sql);
        assert_eq!(placeholders(sql), vec![3, 8]);
    }

    #[test]
    fn dollars_that_are_not_placeholders() {
        // in an identifier, alone, an unclosed dollar quote, a tag that is not one
        assert_eq!(placeholders("a$1 + b$ + $ + $x + $1x"), vec![1]);
        assert_eq!(
            kinds("$q$ never closed $1"),
            vec![
                (TokenKind::Text, "$q$ never closed "),
                (TokenKind::Placeholder(1), "$1"),
            ]
        );
        assert_eq!(
            kinds("($10)"),
            vec![
                (TokenKind::Text, "("),
                (TokenKind::Placeholder(10), "$10"),
                (TokenKind::Text, ")"),
            ]
        );
        assert_eq!(
            placeholders("$99999999999999999999999999"),
            vec![usize::MAX]
        );
    }

    #[test]
    fn escape_strings_and_unterminated_tokens() {
        assert_eq!(
            kinds(r"E'it\'s $1' $2"),
            vec![
                (TokenKind::Text, "E"),
                (TokenKind::String, r"'it\'s $1'"),
                (TokenKind::Text, " "),
                (TokenKind::Placeholder(2), "$2"),
            ]
        );
        // a backslash is an ordinary character in a standard string
        assert_eq!(placeholders(r"'a\' $1"), vec![1]);
        // `name'…'` is not an escape string: the backslash does not escape
        assert_eq!(
            kinds(r"name'a\' $1'"),
            vec![
                (TokenKind::Text, "name"),
                (TokenKind::String, r"'a\'"),
                (TokenKind::Text, " "),
                (TokenKind::Placeholder(1), "$1"),
                (TokenKind::String, "'"),
            ]
        );
        assert_eq!(kinds("'open $1"), vec![(TokenKind::String, "'open $1")]);
        assert_eq!(
            kinds("/* open $1"),
            vec![(TokenKind::BlockComment, "/* open $1")]
        );
        assert_eq!(kinds("-- $1"), vec![(TokenKind::LineComment, "-- $1")]);
        assert_eq!(kinds("a - b / c"), vec![(TokenKind::Text, "a - b / c")]);
        assert_eq!(kinds("é$1"), vec![(TokenKind::Text, "é$1")]);
        assert_eq!(kinds(""), vec![]);
    }

    #[test]
    fn strips_comments() {
        assert_eq!(
            strip_comments("-- a $2\nSELECT '--x' AS \"a--b\", $1 /* $3 */ FROM t;\n"),
            "\nSELECT '--x' AS \"a--b\", $1  FROM t;\n"
        );
    }
}
