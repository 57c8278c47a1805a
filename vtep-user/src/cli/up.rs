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
    /// The instance's config file (TOML, see vtep.toml(5)); SIGHUP and `vtep reload` read it
    /// again.
    #[arg(short, long, value_name = "FILE")]
    pub config: std::path::PathBuf,
    /// At SIGINT/SIGTERM leave the datapath forwarding, for the next `vtep up` to adopt.
    ///
    /// A restart or upgrade then loses no packet. At the stop only the process ends: the
    /// programs stay attached (their links and the tail-call table are pinned beside the maps
    /// in /sys/fs/bpf/vtep/NAME), the namespaces, veths and addresses stay, so the workloads
    /// keep their network, and so does the state file, marked kept. A crash leaves the same.
    ///
    /// The next `vtep up` of the instance adopts it: it loads its programs with the pinned maps
    /// (learned entries, counters and next hops stay), keeps every port the config still
    /// describes alike, applies what the config changes, replaces the program in every link,
    /// and only then removes what the config no longer has. A kept datapath that does not fit
    /// this build (another `fdb_size`, a changed map layout) is refused, never half-used, and
    /// forwards on: `vtep down` removes it, interrupting its traffic. `vtep down -n NAME` is the
    /// full teardown of a kept instance. SIGUSR2 does the same as --keep once, for an instance
    /// started without it.
    #[arg(long)]
    pub keep: bool,
    /// Log what the datapath does with every packet, to debug a flow.
    ///
    /// Where a frame from a port goes, what is decapsulated, each flood copy, every drop and
    /// why (a lost flood copy with where it was for), in vtep's log at target
    /// `vtep::datapath`. For tracing a flow while debugging: each line costs the datapath time.
    /// Decided when the programs are loaded; without it the log code is not in the running
    /// programs at all.
    #[arg(long)]
    pub trace_datapath: bool,
    /// With --trace-datapath: only packets of this VNI (1..=16777215).
    ///
    /// Drops of packets whose VNI is not known yet (malformed VXLAN, an unknown port) are then
    /// not logged.
    #[arg(
        long,
        value_name = "VNI",
        requires = "trace_datapath",
        value_parser = trace::parse_vni
    )]
    pub trace_vni: Option<u32>,
}

/// `vtep up --help` ends with these (the man page's EXAMPLES).
pub const EXAMPLES: &str = "Examples:

Run instance dc1 as dist/vtep@.service does, keeping the datapath across restarts:

  vtep up -c /etc/vtep/dc1.toml --keep

Run a config in network namespace host-a (the tests and `cargo xtask lab` simulate hosts so):

  vtep --netns host-a up -c host-a.toml";

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
