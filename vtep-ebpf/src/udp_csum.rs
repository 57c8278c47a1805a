//! The outer UDP checksum of received VXLAN. RFC 7348 lets an IPv4 sender leave it zero (the
//! kernel driver does by default); when it is not zero the kernel's UDP layer verifies it, so the
//! datapath must too, or it would deliver what the kernel drops.
//!
//! Trusted without summing, as the kernel trusts them: a zero checksum, a device that verified it
//! (`CHECKSUM_UNNECESSARY`), a GSO packet (built by this host's own stack and handed over a veth,
//! or merged by GRO, which verifies first), and a packet whose checksums a sender on this host
//! left to an offload (`CHECKSUM_PARTIAL`, over a veth or virtio: the kernel's own vxlan driver
//! then writes an outer checksum that is only right once the inner one is filled in, "local
//! checksum offload"). A checksum field holding just the pseudo-header sum is such a packet too.
//! Everything else is summed here, [`SUM_CHUNK`] bytes at a time, so a non-linear packet needs
//! no pull.

use aya_ebpf::{helpers::bpf_csum_diff, programs::TcContext};
use network_types::{ip::IpProto, udp::UdpHdr};

use crate::{
    csum,
    maps::{SUM_CHUNK, packet_sum},
    parse::Packet,
    skb,
};

/// The largest UDP segment summed in software: 64 chunks, 16 KiB, above any jumbo MTU.
const MAX_CHUNKS: u32 = 64;
/// Where the checksum field is in a UDP header.
const CHECK_OFFSET: usize = core::mem::offset_of!(UdpHdr, check);

/// Whether the UDP checksum `check` of the `udp_len`-byte segment at `udp_off`, sent from and to
/// the IPv4 addresses `addrs` (source then destination, as in the header), lets the packet
/// through. `false` for a wrong checksum, and for a segment too long to sum.
#[inline(always)]
pub fn acceptable(ctx: &TcContext, udp_off: u32, udp_len: u32, addrs: [u8; 8], check: u16) -> bool {
    if check == 0 || skb::csum_verified(ctx) || skb::gso_size(ctx) != 0 {
        return true;
    }
    let pseudo = pseudo_header(addrs, udp_len);
    if check == csum::pseudo_header_sum(&pseudo) {
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
pub fn proven(ctx: &impl Packet, udp_off: u32, udp_len: u32, addrs: [u8; 8], check: u16) -> bool {
    check == 0 || sums_right(ctx, udp_off, udp_len, pseudo_header(addrs, udp_len))
}

/// The IPv4 pseudo header of a `udp_len`-byte UDP segment between `addrs`.
#[inline(always)]
fn pseudo_header(addrs: [u8; 8], udp_len: u32) -> [u8; 12] {
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&addrs);
    pseudo[9] = IpProto::Udp as u8;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo
}

/// Whether the segment and its pseudo header `pseudo` sum to all ones; `false` also for a
/// segment too long to sum.
#[inline(always)]
fn sums_right(ctx: &impl Packet, udp_off: u32, udp_len: u32, mut pseudo: [u8; 12]) -> bool {
    if udp_len > SUM_CHUNK * MAX_CHUNKS {
        return false;
    }
    // SAFETY: `pseudo` is 12 bytes of this stack frame, a multiple of 4 as the helper needs.
    let sum = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, pseudo.as_mut_ptr().cast(), 12, 0) };
    sum >= 0 && segment_sums_to_ones(ctx, udp_off, udp_len, u64::from(sum as u32))
}

/// Whether `seed` plus the ones'-complement sum of the `udp_len` bytes at `udp_off` folds to all
/// ones; `false` also when the packet is shorter than it claims or a helper fails.
///
/// Not inlined: as a BPF subprogram the verifier walks the loop once, and the caller goes on from
/// one state (the returned bool) instead of one per loop exit, which took the underlay program
/// past the verifier's instruction limit.
#[inline(never)]
fn segment_sums_to_ones(ctx: &impl Packet, udp_off: u32, udp_len: u32, seed: u64) -> bool {
    let mut total = seed;
    // Whole chunks first, each of constant size, then the rest: a loop whose step depended on
    // the data would give the verifier a path per chunk length and iteration.
    let whole = udp_len / SUM_CHUNK;
    for i in 0..MAX_CHUNKS {
        if i >= whole {
            break;
        }
        match packet_sum(ctx, udp_off + i * SUM_CHUNK, SUM_CHUNK) {
            Some(sum) => total += sum,
            None => return false,
        }
    }
    let rest = udp_len & (SUM_CHUNK - 1);
    if rest != 0 {
        match packet_sum(ctx, udp_off + whole * SUM_CHUNK, rest) {
            Some(sum) => total += sum,
            None => return false,
        }
    }
    csum::fold_partials(total) == 0xffff
}
