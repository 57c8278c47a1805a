//! The xdp_buff beside the packet bytes (XDP's counterpart of `skb.rs`): its whole length and
//! the helpers that copy from it, move its head and tail, and measure it against an MTU. The only
//! place the context's raw `xdp_md` pointer is used.
//!
//! Each `unsafe` here has one invariant: `ctx.ctx` is the `xdp_md` the kernel passed the running
//! program, valid for the whole run; the helpers take that pointer as their context argument.

use aya_ebpf::{
    helpers::{
        bpf_check_mtu, bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_get_buff_len,
        bpf_xdp_load_bytes,
    },
    programs::XdpContext,
};

/// The frame's length, its fragments (`xdp.frags`) included.
#[inline(always)]
pub fn len(ctx: &XdpContext) -> u32 {
    // SAFETY: the helper takes the program's own context (module doc) and only reads it.
    unsafe { bpf_xdp_get_buff_len(ctx.ctx) as u32 }
}

/// Whether the frame has fragments beyond its linear part (a multi-buffer frame).
#[inline(always)]
pub fn has_frags(ctx: &XdpContext) -> bool {
    len(ctx) as usize != ctx.data_end() - ctx.data()
}

/// Copies `len` frame bytes from `offset` to `to`, also from fragments. Returns `None` when the
/// frame is shorter.
///
/// # Safety
/// `to` must be valid for writes of `len` bytes (the verifier checks it as well).
#[inline(always)]
pub unsafe fn load_bytes(ctx: &XdpContext, offset: u32, to: *mut u8, len: u32) -> Option<()> {
    // SAFETY: the program's own context (module doc); `to` is the caller's promise.
    (unsafe { bpf_xdp_load_bytes(ctx.ctx, offset, to.cast(), len) } == 0).then_some(())
}

/// Removes the first `len` bytes of the frame. Returns `None` when the kernel refuses (the
/// frame is shorter, or would be too short for an Ethernet header).
#[inline(always)]
pub fn cut_head(ctx: &XdpContext, len: u32) -> Option<()> {
    // SAFETY: the helper takes the program's own context (module doc).
    (unsafe { bpf_xdp_adjust_head(ctx.ctx, len as i32) } == 0).then_some(())
}

/// Removes the last `len` bytes of the frame. Returns `None` when the kernel refuses.
#[inline(always)]
pub fn cut_tail(ctx: &XdpContext, len: u32) -> Option<()> {
    // SAFETY: the helper takes the program's own context (module doc).
    (unsafe { bpf_xdp_adjust_tail(ctx.ctx, -(len as i32)) } == 0).then_some(())
}

/// Whether the frame fits the MTU of interface `ifindex` plus its link-layer header, with `slack`
/// bytes to spare beyond (`bpf_check_mtu`). `false` also when there is no such interface.
#[inline(always)]
pub fn fits_mtu(ctx: &XdpContext, ifindex: u32, slack: i32) -> bool {
    let mut mtu_len = 0u32;
    // SAFETY: the helper takes the program's own context (module doc) and writes only the local
    // `mtu_len` (0 on the way in: measure the frame's own length).
    unsafe { bpf_check_mtu(ctx.ctx.cast(), ifindex, &mut mtu_len, -slack, 0) == 0 }
}
