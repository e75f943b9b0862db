//! UTC offsets of IANA time zones as a table, for databases without time-zone functions.
//!
//! PostgreSQL turns a UTC instant into local time with `AT TIME ZONE`; SQLite cannot. The
//! SQLite variants of the gym models (`sql/gym/*.sqlite.sql`) therefore look the offset up
//! in `tally_tz_offsets(zone, valid_from, valid_to, offset_seconds)`, in the scratch database
//! every SQLite pool attaches as `tally_state` (a file of its own, never a database tally is
//! given): one row per interval between two transitions of a zone, computed from chrono-tz
//! (daylight saving included). PostgreSQL needs no table: there the zones are only checked
//! to be ones tally knows.
//!
//! Intervals are half-open `[valid_from, valid_to)`, written as tally writes timestamps on
//! SQLite (`2024-03-31T01:00:00+00:00`), so that text comparison with stored timestamps is
//! time order. Transitions are searched between [`FIRST_YEAR`] and [`END_YEAR`]; the first
//! interval of a zone is open towards the past ([`OPEN_START`]) and the last towards the future
//! ([`OPEN_END`]), keeping the offsets in force at those bounds.
//!
//! [`refresh_offsets`] adds the zones of `gym.dim_branch` that the table lacks (run it after
//! every gym load); [`ensure_offsets`] is the cheap check done before every SQLite query.
//! [`ensure_zone`] adds one zone on demand (the semantic layer's `timezone` argument on
//! SQLite buckets instants with these offsets).

use chrono::{DateTime, Offset, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait, Value};

use crate::error::Error;
use crate::sql::dialect_of;

/// The table's name (unqualified).
pub const TABLE: &str = crate::semantic::TZ_OFFSETS_TABLE;

/// The first year searched for transitions (from 1 January, 00:00 UTC).
pub const FIRST_YEAR: i32 = 1970;

/// The year the search for transitions stops (at 1 January, 00:00 UTC).
pub const END_YEAR: i32 = 2060;

/// `valid_from` of a zone's first interval: before every instant tally stores.
pub const OPEN_START: &str = "0000-01-01T00:00:00+00:00";

/// `valid_to` of a zone's last interval: after every instant tally stores.
pub const OPEN_END: &str = "9999-12-31T23:59:59+00:00";

/// Seconds in a day: the step of the transition search.
const DAY: i64 = 86_400;

/// Rows per `INSERT` statement (4 bound values each).
const BATCH_ROWS: usize = 500;

/// One interval of constant UTC offset of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetInterval {
    /// The first instant of the interval; `None` for the zone's first interval (open start).
    pub valid_from: Option<DateTime<Utc>>,
    /// The first instant after the interval; `None` for the zone's last interval (open end).
    pub valid_to: Option<DateTime<Utc>>,
    /// Local time minus UTC, in seconds (`+05:45` is 20700), daylight saving included.
    pub offset_seconds: i32,
}

impl OffsetInterval {
    /// `valid_from` as stored: RFC 3339 in UTC with `+00:00`, or [`OPEN_START`].
    pub fn valid_from_text(&self) -> String {
        self.valid_from
            .map_or_else(|| OPEN_START.to_owned(), stored_form)
    }

    /// `valid_to` as stored: RFC 3339 in UTC with `+00:00`, or [`OPEN_END`].
    pub fn valid_to_text(&self) -> String {
        self.valid_to
            .map_or_else(|| OPEN_END.to_owned(), stored_form)
    }
}

