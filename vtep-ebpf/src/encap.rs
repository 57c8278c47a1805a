//! Turning an Ethernet frame from a local port into a VXLAN packet (RFC 7348) over an IPv4 or an
//! IPv6 underlay: the outer headers ([`OuterHeaders`], one type per underlay family through
//! [`OuterIp`]), the flow hash behind the outer source port and IPv6 flow label, making room for
//! the headers and writing them. The IPv6 UDP checksum is `outer_csum.rs`'s.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6,
        BPF_F_ADJ_ROOM_ENCAP_L4_UDP, BPF_F_ADJ_ROOM_FIXED_GSO, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    programs::TcContext,
};
use network_types::{
    eth::EthHdr,
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::{VXLAN_I_FLAG_MASK, VxlanHdr},
};
use vtep_common::{
    drop::DropReason,
    flow,
    maps::{DP_F_UDP6_ZERO_CSUM_TX, DatapathConfig, PortConfig, VtepAddr},
    wire::{ETH_P_IP, ETH_P_IPV6, INNER_OFFSET, INNER_OFFSET_IPV6},
};

use crate::{
    csum, flowhash,
    nexthop::{AF_INET, AF_INET6},
    parse::{self, Plain},
    skb,
};

/// The outer headers of a VXLAN packet over IPv4 (`I = Ipv4Hdr`) or IPv6 (`I = Ipv6Hdr`), in wire
/// order: what decapsulation reads and encapsulation writes. Offsets into a VXLAN packet are
/// `offset_of!(Outer<I>, …)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Outer<I> {
    pub eth: EthHdr,
    pub ip: I,
    pub udp: UdpHdr,
    pub vxlan: VxlanHdr,
}

/// The outer headers and a copy of the inner Ethernet header, built on the stack and written
/// with one store: after `adjust_room` the inner Ethernet header lies at the start of the room
/// and must move behind it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OuterHeaders<I> {
    pub outer: Outer<I>,
    pub inner_eth: EthHdr,
}

const _: () = assert!(size_of::<Outer<Ipv4Hdr>>() == INNER_OFFSET);
const _: () = assert!(size_of::<OuterHeaders<Ipv4Hdr>>() == INNER_OFFSET + EthHdr::LEN);
const _: () = assert!(size_of::<Outer<Ipv6Hdr>>() == INNER_OFFSET_IPV6);
const _: () = assert!(size_of::<OuterHeaders<Ipv6Hdr>>() == INNER_OFFSET_IPV6 + EthHdr::LEN);
// SAFETY: `#[repr(C)]` structs of `Plain` headers; `OuterIp` is implemented for `Ipv4Hdr` and
// `Ipv6Hdr` only, and for both the sizes (asserted above) are the sums of the fields': no
// padding, any bytes valid.
unsafe impl<I: OuterIp> Plain for Outer<I> {}
unsafe impl<I: OuterIp> Plain for OuterHeaders<I> {}

/// IPv4 flags (the 3 bits `Ipv4Hdr::set_frags` takes): don't fragment.
const IP_FLAG_DF: u8 = 0b010;

/// What differs between the two underlay families: the outer IP header, and the constants and
/// addresses that follow from it. Implemented by `Ipv4Hdr` and `Ipv6Hdr` only.
pub trait OuterIp: Plain + 'static {
    /// Ethernet type of the outer frame, host order.
    const ETHER_TYPE: u16;
    /// The outer IP header's length.
    const LEN: usize;
    /// Bytes encapsulation adds in front of the inner frame.
    const OVERHEAD: usize = Self::LEN + UdpHdr::LEN + VxlanHdr::LEN + EthHdr::LEN;
    /// Where the outer UDP header, the VXLAN header and the inner frame start in a VXLAN packet.
    const OFF_UDP: usize = EthHdr::LEN + Self::LEN;
    const OFF_VXLAN: usize = Self::OFF_UDP + UdpHdr::LEN;
    const INNER: usize = Self::OFF_VXLAN + VxlanHdr::LEN;
    /// `adjust_room`'s flag for this outer L3 protocol.
    const ADJ_ROOM_L3: u32;
    /// The address family, as the kernel's FIB lookup and neighbour redirect take it.
    const FAMILY: u8;

    /// Whether packets of instance `cfg` carry a UDP checksum: IPv6 unless
    /// `DP_F_UDP6_ZERO_CSUM_TX`; never IPv4, as RFC 7348 allows and the kernel driver does.
    fn checksummed(cfg: &DatapathConfig) -> bool;

    /// The outer IP header of a packet carrying a `udp_len`-byte UDP datagram from `local` to
    /// `remote` with hop limit `ttl`; `hash` is the inner flow's (IPv6's flow label).
    fn header(local: &VtepAddr, remote: &VtepAddr, ttl: u8, udp_len: u16, hash: u32) -> Self;
    /// Points the header at another destination (a flood copy's remote VTEP, a group).
    fn set_dst(&mut self, dst: &VtepAddr);
    fn set_ttl(&mut self, ttl: u8);
    /// The destination MAC of multicast group `group` (RFC 1112 for IPv4, RFC 2464 for IPv6).
    fn group_mac(group: &VtepAddr) -> [u8; 6];
    /// The partial sum (`csum::partial`) of the UDP pseudo header of a `udp_len`-byte datagram
    /// under this header.
    fn pseudo_partial(&self, udp_len: u16) -> u64;
}

