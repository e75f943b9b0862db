//! Typed settings shared by the commands, with their documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::Error;

/// The address `tally serve` listens on when neither `--bind` nor `TALLY_BIND` is given.
pub const DEFAULT_BIND: &str = "127.0.0.1:4000";

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Database URL (`sqlite://tally.db` by default, or `postgres://…`).
    pub database_url: String,
    /// Socket address to listen on.
    pub bind: SocketAddr,
    /// Load demo data when the database holds no rows at all.
    pub demo_when_empty: bool,
    /// Scale of that demo data (1.0 ≈ 10k users per model).
    pub demo_scale: f64,
    /// Folder of model files; `None`: `$TALLY_MODELS`, `./models`, or the built-in models.
    pub models_dir: Option<PathBuf>,
}

impl ServeConfig {
    /// Builds the settings, checking the bind address.
    pub fn new(
        database_url: String,
        bind: &str,
        demo_when_empty: bool,
        demo_scale: f64,
        models_dir: Option<PathBuf>,
    ) -> Result<Self, Error> {
        let bind = bind.parse().map_err(|e| {
            Error::Config(format!(
                "bind address {bind:?} is not a socket address like 127.0.0.1:4000 ({e})"
            ))
        })?;
        Ok(Self {
            database_url,
            bind,
            demo_when_empty,
            demo_scale,
            models_dir,
        })
    }
}
