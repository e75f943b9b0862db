//! From parsed model files to validated [`Model`]s, collecting every problem with `file:line`.

mod time_axis;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use toml::Spanned;

use super::columns::{ColType, is_shipped_namespace, physical_columns, physical_not_null};
use super::expr::{Expr, ExprType};
use super::file::{RawFile, line_of};
use super::{
    Agg, AsOf, Cardinality, Conversion, ConversionCalc, ConversionFilter, ConversionWindow,
    DimType, Dimension, Granularity, Join, LoadContext, Measure, Metric, MetricKind, Model,
    ModelErrors, ModelSource, Policy, Problem, RetentionEvent, RowColumn, RowsField, Shift,
    SqlConst, Table, TableSource, TimeStorage, Unit,
};

/// Problems found so far, and where to report them.
struct Report {
    problems: Vec<Problem>,
}

impl Report {
    fn at(&mut self, file: &str, text: &str, offset: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_owned(),
            line: line_of(text, offset),
            message: message.into(),
        });
    }
}

/// A parsed file and its text.
struct Parsed<'a> {
    path: &'a str,
    text: &'a str,
    raw: RawFile,
}

/// A place in a file, for reporting later.
#[derive(Clone, Copy)]
struct Loc<'a> {
    path: &'a str,
    text: &'a str,
    offset: usize,
}

impl<'a> Loc<'a> {
    fn of<T>(p: &Parsed<'a>, s: &Spanned<T>) -> Loc<'a> {
        Loc {
            path: p.path,
            text: p.text,
            offset: s.span().start,
        }
    }
    fn report(&self, r: &mut Report, message: impl Into<String>) {
        r.at(self.path, self.text, self.offset, message);
    }
}

/// Validates every model source; all problems of all models are returned together.
pub(crate) fn build_all(
    sources: &[ModelSource],
    ctx: &LoadContext,
) -> Result<Vec<Model>, ModelErrors> {
    let mut report = Report {
        problems: Vec::new(),
    };
    let mut models = Vec::new();
    for source in sources {
        if let Some(m) = build_one(source, ctx, &mut report) {
            if models.iter().any(|x: &Model| x.name == m.name) {
                report.problems.push(Problem {
                    file: source
                        .files
                        .first()
                        .map(|f| f.path.clone())
                        .unwrap_or_default(),
                    line: 1,
                    message: format!("model {:?} is defined twice", m.name),
                });
            } else {
                models.push(m);
            }
        }
    }
    if report.problems.is_empty() {
        Ok(models)
    } else {
        Err(ModelErrors {
            problems: report.problems,
        })
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_field_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && !matches!(s, "and" | "or" | "not")
}

/// Field names of a model's object that row fields may not take: `metrics`, and the
/// lifecycle fields of the saas model, and the funnel fields.
pub(crate) const RESERVED_ROW_FIELDS: [&str; 7] = [
    "metrics",
    "stageCounts",
    "journey",
    "transitions",
    "users",
    "funnel",
    "funnelSankey",
];

/// Field names of every metrics row that dimensions and metrics may not take.
pub(crate) const RESERVED_FIELDS: [&str; 1] = ["isComplete"];

fn build_one(source: &ModelSource, ctx: &LoadContext, r: &mut Report) -> Option<Model> {
    let before = r.problems.len();
    let mut parsed = Vec::new();
    for f in &source.files {
        match toml::from_str::<RawFile>(&f.text) {
            Ok(raw) => parsed.push(Parsed {
                path: &f.path,
                text: &f.text,
                raw,
            }),
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                r.at(&f.path, &f.text, offset, e.message().to_owned());
            }
        }
    }
    // [model]
    let mut header = None;
    for p in &parsed {
        if let Some(m) = &p.raw.model {
            if header.is_some() {
                Loc::of(p, m).report(r, "a second [model] section (one per model folder)");
            } else {
                header = Some((p, m));
            }
        }
    }
    let Some((hp, hm)) = header else {
        let file = source.files.first();
        r.problems.push(Problem {
            file: file
                .map(|f| f.path.clone())
                .unwrap_or_else(|| source.folder.clone()),
            line: 1,
            message: "no [model] section with the model's name and description".to_owned(),
        });
        return None;
    };
    let m = hm.get_ref();
    let name = m.name.get_ref().clone();
    if !is_ident(&name) {
        Loc::of(hp, &m.name).report(
            r,
            format!("model name {name:?} is not a lower-case identifier"),
        );
    }
    let description = m.description.clone().unwrap_or_default();
    if description.trim().is_empty() {
        Loc::of(hp, hm).report(r, "the model needs a description");
    }
    let namespace = ctx
        .namespaces
        .get(&name)
        .cloned()
        .or_else(|| m.namespace.as_ref().map(|n| n.get_ref().clone()))
        .unwrap_or_else(|| name.clone());
    if !is_ident(&namespace) {
        Loc::of(hp, hm).report(r, format!("namespace {namespace:?} is not an identifier"));
    }

    // Settings: a table named after the model (`[saas]`), constants for SQL tables.
    let mut settings: BTreeMap<String, toml::Value> = BTreeMap::new();
    for p in &parsed {
        for (key, value) in &p.raw.settings {
            let offset = p.text.find(&format!("[{key}]")).unwrap_or(0);
            if *key != name {
                r.at(
                    p.path,
                    p.text,
                    offset,
                    format!("unknown section [{key}] (model settings go in [{name}])"),
                );
                continue;
            }
            match value.as_table() {
                Some(t) => {
                    for (k, v) in t {
                        settings.insert(k.clone(), v.clone());
                    }
                }
                None => r.at(p.path, p.text, offset, format!("[{name}] must be a table")),
            }
        }
    }
    let place = Place {
        model: &name,
        namespace: &namespace,
        ctx,
    };
    let tables = build_tables(source, &parsed, &place, &settings, r);
    let joins = build_joins(&parsed, &tables, r);
    // SQLite SQL tables that read the offsets table need its zones filled before they run
    let reads_tz_offsets = tables.iter().any(|t| match &t.source {
        TableSource::Sql { sqlite, .. } => sqlite.contains(super::TZ_OFFSETS_TABLE),
        TableSource::Physical { .. } => false,
    });
    let policies = build_policies(&parsed, &place, r);
    // a SQL table must name every table with a policy so the rewrite finds it
    for t in &tables {
        if let TableSource::Sql {
            postgres, sqlite, ..
        } = &t.source
        {
            for p in &policies {
                let mut found = super::unfiltered_reads(postgres, &p.namespace, &p.table);
                for m in super::unfiltered_reads(sqlite, &p.namespace, &p.table) {
                    if !found.contains(&m) {
                        found.push(m);
                    }
                }
                for m in found {
                    r.problems.push(Problem {
                        file: t.defined_at.0.clone(),
                        line: t.defined_at.1,
                        message: format!("sql table {:?} {m}", t.name),
                    });
                }
            }
        }
    }
    let mut model = Model {
        name,
        description,
        namespace,
        reads_tz_offsets,
        tables,
        joins,
        dimensions: Vec::new(),
        measures: Vec::new(),
        metrics: Vec::new(),
        conversion_variants: Vec::new(),
        default_variant: None,
        policies,
        funnels: Vec::new(),
        rollups: Vec::new(),
    };
    let dim_locs = build_dimensions(&parsed, &mut model, r);
    build_measures(&parsed, &mut model, r);
    build_metrics(&parsed, &mut model, r);
    check_paths(&model, &dim_locs, r);
    time_axis::build(&parsed, &mut model, r);
    for p in &parsed {
        for f in &p.raw.funnel {
            match super::funnel::build(f.get_ref(), &model) {
                Ok(funnel) => model.funnels.push(funnel),
                Err(problems) => {
                    for m in problems {
                        Loc::of(p, f).report(r, m);
                    }
                }
            }
        }
    }
    build_rollups(&parsed, &mut model, r);
    // conversion variants: every table and conversion metric that declares them declares
    // the same list and default
    let mut variants: Option<(Vec<String>, String)> = None;
    let mut check_variants = |v: Vec<String>, default: String, loc: Loc<'_>, r: &mut Report| {
        match &variants {
            None => variants = Some((v, default)),
            Some(prev) if *prev != (v, default) => loc.report(
                r,
                "every conversion_filter and conversion metric of a model lists the same variants, in the same order, with the same default",
            ),
            _ => {}
        }
    };
    for p in &parsed {
        for t in &p.raw.table {
            if let Some(cf) = &t.get_ref().conversion_filter {
                let c = cf.get_ref();
                check_variants(c.variants.clone(), c.default.clone(), Loc::of(p, cf), r);
            }
        }
        for m in &p.raw.metric {
            if let Some(v) = &m.get_ref().variants {
                let names: Vec<String> = v.get_ref().iter().map(|(n, _)| n.clone()).collect();
                let default = m
                    .get_ref()
                    .default_variant
                    .as_ref()
                    .map(|d| d.get_ref().clone())
                    .or_else(|| names.first().cloned())
                    .unwrap_or_default();
                check_variants(names, default, Loc::of(p, v), r);
            }
        }
    }
    if let Some((v, d)) = variants {
        model.conversion_variants = v;
        model.default_variant = Some(d);
    }
    (r.problems.len() == before).then_some(model)
}

