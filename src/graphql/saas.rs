//! The saas lifecycle fields of `Query.saas` (next to the semantic layer's `metrics`):
//! `stageCounts`, `journey`, `transitions` and the `users` drill-down (`crate::saas`).
//!
//! Types: the enums `SaasStage`, `SaasChurnReason`; the input `SaasCohort`; the objects
//! `SaasStageCount`, `SaasFlow`, `SaasFlowNode`, `SaasFlowLink`, `SaasUserConnection`,
//! `SaasUserEdge`, `SaasPageInfo`, `SaasUser`, `SaasShop`, `SaasPlan`, `SaasInvoice`,
//! `SaasPayment`.
//!
//! The lists below a user (shops, a shop's plan, its invoices, their payments) are resolved
//! with async-graphql dataloaders created per `users` field: every level of the selection
//! is ONE SQL statement whatever the number of rows, so a `users` request costs at most seven
//! statements (the page and its users' details, `totalCount`, shops, plans, invoices,
//! payments).
//!
//! The grace period of unpaid invoices comes from the saas model's `[saas] grace_days`
//! ([`SaasConfig::load_default`], read when the schema is built); a request may override it
//! by carrying a [`SaasConfig`] as request data (tests do).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ObjectAccessor, ResolverContext, SchemaBuilder, TypeRef,
};
use async_graphql::{Error, Name, Value};
use chrono::{DateTime, Utc};

use super::common;
use crate::engine::Session;
use crate::error::ApiError;
use crate::saas::drill::{self, Invoice, Payment, Plan, Shop};
use crate::saas::{
    ChurnReason, Cohort, Flow, SaasConfig, Stage, UserFilter, UserStage, format_time,
};

/// `users(limit:)` when not given.
const DEFAULT_USERS: u64 = 50;

/// The most keys one dataloader batch sends in one statement (keys travel as one JSON
/// parameter, so this only bounds the statement's work).
const MAX_BATCH: usize = 100_000;

/// The saas settings a request runs with: its own [`SaasConfig`] request data, else the
/// schema's (`graphql::build_with_saas`, what `serve` uses), else the one read when the
/// schema was built.
fn config_of(
    ctx: &ResolverContext<'_>,
    built: &Result<SaasConfig, String>,
) -> Result<SaasConfig, Error> {
    if let Some(c) = ctx.data_opt::<SaasConfig>() {
        return Ok(*c);
    }
    built
        .clone()
        .map_err(|m| ApiError::BadConfig(m).into_graphql())
}

/// An enum value.
fn enum_value(name: &str) -> Value {
    Value::Enum(Name::new(name))
}

/// A field of an object whose parent value is a `T`, computed by `get`.
fn getter<T: Send + Sync + 'static>(
    name: &str,
    ty: TypeRef,
    description: &str,
    get: fn(&T) -> Option<Value>,
) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let v = ctx.parent_value.try_downcast_ref::<T>()?;
            Ok(get(v))
        })
    })
    .description(description)
}

/// An instant argument (`from`, `to`, a cohort bound): RFC 3339 read by
/// [`common::parse_as_of`]; a bad value is the error `wrap` makes of a message naming the
/// argument.
fn instant(name: &str, s: &str, wrap: fn(String) -> ApiError) -> Result<DateTime<Utc>, Error> {
    common::parse_as_of(Some(s)).map_err(|_| {
        wrap(format!(
            "{name} {s:?} is not an RFC 3339 instant (expected e.g. 2024-12-01T00:00:00Z)"
        ))
        .into_graphql()
    })
}

/// Reads the optional `cohort` argument.
fn cohort_arg(args: &ObjectAccessor<'_>) -> Result<Cohort, Error> {
    let Some(v) = args.get("cohort").filter(|v| !v.is_null()) else {
        return Ok(Cohort::default());
    };
    let obj = v.object()?;
    let bound = |key: &str| -> Result<Option<DateTime<Utc>>, Error> {
        match obj.get(key) {
            Some(v) if !v.is_null() => {
                instant(&format!("cohort.{key}"), v.string()?, ApiError::BadArgument).map(Some)
            }
            _ => Ok(None),
        }
    };
    let cohort = Cohort {
        from: bound("from")?,
        to: bound("to")?,
    };
    if let (Some(f), Some(t)) = (cohort.from, cohort.to)
        && f > t
    {
        return Err(common::bad_argument(format!(
            "cohort.from ({}) is later than cohort.to ({})",
            format_time(f),
            format_time(t)
        )));
    }
    Ok(cohort)
}

