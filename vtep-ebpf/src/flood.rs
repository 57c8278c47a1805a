//! Broadcast, multicast and unknown unicast: a copy to every other local port of the VNI and,
//! for frames from a local port, head-end replication to every remote VTEP of the VNI.

use aya_ebpf::programs::TcContext;
use vtep_common::{
    drop::DropReason,
    maps::{DatapathConfig, FloodList, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, PortConfig},
    wire::ETH_LEN,
};

use crate::{
    encap::{self, OuterHeaders},
    maps::{FLOOD, Traffic, count_drop, count_traffic},
    verdict,
    xmit::{self, NextHop},
};

/// Copies the frame to every local port of the flood list except `except_ifindex`.
///
/// Nothing here may depend on how many copies succeeded: a value carried across iterations
/// keeps the verifier from merging their states, and the program grows past its limit.
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
        // Egress of the host-side veth, so the copy crosses the veth and gets its protocol and
        // packet type set there.
        if ctx.clone_redirect(ifindex, 0).is_err() {
            count_drop(DropReason::RedirectFailed);
        }
    }
}

/// Floods a frame that entered on local port `ingress` (config `port`): raw copies to the other
/// local ports, then one encapsulated copy per remote VTEP. Consumes the original; returns the
/// TC verdict.
#[inline(always)]
pub fn from_port(
    ctx: &TcContext,
    cfg: &DatapathConfig,
    port: &PortConfig,
    ingress: u32,
    inner_eth: &[u8; ETH_LEN],
) -> i32 {
    let Some(list) = (unsafe { FLOOD.get(port.vni) }) else {
        count_drop(DropReason::NoFloodTarget);
        return verdict::SHOT;
    };
    let n_remotes = list.n_remotes;
    let only_ingress = list.n_ports == 0 || (list.n_ports == 1 && list.ports[0] == ingress);
    if n_remotes == 0 && list.group == [0; 4] && only_ingress {
        count_drop(DropReason::NoFloodTarget);
        return verdict::SHOT;
    }
    let inner_len = ctx.len();
    count_traffic(port.stats_slot, Traffic::Flood, inner_len);
    to_local_ports(ctx, list, ingress);
    if n_remotes == 0 && list.group == [0; 4] {
        return verdict::SHOT;
    }

    let proto = u16::from_be_bytes([inner_eth[12], inner_eth[13]]);
    let srcport = encap::source_port(ctx, cfg, inner_eth);
    if list.group != [0; 4] {
        return to_group(ctx, cfg, port, list, inner_len, srcport, inner_eth, proto);
    }
    let mut hdr = OuterHeaders::new(cfg, port, list.remotes[0], inner_len, srcport, inner_eth);
    let hdr_len = match encap::grow(ctx, proto) {
        Ok(len) => len,
        Err(reason) => {
            count_drop(reason);
            return verdict::SHOT;
        }
    };
    for i in 0..MAX_FLOOD_REMOTES {
        if i as u32 >= n_remotes {
            break;
        }
        let remote = list.remotes[i];
        hdr.set_remote(&remote);
        let ifindex = match xmit::next_hop(ctx, ingress, &cfg.local_ip, &remote) {
            Ok(NextHop::Resolved {
                ifindex,
                dmac,
                smac,
            }) => {
                hdr.set_macs(&dmac, &smac);
                ifindex
            }
            // Flood copies cannot wait for neighbour resolution; userspace keeps the remote
            // VTEPs' neighbours resolved, so this is a transient state.
            Ok(NextHop::Unresolved { .. }) => {
                count_drop(DropReason::NexthopUnresolved);
                continue;
            }
            Err(reason) => {
                count_drop(reason);
                continue;
            }
        };
        if let Err(reason) = encap::write(ctx, &hdr, hdr_len) {
            count_drop(reason);
            return verdict::SHOT;
        }
        if ctx.clone_redirect(ifindex, 0).is_ok() {
            count_traffic(port.stats_slot, Traffic::Encap, inner_len);
        } else {
            count_drop(DropReason::RedirectFailed);
        }
    }
    // The original was only the template for the copies: consumed, not dropped.
    verdict::SHOT
}

/// The one encapsulated copy of a flooded frame for a VNI with a multicast group: to the group
/// address and its multicast MAC (RFC 1112), on the interface userspace named. Consumes the
/// original; returns the TC verdict.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn to_group(
    ctx: &TcContext,
    cfg: &DatapathConfig,
    port: &PortConfig,
    list: &FloodList,
    inner_len: u32,
    srcport: u16,
    inner_eth: &[u8; ETH_LEN],
    proto: u16,
) -> i32 {
    let group = list.group;
    let with_ttl = PortConfig {
        ttl: list.group_ttl,
        ..*port
    };
    let mut hdr = OuterHeaders::new(cfg, &with_ttl, group, inner_len, srcport, inner_eth);
    let mac = [0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]];
    hdr.set_macs(&mac, &list.group_smac);
    let hdr_len = match encap::grow(ctx, proto) {
        Ok(len) => len,
        Err(reason) => {
            count_drop(reason);
            return verdict::SHOT;
        }
    };
    if let Err(reason) = encap::write(ctx, &hdr, hdr_len) {
        count_drop(reason);
        return verdict::SHOT;
    }
    if ctx.clone_redirect(list.group_ifindex, 0).is_ok() {
        count_traffic(port.stats_slot, Traffic::Encap, inner_len);
    } else {
        count_drop(DropReason::RedirectFailed);
    }
    verdict::SHOT
}
