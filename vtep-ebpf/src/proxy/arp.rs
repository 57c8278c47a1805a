//! The proxy for IPv4: Ethernet/IPv4 ARP (network-types' `ArpHdr`), read, answered from `PROXY`
//! and learned from. Any other kind of ARP packet is left alone.

use aya_ebpf::programs::TcContext;
use network_types::{arp::ArpHdr, eth::EthHdr};
use vtep_common::{
    maps::ProxyKey,
    wire::{ARP_HTYPE_ETHERNET, ARP_OP_REPLY, ARP_OP_REQUEST, ETH_P_ARP, ETH_P_IP},
};

use crate::{
    learn,
    maps::{self, PROXY},
    parse::{self, Packet, Plain, is_group_mac},
};

/// An ARP reply as the proxy writes it over the request.
#[repr(C)]
#[derive(Clone, Copy)]
struct ReplyFrame {
    eth: EthHdr,
    arp: ArpHdr,
}

const _: () = assert!(size_of::<ReplyFrame>() == EthHdr::LEN + ArpHdr::LEN);
// SAFETY: `#[repr(C)]` of two `Plain` headers, no padding (size asserted above).
unsafe impl Plain for ReplyFrame {}

/// The Ethernet/IPv4 ARP packet at `offset`, or `None` for any other ARP packet or a short
/// frame.
#[inline(always)]
pub fn parse(ctx: &impl Packet, offset: usize) -> Option<ArpHdr> {
    let arp: ArpHdr = parse::load(ctx, offset)?;
    let eth_ipv4 = arp.htype() == ARP_HTYPE_ETHERNET
        && arp.ptype() == ETH_P_IP
        && arp.hlen() == 6
        && arp.plen() == 4;
    eth_ipv4.then_some(arp)
}

/// True for a request that asks for an address: not a gratuitous announcement (sender and
/// target address equal).
#[inline(always)]
pub fn asks(arp: &ArpHdr) -> bool {
    arp.oper() == ARP_OP_REQUEST && arp.spa != arp.tpa
}

/// What `PROXY` says the target of request `arp` in VNI `vni` is, when the request asks (see
/// [`asks`]) for a known address.
#[inline(always)]
pub fn known_target(vni: u32, arp: &ArpHdr) -> Option<[u8; 6]> {
    if !asks(arp) {
        return None;
    }
    let entry = maps::get(&PROXY, &ProxyKey { vni, ip: arp.tpa })?;
    Some(entry.mac)
}

/// Turns the request `arp` (the frame at offset 0) into the reply from `mac`, addressed to the
/// requester. Returns `None` when the frame cannot be written.
#[inline(always)]
pub fn rewrite_as_reply(ctx: &TcContext, request: &ArpHdr, mac: &[u8; 6]) -> Option<()> {
    // Hardware and protocol type and lengths stay as the request has them (checked by `parse`).
    let mut reply = *request;
    reply.set_oper(ARP_OP_REPLY);
    reply.sha = *mac;
    reply.spa = request.tpa;
    reply.tha = request.sha;
    reply.tpa = request.spa;
    let frame = ReplyFrame {
        eth: EthHdr {
            dst_addr: request.sha,
            src_addr: *mac,
            ether_type: ETH_P_ARP.to_be(),
        },
        arp: reply,
    };
    parse::store(ctx, 0, frame)
}

/// Learns the sender of `arp` (a request or a reply from a remote workload) in VNI `vni`.
#[inline(always)]
pub fn learn_sender(vni: u32, arp: &ArpHdr) {
    let op = arp.oper();
    if (op != ARP_OP_REQUEST && op != ARP_OP_REPLY) || arp.spa == [0; 4] || is_group_mac(&arp.sha) {
        return;
    }
    learn::learn_address(&PROXY, ProxyKey { vni, ip: arp.spa }, &arp.sha);
}