/// Reads the optional `stage` argument.
fn stage_arg(args: &ObjectAccessor<'_>) -> Result<Option<Stage>, Error> {
    match args.get("stage") {
        Some(v) if !v.is_null() => {
            let name = v.enum_name()?;
            Stage::parse(name)
                .map(Some)
                .ok_or_else(|| common::bad_argument(format!("unknown stage {name}")))
        }
        _ => Ok(None),
    }
}

/// The cohort input's description.
const COHORT_DESCRIPTION: &str = "Only the signup cohort [from, to): users whose account creation counts as of the answer's instant and whose signup time (the creation event's event_time) is in the window (default: every user). The cohort can grow with asOf as late events arrive.";

/// Registers every type of the saas lifecycle fields.
pub(crate) fn register(builder: SchemaBuilder) -> SchemaBuilder {
    let stage = Enum::new("SaasStage")
        .description("A user's lifecycle stage at an instant: the first rule that holds, in the order CHURNED, CUSTOMER, PROSPECT, LEAD (SEMANTICS §2).")
        .item(EnumItem::new("LEAD").description("Signed up; no shop creation counts yet (and not churned)."))
        .item(EnumItem::new("PROSPECT").description("At least one shop creation counts; no payment yet (and not churned)."))
        .item(EnumItem::new("CUSTOMER").description("At least one payment counts (and not churned). A churned user who pays every delinquent invoice, with no deletion, is a customer again."))
        .item(EnumItem::new("CHURNED").description("The account deletion counts, or every shop the user created is deleted, or an invoice is delinquent (unpaid grace days after invoice_timestamp)."));
    let churn_reason = Enum::new("SaasChurnReason")
        .description("Why a user is CHURNED: the first churn rule that holds, in this order.")
        .item(EnumItem::new("ACCOUNT_DELETED").description("The user's user_delete_account event counts."))
        .item(EnumItem::new("ALL_SHOPS_DELETED").description("The user created at least one shop and a user_shop_delete counts for every one of them."))
        .item(EnumItem::new("DELINQUENT").description("An invoice of the user is delinquent: invoice_timestamp + grace <= asOf and no payment for it counts."));
    let cohort = InputObject::new("SaasCohort")
        .description("A signup window [from, to) in UTC on the account creation's event_time; a missing bound is open.")
        .field(InputValue::new("from", TypeRef::named(TypeRef::STRING)).description("Signed up at or after this instant (RFC 3339, e.g. 2024-01-01T00:00:00Z)."))
        .field(InputValue::new("to", TypeRef::named(TypeRef::STRING)).description("Signed up strictly before this instant (RFC 3339)."));
    let stage_count = Object::new("SaasStageCount")
        .description("How many users are in a stage.")
        .field(getter::<(Stage, i64)>(
            "stage",
            TypeRef::named_nn("SaasStage"),
            "The stage.",
            |v| Some(enum_value(v.0.as_str())),
        ))
        .field(getter::<(Stage, i64)>(
            "count",
            TypeRef::named_nn(TypeRef::INT),
            "Users in the stage (unit: count of users).",
            |v| Some(Value::from(v.1)),
        ));
    let flow = Object::new("SaasFlow")
        .description("A Sankey-ready flow of users: nodes and the links between them, zero counts included so the shape never depends on the data.")
        .field(
            Field::new("nodes", TypeRef::named_nn_list_nn("SaasFlowNode"), |ctx| {
                FieldFuture::new(async move {
                    let f = ctx.parent_value.try_downcast_ref::<Flow>()?;
                    Ok(Some(FieldValue::list(f.nodes.iter().map(|x| FieldValue::borrowed_any(x)))))
                })
            })
            .description("Every node, parents before children."),
        )
        .field(
            Field::new("links", TypeRef::named_nn_list_nn("SaasFlowLink"), |ctx| {
                FieldFuture::new(async move {
                    let f = ctx.parent_value.try_downcast_ref::<Flow>()?;
                    Ok(Some(FieldValue::list(f.links.iter().map(|x| FieldValue::borrowed_any(x)))))
                })
            })
            .description("Every link from a node to one of its branches."),
        );
    let node = Object::new("SaasFlowNode")
        .description("A node of a flow.")
        .field(getter::<crate::saas::FlowNode>("id", TypeRef::named_nn(TypeRef::STRING), "A stable id, unique in the flow (journey: SIGNED_UP, CREATED_SHOP, …; transitions: from:<STAGE>, to:<STAGE>); links refer to it.", |n| Some(Value::from(n.id.clone()))))
        .field(getter::<crate::saas::FlowNode>("label", TypeRef::named_nn(TypeRef::STRING), "What to print on the node (two journey nodes share \"Deleted shop\" and two share \"Did not pay\").", |n| Some(Value::from(n.label.clone()))))
        .field(getter::<crate::saas::FlowNode>("count", TypeRef::named_nn(TypeRef::INT), "Users in the node, equal to the links flowing into it (unit: count of users).", |n| Some(Value::from(n.count))))
        .field(getter::<crate::saas::FlowNode>("level", TypeRef::named_nn(TypeRef::INT), "The node's column in the Sankey, 0 first.", |n| Some(Value::from(n.level))));
    let link = Object::new("SaasFlowLink")
        .description("Users going from one node to another.")
        .field(getter::<crate::saas::FlowLink>(
            "source",
            TypeRef::named_nn(TypeRef::STRING),
            "The id of the node they come from.",
            |l| Some(Value::from(l.source.clone())),
        ))
        .field(getter::<crate::saas::FlowLink>(
            "target",
            TypeRef::named_nn(TypeRef::STRING),
            "The id of the node they go to.",
            |l| Some(Value::from(l.target.clone())),
        ))
        .field(getter::<crate::saas::FlowLink>(
            "count",
            TypeRef::named_nn(TypeRef::INT),
            "How many users (unit: count of users).",
            |l| Some(Value::from(l.count)),
        ));
    builder
        .register(stage)
        .register(churn_reason)
        .register(cohort)
        .register(stage_count)
        .register(flow)
        .register(node)
        .register(link)
        .register(connection_object())
        .register(edge_object())
        .register(page_info_object())
        .register(user_object())
        .register(shop_object())
        .register(plan_object())
        .register(invoice_object())
        .register(payment_object())
}

