//! The port program: frames a local workload sends, switched to another local port or
//! encapsulated to the remote VTEP the FDB names; its flood path (a program of its own) answers
//! what the proxy knows and floods the rest.

use aya_ebpf::programs::TcContext;
use network_types::{eth::EthHdr, vlan::VlanHdr};
use vtep_common::{
    drop::DropReason,
    maps::{
        FDB_LOCAL, HOOK_PORT, JUMP_PORT_FLOOD, MISS_L2, MissEvent, PORT_F_LEARN, PORT_F_PEER,
        PORT_F_SEGMENTER, PortConfig, VNI_F_L2MISS, VNI_F_PROXY, VtepAddr,
    },
};

use crate::{
    deliver,
    encap::{self, OuterHeaders, OuterIp},
    flood::{self, Copies},
    learn::{self, Station},
    maps::{self, PORTS, Traffic, VNIS, config, count_traffic},
    miss, nexthop, outer_csum,
    parse::{self, Plain, ether_type, is_group_mac, is_ip},
    proxy, segment,
    skb::{self, VlanTag},
    trace, verdict,
};

/// TC ingress of a host-side port, on an underlay of `I`'s family. Returns the TC verdict;
/// every drop is counted.
#[inline(always)]
pub fn ingress<I: OuterIp, const TRACED: bool>(ctx: &TcContext) -> i32 {
    trace::begin::<TRACED>();
    verdict::or_drop_traced::<TRACED>(ctx, HOOK_PORT, try_ingress::<I, TRACED>(ctx))
}

#[inline(always)]
fn try_ingress<I: OuterIp, const TRACED: bool>(ctx: &TcContext) -> Result<i32, DropReason> {
    let (ifindex, port) = port_of(ctx)?;
    trace::note_vni::<TRACED>(port.vni);
    verdict::in_vni(port.stats_slot, from_port::<I, TRACED>(ctx, ifindex, &port))
}

/// The port program's work on a frame from local port `ifindex` (config `port`).
#[inline(always)]
fn from_port<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    ifindex: u32,
    port: &PortConfig,
) -> Result<i32, DropReason> {
    restore_vlan_tag(ctx)?;
    let eth: EthHdr = parse::load(ctx, 0).ok_or(DropReason::FrameTruncated)?;
    if port.flags & PORT_F_LEARN != 0 {
        learn_source(port, ifindex, &eth);
    }
    let Some(entry) = maps::fdb_entry(port.vni, &eth.dst_addr) else {
        // The flood path is a program of its own (see `JUMP_PORT_FLOOD`); the tail call only
        // returns when it could not be entered. With tracing on, the loader puts the traced
        // flood program there, which logs each copy.
        trace::to_flood::<TRACED>(ifindex, port.vni, &eth.dst_addr);
        maps::tail_call(ctx, JUMP_PORT_FLOOD);
        return Err(DropReason::TailCallFailed);
    };
    if entry.kind == FDB_LOCAL {
        trace::to_port::<TRACED>(ifindex, port.vni, &eth.dst_addr, entry.ifindex);
        count_traffic(port.stats_slot, Traffic::Local, ctx.len());
        // The frame came through a veth, so skb->protocol matches it.
        return deliver::to_port(entry.ifindex, entry.port_flags, true);
    }
    trace::to_remote::<I, TRACED>(ifindex, port.vni, &eth.dst_addr, &entry.remote);
    encap_to_remote::<I>(ctx, port, ifindex, &eth, &entry.remote)
}

/// The local port the frame is from: its ifindex and configuration; on the segmenter's return
/// end, the port the segment's mark names (see `segment.rs`). Fails with `UnknownPort` when the
/// interface has no port entry, or a segment names none.
#[inline(always)]
fn port_of(ctx: &TcContext) -> Result<(u32, PortConfig), DropReason> {
    let ifindex = skb::ifindex(ctx);
    let port = maps::get(&PORTS, &ifindex).ok_or(DropReason::UnknownPort)?;
    if port.flags & PORT_F_SEGMENTER == 0 {
        return Ok((ifindex, port));
    }
    let from = segment::came_from(ctx).ok_or(DropReason::UnknownPort)?;
    let port = maps::get(&PORTS, &from).ok_or(DropReason::UnknownPort)?;
    Ok((from, port))
}

