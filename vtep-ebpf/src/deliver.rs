//! Handing packets to an interface: a frame to a local port, or any packet to an interface's
//! egress.

use aya_ebpf::{
    helpers::{bpf_redirect, bpf_redirect_peer},
    programs::TcContext,
};
use vtep_common::{drop::DropReason, maps::PORT_F_PEER};

use crate::{skb, verdict};

/// Bytes of an 802.1Q tag, which a veth or bridge lets a frame have beyond its MTU and
/// Ethernet header (`is_skb_forwardable`).
pub const VLAN_HLEN: i32 = 4;

/// Whether the frame fits local port `ifindex` the way the kernel's own forwarding would let it:
/// at most the port's MTU plus the Ethernet header and a VLAN tag. A GSO packet fits: its
/// segments were sized for the inner MTU. `false` also when the port is gone.
#[inline(always)]
pub fn fits(ctx: &TcContext, ifindex: u32) -> bool {
    skb::gso_size(ctx) != 0 || skb::fits_mtu(ctx, ifindex, VLAN_HLEN)
}

/// Redirects the frame to local port `ifindex`. Returns the TC verdict, or `RedirectFailed`
/// when the kernel refuses the redirect.
///
/// A port whose peer is in another namespace is entered directly with `bpf_redirect_peer` (no
/// second pass through the veth and the backlog queue). That path skips `eth_type_trans`, so it
/// is only taken when `skb->protocol` already matches the frame (`protocol_ok`); otherwise the
/// frame crosses the veth, which sets protocol and packet type from the Ethernet header.
#[inline(always)]
pub fn to_port(ifindex: u32, port_flags: u32, protocol_ok: bool) -> Result<i32, DropReason> {
    // SAFETY (both calls): the helpers take no pointer; they only note the target interface
    // for the kernel to use when the program returns its verdict.
    let ret = if port_flags & PORT_F_PEER != 0 && protocol_ok {
        unsafe { bpf_redirect_peer(ifindex, 0) }
    } else {
        unsafe { bpf_redirect(ifindex, 0) }
    };
    verdict::redirected(ret)
}

/// Hands the packet to the egress of `ifindex`: an encapsulated packet to its underlay
/// interface, a proxy answer back out of the port it came in by. Returns the TC verdict, or
/// `RedirectFailed` when the kernel refuses the redirect.
#[inline(always)]
pub fn redirect(ifindex: u32) -> Result<i32, DropReason> {
    // SAFETY: the helper takes no pointer; it notes the target for the kernel.
    verdict::redirected(unsafe { bpf_redirect(ifindex, 0) })
}
