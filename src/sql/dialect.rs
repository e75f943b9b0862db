//! The SQL dialects: one trait of capability methods, a default spelling in its provided
//! methods, and each backend overriding only where it differs.

use super::{Param, Sql};
use crate::semantic::{Granularity, TimeStorage};

/// Whether a pool may write to the database it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// tally owns the database (the embedded default, `migrate`, `load`, `demo`): SQLite
    /// files are created when missing.
    ReadWrite,
    /// A database tally is given: nothing is created, altered or written. SQLite files are
    /// opened read-only (and must exist); PostgreSQL sessions are read-only transactions.
    ReadOnly,
}

/// The namespace (attached database) of tally's scratch state on SQLite: a file of its own
/// per pool, under the temporary directory, removed when the pool closes.
pub const SQLITE_STATE: &str = "tally_state";

/// The statements of [`Dialect::introspection`].
#[derive(Debug, Clone, Copy)]
pub struct Introspection {
    /// `(table, column)` of primary keys, in key order.
    pub primary_keys: &'static str,
    /// `(table, column)` of single-column unique constraints (and unique indexes).
    pub unique_columns: &'static str,
    /// `(table, column, referenced table, referenced column, constraint)`.
    pub foreign_keys: &'static str,
    /// `(table, column or NULL, text)`.
    pub comments: &'static str,
}

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

    /// Whether decimal columns add exactly (PostgreSQL's `numeric`), so that a sum of `a - b`
    /// may be computed as the sum of `a` minus the sum of `b` (SQLite keeps decimals as
    /// floating point, where the two orders may round differently).
    fn exact_decimals(&self) -> bool;

    /// Whether time buckets in a zone other than UTC are computed natively (`AT TIME ZONE`);
    /// otherwise from the `tally_tz_offsets` table (filled for the zone before the query).
    fn time_zones(&self) -> bool;

    /// Whether the database may reuse one generic plan for a prepared statement's runs
    /// (`plan_cache_mode`), which the engine then chooses per statement by measuring
    /// (`crate::engine`'s plan choice).
    fn reuses_generic_plans(&self) -> bool {
        false
    }

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

    /// An array of the strings of the JSON array bound at `placeholder`, for `x = ANY(…)`
    /// in place of `x IN (json_values)`, where the backend has arrays: PostgreSQL then tests
    /// each row against a small array rather than hash-joining a subquery it cannot
    /// estimate (a row policy's list costs ~10% of a scan instead of ~40%). `None`: use
    /// `IN`.
    fn json_array(&self, _placeholder: &str) -> Option<String> {
        None
    }

    /// Reads an instant column: a `timestamptz`, or RFC 3339 text.
    fn read_instant(
        &self,
        r: &sea_orm::QueryResult,
        i: usize,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, String>;

    /// Sets what a connection pool on `url` needs on this backend (size, per-connection
    /// set-up); `models` are the namespaces every connection must see, `access` whether tally
    /// may write there. The message of an error says what is wrong with the URL.
    fn configure_pool(
        &self,
        opts: &mut sea_orm::ConnectOptions,
        url: &str,
        models: &[&str],
        access: Access,
    ) -> Result<(), String>;

    /// The statements that list the columns of every table and view tally can read, each row
    /// `(namespace, table, column, declared type, 1 when NOT NULL else 0)` in column order: one
    /// statement on PostgreSQL; on SQLite one per attached database of `databases` (from
    /// [`Dialect::databases_query`]).
    fn catalog_queries(&self, databases: &[String]) -> Vec<String>;

    /// The statement listing the attached databases (SQLite), `None` where one catalog
    /// statement covers every namespace.
    fn databases_query(&self) -> Option<&'static str> {
        None
    }

    /// What `tally init` reads of the tables of `namespace`, each a statement whose first
    /// parameter is the namespace: primary keys `(table, column)` in key order; columns with
    /// a single-column unique constraint `(table, column)`; foreign keys `(table, column,
    /// referenced table, referenced column, constraint)`; comments `(table, column or NULL,
    /// text)`.
    fn introspection(&self) -> Introspection;

    /// The pool's connections: open, idle, and at most.
    fn pool_state(&self, db: &sea_orm::DatabaseConnection) -> (u32, usize, u32);

    /// The namespace tables live in when none is named (`public`, `main`).
    fn default_namespace(&self) -> &'static str;

    /// The type of a column from the type the database declares for it.
    fn column_type(&self, declared: &str) -> crate::semantic::ColType;

    /// The qualified name of `tally_tz_offsets` (the UTC offsets of time zones). On SQLite
    /// it lives in the scratch database every connection of a pool attaches as
    /// `tally_state` (never in a database tally is given).
    fn tz_offsets_table(&self) -> String;

    /// Whether a row is best marked as matching a set of keys by `(k0, k1, …) IN (SELECT …)`
    /// rather than by a LEFT JOIN to the (distinct) keys: SQLite scans a joined CTE once per
    /// row where no index exists, but builds an index for an `IN` subquery; PostgreSQL
    /// hash-joins, where its `IN` would be a hashed subplan only while the keys fit in memory.
    fn mark_by_in(&self) -> bool {
        false
    }

    /// Whether a conversion without a window whose base events are the rows of a per-table
    /// aggregate of the same request (same table, joins and slots) is counted in that
    /// aggregate's pass rather than in a pass of its own: SQLite reads a SQL table once per
    /// CTE that reads it (a second pass over the base table, SQL table and all, costs as much
    /// as the first); PostgreSQL's plan for the two passes is kept. Only with
    /// [`Dialect::mark_by_in`] (the aggregate's rows are marked, never joined).
    fn conversion_in_aggregate(&self) -> bool {
        false
    }

    /// A condition of a subquery read only by `IN`, written so the backend filters the
    /// subquery's rows by it as it reads them: SQLite otherwise builds an automatic index on
    /// a `column = value` term over a FROM-clause subquery (a SQL table) when the `IN` sits in
    /// a loop — reading every row of the subquery to index the few it keeps, where pushing
    /// the condition into the subquery reads only those; `(condition) IS TRUE` keeps the same
    /// rows and is no indexable term. PostgreSQL: as it is.
    fn scanned_condition(&self, cond: Sql) -> Sql {
        cond
    }

    /// The collation that orders text by bytes, as SQLite's default does.
    fn byte_collation(&self) -> Option<&'static str> {
        None
    }

    /// How nodes grouped by time buckets only are joined in the final SELECT: `Some(x)`, a
    /// `FULL JOIN` of the nodes on `COALESCE(bucket, x) = COALESCE(bucket', x) AND (bucket
    /// IS NULL) = (bucket' IS NULL)` (NULL meets NULL only; two equalities the database can
    /// hash), `x` any constant of the bucket key's type; `None`: through the numbered rows
    /// of `keys` (SQLite: there the `FULL JOIN` measured slower than the numbered rows).
    fn bucket_join_constant(&self) -> Option<&'static str> {
        None
    }

    /// How a running statement is stopped inside the database on this backend
    /// (`super::interrupt::arm`); `None`: it is not.
    fn interrupt(&self) -> Option<super::interrupt::Interrupt> {
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

    /// Whole seconds since 1970 of `x` (of storage `st`; a date is its 00:00 UTC, a local
    /// time its wall clock read as UTC), as an integer.
    fn epoch_seconds(&self, x: Sql, st: TimeStorage) -> Sql {
        match st {
            TimeStorage::Instant => Sql::wrap(
                "CAST(EXTRACT(EPOCH FROM date_trunc('second', ",
                x,
                ")) AS BIGINT)",
            ),
            TimeStorage::Date | TimeStorage::Local => Sql::wrap(
                "CAST(EXTRACT(EPOCH FROM date_trunc('second', CAST(",
                x,
                " AS TIMESTAMP))) AS BIGINT)",
            ),
        }
    }

    /// The start of `x`'s bucket as the backend's native value, what rows are grouped and
    /// joined on (a `timestamp` on PostgreSQL, so that no text is computed per row): the
    /// bucket of an instant in UTC, or in the request's time zone (`tz`, bound as
    /// [`Param::TimeZone`]) as local wall-clock time; of a date or a local time as written.
    /// [`Dialect::key_text`] writes it as text, once per group. The day of an instant in UTC
    /// is what the demo schema's day-bucket indexes hold (`migration::ddl::day_bucket_expr`,
    /// checked by a test): the two must stay written alike.
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
            TimeStorage::Instant => match utc_bin(g) {
                // hours, days and ISO weeks of UTC are fixed lengths of time: binned by integer
                // arithmetic (`date_bin`, PostgreSQL 14+), with the UTC wall-clock time taken
                // by subtracting a zero offset, where `date_trunc(… AT TIME ZONE 'UTC')` looks
                // the zone up by name and splits every row's time into calendar fields (an
                // eighth of the shop's by-day statement; docs/SEMANTIC-LAYER.md)
                Some(stride) => Sql::wrap(
                    "date_bin(",
                    Sql::wrap(&format!("INTERVAL '{stride}', "), x, UTC_WALL_CLOCK),
                    BIN_ORIGIN,
                ),
                None => Sql::wrap(&format!("date_trunc('{unit}', "), x, " AT TIME ZONE 'UTC')"),
            },
            TimeStorage::Date | TimeStorage::Local => {
                Sql::wrap(&format!("date_trunc('{unit}', CAST("), x, " AS TIMESTAMP))")
            }
        }
    }

    /// A value per row that stands for the bucket of grain `g` holding `x` (arguments as
    /// [`Dialect::time_key`]), for nodes that group a whole table's rows by their bucket and
    /// write the bucket's key once per group ([`Dialect::period_key`]): one value per bucket
    /// and one bucket per value (equal exactly when the keys are), ordered as the keys are,
    /// and cheaper than the key where the backend can. By default the key itself.
    fn period_value(&self, x: Sql, st: TimeStorage, g: Granularity, tz: bool) -> Sql {
        self.time_key(x, st, g, tz)
    }

    /// The bucket key ([`Dialect::time_key`]) of a period value `v` of grain `g`
    /// ([`Dialect::period_value`]; `z`: whether the key's text ends in `Z`), also a period
    /// value of any grain holding it, for [`Dialect::key_bucket`].
    fn period_key(&self, v: Sql, _g: Granularity, _z: bool) -> Sql {
        v
    }

    /// The period value `n` periods (of `g`) after the period value `v` (`z` as in
    /// [`Dialect::key_add`]).
    fn period_add(&self, v: Sql, g: Granularity, n: i64, z: bool) -> Sql {
        self.key_add(v, g, n, z)
    }

    /// Whether a distinct count per group is computed by counting the rows of a `SELECT
    /// DISTINCT` of (group, value) rather than by `COUNT(DISTINCT value)`: on PostgreSQL the
    /// former is a hash aggregate where `COUNT(DISTINCT …)` sorts every row of every group;
    /// SQLite's `DISTINCT` keeps its rows in arrival order, so the grouping after it sorts
    /// them again, and `COUNT(DISTINCT …)` costs less.
    fn distinct_rows_counted(&self) -> bool {
        true
    }

    /// The key of the bucket of grain `g` holding the bucket key or period value
    /// ([`Dialect::period_value`]) `k` (of a grain whose periods lie within one period of
    /// `g`; `z`: whether the key's text ends in `Z`, for backends whose keys are text). A
    /// period average buckets each sub-period once, not each row.
    fn key_bucket(&self, k: Sql, g: Granularity, _z: bool) -> Sql {
        Sql::wrap(&format!("date_trunc('{}', ", g.as_str()), k, ")")
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

    /// The start of the UTC bucket of grain `g` (hour or day) holding the instant `x`, as an
    /// instant stored like the source's (rollup buckets).
    fn utc_bucket(&self, x: Sql, g: Granularity) -> Sql {
        Sql::wrap(
            &format!("(date_trunc('{}', ", g.as_str()),
            x,
            " AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')",
        )
    }

    /// The end of the UTC bucket of grain `g` holding the instant `x` (its start plus one
    /// grain), stored like [`Dialect::utc_bucket`].
    fn utc_bucket_end(&self, x: Sql, g: Granularity) -> Sql {
        Sql::wrap(
            &format!("((date_trunc('{}', ", g.as_str()),
            x,
            &format!(
                " AT TIME ZONE 'UTC') + INTERVAL '1 {}') AT TIME ZONE 'UTC')",
                g.as_str()
            ),
        )
    }

    /// The declared type of a column of a table tally creates (a rollup's) holding values of
    /// type `ty`.
    fn column_sql_type(&self, ty: crate::semantic::ColType) -> &'static str {
        use crate::semantic::ColType;
        match ty {
            ColType::String | ColType::LocalTime => "text",
            ColType::Int => "bigint",
            ColType::Decimal => "numeric",
            ColType::Float => "double precision",
            ColType::Bool => "boolean",
            ColType::Time => "timestamptz",
            ColType::Date => "date",
            ColType::Json => "jsonb",
        }
    }
}

