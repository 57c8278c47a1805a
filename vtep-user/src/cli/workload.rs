//! `vtep workload add|del` and `vtep port add|del`: workloads and ports that come and go on a
//! running instance ([`crate::ctl::runtime`]), the calls a container runtime's network plugin
//! makes. Shaped like the other changes: the name first, then keyword-value pairs in any order.

use anyhow::Result;
use clap::Subcommand;

use crate::{
    cli::{Instance, keywords},
    config::fields::{check_ifname, check_netns},
    ctl::runtime::{self, PortSpec, Request, WorkloadSpec},
};

#[derive(Subcommand)]
pub enum WorkloadCommand {
    /// Create a workload in VNI N: namespace NETNS, a veth pair into it, its FDB and proxy
    /// entries.
    ///
    /// The namespace is made if it does not exist (and then removed with the workload). The
    /// keywords are the config's `[[vni.workload]]` keys: `address A/P` (IPv4 with prefix
    /// length), `mac M` (default: random), `interface IF` (inside the namespace, default
    /// eth0), `host-interface H` (the host end, default NETNS-h), `gateway G` (the workload's
    /// default route). The veth's MTU is the underlay's less the VXLAN overhead. Prints what
    /// the instance did.
    #[command(
        override_usage = "vtep workload add NETNS vni N [address A/P] [mac M] [interface IF] [host-interface H] [gateway G] [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep workload add web1 vni 100 address 10.0.0.5/24 mac 02:00:00:00:0a:05 -n dc1"
    )]
    Add(Named),
    /// Remove a workload `vtep workload add` made: its veth, its entries, and its namespace if
    /// vtep created it.
    ///
    /// Only workloads added at run time; the config's go with the config (edit it and `vtep
    /// reload`).
    #[command(
        alias = "delete",
        override_usage = "vtep workload del NETNS [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep workload del web1 -n dc1"
    )]
    Del(NameOnly),
}

#[derive(Subcommand)]
pub enum PortCommand {
    /// Attach existing interface IFACE to VNI N as a port (its stations are learned).
    ///
    /// The interface must exist in the instance's namespace and not be a port already.
    #[command(
        override_usage = "vtep port add IFACE vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep port add veth-vm1 vni 100 -n dc1"
    )]
    Add(Named),
    /// Detach a port `vtep port add` attached (the interface itself stays).
    ///
    /// Only ports added at run time; the config's `[[vni.port]]` go with the config.
    #[command(
        alias = "delete",
        override_usage = "vtep port del IFACE [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep port del veth-vm1 -n dc1"
    )]
    Del(NameOnly),
}

/// A name (namespace or interface), then keyword-value pairs.
#[derive(clap::Args)]
pub struct Named {
    /// The workload's namespace (`vtep workload`), or the interface (`vtep port`).
    #[arg(value_name = "NETNS|IFACE")]
    pub target: String,
    /// `vni N`, and for a workload the optional keywords above, each with its value, in any
    /// order.
    #[arg(value_name = "KEYWORD VALUE", required = true, num_args = 1..)]
    pub words: Vec<String>,
    #[command(flatten)]
    pub instance: Instance,
}

#[derive(clap::Args)]
pub struct NameOnly {
    /// The workload's namespace (`vtep workload`), or the interface (`vtep port`).
    #[arg(value_name = "NETNS|IFACE")]
    pub target: String,
    #[command(flatten)]
    pub instance: Instance,
}

const WORKLOAD_KEYWORDS: [(&str, &str); 6] = [
    ("vni", "N"),
    ("address", "A/P"),
    ("mac", "M"),
    ("interface", "IF"),
    ("host-interface", "H"),
    ("gateway", "G"),
];

/// Runs a `vtep workload` command; prints what the instance did.
pub fn run_workload(command: WorkloadCommand) -> Result<()> {
    let (instance, req) = match command {
        WorkloadCommand::Add(args) => {
            check_netns("netns", &args.target)?;
            let k = keywords::parse("vtep workload add", &WORKLOAD_KEYWORDS, &args.words)?;
            let owned = |key: &str| k.get(key).map(str::to_string);
            let req = Request::WorkloadAdd(WorkloadSpec {
                vni: k.vni()?,
                netns: args.target.clone(),
                address: owned("address"),
                mac: owned("mac"),
                interface: owned("interface"),
                host_interface: owned("host-interface"),
                gateway: owned("gateway"),
            });
            (args.instance, req)
        }
        WorkloadCommand::Del(args) => {
            check_netns("netns", &args.target)?;
            let req = Request::WorkloadDel {
                netns: args.target.clone(),
            };
            (args.instance, req)
        }
    };
    println!("{}", runtime::send(&instance.name()?, &req)?);
    Ok(())
}

/// Runs a `vtep port` command; prints what the instance did.
pub fn run_port(command: PortCommand) -> Result<()> {
    let (instance, req) = match command {
        PortCommand::Add(args) => {
            check_ifname("interface", &args.target)?;
            let k = keywords::parse("vtep port add", &[("vni", "N")], &args.words)?;
            let req = Request::PortAdd(PortSpec {
                vni: k.vni()?,
                interface: args.target.clone(),
            });
            (args.instance, req)
        }
        PortCommand::Del(args) => {
            check_ifname("interface", &args.target)?;
            let req = Request::PortDel {
                interface: args.target.clone(),
            };
            (args.instance, req)
        }
    };
    println!("{}", runtime::send(&instance.name()?, &req)?);
    Ok(())
}