impl OuterIp for Ipv4Hdr {
    const ETHER_TYPE: u16 = ETH_P_IP;
    const LEN: usize = Ipv4Hdr::LEN;
    const ADJ_ROOM_L3: u32 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;
    const FAMILY: u8 = AF_INET;

    #[inline(always)]
    fn checksummed(_cfg: &DatapathConfig) -> bool {
        false
    }

    #[inline(always)]
    fn header(local: &VtepAddr, remote: &VtepAddr, ttl: u8, udp_len: u16, _hash: u32) -> Self {
        let mut ip = Ipv4Hdr {
            vihl: 0,
            tos: 0,
            tot_len: [0; 2],
            // 0, as RFC 6864 allows for atomic datagrams.
            id: [0; 2],
            frags: [0; 2],
            ttl,
            proto: IpProto::Udp as u8,
            check: [0; 2],
            src_addr: v4(local),
            dst_addr: v4(remote),
        };
        ip.set_vihl(4, Ipv4Hdr::LEN as u8);
        ip.set_tot_len(udp_len.wrapping_add(Ipv4Hdr::LEN as u16));
        // DF, so a too-big frame is never fragmented on the underlay (the workload MTU leaves
        // room for the overhead).
        ip.set_frags(IP_FLAG_DF, 0);
        ip.set_checksum(!csum::ipv4_header_sum(&ip));
        ip
    }

    #[inline(always)]
    fn set_dst(&mut self, dst: &VtepAddr) {
        self.dst_addr = v4(dst);
        self.check = [0; 2];
        self.set_checksum(!csum::ipv4_header_sum(self));
    }

    #[inline(always)]
    fn set_ttl(&mut self, ttl: u8) {
        self.ttl = ttl;
        self.check = [0; 2];
        self.set_checksum(!csum::ipv4_header_sum(self));
    }

    #[inline(always)]
    fn group_mac(group: &VtepAddr) -> [u8; 6] {
        [0x01, 0x00, 0x5e, group[13] & 0x7f, group[14], group[15]]
    }

    #[inline(always)]
    fn pseudo_partial(&self, udp_len: u16) -> u64 {
        csum::pseudo_partial(&self.src_addr, &self.dst_addr, udp_len, IpProto::Udp as u8)
    }
}

impl OuterIp for Ipv6Hdr {
    const ETHER_TYPE: u16 = ETH_P_IPV6;
    const LEN: usize = Ipv6Hdr::LEN;
    const ADJ_ROOM_L3: u32 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV6;
    const FAMILY: u8 = AF_INET6;

    #[inline(always)]
    fn checksummed(cfg: &DatapathConfig) -> bool {
        cfg.flags & DP_F_UDP6_ZERO_CSUM_TX == 0
    }

    #[inline(always)]
    fn header(local: &VtepAddr, remote: &VtepAddr, ttl: u8, udp_len: u16, hash: u32) -> Self {
        let mut ip = Ipv6Hdr {
            vcf: [0; 4],
            payload_len: udp_len.to_be_bytes(),
            next_hdr: IpProto::Udp as u8,
            hop_limit: ttl,
            src_addr: *local,
            dst_addr: *remote,
        };
        // Traffic class 0; the flow label from the inner flow (RFC 6438), so routers that hash
        // the label keep a flow on one path as the source port does.
        ip.set_vcf(6, 0, 0, hash & 0x000f_ffff);
        ip
    }

