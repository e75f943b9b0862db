//! Rollups declared in model files (`[[rollup]]`): a pre-aggregated copy of an event table
//! at a time grain (hour or day, UTC) and a set of group-by columns, holding per measure the
//! partial aggregate that re-aggregates exactly (sums, counts, minima, maxima), and distinct
//! counts per group, which re-aggregate by a sum when the data puts every value in one group
//! (checked at every build, see `src/rollup`).
//!
//! Validation only: what a rollup is and whether it is well formed. Building it is
//! `src/rollup`, answering from it `src/engine/rollup.rs` (docs/SEMANTIC-LAYER.md,
//! "Rollups").

use toml::Spanned;

use super::file::RawRollup;
use super::{Agg, AsOf, ColType, Granularity, Measure, Model, TableSource};

/// A validated rollup of one event table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    /// Its name, unique in the model (`daily_sales`).
    pub name: String,
    /// The logical (event) table it aggregates.
    pub table: String,
    /// The table's physical name in the model's namespace.
    pub physical: String,
    /// The table's event-time column (an instant).
    pub time: String,
    /// The bucket: hour or day, in UTC.
    pub grain: Granularity,
    /// The group-by columns of the table.
    pub columns: Vec<String>,
    /// The measures kept, each with the partial it stores.
    pub measures: Vec<RollupMeasure>,
    /// Where it is declared: `(file, line)`.
    pub defined_at: (String, usize),
}

/// A measure of a rollup: the measure, and how its partials re-aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupMeasure {
    /// The measure's name.
    pub measure: String,
    /// Its aggregation over the rows (sum, count, count_distinct, min or max).
    pub agg: Agg,
    /// How partials of it combine: sum for sums, counts and distinct counts, min for min,
    /// max for max.
    pub combine: Agg,
    /// The rollup table's column holding the partial (`p_<measure>`).
    pub column: String,
}

impl RollupMeasure {
    /// Whether it is a distinct count: its partials sum exactly only while every value
    /// falls in one group of the rollup (the status says so per build).
    pub fn is_distinct(&self) -> bool {
        self.agg == Agg::CountDistinct
    }

    /// The column of the rollup's read (the union of `src/rollup`) holding a source row's
    /// value of a distinct count (`v_<measure>`; NULL in the rollup's own rows), which the
    /// rows read from the source count distinct.
    pub fn value_column(&self) -> String {
        format!("v_{}", self.measure)
    }
}

/// The prefix of the tables tally keeps rollups in (`tally_rollup_<name>`).
pub const ROLLUP_TABLE_PREFIX: &str = "tally_rollup_";

/// The table of rollup statuses in a model's namespace (one row per rollup).
pub const ROLLUP_STATUS_TABLE: &str = "tally_rollup_status";

impl Rollup {
    /// The table holding its rows, in the model's namespace (`tally_rollup_<name>`).
    pub fn storage_table(&self) -> String {
        format!("{ROLLUP_TABLE_PREFIX}{}", self.name)
    }

    /// Its distinct-count measures, in declaration order.
    pub fn distinct_measures(&self) -> impl Iterator<Item = &RollupMeasure> {
        self.measures.iter().filter(|m| m.is_distinct())
    }

    /// Its measure called `name`, when it keeps it.
    pub fn measure(&self, name: &str) -> Option<&RollupMeasure> {
        self.measures.iter().find(|m| m.measure == name)
    }

