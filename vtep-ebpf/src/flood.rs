//! Broadcast, multicast and unknown unicast: a copy to every other local port of the VNI and,
//! for frames from a local port, head-end replication to every remote VTEP of the VNI, or one
//! copy to its multicast group.
//!
//! Nothing here may depend on how many copies succeeded: a value carried across loop iterations
//! keeps the verifier from merging their states, and the program grows past its limit. So a copy
//! that cannot go is counted (and sampled) where it fails (`verdict::copy_dropped`), logged with
//! its destination by the traced programs, and the loop goes on.

use aya_ebpf::{bindings::__sk_buff, programs::TcContext};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
};
use vtep_common::{
    drop::DropReason,
    maps::{
        DatapathConfig, FloodList, HOOK_PORT, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, PortConfig,
        VtepAddr, vtep_addr_is_zero,
    },
};

use crate::{
    csum, deliver,
    encap::{self, OuterHeaders, OuterIp, Room},
    maps::{self, Traffic, count_traffic},
    nexthop::{self, AF_INET6, NextHop},
    outer_csum,
    parse::ether_type,
    segment, trace, verdict,
};

/// Copies the frame (of VNI `vni`, stats slot `slot`) of the program at `hook` to every local
/// port of the flood list except `except_ifindex`. A copy too big for its port is counted as
/// `InnerTooBig`, one the kernel refuses as `RedirectFailed`; the others still go.
#[inline(always)]
pub fn to_local_ports<const TRACED: bool>(
    ctx: &TcContext,
    hook: u32,
    (vni, slot): (u32, u32),
    list: &FloodList,
    except_ifindex: u32,
) {
    for i in 0..MAX_FLOOD_PORTS {
        if i as u32 >= list.n_ports {
            break;
        }
        let ifindex = list.ports[i];
        if ifindex == except_ifindex {
            continue;
        }
        // Egress of the host-side veth, so the copy crosses the veth and gets its protocol and
        // packet type set there.
        let dropped = if !deliver::fits(ctx, ifindex) {
            Some(DropReason::InnerTooBig)
        } else if ctx.clone_redirect(ifindex, 0).is_err() {
            Some(DropReason::RedirectFailed)
        } else {
            None
        };
        if let Some(reason) = dropped {
            verdict::copy_dropped(ctx, hook, slot, reason);
        }
        trace::flood_to_port::<TRACED>(vni, ifindex, dropped.map(|r| (hook, r)));
    }
}

/// Whether the frame fits at least one local port of the flood list (see `deliver::fits`), so
/// a flood of it delivers something.
///
/// Not inlined: as a BPF subprogram the verifier walks the loop once, and the caller goes on
/// from one state (the returned bool) instead of one per loop exit.
#[inline(never)]
pub fn fits_any_port(ctx: &TcContext, list: &FloodList) -> bool {
    for i in 0..MAX_FLOOD_PORTS {
        if i as u32 >= list.n_ports {
            break;
        }
        if deliver::fits(ctx, list.ports[i]) {
            return true;
        }
    }
    false
}

