//! The outer UDP checksum over IPv6 for every kind of inner frame the port program may sum
//! differently (vtep-ebpf outer_csum.rs: from the headers for IPv4/IPv6 TCP, UDP, ICMP and
//! ICMPv6 whose own checksum is right or pending; byte by byte for the rest), each at odd and
//! even lengths, short and long: the checksum our checker computes over the bytes must be the one
//! written. And for an inner checksum left to an offload (the field holding only the pseudo
//! header's sum, as a local sender leaves it), the outer checksum must be right once the inner
//! one is filled in, as the kernel's `lco_csum` makes it.

use std::net::{Ipv4Addr, Ipv6Addr};

use vtep::datapath::loader::{Datapath, PROG_PORT};
use vtep_tests::{
    fixture::{Fixture, REMOTE_WL_MAC, TC_ACT_REDIRECT, WL0_MAC, test_run},
    packet::{
        ETH_P_IP, ETH_P_IPV6, IP_MF, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4, eth,
        icmp_echo_request, ipv6, l4_pseudo_header_sum, l4_pseudo_header_sum6, tcp, udp,
        udp_no_checksum, udp6,
    },
};

use super::{Expect6, check_encap6, standard6};
use crate::{REMOTE_WL_IP, REMOTE_WL_IP6, WL0_IP, WL0_IP6};

/// `n` bytes of data that are not all zero.
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// An IPv4 frame from WL0 to the remote workload carrying `l4` of protocol `proto`.
fn v4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let ip = Ipv4::new(WL0_IP, REMOTE_WL_IP, proto).build(l4);
    eth(REMOTE_WL_MAC, WL0_MAC, ETH_P_IP, &ip)
}

/// An IPv6 frame from WL0 to the remote workload carrying `l4` with next header `next`.
fn v6(next: u8, l4: &[u8]) -> Vec<u8> {
    eth(
        REMOTE_WL_MAC,
        WL0_MAC,
        ETH_P_IPV6,
        &ipv6(WL0_IP6, REMOTE_WL_IP6, next, l4),
    )
}

/// The 16-bit ones'-complement checksum of `bytes` (big-endian words, odd end zero-padded).
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 frame whose header has 4 bytes of options (four NOPs): the headers do not describe
/// its sum, so it is summed byte by byte.
fn v4_with_options(proto: u8, l4: &[u8]) -> Vec<u8> {
    let plain = Ipv4::new(WL0_IP, REMOTE_WL_IP, proto).build(l4);
    let mut h = plain[..20].to_vec();
    h[0] = 0x46;
    h[2..4].copy_from_slice(&((24 + l4.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[1, 1, 1, 1]);
    h[10..12].copy_from_slice(&[0, 0]);
    let c = internet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    eth(
        REMOTE_WL_MAC,
        WL0_MAC,
        ETH_P_IP,
        &[h.as_slice(), l4].concat(),
    )
}

/// `frame` with `n` bytes after it (what an Ethernet sender pads a short frame with), not zero.
fn padded(frame: &[u8], n: usize) -> Vec<u8> {
    [frame, &vec![0xab; n]].concat()
}

/// The frames, each with what it is.
fn frames() -> Vec<(String, Vec<u8>)> {
    let (s4, d4): (Ipv4Addr, Ipv4Addr) = (WL0_IP, REMOTE_WL_IP);
    let (s6, d6): (Ipv6Addr, Ipv6Addr) = (WL0_IP6, REMOTE_WL_IP6);
    let mut out = Vec::new();
    for n in [0, 1, 2, 3, 17, 18, 255, 256, 257, 511, 1000, 1001, 1372] {
        let d = data(n);
        out.push((
            format!("ICMP, {n} bytes"),
            v4(IPPROTO_ICMP, &icmp_echo_request(1, 2, &d)),
        ));
        out.push((
            format!("UDP, {n} bytes"),
            v4(IPPROTO_UDP, &udp(s4, d4, 1000, 7000, &d)),
        ));
        out.push((
            format!("UDP without checksum, {n} bytes"),
            v4(IPPROTO_UDP, &udp_no_checksum(1000, 7000, &d)),
        ));
        out.push((
            format!("TCP, {n} bytes"),
            v4(IPPROTO_TCP, &tcp(s4, d4, 40000, 5001, 0x18, &d)),
        ));
        out.push((
            format!("IPv6 UDP, {n} bytes"),
            v6(IPPROTO_UDP, &udp6(s6, d6, 1000, 7000, &d)),
        ));
        out.push((
            format!("IPv4 with options, UDP, {n} bytes"),
            v4_with_options(IPPROTO_UDP, &udp(s4, d4, 1000, 7000, &d)),
        ));
        out.push((
            format!("non-IP, {n} bytes"),
            eth(REMOTE_WL_MAC, WL0_MAC, 0x88b5, &d),
        ));
        // A first fragment: its UDP checksum covers bytes that are not in the frame.
        let first = Ipv4 {
            frag: IP_MF,
            id: 9,
            ..Ipv4::new(s4, d4, IPPROTO_UDP)
        }
        .build(&udp(s4, d4, 1000, 7000, &data(n + 2000))[..8 + n]);
        out.push((
            format!("first IPv4 fragment, {n} bytes"),
            eth(REMOTE_WL_MAC, WL0_MAC, ETH_P_IP, &first),
        ));
    }
    // Short IP packets padded to the Ethernet minimum; an odd IP length puts the padding at an
    // odd offset.
    for n in [0, 1, 2, 3] {
        let icmp = v4(IPPROTO_ICMP, &icmp_echo_request(1, 2, &data(n)));
        out.push((
            format!("ICMP of {n} bytes padded to 60"),
            padded(&icmp, 60 - icmp.len()),
        ));
        let udp4 = v4(IPPROTO_UDP, &udp(s4, d4, 1, 2, &data(n)));
        out.push((
            format!("UDP of {n} bytes padded to 60"),
            padded(&udp4, 60 - udp4.len()),
        ));
        let udp6 = v6(IPPROTO_UDP, &udp6(s6, d6, 1, 2, &data(n)));
        out.push((
            format!("IPv6 UDP of {n} bytes and 5 bytes after it"),
            padded(&udp6, 5),
        ));
    }
    // An IPv6 hop-by-hop options header (as MLD reports carry) before UDP.
    let hbh = [IPPROTO_UDP, 0, 5, 2, 0, 0, 1, 0];
    for n in [0, 1, 100] {
        let l4 = [&hbh[..], &udp6(s6, d6, 1000, 7000, &data(n))].concat();
        out.push((format!("IPv6 hop-by-hop, UDP, {n} bytes"), v6(0, &l4)));
    }
    out
}

/// Encapsulates `inner` from port0 and returns what left.
fn sent(fx: &Fixture, dp: &mut Datapath, inner: &[u8], what: &str) -> Vec<u8> {
    let run = test_run(dp, PROG_PORT, fx.port0, inner);
    assert_eq!(run.verdict, TC_ACT_REDIRECT, "{what}: sent");
    run.out
}

#[test]
fn encap6_checksum_is_right_for_every_kind_and_length_of_inner_frame() {
    standard6(false, |fx, dp| {
        for (what, inner) in frames() {
            let out = sent(fx, dp, &inner, &what);
            // check_encap6 panics with the field; say which frame it was first.
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check_encap6(&out, &inner, &Expect6::standard(false))
            }));
            assert!(checked.is_ok(), "{what}: see the assertion above");
        }
    });
}

