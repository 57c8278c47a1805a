//! The underlay program: VXLAN packets arriving on the underlay are checked, decapsulated and
//! delivered to the local port the FDB names, or to every local port of the VNI when the
//! destination is a group or unknown MAC. Everything that is not VXLAN for us passes untouched.
//! The checks and learning are shared with the XDP program (`underlay_xdp.rs`), which runs them
//! first where it is attached: they take any [`Packet`]. An instance's underlay is IPv4 or IPv6
//! (`DP_F_IPV6`); the code is generic over the outer header ([`OuterIp`]), and each family has
//! its own program (`main.rs`). Outer IPv6 with extension headers before UDP passes to the kernel
//! undecapsulated, as other IPv6 traffic does: the kernel's vxlan driver does not take it either.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_DECAP_L3_IPV4, BPF_F_ADJ_ROOM_DECAP_L3_IPV6, BPF_F_ADJ_ROOM_FIXED_GSO,
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    programs::TcContext,
};
use network_types::{
    eth::EthHdr,
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::VxlanHdr,
};
use vtep_common::{
    drop::DropReason,
    maps::{
        DP_F_FILTER_SOURCES, DatapathConfig, FDB_LOCAL, HOOK_UNDERLAY, MAX_DSTPORTS, VNI_F_LEARN,
        VniConfig, VtepAddr, vtep_addr_v4,
    },
    wire::{ETH_P_IP, ETH_P_IPV6},
};

use crate::{
    csum, deliver,
    encap::OuterIp,
    flood,
    learn::{self, Station},
    maps::{self, Traffic, VNIS, config, count_traffic},
    parse::{self, Packet, ensure_linear, ether_type, is_fragment, is_ip, is_plain_ipv4},
    proxy,
    skb::{self, PACKET_HOST, PACKET_MULTICAST},
    trace, udp_csum, verdict,
};

/// TC ingress of the underlay interface, an underlay of `I`'s family. Returns the TC verdict;
/// every drop is counted.
#[inline(always)]
pub fn ingress<I: OuterIp, const TRACED: bool>(ctx: &TcContext) -> i32 {
    trace::begin::<TRACED>();
    verdict::or_drop_traced::<TRACED>(ctx, HOOK_UNDERLAY, try_ingress::<I, TRACED>(ctx))
}

/// Parse, look up, rewrite, deliver. `Ok(verdict::PASS)` for anything that is not VXLAN over `I`
/// for us.
#[inline(always)]
fn try_ingress<I: OuterIp, const TRACED: bool>(ctx: &TcContext) -> Result<i32, DropReason> {
    let cfg = config();
    let Some(outer) = classify::<I>(ctx, &cfg) else {
        return Ok(verdict::PASS);
    };
    // VXLAN for us from here on: drop what is malformed.
    let Some((vni, vcfg)) = vni_of::<I, TRACED>(ctx, &outer)? else {
        return Ok(verdict::PASS);
    };
    verdict::in_vni(
        vcfg.stats_slot,
        for_vni::<I, TRACED>(ctx, &cfg, &outer, vni, &vcfg),
    )
}

/// The underlay program's work on VXLAN for us of `vni` (config `vcfg`), outer headers `outer`.
#[inline(always)]
fn for_vni<I: OuterIp, const TRACED: bool>(
    ctx: &TcContext,
    cfg: &DatapathConfig,
    outer: &OuterInfo,
    vni: u32,
    vcfg: &VniConfig,
) -> Result<i32, DropReason> {
    // Before the checksum (cheaper for a flood of spoofed frames) and before learning.
    check_source(cfg, outer)?;
    check_outer::<I>(ctx, outer)?;
    let inner_eth: EthHdr = parse::load(ctx, I::INNER).ok_or(DropReason::VxlanTruncated)?;
    learn_from::<I>(ctx, cfg, outer, vni, vcfg, &inner_eth);
    let target = local_target(vni, &inner_eth.dst_addr)?;
    let to = target.map(|(ifindex, _)| ifindex);
    trace::decap::<I, TRACED>(HOOK_UNDERLAY, &outer.sender, vni, &inner_eth.dst_addr, to);
    let proto = ether_type(&inner_eth);
    strip_outer::<I>(ctx, proto, &inner_eth)?;
    deliver_inner::<TRACED>(ctx, vni, vcfg.stats_slot, target, proto)
}

