//! What a caller's role may read, checked on the parsed document before any field runs
//! (docs/CONFIGURATION.md, "What a role may read").
//!
//! Every operation is walked with its fragments expanded (spreads and inline fragments) and
//! by field name, so aliases change nothing: a root field of a model the role may not read,
//! a field of a model's object outside the role's `fields`, and — anywhere under a model
//! field: its selections, `where` (through `and`, `or`, `not`) and `orderBy`, variables
//! resolved — the name of a metric or dimension outside the role's lists, are `FORBIDDEN`,
//! naming it. `__schema` and `__type` need `introspection`; `sources` (row counts per model)
//! needs the role to read every model it lists; `catalog` lists only what the role may read.
//! The schema itself is the same for every role: introspection shows every model's names,
//! never its data.

use std::sync::Arc;

use async_graphql::Value as ConstValue;
use async_graphql::Variables;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};

use crate::auth::Role;
use crate::error::ApiError;
use crate::semantic::Model;

/// Fragments are expanded at most this deep (validation refuses cycles afterwards).
const MAX_FRAGMENT_DEPTH: usize = 16;

/// The fields of `set`, fragments expanded.
fn fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    depth: usize,
    out: &mut Vec<&'a Positioned<Field>>,
) {
    if depth > MAX_FRAGMENT_DEPTH {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => out.push(f),
            Selection::InlineFragment(f) => fields(doc, &f.node.selection_set.node, depth + 1, out),
            Selection::FragmentSpread(s) => {
                if let Some(f) = doc.fragments.get(&s.node.fragment_name.node) {
                    fields(doc, &f.node.selection_set.node, depth + 1, out);
                }
            }
        }
    }
}

/// `FORBIDDEN` unless `role` may run every operation of `doc` (with `variables`) over
/// `models`.
pub(crate) fn check(
    doc: &ExecutableDocument,
    variables: &Variables,
    role: &Role,
    models: &[Arc<Model>],
) -> Result<(), ApiError> {
    let who = |what: String| {
        ApiError::Forbidden(format!(
            "the role {} may not {what} (auth.roles.{})",
            role.name, role.name
        ))
    };
    for (_, op) in doc.operations.iter() {
        let mut roots = Vec::new();
        fields(doc, &op.node.selection_set.node, 0, &mut roots);
        for f in roots {
            let name = f.node.name.node.as_str();
            match name {
                "__typename" => {}
                "__schema" | "__type" if !role.introspection => {
                    return Err(who(format!(
                        "introspect the schema ({name}; introspection = false)"
                    )));
                }
                // the catalog lists only what the role may read (graphql/catalog.rs)
                "__schema" | "__type" | "catalog" => {}
                "sources" => {
                    let wanted = argument(f, "model", variables).and_then(|v| match v {
                        ConstValue::String(s) => Some(s),
                        _ => None,
                    });
                    let ok = match &wanted {
                        Some(m) => role.may_read_model(m),
                        None => role.models.is_none(),
                    };
                    if !ok {
                        return Err(who(format!(
                            "read sources{}: it reads only the models {}",
                            wanted.map(|m| format!(" of {m}")).unwrap_or_default(),
                            role.models
                                .iter()
                                .flatten()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
                model_name => {
                    let Some(model) = models.iter().find(|m| m.name == model_name) else {
                        continue; // not a model: validation names it
                    };
                    if !role.may_read_model(model_name) {
                        return Err(who(format!("read the model {model_name} (models)")));
                    }
                    check_model(doc, variables, role, model, &f.node.selection_set.node)
                        .map_err(who)?;
                }
            }
        }
    }
    Ok(())
}

/// The value of the argument `name` of `f`, variables resolved.
fn argument(f: &Positioned<Field>, name: &str, variables: &Variables) -> Option<ConstValue> {
    f.node.get_argument(name).and_then(|v| {
        v.node
            .clone()
            .into_const_with(|n| variables.get(&n).cloned().ok_or(()))
            .ok()
    })
}

/// What of `model` the role may not use under its field (`set`): `Err` says what.
fn check_model(
    doc: &ExecutableDocument,
    variables: &Variables,
    role: &Role,
    model: &Model,
    set: &SelectionSet,
) -> Result<(), String> {
    let m = model.name.as_str();
    let mut items = Vec::new();
    fields(doc, set, 0, &mut items);
    for f in items {
        let field = f.node.name.node.as_str();
        if field.starts_with("__") {
            continue;
        }
        if !role.may_use_field(m, field) {
            return Err(format!("use the field {m}.{field} (allow.{m}.fields)"));
        }
        let mut inner = Vec::new();
        fields(doc, &f.node.selection_set.node, 0, &mut inner);
        for x in inner {
            check_name(role, model, field, x.node.name.node.as_str())?;
        }
        if let Some(w) = argument(f, "where", variables) {
            check_where(role, model, field, &w, 0)?;
        }
        if let Some(o) = argument(f, "orderBy", variables) {
            let items = match o {
                ConstValue::List(xs) => xs,
                other => vec![other],
            };
            for item in items {
                if let ConstValue::Object(obj) = item {
                    for k in obj.keys() {
                        check_name(role, model, field, k.as_str())?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `Err` when `name` is a metric or dimension of `model` the role may not use.
fn check_name(role: &Role, model: &Model, field: &str, name: &str) -> Result<(), String> {
    let m = model.name.as_str();
    if model.metric(name).is_some() && !role.may_use_metric(m, name) {
        return Err(format!(
            "read the metric {m}.{name} (in {m}.{field}; allow.{m}.metrics)"
        ));
    }
    if model.dimension(name).is_some() && !role.may_use_dimension(m, name) {
        return Err(format!(
            "use the dimension {m}.{name} (in {m}.{field}; allow.{m}.dimensions)"
        ));
    }
    Ok(())
}

/// Every name a `where` value tests, through `and`, `or` and `not`.
fn check_where(
    role: &Role,
    model: &Model,
    field: &str,
    value: &ConstValue,
    depth: usize,
) -> Result<(), String> {
    if depth > 32 {
        return Ok(()); // reading the argument refuses it
    }
    match value {
        ConstValue::Object(obj) => {
            for (k, v) in obj {
                match k.as_str() {
                    "and" | "or" | "not" => check_where(role, model, field, v, depth + 1)?,
                    name => check_name(role, model, field, name)?,
                }
            }
        }
        ConstValue::List(xs) => {
            for x in xs {
                check_where(role, model, field, x, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}