    #[inline(always)]
    fn set_dst(&mut self, dst: &VtepAddr) {
        self.dst_addr = *dst;
    }

    #[inline(always)]
    fn set_ttl(&mut self, ttl: u8) {
        self.hop_limit = ttl;
    }

    #[inline(always)]
    fn group_mac(group: &VtepAddr) -> [u8; 6] {
        [0x33, 0x33, group[12], group[13], group[14], group[15]]
    }

    #[inline(always)]
    fn pseudo_partial(&self, udp_len: u16) -> u64 {
        csum::pseudo_partial(&self.src_addr, &self.dst_addr, udp_len, IpProto::Udp as u8)
    }
}

/// The IPv4 address an IPv4-mapped [`VtepAddr`] holds (an IPv4 instance has only those).
#[inline(always)]
fn v4(a: &VtepAddr) -> [u8; 4] {
    [a[12], a[13], a[14], a[15]]
}

impl<I: OuterIp> OuterHeaders<I> {
    /// Builds outer headers for an inner frame of `inner_len` bytes (inner Ethernet header
    /// included) to `remote`, with the inner Ethernet header `inner_eth` and flow hash `hash`.
    /// MAC addresses stay zero until [`OuterHeaders::set_macs`], the UDP checksum until
    /// [`OuterHeaders::set_udp_checksum`] (zero is what RFC 7348 lets IPv4 send, and what the
    /// kernel driver sends by default over IPv4).
    #[inline(always)]
    pub fn new(
        cfg: &DatapathConfig,
        port: &PortConfig,
        remote: &VtepAddr,
        inner_len: u32,
        hash: u32,
        inner_eth: &EthHdr,
    ) -> Self {
        let udp_len = (inner_len as u16).wrapping_add((UdpHdr::LEN + VxlanHdr::LEN) as u16);
        let mut udp = UdpHdr {
            src: [0; 2],
            dst: port.dstport,
            len: [0; 2],
            check: [0; 2],
        };
        udp.set_src_port(flow::scale_to_port(hash, cfg.srcport_min, cfg.srcport_max));
        udp.set_len(udp_len);
        // The I flag; reserved bits zero.
        let mut vxlan = VxlanHdr {
            flags: VXLAN_I_FLAG_MASK,
            _reserved1: [0; 3],
            vni: [0; 3],
            _reserved2: 0,
        };
        vxlan.set_vni(port.vni);
        Self {
            outer: Outer {
                // MACs filled in later.
                eth: EthHdr {
                    dst_addr: [0; 6],
                    src_addr: [0; 6],
                    ether_type: I::ETHER_TYPE.to_be(),
                },
                ip: I::header(&cfg.local_ip, remote, port.ttl, udp_len, hash),
                udp,
                vxlan,
            },
            inner_eth: *inner_eth,
        }
    }

    #[inline(always)]
    pub fn set_macs(&mut self, dst: &[u8; 6], src: &[u8; 6]) {
        self.outer.eth.dst_addr = *dst;
        self.outer.eth.src_addr = *src;
    }

    /// Points the packet at another remote VTEP (flood copies).
    #[inline(always)]
    pub fn set_remote(&mut self, remote: &VtepAddr) {
        self.outer.ip.set_dst(remote);
    }

    /// Points the packet at multicast group `group`, sent from `smac` with hop limit `ttl`.
    #[inline(always)]
    pub fn aim_at_group(&mut self, group: &VtepAddr, smac: &[u8; 6], ttl: u8) {
        self.outer.ip.set_dst(group);
        self.outer.ip.set_ttl(ttl);
        self.set_macs(&I::group_mac(group), smac);
    }

