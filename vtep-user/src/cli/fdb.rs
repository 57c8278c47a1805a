//! `vtep fdb show|add|replace|append|del`, shaped like `bridge fdb`: the MAC first, then
//! keyword-value pairs in any order. The all-zeros MAC stands for the flood list
//! ([`crate::ctl::flood`]), any other for a station's entry ([`crate::ctl::fdb`]).

use std::net::IpAddr;

use anyhow::Result;
use clap::Subcommand;

use crate::{
    cli::{Instance, Show, keywords, render},
    config::{
        fields::{check_mac, check_remote},
        invalid,
    },
    ctl::{fdb, flood, show},
    mac::Mac,
};

#[derive(Subcommand)]
pub enum Command {
    /// List the entries: MAC, VNI, remote VTEP or local port, state, origin, age.
    ///
    /// One line per entry, like `bridge fdb show`: `MAC vni N dst IP STATE ORIGIN [age Ns]`,
    /// or `port NAME` instead of `dst IP` for a station behind a local port (named in the
    /// instance's network namespace). STATE is `static` (config and runtime entries: they never
    /// move or age out), `learned` (from traffic; it goes after the VNI's `ageing` without
    /// traffic), or `missing` (a station whose port is gone). ORIGIN says who made it: `config`
    /// (`vtep up`, from the config), `runtime` (`vtep fdb add` or `replace`), `store` (another
    /// host's station, from the store) or `learned` (the datapath). `age` is the seconds since
    /// traffic last confirmed a learned entry. With -j, an array of objects with the keys
    /// `mac`, `vni`, `dst` or `port`, `state`, `origin` and `age`. The flood list is not an FDB
    /// entry here: `vtep vni show` lists it.
    #[command(
        override_usage = "vtep fdb show [-c FILE | -n NAME] [-j | -p]",
        after_long_help = "Examples:\n\n  vtep fdb show -n dc1\n\n  vtep fdb show -n dc1 -j | jq '.[] | select(.origin == \"learned\")'"
    )]
    Show(Show),
    /// Send frames for MAC in VNI N to the remote VTEP IP.
    ///
    /// An entry that already says the same (also one from the config) is left as it is and the
    /// command succeeds. `add` never moves a static entry: if MAC already goes to another VTEP
    /// it fails, naming `vtep fdb replace`. A learned entry for MAC gives way: the new entry
    /// is static, as the kernel does.
    #[command(
        override_usage = "vtep fdb add MAC dst IP vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\nSend VNI 100's frames for 02:00:00:00:0b:01 to the VTEP 198.18.0.2 (instance dc1):\n\n  vtep fdb add 02:00:00:00:0b:01 dst 198.18.0.2 vni 100 -n dc1"
    )]
    Add(Change),
    /// Like `add`, but an existing remote entry for MAC is pointed at IP.
    ///
    /// Adds the entry when there is none, as `bridge fdb replace` does; a config entry it
    /// points elsewhere becomes a runtime entry. The remote VTEP the entry named before is
    /// let go at `vtep up`'s next reconcile when nothing else names it.
    #[command(
        override_usage = "vtep fdb replace MAC dst IP vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\nThe station moved to the VTEP 198.18.0.3:\n\n  vtep fdb replace 02:00:00:00:0b:01 dst 198.18.0.3 vni 100 -n dc1"
    )]
    Replace(Change),
    /// Add remote VTEP IP to VNI N's flood list (broadcast and unknown unicast).
    ///
    /// As `bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst IP` does: every broadcast,
    /// multicast and unknown-unicast frame of the VNI gets a copy to IP. Appending an IP that is
    /// listed already changes nothing; a list holds 32 remote VTEPs; a VNI with a multicast
    /// `group` has no flood list. The list is replaced whole in one map update.
    #[command(
        override_usage = "vtep fdb append 00:00:00:00:00:00 dst IP vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep fdb append 00:00:00:00:00:00 dst 198.18.0.3 vni 100 -n dc1"
    )]
    Append(Change),
    /// Delete the remote entry for MAC in VNI N, or with 00:00:00:00:00:00, IP from the flood
    /// list.
    ///
    /// Deleting an entry that does not exist is an error. A local station's entry cannot be
    /// deleted here (only the config ties a station to a port).
    #[command(
        alias = "delete",
        override_usage = "vtep fdb del MAC vni N [-c FILE | -n NAME]\n       vtep fdb del 00:00:00:00:00:00 dst IP vni N [-c FILE | -n NAME]",
        after_long_help = "Examples:\n\n  vtep fdb del 02:00:00:00:0b:01 vni 100 -n dc1\n\n  vtep fdb del 00:00:00:00:00:00 dst 198.18.0.3 vni 100 -n dc1"
    )]
    Del(Change),
}

