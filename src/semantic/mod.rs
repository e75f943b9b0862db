//! The semantic model: model files (TOML) → a validated [`Model`] per model folder.
//!
//! A model names logical tables over the physical source tables (or over SQL files), the joins
//! between them, dimensions, measures and metrics. Everything is checked when the files are
//! loaded ([`load_dir`], [`load_embedded`], [`load_default`]); a broken model is reported as
//! one [`ModelErrors`] listing every problem with `file:line`. The format is documented in
//! `docs/SEMANTIC-LAYER.md`.

mod columns;
pub mod expr;
mod file;
pub mod funnel;
mod policy;

mod rollup;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use columns::{ColType, physical_columns, physical_not_null};
pub use expr::{BinOp, Expr, ExprType};
pub use file::{EMBEDDED_MODELS, ModelSource, SourceFile};
pub use funnel::{Funnel, FunnelStep};
pub use policy::{Policy, PolicyPart, parse_condition, unfiltered_reads};
pub use rollup::{
    ROLLUP_STATUS_TABLE, ROLLUP_TABLE_PREFIX, Rollup, RollupMeasure, not_reaggregatable,
};

/// A validated model: what the planner and the GraphQL layer read.
#[derive(Debug, Clone)]
pub struct Model {
    /// The model's name (`shop`), also its GraphQL field and, by default, its namespace.
    pub name: String,
    /// What the model is about.
    pub description: String,
    /// The database namespace of its physical tables (`"<namespace>"."<table>"`).
    pub namespace: String,
    /// Whether its SQLite SQL tables read `tally_tz_offsets` (the UTC offsets of time
    /// zones), whose zones must be filled before they run; computed when the model loads.
    pub reads_tz_offsets: bool,
    /// Logical tables (shared: plans hold them without copying).
    pub tables: Vec<Arc<Table>>,
    /// Joins between logical tables.
    pub joins: Vec<Join>,
    /// Dimensions, in file order.
    pub dimensions: Vec<Dimension>,
    /// Measures, in file order.
    pub measures: Vec<Measure>,
    /// Metrics, in file order.
    pub metrics: Vec<Metric>,
    /// The named conversion variants (`conversionFilter`), when a table or a conversion
    /// metric declares them.
    pub conversion_variants: Vec<String>,
    /// The variant used when a request names none.
    pub default_variant: Option<String>,
    /// Row policies of its physical tables (`[[policy]]`): bound for callers with tenant
    /// attributes, into every statement that reads those tables.
    pub policies: Vec<Policy>,
    /// Funnels (`[[funnel]]`), in file order.
    pub funnels: Vec<Funnel>,
    /// Rollups of its event tables (`[[rollup]]`), in file order.
    pub rollups: Vec<Rollup>,
}

/// A logical table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Logical name, unique in the model.
    pub name: String,
    /// Where its rows come from.
    pub source: TableSource,
    /// Its key columns.
    pub key: Vec<String>,
    /// How `asOf` cuts it.
    pub as_of: AsOf,
    /// What one row is.
    pub description: String,
    /// Its columns and their types.
    pub columns: Vec<(String, ColType)>,
    /// Its columns known never to hold NULL (`NOT NULL` in the database, or in the demo
    /// schema); empty when unknown (SQL tables, declared columns).
    pub not_null: Vec<String>,
    /// A column whose value selects a named conversion variant (`conversionFilter`).
    pub conversion_filter: Option<ConversionFilter>,
    /// The table's rows as a field of the model (`rows = { field = … }`), when exposed.
    pub rows: Option<RowsField>,
    /// The table is seen as of `asOf` moved back by this much (`None`: as of `asOf`).
    pub as_of_shift: Option<Shift>,
    /// Where the table is declared: `(file, line)` (for problems found later, e.g. against
    /// the live database).
    pub defined_at: (String, usize),
}

impl Table {
    /// The type of a column, when the table has it.
    pub fn column_type(&self, name: &str) -> Option<ColType> {
        self.columns
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, t)| *t)
    }
}

/// A table exposed as rows: a field of the model that lists the table's rows as of `asOf`,
/// filtered, sorted and paged (a row query).
#[derive(Debug, Clone)]
pub struct RowsField {
    /// The GraphQL field name (camelCase), unique among the model's fields.
    pub field: String,
    /// What one row is.
    pub description: String,
    /// The columns, in table order: every column but JSON ones.
    pub columns: Vec<RowColumn>,
    /// The default sort: these columns ascending, then the rest of the table's key.
    pub order: Vec<String>,
}

