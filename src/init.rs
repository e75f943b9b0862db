//! `tally init`: a model folder scaffolded from an existing database's tables.
//!
//! Read (never written) from the database, for the tables of one namespace: columns and types
//! (the same catalog the server validates against), primary keys, single-column unique
//! constraints, foreign keys and `COMMENT ON` texts (PostgreSQL). Written, as one
//! `<out>/<model>/model.toml`:
//!
//! - a `[[table]]` per table, its key the primary key (else a single unique column, else
//!   every column), `as_of` by event time (the first timestamp column) or `static`;
//! - a `[[join]]` per foreign key: `one_to_one` when the referencing columns are unique,
//!   else `many_to_one`;
//! - dimensions for text, boolean and time columns (time columns take a granularity);
//! - a row count per table, a sum per numeric column that is no key, and a distinct count
//!   per id column (key or foreign key), each with a simple metric;
//! - descriptions from the comments, else a `TODO:` placeholder that the validator warns
//!   about.
//!
//! The output validates and serves as it is: `tally serve --db URL --models <out>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::error::Error;
use crate::semantic::{ColType, camel_case};

/// The placeholder of a description `tally init` could not take from a comment.
pub const TODO: &str = "TODO:";

/// What `tally init` read of one table.
#[derive(Debug, Default)]
struct TableInfo {
    columns: Vec<(String, ColType)>,
    key: Vec<String>,
    unique: BTreeSet<String>,
    comment: Option<String>,
    column_comments: BTreeMap<String, String>,
    /// Foreign keys: constraint → (columns, referenced table, referenced columns).
    foreign: BTreeMap<String, (Vec<String>, String, Vec<String>)>,
}