/// The fields the saas lifecycle adds to `Query.saas`, with the settings of the saas model
/// read now ([`SaasConfig::load_default`]).
pub(crate) fn fields() -> Vec<Field> {
    let config: Arc<Result<SaasConfig, String>> =
        Arc::new(SaasConfig::load_default().map_err(|e| e.to_string()));
    vec![
        stage_counts_field(),
        journey_field(config.clone()),
        transitions_field(config.clone()),
        users_field(config),
    ]
}

/// The `cohort` argument.
fn cohort_argument() -> InputValue {
    InputValue::new("cohort", TypeRef::named("SaasCohort")).description(COHORT_DESCRIPTION)
}

/// `stageCounts(asOf, cohort)`.
fn stage_counts_field() -> Field {
    Field::new("stageCounts", TypeRef::named_nn_list_nn("SaasStageCount"), move |ctx| {
        FieldFuture::new(async move {
            let engine = common::engine(&ctx)?;
            let session = common::session(&ctx)?;
            let as_of = common::as_of_arg(&ctx.args)?;
            let cohort = cohort_arg(&ctx.args)?;
            let counts = crate::saas::stage_counts_by_metric(engine, &session, as_of, &cohort)
                .await
                .map_err(ApiError::into_graphql)?;
            Ok(Some(FieldValue::list(counts.into_iter().map(FieldValue::owned_any))))
        })
    })
    .description("Users per lifecycle stage as of asOf: all four stages in the order LEAD, PROSPECT, CUSTOMER, CHURNED, zeros included; their sum is every user whose account creation counts (of the cohort, when given). The saas model's lifecycleUsers metric grouped by stage (one SQL statement; the grace period is the model's [saas] grace_days). Unit: count of users.")
    .argument(common::as_of_argument())
    .argument(cohort_argument())
}

