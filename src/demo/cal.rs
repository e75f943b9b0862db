//! The demo calendar (2024-01-01T00:00:00Z to 2025-12-31T23:59:59Z), timestamp and money
//! formatting, and the time-of-signup distribution shared by the models.
//!
//! Times are seconds since the Unix epoch (UTC), formatted by hand (no dependency on the
//! current time or the local zone).

use super::rng::Rng;

/// 2024-01-01T00:00:00Z.
pub(super) const START: i64 = 1_704_067_200;
/// 2025-12-31T23:59:59Z, the last second of the demo calendar.
pub(super) const END: i64 = 1_767_225_599;
/// Seconds in a minute, an hour, a day.
pub(super) const MINUTE: i64 = 60;
/// Seconds in an hour.
pub(super) const HOUR: i64 = 3_600;
/// Seconds in a day.
pub(super) const DAY: i64 = 86_400;
/// The number of days of the calendar (731: 2024 is a leap year).
pub(super) const DAYS: i64 = (END + 1 - START) / DAY;

/// (year, month, day) of a day number counted from 1970-01-01 (Howard Hinnant's algorithm).
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number (from 1970-01-01) of a civil date.
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-03-01T09:30:00Z`.
pub(super) fn ts(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / HOUR,
        (s % HOUR) / MINUTE,
        s % MINUTE
    )
}

/// The hourly partition of an instant: `2024-03-01 09:00:00`.
pub(super) fn hour_partition(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(DAY));
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:00:00",
        t.rem_euclid(DAY) / HOUR
    )
}

/// The UTC date of an instant: `2024-03-01`.
pub(super) fn date(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(DAY));
    format!("{y:04}-{mo:02}-{d:02}")
}

/// The start of the hour of an instant.
pub(super) fn hour_start(t: i64) -> i64 {
    t.div_euclid(HOUR) * HOUR
}

/// An amount in cents with exactly two decimals: `1234` → `12.34`, `-5` → `-0.05`.
pub(super) fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Relative activity of each UTC hour of the day (a daytime peak), used to place signups.
const HOUR_WEIGHTS: [f64; 24] = [
    0.6, 0.4, 0.3, 0.3, 0.3, 0.4, 0.7, 1.1, 1.6, 2.0, 2.2, 2.3, 2.3, 2.3, 2.3, 2.2, 2.1, 2.0, 1.9,
    1.8, 1.7, 1.5, 1.2, 0.9,
];

/// Maps a fraction of a day to a second of that day through the cumulative hourly activity
/// (monotone, so ordered fractions stay ordered).
fn warp_day(frac: f64) -> i64 {
    let total: f64 = HOUR_WEIGHTS.iter().sum();
    let mut x = frac.clamp(0.0, 0.999_999_999) * total;
    for (h, w) in HOUR_WEIGHTS.iter().enumerate() {
        if x < *w {
            let s = (x / w * HOUR as f64) as i64;
            return h as i64 * HOUR + s.min(HOUR - 1);
        }
        x -= w;
    }
    DAY - 1
}

/// A second of the day with the daytime activity shape.
pub(super) fn time_of_day(rng: &mut Rng) -> i64 {
    warp_day(rng.f64())
}

/// Growth of signups over the calendar: the density rises linearly by this factor's slope
/// (the last day sees `1 + GROWTH` times the signups of the first).
const GROWTH: f64 = 1.5;

/// The signup time of entity `i` of `n`, increasing with `i` (ids are issued in time order),
/// with signups growing over the two years and a daytime peak. `jitter` is a uniform draw in
/// `[0, 1)` from the entity's own generator; `from`/`to` bound the times (usually
/// [`START`] and a little before [`END`]).
pub(super) fn ordered_time(i: u64, n: u64, jitter: f64, from: i64, to: i64) -> i64 {
    let n = n.max(1) as f64;
    let x = ((i as f64 + jitter) / n).clamp(0.0, 1.0);
    // Inverse CDF of the density (1 + a y) / (1 + a / 2) on [0, 1].
    let a = GROWTH;
    let y = ((1.0 + 2.0 * a * x * (1.0 + a / 2.0)).sqrt() - 1.0) / a;
    let span_days = ((to - from) / DAY).max(1) as f64;
    let pos = y.clamp(0.0, 1.0) * span_days;
    let day = pos.floor();
    let t = from + day as i64 * DAY + warp_day(pos - day);
    t.clamp(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ts(START), "2024-01-01T00:00:00Z");
        assert_eq!(ts(END), "2025-12-31T23:59:59Z");
        assert_eq!(
            hour_partition(START + 9 * HOUR + 1799),
            "2024-01-01 09:00:00"
        );
        assert_eq!(date(START + 59 * DAY), "2024-02-29");
        assert_eq!(days_from_civil(2024, 1, 1) * DAY, START);
        assert_eq!(DAYS, 731);
        assert_eq!(money(1234), "12.34");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(0), "0.00");
    }

    #[test]
    fn ordered_times_are_monotone() {
        let mut last = START;
        for i in 0..5000 {
            let t = ordered_time(i, 5000, 0.999, START, END);
            assert!(t >= last && t <= END);
            last = t;
            let t2 = ordered_time(i, 5000, 0.0, START, END);
            assert!(t2 <= t);
        }
    }
}