    /// Writes the UDP checksum of the packet whose bytes after the UDP header (VXLAN header on)
    /// sum to partial `body` (`outer_csum::body_sum`), for the addresses the header has now.
    #[inline(always)]
    pub fn set_udp_checksum(&mut self, body: u64) {
        self.outer.udp.check = [0; 2];
        let udp_len = u16::from_be_bytes(self.outer.udp.len);
        let partial = self.outer.ip.pseudo_partial(udp_len) + csum::partial(&self.outer.udp) + body;
        let sum = csum::from_partials(partial);
        // A computed zero is sent as all ones: zero means "no checksum" (RFC 768).
        let check = match !sum {
            0 => 0xffff,
            c => c,
        };
        self.outer.udp.check = check.to_be_bytes();
    }
}

/// The inner flow's hash, behind the outer UDP source port (RFC 7348 section 5) and the IPv6 flow
/// label: one flow keeps one path, different flows spread over ECMP links. The skb's own hash
/// is used when it has one (sockets set it); otherwise `flowhash` hashes the inner headers, a
/// fraction of what the kernel's flow dissector (`bpf_get_hash_recalc`) costs.
#[inline(always)]
pub fn flow_hash(ctx: &TcContext, inner_eth: &EthHdr) -> u32 {
    match skb::hash(ctx) {
        0 => flowhash::of_frame(ctx, inner_eth),
        hash => hash,
    }
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

/// Makes room for `I`'s outer headers in front of the inner frame, whose Ethernet type is
/// `inner_proto`. Returns where the room is; fails with `EncapFailed` when the kernel refuses.
///
/// IP frames grow with `adjust_room`, which marks the skb as UDP-tunnelled so GSO packets stay
/// GSO and are segmented (or offloaded) on the underlay, and sets skb->protocol to the outer
/// family. `adjust_room` refuses other protocols, which are never GSO, so those grow at the head
/// instead and keep their Ethernet header in place. FIXED_GSO: workload MTUs already leave room
/// for the overhead, so the inner MSS stays as TCP chose it.
#[inline(always)]
pub fn grow<I: OuterIp>(ctx: &TcContext, inner_proto: u16) -> Result<Room, DropReason> {
    if parse::is_ip(inner_proto) {
        let flags = u64::from(
            BPF_F_ADJ_ROOM_FIXED_GSO
                | I::ADJ_ROOM_L3
                | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
                | BPF_F_ADJ_ROOM_ENCAP_L2_ETH,
        ) | ((EthHdr::LEN as u64) << 56);
        ctx.adjust_room(I::OVERHEAD as i32, BPF_ADJ_ROOM_MAC, flags)
            .map_err(|_| DropReason::EncapFailed)?;
        Ok(Room::AfterInnerEth)
    } else {
        skb::change_head(ctx, I::OVERHEAD as u32).ok_or(DropReason::EncapFailed)?;
        Ok(Room::BeforeFrame)
    }
}

/// Writes `hdr` into the `room` [`grow`] made, through direct packet access, which costs less
/// than the `bpf_skb_store_bytes` call of [`write`]. The unicast path uses it; the flood path
/// keeps [`write`], whose single call site per copy the verifier walks in fewer states. Fails
/// with `EncapFailed` when the room is not in the linear head.
#[inline(always)]
pub fn write_direct<I: OuterIp>(
    ctx: &TcContext,
    hdr: &OuterHeaders<I>,
    room: Room,
) -> Result<(), DropReason> {
    // Direct writes of an unaligned struct compile to a load and store per byte through the
    // stack: for IPv6's 84 bytes that took the port program's call chain past the 512 bytes of
    // stack a BPF program may use, so IPv6 headers go through the helper.
    if I::LEN == Ipv6Hdr::LEN {
        return write(ctx, hdr, room);
    }
    // The grown room and the inner Ethernet header are in the linear head after `grow`.
    match room {
        Room::AfterInnerEth => parse::store(ctx, 0, *hdr),
        Room::BeforeFrame => parse::store(ctx, 0, hdr.outer),
    }
    .ok_or(DropReason::EncapFailed)
}

/// Writes `hdr` into the `room` [`grow`] made. Fails with `EncapFailed` when the kernel refuses.
#[inline(always)]
pub fn write<I: OuterIp>(
    ctx: &TcContext,
    hdr: &OuterHeaders<I>,
    room: Room,
) -> Result<(), DropReason> {
    match room {
        Room::AfterInnerEth => ctx.store(0, hdr, 0),
        Room::BeforeFrame => ctx.store(0, &hdr.outer, 0),
    }
    .map_err(|_| DropReason::EncapFailed)
}
