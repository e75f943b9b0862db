//! axum routes only: `POST /graphql`, the explorer at `/`, the dashboard at `/dashboard`,
//! `/healthz`; and the server's life cycle.

use std::time::Instant;

use async_graphql_axum::GraphQL;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::config::ServeConfig;
use crate::db;
use crate::error::Error;

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
    let schema = crate::graphql::build_with_saas(Some(db.clone()), models, saas)
        .map_err(|e| Error::Config(format!("the GraphQL schema is broken: {e}")))?;
    Ok(Router::new()
        .route_service("/graphql", GraphQL::new(schema))
        .route("/healthz", get(healthz))
        .with_state(db)
        .merge(crate::explorer::router())
        .merge(crate::dashboard::router())
        .layer(middleware::from_fn(log_request)))
}

/// `GET /healthz`: 200 `ok` when the database answers, 503 with the reason otherwise.
async fn healthz(State(db): State<DatabaseConnection>) -> Response {
    let stmt = Statement::from_string(db.get_database_backend(), "SELECT 1");
    match db.execute_raw(stmt).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}\n"),
        )
            .into_response(),
    }
}

/// One structured log line per request: method, path, status, duration.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
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

/// Runs the server until SIGTERM or Ctrl-C: connects, migrates, loads demo data into an empty
/// database, prints the URLs, serves, and drains in-flight requests on shutdown.
pub async fn serve(config: ServeConfig) -> Result<(), Error> {
    // A broken model stops the server before it touches the database.
    let models = crate::semantic::load_models(config.models_dir.as_deref())?;
    tracing::info!(models = models.len(), "models validated");
    let conn = db::connect(&config.database_url).await?;
    db::migrate(&conn).await?;
    // The models must match the live database too (columns, SQL tables that run).
    crate::engine::check_live(&models, &conn)
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    tracing::info!(db = %db::redact(&config.database_url), "database ready");
    if config.demo_when_empty && database_is_empty(&conn).await? {
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
    let saas = crate::saas::SaasConfig::load(
        crate::semantic::models_dir(config.models_dir.as_deref()).as_deref(),
    )?;
    prepare_stage_history(&conn, saas).await?;
    let app = app_with_saas(conn, models, Some(saas))?;
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
    println!("tally is serving {}", db::redact(&config.database_url));
    println!("  dashboard: http://{addr}/dashboard");
    println!("  explorer:  http://{addr}/");
    println!("  GraphQL:   http://{addr}/graphql");
    println!("  health:    http://{addr}/healthz");
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