/// Fails with `SourceNotAllowed` when the instance filters sources (`underlay.accept`) and the
/// sender of `outer` is not in `ACCEPT`.
#[inline(always)]
pub fn check_source(cfg: &DatapathConfig, outer: &OuterInfo) -> Result<(), DropReason> {
    if cfg.flags & DP_F_FILTER_SOURCES != 0 && !maps::source_allowed(outer.sender) {
        return Err(DropReason::SourceNotAllowed);
    }
    Ok(())
}

/// What the outer headers of a VXLAN packet for us say.
pub struct OuterInfo {
    /// The outer source: the remote VTEP that sent the packet.
    pub sender: VtepAddr,
    /// The outer destination: our address, or a multicast group (`to_group`).
    pub dst: VtepAddr,
    pub to_group: bool,
    /// The UDP destination port, network order.
    pub dstport: [u8; 2],
    /// What the IP header says the IP packet's length is (IPv6: its payload length and the
    /// header's), and the IP header's length.
    pub ip_len: u32,
    pub ip_hlen: u32,
    /// What the UDP header says the segment's length is, and its checksum.
    pub udp_len: u32,
    pub udp_check: u16,
}

impl OuterInfo {
    /// The partial sum (`csum::partial`) of the UDP pseudo header.
    #[inline(always)]
    pub fn pseudo_partial(&self) -> u64 {
        let (len, udp) = (self.udp_len as u16, IpProto::Udp as u8);
        if self.ip_hlen == Ipv4Hdr::LEN as u32 {
            let v4 = |a: &VtepAddr| [a[12], a[13], a[14], a[15]];
            csum::pseudo_partial(&v4(&self.sender), &v4(&self.dst), len, udp)
        } else {
            csum::pseudo_partial(&self.sender, &self.dst, len, udp)
        }
    }
}

/// The outer headers of a packet up to UDP when it is VXLAN over `I` for us, or `None` for
/// everything the kernel is to handle as if no program ran.
#[inline(always)]
fn classify<I: OuterIp>(ctx: &TcContext, cfg: &DatapathConfig) -> Option<OuterInfo> {
    // A tagged packet belongs to a VLAN on top of this interface, not to the VTEP on it; a
    // frame to another host's MAC (seen in promiscuous mode) is not ours either.
    let pkt_type = skb::pkt_type(ctx);
    if skb::vlan_tag(ctx).is_some() || (pkt_type != PACKET_HOST && pkt_type != PACKET_MULTICAST) {
        return None;
    }
    // Outer headers up to UDP must be linear to classify; pulling only happens for packets
    // whose head the driver left in fragments.
    if !ensure_linear(ctx, I::OFF_VXLAN) {
        return None;
    }
    classify_outer::<I>(ctx, cfg, pkt_type == PACKET_HOST)
}

/// [`classify`] from the Ethernet header on, for a frame to this host's MAC (`to_host`) or to a
/// multicast MAC (otherwise), whose headers up to UDP are linear.
#[inline(always)]
pub fn classify_outer<I: OuterIp>(
    ctx: &impl Packet,
    cfg: &DatapathConfig,
    to_host: bool,
) -> Option<OuterInfo> {
    // A constant condition: the other family's code is not even compiled in.
    if I::LEN == Ipv6Hdr::LEN {
        classify_ipv6(ctx, cfg, to_host)
    } else {
        classify_ipv4(ctx, cfg, to_host)
    }
}

