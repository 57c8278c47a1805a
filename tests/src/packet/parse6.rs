//! Reading VXLAN over IPv6 as the datapath writes it or a capture saw it: every outer field, and
//! the UDP checksum judged by [`check_udp6`](super::check_udp6).

use std::net::Ipv6Addr;

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv6Header, UdpHeader};

use super::{Mac, Udp6Checksum, VXLAN_LEN, check_udp6};

/// An Ethernet/IPv6/UDP/VXLAN packet, its headers as etherparse read them.
#[derive(Debug)]
pub struct Vxlan6<'a> {
    pub eth: Ethernet2Header,
    pub ip: Ipv6Header,
    pub udp: UdpHeader,
    /// The VXLAN header (RFC 7348): flags, 3 reserved bytes, the 24-bit VNI, 1 reserved byte.
    pub header: [u8; VXLAN_LEN],
    /// The frame after the VXLAN header, to the end of the UDP datagram.
    pub inner: &'a [u8],
    /// The first 4 bytes of the IPv6 header (version, traffic class, flow label) as received.
    pub first_word: [u8; 4],
    /// Bytes after the IPv6 packet (Ethernet padding, none in what vtep sends).
    pub trailing: usize,
    /// The UDP header and payload, for the checksum.
    segment: &'a [u8],
}

/// Parses `frame` as outer Ethernet (untagged), IPv6 without extension headers, UDP and VXLAN.
/// Fails, saying why, when it is not: another ethertype or IP version, a next header other
/// than UDP, a payload length past the frame, a UDP length other than the payload length, or
/// too short for a VXLAN header and an inner Ethernet header.
pub fn parse_vxlan6(frame: &[u8]) -> Result<Vxlan6<'_>, String> {
    let (eth, rest) = Ethernet2Header::from_slice(frame).map_err(|e| e.to_string())?;
    if eth.ether_type != EtherType::IPV6 {
        return Err(format!(
            "outer ethertype {:#06x}, not IPv6",
            eth.ether_type.0
        ));
    }
    if rest.first().map(|b| b >> 4) != Some(6) {
        return Err("outer IP version is not 6".into());
    }
    let (ip, after) = Ipv6Header::from_slice(rest).map_err(|e| e.to_string())?;
    if ip.next_header != IpNumber::UDP {
        return Err(format!("next header {}, not UDP", ip.next_header.0));
    }
    let payload_len = usize::from(ip.payload_length);
    if payload_len > after.len() {
        return Err(format!(
            "payload length {payload_len} past the {} bytes after the IPv6 header",
            after.len()
        ));
    }
    let (payload, trailing) = after.split_at(payload_len);
    let (udp, udp_payload) = UdpHeader::from_slice(payload).map_err(|e| e.to_string())?;
    if usize::from(udp.length) != payload_len {
        return Err(format!(
            "UDP length {} != IPv6 payload length {payload_len}",
            udp.length
        ));
    }
    if udp_payload.len() < VXLAN_LEN + Ethernet2Header::LEN {
        return Err(format!(
            "{} bytes after UDP: too short for VXLAN",
            udp_payload.len()
        ));
    }
    let (header, inner) = udp_payload.split_at(VXLAN_LEN);
    Ok(Vxlan6 {
        eth,
        ip,
        udp,
        header: header.try_into().expect("8 bytes"),
        inner,
        first_word: rest[..4].try_into().expect("4 bytes"),
        trailing: trailing.len(),
        segment: payload,
    })
}

impl Vxlan6<'_> {
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

    pub fn src(&self) -> Ipv6Addr {
        self.ip.source.into()
    }

    pub fn dst(&self) -> Ipv6Addr {
        self.ip.destination.into()
    }

    pub fn src_mac(&self) -> Mac {
        Mac(self.eth.source)
    }

    pub fn dst_mac(&self) -> Mac {
        Mac(self.eth.destination)
    }

    /// The IP version field as received (etherparse only reads version 6 as IPv6).
    pub fn version(&self) -> u8 {
        self.first_word[0] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        self.ip.traffic_class
    }

    pub fn flow_label(&self) -> u32 {
        self.ip.flow_label.value()
    }

    /// What the UDP checksum field says, judged over the pseudo-header and the datagram.
    pub fn checksum(&self) -> Udp6Checksum {
        check_udp6(self.src(), self.dst(), self.segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Csum6, ETH_P_ARP, Outer6, VXLAN_I, arp_request, eth, vxlan_header};

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn addr(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)
    }

    #[test]
    fn parse_vxlan6_reads_back_what_outer6_built() {
        let ip = |n| std::net::Ipv4Addr::new(192, 0, 2, n);
        let inner = eth(B, A, ETH_P_ARP, &arp_request(A, ip(1), ip(2)));
        let o = Outer6 {
            flow_label: 0x54321,
            traffic_class: 4,
            hop_limit: 17,
            ..Outer6::new(B, A, addr(1), addr(2), 40000, 8472)
        };
        let p = o.build(vxlan_header(VXLAN_I, 0xabcdef), &inner);
        let v = parse_vxlan6(&p).unwrap();
        assert_eq!((v.src_mac(), v.dst_mac()), (A, B));
        assert_eq!((v.src(), v.dst()), (addr(1), addr(2)));
        assert_eq!(
            (v.version(), v.traffic_class(), v.flow_label()),
            (6, 4, 0x54321)
        );
        assert_eq!(v.ip.hop_limit, 17);
        assert_eq!((v.udp.source_port, v.udp.destination_port), (40000, 8472));
        assert_eq!(usize::from(v.ip.payload_length), inner.len() + 16);
        assert_eq!(v.ip.payload_length, v.udp.length);
        assert_eq!(
            (v.flags(), v.reserved(), v.vni()),
            (VXLAN_I, [0; 4], 0xabcdef)
        );
        assert_eq!(v.checksum(), Udp6Checksum::Valid);
        assert_eq!((v.inner, v.trailing), (&inner[..], 0));

        let zero = o
            .with_csum(Csum6::Zero)
            .build(vxlan_header(VXLAN_I, 1), &inner);
        assert_eq!(parse_vxlan6(&zero).unwrap().checksum(), Udp6Checksum::Zero);
        let wrong = o
            .with_csum(Csum6::Wrong)
            .build(vxlan_header(VXLAN_I, 1), &inner);
        assert!(matches!(
            parse_vxlan6(&wrong).unwrap().checksum(),
            Udp6Checksum::Wrong { .. }
        ));
        // Bytes after the packet are counted, not read as the inner frame.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 6]);
        let v = parse_vxlan6(&padded).unwrap();
        assert_eq!((v.inner, v.trailing), (&inner[..], 6));
    }

    #[test]
    fn parse_vxlan6_refuses_what_is_not_vxlan_over_ipv6() {
        let ip = |n| std::net::Ipv4Addr::new(192, 0, 2, n);
        let inner = eth(B, A, ETH_P_ARP, &arp_request(A, ip(1), ip(2)));
        let p = Outer6::new(B, A, addr(1), addr(2), 1, 4789).build([0; 8], &inner);
        assert!(parse_vxlan6(&p[..p.len() - 1]).is_err(), "cut short");
        let mut v4 = p.clone();
        v4[14] = 0x45;
        assert!(parse_vxlan6(&v4).is_err(), "version 4");
        assert!(
            parse_vxlan6(&crate::packet::vxlan_packet(
                B,
                A,
                crate::packet::Ipv4::new(ip(1), ip(2), 17),
                1,
                4789,
                [0; 8],
                &inner
            ))
            .is_err(),
            "VXLAN over IPv4"
        );
    }
}