/// Encapsulates the frame from local port `ingress` (config `port`, Ethernet header `eth`) to
/// remote VTEP `remote` over the underlay family of `I` and sends it to the underlay next hop.
/// Returns the TC verdict (also for a GSO frame handed to the segmenter first, see
/// `segment.rs`); fails with `NoRoute`, `NexthopUnresolved` (a non-IP frame cannot wait for the
/// neighbour), `GsoNeedsChecksum`, `EncapFailed` or `RedirectFailed`.
#[inline(always)]
fn encap_to_remote<I: OuterIp>(
    ctx: &TcContext,
    port: &PortConfig,
    ingress: u32,
    eth: &EthHdr,
    remote: &VtepAddr,
) -> Result<i32, DropReason> {
    let cfg = config();
    // Over IPv6 with checksums: the sum of what follows the outer UDP header; for a GSO frame,
    // of each of its segments, or the frame goes to the segmenter first (`segment.rs`).
    let mut body = (0, None);
    if I::checksummed(&cfg) {
        body = match skb::gso_size(ctx) {
            0 => (outer_csum::body_sum(ctx, port.vni, eth)?, None),
            mss => match outer_csum::gso_body_sum(ctx, port.vni, eth, mss) {
                Some((sum, segment_udp_len)) => (sum, Some(segment_udp_len)),
                None => return segment::hand_over(ctx, ingress),
            },
        };
    }
    let len = ctx.len();
    let proto = ether_type(eth);
    let hop = nexthop::next_hop(ctx, ingress, I::FAMILY, &cfg.local_ip, remote)?;
    // Only IP frames leave encapsulation with skb->protocol of the outer family, which the
    // neighbour layer needs to wait for a neighbour: anything else is dropped before any work
    // is done on it.
    if !hop.resolved && !is_ip(proto) {
        return Err(DropReason::NexthopUnresolved);
    }
    let hash = encap::flow_hash(ctx, eth);
    let mut hdr = OuterHeaders::<I>::new(&cfg, port, remote, len, hash, eth);
    if I::checksummed(&cfg) {
        hdr.set_udp_checksum(body.0, body.1);
    }
    hdr.set_macs(&hop.dmac, &hop.smac);
    let room = encap::grow::<I>(ctx, proto)?;
    encap::write_direct(ctx, &hdr, room)?;
    let verdict = if hop.resolved {
        deliver::redirect(hop.ifindex)
    } else {
        nexthop::redirect_resolving(hop.ifindex, I::FAMILY, hop.nexthop)
    }?;
    count_traffic(port.stats_slot, Traffic::Encap, len);
    Ok(verdict)
}

/// Learns the frame's source MAC behind port `ifindex`. Userspace sets `PORT_F_LEARN` only on
/// ports of VNIs that learn.
#[inline(always)]
fn learn_source(port: &PortConfig, ifindex: u32, eth: &EthHdr) {
    learn::learn(
        port.vni,
        || maps::get(&VNIS, &port.vni),
        &eth.src_addr,
        Station::Port {
            ifindex,
            port_flags: port.flags & PORT_F_PEER,
        },
    );
}

/// The port program's flood path, entered by tail call with the frame as `ingress` left it
/// (VLAN tag back in the frame), on an underlay of `I`'s family. Returns the TC verdict; every
/// drop is counted.
///
/// In two steps: everything but the copies to remote VTEPs, in a subprogram of its own, then
/// those copies, each a global function (`flood::Copies`). A call chain's stack frames add up
/// to at most 512 bytes: the first step's frame (the ND proxy's, 328 bytes over IPv6) is gone
/// by the time the copies run.
#[inline(always)]
pub fn flood<I: OuterIp, const TRACED: bool>(ctx: &TcContext) -> i32 {
    let mut copies = Copies::NONE;
    let verdict = flood_but_remote_copies::<I, TRACED>(ctx, &mut copies);
    copies.send::<I, TRACED>(ctx, verdict)
}

