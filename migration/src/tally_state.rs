//! The tables tally keeps for itself beside the source tables, created by `tally migrate`
//! ([`up`], after the source tables' migrations) so that no read path ever runs DDL:
//!
//! - the saas stage history (`saas.tally_stage_history`), its status row and its scope
//!   table ([`stage_history_tables`]; filled and kept fresh by tally's stage-history
//!   builder);
//! - on PostgreSQL, the data-version counters of a namespace (`"<ns>".tally_data_version`)
//!   and the triggers that bump them on every write to its tables
//!   ([`data_version_triggers`]; read by the result cache's poll).
//!
//! (The UTC offsets of time zones, through which SQLite computes local times, are not kept
//! in the database: each SQLite pool computes them into a scratch file of its own.)

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The DDL of the stage history, its status row and its scope table (idempotent).
///
/// On SQLite the history also has an index on `(valid_to, valid_from, stage, user_id)`: the
/// readers of the stages at an instant T (`sql/saas/stages_at.sqlite.sql`) keep the rows with
/// `valid_from <= T < valid_to`, and the index gives the entries with `valid_to > T` alone
/// (the users' current rows and those ending after T, about a third of the table), covering
/// the columns a stage count or a stage filter reads, where the table would be read whole.
/// `stage` is not its first column: a filter `stage = ?` it served would make SQLite (with
/// STAT4 statistics) plan the statement for the bound value and prepare it again on every
/// execution. (PostgreSQL plans these reads on the table as it is.)
pub fn stage_history_tables(backend: DbBackend) -> String {
    let (text_c, time, int, big) = if backend == DbBackend::Postgres {
        ("text COLLATE \"C\"", "timestamptz", "integer", "bigint")
    } else {
        ("TEXT", "TEXT", "INTEGER", "INTEGER")
    };
    let valid_to_index = if backend == DbBackend::Postgres {
        ""
    } else {
        "CREATE INDEX IF NOT EXISTS \"saas\".\"tally_stage_history_valid_to\" ON \"tally_stage_history\" \
         (valid_to, valid_from, stage, user_id);\n"
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
         {valid_to_index}\
         CREATE TABLE IF NOT EXISTS {status} (\
         id {int} PRIMARY KEY, fresh {int} NOT NULL, grace_seconds {big} NOT NULL, \
         built_at TEXT, row_count {big} NOT NULL, build_millis {big} NOT NULL);\n\
         INSERT INTO {status} (id, fresh, grace_seconds, built_at, row_count, build_millis) \
         VALUES (1, 0, -1, NULL, 0, 0) ON CONFLICT (id) DO NOTHING;\n\
         CREATE TABLE IF NOT EXISTS {scope} (user_id TEXT PRIMARY KEY);"
    )
}

/// The saas source tables whose writes make the stage history stale.
pub const STALENESS_SOURCES: [&str; 3] = ["global_events", "payments", "invoices"];

/// The name of the staleness triggers (PostgreSQL) and their prefix (SQLite).
pub const STALENESS_TRIGGER: &str = "tally_stage_history_stale";

/// Staleness triggers: whoever writes to one of `sources` (tally's loader, an ETL job,
/// psql), the rows of the status table `status` that `rows` selects are marked stale
/// (`fresh = 0`). Used for the saas stage history and for rollups: derived data is only read
/// while its status says it matches its source tables.
#[derive(Debug, Clone, Copy)]
pub struct Staleness<'a> {
    /// The namespace of the sources, the status table, the triggers and their function.
    pub namespace: &'a str,
    /// The status table (a `fresh` column).
    pub status: &'a str,
    /// The name of the triggers (PostgreSQL; also their function) and their prefix (SQLite).
    pub trigger: &'a str,
    /// The watched tables.
    pub sources: &'a [&'a str],
    /// Which status rows a write marks stale: a condition in which `{source}` stands for
    /// the written table's name as text (tally's own identifiers only).
    pub rows: &'a str,
}

