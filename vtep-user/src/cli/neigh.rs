//! `vtep neigh show|add|del`: the ARP/ND proxy table of a running instance ([`crate::ctl::proxy`]),
//! named and shaped like `ip neigh add IP lladdr MAC`, the word iproute2's users know.

use std::net::IpAddr;

use anyhow::Result;
use clap::Subcommand;

use crate::{
    cli::{Instance, Show, keywords, render},
    config::{
        fields::{check_mac, is_station_address},
        invalid,
    },
    ctl::{proxy, show},
    mac::Mac,
};

#[derive(Subcommand)]
pub enum Command {
    /// List the entries: IP, VNI, MAC, state, origin, age.
    ///
    /// One line per entry, like `ip neigh show`: `IP vni N lladdr MAC STATE ORIGIN [age Ns]`,
    /// IPv4 entries first. STATE is `static` or `learned`; ORIGIN is `config` (the config's
    /// workloads, host interfaces and `[[vni.neigh]]`), `runtime` (`vtep neigh add`), `store`
    /// (another host's station) or `learned` (from ARP and neighbour advertisements of remote
    /// stations, aged like learned FDB entries). With -j, an array of objects with the keys
    /// `ip`, `vni`, `lladdr`, `state`, `origin` and `age`.
    #[command(
        override_usage = "vtep neigh show [-c FILE | -n NAME] [-j | -p]",
        after_long_help = "Examples:\n\n  vtep neigh show -n dc1"
    )]
    Show(Show),
    /// Answer ARP requests and neighbour solicitations for IP in VNI N with MAC.
    ///
    /// An ARP request (IPv4) or neighbour solicitation (IPv6) for IP from a local port is
    /// then answered on the host and not flooded. Refused for a VNI without `proxy = true`
    /// (the entry would answer nothing). The entry is static, of origin `runtime`; it replaces
    /// a learned one, and one that says the same is left alone; a static entry with another
    /// MAC is refused (delete it first).
    #[command(
        override_usage = "vtep neigh add IP lladdr MAC vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep neigh add 192.0.2.20 lladdr 02:00:00:00:0b:01 vni 100 -n dc1\n\n  vtep neigh add fd00::20 lladdr 02:00:00:00:0b:01 vni 100 -n dc1"
    )]
    Add(Change),
    /// Delete the entry for IP in VNI N.
    ///
    /// For runtime and learned entries: the config's (workloads, host interfaces,
    /// `[[vni.neigh]]`) and the store's are refused, as is an entry that does not exist.
    #[command(
        alias = "delete",
        override_usage = "vtep neigh del IP vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep neigh del 192.0.2.20 vni 100 -n dc1"
    )]
    Del(Change),
}

/// The arguments of `neigh add` and `del`, shaped like `ip neigh add IP lladdr MAC`.
#[derive(clap::Args)]
pub struct Change {
    /// The station's overlay address, IPv4 or IPv6.
    pub ip: String,
    /// `lladdr MAC`, the station's MAC (not for `del`), and `vni N`, in any order.
    #[arg(value_name = "KEYWORD VALUE", required = true, num_args = 1..)]
    pub words: Vec<String>,
    #[command(flatten)]
    pub instance: Instance,
}

/// Runs `command`. Changes are silent on success, like `ip neigh`. Fails when the arguments are
/// malformed (checked before the instance is looked for) or the instance refuses the change.
pub fn run(command: Command) -> Result<()> {
    let (op, change) = match command {
        Command::Show(args) => {
            let rows = show::proxy(&args.instance.name()?)?;
            return render::print(rows.as_slice(), args.format(), render::proxy);
        }
        Command::Add(change) => (proxy::Op::Add, change),
        Command::Del(change) => (proxy::Op::Del, change),
    };
    let request = request(op, &change.ip, &change.words)?;
    proxy::apply(&change.instance.name()?, &request)
}

/// Parses `IP` (IPv4 or IPv6) and keyword-value pairs in any order: `lladdr MAC` (add only) and
/// `vni N`. Fails, naming the field, on a malformed or missing argument, an address that is not
/// a station's, or a MAC that is not.
fn request(op: proxy::Op, ip: &str, words: &[String]) -> Result<proxy::Request> {
    let (command, allowed): (_, &[(&str, &str)]) = match op {
        proxy::Op::Add => ("vtep neigh add", &[("lladdr", "MAC"), ("vni", "N")]),
        proxy::Op::Del => ("vtep neigh del", &[("vni", "N")]),
    };
    let args = keywords::parse(command, allowed, words)?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| invalid("ip", format!("`{ip}` is not an IP address")))?;
    if !is_station_address(ip) {
        return Err(invalid("ip", format!("{ip} is not a station's address")).into());
    }
    let vni = args.vni()?;
    let mac = match op {
        proxy::Op::Del => None,
        proxy::Op::Add => {
            let mac = args.require("lladdr", "MAC")?;
            let mac = mac.parse::<Mac>().map_err(|e| invalid("lladdr", e))?;
            check_mac("lladdr", Some(mac))?;
            Some(mac)
        }
    };
    Ok(proxy::Request { op, ip, vni, mac })
}

#[cfg(test)]
mod tests {
    use proxy::Op;

    use super::*;
    use crate::cli::keywords::words;

    fn parse(op: Op, ip: &str, rest: &str) -> Result<proxy::Request> {
        request(op, ip, &words(rest))
    }

    #[test]
    fn add_takes_lladdr_and_vni_in_any_order() {
        let r = parse(Op::Add, "192.0.2.5", "vni 100 lladdr 02:00:00:00:00:05").unwrap();
        assert_eq!(r.mac, Some("02:00:00:00:00:05".parse().unwrap()));
        assert_eq!((r.ip, r.vni), ("192.0.2.5".parse().unwrap(), 100));
        let r6 = parse(Op::Add, "fd00::5", "lladdr 02:00:00:00:00:05 vni 100").unwrap();
        assert_eq!(r6.ip, "fd00::5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = |op, ip, rest| format!("{:#}", parse(op, ip, rest).expect_err("accepted"));
        assert!(e(Op::Add, "192.0.2.300", "lladdr 02:00:00:00:00:05 vni 1").contains("ip"));
        assert!(e(Op::Add, "224.0.0.1", "lladdr 02:00:00:00:00:05 vni 1").contains("ip"));
        assert!(e(Op::Add, "ff02::1", "lladdr 02:00:00:00:00:05 vni 1").contains("ip"));
        assert!(e(Op::Add, "192.0.2.5", "lladdr 01:00:5e:00:00:01 vni 1").contains("lladdr"));
        assert!(e(Op::Add, "192.0.2.5", "lladdr zz vni 1").contains("lladdr"));
        assert!(e(Op::Add, "192.0.2.5", "vni 1").contains("lladdr"));
        assert!(e(Op::Add, "192.0.2.5", "lladdr 02:00:00:00:00:05 vni 0").contains("vni"));
        assert!(e(Op::Del, "192.0.2.5", "lladdr 02:00:00:00:00:05 vni 1").contains("lladdr"));
    }
}