/// [`classify_outer`] over IPv4.
#[inline(always)]
fn classify_ipv4(ctx: &impl Packet, cfg: &DatapathConfig, to_host: bool) -> Option<OuterInfo> {
    let eth: EthHdr = parse::load(ctx, 0)?;
    if ether_type(&eth) != ETH_P_IP {
        return None;
    }
    let ip: Ipv4Hdr = parse::load(ctx, EthHdr::LEN)?;
    let (sender, dst) = (vtep_addr_v4(ip.src_addr), vtep_addr_v4(ip.dst_addr));
    // To us, or to a multicast group (which the VNI must then have, checked in `vni_of`).
    let to_group = ip.dst_addr[0] & 0xf0 == 0xe0;
    let addressed = if to_host {
        dst == cfg.local_ip
    } else {
        to_group
    };
    // Options, fragments, other protocols and other destinations are the kernel's business.
    if !is_plain_ipv4(&ip)
        || ip.proto != IpProto::Udp as u8
        || !addressed
        || is_fragment(&ip)
        // The kernel's IP layer would drop a corrupted header; so must we, not trust it.
        || csum::ipv4_header_sum(&ip) != 0xffff
    {
        return None;
    }
    let udp: UdpHdr = parse::load(ctx, <Ipv4Hdr as OuterIp>::OFF_UDP)?;
    if !is_vxlan_port(&cfg.dstports, &udp.dst) {
        return None;
    }
    let udp_len = u16::from_be_bytes(udp.len);
    Some(OuterInfo {
        sender,
        dst,
        to_group,
        dstport: udp.dst,
        ip_len: u32::from(u16::from_be_bytes(ip.tot_len)),
        ip_hlen: Ipv4Hdr::LEN as u32,
        udp_len: u32::from(udp_len),
        udp_check: u16::from_be_bytes(udp.check),
    })
}

/// [`classify_outer`] over IPv6. A header followed by anything but UDP (an extension header)
/// is not looked into.
#[inline(always)]
fn classify_ipv6(ctx: &impl Packet, cfg: &DatapathConfig, to_host: bool) -> Option<OuterInfo> {
    let eth: EthHdr = parse::load(ctx, 0)?;
    if ether_type(&eth) != ETH_P_IPV6 {
        return None;
    }
    let ip: Ipv6Hdr = parse::load(ctx, EthHdr::LEN)?;
    // To us, or to a multicast group (ff00::/8; the VNI must have it, checked in `vni_of`).
    let to_group = ip.dst_addr[0] == 0xff;
    let addressed = if to_host {
        ip.dst_addr == cfg.local_ip
    } else {
        to_group
    };
    if ip.version() != 6 || ip.next_hdr != IpProto::Udp as u8 || !addressed {
        return None;
    }
    let udp: UdpHdr = parse::load(ctx, <Ipv6Hdr as OuterIp>::OFF_UDP)?;
    if !is_vxlan_port(&cfg.dstports, &udp.dst) {
        return None;
    }
    let udp_len = u32::from(u16::from_be_bytes(udp.len));
    Some(OuterInfo {
        sender: ip.src_addr,
        dst: ip.dst_addr,
        to_group,
        dstport: udp.dst,
        ip_len: u32::from(u16::from_be_bytes(ip.payload_len)) + Ipv6Hdr::LEN as u32,
        ip_hlen: Ipv6Hdr::LEN as u32,
        udp_len,
        udp_check: u16::from_be_bytes(udp.check),
    })
}

#[inline(always)]
fn is_vxlan_port(ports: &[[u8; 2]; MAX_DSTPORTS], port: &[u8; 2]) -> bool {
    // Unused slots are zero, and no VXLAN packet is sent to port zero.
    let mut i = 0;
    while i < MAX_DSTPORTS {
        if ports[i] == *port && *port != [0, 0] {
            return true;
        }
        i += 1;
    }
    false
}

