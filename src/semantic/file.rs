//! Reading model files: TOML with spans, from a folder or from the copy embedded in the binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ModelErrors, Problem};

/// One model file's text and the name it is reported under.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path shown in messages (`models/shop/model.toml`).
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// The files of one model folder, and where its SQL files are read from.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// The folder's name.
    pub folder: String,
    /// Its `*.toml` files, merged.
    pub files: Vec<SourceFile>,
    /// Folders that relative SQL paths are resolved against, in order (empty: embedded only).
    pub sql_roots: Vec<PathBuf>,
}

/// The line that includes another SQL file: `-- tally:include <path>` (the path resolved
/// like the model file's own SQL paths).
pub(super) const INCLUDE: &str = "-- tally:include ";

/// How deep includes may nest.
const MAX_INCLUDE_DEPTH: usize = 4;

impl ModelSource {
    /// The text of a SQL file named in a model file, with every `-- tally:include <path>`
    /// line replaced by that file's text (see [`INCLUDE`]), so that one query can embed
    /// another without copying it.
    pub(crate) fn read_sql(&self, rel: &str) -> Result<String, String> {
        self.read_sql_at(rel, 0)
    }

    fn read_sql_at(&self, rel: &str, depth: usize) -> Result<String, String> {
        let text = self.read_sql_file(rel)?;
        if !text.contains(INCLUDE) {
            return Ok(text);
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(format!(
                "{rel}: includes nest deeper than {MAX_INCLUDE_DEPTH} files (a cycle?)"
            ));
        }
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            match line.trim_start().strip_prefix(INCLUDE) {
                Some(path) => {
                    let included = self
                        .read_sql_at(path.trim(), depth + 1)
                        .map_err(|e| format!("{rel}: {e}"))?;
                    out.push_str(&included);
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
        Ok(out)
    }

    /// The text of one SQL file: from the first root holding it, else from the SQL files
    /// built into the binary.
    fn read_sql_file(&self, rel: &str) -> Result<String, String> {
        for root in &self.sql_roots {
            let p = root.join(rel);
            if p.is_file() {
                return std::fs::read_to_string(&p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()));
            }
        }
        // The SQL files tally ships are built in, so a copied models folder still finds them.
        if let Some((_, text)) = EMBEDDED_SQL.iter().find(|(p, _)| *p == rel) {
            return Ok((*text).to_owned());
        }
        let searched: Vec<String> = self
            .sql_roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        Err(format!(
            "SQL file {rel:?} not found (searched {})",
            if searched.is_empty() {
                "the built-in files".to_owned()
            } else {
                searched.join(", ")
            }
        ))
    }
}

/// The shipped model files, embedded in the binary: (model folder, path, text).
pub const EMBEDDED_MODELS: &[(&str, &str, &str)] = &[
    (
        "saas",
        "models/saas/model.toml",
        include_str!("../../models/saas/model.toml"),
    ),
    (
        "saas",
        "models/saas/policies.toml",
        include_str!("../../models/saas/policies.toml"),
    ),
    (
        "gym",
        "models/gym/model.toml",
        include_str!("../../models/gym/model.toml"),
    ),
    (
        "gym",
        "models/gym/policies.toml",
        include_str!("../../models/gym/policies.toml"),
    ),
    (
        "shop",
        "models/shop/model.toml",
        include_str!("../../models/shop/model.toml"),
    ),
    (
        "shop",
        "models/shop/policies.toml",
        include_str!("../../models/shop/policies.toml"),
    ),
    (
        "social",
        "models/social/model.toml",
        include_str!("../../models/social/model.toml"),
    ),
    (
        "web",
        "models/web/model.toml",
        include_str!("../../models/web/model.toml"),
    ),
];

/// The SQL files the shipped models name, embedded: (path as written in the model file, text).
const EMBEDDED_SQL: &[(&str, &str)] = &[
    (
        "sql/gym/fct_lead_conversions.sql",
        include_str!("../../sql/gym/fct_lead_conversions.sql"),
    ),
    (
        "sql/gym/fct_lead_conversions.sqlite.sql",
        include_str!("../../sql/gym/fct_lead_conversions.sqlite.sql"),
    ),
    (
        "sql/gym/fct_client_conversion_events.sql",
        include_str!("../../sql/gym/fct_client_conversion_events.sql"),
    ),
    (
        "sql/gym/fct_client_conversion_events.sqlite.sql",
        include_str!("../../sql/gym/fct_client_conversion_events.sqlite.sql"),
    ),
    (
        "sql/saas/user_stages.sql",
        include_str!("../../sql/saas/user_stages.sql"),
    ),
    (
        "sql/saas/user_stages.sqlite.sql",
        include_str!("../../sql/saas/user_stages.sqlite.sql"),
    ),
    (
        "sql/saas/stages_model.sql",
        include_str!("../../sql/saas/stages_model.sql"),
    ),
    (
        "sql/saas/stages_at.sql",
        include_str!("../../sql/saas/stages_at.sql"),
    ),
    (
        "sql/saas/stages_direct.sql",
        include_str!("../../sql/saas/stages_direct.sql"),
    ),
    (
        "sql/saas/stages_direct.sqlite.sql",
        include_str!("../../sql/saas/stages_direct.sqlite.sql"),
    ),
    (
        "sql/saas/stages_model.sqlite.sql",
        include_str!("../../sql/saas/stages_model.sqlite.sql"),
    ),
    (
        "sql/saas/stages_at.sqlite.sql",
        include_str!("../../sql/saas/stages_at.sqlite.sql"),
    ),
    (
        "social/activity.sql",
        include_str!("../../models/social/activity.sql"),
    ),
    (
        "web/order_items.sql",
        include_str!("../../models/web/order_items.sql"),
    ),
    (
        "web/sessions.sql",
        include_str!("../../models/web/sessions.sql"),
    ),
    (
        "web/product_conversions.sql",
        include_str!("../../models/web/product_conversions.sql"),
    ),
    (
        "web/product_views.sql",
        include_str!("../../models/web/product_views.sql"),
    ),
    (
        "saas/collections.sql",
        include_str!("../../models/saas/collections.sql"),
    ),
    (
        "saas/collections.sqlite.sql",
        include_str!("../../models/saas/collections.sqlite.sql"),
    ),
    (
        "web/product_shipments.sql",
        include_str!("../../models/web/product_shipments.sql"),
    ),
    (
        "shop/customer_value.sql",
        include_str!("../../models/shop/customer_value.sql"),
    ),
    (
        "shop/customer_value.sqlite.sql",
        include_str!("../../models/shop/customer_value.sqlite.sql"),
    ),
    (
        "shop/inventory_on_hand.sql",
        include_str!("../../models/shop/inventory_on_hand.sql"),
    ),
    (
        "shop/inventory_on_hand.sqlite.sql",
        include_str!("../../models/shop/inventory_on_hand.sqlite.sql"),
    ),
];

/// The embedded models as sources.
pub(crate) fn embedded() -> Vec<ModelSource> {
    let mut out: Vec<ModelSource> = Vec::new();
    for (folder, path, text) in EMBEDDED_MODELS {
        let file = SourceFile {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        };
        match out.iter_mut().find(|s| s.folder == *folder) {
            Some(s) => s.files.push(file),
            None => out.push(ModelSource {
                folder: (*folder).to_owned(),
                files: vec![file],
                sql_roots: Vec::new(),
            }),
        }
    }
    out
}

/// Reads every `<dir>/<model>/*.toml`, folders and files in name order.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<ModelSource>, ModelErrors> {
    let fail = |message: String| ModelErrors {
        problems: vec![Problem {
            file: dir.display().to_string(),
            line: 1,
            message,
        }],
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| fail(format!("cannot read the models folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    // The shipped models first, in their documented order, then the others by name.
    folders.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rank = entity::MODELS
            .iter()
            .position(|m| *m == name)
            .unwrap_or(usize::MAX);
        (rank, name)
    });
    let mut roots = Vec::new();
    if let Some(parent) = dir.parent() {
        roots.push(if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent.to_path_buf()
        });
    }
    roots.push(dir.to_path_buf());
    let mut out = Vec::new();
    for folder in folders {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| fail(format!("cannot read {}: {e}", folder.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            continue;
        }
        let mut sources = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| fail(format!("cannot read {}: {e}", f.display())))?;
            sources.push(SourceFile {
                path: f.display().to_string(),
                text,
            });
        }
        out.push(ModelSource {
            folder: folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            files: sources,
            sql_roots: roots.clone(),
        });
    }
    Ok(out)
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset.min(text.len()))
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A model file as written. Top-level keys other than the sections below are collected in
/// `settings`: only a table named after the model (`[saas]`) is allowed there, holding the
/// model's settings (constants SQL tables can bind).
#[derive(Debug, Deserialize)]
pub(crate) struct RawFile {
    pub model: Option<Spanned<RawModel>>,
    #[serde(default)]
    pub table: Vec<Spanned<RawTable>>,
    /// `[[policy]]`: row policies of physical tables.
    #[serde(default)]
    pub policy: Vec<Spanned<RawPolicy>>,
    #[serde(default)]
    pub join: Vec<Spanned<RawJoin>>,
    #[serde(default)]
    pub dimension: Vec<Spanned<RawDimension>>,
    #[serde(default)]
    pub measure: Vec<Spanned<RawMeasure>>,
    #[serde(default)]
    pub metric: Vec<Spanned<RawMetric>>,
    #[serde(default)]
    pub time_axis: Vec<Spanned<RawTimeAxis>>,
    #[serde(default)]
    pub funnel: Vec<Spanned<super::funnel::RawFunnel>>,
    #[serde(default)]
    pub rollup: Vec<Spanned<RawRollup>>,
    #[serde(flatten)]
    pub settings: BTreeMap<String, toml::Value>,
}

