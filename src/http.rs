//! axum routes only: `POST /graphql`, the explorer at `/`, the dashboard at `/dashboard`,
//! `/healthz` (liveness: never touches the database), `/readyz` (readiness: the database
//! answers); and the server's life cycle.
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

use crate::config::ServeConfig;
use crate::db;
use crate::engine::{Guard, Limits, RequestScope};
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

/// What bounds the server's work (docs/OPERATIONS.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// The engine's time budget and admission control; `None`: the pool's defaults.
    pub engine: Option<Limits>,
    /// What one GraphQL request may select.
    pub request: RequestLimits,
    /// Bytes of a request body (`--max-body-bytes`, default 1 MiB).
    pub max_body_bytes: usize,
    /// Operations of a batch (`--max-batch`, default 10).
    pub max_batch: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            engine: None,
            request: RequestLimits::default(),
            max_body_bytes: 1 << 20,
            max_batch: 10,
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
    let (schema, guard) = crate::graphql::build_served(
        Some(db.clone()),
        models,
        saas,
        settings.engine,
        settings.request,
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
    };
    Ok(Router::new()
        .route("/graphql", get(graphql).post(graphql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state))
        .merge(crate::explorer::router())
        .merge(crate::dashboard::router())
        .layer(middleware::from_fn_with_state(guard, log_request)))
}

/// What the routes share.
struct AppState {
    schema: Schema,
    db: DatabaseConnection,
    budget: Duration,
    max_body_bytes: usize,
    max_batch: usize,
    guard: Arc<Guard>,
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
    let scope = RequestScope::new(id.0.clone(), Some(Instant::now() + app.budget));
    let batch = batch.data(scope.clone());
    let mut answer = app.schema.execute_batch(batch).await;
    let responses: Vec<&mut async_graphql::Response> = match &mut answer {
        async_graphql::BatchResponse::Single(r) => vec![r],
        async_graphql::BatchResponse::Batch(rs) => rs.iter_mut().collect(),
    };
    for r in responses {
        for e in &mut r.errors {
            if e.path.is_empty() {
                // refused before any field ran (parse, validation, limits)
                let code = e
                    .extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .and_then(|v| match v {
                        async_graphql::Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "UNKNOWN".to_owned());
                app.guard.counters().field("(request)", &code, 0.0);
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
async fn metrics(State(app): State<Arc<AppState>>) -> Response {
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
    tracing::info!(
        statement_timeout = %crate::engine::guard::seconds(limits.statement_timeout),
        max_concurrent_queries = limits.max_queries,
        queue_timeout = %crate::engine::guard::seconds(limits.queue_timeout),
        db_acquire_timeout = %crate::engine::guard::seconds(guardrails.db_acquire_timeout),
        "guardrails"
    );
    let settings = Settings {
        engine: Some(limits),
        request: guardrails.request,
        max_body_bytes: guardrails.max_body_bytes,
        max_batch: guardrails.max_batch,
    };
    let app = app_with_settings(conn, models, Some(saas), settings)?;
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
    println!(
        "tally is serving {} ({})",
        db::redact(&url),
        if writable { "read-write" } else { "read-only" }
    );
    println!("  dashboard: http://{addr}/dashboard");
    println!("  explorer:  http://{addr}/");
    println!("  GraphQL:   http://{addr}/graphql");
    println!("  health:    http://{addr}/healthz (liveness), http://{addr}/readyz (database)");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| Error::Io {
            context: "the server stopped".to_owned(),
            source,
        })?;
    tracing::info!("shut down");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: draining requests");
}
