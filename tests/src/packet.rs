//! A small builder of test packets: Ethernet, ARP, IPv4, IPv6, UDP, TCP and VXLAN, with correct
//! IPv4 header and UDP/TCP checksums, plus the RFC 1071 checksum the tests use to verify what
//! the datapath wrote. Builders nest: each takes its payload and returns the bytes with its
//! header in front.

use std::net::{Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// IPv4 "don't fragment" and "more fragments" bits of the flags/fragment-offset field.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;
/// The VXLAN I flag (RFC 7348): the VNI field is valid.
pub const VXLAN_I: u8 = 0x08;

/// The Internet checksum (RFC 1071) of `data`: the ones' complement of the ones' complement sum
/// of its 16-bit big-endian words (an odd last byte is padded with zero).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum_words(data, 0))
}

fn sum_words(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// An Ethernet II frame.
pub fn eth(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(14 + payload.len());
    p.extend_from_slice(&dst);
    p.extend_from_slice(&src);
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv4 header without options. `build` fills total length and header checksum.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub tos: u8,
    pub id: u16,
    /// Flags and fragment offset (e.g. [`IP_DF`], or [`IP_MF`] | offset in 8-byte units).
    pub frag: u16,
}

impl Ipv4 {
    /// A header with TTL 64, DF set, id 0 and tos 0.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Self {
        Self {
            src,
            dst,
            proto,
            ttl: 64,
            tos: 0,
            id: 0,
            frag: IP_DF,
        }
    }

    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let tot_len = u16::try_from(20 + payload.len()).expect("IPv4 packet too long");
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[1] = self.tos;
        h[2..4].copy_from_slice(&tot_len.to_be_bytes());
        h[4..6].copy_from_slice(&self.id.to_be_bytes());
        h[6..8].copy_from_slice(&self.frag.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let check = checksum(&h);
        h[10..12].copy_from_slice(&check.to_be_bytes());
        let mut p = h.to_vec();
        p.extend_from_slice(payload);
        p
    }
}

/// The IPv4 pseudo-header sum of a `proto` segment of `len` bytes.
fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut ph = Vec::with_capacity(12);
    ph.extend_from_slice(&src.octets());
    ph.extend_from_slice(&dst.octets());
    ph.push(0);
    ph.push(proto);
    ph.extend_from_slice(&(len as u16).to_be_bytes());
    sum_words(&ph, 0)
}

/// A UDP datagram with its checksum computed over the IPv4 pseudo-header.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = udp_no_checksum(sport, dport, payload);
    let sum = sum_words(&p, pseudo_sum(src, dst, IPPROTO_UDP, p.len()));
    // A computed zero is sent as all ones: zero means "no checksum" in UDP over IPv4.
    let check = match !fold(sum) {
        0 => 0xffff,
        c => c,
    };
    p[6..8].copy_from_slice(&check.to_be_bytes());
    p
}

/// A UDP datagram with checksum zero (as VXLAN senders do over IPv4).
pub fn udp_no_checksum(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("UDP datagram too long");
    let mut p = Vec::with_capacity(8 + payload.len());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram over IPv6 with its (mandatory) checksum over the IPv6 pseudo-header.
pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = udp_no_checksum(sport, dport, payload);
    let mut ph = Vec::with_capacity(40);
    ph.extend_from_slice(&src.octets());
    ph.extend_from_slice(&dst.octets());
    ph.extend_from_slice(&(p.len() as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, IPPROTO_UDP]);
    let check = match !fold(sum_words(&p, sum_words(&ph, 0))) {
        0 => 0xffff,
        c => c,
    };
    p[6..8].copy_from_slice(&check.to_be_bytes());
    p
}

/// A TCP segment (20-byte header, flags `flags`, window 65535) with its checksum.
pub fn tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + payload.len());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes()); // seq
    p.extend_from_slice(&0u32.to_be_bytes()); // ack
    p.push(5 << 4); // data offset: 5 words
    p.push(flags);
    p.extend_from_slice(&0xffffu16.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    p.extend_from_slice(payload);
    let check = !fold(sum_words(&p, pseudo_sum(src, dst, IPPROTO_TCP, p.len())));
    p[16..18].copy_from_slice(&check.to_be_bytes());
    p
}

