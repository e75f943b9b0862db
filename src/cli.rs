//! The `tally` command line: parse arguments, build settings, call into the library.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_BIND, ServeConfig};
use crate::db;
use crate::error::Error;

/// tally: a GraphQL semantic-layer server.
#[derive(Debug, Parser)]
#[command(name = "tally", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve GraphQL at /graphql, the explorer at / and the dashboard at /dashboard. Without
    /// --db: the embedded SQLite database ./tally.db, created with demo data on first start.
    /// With --db: that database, read-only (nothing is created or written unless --demo).
    Serve {
        /// Database URL: sqlite://FILE or postgres://USER@HOST/DB. Read-only unless --demo.
        #[arg(long = "db", env = "DATABASE_URL")]
        db: Option<String>,
        /// Address to listen on.
        #[arg(long, env = "TALLY_BIND", default_value = DEFAULT_BIND)]
        bind: String,
        /// Embedded default only: do not load demo data into the new database.
        #[arg(long, conflicts_with = "demo")]
        no_demo: bool,
        /// Write into the --db database: create the demo schema (migrate) and load demo data
        /// when it holds no rows.
        #[arg(long)]
        demo: bool,
        /// Scale of the demo data loaded into an empty database.
        #[arg(long, default_value_t = 1.0)]
        demo_scale: f64,
        /// Where a model's tables live: MODEL=NAMESPACE (a PostgreSQL schema or an attached
        /// SQLite database, e.g. gym=public); repeatable, or comma-separated in
        /// TALLY_NAMESPACES. Overrides the model file's `namespace`.
        #[arg(long = "namespace", env = "TALLY_NAMESPACES", value_delimiter = ',')]
        namespaces: Vec<String>,
        /// Serve only these models (comma-separated, e.g. gym,shop): for a database that
        /// holds the tables of some models only.
        #[arg(long, env = "TALLY_ONLY", value_delimiter = ',')]
        only: Vec<String>,
        /// Folder of model files (`<dir>/<model>/*.toml`); default `$TALLY_MODELS`, else
        /// `./models`, else the models built into the binary.
        #[arg(long)]
        models: Option<PathBuf>,
        /// Time budget of a request, in seconds: its statements are stopped inside the
        /// database when it is spent (TIMEOUT).
        #[arg(long, env = "TALLY_STATEMENT_TIMEOUT", default_value_t = 30.0)]
        statement_timeout: f64,
        /// Statements run at once, at most (default: the pool's connections minus two).
        #[arg(long, env = "TALLY_MAX_CONCURRENT_QUERIES")]
        max_concurrent_queries: Option<usize>,
        /// Seconds a statement waits for its turn before OVERLOADED (HTTP 503).
        #[arg(long, env = "TALLY_QUEUE_TIMEOUT", default_value_t = 2.0)]
        queue_timeout: f64,
        /// Seconds a statement waits for a database connection before
        /// DATABASE_UNAVAILABLE (HTTP 503).
        #[arg(long, env = "TALLY_DB_ACQUIRE_TIMEOUT", default_value_t = 2.0)]
        db_acquire_timeout: f64,
        /// Bytes of a request body, at most (LIMIT_EXCEEDED, HTTP 413).
        #[arg(long, env = "TALLY_MAX_BODY_BYTES", default_value_t = 1 << 20)]
        max_body_bytes: u64,
        /// Operations of a batch request, at most.
        #[arg(long, env = "TALLY_MAX_BATCH", default_value_t = 10)]
        max_batch: u64,
        /// Fields a request selects, at most (aliases and nested fields counted).
        #[arg(long, env = "TALLY_MAX_FIELDS", default_value_t = 2000)]
        max_fields: u64,
        /// Nesting of a request's selections, at most.
        #[arg(long, env = "TALLY_MAX_DEPTH", default_value_t = 32)]
        max_depth: u64,
        /// Metrics × dimensions one `metrics` field selects, at most.
        #[arg(long, env = "TALLY_MAX_METRICS_DIMENSIONS", default_value_t = 200)]
        max_metrics_dimensions: u64,
        /// Rows of a `metrics` field without `limit`, at most (the rest is cut and
        /// extensions.rowsCut says so).
        #[arg(long, env = "TALLY_MAX_ROWS", default_value_t = 10_000)]
        max_rows: u64,
    },
    /// Create or update the source tables of every model.
    Migrate {
        /// Database URL.
        #[arg(long = "db", env = "DATABASE_URL", default_value = db::DEFAULT_URL)]
        db: String,
    },
    /// Rollups declared in the model files (`[[rollup]]`).
    Rollup {
        /// What to do with them.
        #[command(subcommand)]
        action: RollupCommand,
    },
    /// Scaffold a model folder from an existing database's tables (read-only): tables, keys,
    /// joins from foreign keys, dimensions, measures and metrics; edit it, then serve it.
    Init {
        /// Database URL (read-only; it must exist).
        #[arg(long = "db", env = "DATABASE_URL")]
        db: String,
        /// The schema (PostgreSQL; default public) or attached database (SQLite; default main)
        /// whose tables are modelled.
        #[arg(long)]
        schema: Option<String>,
        /// The model's name (default: the schema's name; `main` and `public` give `model`).
        #[arg(long)]
        model: Option<String>,
        /// The folder the model folder is written into.
        #[arg(long, default_value = "models")]
        out: PathBuf,
    },
    /// Print the GraphQL schema (SDL) the server serves; schema.graphql is its output.
    Schema {
        /// Folder of model files (`<dir>/<model>/*.toml`); default `$TALLY_MODELS`, else
        /// `./models`, else the models built into the binary.
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Load one model's CSV files (one per table, `<table>.csv`, header = column names), all or nothing.
    Load {
        /// Database URL.
        #[arg(long = "db", env = "DATABASE_URL", default_value = db::DEFAULT_URL)]
        db: String,
        /// The model the files belong to: saas, gym, shop, social or web.
        #[arg(long)]
        model: String,
        /// The folder holding `<table>.csv` files.
        #[arg(long)]
        dir: PathBuf,
        /// How many row errors to list before counting the rest.
        #[arg(long, default_value_t = 20)]
        max_errors: usize,
        /// Let a row whose key was stored by an earlier load with other values overwrite
        /// it (otherwise an error); changes what past `asOf` answers saw, see README.
        #[arg(long)]
        replace: bool,
        /// The most MiB a field may hold (a row may take 4 times as much, at least 64 MiB).
        #[arg(long, default_value_t = 16)]
        max_field_mib: u64,
    },
    /// Generate deterministic demo data for all models (or one) and load it, or write it as CSV.
    Demo {
        /// Database URL.
        #[arg(long = "db", env = "DATABASE_URL", default_value = db::DEFAULT_URL)]
        db: String,
        /// Size: 1 ≈ 10k users per model; 100 ≈ 1M users and 10M events.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Random seed; the same seed and scale give the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
        /// Write CSV files into this folder (`<out>/<model>/<table>.csv`) instead of loading.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a GraphQL document in-process and print the result (csv flattens the first list).
    Query {
        /// The document, or @FILE to read it from a file.
        document: String,
        /// Variables as a JSON object.
        #[arg(long)]
        vars: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Database URL (read-only; it must exist).
        #[arg(long = "db", env = "DATABASE_URL", default_value = db::DEFAULT_URL)]
        db: String,
        /// Folder of model files (`<dir>/<model>/*.toml`); default `$TALLY_MODELS`, else
        /// `./models`, else the models built into the binary.
        #[arg(long)]
        models: Option<PathBuf>,
        /// Where a model's tables live: MODEL=NAMESPACE (e.g. gym=public); repeatable, or
        /// comma-separated in TALLY_NAMESPACES.
        #[arg(long = "namespace", env = "TALLY_NAMESPACES", value_delimiter = ',')]
        namespaces: Vec<String>,
        /// Answer from these models only (comma-separated, e.g. gym,shop).
        #[arg(long, env = "TALLY_ONLY", value_delimiter = ',')]
        only: Vec<String>,
    },
}

pub use crate::cli_query::Format;

/// `tally rollup …`
#[derive(Debug, Subcommand)]
pub enum RollupCommand {
    /// Rebuild the rollups that are stale, never built or built for another definition (all
    /// of them with --all), each in one transaction; creates their status table and the
    /// staleness triggers on their source tables. Writes to the database: run it only on a
    /// database tally may write to.
    Refresh {
        /// Database URL.
        #[arg(long = "db", env = "DATABASE_URL", default_value = db::DEFAULT_URL)]
        db: String,
        /// Folder of model files (`<dir>/<model>/*.toml`); default `$TALLY_MODELS`, else
        /// `./models`, else the models built into the binary.
        #[arg(long)]
        models: Option<PathBuf>,
        /// Rebuild every rollup, fresh or not.
        #[arg(long)]
        all: bool,
    },
}

/// Parses the process arguments and runs the command; the exit code says how it went.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match execute(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn check_model(model: &str) -> Result<(), Error> {
    if db::MODELS.contains(&model) {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "unknown model {model:?}; the models are {}",
            db::MODELS.join(", ")
        )))
    }
}

