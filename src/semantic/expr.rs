//! The expression language of model files: a tiny SQL-like language parsed to an AST.
//!
//! Column names, numeric and `'string'` literals, `+ - * /`, comparisons, `AND`/`OR`/`NOT`,
//! `IS [NOT] NULL`, `[NOT] IN (…)`, `CASE WHEN … THEN … ELSE … END`, and the functions
//! `coalesce`, `nullif`, `abs`, `lower`, `upper`, `json_text(column, 'key')`,
//! `days_between(start, end)` and `seconds_between(start, end)`. Literals are bound as
//! parameters when rendered; only identifiers (checked against the table's columns) reach
//! the SQL text.

use super::columns::ColType;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl BinOp {
    /// The SQL spelling.
    pub fn sql(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }
}

/// A function of the expression language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `coalesce(a, b, …)`
    Coalesce,
    /// `nullif(a, b)`
    Nullif,
    /// `abs(x)`
    Abs,
    /// `lower(s)`
    Lower,
    /// `upper(s)`
    Upper,
    /// `json_text(column, 'key')`: the text of a top-level key of a JSON object.
    JsonText,
    /// `days_between(start, end)`: `end - start` in days (fractional).
    DaysBetween,
    /// `seconds_between(start, end)`: `end - start` in seconds.
    SecondsBetween,
}

impl Func {
    fn parse(name: &str) -> Option<Func> {
        Some(match name.to_ascii_lowercase().as_str() {
            "coalesce" => Func::Coalesce,
            "nullif" => Func::Nullif,
            "abs" => Func::Abs,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "json_text" => Func::JsonText,
            "days_between" => Func::DaysBetween,
            "seconds_between" => Func::SecondsBetween,
            _ => return None,
        })
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the table (or, in derived metrics, a metric name).
    Column(String),
    /// An integer literal.
    Int(i64),
    /// A decimal literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `NULL`.
    Null,
    /// `-x`
    Neg(Box<Expr>),
    /// `NOT x`
    Not(Box<Expr>),
    /// `a op b`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `x IS NULL` (`negated`: `IS NOT NULL`).
    IsNull(Box<Expr>, bool),
    /// `x IN (…)` (`negated`: `NOT IN`).
    In(Box<Expr>, Vec<Expr>, bool),
    /// `CASE WHEN c THEN v … ELSE e END`
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// The type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprType {
    /// A number.
    Number,
    /// Text.
    String,
    /// A boolean.
    Bool,
    /// An instant.
    Time,
    /// A date.
    Date,
    /// A local wall-clock time (text).
    LocalTime,
    /// A JSON object.
    Json,
    /// `NULL`: fits anywhere.
    Null,
}

impl ExprType {
    /// The type of a column of type `c`.
    pub fn of_col(c: ColType) -> ExprType {
        match c {
            ColType::String => ExprType::String,
            ColType::Int | ColType::Decimal | ColType::Float => ExprType::Number,
            ColType::Bool => ExprType::Bool,
            ColType::Time => ExprType::Time,
            ColType::Date => ExprType::Date,
            ColType::LocalTime => ExprType::LocalTime,
            ColType::Json => ExprType::Json,
        }
    }

    /// Whether it is a time-like type.
    pub fn is_time(self) -> bool {
        matches!(self, ExprType::Time | ExprType::Date | ExprType::LocalTime)
    }

    fn name(self) -> &'static str {
        match self {
            ExprType::Number => "number",
            ExprType::String => "string",
            ExprType::Bool => "boolean",
            ExprType::Time => "time",
            ExprType::Date => "date",
            ExprType::LocalTime => "local time",
            ExprType::Json => "json",
            ExprType::Null => "null",
        }
    }

