//! The `tally` command line: parse arguments, build settings, call into the library.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::config::ServeConfig;
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
    Serve(Box<ServeArgs>),
    /// API keys: `tally key new --role NAME` prints a fresh key once, and the lines to paste
    /// into the configuration file (which holds only its hash).
    Key {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeyCommand,
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

/// `tally serve`'s command line: the configuration file, and the flags that win over it.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; docs/CONFIGURATION.md). Flags and their environment
    /// variables win over it.
    #[arg(long, env = "TALLY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The flags.
    #[command(flatten)]
    pub flags: crate::config::ServeFlags,
}

/// `tally key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new random key for a role: prints the key (shown once: give it to its user)
    /// and the `[[auth.keys]]` lines holding its hash, for the configuration file.
    New {
        /// The role the key has (an `[auth.roles.NAME]` of the configuration file).
        #[arg(long)]
        role: String,
        /// A tenant attribute, NAME=VALUE (e.g. branch_id=b1); repeatable, a name given
        /// twice holds several values.
        #[arg(long = "attr")]
        attributes: Vec<String>,
        /// A label for logs.
        #[arg(long)]
        name: Option<String>,
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
        Command::Serve(args) => {
            let ServeArgs { config, flags } = *args;
            let file = match &config {
                Some(path) => crate::config::FileConfig::load(path)?,
                None => crate::config::FileConfig::default(),
            };
            let config = ServeConfig::resolve(&file, &flags)?;
            config.check_open()?;
            crate::http::serve(config).await?;
        }
        Command::Key {
            command:
                KeyCommand::New {
                    role,
                    attributes,
                    name,
                },
        } => {
            if !crate::auth::is_name(&role) {
                return Err(Error::Input(format!(
                    "--role {role:?}: a role's name must be letters, digits and _"
                )));
            }
            let attributes = crate::auth::parse_attributes(&attributes)?;
            let key = crate::auth::new_key()?;
            let lines = crate::auth::key_toml(&key, &role, &attributes, name.as_deref());
            println!("{key}");
            eprintln!(
                "\nThe key above is shown once: give it to its user (it is sent as `Authorization: Bearer KEY`).\nPaste these lines into the configuration file (it keeps only the key's hash), and define [auth.roles.{role}] there:\n"
            );
            print!("{lines}");
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