/// Creates the staleness triggers `s` describes when they are missing. PostgreSQL: one
/// statement trigger per table (TRUNCATE included) calling one function, which marks the rows
/// stale (the first writer after a refresh, exclusively) and then holds a share lock on them
/// until commit, so that a refresh (which locks them exclusively) waits for writers still in
/// flight. The function is `SECURITY DEFINER` (with a fixed `search_path`; every name in it
/// is qualified) and replaced on every call, so a writer that may write the source tables
/// but not tally's status table (an ETL role) still writes, and still marks the rows stale. SQLite (row triggers only): one per table and write, touching the status only on
/// the first write after a refresh; a writer excludes every other writer anyway.
pub async fn create_staleness_triggers<C: ConnectionTrait>(
    conn: &C,
    s: &Staleness<'_>,
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let (ns, status, trigger) = (s.namespace, s.status, s.trigger);
    if backend == DbBackend::Postgres {
        let rows = s.rows.replace("{source}", "TG_TABLE_NAME");
        conn.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION \"{ns}\".\"{trigger}\"() \
             RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER \
             SET search_path = pg_catalog, pg_temp AS $fn$\n\
             BEGIN\n\
               UPDATE \"{ns}\".\"{status}\" SET fresh = 0 WHERE {rows} AND fresh <> 0;\n\
               PERFORM 1 FROM \"{ns}\".\"{status}\" WHERE {rows} FOR SHARE;\n\
               RETURN NULL;\n\
             END\n\
             $fn$;"
        ))
        .await?;
        for table in s.sources {
            let exists = conn
                .query_one_raw(sea_orm_migration::sea_orm::Statement::from_sql_and_values(
                    backend,
                    "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2 AND t.tgname = $3",
                    [ns.into(), (*table).into(), trigger.into()],
                ))
                .await?
                .is_some();
            if !exists {
                conn.execute_unprepared(&format!(
                    "CREATE TRIGGER \"{trigger}\" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE \
                     ON \"{ns}\".\"{table}\" FOR EACH STATEMENT EXECUTE FUNCTION \"{ns}\".\"{trigger}\"()"
                ))
                .await?;
            }
        }
    } else {
        let mut ddl = String::new();
        for table in s.sources {
            let rows = s.rows.replace("{source}", &format!("'{table}'"));
            for event in ["INSERT", "UPDATE", "DELETE"] {
                ddl.push_str(&format!(
                    "CREATE TRIGGER IF NOT EXISTS \"{ns}\".\"{trigger}_{table}_{}\" \
                     AFTER {event} ON \"{table}\" \
                     WHEN EXISTS (SELECT 1 FROM \"{status}\" WHERE {rows} AND fresh <> 0) \
                     BEGIN UPDATE \"{status}\" SET fresh = 0 WHERE {rows}; END;\n",
                    event.to_lowercase()
                ));
            }
        }
        conn.execute_unprepared(&ddl).await?;
    }
    Ok(())
}

/// Creates the staleness triggers of the stage history on its source tables when they are
/// missing (see [`create_staleness_triggers`]).
pub async fn staleness_triggers<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    create_staleness_triggers(
        conn,
        &Staleness {
            namespace: "saas",
            status: "tally_stage_history_status",
            trigger: STALENESS_TRIGGER,
            sources: &STALENESS_SOURCES,
            rows: "id = 1",
        },
    )
    .await
}

/// Creates the stage-history tables when they are missing
/// (idempotent; run by `tally migrate` after the source tables' migrations, which it does
/// not count among: they are tally's state, not source tables). The staleness triggers come
/// with [`staleness_triggers`], run by the stage-history builder before it first builds.
pub async fn up<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    conn.execute_unprepared(&stage_history_tables(backend))
        .await?;
    Ok(())
}

/// The table of a namespace's data-version counters, and the name of the triggers that bump
/// it and of their function (PostgreSQL).
pub const DATA_VERSION: &str = "tally_data_version";

