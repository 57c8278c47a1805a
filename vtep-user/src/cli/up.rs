//! `vtep up -c FILE`: run the instance a config describes until SIGINT or SIGTERM.

use anyhow::Result;

use crate::{cli::ConfigFile, config::Config, daemon};

/// Loads the config and runs it; fails when the config is invalid, the start fails (having
/// removed what it made) or something could not be removed at the stop.
pub async fn run(file: &ConfigFile) -> Result<()> {
    let config = Config::load(&file.config)?;
    daemon::run(&config).await
}