/// A column of a row query.
#[derive(Debug, Clone)]
pub struct RowColumn {
    /// The column in the table (`local_user_created_at`).
    pub column: String,
    /// Its field name (camelCase: `localUserCreatedAt`).
    pub field: String,
    /// Its type.
    pub ty: ColType,
    /// Whether it is part of the table's key (never null).
    pub key: bool,
    /// The column as a dimension of its table (named by its field), which the row query's
    /// `where` filters with the same typed conditions as `metrics`.
    pub dimension: Dimension,
}

impl RowsField {
    /// The column whose field is `field`.
    pub fn column(&self, field: &str) -> Option<&RowColumn> {
        self.columns.iter().find(|c| c.field == field)
    }
}

/// `local_user_created_at` → `localUserCreatedAt`.
pub fn camel_case(column: &str) -> String {
    let mut out = String::with_capacity(column.len());
    let mut upper = false;
    for c in column.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Where a logical table's rows come from.
#[derive(Debug, Clone)]
pub enum TableSource {
    /// A physical table: `"<namespace>"."<table>"` (the namespace is the model's, or the one
    /// `physical = "namespace.table"` names).
    Physical {
        /// The schema (PostgreSQL) or attached database (SQLite) it lives in.
        namespace: String,
        /// The table's name there.
        table: String,
    },
    /// A query per dialect: `$1` is the as-of instant, `$2`, `$3`, … the constants of
    /// `params`.
    Sql {
        /// The PostgreSQL text (comments removed).
        postgres: Arc<str>,
        /// The SQLite text (comments removed).
        sqlite: Arc<str>,
        /// The values of `$2`, `$3`, … (from the model's settings).
        params: Vec<SqlConst>,
        /// The texts are the table's `without_state` ones: the database holds none of
        /// tally's state (e.g. the saas stage history) for the model.
        without_state: bool,
    },
}

/// A constant bound to a SQL table's `$2`, `$3`, …
#[derive(Debug, Clone, PartialEq)]
pub enum SqlConst {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

/// How far back from `asOf` a table is seen (`as_of = { …, shift = "-1 month" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shift {
    /// Whole seconds (hours, days, weeks).
    Seconds(i64),
    /// Calendar months (months, quarters, years), clamped to the month's last day.
    Months(u32),
}

impl Shift {
    /// Parses `"-1 month"`, `"-30 days"`, `"-2 weeks"`, `"-1 year"` (backwards only).
    pub fn parse(s: &str) -> Option<Shift> {
        let s = s.trim().strip_prefix('-')?;
        let mut parts = s.split_whitespace();
        let n: i64 = parts.next()?.parse().ok()?;
        let unit = parts.next()?;
        if parts.next().is_some() || n <= 0 {
            return None;
        }
        Some(match unit.trim_end_matches('s') {
            "hour" => Shift::Seconds(n.checked_mul(3600)?),
            "day" => Shift::Seconds(n.checked_mul(86_400)?),
            "week" => Shift::Seconds(n.checked_mul(7 * 86_400)?),
            "month" => Shift::Months(u32::try_from(n).ok()?),
            "quarter" => Shift::Months(u32::try_from(n.checked_mul(3)?).ok()?),
            "year" => Shift::Months(u32::try_from(n.checked_mul(12)?).ok()?),
            _ => return None,
        })
    }

    /// `t` moved back by the shift.
    pub fn apply(self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self {
            Shift::Seconds(s) => t - chrono::Duration::seconds(s),
            Shift::Months(m) => t.checked_sub_months(chrono::Months::new(m)).unwrap_or(t),
        }
    }
}

/// A table's conversion-variant column.
#[derive(Debug, Clone)]
pub struct ConversionFilter {
    /// The column holding the variant's name.
    pub column: String,
    /// The variant used when a request names none.
    pub default: String,
}

/// How `asOf: T` cuts a table (SEMANTICS.md §1).
#[derive(Debug, Clone, PartialEq)]
pub enum AsOf {
    /// A row counts when `time <= T`.
    Event {
        /// The event-time column.
        time: String,
    },
    /// Hourly partitions: `ts <= T`, plus `time <= T` when given; with `key`, the row of a key
    /// is the one of its latest partition `<= T`.
    PartitionTs {
        /// The partition column (`ts`).
        ts: String,
        /// An optional business-time column.
        time: Option<String>,
        /// The business key of keyed rows.
        key: Vec<String>,
    },
    /// Daily partitions: `ds <= date(T)` (UTC), plus `time <= T` when given.
    PartitionDs {
        /// The partition column (`ds`).
        ds: String,
        /// An optional business-time column.
        time: Option<String>,
    },
    /// A business time and a record creation time, both `<= T`.
    Record {
        /// The business-time column.
        time: String,
        /// The record-creation column.
        created: String,
    },
    /// Type-2 versions: per key the version with the greatest `updated <= T`.
    Type2 {
        /// The business key.
        key: Vec<String>,
        /// The version column.
        updated: String,
    },
    /// Not time-dependent.
    Static,
    /// A SQL table: its text receives T as `$1`.
    Sql,
}

impl AsOf {
    /// The kind's name as written in model files.
    pub fn kind(&self) -> &'static str {
        match self {
            AsOf::Event { .. } => "event",
            AsOf::PartitionTs { .. } => "partition_ts",
            AsOf::PartitionDs { .. } => "partition_ds",
            AsOf::Record { .. } => "record",
            AsOf::Type2 { .. } => "type2",
            AsOf::Static => "static",
            AsOf::Sql => "sql",
        }
    }
}