/// What follows an instant to make it its UTC wall-clock `timestamp` on PostgreSQL: a zero
/// offset subtracted (`timezone(interval, timestamptz)`, no zone looked up by name).
const UTC_WALL_CLOCK: &str = " AT TIME ZONE INTERVAL '+00:00'";

/// The end of a PostgreSQL `date_bin` call: the origin the bins count from, midnight of
/// Monday 1 January 0001 (so that 7-day bins are ISO weeks, and every time after it is
/// binned by a plain floor).
const BIN_ORIGIN: &str = ", TIMESTAMP '0001-01-01 00:00:00')";

/// The fixed length of a UTC bucket of grain `g` as a PostgreSQL interval (`date_bin`'s
/// stride), for the grains that have one (hour, day, ISO week); months and longer vary.
fn utc_bin(g: Granularity) -> Option<&'static str> {
    match g {
        Granularity::Hour => Some("1 hour"),
        Granularity::Day => Some("1 day"),
        Granularity::Week => Some("7 days"),
        Granularity::Month | Granularity::Quarter | Granularity::Year => None,
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
        access: Access,
    ) -> Result<(), String> {
        // every model is a schema of the one database
        opts.max_connections(16).min_connections(1);
        if access == Access::ReadOnly {
            // belt and braces: every transaction of the pool is read-only
            opts.map_sqlx_postgres_opts(|o| o.options([("default_transaction_read_only", "on")]));
        }
        Ok(())
    }
    fn percentile_cont(&self) -> bool {
        true
    }
    fn exact_decimals(&self) -> bool {
        true
    }
    fn time_zones(&self) -> bool {
        true
    }
    fn byte_collation(&self) -> Option<&'static str> {
        Some("\"C\"")
    }
    fn bucket_join_constant(&self) -> Option<&'static str> {
        // a timestamp (every bucket key is one: `date_trunc`)
        Some("'-infinity'")
    }
    fn interrupt(&self) -> Option<super::interrupt::Interrupt> {
        Some(super::interrupt::Interrupt::StatementTimeout)
    }
    fn reuses_generic_plans(&self) -> bool {
        true
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
    fn json_array(&self, placeholder: &str) -> Option<String> {
        Some(format!(
            "ARRAY(SELECT jsonb_array_elements_text(CAST({placeholder} AS jsonb)))"
        ))
    }
    fn read_instant(
        &self,
        r: &sea_orm::QueryResult,
        i: usize,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        r.try_get_by_index::<Option<chrono::DateTime<chrono::Utc>>>(i)
            .map_err(|e| e.to_string())
    }
    fn pool_state(&self, db: &sea_orm::DatabaseConnection) -> (u32, usize, u32) {
        let p = db.get_postgres_connection_pool();
        (p.size(), p.num_idle(), p.options().get_max_connections())
    }
    fn default_namespace(&self) -> &'static str {
        "public"
    }
    fn introspection(&self) -> Introspection {
        Introspection {
            primary_keys: "SELECT c.relname::text, a.attname::text FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisprimary AND n.nspname = $1 ORDER BY c.relname, k.ord",
            unique_columns: "SELECT c.relname::text, a.attname::text FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
                 WHERE i.indisunique AND i.indnatts = 1 AND n.nspname = $1",
            foreign_keys: "SELECT cl.relname::text, a.attname::text, cr.relname::text, \
                 ar.attname::text, con.conname::text FROM pg_constraint con \
                 JOIN pg_class cl ON cl.oid = con.conrelid \
                 JOIN pg_namespace n ON n.oid = cl.relnamespace \
                 JOIN pg_class cr ON cr.oid = con.confrelid \
                 CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(l, r, ord) \
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.l \
                 JOIN pg_attribute ar ON ar.attrelid = con.confrelid AND ar.attnum = k.r \
                 WHERE con.contype = 'f' AND n.nspname = $1 ORDER BY cl.relname, con.conname, k.ord",
            comments: "SELECT c.relname::text, a.attname::text, d.description FROM pg_description d \
                 JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0 \
                 WHERE n.nspname = $1",
        }
    }
    fn catalog_queries(&self, _databases: &[String]) -> Vec<String> {
        vec![
            "SELECT table_schema::text, table_name::text, column_name::text, data_type::text, \
             CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END \
             FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND table_schema NOT LIKE 'pg\\_toast%' AND table_schema NOT LIKE 'pg\\_temp%' \
             ORDER BY table_schema, table_name, ordinal_position"
                .to_owned(),
        ]
    }
    fn column_type(&self, declared: &str) -> crate::semantic::ColType {
        use crate::semantic::ColType;
        match declared {
            "smallint" | "integer" | "bigint" => ColType::Int,
            "numeric" | "money" => ColType::Decimal,
            "real" | "double precision" => ColType::Float,
            "boolean" => ColType::Bool,
            "timestamp with time zone" | "timestamp without time zone" => ColType::Time,
            "date" => ColType::Date,
            "json" | "jsonb" => ColType::Json,
            _ => ColType::String,
        }
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
    fn utc_bucket(&self, x: Sql, g: Granularity) -> Sql {
        // instants are RFC 3339 text in UTC (`…+00:00`, as they are bound and stored)
        let fmt = match g {
            Granularity::Hour => "%Y-%m-%dT%H:00:00+00:00",
            _ => "%Y-%m-%dT00:00:00+00:00",
        };
        Sql::wrap(&format!("strftime('{fmt}', "), x, ")")
    }
    fn utc_bucket_end(&self, x: Sql, g: Granularity) -> Sql {
        let (fmt, step) = match g {
            Granularity::Hour => ("%Y-%m-%dT%H:00:00+00:00", "+1 hour"),
            _ => ("%Y-%m-%dT00:00:00+00:00", "+1 day"),
        };
        Sql::wrap(&format!("strftime('{fmt}', "), x, &format!(", '{step}')"))
    }
    fn column_sql_type(&self, ty: crate::semantic::ColType) -> &'static str {
        use crate::semantic::ColType;
        match ty {
            ColType::Int | ColType::Bool => "INTEGER",
            ColType::Decimal | ColType::Float => "REAL",
            _ => "TEXT",
        }
    }
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
    /// to the main one and tally's scratch state as `tally_state`. Read-write: the files are
    /// created when missing, in WAL mode. Read-only: the main file must exist, it and the
    /// model files that exist are opened read-only. Foreign keys off (the loader checks
    /// references), and a 10 s wait for a lock instead of failing.
    fn configure_pool(
        &self,
        opts: &mut sea_orm::ConnectOptions,
        url: &str,
        models: &[&str],
        access: Access,
    ) -> Result<(), String> {
        use sea_orm::sqlx::{self, Executor as _};
        use std::time::Duration;
        let main = sqlite_path(url).ok_or_else(|| {
            format!(
                "SQLite URL {url:?} names no file; tally keeps each model in a file next to the main one (e.g. sqlite://tally.db)"
            )
        })?;
        let write = access == Access::ReadWrite;
        if !write && !main.is_file() {
            return Err(format!(
                "there is no SQLite database at {}: `tally serve` without --db creates the embedded one, `tally migrate`, `tally demo` or `tally load` create one",
                main.display()
            ));
        }
        let mut attachments: Vec<(String, String)> = Vec::new();
        for m in models {
            let file = sqlite_model_path(&main, m);
            if write {
                attachments.push(((*m).to_owned(), file.to_string_lossy().into_owned()));
            } else if file.is_file() {
                attachments.push(((*m).to_owned(), read_only_uri(&file)));
            }
        }
        // created here: a read-only pool's connections may not create files (an empty file
        // is an empty database)
        let state = std::sync::Arc::new(ScratchFile::new()?);
        let main_uri = read_only_uri(&main);
        opts.max_connections(8).min_connections(1);
        opts.map_sqlx_sqlite_opts(move |o| {
            let o = o
                .create_if_missing(write)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false);
            if write {
                o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            } else {
                // the given file read-only (a `mode=ro` URI), while the connection may still
                // write to the scratch database it attaches
                o.filename(&main_uri)
            }
        });
        opts.map_sqlx_sqlite_pool_opts(move |pool| {
            let attachments = attachments.clone();
            let state = state.clone();
            pool.after_connect(move |conn, _meta| {
                let attachments = attachments.clone();
                let state = state.clone();
                Box::pin(async move {
                    for (name, file) in &attachments {
                        sqlx::query("ATTACH DATABASE ? AS ?")
                            .bind(file)
                            .bind(name)
                            .execute(&mut *conn)
                            .await?;
                        if write {
                            let pragma = format!("PRAGMA \"{name}\".journal_mode = WAL");
                            conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                        }
                    }
                    sqlx::query("ATTACH DATABASE ? AS ?")
                        .bind(state.path.to_string_lossy().into_owned())
                        .bind(SQLITE_STATE)
                        .execute(&mut *conn)
                        .await?;
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA \"{SQLITE_STATE}\".journal_mode = WAL"
                    )))
                    .await?;
                    conn.execute(sqlx::AssertSqlSafe(tz_offsets_ddl())).await?;
                    // the connection's id and the progress handler that stops its
                    // statements at their deadline (`super::interrupt`)
                    super::interrupt::install_sqlite(conn).await?;
                    Ok(())
                })
            })
            .after_release(|conn, _meta| Box::pin(super::interrupt::release_sqlite(conn)))
        });
        Ok(())
    }
    fn percentile_cont(&self) -> bool {
        false
    }
    fn exact_decimals(&self) -> bool {
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
    fn pool_state(&self, db: &sea_orm::DatabaseConnection) -> (u32, usize, u32) {
        let p = db.get_sqlite_connection_pool();
        (p.size(), p.num_idle(), p.options().get_max_connections())
    }
    fn default_namespace(&self) -> &'static str {
        "main"
    }
    fn introspection(&self) -> Introspection {
        // the namespace is bound as the schema argument of the table-valued pragmas; the
        // tables are listed from the schema's sqlite_master through pragma_table_list
        Introspection {
            primary_keys: "SELECT t.name, p.name FROM pragma_table_list AS t \
                 JOIN pragma_table_info(t.name, t.schema) AS p \
                 WHERE t.schema = $1 AND t.type = 'table' AND p.pk > 0 ORDER BY t.name, p.pk",
            unique_columns: "SELECT t.name, ii.name FROM pragma_table_list AS t \
                 JOIN pragma_index_list(t.name, t.schema) AS il \
                 JOIN pragma_index_info(il.name, t.schema) AS ii \
                 WHERE t.schema = $1 AND t.type = 'table' AND il.\"unique\" = 1 \
                 AND (SELECT count(*) FROM pragma_index_info(il.name, t.schema)) = 1",
            foreign_keys: "SELECT t.name, f.\"from\", f.\"table\", f.\"to\", t.name || '_fk' || f.id \
                 FROM pragma_table_list AS t \
                 JOIN pragma_foreign_key_list(t.name, t.schema) AS f \
                 WHERE t.schema = $1 AND t.type = 'table' ORDER BY t.name, f.id, f.seq",
            comments: "SELECT NULL, NULL, NULL WHERE $1 IS NULL AND 0",
        }
    }
    fn databases_query(&self) -> Option<&'static str> {
        Some("SELECT name FROM pragma_database_list ORDER BY seq")
    }
    fn catalog_queries(&self, databases: &[String]) -> Vec<String> {
        databases
            .iter()
            .filter(|d| d.as_str() != "temp" && d.as_str() != SQLITE_STATE)
            .map(|d| {
                let q = d.replace('"', "\"\"");
                let lit = d.replace('\'', "''");
                format!(
                    "SELECT '{lit}', m.name, p.name, p.type, p.\"notnull\" FROM \"{q}\".sqlite_master AS m \
                     JOIN pragma_table_info(m.name, '{lit}') AS p \
                     WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                     ORDER BY m.name, p.cid"
                )
            })
            .collect()
    }
    /// SQLite's declared types, as tally's migrations write them (`timestamp_with_timezone_text`,
    /// `decimal_text`, `json_text`, …) and as other tools do (`INTEGER`, `REAL`, `DATETIME`…).
    fn column_type(&self, declared: &str) -> crate::semantic::ColType {
        use crate::semantic::ColType;
        let d = declared.to_ascii_lowercase();
        if d.contains("timestamp") || d.contains("datetime") {
            ColType::Time
        } else if d.contains("date") {
            ColType::Date
        } else if d.contains("bool") {
            ColType::Bool
        } else if d.contains("decimal")
            || d.contains("numeric")
            || d.contains("money")
            || (d.contains('(') && d.contains(','))
        {
            // a scale, `real(18, 2)`, is a decimal: a float type takes none (sea-orm writes
            // decimal columns so on SQLite)
            ColType::Decimal
        } else if d.contains("json") {
            ColType::Json
        } else if d.contains("int") {
            ColType::Int
        } else if d.contains("real") || d.contains("floa") || d.contains("doub") {
            ColType::Float
        } else {
            ColType::String
        }
    }
    fn tz_offsets_table(&self) -> String {
        format!(
            "\"{SQLITE_STATE}\".\"{}\"",
            crate::semantic::TZ_OFFSETS_TABLE
        )
    }
    fn instant_text(&self, x: Sql) -> Sql {
        Sql::wrap("strftime('%Y-%m-%dT%H:%M:%SZ', ", x, ")")
    }
    fn limit_all(&self) -> &'static str {
        "LIMIT -1"
    }
    fn interrupt(&self) -> Option<super::interrupt::Interrupt> {
        Some(super::interrupt::Interrupt::ProgressHandler)
    }
    fn mark_by_in(&self) -> bool {
        true
    }
    fn conversion_in_aggregate(&self) -> bool {
        true
    }
    fn scanned_condition(&self, cond: Sql) -> Sql {
        Sql::wrap("(", cond, ") IS TRUE")
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
    /// The calendar date (`YYYY-MM-DD`, `date()`) of the bucket's start, for days, weeks,
    /// months and years: `date()` writes its digits itself where `strftime` formats each
    /// field through `printf` (about half the cost per row), and the date of a bucket's start
    /// stands for the bucket exactly (the same parsing of `x`, NULL where the key is NULL).
    /// Hours and quarters: the key.
    fn period_value(&self, x: Sql, st: TimeStorage, g: Granularity, tz: bool) -> Sql {
        let modifiers = match g {
            Granularity::Day => "",
            Granularity::Week => ", 'weekday 0', '-6 days'",
            // '+0 days' first: `start of …` alone keeps the day as written, where `strftime`
            // normalises it (2024-02-31 is 2024-03-02, in March)
            Granularity::Month => ", '+0 days', 'start of month'",
            Granularity::Year => ", '+0 days', 'start of year'",
            Granularity::Hour | Granularity::Quarter => return self.time_key(x, st, g, tz),
        };
        // in a time zone: the date of the local wall-clock time, as `time_key` buckets it
        let x = if tz && st == TimeStorage::Instant {
            sqlite_local(x)
        } else {
            x
        };
        Sql::wrap("date(", x, &format!("{modifiers})"))
    }
    /// The key is the start date's text with the time of day (`strftime` reads the date
    /// back, so years before 0000 are written as [`Dialect::time_key`] writes them).
    fn period_key(&self, v: Sql, g: Granularity, z: bool) -> Sql {
        match g {
            Granularity::Hour | Granularity::Quarter => v,
            _ => {
                let z = if z { "Z" } else { "" };
                Sql::wrap(&format!("strftime('%Y-%m-%dT00:00:00{z}', "), v, ")")
            }
        }
    }
    fn period_add(&self, v: Sql, g: Granularity, n: i64, z: bool) -> Sql {
        match g {
            Granularity::Hour | Granularity::Quarter => self.key_add(v, g, n, z),
            _ => {
                let (k, unit) = period_step(g, n);
                Sql::wrap("date(", v, &format!(", '{k:+} {unit}')"))
            }
        }
    }
    fn distinct_rows_counted(&self) -> bool {
        false
    }
    fn key_bucket(&self, k: Sql, g: Granularity, z: bool) -> Sql {
        let st = if z {
            TimeStorage::Instant
        } else {
            TimeStorage::Local
        };
        self.time_key(k, st, g, false)
    }
    fn key_text(&self, k: Sql, _z: bool) -> Sql {
        k
    }
    fn key_epoch(&self, k: Sql) -> Sql {
        Sql::wrap("unixepoch(", k, ")")
    }
    fn epoch_seconds(&self, x: Sql, _st: TimeStorage) -> Sql {
        Sql::wrap("unixepoch(", x, ")")
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

/// The DDL of SQLite's `tally_state.tally_tz_offsets` (idempotent): per zone, the intervals
/// `[valid_from, valid_to)` (RFC 3339 text in UTC) over which its UTC offset is
/// `offset_seconds`.
fn tz_offsets_ddl() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (zone TEXT NOT NULL, valid_from TEXT NOT NULL, \
         valid_to TEXT NOT NULL, offset_seconds INTEGER NOT NULL, PRIMARY KEY (zone, valid_from))",
        Sqlite.tz_offsets_table()
    )
}

