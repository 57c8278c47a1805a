//! Sending encapsulated packets to a remote VTEP: the underlay next hop comes from the kernel's
//! routing table and neighbour cache, never from configuration. Userspace copies the resolved
//! next hop of each remote VTEP into `NEXTHOPS` (a hash lookup instead of a `bpf_fib_lookup` per
//! packet, which costs several times more); a remote without one there takes the FIB lookup.

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup, bpf_redir_neigh,
    },
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh},
    programs::TcContext,
};
use vtep_common::drop::DropReason;

use crate::{maps::NEXTHOPS, verdict};

const AF_INET: u8 = 2;

/// Where the underlay sends a packet to one remote VTEP.
pub enum NextHop {
    /// Route and neighbour known: egress interface and the MACs to write.
    Resolved {
        ifindex: u32,
        dmac: [u8; 6],
        smac: [u8; 6],
    },
    /// Route known, neighbour not resolved yet: the kernel must resolve `nexthop` on `ifindex`.
    Unresolved { ifindex: u32, nexthop: u32 },
}

/// The cached next hop of `remote`, or else looks up the route to `remote` as the kernel would for a packet arriving on local port
/// `ingress`. Fails with `NoRoute` when the kernel has no usable route.
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
    if let Some(hop) = unsafe { NEXTHOPS.get(remote) } {
        return Ok(NextHop::Resolved {
            ifindex: hop.ifindex,
            dmac: hop.dmac,
            smac: hop.smac,
        });
    }
    let mut params: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.ifindex = ingress;
    params.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(*local_ip);
    params.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(*remote);
    let ret = unsafe {
        fib_lookup(
            ctx.skb.skb.cast(),
            &raw mut params,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    match ret as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => Ok(NextHop::Resolved {
            ifindex: params.ifindex,
            dmac: params.dmac,
            smac: params.smac,
        }),
        BPF_FIB_LKUP_RET_NO_NEIGH => Ok(NextHop::Unresolved {
            ifindex: params.ifindex,
            // On a NO_NEIGH result the kernel leaves the next hop (gateway, or the destination
            // itself when on-link) in ipv4_dst.
            nexthop: unsafe { params.__bindgen_anon_4.ipv4_dst },
        }),
        _ => Err(DropReason::NoRoute),
    }
}

/// Hands the packet to `ifindex` for transmission. Returns the TC verdict.
#[inline(always)]
pub fn redirect(ifindex: u32) -> i32 {
    unsafe { bpf_redirect(ifindex, 0) as i32 }
}

/// Lets the kernel resolve the neighbour `nexthop` and transmit on `ifindex`. Only valid for
/// packets whose skb protocol is IPv4. Returns the TC verdict.
#[inline(always)]
pub fn redirect_resolving(ifindex: u32, nexthop: u32) -> i32 {
    let mut nh: bpf_redir_neigh = unsafe { core::mem::zeroed() };
    nh.nh_family = u32::from(AF_INET);
    nh.__bindgen_anon_1.ipv4_nh = nexthop;
    let ret = unsafe {
        bpf_redirect_neigh(
            ifindex,
            &raw mut nh,
            core::mem::size_of::<bpf_redir_neigh>() as i32,
            0,
        )
    };
    if ret < 0 { verdict::SHOT } else { ret as i32 }
}