    fn fits(self, other: ExprType) -> bool {
        self == other || self == ExprType::Null || other == ExprType::Null
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, pos: 0 };
        let e = p.or()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected {} after the expression", t.describe()));
        }
        Ok(e)
    }

    /// The identifiers (columns or metric names) it mentions, in order, without duplicates.
    pub fn identifiers(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column(c) = e
                && !out.contains(c)
            {
                out.push(c.clone());
            }
        });
        out
    }

    /// The single column it is, when it is just a column.
    pub fn as_column(&self) -> Option<&str> {
        match self {
            Expr::Column(c) => Some(c),
            _ => None,
        }
    }

    fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Neg(a) | Expr::Not(a) | Expr::IsNull(a, _) => a.visit(f),
            Expr::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::In(a, list, _) => {
                a.visit(f);
                list.iter().for_each(|x| x.visit(f));
            }
            Expr::Case(whens, els) => {
                for (c, v) in whens {
                    c.visit(f);
                    v.visit(f);
                }
                if let Some(e) = els {
                    e.visit(f);
                }
            }
            Expr::Call(_, args) => args.iter().for_each(|x| x.visit(f)),
            _ => {}
        }
    }

    /// Whether it uses only arithmetic over identifiers and numbers (derived metrics).
    pub fn is_arithmetic(&self) -> bool {
        match self {
            Expr::Column(_) | Expr::Int(_) | Expr::Float(_) => true,
            Expr::Neg(a) => a.is_arithmetic(),
            Expr::Binary(op, a, b) => {
                matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div)
                    && a.is_arithmetic()
                    && b.is_arithmetic()
            }
            _ => false,
        }
    }

    /// Infers the type, given the type of each column; an error names what does not fit.
    pub fn infer(&self, col: &dyn Fn(&str) -> Option<ExprType>) -> Result<ExprType, String> {
        use ExprType as T;
        Ok(match self {
            Expr::Column(c) => col(c).ok_or_else(|| format!("unknown column {c:?}"))?,
            Expr::Int(_) | Expr::Float(_) => T::Number,
            Expr::Str(_) => T::String,
            Expr::Bool(_) => T::Bool,
            Expr::Null => T::Null,
            Expr::Neg(a) => expect(a.infer(col)?, T::Number, "-")?,
            Expr::Not(a) => expect(a.infer(col)?, T::Bool, "NOT")?,
            Expr::IsNull(a, _) => {
                a.infer(col)?;
                T::Bool
            }
            Expr::Binary(op, a, b) => {
                let (ta, tb) = (a.infer(col)?, b.infer(col)?);
                match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                        expect(ta, T::Number, op.sql())?;
                        expect(tb, T::Number, op.sql())?;
                        T::Number
                    }
                    BinOp::And | BinOp::Or => {
                        expect(ta, T::Bool, op.sql())?;
                        expect(tb, T::Bool, op.sql())?;
                        T::Bool
                    }
                    _ => {
                        if !ta.fits(tb) {
                            return Err(format!(
                                "cannot compare a {} with a {}",
                                ta.name(),
                                tb.name()
                            ));
                        }
                        T::Bool
                    }
                }
            }
            Expr::In(a, list, _) => {
                let ta = a.infer(col)?;
                for x in list {
                    let tx = x.infer(col)?;
                    if !ta.fits(tx) {
                        return Err(format!(
                            "IN list: a {} among {} values",
                            tx.name(),
                            ta.name()
                        ));
                    }
                }
                T::Bool
            }
            Expr::Case(whens, els) => {
                let mut out = T::Null;
                for (c, v) in whens {
                    expect(c.infer(col)?, T::Bool, "WHEN")?;
                    out = unify(out, v.infer(col)?)?;
                }
                if let Some(e) = els {
                    out = unify(out, e.infer(col)?)?;
                }
                out
            }
            Expr::Call(f, args) => {
                let types = args
                    .iter()
                    .map(|a| a.infer(col))
                    .collect::<Result<Vec<_>, _>>()?;
                let arity = |n: usize| {
                    if types.len() == n {
                        Ok(())
                    } else {
                        Err(format!("{f:?} takes {n} argument(s), not {}", types.len()))
                    }
                };
                match f {
                    Func::Coalesce => {
                        if types.is_empty() {
                            return Err("coalesce needs arguments".to_owned());
                        }
                        types.iter().try_fold(T::Null, |acc, t| unify(acc, *t))?
                    }
                    Func::Nullif => {
                        arity(2)?;
                        unify(types[0], types[1])?
                    }
                    Func::Abs => {
                        arity(1)?;
                        expect(types[0], T::Number, "abs")?
                    }
                    Func::Lower | Func::Upper => {
                        arity(1)?;
                        expect(types[0], T::String, "lower/upper")?
                    }
                    Func::JsonText => {
                        arity(2)?;
                        expect(types[0], T::Json, "json_text")?;
                        if !matches!(args[1], Expr::Str(_)) {
                            return Err("json_text takes a 'key' string literal".to_owned());
                        }
                        T::String
                    }
                    Func::DaysBetween | Func::SecondsBetween => {
                        arity(2)?;
                        for t in &types {
                            if !(t.is_time() || *t == T::Null) {
                                return Err(format!(
                                    "days_between/seconds_between take times, not a {}",
                                    t.name()
                                ));
                            }
                        }
                        if types[0] != types[1] {
                            return Err(
                                "days_between/seconds_between take two times of the same kind"
                                    .to_owned(),
                            );
                        }
                        T::Number
                    }
                }
            }
        })
    }
}