/// `journey(asOf, cohort)`.
fn journey_field(config: Arc<Result<SaasConfig, String>>) -> Field {
    Field::new("journey", TypeRef::named_nn("SaasFlow"), move |ctx| {
        let config = config.clone();
        FieldFuture::new(async move {
            let cfg = config_of(&ctx, &config)?;
            let session = common::session(&ctx)?;
            let as_of = common::as_of_arg(&ctx.args)?;
            let cohort = cohort_arg(&ctx.args)?;
            let flow = crate::saas::journey(&session, as_of, &cfg, &cohort)
                .await
                .map_err(ApiError::into_graphql)?;
            Ok(Some(FieldValue::owned_any(flow)))
        })
    })
    .description("The journey of a signup cohort as of asOf, as a Sankey (counts of users; SEMANTICS §2). Level 0: SIGNED_UP. Level 1 (first branch that holds): CREATED_SHOP (a shop creation counts) | DELETED_ACCOUNT (no shop ever, account deleted) | NO_SHOP_YET. Level 2 under CREATED_SHOP: PAID_INVOICE (>= 1 payment) | DELETED_SHOP (no payment; account or all shops deleted) | DID_NOT_PAY (no payment; delinquent) | AWAITING_PAYMENT. Level 3 under PAID_INVOICE: REPEAT (CUSTOMER, >= 2 distinct payments) | PAID_THEN_DELETED_SHOP (CHURNED by a deletion) | PAID_THEN_DID_NOT_PAY (CHURNED by delinquency only) | PAID_ONCE (CUSTOMER, 1 payment). Every node's count equals its inflow and, for inner nodes, its outflow; AWAITING_PAYMENT = PROSPECT, and when every paying or invoiced user's shop creation counts (consistent data), NO_SHOP_YET = LEAD, REPEAT + PAID_ONCE = CUSTOMER and the other leaves add up to CHURNED. Node ids are stable; labels follow SEMANTICS §2. One SQL statement.")
    .argument(common::as_of_argument())
    .argument(cohort_argument())
}

/// `transitions(from, to, cohort)`.
fn transitions_field(config: Arc<Result<SaasConfig, String>>) -> Field {
    Field::new("transitions", TypeRef::named_nn("SaasFlow"), move |ctx| {
        let config = config.clone();
        FieldFuture::new(async move {
            let cfg = config_of(&ctx, &config)?;
            let session = common::session(&ctx)?;
            let from = instant("from", ctx.args.try_get("from")?.string()?, ApiError::BadAsOf)?;
            let to = instant("to", ctx.args.try_get("to")?.string()?, ApiError::BadAsOf)?;
            let cohort = cohort_arg(&ctx.args)?;
            let flow = crate::saas::transitions(&session, from, to, &cfg, &cohort)
                .await
                .map_err(ApiError::into_graphql)?;
            Ok(Some(FieldValue::owned_any(flow)))
        })
    })
    .description("Stage transitions between two instants, as a Sankey: nodes from:<X> (level 0: the stage at `from`, each as known at `from`, or from:NOT_SIGNED_UP for users whose account creation does not count yet at `from`) and to:<STAGE> (level 1: the stage at `to`), and the 20 links between them, zero counts included (unit: count of users). Users are those existing at `to` (of the cohort, as of `to`). One SQL statement.")
    .argument(InputValue::new("from", TypeRef::named_nn(TypeRef::STRING)).description("T0, the earlier instant (RFC 3339, e.g. 2024-01-01T00:00:00Z); stages at T0 use only what was known at T0."))
    .argument(InputValue::new("to", TypeRef::named_nn(TypeRef::STRING)).description("T1, the later instant (RFC 3339); must not be earlier than from."))
    .argument(cohort_argument())
}

