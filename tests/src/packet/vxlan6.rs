//! Building VXLAN over IPv6: outer Ethernet, IPv6 (no extension headers unless asked), UDP with a
//! correct, zero or deliberately wrong checksum, the VXLAN header and the inner frame; and the
//! malformed variants the datapath must refuse or pass (lengths that lie, a cut packet, an
//! extension header before UDP). etherparse writes the headers and computes the checksum.

use std::net::Ipv6Addr;

use etherparse::{IpNumber, Ipv6FlowLabel, Ipv6Header, UdpHeader};

use super::{ETH_P_IPV6, IPPROTO_UDP, Mac, VXLAN_LEN, eth, vxlan_raw};

/// Outer IPv6 header bytes.
pub const IPV6_LEN: usize = 40;
/// Where the UDP header starts in a VXLAN-over-IPv6 packet without extension headers.
pub const UDP6_OFFSET: usize = 14 + IPV6_LEN;
/// Outer Ethernet + IPv6 + UDP + VXLAN: where the inner frame starts, and what encapsulation
/// over IPv6 adds to a frame.
pub const INNER_OFFSET6: usize = UDP6_OFFSET + 8 + VXLAN_LEN;
/// IPv6 next header "destination options" (RFC 8200 section 4.6).
pub const IPPROTO_DSTOPTS: u8 = 60;

/// What the outer UDP checksum field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csum6 {
    /// The checksum over the IPv6 pseudo-header and the datagram.
    Correct,
    /// Zero: no checksum (RFC 6935), what `udp6zerocsumtx` senders write.
    Zero,
    /// The correct value with its lowest bit flipped: non-zero and wrong.
    Wrong,
}

/// A malformed VXLAN-over-IPv6 packet, each lie alone: the rest of the packet (and the UDP
/// checksum, where one is asked for) is right for what the headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed6 {
    /// The IPv6 payload length one byte shorter than the UDP datagram that follows (its UDP
    /// length and the frame agree).
    ShortPayloadLength,
    /// The IPv6 payload length one byte longer than the frame holds.
    LongPayloadLength,
    /// The IPv6 payload length far past the frame (1000 bytes more).
    FarPayloadLength,
    /// The UDP length one byte shorter than the IPv6 payload (the frame and the payload length
    /// agree).
    ShortUdpLength,
    /// The UDP length one byte longer than the IPv6 payload.
    LongUdpLength,
    /// The UDP length 8: a header and nothing after it, in a longer payload.
    EmptyUdpLength,
    /// The packet ends 4 bytes into the VXLAN header; payload and UDP lengths say so.
    TruncatedVxlanHeader,
    /// A whole VXLAN header but a 13-byte inner frame: no room for an Ethernet header.
    TruncatedInnerFrame,
    /// An 8-byte destination options header (next header 60, padding only) between IPv6 and
    /// UDP; everything else well-formed.
    ExtensionHeader,
}

impl Malformed6 {
    pub const ALL: [Self; 9] = [
        Self::ShortPayloadLength,
        Self::LongPayloadLength,
        Self::FarPayloadLength,
        Self::ShortUdpLength,
        Self::LongUdpLength,
        Self::EmptyUdpLength,
        Self::TruncatedVxlanHeader,
        Self::TruncatedInnerFrame,
        Self::ExtensionHeader,
    ];
}

/// The outer headers of a VXLAN-over-IPv6 packet. `build` fills the lengths and the checksum.
#[derive(Clone, Copy, Debug)]
pub struct Outer6 {
    pub eth_dst: Mac,
    pub eth_src: Mac,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
    pub hop_limit: u8,
    pub sport: u16,
    pub dport: u16,
    pub csum: Csum6,
}

impl Outer6 {
    /// Headers from `eth_src`/`src` port `sport` to `eth_dst`/`dst` port `dport`: traffic class
    /// and flow label 0, hop limit 64, a correct UDP checksum.
    pub fn new(
        eth_dst: Mac,
        eth_src: Mac,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        sport: u16,
        dport: u16,
    ) -> Self {
        Self {
            eth_dst,
            eth_src,
            src,
            dst,
            traffic_class: 0,
            flow_label: 0,
            hop_limit: 64,
            sport,
            dport,
            csum: Csum6::Correct,
        }
    }

    /// These headers with checksum `csum`.
    pub fn with_csum(self, csum: Csum6) -> Self {
        Self { csum, ..self }
    }

    /// The whole packet: these headers, VXLAN header `vx`, then `inner` (an Ethernet frame).
    pub fn build(&self, vx: [u8; VXLAN_LEN], inner: &[u8]) -> Vec<u8> {
        let payload = vxlan_raw(vx, inner);
        let mut udp = UdpHeader::without_ipv4_checksum(self.sport, self.dport, payload.len())
            .expect("UDP datagram too long");
        udp.checksum = self.checksum(&udp, &payload);
        let segment = [&udp.to_bytes()[..], &payload].concat();
        self.frame(IPPROTO_UDP, &segment, segment.len())
    }

