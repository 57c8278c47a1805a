//! The Internet checksum (RFC 1071): of an IPv4 header, an ICMPv6 message, the IPv4 and IPv6
//! pseudo headers, and the sums a VXLAN-over-IPv6 sender adds up. Sums are of 16-bit big-endian
//! words, folded to 16 bits, unless they say otherwise.

use aya_ebpf::helpers::bpf_csum_diff;
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

/// The folded sum of the IPv4 pseudo header of a `len`-byte upper-layer packet of protocol
/// `proto` from `src` to `dst`: what a sender that leaves the rest of the checksum to an
/// offload writes in the checksum field (`CHECKSUM_PARTIAL`).
#[inline(always)]
pub fn ipv4_pseudo_sum(src: &[u8; 4], dst: &[u8; 4], len: u16, proto: u8) -> u16 {
    fold(words(src) + words(dst) + u32::from(len) + u32::from(proto))
}

/// The ones'-complement sum of `value`'s bytes (a multiple of 4 of them) as `bpf_csum_diff`
/// makes it: 32 bits, unfolded, in the CPU's byte order (a "partial" sum). Partials add with
/// `+` in a `u64` and fold with [`fold_partials`]; the helper sums a header in one call, where
/// summing its bytes in BPF code took hundreds of bytes of stack for the byte loads.
#[inline(always)]
pub fn partial<T: Plain>(value: &T) -> u64 {
    let bytes = value.as_bytes();
    // SAFETY: the helper reads `bytes.len()` bytes of `value`, which lives until it returns;
    // with no `from` buffer it writes nothing. A length that is not a multiple of 4 is refused
    // (a negative result, taken as zero: callers pass headers of 4n bytes).
    let sum = unsafe {
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            bytes.as_ptr().cast_mut().cast(),
            bytes.len() as u32,
            0,
        )
    };
    u64::from(sum.max(0) as u32)
}

/// The partial (see [`partial`]) of the pseudo header of a `len`-byte upper-layer packet of
/// protocol `proto` from `src` to `dst` (IPv4 or IPv6 addresses).
#[inline(always)]
pub fn pseudo_partial<A: Plain>(src: &A, dst: &A, len: u16, proto: u8) -> u64 {
    partial(src) + partial(dst) + word(len) + word(u16::from(proto))
}

/// The partial (see [`partial`]) of one 16-bit word `word` (host order) of a packet.
#[inline(always)]
pub fn word(word: u16) -> u64 {
    u64::from(u16::from_ne_bytes(word.to_be_bytes()))
}

/// The partial of the ones'-complement negation of partial `sum`.
#[inline(always)]
pub fn negate(sum: u64) -> u64 {
    u64::from(!fold_partials(sum))
}

/// A folded sum of 32-bit partial sums `bpf_csum_diff` returned (summed in the CPU's byte
/// order), as a sum of big-endian words: the ones'-complement sum commutes with swapping bytes
/// (RFC 1071, section 2), so the folded result's bytes in memory order are the big-endian sum.
#[inline(always)]
pub fn from_partials(sum: u64) -> u16 {
    u16::from_be_bytes(fold_partials(sum).to_ne_bytes())
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
