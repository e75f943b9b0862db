//! Field validation: CSV text → a typed `sea_orm::Value`, and the column rules of `rules.rs`.

use std::str::FromStr as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound as _, Timelike as _, Utc};
use rust_decimal::Decimal;
use sea_orm::Value;

use super::rules::Rule;
use super::schema::{ColumnSpec, Kind};

/// The NULL value of a kind (typed, so that PostgreSQL knows the parameter's type).
fn null_of(kind: Kind) -> Value {
    match kind {
        Kind::Text => Value::String(None),
        Kind::Int32 => Value::Int(None),
        Kind::Int64 => Value::BigInt(None),
        Kind::Decimal { .. } => Value::Decimal(None),
        Kind::Bool => Value::Bool(None),
        Kind::Timestamp => Value::ChronoDateTimeUtc(None),
        Kind::Date => Value::ChronoDate(None),
        Kind::Json => Value::Json(None),
    }
}

/// Whether `s` is `-?[0-9]+`.
fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a timestamp: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` read as UTC; fractions of a
/// second are rounded to the microsecond (what PostgreSQL keeps, and so SQLite too).
pub(crate) fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).round_subsecs(6));
    }
    if s.len() >= 19
        && s.as_bytes().get(10) == Some(&b' ')
        && let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
    {
        return Ok(t.and_utc().round_subsecs(6));
    }
    Err(format!(
        "{s:?} is not a timestamp (RFC 3339 such as 2024-03-01T09:30:00Z, or YYYY-MM-DD HH:MM:SS[.ffffff] in UTC)"
    ))
}

/// Parses a date `YYYY-MM-DD`.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Parses a decimal `-?[0-9]+(\.[0-9]{1,scale})?` with at most `int_digits` digits before
/// the point.
fn parse_decimal(s: &str, int_digits: Option<u32>, scale: u32) -> Result<Decimal, String> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let shaped = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| {
            !f.is_empty() && f.len() <= scale as usize && f.bytes().all(|b| b.is_ascii_digit())
        });
    if !shaped {
        return Err(format!(
            "{s:?} is not a decimal with at most {scale} decimals (such as -12.34)"
        ));
    }
    let significant = int.trim_start_matches('0').len();
    if let Some(max) = int_digits
        && significant > max as usize
    {
        return Err(format!(
            "{s:?} is too large (at most {max} digits before the decimal point)"
        ));
    }
    Decimal::from_str(s).map_err(|e| format!("{s:?} is not a decimal: {e}"))
}

/// Parses a boolean: `true`/`false`, `t`/`f`, `1`/`0` (letters in any case).
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Ok(true),
        "false" | "f" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (true/false, t/f, 1/0)")),
    }
}

/// Parses the text of a field of `column` into its value (a typed NULL for an empty field
/// of a nullable column).
pub(crate) fn parse_field(column: &ColumnSpec, s: &str) -> Result<Value, String> {
    if s.is_empty() {
        return if column.nullable {
            Ok(null_of(column.kind))
        } else {
            Err("empty value (NULL) in a column that is not nullable".to_owned())
        };
    }
    Ok(match column.kind {
        Kind::Text => Value::String(Some(s.to_owned())),
        Kind::Int32 => {
            if !is_integer(s) {
                return Err(format!("{s:?} is not an integer"));
            }
            Value::Int(Some(s.parse::<i32>().map_err(|_| {
                format!("{s:?} is out of range for a 32-bit integer")
            })?))
        }
        Kind::Int64 => {
            if !is_integer(s) {
                return Err(format!("{s:?} is not an integer"));
            }
            Value::BigInt(Some(
                s.parse::<i64>()
                    .map_err(|_| format!("{s:?} is out of range for a 64-bit integer"))?,
            ))
        }
        Kind::Decimal { int_digits, scale } => {
            Value::Decimal(Some(parse_decimal(s, int_digits, scale)?))
        }
        Kind::Bool => Value::Bool(Some(parse_bool(s)?)),
        Kind::Timestamp => Value::ChronoDateTimeUtc(Some(parse_timestamp(s)?)),
        Kind::Date => Value::ChronoDate(Some(parse_date(s)?)),
        Kind::Json => {
            let json = parse_json(s)?;
            if !json.is_object() {
                return Err(format!("{s:?} is not a JSON object"));
            }
            Value::Json(Some(Box::new(json)))
        }
    })
}

/// Parses JSON text, keeping every key in its order; an object with a key twice is an
/// error naming the key (and where it is, for a nested object).
pub(crate) fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    use serde::de::DeserializeSeed as _;
    let duplicate = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(s);
    let parsed = Json {
        path: "",
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match (parsed, duplicate.into_inner()) {
        (_, Some(key)) => Err(format!("duplicate key {key} in a JSON object")),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(format!("malformed JSON: {e}")),
    }
}

/// A JSON value that rejects duplicate keys (`duplicate` receives the first one, described
/// by its path).
struct Json<'a> {
    /// Where the value is: empty at the top, else `"outer"."inner"` or `[2]`.
    path: &'a str,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Json<'_> {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Json<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, out.len());
            let seed = Json {
                path: &path,
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => return Ok(serde_json::Value::Array(out)),
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}{key:?}", if self.path.is_empty() { "" } else { "." });
            let path = format!("{}{path}", self.path);
            if out.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(Json {
                path: &path,
                duplicate: self.duplicate,
            })?;
            out.insert(key, value);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Checks that a JSON object has `keys`, all with string values (other keys are kept).
fn check_shape(value: &Value, keys: &[&str], what: &str) -> Result<(), String> {
    let Value::Json(Some(json)) = value else {
        return Ok(());
    };
    let Some(object) = json.as_object() else {
        return Err(format!("{what} must be a JSON object"));
    };
    let expected = || format!("{{{}}}", keys.join(", "));
    for key in keys {
        match object.get(*key) {
            None => {
                return Err(format!(
                    "{what} must have the keys {}, with string values: key {key:?} is missing",
                    expected()
                ));
            }
            Some(serde_json::Value::String(_)) => {}
            Some(other) => {
                return Err(format!(
                    "{what} must have the keys {}, with string values: {key:?} is {other}, not a string",
                    expected()
                ));
            }
        }
    }
    Ok(())
}

/// Checks one rule against a field: `text` is its CSV text, `value` its parsed value, and
/// `field` gives the text of another column of the same row by name.
pub(crate) fn check_rule<'a>(
    rule: &Rule,
    text: &str,
    value: &Value,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Result<(), String> {
    if text.is_empty() {
        return Ok(()); // NULL: nullability is checked by the parser
    }
    match rule {
        Rule::PartitionHour => {
            let ok = text.len() == 19
                && NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                    .is_ok_and(|t| t.minute() == 0 && t.second() == 0);
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{text:?} is not an hourly partition (YYYY-MM-DD HH:00:00)"
                ))
            }
        }
        Rule::OneOf(values) => check_one_of(text, values.iter().copied()),
        Rule::TimeZone => text
            .parse::<chrono_tz::Tz>()
            .map(|_| ())
            .map_err(|_| format!("{text:?} is not an IANA time zone (such as Europe/Paris)")),
        Rule::JsonShape(keys) => check_shape(value, keys, "the JSON"),
        Rule::JsonShapeBy { column, shapes } => {
            let Some(selector) = field(column) else {
                return Ok(());
            };
            match shapes.iter().find(|(v, _)| *v == selector) {
                Some((v, keys)) => check_shape(value, keys, &format!("the JSON of a {v} {column}")),
                // an unknown selector is reported on its own column
                None => Ok(()),
            }
        }
    }
}

/// Checks that `text` is one of `values`.
pub(crate) fn check_one_of<'v>(
    text: &str,
    values: impl Iterator<Item = &'v str> + Clone,
) -> Result<(), String> {
    if values.clone().any(|v| v == text) {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not one of {}",
            values.collect::<Vec<_>>().join(", ")
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn col(kind: Kind, nullable: bool) -> ColumnSpec {
        ColumnSpec {
            name: "c",
            kind,
            nullable,
            rules: Vec::new(),
            variants: None,
        }
    }

    #[test]
    fn timestamps() {
        let want = "2024-03-01T09:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(parse_timestamp("2024-03-01T09:30:00Z").unwrap(), want);
        assert_eq!(parse_timestamp("2024-03-01T10:30:00+01:00").unwrap(), want);
        assert_eq!(parse_timestamp("2024-03-01 09:30:00").unwrap(), want);
        assert!(parse_timestamp("2024-03-01 09:30:00.123456").is_ok());
        assert!(parse_timestamp("2024-03-01").is_err());
        assert!(parse_timestamp("2024-03-01T09:30:00").is_err());
        assert!(parse_timestamp("2024-02-30 09:30:00").is_err());
    }

    #[test]
    fn decimals() {
        let d = Kind::Decimal {
            int_digits: Some(16),
            scale: 2,
        };
        assert!(parse_field(&col(d, false), "12.34").is_ok());
        assert!(parse_field(&col(d, false), "-12.3").is_ok());
        assert!(parse_field(&col(d, false), "12").is_ok());
        assert!(parse_field(&col(d, false), "12.345").is_err());
        assert!(parse_field(&col(d, false), "12.").is_err());
        assert!(parse_field(&col(d, false), ".5").is_err());
        assert!(parse_field(&col(d, false), "1e3").is_err());
        assert!(parse_field(&col(d, false), "12345678901234567").is_err());
        assert!(parse_field(&col(d, false), "").is_err());
        assert_eq!(
            parse_field(&col(d, true), "").unwrap(),
            Value::Decimal(None)
        );
    }

    #[test]
    fn scalars() {
        assert!(parse_field(&col(Kind::Int32, false), "-42").is_ok());
        assert!(parse_field(&col(Kind::Int32, false), "4.2").is_err());
        assert!(parse_field(&col(Kind::Int32, false), "99999999999").is_err());
        assert!(parse_field(&col(Kind::Int64, false), "99999999999").is_ok());
        assert_eq!(
            parse_field(&col(Kind::Bool, false), "T").unwrap(),
            Value::Bool(Some(true))
        );
        assert!(parse_field(&col(Kind::Bool, false), "yes").is_err());
        assert!(parse_field(&col(Kind::Date, false), "2024-03-01").is_ok());
        assert!(parse_field(&col(Kind::Date, false), "2024-3-1").is_err());
        assert!(parse_field(&col(Kind::Json, false), "[1]").is_err());
        assert!(parse_field(&col(Kind::Json, false), "{\"a\":").is_err());
    }

    #[test]
    fn rules() {
        let none = |_: &str| None;
        assert!(
            check_rule(
                &Rule::PartitionHour,
                "2024-03-01 09:00:00",
                &Value::Bool(None),
                none
            )
            .is_ok()
        );
        assert!(
            check_rule(
                &Rule::PartitionHour,
                "2024-03-01 09:30:00",
                &Value::Bool(None),
                none
            )
            .is_err()
        );
        assert!(check_rule(&Rule::TimeZone, "Europe/Paris", &Value::Bool(None), none).is_ok());
        assert!(check_rule(&Rule::TimeZone, "Mars/Olympus", &Value::Bool(None), none).is_err());
        let json = |s: &str| Value::Json(Some(Box::new(serde_json::from_str(s).unwrap())));
        let shape = Rule::JsonShape(&["name", "source"]);
        let ok = r#"{"name":"a","source":"b"}"#;
        assert!(check_rule(&shape, ok, &json(ok), none).is_ok());
        for bad in [r#"{"name":"a"}"#, r#"{"name":"a","source":1}"#] {
            assert!(check_rule(&shape, bad, &json(bad), none).is_err(), "{bad}");
        }
        // keys beyond those tally reads are accepted, and kept
        let more = r#"{"name":"a","source":"b","price":"9.99"}"#;
        assert!(check_rule(&shape, more, &json(more), none).is_ok());
    }

    #[test]
    fn json_keeps_every_key_and_rejects_duplicates() {
        let v = parse_json(r#"{"z": 1, "a": [{"k": true}], "m": null}"#).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(
            parse_json(r#"{"name": "a", "name": "b"}"#).unwrap_err(),
            "duplicate key \"name\" in a JSON object"
        );
        assert_eq!(
            parse_json(r#"{"a": [1, {"k": 1, "k": 2}]}"#).unwrap_err(),
            "duplicate key \"a\"[1].\"k\" in a JSON object"
        );
        assert!(
            parse_json(r#"{"a": 1"#)
                .unwrap_err()
                .starts_with("malformed JSON: ")
        );
        assert!(
            parse_json(r#"{"a": 1} x"#)
                .unwrap_err()
                .starts_with("malformed JSON: ")
        );
    }
}