/// A join between two logical tables; followed from `from` to `to`.
#[derive(Debug, Clone)]
pub struct Join {
    /// The referencing table (many side).
    pub from: String,
    /// The referenced table (one side).
    pub to: String,
    /// Column pairs `(from column, to column)`.
    pub on: Vec<(String, String)>,
    /// `many_to_one` or `one_to_one` (followed both ways).
    pub cardinality: Cardinality,
}

/// The cardinality of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// Many rows of `from` per row of `to`.
    ManyToOne,
    /// At most one row on either side.
    OneToOne,
}

/// The value type of a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimType {
    /// Text.
    String,
    /// A number (returned as Float).
    Number,
    /// A boolean.
    Boolean,
    /// An instant, bucketed by a granularity and returned as RFC 3339 UTC.
    Time,
}

impl DimType {
    /// The name as written in model files and in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            DimType::String => "string",
            DimType::Number => "number",
            DimType::Boolean => "boolean",
            DimType::Time => "time",
        }
    }
}

/// A time granularity (weeks start on Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// An hour.
    Hour,
    /// A day.
    Day,
    /// An ISO week, starting on Monday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar quarter.
    Quarter,
    /// A calendar year.
    Year,
}

impl Granularity {
    /// Every granularity, finest first.
    pub const ALL: [Granularity; 6] = [
        Granularity::Hour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
    ];

    /// The lower-case name (`month`), also PostgreSQL's `date_trunc` unit.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
        }
    }

    /// Parses a lower- or upper-case name.
    pub fn parse(s: &str) -> Option<Granularity> {
        Granularity::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
    }

    /// The fixed length in seconds (hour, day, week), `None` for calendar periods.
    pub fn fixed_seconds(self) -> Option<i64> {
        match self {
            Granularity::Hour => Some(3600),
            Granularity::Day => Some(86_400),
            Granularity::Week => Some(7 * 86_400),
            _ => None,
        }
    }
}

/// How a time dimension's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStorage {
    /// An instant (`timestamptz`; RFC 3339 text in UTC on SQLite).
    Instant,
    /// A calendar date.
    Date,
    /// A local wall-clock time written as text `YYYY-MM-DDTHH:MM:SS` (no zone).
    Local,
}

/// A dimension: a column or expression of one table, to group and filter by.
#[derive(Debug, Clone)]
pub struct Dimension {
    /// GraphQL field name (camelCase), unique among dimensions and metrics.
    pub name: String,
    /// The logical table it belongs to.
    pub table: String,
    /// Its expression over the table's columns.
    pub expr: Expr,
    /// Its type.
    pub dim_type: DimType,
    /// For time dimensions: the granularities offered.
    pub granularities: Vec<Granularity>,
    /// For time dimensions: how values are stored.
    pub time_storage: TimeStorage,
    /// What it is.
    pub description: String,
    /// A time axis (`[[time_axis]]`): per table, its time column; the dimension is read on
    /// the table of each measure, whose rows it buckets, with no join. Empty for a dimension
    /// of one table.
    pub axis: Vec<(String, Expr)>,
}

impl Dimension {
    /// The expression of a time axis on `table` (`None`: not a time axis, or not mapped
    /// there).
    pub fn axis_on(&self, table: &str) -> Option<&Expr> {
        self.axis.iter().find(|(t, _)| t == table).map(|(_, e)| e)
    }
}

