//! The `vtep` command line: one module per subcommand, each holding its clap types beside its
//! handler. Handlers parse what clap leaves as words (`dst IP vni N`, see [`keywords`]), call
//! [`crate::daemon`] or [`crate::ctl`], and print through [`render`], the one place output is
//! formatted.

pub mod check;
pub mod down;
pub mod fdb;
pub mod keywords;
pub mod monitor;
pub mod neigh;
pub mod reload;
pub mod render;
pub mod stats;
pub mod up;
pub mod vni;
pub mod workload;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "vtep",
    version,
    about = "A VXLAN tunnel endpoint whose datapath runs in eBPF"
)]
pub struct Cli {
    /// Act in network namespace NAME (from /run/netns), like `ip -n NAME`.
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build what the config describes, attach the datapath and run until SIGINT/SIGTERM
    /// (SIGHUP reloads the config; see --keep for restarts that keep traffic flowing).
    Up(up::UpArgs),
    /// Remove everything a `vtep up` that did not stop cleanly, or stopped keeping its
    /// datapath, left behind (refused while it runs).
    Down(Instance),
    /// Make a running instance apply its config file as it is now, without disturbing what
    /// the change does not touch.
    Reload(Instance),
    /// Validate a config file (with --system, also against this host) without changing
    /// anything.
    Check(check::Args),
    /// Forwarding database of a running instance.
    Fdb {
        #[command(subcommand)]
        command: fdb::Command,
    },
    /// The ARP proxy's neighbour table of a running instance.
    Neigh {
        #[command(subcommand)]
        command: neigh::Command,
    },
    /// VNIs of a running instance.
    Vni {
        #[command(subcommand)]
        command: vni::Command,
    },
    /// Print miss events (l2miss, l3miss) of a running instance as they happen.
    Monitor(monitor::Args),
    /// Per-VNI traffic and drop counters of a running instance.
    Stats(Show),
    /// Workloads that come and go on a running instance (a namespace with a veth into a VNI).
    Workload {
        #[command(subcommand)]
        command: workload::WorkloadCommand,
    },
    /// Existing interfaces attached to or detached from a running instance's VNIs.
    Port {
        #[command(subcommand)]
        command: workload::PortCommand,
    },
}

/// Runs `command`; fails with what went wrong, for `main` to print.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Up(args) => up::run(&args).await,
        Command::Down(instance) => down::run(&instance).await,
        Command::Reload(instance) => reload::run(&instance),
        Command::Check(args) => check::run(&args).await,
        Command::Fdb { command } => fdb::run(command),
        Command::Neigh { command } => neigh::run(command),
        Command::Vni { command } => vni::run(&command),
        Command::Monitor(args) => monitor::run(&args),
        Command::Stats(show) => stats::run(&show),
        Command::Workload { command } => workload::run_workload(command),
        Command::Port { command } => workload::run_port(command),
    }
}

/// The config file of `vtep up` and `vtep check`.
#[derive(Args)]
pub struct ConfigFile {
    /// The instance's config file (TOML; see the README's config reference).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Which instance: by its config file or its name.
#[derive(Args)]
pub struct Instance {
    /// The instance's config file (its `name` is used).
    #[arg(short, long, value_name = "FILE", conflicts_with = "name")]
    pub config: Option<PathBuf>,
    /// The instance name (default "vtep").
    #[arg(short, long)]
    pub name: Option<String>,
}

impl Instance {
    /// The instance's name; fails when the config file given cannot be loaded, or `--name` is
    /// not a name a config may give (it becomes part of paths: `-n ../x` must not reach out).
    pub fn name(&self) -> Result<String> {
        Ok(match (&self.config, &self.name) {
            (Some(path), _) => Config::load(path)?.name,
            (None, Some(name)) => {
                crate::config::fields::check_instance_name("--name", name)?;
                name.clone()
            }
            (None, None) => "vtep".to_string(),
        })
    }
}

/// The arguments of the commands that print a running instance's state.
#[derive(Args)]
pub struct Show {
    #[command(flatten)]
    pub instance: Instance,
    /// JSON output, compact (one line), with the field names the text uses, as `ip -j`.
    #[arg(short, long)]
    pub json: bool,
    /// JSON output, pretty-printed, as `ip -j -p` (implies --json).
    #[arg(short, long)]
    pub pretty: bool,
}

impl Show {
    /// How to print what was read.
    pub fn format(&self) -> render::Format {
        match (self.json, self.pretty) {
            (_, true) => render::Format::Pretty,
            (true, false) => render::Format::Json,
            (false, false) => render::Format::Text,
        }
    }
}
