//! `<model> { funnel(…) { … } funnelSankey(…) { … } }`: the funnels of a model
//! (`[[funnel]]`), per model `M` with funnels: `MFunnelName` and `MFunnelStep` (enums of its
//! funnels and of their steps), `MFunnelRow` (one row per group and step: the step's numbers
//! and every dimension to group by); shared: `FunnelWindow`, `FunnelWindowPer`,
//! `FunnelSankey` (nodes and links, the drop-offs as links to a "dropped" node per step).
//!
//! Both fields build a funnel [`QuerySpec`] and run it through the engine, like `metrics`;
//! the Sankey is built from the ungrouped rows (docs/SEMANTIC-LAYER.md, "Funnels").

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ResolverContext, SchemaBuilder, TypeRef,
};
use async_graphql::{Error, Value};

use super::common;
use super::metrics::{
    Resolved, deliver, dim_type, pascal, read_args, read_selection, read_where, row_value,
};
use crate::error::ApiError;
use crate::query::{
    FIRST_STEP_TIME, FunnelSpec, FunnelValue, Item, QuerySpec, StepFilter, WindowPer, Within,
};
use crate::semantic::{DimType, Granularity, Model};

const WINDOW: &str = "FunnelWindow";
const PER: &str = "FunnelWindowPer";
const SANKEY: &str = "FunnelSankey";
const SANKEY_NODE: &str = "FunnelSankeyNode";
const SANKEY_LINK: &str = "FunnelSankeyLink";

/// The values of a funnel row: field name, value, type, description.
const VALUES: [(&str, FunnelValue, &str, &str); 6] = [
    (
        "step",
        FunnelValue::Step,
        TypeRef::STRING,
        "The step (its name in the funnel, e.g. SIGNED_UP); rows come in step order within each group.",
    ),
    (
        "entities",
        FunnelValue::Entities,
        TypeRef::INT,
        "Entities (users, sessions, …) reaching the step as of asOf, each counted once from its earliest first-step event. Unit: count (Int).",
    ),
    (
        "conversionFromPrevious",
        FunnelValue::ConversionFromPrevious,
        TypeRef::FLOAT,
        "Entities reaching the step / entities reaching the previous step (null for the first step, or when the previous has none). Unit: percent, as a fraction 0..1 (Float, 6 decimals).",
    ),
    (
        "conversionFromFirst",
        FunnelValue::ConversionFromFirst,
        TypeRef::FLOAT,
        "Entities reaching the step / entities reaching the first step (1 for the first step; null when it has none). Unit: percent, as a fraction 0..1 (Float, 6 decimals).",
    ),
    (
        "dropOff",
        FunnelValue::DropOff,
        TypeRef::INT,
        "Entities reaching the previous step but not this one (null for the first step). Unit: count (Int).",
    ),
    (
        "medianSecondsFromPrevious",
        FunnelValue::MedianSecondsFromPrevious,
        TypeRef::FLOAT,
        "The median of the seconds from the previous step's event to this step's, over the entities reaching this step (null for the first step, or when none reaches it). Unit: duration in seconds (Float, 4 decimals).",
    ),
];

/// Type names of a model's funnel types.
struct Names {
    funnel: String,
    step: String,
    row: String,
    step_where: String,
}

fn names(model: &Model) -> Names {
    let p = pascal(&model.name);
    Names {
        funnel: format!("{p}FunnelName"),
        step: format!("{p}FunnelStep"),
        row: format!("{p}FunnelRow"),
        step_where: format!("{p}FunnelStepWhere"),
    }
}