/// Per-`users`-field state shared by every node below it: T, the settings, the loaders.
struct Drill {
    shops: DataLoader<ShopLoader>,
    plans: DataLoader<PlanLoader>,
    invoices: DataLoader<InvoiceLoader>,
    payments: DataLoader<PaymentLoader>,
}

impl Drill {
    fn new(session: &Session, as_of: DateTime<Utc>, config: SaasConfig) -> Drill {
        let make = |session: &Session| Batch {
            session: session.clone(),
            as_of,
            config,
        };
        Drill {
            shops: DataLoader::new(ShopLoader(make(session)), tokio::spawn)
                .max_batch_size(MAX_BATCH),
            plans: DataLoader::new(PlanLoader(make(session)), tokio::spawn)
                .max_batch_size(MAX_BATCH),
            invoices: DataLoader::new(InvoiceLoader(make(session)), tokio::spawn)
                .max_batch_size(MAX_BATCH),
            payments: DataLoader::new(PaymentLoader(make(session)), tokio::spawn)
                .max_batch_size(MAX_BATCH),
        }
    }
}

/// What every loader needs: the connection, T and the settings.
struct Batch {
    session: Session,
    as_of: DateTime<Utc>,
    config: SaasConfig,
}

/// Loads the shops of many users (key: user id) in one statement.
struct ShopLoader(Batch);
/// Loads many plans as of T (key: plan id) in one statement.
struct PlanLoader(Batch);
/// Loads the invoices of many shops (key: shop id) in one statement.
struct InvoiceLoader(Batch);
/// Loads the payments of many invoices (key: invoice id) in one statement.
struct PaymentLoader(Batch);

impl Loader<String> for ShopLoader {
    type Value = Vec<Shop>;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<Shop>>, ApiError> {
        drill::shops_of_users(&self.0.session, self.0.as_of, keys).await
    }
}

impl Loader<String> for PlanLoader {
    type Value = Plan;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Plan>, ApiError> {
        drill::plans(&self.0.session, self.0.as_of, keys).await
    }
}

impl Loader<String> for InvoiceLoader {
    type Value = Vec<Invoice>;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<Invoice>>, ApiError> {
        drill::invoices_of_shops(&self.0.session, self.0.as_of, &self.0.config, keys).await
    }
}

impl Loader<String> for PaymentLoader {
    type Value = Vec<Payment>;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<Payment>>, ApiError> {
        drill::payments_of_invoices(&self.0.session, self.0.as_of, keys).await
    }
}

/// The value of a `users` field.
struct Connection {
    edges: Vec<Edge>,
    has_next: bool,
    as_of: DateTime<Utc>,
    config: SaasConfig,
    filter: UserFilter,
    /// The `users` field's session: `totalCount` runs in it too.
    session: Session,
}

/// An edge: the user and the drill-down state.
struct Edge {
    node: UserNode,
}

/// A user with the loaders of its request.
struct UserNode {
    user: UserStage,
    drill: Arc<Drill>,
}

/// A shop with the loaders of its request.
struct ShopNode {
    shop: Shop,
    drill: Arc<Drill>,
}

/// An invoice with the loaders of its request.
struct InvoiceNode {
    invoice: Invoice,
    drill: Arc<Drill>,
}

