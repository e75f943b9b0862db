//! # tally
//!
//! A GraphQL semantic-layer server. Source tables (five shipped models: `saas`, `gym`,
//! `shop`, `social`, `web`) are modelled by the Sea-ORM entities of the `entity` crate and
//! created by the `migration` crate; tally loads them from CSV files or synthesises demo data,
//! and serves GraphQL over them, computed inside the database.
//!
//! A map of the modules, in the order a request flows through them:
//!
//! - [`cli`]: the `tally` command line (serve, migrate, load, demo, query, schema).
//! - [`config`]: typed settings shared by the commands, and the configuration file.
//! - [`auth`]: API keys (stored hashed) and roles: who may read what.
//! - [`http`]: axum routes only: `POST /graphql`, the explorer at `/`, the dashboard at
//!   `/dashboard` ([`dashboard`]), `/healthz`.
//! - [`cli_query`]: `tally query`, a document run in-process and printed as JSON or CSV.
//! - [`graphql`]: the GraphQL schema and its thin resolvers.
//! - [`db`]: the only place that turns a URL into a connection pool (namespaces per model).
//! - [`load`]: the streaming, validating, all-or-nothing CSV loader.
//! - [`demo`]: deterministic synthetic data for every model, fed through the loader.
//! - [`error`]: user errors vs internal errors.
//!
//! The semantic layer, in pipeline order (see `docs/SEMANTIC-LAYER.md`):
//!
//! - [`semantic`]: model files (TOML) → validated models (tables, joins, dimensions,
//!   measures, metrics).
//! - [`query`]: a request as a typed, validated `QuerySpec`.
//! - [`plan`]: a `QuerySpec` → plan nodes (asOf cuts, per-table aggregates, output).
//! - [`sql`]: a plan → one parameterised statement per dialect.
//! - [`engine`]: the one place reads run: one engine per database (pool, dialect, models,
//!   caches); every field answers through it.
//! - [`saas`]: the SaaS lifecycle: stages at any instant, journey, transitions, drill-down
//!   (SQL files under `sql/saas/`).
//! - [`lexer`]: the one reader of `$n` placeholders, quotes and comments in SQL text.
//! - [`tz`]: UTC offsets of time zones as a table, for SQLite.
//! - [`init`]: `tally init`, a model folder scaffolded from an existing database.
#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod allocator;
pub mod auth;
pub mod cli;
pub mod cli_query;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod demo;
pub mod engine;
pub mod error;
pub mod explorer;
pub mod graphql;
pub mod http;
pub mod init;
pub mod lexer;
pub mod load;
pub mod plan;
pub mod query;
pub mod rollup;
pub mod saas;
pub mod semantic;
pub mod sql;
pub mod tz;
