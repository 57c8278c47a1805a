//! The `vtep` command line.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use vtep::{
    config::Config,
    ctl::{fdb, flood as flood_list, monitor, proxy as neigh, show as live},
    daemon::{self as up, undo::Undo},
    instance,
    sys::netlink::Net,
};

#[derive(Parser)]
#[command(
    name = "vtep",
    version,
    about = "A VXLAN tunnel endpoint whose datapath runs in eBPF"
)]
struct Cli {
    /// Act in network namespace NAME (from /run/netns), like `ip -n NAME`.
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build what the config describes, attach the datapath and run until SIGINT/SIGTERM.
    Up {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Remove everything a `vtep up` that did not stop cleanly left behind.
    Down(Instance),
    /// Validate a config file without changing anything.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Forwarding database of a running instance.
    Fdb {
        #[command(subcommand)]
        command: FdbCommand,
    },
    /// The ARP proxy's neighbour table of a running instance.
    Neigh {
        #[command(subcommand)]
        command: NeighCommand,
    },
    /// VNIs of a running instance.
    Vni {
        #[command(subcommand)]
        command: VniCommand,
    },
    /// Print miss events (l2miss, l3miss) of a running instance as they happen.
    Monitor {
        #[command(flatten)]
        instance: Instance,
        /// JSON lines.
        #[arg(short, long)]
        json: bool,
        /// Exit after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Per-VNI traffic and drop counters of a running instance.
    Stats {
        #[command(flatten)]
        instance: Instance,
        /// JSON output.
        #[arg(short, long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum FdbCommand {
    /// List the entries: MAC, VNI, remote VTEP or local port, and whether the config or a
    /// command made them.
    Show {
        #[command(flatten)]
        instance: Instance,
        #[arg(short, long)]
        json: bool,
    },
    /// Send frames for MAC in VNI N to the remote VTEP IP; an entry that sends them elsewhere
    /// is left alone (see `replace`).
    #[command(override_usage = "vtep fdb add MAC dst IP vni N [-c FILE | -n NAME]")]
    Add(FdbChange),
    /// Like `add`, but an existing remote entry for MAC is pointed at IP.
    #[command(override_usage = "vtep fdb replace MAC dst IP vni N [-c FILE | -n NAME]")]
    Replace(FdbChange),
    /// Add remote VTEP IP to VNI N's flood list (broadcast and unknown unicast), as `bridge fdb
    /// append 00:00:00:00:00:00 ... dst IP` does.
    #[command(
        override_usage = "vtep fdb append 00:00:00:00:00:00 dst IP vni N [-c FILE | -n NAME]"
    )]
    Append(FdbChange),
    /// Delete the remote entry for MAC in VNI N; with 00:00:00:00:00:00 and `dst IP`, remove IP
    /// from the flood list.
    #[command(
        alias = "delete",
        override_usage = "vtep fdb del MAC vni N [-c FILE | -n NAME]\n       vtep fdb del 00:00:00:00:00:00 dst IP vni N [-c FILE | -n NAME]"
    )]
    Del(FdbChange),
}

/// The arguments of `fdb add`, `replace` and `del`, shaped like `bridge fdb add MAC dev DEV dst
/// IP`: the MAC, then keyword-value pairs in any order.
#[derive(Args)]
struct FdbChange {
    /// The station's MAC address.
    mac: String,
    /// `dst IP` (not for `del`) and `vni N`.
    #[arg(value_name = "KEYWORD VALUE", required = true, num_args = 1..)]
    words: Vec<String>,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Subcommand)]
enum NeighCommand {
    /// List the entries: IP, VNI, MAC, static or learned.
    Show {
        #[command(flatten)]
        instance: Instance,
        #[arg(short, long)]
        json: bool,
    },
    /// Answer ARP requests for IP in VNI N with MAC (for VNIs with `proxy`).
    #[command(override_usage = "vtep neigh add IP lladdr MAC vni N [-c FILE | -n NAME]")]
    Add(NeighChange),
    /// Delete the entry for IP in VNI N.
    #[command(
        alias = "delete",
        override_usage = "vtep neigh del IP vni N [-c FILE | -n NAME]"
    )]
    Del(NeighChange),
}

