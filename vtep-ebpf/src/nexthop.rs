//! Sending encapsulated packets to a remote VTEP: the underlay next hop comes from the kernel's
//! routing table and neighbour cache, never from configuration. Userspace copies the resolved
//! next hop of each remote VTEP into `NEXTHOPS` (a hash lookup instead of a `bpf_fib_lookup` per
//! packet, which costs several times more); a remote without one there takes the FIB lookup.

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup, bpf_redir_neigh,
    },
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect_neigh},
    programs::TcContext,
};
use vtep_common::drop::DropReason;

use crate::{
    maps::{self, NEXTHOPS},
    verdict,
};

const AF_INET: u8 = 2;

/// Where the underlay sends a packet to one remote VTEP. A struct whose every field is set on
/// every path, not an enum with payloads: the compiler may keep a payload's undefined bytes in a
/// register and spill it on a path that never uses it, which the verifier refuses.
pub struct NextHop {
    /// The interface to send on.
    pub ifindex: u32,
    /// Whether the neighbour is resolved. If not, the kernel must resolve `nexthop` on `ifindex`
    /// (`redirect_resolving`).
    pub resolved: bool,
    /// The next hop's MAC (outer destination) and the interface's (outer source); zeroes when
    /// not resolved, for the kernel to fill in.
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    /// The neighbour to resolve (gateway, or the remote itself when on-link), network order;
    /// zero when resolved.
    pub nexthop: u32,
}

/// The cached next hop of `remote`, or else the route to `remote` as the kernel would look it
/// up for a packet arriving on local port `ingress`. Fails with `NoRoute` when the kernel has no
/// usable route.
///
/// The lookup is an input lookup on the port (the kernel requires forwarding enabled on the
/// lookup's interface, which userspace sets on ports, whose traffic never reaches the IP stack),
/// not an output lookup on the underlay, which would need forwarding on the underlay.
#[inline(always)]
pub fn next_hop(
    ctx: &TcContext,
    ingress: u32,
    local_ip: &[u8; 4],
    remote: &[u8; 4],
) -> Result<NextHop, DropReason> {
    if let Some(hop) = maps::get(&NEXTHOPS, remote) {
        return Ok(NextHop {
            ifindex: hop.ifindex,
            resolved: true,
            dmac: hop.dmac,
            smac: hop.smac,
            nexthop: 0,
        });
    }
    // SAFETY: `bpf_fib_lookup` is a C struct of integers, arrays and unions of them: all zeroes
    // is a valid value (and the one the kernel expects for the fields not set below).
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.ifindex = ingress;
    params.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(*local_ip);
    params.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(*remote);
    // SAFETY: the helper takes the program's own context and a pointer to `params` with its
    // true size; it writes only inside `params`.
    let ret = unsafe {
        fib_lookup(
            ctx.skb.skb.cast(),
            &raw mut params,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    match ret as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => Ok(NextHop {
            ifindex: params.ifindex,
            resolved: true,
            dmac: params.dmac,
            smac: params.smac,
            nexthop: 0,
        }),
        BPF_FIB_LKUP_RET_NO_NEIGH => Ok(NextHop {
            ifindex: params.ifindex,
            resolved: false,
            dmac: [0; 6],
            smac: [0; 6],
            // On a NO_NEIGH result the kernel leaves the next hop (gateway, or the destination
            // itself when on-link) in ipv4_dst.
            // SAFETY: a union of `u32` and `[u32; 4]`: any bytes are a valid `u32`.
            nexthop: unsafe { params.__bindgen_anon_4.ipv4_dst },
        }),
        _ => Err(DropReason::NoRoute),
    }
}

/// Lets the kernel resolve the neighbour `nexthop` and transmit on `ifindex`. Only valid for
/// packets whose skb protocol is IPv4. Returns the TC verdict, or `RedirectFailed` when the
/// kernel refuses the redirect.
#[inline(always)]
pub fn redirect_resolving(ifindex: u32, nexthop: u32) -> Result<i32, DropReason> {
    // SAFETY: `bpf_redir_neigh` is a C struct of integers and a union of them: all zeroes is
    // a valid value.
    let mut nh: bpf_redir_neigh = unsafe { core::mem::zeroed() };
    nh.nh_family = u32::from(AF_INET);
    nh.__bindgen_anon_1.ipv4_nh = nexthop;
    // SAFETY: the helper reads `size_of::<bpf_redir_neigh>()` bytes of `nh`, which lives until
    // the call returns; it notes the target for the kernel.
    let ret = unsafe {
        bpf_redirect_neigh(
            ifindex,
            &raw mut nh,
            core::mem::size_of::<bpf_redir_neigh>() as i32,
            0,
        )
    };
    verdict::redirected(ret)
}
