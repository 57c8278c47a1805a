//! The UDP checksum over IPv6 (RFC 8200 section 8.1, RFC 768), computed here from the bytes with
//! no packet crate: the checker the IPv6 tests judge the datapath's outer checksums with, so it
//! shares no code with the builder (etherparse) that makes the packets vtep receives. Its unit
//! tests hold it against a VXLAN packet the kernel's vxlan driver sent, and against etherparse.
//! And the checksum vtep writes by the local checksum offload rule ([`lco_udp6_checksum`]), which
//! differs from the one over the bytes where the inner frame's own checksum is not right: the
//! fuzzer's oracle for mutated inner frames.

use std::net::Ipv6Addr;

use super::IPPROTO_UDP;

/// What the UDP checksum field of `segment` (a UDP header and its payload, as many bytes as
/// the header's length field says) from `src` to `dst` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Udp6Checksum {
    /// Zero: no checksum (allowed over IPv6 only for tunnels, RFC 6935/6936).
    Zero,
    /// Non-zero, and the 16-bit one's-complement sum over the pseudo-header (source,
    /// destination, upper-layer length, next header 17) and the segment, field included, is all
    /// ones.
    Valid,
    /// Non-zero and wrong; `want` is what the field should hold.
    Wrong { found: u16, want: u16 },
}

/// The 16-bit one's-complement sum (RFC 1071) of the IPv6 pseudo-header for a UDP segment of
/// `len` bytes from `src` to `dst`, and of `data`, folded but not complemented. An odd-length
/// `data` is padded with a zero byte.
fn sum(src: Ipv6Addr, dst: Ipv6Addr, len: u32, data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u64::from);
            acc += hi | lo;
        }
    };
    words(&src.octets());
    words(&dst.octets());
    words(&len.to_be_bytes());
    words(&[0, 0, 0, IPPROTO_UDP]);
    words(data);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field `segment` (a UDP header and payload, its own field taken as zero) from
/// `src` to `dst` should carry: the complement of the sum over the pseudo-header and the segment,
/// with a result of zero sent as 0xffff (RFC 768; zero means "none"). Panics when `segment` is
/// shorter than a UDP header.
pub fn udp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, segment: &[u8]) -> u16 {
    assert!(segment.len() >= 8, "a UDP segment has an 8-byte header");
    let mut zeroed = segment.to_vec();
    zeroed[6..8].copy_from_slice(&[0, 0]);
    match !sum(src, dst, segment.len() as u32, &zeroed) {
        0 => 0xffff,
        c => c,
    }
}

/// Judges the checksum field of `segment` (a UDP header and payload, the upper-layer length
/// being `segment.len()`) from `src` to `dst`. Panics when `segment` is shorter than a UDP
/// header.
pub fn check_udp6(src: Ipv6Addr, dst: Ipv6Addr, segment: &[u8]) -> Udp6Checksum {
    assert!(segment.len() >= 8, "a UDP segment has an 8-byte header");
    let found = u16::from_be_bytes([segment[6], segment[7]]);
    if found == 0 {
        return Udp6Checksum::Zero;
    }
    if sum(src, dst, segment.len() as u32, segment) == 0xffff {
        return Udp6Checksum::Valid;
    }
    Udp6Checksum::Wrong {
        found,
        want: udp6_checksum(src, dst, segment),
    }
}

