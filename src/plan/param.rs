//! The parameters a plan needs, and their values for one request.
//!
//! A plan (and the statement rendered from it) is shared by every request of the same shape
//! ([`QuerySpec::cache_key`]): what differs between them — asOf, the time zone, limit,
//! offset, the conversion variant of conversion-filter tables, the values of `where` — is a
//! [`Param`], turned into a value by [`bind`] from the request's [`Bindings`].

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::query::{QuerySpec, ReqValue};
use crate::semantic::Shift;

/// A parameter of a planned statement, resolved against the request when it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// The as-of instant (moved back by the shift of a shifted table).
    AsOf(Option<Shift>),
    /// The as-of instant as partition text `YYYY-MM-DD HH:MM:SS` (UTC).
    AsOfPartitionTs(Option<Shift>),
    /// The as-of instant's UTC date.
    AsOfDate(Option<Shift>),
    /// The as-of instant written as time buckets are (whole seconds), to compare with the end
    /// of a bucket.
    AsOfText(AsOfText),
    /// A constant (a literal of a model file).
    Value(Value),
    /// A request value (index into [`Bindings::values`]), bound as the compared dimension is
    /// stored.
    Request(usize, BindAs),
    /// The request's time zone.
    TimeZone,
    /// The request's limit.
    Limit,
    /// The request's offset.
    Offset,
    /// The request's conversion variant, or this default.
    ConversionFilter(String),
    /// A caller attribute read by the row policy of a table.
    Caller(CallerParam),
}

/// A caller attribute a row policy binds: its one value, or its values as a JSON array
/// (`list`, read by the dialect's `json_values`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerParam {
    /// The attribute.
    pub attribute: String,
    /// Bound as the JSON array of its values (`IN caller.NAME`), else as its one value.
    pub list: bool,
    /// The table whose policy reads it (`namespace.table`, for errors).
    pub table: String,
}

/// Tenant attributes of a caller, by name.
pub type Attributes = std::collections::BTreeMap<String, Vec<String>>;

/// Why a statement's row policies cannot be bound for a caller: the table, the attribute
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDenied {
    /// The table whose policy needs the attribute (`namespace.table`).
    pub table: String,
    /// The attribute.
    pub attribute: String,
    /// What is wrong (`the caller has no attribute …`).
    pub message: String,
}