/// An aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// `COUNT(*)`, or `COUNT(expr)` with an expression.
    Count,
    /// `COUNT(DISTINCT expr)`.
    CountDistinct,
    /// `SUM(expr)`.
    Sum,
    /// `AVG(expr)`.
    Avg,
    /// `MIN(expr)`.
    Min,
    /// `MAX(expr)`.
    Max,
    /// The median (PostgreSQL `percentile_cont(0.5)`; SQLite: the same number by window functions).
    Median,
}

impl Agg {
    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::CountDistinct => "count_distinct",
            Agg::Sum => "sum",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Median => "median",
        }
    }

    /// Whether sums over a partition of the rows add up to the total.
    pub fn is_additive(self) -> bool {
        matches!(self, Agg::Count | Agg::Sum)
    }
}

/// A measure: an aggregation over one table's rows.
#[derive(Debug, Clone)]
pub struct Measure {
    /// Name (snake_case), referenced by metrics.
    pub name: String,
    /// The logical table aggregated.
    pub table: String,
    /// The aggregation.
    pub agg: Agg,
    /// The aggregated expression (`None`: `COUNT(*)`).
    pub expr: Option<Expr>,
    /// Only rows where this holds are aggregated.
    pub filter: Option<Expr>,
    /// What it is.
    pub description: String,
}

impl Measure {
    /// A sum whose expression is `a + b` or `a - b` over two columns of `table` that are never
    /// NULL and whose arithmetic is exact (integers; decimals where `exact_decimals`, i.e. the
    /// database's decimal type is exact): the sum of the expression is the sum of `a` plus
    /// or minus the sum of `b`, so the addition moves from every row to every group. Returns
    /// the operator and the two columns. (With a NULL on either side a row counts in neither
    /// sum of the expression but in one sum of the columns, hence `not_null`; floating-point
    /// sums may round differently in the two orders, hence exact types only.)
    pub fn split_sum(&self, table: &Table, exact_decimals: bool) -> Option<(BinOp, &str, &str)> {
        let (Agg::Sum, Some(Expr::Binary(op @ (BinOp::Add | BinOp::Sub), a, b))) =
            (self.agg, self.expr.as_ref())
        else {
            return None;
        };
        let (Expr::Column(a), Expr::Column(b)) = (a.as_ref(), b.as_ref()) else {
            return None;
        };
        let exact = |c: &str| {
            table.not_null.iter().any(|n| n == c)
                && match table.column_type(c) {
                    Some(ColType::Int) => true,
                    Some(ColType::Decimal) => exact_decimals,
                    _ => false,
                }
        };
        (exact(a) && exact(b)).then_some((*op, a.as_str(), b.as_str()))
    }

    /// Whether its expression is the one key column of `table` (its own table): one row per
    /// key once the asOf cut is applied, so a distinct count of it over the table's rows
    /// (joined towards the one side only, never multiplied) is a plain count.
    pub fn reads_the_key(&self, table: &Table) -> bool {
        match (table.key.as_slice(), self.expr.as_ref()) {
            ([key], Some(Expr::Column(c))) => key == c,
            _ => false,
        }
    }
}

/// The unit (format) of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count (Int).
    Count,
    /// A fraction 0..1 shown as a percentage by clients (Float, 6 decimals).
    Percent,
    /// A ratio (Float, 6 decimals).
    Ratio,
    /// Money (Decimal, 2 decimals).
    Currency,
    /// A duration in days (Float, 4 decimals).
    DurationDays,
    /// A duration in seconds (Float, 4 decimals).
    DurationSeconds,
    /// Any other number (Float, 6 decimals).
    Number,
}

impl Unit {
    /// The name as written in model files and in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Percent => "percent",
            Unit::Ratio => "ratio",
            Unit::Currency => "currency",
            Unit::DurationDays => "duration_days",
            Unit::DurationSeconds => "duration_seconds",
            Unit::Number => "number",
        }
    }

    /// Decimal places the value is rounded to in SQL (`None`: an integer).
    pub fn decimals(self) -> Option<u32> {
        match self {
            Unit::Count => None,
            Unit::Currency => Some(2),
            Unit::DurationDays | Unit::DurationSeconds => Some(4),
            Unit::Percent | Unit::Ratio | Unit::Number => Some(6),
        }
    }
}

