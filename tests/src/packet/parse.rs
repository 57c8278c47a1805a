//! Reading packets with etherparse: VXLAN over IPv4 as the datapath writes it, and what the tests
//! look for in the frames inside.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    ArpEthIpv4Packet, EtherType, Ethernet2Header, Icmpv6Type, Ipv4Header, LinkSlice, NetSlice,
    SingleVlanHeader, SlicedPacket, TransportSlice, UdpHeader,
};

use super::{Mac, VXLAN_LEN};

/// An Ethernet/IPv4/UDP/VXLAN packet, its headers as etherparse read them.
#[derive(Debug)]
pub struct Vxlan<'a> {
    pub eth: Ethernet2Header,
    pub ip: Ipv4Header,
    pub udp: UdpHeader,
    /// The VXLAN header (RFC 7348): flags, 3 reserved bytes, the 24-bit VNI, 1 reserved byte.
    pub header: [u8; VXLAN_LEN],
    /// The frame after the VXLAN header.
    pub inner: &'a [u8],
    /// The IPv4 header as received, for what etherparse does not keep.
    ip_bytes: &'a [u8],
    /// The UDP payload (VXLAN header and inner frame), for the UDP checksum.
    udp_payload: &'a [u8],
}

/// Parses `frame` as outer Ethernet (untagged), IPv4, UDP and VXLAN. Fails, saying why, when it
/// is not: another ethertype or protocol, a fragment, a length field that disagrees with the
/// bytes, or too short for a VXLAN header and an inner Ethernet header.
pub fn parse_vxlan(frame: &[u8]) -> Result<Vxlan<'_>, String> {
    let p = SlicedPacket::from_ethernet(frame).map_err(|e| e.to_string())?;
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
        return Err("no Ethernet header".into());
    };
    if eth.ether_type() != EtherType::IPV4 {
        return Err(format!(
            "outer ethertype {:#06x}, not IPv4",
            eth.ether_type().0
        ));
    }
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return Err("no IPv4 header".into());
    };
    if ip.is_payload_fragmented() {
        return Err("a fragment".into());
    }
    let Some(TransportSlice::Udp(udp)) = &p.transport else {
        return Err(format!(
            "outer IP protocol {}, not UDP",
            ip.payload_ip_number().0
        ));
    };
    let ip_payload = ip.payload().payload.len();
    if usize::from(udp.length()) != ip_payload {
        return Err(format!(
            "UDP length {} != IP payload length {ip_payload}",
            udp.length()
        ));
    }
    let payload = udp.payload();
    if payload.len() < VXLAN_LEN + Ethernet2Header::LEN {
        return Err(format!(
            "{} bytes after UDP: too short for VXLAN",
            payload.len()
        ));
    }
    let (header, inner) = payload.split_at(VXLAN_LEN);
    let ip = ip.header().to_header();
    // Untagged, so the IPv4 header follows the Ethernet header.
    let ip_bytes = &frame[Ethernet2Header::LEN..][..ip.header_len()];
    Ok(Vxlan {
        eth: eth.to_header(),
        ip,
        udp: udp.to_header(),
        header: header.try_into().expect("8 bytes"),
        inner,
        ip_bytes,
        udp_payload: payload,
    })
}

impl Vxlan<'_> {
    /// VXLAN header byte 0 (0x08 = I).
    pub fn flags(&self) -> u8 {
        self.header[0]
    }

    /// VXLAN header bytes 1..4 and 7 (reserved, zero on send).
    pub fn reserved(&self) -> [u8; 4] {
        let h = self.header;
        [h[1], h[2], h[3], h[7]]
    }

    pub fn vni(&self) -> u32 {
        let h = self.header;
        u32::from_be_bytes([0, h[4], h[5], h[6]])
    }

    pub fn src(&self) -> Ipv4Addr {
        self.ip.source.into()
    }

    pub fn dst(&self) -> Ipv4Addr {
        self.ip.destination.into()
    }

    /// Whether the outer IPv4 header checksum is right for the header as received: its 16-bit
    /// words, checksum included, sum to all ones. Summed over the received bytes, not over
    /// etherparse's fields, which leave out the reserved flag bit.
    pub fn ip_checksum_ok(&self) -> bool {
        etherparse::checksum::Sum16BitWords::new()
            .add_slice(self.ip_bytes)
            .ones_complement()
            == 0
    }

    /// Whether etherparse's fields hold the whole outer IPv4 header: they give back the
    /// received bytes, so no bit outside them (the reserved flag) is set.
    pub fn ip_fully_read(&self) -> bool {
        self.ip.to_bytes()[..] == *self.ip_bytes
    }

    /// Whether the UDP checksum is the one computed over the pseudo-header and the payload
    /// (zero means "none" over IPv4, and is not that).
    pub fn udp_checksum_ok(&self) -> bool {
        self.udp
            .calc_checksum_ipv4(&self.ip, self.udp_payload)
            .is_ok_and(|c| c == self.udp.checksum)
    }
}

/// The source MAC of Ethernet frame `frame`, if it is one.
pub fn eth_source(frame: &[u8]) -> Option<Mac> {
    Ethernet2Header::from_slice(frame)
        .ok()
        .map(|(h, _)| Mac(h.source))
}