/// The arguments of `fdb add`, `replace`, `append` and `del`, shaped like `bridge fdb add MAC dev
/// DEV dst IP`: the MAC, then keyword-value pairs in any order.
#[derive(clap::Args)]
pub struct Change {
    /// The station's MAC address (02:00:00:00:0c:03, or iproute2's short 2:0:0:0:c:3).
    pub mac: String,
    /// `dst IP`, the remote VTEP (not for `del` of a station), and `vni N`, in any order.
    ///
    /// IP is of the instance's underlay family, IPv4 or IPv6; N is a VNI the instance serves.
    #[arg(value_name = "KEYWORD VALUE", required = true, num_args = 1..)]
    pub words: Vec<String>,
    #[command(flatten)]
    pub instance: Instance,
}

/// The MAC that stands for "every broadcast and unknown destination".
pub const ALL_ZEROS: Mac = Mac([0; 6]);

/// Runs `command`. Changes are silent on success, like `bridge fdb`, also when the entry already
/// was as asked. Fails when the arguments are malformed (checked first, so a typo is reported as
/// such even when no instance runs), or the instance refuses the change.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Show(args) => {
            let rows = show::fdb(&args.instance.name()?)?;
            render::print(rows.as_slice(), args.format(), render::fdb)
        }
        Command::Add(change) => change_entry(fdb::Op::Add, &change),
        Command::Replace(change) => change_entry(fdb::Op::Replace, &change),
        Command::Append(change) => change_flood_list(flood::Op::Append, &change),
        Command::Del(change) if change.mac.parse::<Mac>().ok() == Some(ALL_ZEROS) => {
            change_flood_list(flood::Op::Del, &change)
        }
        Command::Del(change) => change_entry(fdb::Op::Del, &change),
    }
}

/// `add`, `replace` or `del` of a station's entry.
fn change_entry(op: fdb::Op, change: &Change) -> Result<()> {
    let request = entry_request(op, &change.mac, &change.words)?;
    if fdb::apply(&change.instance.name()?, &request)? == fdb::Outcome::Unchanged {
        tracing::debug!("the entry already was as asked; nothing changed");
    }
    Ok(())
}

/// `append` or `del` of a flood list's remote VTEP.
fn change_flood_list(op: flood::Op, change: &Change) -> Result<()> {
    let request = flood_request(op, &change.mac, &change.words)?;
    flood::apply(&change.instance.name()?, &request)
}

/// The command's name in errors.
fn command(op: fdb::Op) -> &'static str {
    match op {
        fdb::Op::Add => "vtep fdb add",
        fdb::Op::Replace => "vtep fdb replace",
        fdb::Op::Del => "vtep fdb del",
    }
}

/// Parses `MAC` and the words after it, as in `bridge fdb add MAC dev vxlan0 dst IP`: `add` and
/// `replace` take `dst IP` and `vni N`, `del` takes `vni N`. Fails, naming the field, on a
/// malformed or missing argument, a MAC that is not a station's, or a `dst` that is not unicast.
fn entry_request(op: fdb::Op, mac: &str, words: &[String]) -> Result<fdb::Request> {
    let allowed: &[(&str, &str)] = match op {
        fdb::Op::Add | fdb::Op::Replace => &[("dst", "IP"), ("vni", "N")],
        fdb::Op::Del => &[("vni", "N")],
    };
    let args = keywords::parse(command(op), allowed, words)?;
    let mac = mac.parse::<Mac>().map_err(|e| invalid("mac", e))?;
    check_mac("mac", Some(mac))?;
    let vni = args.vni()?;
    let dst = match op {
        fdb::Op::Del => None,
        fdb::Op::Add | fdb::Op::Replace => Some(parse_dst(args.require("dst", "IP")?)?),
    };
    Ok(fdb::Request { op, mac, vni, dst })
}

/// Parses `00:00:00:00:00:00 dst IP vni N`. Fails, naming the field, on a malformed or missing
/// argument, another MAC, or a `dst` that is not unicast.
fn flood_request(op: flood::Op, mac: &str, words: &[String]) -> Result<flood::Request> {
    let command = match op {
        flood::Op::Append => "vtep fdb append",
        flood::Op::Del => "vtep fdb del",
    };
    let args = keywords::parse(command, &[("dst", "IP"), ("vni", "N")], words)?;
    if mac.parse::<Mac>().ok() != Some(ALL_ZEROS) {
        return Err(invalid(
            "mac",
            format!(
                "`{command}` adds flood destinations, given as 00:00:00:00:00:00; vtep keeps \
                 one destination per station MAC (`vtep fdb add`)"
            ),
        )
        .into());
    }
    Ok(flood::Request {
        op,
        vni: args.vni()?,
        dst: parse_dst(args.require("dst", "IP")?)?,
    })
}

