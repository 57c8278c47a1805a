//! The UDP checksum over IPv6 (RFC 8200 section 8.1, RFC 768), computed here from the bytes with
//! no packet crate: the checker the IPv6 tests judge the datapath's outer checksums with, so it
//! shares no code with the builder (etherparse) that makes the packets vtep receives. Its unit
//! tests hold it against a VXLAN packet the kernel's vxlan driver sent, and against etherparse.

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