/// Where a model's tables are looked for.
struct Place<'a> {
    /// The model's name: the qualifier its SQL files use for its own tables (`"gym"."dim_user"`).
    model: &'a str,
    /// Where its tables live.
    namespace: &'a str,
    ctx: &'a LoadContext,
}

impl Place<'_> {
    /// Whether tally keeps no state in the model's namespace.
    fn without_state(&self) -> bool {
        match &self.ctx.catalog {
            Some(c) => c.columns(self.namespace, super::STATE_TABLE).is_none(),
            None => self.ctx.without_state,
        }
    }

    /// A SQL file's text with the model's own qualifier pointed at its namespace.
    fn sql_text(&self, text: String) -> String {
        if self.namespace == self.model {
            text
        } else {
            crate::lexer::requalify(&text, self.model, self.namespace)
        }
    }
}

/// Tally's own tables that a model's SQL reads per user and a policy may name (the saas stage
/// history, kept in the model's namespace).
const STATE_TABLES: [&str; 1] = ["tally_stage_history"];

/// The `[[policy]]` sections: one per physical table, the table known, the condition read by
/// the lexer.
fn build_policies(parsed: &[Parsed<'_>], place: &Place<'_>, r: &mut Report) -> Vec<Policy> {
    let mut out: Vec<Policy> = Vec::new();
    for p in parsed {
        for sp in &p.raw.policy {
            let raw = sp.get_ref();
            let loc = Loc::of(p, &raw.table);
            let written = raw.table.get_ref();
            let (ns, table) = match written.split_once('.') {
                Some((ns, t)) => (ns.to_owned(), t.to_owned()),
                None => (place.namespace.to_owned(), written.clone()),
            };
            if !is_ident(&ns) || !is_ident(&table) {
                loc.report(
                    r,
                    format!(
                        "policy table {written:?} is not an identifier (or namespace.identifier)"
                    ),
                );
                continue;
            }
            let known = STATE_TABLES.contains(&table.as_str())
                || match &place.ctx.catalog {
                    Some(c) => c.columns(&ns, &table).is_some(),
                    None => physical_columns(&ns, &table).is_some() || !is_shipped_namespace(&ns),
                };
            if !known {
                loc.report(r, format!("policy: unknown table {ns}.{table}"));
                continue;
            }
            if out.iter().any(|x| x.table == table) {
                loc.report(
                    r,
                    format!("table {table:?} has a second policy (one condition per table)"),
                );
                continue;
            }
            if raw
                .description
                .as_deref()
                .is_some_and(|d| d.trim().is_empty())
            {
                Loc::of(p, sp).report(r, format!("policy of {table:?}: empty description"));
            }
            let text = raw.condition.get_ref();
            match super::parse_condition(text, place.model, place.namespace) {
                Ok(condition) => out.push(Policy {
                    namespace: ns,
                    table,
                    condition,
                    text: text.clone(),
                    defined_at: (p.path.to_owned(), line_of(p.text, sp.span().start)),
                }),
                Err(e) => {
                    Loc::of(p, &raw.condition).report(r, format!("policy of {ns}.{table}: {e}"))
                }
            }
        }
    }
    out
}

fn build_tables(
    source: &ModelSource,
    parsed: &[Parsed<'_>],
    place: &Place<'_>,
    settings: &BTreeMap<String, toml::Value>,
    r: &mut Report,
) -> Vec<Arc<Table>> {
    let namespace = place.namespace;
    let mut out: Vec<Arc<Table>> = Vec::new();
    for p in parsed {
        for st in &p.raw.table {
            let t = st.get_ref();
            let loc = Loc::of(p, st);
            let name = t.name.get_ref().clone();
            if !is_ident(&name) {
                Loc::of(p, &t.name).report(
                    r,
                    format!("table name {name:?} is not a lower-case identifier"),
                );
                continue;
            }
            if out.iter().any(|x| x.name == name) {
                Loc::of(p, &t.name).report(r, format!("table {name:?} is defined twice"));
                continue;
            }
            let description = t.description.clone().unwrap_or_default();
            if description.trim().is_empty() {
                loc.report(r, format!("table {name:?} needs a description"));
            }
            // physical tables: the columns the database (or the demo schema) declares NOT NULL
            let mut not_null = Vec::new();
            let (tsource, columns) = match (&t.physical, &t.sql) {
                (Some(_), Some(_)) => {
                    loc.report(
                        r,
                        format!("table {name:?} has both `physical` and `sql`: choose one"),
                    );
                    continue;
                }
                (None, Some(sql)) => {
                    let s = sql.get_ref();
                    let sloc = Loc::of(p, sql);
                    let (pg_file, lite_file) = match &s.without_state {
                        Some(w) if place.without_state() => (&w.postgres, &w.sqlite),
                        _ => (&s.postgres, &s.sqlite),
                    };
                    let pg = read_sql(source, pg_file, sloc, r).map(|t| place.sql_text(t));
                    let lite = read_sql(source, lite_file, sloc, r).map(|t| place.sql_text(t));
                    if let Some(w) = &s.without_state {
                        // both texts must exist and read, whichever is used here
                        let other = if place.without_state() {
                            [&s.postgres, &s.sqlite]
                        } else {
                            [&w.postgres, &w.sqlite]
                        };
                        for f in other {
                            let _ = read_sql(source, f, sloc, r);
                        }
                    }
                    let Some(cols) = &t.columns else {
                        loc.report(
                            r,
                            format!(
                                "sql table {name:?} needs `columns = {{ name = \"type\", … }}`"
                            ),
                        );
                        continue;
                    };
                    let mut columns = Vec::new();
                    for (c, ty) in cols.get_ref() {
                        match ColType::parse(ty) {
                            Some(ct) if is_ident(c) => columns.push((c.clone(), ct)),
                            Some(_) => Loc::of(p, cols).report(r, format!("column name {c:?} is not an identifier")),
                            None => Loc::of(p, cols).report(
                                r,
                                format!("column {c:?}: unknown type {ty:?} (string, int, decimal, float, bool, time, date, local_time, json)"),
                            ),
                        }
                    }
                    let mut params = Vec::new();
                    for text in &s.params {
                        match Expr::parse(text).and_then(|e| eval_setting(&e, settings)) {
                            Ok(v) => params.push(v),
                            Err(e) => {
                                sloc.report(r, format!("sql table {name:?}: params {text:?}: {e}"))
                            }
                        }
                    }
                    let n_params = 1 + s.params.len();
                    for (file, text) in [(pg_file, &pg), (lite_file, &lite)] {
                        if let Some(text) = text
                            && let Err(e) = check_sql_params(text, n_params)
                        {
                            sloc.report(r, format!("SQL file {file:?}: {e}"));
                        }
                    }
                    match (pg, lite) {
                        (Some(postgres), Some(sqlite)) => (
                            TableSource::Sql {
                                postgres: Arc::from(postgres),
                                sqlite: Arc::from(sqlite),
                                params,
                                without_state: s.without_state.is_some() && place.without_state(),
                            },
                            columns,
                        ),
                        _ => continue,
                    }
                }
                (phys, None) => {
                    let written = phys
                        .as_ref()
                        .map(|x| x.get_ref().clone())
                        .unwrap_or_else(|| name.clone());
                    let ploc = phys.as_ref().map(|x| Loc::of(p, x)).unwrap_or(loc);
                    // `physical = "analytics.dim_user"` names its namespace too
                    let (ns, physical) = match written.split_once('.') {
                        Some((ns, t)) => (ns.to_owned(), t.to_owned()),
                        None => (namespace.to_owned(), written.clone()),
                    };
                    if !is_ident(&physical) || !is_ident(&ns) {
                        ploc.report(
                            r,
                            format!("physical table {written:?} is not an identifier (or namespace.identifier)"),
                        );
                        continue;
                    }
                    let columns = match &place.ctx.catalog {
                        Some(catalog) => match catalog.columns(&ns, &physical) {
                            Some(c) => c.to_vec(),
                            None => {
                                ploc.report(r, format!("table {name:?}: the database has no table {ns}.{physical} (or tally's role cannot read it); name where it lives with `physical = \"namespace.table\"`, the model's `namespace`, or --namespace {}=NAMESPACE", place.model));
                                continue;
                            }
                        },
                        None => match physical_columns(&ns, &physical) {
                            Some(c) => c,
                            None if is_shipped_namespace(&ns) => {
                                ploc.report(r, format!("unknown table {ns}.{physical}"));
                                continue;
                            }
                            None => match &t.columns {
                                Some(cols) => cols
                                    .get_ref()
                                    .iter()
                                    .filter_map(|(c, ty)| {
                                        ColType::parse(ty).map(|t| (c.clone(), t))
                                    })
                                    .collect(),
                                None => {
                                    ploc.report(r, format!("table {ns}.{physical} is not a shipped table: list its `columns`, or load the models for a database (serve, query) to read them from it"));
                                    continue;
                                }
                            },
                        },
                    };
                    if t.columns.is_some() && is_shipped_namespace(&ns) {
                        loc.report(
                            r,
                            "`columns` is only for sql tables and tables tally does not ship",
                        );
                    }
                    not_null = match &place.ctx.catalog {
                        Some(catalog) => catalog.not_null(&ns, &physical),
                        None => physical_not_null(&ns, &physical).unwrap_or_default(),
                    };
                    (
                        TableSource::Physical {
                            namespace: ns,
                            table: physical,
                        },
                        columns,
                    )
                }
            };
            let has = |c: &str| columns.iter().any(|(x, _)| x == c);
            let col_type = |c: &str| columns.iter().find(|(x, _)| x == c).map(|(_, t)| *t);
            for k in &t.key {
                if !has(k) {
                    loc.report(r, format!("key column {k:?} is not a column of {name:?}"));
                }
            }
            let is_sql = matches!(tsource, TableSource::Sql { .. });
            let mut as_of_shift = None;
            if let Some(a) = &t.as_of
                && let Some(sh) = &a.get_ref().shift
            {
                match Shift::parse(sh) {
                    Some(x) => as_of_shift = Some(x),
                    None => Loc::of(p, a).report(
                        r,
                        format!("table {name:?}: shift {sh:?} is not like \"-1 month\" (back by hours, days, weeks, months, quarters or years)"),
                    ),
                }
            }
            let as_of = match (&t.as_of, is_sql) {
                (None, true) => AsOf::Sql,
                (None, false) => {
                    loc.report(r, format!("table {name:?} needs `as_of = {{ kind = … }}` (event, partition_ts, partition_ds, record, type2, static)"));
                    continue;
                }
                (Some(a), true) => {
                    if a.get_ref().kind != "sql" {
                        Loc::of(p, a).report(r, "a sql table receives asOf as $1: its as_of kind is \"sql\" (or leave it out)");
                    }
                    AsOf::Sql
                }
                (Some(a), false) => {
                    let aloc = Loc::of(p, a);
                    match parse_as_of(a.get_ref(), &col_type) {
                        Ok(x) => x,
                        Err(e) => {
                            aloc.report(r, format!("table {name:?}: {e}"));
                            continue;
                        }
                    }
                }
            };
            let conversion_filter = match &t.conversion_filter {
                None => None,
                Some(cf) => {
                    let c = cf.get_ref();
                    let cloc = Loc::of(p, cf);
                    if col_type(&c.column) != Some(ColType::String) {
                        cloc.report(
                            r,
                            format!(
                                "conversion_filter column {:?} is not a text column of {name:?}",
                                c.column
                            ),
                        );
                    }
                    if c.variants.is_empty() || !c.variants.contains(&c.default) {
                        cloc.report(r, "conversion_filter: `default` must be one of `variants`");
                    }
                    for v in &c.variants {
                        let ok = v.chars().next().is_some_and(|ch| ch.is_ascii_uppercase())
                            && v.chars().all(|ch| {
                                ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_'
                            });
                        if !ok {
                            cloc.report(r, format!("conversion variant {v:?} is not SHOUTY_SNAKE"));
                        }
                    }
                    Some(ConversionFilter {
                        column: c.column.clone(),
                        default: c.default.clone(),
                    })
                }
            };
            let rows = t.rows.as_ref().and_then(|rs| {
                let raw = rs.get_ref();
                let rloc = Loc::of(p, rs);
                if !is_field_name(&raw.field) || RESERVED_ROW_FIELDS.contains(&raw.field.as_str()) {
                    rloc.report(
                        r,
                        format!(
                            "rows field {:?} of table {name:?} is not a camelCase GraphQL field name free for rows (not {})",
                            raw.field,
                            RESERVED_ROW_FIELDS.join(", ")
                        ),
                    );
                    return None;
                }
                for c in &raw.order {
                    if !has(c) {
                        rloc.report(r, format!("rows order column {c:?} is not a column of {name:?}"));
                    }
                }
                let row_columns: Vec<RowColumn> = columns
                    .iter()
                    .filter(|(_, ty)| *ty != ColType::Json)
                    .map(|(c, ty)| {
                        let field = super::camel_case(c);
                        let (dim_type, time_storage) = match ty {
                            ColType::Int | ColType::Float | ColType::Decimal => {
                                (DimType::Number, TimeStorage::Instant)
                            }
                            ColType::Bool => (DimType::Boolean, TimeStorage::Instant),
                            ColType::Time => (DimType::Time, TimeStorage::Instant),
                            ColType::Date => (DimType::Time, TimeStorage::Date),
                            ColType::LocalTime => (DimType::Time, TimeStorage::Local),
                            ColType::String | ColType::Json => {
                                (DimType::String, TimeStorage::Instant)
                            }
                        };
                        RowColumn {
                            column: c.clone(),
                            field: field.clone(),
                            ty: *ty,
                            key: t.key.contains(c),
                            dimension: Dimension {
                                name: field,
                                table: name.clone(),
                                expr: Expr::Column(c.clone()),
                                dim_type,
                                granularities: Vec::new(),
                                time_storage,
                                description: format!("{c} of {name}"),
                                axis: Vec::new(),
                            },
                        }
                    })
                    .collect();
                let mut order = raw.order.clone();
                for k in &t.key {
                    if !order.contains(k) {
                        order.push(k.clone());
                    }
                }
                Some(RowsField {
                    field: raw.field.clone(),
                    description: raw
                        .description
                        .clone()
                        .unwrap_or_else(|| description.clone()),
                    columns: row_columns,
                    order,
                })
            });
            out.push(Arc::new(Table {
                name,
                source: tsource,
                key: t.key.clone(),
                as_of,
                description,
                columns,
                not_null,
                conversion_filter,
                rows,
                as_of_shift,
                defined_at: (p.path.to_owned(), line_of(p.text, st.span().start)),
            }));
        }
    }
    out
}

fn parse_as_of(
    a: &super::file::RawAsOf,
    col: &dyn Fn(&str) -> Option<ColType>,
) -> Result<AsOf, String> {
    let need = |what: &str, v: &Option<String>, types: &[ColType]| -> Result<String, String> {
        let c = v
            .clone()
            .ok_or_else(|| format!("as_of kind {:?} needs `{what}`", a.kind))?;
        match col(&c) {
            None => Err(format!("as_of {what}: {c:?} is not a column")),
            Some(t) if !types.contains(&t) => Err(format!(
                "as_of {what}: column {c:?} has the wrong type ({t:?})"
            )),
            Some(_) => Ok(c),
        }
    };
    let opt =
        |what: &str, v: &Option<String>, types: &[ColType]| -> Result<Option<String>, String> {
            match v {
                None => Ok(None),
                Some(_) => need(what, v, types).map(Some),
            }
        };
    let keys = |v: &Option<Vec<String>>| -> Result<Vec<String>, String> {
        let k = v.clone().unwrap_or_default();
        for c in &k {
            if col(c).is_none() {
                return Err(format!("as_of key: {c:?} is not a column"));
            }
        }
        Ok(k)
    };
    let unused = |fields: &[(&str, bool)]| -> Result<(), String> {
        for (f, present) in fields {
            if *present {
                return Err(format!("as_of kind {:?} takes no `{f}`", a.kind));
            }
        }
        Ok(())
    };
    let time_types = [ColType::Time];
    Ok(match a.kind.as_str() {
        "event" => {
            unused(&[
                ("key", a.key.is_some()),
                ("ts", a.ts.is_some()),
                ("ds", a.ds.is_some()),
                ("created", a.created.is_some()),
                ("updated", a.updated.is_some()),
            ])?;
            AsOf::Event {
                time: need("time", &a.time, &time_types)?,
            }
        }
        "partition_ts" => {
            unused(&[
                ("ds", a.ds.is_some()),
                ("created", a.created.is_some()),
                ("updated", a.updated.is_some()),
            ])?;
            AsOf::PartitionTs {
                ts: need(
                    "ts",
                    &Some(a.ts.clone().unwrap_or_else(|| "ts".to_owned())),
                    &[ColType::String],
                )?,
                time: opt("time", &a.time, &time_types)?,
                key: keys(&a.key)?,
            }
        }
        "partition_ds" => {
            unused(&[
                ("key", a.key.is_some()),
                ("ts", a.ts.is_some()),
                ("created", a.created.is_some()),
                ("updated", a.updated.is_some()),
            ])?;
            AsOf::PartitionDs {
                ds: need(
                    "ds",
                    &Some(a.ds.clone().unwrap_or_else(|| "ds".to_owned())),
                    &[ColType::Date],
                )?,
                time: opt("time", &a.time, &time_types)?,
            }
        }
        "record" => {
            unused(&[
                ("key", a.key.is_some()),
                ("ts", a.ts.is_some()),
                ("ds", a.ds.is_some()),
                ("updated", a.updated.is_some()),
            ])?;
            AsOf::Record {
                time: need("time", &a.time, &time_types)?,
                created: need("created", &a.created, &time_types)?,
            }
        }
        "type2" => {
            unused(&[
                ("time", a.time.is_some()),
                ("ts", a.ts.is_some()),
                ("ds", a.ds.is_some()),
                ("created", a.created.is_some()),
            ])?;
            let key = keys(&a.key)?;
            if key.is_empty() {
                return Err("as_of kind \"type2\" needs `key` (the business key)".to_owned());
            }
            AsOf::Type2 {
                key,
                updated: need("updated", &a.updated, &time_types)?,
            }
        }
        "static" => {
            unused(&[
                ("time", a.time.is_some()),
                ("key", a.key.is_some()),
                ("ts", a.ts.is_some()),
                ("ds", a.ds.is_some()),
                ("created", a.created.is_some()),
                ("updated", a.updated.is_some()),
            ])?;
            AsOf::Static
        }
        other => {
            return Err(format!(
                "unknown as_of kind {other:?} (event, partition_ts, partition_ds, record, type2, static)"
            ));
        }
    })
}

/// Reads a SQL file and strips its comments (its parameters are checked by
/// [`check_sql_params`]).
fn read_sql(source: &ModelSource, rel: &str, loc: Loc<'_>, r: &mut Report) -> Option<String> {
    match source.read_sql(rel) {
        Err(e) => {
            loc.report(r, e);
            None
        }
        Ok(text) => Some(strip_sql_comments(&text)),
    }
}

/// Checks that a SQL table's text reads `$1` (the as-of instant) and no parameter beyond
/// `$n` (`$2`… are the table's `params`), outside strings, quoted identifiers and comments;
/// a `$` that is no parameter there is rejected too.
pub(crate) fn check_sql_params(text: &str, n: usize) -> Result<(), String> {
    use crate::lexer::{TokenKind, tokens};
    let mut seen_1 = false;
    for t in tokens(text) {
        let bad = match t.kind {
            TokenKind::Placeholder(1) => {
                seen_1 = true;
                None
            }
            TokenKind::Placeholder(k) if k >= 2 && k <= n => None,
            TokenKind::Placeholder(_) => Some(t.text),
            TokenKind::Text if t.text.contains('$') => Some("$"),
            _ => None,
        };
        if let Some(p) = bad {
            return Err(if n == 1 {
                format!("its only parameter must be $1 (the as-of instant), not {p}")
            } else {
                format!("its parameters are $1 (the as-of instant) and $2..${n} (params), not {p}")
            });
        }
    }
    if seen_1 {
        Ok(())
    } else {
        Err("it never reads $1 (the as-of instant)".to_owned())
    }
}

/// The value of a SQL table's `params` entry: arithmetic over the model's settings.
fn eval_setting(e: &Expr, settings: &BTreeMap<String, toml::Value>) -> Result<SqlConst, String> {
    use super::expr::BinOp;
    Ok(match e {
        Expr::Int(n) => SqlConst::Int(*n),
        Expr::Float(f) => SqlConst::Float(*f),
        Expr::Str(s) => SqlConst::Text(s.clone()),
        Expr::Column(c) => match settings.get(c) {
            Some(toml::Value::Integer(n)) => SqlConst::Int(*n),
            Some(toml::Value::Float(f)) => SqlConst::Float(*f),
            Some(toml::Value::String(s)) => SqlConst::Text(s.clone()),
            Some(other) => {
                return Err(format!(
                    "setting {c:?} is a {}, not a number or text",
                    other.type_str()
                ));
            }
            None => {
                return Err(format!(
                    "unknown setting {c:?} (settings go in the model's own section, e.g. [saas])"
                ));
            }
        },
        Expr::Neg(a) => match eval_setting(a, settings)? {
            SqlConst::Int(n) => SqlConst::Int(-n),
            SqlConst::Float(f) => SqlConst::Float(-f),
            SqlConst::Text(_) => return Err("cannot negate text".to_owned()),
        },
        Expr::Binary(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div), a, b) => {
            let (a, b) = (eval_setting(a, settings)?, eval_setting(b, settings)?);
            match (a, b) {
                (SqlConst::Int(a), SqlConst::Int(b)) if *op != BinOp::Div => SqlConst::Int(
                    match op {
                        BinOp::Add => a.checked_add(b),
                        BinOp::Sub => a.checked_sub(b),
                        _ => a.checked_mul(b),
                    }
                    .ok_or("integer overflow")?,
                ),
                (a, b) => {
                    let f = |x: SqlConst| match x {
                        SqlConst::Int(n) => Ok(n as f64),
                        SqlConst::Float(f) => Ok(f),
                        SqlConst::Text(_) => Err("arithmetic over text".to_owned()),
                    };
                    let (a, b) = (f(a)?, f(b)?);
                    SqlConst::Float(match op {
                        BinOp::Add => a + b,
                        BinOp::Sub => a - b,
                        BinOp::Mul => a * b,
                        _ => a / b,
                    })
                }
            }
        }
        _ => return Err("params are numbers, 'text', setting names and + - * /".to_owned()),
    })
}

/// Removes `-- …` and `/* … */` comments outside string literals and quoted identifiers
/// (see [`crate::lexer`]), and blank lines; trims a trailing semicolon.
pub(crate) fn strip_sql_comments(text: &str) -> String {
    let out = crate::lexer::strip_comments(text);
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut s = lines.join("\n");
    while s.ends_with(';') {
        s.pop();
    }
    s
}

fn build_joins(parsed: &[Parsed<'_>], tables: &[Arc<Table>], r: &mut Report) -> Vec<Join> {
    let mut out = Vec::new();
    for p in parsed {
        for sj in &p.raw.join {
            let j = sj.get_ref();
            let loc = Loc::of(p, sj);
            let from = tables.iter().find(|t| t.name == *j.from.get_ref());
            let to = tables.iter().find(|t| t.name == *j.to.get_ref());
            if from.is_none() {
                Loc::of(p, &j.from)
                    .report(r, format!("join from unknown table {:?}", j.from.get_ref()));
            }
            if to.is_none() {
                Loc::of(p, &j.to).report(r, format!("join to unknown table {:?}", j.to.get_ref()));
            }
            let cardinality = match j.cardinality.get_ref().as_str() {
                "many_to_one" => Cardinality::ManyToOne,
                "one_to_one" => Cardinality::OneToOne,
                "one_to_many" => {
                    Loc::of(p, &j.cardinality).report(r, "one_to_many joins fan out: declare the join from the many side as many_to_one");
                    continue;
                }
                other => {
                    Loc::of(p, &j.cardinality).report(
                        r,
                        format!("unknown cardinality {other:?} (many_to_one, one_to_one)"),
                    );
                    continue;
                }
            };
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if j.on.is_empty() {
                loc.report(r, "a join needs `on = [[\"from column\", \"to column\"]]`");
            }
            for (a, b) in &j.on {
                if from.column_type(a).is_none() {
                    loc.report(
                        r,
                        format!("join on: {a:?} is not a column of {:?}", from.name),
                    );
                }
                if to.column_type(b).is_none() {
                    loc.report(
                        r,
                        format!("join on: {b:?} is not a column of {:?}", to.name),
                    );
                }
            }
            if cardinality == Cardinality::ManyToOne {
                let covers_key =
                    !to.key.is_empty() && to.key.iter().all(|k| j.on.iter().any(|(_, b)| b == k));
                let versioned = match &to.as_of {
                    AsOf::Type2 { key, .. } | AsOf::PartitionTs { key, .. } if !key.is_empty() => {
                        key.iter().all(|k| j.on.iter().any(|(_, b)| b == k))
                    }
                    _ => false,
                };
                if !covers_key && !versioned {
                    loc.report(
                        r,
                        format!(
                            "many_to_one join to {:?} does not cover its key {:?}: it could fan out",
                            to.name, to.key
                        ),
                    );
                }
            }
            out.push(Join {
                from: from.name.clone(),
                to: to.name.clone(),
                on: j.on.clone(),
                cardinality,
            });
        }
    }
    out
}

fn col_types(t: &Table) -> impl Fn(&str) -> Option<ExprType> + '_ {
    move |c| t.column_type(c).map(ExprType::of_col)
}

fn parse_expr(text: &Spanned<String>, loc: Loc<'_>, r: &mut Report, what: &str) -> Option<Expr> {
    match Expr::parse(text.get_ref()) {
        Ok(e) => Some(e),
        Err(e) => {
            loc.report(r, format!("{what}: {e}"));
            None
        }
    }
}

fn build_dimensions<'a>(
    parsed: &'a [Parsed<'a>],
    model: &mut Model,
    r: &mut Report,
) -> HashMap<String, Loc<'a>> {
    let mut locs = HashMap::new();
    for p in parsed {
        for sd in &p.raw.dimension {
            let d = sd.get_ref();
            let loc = Loc::of(p, sd);
            let name = d.name.get_ref().clone();
            if !is_field_name(&name) {
                Loc::of(p, &d.name).report(
                    r,
                    format!("dimension name {name:?} is not a camelCase GraphQL field name"),
                );
                continue;
            }
            if model.dimensions.iter().any(|x| x.name == name) {
                Loc::of(p, &d.name).report(r, format!("dimension {name:?} is defined twice"));
                continue;
            }
            if RESERVED_FIELDS.contains(&name.as_str()) {
                Loc::of(p, &d.name).report(
                    r,
                    format!("{name:?} is a field of every metrics row: choose another name"),
                );
                continue;
            }
            let description = d.description.clone().unwrap_or_default();
            if description.trim().is_empty() {
                loc.report(r, format!("dimension {name:?} needs a description"));
            }
            let Some(table) = model.table(d.table.get_ref()) else {
                Loc::of(p, &d.table).report(
                    r,
                    format!("dimension {name:?}: unknown table {:?}", d.table.get_ref()),
                );
                continue;
            };
            let expr = match &d.expr {
                Some(e) => match parse_expr(e, Loc::of(p, e), r, &format!("dimension {name:?}")) {
                    Some(x) => x,
                    None => continue,
                },
                None => Expr::Column(name.clone()),
            };
            let eloc = d.expr.as_ref().map(|e| Loc::of(p, e)).unwrap_or(loc);
            let inferred = match expr.infer(&col_types(table)) {
                Ok(t) => t,
                Err(e) => {
                    eloc.report(
                        r,
                        format!("dimension {name:?} on table {:?}: {e}", table.name),
                    );
                    continue;
                }
            };
            let tloc = Loc::of(p, &d.dim_type);
            let dim_type = match d.dim_type.get_ref().as_str() {
                "string" => DimType::String,
                "number" => DimType::Number,
                "boolean" => DimType::Boolean,
                "time" => DimType::Time,
                other => {
                    tloc.report(r, format!("dimension {name:?}: unknown type {other:?} (string, number, boolean, time)"));
                    continue;
                }
            };
            let fits = match dim_type {
                DimType::String => inferred == ExprType::String,
                DimType::Number => inferred == ExprType::Number,
                DimType::Boolean => inferred == ExprType::Bool,
                DimType::Time => inferred.is_time(),
            };
            if !fits {
                tloc.report(
                    r,
                    format!(
                        "dimension {name:?} is declared {} but its expression is a {inferred:?}",
                        dim_type.as_str()
                    ),
                );
                continue;
            }
            let time_storage = match inferred {
                ExprType::Date => TimeStorage::Date,
                ExprType::LocalTime => TimeStorage::Local,
                _ => TimeStorage::Instant,
            };
            let granularities = match (&d.granularities, dim_type) {
                (None, DimType::Time) => Granularity::ALL.to_vec(),
                (None, _) => Vec::new(),
                (Some(g), DimType::Time) => {
                    let mut out = Vec::new();
                    for s in g.get_ref() {
                        match Granularity::parse(s) {
                            Some(x) => out.push(x),
                            None => Loc::of(p, g).report(r, format!("dimension {name:?}: unknown granularity {s:?} (hour, day, week, month, quarter, year)")),
                        }
                    }
                    if out.is_empty() {
                        Loc::of(p, g).report(r, format!("dimension {name:?}: no granularity"));
                    }
                    out.sort();
                    out
                }
                (Some(g), _) => {
                    Loc::of(p, g).report(
                        r,
                        format!(
                            "dimension {name:?} is not a time dimension: it takes no granularities"
                        ),
                    );
                    Vec::new()
                }
            };
            if dim_type == DimType::Time
                && time_storage == TimeStorage::Date
                && granularities.contains(&Granularity::Hour)
                && d.granularities.is_some()
            {
                loc.report(
                    r,
                    format!("dimension {name:?} is a date: it has no hour granularity"),
                );
            }
            let granularities = if time_storage == TimeStorage::Date {
                granularities
                    .into_iter()
                    .filter(|g| *g != Granularity::Hour)
                    .collect()
            } else {
                granularities
            };
            locs.insert(name.clone(), loc);
            model.dimensions.push(Dimension {
                name,
                table: table.name.clone(),
                expr,
                dim_type,
                granularities,
                time_storage,
                description,
                axis: Vec::new(),
            });
        }
    }
    locs
}