async fn execute(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Serve {
            db,
            bind,
            no_demo,
            demo,
            demo_scale,
            models,
            namespaces,
            only,
            statement_timeout,
            max_concurrent_queries,
            queue_timeout,
            db_acquire_timeout,
            max_body_bytes,
            max_batch,
            max_fields,
            max_depth,
            max_metrics_dimensions,
            max_rows,
        } => {
            use crate::config::count;
            let database = match db {
                None => crate::config::Database::Embedded { demo: !no_demo },
                Some(url) => crate::config::Database::Given { url, demo },
            };
            let mut config = ServeConfig::new(database, &bind, demo_scale, models)?;
            config.namespaces = crate::config::parse_namespaces(&namespaces)?;
            config.only = crate::config::parse_only(&only);
            config.guardrails = crate::config::Guardrails {
                statement_timeout: crate::config::seconds(
                    "--statement-timeout",
                    statement_timeout,
                )?,
                max_concurrent_queries,
                queue_timeout: crate::config::seconds("--queue-timeout", queue_timeout)?,
                db_acquire_timeout: crate::config::seconds(
                    "--db-acquire-timeout",
                    db_acquire_timeout,
                )?,
                request: crate::graphql::RequestLimits {
                    max_fields: count("--max-fields", max_fields)? as usize,
                    max_depth: count("--max-depth", max_depth)? as usize,
                    max_metrics_dimensions: count(
                        "--max-metrics-dimensions",
                        max_metrics_dimensions,
                    )? as usize,
                    max_rows: count("--max-rows", max_rows)?,
                },
                max_body_bytes: count("--max-body-bytes", max_body_bytes)? as usize,
                max_batch: count("--max-batch", max_batch)? as usize,
            };
            crate::http::serve(config).await?;
        }
        Command::Migrate { db } => {
            let conn = db::connect(&db).await?;
            db::migrate(&conn).await?;
            eprintln!("migrated {}", db::redact(&db));
            let models = load_models(None)?;
            for report in crate::rollup::refresh_all(&conn, &models, false).await? {
                eprintln!("rollup {report}");
            }
        }
        Command::Rollup {
            action: RollupCommand::Refresh { db, models, all },
        } => {
            let models = load_models(models.as_deref())?;
            let conn = db::connect(&db).await?;
            let reports = crate::rollup::refresh_all(&conn, &models, all).await?;
            if reports.is_empty() {
                eprintln!("every rollup is fresh (--all rebuilds them anyway)");
            }
            for report in reports {
                eprintln!("rollup {report}");
            }
        }
        Command::Init {
            db,
            schema,
            model,
            out,
        } => {
            let conn = db::open(&db).await?;
            let namespace = schema
                .unwrap_or_else(|| crate::sql::dialect_of(&conn).default_namespace().to_owned());
            let model = model.unwrap_or_else(|| match namespace.as_str() {
                "public" | "main" => "model".to_owned(),
                ns => ns.to_ascii_lowercase(),
            });
            let (path, tables) = crate::init::scaffold(&conn, &namespace, &model, &out).await?;
            eprintln!(
                "wrote {} ({tables} tables of {namespace:?}); serve it with: tally serve --db {} --models {} --only {model}",
                path.display(),
                db::redact(&db),
                out.display()
            );
        }
        Command::Schema { models } => {
            let models = load_models(models.as_deref())?;
            let schema = crate::graphql::build_with(None, models)
                .map_err(|e| Error::Config(format!("the GraphQL schema is broken: {e}")))?;
            crate::cli_query::print_out(&schema.sdl())?;
        }
        Command::Load {
            db,
            model,
            dir,
            max_errors,
            replace,
            max_field_mib,
        } => {
            check_model(&model)?;
            let conn = db::connect(&db).await?;
            db::migrate(&conn).await?;
            let mib = 1u64 << 20;
            let limits = crate::load::CsvLimits {
                max_field_bytes: max_field_mib.saturating_mul(mib),
                max_row_bytes: max_field_mib.saturating_mul(4 * mib).max(64 * mib),
            };
            let sources = crate::load::csv_sources_with(&model, &dir, limits)?;
            let opts = crate::load::LoadOptions {
                max_errors,
                replace,
                progress: std::io::stderr().is_terminal(),
                ..Default::default()
            };
            let started = Instant::now();
            match crate::load::load(&conn, &model, sources, &opts).await {
                Ok(report) => {
                    print_report(&report, started);
                }
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::Demo {
            db,
            scale,
            seed,
            model,
            out,
        } => {
            if let Some(m) = &model {
                check_model(m)?;
            }
            let models: Vec<&str> = match &model {
                Some(m) => vec![m.as_str()],
                None => db::MODELS.to_vec(),
            };
            let opts = crate::demo::DemoOptions { scale, seed };
            if let Some(out) = out {
                for m in models {
                    let rows = crate::demo::write_csv(m, &opts, &out)?;
                    eprintln!("{m}: wrote {rows} rows under {}", out.join(m).display());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let conn = db::connect(&db).await?;
            db::migrate(&conn).await?;
            for m in models {
                let started = Instant::now();
                let report = load_demo(&conn, m, &opts, std::io::stderr().is_terminal()).await?;
                print_report(&report, started);
            }
        }
        Command::Query {
            document,
            vars,
            format,
            db,
            models,
            namespaces,
            only,
        } => {
            let text = match document.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|source| Error::Io {
                    context: format!("cannot read the query file {path}"),
                    source,
                })?,
                None => document,
            };
            let variables = match vars {
                Some(v) => Some(
                    serde_json::from_str::<serde_json::Value>(&v)
                        .map_err(|e| Error::Input(format!("--vars is not a JSON object: {e}")))?,
                ),
                None => None,
            };
            let conn = db::open(&db).await?;
            let namespaces = crate::config::parse_namespaces(&namespaces)?;
            let only = crate::config::parse_only(&only);
            let models = crate::engine::load_live_models(
                &conn,
                models.as_deref(),
                &namespaces,
                only.as_ref(),
            )
            .await?;
            let code = crate::cli_query::run(conn, models, &text, variables, format).await?;
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub use crate::semantic::load_models;

pub use crate::demo::load_demo;

fn print_report(report: &crate::load::LoadReport, started: Instant) {
    let mut read = 0;
    let mut inserted = 0;
    for t in &report.tables {
        eprintln!(
            "  {}.{}: {} rows read, {} inserted, {} replaced, {} already present",
            report.model,
            t.table,
            t.rows_read,
            t.rows_inserted,
            t.rows_replaced,
            t.rows_already_present
        );
        read += t.rows_read;
        inserted += t.rows_inserted;
    }
    if let Some(h) = &report.stage_history {
        eprintln!("  {} stage history {h}", report.model);
    }
    for r in &report.rollups {
        eprintln!("  rollup {r}");
    }
    eprintln!(
        "{}: {read} rows read, {inserted} inserted in {:.1}s",
        report.model,
        started.elapsed().as_secs_f64()
    );
}
