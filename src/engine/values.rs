//! Values of result rows: every column read by its planned type into JSON or GraphQL values
//! (money as a decimal string with two places, time buckets as text), rounded half away
//! from zero so that both backends return the same numbers.

use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{DbErr, QueryResult};
use serde_json::Value;

use super::results::Stored;
use crate::plan::OutType;

/// A value type rows can be read into: JSON ([`serde_json::Value`]) for tools and tests, or
/// GraphQL ([`async_graphql::Value`]) for the API, without converting one into the other.
pub trait Cell: Sized {
    /// `null`.
    fn null() -> Self;
    /// An integer.
    fn int(v: i64) -> Self;
    /// A boolean.
    fn bool(v: bool) -> Self;
    /// A float (`null` when not finite).
    fn float(v: f64) -> Self;
    /// Text.
    fn text(v: String) -> Self;
}

impl Cell for Value {
    fn null() -> Self {
        Value::Null
    }
    fn int(v: i64) -> Self {
        Value::from(v)
    }
    fn bool(v: bool) -> Self {
        Value::Bool(v)
    }
    fn float(v: f64) -> Self {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
    fn text(v: String) -> Self {
        Value::String(v)
    }
}

impl Cell for async_graphql::Value {
    fn null() -> Self {
        async_graphql::Value::Null
    }
    fn int(v: i64) -> Self {
        async_graphql::Value::from(v)
    }
    fn bool(v: bool) -> Self {
        async_graphql::Value::Boolean(v)
    }
    fn float(v: f64) -> Self {
        async_graphql::Number::from_f64(v)
            .map(async_graphql::Value::Number)
            .unwrap_or(async_graphql::Value::Null)
    }
    fn text(v: String) -> Self {
        async_graphql::Value::String(v)
    }
}

/// Reads column `i` of a row by its planned type.
pub(crate) fn read<V: Cell>(r: &QueryResult, i: usize, ty: OutType) -> Result<V, DbErr> {
    Ok(match ty {
        OutType::Int => r
            .try_get_by_index::<Option<i64>>(i)?
            .map(V::int)
            .unwrap_or_else(V::null),
        OutType::Bool => r
            .try_get_by_index::<Option<i64>>(i)?
            .map(|v| V::bool(v != 0))
            .unwrap_or_else(V::null),
        OutType::Float(dp) => r
            .try_get_by_index::<Option<f64>>(i)?
            .map(|v| match dp {
                Some(dp) => match round_scaled(v, dp) {
                    Some(x) => V::float(x.to_f64()),
                    None => V::float(v),
                },
                None => V::float(v),
            })
            .unwrap_or_else(V::null),
        OutType::Decimal => r
            .try_get_by_index::<Option<f64>>(i)?
            .map(|v| V::text(format_money(v)))
            .unwrap_or_else(V::null),
        OutType::String | OutType::Time => r
            .try_get_by_index::<Option<String>>(i)?
            .map(V::text)
            .unwrap_or_else(V::null),
    })
}

/// How a column of a statement written outside the planner (the saas lifecycle fields,
/// `sources`) is read into a [`super::results::Stored`] value, so that its answer can be
/// kept in the result cache and read again without the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    /// An integer (`bigint` or `integer` on PostgreSQL, INTEGER on SQLite; counts and 0/1
    /// flags).
    Int,
    /// Text.
    Text,
    /// Money: a double, kept as a decimal string with two places ([`format_money`]).
    Money,
    /// An instant (`timestamptz` on PostgreSQL, RFC 3339 text on SQLite), kept as RFC 3339
    /// text in UTC to the nanosecond.
    Instant,
}

impl Raw {
    /// The output type a kept column is described with.
    pub fn out_type(self) -> OutType {
        match self {
            Raw::Int => OutType::Int,
            Raw::Text => OutType::String,
            Raw::Money => OutType::Decimal,
            Raw::Instant => OutType::Time,
        }
    }
}