/// Registers the types every model with funnels shares.
pub(crate) fn register_shared(builder: SchemaBuilder) -> SchemaBuilder {
    let window = InputObject::new(WINDOW)
        .description("A funnel window: set exactly one length, a positive number.")
        .field(InputValue::new("minutes", TypeRef::named(TypeRef::INT)).description("Minutes."))
        .field(InputValue::new("hours", TypeRef::named(TypeRef::INT)).description("Hours."))
        .field(
            InputValue::new("days", TypeRef::named(TypeRef::INT))
                .description("Days (of 24 hours)."),
        )
        .field(
            InputValue::new("weeks", TypeRef::named(TypeRef::INT))
                .description("Weeks (of 7 days)."),
        );
    let per = Enum::new(PER)
        .description("What a funnel window bounds.")
        .item(
            EnumItem::new("STEP").description(
                "Each step happens within the window after the previous step's event.",
            ),
        )
        .item(
            EnumItem::new("OVERALL")
                .description("Every step happens within the window after the first step's event."),
        );
    let sankey = Object::new(SANKEY)
        .description("A funnel as a Sankey: a node per step and a \"dropped\" node per step but the last; links from each step to the next and to its dropped node. Every node's value equals its inflow, and every step's value but the last's equals its outflow.")
        .field(value_field("nodes", TypeRef::named_nn_list_nn(SANKEY_NODE), "Every node: the steps in order, then the dropped nodes."))
        .field(value_field("links", TypeRef::named_nn_list_nn(SANKEY_LINK), "Every link, zero values included so the shape never depends on the data."));
    let node = Object::new(SANKEY_NODE)
        .description("A node of a funnel Sankey.")
        .field(value_field("id", TypeRef::named_nn(TypeRef::STRING), "A stable id: the step's name (SIGNED_UP), or DROPPED_AFTER_<step> for those who reached the step and not the next."))
        .field(value_field("label", TypeRef::named_nn(TypeRef::STRING), "What to print on the node (the step's label from the model; \"Dropped after <label>\")."))
        .field(value_field("value", TypeRef::named_nn(TypeRef::INT), "Entities in the node. Unit: count (Int)."));
    let link = Object::new(SANKEY_LINK)
        .description("Entities going from one node to another.")
        .field(value_field(
            "source",
            TypeRef::named_nn(TypeRef::STRING),
            "The id of the node they come from.",
        ))
        .field(value_field(
            "target",
            TypeRef::named_nn(TypeRef::STRING),
            "The id of the node they go to.",
        ))
        .field(value_field(
            "value",
            TypeRef::named_nn(TypeRef::INT),
            "How many entities. Unit: count (Int).",
        ));
    builder
        .register(window)
        .register(per)
        .register(sankey)
        .register(node)
        .register(link)
}

/// A field of an object whose parent is a JSON-like object value: its member `name`.
fn value_field(name: &str, ty: TypeRef, description: &str) -> Field {
    let key = name.to_owned();
    Field::new(name, ty, move |ctx| {
        let key = key.clone();
        FieldFuture::new(async move {
            let v = match ctx.parent_value.as_value() {
                Some(Value::Object(o)) => o.get(key.as_str()).cloned(),
                _ => None,
            };
            Ok(v.map(|v| match v {
                Value::List(xs) => FieldValue::list(xs.into_iter().map(FieldValue::value)),
                v => FieldValue::value(v),
            }))
        })
    })
    .description(description)
}

