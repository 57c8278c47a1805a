//! The datapath on an IPv6 underlay (`DP_F_IPV6`, vtep_tests::fixture6): encapsulation writes
//! outer IPv6 with a UDP checksum our own checker (vtep_tests::packet::check_udp6) finds valid,
//! or zero with `DP_F_UDP6_ZERO_CSUM_TX` (`encap`), for every kind and length of inner frame
//! (`checksum`); decapsulation of checksummed and
//! zero-checksum packets, and what it refuses or passes (`decap`, `malformed`); learning behind
//! an IPv6 VTEP (`learn`), and only from the sources the allow-list lets in (`accept`); the underlay next hop over IPv6 (`nexthop`); and the same
//! decapsulation cases through the XDP program (`xdp`).

mod accept;
mod checksum;
mod decap;
mod encap;
mod learn;
mod malformed;
mod nexthop;
mod xdp;

use std::net::Ipv6Addr;

use vtep::datapath::loader::Datapath;
use vtep_common::wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN};
use vtep_tests::{
    fixture::{Fixture, NEIGH_MAC, PORT_IANA, TTL, UL_MAC, VNI, WL0_MAC},
    fixture6::{LOCAL_IP6, REMOTE_IP6, fixture6, load6},
    packet::{
        ETH_P_IP, ETH_P_IPV6, INNER_OFFSET6, IPPROTO_ICMP, IPPROTO_UDP, Ipv4, Mac, Outer6,
        Udp6Checksum, VXLAN_I, eth, icmp_echo_request, parse_vxlan6, vxlan_header,
    },
};

use crate::{REMOTE_WL_IP, WL0_IP};

/// Runs `test` in an IPv6 fixture of its own with the standard datapath on it (VNI 100 on
/// 4789; zero UDP checksums sent with `zero_csum`).
fn standard6(zero_csum: bool, test: impl FnOnce(&Fixture, &mut Datapath) + Send) {
    let fx = fixture6();
    fx.run(|| test(&fx, &mut load6(&fx, zero_csum, |_| {})));
}

/// An ICMP echo request from WL0 (10.0.0.1) to `dst_mac` (10.0.0.2): its checksum is complete,
/// as a ping's is.
fn wl0_icmp_frame(dst_mac: Mac) -> Vec<u8> {
    let icmp = icmp_echo_request(7, 1, b"ping over an IPv6 underlay");
    eth(
        dst_mac,
        WL0_MAC,
        ETH_P_IP,
        &Ipv4::new(WL0_IP, REMOTE_WL_IP, IPPROTO_ICMP).build(&icmp),
    )
}

/// The outer fields an encapsulated packet must carry over IPv6.
struct Expect6 {
    dst: Ipv6Addr,
    dstport: u16,
    hop_limit: u8,
    vni: u32,
    checksum: Udp6Checksum,
}

impl Expect6 {
    /// To REMOTE_IP6 in VNI 100 on 4789, hop limit 64, with a valid checksum or (`zero_csum`)
    /// none.
    fn standard(zero_csum: bool) -> Self {
        Self {
            dst: REMOTE_IP6,
            dstport: PORT_IANA,
            hop_limit: TTL,
            vni: VNI,
            checksum: if zero_csum {
                Udp6Checksum::Zero
            } else {
                Udp6Checksum::Valid
            },
        }
    }
}

/// Asserts that `out` is `inner` encapsulated over IPv6 with every outer field as `want` says,
/// and, byte for byte, the packet the tests' own builder makes from those fields (with the flow
/// label and source port vtep chose); returns the outer UDP source port.
#[track_caller]
fn check_encap6(out: &[u8], inner: &[u8], want: &Expect6) -> u16 {
    assert_eq!(
        out.len(),
        inner.len() + INNER_OFFSET6,
        "encapsulation over IPv6 adds exactly {INNER_OFFSET6} bytes"
    );
    let v = parse_vxlan6(out).unwrap_or_else(|e| panic!("not VXLAN over IPv6: {e}: {out:02x?}"));
    assert_eq!(v.dst_mac(), NEIGH_MAC, "outer dst MAC (the neighbour's)");
    assert_eq!(v.src_mac(), UL_MAC, "outer src MAC (ul0's)");
    assert_eq!(v.eth.ether_type.0, ETH_P_IPV6, "outer ethertype");
    assert_eq!(v.version(), 6, "IP version");
    assert_eq!(v.traffic_class(), 0, "traffic class");
    assert_eq!(
        usize::from(v.ip.payload_length),
        inner.len() + 16,
        "payload length (UDP + VXLAN + inner)"
    );
    assert_eq!(v.ip.next_header.0, IPPROTO_UDP, "next header");
    assert_eq!(v.ip.hop_limit, want.hop_limit, "hop limit");
    assert_eq!(v.src(), LOCAL_IP6, "outer source address");
    assert_eq!(v.dst(), want.dst, "outer destination address");
    let sport = v.udp.source_port;
    assert!(
        (DEFAULT_SRCPORT_MIN..=DEFAULT_SRCPORT_MAX).contains(&sport),
        "UDP source port {sport} outside the default range"
    );
    assert_eq!(v.udp.destination_port, want.dstport, "UDP destination port");
    assert_eq!(v.udp.length, v.ip.payload_length, "UDP length");
    assert_eq!(v.checksum(), want.checksum, "UDP checksum");
    assert_eq!(v.flags(), VXLAN_I, "VXLAN flags: I only");
    assert_eq!(v.reserved(), [0; 4], "VXLAN reserved bytes");
    assert_eq!(v.vni(), want.vni, "VNI");
    assert_eq!(v.inner, inner, "inner frame byte-identical");
    assert_eq!(v.trailing, 0, "nothing after the packet");
    // Every byte, against a packet built from the fields alone (checksum by etherparse).
    let csum = match want.checksum {
        Udp6Checksum::Zero => vtep_tests::packet::Csum6::Zero,
        _ => vtep_tests::packet::Csum6::Correct,
    };
    let expected = Outer6 {
        flow_label: v.flow_label(),
        hop_limit: want.hop_limit,
        ..Outer6::new(NEIGH_MAC, UL_MAC, LOCAL_IP6, want.dst, sport, want.dstport)
    }
    .with_csum(csum)
    .build(vxlan_header(VXLAN_I, want.vni), inner);
    assert_eq!(out, expected, "the bytes of the packet its fields describe");
    sport
}
