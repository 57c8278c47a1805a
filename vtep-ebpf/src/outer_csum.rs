//! The outer UDP checksum of VXLAN sent over IPv6, which RFC 8200 requires unless both ends
//! agree to go without (RFC 6935/6936): the kernel driver sends it and, by default, drops
//! packets without it.
//!
//! The checksum covers the whole inner frame, but most frames' sums are known from their headers
//! alone: an inner TCP, UDP or ICMPv6 segment whose own checksum is right (or will be, once an
//! offload fills it in) sums to the complement of its pseudo header, an ICMPv4 message to zero.
//! That is the kernel's "local checksum offload" (`lco_csum`, Documentation/networking/
//! checksum-offloads.rst), and the only way to get the outer checksum right for a frame whose
//! inner checksum a sender on this host left to an offload (`CHECKSUM_PARTIAL`): its bytes do not
//! hold the final sum yet. Frames it does not cover (non-IP, fragments, IPv4 options, IPv6
//! extension headers, UDP without a checksum) are summed byte by byte; their bytes are final.
//!
//! Sums here are partials (`csum::partial`): the helper's, in the CPU's byte order.

use aya_ebpf::programs::TcContext;
use network_types::{
    eth::EthHdr,
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::{VXLAN_I_FLAG_MASK, VxlanHdr},
};
use vtep_common::{
    drop::DropReason,
    wire::{ETH_P_IP, ETH_P_IPV6},
};

use crate::{
    csum,
    maps::packet_sum,
    parse::{self, ether_type},
    skb, udp_csum,
};

/// What [`frame_sum`] returns when it cannot sum the frame.
const UNSUMMABLE: u64 = u64::MAX;

/// Where the inner L3 header starts in the inner frame.
const L3: usize = EthHdr::LEN;
const UDP_CHECK: usize = core::mem::offset_of!(UdpHdr, check);

/// The partial sum of what follows the outer UDP header of the VXLAN packet of VNI `vni` being
/// built around the frame at offset 0 (Ethernet header `inner_eth`): the VXLAN header and the
/// inner frame as it will be on the wire. Fails with `GsoNeedsChecksum` for a GSO frame (see
/// the drop reason), `EncapFailed` for a frame too long to sum that the headers do not describe.
#[inline(always)]
pub fn body_sum(ctx: &TcContext, vni: u32, inner_eth: &EthHdr) -> Result<u64, DropReason> {
    if skb::gso_size(ctx) != 0 {
        return Err(DropReason::GsoNeedsChecksum);
    }
    let mut vxlan = VxlanHdr {
        flags: VXLAN_I_FLAG_MASK,
        _reserved1: [0; 3],
        vni: [0; 3],
        _reserved2: 0,
    };
    vxlan.set_vni(vni);
    match frame_sum(ctx, &vxlan, ether_type(inner_eth), ctx.len()) {
        UNSUMMABLE => Err(DropReason::EncapFailed),
        sum => Ok(sum),
    }
}

/// [`body_sum`]'s sum of `vxlan` and the `inner_len`-byte frame of Ethernet type `proto`, or
/// [`UNSUMMABLE`].
#[inline(always)]
fn frame_sum(ctx: &TcContext, vxlan: &VxlanHdr, proto: u16, inner_len: u32) -> u64 {
    let rest = match from_headers(ctx, proto, inner_len) {
        Some(sum) => sum,
        None => match udp_csum::segment_sum(ctx, 0, inner_len) {
            Some(sum) => sum,
            None => return UNSUMMABLE,
        },
    };
    csum::partial(vxlan) + rest
}

/// The partial sum of the frame, from its Ethernet and IP headers (Ethernet type `proto`) and,
/// for bytes after the IP packet (padding), those bytes; `None` when the headers do not tell it
/// (see the module doc) and the frame must be summed. Reads only the fields it needs and sums
/// the rest from the packet: whole headers on the stack took more of it than a call chain may.
#[inline(always)]
fn from_headers(ctx: &TcContext, proto: u16, inner_len: u32) -> Option<u64> {
    // The first 10 bytes of an IPv4 header: version and length, TOS, total length, ID, flags and
    // fragment offset, TTL, protocol. The first 8 of an IPv6 header: version, class and flow
    // label, payload length, next header, hop limit.
    let (hlen, next, l4_len, addrs_at, addrs_len, ip_end) = match proto {
        ETH_P_IP => {
            let h: [u8; 10] = parse::load(ctx, L3)?;
            let frags = u16::from_be_bytes([h[6], h[7]]);
            // No options, not a fragment (MF flag or offset).
            if h[0] != 0x45 || frags & 0x3fff != 0 {
                return None;
            }
            let total = u16::from_be_bytes([h[2], h[3]]);
            let l4_len = total.checked_sub(Ipv4Hdr::LEN as u16)?;
            let end = L3 as u32 + u32::from(total);
            (Ipv4Hdr::LEN, h[9], l4_len, L3 + 12, 8, end)
        }
        ETH_P_IPV6 => {
            let h: [u8; 8] = parse::load(ctx, L3)?;
            let len = u16::from_be_bytes([h[4], h[5]]);
            let end = (L3 + Ipv6Hdr::LEN) as u32 + u32::from(len);
            (Ipv6Hdr::LEN, h[6], len, L3 + 8, 32, end)
        }
        _ => return None,
    };
    if ip_end > inner_len {
        return None;
    }
    let l4 = if proto == ETH_P_IP && next == IpProto::Icmp as u8 {
        // A right ICMP checksum makes the message sum to (negative) zero.
        0
    } else {
        if next != IpProto::Ipv6Icmp as u8 || proto != ETH_P_IPV6 {
            checksummed_l4(ctx, next, L3 + hlen)?;
        }
        let addrs = packet_sum(ctx, addrs_at as u32, addrs_len)?;
        csum::negate(addrs + csum::word(l4_len) + csum::word(u16::from(next)))
    };
    // The Ethernet and IP headers, from the packet (the helper pads them to 4n bytes with
    // zeroes, which add nothing).
    let mut sum = packet_sum(ctx, 0, (L3 + hlen) as u32)? + l4;
    if ip_end < inner_len {
        // Bytes after the IP packet (Ethernet padding) are on the wire too.
        let tail = csum::fold_partials(udp_csum::segment_sum(ctx, ip_end, inner_len - ip_end)?);
        // Summed from an odd offset, their words straddle the packet's: swapped.
        let tail = if ip_end & 1 == 1 {
            tail.swap_bytes()
        } else {
            tail
        };
        sum += u64::from(tail);
    }
    Some(sum)
}

/// `Some` when the L4 protocol `proto` at `l4` carries a checksum over its pseudo header: TCP,
/// or UDP whose checksum is not zero (an IPv4 sender may leave it out).
#[inline(always)]
fn checksummed_l4(ctx: &TcContext, proto: u8, l4: usize) -> Option<()> {
    if proto == IpProto::Tcp as u8 {
        return Some(());
    }
    if proto != IpProto::Udp as u8 {
        return None;
    }
    let check: [u8; 2] = parse::load(ctx, l4 + UDP_CHECK)?;
    (check != [0; 2]).then_some(())
}