    /// The packet with the lie `m` (see [`Malformed6`]): VXLAN header `vx`, then `inner`.
    pub fn build_malformed(&self, m: Malformed6, vx: [u8; VXLAN_LEN], inner: &[u8]) -> Vec<u8> {
        let good = self.build(vx, inner);
        let payload_len = good.len() - UDP6_OFFSET;
        match m {
            Malformed6::ShortPayloadLength => self.lengths(&good, payload_len - 1, payload_len),
            Malformed6::LongPayloadLength => self.lengths(&good, payload_len + 1, payload_len),
            Malformed6::FarPayloadLength => self.lengths(&good, payload_len + 1000, payload_len),
            Malformed6::ShortUdpLength => self.lengths(&good, payload_len, payload_len - 1),
            Malformed6::LongUdpLength => self.lengths(&good, payload_len, payload_len + 1),
            Malformed6::EmptyUdpLength => self.lengths(&good, payload_len, 8),
            Malformed6::TruncatedVxlanHeader => {
                let cut = &vxlan_raw(vx, &[])[..4];
                let mut udp = UdpHeader::without_ipv4_checksum(self.sport, self.dport, cut.len())
                    .expect("short");
                udp.checksum = self.checksum(&udp, cut);
                let segment = [&udp.to_bytes()[..], cut].concat();
                self.frame(IPPROTO_UDP, &segment, segment.len())
            }
            Malformed6::TruncatedInnerFrame => self.build(vx, &inner[..13.min(inner.len())]),
            Malformed6::ExtensionHeader => {
                // Next header UDP, length 0 (8 bytes in all), a PadN option of 4 bytes of data.
                let dstopts = [IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0];
                let segment = &good[UDP6_OFFSET..];
                let payload = [&dstopts[..], segment].concat();
                self.frame(IPPROTO_DSTOPTS, &payload, payload.len())
            }
        }
    }

