//! The outer UDP checksum of received VXLAN. RFC 7348 lets an IPv4 sender leave it zero (the
//! kernel driver does by default), and RFC 6935 an IPv6 tunnel endpoint that agrees (vtep
//! accepts it: the kernel's `udp6zerocsumrx`); when it is not zero the kernel's UDP layer
//! verifies it, so the datapath must too, or it would deliver what the kernel drops.
//!
//! Trusted without summing, as the kernel trusts them: a zero checksum, a device that verified it
//! (`CHECKSUM_UNNECESSARY`), a GSO packet (built by this host's own stack and handed over a veth,
//! or merged by GRO, which verifies first), and a packet whose checksums a sender on this host
//! left to an offload (`CHECKSUM_PARTIAL`, over a veth or virtio: the kernel's own vxlan driver
//! then writes an outer checksum that is only right once the inner one is filled in, "local
//! checksum offload"). A checksum field holding just the pseudo-header sum is such a packet too.
//! Everything else is summed here, [`SUM_CHUNK`] bytes at a time, so a non-linear packet needs
//! no pull.

use aya_ebpf::programs::TcContext;
use network_types::udp::UdpHdr;

use crate::{
    csum,
    maps::{SUM_CHUNK, packet_sum},
    parse::Packet,
    skb,
};

/// The largest UDP segment summed in software: 64 chunks, 16 KiB, above any jumbo MTU.
const MAX_CHUNKS: u32 = 64;
pub const MAX_SUM_LEN: u32 = SUM_CHUNK * MAX_CHUNKS;
/// Where the checksum field is in a UDP header.
const CHECK_OFFSET: usize = core::mem::offset_of!(UdpHdr, check);

/// Whether the UDP checksum `check` of the `udp_len`-byte segment at `udp_off`, whose pseudo
/// header's partial sum (`csum::partial`) `pseudo` gives, lets the packet through. `false` for a
/// wrong checksum, and for a segment too long to sum.
#[inline(always)]
pub fn acceptable(
    ctx: &TcContext,
    udp_off: u32,
    udp_len: u32,
    pseudo: impl FnOnce() -> u64,
    check: u16,
) -> bool {
    if check == 0 || skb::csum_verified(ctx) || skb::gso_size(ctx) != 0 {
        return true;
    }
    let pseudo = pseudo();
    if check == csum::from_partials(pseudo) {
        return true;
    }
    match skb::csum_left_to_offload(ctx, udp_off as usize + CHECK_OFFSET) {
        Some(true) => return true,
        Some(false) => {}
        None => return false,
    }
    sums_right(ctx, udp_off, udp_len, pseudo)
}

/// Whether the checksum is provably right from the bytes alone: zero, or summed here. An
/// xdp_buff carries none of what makes the kernel trust a checksum (a device's verdict, GSO,
/// an offload left pending), so `false` means "not proven", for a program that can hand the
/// packet to one that knows (the XDP program passes it to TC, which applies [`acceptable`]).
#[inline(always)]
pub fn proven(
    ctx: &impl Packet,
    udp_off: u32,
    udp_len: u32,
    pseudo: impl FnOnce() -> u64,
    check: u16,
) -> bool {
    check == 0 || sums_right(ctx, udp_off, udp_len, pseudo())
}

/// Whether the segment and its pseudo header (partial sum `pseudo`) sum to all ones; `false`
/// also for a segment too long to sum.
#[inline(always)]
fn sums_right(ctx: &impl Packet, udp_off: u32, udp_len: u32, pseudo: u64) -> bool {
    segment_sum(ctx, udp_off, udp_len)
        .is_some_and(|sum| csum::fold_partials(pseudo + sum) == 0xffff)
}

/// The ones'-complement sum (unfolded, in the CPU's byte order, as `bpf_csum_diff` sums) of the
/// `len` bytes at `offset`, up to [`MAX_SUM_LEN`]; `None` when the packet is shorter than that,
/// `len` is larger, or a helper fails.
///
/// Not inlined: as a BPF subprogram the verifier walks the loop once, and the caller goes on from
/// one state (the returned value) instead of one per loop exit, which took the underlay program
/// past the verifier's instruction limit.
#[inline(never)]
pub fn segment_sum(ctx: &impl Packet, offset: u32, len: u32) -> Option<u64> {
    if len > MAX_SUM_LEN {
        return None;
    }
    let mut total = 0u64;
    // Whole chunks first, each of constant size, then the rest: a loop whose step depended on
    // the data would give the verifier a path per chunk length and iteration.
    let whole = len / SUM_CHUNK;
    for i in 0..MAX_CHUNKS {
        if i >= whole {
            break;
        }
        total += packet_sum(ctx, offset + i * SUM_CHUNK, SUM_CHUNK)?;
    }
    let rest = len & (SUM_CHUNK - 1);
    if rest != 0 {
        total += packet_sum(ctx, offset + whole * SUM_CHUNK, rest)?;
    }
    Some(total)
}
