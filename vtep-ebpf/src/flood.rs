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
    maps::{
        DatapathConfig, FloodList, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, PortConfig, VtepAddr,
        vtep_addr_is_zero,
    },
};

use crate::{
    deliver,
    encap::{self, OuterHeaders, OuterIp, Room},
    maps::{self, Traffic, count_traffic},
    nexthop::{self, NextHop},
    outer_csum,
    parse::ether_type,
    segment, verdict,
};

/// Copies the frame to every local port of the flood list except `except_ifindex`. A copy too
/// big for its port is counted as `InnerTooBig`, one the kernel refuses as `RedirectFailed`; the
/// others still go.
#[inline(always)]
pub fn to_local_ports(ctx: &TcContext, slot: u32, list: &FloodList, except_ifindex: u32) {
    for i in 0..MAX_FLOOD_PORTS {
        if i as u32 >= list.n_ports {
            break;
        }
        let ifindex = list.ports[i];
        if ifindex == except_ifindex {
            continue;
        }
        if !deliver::fits(ctx, ifindex) {
            verdict::copy_dropped(slot, DropReason::InnerTooBig);
            continue;
        }
        // Egress of the host-side veth, so the copy crosses the veth and gets its protocol and
        // packet type set there.
        if ctx.clone_redirect(ifindex, 0).is_err() {
            verdict::copy_dropped(slot, DropReason::RedirectFailed);
        }
    }
}

/// Whether the frame fits at least one local port of the flood list (see `deliver::fits`), so
/// a flood of it delivers something.
///
/// Not inlined: as a BPF subprogram the verifier walks the loop once, and the caller goes on
/// from one state (the returned bool) instead of one per loop exit.
#[inline(never)]
pub fn fits_any_port(ctx: &TcContext, list: &FloodList) -> bool {
    for i in 0..MAX_FLOOD_PORTS {
        if i as u32 >= list.n_ports {
            break;
        }
        if deliver::fits(ctx, list.ports[i]) {
            return true;
        }
    }
    false
}

/// Floods a frame that entered on local port `ingress` (config `port`, Ethernet header
/// `inner_eth`): raw copies to the other local ports, then one encapsulated copy per remote
/// VTEP, or one to the VNI's multicast group, over the underlay family of `I`. The original is
/// consumed: returns `SHOT` once the copies are out; fails with `NoFloodTarget` when there is
/// nowhere to send the frame, `GsoNeedsChecksum`, or `EncapFailed` when it cannot be
/// encapsulated.
#[inline(always)]
pub fn from_port<I: OuterIp>(
    ctx: &TcContext,
    cfg: &DatapathConfig,
    port: &PortConfig,
    ingress: u32,
    inner_eth: &EthHdr,
) -> Result<i32, DropReason> {
    // Segmented first, before any copy goes (each segment floods on its own).
    if segment::needed(ctx, I::checksummed(cfg)) {
        return segment::hand_over(ctx, ingress);
    }
    let list = maps::flood_list(port.vni).ok_or(DropReason::NoFloodTarget)?;
    let n_remotes = list.n_remotes;
    let to_group = !vtep_addr_is_zero(&list.group);
    let only_ingress = list.n_ports == 0 || (list.n_ports == 1 && list.ports[0] == ingress);
    if n_remotes == 0 && !to_group && only_ingress {
        return Err(DropReason::NoFloodTarget);
    }
    let inner_len = ctx.len();
    count_traffic(port.stats_slot, Traffic::Flood, inner_len);
    to_local_ports(ctx, port.stats_slot, list, ingress);
    if n_remotes == 0 && !to_group {
        // The original was only the template for the copies: consumed, not dropped.
        return Ok(verdict::SHOT);
    }

    let hash = encap::flow_hash(ctx, inner_eth);
    let hdr = maps::headers_scratch::<OuterHeaders<I>>().ok_or(DropReason::EncapFailed)?;
    *hdr = OuterHeaders::<I>::new(cfg, port, &list.remotes[0], inner_len, hash, inner_eth);
    // The copies differ only in their outer addresses: what follows the UDP header is summed
    // once, before the room is made.
    let checksummed = I::checksummed(cfg);
    let body = if checksummed {
        outer_csum::body_sum(ctx, port.vni, inner_eth)?
    } else {
        0
    };
    let room = encap::grow::<I>(ctx, ether_type(inner_eth))?;
    if to_group {
        hdr.aim_at_group(&list.group, &list.group_smac, list.group_ttl);
        if checksummed {
            hdr.set_udp_checksum(body, None);
        }
        send_copy(ctx, port, list.group_ifindex, hdr, room, inner_len)?;
    } else {
        for i in 0..MAX_FLOOD_REMOTES {
            if i as u32 >= n_remotes {
                break;
            }
            let remote = list.remotes[i];
            hdr.set_remote(&remote);
            if checksummed {
                hdr.set_udp_checksum(body, None);
            }
            match resolved_next_hop(ctx, ingress, I::FAMILY, &cfg.local_ip, &remote) {
                Ok(hop) => {
                    hdr.set_macs(&hop.dmac, &hop.smac);
                    send_copy(ctx, port, hop.ifindex, hdr, room, inner_len)?;
                }
                Err(reason) => verdict::copy_dropped(port.stats_slot, reason),
            }
        }
    }
    // The original was only the template for the copies: consumed, not dropped.
    Ok(verdict::SHOT)
}

/// The resolved next hop to `remote`. Fails with `NoRoute`, or with `NexthopUnresolved`: flood
/// copies cannot wait for neighbour resolution, and userspace keeps the remote VTEPs' next hops
/// resolved, so that is a transient state.
#[inline(always)]
fn resolved_next_hop(
    ctx: &TcContext,
    ingress: u32,
    family: u8,
    local: &VtepAddr,
    remote: &VtepAddr,
) -> Result<NextHop, DropReason> {
    let hop = nexthop::next_hop(ctx, ingress, family, local, remote)?;
    if !hop.resolved {
        return Err(DropReason::NexthopUnresolved);
    }
    Ok(hop)
}

/// Writes `hdr` over the packet and sends a clone of it to `ifindex`, counted as encapsulated
/// traffic of `port`. Fails with `EncapFailed` when the headers cannot be written (no copy can
/// go then); a clone the kernel refuses is counted as `RedirectFailed` and is no error.
#[inline(always)]
fn send_copy<I: OuterIp>(
    ctx: &TcContext,
    port: &PortConfig,
    ifindex: u32,
    hdr: &OuterHeaders<I>,
    room: Room,
    inner_len: u32,
) -> Result<(), DropReason> {
    encap::write(ctx, hdr, room)?;
    if ctx.clone_redirect(ifindex, 0).is_ok() {
        count_traffic(port.stats_slot, Traffic::Encap, inner_len);
    } else {
        verdict::copy_dropped(port.stats_slot, DropReason::RedirectFailed);
    }
    Ok(())
}