/// Floods a frame that entered on local port `ingress` (config `port`, Ethernet header
/// `inner_eth`): raw copies to the other local ports, then one encapsulated copy to the VNI's
/// multicast group, or the frame made ready for one per remote VTEP, which `copies` is set to
/// send, over the underlay family of `I`. The original is consumed: returns `SHOT`; fails with
/// `NoFloodTarget` when there is nowhere to send the frame, `GsoNeedsChecksum`, or
/// `EncapFailed` when it cannot be encapsulated.
#[inline(always)]
pub fn from_port<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    cfg: &DatapathConfig,
    port: &PortConfig,
    ingress: u32,
    inner_eth: &EthHdr,
    copies: &mut Copies,
) -> Result<i32, DropReason> {
    // Segmented first, before any copy goes (each segment floods on its own).
    if segment::needed(ctx, I::checksummed(cfg)) {
        return segment::hand_over(ctx, ingress);
    }
    let list = maps::flood_list(port.vni).ok_or(DropReason::NoFloodTarget)?;
    let n_remotes = list.n_remotes;
    let to_group = !vtep_addr_is_zero(&list.group);
    let only_ingress = list.n_ports == 0 || (list.n_ports == 1 && list.ports[0] == ingress);
    if n_remotes == 0 && !to_group && only_ingress {
        return Err(DropReason::NoFloodTarget);
    }
    let inner_len = ctx.len();
    count_traffic(port.stats_slot, Traffic::Flood, inner_len);
    to_local_ports::<TRACED>(ctx, HOOK_PORT, (port.vni, port.stats_slot), list, ingress);
    if n_remotes == 0 && !to_group {
        // The original was only the template for the copies: consumed, not dropped.
        return Ok(verdict::SHOT);
    }

    let hash = encap::flow_hash(ctx, inner_eth);
    let hdr = maps::headers_scratch::<OuterHeaders<I>>().ok_or(DropReason::EncapFailed)?;
    *hdr = OuterHeaders::<I>::new(cfg, port, &list.remotes[0], inner_len, hash, inner_eth);
    // The copies differ only in their outer addresses: what follows the UDP header is summed
    // once, before the room is made.
    let checksummed = I::checksummed(cfg);
    let body = if checksummed {
        outer_csum::body_sum(ctx, port.vni, inner_eth)?
    } else {
        0
    };
    let room = encap::grow::<I>(ctx, ether_type(inner_eth))?;
    if to_group {
        hdr.aim_at_group(&list.group, &list.group_smac, list.group_ttl);
        if checksummed {
            hdr.set_udp_checksum(body, None);
        }
        let dropped = send_copy(
            ctx,
            port.stats_slot,
            list.group_ifindex,
            hdr,
            room,
            inner_len,
        )?;
        let dropped = dropped.map(|r| (HOOK_PORT, r));
        trace::flood_to_vtep::<I, TRACED>(port.vni, &list.group, true, dropped);
    } else {
        *copies = Copies {
            n_remotes,
            vni: u64::from(port.vni),
            ingress_slot: u64::from(ingress) | u64::from(port.stats_slot) << 32,
            len_room_body: u64::from(inner_len)
                | u64::from(matches!(room, Room::BeforeFrame)) << 32
                | u64::from(csum::fold_partials(body)) << 48,
        };
    }
    // The original was only the template for the copies: consumed, not dropped.
    Ok(verdict::SHOT)
}

/// What [`to_remote`] returns when the copy went or was counted as dropped; anything else means
/// the headers could not be written, and no later copy can go either.
const COPY_SENT: i32 = 0;

/// The copies to the remote VTEPs of a flood, once the frame is ready for them: how many, and
/// the arguments of each copy, packed into the scalars a BPF global
/// function may take besides the context: the VNI (the remote's index in the flood list goes
/// in an argument of its own: folded into the VNI's, it became a loop counter whose bound the
/// verifier could not see); the ingress ifindex and the stats slot (`<< 32`); the inner
/// frame's length, whether the room is `BeforeFrame` (bit 32) and the folded sum of the bytes
/// after the UDP header (`<< 48`; folding keeps a ones'-complement sum). Every argument carries
/// something in both families: one the callee ignored (the sum, over IPv4) was left unset by
/// the compiler, and the verifier refuses a call with an unset argument.
pub struct Copies {
    n_remotes: u32,
    vni: u64,
    ingress_slot: u64,
    len_room_body: u64,
}

impl Copies {
    /// No copies to send.
    pub const NONE: Self = Self {
        n_remotes: 0,
        vni: 0,
        ingress_slot: 0,
        len_room_body: 0,
    };

