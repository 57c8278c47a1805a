//! Turning an Ethernet frame from a local port into a VXLAN packet (RFC 7348): the outer headers
//! ([`OuterHeaders`]), the outer source port, making room for them and writing them.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L4_UDP,
        BPF_F_ADJ_ROOM_FIXED_GSO, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    programs::TcContext,
};
use network_types::{
    eth::EthHdr,
    ip::{IpProto, Ipv4Hdr},
    udp::UdpHdr,
    vxlan::{VXLAN_I_FLAG_MASK, VxlanHdr},
};
use vtep_common::{
    drop::DropReason,
    flow,
    maps::{DatapathConfig, PortConfig},
    wire::{ETH_P_IP, INNER_OFFSET, OVERHEAD_IPV4},
};

use crate::{
    csum, flowhash,
    parse::{self, Plain},
    skb,
};

/// The outer headers of a VXLAN-over-IPv4 packet, in wire order: what decapsulation reads and
/// encapsulation writes. Offsets into a VXLAN packet are `offset_of!(Outer, …)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Outer {
    pub eth: EthHdr,
    pub ip: Ipv4Hdr,
    pub udp: UdpHdr,
    pub vxlan: VxlanHdr,
}

/// The outer headers and a copy of the inner Ethernet header, built on the stack and written
/// with one store: after `adjust_room` the inner Ethernet header lies at the start of the room
/// and must move behind it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OuterHeaders {
    pub outer: Outer,
    pub inner_eth: EthHdr,
}

const _: () = assert!(size_of::<Outer>() == INNER_OFFSET);
const _: () = assert!(size_of::<OuterHeaders>() == INNER_OFFSET + EthHdr::LEN);
// SAFETY: `#[repr(C)]` structs of `Plain` headers whose sizes (asserted above) are the sums of
// their fields': no padding, any bytes valid.
unsafe impl Plain for Outer {}
unsafe impl Plain for OuterHeaders {}

/// IPv4 flags (the 3 bits `Ipv4Hdr::set_frags` takes): don't fragment.
const IP_FLAG_DF: u8 = 0b010;

/// `adjust_room` flags for VXLAN over IPv4. FIXED_GSO: workload MTUs already leave room for the
/// overhead, so the inner MSS stays as TCP chose it.
const ENCAP_FLAGS: u64 = (BPF_F_ADJ_ROOM_FIXED_GSO
    | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH) as u64
    | ((EthHdr::LEN as u64) << 56);

impl OuterHeaders {
    /// Builds outer IPv4/UDP/VXLAN headers for an inner frame of `inner_len` bytes (inner
    /// Ethernet header included) to `remote`, with the inner Ethernet header `inner_eth`.
    /// MAC addresses stay zero until [`OuterHeaders::set_macs`].
    #[inline(always)]
    pub fn new(
        cfg: &DatapathConfig,
        port: &PortConfig,
        remote: [u8; 4],
        inner_len: u32,
        srcport: u16,
        inner_eth: &EthHdr,
    ) -> Self {
        let mut ip = Ipv4Hdr {
            vihl: 0,
            tos: 0,
            tot_len: [0; 2],
            // 0, as RFC 6864 allows for atomic datagrams.
            id: [0; 2],
            frags: [0; 2],
            ttl: port.ttl,
            proto: IpProto::Udp as u8,
            check: [0; 2],
            src_addr: cfg.local_ip,
            dst_addr: remote,
        };
        ip.set_vihl(4, Ipv4Hdr::LEN as u8);
        ip.set_tot_len((inner_len as u16).wrapping_add((OVERHEAD_IPV4 - EthHdr::LEN) as u16));
        // DF, so a too-big frame is never fragmented on the underlay (the workload MTU leaves
        // room for the overhead).
        ip.set_frags(IP_FLAG_DF, 0);
        let mut udp = UdpHdr {
            src: [0; 2],
            dst: port.dstport,
            len: [0; 2],
            // Zero, as RFC 7348 allows over IPv4 and the kernel driver sends.
            check: [0; 2],
        };
        udp.set_src_port(srcport);
        udp.set_len((inner_len as u16).wrapping_add((UdpHdr::LEN + VxlanHdr::LEN) as u16));
        // The I flag; reserved bits zero.
        let mut vxlan = VxlanHdr {
            flags: VXLAN_I_FLAG_MASK,
            _reserved1: [0; 3],
            vni: [0; 3],
            _reserved2: 0,
        };
        vxlan.set_vni(port.vni);
        let mut hdr = Self {
            outer: Outer {
                // MACs filled in later.
                eth: EthHdr {
                    dst_addr: [0; 6],
                    src_addr: [0; 6],
                    ether_type: ETH_P_IP.to_be(),
                },
                ip,
                udp,
                vxlan,
            },
            inner_eth: *inner_eth,
        };
        hdr.set_ip_checksum();
        hdr
    }

