//! The underlay's XDP program: the fast path in front of the TC program (`decap.rs`), before the
//! kernel allocates an skb. It runs the same checks (shared code), learns the same way, and
//! finishes the one case it can do alone: known unicast to a local port, decapsulated with
//! `bpf_xdp_adjust_head` and redirected into the port through `XDP_PORTS`. Malformed and
//! unknown-VNI VXLAN die here, counted with TC's drop reasons. Everything else passes unchanged
//! and TC does it: frames that flood (XDP cannot clone), a checksum only an skb can vouch for,
//! multi-buffer frames, ports not in `XDP_PORTS`, anything not VXLAN for us. A frame is passed
//! before anything is learned from it, so TC learns it once.

use aya_ebpf::programs::XdpContext;
use network_types::eth::EthHdr;
use vtep_common::{drop::DropReason, wire::INNER_OFFSET};

use crate::{
    decap::{self, OFF_UDP, OFF_VXLAN},
    deliver::VLAN_HLEN,
    maps::{Traffic, XDP_PORTS, XDP_UNDERLAY, config, count_traffic},
    parse::{self, ensure_linear, is_group_mac},
    udp_csum,
    verdict::{self, XDP_PASS, XDP_REDIRECT},
    xdp_buff,
};

/// XDP on the underlay interface. Returns the XDP verdict; every drop is counted.
#[inline(always)]
pub fn ingress(ctx: &XdpContext) -> u32 {
    verdict::xdp_or_drop(try_ingress(ctx))
}

/// Parse, check, decide, decapsulate, redirect. `Ok(XDP_PASS)` for all that TC is to do.
#[inline(always)]
fn try_ingress(ctx: &XdpContext) -> Result<u32, DropReason> {
    // Headers split over fragments are beyond this program; TC pulls them.
    if xdp_buff::has_frags(ctx) || !ensure_linear(ctx, OFF_VXLAN) {
        return Ok(XDP_PASS);
    }
    let Some(to_host) = addressed(ctx) else {
        return Ok(XDP_PASS);
    };
    let cfg = config();
    let Some(outer) = decap::classify_ipv4(ctx, &cfg, to_host) else {
        return Ok(XDP_PASS);
    };
    let Some((vni, vcfg)) = decap::vni_of(ctx, &outer)? else {
        return Ok(XDP_PASS);
    };
    decap::check_source(&cfg, &outer)?;
    let len = xdp_buff::len(ctx);
    let frame_len = decap::check_lengths(&outer, len)?;
    let proven = udp_csum::proven(
        ctx,
        OFF_UDP as u32,
        outer.udp_len,
        outer.addrs(),
        outer.udp_check,
    );
    if !proven {
        return Ok(XDP_PASS);
    }
    let inner_eth: EthHdr = parse::load(ctx, INNER_OFFSET).ok_or(DropReason::VxlanTruncated)?;
    let ifindex = match decap::local_target(vni, &inner_eth.dst_addr) {
        Ok(Some((ifindex, _))) if XDP_PORTS.get_ifindex(ifindex).is_some() => ifindex,
        // Flooding, or a port only TC reaches.
        Ok(_) => return Ok(XDP_PASS),
        Err(reason) => {
            // TC learns before it drops these too.
            decap::learn_from(ctx, &cfg, &outer, vni, &vcfg, &inner_eth);
            return Err(reason);
        }
    };
    decap::learn_from(ctx, &cfg, &outer, vni, &vcfg, &inner_eth);
    if frame_len < len {
        xdp_buff::cut_tail(ctx, len - frame_len).ok_or(DropReason::DecapFailed)?;
    }
    xdp_buff::cut_head(ctx, INNER_OFFSET as u32).ok_or(DropReason::DecapFailed)?;
    if !xdp_buff::fits_mtu(ctx, ifindex, VLAN_HLEN) {
        return Err(DropReason::InnerTooBig);
    }
    count_traffic(
        vcfg.stats_slot,
        Traffic::Decap,
        frame_len - INNER_OFFSET as u32,
    );
    XDP_PORTS
        .redirect(ifindex, 0)
        .map_err(|_| DropReason::RedirectFailed)
        .map(|_| XDP_REDIRECT)
}

/// Whom the frame's destination MAC addresses: this host (`Some(true)`), a multicast group
/// (`Some(false)`), or nobody the VTEP answers for (`None`: another host's MAC seen in
/// promiscuous mode, broadcast, or the underlay's MAC not known yet).
#[inline(always)]
fn addressed(ctx: &XdpContext) -> Option<bool> {
    let eth: EthHdr = parse::load(ctx, 0)?;
    let dst = eth.dst_addr;
    if is_group_mac(&dst) {
        return (dst != [0xff; 6]).then_some(false);
    }
    let ours = XDP_UNDERLAY.get(0)?;
    (*ours != [0; 6] && dst == *ours).then_some(true)
}