    /// Sends the copies, one global function call each (see below); returns `verdict`, the
    /// flood's own, or drops the frame as `EncapFailed` (counted) when the headers could not
    /// be written, after which no copy can go.
    #[inline(always)]
    pub fn send<I: OuterIp, const TRACED: bool>(&self, ctx: &TcContext, verdict: i32) -> i32 {
        let skb = ctx.skb.skb;
        for i in 0..MAX_FLOOD_REMOTES {
            if i as u32 >= self.n_remotes {
                break;
            }
            let (vni, i, is, lrb) = (self.vni, i as u64, self.ingress_slot, self.len_room_body);
            let sent = match (I::FAMILY == AF_INET6, TRACED) {
                (false, false) => vtep_flood_copy4(skb, vni, i, is, lrb),
                (true, false) => vtep_flood_copy6(skb, vni, i, is, lrb),
                (false, true) => vtep_flood_copy4_trace(skb, vni, i, is, lrb),
                (true, true) => vtep_flood_copy6_trace(skb, vni, i, is, lrb),
            };
            if sent != COPY_SENT {
                let slot = (self.ingress_slot >> 32) as u32;
                let failed = verdict::in_vni(slot, Err(DropReason::EncapFailed));
                return verdict::or_drop_traced::<TRACED>(ctx, HOOK_PORT, failed);
            }
        }
        verdict
    }
}

// Each copy to a remote VTEP is a BPF global function: the verifier checks it once, on its own,
// where the body inlined into the loop was walked again for every remote of the list, with every
// state the copies before had left. That put the IPv6 flood program at 836,208 of the
// verifier's 1,000,000 instructions, and moved it by hundreds of thousands with any change to
// the compiler's register choices.
//
// SAFETY (these four): `no_mangle` keeps each function global, and no other symbol has its
// name. They build a `TcContext` from `skb` unchecked, which is sound because `skb` is always
// the program's own context: the only caller is `Copies::send`, which passes its own, and the
// verifier refuses to load a program whose call passes anything else (the argument's BTF type
// is `__sk_buff`, the context of a TC program).
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn vtep_flood_copy4(
    skb: *mut __sk_buff,
    vni: u64,
    i: u64,
    ingress_slot: u64,
    len_room_body: u64,
) -> i32 {
    to_remote::<Ipv4Hdr, false>(&TcContext::new(skb), vni, i, ingress_slot, len_room_body)
}

#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn vtep_flood_copy6(
    skb: *mut __sk_buff,
    vni: u64,
    i: u64,
    ingress_slot: u64,
    len_room_body: u64,
) -> i32 {
    to_remote::<Ipv6Hdr, false>(&TcContext::new(skb), vni, i, ingress_slot, len_room_body)
}

// The same for the traced flood programs (`vtep_port_flood_trace`, `vtep_port_flood6_trace`).
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn vtep_flood_copy4_trace(
    skb: *mut __sk_buff,
    vni: u64,
    i: u64,
    ingress_slot: u64,
    len_room_body: u64,
) -> i32 {
    to_remote::<Ipv4Hdr, true>(&TcContext::new(skb), vni, i, ingress_slot, len_room_body)
}

#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn vtep_flood_copy6_trace(
    skb: *mut __sk_buff,
    vni: u64,
    i: u64,
    ingress_slot: u64,
    len_room_body: u64,
) -> i32 {
    to_remote::<Ipv6Hdr, true>(&TcContext::new(skb), vni, i, ingress_slot, len_room_body)
}

