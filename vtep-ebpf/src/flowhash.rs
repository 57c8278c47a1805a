//! Hashing an inner frame's flow identity without the kernel's flow dissector: IPv4 and IPv6
//! addresses, the L4 protocol and, for TCP/UDP/SCTP, both ports; other frames by their MACs and
//! Ethernet type. Only the linear part of the frame is read; a header out of reach counts as
//! absent.

use aya_ebpf::programs::TcContext;
use vtep_common::{
    flow::{SEED, finish, mix},
    wire::{ETH_LEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_UDP, IPV4_LEN, IPV6_LEN},
};

use crate::parse::ptr_at;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_SCTP: u8 = 132;

/// The flow hash of the frame starting at offset 0, whose Ethernet header is `eth`.
#[inline(always)]
pub fn of_frame(ctx: &TcContext, eth: &[u8; ETH_LEN]) -> u32 {
    let proto = u16::from_be_bytes([eth[12], eth[13]]);
    let h = mix(SEED, u32::from(proto));
    let l3 = match proto {
        ETH_P_IP => ipv4(ctx, h),
        ETH_P_IPV6 => ipv6(ctx, h),
        _ => None,
    };
    let h = match l3 {
        Some(h) => h,
        None => {
            let h = mix(h, word(eth, 0));
            let h = mix(h, word(eth, 4));
            mix(h, word(eth, 8))
        }
    };
    finish(h)
}

#[inline(always)]
fn ipv4(ctx: &TcContext, h: u32) -> Option<u32> {
    let ip = unsafe { &*ptr_at::<[u8; IPV4_LEN]>(ctx, ETH_LEN)? };
    let l4 = ip[9];
    let mut h = mix(h, word(ip, 12));
    h = mix(h, word(ip, 16));
    h = mix(h, u32::from(l4));
    // Ports only for unfragmented datagrams without options: later fragments carry no ports,
    // and all fragments of a flow must take one path.
    let unfragmented = (u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff) == 0;
    if ip[0] == 0x45 && unfragmented && has_ports(l4) {
        h = mix_ports(ctx, h, ETH_LEN + IPV4_LEN);
    }
    Some(h)
}

#[inline(always)]
fn ipv6(ctx: &TcContext, h: u32) -> Option<u32> {
    let ip = unsafe { &*ptr_at::<[u8; IPV6_LEN]>(ctx, ETH_LEN)? };
    let next = ip[6];
    let mut h = h;
    let mut off = 8;
    while off < IPV6_LEN {
        h = mix(h, word(ip, off));
        off += 4;
    }
    h = mix(h, u32::from(next));
    // Extension headers are not walked: such a flow still hashes by its addresses.
    if has_ports(next) {
        h = mix_ports(ctx, h, ETH_LEN + IPV6_LEN);
    }
    Some(h)
}

#[inline(always)]
fn has_ports(l4: u8) -> bool {
    l4 == IPPROTO_TCP || l4 == IPPROTO_UDP || l4 == IPPROTO_SCTP
}

/// Mixes the 4 bytes of source and destination port at `off`, when they are in reach.
#[inline(always)]
fn mix_ports(ctx: &TcContext, h: u32, off: usize) -> u32 {
    match ptr_at::<[u8; 4]>(ctx, off) {
        Some(ports) => mix(h, u32::from_be_bytes(unsafe { *ports })),
        None => h,
    }
}

#[inline(always)]
fn word<const N: usize>(b: &[u8; N], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