/// Reads column `i` of a row as `raw` says; null reads as [`Stored::Null`].
pub(crate) fn read_raw(
    r: &QueryResult,
    i: usize,
    raw: Raw,
    dialect: &dyn crate::sql::Dialect,
) -> Result<Stored, String> {
    Ok(match raw {
        Raw::Int => match r.try_get_by_index::<Option<i64>>(i) {
            Ok(v) => v.map(Stored::Int),
            Err(_) => r
                .try_get_by_index::<Option<i32>>(i)
                .map_err(|e| e.to_string())?
                .map(|v| Stored::Int(i64::from(v))),
        },
        Raw::Text => r
            .try_get_by_index::<Option<String>>(i)
            .map_err(|e| e.to_string())?
            .map(Stored::Text),
        Raw::Money => r
            .try_get_by_index::<Option<f64>>(i)
            .map_err(|e| e.to_string())?
            .map(|v| Stored::Text(format_money(v))),
        Raw::Instant => dialect
            .read_instant(r, i)?
            .map(|t| Stored::Text(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))),
    }
    .unwrap_or(Stored::Null))
}

/// A rounded number: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaled {
    /// The digits, with their sign.
    pub mantissa: i64,
    /// Decimal places.
    pub scale: u32,
}

impl Scaled {
    /// The nearest double.
    pub fn to_f64(self) -> f64 {
        if self.mantissa.unsigned_abs() < 1 << 53 && self.scale <= 22 {
            // both exact in a double, so the quotient is the double nearest to the decimal
            self.mantissa as f64 / POW10[self.scale as usize]
        } else {
            self.to_string().parse().unwrap_or(f64::NAN)
        }
    }
}

impl std::fmt::Display for Scaled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.mantissa < 0;
        let m = self.mantissa.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{}{m}", if neg { "-" } else { "" });
        }
        let p = 10u64.pow(self.scale);
        write!(
            f,
            "{}{}.{:0width$}",
            if neg { "-" } else { "" },
            m / p,
            m % p,
            width = self.scale as usize
        )
    }
}

/// Money as a decimal string with two places (`-0.00` is written `0.00`), rounded by
/// [`round_half_away`].
pub fn format_money(v: f64) -> String {
    if let Some(x) = round_scaled(v, 2) {
        return x.to_string();
    }
    let s = match round_half_away(v, 2) {
        Some(d) => format!("{d:.2}"),
        None => format!("{v:.2}"),
    };
    if s == "-0.00" { "0.00".to_owned() } else { s }
}

/// Rounds a double to `dp` decimal places, half away from zero, after reading it with 15
/// significant digits (as PostgreSQL turns a double into a decimal). The last-bit noise of
/// floating-point sums (SQLite) and exact decimal arithmetic (PostgreSQL) therefore round
/// alike: both backends return the same number. `None` for values a decimal cannot hold.
pub fn round_half_away(v: f64, dp: u32) -> Option<Decimal> {
    if !v.is_finite() {
        return None;
    }
    let d = Decimal::from_scientific(&format!("{v:.14e}")).ok()?;
    Some(d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
}

/// [`round_half_away`] as a [`Scaled`] (a zero is never negative), computed with integer
/// arithmetic when the 15 significant digits are certain and by [`round_half_away`]
/// otherwise: the same result, at a fraction of the cost. `None` when not finite.
pub fn round_scaled(v: f64, dp: u32) -> Option<Scaled> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some(Scaled {
            mantissa: 0,
            scale: dp,
        });
    }
    round_fast(v, dp).or_else(|| {
        let d = round_half_away(v, dp)?;
        let mut m = d.mantissa();
        let mut scale = d.scale();
        while scale < dp {
            m = m.checked_mul(10)?;
            scale += 1;
        }
        while scale > dp {
            m /= 10;
            scale -= 1;
        }
        Some(Scaled {
            mantissa: i64::try_from(m).ok()?,
            scale: dp,
        })
    })
}