/// Writes `<out>/<model>/model.toml` for the tables of `namespace` in `db`; returns the file's
/// path and how many tables it models. Fails when the namespace has no table, or the file
/// exists already.
pub async fn scaffold(
    db: &DatabaseConnection,
    namespace: &str,
    model: &str,
    out: &Path,
) -> Result<(PathBuf, usize), Error> {
    if !is_ident(model) {
        return Err(Error::Input(format!(
            "model name {model:?} is not a lower-case identifier (letters, digits, _): give one with --model"
        )));
    }
    let tables = read_tables(db, namespace).await?;
    if tables.is_empty() {
        return Err(Error::Input(format!(
            "the database has no table in {namespace:?} that tally can read (name the schema with --schema)"
        )));
    }
    let text = render(model, namespace, &tables);
    // what we write must load
    let source = crate::semantic::ModelSource {
        folder: model.to_owned(),
        files: vec![crate::semantic::SourceFile {
            path: format!("{model}/model.toml"),
            text: text.clone(),
        }],
        sql_roots: Vec::new(),
    };
    let catalog = crate::engine::read_catalog(db)
        .await
        .map_err(|e| Error::Database(format!("cannot read the database's tables: {e}")))?;
    let ctx = crate::semantic::LoadContext {
        catalog: Some(catalog),
        ..Default::default()
    };
    crate::semantic::load_sources_with(&[source], &ctx).map_err(|e| {
        Error::Config(format!(
            "the scaffolded model does not validate (please report this): {e}"
        ))
    })?;
    let dir = out.join(model);
    let path = dir.join("model.toml");
    if path.exists() {
        return Err(Error::Input(format!(
            "{} exists already: tally init does not overwrite a model",
            path.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        context: format!("cannot create {}", dir.display()),
        source,
    })?;
    std::fs::write(&path, text).map_err(|source| Error::Io {
        context: format!("cannot write {}", path.display()),
        source,
    })?;
    Ok((path, tables.len()))
}

async fn rows(
    db: &DatabaseConnection,
    sql: &str,
    namespace: &str,
) -> Result<Vec<Vec<Option<String>>>, Error> {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, [namespace.into()]);
    let result = db
        .query_all_raw(stmt)
        .await
        .map_err(|e| Error::Database(format!("cannot read the database's catalogue: {e}")))?;
    result
        .iter()
        .map(|r| {
            (0..r.column_names().len())
                .map(|i| {
                    r.try_get_by_index::<Option<String>>(i)
                        .map_err(|e| Error::Database(format!("reading the catalogue: {e}")))
                })
                .collect()
        })
        .collect()
}

async fn read_tables(
    db: &DatabaseConnection,
    namespace: &str,
) -> Result<BTreeMap<String, TableInfo>, Error> {
    let dialect = crate::sql::dialect_of(db);
    let catalog = crate::engine::read_catalog(db)
        .await
        .map_err(|e| Error::Database(format!("cannot read the database's tables: {e}")))?;
    let q = dialect.introspection();
    let mut tables: BTreeMap<String, TableInfo> = BTreeMap::new();
    // the catalog lists every namespace: keep this one's tables
    for name in catalog.tables_in(namespace) {
        if let Some(cols) = catalog.columns(namespace, &name) {
            tables.entry(name).or_default().columns = cols.to_vec();
        }
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    for r in rows(db, q.primary_keys, namespace).await? {
        if let Some(t) = tables.get_mut(&text(&r[0])) {
            t.key.push(text(&r[1]));
        }
    }
    for r in rows(db, q.unique_columns, namespace).await? {
        if let Some(t) = tables.get_mut(&text(&r[0])) {
            t.unique.insert(text(&r[1]));
        }
    }
    for r in rows(db, q.foreign_keys, namespace).await? {
        if let Some(t) = tables.get_mut(&text(&r[0])) {
            let e = t
                .foreign
                .entry(text(&r[4]))
                .or_insert_with(|| (Vec::new(), text(&r[2]), Vec::new()));
            e.0.push(text(&r[1]));
            e.2.push(text(&r[3]));
        }
    }
    for r in rows(db, q.comments, namespace).await? {
        if let Some(t) = tables.get_mut(&text(&r[0])) {
            let comment = text(&r[2]);
            match &r[1] {
                Some(c) => {
                    t.column_comments.insert(c.clone(), comment);
                }
                None => t.comment = Some(comment),
            }
        }
    }
    Ok(tables)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Field names already taken in the model (dimensions and metrics share one namespace).
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    /// `preferred` when free, else `fallback` (made unique with a number).
    fn take(&mut self, preferred: &str, fallback: &str) -> String {
        let mut name = camel_case(preferred);
        if self.0.contains(&name) || matches!(name.as_str(), "isComplete" | "and" | "or" | "not") {
            name = camel_case(fallback);
        }
        let base = name.clone();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

fn describe(comment: Option<&String>, what: &str) -> String {
    match comment.map(|c| c.trim()).filter(|c| !c.is_empty()) {
        Some(c) => c.to_owned(),
        None => format!("{TODO} describe {what}"),
    }
}

fn render(model: &str, namespace: &str, tables: &BTreeMap<String, TableInfo>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# The model `{model}`, scaffolded by `tally init` from the tables of {namespace:?}.\n\
         # Edit freely: descriptions starting with {TODO:?} are placeholders (the validator warns\n\
         # about them); column types come from the database when tally serves.\n"
    );
    let _ = writeln!(t, "[model]\nname = {}", quote(model));
    let _ = writeln!(
        t,
        "description = {}",
        quote(&format!("{TODO} describe the model {model}"))
    );
    if namespace != model {
        let _ = writeln!(t, "namespace = {}", quote(namespace));
    }
    // only tables whose names are identifiers can be modelled
    let modelled: BTreeMap<&String, &TableInfo> = tables
        .iter()
        .filter(|(name, info)| {
            is_ident(name)
                && !info.columns.is_empty()
                && info.columns.iter().all(|(c, _)| is_ident(c))
        })
        .collect();
    let skipped: Vec<&String> = tables
        .keys()
        .filter(|n| !modelled.contains_key(n))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            t,
            "# not modelled (names that are not lower-case identifiers): {}",
            skipped
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut names = Names::default();
    let mut dims = String::new();
    let mut measures = String::new();
    let mut metrics = String::new();
    let mut joins = String::new();
    for (name, info) in &modelled {
        let key = table_key(info);
        let time = info
            .columns
            .iter()
            .find(|(_, ty)| *ty == ColType::Time)
            .map(|(c, _)| c.clone());
        let _ = writeln!(t, "\n[[table]]\nname = {}", quote(name));
        let _ = writeln!(t, "key = {}", list(&key));
        match &time {
            Some(c) => {
                let _ = writeln!(t, "as_of = {{ kind = \"event\", time = {} }}", quote(c));
            }
            None => {
                let _ = writeln!(t, "as_of = {{ kind = \"static\" }}");
            }
        }
        let _ = writeln!(
            t,
            "description = {}",
            quote(&describe(
                info.comment.as_ref(),
                &format!("the table {name}")
            ))
        );
        let foreign_cols: BTreeSet<&String> = info
            .foreign
            .values()
            .flat_map(|(cols, _, _)| cols)
            .collect();
        // joins: one per foreign key to a modelled table, the first one per target (a second
        // path to the same table would be ambiguous: declare another logical table for it)
        let mut targets = BTreeSet::new();
        for (constraint, (cols, target, target_cols)) in &info.foreign {
            let Some(tinfo) = modelled.get(target) else {
                continue;
            };
            if target == *name || !targets.insert(target.clone()) {
                let _ = writeln!(
                    joins,
                    "\n# {constraint}: {name} → {target} is not joined (a second path to {target}, or a self-reference)"
                );
                continue;
            }
            // a many_to_one join must cover the target's key
            if table_key(tinfo) != *target_cols {
                continue;
            }
            let unique = (cols.len() == 1 && info.unique.contains(&cols[0])) || key == *cols;
            let on: Vec<String> = cols
                .iter()
                .zip(target_cols)
                .map(|(a, b)| format!("[{}, {}]", quote(a), quote(b)))
                .collect();
            let _ = writeln!(
                joins,
                "\n[[join]]\nfrom = {}\nto = {}\non = [{}]\ncardinality = \"{}\"",
                quote(name),
                quote(target),
                on.join(", "),
                if unique { "one_to_one" } else { "many_to_one" }
            );
        }
        // a row count per table
        let count = format!("{name}_rows");
        let _ = writeln!(
            measures,
            "\n[[measure]]\nname = {}\ntable = {}\nagg = \"count\"\ndescription = {}",
            quote(&count),
            quote(name),
            quote(&format!("Rows of {name}."))
        );
        let metric = names.take(&format!("{name}_count"), &format!("{name}_row_count"));
        let _ = writeln!(
            metrics,
            "\n[[metric]]\nname = {}\nmeasure = {}\nunit = \"count\"\ndescription = {}",
            quote(&metric),
            quote(&count),
            quote(&format!("How many rows of {name} there are."))
        );
        for (col, ty) in &info.columns {
            let col_comment = info.column_comments.get(col);
            let is_id = key.contains(col) || foreign_cols.contains(col) || col.ends_with("_id");
            match ty {
                ColType::Int | ColType::Decimal | ColType::Float if !is_id => {
                    let m = format!("{name}_{col}");
                    let _ = writeln!(
                        measures,
                        "\n[[measure]]\nname = {}\ntable = {}\nagg = \"sum\"\nexpr = {}\ndescription = {}",
                        quote(&m),
                        quote(name),
                        quote(col),
                        quote(&format!("Sum of {name}.{col}."))
                    );
                    let metric =
                        names.take(&format!("total_{col}"), &format!("{name}_{col}_total"));
                    let _ = writeln!(
                        metrics,
                        "\n[[metric]]\nname = {}\nmeasure = {}\nunit = \"number\"\ndescription = {}",
                        quote(&metric),
                        quote(&m),
                        quote(&describe(col_comment, &format!("the sum of {name}.{col}")))
                    );
                }
                ColType::String | ColType::Int if is_id => {
                    let m = format!("{name}_distinct_{col}");
                    let _ = writeln!(
                        measures,
                        "\n[[measure]]\nname = {}\ntable = {}\nagg = \"count_distinct\"\nexpr = {}\ndescription = {}",
                        quote(&m),
                        quote(name),
                        quote(col),
                        quote(&format!("Distinct {name}.{col}."))
                    );
                    let metric = names.take(
                        &format!("distinct_{col}s"),
                        &format!("{name}_distinct_{col}s"),
                    );
                    let _ = writeln!(
                        metrics,
                        "\n[[metric]]\nname = {}\nmeasure = {}\nunit = \"count\"\ndescription = {}",
                        quote(&metric),
                        quote(&m),
                        quote(&format!("How many distinct {col} values {name} has."))
                    );
                    if *ty == ColType::String {
                        push_dimension(&mut dims, &mut names, name, col, "string", col_comment);
                    }
                }
                ColType::String => {
                    push_dimension(&mut dims, &mut names, name, col, "string", col_comment);
                }
                ColType::Bool => {
                    push_dimension(&mut dims, &mut names, name, col, "boolean", col_comment);
                }
                ColType::Time => {
                    push_dimension(&mut dims, &mut names, name, col, "time", col_comment);
                }
                _ => {}
            }
        }
    }
    t.push_str(&joins);
    t.push_str(&dims);
    t.push_str(&measures);
    t.push_str(&metrics);
    t
}

fn push_dimension(
    out: &mut String,
    names: &mut Names,
    table: &str,
    col: &str,
    ty: &str,
    comment: Option<&String>,
) {
    let name = names.take(col, &format!("{table}_{col}"));
    let _ = writeln!(
        out,
        "\n[[dimension]]\nname = {}\ntable = {}\nexpr = {}\ntype = \"{ty}\"\ndescription = {}",
        quote(&name),
        quote(table),
        quote(col),
        quote(&describe(comment, &format!("{table}.{col}")))
    );
}

/// The key: the primary key, else a single unique column, else every column.
fn table_key(info: &TableInfo) -> Vec<String> {
    if !info.key.is_empty() {
        return info.key.clone();
    }
    if let Some(u) = info.columns.iter().find(|(c, _)| info.unique.contains(c)) {
        return vec![u.0.clone()];
    }
    info.columns.iter().map(|(c, _)| c.clone()).collect()
}
