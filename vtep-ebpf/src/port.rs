//! Frames a local workload sends: switched to another local port, encapsulated to the remote
//! VTEP the FDB names, or flooded.

use aya_ebpf::{
    helpers::{bpf_skb_change_head, bpf_skb_vlan_pop},
    programs::TcContext,
};
use vtep_common::{
    drop::DropReason,
    maps::{
        FDB_LOCAL, FdbKey, JUMP_PORT_FLOOD, MISS_L2, MISS_L3, MissEvent, PORT_F_LEARN, PORT_F_PEER,
        PortConfig, VNI_F_L2MISS, VNI_F_L3MISS, VNI_F_PROXY,
    },
    wire::ETH_LEN,
    wire::{ARP_OP_REQUEST, ETH_P_ARP, ETH_P_IPV6},
};

use crate::{
    arp, deliver, encap,
    encap::OuterHeaders,
    flood,
    learn::{self, Station},
    maps::{FDB, JUMP, PORTS, Traffic, VNIS, config, count_traffic},
    miss, nd,
    parse::{is_group_mac, ptr_at},
    verdict,
    xmit::{self, NextHop},
};

/// TC ingress of a host-side port. Returns the TC verdict; every drop is counted.
#[inline(always)]
pub fn ingress(ctx: &TcContext) -> i32 {
    verdict::or_drop(try_ingress(ctx))
}

#[inline(always)]
fn try_ingress(ctx: &TcContext) -> Result<i32, DropReason> {
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let port = unsafe { PORTS.get(ifindex) }.ok_or(DropReason::UnknownPort)?;
    // Read once per packet and passed down: the encap helpers need it.
    let cfg = config();
    restore_vlan_tag(ctx)?;
    let eth = ptr_at::<[u8; ETH_LEN]>(ctx, 0).ok_or(DropReason::FrameTruncated)?;
    let inner_eth: [u8; ETH_LEN] = unsafe { *eth };
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&inner_eth[0..6]);
    if port.flags & PORT_F_LEARN != 0 {
        learn_source(port, ifindex, &inner_eth);
    }

    let entry = if is_group_mac(&dst) {
        None
    } else {
        unsafe {
            FDB.get(FdbKey {
                vni: port.vni,
                mac: dst,
                _pad: [0; 2],
            })
        }
    };
    let Some(entry) = entry else {
        // The flood path is a program of its own (see `JUMP_PORT_FLOOD`); the tail call only
        // returns when it could not be entered.
        unsafe { JUMP.tail_call(ctx, JUMP_PORT_FLOOD) };
        return Err(DropReason::TailCallFailed);
    };
    let len = ctx.len();
    if entry.kind == FDB_LOCAL {
        count_traffic(port.stats_slot, Traffic::Local, len);
        // The frame came through a veth, so skb->protocol matches it.
        return Ok(deliver::to_port(entry.ifindex, entry.port_flags, true));
    }

    let remote = entry.remote;
    let proto = u16::from_be_bytes([inner_eth[12], inner_eth[13]]);
    let hop = xmit::next_hop(ctx, ifindex, &cfg.local_ip, &remote)?;
    // Only IPv4 skbs can wait for the neighbour layer, and only IP frames leave encapsulation
    // with skb->protocol IPv4: anything else is dropped before any work is done on it.
    if matches!(hop, NextHop::Unresolved { .. }) && !encap::is_ip(proto) {
        return Err(DropReason::NexthopUnresolved);
    }
    let srcport = encap::source_port(ctx, &cfg, &inner_eth);
    let mut hdr = OuterHeaders::new(&cfg, port, remote, len, srcport, &inner_eth);
    if let NextHop::Resolved { dmac, smac, .. } = &hop {
        hdr.set_macs(dmac, smac);
    }
    let hdr_len = encap::grow(ctx, proto)?;
    encap::write_direct(ctx, &hdr, hdr_len)?;
    let verdict = match hop {
        NextHop::Resolved { ifindex, .. } => xmit::redirect(ifindex),
        NextHop::Unresolved { ifindex, nexthop } => xmit::redirect_resolving(ifindex, nexthop),
    };
    count_traffic(port.stats_slot, Traffic::Encap, len);
    Ok(verdict)
}

/// Learns the frame's source MAC behind port `ifindex`. Userspace sets `PORT_F_LEARN` only on
/// ports of VNIs that learn.
#[inline(always)]
fn learn_source(port: &PortConfig, ifindex: u32, eth: &[u8; ETH_LEN]) {
    let mut src = [0u8; 6];
    src.copy_from_slice(&eth[6..12]);
    learn::learn(
        port.vni,
        || unsafe { VNIS.get(port.vni) },
        &src,
        Station::Port {
            ifindex,
            port_flags: port.flags & PORT_F_PEER,
        },
    );
}

