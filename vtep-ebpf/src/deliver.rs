//! Handing packets to an interface: a frame to a local port, or any packet to an interface's
//! egress.

use aya_ebpf::helpers::{bpf_redirect, bpf_redirect_peer};
use vtep_common::{drop::DropReason, maps::PORT_F_PEER};

use crate::verdict;

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
