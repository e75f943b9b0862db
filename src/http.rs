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
    let conn = if writable {
        let conn = db::connect(&url).await?;
        db::migrate(&conn).await?;
        conn
    } else {
        db::open(&url).await?
    };
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
    } else {
        report_stage_history(&conn, &models, saas).await;
    }
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
    println!(
        "tally is serving {} ({})",
        db::redact(&url),
        if writable { "read-write" } else { "read-only" }
    );
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
