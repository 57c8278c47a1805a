//! VXLAN packets arriving on the underlay: checked, decapsulated and delivered to the local
//! port the FDB names, or to every local port of the VNI when the destination is a group or
//! unknown MAC. Everything that is not VXLAN for us passes untouched.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_DECAP_L3_IPV4, BPF_F_ADJ_ROOM_DECAP_L3_IPV6, BPF_F_ADJ_ROOM_FIXED_GSO,
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    helpers::bpf_skb_change_tail,
    programs::TcContext,
};
use network_types::{eth::EthHdr, ip::Ipv4Hdr, udp::UdpHdr, vxlan::VxlanHdr};
use vtep_common::{
    drop::DropReason,
    maps::{FDB_LOCAL, FdbKey, MAX_DSTPORTS, VNI_F_LEARN, VNI_F_PROXY},
    wire::{
        ARP_LEN, ETH_LEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, INNER_OFFSET, IPPROTO_UDP, IPV4_LEN,
        OVERHEAD_IPV4, VXLAN_FLAG_I,
    },
};

use crate::{
    arp, csum, deliver, flood,
    learn::{self, Station},
    maps::{FDB, FLOOD, Traffic, VNIS, config, count_traffic},
    nd,
    parse::{ensure_linear, is_group_mac, ptr_at},
    verdict,
};

const OFF_UDP: usize = ETH_LEN + IPV4_LEN;
const OFF_VXLAN: usize = OFF_UDP + UdpHdr::LEN;
/// Shortest VXLAN packet we decapsulate: outer headers plus an inner Ethernet header.
const MIN_LEN: usize = INNER_OFFSET + ETH_LEN;
/// `skb->pkt_type` of frames addressed to this host's MAC, and to a multicast MAC.
const PACKET_HOST: u32 = 0;
const PACKET_MULTICAST: u32 = 2;
/// Shortest packet `adjust_room` shrinks by the outer headers: 20 bytes must stay after the MAC header.
const SHRINK_MIN_LEN: u32 = (INNER_OFFSET + ETH_LEN + IPV4_LEN) as u32;

/// TC ingress of the underlay interface. Returns the TC verdict; every drop is counted.
#[inline(always)]
pub fn ingress(ctx: &TcContext) -> i32 {
    verdict::or_drop(try_ingress(ctx))
}