/// `[[policy]]`: a row policy of a physical table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub table: Spanned<String>,
    pub condition: Spanned<String>,
    pub description: Option<String>,
}

/// `[model]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub namespace: Option<Spanned<String>>,
}

/// `[[table]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    pub name: Spanned<String>,
    pub physical: Option<Spanned<String>>,
    pub sql: Option<Spanned<RawSql>>,
    #[serde(default)]
    pub key: Vec<String>,
    pub as_of: Option<Spanned<RawAsOf>>,
    pub description: Option<String>,
    pub columns: Option<Spanned<BTreeMap<String, String>>>,
    pub conversion_filter: Option<Spanned<RawConversionFilter>>,
    pub rows: Option<Spanned<RawRows>>,
}

/// `rows = { field = "…", description = "…", order = […] }`: the table's rows as a field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRows {
    pub field: String,
    pub description: Option<String>,
    #[serde(default)]
    pub order: Vec<String>,
}

/// `sql = { postgres = "…", sqlite = "…" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSql {
    pub postgres: String,
    pub sqlite: String,
    /// Expressions over the model's settings, bound as `$2`, `$3`, …
    #[serde(default)]
    pub params: Vec<String>,
    /// The texts used where tally keeps no state in the database (no saas stage history).
    pub without_state: Option<RawSqlTexts>,
}