/// `file:` URI that opens `path` read-only when attached.
fn read_only_uri(path: &std::path::Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

/// tally's scratch database on SQLite (computed data only: the offsets of time zones): a
/// file of its own under the temporary directory, removed with its WAL files when the pool
/// that attached it is dropped.
#[derive(Debug)]
struct ScratchFile {
    path: std::path::PathBuf,
}

impl ScratchFile {
    fn new() -> Result<ScratchFile, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "tally-state-{}-{}-{nanos}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::File::create(&path)
            .map_err(|e| format!("cannot create tally's scratch file {}: {e}", path.display()))?;
        Ok(ScratchFile { path })
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What tells the result cache (`crate::engine` results) that a namespace's data changed,
/// writes by other tools included: one token per namespace, polled in the background; a
/// token that differs from the previous poll's means the namespace was written.
///
/// - SQLite: `PRAGMA "<namespace>".data_version` of every attached database, read on a
///   connection of the probe's own that never writes. SQLite changes it on that connection
///   when any other connection (of this process or another) commits to the file, in WAL
///   mode as in rollback-journal mode; it is exact and immediate (no triggers needed).
/// - PostgreSQL, a namespace with tally's data-version counters (`"<ns>".tally_data_version`,
///   installed with their triggers by `migration::tally_state::data_version_triggers` where
///   tally may write): the sum of the counters, which every committed writing statement on a
///   table with the trigger moves (transactional: visible exactly when the write is), and
///   each such table's id and file node (`pg_relation_filenode`: a rewriting `ALTER TABLE`
///   fires no trigger). Exact and immediate.
/// - PostgreSQL, every table without the trigger (all tables of a namespace without
///   counters — a database tally may not write —, a table added later, a materialized view):
///   its write counters (`n_tup_ins + n_tup_upd + n_tup_del` of `pg_stat_user_tables`) and
///   file node (TRUNCATE, `VACUUM FULL`, `CLUSTER` and table rewrites change it); a table
///   created or dropped changes the list. The counters of a committed transaction reach the
///   view when its backend flushes its statistics: at most once a second, else up to 10 s
///   later on an idle backend (`PGSTAT_IDLE_INTERVAL`), 60 s at worst under lock contention
///   on the statistics (`PGSTAT_MAX_INTERVAL`), at once when the backend exits. They need
///   `track_counts` (on by default); the probe refuses to start without it.
pub enum VersionProbe {
    /// A connection detached from an SQLite pool (its attachments included).
    Sqlite(sea_orm::sqlx::SqliteConnection),
    /// The PostgreSQL pool.
    Postgres(sea_orm::DatabaseConnection),
}

impl std::fmt::Debug for VersionProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VersionProbe::Sqlite(_) => "VersionProbe::Sqlite",
            VersionProbe::Postgres(_) => "VersionProbe::Postgres",
        })
    }
}