/// `users(asOf, stage, cohort, limit, offset)`.
fn users_field(config: Arc<Result<SaasConfig, String>>) -> Field {
    Field::new("users", TypeRef::named_nn("SaasUserConnection"), move |ctx| {
        let config = config.clone();
        FieldFuture::new(async move {
            let cfg = config_of(&ctx, &config)?;
            let session = common::session(&ctx)?;
            let args = &ctx.args;
            let as_of = common::as_of_arg(args)?;
            let filter = UserFilter {
                stage: stage_arg(args)?,
                cohort: cohort_arg(args)?,
            };
            let page = common::page(
                match args.get("limit") {
                    Some(v) if !v.is_null() => Some(v.i64()?),
                    _ => Some(DEFAULT_USERS as i64),
                },
                match args.get("offset") {
                    Some(v) if !v.is_null() => Some(v.i64()?),
                    _ => None,
                },
            )?;
            let (users, has_next) = crate::saas::users_page(
                &session,
                as_of,
                &cfg,
                &filter,
                page.offset,
                Some(page.limit),
            )
            .await
            .map_err(ApiError::into_graphql)?;
            let drill = Arc::new(Drill::new(&session, as_of, cfg));
            let edges = users
                .into_iter()
                .map(|user| Edge {
                    node: UserNode {
                        user,
                        drill: drill.clone(),
                    },
                })
                .collect();
            Ok(Some(FieldValue::owned_any(Connection {
                edges,
                has_next,
                as_of,
                config: cfg,
                filter,
                session,
            })))
        })
    })
    .description("The users behind a stage or a cohort as of asOf, one page at a time in user_id byte order (limit and offset, like every list of the API). Each user comes with their shops, plans, invoices and payments as of asOf; every nested level is one SQL statement for the whole page (dataloaders): at most seven statements per request.")
    .argument(common::as_of_argument())
    .argument(InputValue::new("stage", TypeRef::named("SaasStage")).description("Only users in this stage as of asOf (default: every stage)."))
    .argument(cohort_argument())
    .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)).description(format!("At most this many users, 1 to {} (default {DEFAULT_USERS}).", common::MAX_LIMIT)))
    .argument(common::offset_argument())
}

/// `SaasUserConnection`.
fn connection_object() -> Object {
    Object::new("SaasUserConnection")
        .description("A page of users.")
        .field(
            Field::new("edges", TypeRef::named_nn_list_nn("SaasUserEdge"), |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<Connection>()?;
                    Ok(Some(FieldValue::list(c.edges.iter().map(|x| FieldValue::borrowed_any(x)))))
                })
            })
            .description("The users of the page, in user_id byte order."),
        )
        .field(
            Field::new("pageInfo", TypeRef::named_nn("SaasPageInfo"), |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<Connection>()?;
                    Ok(Some(FieldValue::borrowed_any(c)))
                })
            })
            .description("Where the page ends and whether more users follow."),
        )
        .field(
            Field::new("totalCount", TypeRef::named_nn(TypeRef::INT), |ctx| {
                FieldFuture::new(async move {
                    let c = ctx.parent_value.try_downcast_ref::<Connection>()?;
                    let n = crate::saas::users_total(&c.session, c.as_of, &c.config, &c.filter)
                        .await
                        .map_err(ApiError::into_graphql)?;
                    Ok(Some(Value::from(n)))
                })
            })
            .description("Users matching stage and cohort on every page (unit: count of users; one more SQL statement, run only when selected). With a stage and no cohort it equals that stage's stageCounts."),
        )
}

/// `SaasUserEdge`.
fn edge_object() -> Object {
    Object::new("SaasUserEdge")
        .description("A user of a page.")
        .field(
            Field::new("node", TypeRef::named_nn("SaasUser"), |ctx| {
                FieldFuture::new(async move {
                    let e = ctx.parent_value.try_downcast_ref::<Edge>()?;
                    Ok(Some(FieldValue::borrowed_any(&e.node)))
                })
            })
            .description("The user."),
        )
}

/// `SaasPageInfo`.
fn page_info_object() -> Object {
    Object::new("SaasPageInfo")
        .description("Paging state of a connection.")
        .field(getter::<Connection>(
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            "Whether more users follow this page (ask for the next one with offset + limit).",
            |c| Some(Value::from(c.has_next)),
        ))
}