/// The quoted identifier `name` (`"` doubled).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Installs, where missing, the data-version triggers of `namespace` on PostgreSQL (nothing
/// on SQLite, whose `PRAGMA data_version` is exact without them): the counter table
/// `"<namespace>".tally_data_version (pid, writes)`, a function, and on each table (every
/// ordinary or partitioned table of the namespace, or only `tables`) a statement trigger
/// `AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE` calling it, enabled `ALWAYS` (so that it
/// also fires under `session_replication_role = replica`, e.g. for logical replication).
///
/// The first writing statement of a transaction in the namespace adds 1 to the row of its
/// backend (`pg_backend_pid()`) in the same transaction: the sum of `writes` moves exactly
/// when a write commits (a rolled-back write leaves it unchanged) and concurrent writers never wait for each other on it (each
/// backend has its own row, which only it locks). The function is `SECURITY DEFINER`, so a
/// writer that may not write the counter table (an ETL role) still bumps it; the table is
/// readable by everyone (the server may read with another role).
///
/// With `tables` = `None` (migrations) the rows of backends that have exited are folded into
/// one row (pid 0) without changing the sum, which keeps the table as small as the number
/// of live writers. Idempotent: nothing is created when everything exists.
pub async fn data_version_triggers<C: ConnectionTrait>(
    conn: &C,
    namespace: &str,
    tables: Option<&[&str]>,
) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::Statement;
    let backend = conn.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(());
    }
    let ns = ident(namespace);
    let counter = format!("{ns}.{}", ident(DATA_VERSION));
    let function = format!("{ns}.{}", ident(DATA_VERSION));
    let trigger = ident(DATA_VERSION);
    // the tables without an enabled-always trigger, and whether the counter table and the
    // function exist
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT c.relname::text, t.oid IS NOT NULL FROM pg_class AS c \
             JOIN pg_namespace AS n ON n.oid = c.relnamespace \
             LEFT JOIN pg_trigger AS t ON t.tgrelid = c.oid AND t.tgname = $2 \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2 \
             AND (t.oid IS NULL OR t.tgenabled <> 'A') ORDER BY c.relname",
            [namespace.into(), DATA_VERSION.into()],
        ))
        .await?;
    let mut missing = Vec::with_capacity(rows.len());
    for r in &rows {
        let table = r.try_get_by_index::<String>(0)?;
        if tables.is_none_or(|t| t.contains(&table.as_str())) {
            missing.push((table, r.try_get_by_index::<bool>(1)?));
        }
    }
    // once per transaction and namespace: later statements of the transaction change
    // nothing the commit would not show anyway, and updating one row again and again in one
    // transaction grows its chain of versions (each update slower than the last). The mark
    // is a transaction-local setting, undone with the bump when a savepoint rolls back.
    let mark = format!(
        "tally.data_version_{}",
        namespace
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let body = format!(
        "\nBEGIN\n\
           IF current_setting('{mark}', true) IS DISTINCT FROM '1' THEN\n\
             INSERT INTO {counter} AS v (pid, writes) VALUES (pg_backend_pid(), 1) \
             ON CONFLICT (pid) DO UPDATE SET writes = v.writes + 1;\n\
             PERFORM set_config('{mark}', '1', true);\n\
           END IF;\n\
           RETURN NULL;\n\
         END\n"
    );
    let ready = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT to_regclass($1) IS NOT NULL AND \
             (SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($2)) IS NOT DISTINCT FROM $3",
            [
                counter.clone().into(),
                format!("{function}()").into(),
                body.clone().into(),
            ],
        ))
        .await?
        .map(|r| r.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false);
    if !ready || !missing.is_empty() {
        conn.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS {counter} (\
             pid integer PRIMARY KEY, writes bigint NOT NULL);\n\
             GRANT SELECT ON {counter} TO PUBLIC;\n\
             CREATE OR REPLACE FUNCTION {function}() \
             RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER \
             SET search_path = pg_catalog, pg_temp AS $fn${body}$fn$;"
        ))
        .await?;
    }
    for (table, exists) in &missing {
        let on = format!("{ns}.{}", ident(table));
        if !exists {
            conn.execute_unprepared(&format!(
                "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE \
                 ON {on} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            ))
            .await?;
        }
        conn.execute_unprepared(&format!("ALTER TABLE {on} ENABLE ALWAYS TRIGGER {trigger}"))
            .await?;
    }
    if tables.is_none() {
        // rows of backends that exited fold into pid 0 (the sum stays); rows a prepared
        // transaction still holds are left for a later migration
        conn.execute_unprepared(&format!(
            "WITH gone AS (DELETE FROM {counter} WHERE pid IN (\
               SELECT d.pid FROM {counter} AS d WHERE d.pid <> 0 AND NOT EXISTS (\
                 SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = d.pid) \
               FOR UPDATE SKIP LOCKED) RETURNING writes) \
             INSERT INTO {counter} AS v (pid, writes) \
             SELECT 0, sum(writes) FROM gone HAVING count(*) > 0 \
             ON CONFLICT (pid) DO UPDATE SET writes = v.writes + EXCLUDED.writes"
        ))
        .await?;
    }
    Ok(())
}
