//! `vtep check -c FILE [--system]`: validate a config without changing anything; with
//! `--system`, also run the checks `vtep up` makes against this host before it starts.

use anyhow::Result;

use crate::{cli::ConfigFile, config::Config, daemon};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Also check the config against this host (in the `--netns` namespace), read-only, as
    /// `vtep up` does first: the underlay interface exists, has `underlay.local` (or an IPv4
    /// address) and room for VXLAN in its MTU, adopted ports exist, interfaces to create do
    /// not, no other instance has this name or serves its VNIs and UDP ports on that
    /// underlay or holds its namespaces and ports, and `metrics.listen` can be bound.
    #[arg(long)]
    pub system: bool,
}

/// Prints what was checked; fails with the first problem found.
pub async fn run(args: &Args) -> Result<()> {
    let config = Config::load(&args.file.config)?;
    if let Some(store) = &config.store {
        store.check_files()?;
    }
    println!("{}: config ok ({} VNI(s))", config.name, config.vnis.len());
    if !args.system {
        println!(
            "{}: this host was not checked (`vtep check --system` checks interfaces, addresses and other instances)",
            config.name
        );
        return Ok(());
    }
    let found = daemon::check_system(&config).await?;
    let metrics = found
        .metrics
        .map(|a| format!(", metrics address {a} free"))
        .unwrap_or_default();
    println!(
        "{}: system ok: underlay `{}` (MTU {}) with local address {}, adopted ports present, interfaces to create absent, no conflict with {} other instance(s){metrics}",
        config.name, found.underlay, found.mtu, found.local, found.others
    );
    Ok(())
}
