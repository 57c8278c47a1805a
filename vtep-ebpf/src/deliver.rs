//! Handing frames to local ports.

use aya_ebpf::helpers::{bpf_redirect, bpf_redirect_peer};
use vtep_common::maps::PORT_F_PEER;

/// Redirects the frame to local port `ifindex`. Returns the TC verdict.
///
/// A port whose peer is in another namespace is entered directly with `bpf_redirect_peer` (no
/// second pass through the veth and the backlog queue). That path skips `eth_type_trans`, so it
/// is only taken when `skb->protocol` already matches the frame (`protocol_ok`); otherwise the
/// frame crosses the veth, which sets protocol and packet type from the Ethernet header.
#[inline(always)]
pub fn to_port(ifindex: u32, port_flags: u32, protocol_ok: bool) -> i32 {
    unsafe {
        if port_flags & PORT_F_PEER != 0 && protocol_ok {
            bpf_redirect_peer(ifindex, 0) as i32
        } else {
            bpf_redirect(ifindex, 0) as i32
        }
    }
}
