//! `tally demo`: deterministic synthetic source data for the five shipped models.
//!
//! Every model's rows are generated from a seed with a small PRNG of our own (xoshiro256**
//! seeded through SplitMix64; see [`rng`]); nothing depends on the current time, the machine or
//! hash-map order, so the same [`DemoOptions`] give byte-identical rows everywhere. Activity
//! lies in a fixed calendar, 2024-01-01T00:00:00Z to 2025-12-31T23:59:59Z.
//!
//! Generation streams: each entity (a user, a customer) has its own generator derived from
//! (seed, model, entity index), so every table's iterator regenerates an entity's story when
//! it reaches it and emits that table's rows of it. Only small dimension tables (plans,
//! branches, categories, products, campaigns, social content) are precomputed, so scale 100
//! (about a million users per model) runs in constant memory.
//!
//! The rows are the textual (CSV) forms of `docs/SOURCE-SCHEMA.md`, as
//! [`TableSource`]s for the loader, or written as CSV files by [`write_csv`].

mod cal;
mod gym;
mod names;
mod rng;
mod saas;
mod shop;
mod social;
mod web;

use std::path::Path;

use crate::error::Error;
use crate::load::source::{Record, TableSource};

/// The models the demo generator knows, in loading order.
pub const MODELS: &[&str] = &["saas", "gym", "shop", "social", "web"];

/// How much demo data to generate, and from which seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoOptions {
    /// Size: 1.0 is about 10 000 users per model (about 100 000 events for `saas` and
    /// `social`); counts scale linearly. Fractions are allowed (tests use 0.05). Must be
    /// finite, greater than 0 and at most 10 000.
    pub scale: f64,
    /// The seed: the same scale and seed give the same rows on every machine.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            scale: 1.0,
            seed: 42,
        }
    }
}

/// The demo rows of one model, one [`TableSource`] per table, streamed (origin
/// `demo:<model>`). Referenced tables come before the tables that reference them.
///
/// Fails with [`Error::Input`] for an unknown model or a scale that is not a finite number in
/// `(0, 10000]`.
pub fn sources(model: &str, opts: &DemoOptions) -> Result<Vec<TableSource>, Error> {
    if !(opts.scale.is_finite() && opts.scale > 0.0 && opts.scale <= 10_000.0) {
        return Err(Error::Input(format!(
            "demo scale must be a number greater than 0 and at most 10000, not {}",
            opts.scale
        )));
    }
    match model {
        "saas" => Ok(saas::sources(opts)),
        "gym" => Ok(gym::sources(opts)),
        "shop" => Ok(shop::sources(opts)),
        "social" => Ok(social::sources(opts)),
        "web" => Ok(web::sources(opts)),
        other => Err(Error::Input(format!(
            "unknown demo model {other:?} (expected one of {})",
            MODELS.join(", ")
        ))),
    }
}

/// Writes the demo rows of `model` as CSV files `<dir>/<model>/<table>.csv` (header first,
/// fields quoted only when needed, an empty field for NULL) and returns the number of rows
/// written (headers not counted). Creates the directories as needed and overwrites files.
pub fn write_csv(model: &str, opts: &DemoOptions, dir: &Path) -> Result<u64, Error> {
    let tables = sources(model, opts)?;
    let out = dir.join(model);
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        context: format!("cannot create directory {}", out.display()),
        source,
    })?;
    let mut total = 0u64;
    for table in tables {
        let path = out.join(format!("{}.csv", table.table));
        let io = |e: std::io::Error| Error::Io {
            context: format!("cannot write {}", path.display()),
            source: e,
        };
        let csv_err = |e: csv::Error| Error::Io {
            context: format!("cannot write {}", path.display()),
            source: std::io::Error::other(e.to_string()),
        };
        let file = std::fs::File::create(&path).map_err(io)?;
        let mut w = csv::WriterBuilder::new()
            .buffer_capacity(1 << 16)
            .from_writer(file);
        w.write_record(&table.columns).map_err(csv_err)?;
        for row in table.rows {
            let (line, record) = row.map_err(|e| {
                Error::Input(format!("{} line {}: {}", table.origin, e.line, e.reason))
            })?;
            debug_assert!(line >= 2);
            w.write_record(&record).map_err(csv_err)?;
            total += 1;
        }
        w.flush().map_err(io)?;
    }
    Ok(total)
}

/// The number of entities for a base count at scale 1 (at least `min`).
fn count(base: f64, scale: f64, min: u64) -> u64 {
    let n = (base * scale).round();
    if n.is_finite() && n >= min as f64 {
        n as u64
    } else {
        min
    }
}

/// Wraps a stream of records as the [`TableSource`] of `table` (line numbers from 2).
fn table(
    model: &str,
    name: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Record> + Send + 'static,
) -> TableSource {
    TableSource {
        table: name.to_owned(),
        origin: format!("demo:{model}"),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows: Box::new(rows.enumerate().map(|(i, r)| Ok((i as u64 + 2, r)))),
    }
}

/// The rows of `n` entities: `f(i, out)` pushes entity `i`'s rows of one table.
fn per_entity<F>(n: u64, mut f: F) -> impl Iterator<Item = Record> + Send + 'static
where
    F: FnMut(u64, &mut Vec<Record>) + Send + 'static,
{
    (0..n).flat_map(move |i| {
        let mut out = Vec::new();
        f(i, &mut out);
        out
    })
}

/// Rows computed only when the stream is first read (for tables that need a pass over other
/// entities first).
fn deferred<F, I>(f: F) -> impl Iterator<Item = Record> + Send + 'static
where
    F: FnOnce() -> I + Send + 'static,
    I: Iterator<Item = Record> + Send + 'static,
{
    std::iter::once(f).flat_map(|f| f())
}

/// A JSON object of string values, keys in the given order (values are escaped).
fn json_object(pairs: &[(&str, &str)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        push_json_string(&mut s, k);
        s.push_str(": ");
        push_json_string(&mut s, v);
    }
    s.push('}');
    s
}

fn push_json_string(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
}

/// A record from displayable fields: `rec![a, b, c]`.
macro_rules! rec {
    ($($x:expr),* $(,)?) => { vec![$($x.to_string()),*] };
}
use rec;

/// `Some(v)` as its text, `None` as the empty field (NULL).
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `true` / `false`.
fn boolean(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Generates one model's demo data and loads it through the validating loader.
pub async fn load_demo(
    conn: &sea_orm::DatabaseConnection,
    model: &str,
    opts: &DemoOptions,
    progress: bool,
) -> Result<crate::load::LoadReport, Error> {
    let sources = sources(model, opts)?;
    let load_opts = crate::load::LoadOptions {
        progress,
        ..Default::default()
    };
    crate::load::load(conn, model, sources, &load_opts)
        .await
        .map_err(|e| Error::Input(format!("demo data for {model} was rejected: {e}")))
}
