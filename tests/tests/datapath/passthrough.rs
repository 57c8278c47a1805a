//! Everything on the underlay that is not VXLAN for us passes untouched.

use std::net::Ipv6Addr;

use vtep::datapath::loader::PROG_UNDERLAY;
use vtep_tests::{
    fixture::{LOCAL_IP, NEIGH_MAC, PORT_IANA, REMOTE_IP, TC_PASS, UL_MAC, VNI, WL0_MAC, test_run},
    packet::{
        BROADCAST, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IP_MF, IPPROTO_TCP, IPPROTO_UDP, Ipv4, VXLAN_I,
        arp_request, eth, ipv6, tcp, udp, udp_no_checksum, vxlan_header, vxlan_packet,
    },
};

use crate::{
    OTHER_IP, UNKNOWN_MAC,
    checks::{check_passed, standard},
    frames::{outer_ip_to, remote_udp_frame, standard_vxlan},
};

#[test]
fn underlay_passes_what_is_not_vxlan_for_us() {
    standard(|fx, dp| {
        for (what, pkt) in not_vxlan_for_us() {
            let run = |dp: &mut _| test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
            check_passed(dp, run, TC_PASS, &pkt, what);
        }
    });
}

/// Packets on the underlay that are not VXLAN for us, each with what it is (shared with the
/// XDP program's tests).
pub fn not_vxlan_for_us() -> Vec<(&'static str, Vec<u8>)> {
    let inner = remote_udp_frame(WL0_MAC);
    let vx = vxlan_header(VXLAN_I, VNI);
    let vxlan_payload = [vx.as_slice(), inner.as_slice()].concat();
    let ip_to_us = |proto| Ipv4::new(REMOTE_IP, LOCAL_IP, proto);
    let frame = |payload: &[u8]| eth(UL_MAC, NEIGH_MAC, ETH_P_IP, payload);

    // A first fragment holds a complete, valid-looking VXLAN packet; a later fragment
    // starts with bytes that look like a UDP header to 4789. Both are for reassembly.
    let whole = udp_no_checksum(54321, PORT_IANA, &vxlan_payload);
    let first_fragment = Ipv4 {
        frag: IP_MF,
        id: 7,
        ..ip_to_us(IPPROTO_UDP)
    }
    .build(&whole);
    let later_fragment = Ipv4 {
        frag: 185, // offset 1480 bytes, last fragment
        id: 7,
        ..ip_to_us(IPPROTO_UDP)
    }
    .build(&whole);

    vec![
        (
            "UDP to us, port 53",
            frame(&ip_to_us(IPPROTO_UDP).build(&udp(
                REMOTE_IP,
                LOCAL_IP,
                54321,
                53,
                b"\x12\x34query",
            ))),
        ),
        (
            "UDP:4789 to another address",
            vxlan_packet(
                UL_MAC,
                NEIGH_MAC,
                outer_ip_to(OTHER_IP),
                54321,
                PORT_IANA,
                vx,
                &inner,
            ),
        ),
        (
            "TCP to us, port 4789",
            frame(
                &ip_to_us(IPPROTO_TCP)
                    .build(&tcp(REMOTE_IP, LOCAL_IP, 40000, PORT_IANA, 0x02, b"")),
            ),
        ),
        (
            "ARP on the underlay",
            eth(
                BROADCAST,
                NEIGH_MAC,
                ETH_P_ARP,
                &arp_request(NEIGH_MAC, REMOTE_IP, LOCAL_IP),
            ),
        ),
        (
            "IPv6 UDP to port 4789",
            eth(
                UL_MAC,
                NEIGH_MAC,
                ETH_P_IPV6,
                // The UDP checksum is left zero: the program passes IPv6 before reading it.
                &ipv6(
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                    IPPROTO_UDP,
                    &udp_no_checksum(54321, PORT_IANA, &vxlan_payload),
                ),
            ),
        ),
        ("IPv4 first fragment to 4789", frame(&first_fragment)),
        ("IPv4 later fragment to 4789", frame(&later_fragment)),
        // The kernel's IP layer drops a corrupted header; the datapath must not trust it.
        ("VXLAN with a corrupted outer IPv4 checksum", {
            let mut pkt = standard_vxlan(&inner);
            // The checksum field: bytes 10 and 11 of the IPv4 header after Ethernet's 14.
            pkt[14 + 10] ^= 0xff;
            pkt
        }),
        // Seen in promiscuous mode: addressed to our IP, but another host's MAC.
        ("VXLAN to our address but another host's MAC", {
            let mut pkt = standard_vxlan(&inner);
            pkt[..6].copy_from_slice(&UNKNOWN_MAC.0);
            pkt
        }),
    ]
}
