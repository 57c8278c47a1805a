//! The proxy for IPv6 (the kernel's `proxy` does both): neighbour solicitations from local ports
//! for addresses the VNI knows (`PROXY6`) are answered on the host with a neighbour
//! advertisement (RFC 4861) and never flooded; the table learns from advertisements in
//! decapsulated frames. Duplicate address detection (an unspecified source) is never answered.

use aya_ebpf::{helpers::bpf_skb_change_tail, programs::TcContext};
use vtep_common::{
    maps::Proxy6Key,
    wire::{ETH_LEN, IPV6_LEN},
};

use crate::{
    csum, learn,
    maps::PROXY6,
    parse::{is_group_mac, ptr_at},
};

const IPPROTO_ICMPV6: u8 = 58;
const ND_SOLICIT: u8 = 135;
const ND_ADVERT: u8 = 136;
/// RFC 4861: neighbour discovery packets are sent, and accepted, with hop limit 255 only.
const ND_HOP_LIMIT: u8 = 255;
/// ICMPv6 header (4) + reserved/flags (4) + target address (16).
const ND_LEN: usize = 24;
/// Bytes from the Ethernet header to the end of an ND message's target address: what must be
/// linear to parse one.
pub const ADVERT_MIN_LEN: usize = ETH_LEN + IPV6_LEN + ND_LEN;
/// The advertisement vtep sends: the ND message and one target link-layer address option.
const NA_LEN: usize = ND_LEN + 8;
const FRAME_LEN: usize = ETH_LEN + IPV6_LEN + NA_LEN;

/// A neighbour solicitation or advertisement: the IPv6 source and the target address.
pub struct Nd {
    pub kind: u8,
    pub src: [u8; 16],
    pub target: [u8; 16],
}

/// The ND message of the IPv6 frame at offset `offset` (its Ethernet header), or `None` for
/// anything else: other protocols, extension headers, a hop limit other than 255, a short frame.
#[inline(always)]
pub fn parse(ctx: &TcContext, offset: usize) -> Option<Nd> {
    let ip = unsafe { &*ptr_at::<[u8; IPV6_LEN]>(ctx, offset + ETH_LEN)? };
    if ip[0] >> 4 != 6 || ip[6] != IPPROTO_ICMPV6 || ip[7] != ND_HOP_LIMIT {
        return None;
    }
    let icmp = unsafe { &*ptr_at::<[u8; ND_LEN]>(ctx, offset + ETH_LEN + IPV6_LEN)? };
    if (icmp[0] != ND_SOLICIT && icmp[0] != ND_ADVERT) || icmp[1] != 0 {
        return None;
    }
    let mut nd = Nd {
        kind: icmp[0],
        src: [0; 16],
        target: [0; 16],
    };
    nd.src.copy_from_slice(&ip[8..24]);
    nd.target.copy_from_slice(&icmp[8..24]);
    Some(nd)
}

/// The MAC `PROXY6` has for the target of solicitation `nd` in VNI `vni`, when it should be
/// answered: a solicitation, not duplicate address detection.
#[inline(always)]
pub fn known_target(vni: u32, nd: &Nd) -> Option<[u8; 6]> {
    if nd.kind != ND_SOLICIT || nd.src == [0; 16] {
        return None;
    }
    let entry = unsafe { PROXY6.get(Proxy6Key { vni, ip: nd.target }) }?;
    Some(entry.mac)
}

/// Turns the solicitation `nd` from `requester` (the frame at offset 0) into the solicited
/// advertisement from `mac`: to the solicitor, override and solicited flags set, with a target
/// link-layer address option. Returns false when the frame cannot be resized or written.
#[inline(always)]
pub fn rewrite_as_advert(ctx: &TcContext, nd: &Nd, requester: &[u8; 6], mac: &[u8; 6]) -> bool {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(requester);
    f[6..12].copy_from_slice(mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    let ip = ETH_LEN;
    f[ip] = 0x60;
    f[ip + 4..ip + 6].copy_from_slice(&(NA_LEN as u16).to_be_bytes());
    f[ip + 6] = IPPROTO_ICMPV6;
    f[ip + 7] = ND_HOP_LIMIT;
    f[ip + 8..ip + 24].copy_from_slice(&nd.target);
    f[ip + 24..ip + 40].copy_from_slice(&nd.src);
    let na = ip + IPV6_LEN;
    f[na] = ND_ADVERT;
    // Solicited and override (RFC 4861 section 7.2.4); not a router.
    f[na + 4] = 0x60;
    f[na + 8..na + 24].copy_from_slice(&nd.target);
    // Target link-layer address option: type 2, length 1 (8 bytes).
    f[na + 24] = 2;
    f[na + 25] = 1;
    f[na + 26..na + 32].copy_from_slice(mac);
    let sum = csum::icmpv6_sum(&f[ip + 8..ip + 40], &f[na..na + NA_LEN]);
    f[na + 2..na + 4].copy_from_slice(&(!sum).to_be_bytes());

    if unsafe { bpf_skb_change_tail(ctx.skb.skb, FRAME_LEN as u32, 0) } != 0 {
        return false;
    }
    let Some(dst) = ptr_at::<[u8; FRAME_LEN]>(ctx, 0) else {
        return false;
    };
    unsafe { core::ptr::write_unaligned(dst, f) };
    true
}

/// Learns the target of advertisement `nd` (from a remote station with MAC `mac`) in VNI `vni`,
/// as `arp::learn_sender` does for ARP.
#[inline(always)]
pub fn learn_advert(vni: u32, nd: &Nd, mac: &[u8; 6]) {
    if nd.kind != ND_ADVERT || is_group_mac(mac) || nd.target[0] == 0xff {
        return;
    }
    learn::learn_address(&PROXY6, Proxy6Key { vni, ip: nd.target }, mac);
}