/// `without_state = { postgres = "…", sqlite = "…" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSqlTexts {
    pub postgres: String,
    pub sqlite: String,
}

/// `as_of = { kind = "…", … }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAsOf {
    pub kind: String,
    pub time: Option<String>,
    pub key: Option<Vec<String>>,
    pub ts: Option<String>,
    pub ds: Option<String>,
    pub created: Option<String>,
    pub updated: Option<String>,
    pub shift: Option<String>,
}

/// `conversion_filter = { column = "…", variants = […], default = "…" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConversionFilter {
    pub column: String,
    pub variants: Vec<String>,
    pub default: String,
}

/// `[[join]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJoin {
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub on: Vec<(String, String)>,
    pub cardinality: Spanned<String>,
}

/// `[[dimension]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDimension {
    pub name: Spanned<String>,
    pub table: Spanned<String>,
    pub expr: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub dim_type: Spanned<String>,
    pub granularities: Option<Spanned<Vec<String>>>,
    pub description: Option<String>,
}

/// `[[time_axis]]`: a time dimension read on each table's own time column.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeAxis {
    pub name: Spanned<String>,
    pub description: String,
    /// Table → its time column (an expression over the table's columns).
    pub tables: Spanned<BTreeMap<String, String>>,
}

/// `[[measure]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeasure {
    pub name: Spanned<String>,
    pub table: Spanned<String>,
    pub agg: Spanned<String>,
    pub expr: Option<Spanned<String>>,
    pub filter: Option<Spanned<String>>,
    pub description: Option<String>,
}