/// `Ok(verdict::PASS)` for anything that is not VXLAN for us.
#[inline(always)]
fn try_ingress(ctx: &TcContext) -> Result<i32, DropReason> {
    const PASS: Result<i32, DropReason> = Ok(verdict::PASS);
    // A tagged packet belongs to a VLAN on top of this interface, not to the VTEP on it; a
    // frame to another host's MAC (seen in promiscuous mode) is not ours either.
    let (vlan_present, pkt_type) =
        unsafe { ((*ctx.skb.skb).vlan_present, (*ctx.skb.skb).pkt_type) };
    if vlan_present != 0 || (pkt_type != PACKET_HOST && pkt_type != PACKET_MULTICAST) {
        return PASS;
    }
    // Outer headers up to UDP must be linear to classify; pulling only happens for packets
    // whose head the driver left in fragments.
    if !ensure_linear(ctx, OFF_VXLAN) {
        return PASS;
    }
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return PASS;
    };
    if unsafe { (*eth).ether_type } != ETH_P_IP.to_be() {
        return PASS;
    }
    let Some(ip) = ptr_at::<Ipv4Hdr>(ctx, ETH_LEN) else {
        return PASS;
    };
    let ip = unsafe { &*ip };
    let cfg = config();
    let header: &[u8; IPV4_LEN] = unsafe { &*(ip as *const Ipv4Hdr).cast() };
    // To us, or to a multicast group (which the VNI must then have, checked below).
    let to_group = ip.dst_addr[0] & 0xf0 == 0xe0;
    let addressed = if pkt_type == PACKET_HOST {
        ip.dst_addr == cfg.local_ip
    } else {
        to_group
    };
    let dst_addr = ip.dst_addr;
    // Options, fragments, other protocols and other destinations are the kernel's business.
    if ip.vihl != 0x45
        || ip.proto != IPPROTO_UDP
        || !addressed
        || (u16::from_be_bytes(ip.frags) & 0x3fff) != 0
        // The kernel's IP layer would drop a corrupted header; so must we, not trust it.
        || csum::ipv4_header_sum(header) != 0xffff
    {
        return PASS;
    }
    // Packet pointers do not survive the pull below.
    let sender = ip.src_addr;
    let Some(udp) = ptr_at::<UdpHdr>(ctx, OFF_UDP) else {
        return PASS;
    };
    let dstport = unsafe { (*udp).dst };
    if !is_vxlan_port(&cfg.dstports, &dstport) {
        return PASS;
    }

    // VXLAN for us from here on: drop what is malformed.
    if !ensure_linear(ctx, MIN_LEN) {
        return Err(DropReason::VxlanTruncated);
    }
    let vx = ptr_at::<VxlanHdr>(ctx, OFF_VXLAN).ok_or(DropReason::VxlanTruncated)?;
    let vx = unsafe { &*vx };
    if vx.flags & VXLAN_FLAG_I == 0 {
        return Err(DropReason::VxlanBadFlags);
    }
    // Reserved bits are ignored on receive (RFC 7348 section 5).
    let vni = vx.vni();
    let vcfg = match unsafe { VNIS.get(vni) } {
        Some(v) => v,
        // Another group's traffic is not ours to judge.
        None if to_group => return PASS,
        None => return Err(DropReason::UnknownVni),
    };
    if to_group && vcfg.group != dst_addr {
        return PASS;
    }
    if vcfg.dstport != dstport {
        return Err(DropReason::UnknownVni);
    }
    let inner = ptr_at::<[u8; ETH_LEN]>(ctx, INNER_OFFSET).ok_or(DropReason::VxlanTruncated)?;
    let inner_eth: [u8; ETH_LEN] = unsafe { *inner };
    // A packet claiming to come from our own address teaches nothing either.
    if vcfg.flags & VNI_F_LEARN != 0 && sender != cfg.local_ip {
        let mut src = [0u8; 6];
        src.copy_from_slice(&inner_eth[6..12]);
        learn::learn(vni, || Some(vcfg), &src, Station::Remote(sender));
    }
    let proto = u16::from_be_bytes([inner_eth[12], inner_eth[13]]);
    // The proxy learns only where the VNI learns (and ages what it learned).
    if proto == ETH_P_ARP
        && vcfg.flags & (VNI_F_PROXY | VNI_F_LEARN) == VNI_F_PROXY | VNI_F_LEARN
        && ensure_linear(ctx, INNER_OFFSET + ETH_LEN + ARP_LEN)
        && let Some(arp) = arp::parse(ctx, INNER_OFFSET + ETH_LEN)
    {
        arp::learn_sender(vni, &arp);
    }
    if proto == ETH_P_IPV6
        && vcfg.flags & (VNI_F_PROXY | VNI_F_LEARN) == VNI_F_PROXY | VNI_F_LEARN
        && ensure_linear(ctx, INNER_OFFSET + nd::ADVERT_MIN_LEN)
        && let Some(advert) = nd::parse(ctx, INNER_OFFSET)
    {
        let mut src = [0u8; 6];
        src.copy_from_slice(&inner_eth[6..12]);
        nd::learn_advert(vni, &advert, &src);
    }
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&inner_eth[0..6]);
    let slot = vcfg.stats_slot;

    let unicast_target = if is_group_mac(&dst) {
        None
    } else {
        unsafe {
            FDB.get(FdbKey {
                vni,
                mac: dst,
                _pad: [0; 2],
            })
        }
    };
    let target = match unicast_target {
        Some(entry) if entry.kind == FDB_LOCAL => Some((entry.ifindex, entry.port_flags)),
        Some(_) => return Err(DropReason::DecapToRemote),
        None => None,
    };

    strip_outer(ctx, proto, &inner_eth)?;
    let len = ctx.len();
    match target {
        Some((ifindex, flags)) => {
            count_traffic(slot, Traffic::Decap, len);
            // Only IPv4 and IPv6 leave adjust_room with a matching skb->protocol.
            let protocol_ok = proto == ETH_P_IP || proto == ETH_P_IPV6;
            Ok(deliver::to_port(ifindex, flags, protocol_ok))
        }
        None => {
            let Some(list) = (unsafe { FLOOD.get(vni) }) else {
                return Err(DropReason::NoFloodTarget);
            };
            if list.n_ports == 0 {
                return Err(DropReason::NoFloodTarget);
            }
            count_traffic(slot, Traffic::Flood, len);
            count_traffic(slot, Traffic::Decap, len);
            flood::to_local_ports(ctx, list, 0);
            // The original was the template for the copies: consumed, not dropped.
            Ok(verdict::SHOT)
        }
    }
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

/// Removes outer Ethernet/IPv4/UDP/VXLAN, leaving the inner frame (`inner_eth` first). Keeps the
/// GSO size: the inner TCP segments were sized for the inner MTU.
#[inline(always)]
fn strip_outer(ctx: &TcContext, proto: u16, inner_eth: &[u8; ETH_LEN]) -> Result<(), DropReason> {
    // The decap flags make adjust_room set skb->protocol to the inner L3 protocol.
    let l3 = match proto {
        ETH_P_IPV6 => BPF_F_ADJ_ROOM_DECAP_L3_IPV6,
        _ => BPF_F_ADJ_ROOM_DECAP_L3_IPV4,
    };
    let flags = u64::from(BPF_F_ADJ_ROOM_FIXED_GSO | l3);
    // adjust_room leaves at least an IPv4 header's worth (20 bytes) after the MAC header, so
    // an inner frame with less payload is padded for the shrink and cut back after it.
    let len = ctx.len();
    let short = len < SHRINK_MIN_LEN;
    if short && unsafe { bpf_skb_change_tail(ctx.skb.skb, SHRINK_MIN_LEN, 0) } != 0 {
        return Err(DropReason::DecapFailed);
    }
    // Room is removed after the outer MAC header, which then takes the inner header's bytes.
    ctx.adjust_room(-(OVERHEAD_IPV4 as i32), BPF_ADJ_ROOM_MAC, flags)
        .map_err(|_| DropReason::DecapFailed)?;
    if short && unsafe { bpf_skb_change_tail(ctx.skb.skb, len - OVERHEAD_IPV4 as u32, 0) } != 0 {
        return Err(DropReason::DecapFailed);
    }
    // Direct packet access: the MAC header stays in the linear head after adjust_room.
    let eth = ptr_at::<[u8; ETH_LEN]>(ctx, 0).ok_or(DropReason::DecapFailed)?;
    unsafe { core::ptr::write_unaligned(eth, *inner_eth) };
    Ok(())
}