/// How the data version of a namespace is read (see [`VersionProbe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMechanism {
    /// SQLite's `PRAGMA data_version`: exact.
    DataVersion,
    /// tally's triggers on every table of the namespace: exact.
    Triggers,
    /// PostgreSQL's table statistics for `without_trigger` of the namespace's `tables` (all
    /// of them where tally installed no triggers): delayed by the statistics flush.
    Statistics {
        /// Tables (and materialized views) read through their statistics.
        without_trigger: u64,
        /// Tables (and materialized views) of the namespace.
        tables: u64,
    },
}

impl VersionMechanism {
    /// Whether every write shows at the next poll after its commit.
    pub fn exact(&self) -> bool {
        !matches!(self, VersionMechanism::Statistics { .. })
    }
}

/// The data version of one namespace, as one poll read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceVersion {
    /// The namespace (PostgreSQL schema, attached SQLite database).
    pub namespace: String,
    /// Its token: any change means it was written.
    pub token: String,
    /// How it was read.
    pub mechanism: VersionMechanism,
}

/// Per schema: the tokens of its tables (`relid:filenode` for a table whose writes tally's
/// trigger counts — enabled always, calling the function of the table's own schema —, `relid:filenode:writes` from `pg_stat_user_tables` for the others),
/// whether it has readable data-version counters, how many tables it has (the counter table
/// left out) and how many of them have no trigger. `$1` is the name of the counter table and
/// of the triggers.
const PG_VERSIONS: &str = "WITH counter AS (\
       SELECT c.relnamespace AS nsp FROM pg_class AS c \
       WHERE c.relname = $1 AND c.relkind = 'r' \
       AND has_schema_privilege(c.relnamespace, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')), \
     t AS (\
       SELECT s.schemaname::text AS schema, s.relid, \
       (s.n_tup_ins + s.n_tup_upd + s.n_tup_del) AS writes, \
       COALESCE(pg_relation_filenode(s.relid), 0) AS node, \
       k.nsp IS NOT NULL AS counted, \
       k.nsp IS NOT NULL AND s.relname = $1 AS is_counter, \
       k.nsp IS NOT NULL AND EXISTS (SELECT 1 FROM pg_trigger AS g \
         JOIN pg_proc AS f ON f.oid = g.tgfoid \
         WHERE g.tgrelid = s.relid AND g.tgname = $1 AND g.tgenabled = 'A' \
         AND f.proname = $1 AND f.pronamespace = c.relnamespace) AS triggered \
       FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid \
       LEFT JOIN counter AS k ON k.nsp = c.relnamespace) \
     SELECT schema, COALESCE(string_agg(relid::text || ':' || node::text || \
       CASE WHEN triggered THEN '' ELSE ':' || writes::text END, ',' ORDER BY relid) \
       FILTER (WHERE NOT is_counter), ''), \
     bool_or(counted), count(*) FILTER (WHERE NOT is_counter), \
     count(*) FILTER (WHERE NOT is_counter AND NOT triggered) \
     FROM t GROUP BY schema ORDER BY schema";

