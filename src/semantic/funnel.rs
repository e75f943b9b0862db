//! Funnels of a model (`[[funnel]]`): ordered steps, each an event condition over a table of
//! the model, followed per entity (docs/SEMANTIC-LAYER.md, "Funnels").

use serde::Deserialize;

use super::expr::{Expr, ExprType};
use super::{Model, TimeStorage};

/// A funnel: named steps a request picks and orders.
#[derive(Debug, Clone)]
pub struct Funnel {
    /// Its name as the API spells it (SHOUTY_SNAKE: `ONBOARDING`).
    pub name: String,
    /// What it follows.
    pub description: String,
    /// The window of a request that gives none, in seconds (`None`: no window).
    pub window_seconds: Option<i64>,
    /// The steps in their declared order (a request keeps this order).
    pub steps: Vec<FunnelStep>,
}

/// One step of a funnel: the events of a table that meet a condition.
#[derive(Debug, Clone)]
pub struct FunnelStep {
    /// Its name as the API spells it (`SIGNED_UP`).
    pub name: String,
    /// What to print on it (Sankey nodes).
    pub label: String,
    /// The logical table of its events.
    pub table: String,
    /// The condition an event of the table meets (`None`: every row).
    pub condition: Option<Expr>,
    /// When the event happened (an instant, a date or a local time).
    pub time: Expr,
    /// How [`FunnelStep::time`] is stored.
    pub time_storage: TimeStorage,
    /// Who goes through the funnel (a user, a session).
    pub entity: Expr,
    /// Values that must be equal at every step (the same product, the same campaign), in
    /// the funnel's order of properties.
    pub properties: Vec<Expr>,
}

impl Funnel {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&FunnelStep> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The position of step `name` in the declared order.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }
}

/// `[[funnel]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFunnel {
    pub name: String,
    pub description: Option<String>,
    pub window: Option<String>,
    #[serde(default)]
    pub step: Vec<RawStep>,
}

/// `[[funnel.step]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub name: String,
    pub label: Option<String>,
    pub table: String,
    pub condition: Option<String>,
    pub time: String,
    pub entity: String,
    #[serde(default)]
    pub properties: Vec<String>,
}

fn is_shouty(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Validates one `[[funnel]]` against the model's tables; every problem as a message.
pub(crate) fn build(raw: &RawFunnel, model: &Model) -> Result<Funnel, Vec<String>> {
    let mut problems = Vec::new();
    let name = raw.name.clone();
    if !is_shouty(&name) {
        problems.push(format!("funnel name {name:?} is not SHOUTY_SNAKE"));
    }
    if model.funnels.iter().any(|f| f.name == name) {
        problems.push(format!("funnel {name:?} is defined twice"));
    }
    let description = raw.description.clone().unwrap_or_default();
    if description.trim().is_empty() {
        problems.push(format!("funnel {name:?} needs a description"));
    }
    let window_seconds = match &raw.window {
        None => None,
        Some(w) => match super::validate::parse_window(w) {
            Some(s) => Some(s),
            None => {
                problems.push(format!(
                    "funnel {name:?}: window {w:?} is not like \"30 days\" (minutes, hours, days, weeks)"
                ));
                None
            }
        },
    };
    if raw.step.len() < 2 {
        problems.push(format!("funnel {name:?} needs at least two steps"));
    }
    let mut steps: Vec<FunnelStep> = Vec::new();
    for s in &raw.step {
        let what = format!("funnel {name:?} step {:?}", s.name);
        if !is_shouty(&s.name) {
            problems.push(format!("{what}: the name is not SHOUTY_SNAKE"));
        }
        if steps.iter().any(|x| x.name == s.name) {
            problems.push(format!("{what} is defined twice"));
        }
        let Some(table) = model.table(&s.table) else {
            problems.push(format!("{what}: unknown table {:?}", s.table));
            continue;
        };
        let cols = |c: &str| table.column_type(c).map(ExprType::of_col);
        let mut expr =
            |text: &str, part: &str, want: &dyn Fn(ExprType) -> bool| match Expr::parse(text) {
                Err(e) => {
                    problems.push(format!("{what}: {part}: {e}"));
                    None
                }
                Ok(e) => match e.infer(&cols) {
                    Ok(t) if want(t) => Some((e, t)),
                    Ok(t) => {
                        problems.push(format!("{what}: {part} is a {t:?}"));
                        None
                    }
                    Err(err) => {
                        problems.push(format!("{what}: {part} on table {:?}: {err}", s.table));
                        None
                    }
                },
            };
        let condition = match &s.condition {
            Some(c) => match expr(c, "condition", &|t| t == ExprType::Bool) {
                Some((e, _)) => Some(e),
                None => continue,
            },
            None => None,
        };
        let Some((time, tt)) = expr(&s.time, "time", &|t| t.is_time()) else {
            continue;
        };
        let value = |t: ExprType| !matches!(t, ExprType::Json | ExprType::Bool);
        let Some((entity, _)) = expr(&s.entity, "entity", &value) else {
            continue;
        };
        let mut properties = Vec::new();
        for p in &s.properties {
            if let Some((e, _)) = expr(p, "property", &value) {
                properties.push(e);
            }
        }
        if properties.len() != s.properties.len() {
            continue;
        }
        if let Some(first) = steps.first()
            && first.properties.len() != properties.len()
        {
            problems.push(format!(
                "{what}: {} properties where the first step has {} (every step names the same properties, in the same order)",
                properties.len(),
                first.properties.len()
            ));
        }
        steps.push(FunnelStep {
            name: s.name.clone(),
            label: s.label.clone().unwrap_or_else(|| s.name.clone()),
            table: table.name.clone(),
            condition,
            time,
            time_storage: match tt {
                ExprType::Date => TimeStorage::Date,
                ExprType::LocalTime => TimeStorage::Local,
                _ => TimeStorage::Instant,
            },
            entity,
            properties,
        });
    }
    if problems.is_empty() {
        Ok(Funnel {
            name,
            description,
            window_seconds,
            steps,
        })
    } else {
        Err(problems)
    }
}
