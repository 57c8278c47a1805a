//! The underlay's XDP program: the fast path in front of the TC program (`decap.rs`), before the
//! kernel allocates an skb. It runs the same checks (shared code), learns the same way, and
//! finishes the one case it can do alone: known unicast to a local port, decapsulated with
//! `bpf_xdp_adjust_head` and redirected into the port through `XDP_PORTS`. Malformed and
//! unknown-VNI VXLAN die here, counted with TC's drop reasons. Everything else passes unchanged
//! and TC does it: frames that flood (XDP cannot clone), a checksum only an skb can vouch for,
//! multi-buffer frames, ports not in `XDP_PORTS`, inner frames whose checksum a sender on this
//! host left to an offload (see [`inner_checksum_pending`]), anything not VXLAN for us. A frame
//! is passed before anything is learned from it, so TC learns it once.

use core::mem::offset_of;

use aya_ebpf::programs::XdpContext;
use network_types::{
    eth::EthHdr,
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};
use vtep_common::{
    drop::DropReason,
    maps::{DatapathConfig, HOOK_XDP, VniConfig},
    wire::{ETH_P_IP, ETH_P_IPV6},
};

use crate::{
    csum, decap,
    deliver::VLAN_HLEN,
    encap::OuterIp,
    maps::{Traffic, XDP_PORTS, XDP_UNDERLAY, config, count_traffic},
    parse::{self, ensure_linear, ether_type, is_fragment, is_group_mac, is_plain_ipv4},
    trace, udp_csum,
    verdict::{self, XDP_PASS, XDP_REDIRECT},
    xdp_buff,
};

/// XDP on the underlay interface, an underlay of `I`'s family. Returns the XDP verdict; every
/// drop is counted.
#[inline(always)]
pub fn ingress<I: OuterIp, const TRACED: bool>(ctx: &XdpContext) -> u32 {
    trace::begin::<TRACED>();
    verdict::xdp_or_drop_traced::<TRACED>(ctx, try_ingress::<I, TRACED>(ctx))
}

/// Parse, check, decide, decapsulate, redirect, for VXLAN over `I`. `Ok(XDP_PASS)` for all that
/// TC is to do.
#[inline(always)]
fn try_ingress<I: OuterIp, const TRACED: bool>(ctx: &XdpContext) -> Result<u32, DropReason> {
    // Headers split over fragments are beyond this program; TC pulls them.
    if xdp_buff::has_frags(ctx) || !ensure_linear(ctx, I::OFF_VXLAN) {
        return Ok(XDP_PASS);
    }
    let Some(to_host) = addressed(ctx) else {
        return Ok(XDP_PASS);
    };
    let cfg = config();
    let Some(outer) = decap::classify_outer::<I>(ctx, &cfg, to_host) else {
        return Ok(XDP_PASS);
    };
    let Some((vni, vcfg)) = decap::vni_of::<I, TRACED>(ctx, &outer)? else {
        return Ok(XDP_PASS);
    };
    verdict::in_vni(
        vcfg.stats_slot,
        for_vni::<I, TRACED>(ctx, &cfg, &outer, vni, &vcfg),
    )
}

/// The XDP program's work on VXLAN for us of `vni` (config `vcfg`), outer headers `outer`.
#[inline(always)]
fn for_vni<I: OuterIp, const TRACED: bool>(
    ctx: &XdpContext,
    cfg: &DatapathConfig,
    outer: &decap::OuterInfo,
    vni: u32,
    vcfg: &VniConfig,
) -> Result<u32, DropReason> {
    decap::check_source(cfg, outer)?;
    let len = xdp_buff::len(ctx);
    let frame_len = decap::check_lengths(outer, len)?;
    let (off, pseudo) = (I::OFF_UDP as u32, || outer.pseudo_partial());
    if !udp_csum::proven(ctx, off, outer.udp_len, pseudo, outer.udp_check) {
        return Ok(XDP_PASS);
    }
    let inner_eth: EthHdr = parse::load(ctx, I::INNER).ok_or(DropReason::VxlanTruncated)?;
    let ifindex = match decap::local_target(vni, &inner_eth.dst_addr) {
        Ok(Some((ifindex, _)))
            if XDP_PORTS.get_ifindex(ifindex).is_some()
                && !inner_checksum_pending(ctx, I::INNER + EthHdr::LEN, ether_type(&inner_eth)) =>
        {
            ifindex
        }
        // Flooding, or a port only TC reaches.
        Ok(_) => return Ok(XDP_PASS),
        Err(reason) => {
            // TC learns before it drops these too, from the packet its lengths say.
            trim(ctx, len, frame_len)?;
            decap::learn_from::<I>(ctx, cfg, outer, vni, vcfg, &inner_eth);
            return Err(reason);
        }
    };
    // Bug (review of issue 10's merge): learning ran before the trim, so the proxy learned
    // ARP and ND from bytes past the end of the IPv4 packet, which TC never reads.
    trim(ctx, len, frame_len)?;
    decap::learn_from::<I>(ctx, cfg, outer, vni, vcfg, &inner_eth);
    trace::decap::<I, TRACED>(
        HOOK_XDP,
        &outer.sender,
        vni,
        &inner_eth.dst_addr,
        Some(ifindex),
    );
    xdp_buff::cut_head(ctx, I::INNER as u32).ok_or(DropReason::DecapFailed)?;
    if !xdp_buff::fits_mtu(ctx, ifindex, VLAN_HLEN) {
        return Err(DropReason::InnerTooBig);
    }
    XDP_PORTS
        .redirect(ifindex, 0)
        .map_err(|_| DropReason::RedirectFailed)?;
    // Counted once the redirect is taken: a refused one is a drop, not a decapsulation.
    count_traffic(
        vcfg.stats_slot,
        Traffic::DecapXdp,
        frame_len - I::INNER as u32,
    );
    Ok(XDP_REDIRECT)
}

