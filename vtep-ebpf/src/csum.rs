//! The Internet checksum (RFC 1071) of an IPv4 header, an ICMPv6 message and the IPv4 pseudo
//! header of a UDP segment.

use network_types::ip::{IpProto, Ipv4Hdr};

use crate::parse::Plain;

/// The ones'-complement sum of the header's 16-bit words, folded to 16 bits. A valid header
/// sums to 0xffff; a header being built sums, with its checksum field zero, to the complement of
/// the checksum to write.
#[inline(always)]
pub fn ipv4_header_sum(header: &Ipv4Hdr) -> u16 {
    fold(words(header.as_bytes()))
}

/// The sum of an ICMPv6 message (`message`, its checksum field zero) with the IPv6 pseudo
/// header of source `src` and destination `dst`: the complement is the checksum to write.
#[inline(always)]
pub fn icmpv6_sum(src: &[u8; 16], dst: &[u8; 16], message: &[u8]) -> u16 {
    let next_header = u32::from(IpProto::Ipv6Icmp as u8);
    fold(words(src) + words(dst) + words(message) + message.len() as u32 + next_header)
}

/// The folded sum of the IPv4 pseudo header `pseudo` of a UDP segment (source and destination
/// address, zero, protocol, UDP length): what a sender that leaves the rest of the checksum to
/// an offload writes in the checksum field (`CHECKSUM_PARTIAL`).
#[inline(always)]
pub fn pseudo_header_sum(pseudo: &[u8; 12]) -> u16 {
    fold(words(pseudo))
}

/// The folded sum of the IPv6 pseudo header of an upper-layer packet of `len` bytes and
/// protocol `next_header` from `src` to `dst`: as [`pseudo_header_sum`], for IPv6.
#[inline(always)]
pub fn ipv6_pseudo_header_sum(src: &[u8; 16], dst: &[u8; 16], len: u32, next_header: u8) -> u16 {
    fold(words(src) + words(dst) + len + u32::from(next_header))
}

/// Folds a sum of 32-bit partial sums (as `bpf_csum_diff` returns them, in its byte order; all
/// ones is all ones in either order) to 16 bits.
#[inline(always)]
pub fn fold_partials(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    fold(sum as u32)
}

#[inline(always)]
fn words(bytes: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    for w in bytes.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    sum
}

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}