/// The destination MAC of Ethernet frame `frame`, if it is one.
pub fn eth_destination(frame: &[u8]) -> Option<Mac> {
    Ethernet2Header::from_slice(frame)
        .ok()
        .map(|(h, _)| Mac(h.destination))
}

/// The 802.1Q VLAN id that Ethernet frame `frame` carries in its bytes, if it is tagged.
pub fn vlan_id(frame: &[u8]) -> Option<u16> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).ok()?;
    if eth.ether_type != EtherType::VLAN_TAGGED_FRAME {
        return None;
    }
    let (tag, _) = SingleVlanHeader::from_slice(rest).ok()?;
    Some(tag.vlan_id.value())
}

/// The Ethernet/IPv4 ARP packet in Ethernet frame `frame`, if it carries one.
pub fn arp_of(frame: &[u8]) -> Option<ArpEthIpv4Packet> {
    match SlicedPacket::from_ethernet(frame).ok()?.net? {
        NetSlice::Arp(arp) => arp.to_packet().try_eth_ipv4().ok(),
        _ => None,
    }
}

/// The target of the neighbour solicitation in Ethernet frame `frame`, if it carries one.
pub fn solicitation_target(frame: &[u8]) -> Option<Ipv6Addr> {
    match SlicedPacket::from_ethernet(frame).ok()?.transport? {
        TransportSlice::Icmpv6(icmp) if icmp.icmp_type() == Icmpv6Type::NeighborSolicitation => {
            let target: [u8; 16] = icmp.payload().get(..16)?.try_into().ok()?;
            Some(target.into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use etherparse::ArpOperation;

    use super::*;
    use crate::packet::{
        ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_UDP, Ipv4, VXLAN_I, arp_request, eth, nd_frame,
        tagged, udp, vxlan_header, vxlan_packet,
    };

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn addr(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, last)
    }

    #[test]
    fn parse_vxlan_reads_back_what_vxlan_packet_built() {
        let inner = eth(B, A, ETH_P_ARP, &arp_request(A, addr(9), addr(8)));
        let ip = Ipv4 {
            ttl: 9,
            ..Ipv4::new(addr(1), addr(2), IPPROTO_UDP)
        };
        let pkt = vxlan_packet(
            B,
            A,
            ip,
            40000,
            4789,
            vxlan_header(VXLAN_I, 0xabcdef),
            &inner,
        );
        let v = parse_vxlan(&pkt).unwrap();
        assert_eq!((v.eth.source, v.eth.destination), (A.0, B.0));
        assert_eq!((v.src(), v.dst(), v.ip.time_to_live), (addr(1), addr(2), 9));
        assert_eq!((v.udp.source_port, v.udp.destination_port), (40000, 4789));
        assert_eq!(
            (v.flags(), v.reserved(), v.vni()),
            (VXLAN_I, [0; 4], 0xabcdef)
        );
        assert!(v.ip_checksum_ok() && v.ip_fully_read());
        assert_eq!(v.udp.checksum, 0);
        assert_eq!(v.inner, inner.as_slice());
        assert_eq!(eth_source(v.inner), Some(A));
        let arp = arp_of(v.inner).unwrap();
        assert_eq!(
            (arp.operation, arp.target_ipv4),
            (ArpOperation::REQUEST, [198, 18, 0, 8])
        );
    }

    #[test]
    fn parse_vxlan_refuses_what_is_not_vxlan_over_ipv4() {
        let inner = eth(B, A, ETH_P_ARP, &arp_request(A, addr(9), addr(8)));
        let pkt = vxlan_packet(
            B,
            A,
            Ipv4::new(addr(1), addr(2), 17),
            1,
            4789,
            [0; 8],
            &inner,
        );
        assert!(parse_vxlan(&tagged(&pkt, 5)).is_err(), "tagged");
        assert!(parse_vxlan(&pkt[..pkt.len() - 1]).is_err(), "cut short");
        let mut bad_udp_len = pkt.clone();
        bad_udp_len[14 + 20 + 5] -= 1;
        assert!(parse_vxlan(&bad_udp_len).is_err(), "UDP length");
        let plain_udp = eth(
            B,
            A,
            ETH_P_IP,
            &Ipv4::new(addr(1), addr(2), 17).build(&udp(addr(1), addr(2), 1, 4789, b"x")),
        );
        assert!(parse_vxlan(&plain_udp).is_err(), "no room for VXLAN");
        let mut reserved_flag = pkt.clone();
        reserved_flag[14 + 6] |= 0x80;
        assert!(!parse_vxlan(&reserved_flag).unwrap().ip_fully_read());
        assert_eq!(vlan_id(&tagged(&pkt, 5)), Some(5));
        assert_eq!(vlan_id(&pkt), None);
    }

    #[test]
    fn solicitation_target_finds_the_target() {
        let (s, t) = (
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7),
        );
        assert_eq!(
            solicitation_target(&nd_frame(135, B, A, s, s, t, 0, A)),
            Some(t)
        );
        assert_eq!(
            solicitation_target(&nd_frame(136, B, A, s, s, t, 0x60, A)),
            None
        );
        assert_eq!(solicitation_target(&eth(B, A, ETH_P_IPV6, &[])), None);
    }
}