/// The quoted identifier `name` (`"` doubled).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl VersionProbe {
    /// The probe of `db`'s backend: on SQLite a connection taken out of the pool for good
    /// (the pool opens another in its place).
    pub async fn open(db: &sea_orm::DatabaseConnection) -> Result<VersionProbe, String> {
        use sea_orm::ConnectionTrait as _;
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => {
                let conn = db
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map_err(|e| format!("opening the version probe's connection: {e}"))?;
                Ok(VersionProbe::Sqlite(conn.detach()))
            }
            sea_orm::DatabaseBackend::Postgres => {
                let stmt = sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    "SELECT current_setting('track_counts')",
                );
                let row = db
                    .query_one_raw(stmt)
                    .await
                    .map_err(|e| format!("reading track_counts: {e}"))?;
                let on = row
                    .and_then(|r| r.try_get_by_index::<String>(0).ok())
                    .is_some_and(|v| v == "on");
                if !on {
                    return Err(
                        "track_counts is off: PostgreSQL keeps no write counters to notice writes by"
                            .to_owned(),
                    );
                }
                Ok(VersionProbe::Postgres(db.clone()))
            }
            other => Err(format!("no version probe for {other:?}")),
        }
    }

    /// The version of every namespace now.
    pub async fn read(&mut self) -> Result<Vec<NamespaceVersion>, String> {
        use sea_orm::sqlx;
        match self {
            VersionProbe::Sqlite(conn) => {
                let names: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_database_list ORDER BY seq")
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(|e| format!("listing the attached databases: {e}"))?;
                let mut out = Vec::with_capacity(names.len());
                for name in names.into_iter().filter(|n| n != "temp") {
                    let pragma = format!("PRAGMA {}.data_version", quoted(&name));
                    let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(pragma))
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(|e| format!("reading the data version of {name}: {e}"))?;
                    out.push(NamespaceVersion {
                        namespace: name,
                        token: v.to_string(),
                        mechanism: VersionMechanism::DataVersion,
                    });
                }
                Ok(out)
            }
            VersionProbe::Postgres(db) => read_postgres(db).await,
        }
    }
}