/// Powers of ten that a double holds exactly (and an i64 too, up to 10^18).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The integer path of [`round_scaled`]; `None` when it cannot be sure.
fn round_fast(v: f64, dp: u32) -> Option<Scaled> {
    let a = v.abs();
    // 15 significant digits: r = round(a × 10^k) with 10^14 <= r < 10^15
    let e = a.log10().floor() as i32;
    let k = 14 - e;
    let scaled = if (0..=22).contains(&k) {
        a * POW10[k as usize]
    } else if (-22..0).contains(&k) {
        a / POW10[(-k) as usize]
    } else {
        return None;
    };
    if !(1e14..1e15).contains(&scaled) {
        return None; // log10 was off by one near a power of ten
    }
    // one rounding of the exact product (a double times an exact power of ten) below 2^50:
    // within 1/16 of it, so round() is the exact product's rounding away from the midpoint
    let frac = scaled - scaled.floor();
    if (frac - 0.5).abs() < 0.1 {
        return None;
    }
    let r = scaled.round() as i64;
    // drop the digits beyond dp decimals, half away from zero
    let d = k - dp as i32;
    let q = if d <= 0 {
        if d < -3 {
            return None;
        }
        r.checked_mul(10i64.pow((-d) as u32))?
    } else if d > 18 {
        0
    } else {
        let p = 10i64.pow(d as u32);
        let (q, rem) = (r / p, r % p);
        if rem * 2 >= p { q + 1 } else { q }
    };
    if q >= 1 << 53 {
        return None;
    }
    Some(Scaled {
        mantissa: if v < 0.0 { -q } else { q },
        scale: dp,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal::prelude::ToPrimitive;

    #[test]
    fn rounds_like_postgres() {
        assert_eq!(format_money(425.515), "425.52");
        assert_eq!(format_money(1702.06 / 4.0), "425.52");
        assert_eq!(format_money(124.57499999999999), "124.58");
        assert_eq!(format_money(0.1 + 0.2), "0.30");
        assert_eq!(format_money(-0.001), "0.00");
        assert_eq!(format_money(-2.675), "-2.68");
        assert_eq!(
            round_half_away(1.0 / 3.0, 6).map(|d| d.to_string()),
            Some("0.333333".into())
        );
        assert_eq!(format_money(0.004), "0.00");
        assert_eq!(format_money(0.005), "0.01");
        assert_eq!(format_money(-0.005), "-0.01");
        assert_eq!(format_money(12345678.995), "12345679.00");
        assert_eq!(
            round_scaled(0.1234565, 6).map(|x| x.to_string()),
            Some("0.123457".into())
        );
    }

    /// The integer path agrees with the decimal one on random and on tricky values.
    #[test]
    fn fast_rounding_is_the_decimal_rounding() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut values: Vec<f64> = Vec::new();
        for _ in 0..300_000 {
            let r = next();
            // money-like sums and quotients, and doubles of any magnitude
            let cents = (r % 10_000_000) as f64 / 100.0;
            values.push(cents);
            values.push(cents / ((r >> 40) % 97 + 1) as f64);
            values.push((r % 1000) as f64 / 1000.0 + (r >> 50) as f64);
            values.push(f64::from_bits(r) % 1e12);
            values.push(((r % 2_000_000) as f64 - 1_000_000.0) * 0.005);
            values.push(0.1 * (r % 100) as f64 + 0.2 * ((r >> 8) % 100) as f64);
        }
        assert_eq!(format_money(1e17), "100000000000000000.00");
        for v in [
            1e-9,
            5e-7,
            0.5,
            1.5,
            2.5,
            999999999.995,
            1e14,
            -1e-3,
            1.005,
            1.015,
        ] {
            values.push(v);
        }
        for v in values {
            if !v.is_finite() {
                continue;
            }
            for dp in [2u32, 4, 6] {
                if v.abs() * 10f64.powi(dp as i32) >= 9e18 {
                    continue; // beyond an i64 of units: round_scaled is None, callers fall back
                }
                let slow = round_half_away(v, dp).map(|d| {
                    let s = format!("{d:.prec$}", prec = dp as usize);
                    if s.trim_start_matches('-')
                        .chars()
                        .all(|c| c == '0' || c == '.')
                    {
                        s.trim_start_matches('-').to_owned()
                    } else {
                        s
                    }
                });
                let fast = round_scaled(v, dp).map(|x| x.to_string());
                assert_eq!(fast, slow, "{v:e} to {dp} places");
                if let (Some(f), Some(d)) = (round_scaled(v, dp), round_half_away(v, dp)) {
                    assert_eq!(f.to_f64(), d.to_f64().unwrap(), "{v:e} to {dp} places");
                }
            }
        }
    }
}