/// A metric's kind and inputs.
#[derive(Debug, Clone)]
pub enum MetricKind {
    /// One measure.
    Simple {
        /// The measure's name.
        measure: String,
    },
    /// `numerator / denominator` (null when the denominator is 0).
    Ratio {
        /// The numerator metric.
        numerator: String,
        /// The denominator metric.
        denominator: String,
    },
    /// Arithmetic over other metrics.
    Derived {
        /// The expression; its identifiers are metric names.
        expr: Expr,
    },
    /// A running total (or trailing window) of an additive measure along a time dimension;
    /// over a `count_distinct` measure, the distinct values of the window's rows.
    Cumulative {
        /// The measure accumulated.
        measure: String,
        /// The time dimension it accumulates along (must be selected).
        time_dimension: String,
        /// The trailing window in seconds (`None`: since the beginning).
        window_seconds: Option<i64>,
    },
    /// Base events that are followed by a conversion event of the same entity.
    Conversion(Box<Conversion>),
    /// Period-over-period retention of the entities of a `count_distinct` measure.
    Retention {
        /// The `count_distinct` measure: its table's rows are the activity, its expression
        /// the entity.
        measure: String,
        /// The time dimension whose selected granularity is the period.
        time_dimension: String,
        /// Which entities of a period are counted.
        event: RetentionEvent,
        /// Counted entities / entities active in the period, instead of the count.
        rate: bool,
    },
    /// The average over the sub-periods (`per`) of the selected time bucket that have started
    /// as of `asOf` of an additive or distinct-count measure computed per sub-period
    /// (sub-periods without rows count as 0): e.g. the average DAU of a month.
    PeriodAverage {
        /// The measure computed per sub-period.
        measure: String,
        /// The time dimension of the buckets.
        time_dimension: String,
        /// The sub-period (hour or day).
        per: Granularity,
    },
}

/// A conversion metric: each base event (a row of the base measure) converts when a
/// conversion event (a row of the conversion measure's table that passes its filter and the
/// chosen variant) has the same values in the `on` columns, within the window.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The base measure (count, count_distinct or sum): its table and filter are the base
    /// events; its aggregate counts them.
    pub base: String,
    /// The measure whose table and filter are the conversion events (its aggregate is unused).
    pub conversion: String,
    /// `(base column, conversion column)` pairs that must be equal: the entity, and any
    /// property that must match (e.g. the product).
    pub on: Vec<(String, String)>,
    /// The conversion must happen within this window after the base event.
    pub window: Option<ConversionWindow>,
    /// The named variants of which conversion events count: `(name, condition over the
    /// conversion table)`, chosen by `conversionFilter`.
    pub variants: Vec<(String, Expr)>,
    /// The count of converted base events, or their rate.
    pub calculation: ConversionCalc,
}

/// The time limit of a conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionWindow {
    /// The window, in seconds: `base time <= conversion time <= base time + seconds`.
    pub seconds: i64,
    /// The base table's time column.
    pub base_time: String,
    /// The conversion table's time column.
    pub conversion_time: String,
}

/// What a conversion metric returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionCalc {
    /// Converted base events / base events (null when there are none).
    Rate,
    /// Converted base events.
    Conversions,
}

/// Which entities of a period a retention metric counts (M = the period of the row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionEvent {
    /// Active in M and not in M+1 (null while M+1 is incomplete).
    Churned,
    /// Active in M and in M+1 (null while M+1 is incomplete).
    Retained,
    /// Active in M, not in M−1, and in some period before M−1.
    Resurrected,
    /// Active in M and in no period before.
    New,
    /// Active in M.
    Active,
}

impl RetentionEvent {
    /// Every event, in the order a retention node's counts are written.
    pub const ALL: [RetentionEvent; 5] = [
        RetentionEvent::Active,
        RetentionEvent::Churned,
        RetentionEvent::Retained,
        RetentionEvent::Resurrected,
        RetentionEvent::New,
    ];

    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionEvent::Churned => "churned",
            RetentionEvent::Retained => "retained",
            RetentionEvent::Resurrected => "resurrected",
            RetentionEvent::New => "new",
            RetentionEvent::Active => "active",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<RetentionEvent> {
        RetentionEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether it needs the following period (null while that period is incomplete).
    pub fn needs_next(self) -> bool {
        matches!(self, RetentionEvent::Churned | RetentionEvent::Retained)
    }

    /// Whether it needs the previous active period.
    pub fn needs_prev(self) -> bool {
        matches!(self, RetentionEvent::Resurrected | RetentionEvent::New)
    }
}

impl MetricKind {
    /// The kind's name as written in model files.
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricKind::Simple { .. } => "simple",
            MetricKind::Ratio { .. } => "ratio",
            MetricKind::Derived { .. } => "derived",
            MetricKind::Cumulative { .. } => "cumulative",
            MetricKind::Conversion(_) => "conversion",
            MetricKind::Retention { .. } => "retention",
            MetricKind::PeriodAverage { .. } => "period_average",
        }
    }
}