/// A remote VTEP address as `dst IP` gives it. Our own address is known only from the
/// instance; `ctl` checks it.
fn parse_dst(dst: &str) -> Result<IpAddr> {
    let ip = dst
        .parse::<IpAddr>()
        .map_err(|_| invalid("dst", format!("`{dst}` is not an IP address")))?;
    // The instance's family is known only from the instance too.
    check_remote("dst", ip, None, ip.is_ipv6())?;
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use fdb::{Op, Request};

    use super::*;
    use crate::cli::keywords::words;

    fn parse(op: Op, mac: &str, rest: &str) -> Result<Request> {
        entry_request(op, mac, &words(rest))
    }

    fn error(op: Op, mac: &str, rest: &str) -> String {
        format!("{:#}", parse(op, mac, rest).expect_err("accepted"))
    }

    const MAC: &str = "02:00:00:00:00:02";

    #[test]
    fn keywords_in_any_order() {
        let want = Request {
            op: Op::Add,
            mac: MAC.parse().unwrap(),
            vni: 100,
            dst: Some(Ipv4Addr::new(198, 18, 0, 2).into()),
        };
        assert_eq!(parse(Op::Add, MAC, "dst 198.18.0.2 vni 100").unwrap(), want);
        assert_eq!(parse(Op::Add, MAC, "vni 100 dst 198.18.0.2").unwrap(), want);
        let del = parse(Op::Del, MAC, "vni 100").unwrap();
        assert_eq!((del.vni, del.dst), (100, None));
    }

    #[test]
    fn malformed_arguments_are_named() {
        let e = error(Op::Add, MAC, "dst 198.18.0.2 vni 100 dev vx0");
        assert!(
            e.contains("`dev` is not an argument of `vtep fdb add`"),
            "{e}"
        );
        assert!(error(Op::Add, MAC, "vni 100 dst").contains("`dst` needs a value"));
        assert!(error(Op::Add, MAC, "vni 1 vni 2 dst 198.18.0.2").contains("`vni` is given twice"));
        assert!(error(Op::Add, MAC, "dst 198.18.0.2").contains("`vni N` is missing"));
        assert!(error(Op::Replace, MAC, "vni 100").contains("`dst IP` is missing"));
        let e = error(Op::Del, MAC, "vni 100 dst 198.18.0.2");
        assert!(
            e.contains("`dst` is not an argument of `vtep fdb del`"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_refused_like_the_config() {
        let e = error(Op::Add, "02:00:00:00:00", "dst 198.18.0.2 vni 100");
        assert!(
            e.starts_with("mac: `02:00:00:00:00` is not a MAC address"),
            "{e}"
        );
        let e = error(Op::Add, "01:00:5e:00:00:01", "dst 198.18.0.2 vni 100");
        assert_eq!(e, "mac: 01:00:5e:00:00:01 is a group address");
        let e = error(Op::Del, "ff:ff:ff:ff:ff:ff", "vni 100");
        assert_eq!(e, "mac: ff:ff:ff:ff:ff:ff is a group address");
        let e = error(Op::Add, "00:00:00:00:00:00", "dst 198.18.0.2 vni 100");
        assert!(
            e.starts_with("mac: 00:00:00:00:00:00 is not a station"),
            "{e}"
        );
        for vni in ["0", "16777216"] {
            let e = error(Op::Add, MAC, &format!("dst 198.18.0.2 vni {vni}"));
            assert_eq!(e, format!("vni: {vni} is outside 1..=16777215"));
        }
        assert!(error(Op::Add, MAC, "dst 198.18.0.2 vni x").starts_with("vni: `x` is not a VNI"));
        for (dst, kind) in [
            ("0.0.0.0", "unspecified"),
            ("224.0.0.5", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("127.0.0.1", "loopback"),
            ("ff0e::1", "multicast"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
        ] {
            let e = error(Op::Add, MAC, &format!("dst {dst} vni 100"));
            assert_eq!(e, format!("dst: {dst} is not a unicast address ({kind})"));
        }
        let e = error(Op::Add, MAC, "dst 198.18.0.300 vni 100");
        assert_eq!(e, "dst: `198.18.0.300` is not an IP address");
    }

    #[test]
    fn only_the_all_zeros_mac() {
        let parse = |op, mac, rest| flood_request(op, mac, &words(rest));
        let r = parse(
            flood::Op::Append,
            "00:00:00:00:00:00",
            "dst 198.18.0.3 vni 7",
        )
        .unwrap();
        assert_eq!((r.dst, r.vni), (Ipv4Addr::new(198, 18, 0, 3).into(), 7));
        let e = format!(
            "{:#}",
            parse(
                flood::Op::Append,
                "02:00:00:00:00:01",
                "dst 198.18.0.3 vni 7"
            )
            .unwrap_err()
        );
        assert!(e.starts_with("mac: "), "{e}");
        let e = format!(
            "{:#}",
            parse(flood::Op::Del, "00:00:00:00:00:00", "vni 7").unwrap_err()
        );
        assert!(e.contains("`dst IP` is missing"), "{e}");
    }
}