/// `SaasUser`.
fn user_object() -> Object {
    Object::new("SaasUser")
        .description("A user existing as of asOf (their account creation counts) with their stage.")
        .field(getter::<UserNode>("userId", TypeRef::named_nn(TypeRef::STRING), "The user's id (metadata.user_id of the account creation event).", |u| Some(Value::from(u.user.user_id.clone()))))
        .field(getter::<UserNode>("email", TypeRef::named(TypeRef::STRING), "The email of the account creation event.", |u| u.user.email.clone().map(Value::from)))
        .field(getter::<UserNode>("signupTime", TypeRef::named_nn(TypeRef::STRING), "When the account was created: the creation event's event_time (RFC 3339, UTC).", |u| Some(Value::from(format_time(u.user.signup_time)))))
        .field(getter::<UserNode>("stage", TypeRef::named_nn("SaasStage"), "The stage as of asOf.", |u| Some(enum_value(u.user.stage.as_str()))))
        .field(getter::<UserNode>("churnReason", TypeRef::named("SaasChurnReason"), "Why the user is CHURNED (null otherwise).", |u| u.user.churn_reason.map(|r: ChurnReason| enum_value(r.as_str()))))
        .field(getter::<UserNode>("paymentCount", TypeRef::named_nn(TypeRef::INT), "Distinct payments of the user counting as of asOf (unit: count of payments).", |u| Some(Value::from(u.user.payment_count))))
        .field(getter::<UserNode>("planId", TypeRef::named(TypeRef::STRING), "The user's plan as of asOf: the plan of their latest created shop that is not deleted, else of their latest created shop (null without a shop).", |u| u.user.plan_id.clone().map(Value::from)))
        .field(
            Field::new("shops", TypeRef::named_nn_list_nn("SaasShop"), |ctx| {
                FieldFuture::new(async move {
                    let u = ctx.parent_value.try_downcast_ref::<UserNode>()?;
                    let shops = u
                        .drill
                        .shops
                        .load_one(u.user.user_id.clone())
                        .await
                        .map_err(ApiError::into_graphql)?
                        .unwrap_or_default();
                    let drill = u.drill.clone();
                    Ok(Some(FieldValue::list(shops.into_iter().map(move |shop| {
                        FieldValue::owned_any(ShopNode {
                            shop,
                            drill: drill.clone(),
                        })
                    }))))
                })
            })
            .description("The shops the user created (creation counts as of asOf), by creation time then shop id; deleted ones included."),
        )
}

/// `SaasShop`.
fn shop_object() -> Object {
    Object::new("SaasShop")
        .description("A shop as of asOf: ownership and plan from its user_shop_create event.")
        .field(getter::<ShopNode>("shopId", TypeRef::named_nn(TypeRef::STRING), "The shop's id.", |s| Some(Value::from(s.shop.shop_id.clone()))))
        .field(getter::<ShopNode>("createdAt", TypeRef::named_nn(TypeRef::STRING), "When the shop was created: its creation event's event_time (RFC 3339, UTC).", |s| Some(Value::from(format_time(s.shop.created_at)))))
        .field(getter::<ShopNode>("deleted", TypeRef::named_nn(TypeRef::BOOLEAN), "Whether a user_shop_delete of the shop counts as of asOf.", |s| Some(Value::from(s.shop.deleted))))
        .field(
            Field::new("plan", TypeRef::named("SaasPlan"), |ctx| {
                FieldFuture::new(async move {
                    let s = ctx.parent_value.try_downcast_ref::<ShopNode>()?;
                    let Some(plan_id) = s.shop.plan_id.clone() else {
                        return Ok(None);
                    };
                    let plan = s
                        .drill
                        .plans
                        .load_one(plan_id.clone())
                        .await
                        .map_err(ApiError::into_graphql)?
                        .unwrap_or(Plan {
                            plan_id,
                            invoice_amount: None,
                        });
                    Ok(Some(FieldValue::owned_any(plan)))
                })
            })
            .description("The shop's plan (from its creation event) as of asOf: the plans row of the latest partition ts <= asOf."),
        )
        .field(
            Field::new("invoices", TypeRef::named_nn_list_nn("SaasInvoice"), |ctx| {
                FieldFuture::new(async move {
                    let s = ctx.parent_value.try_downcast_ref::<ShopNode>()?;
                    let invoices = s
                        .drill
                        .invoices
                        .load_one(s.shop.shop_id.clone())
                        .await
                        .map_err(ApiError::into_graphql)?
                        .unwrap_or_default();
                    let drill = s.drill.clone();
                    Ok(Some(FieldValue::list(invoices.into_iter().map(move |invoice| {
                        FieldValue::owned_any(InvoiceNode {
                            invoice,
                            drill: drill.clone(),
                        })
                    }))))
                })
            })
            .description("The shop's invoices counting as of asOf (ds <= date(asOf) and invoice_timestamp <= asOf), by invoice time then id."),
        )
}

