//! `vtep up -c FILE [--keep]`: run the instance a config describes until SIGINT or SIGTERM.

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{
    config::Config,
    daemon::{self, Source},
};

#[derive(Args)]
pub struct UpArgs {
    /// The instance's config file (TOML; see the README's config reference).
    #[arg(short, long, value_name = "FILE")]
    pub config: std::path::PathBuf,
    /// At SIGINT/SIGTERM, leave the datapath forwarding and the namespaces and veths in place
    /// for the next `vtep up` of this instance to adopt (a hitless restart or upgrade); `vtep
    /// down` removes them. SIGUSR2 does this once without the flag.
    #[arg(long)]
    pub keep: bool,
}

/// Loads the config and runs it; fails when the config is invalid, the start fails (having
/// removed what it made) or something could not be removed at the stop.
pub async fn run(args: &UpArgs) -> Result<()> {
    let (config, text) = Config::load_with_text(&args.config)?;
    // A reload reads the file again from wherever the process then is.
    let path = std::path::absolute(&args.config)
        .with_context(|| format!("resolving {}", args.config.display()))?;
    daemon::run(&config, Source { path, text }, args.keep).await
}