/// An instant as tally stores timestamps on SQLite (whole seconds here).
fn stored_form(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Seconds since the epoch of 1 January of `year`, 00:00 UTC.
fn year_start(year: i32) -> i64 {
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .map_or(0, |t| t.timestamp())
}

/// The UTC offset (seconds) of `tz` at `t` seconds since the epoch.
fn offset_at(tz: Tz, t: i64) -> i32 {
    DateTime::from_timestamp(t, 0).map_or(0, |d| {
        tz.offset_from_utc_datetime(&d.naive_utc())
            .fix()
            .local_minus_utc()
    })
}

/// The intervals of constant offset of `tz`: transitions between [`FIRST_YEAR`] and
/// [`END_YEAR`], found by stepping a day at a time and bisecting to the second where the
/// offset changes. Adjacent intervals always have different offsets.
pub fn intervals(tz: Tz) -> Vec<OffsetInterval> {
    let (start, end) = (year_start(FIRST_YEAR), year_start(END_YEAR));
    let mut out = Vec::new();
    let mut from: Option<i64> = None;
    let mut current = offset_at(tz, start);
    let mut t = start;
    while t < end {
        let next = (t + DAY).min(end);
        if offset_at(tz, next) == current {
            t = next;
            continue;
        }
        // offset_at(lo) == current != offset_at(hi): bisect to the first second of the change.
        let (mut lo, mut hi) = (t, next);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(tz, mid) == current {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        out.push(OffsetInterval {
            valid_from: from.and_then(|s| DateTime::from_timestamp(s, 0)),
            valid_to: DateTime::from_timestamp(hi, 0),
            offset_seconds: current,
        });
        from = Some(hi);
        current = offset_at(tz, hi);
        // Go on from the transition itself: another one may follow within the day.
        t = hi;
    }
    out.push(OffsetInterval {
        valid_from: from.and_then(|s| DateTime::from_timestamp(s, 0)),
        valid_to: None,
        offset_seconds: current,
    });
    out
}

/// The zones of `<namespace>.dim_branch` (the gym model's branches, where they live) that
/// have no row in the table, in byte order. On a backend with time zones there is no table:
/// every zone is only checked to be one tally knows, and none is missing.
async fn missing_zones(db: &impl ConnectionTrait, namespace: &str) -> Result<Vec<String>, Error> {
    let dialect = dialect_of(db);
    let branches = format!("\"{}\".\"dim_branch\"", namespace.replace('"', "\"\""));
    let sql = if dialect.time_zones() {
        format!("SELECT DISTINCT b.timezone_id AS zone FROM {branches} AS b")
    } else {
        format!(
            "SELECT DISTINCT b.timezone_id AS zone FROM {branches} AS b \
             WHERE NOT EXISTS (SELECT 1 FROM {} AS o WHERE o.zone = b.timezone_id)",
            dialect.tz_offsets_table()
        )
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map_err(|e| {
            Error::Database(format!("listing the zones of {namespace}.dim_branch: {e}"))
        })?;
    let mut zones = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Database(format!("reading the zones of {namespace}.dim_branch: {e}"))
        })?;
    zones.sort();
    if dialect.time_zones() {
        if let Some(z) = zones.iter().find(|z| z.parse::<Tz>().is_err()) {
            return Err(Error::Input(format!(
                "{namespace}.dim_branch has the time zone {z:?}, which is not an IANA zone tally knows"
            )));
        }
        return Ok(Vec::new());
    }
    Ok(zones)
}

/// Adds the offsets of every zone of `gym.dim_branch` that the table lacks (creating the
/// table first if needed), in one transaction; returns how many zones were added.
///
/// Zones already present are left as they are, so it is cheap to call after every load;
/// concurrent calls are harmless (rows already present are skipped). Fails with
/// [`Error::Input`] for a zone chrono-tz does not know.
pub async fn refresh_offsets(db: &DatabaseConnection) -> Result<usize, Error> {
    refresh_offsets_in(db, "gym").await
}

/// [`refresh_offsets`] for the branches of the gym model mapped to `namespace`.
pub async fn refresh_offsets_in(db: &DatabaseConnection, namespace: &str) -> Result<usize, Error> {
    let zones = missing_zones(db, namespace).await?;
    if zones.is_empty() {
        return Ok(0);
    }
    insert_zones(db, &zones, "gym.dim_branch").await?;
    Ok(zones.len())
}

/// Inserts the intervals of `zones` (IANA names) in one transaction; rows already present are
/// skipped. `origin` names where the zones come from, for the error of an unknown zone.
async fn insert_zones(
    db: &DatabaseConnection,
    zones: &[String],
    origin: &str,
) -> Result<(), Error> {
    let mut rows: Vec<(String, OffsetInterval)> = Vec::new();
    for zone in zones {
        let tz: Tz = zone.parse().map_err(|_| {
            Error::Input(format!(
                "{origin} has the time zone {zone:?}, which is not an IANA zone tally knows"
            ))
        })?;
        rows.extend(intervals(tz).into_iter().map(|i| (zone.clone(), i)));
    }
    let table = dialect_of(db).tz_offsets_table();
    let backend = db.get_database_backend();
    let txn = db
        .begin()
        .await
        .map_err(|e| Error::Database(format!("cannot begin a transaction: {e}")))?;
    for chunk in rows.chunks(BATCH_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        let mut tuples = Vec::with_capacity(chunk.len());
        for (zone, interval) in chunk {
            let n = values.len();
            tuples.push(format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
            values.push(zone.clone().into());
            values.push(interval.valid_from_text().into());
            values.push(interval.valid_to_text().into());
            values.push(interval.offset_seconds.into());
        }
        let sql = format!(
            "INSERT INTO {table} (zone, valid_from, valid_to, offset_seconds) VALUES {} \
             ON CONFLICT (zone, valid_from) DO NOTHING",
            tuples.join(", ")
        );
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map_err(|e| Error::Database(format!("filling {TABLE}: {e}")))?;
    }
    txn.commit()
        .await
        .map_err(|e| Error::Database(format!("committing {TABLE}: {e}")))?;
    tracing::debug!(zones = ?zones, "time-zone offsets added");
    Ok(())
}

/// Makes sure the table holds the offsets of the IANA zone `zone`: one read-only look-up
/// when it does, else the zone's intervals are inserted (the table is `tally migrate`'s).
/// Fails with [`Error::Input`] for a zone chrono-tz does not know.
pub async fn ensure_zone(db: &DatabaseConnection, zone: &str) -> Result<(), Error> {
    let stmt = Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "SELECT 1 FROM {} WHERE zone = $1 LIMIT 1",
            dialect_of(db).tz_offsets_table()
        ),
        [zone.into()],
    );
    let found = db
        .query_one_raw(stmt)
        .await
        .map_err(|e| Error::Database(format!("looking up {zone} in {TABLE}: {e}")))?;
    if found.is_some() {
        return Ok(());
    }
    insert_zones(db, &[zone.to_owned()], "the request").await
}