/// `SaasPlan`.
fn plan_object() -> Object {
    Object::new("SaasPlan")
        .description("A plan as of asOf.")
        .field(getter::<Plan>("planId", TypeRef::named_nn(TypeRef::STRING), "The plan's id.", |p| Some(Value::from(p.plan_id.clone()))))
        .field(getter::<Plan>("invoiceAmount", TypeRef::named(super::metrics::DECIMAL), "What a shop on the plan is invoiced, from the plans row of the latest partition ts <= asOf (unit: currency, Decimal with 2 places; null when the plan has no row yet).", |p| p.invoice_amount.clone().map(Value::from)))
}

/// `SaasInvoice`.
fn invoice_object() -> Object {
    Object::new("SaasInvoice")
        .description("An invoice as of asOf (from its latest counting ds partition).")
        .field(getter::<InvoiceNode>("invoiceId", TypeRef::named_nn(TypeRef::STRING), "The invoice's id.", |i| Some(Value::from(i.invoice.invoice_id.clone()))))
        .field(getter::<InvoiceNode>("invoiceAmount", TypeRef::named(super::metrics::DECIMAL), "The invoiced amount (unit: currency, Decimal with 2 places).", |i| i.invoice.invoice_amount.clone().map(Value::from)))
        .field(getter::<InvoiceNode>("invoiceTimestamp", TypeRef::named_nn(TypeRef::STRING), "When the invoice was issued (RFC 3339, UTC).", |i| Some(Value::from(format_time(i.invoice.invoice_timestamp)))))
        .field(getter::<InvoiceNode>("ds", TypeRef::named_nn(TypeRef::STRING), "The invoice's daily partition (YYYY-MM-DD, UTC).", |i| Some(Value::from(i.invoice.ds.clone()))))
        .field(getter::<InvoiceNode>("delinquent", TypeRef::named_nn(TypeRef::BOOLEAN), "Delinquent as of asOf: invoice_timestamp + grace <= asOf (grace: the saas model's grace_days, default 30 days) and no payment for it counts.", |i| Some(Value::from(i.invoice.delinquent))))
        .field(
            Field::new("payments", TypeRef::named_nn_list_nn("SaasPayment"), |ctx| {
                FieldFuture::new(async move {
                    let i = ctx.parent_value.try_downcast_ref::<InvoiceNode>()?;
                    let payments = i
                        .drill
                        .payments
                        .load_one(i.invoice.invoice_id.clone())
                        .await
                        .map_err(ApiError::into_graphql)?
                        .unwrap_or_default();
                    Ok(Some(FieldValue::list(payments.into_iter().map(FieldValue::owned_any))))
                })
            })
            .description("The invoice's payments counting as of asOf (from 00:00 UTC of their ds), distinct payment ids, by ds then id."),
        )
}

/// `SaasPayment`.
fn payment_object() -> Object {
    Object::new("SaasPayment")
        .description("A payment of an invoice (payments carry no amount: each pays its invoice).")
        .field(getter::<Payment>("paymentId", TypeRef::named_nn(TypeRef::STRING), "The payment's id.", |p| Some(Value::from(p.payment_id.clone()))))
        .field(getter::<Payment>("ds", TypeRef::named_nn(TypeRef::STRING), "The payment's daily partition (YYYY-MM-DD, UTC): it counts from 00:00 UTC of that day.", |p| Some(Value::from(p.ds.clone()))))
}
