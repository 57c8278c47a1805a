//! `vtep check -c FILE [--system]`: validate a config without changing anything; with
//! `--system`, also run the checks `vtep up` makes against this host before it starts.

use anyhow::Result;

use crate::{cli::ConfigFile, config::Config, daemon};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Also check the config against this host, read-only, as `vtep up` does before it starts.
    ///
    /// In the --netns namespace, if given: the underlay interface exists and has room for VXLAN
    /// in its MTU, `underlay.local` is an address of the host (else the error lists the
    /// addresses there are), adopted ports exist, interfaces to create do not, no other
    /// instance has this name, serves its VNIs and UDP ports on that underlay, or holds its
    /// namespaces and ports, and `metrics.listen` can be bound. Needs root (or CAP_BPF and
    /// CAP_NET_ADMIN) to see the other instances.
    #[arg(long)]
    pub system: bool,
}

/// `vtep check --help` ends with these (the man page's EXAMPLES).
pub const EXAMPLES: &str = "Examples:

Check a config on a build machine:

  vtep check -c dc1.toml

Check it on the host it is for, in network namespace host-a:

  vtep --netns host-a check --system -c /etc/vtep/host-a.toml";

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