/// A metric: a named number the API exposes.
#[derive(Debug, Clone)]
pub struct Metric {
    /// GraphQL field name (camelCase).
    pub name: String,
    /// Kind and inputs.
    pub kind: MetricKind,
    /// Unit of its values.
    pub unit: Unit,
    /// What it means.
    pub description: String,
}

/// The table of time-zone offsets that SQLite SQL files may read to compute local times
/// (created by `tally migrate`, filled by tally before a statement that needs it runs).
pub const TZ_OFFSETS_TABLE: &str = "tally_tz_offsets";

impl Model {
    /// What still has a placeholder description (`TODO:…`, as `tally init` writes them):
    /// `model`, `table t`, `dimension d`, `measure m`, `metric m`.
    pub fn placeholder_descriptions(&self) -> Vec<String> {
        let todo = |d: &str| d.trim_start().starts_with("TODO:");
        let mut out = Vec::new();
        if todo(&self.description) {
            out.push("model".to_owned());
        }
        out.extend(
            self.tables
                .iter()
                .filter(|t| todo(&t.description))
                .map(|t| format!("table {}", t.name)),
        );
        out.extend(
            self.dimensions
                .iter()
                .filter(|d| todo(&d.description))
                .map(|d| format!("dimension {}", d.name)),
        );
        out.extend(
            self.measures
                .iter()
                .filter(|m| todo(&m.description))
                .map(|m| format!("measure {}", m.name)),
        );
        out.extend(
            self.metrics
                .iter()
                .filter(|m| todo(&m.description))
                .map(|m| format!("metric {}", m.name)),
        );
        out
    }

    /// The logical table named `name`.
    pub fn table(&self, name: &str) -> Option<&Arc<Table>> {
        self.tables.iter().find(|t| t.name == name)
    }
    /// The dimension named `name`.
    pub fn dimension(&self, name: &str) -> Option<&Dimension> {
        self.dimensions.iter().find(|d| d.name == name)
    }
    /// The measure named `name`.
    pub fn measure(&self, name: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.name == name)
    }
    /// The metric named `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
    /// The funnel named `name`.
    pub fn funnel(&self, name: &str) -> Option<&Funnel> {
        self.funnels.iter().find(|f| f.name == name)
    }

    /// The join paths (as lists of join indexes) from table `from` to table `to`, following
    /// joins towards their `to` side (and `one_to_one` joins both ways), without revisiting a
    /// table. The empty path when `from == to`.
    pub fn join_paths(&self, from: &str, to: &str) -> Vec<Vec<JoinStep>> {
        let mut out = Vec::new();
        let mut seen = vec![from.to_owned()];
        let mut path = Vec::new();
        self.walk(from, to, &mut seen, &mut path, &mut out);
        out
    }

    fn walk(
        &self,
        at: &str,
        to: &str,
        seen: &mut Vec<String>,
        path: &mut Vec<JoinStep>,
        out: &mut Vec<Vec<JoinStep>>,
    ) {
        if at == to {
            out.push(path.clone());
            return;
        }
        if out.len() > 16 {
            return;
        }
        for (i, j) in self.joins.iter().enumerate() {
            let next = if j.from == at {
                Some((j.to.as_str(), false))
            } else if j.to == at && j.cardinality == Cardinality::OneToOne {
                Some((j.from.as_str(), true))
            } else {
                None
            };
            if let Some((next, reversed)) = next
                && !seen.iter().any(|s| s == next)
            {
                seen.push(next.to_owned());
                path.push(JoinStep { join: i, reversed });
                self.walk(next, to, seen, path, out);
                path.pop();
                seen.pop();
            }
        }
    }

    /// The one join path from `from` to `to` (validation guarantees at most one), if any.
    pub fn join_path(&self, from: &str, to: &str) -> Option<Vec<JoinStep>> {
        self.join_paths(from, to).into_iter().next()
    }

    /// The tables a path visits after `from`, in order.
    pub fn path_tables(&self, from: &str, path: &[JoinStep]) -> Vec<String> {
        let _ = from;
        let mut out = Vec::new();
        for step in path {
            if let Some(j) = self.joins.get(step.join) {
                out.push(if step.reversed {
                    j.from.clone()
                } else {
                    j.to.clone()
                });
            }
        }
        out
    }

    /// The metric and every metric it is built from (ratios' and derived metrics' operands,
    /// transitively), each once, the metric first.
    pub fn metric_tree(&self, metric: &str) -> Vec<&Metric> {
        let mut out: Vec<&Metric> = Vec::new();
        let mut stack = vec![metric.to_owned()];
        while let Some(name) = stack.pop() {
            let Some(m) = self.metric(&name) else {
                continue;
            };
            if out.iter().any(|x| x.name == m.name) {
                continue;
            }
            match &m.kind {
                MetricKind::Ratio {
                    numerator,
                    denominator,
                } => {
                    stack.push(denominator.clone());
                    stack.push(numerator.clone());
                }
                MetricKind::Derived { expr } => stack.extend(expr.identifiers()),
                _ => {}
            }
            out.push(m);
        }
        out
    }

    /// The measures whose rows a metric aggregates (and whose tables must reach every
    /// dimension it is grouped by), transitively, without duplicates. A conversion metric
    /// reads its base measure (the conversion events are matched, not grouped).
    pub fn metric_measures(&self, metric: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_measures(metric, &mut out, 0);
        out
    }

    fn collect_measures(&self, metric: &str, out: &mut Vec<String>, depth: usize) {
        if depth > 64 {
            return;
        }
        let Some(m) = self.metric(metric) else {
            return;
        };
        match &m.kind {
            MetricKind::Simple { measure }
            | MetricKind::Cumulative { measure, .. }
            | MetricKind::Retention { measure, .. }
            | MetricKind::PeriodAverage { measure, .. } => {
                if !out.contains(measure) {
                    out.push(measure.clone());
                }
            }
            MetricKind::Conversion(c) => {
                if !out.contains(&c.base) {
                    out.push(c.base.clone());
                }
            }
            MetricKind::Ratio {
                numerator,
                denominator,
            } => {
                self.collect_measures(numerator, out, depth + 1);
                self.collect_measures(denominator, out, depth + 1);
            }
            MetricKind::Derived { expr } => {
                for name in expr.identifiers() {
                    self.collect_measures(&name, out, depth + 1);
                }
            }
        }
    }

    /// The dimensions every measure of `metric` can reach (the valid combinations).
    pub fn reachable_dimensions(&self, metric: &str) -> Vec<&Dimension> {
        let tables: Vec<String> = self
            .metric_measures(metric)
            .iter()
            .filter_map(|m| self.measure(m).map(|m| m.table.clone()))
            .collect();
        self.dimensions
            .iter()
            .filter(|d| {
                tables.iter().all(|t| match d.axis.is_empty() {
                    true => self.join_path(t, &d.table).is_some(),
                    // a time axis is read on each table it maps
                    false => d.axis_on(t).is_some(),
                })
            })
            .collect()
    }
}