/// The port program's flood path, entered by tail call with the frame as `ingress` left it
/// (VLAN tag back in the frame). Returns the TC verdict; every drop is counted.
#[inline(always)]
pub fn flood(ctx: &TcContext) -> i32 {
    verdict::or_drop(try_flood(ctx))
}

#[inline(always)]
fn try_flood(ctx: &TcContext) -> Result<i32, DropReason> {
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let port = unsafe { PORTS.get(ifindex) }.ok_or(DropReason::UnknownPort)?;
    let cfg = config();
    let eth = ptr_at::<[u8; ETH_LEN]>(ctx, 0).ok_or(DropReason::FrameTruncated)?;
    let inner_eth: [u8; ETH_LEN] = unsafe { *eth };
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&inner_eth[0..6]);
    let vcfg = unsafe { VNIS.get(port.vni) }.ok_or(DropReason::UnknownVni)?;
    let proto = u16::from_be_bytes([inner_eth[12], inner_eth[13]]);
    if proto == ETH_P_ARP
        && vcfg.flags & VNI_F_PROXY != 0
        && let Some(request) = arp::parse(ctx, ETH_LEN)
    {
        if let Some(mac) = arp::known_target(port.vni, &request) {
            if !arp::rewrite_as_reply(ctx, &request, &mac) {
                return Err(DropReason::FrameTruncated);
            }
            count_traffic(port.stats_slot, Traffic::ProxyReply, ctx.len());
            // Back out of the port it came in, to the workload that asked.
            return Ok(xmit::redirect(ifindex));
        }
        if request.op == ARP_OP_REQUEST
            && request.spa != request.tpa
            && vcfg.flags & VNI_F_L3MISS != 0
        {
            miss::report(MissEvent {
                kind: MISS_L3,
                vni: port.vni,
                mac: [0; 6],
                _pad: [0; 2],
                ip: request.tpa,
                ifindex,
            });
        }
        // Unknown: flooded like any broadcast, so the answer can teach the table.
    }
    if proto == ETH_P_IPV6
        && vcfg.flags & VNI_F_PROXY != 0
        && let Some(solicit) = nd::parse(ctx, 0)
        && let Some(mac) = nd::known_target(port.vni, &solicit)
    {
        let mut requester = [0u8; 6];
        requester.copy_from_slice(&inner_eth[6..12]);
        if !nd::rewrite_as_advert(ctx, &solicit, &requester, &mac) {
            return Err(DropReason::FrameTruncated);
        }
        count_traffic(port.stats_slot, Traffic::ProxyReply, ctx.len());
        return Ok(xmit::redirect(ifindex));
    }
    if !is_group_mac(&dst) && vcfg.flags & VNI_F_L2MISS != 0 {
        miss::report(MissEvent {
            kind: MISS_L2,
            vni: port.vni,
            mac: dst,
            _pad: [0; 2],
            ip: [0; 4],
            ifindex,
        });
    }
    Ok(flood::from_port(ctx, &cfg, port, ifindex, &inner_eth))
}

/// Puts a received 802.1Q tag back into the frame.
#[inline(always)]
fn restore_vlan_tag(ctx: &TcContext) -> Result<(), DropReason> {
    // The kernel took a received 802.1Q tag out of the frame (skb metadata) before TC ingress.
    // It belongs to the overlay frame: clear it from the metadata and write it back into the
    // frame.
    let (vlan_present, vlan_proto, vlan_tci) = unsafe {
        let s = &*ctx.skb.skb;
        (s.vlan_present, s.vlan_proto, s.vlan_tci)
    };
    if vlan_present != 0 {
        if unsafe { bpf_skb_vlan_pop(ctx.skb.skb) } != 0
            || unsafe { bpf_skb_change_head(ctx.skb.skb, 4, 0) } != 0
        {
            return Err(DropReason::EncapFailed);
        }
        let macs = ptr_at::<[u8; 12]>(ctx, 4).ok_or(DropReason::FrameTruncated)?;
        let mut hdr = [0u8; 16];
        hdr[..12].copy_from_slice(unsafe { &*macs });
        hdr[12..14].copy_from_slice(&(vlan_proto as u16).to_ne_bytes());
        hdr[14..16].copy_from_slice(&(vlan_tci as u16).to_be_bytes());
        ctx.store(0, &hdr, 0).map_err(|_| DropReason::EncapFailed)?;
    }
    Ok(())
}
