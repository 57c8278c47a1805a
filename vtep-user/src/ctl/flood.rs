//! Changing a running instance's flood list: `vtep fdb append 00:00:00:00:00:00 dst IP vni N`
//! and `vtep fdb del 00:00:00:00:00:00 dst IP vni N`, as `bridge fdb append` and `del` do with
//! the all-zeros entries of a kernel `vxlan` device. The list of a VNI is one map value,
//! replaced whole, so the datapath sees the old list or the new one.

use std::net::IpAddr;

use anyhow::{Context as _, Result, anyhow, bail};
use vtep_common::maps::{MAX_FLOOD_REMOTES, vtep_addr, vtep_addr_is_zero, vtep_ip};

use crate::{
    config::fields::check_remote,
    ctl::{
        fdb::{accept_vtep, note_change},
        require_vni,
    },
    datapath::maps::Pinned,
    instance,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Append,
    Del,
}

/// One change; `dst` is already known to be a unicast address (see `cli::fdb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub dst: IpAddr,
    pub vni: u32,
}

/// Applies `req` to the flood list of running instance `name`. Appending a VTEP already listed
/// succeeds without a change. Fails, changing nothing, when the instance does not run, `dst`
/// is its own address, the VNI is not configured or floods to a multicast group, the list is
/// full (append) or does not hold `dst` (del).
pub fn apply(name: &str, req: &Request) -> Result<()> {
    let maps = Pinned::of(name);
    let info = instance::Info::load(name)?;
    check_remote("dst", req.dst, Some(info.local), info.local.is_ipv6())?;
    let mut lists = maps.flood()?;
    let (vni, dst) = (req.vni, req.dst);
    require_vni(&maps, vni)?;
    let mut list = lists.get(&vni, 0).context("reading the flood list")?;
    if !vtep_addr_is_zero(&list.group) {
        bail!(
            "vni: VNI {vni} floods to multicast group {}; it has no list of remote VTEPs",
            vtep_ip(&list.group)
        );
    }
    // A count from a map is data: never trust it to index.
    let n = (list.n_remotes as usize).min(MAX_FLOOD_REMOTES);
    let at = list.remotes[..n].iter().position(|r| *r == vtep_addr(dst));
    match (req.op, at) {
        (Op::Append, Some(_)) => return Ok(()),
        (Op::Append, None) if n == MAX_FLOOD_REMOTES => bail!(
            "dst: VNI {vni} already floods to {MAX_FLOOD_REMOTES} remote VTEPs, the most it can"
        ),
        (Op::Append, None) => {
            accept_vtep(&maps, &info, dst)?;
            list.remotes[n] = vtep_addr(dst);
            list.n_remotes = n as u32 + 1;
        }
        (Op::Del, None) => bail!("dst: VNI {vni} does not flood to {dst}"),
        (Op::Del, Some(i)) => {
            list.remotes.copy_within(i + 1..n, i);
            list.remotes[n - 1] = [0; 16];
            list.n_remotes = n as u32 - 1;
        }
    }
    lists
        .insert(vni, list, 0)
        .map_err(|e| anyhow!("writing the flood list of VNI {vni}: {e}"))?;
    note_change(&maps, (req.op == Op::Append).then_some(dst))
}