/// The UDP checksum field vtep writes over IPv6 for the VXLAN `segment` (UDP header, VXLAN
/// header, inner Ethernet frame; upper-layer length `segment.len()`) from `src` to `dst`, by the
/// rule of the kernel's local checksum offload (`lco_csum`) that vtep-ebpf's `outer_csum.rs`
/// follows, written here from that rule and not from its code: where the inner frame's headers
/// describe its L4 sum, the L4 bytes are taken as summing to what a right checksum makes them
/// sum to (a TCP, UDP or ICMPv6 segment to the complement of its pseudo header, an ICMP message
/// to zero), whatever they hold; the other bytes are summed as they are. So the field is right
/// over the bytes whenever the inner checksum is right, and right for the frame as it will be
/// once an offload fills a pending inner checksum in. The headers describe the sum (see
/// [`lco_l4`]) of an untagged inner IPv4 packet without options, not a fragment, or IPv6 packet
/// (whatever its version field), that ends within the frame, carrying TCP, UDP with a non-zero
/// checksum, ICMP (IPv4) or ICMPv6 (IPv6). Panics when `segment` is shorter than a UDP and a
/// VXLAN header.
pub fn lco_udp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, segment: &[u8]) -> u16 {
    const INNER: usize = 16;
    assert!(
        segment.len() >= INNER,
        "a VXLAN datagram has 16 bytes of headers"
    );
    let mut bytes = segment.to_vec();
    bytes[6..8].copy_from_slice(&[0, 0]);
    let mut extra = 0u32;
    if let Some((range, l4_sum)) = lco_l4(&segment[INNER..]) {
        bytes[INNER + range.start..INNER + range.end].fill(0);
        extra = u32::from(l4_sum);
    }
    let mut acc = u32::from(sum(src, dst, segment.len() as u32, &bytes)) + extra;
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    match !(acc as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// Where the L4 bytes of the inner Ethernet frame `frame` are and what they sum to (folded, not
/// complemented) when their own checksum is right, if the headers describe it as
/// [`lco_udp6_checksum`] says; `None` for a frame summed byte by byte.
pub fn lco_l4(frame: &[u8]) -> Option<(std::ops::Range<usize>, u16)> {
    const ICMP: u8 = 1;
    const TCP: u8 = 6;
    const ICMPV6: u8 = 58;
    let be = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    // TCP, or UDP whose checksum is not zero (an IPv4 sender may leave it out), at `l4`.
    let checksummed = |proto: u8, l4: usize| match proto {
        TCP => Some(()),
        IPPROTO_UDP => frame
            .get(l4 + 6..l4 + 8)
            .filter(|c| *c != [0, 0])
            .map(|_| ()),
        _ => None,
    };
    // The sum of a right segment: the complement of its pseudo header's.
    let complement_of_pseudo = |addrs: &[u8], len: u16, proto: u8| {
        let mut acc: u32 = addrs.chunks(2).map(|w| u32::from(be(w))).sum();
        acc += u32::from(len) + u32::from(proto);
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    };
    match be(frame.get(12..14)?) {
        0x0800 => {
            let h = frame.get(14..24)?;
            if h[0] != 0x45 || be(&h[6..8]) & 0x3fff != 0 {
                return None;
            }
            let total = be(&h[2..4]);
            let l4_len = total.checked_sub(20)?;
            let end = 14 + usize::from(total);
            if end > frame.len() {
                return None;
            }
            let proto = h[9];
            if proto == ICMP {
                // A right ICMP checksum makes the message sum to (negative) zero.
                return Some((34..end, 0xffff));
            }
            checksummed(proto, 34)?;
            Some((34..end, complement_of_pseudo(&frame[26..34], l4_len, proto)))
        }
        0x86dd => {
            let h = frame.get(14..22)?;
            let len = be(&h[4..6]);
            let end = 54 + usize::from(len);
            if end > frame.len() {
                return None;
            }
            let next = h[6];
            if next != ICMPV6 {
                checksummed(next, 54)?;
            }
            Some((54..end, complement_of_pseudo(&frame[22..54], len, next)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use etherparse::UdpHeader;

    use super::*;

    /// An ICMP echo request (192.0.2.1 -> 192.0.2.2, 8 bytes of data) in VNI 100 that the
    /// kernel's vxlan driver (6.18, `local 2001:db8::1 remote 2001:db8::2 dstport 4789`,
    /// checksums on by default) sent, captured with tcpdump on its veth underlay with tx
    /// checksum offload off (so the field holds the final checksum; tcpdump: "udp sum ok").
    const KERNEL_VXLAN6: &str = "022b201531a2c2427aab67b186dd600000000042114020010db8000000000000\
        00000000000120010db80000000000000000000000029d2a12b50042791308000000000064000200000002\
        010200000001010800450000248ae9400040012becc0000201c00002020800cb2d20c10001000102030405\
        0607";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// The kernel's packet: Ethernet 14 + IPv6 40, then the UDP segment to its end.
    fn kernel_segment() -> Vec<u8> {
        let frame = hex(KERNEL_VXLAN6);
        assert_eq!(frame.len(), 120);
        assert_eq!(frame[14 + 6], IPPROTO_UDP, "next header");
        assert_eq!(frame[22..38], SRC.octets());
        assert_eq!(frame[38..54], DST.octets());
        frame[54..].to_vec()
    }

    #[test]
    fn the_kernels_vxlan6_checksum_is_valid_and_recomputed_exactly() {
        let seg = kernel_segment();
        assert_eq!(u16::from_be_bytes([seg[4], seg[5]]) as usize, seg.len());
        assert_eq!(check_udp6(SRC, DST, &seg), Udp6Checksum::Valid);
        assert_eq!(
            udp6_checksum(SRC, DST, &seg),
            u16::from_be_bytes([seg[6], seg[7]]),
            "the field the kernel wrote"
        );
    }

    #[test]
    fn any_change_under_the_checksum_is_caught() {
        let seg = kernel_segment();
        let want = u16::from_be_bytes([seg[6], seg[7]]);
        // A payload bit (the inner ICMP data), a port, the length field.
        for (byte, bit) in [(seg.len() - 1, 0x01), (0, 0x80), (5, 0x02)] {
            let mut bad = seg.clone();
            bad[byte] ^= bit;
            assert!(
                matches!(check_udp6(SRC, DST, &bad), Udp6Checksum::Wrong { .. }),
                "byte {byte} changed"
            );
        }
        // The pseudo-header: another source or destination.
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);
        assert_eq!(
            check_udp6(other, DST, &seg),
            Udp6Checksum::Wrong {
                found: want,
                want: udp6_checksum(other, DST, &seg)
            }
        );
        assert!(matches!(
            check_udp6(SRC, other, &seg),
            Udp6Checksum::Wrong { .. }
        ));
        let mut zero = seg.clone();
        zero[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(check_udp6(SRC, DST, &zero), Udp6Checksum::Zero);
    }

    #[test]
    fn agrees_with_etherparse_on_odd_and_even_lengths() {
        for len in [0usize, 1, 2, 7, 64, 1001] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut h = UdpHeader::without_ipv4_checksum(54321, 4789, len).unwrap();
            h.checksum = h
                .calc_checksum_ipv6_raw(SRC.octets(), DST.octets(), &payload)
                .unwrap();
            let seg = [&h.to_bytes()[..], &payload].concat();
            assert_eq!(udp6_checksum(SRC, DST, &seg), h.checksum, "{len} bytes");
            assert_eq!(check_udp6(SRC, DST, &seg), Udp6Checksum::Valid);
        }
    }

    /// The VXLAN datagram (UDP header on) around inner frame `inner`, checksum right.
    fn vxlan_segment(inner: &[u8]) -> Vec<u8> {
        let m = crate::packet::Mac([2, 0, 0, 0, 0, 1]);
        let vx = crate::packet::vxlan_header(crate::packet::VXLAN_I, 100);
        crate::packet::Outer6::new(m, m, SRC, DST, 54321, 4789).build(vx, inner)[54..].to_vec()
    }

    /// Inner frames of every kind the rule tells apart, each with its checksums right, the
    /// offset of its L4 checksum field (where it has one), and whether the headers describe its
    /// sum.
    fn inner_frames() -> Vec<(&'static str, Vec<u8>, usize, bool)> {
        use crate::packet::{
            ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IP_MF, IPPROTO_ICMP, IPPROTO_TCP, Ipv4, eth,
            icmp_echo_request, ipv6, nd_frame, tagged, tcp, udp, udp_no_checksum, udp6,
        };
        let (a, b) = (
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            std::net::Ipv4Addr::new(10, 0, 0, 2),
        );
        let (a6, b6) = (
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
        );
        let m = crate::packet::Mac([2, 0, 0, 0, 0, 2]);
        let v4 = |proto, l4: &[u8]| eth(m, m, ETH_P_IP, &Ipv4::new(a, b, proto).build(l4));
        let tcp6 = {
            let mut h = etherparse::TcpHeader::new(40000, 5001, 1, 0xffff);
            h.checksum = h
                .calc_checksum_ipv6_raw(a6.octets(), b6.octets(), b"odd")
                .unwrap();
            [&h.to_bytes()[..], b"odd"].concat()
        };
        let mut first_fragment = Ipv4 {
            frag: IP_MF,
            ..Ipv4::new(a, b, IPPROTO_UDP)
        }
        .build(&udp(a, b, 1, 2, b"of a datagram"));
        first_fragment = eth(m, m, ETH_P_IP, &first_fragment);
        let tcp4 = v4(IPPROTO_TCP, &tcp(a, b, 40000, 5001, 0x18, b"even"));
        vec![
            ("UDP", v4(IPPROTO_UDP, &udp(a, b, 1, 2, b"odd")), 40, true),
            ("TCP", tcp4.clone(), 50, true),
            (
                "ICMP",
                v4(IPPROTO_ICMP, &icmp_echo_request(1, 2, b"odd")),
                36,
                true,
            ),
            (
                "IPv6 UDP",
                eth(
                    m,
                    m,
                    ETH_P_IPV6,
                    &ipv6(a6, b6, IPPROTO_UDP, &udp6(a6, b6, 1, 2, b"x")),
                ),
                60,
                true,
            ),
            (
                "IPv6 TCP",
                eth(m, m, ETH_P_IPV6, &ipv6(a6, b6, IPPROTO_TCP, &tcp6)),
                70,
                true,
            ),
            ("ICMPv6", nd_frame(136, m, m, a6, b6, a6, 0x60, m), 56, true),
            (
                "UDP without checksum",
                v4(IPPROTO_UDP, &udp_no_checksum(1, 2, b"odd")),
                40,
                false,
            ),
            ("first fragment", first_fragment, 40, false),
            ("tagged TCP", tagged(&tcp4, 5), 54, false),
            (
                "not IP",
                eth(m, m, ETH_P_8021Q + 1, b"some payload"),
                20,
                false,
            ),
        ]
    }

    #[test]
    fn lco_is_the_checksum_over_the_bytes_when_the_inner_checksum_is_right() {
        for (what, inner, _, described) in inner_frames() {
            let seg = vxlan_segment(&inner);
            assert_eq!(lco_l4(&inner).is_some(), described, "{what}");
            assert_eq!(
                lco_udp6_checksum(SRC, DST, &seg),
                udp6_checksum(SRC, DST, &seg),
                "{what}"
            );
            // With a byte after the IP packet (Ethernet padding), at an odd offset for some.
            let padded = [&inner[..], &[0xab]].concat();
            let seg = vxlan_segment(&padded);
            assert_eq!(
                lco_udp6_checksum(SRC, DST, &seg),
                udp6_checksum(SRC, DST, &seg),
                "{what}, padded"
            );
        }
    }

    /// A wrong inner checksum (a pending one, as a local sender leaves it, or a corrupted one):
    /// where the headers describe the sum, the outer checksum is the one of the frame with the
    /// inner checksum right; elsewhere the one over the bytes as they are.
    #[test]
    fn lco_takes_a_described_inner_checksum_as_right_and_sums_the_rest() {
        for (what, inner, at, described) in inner_frames() {
            // The checksum field where the headers describe the sum; else the last byte (a
            // zero UDP checksum made non-zero would make the frame described).
            let at = if described { at } else { inner.len() - 1 };
            let mut wrong = inner.clone();
            wrong[at] ^= 0x10;
            let right_seg = vxlan_segment(&inner);
            let wrong_seg = vxlan_segment(&wrong);
            let want = if described {
                udp6_checksum(SRC, DST, &right_seg)
            } else {
                udp6_checksum(SRC, DST, &wrong_seg)
            };
            assert_eq!(lco_udp6_checksum(SRC, DST, &wrong_seg), want, "{what}");
            assert_ne!(
                udp6_checksum(SRC, DST, &wrong_seg),
                udp6_checksum(SRC, DST, &right_seg),
                "{what}: the change is under the checksum"
            );
        }
    }

    /// A segment whose sum complements to zero carries 0xffff, which is valid; zero would
    /// mean "no checksum".
    #[test]
    fn a_computed_zero_is_sent_as_ffff() {
        let mut seg = vec![0xd4, 0x31, 0x12, 0xb5, 0, 12, 0, 0, 0, 0, 0, 0];
        // Two payload bytes chosen so that the sum over everything else is all ones.
        seg[10..12].copy_from_slice(&[0, 0]);
        let rest = sum(SRC, DST, 12, &seg);
        seg[10..12].copy_from_slice(&(0xffff - rest).to_be_bytes());
        assert_eq!(sum(SRC, DST, 12, &seg), 0xffff);
        assert_eq!(udp6_checksum(SRC, DST, &seg), 0xffff);
        seg[6..8].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(check_udp6(SRC, DST, &seg), Udp6Checksum::Valid);
    }
}
