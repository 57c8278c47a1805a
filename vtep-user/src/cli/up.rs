//! `vtep up -c FILE [--keep] [--trace-datapath [--trace-vni N]]`: run the instance a config
//! describes until SIGINT or SIGTERM.

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{
    config::Config,
    daemon::{self, Options, Source},
    datapath::trace::{self, Trace},
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
    /// Log what the datapath does with every packet (where a frame from a port goes, what is
    /// decapsulated, every drop and why) to vtep's log, target `vtep::datapath`. For tracing a
    /// flow while debugging: each line costs the datapath time. Decided when the programs are
    /// loaded; without it the log code is not in the running programs at all.
    #[arg(long)]
    pub trace_datapath: bool,
    /// With --trace-datapath: only packets of this VNI (1..=16777215). Drops of packets whose
    /// VNI is not known yet (malformed VXLAN, an unknown port) are then not logged.
    #[arg(
        long,
        value_name = "VNI",
        requires = "trace_datapath",
        value_parser = trace::parse_vni
    )]
    pub trace_vni: Option<u32>,
}

/// Loads the config and runs it; fails when the config is invalid, the start fails (having
/// removed what it made) or something could not be removed at the stop.
pub async fn run(args: &UpArgs) -> Result<()> {
    let (config, text) = Config::load_with_text(&args.config)?;
    // A reload reads the file again from wherever the process then is.
    let path = std::path::absolute(&args.config)
        .with_context(|| format!("resolving {}", args.config.display()))?;
    let trace = Trace::from_flags(args.trace_datapath, args.trace_vni)?;
    if let Trace::Vni(vni) = trace
        && !config.vnis.iter().any(|v| v.id == vni)
    {
        tracing::warn!(
            "--trace-vni {vni}: the config has no VNI {vni}; only its drops (unknown_vni) are logged until a reload adds it"
        );
    }
    let options = Options {
        keep: args.keep,
        trace,
    };
    daemon::run(&config, Source { path, text }, options).await
}
