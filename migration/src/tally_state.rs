//! The tables tally keeps for itself beside the source tables, created by `tally migrate`
//! ([`up`], after the source tables' migrations) so that no read path ever runs DDL:
//!
//! - the saas stage history (`saas.tally_stage_history`), its status row and its scope
//!   table ([`stage_history_tables`]; filled and kept fresh by tally's stage-history
//!   builder);
//! - `tally_tz_offsets` in the default namespace ([`tz_offsets_table`]): the UTC offsets of
//!   time zones, through which SQLite computes local times.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The DDL of the stage history, its status row and its scope table (idempotent).
pub fn stage_history_tables(backend: DbBackend) -> String {
    let (text_c, time, int, big) = if backend == DbBackend::Postgres {
        ("text COLLATE \"C\"", "timestamptz", "integer", "bigint")
    } else {
        ("TEXT", "TEXT", "INTEGER", "INTEGER")
    };
    let history = "\"saas\".\"tally_stage_history\"";
    let status = "\"saas\".\"tally_stage_history_status\"";
    let scope = "\"saas\".\"tally_stage_history_scope\"";
    format!(
        "CREATE TABLE IF NOT EXISTS {history} (\
         user_id {text_c} NOT NULL, valid_from {time} NOT NULL, valid_to {time} NOT NULL, \
         signup_time {time} NOT NULL, stage TEXT NOT NULL, churn_reason TEXT, \
         account_deleted {int} NOT NULL, all_shops_deleted {int} NOT NULL, \
         delinquent {int} NOT NULL, reached_prospect {int} NOT NULL, \
         reached_customer {int} NOT NULL, repeat_payer {int} NOT NULL, \
         PRIMARY KEY (user_id, valid_from));\n\
         CREATE TABLE IF NOT EXISTS {status} (\
         id {int} PRIMARY KEY, fresh {int} NOT NULL, grace_seconds {big} NOT NULL, \
         built_at TEXT, row_count {big} NOT NULL, build_millis {big} NOT NULL);\n\
         INSERT INTO {status} (id, fresh, grace_seconds, built_at, row_count, build_millis) \
         VALUES (1, 0, -1, NULL, 0, 0) ON CONFLICT (id) DO NOTHING;\n\
         CREATE TABLE IF NOT EXISTS {scope} (user_id TEXT PRIMARY KEY);"
    )
}

/// The DDL of `tally_tz_offsets` (idempotent): per zone, the intervals `[valid_from,
/// valid_to)` (RFC 3339 text in UTC) over which its UTC offset is `offset_seconds`.
pub fn tz_offsets_table(backend: DbBackend) -> String {
    let namespace = if backend == DbBackend::Postgres {
        "public"
    } else {
        "main"
    };
    format!(
        "CREATE TABLE IF NOT EXISTS \"{namespace}\".\"tally_tz_offsets\" (\
         zone TEXT NOT NULL, \
         valid_from TEXT NOT NULL, \
         valid_to TEXT NOT NULL, \
         offset_seconds INTEGER NOT NULL, \
         PRIMARY KEY (zone, valid_from))"
    )
}

/// Creates the stage-history tables and the offsets table when they are missing
/// (idempotent; run by `tally migrate` after the source tables' migrations, which it does
/// not count among: they are tally's state, not source tables).
pub async fn up<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    conn.execute_unprepared(&stage_history_tables(backend))
        .await?;
    conn.execute_unprepared(&tz_offsets_table(backend)).await?;
    Ok(())
}