/// The inner checksum left to an offload: the field holds the pseudo header's sum, which is what
/// a sender on this host hands a veth (`CHECKSUM_PARTIAL`). The outer checksum is right for the
/// frame as it will be once the inner checksum is filled in.
#[test]
fn encap6_checksum_is_right_once_a_pending_inner_checksum_is_filled_in() {
    standard6(false, |fx, dp| {
        for n in [0usize, 1, 2, 3, 100, 1001, 1372] {
            let d = data(n);
            // (what, the frame as the sender hands it, as it will be, checksum field offset)
            let tcp4 = tcp(WL0_IP, REMOTE_WL_IP, 40000, 5001, 0x18, &d);
            let tcp6 = {
                let mut h = etherparse::TcpHeader::new(40000, 5001, 1, 0xffff);
                (h.ack, h.psh) = (true, true);
                h.checksum = h
                    .calc_checksum_ipv6_raw(WL0_IP6.octets(), REMOTE_WL_IP6.octets(), &d)
                    .unwrap();
                [&h.to_bytes()[..], &d].concat()
            };
            let udp4 = udp(WL0_IP, REMOTE_WL_IP, 1000, 7000, &d);
            let cases = [
                (
                    "TCP",
                    v4(IPPROTO_TCP, &tcp4),
                    14 + 20 + 16,
                    l4_pseudo_header_sum(WL0_IP, REMOTE_WL_IP, IPPROTO_TCP, tcp4.len() as u16),
                ),
                (
                    "UDP",
                    v4(IPPROTO_UDP, &udp4),
                    14 + 20 + 6,
                    l4_pseudo_header_sum(WL0_IP, REMOTE_WL_IP, IPPROTO_UDP, udp4.len() as u16),
                ),
                (
                    "IPv6 TCP",
                    v6(IPPROTO_TCP, &tcp6),
                    14 + 40 + 16,
                    l4_pseudo_header_sum6(WL0_IP6, REMOTE_WL_IP6, IPPROTO_TCP, tcp6.len() as u16),
                ),
            ];
            for (kind, done, at, pending_sum) in cases {
                let what = format!("{kind} of {n} bytes, checksum pending");
                let mut pending = done.clone();
                pending[at..at + 2].copy_from_slice(&pending_sum.to_be_bytes());
                let mut out = sent(fx, dp, &pending, &what);
                // Fill the inner checksum in, as the offload will (70 bytes of outer headers).
                out[70 + at..70 + at + 2].copy_from_slice(&done[at..at + 2]);
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    check_encap6(&out, &done, &Expect6::standard(false))
                }));
                assert!(checked.is_ok(), "{what}: see the assertion above");
            }
        }
    });
}