    /// A fingerprint of what its rows hold (grain, columns, each measure's aggregation,
    /// expression and filter): a rollup built for another definition is not used.
    pub fn definition(&self, model: &Model) -> String {
        let mut text = format!(
            "{}|{}|{}|{}",
            self.physical,
            self.time,
            self.grain.as_str(),
            self.columns.join(",")
        );
        for m in &self.measures {
            let (expr, filter) = model
                .measure(&m.measure)
                .map(|x| (format!("{:?}", x.expr), format!("{:?}", x.filter)))
                .unwrap_or_default();
            text.push_str(&format!(
                "|{}:{}:{expr}:{filter}",
                m.measure,
                m.agg.as_str()
            ));
        }
        // FNV-1a: stable across builds and platforms
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// Why a measure cannot be kept in a rollup, `None` when it can.
pub fn not_reaggregatable(m: &Measure) -> Option<String> {
    match m.agg {
        // a distinct count is kept per group; whether its partials may be summed is a
        // property of the data, checked at every build
        Agg::Sum | Agg::Count | Agg::CountDistinct | Agg::Min | Agg::Max => None,
        Agg::Median => Some(format!(
            "measure {:?} is a median: the median of medians is not the median, so a rollup cannot keep it",
            m.name
        )),
        Agg::Avg => Some(format!(
            "measure {:?} is an avg: an average of averages is not the average; keep a sum and a count measure in the rollup and divide them with a ratio metric",
            m.name
        )),
    }
}

/// Validates one `[[rollup]]` of `model` (whose tables and measures are built); problems
/// are reported as (byte offset in the file, message).
pub(super) fn build(
    raw: &Spanned<RawRollup>,
    model: &Model,
    defined_at: (String, usize),
    report: &mut dyn FnMut(usize, String),
) -> Option<Rollup> {
    let r = raw.get_ref();
    let at = |s: &Spanned<String>| s.span().start;
    let name = r.name.get_ref().clone();
    let mut ok = true;
    let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 40;
    if !valid_name {
        report(
            at(&r.name),
            format!("rollup name {name:?} is not a lower-case identifier of at most 40 characters"),
        );
        ok = false;
    }
    let Some(table) = model.table(r.table.get_ref()) else {
        report(
            at(&r.table),
            format!("rollup {name:?}: unknown table {:?}", r.table.get_ref()),
        );
        return None;
    };
    let AsOf::Event { time } = &table.as_of else {
        report(
            at(&r.table),
            format!(
                "rollup {name:?}: table {:?} is cut by kind {:?}; a rollup needs an event table (as_of kind = \"event\"), whose rows count from their event time on",
                table.name,
                table.as_of.kind()
            ),
        );
        return None;
    };
    let TableSource::Physical {
        table: physical, ..
    } = &table.source
    else {
        report(
            at(&r.table),
            format!(
                "rollup {name:?}: table {:?} is a SQL table; a rollup needs a physical table (its staleness triggers watch it)",
                table.name
            ),
        );
        return None;
    };
    if table.as_of_shift.is_some() {
        report(
            at(&r.table),
            format!(
                "rollup {name:?}: table {:?} is seen with a shifted asOf",
                table.name
            ),
        );
        ok = false;
    }
    if table.column_type(time) != Some(ColType::Time) {
        report(
            at(&r.table),
            format!(
                "rollup {name:?}: the event time {time:?} of table {:?} is not an instant",
                table.name
            ),
        );
        ok = false;
    }
    let grain = match Granularity::parse(r.grain.get_ref()) {
        Some(g @ (Granularity::Hour | Granularity::Day)) => g,
        _ => {
            report(
                at(&r.grain),
                format!(
                    "rollup {name:?}: grain {:?} is not hour or day (buckets are UTC hours or days)",
                    r.grain.get_ref()
                ),
            );
            ok = false;
            Granularity::Day
        }
    };
    let mut columns: Vec<String> = Vec::new();
    for c in &r.columns {
        let col = c.get_ref();
        match table.column_type(col) {
            None => {
                let known: Vec<&str> = table.columns.iter().map(|(c, _)| c.as_str()).collect();
                report(
                    at(c),
                    format!(
                        "rollup {name:?}: table {:?} has no column {col:?} (columns: {})",
                        table.name,
                        known.join(", ")
                    ),
                );
                ok = false;
            }
            Some(ColType::Json) => {
                report(
                    at(c),
                    format!("rollup {name:?}: column {col:?} is JSON, which cannot be grouped"),
                );
                ok = false;
            }
            Some(_) if col == time => {
                report(
                    at(c),
                    format!(
                        "rollup {name:?}: {col:?} is the event time, kept as the bucket; list only group-by columns"
                    ),
                );
                ok = false;
            }
            Some(_) if columns.contains(col) => {
                report(
                    at(c),
                    format!("rollup {name:?}: column {col:?} is listed twice"),
                );
                ok = false;
            }
            Some(_) => columns.push(col.clone()),
        }
    }
    let mut measures: Vec<RollupMeasure> = Vec::new();
    if r.measures.get_ref().is_empty() {
        report(
            r.measures.span().start,
            format!("rollup {name:?}: list at least one measure"),
        );
        ok = false;
    }
    for sm in r.measures.get_ref() {
        let mname = sm.get_ref();
        let Some(m) = model.measure(mname) else {
            report(
                at(sm),
                format!("rollup {name:?}: unknown measure {mname:?}"),
            );
            ok = false;
            continue;
        };
        if m.table != table.name {
            report(
                at(sm),
                format!(
                    "rollup {name:?}: measure {mname:?} aggregates table {:?}, not {:?}",
                    m.table, table.name
                ),
            );
            ok = false;
            continue;
        }
        if let Some(why) = not_reaggregatable(m) {
            report(at(sm), format!("rollup {name:?}: {why}"));
            ok = false;
            continue;
        }
        if measures.iter().any(|x| x.measure == *mname) {
            report(
                at(sm),
                format!("rollup {name:?}: measure {mname:?} is listed twice"),
            );
            ok = false;
            continue;
        }
        let combine = match m.agg {
            Agg::Min => Agg::Min,
            Agg::Max => Agg::Max,
            _ => Agg::Sum,
        };
        measures.push(RollupMeasure {
            measure: mname.clone(),
            agg: m.agg,
            combine,
            column: format!("p_{mname}"),
        });
    }
    ok.then(|| Rollup {
        name,
        table: table.name.clone(),
        physical: physical.clone(),
        time: time.clone(),
        grain,
        columns,
        measures,
        defined_at,
    })
}
