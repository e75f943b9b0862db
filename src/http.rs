//! axum routes only: `POST /graphql`, the explorer at `/`, the dashboard at `/dashboard`,
//! `/healthz` (liveness: never touches the database), `/readyz` (readiness: the database
//! answers), `/metrics`; and the server's life cycle: its own HTTP/1.1 connection loop
//! ([`serve_on`]: header-read and idle timeouts, a shutdown that drains, then drops).
//!
//! Where API keys are configured ([`crate::auth`]) every `/graphql` request presents one
//! (else HTTP 401 `UNAUTHENTICATED`); its role goes to the schema as request data (what it
//! may read is checked on the parsed document) and its caller and budget to the engine.
//! CORS answers the origins of `http.cors_origins` only.
//!
//! Every request gets an id (`x-request-id`, the client's when it sends a sane one) that is
//! in its log line, its response headers and the `extensions.requestId` of its errors. A
//! GraphQL request gets its time budget and admission control from the engine
//! ([`crate::engine::guard`]); when a statement of it was refused a turn (`OVERLOADED`) or
//! found the database unavailable (`DATABASE_UNAVAILABLE`) the response is HTTP 503 (with
//! `Retry-After` when overloaded).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::Executor as _;
use async_graphql::dynamic::Schema;
use async_graphql_axum::GraphQLResponse;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::auth::{Auth, Identity};
use crate::config::ServeConfig;
use crate::db;
use crate::engine::{Guard, Limits};
use crate::error::{ApiError, Error};
use crate::graphql::RequestLimits;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Seconds a client told `OVERLOADED` is asked to wait (`Retry-After`).
const RETRY_AFTER_SECONDS: u64 = 1;

/// The response header (and request header) carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The application's routes over a connection pool, with the default models.
pub fn app(db: DatabaseConnection) -> Result<Router, Error> {
    let models = crate::semantic::load_models(None)?;
    app_with(db, models)
}

/// The application's routes over a connection pool and validated models.
pub fn app_with(
    db: DatabaseConnection,
    models: Vec<crate::semantic::Model>,
) -> Result<Router, Error> {
    app_with_saas(db, models, None)
}

/// [`app_with`], with the saas lifecycle fields using `saas` (the settings of the served
/// models folder; see [`crate::graphql::build_with_saas`]).
pub fn app_with_saas(
    db: DatabaseConnection,
    models: Vec<crate::semantic::Model>,
    saas: Option<crate::saas::SaasConfig>,
) -> Result<Router, Error> {
    app_with_limits(db, models, saas, None)
}

/// [`app_with_saas`], with the engine bounded by `limits` (time budget, statements at once;
/// `None`: the pool's defaults) and the default request limits.
pub fn app_with_limits(
    db: DatabaseConnection,
    models: Vec<crate::semantic::Model>,
    saas: Option<crate::saas::SaasConfig>,
    limits: Option<Limits>,
) -> Result<Router, Error> {
    let settings = Settings {
        engine: limits,
        ..Settings::default()
    };
    app_with_settings(db, models, saas, settings)
}

/// What bounds the server's work (docs/OPERATIONS.md), and who may ask
/// (docs/CONFIGURATION.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The engine's time budget and admission control; `None`: the pool's defaults.
    pub engine: Option<Limits>,
    /// What one GraphQL request may select.
    pub request: RequestLimits,
    /// Bytes of a request body (`--max-body-bytes`, default 1 MiB).
    pub max_body_bytes: usize,
    /// Operations of a batch (`--max-batch`, default 10).
    pub max_batch: usize,
    /// API keys and roles (default: none, the server is open).
    pub auth: Arc<Auth>,
    /// Whether `/metrics` answers without a key (default true).
    pub metrics_public: bool,
    /// Origins a browser may call `/graphql` from (`http.cors_origins`; default none).
    pub cors_origins: Vec<String>,
    /// The engine's result cache (`serve` keeps 64 MiB by default; off here, for embedders
    /// and tests that write with SQL of their own and read back at once).
    pub result_cache: crate::engine::ResultCacheSettings,
    /// Whether metrics are read from the models' rollups when one answers exactly (default
    /// true; off: always from the event tables, e.g. to compare).
    pub rollups: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            engine: None,
            request: RequestLimits::default(),
            max_body_bytes: 1 << 20,
            max_batch: 10,
            auth: Arc::new(Auth::default()),
            metrics_public: true,
            cors_origins: Vec::new(),
            result_cache: crate::engine::ResultCacheSettings::off(),
            rollups: true,
        }
    }
}

