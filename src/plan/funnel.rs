//! A funnel request's plan: the `asOf` cut of every step's table (the same cuts metrics use),
//! the events of each step, each entity's anchor (its earliest first-step event), the greedy
//! walk through the next steps, and per group of the anchor's dimensions the counts and
//! medians of every step (docs/SEMANTIC-LAYER.md, "Funnels").

use super::cut::{self, CutCondition};
use super::slot::{self, DimSlot};
use super::{
    AsOfText, OutType, OutputColumn, OutputNode, OutputValue, Plan, PlanError, PlannedFilter,
    Planner, RowSource, filter,
};
use crate::query::{FunnelSpec, FunnelValue, Item, QuerySpec, WindowPer, picked_steps};
use crate::semantic::{DimType, Dimension, Expr, Granularity, TimeStorage, Unit};

/// The plan of one funnel request.
#[derive(Debug, Clone)]
pub struct FunnelNode {
    /// The funnel.
    pub funnel: String,
    /// The steps picked, in order.
    pub steps: Vec<PlannedStep>,
    /// Each step within this many seconds (of the previous step, or of the first with
    /// [`FunnelNode::overall`]); `None`: no limit.
    pub window: Option<i64>,
    /// Whether the window is counted from the first step.
    pub overall: bool,
    /// What each response column holds ([`OutputValue::Column`] indexes this).
    pub outputs: Vec<FunnelOut>,
    /// The prefix of its CTEs (`fun`).
    pub cte: String,
    /// What it computes.
    pub description: String,
}

/// One step, resolved.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// Its name (`SIGNED_UP`).
    pub name: String,
    /// Its label.
    pub label: String,
    /// Its table's rows (the first step's joined to the tables of the dimensions).
    pub rows: RowSource,
    /// The condition its events meet.
    pub condition: Option<Expr>,
    /// Its event time.
    pub time: Expr,
    /// How the time is stored (a date is read as the last second of its day).
    pub time_storage: TimeStorage,
    /// The entity.
    pub entity: Expr,
    /// The properties held constant: a journey is per entity and values of these.
    pub properties: Vec<Expr>,
    /// The request's filter of this step's events (`stepWhere`).
    pub filter: Option<PlannedFilter>,
}

/// A response column of a funnel row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelOut {
    /// A dimension slot of the anchor (index into [`Plan::slots`]).
    Slot(usize),
    /// A value of the step.
    Value(FunnelValue),
}