/// A VXLAN header (RFC 7348) with `flags` and 24-bit `vni`, reserved fields zero, then `payload`.
pub fn vxlan(flags: u8, vni: u32, payload: &[u8]) -> Vec<u8> {
    assert!(vni <= 0x00ff_ffff, "VNI {vni:#x} does not fit 24 bits");
    let v = vni.to_be_bytes();
    vxlan_raw([flags, 0, 0, 0, v[1], v[2], v[3], 0], payload)
}

/// A VXLAN header given byte by byte (to set reserved bits), then `payload`.
pub fn vxlan_raw(header: [u8; 8], payload: &[u8]) -> Vec<u8> {
    let mut p = header.to_vec();
    p.extend_from_slice(payload);
    p
}

/// The payload of an ARP request (Ethernet/IPv4) from `sha`/`spa` for `tpa`.
pub fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp(1, sha, spa, [0; 6], tpa)
}

/// An ARP reply: `sha` has `spa`, to `tha` at `tpa`.
pub fn arp_reply(sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    arp(2, sha, spa, tha, tpa)
}

/// An Ethernet/IPv4 ARP packet with operation `op`.
fn arp(op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(28);
    p.extend_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    p.extend_from_slice(&ETH_P_IP.to_be_bytes());
    p.push(6);
    p.push(4);
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

/// An IPv6 header (no extension headers, hop limit 64) followed by `payload`.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("IPv6 payload too long");
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&len.to_be_bytes());
    p.push(next_header);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A complete VXLAN-over-IPv4 packet: outer Ethernet `outer_dst` ← `outer_src`, IPv4 `ip`
/// (whose proto is forced to UDP), UDP `sport` → `dport` without checksum, VXLAN header
/// `vxlan_hdr`, then `inner` (an Ethernet frame, or anything for malformed cases).
pub fn vxlan_packet(
    outer_dst: Mac,
    outer_src: Mac,
    ip: Ipv4,
    sport: u16,
    dport: u16,
    vxlan_hdr: [u8; 8],
    inner: &[u8],
) -> Vec<u8> {
    let ip = Ipv4 {
        proto: IPPROTO_UDP,
        ..ip
    };
    eth(
        outer_dst,
        outer_src,
        ETH_P_IP,
        &ip.build(&udp_no_checksum(sport, dport, &vxlan_raw(vxlan_hdr, inner))),
    )
}

/// The VXLAN header bytes for `flags` and `vni`, reserved fields zero.
pub fn vxlan_header(flags: u8, vni: u32) -> [u8; 8] {
    vxlan(flags, vni, &[]).try_into().unwrap()
}

/// An ICMPv6 neighbour discovery frame (RFC 4861) from `src_mac`/`src` to `dst_mac`/`dst`:
/// solicitation (135) or advertisement (136) for `target`, hop limit 255, with a link-layer
/// address option for `option_mac` (source for a solicitation, target for an advertisement)
/// and a valid checksum. `flags` is the first byte after the checksum (advertisements: 0x60 for
/// solicited + override).
#[allow(clippy::too_many_arguments)]
pub fn nd_frame(
    kind: u8,
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    option_mac: Mac,
) -> Vec<u8> {
    let mut msg = vec![kind, 0, 0, 0, flags, 0, 0, 0];
    msg.extend_from_slice(&target.octets());
    msg.extend_from_slice(&[if kind == 135 { 1 } else { 2 }, 1]);
    msg.extend_from_slice(&option_mac);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&msg);
    let sum = checksum(&pseudo);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[58, 255]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&msg);
    eth(dst_mac, src_mac, ETH_P_IPV6, &ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_checksums_to_zero() {
        let ip = Ipv4::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 17);
        let p = ip.build(&[1, 2, 3]);
        assert_eq!(p.len(), 23);
        assert_eq!(&p[2..4], &23u16.to_be_bytes());
        // A correct header sums to all ones, so its checksum over itself is zero.
        assert_eq!(checksum(&p[..20]), 0);
    }

    #[test]
    fn udp_checksum_verifies() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let p = udp(s, d, 1234, 53, b"hello");
        assert_eq!(
            fold(sum_words(&p, pseudo_sum(s, d, IPPROTO_UDP, p.len()))),
            0xffff
        );
    }

    #[test]
    fn vxlan_header_layout() {
        assert_eq!(
            vxlan_header(VXLAN_I, 0xABCDEF),
            [0x08, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0]
        );
    }
}
