//! Frames a local workload sends: switched to another local port, encapsulated to the remote
//! VTEP the FDB names, or flooded.

use aya_ebpf::programs::TcContext;
use vtep_common::{
    drop::DropReason,
    maps::{FDB_LOCAL, FdbKey},
    wire::ETH_LEN,
};

use crate::{
    deliver, encap,
    encap::OuterHeaders,
    flood,
    maps::{FDB, PORTS, Traffic, count_drop, count_traffic},
    parse::{is_group_mac, ptr_at},
    verdict,
    xmit::{self, NextHop},
};

/// TC ingress of a host-side port. Returns the TC verdict; every drop is counted.
#[inline(always)]
pub fn ingress(ctx: &TcContext) -> i32 {
    match try_ingress(ctx) {
        Ok(v) => v,
        Err(reason) => {
            count_drop(reason);
            verdict::SHOT
        }
    }
}

#[inline(always)]
fn try_ingress(ctx: &TcContext) -> Result<i32, DropReason> {
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let port = unsafe { PORTS.get(ifindex) }.ok_or(DropReason::UnknownPort)?;
    let eth = ptr_at::<[u8; ETH_LEN]>(ctx, 0).ok_or(DropReason::FrameTruncated)?;
    let inner_eth: [u8; ETH_LEN] = unsafe { *eth };
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&inner_eth[0..6]);

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
    // One call site: the flood code is large, and the verifier walks every copy.
    let Some(entry) = entry else {
        return Ok(flood::from_port(ctx, port, ifindex, &inner_eth));
    };
    let len = ctx.len();
    if entry.kind == FDB_LOCAL {
        count_traffic(port.stats_slot, Traffic::Local, len);
        // The frame came through a veth, so skb->protocol matches it.
        return Ok(deliver::to_port(entry.ifindex, entry.port_flags, true));
    }

    let remote = entry.remote;
    let proto = u16::from_be_bytes([inner_eth[12], inner_eth[13]]);
    let hop = xmit::next_hop(ctx, ifindex, &remote)?;
    let srcport = encap::source_port(ctx);
    let mut hdr = OuterHeaders::new(port, remote, len, srcport, &inner_eth);
    if let NextHop::Resolved { dmac, smac, .. } = &hop {
        hdr.set_macs(dmac, smac);
    }
    let hdr_len = encap::grow(ctx, proto)?;
    encap::write(ctx, &hdr, hdr_len)?;
    count_traffic(port.stats_slot, Traffic::Encap, len);
    Ok(match hop {
        NextHop::Resolved { ifindex, .. } => xmit::redirect(ifindex),
        // adjust_room made skb->protocol IPv4 for IP frames; other frames keep theirs, and the
        // neighbour layer only takes IPv4 skbs.
        NextHop::Unresolved { ifindex, nexthop } if hdr_len == encap::HDR_BUF_LEN => {
            xmit::redirect_resolving(ifindex, nexthop)
        }
        NextHop::Unresolved { .. } => return Err(DropReason::NoNeigh),
    })
}
