//! Wire-format facts of VXLAN over IPv4 (RFC 7348) that network-types does not define: the sums
//! of its header lengths vtep works with, Ethernet types in host byte order, the ARP values vtep
//! checks, defaults, and which outer addresses can be a remote VTEP. Header layouts, their
//! lengths (`EthHdr::LEN`, `Ipv4Hdr::LEN`, `UdpHdr::LEN`, `VxlanHdr::LEN`), the VXLAN I flag
//! (`VxlanHdr::vni_present`) and IP protocol numbers (`IpProto`) come from network-types.

use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::VxlanHdr,
};

/// Largest 24-bit VNI.
pub const VNI_MAX: u32 = 0x00FF_FFFF;
/// IANA-assigned VXLAN port.
pub const DSTPORT_IANA: u16 = 4789;

/// Bytes VXLAN over IPv4 adds to an Ethernet frame: outer IPv4 + UDP + VXLAN + the inner
/// Ethernet header that now counts towards the outer MTU.
pub const OVERHEAD_IPV4: usize = Ipv4Hdr::LEN + UdpHdr::LEN + VxlanHdr::LEN + EthHdr::LEN;
/// Outer Ethernet + outer IPv4 + UDP + VXLAN: where the inner frame starts in a VXLAN packet.
pub const INNER_OFFSET: usize = EthHdr::LEN + Ipv4Hdr::LEN + UdpHdr::LEN + VxlanHdr::LEN;
/// As [`OVERHEAD_IPV4`] and [`INNER_OFFSET`], over an IPv6 underlay.
pub const OVERHEAD_IPV6: usize = Ipv6Hdr::LEN + UdpHdr::LEN + VxlanHdr::LEN + EthHdr::LEN;
pub const INNER_OFFSET_IPV6: usize = EthHdr::LEN + Ipv6Hdr::LEN + UdpHdr::LEN + VxlanHdr::LEN;

// Ethernet types in host byte order, as `u16::from_be_bytes` of the field gives them (and as the
// flow hash mixes them in). network-types has them only as network-order discriminants of
// `EtherType`, from which these are derived.
pub const ETH_P_IP: u16 = u16::from_be(EtherType::Ipv4 as u16);
pub const ETH_P_IPV6: u16 = u16::from_be(EtherType::Ipv6 as u16);
pub const ETH_P_ARP: u16 = u16::from_be(EtherType::Arp as u16);

/// The ARP hardware type of Ethernet; with protocol type `ETH_P_IP` and address lengths 6 and 4
/// it makes the only kind of ARP packet vtep reads (network-types' `ArpHdr`).
pub const ARP_HTYPE_ETHERNET: u16 = 1;
pub const ARP_OP_REQUEST: u16 = 1;
pub const ARP_OP_REPLY: u16 = 2;

/// Default outer TTL, the kernel's default hop limit for unicast.
pub const DEFAULT_TTL: u8 = 64;
/// Default UDP source port range: the kernel vxlan driver takes `ip_local_port_range`, whose
/// default is this.
pub const DEFAULT_SRCPORT_MIN: u16 = 32768;
pub const DEFAULT_SRCPORT_MAX: u16 = 60999;

const _: () = assert!(OVERHEAD_IPV4 == 50);
const _: () = assert!(INNER_OFFSET == 50);
const _: () = assert!(OVERHEAD_IPV6 == 70 && INNER_OFFSET_IPV6 == 70);
const _: () = assert!(ETH_P_IP == 0x0800 && ETH_P_IPV6 == 0x86DD && ETH_P_ARP == 0x0806);

/// Whether `ip` (network order) can be a remote VTEP: a unicast address a packet can be sent to
/// and come back from. Not 0.0.0.0/8, loopback (127/8), multicast (224/4) or reserved and
/// broadcast (240/4). The one rule for both sides: the datapath does not learn other outer
/// sources, and the config and `vtep fdb` refuse them as `dst`.
#[inline(always)]
pub const fn is_unicast_vtep_ipv4(ip: [u8; 4]) -> bool {
    ip[0] != 0 && ip[0] != 127 && ip[0] < 224
}

/// Whether `ip` can be a remote VTEP on an IPv6 underlay: as [`is_unicast_vtep_ipv4`], for
/// IPv6. Not the unspecified address (::), loopback (::1), multicast (ff00::/8), an IPv4-mapped
/// or -compatible address (::/96 and ::ffff:0:0/96), which no IPv6 packet comes from, or a
/// link-local one (fe80::/10), whose scope (an interface) a VTEP address does not carry and
/// whose next hop the kernel's FIB lookups for the datapath refuse.
#[inline(always)]
pub fn is_unicast_vtep_ipv6(ip: &[u8; 16]) -> bool {
    let high = u64::from_be_bytes([ip[0], ip[1], ip[2], ip[3], ip[4], ip[5], ip[6], ip[7]]);
    let mid = u32::from_be_bytes([ip[8], ip[9], ip[10], ip[11]]);
    let link_local = ip[0] == 0xfe && ip[1] & 0xc0 == 0x80;
    ip[0] != 0xff && !link_local && !(high == 0 && (mid == 0 || mid == 0xffff))
}

/// Whether `addr` can be a remote VTEP of an instance whose underlay is IPv6 (`ipv6`) or IPv4
/// (`addr` then IPv4-mapped): the rule of [`is_unicast_vtep_ipv4`] or [`is_unicast_vtep_ipv6`].
#[inline(always)]
pub fn is_unicast_vtep(addr: &crate::maps::VtepAddr, ipv6: bool) -> bool {
    if ipv6 {
        is_unicast_vtep_ipv6(addr)
    } else {
        crate::maps::vtep_addr_as_v4(addr).is_some_and(is_unicast_vtep_ipv4)
    }
}