/// The VNI of the VXLAN packet `outer` describes, and its configuration. `Ok(None)` for a
/// packet to a multicast group that is not the VNI's: another group's traffic is not ours to
/// judge. Fails with `VxlanTruncated`, `VxlanBadFlags` (I flag clear) or `UnknownVni` (not
/// configured, or configured on another UDP port).
#[inline(always)]
pub fn vni_of<I: OuterIp, const TRACED: bool>(
    ctx: &impl Packet,
    outer: &OuterInfo,
) -> Result<Option<(u32, VniConfig)>, DropReason> {
    // Shortest VXLAN packet we decapsulate: outer headers plus an inner Ethernet header.
    if !ensure_linear(ctx, I::INNER + EthHdr::LEN) {
        return Err(DropReason::VxlanTruncated);
    }
    let vx: VxlanHdr = parse::load(ctx, I::OFF_VXLAN).ok_or(DropReason::VxlanTruncated)?;
    if !vx.vni_present() {
        return Err(DropReason::VxlanBadFlags);
    }
    // Reserved bits are ignored on receive (RFC 7348 section 5).
    let vni = vx.vni();
    trace::note_vni::<TRACED>(vni);
    let vcfg = match maps::get(&VNIS, &vni) {
        Some(v) => v,
        None if outer.to_group => return Ok(None),
        None => return Err(DropReason::UnknownVni),
    };
    if outer.to_group && vcfg.group != outer.dst {
        return Ok(None);
    }
    if vcfg.dstport != outer.dstport {
        return Err(DropReason::UnknownVni);
    }
    Ok(Some((vni, vcfg)))
}

/// What the kernel's IP and UDP layers check before a socket sees a datagram, for VXLAN that is
/// ours: the outer lengths agree with each other and with the frame, and a non-zero UDP checksum
/// is right. Trims bytes after the IP packet (an Ethernet FCS kept by `rx-fcs`, padding), as
/// the IP layer does. Fails with `VxlanTruncated` when the lengths leave no room for VXLAN and an
/// inner Ethernet header, `VxlanBadLength` when the frame is shorter than the IPv4 packet or the
/// UDP length is not the IPv4 payload's, `VxlanBadChecksum`, or `DecapFailed` when the kernel
/// refuses the trim.
#[inline(always)]
fn check_outer<I: OuterIp>(ctx: &TcContext, outer: &OuterInfo) -> Result<(), DropReason> {
    let len = ctx.len();
    let frame_len = check_lengths(outer, len)?;
    if frame_len < len {
        skb::change_tail(ctx, frame_len).ok_or(DropReason::DecapFailed)?;
    }
    let (off, pseudo) = (I::OFF_UDP as u32, || outer.pseudo_partial());
    if !udp_csum::acceptable(ctx, off, outer.udp_len, pseudo, outer.udp_check) {
        return Err(DropReason::VxlanBadChecksum);
    }
    Ok(())
}

/// The length checks of [`check_outer`] for a packet of `len` bytes: returns the length the
/// frame has without what follows the IP packet (at most `len`). Fails with `VxlanTruncated`
/// or `VxlanBadLength` as `check_outer` says.
#[inline(always)]
pub fn check_lengths(outer: &OuterInfo, len: u32) -> Result<u32, DropReason> {
    // The IP header, UDP, VXLAN and an inner Ethernet header.
    const MIN_PAYLOAD: u32 = (UdpHdr::LEN + VxlanHdr::LEN + EthHdr::LEN) as u32;
    if outer.ip_len < outer.ip_hlen + MIN_PAYLOAD {
        return Err(DropReason::VxlanTruncated);
    }
    let frame_len = EthHdr::LEN as u32 + outer.ip_len;
    if frame_len > len || outer.udp_len != outer.ip_len - outer.ip_hlen {
        return Err(DropReason::VxlanBadLength);
    }
    Ok(frame_len)
}

/// Learns from the inner frame (Ethernet header `inner_eth`) where the VNI learns: its source
/// MAC behind the sending VTEP, and the proxy's addresses from ARP and advertisements.
#[inline(always)]
pub fn learn_from<I: OuterIp>(
    ctx: &impl Packet,
    cfg: &DatapathConfig,
    outer: &OuterInfo,
    vni: u32,
    vcfg: &VniConfig,
    inner_eth: &EthHdr,
) {
    // A packet claiming to come from our own address teaches nothing either.
    if vcfg.flags & VNI_F_LEARN != 0 && outer.sender != cfg.local_ip {
        let station = Station::Remote(outer.sender);
        learn::learn(vni, || Some(*vcfg), &inner_eth.src_addr, station);
    }
    proxy::learn_from_decap(ctx, I::INNER, vni, vcfg, inner_eth);
}

