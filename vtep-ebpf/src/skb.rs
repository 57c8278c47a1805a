//! The skb beside the packet bytes: metadata the kernel keeps about the packet (its interface,
//! hash, packet type, an 802.1Q tag taken out of the frame) and the helpers that resize the
//! packet. The only place the context's raw `__sk_buff` pointer is used.
//!
//! Each `unsafe` here has one invariant: `ctx.skb.skb` is the `__sk_buff` the kernel passed the
//! running program, valid for the whole run; the verifier checks (and rewrites) every field read
//! against the program type, and the helpers take that pointer as their context argument.

use aya_ebpf::{
    bindings::BPF_CSUM_LEVEL_QUERY,
    helpers::{
        bpf_check_mtu, bpf_csum_level, bpf_skb_change_head, bpf_skb_change_tail,
        bpf_skb_load_bytes, bpf_skb_vlan_pop,
    },
    programs::TcContext,
};

/// `skb->pkt_type` of frames addressed to this host's MAC, and to a multicast MAC.
pub const PACKET_HOST: u32 = 0;
pub const PACKET_MULTICAST: u32 = 2;

/// An 802.1Q tag the kernel took out of a received frame into the skb's metadata.
pub struct VlanTag {
    /// Tag protocol identifier, network order (as `__sk_buff::vlan_proto` holds it).
    pub proto: u16,
    /// Tag control information, host order.
    pub tci: u16,
}

/// The interface the packet is on (at TC ingress: the one it arrived on).
#[inline(always)]
pub fn ifindex(ctx: &TcContext) -> u32 {
    // SAFETY: a field read of the program's own context (module doc).
    unsafe { (*ctx.skb.skb).ifindex }
}

/// The flow hash the kernel already has for the packet (sockets set one), or 0 without one.
#[inline(always)]
pub fn hash(ctx: &TcContext) -> u32 {
    // SAFETY: a field read of the program's own context (module doc).
    unsafe { (*ctx.skb.skb).hash }
}

/// `skb->mark`.
#[inline(always)]
pub fn mark(ctx: &TcContext) -> u32 {
    // SAFETY: a field read of the program's own context (module doc).
    unsafe { (*ctx.skb.skb).mark }
}

/// Sets `skb->mark`, which TC programs may write.
#[inline(always)]
pub fn set_mark(ctx: &TcContext, mark: u32) {
    // SAFETY: a field write of the program's own context, which the verifier allows TC programs
    // for `mark` (module doc).
    unsafe { (*ctx.skb.skb).mark = mark }
}

/// `skb->pkt_type`: whom the frame's destination MAC addresses (`PACKET_*`).
#[inline(always)]
pub fn pkt_type(ctx: &TcContext) -> u32 {
    // SAFETY: a field read of the program's own context (module doc).
    unsafe { (*ctx.skb.skb).pkt_type }
}

/// The 802.1Q tag the kernel took out of the frame, if it did.
#[inline(always)]
pub fn vlan_tag(ctx: &TcContext) -> Option<VlanTag> {
    // SAFETY: field reads of the program's own context (module doc).
    let (present, proto, tci) = unsafe {
        let s = &*ctx.skb.skb;
        (s.vlan_present, s.vlan_proto, s.vlan_tci)
    };
    (present != 0).then_some(VlanTag {
        proto: proto as u16,
        tci: tci as u16,
    })
}

/// Clears the 802.1Q tag from the skb's metadata. Returns `None` when the kernel refuses.
#[inline(always)]
pub fn vlan_pop(ctx: &TcContext) -> Option<()> {
    // SAFETY: the helper takes the program's own context (module doc).
    (unsafe { bpf_skb_vlan_pop(ctx.skb.skb) } == 0).then_some(())
}

/// Grows the packet by `len` bytes at its head (before the MAC header), with no
/// protocol-specific handling. Returns `None` when the kernel refuses.
#[inline(always)]
pub fn change_head(ctx: &TcContext, len: u32) -> Option<()> {
    // SAFETY: the helper takes the program's own context (module doc).
    (unsafe { bpf_skb_change_head(ctx.skb.skb, len, 0) } == 0).then_some(())
}

/// Grows or cuts the packet to `len` bytes at its tail. Returns `None` when the kernel refuses.
#[inline(always)]
pub fn change_tail(ctx: &TcContext, len: u32) -> Option<()> {
    // SAFETY: the helper takes the program's own context (module doc).
    (unsafe { bpf_skb_change_tail(ctx.skb.skb, len, 0) } == 0).then_some(())
}

/// The GSO segment size: non-zero for a packet that stands for several (built by this host's own
/// stack and handed over a veth, or merged by GRO).
#[inline(always)]
pub fn gso_size(ctx: &TcContext) -> u32 {
    // SAFETY: a field read of the program's own context (module doc).
    unsafe { (*ctx.skb.skb).gso_size }
}

/// Whether the device (or GRO) verified the packet's checksums (`CHECKSUM_UNNECESSARY`).
#[inline(always)]
pub fn csum_verified(ctx: &TcContext) -> bool {
    // SAFETY: the helper takes the program's own context (module doc); a query changes nothing.
    unsafe { bpf_csum_level(ctx.skb.skb, u64::from(BPF_CSUM_LEVEL_QUERY)) >= 0 }
}

/// Whether the packet, `shrink` bytes shorter, fits the MTU of interface `ifindex` plus its
/// link-layer header (`bpf_check_mtu`). `false` also when there is no such interface.
#[inline(always)]
pub fn fits_mtu(ctx: &TcContext, ifindex: u32, shrink: i32) -> bool {
    let mut mtu_len = 0u32;
    // SAFETY: the helper takes the program's own context (module doc) and writes only the local
    // `mtu_len` (0 on the way in: measure the skb's own length).
    unsafe { bpf_check_mtu(ctx.skb.skb.cast(), ifindex, &mut mtu_len, -shrink, 0) == 0 }
}

/// Copies `len` packet bytes from `offset` to `to`, also from the non-linear part. Returns `None`
/// when the packet is shorter.
///
/// # Safety
/// `to` must be valid for writes of `len` bytes (the verifier checks it as well).
#[inline(always)]
pub unsafe fn load_bytes(ctx: &TcContext, offset: u32, to: *mut u8, len: u32) -> Option<()> {
    // SAFETY: the program's own context (module doc); `to` is the caller's promise.
    (unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), offset, to.cast(), len) } == 0).then_some(())
}

/// Whether the packet's checksums are still to be filled in by an offload (`CHECKSUM_PARTIAL`:
/// a sender on this host, over a veth or virtio, left them to hardware that will never run).
/// The skb does not show it to TC programs, so this asks the kernel to change the L4 checksum
/// field at `check_off` by one without a pseudo-header: `inet_proto_csum_replace4` leaves the
/// field of a `CHECKSUM_PARTIAL` packet alone and changes anyone else's, which is then changed
/// back. `None` when the field cannot be read or written.
#[inline(always)]
pub fn csum_left_to_offload(ctx: &TcContext, check_off: usize) -> Option<bool> {
    /// `BPF_F_HDR_FIELD_MASK` size: a 2-byte field.
    const FIELD_2: u64 = 2;
    let before: [u8; 2] = ctx.load(check_off).ok()?;
    ctx.l4_csum_replace(check_off, 0, 1, FIELD_2).ok()?;
    let after: [u8; 2] = ctx.load(check_off).ok()?;
    if after == before {
        return Some(true);
    }
    ctx.l4_csum_replace(check_off, 1, 0, FIELD_2).ok()?;
    Some(false)
}