/// The arguments of `neigh add` and `del`, shaped like `ip neigh add IP lladdr MAC`.
#[derive(Args)]
struct NeighChange {
    /// The overlay IPv4 address.
    ip: String,
    /// `lladdr MAC` (not for `del`) and `vni N`.
    #[arg(value_name = "KEYWORD VALUE", required = true, num_args = 1..)]
    words: Vec<String>,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Subcommand)]
enum VniCommand {
    /// List the VNIs: UDP port, local ports, flood remotes, FDB entry count.
    Show {
        #[command(flatten)]
        instance: Instance,
        #[arg(short, long)]
        json: bool,
    },
}

/// Which instance: by its config file or its name.
#[derive(Args)]
struct Instance {
    /// The instance's config file (its `name` is used).
    #[arg(short, long, value_name = "FILE", conflicts_with = "name")]
    config: Option<PathBuf>,
    /// The instance name (default "vtep").
    #[arg(short, long)]
    name: Option<String>,
}

impl Instance {
    fn name(&self) -> Result<String> {
        Ok(match (&self.config, &self.name) {
            (Some(path), _) => Config::load(path)?.name,
            (None, Some(name)) => name.clone(),
            (None, None) => "vtep".to_string(),
        })
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VTEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = real_main(cli) {
        eprintln!("vtep: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    // Before the runtime exists, so every thread starts in that namespace.
    if let Some(ns) = &cli.netns {
        vtep::sys::netns::enter_for_process(ns)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Up { config } => {
            let config = Config::load(&config)?;
            up::run(&config).await
        }
        Command::Check { config } => {
            let config = Config::load(&config)?;
            println!("{}: ok ({} VNI(s))", config.name, config.vnis.len());
            Ok(())
        }
        Command::Down(instance) => {
            let name = instance.name()?;
            let path = instance::state_file(&name);
            let Some(undo) = Undo::load(&path)? else {
                println!("nothing to remove for instance `{name}`");
                return Ok(());
            };
            let n = undo.items().len();
            let errors = undo.run(&Net::connect()?).await;
            for e in &errors {
                eprintln!("vtep: {e:#}");
            }
            if !errors.is_empty() {
                bail!("{} of {n} item(s) could not be removed", errors.len());
            }
            println!("removed {n} item(s) of instance `{name}`");
            Ok(())
        }
        Command::Fdb {
            command: FdbCommand::Show { instance, json },
        } => {
            let rows = live::fdb(&instance.name()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    let target = match (&r.dst, &r.port) {
                        (Some(dst), _) => format!("dst {dst}"),
                        (None, Some(port)) => format!("port {port}"),
                        (None, None) => String::new(),
                    };
                    let p = &r.provenance;
                    println!(
                        "{} vni {} {} {} {}{}",
                        r.mac,
                        r.vni,
                        target,
                        p.state,
                        p.origin,
                        p.used()
                    );
                }
            }
            Ok(())
        }
        Command::Fdb {
            command: FdbCommand::Add(change),
        } => change_fdb(fdb::Op::Add, change),
        Command::Fdb {
            command: FdbCommand::Replace(change),
        } => change_fdb(fdb::Op::Replace, change),
        Command::Fdb {
            command: FdbCommand::Append(change),
        } => change_flood_list(flood_list::Op::Append, change),
        Command::Fdb {
            command: FdbCommand::Del(change),
        } if change.mac.parse::<vtep::mac::Mac>().ok() == Some(flood_list::ALL_ZEROS) => {
            change_flood_list(flood_list::Op::Del, change)
        }
        Command::Fdb {
            command: FdbCommand::Del(change),
        } => change_fdb(fdb::Op::Del, change),
        Command::Vni {
            command: VniCommand::Show { instance, json },
        } => {
            let rows = live::vnis(&instance.name()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_vnis(&rows);
            }
            Ok(())
        }
        Command::Neigh {
            command: NeighCommand::Show { instance, json },
        } => {
            let rows = neigh::show(&instance.name()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    let p = &r.provenance;
                    println!(
                        "{} vni {} lladdr {} {} {}{}",
                        r.ip,
                        r.vni,
                        r.lladdr,
                        p.state,
                        p.origin,
                        p.used()
                    );
                }
            }
            Ok(())
        }
        Command::Neigh {
            command: NeighCommand::Add(change),
        } => change_neigh(neigh::Op::Add, change),
        Command::Neigh {
            command: NeighCommand::Del(change),
        } => change_neigh(neigh::Op::Del, change),
        Command::Monitor {
            instance,
            json,
            count,
        } => monitor::run(
            &instance.name()?,
            json,
            count,
            &mut std::io::stdout().lock(),
        ),
        Command::Stats { instance, json } => {
            let stats = live::stats(&instance.name()?).context("reading counters")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print_stats(&stats);
            }
            Ok(())
        }
    }
}