fn expect(t: ExprType, want: ExprType, what: &str) -> Result<ExprType, String> {
    if t.fits(want) {
        Ok(want)
    } else {
        Err(format!(
            "{what} needs a {}, not a {}",
            want.name(),
            t.name()
        ))
    }
}

fn unify(a: ExprType, b: ExprType) -> Result<ExprType, String> {
    if a == ExprType::Null {
        Ok(b)
    } else if b == ExprType::Null || a == b {
        Ok(a)
    } else {
        Err(format!("mixes a {} and a {}", a.name(), b.name()))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Sym(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("{s:?}"),
            Tok::Int(n) => n.to_string(),
            Tok::Float(n) => n.to_string(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Sym(s) => format!("{s:?}"),
        }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
}

const SYMBOLS: [&str; 13] = [
    "<=", ">=", "<>", "!=", "(", ")", ",", "+", "-", "*", "/", "<", ">",
];

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            if s.contains('.') {
                out.push(Tok::Float(
                    s.parse().map_err(|_| format!("bad number {s:?}"))?,
                ));
            } else {
                out.push(Tok::Int(
                    s.parse().map_err(|_| format!("bad number {s:?}"))?,
                ));
            }
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string literal".to_owned()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '=' {
            out.push(Tok::Sym("="));
            i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = SYMBOLS
                .iter()
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| format!("unexpected character {c:?}"))?;
            out.push(Tok::Sym(sym));
            i += sym.len();
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_kw(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if self.peek() == Some(&Tok::Sym(sym_static(s))) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), String> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(format!(
                "expected {s:?}, found {}",
                self.peek()
                    .map(Tok::describe)
                    .unwrap_or_else(|| "the end".to_owned())
            ))
        }
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(format!(
                "expected {kw}, found {}",
                self.peek()
                    .map(Tok::describe)
                    .unwrap_or_else(|| "the end".to_owned())
            ))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat_kw("or") {
            e = Expr::Binary(BinOp::Or, Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat_kw("and") {
            e = Expr::Binary(BinOp::And, Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let a = self.add()?;
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Expr::IsNull(Box::new(a), negated));
        }
        let save = self.pos;
        let negated = self.eat_kw("not");
        if self.eat_kw("in") {
            self.expect_sym("(")?;
            let mut list = vec![self.add()?];
            while self.eat_sym(",") {
                list.push(self.add()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::In(Box::new(a), list, negated));
        }
        self.pos = save;
        let op = match self.peek() {
            Some(Tok::Sym("=")) => BinOp::Eq,
            Some(Tok::Sym("!=")) | Some(Tok::Sym("<>")) => BinOp::Ne,
            Some(Tok::Sym("<")) => BinOp::Lt,
            Some(Tok::Sym("<=")) => BinOp::Le,
            Some(Tok::Sym(">")) => BinOp::Gt,
            Some(Tok::Sym(">=")) => BinOp::Ge,
            _ => return Ok(a),
        };
        self.pos += 1;
        Ok(Expr::Binary(op, Box::new(a), Box::new(self.add()?)))
    }
    fn add(&mut self) -> Result<Expr, String> {
        let mut e = self.mul()?;
        loop {
            let op = if self.eat_sym("+") {
                BinOp::Add
            } else if self.eat_sym("-") {
                BinOp::Sub
            } else {
                return Ok(e);
            };
            e = Expr::Binary(op, Box::new(e), Box::new(self.mul()?));
        }
    }
    fn mul(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat_sym("*") {
                BinOp::Mul
            } else if self.eat_sym("/") {
                BinOp::Div
            } else {
                return Ok(e);
            };
            e = Expr::Binary(op, Box::new(e), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_sym("-") {
            return Ok(match self.unary()? {
                Expr::Int(n) => Expr::Int(-n),
                Expr::Float(n) => Expr::Float(-n),
                e => Expr::Neg(Box::new(e)),
            });
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            None => Err("the expression ends too early".to_owned()),
            Some(Tok::Int(n)) => Ok(Expr::Int(n)),
            Some(Tok::Float(n)) => Ok(Expr::Float(n)),
            Some(Tok::Str(s)) => Ok(Expr::Str(s)),
            Some(Tok::Sym("(")) => {
                let e = self.or()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Some(t @ Tok::Sym(_)) => Err(format!("unexpected {}", t.describe())),
            Some(Tok::Ident(id)) => {
                let lower = id.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => return Ok(Expr::Bool(true)),
                    "false" => return Ok(Expr::Bool(false)),
                    "null" => return Ok(Expr::Null),
                    "case" => return self.case(),
                    "and" | "or" | "not" | "is" | "in" | "when" | "then" | "else" | "end" => {
                        return Err(format!("unexpected keyword {id}"));
                    }
                    _ => {}
                }
                if self.eat_sym("(") {
                    let f = Func::parse(&id).ok_or_else(|| format!("unknown function {id:?}"))?;
                    let mut args = Vec::new();
                    if !self.eat_sym(")") {
                        args.push(self.or()?);
                        while self.eat_sym(",") {
                            args.push(self.or()?);
                        }
                        self.expect_sym(")")?;
                    }
                    return Ok(Expr::Call(f, args));
                }
                Ok(Expr::Column(id))
            }
        }
    }
    fn case(&mut self) -> Result<Expr, String> {
        let mut whens = Vec::new();
        while self.eat_kw("when") {
            let c = self.or()?;
            self.expect_kw("then")?;
            whens.push((c, self.or()?));
        }
        if whens.is_empty() {
            return Err("CASE needs at least one WHEN".to_owned());
        }
        let els = if self.eat_kw("else") {
            Some(Box::new(self.or()?))
        } else {
            None
        };
        self.expect_kw("end")?;
        Ok(Expr::Case(whens, els))
    }
}

fn sym_static(s: &str) -> &'static str {
    SYMBOLS
        .iter()
        .copied()
        .chain(std::iter::once("="))
        .find(|x| *x == s)
        .unwrap_or("?")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_precedence_and_case() {
        let e = Expr::parse("amt - discount * 2").unwrap();
        assert_eq!(
            e,
            Expr::Binary(
                BinOp::Sub,
                Box::new(Expr::Column("amt".into())),
                Box::new(Expr::Binary(
                    BinOp::Mul,
                    Box::new(Expr::Column("discount".into())),
                    Box::new(Expr::Int(2))
                ))
            )
        );
        let e = Expr::parse("CASE WHEN a IS NULL THEN 'x' ELSE b END").unwrap();
        assert!(matches!(e, Expr::Case(..)));
        let e = Expr::parse("event_type NOT IN ('a', 'b') AND NOT x > 1").unwrap();
        assert!(matches!(e, Expr::Binary(BinOp::And, ..)));
        assert!(Expr::parse("a +").is_err());
        assert!(Expr::parse("foo(1)").is_err());
        assert!(Expr::parse("'abc").is_err());
    }

    #[test]
    fn infers_types() {
        let col = |c: &str| match c {
            "amt" => Some(ExprType::Number),
            "name" => Some(ExprType::String),
            _ => None,
        };
        assert_eq!(
            Expr::parse("amt * 2").unwrap().infer(&col),
            Ok(ExprType::Number)
        );
        assert!(Expr::parse("name + 1").unwrap().infer(&col).is_err());
        assert!(Expr::parse("nope").unwrap().infer(&col).is_err());
        assert_eq!(
            Expr::parse("name = 'x'").unwrap().infer(&col),
            Ok(ExprType::Bool)
        );
    }
}