    /// `good` (a packet [`Outer6::build`] made) with IPv6 payload length `ip_len` and UDP length
    /// `udp_len`, and, where a checksum is asked for, the one over the datagram the UDP length
    /// describes (as far as the frame holds it), so that only the lengths lie.
    fn lengths(&self, good: &[u8], ip_len: usize, udp_len: usize) -> Vec<u8> {
        let mut p = good.to_vec();
        p[14 + 4..14 + 6].copy_from_slice(&(ip_len as u16).to_be_bytes());
        let udp = UDP6_OFFSET;
        p[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        if self.csum != Csum6::Zero {
            let end = (udp + udp_len).min(p.len());
            let mut seg = p[udp..end].to_vec();
            // The pseudo-header's upper-layer length is the UDP length, even where the bytes
            // end sooner.
            seg.resize(udp_len.max(seg.len()), 0);
            let mut c = super::udp6_checksum(self.src, self.dst, &seg[..udp_len]);
            if self.csum == Csum6::Wrong {
                c ^= 1;
            }
            p[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    /// The UDP checksum field for `udp` (its checksum zero) carrying `payload`.
    fn checksum(&self, udp: &UdpHeader, payload: &[u8]) -> u16 {
        let correct = || {
            udp.calc_checksum_ipv6_raw(self.src.octets(), self.dst.octets(), payload)
                .expect("UDP datagram too long")
        };
        match self.csum {
            Csum6::Correct => correct(),
            Csum6::Zero => 0,
            Csum6::Wrong => correct() ^ 1,
        }
    }

    /// Outer Ethernet and IPv6 (next header `next`, payload length `payload_len`) around
    /// `payload`.
    fn frame(&self, next: u8, payload: &[u8], payload_len: usize) -> Vec<u8> {
        let ip = Ipv6Header {
            traffic_class: self.traffic_class,
            flow_label: Ipv6FlowLabel::try_new(self.flow_label).expect("a 20-bit flow label"),
            payload_length: u16::try_from(payload_len).expect("IPv6 payload too long"),
            next_header: IpNumber(next),
            hop_limit: self.hop_limit,
            source: self.src.octets(),
            destination: self.dst.octets(),
        };
        let packet = [&ip.to_bytes()[..], payload].concat();
        eth(self.eth_dst, self.eth_src, ETH_P_IPV6, &packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{
        ETH_P_ARP, Udp6Checksum, VXLAN_I, arp_request, check_udp6, parse_vxlan6, vxlan_header,
    };

    const A: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const B: Mac = Mac([2, 0, 0, 0, 0, 2]);
    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    fn inner() -> Vec<u8> {
        let ip = |n| std::net::Ipv4Addr::new(192, 0, 2, n);
        eth(B, A, ETH_P_ARP, &arp_request(A, ip(2), ip(1)))
    }

    fn outer() -> Outer6 {
        Outer6::new(B, A, SRC, DST, 54321, 4789)
    }

    #[test]
    fn build_writes_every_field_and_a_valid_checksum() {
        let o = Outer6 {
            traffic_class: 0xb8,
            flow_label: 0xabcde,
            hop_limit: 9,
            ..outer()
        };
        let inner = inner();
        let p = o.build(vxlan_header(VXLAN_I, 0x123456), &inner);
        assert_eq!(p.len(), inner.len() + INNER_OFFSET6);
        assert_eq!(&p[12..14], &ETH_P_IPV6.to_be_bytes());
        // Version 6, traffic class 0xb8, flow label 0xabcde.
        assert_eq!(&p[14..18], &[0x6b, 0x8a, 0xbc, 0xde]);
        let payload_len = (inner.len() + 16) as u16;
        assert_eq!(&p[18..20], &payload_len.to_be_bytes());
        assert_eq!((p[20], p[21]), (IPPROTO_UDP, 9));
        assert_eq!(&p[22..38], &SRC.octets());
        assert_eq!(&p[38..54], &DST.octets());
        assert_eq!(&p[54..58], &[0xd4, 0x31, 0x12, 0xb5]);
        assert_eq!(&p[58..60], &payload_len.to_be_bytes());
        assert_eq!(check_udp6(SRC, DST, &p[54..]), Udp6Checksum::Valid);
        assert_eq!(&p[62..70], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        assert_eq!(&p[70..], &inner[..]);
    }

    #[test]
    fn zero_and_wrong_checksums() {
        let inner = inner();
        let vx = vxlan_header(VXLAN_I, 100);
        let zero = outer().with_csum(Csum6::Zero).build(vx, &inner);
        assert_eq!(check_udp6(SRC, DST, &zero[54..]), Udp6Checksum::Zero);
        let wrong = outer().with_csum(Csum6::Wrong).build(vx, &inner);
        assert!(matches!(
            check_udp6(SRC, DST, &wrong[54..]),
            Udp6Checksum::Wrong { .. }
        ));
        let good = outer().build(vx, &inner);
        // Only the checksum field differs.
        assert_eq!(zero[..60], good[..60]);
        assert_eq!(zero[62..], good[62..]);
        assert_eq!(wrong[62..], good[62..]);
    }

    #[test]
    fn malformed_variants_lie_only_where_they_say() {
        let inner = inner();
        let vx = vxlan_header(VXLAN_I, 100);
        let good = outer().build(vx, &inner);
        let plen = good.len() - UDP6_OFFSET;
        let lens = |p: &[u8]| {
            (
                usize::from(u16::from_be_bytes([p[18], p[19]])),
                usize::from(u16::from_be_bytes([p[58], p[59]])),
            )
        };
        let m = |v| outer().build_malformed(v, vx, &inner);
        for (v, want) in [
            (Malformed6::ShortPayloadLength, (plen - 1, plen)),
            (Malformed6::LongPayloadLength, (plen + 1, plen)),
            (Malformed6::FarPayloadLength, (plen + 1000, plen)),
            (Malformed6::ShortUdpLength, (plen, plen - 1)),
            (Malformed6::LongUdpLength, (plen, plen + 1)),
            (Malformed6::EmptyUdpLength, (plen, 8)),
        ] {
            let p = m(v);
            assert_eq!(p.len(), good.len(), "{v:?}: the frame is whole");
            assert_eq!(lens(&p), want, "{v:?}");
            assert_eq!(p[62..], good[62..], "{v:?}: the rest as built");
            assert!(parse_vxlan6(&p).is_err(), "{v:?} parses as good VXLAN");
        }
        // The checksum matches what the short UDP length describes: only the length lies.
        let p = m(Malformed6::ShortUdpLength);
        let seg = &p[54..54 + plen - 1];
        assert_eq!(check_udp6(SRC, DST, seg), Udp6Checksum::Valid);

        let p = m(Malformed6::TruncatedVxlanHeader);
        assert_eq!(p.len(), UDP6_OFFSET + 8 + 4);
        assert_eq!(lens(&p), (12, 12));
        assert_eq!(check_udp6(SRC, DST, &p[54..]), Udp6Checksum::Valid);
        let p = m(Malformed6::TruncatedInnerFrame);
        assert_eq!(p.len(), INNER_OFFSET6 + 13);
        assert_eq!(check_udp6(SRC, DST, &p[54..]), Udp6Checksum::Valid);

        let p = m(Malformed6::ExtensionHeader);
        assert_eq!(p.len(), good.len() + 8);
        assert_eq!((p[20], lens(&p).0), (IPPROTO_DSTOPTS, plen + 8));
        assert_eq!(p[54], IPPROTO_UDP, "the options header leads to UDP");
        assert_eq!(p[62..], good[54..], "then the datagram as built");
        assert_eq!(check_udp6(SRC, DST, &p[62..]), Udp6Checksum::Valid);
        assert!(parse_vxlan6(&p).is_err());
    }
}