/// `[[rollup]]`: a pre-aggregated copy of an event table (see `super::rollup`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollup {
    pub name: Spanned<String>,
    pub table: Spanned<String>,
    pub grain: Spanned<String>,
    #[serde(default)]
    pub columns: Vec<Spanned<String>>,
    pub measures: Spanned<Vec<Spanned<String>>>,
}

/// `[[metric]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetric {
    pub name: Spanned<String>,
    pub kind: Option<Spanned<String>>,
    pub measure: Option<Spanned<String>>,
    pub numerator: Option<Spanned<String>>,
    pub denominator: Option<Spanned<String>>,
    pub expr: Option<Spanned<String>>,
    pub window: Option<Spanned<String>>,
    pub time_dimension: Option<Spanned<String>>,
    pub unit: Spanned<String>,
    pub description: Option<String>,
    // conversion
    pub base: Option<Spanned<String>>,
    pub conversion: Option<Spanned<String>>,
    pub on: Option<Spanned<Vec<(String, String)>>>,
    pub times: Option<Spanned<(String, String)>>,
    pub variants: Option<Spanned<Vec<(String, String)>>>,
    pub default_variant: Option<Spanned<String>>,
    pub calculation: Option<Spanned<String>>,
    // retention
    pub retention: Option<Spanned<String>>,
    // period_average
    pub per: Option<Spanned<String>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn source(root: &Path) -> ModelSource {
        ModelSource {
            folder: "m".to_owned(),
            files: Vec::new(),
            sql_roots: vec![root.to_path_buf()],
        }
    }

    #[test]
    fn sql_files_include_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("outer.sql"),
            "SELECT * FROM (\n-- tally:include inner.sql\n) AS s\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("inner.sql"), "SELECT $1 AS t").unwrap();
        let text = source(dir.path()).read_sql("outer.sql").unwrap();
        assert_eq!(text, "SELECT * FROM (\nSELECT $1 AS t\n) AS s\n");
        // the shipped model file resolves its include from the built-in files
        let shipped = source(dir.path())
            .read_sql("sql/saas/stages_model.sql")
            .unwrap();
        assert!(!shipped.contains(INCLUDE));
        assert!(shipped.contains("Step 12 (§2 stage rules)"));
    }

    #[test]
    fn include_errors_name_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.sql"), "-- tally:include missing.sql\n").unwrap();
        let e = source(dir.path()).read_sql("a.sql").unwrap_err();
        assert!(e.starts_with("a.sql: ") && e.contains("missing.sql"), "{e}");
        std::fs::write(dir.path().join("loop.sql"), "-- tally:include loop.sql\n").unwrap();
        let e = source(dir.path()).read_sql("loop.sql").unwrap_err();
        assert!(e.contains("nest deeper"), "{e}");
    }
}