/// Makes sure the table holds every zone of `<namespace>.dim_branch` (the gym model's
/// branches): one look-up, and [`refresh_offsets_in`] only when a zone is missing.
pub async fn ensure_offsets(db: &DatabaseConnection, namespace: &str) -> Result<(), Error> {
    if !missing_zones(db, namespace).await?.is_empty() {
        refresh_offsets_in(db, namespace).await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    #[test]
    fn london_2024() {
        let all = intervals(chrono_tz::Europe::London);
        let spring = all
            .iter()
            .find(|i| i.valid_from == at("2024-03-31T01:00:00Z"))
            .expect("BST starts 2024-03-31 01:00 UTC");
        assert_eq!(spring.offset_seconds, 3600);
        assert_eq!(spring.valid_to, at("2024-10-27T01:00:00Z"));
        assert_eq!(all[0].valid_from, None);
        assert_eq!(all.last().unwrap().valid_to, None);
        for w in all.windows(2) {
            assert_eq!(w[0].valid_to, w[1].valid_from);
            assert_ne!(w[0].offset_seconds, w[1].offset_seconds);
        }
    }

    #[test]
    fn fixed_and_odd_offsets() {
        let kathmandu = intervals(chrono_tz::Asia::Kathmandu);
        // +05:30 until 1986-01-01 00:00 local, +05:45 since.
        assert_eq!(kathmandu.len(), 2);
        assert_eq!(kathmandu[0].offset_seconds, 19_800);
        assert_eq!(kathmandu[1].offset_seconds, 20_700);
        assert_eq!(kathmandu[1].valid_from_text(), "1985-12-31T18:30:00+00:00");
        assert_eq!(kathmandu[1].valid_to_text(), OPEN_END);
        let kolkata = intervals(chrono_tz::Asia::Kolkata);
        assert_eq!(kolkata.len(), 1);
        assert_eq!(kolkata[0].offset_seconds, 19_800);
        assert_eq!(kolkata[0].valid_from_text(), OPEN_START);
        let adelaide = intervals(chrono_tz::Australia::Adelaide);
        let dst = adelaide
            .iter()
            .find(|i| i.valid_from == at("2024-10-05T16:30:00Z"))
            .expect("Adelaide daylight time starts 2024-10-06 02:00 local");
        assert_eq!(dst.offset_seconds, 37_800);
    }
}