/// One step of a join path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinStep {
    /// Index into [`Model::joins`].
    pub join: usize,
    /// Whether the join is followed from its `to` side (one-to-one joins only).
    pub reversed: bool,
}

/// Every problem found in a set of model files, each with `file:line`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the model files have {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ModelErrors {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

/// One problem in a model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (as given to the loader).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The environment variable that names the models folder.
pub const MODELS_ENV: &str = "TALLY_MODELS";

/// The table whose presence in a model's namespace says tally keeps its state there (the
/// saas stage history's status row, created by `tally migrate`).
pub const STATE_TABLE: &str = "tally_stage_history_status";

/// Where models' tables live, overriding their files' `namespace`: model name → namespace
/// (`--namespace gym=public`).
pub type Namespaces = std::collections::BTreeMap<String, String>;

/// The columns of the database's tables, read from the live database (PostgreSQL's
/// `information_schema`, SQLite's `pragma_table_info`): what physical tables are validated
/// against when the models are loaded for a database.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: std::collections::HashMap<(String, String), Vec<(String, ColType)>>,
    not_null: std::collections::HashMap<(String, String), Vec<String>>,
}

impl Catalog {
    /// Adds a column of `namespace.table` (in column order).
    pub fn push(&mut self, namespace: &str, table: &str, column: String, ty: ColType) {
        self.tables
            .entry((namespace.to_owned(), table.to_owned()))
            .or_default()
            .push((column, ty));
    }

    /// Marks a column of `namespace.table` as `NOT NULL`.
    pub fn push_not_null(&mut self, namespace: &str, table: &str, column: String) {
        self.not_null
            .entry((namespace.to_owned(), table.to_owned()))
            .or_default()
            .push(column);
    }