/// [`app_with_saas`] with `settings`.
pub fn app_with_settings(
    db: DatabaseConnection,
    models: Vec<crate::semantic::Model>,
    saas: Option<crate::saas::SaasConfig>,
    settings: Settings,
) -> Result<Router, Error> {
    settings.auth.check_against(&models)?;
    let (schema, guard) = crate::graphql::build_served(
        Some(db.clone()),
        models,
        saas,
        settings.engine,
        settings.request,
        settings.result_cache,
        settings.rollups,
    )
    .map_err(|e| Error::Config(format!("the GraphQL schema is broken: {e}")))?;
    let guard = guard.ok_or_else(|| Error::Config("the schema has no engine".to_owned()))?;
    let budget = settings
        .engine
        .map(|l| l.statement_timeout)
        .unwrap_or(crate::engine::guard::DEFAULT_STATEMENT_TIMEOUT);
    let state = AppState {
        schema,
        db,
        budget,
        max_body_bytes: settings.max_body_bytes,
        max_batch: settings.max_batch,
        guard: guard.clone(),
        auth: settings.auth.clone(),
        metrics_public: settings.metrics_public,
    };
    let cors = Arc::new(Cors::new(&settings.cors_origins)?);
    Ok(Router::new()
        .route("/graphql", get(graphql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state))
        .merge(crate::explorer::router())
        .merge(crate::dashboard::router())
        .layer(middleware::from_fn_with_state(cors, cors_layer))
        .layer(middleware::from_fn_with_state(guard, log_request)))
}

/// The origins a browser may call tally from (`http.cors_origins`): a preflight
/// (`OPTIONS` with `Access-Control-Request-Method`) from one of them is answered 204 with the
/// methods and headers `/graphql` takes; a preflight from any other origin gets 403 and no
/// CORS header; an actual request from an allowed origin gets
/// `Access-Control-Allow-Origin` naming it (never `*`, never credentials: keys travel in
/// the `Authorization` header, not in cookies). Off (no origin) by default.
#[derive(Debug)]
struct Cors {
    origins: Vec<HeaderValue>,
}

/// How long a browser may keep a preflight's answer.
const CORS_MAX_AGE_SECONDS: u64 = 600;

impl Cors {
    fn new(origins: &[String]) -> Result<Cors, Error> {
        let origins = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o).map_err(|_| {
                    Error::Config(format!("http.cors_origins: {o:?} is not a header value"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Cors { origins })
    }

    fn allows(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        self.origins.iter().find(|o| *o == origin).cloned()
    }
}

/// The CORS middleware ([`Cors`]).
async fn cors_layer(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == axum::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if cors.origins.is_empty() && !preflight {
        return next.run(req).await;
    }
    let allowed = cors.allows(origin.as_ref());
    if preflight {
        let Some(origin) = allowed else {
            return (
                StatusCode::FORBIDDEN,
                "CORS: this origin may not call tally (http.cors_origins)\n",
            )
                .into_response();
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-api-key, x-request-id"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(CORS_MAX_AGE_SECONDS),
        );
        h.insert(header::VARY, HeaderValue::from_static("origin"));
        return response;
    }
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, retry-after"),
        );
    }
    response
}

/// What the routes share.
struct AppState {
    schema: Schema,
    db: DatabaseConnection,
    budget: Duration,
    max_body_bytes: usize,
    max_batch: usize,
    guard: Arc<Guard>,
    auth: Arc<Auth>,
    metrics_public: bool,
}

