//! Hashing an inner frame's flow identity without the kernel's flow dissector: IPv4 and IPv6
//! addresses, the L4 protocol and, for TCP/UDP/SCTP, both ports; other frames by their MACs and
//! Ethernet type. Only the linear part of the frame is read; a header out of reach counts as
//! absent. `vtep_common::flow` holds the mixing, so tests can predict the result.

use aya_ebpf::programs::TcContext;
use network_types::{
    eth::EthHdr,
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
};
use vtep_common::{
    flow::{SEED, finish, mix},
    wire::{ETH_P_IP, ETH_P_IPV6},
};

use crate::parse::{self, ether_type};

/// The flow hash of the frame starting at offset 0, whose Ethernet header is `eth`.
#[inline(always)]
pub fn of_frame(ctx: &TcContext, eth: &EthHdr) -> u32 {
    let proto = ether_type(eth);
    let h = mix(SEED, u32::from(proto));
    let l3 = match proto {
        ETH_P_IP => ipv4(ctx, h),
        ETH_P_IPV6 => ipv6(ctx, h),
        _ => None,
    };
    let h = match l3 {
        Some(h) => h,
        None => {
            let d = &eth.dst_addr;
            let s = &eth.src_addr;
            let h = mix(h, u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            let h = mix(h, u32::from_be_bytes([d[4], d[5], s[0], s[1]]));
            mix(h, u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
        }
    };
    finish(h)
}

#[inline(always)]
fn ipv4(ctx: &TcContext, h: u32) -> Option<u32> {
    let ip: Ipv4Hdr = parse::load(ctx, EthHdr::LEN)?;
    let l4 = ip.proto;
    let mut h = mix(h, u32::from_be_bytes(ip.src_addr));
    h = mix(h, u32::from_be_bytes(ip.dst_addr));
    h = mix(h, u32::from(l4));
    // Ports only for unfragmented datagrams without options: later fragments carry no ports,
    // and all fragments of a flow must take one path.
    if parse::is_plain_ipv4(&ip) && !parse::is_fragment(&ip) && has_ports(l4) {
        h = mix_ports(ctx, h, EthHdr::LEN + Ipv4Hdr::LEN);
    }
    Some(h)
}

#[inline(always)]
fn ipv6(ctx: &TcContext, h: u32) -> Option<u32> {
    let ip: Ipv6Hdr = parse::load(ctx, EthHdr::LEN)?;
    let next = ip.next_hdr;
    let mut h = h;
    for addr in [&ip.src_addr, &ip.dst_addr] {
        for w in addr.chunks_exact(4) {
            h = mix(h, u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
        }
    }
    h = mix(h, u32::from(next));
    // Extension headers are not walked: such a flow still hashes by its addresses.
    if has_ports(next) {
        h = mix_ports(ctx, h, EthHdr::LEN + Ipv6Hdr::LEN);
    }
    Some(h)
}

#[inline(always)]
fn has_ports(l4: u8) -> bool {
    l4 == IpProto::Tcp as u8 || l4 == IpProto::Udp as u8 || l4 == IpProto::Sctp as u8
}

/// Mixes the 4 bytes of source and destination port at `off`, when they are in reach.
#[inline(always)]
fn mix_ports(ctx: &TcContext, h: u32, off: usize) -> u32 {
    match parse::load::<[u8; 4]>(ctx, off) {
        Some(ports) => mix(h, u32::from_be_bytes(ports)),
        None => h,
    }
}