fn build_measures(parsed: &[Parsed<'_>], model: &mut Model, r: &mut Report) {
    for p in parsed {
        for sm in &p.raw.measure {
            let m = sm.get_ref();
            let loc = Loc::of(p, sm);
            let name = m.name.get_ref().clone();
            if !is_ident(&name) {
                Loc::of(p, &m.name).report(
                    r,
                    format!("measure name {name:?} is not a snake_case identifier"),
                );
                continue;
            }
            if model.measures.iter().any(|x| x.name == name) {
                Loc::of(p, &m.name).report(r, format!("measure {name:?} is defined twice"));
                continue;
            }
            let description = m.description.clone().unwrap_or_default();
            if description.trim().is_empty() {
                loc.report(r, format!("measure {name:?} needs a description"));
            }
            let Some(table) = model.table(m.table.get_ref()).cloned() else {
                Loc::of(p, &m.table).report(
                    r,
                    format!("measure {name:?}: unknown table {:?}", m.table.get_ref()),
                );
                continue;
            };
            let table = &table;
            let agg = match m.agg.get_ref().as_str() {
                "count" => Agg::Count,
                "count_distinct" => Agg::CountDistinct,
                "sum" => Agg::Sum,
                "avg" => Agg::Avg,
                "min" => Agg::Min,
                "max" => Agg::Max,
                "median" => Agg::Median,
                other => {
                    Loc::of(p, &m.agg).report(r, format!("measure {name:?}: unknown agg {other:?} (count, count_distinct, sum, avg, min, max, median)"));
                    continue;
                }
            };
            let cols = col_types(table);
            let expr = match &m.expr {
                None if agg == Agg::Count => None,
                None => {
                    loc.report(
                        r,
                        format!("measure {name:?}: {} needs an `expr`", agg.as_str()),
                    );
                    continue;
                }
                Some(e) => {
                    let eloc = Loc::of(p, e);
                    let Some(x) = parse_expr(e, eloc, r, &format!("measure {name:?}")) else {
                        continue;
                    };
                    match x.infer(&cols) {
                        Err(err) => {
                            eloc.report(
                                r,
                                format!("measure {name:?} on table {:?}: {err}", table.name),
                            );
                            continue;
                        }
                        Ok(t) => {
                            let numeric = matches!(agg, Agg::Sum | Agg::Avg | Agg::Median);
                            if numeric && t != ExprType::Number {
                                eloc.report(r, format!("measure {name:?}: {} over a {t:?} expression (it needs a number)", agg.as_str()));
                                continue;
                            }
                            if matches!(agg, Agg::Min | Agg::Max) && t != ExprType::Number {
                                eloc.report(
                                    r,
                                    format!(
                                        "measure {name:?}: {} is offered over numbers only",
                                        agg.as_str()
                                    ),
                                );
                                continue;
                            }
                        }
                    }
                    Some(x)
                }
            };
            let filter = match &m.filter {
                None => None,
                Some(f) => {
                    let floc = Loc::of(p, f);
                    let Some(x) = parse_expr(f, floc, r, &format!("measure {name:?} filter"))
                    else {
                        continue;
                    };
                    match x.infer(&cols) {
                        Ok(ExprType::Bool) => Some(x),
                        Ok(t) => {
                            floc.report(
                                r,
                                format!("measure {name:?}: the filter is a {t:?}, not a condition"),
                            );
                            continue;
                        }
                        Err(err) => {
                            floc.report(
                                r,
                                format!("measure {name:?} filter on table {:?}: {err}", table.name),
                            );
                            continue;
                        }
                    }
                }
            };
            model.measures.push(Measure {
                name,
                table: table.name.clone(),
                agg,
                expr,
                filter,
                description,
            });
        }
    }
}

/// Parses a window: `"30 days"`, `"2 hours"`, `"1 week"`, `"90 minutes"`; `None` when it
/// is not one (or not positive).
pub(super) fn parse_window(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace();
    let n: i64 = parts.next()?.parse().ok()?;
    let unit = parts.next()?;
    if parts.next().is_some() || n <= 0 {
        return None;
    }
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        _ => return None,
    };
    Some(n * secs)
}

