//! The SQL dialects: one trait of capability methods, a default spelling in its provided
//! methods, and each backend overriding only where it differs.

use super::{Param, Sql};
use crate::semantic::{Granularity, TimeStorage};

/// What differs between the databases tally renders for.
pub trait Dialect: Sync + Send {
    /// `postgres` or `sqlite` (also the snapshot suffix).
    fn name(&self) -> &'static str;

    /// The placeholder of the `n`-th (1-based) parameter.
    fn placeholder(&self, n: usize) -> String;

    /// Which of a SQL table's two texts (one per backend) this dialect runs.
    fn sql_text<'a>(&self, postgres: &'a str, sqlite: &'a str) -> &'a str;

    /// Whether `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)` exists.
    fn percentile_cont(&self) -> bool;

    /// Whether time buckets in a zone other than UTC are computed natively (`AT TIME ZONE`);
    /// otherwise from the `tally_tz_offsets` table (filled for the zone before the query).
    fn time_zones(&self) -> bool;

    /// A statement that turns the JIT compiler off until the end of the current transaction,
    /// for statements whose plans are costed far above what they take (embedded SQL tables);
    /// `None` where there is no JIT.
    fn jit_off(&self) -> Option<&'static str> {
        None
    }

    /// An instant column as RFC 3339 text in UTC with whole seconds (`2024-03-01T09:30:00Z`),
    /// the same text on every backend.
    fn instant_text(&self, x: Sql) -> Sql;

    /// The expression that turns the JIT compiler off until the end of the transaction,
    /// usable inside a select list (`None` where there is no JIT).
    fn jit_off_expression(&self) -> Option<&'static str> {
        None
    }

    /// A query for whether a table exists in `namespace` (the table's name bound as `$1`).
    fn table_exists_query(&self, namespace: &str) -> String;

    /// A query for the columns of a table, in their order: `$1` = namespace, `$2` = table.
    fn columns_query(&self, namespace: &str, table: &str) -> (String, Vec<sea_orm::Value>);

    /// How to begin a transaction whose reads all see one snapshot.
    fn snapshot_read(&self) -> (Option<sea_orm::IsolationLevel>, Option<sea_orm::AccessMode>) {
        (None, None)
    }

    /// The statement that refreshes a table's planner statistics after it was rewritten
    /// (and gives back the space of the rows it replaced, where that is a separate step).
    fn reclaim_and_analyze(&self, table: &str) -> String {
        format!("ANALYZE {table}")
    }

    /// Settings for a transaction that builds a large table (`None`: nothing to set).
    fn bulk_build_settings(&self) -> Option<&'static str> {
        None
    }

    /// The clause that locks the rows a SELECT reads until the transaction ends (`None` on a
    /// backend without row locks, where the first write locks the database).
    fn for_update(&self) -> Option<&'static str> {
        None
    }

    /// A subquery whose `value` column lists the strings of the JSON array bound at
    /// `placeholder` (`$1`): how tally sends a set of keys as one parameter.
    fn json_values(&self, placeholder: &str) -> String;

    /// Reads an instant column: a `timestamptz`, or RFC 3339 text.
    fn read_instant(
        &self,
        r: &sea_orm::QueryResult,
        i: usize,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, String>;

    /// Sets what a connection pool on `url` needs on this backend (size, per-connection
    /// set-up); `models` are the namespaces every connection must see. The message of an
    /// error says what is wrong with the URL.
    fn configure_pool(
        &self,
        opts: &mut sea_orm::ConnectOptions,
        url: &str,
        models: &[&str],
    ) -> Result<(), String>;

    /// The qualified name of `tally_tz_offsets` (the UTC offsets of time zones), which lives
    /// in the default namespace.
    fn tz_offsets_table(&self) -> String;

    /// Whether a row is best marked as matching a set of keys by `(k0, k1, …) IN (SELECT …)`
    /// rather than by a LEFT JOIN to the (distinct) keys: SQLite scans a joined CTE once per
    /// row where no index exists, but builds an index for an `IN` subquery; PostgreSQL
    /// hash-joins, where its `IN` would be a hashed subplan only while the keys fit in memory.
    fn mark_by_in(&self) -> bool {
        false
    }

    /// The collation that orders text by bytes, as SQLite's default does.
    fn byte_collation(&self) -> Option<&'static str> {
        None
    }

    /// `LIMIT` that does not limit (for an `OFFSET` alone).
    fn limit_all(&self) -> &'static str {
        "LIMIT ALL"
    }

    /// `x` as a 64-bit integer.
    fn int(&self, x: Sql) -> Sql {
        Sql::wrap("CAST(", x, " AS BIGINT)")
    }

    /// `x` as a double.
    fn float(&self, x: Sql) -> Sql {
        Sql::wrap("CAST(", x, " AS DOUBLE PRECISION)")
    }

    /// A boolean `x` as a 64-bit 0/1 integer.
    fn bool_int(&self, x: Sql) -> Sql {
        Sql::wrap("CAST(CAST(", x, " AS INTEGER) AS BIGINT)")
    }

    /// `x` rounded to `decimals`, as a double.
    fn round(&self, x: Sql, decimals: u32) -> Sql {
        Sql::wrap(
            "CAST(ROUND(CAST(",
            x,
            &format!(" AS NUMERIC), {decimals}) AS DOUBLE PRECISION)"),
        )
    }

    /// The median aggregate of `x`, when the backend has one.
    fn median(&self, x: Sql) -> Option<Sql> {
        Some(Sql::wrap(
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY ",
            x,
            ")",
        ))
    }

    /// Whether text `x` contains text `v`.
    fn contains(&self, x: Sql, v: Sql) -> Sql {
        let mut s = Sql::raw("strpos(");
        s.append(x);
        s.push(", ");
        s.append(v);
        s.push(") > 0");
        s
    }

    /// The text of top-level key `key` of JSON `x`.
    fn json_text(&self, x: Sql, key: &str) -> Sql {
        let mut s = Sql::raw("(");
        s.append(x);
        s.push(" ->> ");
        s.param(Param::Value(sea_orm::Value::String(Some(key.to_owned()))));
        s.push(")");
        s
    }

    /// Whole seconds from `a` to `b` (both of storage `st`).
    fn seconds_between(&self, a: Sql, b: Sql, st: TimeStorage) -> Sql {
        match st {
            TimeStorage::Date => {
                let mut s = Sql::raw("((");
                s.append(b);
                s.push(" - ");
                s.append(a);
                s.push(") * 86400)");
                s
            }
            TimeStorage::Local => {
                let mut s = Sql::raw("EXTRACT(EPOCH FROM (date_trunc('second', CAST(");
                s.append(b);
                s.push(" AS TIMESTAMP)) - date_trunc('second', CAST(");
                s.append(a);
                s.push(" AS TIMESTAMP))))");
                s
            }
            TimeStorage::Instant => {
                let mut s = Sql::raw("EXTRACT(EPOCH FROM (date_trunc('second', ");
                s.append(b);
                s.push(") - date_trunc('second', ");
                s.append(a);
                s.push(")))");
                s
            }
        }
    }

    /// The start of `x`'s bucket as the backend's native value, what rows are grouped and
    /// joined on (a `timestamp` on PostgreSQL, so that no text is computed per row): the
    /// bucket of an instant in UTC, or in the request's time zone (`tz`, bound as
    /// [`Param::TimeZone`]) as local wall-clock time; of a date or a local time as written.
    /// [`Dialect::key_text`] writes it as text, once per group.
    fn time_key(&self, x: Sql, st: TimeStorage, g: Granularity, tz: bool) -> Sql {
        let unit = g.as_str();
        match st {
            TimeStorage::Instant if tz => {
                let mut s = Sql::raw(&format!("date_trunc('{unit}', "));
                s.append(x);
                s.push(" AT TIME ZONE ");
                s.param(Param::TimeZone);
                s.push(")");
                s
            }
            TimeStorage::Instant => {
                Sql::wrap(&format!("date_trunc('{unit}', "), x, " AT TIME ZONE 'UTC')")
            }
            TimeStorage::Date | TimeStorage::Local => {
                Sql::wrap(&format!("date_trunc('{unit}', CAST("), x, " AS TIMESTAMP))")
            }
        }
    }

    /// A bucket key ([`Dialect::time_key`]) as the text of its start: RFC 3339 UTC (`…Z`,
    /// `z`) for instants and dates, a local `YYYY-MM-DDTHH:MM:SS` for local times and
    /// instants bucketed in a time zone.
    fn key_text(&self, k: Sql, z: bool) -> Sql {
        let fmt = if z {
            "YYYY-MM-DD\"T\"HH24:MI:SS\"Z\""
        } else {
            "YYYY-MM-DD\"T\"HH24:MI:SS"
        };
        Sql::wrap("to_char(", k, &format!(", '{fmt}')"))
    }

    /// The key of the bucket `n` periods (of `g`) after the bucket key `k` (`z`: whether its
    /// text ends in `Z`, for backends whose keys are text).
    fn key_add(&self, k: Sql, g: Granularity, n: i64, _z: bool) -> Sql {
        let (k_n, unit) = period_step(g, n);
        Sql::wrap("(", k, &format!(" + INTERVAL '{k_n} {unit}')"))
    }

    /// Seconds since 1970 of a bucket key's start (its wall-clock time read as UTC).
    fn key_epoch(&self, k: Sql) -> Sql {
        Sql::wrap("CAST(EXTRACT(EPOCH FROM ", k, ") AS BIGINT)")
    }

    /// `floor(x / by)` for a number of seconds `x` (an integer on every backend).
    fn div_floor(&self, x: Sql, by: i64) -> Sql {
        Sql::wrap("CAST(floor(", x, &format!(" / {by}) AS BIGINT)"))
    }

    /// The greater of two values.
    fn greatest(&self, a: Sql, b: Sql) -> Sql {
        let mut s = Sql::raw("GREATEST(");
        s.append(a);
        s.push(", ");
        s.append(b);
        s.push(")");
        s
    }
}