/// The id of a request (`x-request-id`), in the request's extensions.
#[derive(Debug, Clone)]
struct RequestId(String);

/// A GraphQL error response refusing the whole request: `status`, `LIMIT_EXCEEDED` (or
/// the given error) with the request id.
fn refuse(status: StatusCode, error: ApiError, id: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": error.message(),
            "extensions": { "code": error.code(), "requestId": id }
        }]
    });
    (status, axum::Json(body)).into_response()
}

/// The GraphQL request (or batch) of `req`: a GET's query string, or a POST's body of at
/// most `max_body` bytes (`LIMIT_EXCEEDED`, HTTP 413, past it).
async fn read_request(
    req: Request,
    max_body: usize,
    id: &str,
) -> Result<async_graphql::BatchRequest, Response> {
    let bad = |e: String| refuse(StatusCode::BAD_REQUEST, ApiError::GraphqlParseFailed(e), id);
    if req.method() == axum::http::Method::GET {
        return async_graphql::http::parse_query_string(req.uri().query().unwrap_or_default())
            .map(async_graphql::BatchRequest::Single)
            .map_err(|e| bad(format!("the query string is not a GraphQL request: {e}")));
    }
    let too_big = |size: String| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::LimitExceeded(format!(
                "the request body is {size}; the limit is {max_body} bytes (--max-body-bytes)"
            )),
            id,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > max_body as u64
    {
        return Err(too_big(format!("{n} bytes")));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(req.into_body(), max_body)
        .await
        .map_err(|_| too_big(format!("more than {max_body} bytes")))?;
    async_graphql::http::receive_batch_body(
        content_type,
        body.as_ref(),
        async_graphql::http::MultipartOptions::default(),
    )
    .await
    .map_err(|e| bad(format!("the body is not a GraphQL request: {e}")))
}

/// `/graphql`: runs the request (or batch, at most `--max-batch` operations) with its scope
/// (id, time budget) as data; HTTP 503 when the database could not take it.
async fn graphql(
    State(app): State<Arc<AppState>>,
    axum::Extension(id): axum::Extension<RequestId>,
    req: Request,
) -> Response {
    let identity = match app.auth.authenticate(req.headers()) {
        Ok(identity) => identity,
        Err(refusal) => {
            Guard::count(&app.guard.counters().rejected_requests);
            return unauthenticated(refusal, &id.0);
        }
    };
    let batch = match read_request(req, app.max_body_bytes, &id.0).await {
        Ok(b) => b,
        Err(response) => {
            Guard::count(&app.guard.counters().rejected_requests);
            return response;
        }
    };
    if let async_graphql::BatchRequest::Batch(ops) = &batch
        && ops.len() > app.max_batch
    {
        Guard::count(&app.guard.counters().rejected_requests);
        return refuse(
            StatusCode::BAD_REQUEST,
            ApiError::LimitExceeded(format!(
                "the batch holds {} operations; the limit is {} (--max-batch)",
                ops.len(),
                app.max_batch
            )),
            &id.0,
        );
    }
    let scope = crate::auth::request_scope(identity.as_ref(), id.0.clone(), app.budget);
    let mut batch = batch.data(scope.clone());
    if let Some(i) = &identity {
        tracing::debug!(key = %i.key, role = %i.role.name, "caller");
        batch = batch.data(i.role.clone());
    }
    let mut answer = app.schema.execute_batch(batch).await;
    let responses: Vec<&mut async_graphql::Response> = match &mut answer {
        async_graphql::BatchResponse::Single(r) => vec![r],
        async_graphql::BatchResponse::Batch(rs) => rs.iter_mut().collect(),
    };
    let hide_sql = identity.as_ref().filter(|i| !i.role.explain_sql);
    // a TIMEOUT at a role's own budget names that budget and where it is set
    let role_budget = identity
        .as_ref()
        .and_then(|i| Some((i.role.statement_timeout?, i.role.name.as_str())));
    for r in responses {
        if let Some(i) = hide_sql {
            hide_explain_sql(r, i);
        }
        for e in &mut r.errors {
            let code = e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|v| match v {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "UNKNOWN".to_owned());
            if e.path.is_empty() {
                // refused before any field ran (parse, validation, limits)
                app.guard.counters().field("(request)", &code, 0.0);
            }
            if let Some((budget, role)) = role_budget
                && code == "TIMEOUT"
            {
                e.message = format!(
                    "the request ran longer than its time budget of {} (auth.roles.{role}.statement_timeout) and was stopped; ask for less (a shorter period, fewer dimensions, a coarser granularity) or raise the budget",
                    crate::engine::guard::seconds(budget)
                );
            }
            e.extensions
                .get_or_insert_with(Default::default)
                .set("requestId", id.0.as_str());
        }
    }
    let mut response = GraphQLResponse::from(answer).into_response();
    if scope.overloaded() || scope.unavailable() {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        if scope.overloaded() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
    }
    response
}

/// HTTP 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer`.
fn unauthenticated(refusal: crate::auth::Refusal, id: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, refusal.error(), id);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tally\""),
    );
    response
}