fn build_rollups(parsed: &[Parsed<'_>], model: &mut Model, r: &mut Report) {
    let mut rollups: Vec<super::Rollup> = Vec::new();
    for p in parsed {
        for raw in &p.raw.rollup {
            let defined_at = (p.path.to_owned(), line_of(p.text, raw.span().start));
            let mut report = |offset: usize, message: String| r.at(p.path, p.text, offset, message);
            if let Some(x) = super::rollup::build(raw, model, defined_at, &mut report) {
                if rollups.iter().any(|y| y.name == x.name) {
                    Loc::of(p, &raw.get_ref().name)
                        .report(r, format!("rollup {:?} is defined twice", x.name));
                } else {
                    rollups.push(x);
                }
            }
        }
    }
    model.rollups = rollups;
}

fn build_metrics(parsed: &[Parsed<'_>], model: &mut Model, r: &mut Report) {
    // First pass: names, so that metrics can reference later ones.
    let mut names: BTreeMap<String, ()> = BTreeMap::new();
    for p in parsed {
        for sm in &p.raw.metric {
            names.insert(sm.get_ref().name.get_ref().clone(), ());
        }
    }
    let mut locs: HashMap<String, Loc<'_>> = HashMap::new();
    for p in parsed {
        for sm in &p.raw.metric {
            let m = sm.get_ref();
            let loc = Loc::of(p, sm);
            let name = m.name.get_ref().clone();
            let nloc = Loc::of(p, &m.name);
            if !is_field_name(&name) {
                nloc.report(
                    r,
                    format!("metric name {name:?} is not a camelCase GraphQL field name"),
                );
                continue;
            }
            if model.metrics.iter().any(|x| x.name == name) || locs.contains_key(&name) {
                nloc.report(r, format!("metric {name:?} is defined twice"));
                continue;
            }
            if model.dimension(&name).is_some() {
                nloc.report(
                    r,
                    format!("metric {name:?} clashes with the dimension of the same name"),
                );
                continue;
            }
            if RESERVED_FIELDS.contains(&name.as_str()) {
                nloc.report(
                    r,
                    format!("{name:?} is a field of every metrics row: choose another name"),
                );
                continue;
            }
            let description = m.description.clone().unwrap_or_default();
            if description.trim().is_empty() {
                loc.report(r, format!("metric {name:?} needs a description"));
            }
            let unit = match m.unit.get_ref().as_str() {
                "count" => Unit::Count,
                "percent" => Unit::Percent,
                "ratio" => Unit::Ratio,
                "currency" => Unit::Currency,
                "duration_days" => Unit::DurationDays,
                "duration_seconds" => Unit::DurationSeconds,
                "number" => Unit::Number,
                other => {
                    Loc::of(p, &m.unit).report(r, format!("metric {name:?}: unknown unit {other:?} (count, percent, ratio, currency, duration_days, duration_seconds, number)"));
                    continue;
                }
            };
            let kind_name = m
                .kind
                .as_ref()
                .map(|k| k.get_ref().as_str())
                .unwrap_or("simple");
            let measure_ref = |r: &mut Report| -> Option<String> {
                let Some(ms) = &m.measure else {
                    loc.report(r, format!("metric {name:?} ({kind_name}) needs `measure`"));
                    return None;
                };
                if model.measure(ms.get_ref()).is_none() {
                    Loc::of(p, ms).report(
                        r,
                        format!("metric {name:?}: unknown measure {:?}", ms.get_ref()),
                    );
                    return None;
                }
                Some(ms.get_ref().clone())
            };
            let metric_ref =
                |r: &mut Report, field: &Option<Spanned<String>>, what: &str| -> Option<String> {
                    let Some(x) = field else {
                        loc.report(r, format!("metric {name:?} needs `{what}`"));
                        return None;
                    };
                    if !names.contains_key(x.get_ref()) {
                        Loc::of(p, x).report(
                            r,
                            format!(
                                "metric {name:?}: unknown metric {:?} as {what}",
                                x.get_ref()
                            ),
                        );
                        return None;
                    }
                    Some(x.get_ref().clone())
                };
            let kind = match kind_name {
                "simple" => match measure_ref(r) {
                    Some(measure) => {
                        if unit == Unit::Count
                            && model.measure(&measure).is_some_and(|x| {
                                !matches!(x.agg, Agg::Count | Agg::CountDistinct | Agg::Sum)
                            })
                        {
                            loc.report(
                                r,
                                format!("metric {name:?}: unit count needs a count or sum measure"),
                            );
                        }
                        MetricKind::Simple { measure }
                    }
                    None => continue,
                },
                "ratio" => {
                    let n = metric_ref(r, &m.numerator, "numerator");
                    let d = metric_ref(r, &m.denominator, "denominator");
                    match (n, d) {
                        (Some(numerator), Some(denominator)) => MetricKind::Ratio {
                            numerator,
                            denominator,
                        },
                        _ => continue,
                    }
                }
                "derived" => {
                    let Some(e) = &m.expr else {
                        loc.report(r, format!("metric {name:?} (derived) needs `expr`"));
                        continue;
                    };
                    let eloc = Loc::of(p, e);
                    let Some(x) = parse_expr(e, eloc, r, &format!("metric {name:?}")) else {
                        continue;
                    };
                    if !x.is_arithmetic() {
                        eloc.report(r, format!("metric {name:?}: a derived expression is arithmetic (+ - * /) over metric names and numbers"));
                        continue;
                    }
                    let mut bad = false;
                    for id in x.identifiers() {
                        if !names.contains_key(&id) {
                            eloc.report(r, format!("metric {name:?}: unknown metric {id:?}"));
                            bad = true;
                        }
                    }
                    if bad {
                        continue;
                    }
                    MetricKind::Derived { expr: x }
                }
                "cumulative" => {
                    let Some(measure) = measure_ref(r) else {
                        continue;
                    };
                    if model
                        .measure(&measure)
                        .is_some_and(|x| !x.agg.is_additive() && x.agg != Agg::CountDistinct)
                    {
                        loc.report(r, format!("metric {name:?}: a cumulative metric needs a count, sum or count_distinct measure"));
                        continue;
                    }
                    let Some(td) = time_dimension_of(p, m, &name, "cumulative", loc, model, r)
                    else {
                        continue;
                    };
                    let window_seconds = match &m.window {
                        None => None,
                        Some(w) if w.get_ref() == "none" => None,
                        Some(w) => match parse_window(w.get_ref()) {
                            Some(s) => Some(s),
                            None => {
                                Loc::of(p, w).report(r, format!("metric {name:?}: window {:?} is not like \"7 days\" (hours, days, weeks) or \"none\"", w.get_ref()));
                                continue;
                            }
                        },
                    };
                    MetricKind::Cumulative {
                        measure,
                        time_dimension: td,
                        window_seconds,
                    }
                }
                "conversion" => match build_conversion(p, m, &name, loc, model, r) {
                    Some(c) => MetricKind::Conversion(Box::new(c)),
                    None => continue,
                },
                "retention" | "period_average" => {
                    let Some(measure) = measure_ref(r) else {
                        continue;
                    };
                    let ms = model.measure(&measure);
                    let Some(time_dimension) =
                        time_dimension_of(p, m, &name, kind_name, loc, model, r)
                    else {
                        continue;
                    };
                    if kind_name == "retention" {
                        let Some(ms) =
                            ms.filter(|x| x.agg == Agg::CountDistinct && x.expr.is_some())
                        else {
                            loc.report(r, format!("metric {name:?}: retention needs a count_distinct measure (its expression is the entity)"));
                            continue;
                        };
                        let _ = ms;
                        let Some(ev) = &m.retention else {
                            loc.report(r, format!("metric {name:?} (retention) needs `retention` (churned, retained, resurrected, new or active)"));
                            continue;
                        };
                        let Some(event) = RetentionEvent::parse(ev.get_ref()) else {
                            Loc::of(p, ev).report(r, format!("metric {name:?}: unknown retention {:?} (churned, retained, resurrected, new, active)", ev.get_ref()));
                            continue;
                        };
                        let rate = match m.calculation.as_ref().map(|c| c.get_ref().as_str()) {
                            None | Some("count") => false,
                            Some("rate") => true,
                            Some(other) => {
                                loc.report(
                                    r,
                                    format!(
                                        "metric {name:?}: calculation {other:?} is count or rate"
                                    ),
                                );
                                continue;
                            }
                        };
                        if rate == (unit == Unit::Count) {
                            loc.report(
                                r,
                                format!(
                                    "metric {name:?}: a retention {} has the unit {}",
                                    if rate { "rate" } else { "count" },
                                    if rate { "percent or ratio" } else { "count" }
                                ),
                            );
                            continue;
                        }
                        MetricKind::Retention {
                            measure,
                            time_dimension,
                            event,
                            rate,
                        }
                    } else {
                        if ms.is_some_and(|x| {
                            !matches!(x.agg, Agg::Count | Agg::CountDistinct | Agg::Sum)
                        }) {
                            loc.report(r, format!("metric {name:?}: period_average needs a count, count_distinct or sum measure"));
                            continue;
                        }
                        let per = match m.per.as_ref().map(|x| (x, Granularity::parse(x.get_ref())))
                        {
                            Some((_, Some(g @ (Granularity::Hour | Granularity::Day)))) => g,
                            Some((x, _)) => {
                                Loc::of(p, x).report(
                                    r,
                                    format!(
                                        "metric {name:?}: per {:?} is hour or day",
                                        x.get_ref()
                                    ),
                                );
                                continue;
                            }
                            None => {
                                loc.report(
                                    r,
                                    format!(
                                        "metric {name:?} (period_average) needs `per` (hour or day)"
                                    ),
                                );
                                continue;
                            }
                        };
                        if unit == Unit::Count {
                            loc.report(
                                r,
                                format!(
                                    "metric {name:?}: an average is not a count (use unit number)"
                                ),
                            );
                            continue;
                        }
                        MetricKind::PeriodAverage {
                            measure,
                            time_dimension,
                            per,
                        }
                    }
                }
                other => {
                    let kloc = m.kind.as_ref().map(|k| Loc::of(p, k)).unwrap_or(loc);
                    kloc.report(r, format!("metric {name:?}: unknown kind {other:?} (simple, ratio, derived, cumulative, conversion, retention, period_average)"));
                    continue;
                }
            };
            locs.insert(name.clone(), loc);
            model.metrics.push(Metric {
                name,
                kind,
                unit,
                description,
            });
        }
    }
    // Cycles among ratio/derived metrics.
    let refs = |m: &Metric| -> Vec<String> {
        match &m.kind {
            MetricKind::Ratio {
                numerator,
                denominator,
            } => vec![numerator.clone(), denominator.clone()],
            MetricKind::Derived { expr } => expr.identifiers(),
            _ => Vec::new(),
        }
    };
    for m in &model.metrics {
        let mut stack: Vec<(String, Vec<String>)> = vec![(m.name.clone(), vec![m.name.clone()])];
        let mut found = None;
        let mut steps = 0;
        while let Some((at, path)) = stack.pop() {
            steps += 1;
            if steps > 10_000 {
                break;
            }
            if let Some(x) = model.metric(&at) {
                for next in refs(x) {
                    if next == m.name {
                        let mut cycle = path.clone();
                        cycle.push(next);
                        found = Some(cycle);
                        break;
                    }
                    if !path.contains(&next) {
                        let mut p2 = path.clone();
                        p2.push(next.clone());
                        stack.push((next, p2));
                    }
                }
            }
            if found.is_some() {
                break;
            }
        }
        if let Some(cycle) = found
            && let Some(loc) = locs.get(&m.name)
        {
            loc.report(
                r,
                format!(
                    "metric {:?} depends on itself: {}",
                    m.name,
                    cycle.join(" → ")
                ),
            );
        }
    }
}

/// The parts of a `kind = "conversion"` metric.
/// The `time_dimension` of a metric of `kind`, which must name a time dimension; reports
/// (and returns `None`) when it is missing or names something else.
fn time_dimension_of(
    p: &Parsed<'_>,
    m: &super::file::RawMetric,
    name: &str,
    kind: &str,
    loc: Loc<'_>,
    model: &Model,
    r: &mut Report,
) -> Option<String> {
    let Some(td) = &m.time_dimension else {
        loc.report(
            r,
            format!("metric {name:?} ({kind}) needs `time_dimension`"),
        );
        return None;
    };
    match model.dimension(td.get_ref()) {
        Some(d) if d.dim_type == DimType::Time => Some(td.get_ref().clone()),
        _ => {
            Loc::of(p, td).report(
                r,
                format!(
                    "metric {name:?}: {:?} is not a time dimension",
                    td.get_ref()
                ),
            );
            None
        }
    }
}

fn build_conversion(
    p: &Parsed<'_>,
    m: &super::file::RawMetric,
    name: &str,
    loc: Loc<'_>,
    model: &Model,
    r: &mut Report,
) -> Option<Conversion> {
    let before = r.problems.len();
    let measure = |field: &Option<Spanned<String>>, what: &str, r: &mut Report| {
        let Some(x) = field else {
            loc.report(
                r,
                format!("metric {name:?} (conversion) needs `{what}` (a measure)"),
            );
            return None;
        };
        match model.measure(x.get_ref()) {
            Some(ms) => Some(ms.clone()),
            None => {
                Loc::of(p, x).report(
                    r,
                    format!(
                        "metric {name:?}: unknown measure {:?} as {what}",
                        x.get_ref()
                    ),
                );
                None
            }
        }
    };
    let base = measure(&m.base, "base", r)?;
    let conv = measure(&m.conversion, "conversion", r)?;
    let base_t = model.table(&base.table)?;
    let conv_t = model.table(&conv.table)?;
    if !matches!(base.agg, Agg::Count | Agg::CountDistinct | Agg::Sum) {
        loc.report(
            r,
            format!("metric {name:?}: the base measure is a count, count_distinct or sum"),
        );
    }
    let on = match &m.on {
        Some(on) if !on.get_ref().is_empty() => {
            for (a, b) in on.get_ref() {
                if base_t.column_type(a).is_none() {
                    Loc::of(p, on).report(
                        r,
                        format!(
                            "metric {name:?}: on: {a:?} is not a column of {:?}",
                            base_t.name
                        ),
                    );
                }
                if conv_t.column_type(b).is_none() {
                    Loc::of(p, on).report(
                        r,
                        format!(
                            "metric {name:?}: on: {b:?} is not a column of {:?}",
                            conv_t.name
                        ),
                    );
                }
            }
            on.get_ref().clone()
        }
        _ => {
            loc.report(r, format!("metric {name:?} (conversion) needs `on = [[\"base column\", \"conversion column\"]]` (the entity)"));
            return None;
        }
    };
    let window = match &m.window {
        None => None,
        Some(w) if w.get_ref() == "none" => None,
        Some(w) => {
            let Some(seconds) = parse_window(w.get_ref()) else {
                Loc::of(p, w).report(r, format!("metric {name:?}: window {:?} is not like \"7 days\" (minutes, hours, days, weeks) or \"none\"", w.get_ref()));
                return None;
            };
            let Some(times) = &m.times else {
                loc.report(r, format!("metric {name:?}: a conversion window needs `times = [\"base time column\", \"conversion time column\"]`"));
                return None;
            };
            let (bt, ct) = times.get_ref().clone();
            if base_t.column_type(&bt) != Some(ColType::Time)
                || conv_t.column_type(&ct) != Some(ColType::Time)
            {
                Loc::of(p, times).report(
                    r,
                    format!(
                        "metric {name:?}: times are instant columns of {:?} and {:?}",
                        base_t.name, conv_t.name
                    ),
                );
            }
            if base.agg != Agg::CountDistinct {
                loc.report(
                    r,
                    format!(
                        "metric {name:?}: a conversion window needs a count_distinct base measure"
                    ),
                );
            }
            Some(ConversionWindow {
                seconds,
                base_time: bt,
                conversion_time: ct,
            })
        }
    };
    let mut variants = Vec::new();
    if let Some(v) = &m.variants {
        let vloc = Loc::of(p, v);
        let cols = col_types(conv_t);
        for (vname, cond) in v.get_ref() {
            let ok = vname
                .chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_uppercase())
                && vname
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_');
            if !ok {
                vloc.report(
                    r,
                    format!("conversion variant {vname:?} is not SHOUTY_SNAKE"),
                );
            }
            match Expr::parse(cond) {
                Ok(e) => match e.infer(&cols) {
                    Ok(ExprType::Bool) => variants.push((vname.clone(), e)),
                    Ok(t) => vloc.report(
                        r,
                        format!("metric {name:?}: variant {vname}: a {t:?}, not a condition"),
                    ),
                    Err(err) => vloc.report(
                        r,
                        format!(
                            "metric {name:?}: variant {vname} on table {:?}: {err}",
                            conv_t.name
                        ),
                    ),
                },
                Err(err) => vloc.report(r, format!("metric {name:?}: variant {vname}: {err}")),
            }
        }
        if let Some(d) = &m.default_variant
            && !v.get_ref().iter().any(|(n, _)| n == d.get_ref())
        {
            Loc::of(p, d).report(
                r,
                format!(
                    "metric {name:?}: default_variant {:?} is not one of the variants",
                    d.get_ref()
                ),
            );
        }
    } else if m.default_variant.is_some() {
        loc.report(
            r,
            format!("metric {name:?}: default_variant without variants"),
        );
    }
    let calculation = match m.calculation.as_ref().map(|c| c.get_ref().as_str()) {
        None | Some("rate") => ConversionCalc::Rate,
        Some("conversions") => ConversionCalc::Conversions,
        Some(other) => {
            loc.report(
                r,
                format!("metric {name:?}: calculation {other:?} is rate or conversions"),
            );
            return None;
        }
    };
    (r.problems.len() == before).then(|| Conversion {
        base: base.name.clone(),
        conversion: conv.name.clone(),
        on,
        window,
        variants,
        calculation,
    })
}

/// Every measure table must reach every dimension table along at most one join path.
fn check_paths(model: &Model, dim_locs: &HashMap<String, Loc<'_>>, r: &mut Report) {
    let mut measure_tables: Vec<&str> = model.measures.iter().map(|m| m.table.as_str()).collect();
    measure_tables.sort_unstable();
    measure_tables.dedup();
    let mut reported: Vec<(String, String)> = Vec::new();
    for d in &model.dimensions {
        for t in &measure_tables {
            if reported.iter().any(|(a, b)| a == t && *b == d.table) {
                continue;
            }
            let paths = model.join_paths(t, &d.table);
            if paths.len() > 1 {
                reported.push(((*t).to_owned(), d.table.clone()));
                let shown: Vec<String> = paths
                    .iter()
                    .map(|p| {
                        let mut names = vec![(*t).to_owned()];
                        names.extend(model.path_tables(t, p));
                        names.join(" → ")
                    })
                    .collect();
                if let Some(loc) = dim_locs.get(&d.name) {
                    loc.report(
                        r,
                        format!(
                            "dimension {:?}: the join path from {t:?} to {:?} is ambiguous: {} (declare a separate logical table for each role)",
                            d.name,
                            d.table,
                            shown.join(" | ")
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strips_comments_but_not_strings() {
        let s = strip_sql_comments("-- a $2\nSELECT '--x' AS \"a--b\", $1 /* $3 */ FROM t;\n");
        assert_eq!(s, "SELECT '--x' AS \"a--b\", $1  FROM t");
    }

    #[test]
    fn sql_params_are_read_outside_strings_identifiers_and_comments() {
        assert_eq!(
            check_sql_params("SELECT $1, $2, '$9', \"$8\", $$ $7 $$ -- $6", 2),
            Ok(())
        );
        let e = check_sql_params("SELECT $1, $3", 2).unwrap_err();
        assert!(e.ends_with("$2..$2 (params), not $3"), "{e}");
        let e = check_sql_params("SELECT $1, a$b", 1).unwrap_err();
        assert!(e.ends_with("must be $1 (the as-of instant), not $"), "{e}");
        assert_eq!(
            check_sql_params("SELECT '$1' /* $1 */", 1),
            Err("it never reads $1 (the as-of instant)".to_owned())
        );
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("7 days"), Some(7 * 86_400));
        assert_eq!(parse_window("1 week"), Some(7 * 86_400));
        assert_eq!(parse_window("3 months"), None);
    }
}
