//! The overlay's ARP/ND proxy (the kernel's `proxy`): ARP requests and IPv6 neighbour
//! solicitations from local ports for addresses the VNI knows (`PROXY`, `PROXY6`) are answered
//! on the host and never flooded; the tables learn from ARP and neighbour advertisements in
//! decapsulated frames.

mod arp;
mod nd;

use aya_ebpf::programs::TcContext;
use network_types::{arp::ArpHdr, eth::EthHdr};
use vtep_common::{
    drop::DropReason,
    maps::{MISS_L3, MissEvent, PortConfig, VNI_F_L3MISS, VNI_F_LEARN, VNI_F_PROXY, VniConfig},
    wire::{ETH_P_ARP, ETH_P_IPV6},
};

use crate::{
    deliver,
    maps::{Traffic, count_traffic},
    miss,
    parse::{Packet, ensure_linear, ether_type},
};

/// Answers the frame from local port `ifindex` (`port`, in a VNI with `vcfg.flags`
/// `VNI_F_PROXY`), whose Ethernet header is `eth`, when it asks for an address the VNI's table
/// knows: the frame becomes the answer and goes back out of the port, to the workload that
/// asked. Returns that verdict, or `ProxyReplyFailed` when the frame could not be rewritten;
/// `None` when the frame is not answered here (it floods like any other). An ARP request for an
/// unknown address is reported when the VNI has `VNI_F_L3MISS`.
#[inline(always)]
pub fn answer(
    ctx: &TcContext,
    ifindex: u32,
    port: &PortConfig,
    vcfg: &VniConfig,
    eth: &EthHdr,
) -> Option<Result<i32, DropReason>> {
    let rewritten = match ether_type(eth) {
        ETH_P_ARP => {
            let request = arp::parse(ctx, EthHdr::LEN)?;
            let Some(mac) = arp::known_target(port.vni, &request) else {
                if arp::asks(&request) && vcfg.flags & VNI_F_L3MISS != 0 {
                    report_l3_miss(port.vni, ifindex, &request);
                }
                // Unknown: flooded like any broadcast, so the answer can teach the table.
                return None;
            };
            arp::rewrite_as_reply(ctx, &request, &mac)
        }
        ETH_P_IPV6 => {
            let solicit = nd::parse(ctx, 0)?;
            let mac = nd::known_target(port.vni, &solicit)?;
            nd::rewrite_as_advert(ctx, &solicit, &eth.src_addr, &mac)
        }
        _ => return None,
    };
    Some(send_back(ctx, ifindex, port, rewritten))
}

/// Sends the answer `rewritten` made back out of port `ifindex`. Returns the verdict, or
/// `ProxyReplyFailed` when the rewrite failed.
#[inline(always)]
fn send_back(
    ctx: &TcContext,
    ifindex: u32,
    port: &PortConfig,
    rewritten: Option<()>,
) -> Result<i32, DropReason> {
    rewritten.ok_or(DropReason::ProxyReplyFailed)?;
    count_traffic(port.stats_slot, Traffic::ProxyReply, ctx.len());
    deliver::redirect(ifindex)
}

#[inline(always)]
fn report_l3_miss(vni: u32, ifindex: u32, request: &ArpHdr) {
    miss::report(MissEvent {
        kind: MISS_L3,
        vni,
        mac: [0; 6],
        _pad: [0; 2],
        ip: request.tpa,
        ifindex,
    });
}

/// Learns from the decapsulated frame of VNI `vni` whose inner Ethernet header `eth` is at
/// `inner`: the sender of an ARP packet, the target of a neighbour advertisement. Only
/// when the VNI has both `VNI_F_PROXY` and `VNI_F_LEARN`: the proxy learns only where the VNI
/// learns (and ages what it learned).
#[inline(always)]
pub fn learn_from_decap(ctx: &impl Packet, inner: usize, vni: u32, vcfg: &VniConfig, eth: &EthHdr) {
    if vcfg.flags & (VNI_F_PROXY | VNI_F_LEARN) != VNI_F_PROXY | VNI_F_LEARN {
        return;
    }
    match ether_type(eth) {
        ETH_P_ARP => {
            let offset = inner + EthHdr::LEN;
            if ensure_linear(ctx, offset + ArpHdr::LEN)
                && let Some(arp) = arp::parse(ctx, offset)
            {
                arp::learn_sender(vni, &arp);
            }
        }
        ETH_P_IPV6 => {
            if ensure_linear(ctx, inner + nd::ADVERT_MIN_LEN)
                && let Some(advert) = nd::parse(ctx, inner)
            {
                nd::learn_advert(vni, &advert, &eth.src_addr);
            }
        }
        _ => {}
    }
}