/// The copy of the frame to one remote VTEP (arguments as [`Copies`] packs them): points the
/// headers the flood prepared (`HEADERS_SCRATCH`) at it, sums its UDP checksum, finds its next
/// hop and sends a clone. A copy without a resolved next hop, or that the kernel refuses, is
/// counted as dropped and the flood goes on; returns another value than [`COPY_SENT`] only
/// when the headers cannot be written.
#[inline(always)]
fn to_remote<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    vni: u64,
    i: u64,
    ingress_slot: u64,
    len_room_body: u64,
) -> i32 {
    const FAILED: i32 = 1;
    let (vni, i) = (vni as u32, i as usize);
    let (ingress, slot) = (ingress_slot as u32, (ingress_slot >> 32) as u32);
    let inner_len = len_room_body as u32;
    let room = match (len_room_body >> 32) & 1 {
        0 => Room::AfterInnerEth,
        _ => Room::BeforeFrame,
    };
    let body = len_room_body >> 48;
    let Some(list) = maps::flood_list(vni) else {
        // Removed since the flood began: the copies that were to follow go nowhere. Counted,
        // not sampled or logged: there is no copy to show, nor a remote to name.
        verdict::copy_lost(slot, DropReason::NoFloodTarget);
        return COPY_SENT;
    };
    // Each copy reads the list anew: one userspace replaced since the flood began may hold
    // fewer remotes, whose unused slots are zero addresses, never to be sent to.
    if i as u32 >= list.n_remotes {
        return COPY_SENT;
    }
    let (Some(remote), Some(hdr)) = (
        list.remotes.get(i),
        maps::headers_scratch::<OuterHeaders<I>>(),
    ) else {
        return FAILED;
    };
    let cfg = maps::config();
    hdr.set_remote(remote);
    if I::checksummed(&cfg) {
        hdr.set_udp_checksum(body, None);
    }
    let dropped = match resolved_next_hop(ctx, ingress, I::FAMILY, &cfg.local_ip, remote) {
        Ok(hop) => {
            hdr.set_macs(&hop.dmac, &hop.smac);
            match send_copy(ctx, slot, hop.ifindex, hdr, room, inner_len) {
                Ok(dropped) => dropped,
                Err(_) => return FAILED,
            }
        }
        Err(reason) => {
            // Written, so a drop sample shows the copy that could not go (no MACs without a
            // next hop), not the one before it.
            hdr.set_macs(&[0; 6], &[0; 6]);
            let _ = encap::write(ctx, hdr, room);
            verdict::copy_dropped(ctx, HOOK_PORT, slot, reason);
            Some(reason)
        }
    };
    trace::flood_to_vtep::<I, TRACED>(vni, remote, false, dropped.map(|r| (HOOK_PORT, r)));
    COPY_SENT
}

/// The resolved next hop to `remote`. Fails with `NoRoute`, or with `NexthopUnresolved`: flood
/// copies cannot wait for neighbour resolution, and userspace keeps the remote VTEPs' next hops
/// resolved, so that is a transient state.
#[inline(always)]
fn resolved_next_hop(
    ctx: &TcContext,
    ingress: u32,
    family: u8,
    local: &VtepAddr,
    remote: &VtepAddr,
) -> Result<NextHop, DropReason> {
    let hop = nexthop::next_hop(ctx, ingress, family, local, remote)?;
    if !hop.resolved {
        return Err(DropReason::NexthopUnresolved);
    }
    Ok(hop)
}

/// Writes `hdr` over the packet and sends a clone of it to `ifindex`, counted as encapsulated
/// traffic of stats slot `slot`. Fails with `EncapFailed` when the headers cannot be written (no
/// copy can go then); a clone the kernel refuses is counted as `RedirectFailed` and is no error
/// (returned as the copy's drop).
#[inline(always)]
fn send_copy<I: OuterIp>(
    ctx: &TcContext,
    slot: u32,
    ifindex: u32,
    hdr: &OuterHeaders<I>,
    room: Room,
    inner_len: u32,
) -> Result<Option<DropReason>, DropReason> {
    encap::write(ctx, hdr, room)?;
    if ctx.clone_redirect(ifindex, 0).is_ok() {
        count_traffic(slot, Traffic::Encap, inner_len);
        Ok(None)
    } else {
        verdict::copy_dropped(ctx, HOOK_PORT, slot, DropReason::RedirectFailed);
        Ok(Some(DropReason::RedirectFailed))
    }
}