/// `n` periods of `g` as an amount and a unit both backends understand (`3 months`).
fn period_step(g: Granularity, n: i64) -> (i64, &'static str) {
    match g {
        Granularity::Hour => (n, "hours"),
        Granularity::Day => (n, "days"),
        Granularity::Week => (7 * n, "days"),
        Granularity::Month => (n, "months"),
        Granularity::Quarter => (3 * n, "months"),
        Granularity::Year => (n, "years"),
    }
}

/// SQLite: the local wall-clock text (`YYYY-MM-DDTHH:MM:SS`) of the instant `x` in the
/// request's zone, from the offset in force at `x` in `tally_tz_offsets`.
fn sqlite_local(x: Sql) -> Sql {
    let mut s = Sql::raw("strftime('%Y-%m-%dT%H:%M:%S', ");
    s.append(x.clone());
    s.push(&format!(
        ", (SELECT \"tally_o\".\"offset_seconds\" || ' seconds' FROM {} AS \"tally_o\" WHERE \"tally_o\".\"zone\" = ",
        Sqlite.tz_offsets_table()
    ));
    s.param(Param::TimeZone);
    s.push(" AND \"tally_o\".\"valid_from\" <= ");
    s.append(x);
    s.push(" ORDER BY \"tally_o\".\"valid_from\" DESC LIMIT 1))");
    s
}