/// [`VersionProbe::read`] on PostgreSQL: the tables' tokens, then the sums of the counters
/// of the schemas that have them (each statement sees every write committed before the poll
/// started).
async fn read_postgres(db: &sea_orm::DatabaseConnection) -> Result<Vec<NamespaceVersion>, String> {
    use sea_orm::ConnectionTrait as _;
    let pg = sea_orm::DatabaseBackend::Postgres;
    let counter = migration::tally_state::DATA_VERSION;
    let failed = |e: sea_orm::DbErr| format!("reading the data versions: {e}");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            pg,
            PG_VERSIONS,
            [counter.into()],
        ))
        .await
        .map_err(failed)?;
    let mut out = Vec::with_capacity(rows.len());
    let mut counted = Vec::new();
    for r in &rows {
        let schema = r.try_get_by_index::<String>(0).map_err(failed)?;
        let tables = r.try_get_by_index::<String>(1).map_err(failed)?;
        let has_counter = r.try_get_by_index::<bool>(2).map_err(failed)?;
        let n = r.try_get_by_index::<i64>(3).map_err(failed)?;
        let without = r.try_get_by_index::<i64>(4).map_err(failed)?;
        if has_counter {
            counted.push(out.len());
        }
        out.push(NamespaceVersion {
            namespace: schema,
            token: tables,
            mechanism: if has_counter && without == 0 {
                VersionMechanism::Triggers
            } else {
                VersionMechanism::Statistics {
                    without_trigger: u64::try_from(without).unwrap_or(0),
                    tables: u64::try_from(n).unwrap_or(0),
                }
            },
        });
    }
    if counted.is_empty() {
        return Ok(out);
    }
    // schema names read from the catalogue, quoted; nothing from a request
    let sums = counted
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            format!(
                "SELECT {i}::bigint, COALESCE(sum(writes), 0)::text FROM {}.{}",
                quoted(&out[at].namespace),
                quoted(counter)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(pg, sums))
        .await
        .map_err(failed)?;
    for r in &rows {
        let i = r.try_get_by_index::<i64>(0).map_err(failed)?;
        let sum = r.try_get_by_index::<String>(1).map_err(failed)?;
        let at = usize::try_from(i)
            .ok()
            .and_then(|i| counted.get(i))
            .ok_or_else(|| "reading the data versions: a counter out of place".to_owned())?;
        let v = &mut out[*at];
        v.token = format!("{sum}|{}", v.token);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Dialect, Postgres, Sqlite};
    use crate::semantic::ColType;

    /// Declared SQLite types map by affinity, except that a scale makes a decimal: sea-orm
    /// declares decimal columns `real(18, 2)` on SQLite.
    #[test]
    fn declared_types() {
        for (declared, ty) in [
            ("real(18, 2)", ColType::Decimal),
            ("REAL", ColType::Float),
            ("double", ColType::Float),
            ("decimal(10,2)", ColType::Decimal),
            ("varchar(255)", ColType::String),
            ("integer", ColType::Int),
            ("timestamp_with_timezone_text", ColType::Time),
            ("date", ColType::Date),
        ] {
            assert_eq!(Sqlite.column_type(declared), ty, "{declared}");
        }
        assert_eq!(Postgres.column_type("numeric"), ColType::Decimal);
        assert_eq!(Postgres.column_type("real"), ColType::Float);
    }
}