/// Removes the SQL and parameters of every `extensions.explain` entry of `response` (the
/// role of `identity` may not see them); the timings, paths and join paths stay, and each
/// entry says why its SQL is missing.
fn hide_explain_sql(response: &mut async_graphql::Response, identity: &Identity) {
    let Some(async_graphql::Value::List(entries)) = response.extensions.get_mut("explain") else {
        return;
    };
    let why = format!(
        "hidden: the role {} does not see SQL (auth.roles.{}.explain_sql)",
        identity.role.name, identity.role.name
    );
    for entry in entries {
        if let async_graphql::Value::Object(fields) = entry {
            fields.shift_remove("params");
            if fields
                .get("sql")
                .is_some_and(|v| !matches!(v, async_graphql::Value::Null))
            {
                fields.insert(async_graphql::Name::new("sql"), async_graphql::Value::Null);
                fields.insert(
                    async_graphql::Name::new("sqlHidden"),
                    async_graphql::Value::from(why.as_str()),
                );
            }
        }
    }
}

/// `GET /healthz`: liveness. 200 `ok` while the process serves requests; it never waits on
/// the database or its pool (readiness is `/readyz`).
async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// `GET /readyz`: readiness. 200 `ready` when the database answers `SELECT 1` within 2 s,
/// 503 otherwise (the cause is logged, not shown).
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let db = &app.db;
    let stmt = Statement::from_string(db.get_database_backend(), "SELECT 1");
    match tokio::time::timeout(READY_TIMEOUT, db.execute_raw(stmt)).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!("readiness: the database failed: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database cannot be reached\n",
            )
                .into_response()
        }
        Err(_) => {
            tracing::warn!("readiness: the database did not answer within 2 s");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the database did not answer within 2 s\n",
            )
                .into_response()
        }
    }
}

/// The request id a client sent, when it is sane (1 to 128 visible ASCII characters of
/// `A-Z a-z 0-9 - _ . :`), else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// A new request id: milliseconds since the epoch and a counter, in hex.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format!("{millis:x}-{:06x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One structured log line per request: request id, method, path, status, duration; the id
/// is also in the response's `x-request-id`. The request is counted for `/metrics` by route
/// (the path of a known route, else `other`) and status.
async fn log_request(State(guard): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = {
        use tracing::Instrument as _;
        next.run(req).instrument(span.clone()).await
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    let seconds = started.elapsed().as_secs_f64();
    let route = match path.as_str() {
        "/graphql" | "/healthz" | "/readyz" | "/metrics" | "/" | "/dashboard" => path.as_str(),
        p if p.starts_with("/explorer/") => "/explorer/*",
        p if p.starts_with("/dashboard/") => "/dashboard/*",
        _ => "other",
    };
    guard
        .counters()
        .request(route, response.status().as_u16(), seconds);
    let _entered = span.enter();
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = (seconds * 1e6) as u64,
        "request"
    );
    response
}