/// PostgreSQL (and compatible engines).
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn placeholder(&self, n: usize) -> String {
        format!("${n}")
    }
    fn sql_text<'a>(&self, postgres: &'a str, _sqlite: &'a str) -> &'a str {
        postgres
    }
    fn configure_pool(
        &self,
        opts: &mut sea_orm::ConnectOptions,
        _url: &str,
        _models: &[&str],
    ) -> Result<(), String> {
        // every model is a schema of the one database
        opts.max_connections(16).min_connections(1);
        Ok(())
    }
    fn percentile_cont(&self) -> bool {
        true
    }
    fn time_zones(&self) -> bool {
        true
    }
    fn byte_collation(&self) -> Option<&'static str> {
        Some("\"C\"")
    }
    fn jit_off_expression(&self) -> Option<&'static str> {
        // only where the server has the setting (Postgres-compatible engines may not)
        Some("SELECT set_config('jit', 'off', true) WHERE current_setting('jit', true) IS NOT NULL")
    }
    fn table_exists_query(&self, namespace: &str) -> String {
        format!(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = '{}' AND table_name = $1",
            namespace.replace('\'', "''")
        )
    }
    fn columns_query(&self, namespace: &str, table: &str) -> (String, Vec<sea_orm::Value>) {
        (
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position"
                .to_owned(),
            vec![namespace.into(), table.into()],
        )
    }
    fn snapshot_read(&self) -> (Option<sea_orm::IsolationLevel>, Option<sea_orm::AccessMode>) {
        (
            Some(sea_orm::IsolationLevel::RepeatableRead),
            Some(sea_orm::AccessMode::ReadOnly),
        )
    }
    fn reclaim_and_analyze(&self, table: &str) -> String {
        format!("VACUUM (ANALYZE) {table}")
    }
    fn bulk_build_settings(&self) -> Option<&'static str> {
        Some(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', '256MB', true) \
             WHERE current_setting('jit', true) IS NOT NULL",
        )
    }
    fn for_update(&self) -> Option<&'static str> {
        Some(" FOR UPDATE")
    }
    fn json_values(&self, placeholder: &str) -> String {
        format!("SELECT value FROM jsonb_array_elements_text(CAST({placeholder} AS jsonb))")
    }
    fn read_instant(
        &self,
        r: &sea_orm::QueryResult,
        i: usize,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        r.try_get_by_index::<Option<chrono::DateTime<chrono::Utc>>>(i)
            .map_err(|e| e.to_string())
    }
    fn tz_offsets_table(&self) -> String {
        format!("\"public\".\"{}\"", crate::semantic::TZ_OFFSETS_TABLE)
    }
    fn instant_text(&self, x: Sql) -> Sql {
        Sql::wrap(
            "to_char((",
            x,
            ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        )
    }
    fn jit_off(&self) -> Option<&'static str> {
        // like `SET LOCAL`, only where the server has the setting (compatible engines may not)
        Some("SELECT set_config('jit', 'off', true) WHERE current_setting('jit', true) IS NOT NULL")
    }
}