/// The local port (ifindex, port flags) the FDB names for `dst` in VNI `vni`; `None` for a group
/// or unknown MAC, which floods. Fails with `DecapToRemote` when the FDB puts `dst` behind a
/// remote VTEP.
#[inline(always)]
pub fn local_target(vni: u32, dst: &[u8; 6]) -> Result<Option<(u32, u32)>, DropReason> {
    match maps::fdb_entry(vni, dst) {
        Some(entry) if entry.kind == FDB_LOCAL => Ok(Some((entry.ifindex, entry.port_flags))),
        Some(_) => Err(DropReason::DecapToRemote),
        None => Ok(None),
    }
}

/// Removes outer Ethernet/IP/UDP/VXLAN, leaving the inner frame (`inner_eth` first). Keeps the
/// GSO size: the inner TCP segments were sized for the inner MTU. Fails with `DecapFailed` when
/// the kernel refuses to resize the packet.
#[inline(always)]
fn strip_outer<I: OuterIp>(
    ctx: &TcContext,
    proto: u16,
    inner_eth: &EthHdr,
) -> Result<(), DropReason> {
    // adjust_room leaves at least an outer IP header's worth (skb->protocol's: 20 or 40 bytes)
    // after the MAC header, so an inner frame with less payload is padded for the shrink and cut
    // back after it.
    let shrink_min_len = (I::INNER + EthHdr::LEN + I::LEN) as u32;
    // The decap flags make adjust_room set skb->protocol to the inner L3 protocol.
    let l3 = match proto {
        ETH_P_IPV6 => BPF_F_ADJ_ROOM_DECAP_L3_IPV6,
        _ => BPF_F_ADJ_ROOM_DECAP_L3_IPV4,
    };
    let flags = u64::from(BPF_F_ADJ_ROOM_FIXED_GSO | l3);
    let len = ctx.len();
    let short = len < shrink_min_len;
    if short {
        skb::change_tail(ctx, shrink_min_len).ok_or(DropReason::DecapFailed)?;
    }
    // Room is removed after the outer MAC header, which then takes the inner header's bytes.
    ctx.adjust_room(-(I::OVERHEAD as i32), BPF_ADJ_ROOM_MAC, flags)
        .map_err(|_| DropReason::DecapFailed)?;
    if short {
        skb::change_tail(ctx, len - I::OVERHEAD as u32).ok_or(DropReason::DecapFailed)?;
    }
    // Direct packet access: the MAC header stays in the linear head after adjust_room.
    parse::store(ctx, 0, *inner_eth).ok_or(DropReason::DecapFailed)
}

/// Hands the decapsulated frame (Ethernet type `proto`) to local port `target`, or without one
/// floods it to the local ports of VNI `vni`; counted in stats slot `slot`. Returns the TC
/// verdict; fails with `NoFloodTarget` when the VNI has no local port, or `RedirectFailed`.
#[inline(always)]
fn deliver_inner<const TRACED: bool>(
    ctx: &TcContext,
    vni: u32,
    slot: u32,
    target: Option<(u32, u32)>,
    proto: u16,
) -> Result<i32, DropReason> {
    let len = ctx.len();
    match target {
        Some((ifindex, port_flags)) => {
            if !deliver::fits(ctx, ifindex) {
                return Err(DropReason::InnerTooBig);
            }
            count_traffic(slot, Traffic::Decap, len);
            // Only IPv4 and IPv6 leave adjust_room with a matching skb->protocol.
            deliver::to_port(ifindex, port_flags, is_ip(proto))
        }
        None => {
            let list = maps::flood_list(vni).ok_or(DropReason::NoFloodTarget)?;
            if list.n_ports == 0 {
                return Err(DropReason::NoFloodTarget);
            }
            // Bug (found by the IPv6 fuzzer): a frame too big for every port was counted as
            // decapsulated and delivered, though each copy was then dropped as too big.
            if !flood::fits_any_port(ctx, list) {
                return Err(DropReason::InnerTooBig);
            }
            count_traffic(slot, Traffic::Flood, len);
            count_traffic(slot, Traffic::Decap, len);
            flood::to_local_ports::<TRACED>(ctx, HOOK_UNDERLAY, (vni, slot), list, 0);
            // The original was the template for the copies: consumed, not dropped.
            Ok(verdict::SHOT)
        }
    }
}
