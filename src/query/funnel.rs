//! A funnel request ([`FunnelSpec`]): which funnel, which of its steps, the window, and its
//! check against the model (docs/SEMANTIC-LAYER.md, "Funnels").

use super::{Item, QuerySpec, did_you_mean};
use crate::error::ApiError;
use crate::semantic::{Funnel, Model};

/// The funnel part of a [`QuerySpec`] (set: the request is a funnel).
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelSpec {
    /// The funnel's name (`ONBOARDING`).
    pub name: String,
    /// The steps picked, in the funnel's order (empty: every step).
    pub steps: Vec<String>,
    /// The window (`None`: the funnel's own, else none).
    pub within: Option<Within>,
    /// What the window bounds.
    pub per: WindowPer,
    /// Filters of single steps: only the step's events that match count as that step.
    pub step_filters: Vec<StepFilter>,
}

/// A filter of one step's events, over the dimensions its table reaches (values in
/// [`QuerySpec::values`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepFilter {
    /// The step.
    pub step: String,
    /// The condition its events meet.
    pub filter: super::Filter,
}

/// A window as asked: exactly one of its parts must be set, and positive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Within {
    /// Minutes.
    pub minutes: Option<i64>,
    /// Hours.
    pub hours: Option<i64>,
    /// Days.
    pub days: Option<i64>,
    /// Weeks.
    pub weeks: Option<i64>,
}

impl Within {
    /// The window in seconds, or `BAD_WINDOW`.
    pub fn seconds(&self) -> Result<i64, ApiError> {
        let parts: Vec<(i64, i64, &str)> = [
            (self.minutes, 60, "minutes"),
            (self.hours, 3600, "hours"),
            (self.days, 86_400, "days"),
            (self.weeks, 7 * 86_400, "weeks"),
        ]
        .into_iter()
        .filter_map(|(v, s, n)| v.map(|v| (v, s, n)))
        .collect();
        match parts.as_slice() {
            [(v, s, n)] => {
                if *v <= 0 {
                    return Err(ApiError::BadWindow(format!(
                        "within.{n} is {v}: a window is a positive length"
                    )));
                }
                v.checked_mul(*s)
                    .filter(|x| *x <= 100 * 366 * 86_400)
                    .ok_or_else(|| {
                        ApiError::BadWindow(format!("within.{n} = {v} is longer than 100 years"))
                    })
            }
            [] => Err(ApiError::BadWindow(
                "within sets no length: set one of minutes, hours, days, weeks".to_owned(),
            )),
            many => Err(ApiError::BadWindow(format!(
                "within sets {}: set exactly one of minutes, hours, days, weeks",
                many.iter()
                    .map(|(_, _, n)| *n)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ))),
        }
    }
}

/// What a funnel window bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum WindowPer {
    /// Each step happens within the window after the previous step.
    #[default]
    Step,
    /// Every step happens within the window after the first step.
    Overall,
}

/// A value of a funnel row (besides the dimensions grouped by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunnelValue {
    /// The step's name.
    Step,
    /// Entities reaching the step.
    Entities,
    /// Entities reaching the step / entities reaching the previous one.
    ConversionFromPrevious,
    /// Entities reaching the step / entities reaching the first one.
    ConversionFromFirst,
    /// Entities reaching the previous step but not this one.
    DropOff,
    /// The median of the seconds from the previous step to this one.
    MedianSecondsFromPrevious,
    /// The bucket of the entity's first-step time at a granularity.
    FirstStepTime(crate::semantic::Granularity),
}

/// The name of the grouping by the first step's time, a field of every funnel row.
pub const FIRST_STEP_TIME: &str = "firstStepTime";

impl QuerySpec {
    /// A funnel request of `model` as of `as_of`, nothing selected yet.
    pub fn funnel_of(
        model: impl Into<String>,
        funnel: FunnelSpec,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let mut spec = QuerySpec::new(model, as_of);
        spec.funnel = Some(funnel);
        spec
    }