/// SQLite.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

impl Dialect for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn placeholder(&self, _n: usize) -> String {
        "?".to_owned()
    }
    fn sql_text<'a>(&self, _postgres: &'a str, sqlite: &'a str) -> &'a str {
        sqlite
    }
    /// Every pooled connection attaches one database file per model (`saas`, `gym`, …) next
    /// to the main one, creating the files when missing; WAL, foreign keys off (the loader
    /// checks references), and a 10 s wait for a lock instead of failing.
    fn configure_pool(
        &self,
        opts: &mut sea_orm::ConnectOptions,
        url: &str,
        models: &[&str],
    ) -> Result<(), String> {
        use sea_orm::sqlx::{self, Executor as _};
        use std::time::Duration;
        let main = sqlite_path(url).ok_or_else(|| {
            format!(
                "SQLite URL {url:?} names no file; tally keeps each model in a file next to the main one (e.g. sqlite://tally.db)"
            )
        })?;
        let attachments: Vec<(String, String)> = models
            .iter()
            .map(|m| {
                (
                    (*m).to_owned(),
                    sqlite_model_path(&main, m).to_string_lossy().into_owned(),
                )
            })
            .collect();
        opts.max_connections(8).min_connections(1);
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false)
        });
        opts.map_sqlx_sqlite_pool_opts(move |pool| {
            let attachments = attachments.clone();
            pool.after_connect(move |conn, _meta| {
                let attachments = attachments.clone();
                Box::pin(async move {
                    for (name, file) in &attachments {
                        sqlx::query("ATTACH DATABASE ? AS ?")
                            .bind(file)
                            .bind(name)
                            .execute(&mut *conn)
                            .await?;
                        let pragma = format!("PRAGMA \"{name}\".journal_mode = WAL");
                        conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                    }
                    Ok(())
                })
            })
        });
        Ok(())
    }
    fn percentile_cont(&self) -> bool {
        false
    }
    fn time_zones(&self) -> bool {
        false
    }
    fn table_exists_query(&self, namespace: &str) -> String {
        format!(
            "SELECT 1 FROM \"{}\".sqlite_master WHERE type = 'table' AND name = $1",
            namespace.replace('"', "\"\"")
        )
    }
    fn columns_query(&self, namespace: &str, table: &str) -> (String, Vec<sea_orm::Value>) {
        (
            "SELECT name FROM pragma_table_info($1, $2) ORDER BY cid".to_owned(),
            vec![table.into(), namespace.into()],
        )
    }
    fn json_values(&self, placeholder: &str) -> String {
        format!("SELECT value FROM json_each({placeholder})")
    }
    fn read_instant(
        &self,
        r: &sea_orm::QueryResult,
        i: usize,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        let s = r
            .try_get_by_index::<Option<String>>(i)
            .map_err(|e| e.to_string())?;
        s.map(|s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| format!("{s:?}: {e}"))
        })
        .transpose()
    }
    fn tz_offsets_table(&self) -> String {
        format!("\"main\".\"{}\"", crate::semantic::TZ_OFFSETS_TABLE)
    }
    fn instant_text(&self, x: Sql) -> Sql {
        Sql::wrap("strftime('%Y-%m-%dT%H:%M:%SZ', ", x, ")")
    }
    fn limit_all(&self) -> &'static str {
        "LIMIT -1"
    }
    fn mark_by_in(&self) -> bool {
        true
    }
    fn int(&self, x: Sql) -> Sql {
        Sql::wrap("CAST(", x, " AS INTEGER)")
    }
    fn float(&self, x: Sql) -> Sql {
        Sql::wrap("CAST(", x, " AS REAL)")
    }
    fn bool_int(&self, x: Sql) -> Sql {
        Sql::wrap("CAST(", x, " AS INTEGER)")
    }
    fn round(&self, x: Sql, decimals: u32) -> Sql {
        Sql::wrap("ROUND(", x, &format!(", {decimals})"))
    }
    fn median(&self, _x: Sql) -> Option<Sql> {
        None
    }
    fn contains(&self, x: Sql, v: Sql) -> Sql {
        let mut s = Sql::raw("instr(");
        s.append(x);
        s.push(", ");
        s.append(v);
        s.push(") > 0");
        s
    }
    fn json_text(&self, x: Sql, key: &str) -> Sql {
        let mut s = Sql::raw("json_extract(");
        s.append(x);
        s.push(", ");
        let path = format!("$.\"{}\"", key.replace('"', "\\\""));
        s.param(Param::Value(sea_orm::Value::String(Some(path))));
        s.push(")");
        s
    }
    fn seconds_between(&self, a: Sql, b: Sql, _st: TimeStorage) -> Sql {
        let mut s = Sql::raw("(unixepoch(");
        s.append(b);
        s.push(") - unixepoch(");
        s.append(a);
        s.push("))");
        s
    }
    fn key_add(&self, x: Sql, g: Granularity, n: i64, z: bool) -> Sql {
        let (k, unit) = period_step(g, n);
        let z = if z { "Z" } else { "" };
        Sql::wrap(
            &format!("strftime('%Y-%m-%dT%H:%M:%S{z}', "),
            x,
            &format!(", '{k:+} {unit}')"),
        )
    }
    fn div_floor(&self, x: Sql, by: i64) -> Sql {
        Sql::wrap("(CAST(", x, &format!(" AS INTEGER) / {by})"))
    }
    fn greatest(&self, a: Sql, b: Sql) -> Sql {
        let mut s = Sql::raw("MAX(");
        s.append(a);
        s.push(", ");
        s.append(b);
        s.push(")");
        s
    }
    /// SQLite has no time type: a bucket's key is its text.
    fn time_key(&self, x: Sql, st: TimeStorage, g: Granularity, tz: bool) -> Sql {
        if tz && st == TimeStorage::Instant {
            return self.time_key(sqlite_local(x), TimeStorage::Local, g, false);
        }
        let z = if st == TimeStorage::Local { "" } else { "Z" };
        let strftime = |fmt: &str, x: Sql| Sql::wrap(&format!("strftime('{fmt}{z}', "), x, ")");
        match g {
            Granularity::Hour => strftime("%Y-%m-%dT%H:00:00", x),
            Granularity::Day => strftime("%Y-%m-%dT00:00:00", x),
            Granularity::Week => {
                let mut s = Sql::raw(&format!("strftime('%Y-%m-%dT00:00:00{z}', "));
                s.append(x);
                s.push(", 'weekday 0', '-6 days')");
                s
            }
            Granularity::Month => strftime("%Y-%m-01T00:00:00", x),
            // printf writes a NULL time as `-00-01…`: that text is the NULL bucket
            Granularity::Quarter => {
                let mut s = Sql::raw(&format!(
                    "NULLIF(printf('%s-%02d-01T00:00:00{z}', strftime('%Y', "
                ));
                s.append(x.clone());
                s.push("), ((CAST(strftime('%m', ");
                s.append(x);
                s.push(&format!(
                    ") AS INTEGER) - 1) / 3) * 3 + 1), '-00-01T00:00:00{z}')"
                ));
                s
            }
            Granularity::Year => strftime("%Y-01-01T00:00:00", x),
        }
    }
    fn key_text(&self, k: Sql, _z: bool) -> Sql {
        k
    }
    fn key_epoch(&self, k: Sql) -> Sql {
        Sql::wrap("unixepoch(", k, ")")
    }
}

/// The dialect of an open connection's backend: the one place a backend becomes a dialect.
pub fn dialect_of(db: &impl sea_orm::ConnectionTrait) -> &'static dyn Dialect {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => &Postgres,
        _ => &Sqlite,
    }
}

/// The dialect of a database URL (`sqlite:…`, `postgres://…`, `postgresql://…`), `None` for
/// another scheme.
pub fn dialect_of_url(url: &str) -> Option<&'static dyn Dialect> {
    if url.starts_with("sqlite:") {
        Some(&Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(&Postgres)
    } else {
        None
    }
}

/// The file an SQLite URL names, or `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(std::path::PathBuf::from(path))
    }
}

/// The file that holds `model`'s tables next to the main SQLite file `main`:
/// `tally.db` → `tally.saas.db`.
pub fn sqlite_model_path(main: &std::path::Path, model: &str) -> std::path::PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tally".to_owned());
    main.with_file_name(format!("{stem}.{model}.db"))
}