    /// The `NOT NULL` columns of `namespace.table` (none when it has no such table).
    pub fn not_null(&self, namespace: &str, table: &str) -> Vec<String> {
        self.not_null
            .get(&(namespace.to_owned(), table.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// The columns of `namespace.table`, `None` when the database has no such table.
    pub fn columns(&self, namespace: &str, table: &str) -> Option<&[(String, ColType)]> {
        self.tables
            .get(&(namespace.to_owned(), table.to_owned()))
            .map(Vec::as_slice)
    }

    /// The tables of `namespace`, sorted.
    pub fn tables_in(&self, namespace: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .tables
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, t)| t.clone())
            .collect();
        out.sort();
        out
    }

    /// How many tables it knows.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether it knows no table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// What the models are loaded for: where their tables live and what the database holds.
/// The default is the shipped layout (each model in the namespace named like it, columns from
/// the model files and the demo schema) with tally's state available.
#[derive(Debug, Clone, Default)]
pub struct LoadContext {
    /// Namespace overrides (`--namespace MODEL=NAMESPACE`).
    pub namespaces: Namespaces,
    /// The live database's columns: when set, every physical table takes its columns from
    /// here (and must exist).
    pub catalog: Option<Catalog>,
    /// Without a catalog: tally keeps no state in this database, so SQL tables with a
    /// `without_state` text use it. With a catalog, a model is without state when its
    /// namespace has no [`STATE_TABLE`].
    pub without_state: bool,
    /// Serve only these models (by folder name; `--only gym,shop`), `None`: every model.
    pub only: Option<std::collections::BTreeSet<String>>,
}

/// Loads and validates every model folder under `dir` (`dir/<model>/*.toml`).
///
/// SQL files named by `sql = { … }` are read relative to `dir`'s parent (the repository) or,
/// failing that, to `dir`.
pub fn load_dir(dir: &Path) -> Result<Vec<Model>, ModelErrors> {
    let sources = file::read_dir(dir)?;
    validate::build_all(&sources, &LoadContext::default())
}

/// Loads and validates the models embedded in the binary (the shipped `models/` folder).
pub fn load_embedded() -> Result<Vec<Model>, ModelErrors> {
    validate::build_all(&file::embedded(), &LoadContext::default())
}

/// Loads and validates models from given sources (tests, tools).
pub fn load_sources(sources: &[ModelSource]) -> Result<Vec<Model>, ModelErrors> {
    validate::build_all(sources, &LoadContext::default())
}

/// Loads and validates models from given sources for a database described by `ctx`.
pub fn load_sources_with(
    sources: &[ModelSource],
    ctx: &LoadContext,
) -> Result<Vec<Model>, ModelErrors> {
    validate::build_all(sources, ctx)
}

/// Loads and validates the models of [`models_dir`] (or the embedded ones) for a database
/// described by `ctx`.
pub fn load_for(explicit: Option<&Path>, ctx: &LoadContext) -> Result<Vec<Model>, ModelErrors> {
    let mut sources = match models_dir(explicit) {
        Some(dir) => file::read_dir(&dir)?,
        None => file::embedded(),
    };
    if let Some(only) = &ctx.only {
        let known: Vec<&str> = sources.iter().map(|s| s.folder.as_str()).collect();
        let unknown: Vec<&String> = only
            .iter()
            .filter(|m| !known.contains(&m.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(ModelErrors {
                problems: vec![Problem {
                    file: "--only".to_owned(),
                    line: 1,
                    message: format!(
                        "unknown model(s) {unknown:?}; the models are {}",
                        known.join(", ")
                    ),
                }],
            });
        }
        sources.retain(|s| only.contains(&s.folder));
    }
    validate::build_all(&sources, ctx)
}

/// The models folder to use: `explicit`, else `$TALLY_MODELS`, else `./models` when it exists;
/// `None` means the embedded copy.
pub fn models_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(MODELS_ENV) {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("models");
    local.is_dir().then_some(local)
}

/// Loads the models from [`models_dir`] (a folder on disk wins over the embedded copy).
pub fn load_default(explicit: Option<&Path>) -> Result<Vec<Model>, ModelErrors> {
    match models_dir(explicit) {
        Some(dir) => load_dir(&dir),
        None => load_embedded(),
    }
}

/// Loads and validates the model files (see [`crate::semantic::models_dir`]); a broken model is
/// a configuration error listing every problem with file and line.
pub fn load_models(dir: Option<&std::path::Path>) -> Result<Vec<Model>, crate::error::Error> {
    load_default(dir).map_err(|e| crate::error::Error::Config(e.to_string()))
}