/// Silent on success, like `bridge fdb`; also when the entry already was as asked.
fn change_fdb(op: fdb::Op, change: FdbChange) -> Result<()> {
    // The arguments first: a typo is reported as such even when no instance is running.
    let request = fdb::Request::parse(op, &change.mac, &change.words)?;
    if fdb::apply(&change.instance.name()?, &request)? == fdb::Outcome::Unchanged {
        tracing::debug!("the entry already was as asked; nothing changed");
    }
    Ok(())
}

/// Silent on success, like `bridge fdb append`; also when IP already was in the list.
fn change_flood_list(op: flood_list::Op, change: FdbChange) -> Result<()> {
    let request = flood_list::Request::parse(op, &change.mac, &change.words)?;
    flood_list::apply(&change.instance.name()?, &request)
}

/// Silent on success, like `ip neigh`.
fn change_neigh(op: neigh::Op, change: NeighChange) -> Result<()> {
    let request = neigh::Request::parse(op, &change.ip, &change.words)?;
    neigh::apply(&change.instance.name()?, &request)
}

fn print_vnis(rows: &[live::VniRow]) {
    println!(
        "{:>8} {:>7} {:>7}  {:<30} remotes",
        "vni", "dstport", "fdb", "ports"
    );
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(",")
        }
    };
    for r in rows {
        println!(
            "{:>8} {:>7} {:>7}  {:<30} {}",
            r.vni,
            r.dstport,
            r.fdb_entries,
            list(r.ports.clone()),
            list(r.remotes.iter().map(ToString::to_string).collect())
        );
    }
}

fn print_stats(stats: &live::Stats) {
    println!(
        "{:>8} {:>12} {:>14} {:>12} {:>14} {:>12} {:>14} {:>12} {:>9} {:>9} {:>9}",
        "vni",
        "encap_pkts",
        "encap_bytes",
        "decap_pkts",
        "decap_bytes",
        "local_pkts",
        "local_bytes",
        "flood_pkts",
        "learned",
        "refused",
        "arp_repl"
    );
    for v in &stats.vnis {
        println!(
            "{:>8} {:>12} {:>14} {:>12} {:>14} {:>12} {:>14} {:>12} {:>9} {:>9} {:>9}",
            v.vni,
            v.encap_packets,
            v.encap_bytes,
            v.decap_packets,
            v.decap_bytes,
            v.local_packets,
            v.local_bytes,
            v.flood_packets,
            v.learned,
            v.learn_refused,
            v.proxy_replies
        );
    }
    println!("drops:");
    for (reason, n) in &stats.drops {
        println!("  {reason:<18} {n}");
    }
}
