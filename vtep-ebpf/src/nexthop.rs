//! Sending encapsulated packets to a remote VTEP: the underlay next hop comes from the kernel's
//! routing table and neighbour cache, never from configuration. Userspace copies the resolved
//! next hop of each remote VTEP into `NEXTHOPS` (a hash lookup instead of a `bpf_fib_lookup` per
//! packet, which costs several times more); a remote without one there takes the FIB lookup.

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup, bpf_redir_neigh,
    },
    helpers::{bpf_fib_lookup as fib_lookup_helper, bpf_redirect_neigh},
    programs::TcContext,
};
use vtep_common::{drop::DropReason, maps::VtepAddr};

use crate::{
    maps::{self, FIB_SCRATCH, NEXTHOPS},
    verdict,
};

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

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
    /// The neighbour to resolve (gateway, or the remote itself when on-link), as the FIB lookup
    /// returned it (an IPv4 address in the first four bytes); zero when resolved.
    pub nexthop: [u32; 4],
}

/// The cached next hop of `remote`, or else the route to `remote` as the kernel would look it
/// up for a packet arriving on local port `ingress`, in address family `family` (`AF_INET`:
/// `local` and `remote` are IPv4-mapped). Fails with `NoRoute` when the kernel has no usable
/// route.
///
/// The lookup is an input lookup on the port (the kernel requires forwarding enabled on the
/// lookup's interface, which userspace sets on ports, whose traffic never reaches the IP stack),
/// not an output lookup on the underlay, which would need forwarding on the underlay.
#[inline(always)]
pub fn next_hop(
    ctx: &TcContext,
    ingress: u32,
    family: u8,
    local: &VtepAddr,
    remote: &VtepAddr,
) -> Result<NextHop, DropReason> {
    let mut hop = NextHop {
        ifindex: 0,
        resolved: true,
        dmac: [0; 6],
        smac: [0; 6],
        nexthop: [0; 4],
    };
    if let Some(cached) = maps::get(&NEXTHOPS, remote) {
        hop.ifindex = cached.ifindex;
        hop.dmac = cached.dmac;
        hop.smac = cached.smac;
        return Ok(hop);
    }
    if family == AF_INET6 {
        fib_lookup::<true>(ctx, ingress, local, remote, &mut hop)
    } else {
        fib_lookup::<false>(ctx, ingress, local, remote, &mut hop)
    }?;
    Ok(hop)
}

/// The FIB lookup of [`next_hop`], in IPv6 (`V6`) or IPv4, written into `hop`. Fails with
/// `NoRoute`.
///
/// Not inlined: as a BPF subprogram its stack frame (the lookup's parameters) is its own, not
/// added to the callers', whose frames the IPv6 headers have grown.
#[inline(never)]
fn fib_lookup<const V6: bool>(
    ctx: &TcContext,
    ingress: u32,
    local: &VtepAddr,
    remote: &VtepAddr,
    hop: &mut NextHop,
) -> Result<(), DropReason> {
    let params = FIB_SCRATCH.get_ptr_mut(0).ok_or(DropReason::NoRoute)?;
    // SAFETY: this CPU's scratch value, which nothing else uses while the program runs (see
    // `FIB_SCRATCH`); `bpf_fib_lookup` is a C struct of integers, arrays and unions of them, so
    // all zeroes is a valid value (and the one the kernel expects for the fields not set below).
    let params = unsafe {
        params.write_bytes(0, 1);
        &mut *params
    };
    params.ifindex = ingress;
    if V6 {
        params.family = AF_INET6;
        params.__bindgen_anon_3.ipv6_src = words(local);
        params.__bindgen_anon_4.ipv6_dst = words(remote);
    } else {
        params.family = AF_INET;
        params.__bindgen_anon_3.ipv4_src = words(local)[3];
        params.__bindgen_anon_4.ipv4_dst = words(remote)[3];
    }
    // SAFETY: the helper takes the program's own context and a pointer to `params` with its
    // true size; it writes only inside `params`.
    let ret = unsafe {
        fib_lookup_helper(
            ctx.skb.skb.cast(),
            params,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    hop.ifindex = params.ifindex;
    match ret as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => {
            hop.dmac = params.dmac;
            hop.smac = params.smac;
            Ok(())
        }
        BPF_FIB_LKUP_RET_NO_NEIGH => {
            hop.resolved = false;
            // On a NO_NEIGH result the kernel leaves the next hop (gateway, or the destination
            // itself when on-link) in ipv4_dst or ipv6_dst, which share their first word.
            // SAFETY: a union of `u32` and `[u32; 4]`: any bytes are a valid `[u32; 4]`.
            hop.nexthop = unsafe { params.__bindgen_anon_4.ipv6_dst };
            Ok(())
        }
        _ => Err(DropReason::NoRoute),
    }
}

/// Lets the kernel resolve the neighbour `nexthop` (of `family`, as [`NextHop::nexthop`] holds
/// it) and transmit on `ifindex`. Only valid for packets whose skb protocol is that family's.
/// Returns the TC verdict, or `RedirectFailed` when the kernel refuses the redirect.
#[inline(always)]
pub fn redirect_resolving(ifindex: u32, family: u8, nexthop: [u32; 4]) -> Result<i32, DropReason> {
    // SAFETY: `bpf_redir_neigh` is a C struct of integers and a union of them: all zeroes is
    // a valid value.
    let mut nh: bpf_redir_neigh = unsafe { core::mem::zeroed() };
    nh.nh_family = u32::from(family);
    if family == AF_INET6 {
        nh.__bindgen_anon_1.ipv6_nh = nexthop;
    } else {
        nh.__bindgen_anon_1.ipv4_nh = nexthop[0];
    }
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

/// `a`'s bytes as the four network-order words the kernel's structs hold addresses in.
#[inline(always)]
fn words(a: &VtepAddr) -> [u32; 4] {
    let w = |i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}
