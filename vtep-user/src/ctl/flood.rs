//! Changing a running instance's flood list: `vtep fdb append 00:00:00:00:00:00 dst IP vni N`
//! and `vtep fdb del 00:00:00:00:00:00 dst IP vni N`, as `bridge fdb append` and `del` do with
//! the all-zeros entries of a kernel `vxlan` device. The list of a VNI is one map value,
//! replaced whole, so the datapath sees the old list or the new one.

use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{HashMap, MapData};
use vtep_common::maps::{FloodList, MAP_FLOOD, MAX_FLOOD_REMOTES};

use crate::{
    cli::keywords as args,
    config::{check_remote, invalid},
    ctl::{
        fdb::{note_vtep, parse_dst},
        show::{self as live, open},
    },
    instance,
    mac::Mac,
};

/// The MAC that stands for "every broadcast and unknown destination".
pub const ALL_ZEROS: Mac = Mac([0; 6]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Append,
    Del,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub dst: Ipv4Addr,
    pub vni: u32,
}

impl Request {
    /// Parses `00:00:00:00:00:00 dst IP vni N`.
    pub fn parse(op: Op, mac: &str, words: &[String]) -> Result<Self> {
        let command = match op {
            Op::Append => "vtep fdb append",
            Op::Del => "vtep fdb del",
        };
        let args = args::parse(command, &[("dst", "IP"), ("vni", "N")], words)?;
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
        Ok(Self {
            op,
            vni: args.vni()?,
            dst: parse_dst(args.require("dst", "IP")?)?,
        })
    }
}

/// Applies `req` to the flood list of running instance `name`.
pub fn apply(name: &str, req: &Request) -> Result<()> {
    let dir = instance::pin_dir(name);
    let info = instance::Info::load(name)?;
    check_remote("dst", req.dst, Some(info.local))?;
    let mut lists: HashMap<MapData, u32, FloodList> = HashMap::try_from(open(&dir, MAP_FLOOD)?)?;
    let (vni, dst) = (req.vni, req.dst);
    live::require_vni(&dir, name, vni)?;
    let mut list = lists.get(&vni, 0).context("reading the flood list")?;
    if list.group != [0; 4] {
        bail!(
            "vni: VNI {vni} floods to multicast group {}; it has no list of remote VTEPs",
            Ipv4Addr::from(list.group)
        );
    }
    // A count from a map is data: never trust it to index.
    let n = (list.n_remotes as usize).min(MAX_FLOOD_REMOTES);
    let at = list.remotes[..n].iter().position(|r| *r == dst.octets());
    match (req.op, at) {
        (Op::Append, Some(_)) => return Ok(()),
        (Op::Append, None) if n == MAX_FLOOD_REMOTES => bail!(
            "dst: VNI {vni} already floods to {MAX_FLOOD_REMOTES} remote VTEPs, the most it can"
        ),
        (Op::Append, None) => {
            note_vtep(&dir, dst)?;
            list.remotes[n] = dst.octets();
            list.n_remotes = n as u32 + 1;
        }
        (Op::Del, None) => bail!("dst: VNI {vni} does not flood to {dst}"),
        (Op::Del, Some(i)) => {
            list.remotes.copy_within(i + 1..n, i);
            list.remotes[n - 1] = [0; 4];
            list.n_remotes = n as u32 - 1;
        }
    }
    lists
        .insert(vni, list, 0)
        .map_err(|e| anyhow!("writing the flood list of VNI {vni}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(op: Op, mac: &str, rest: &str) -> Result<Request> {
        let words: Vec<String> = rest.split_whitespace().map(String::from).collect();
        Request::parse(op, mac, &words)
    }

    #[test]
    fn only_the_all_zeros_mac() {
        let r = parse(Op::Append, "00:00:00:00:00:00", "dst 198.18.0.3 vni 7").unwrap();
        assert_eq!((r.dst, r.vni), (Ipv4Addr::new(198, 18, 0, 3), 7));
        let e = format!(
            "{:#}",
            parse(Op::Append, "02:00:00:00:00:01", "dst 198.18.0.3 vni 7").unwrap_err()
        );
        assert!(e.starts_with("mac: "), "{e}");
        let e = format!(
            "{:#}",
            parse(Op::Del, "00:00:00:00:00:00", "vni 7").unwrap_err()
        );
        assert!(e.contains("`dst IP` is missing"), "{e}");
    }
}