/// `GET /metrics`: the server's counters in the Prometheus text format (docs/OPERATIONS.md).
async fn metrics(
    State(app): State<Arc<AppState>>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !app.metrics_public
        && let Err(refusal) = app.auth.authenticate(&headers)
    {
        return unauthenticated(refusal, &id.0);
    }
    let pool = pool_state(&app.db);
    let text = crate::engine::guard::prometheus(&app.guard, pool);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The pool's connections: open, idle, and at most.
fn pool_state(db: &DatabaseConnection) -> (u32, usize, u32) {
    crate::sql::dialect_of(db).pool_state(db)
}

/// Whether no model holds any row yet (then `serve` loads demo data).
pub async fn database_is_empty(db: &DatabaseConnection) -> Result<bool, Error> {
    for model in db::MODELS {
        let tables = crate::graphql::tables_of(model);
        for table in tables {
            let sql = format!("SELECT 1 AS one FROM \"{model}\".\"{table}\" LIMIT 1");
            let row = db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await?;
            if row.is_some() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// On a database tally only reads: says once how the saas lifecycle answers are computed (the
/// stage history is used when `tally migrate` made it and it is fresh; tally never builds or
/// refreshes it there).
async fn report_stage_history(
    conn: &sea_orm::DatabaseConnection,
    models: &[crate::semantic::Model],
    saas: crate::saas::SaasConfig,
) {
    use crate::saas::{StageSource, history};
    let Some(model) = models.iter().find(|m| m.name == "saas") else {
        return;
    };
    if model.namespace != "saas" {
        tracing::info!(
            namespace = %model.namespace,
            "saas lifecycle answers are computed from the events (read-only database: no stage history)"
        );
        return;
    }
    match history::status(conn).await {
        Ok(Some(s)) if s.source_for(&saas) == StageSource::History => {
            tracing::info!(
                "saas stage history is fresh: lifecycle answers read it (read-only: tally does not refresh it)"
            );
        }
        Ok(Some(_)) => tracing::info!(
            "saas stage history is stale: lifecycle answers are computed from the events (read-only: tally does not refresh it; `tally migrate` and a load do)"
        ),
        Ok(None) => tracing::info!(
            "saas lifecycle answers are computed from the events (read-only database: no stage history; `tally migrate` creates it where tally may write)"
        ),
        Err(e) => tracing::warn!("saas stage history: {e}"),
    }
}

/// Prepares the saas stage history (`crate::saas::history`) for serving: creates its tables
/// and triggers when missing, installs the background refresher, and starts a refresh when
/// the history is stale or built for another grace period. Until that refresh is done,
/// stage questions are answered from the event tables (correct, slower).
async fn prepare_stage_history(
    conn: &sea_orm::DatabaseConnection,
    saas: crate::saas::SaasConfig,
) -> Result<(), Error> {
    use crate::saas::history;
    if let Err(e) = history::ensure(conn).await {
        // e.g. an engine without triggers: stages are always computed from the tables
        tracing::warn!("saas stage history unavailable: {e}");
        return Ok(());
    }
    let refresher = history::Refresher::new(conn.clone(), saas);
    history::install(refresher.clone());
    let usable = history::status(conn)
        .await?
        .is_some_and(|s| s.source_for(&saas) == crate::saas::StageSource::History);
    if usable {
        tracing::info!("saas stage history is fresh");
    } else {
        tracing::info!("saas stage history is stale: refreshing in the background");
        refresher.kick();
    }
    Ok(())
}

/// Runs the server until SIGTERM or Ctrl-C and drains in-flight requests on shutdown.
///
/// The embedded default (no database given) is tally's own: it is created and migrated, and
/// demo data is loaded into it when it is empty. A database given with `--db` belongs to its
/// users and is only read (`--demo` asks tally to migrate it and load demo data when empty).
pub async fn serve(config: ServeConfig) -> Result<(), Error> {
    let url = config.database.url().to_owned();
    let writable = config.database.writable();
    if writable {
        // A broken model file stops the server before it writes to the database. (On a
        // given database the models are checked against it below: their columns come from it.)
        crate::semantic::load_models(config.models_dir.as_deref())?;
    }
    let guardrails = config.guardrails;
    let conn = db::connect_serving(&url, writable, guardrails.db_acquire_timeout).await?;
    if writable {
        db::migrate(&conn).await?;
    }
    let limits = guardrails.limits(crate::engine::pool_size(&conn))?;
    tracing::info!(
        db = %db::redact(&url),
        access = if writable { "read-write" } else { "read-only" },
        "database ready"
    );
    if config.database.demo_when_empty() && database_is_empty(&conn).await? {
        tracing::info!(
            scale = config.demo_scale,
            "database is empty: loading demo data"
        );
        let opts = crate::demo::DemoOptions {
            scale: config.demo_scale,
            seed: 42,
        };
        for model in db::MODELS {
            let started = Instant::now();
            let report = crate::demo::load_demo(&conn, model, &opts, false).await?;
            let rows: u64 = report.tables.iter().map(|t| t.rows_inserted).sum();
            tracing::info!(
                model,
                rows,
                seconds = started.elapsed().as_secs_f64(),
                "demo data loaded"
            );
        }
    }
    // The models against the live database: where their tables are, their columns.
    let models = crate::engine::load_live_models(
        &conn,
        config.models_dir.as_deref(),
        &config.namespaces,
        config.only.as_ref(),
    )
    .await?;
    tracing::info!(
        models = models.len(),
        "models validated against the database"
    );
    let saas = crate::saas::SaasConfig::load(
        crate::semantic::models_dir(config.models_dir.as_deref()).as_deref(),
    )?;
    if writable {
        prepare_stage_history(&conn, saas).await?;
        // rollups stale or never built: rebuilt before the first request
        for report in crate::rollup::refresh_all(&conn, &models, false).await? {
            tracing::info!(%report, "rollup rebuilt");
        }
    } else {
        report_stage_history(&conn, &models, saas).await;
    }
    // SQLite's planner reads the statistics ANALYZE wrote (after the demo load, the stage
    // history, the rollups) only on connections opened after it: the pool that wrote is
    // replaced by a fresh one before the first request
    let conn = if writable {
        conn.close().await.ok();
        db::connect_serving(&url, writable, guardrails.db_acquire_timeout).await?
    } else {
        conn
    };
    tracing::info!(
        statement_timeout = %crate::engine::guard::seconds(limits.statement_timeout),
        max_concurrent_queries = limits.max_queries,
        queue_timeout = %crate::engine::guard::seconds(limits.queue_timeout),
        db_acquire_timeout = %crate::engine::guard::seconds(guardrails.db_acquire_timeout),
        "guardrails"
    );
    let metrics_public = config.metrics_public();
    tracing::info!(
        bytes = config.result_cache.bytes,
        poll = %crate::engine::guard::seconds(config.result_cache.poll_interval),
        "result cache"
    );
    if !config.rollups {
        tracing::info!("rollups off (--rollups off): metrics are read from the source rows");
    }
    let settings = Settings {
        engine: Some(limits),
        request: guardrails.request,
        max_body_bytes: guardrails.max_body_bytes,
        max_batch: guardrails.max_batch,
        auth: Arc::new(config.auth.clone()),
        metrics_public,
        cors_origins: config.http.cors_origins.clone(),
        result_cache: config.result_cache,
        rollups: config.rollups,
    };
    let app = app_with_settings(conn, models, Some(saas), settings)?;
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| Error::Io {
            context: format!("cannot listen on {}", config.bind),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        context: "cannot read the listening address".to_owned(),
        source,
    })?;
    let reach = if addr.ip().is_loopback() {
        "only programs on this machine can reach it".to_owned()
    } else {
        format!("anyone who can reach {addr} on the network can read every model")
    };
    if config.auth.is_open() {
        tracing::warn!(
            "no API key is configured: the server is OPEN, every request is answered; {reach}"
        );
    } else {
        tracing::info!(
            keys = config.auth.keys.len(),
            roles = config.auth.roles.len(),
            metrics_public,
            "API keys required on /graphql"
        );
    }
    tracing::info!(
        header_read_timeout = %crate::engine::guard::seconds(config.http.header_read_timeout),
        idle_timeout = %crate::engine::guard::seconds(config.http.idle_timeout),
        shutdown_timeout = %crate::engine::guard::seconds(config.http.shutdown_timeout),
        cors_origins = config.http.cors_origins.len(),
        "connections"
    );
    println!(
        "tally is serving {} ({})",
        db::redact(&url),
        if writable { "read-write" } else { "read-only" }
    );
    println!("  dashboard: http://{addr}/dashboard");
    println!("  explorer:  http://{addr}/");
    println!("  GraphQL:   http://{addr}/graphql");
    println!("  health:    http://{addr}/healthz (liveness), http://{addr}/readyz (database)");
    if config.auth.is_open() {
        println!("  access:    OPEN (no API key configured): {reach}");
    } else {
        println!(
            "  access:    API key required ({} keys, {} roles)",
            config.auth.keys.len(),
            config.auth.roles.len()
        );
    }
    serve_on(listener, app, config.http.clone(), shutdown).await?;
    tracing::info!("shut down");
    Ok(())
}

/// What one connection is doing: requests running, and when the last one ended.
#[derive(Debug)]
struct Activity {
    running: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Instant>,
}

impl Activity {
    /// When the connection has been idle for `idle` (a while from now when a request runs).
    fn idle_deadline(&self, idle: Duration) -> Instant {
        use std::sync::atomic::Ordering;
        if self.running.load(Ordering::SeqCst) > 0 {
            return Instant::now() + idle;
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) + idle
    }
}

/// Ends a request of a connection ([`Activity`]) when dropped (also when the request is).
struct Running(Arc<Activity>);

impl Running {
    fn start(activity: &Arc<Activity>) -> Running {
        activity
            .running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(activity.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, with the connection timeouts of
/// `http`: a client has `header_read_timeout` to send a request's headers, a connection with
/// no request for `idle_timeout` is closed. On `shutdown` the listener is closed, every
/// connection is told to close once its running request is answered, and requests still
/// running after `shutdown_timeout` are dropped (which cancels their statements in the
/// database).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    app: Router,
    http: crate::config::HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error> {
    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // e.g. out of file descriptors: wait, then accept again
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                connections.spawn(connection(stream, app.clone(), http.clone(), close_rx.clone()));
            }
        }
    }
    drop(listener);
    let _ = close_tx.send(true);
    let running = connections.len();
    if running > 0 {
        tracing::info!(
            connections = running,
            "draining: waiting for running requests"
        );
    }
    let drained = tokio::time::timeout(http.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            shutdown_timeout = %crate::engine::guard::seconds(http.shutdown_timeout),
            "requests still running at the shutdown timeout are dropped (their statements are cancelled)"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Serves one connection (HTTP/1.1) until it ends, idles past `idle_timeout`, or `close`
/// says the server shuts down.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    http: crate::config::HttpConfig,
    mut close: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let activity = Arc::new(Activity {
        running: std::sync::atomic::AtomicUsize::new(0),
        last: std::sync::Mutex::new(Instant::now()),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            let running = Running::start(&activity);
            async move {
                use tower_service::Service as _;
                let response = app.call(req.map(axum::body::Body::new)).await;
                drop(running);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = *close.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let idle_at = activity.idle_deadline(http.idle_timeout);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection closed: {e}");
                }
                break;
            }
            _ = close.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_at.into()), if !closing => {
                if activity.idle_deadline(http.idle_timeout) <= Instant::now() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A future resolving on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed here, before
/// the server announces itself, so a signal sent as soon as it answers is not missed.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send, Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|source| Error::Io {
                context: format!("cannot handle {name}"),
                source,
            })
        };
        let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
        let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("shutdown signal received: draining requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received: draining requests");
        })
    }
}
