//! Broadcast, multicast and unknown unicast: a copy to every other local port of the VNI and,
//! for frames from a local port, head-end replication to every remote VTEP of the VNI, or one
//! copy to its multicast group.
//!
//! Nothing here may depend on how many copies succeeded: a value carried across loop iterations
//! keeps the verifier from merging their states, and the program grows past its limit. So a copy
//! that cannot go is counted where it fails (`verdict::copy_dropped`) and the loop goes on.

use aya_ebpf::programs::TcContext;
use network_types::eth::EthHdr;
use vtep_common::{
    drop::DropReason,
    maps::{DatapathConfig, FloodList, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, PortConfig},
};

use crate::{
    deliver,
    encap::{self, OuterHeaders, Room},
    maps::{self, Traffic, count_traffic},
    nexthop::{self, NextHop},
    parse::ether_type,
    verdict,
};

/// Copies the frame to every local port of the flood list except `except_ifindex`. A copy too
/// big for its port is counted as `InnerTooBig`, one the kernel refuses as `RedirectFailed`; the
/// others still go.
#[inline(always)]
pub fn to_local_ports(ctx: &TcContext, list: &FloodList, except_ifindex: u32) {
    for i in 0..MAX_FLOOD_PORTS {
        if i as u32 >= list.n_ports {
            break;
        }
        let ifindex = list.ports[i];
        if ifindex == except_ifindex {
            continue;
        }
        if !deliver::fits(ctx, ifindex) {
            verdict::copy_dropped(DropReason::InnerTooBig);
            continue;
        }
        // Egress of the host-side veth, so the copy crosses the veth and gets its protocol and
        // packet type set there.
        if ctx.clone_redirect(ifindex, 0).is_err() {
            verdict::copy_dropped(DropReason::RedirectFailed);
        }
    }
}

/// Floods a frame that entered on local port `ingress` (config `port`, Ethernet header
/// `inner_eth`): raw copies to the other local ports, then one encapsulated copy per remote
/// VTEP, or one to the VNI's multicast group. The original is consumed: returns `SHOT` once the
/// copies are out; fails with `NoFloodTarget` when there is nowhere to send the frame, or
/// `EncapFailed` when it cannot be encapsulated.
#[inline(always)]
pub fn from_port(
    ctx: &TcContext,
    cfg: &DatapathConfig,
    port: &PortConfig,
    ingress: u32,
    inner_eth: &EthHdr,
) -> Result<i32, DropReason> {
    let list = maps::flood_list(port.vni).ok_or(DropReason::NoFloodTarget)?;
    let n_remotes = list.n_remotes;
    let to_group = list.group != [0; 4];
    let only_ingress = list.n_ports == 0 || (list.n_ports == 1 && list.ports[0] == ingress);
    if n_remotes == 0 && !to_group && only_ingress {
        return Err(DropReason::NoFloodTarget);
    }
    let inner_len = ctx.len();
    count_traffic(port.stats_slot, Traffic::Flood, inner_len);
    to_local_ports(ctx, list, ingress);
    if n_remotes == 0 && !to_group {
        // The original was only the template for the copies: consumed, not dropped.
        return Ok(verdict::SHOT);
    }

    let srcport = encap::source_port(ctx, cfg, inner_eth);
    let mut hdr = OuterHeaders::new(cfg, port, list.remotes[0], inner_len, srcport, inner_eth);
    let room = encap::grow(ctx, ether_type(inner_eth))?;
    if to_group {
        aim_at_group(&mut hdr, list);
        send_copy(ctx, port, list.group_ifindex, &hdr, room, inner_len)?;
    } else {
        for i in 0..MAX_FLOOD_REMOTES {
            if i as u32 >= n_remotes {
                break;
            }
            let remote = list.remotes[i];
            hdr.set_remote(&remote);
            match resolved_next_hop(ctx, ingress, &cfg.local_ip, &remote) {
                Ok(hop) => {
                    hdr.set_macs(&hop.dmac, &hop.smac);
                    send_copy(ctx, port, hop.ifindex, &hdr, room, inner_len)?;
                }
                Err(reason) => verdict::copy_dropped(reason),
            }
        }
    }
    // The original was only the template for the copies: consumed, not dropped.
    Ok(verdict::SHOT)
}

/// Points `hdr` at the multicast group of `list`: the group address and its multicast MAC
/// (RFC 1112), from the MAC of the interface userspace named, with the group's TTL.
#[inline(always)]
fn aim_at_group(hdr: &mut OuterHeaders, list: &FloodList) {
    let group = list.group;
    hdr.outer.ip.ttl = list.group_ttl;
    hdr.set_remote(&group);
    let mac = [0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]];
    hdr.set_macs(&mac, &list.group_smac);
}

/// The resolved next hop to `remote`. Fails with `NoRoute`, or with `NexthopUnresolved`: flood
/// copies cannot wait for neighbour resolution, and userspace keeps the remote VTEPs' next hops
/// resolved, so that is a transient state.
#[inline(always)]
fn resolved_next_hop(
    ctx: &TcContext,
    ingress: u32,
    local_ip: &[u8; 4],
    remote: &[u8; 4],
) -> Result<NextHop, DropReason> {
    let hop = nexthop::next_hop(ctx, ingress, local_ip, remote)?;
    if !hop.resolved {
        return Err(DropReason::NexthopUnresolved);
    }
    Ok(hop)
}

/// Writes `hdr` over the packet and sends a clone of it to `ifindex`, counted as encapsulated
/// traffic of `port`. Fails with `EncapFailed` when the headers cannot be written (no copy can
/// go then); a clone the kernel refuses is counted as `RedirectFailed` and is no error.
#[inline(always)]
fn send_copy(
    ctx: &TcContext,
    port: &PortConfig,
    ifindex: u32,
    hdr: &OuterHeaders,
    room: Room,
    inner_len: u32,
) -> Result<(), DropReason> {
    encap::write(ctx, hdr, room)?;
    if ctx.clone_redirect(ifindex, 0).is_ok() {
        count_traffic(port.stats_slot, Traffic::Encap, inner_len);
    } else {
        verdict::copy_dropped(DropReason::RedirectFailed);
    }
    Ok(())
}