    #[inline(always)]
    pub fn set_macs(&mut self, dst: &[u8; 6], src: &[u8; 6]) {
        self.outer.eth.dst_addr = *dst;
        self.outer.eth.src_addr = *src;
    }

    /// Points the packet at another remote VTEP (flood copies).
    #[inline(always)]
    pub fn set_remote(&mut self, remote: &[u8; 4]) {
        self.outer.ip.dst_addr = *remote;
        self.set_ip_checksum();
    }

    #[inline(always)]
    fn set_ip_checksum(&mut self) {
        let ip = &mut self.outer.ip;
        ip.check = [0; 2];
        ip.set_checksum(!csum::ipv4_header_sum(ip));
    }
}

/// The outer UDP source port for this frame: the inner flow hash scaled into the configured
/// range, so one flow keeps one path and different flows spread over ECMP links. The skb's own
/// hash is used when it has one (sockets set it); otherwise `flowhash` hashes the inner headers,
/// a fraction of what the kernel's flow dissector (`bpf_get_hash_recalc`) costs.
#[inline(always)]
pub fn source_port(ctx: &TcContext, cfg: &DatapathConfig, inner_eth: &EthHdr) -> u16 {
    let skb_hash = skb::hash(ctx);
    let hash = if skb_hash != 0 {
        skb_hash
    } else {
        flowhash::of_frame(ctx, inner_eth)
    };
    flow::scale_to_port(hash, cfg.srcport_min, cfg.srcport_max)
}

/// What [`grow`] made room for, and so what [`write`] and [`write_direct`] store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Room after the inner Ethernet header (`adjust_room`): the outer headers and the inner
    /// Ethernet header are written.
    AfterInnerEth,
    /// Room in front of the unchanged frame (`change_head`): only the outer headers are written.
    BeforeFrame,
}

/// Makes room for the outer headers in front of the inner frame, whose Ethernet type is
/// `inner_proto`. Returns where the room is; fails with `EncapFailed` when the kernel refuses.
///
/// IP frames grow with `adjust_room`, which marks the skb as UDP-tunnelled so GSO packets stay
/// GSO and are segmented (or offloaded) on the underlay. `adjust_room` refuses other protocols,
/// which are never GSO, so those grow at the head instead and keep their Ethernet header in
/// place.
#[inline(always)]
pub fn grow(ctx: &TcContext, inner_proto: u16) -> Result<Room, DropReason> {
    if parse::is_ip(inner_proto) {
        ctx.adjust_room(OVERHEAD_IPV4 as i32, BPF_ADJ_ROOM_MAC, ENCAP_FLAGS)
            .map_err(|_| DropReason::EncapFailed)?;
        Ok(Room::AfterInnerEth)
    } else {
        skb::change_head(ctx, OVERHEAD_IPV4 as u32).ok_or(DropReason::EncapFailed)?;
        Ok(Room::BeforeFrame)
    }
}

/// Writes `hdr` into the `room` [`grow`] made, through direct packet access, which costs less
/// than the `bpf_skb_store_bytes` call of [`write`]. The unicast path uses it; the flood path
/// keeps [`write`], whose single call site per copy the verifier walks in fewer states. Fails
/// with `EncapFailed` when the room is not in the linear head.
#[inline(always)]
pub fn write_direct(ctx: &TcContext, hdr: &OuterHeaders, room: Room) -> Result<(), DropReason> {
    // The grown room and the inner Ethernet header are in the linear head after `grow`.
    match room {
        Room::AfterInnerEth => parse::store(ctx, 0, *hdr),
        Room::BeforeFrame => parse::store(ctx, 0, hdr.outer),
    }
    .ok_or(DropReason::EncapFailed)
}

/// Writes `hdr` into the `room` [`grow`] made. Fails with `EncapFailed` when the kernel refuses.
#[inline(always)]
pub fn write(ctx: &TcContext, hdr: &OuterHeaders, room: Room) -> Result<(), DropReason> {
    match room {
        Room::AfterInnerEth => ctx.store(0, hdr, 0),
        Room::BeforeFrame => ctx.store(0, &hdr.outer, 0),
    }
    .map_err(|_| DropReason::EncapFailed)
}