/// Registers a model's funnel types (nothing when it has no funnel).
pub(crate) fn register_model(mut builder: SchemaBuilder, model: &Arc<Model>) -> SchemaBuilder {
    if model.funnels.is_empty() {
        return builder;
    }
    let n = names(model);
    let funnels = Enum::new(&n.funnel)
        .description(format!("The funnels of {}.", model.name))
        .items(model.funnels.iter().map(|f| {
            EnumItem::new(&f.name).description(format!(
                "{} Steps, in order: {}.",
                f.description,
                f.steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }));
    let mut steps: Vec<(String, String)> = Vec::new();
    for f in &model.funnels {
        for s in &f.steps {
            if let Some(x) = steps.iter_mut().find(|(n, _)| *n == s.name) {
                x.1.push_str(&format!(", {}", f.name));
            } else {
                steps.push((s.name.clone(), format!("{} (funnel {}", s.label, f.name)));
            }
        }
    }
    let steps = Enum::new(&n.step)
        .description(format!(
            "The steps of the funnels of {}; a request picks steps of its funnel, in the funnel's order.",
            model.name
        ))
        .items(
            steps
                .into_iter()
                .map(|(name, d)| EnumItem::new(name).description(format!("{d})."))),
        );
    let mut row = Object::new(&n.row).description(format!(
        "One row of a {} funnel: a step of one group (the dimensions selected, of the entity's first-step event). Rows come ordered by the groups, then in step order.",
        model.name
    ));
    for (name, _, ty, desc) in VALUES {
        row = row.field(Field::new(name, TypeRef::named(ty), row_value).description(desc));
    }
    row = row.field(
        Field::new(FIRST_STEP_TIME, TypeRef::named(TypeRef::STRING), row_value)
            .description("The bucket of the entity's first-step event time (selecting it groups by it), RFC 3339 in UTC.")
            .argument(granularity_argument()),
    );
    // the dimensions some step's table reaches (a request checks its own first step's)
    let reachable = |table: &str| {
        model
            .funnels
            .iter()
            .flat_map(|f| f.steps.iter())
            .any(|s| model.join_path(&s.table, table).is_some())
    };
    for d in model.dimensions.iter().filter(|d| reachable(&d.table)) {
        let mut f = Field::new(d.name.clone(), TypeRef::named(dim_type(d.dim_type)), row_value)
            .description(format!(
                "{} Groups by the value of the entity's first-step event (it must reach this dimension's table).",
                d.description
            ));
        if d.dim_type == DimType::Time {
            f = f.argument(granularity_argument());
        }
        row = row.field(f);
    }
    let step_where = InputObject::new(&n.step_where)
        .description(format!(
            "A filter of one step's events in a {} funnel: only the events that match count as the step.",
            model.name
        ))
        .field(InputValue::new("step", TypeRef::named_nn(&n.step)).description("The step (one of those asked for)."))
        .field(
            InputValue::new("where", TypeRef::named_nn(super::metrics::type_names(model).where_input))
                .description("The condition, over dimensions the step's table reaches."),
        );
    builder = builder
        .register(funnels)
        .register(steps)
        .register(row)
        .register(step_where);
    builder
}

fn granularity_argument() -> InputValue {
    InputValue::new("granularity", TypeRef::named("Granularity"))
        .default_value(Value::Enum(async_graphql::Name::new("DAY")))
        .description("The bucket size.")
}

/// The funnel fields of a model's object (none without funnels).
pub(crate) fn fields(model: &Arc<Model>) -> Vec<Field> {
    if model.funnels.is_empty() {
        return Vec::new();
    }
    let n = names(model);
    let where_input = super::metrics::type_names(model).where_input;
    let m = model.clone();
    let funnel = Field::new("funnel", TypeRef::named_nn_list_nn(&n.row), move |ctx| {
        let model = m.clone();
        FieldFuture::new(async move {
            Ok(Some(match resolve_rows(&ctx, &model).await? {
                Resolved::Prebuilt => FieldValue::list(std::iter::empty::<FieldValue>()),
                Resolved::Rows(rows) => {
                    FieldValue::list(rows.into_iter().map(FieldValue::owned_any))
                }
            }))
        })
    })
    .description(format!(
        "A funnel of {}: per entity, its earliest first-step event, then for each next step the earliest event strictly after the previous step's (within the window), with the same properties; one row per group and step. One SQL statement (docs/SEMANTIC-LAYER.md, \"Funnels\").",
        model.name
    ));
    let m = model.clone();
    let sankey = Field::new("funnelSankey", TypeRef::named_nn(SANKEY), move |ctx| {
        let model = m.clone();
        FieldFuture::new(
            async move { Ok(Some(FieldValue::value(resolve_sankey(&ctx, &model).await?))) },
        )
    })
    .description(format!(
        "A funnel of {} as a Sankey (the same numbers as `funnel` without dimensions).",
        model.name
    ));
    let args = |f: Field| {
        f.argument(InputValue::new("name", TypeRef::named_nn(&n.funnel)).description("The funnel."))
            .argument(InputValue::new("steps", TypeRef::named_nn_list(&n.step)).description("The steps, in the funnel's order, at least two (default: every step of the funnel)."))
            .argument(InputValue::new("within", TypeRef::named(WINDOW)).description("The window (default: the funnel's own, else none)."))
            .argument(
                InputValue::new("per", TypeRef::named(PER))
                    .default_value(Value::Enum(async_graphql::Name::new("STEP")))
                    .description("What the window bounds: each step after the previous (STEP) or every step after the first (OVERALL)."),
            )
            .argument(common::as_of_argument())
            .argument(InputValue::new("where", TypeRef::named(&where_input)).description("Only entities whose first-step event matches (dimensions its table reaches): the numbers are those of the filtered entities."))
            .argument(InputValue::new("stepWhere", TypeRef::named_nn_list(&n.step_where)).description("Filters of single steps: only the step's events that match count as that step (the first step's filter chooses which events can start a journey)."))
    };
    vec![args(funnel), args(sankey)]
}

/// Reads `name`, `steps`, `within`, `per` and `asOf` into a funnel spec.
fn read_funnel(ctx: &ResolverContext<'_>, model: &Model) -> Result<QuerySpec, Error> {
    let as_of = common::as_of_arg(&ctx.args)?;
    let name = ctx.args.try_get("name")?.enum_name()?.to_owned();
    let mut steps = Vec::new();
    if let Some(s) = ctx.args.get("steps")
        && !s.is_null()
    {
        for x in s.list()?.iter() {
            steps.push(x.enum_name()?.to_owned());
        }
    }
    let within = match ctx.args.get("within") {
        Some(w) if !w.is_null() => {
            let o = w.object()?;
            let part = |k: &str| -> Result<Option<i64>, Error> {
                match o.get(k) {
                    Some(v) if !v.is_null() => Ok(Some(v.i64()?)),
                    _ => Ok(None),
                }
            };
            Some(Within {
                minutes: part("minutes")?,
                hours: part("hours")?,
                days: part("days")?,
                weeks: part("weeks")?,
            })
        }
        _ => None,
    };
    let per = match ctx.args.get("per") {
        Some(p) if !p.is_null() && p.enum_name()? == "OVERALL" => WindowPer::Overall,
        _ => WindowPer::Step,
    };
    let mut spec = QuerySpec::funnel_of(
        model.name.clone(),
        FunnelSpec {
            name,
            steps,
            within,
            per,
            step_filters: Vec::new(),
        },
        as_of,
    );
    let lookup = |d: &str| model.dimension(d).map(|d| d.dim_type);
    read_args(ctx, &mut spec, &lookup)?;
    let mut step_filters = Vec::new();
    if let Some(list) = ctx.args.get("stepWhere")
        && !list.is_null()
    {
        let limits = ctx
            .ctx
            .data_opt::<super::RequestLimits>()
            .copied()
            .unwrap_or_default();
        let path = format!("{}.stepWhere", super::common::path(ctx));
        for item in list.list()?.iter() {
            let o = item.object()?;
            let step = o.try_get("step")?.enum_name()?.to_owned();
            let before = spec.values.len();
            let filter = read_where(
                &lookup,
                &o.try_get("where")?.object()?,
                &mut spec.values,
                &limits,
                &path,
                0,
            )?;
            super::metrics::check_filter_size(&filter, spec.values.len() - before, &limits, &path)?;
            step_filters.push(StepFilter { step, filter });
        }
    }
    if let Some(f) = spec.funnel.as_mut() {
        f.step_filters = step_filters;
    }
    Ok(spec)
}

async fn resolve_rows(ctx: &ResolverContext<'_>, model: &Arc<Model>) -> Result<Resolved, Error> {
    let mut spec = read_funnel(ctx, model)?;
    let keys = read_selection(ctx, &mut spec, |f| {
        let name = f.name();
        if let Some((_, v, _, _)) = VALUES.iter().find(|(n, ..)| *n == name) {
            return Ok(Item::Funnel(*v));
        }
        let granularity = || -> Result<Granularity, Error> {
            for (arg, v) in f.arguments()? {
                if arg.as_str() == "granularity"
                    && let Value::Enum(e) = v
                {
                    return Ok(Granularity::parse(e.as_str()).unwrap_or(Granularity::Day));
                }
            }
            Ok(Granularity::Day)
        };
        if name == FIRST_STEP_TIME {
            return Ok(Item::Funnel(FunnelValue::FirstStepTime(granularity()?)));
        }
        let time = model
            .dimension(name)
            .is_some_and(|d| d.dim_type == DimType::Time);
        Ok(Item::Dimension {
            name: name.to_owned(),
            granularity: if time { Some(granularity()?) } else { None },
        })
    })?;
    let table = run(ctx, &spec).await?;
    Ok(deliver(ctx, &keys, &names(model).row, table))
}

async fn run(
    ctx: &ResolverContext<'_>,
    spec: &QuerySpec,
) -> Result<crate::engine::Table<Value>, Error> {
    let engine = common::engine(ctx)?;
    let session = common::session(ctx)?;
    engine
        .run::<Value>(&session, spec)
        .await
        .map_err(ApiError::into_graphql)
}

async fn resolve_sankey(ctx: &ResolverContext<'_>, model: &Arc<Model>) -> Result<Value, Error> {
    let mut spec = read_funnel(ctx, model)?;
    for (key, v) in [
        ("step", FunnelValue::Step),
        ("entities", FunnelValue::Entities),
    ] {
        spec.fields.push(crate::query::Selected {
            key: key.to_owned(),
            item: Item::Funnel(v),
        });
    }
    let table = run(ctx, &spec).await?;
    let funnel = model.funnel(
        &spec
            .funnel
            .as_ref()
            .map(|f| f.name.clone())
            .unwrap_or_default(),
    );
    let steps: Vec<(String, String, i64)> = table
        .rows
        .iter()
        .map(|r| {
            let name = match r.first() {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            };
            let n = match r.get(1) {
                Some(Value::Number(x)) => x.as_i64().unwrap_or(0),
                _ => 0,
            };
            let label = funnel
                .and_then(|f| f.step(&name))
                .map(|s| s.label.clone())
                .unwrap_or_else(|| name.clone());
            (name, label, n)
        })
        .collect();
    Ok(sankey(&steps))
}

/// The Sankey of a funnel's steps `(name, label, entities)`, in order: a node per step, a
/// `DROPPED_AFTER_<step>` node per step but the last; links step → next step (entities of the
/// next) and step → its dropped node (entities of the step minus those of the next).
pub(super) fn sankey(steps: &[(String, String, i64)]) -> Value {
    let obj = |pairs: Vec<(&str, Value)>| {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (async_graphql::Name::new(k), v))
                .collect(),
        )
    };
    let node = |id: &str, label: &str, value: i64| {
        obj(vec![
            ("id", Value::from(id)),
            ("label", Value::from(label)),
            ("value", Value::from(value)),
        ])
    };
    let link = |s: &str, t: &str, value: i64| {
        obj(vec![
            ("source", Value::from(s)),
            ("target", Value::from(t)),
            ("value", Value::from(value)),
        ])
    };
    let mut nodes: Vec<Value> = steps.iter().map(|(n, l, v)| node(n, l, *v)).collect();
    let mut links = Vec::new();
    for w in steps.windows(2) {
        let ((a, label, na), (b, _, nb)) = (&w[0], &w[1]);
        let dropped = format!("DROPPED_AFTER_{a}");
        nodes.push(node(&dropped, &format!("Dropped after {label}"), na - nb));
        links.push(link(a, b, *nb));
        links.push(link(a, &dropped, na - nb));
    }
    obj(vec![
        ("nodes", Value::List(nodes)),
        ("links", Value::List(links)),
    ])
}