/// Checks that `attributes` give every [`Param::Caller`] of `params` a value: the attribute
/// is present, and one value where the policy compares with one value.
pub fn check_caller(params: &[Param], attributes: &Attributes) -> Result<(), PolicyDenied> {
    for p in params {
        let Param::Caller(c) = p else { continue };
        let denied = |message: String| PolicyDenied {
            table: c.table.clone(),
            attribute: c.attribute.clone(),
            message,
        };
        match attributes.get(&c.attribute) {
            None => {
                return Err(denied(format!(
                    "the caller has no attribute {:?}, which the row policy of {} needs",
                    c.attribute, c.table
                )));
            }
            Some(v) if !c.list && v.len() != 1 => {
                return Err(denied(format!(
                    "the row policy of {} compares {:?} with one value; the caller has {}",
                    c.table,
                    c.attribute,
                    v.len()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// How [`Param::AsOfText`] writes the as-of instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOfText {
    /// `YYYY-MM-DDTHH:MM:SSZ` (UTC), as buckets of instants and dates are written.
    Utc,
    /// `YYYY-MM-DDTHH:MM:SS` (UTC wall clock), as buckets of local-time columns are written.
    UtcDigits,
    /// `YYYY-MM-DDTHH:MM:SS` in the request's time zone, as buckets with `timezone` are.
    Zone,
}

/// How a request value is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAs {
    /// As it is.
    Plain,
    /// A time compared with an instant column.
    Instant,
    /// A time compared with a date column (its UTC date).
    Date,
    /// A time compared with local wall-clock text (its `YYYY-MM-DDTHH:MM:SS` digits).
    Local,
}

/// What one request binds to the parameters of a plan of its shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bindings<'a> {
    /// The instant whose knowledge the answer uses.
    pub as_of: DateTime<Utc>,
    /// The IANA time zone of time buckets (`None`: UTC).
    pub timezone: Option<&'a str>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u64>,
    /// Skip this many rows first (`None`: none).
    pub offset: Option<u64>,
    /// The named conversion variant (`None`: the default of each parameter).
    pub conversion_filter: Option<&'a str>,
    /// The values `where` compares with ([`Param::Request`] indexes them).
    pub values: &'a [ReqValue],
    /// The caller's tenant attributes, which row policies bind ([`Param::Caller`]).
    pub caller: Option<&'a Attributes>,
}

impl<'a> Bindings<'a> {
    /// The bindings of a request.
    pub fn of(spec: &'a QuerySpec) -> Bindings<'a> {
        Bindings {
            as_of: spec.as_of,
            timezone: spec.timezone.as_deref(),
            limit: spec.limit,
            offset: spec.offset,
            conversion_filter: spec.conversion_filter.as_deref(),
            values: &spec.values,
            caller: None,
        }
    }

    /// Bindings of nothing but an as-of instant.
    pub fn as_of(as_of: DateTime<Utc>) -> Bindings<'static> {
        Bindings {
            as_of,
            timezone: None,
            limit: None,
            offset: None,
            conversion_filter: None,
            values: &[],
            caller: None,
        }
    }
}

impl<'a> From<&'a QuerySpec> for Bindings<'a> {
    fn from(spec: &'a QuerySpec) -> Self {
        Bindings::of(spec)
    }
}

/// The values of `params` for one request, in order.
pub fn bind(params: &[Param], b: &Bindings<'_>) -> Vec<Value> {
    let zone = b.timezone.and_then(|z| z.parse::<chrono_tz::Tz>().ok());
    params.iter().map(|p| value(p, b, zone)).collect()
}

fn value(p: &Param, b: &Bindings<'_>, zone: Option<chrono_tz::Tz>) -> Value {
    let shifted = |shift: &Option<Shift>| match shift {
        Some(s) => s.apply(b.as_of),
        None => b.as_of,
    };
    match p {
        Param::AsOf(shift) => Value::ChronoDateTimeUtc(Some(shifted(shift))),
        Param::AsOfPartitionTs(shift) => {
            Value::String(Some(shifted(shift).format("%Y-%m-%d %H:%M:%S").to_string()))
        }
        Param::AsOfDate(shift) => Value::ChronoDate(Some(shifted(shift).date_naive())),
        Param::AsOfText(how) => Value::String(Some(match (how, zone) {
            (AsOfText::Utc, _) => b.as_of.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            (AsOfText::Zone, Some(tz)) => b
                .as_of
                .with_timezone(&tz)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
            (AsOfText::UtcDigits | AsOfText::Zone, _) => {
                b.as_of.format("%Y-%m-%dT%H:%M:%S").to_string()
            }
        })),
        Param::Value(v) => v.clone(),
        Param::Request(i, how) => match b.values.get(*i) {
            // The plan checked every index against the request's values, and a request of
            // the same shape (the plan cache's key) has as many: never reached.
            None => Value::String(None),
            Some(ReqValue::Str(s)) => Value::String(Some(s.clone())),
            Some(ReqValue::Num(n)) => Value::Double(Some(*n)),
            Some(ReqValue::Bool(x)) => Value::Bool(Some(*x)),
            Some(ReqValue::Time(t)) => match how {
                BindAs::Date => Value::ChronoDate(Some(t.date_naive())),
                BindAs::Local => Value::String(Some(t.format("%Y-%m-%dT%H:%M:%S").to_string())),
                BindAs::Instant | BindAs::Plain => Value::ChronoDateTimeUtc(Some(*t)),
            },
        },
        Param::TimeZone => Value::String(Some(b.timezone.unwrap_or("UTC").to_owned())),
        Param::Limit => Value::BigInt(Some(
            b.limit.map(|l| l.min(i64::MAX as u64) as i64).unwrap_or(-1),
        )),
        Param::Offset => Value::BigInt(Some(
            b.offset.map(|l| l.min(i64::MAX as u64) as i64).unwrap_or(0),
        )),
        Param::ConversionFilter(default) => {
            Value::String(Some(b.conversion_filter.unwrap_or(default).to_owned()))
        }
        Param::Caller(c) => caller_value(c, b.caller),
    }
}

/// The value of a caller attribute for `attributes`: its one value, or its values as a JSON
/// array (`list`). [`check_caller`] runs first; a missing attribute binds null (which
/// matches no row).
pub fn caller_value(c: &CallerParam, attributes: Option<&Attributes>) -> Value {
    let values = attributes.and_then(|a| a.get(&c.attribute));
    if c.list {
        Value::String(values.map(|v| serde_json::Value::from(v.clone()).to_string()))
    } else {
        Value::String(values.and_then(|v| v.first().cloned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn caller(attribute: &str, list: bool) -> Param {
        Param::Caller(CallerParam {
            attribute: attribute.to_owned(),
            list,
            table: "gym.dim_user".to_owned(),
        })
    }

    #[test]
    fn caller_attributes_are_checked_and_bound() {
        let mut attrs = Attributes::new();
        attrs.insert("b".to_owned(), vec!["b1".to_owned(), "b2".to_owned()]);
        attrs.insert("one".to_owned(), vec!["x".to_owned()]);
        assert!(check_caller(&[caller("b", true), caller("one", false)], &attrs).is_ok());
        let missing = check_caller(&[caller("store", true)], &attrs).unwrap_err();
        assert_eq!(
            (missing.table.as_str(), missing.attribute.as_str()),
            ("gym.dim_user", "store")
        );
        assert!(
            missing.message.contains("no attribute \"store\""),
            "{}",
            missing.message
        );
        let two = check_caller(&[caller("b", false)], &attrs).unwrap_err();
        assert!(
            two.message.contains("one value; the caller has 2"),
            "{}",
            two.message
        );
        let Param::Caller(list) = caller("b", true) else {
            unreachable!()
        };
        assert_eq!(
            caller_value(&list, Some(&attrs)),
            Value::String(Some("[\"b1\",\"b2\"]".to_owned()))
        );
        let Param::Caller(one) = caller("one", false) else {
            unreachable!()
        };
        assert_eq!(
            caller_value(&one, Some(&attrs)),
            Value::String(Some("x".to_owned()))
        );
        assert_eq!(caller_value(&one, None), Value::String(None));
    }
}