    /// Checks a funnel request: the funnel and its steps, their order, the window, and that
    /// every dimension grouped or filtered by is reached from the first step's table.
    pub(super) fn check_funnel(&self, model: &Model, f: &FunnelSpec) -> Result<(), ApiError> {
        let funnel = model.funnel(&f.name).ok_or_else(|| {
            let names: Vec<&str> = model.funnels.iter().map(|x| x.name.as_str()).collect();
            ApiError::UnknownFunnel(format!(
                "{} has no funnel {:?}; its funnels are: {}.{}",
                model.name,
                f.name,
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                },
                did_you_mean(&f.name, names.clone())
            ))
        })?;
        let steps = picked_steps(funnel, &f.steps)?;
        if let Some(w) = &f.within {
            w.seconds()?;
        }
        let first = &steps[0].table;
        let dims = |d: &str| -> Result<(), ApiError> {
            let Some(dim) = model.dimension(d) else {
                let names: Vec<&str> = model.dimensions.iter().map(|d| d.name.as_str()).collect();
                return Err(ApiError::UnknownDimension(format!(
                    "unknown dimension \"{d}\" of {}.{}",
                    model.name,
                    did_you_mean(d, names)
                )));
            };
            if model.join_path(first, &dim.table).is_none() {
                return Err(ApiError::UnreachableDimension(format!(
                    "funnel {} cannot be grouped or filtered by {d}: its first step {} reads table {first}, and no many-to-one join path leads from {first} to {} (the table of {d})",
                    funnel.name, steps[0].name, dim.table
                )));
            }
            Ok(())
        };
        for s in &self.fields {
            match &s.item {
                Item::Dimension { name, granularity } => {
                    dims(name)?;
                    let dim = model.dimension(name).ok_or_else(|| {
                        ApiError::UnknownDimension(format!("unknown dimension {name:?}"))
                    })?;
                    super::granularity_fits(name, dim, *granularity)?;
                }
                Item::Funnel(_) => {}
                Item::Metric { name } | Item::Column { name } | Item::Compared { name, .. } => {
                    return Err(ApiError::UnknownDimension(format!(
                        "{name} is not a field of a funnel row"
                    )));
                }
                Item::IsComplete => {
                    return Err(ApiError::UnknownDimension(
                        "isComplete is not a field of a funnel row".to_owned(),
                    ));
                }
            }
        }
        for d in self.filter_dimensions() {
            dims(d)?;
        }
        for sf in &f.step_filters {
            let Some(step) = steps.iter().find(|s| s.name == sf.step) else {
                return Err(ApiError::BadFunnelSteps(format!(
                    "stepWhere: {} is not one of the steps asked for ({})",
                    sf.step,
                    steps
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if f.step_filters.iter().filter(|x| x.step == sf.step).count() > 1 {
                return Err(ApiError::BadFunnelSteps(format!(
                    "stepWhere: {} is filtered twice (combine the conditions with and)",
                    sf.step
                )));
            }
            for d in sf.filter.dimensions() {
                let Some(dim) = model.dimension(d) else {
                    return Err(ApiError::UnknownDimension(format!(
                        "stepWhere {}: unknown dimension \"{d}\" of {}",
                        sf.step, model.name
                    )));
                };
                if model.join_path(&step.table, &dim.table).is_none() {
                    return Err(ApiError::UnreachableDimension(format!(
                        "stepWhere {}: the step reads table {}, and no many-to-one join path leads from it to {} (the table of {d})",
                        sf.step, step.table, dim.table
                    )));
                }
            }
        }
        if let Some(o) = self.order.first() {
            return Err(ApiError::BadOrderBy(format!(
                "orderBy {}: funnel rows come in a fixed order (by the dimensions, then the steps)",
                o.target
            )));
        }
        self.check_zone_and_variant(model)
    }
}

/// The steps a request picks (`names`, empty: all), checked: each is a step of `funnel`,
/// none twice, in the funnel's order, at least two.
pub fn picked_steps<'a>(
    funnel: &'a Funnel,
    names: &[String],
) -> Result<Vec<&'a crate::semantic::FunnelStep>, ApiError> {
    let order = || {
        funnel
            .steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
    };
    if names.is_empty() {
        return Ok(funnel.steps.iter().collect());
    }
    let mut out: Vec<&crate::semantic::FunnelStep> = Vec::new();
    let mut last: Option<usize> = None;
    for n in names {
        let Some(pos) = funnel.position(n) else {
            return Err(ApiError::UnknownFunnel(format!(
                "funnel {} has no step {n:?}; its steps are, in order: {}.{}",
                funnel.name,
                order().join(", "),
                did_you_mean(n, order())
            )));
        };
        if out.iter().any(|s| s.name == *n) {
            return Err(ApiError::BadFunnelSteps(format!(
                "steps: {n} is given twice (each step at most once)"
            )));
        }
        if let Some(l) = last
            && pos < l
        {
            return Err(ApiError::BadFunnelSteps(format!(
                "steps: {n} comes before {} in funnel {}: give the steps in its order ({})",
                funnel.steps[l].name,
                funnel.name,
                order().join(" → ")
            )));
        }
        last = Some(pos);
        out.push(&funnel.steps[pos]);
    }
    if out.len() < 2 {
        return Err(ApiError::BadFunnelSteps(format!(
            "steps: a funnel needs at least two steps (funnel {} has {})",
            funnel.name,
            order().join(", ")
        )));
    }
    Ok(out)
}