/// Plans a checked funnel request.
pub(super) fn plan(
    p: &mut Planner<'_>,
    spec: &QuerySpec,
    f: &FunnelSpec,
) -> Result<Plan, PlanError> {
    let model = p.model;
    let funnel = model
        .funnel(&f.name)
        .ok_or_else(|| PlanError::new(format!("unknown funnel {:?}", f.name)))?;
    let picked = picked_steps(funnel, &f.steps).map_err(|e| PlanError::new(e.message()))?;
    let first_table = picked[0].table.clone();
    // the slots: model dimensions, and the first step's time
    let mut slots: Vec<DimSlot> = Vec::new();
    let mut outputs = Vec::new();
    let mut columns = Vec::new();
    let slot_of = |slots: &mut Vec<DimSlot>, s: DimSlot| match slots
        .iter()
        .position(|x| x.dimension.name == s.dimension.name && x.granularity == s.granularity)
    {
        Some(i) => i,
        None => {
            slots.push(s);
            slots.len() - 1
        }
    };
    for sel in &spec.fields {
        let (out, ty) = match &sel.item {
            Item::Dimension { name, granularity } => {
                let s = slot::plan(p, name, *granularity, spec.timezone.is_some())?;
                let ty = OutType::of_dim(s.dimension.dim_type);
                (FunnelOut::Slot(slot_of(&mut slots, s)), ty)
            }
            Item::Funnel(FunnelValue::FirstStepTime(g)) => {
                let s = first_time_slot(p, picked[0], *g, spec.timezone.is_some())?;
                (FunnelOut::Slot(slot_of(&mut slots, s)), OutType::Time)
            }
            Item::Funnel(v) => (FunnelOut::Value(*v), value_type(*v)),
            other => {
                return Err(PlanError::new(format!(
                    "{other:?} selected in a funnel request"
                )));
            }
        };
        columns.push(OutputColumn {
            key: sel.key.clone(),
            value: OutputValue::Column(outputs.len()),
            ty,
        });
        outputs.push(out);
    }
    // the first step's rows reach the tables of the dimensions; the other steps' need none
    for s in &slots {
        if s.dimension.name != crate::query::FIRST_STEP_TIME
            && !p.dim_tables.contains(&s.dimension.table)
        {
            p.dim_tables.push(s.dimension.table.clone());
        }
    }
    let filter = p.request_filter(spec)?;
    let mut steps = Vec::new();
    let anchor_tables = p.dim_tables.clone();
    for (i, s) in picked.iter().enumerate() {
        // the tables of the groups and `where` (first step), and of the step's own filter
        p.dim_tables = if i == 0 {
            anchor_tables.clone()
        } else {
            Vec::new()
        };
        let step_filter = f.step_filters.iter().find(|x| x.step == s.name);
        if let Some(sf) = step_filter {
            for d in sf.filter.dimensions() {
                let table = p.dimension(d)?.table.clone();
                if !p.dim_tables.contains(&table) {
                    p.dim_tables.push(table);
                }
            }
        }
        let planned = step_filter
            .map(|sf| filter::plan(p, &sf.filter, spec.values.len()))
            .transpose()?;
        let rows = p.rows(&s.table)?;
        steps.push(PlannedStep {
            name: s.name.clone(),
            label: s.label.clone(),
            condition: s.condition.clone(),
            time: s.time.clone(),
            time_storage: s.time_storage,
            entity: s.entity.clone(),
            properties: s.properties.clone(),
            filter: planned,
            rows,
        });
    }
    let mut cuts = Vec::new();
    for t in p.touched.clone() {
        let mut c = cut::plan(p, &t)?;
        // a step's condition picks among the variants of a table (every variant's rows)
        if let Some(cf) = &c.table.conversion_filter {
            let col = cf.column.clone();
            c.conditions
                .retain(|x| !matches!(x, CutCondition::Equals(c, _) if *c == col));
        }
        cuts.push(c);
    }
    let window = match &f.within {
        Some(w) => Some(w.seconds().map_err(|e| PlanError::new(e.message()))?),
        None => funnel.window_seconds,
    };
    let description = format!(
        "funnel {}: {}{}, per entity and properties from their earliest {} event, each next step the earliest after the previous",
        funnel.name,
        steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(" → "),
        window
            .map(|w| format!(
                " within {w} s {}",
                if f.per == WindowPer::Overall {
                    "of the first step"
                } else {
                    "of the previous step"
                }
            ))
            .unwrap_or_default(),
        steps[0].name
    );
    let mut join_path = vec![first_table];
    for t in &p.touched {
        if !join_path.contains(t) {
            join_path.push(t.clone());
        }
    }
    Ok(Plan {
        model: model.name.clone(),
        slots,
        cuts,
        aggregates: Vec::new(),
        specials: Vec::new(),
        keys: None,
        filter,
        output: OutputNode {
            columns,
            from: "fun_g".to_owned(),
            joined: Vec::new(),
            by_time: Vec::new(),
            order: Vec::new(),
            limit: false,
            offset: false,
            description: format!(
                "the response: one row per group and step of funnel {}",
                funnel.name
            ),
        },
        join_path,
        rows: None,
        funnel: Some(FunnelNode {
            funnel: funnel.name.clone(),
            steps,
            window,
            overall: f.per == WindowPer::Overall,
            outputs,
            cte: "fun".to_owned(),
            description,
        }),
    })
}

/// The slot of the first step's time at `g`: a dimension of the first step's table.
fn first_time_slot(
    p: &mut Planner<'_>,
    step: &crate::semantic::FunnelStep,
    g: Granularity,
    timezone: bool,
) -> Result<DimSlot, PlanError> {
    let table = p.table(&step.table)?;
    let z = match step.time_storage {
        TimeStorage::Local => false,
        TimeStorage::Instant => !timezone,
        TimeStorage::Date => true,
    };
    Ok(DimSlot {
        dimension: Dimension {
            name: crate::query::FIRST_STEP_TIME.to_owned(),
            table: table.name.clone(),
            expr: step.time.clone(),
            dim_type: DimType::Time,
            granularities: Granularity::ALL.to_vec(),
            time_storage: step.time_storage,
            description: "When the entity's first step happened.".to_owned(),
            axis: Vec::new(),
        },
        table,
        granularity: Some(g),
        in_zone: timezone && step.time_storage == TimeStorage::Instant,
        z,
        as_of: if step.time_storage == TimeStorage::Local {
            AsOfText::UtcDigits
        } else if z {
            AsOfText::Utc
        } else {
            AsOfText::Zone
        },
    })
}

/// The type a funnel value is returned as.
fn value_type(v: FunnelValue) -> OutType {
    match v {
        FunnelValue::Step => OutType::String,
        FunnelValue::Entities | FunnelValue::DropOff => OutType::Int,
        FunnelValue::ConversionFromPrevious | FunnelValue::ConversionFromFirst => {
            OutType::of_unit(Unit::Percent)
        }
        FunnelValue::MedianSecondsFromPrevious => OutType::of_unit(Unit::DurationSeconds),
        FunnelValue::FirstStepTime(_) => OutType::Time,
    }
}