/// The flood path but the copies to remote VTEPs, which it leaves in `copies` once the frame
/// is ready for them. Returns the verdict for when they have gone; its drops are counted.
#[inline(never)]
fn flood_but_remote_copies<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    copies: &mut Copies,
) -> i32 {
    verdict::or_drop_traced::<TRACED>(ctx, HOOK_PORT, try_flood::<I, TRACED>(ctx, copies))
}

#[inline(always)]
fn try_flood<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    copies: &mut Copies,
) -> Result<i32, DropReason> {
    let (ifindex, port) = port_of(ctx)?;
    // The port program noted it too, but a drop line must not depend on who ran before.
    trace::note_vni::<TRACED>(port.vni);
    verdict::in_vni(
        port.stats_slot,
        flood_from_port::<I, TRACED>(ctx, ifindex, &port, copies),
    )
}

/// The flood path's work on a frame from local port `ifindex` (config `port`), but the copies
/// to remote VTEPs (left in `copies`).
#[inline(always)]
fn flood_from_port<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    ifindex: u32,
    port: &PortConfig,
    copies: &mut Copies,
) -> Result<i32, DropReason> {
    let eth: EthHdr = parse::load(ctx, 0).ok_or(DropReason::FrameTruncated)?;
    let vcfg = maps::get(&VNIS, &port.vni).ok_or(DropReason::UnknownVni)?;
    if vcfg.flags & VNI_F_PROXY != 0
        && let Some(answered) = proxy::answer(ctx, ifindex, port, &vcfg, &eth)
    {
        if answered.is_ok() {
            trace::to_proxy::<TRACED>(ifindex, port.vni, &eth.dst_addr);
        }
        return answered;
    }
    if !is_group_mac(&eth.dst_addr) && vcfg.flags & VNI_F_L2MISS != 0 {
        miss::report(MissEvent {
            kind: MISS_L2,
            vni: port.vni,
            mac: eth.dst_addr,
            _pad: [0; 2],
            ip: [0; 4],
            ifindex,
        });
    }
    flood::from_port::<I, TRACED>(ctx, &config(), port, ifindex, &eth, copies)
}

/// The start of an 802.1Q-tagged frame up to the tag: MACs, the tag protocol identifier where
/// the Ethernet type was, and the tag control information.
#[repr(C)]
#[derive(Clone, Copy)]
struct TaggedStart {
    eth: EthHdr,
    tci: [u8; 2],
}

const _: () = assert!(size_of::<TaggedStart>() == EthHdr::LEN + 2 && VlanHdr::LEN == 4);
// SAFETY: `#[repr(C)]` of a `Plain` header and a byte array, no padding (size asserted above).
unsafe impl Plain for TaggedStart {}

/// Puts an 802.1Q tag the kernel took out of the frame back in. Fails with `VlanRestoreFailed`
/// when the frame cannot be grown or written.
#[inline(always)]
fn restore_vlan_tag(ctx: &TcContext) -> Result<(), DropReason> {
    // The kernel took a received 802.1Q tag out of the frame (skb metadata) before TC ingress.
    // It belongs to the overlay frame: clear it from the metadata and write it back into the
    // frame.
    match skb::vlan_tag(ctx) {
        None => Ok(()),
        Some(tag) => put_back(ctx, &tag).ok_or(DropReason::VlanRestoreFailed),
    }
}

/// Clears `tag` from the skb's metadata and writes it into the frame after the MACs. Returns
/// `None` when the kernel refuses either step.
#[inline(always)]
fn put_back(ctx: &TcContext, tag: &VlanTag) -> Option<()> {
    skb::vlan_pop(ctx)?;
    skb::change_head(ctx, VlanHdr::LEN as u32)?;
    let untagged: EthHdr = parse::load(ctx, VlanHdr::LEN)?;
    let start = TaggedStart {
        eth: EthHdr {
            // Network order already, as the Ethernet type field holds it.
            ether_type: tag.proto,
            ..untagged
        },
        tci: tag.tci.to_be_bytes(),
    };
    parse::store(ctx, 0, start)
}