/// Cuts what follows the outer IP packet (the frame is `len` bytes, the packet `frame_len`),
/// as TC does before it learns or delivers: only for a frame that is redirected or dropped.
#[inline(always)]
fn trim(ctx: &XdpContext, len: u32, frame_len: u32) -> Result<(), DropReason> {
    if frame_len < len {
        xdp_buff::cut_tail(ctx, len - frame_len).ok_or(DropReason::DecapFailed)?;
    }
    Ok(())
}

const TCP_CHECK: usize = offset_of!(TcpHdr, check);
const UDP_CHECK: usize = offset_of!(UdpHdr, check);
/// VLAN tag protocols (802.1Q, 802.1ad).
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// Whether the inner TCP or UDP checksum (of an inner frame of Ethernet type `proto`, whose L3
/// header is at `inner_l3`) may still be
/// to fill in: its field holds just the pseudo-header sum, which is what a sender on this host
/// leaves for an offload (`CHECKSUM_PARTIAL`). Over a veth underlay the skb carries that state to
/// TC, which delivers the frame with it; XDP has no skb, and a frame it redirected would reach
/// the workload with a checksum that is wrong and then dropped (TCP over a veth underlay
/// stalled: pings passed, connections timed out). Such frames, and inner frames this cannot
/// read (IPv4 options, a VLAN tag), go to TC. A complete checksum equal to the pseudo-header sum
/// (one in 65,536) goes to TC as well, which is only slower.
#[inline(always)]
fn inner_checksum_pending(ctx: &XdpContext, inner_l3: usize, proto: u16) -> bool {
    let (sum, l4, next) = match proto {
        ETH_P_IP => {
            let Some(ip) = parse::load::<Ipv4Hdr>(ctx, inner_l3) else {
                return false;
            };
            if !is_plain_ipv4(&ip) {
                return true;
            }
            // A fragment's checksum was complete before it was cut.
            if is_fragment(&ip) {
                return false;
            }
            let l4_len = u16::from_be_bytes(ip.tot_len).saturating_sub(20);
            let sum = csum::ipv4_pseudo_sum(&ip.src_addr, &ip.dst_addr, l4_len, ip.proto);
            (sum, inner_l3 + Ipv4Hdr::LEN, ip.proto)
        }
        ETH_P_IPV6 => {
            let Some(ip) = parse::load::<Ipv6Hdr>(ctx, inner_l3) else {
                return false;
            };
            let len = u32::from(u16::from_be_bytes(ip.payload_len));
            let next = ip.next_hdr;
            let sum = csum::ipv6_pseudo_header_sum(&ip.src_addr, &ip.dst_addr, len, next);
            (sum, inner_l3 + Ipv6Hdr::LEN, next)
        }
        // The L3 header is further in; not read here.
        ETH_P_8021Q | ETH_P_8021AD => return true,
        _ => return false,
    };
    let check_at = if next == IpProto::Tcp as u8 {
        l4 + TCP_CHECK
    } else if next == IpProto::Udp as u8 {
        l4 + UDP_CHECK
    } else {
        return false;
    };
    parse::load::<[u8; 2]>(ctx, check_at).is_some_and(|c| u16::from_be_bytes(c) == sum)
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
