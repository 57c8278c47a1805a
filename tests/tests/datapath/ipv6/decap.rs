//! Decapsulation over IPv6 by the underlay program: checksummed and zero-checksum packets are
//! delivered as exactly their inner frame; a wrong checksum, an unknown VNI and a clear I flag
//! are dropped under their reasons; what is not VXLAN over IPv6 for us passes untouched.

use std::net::Ipv6Addr;

use vtep::datapath::loader::PROG_UNDERLAY;
use vtep_common::drop::DropReason;
use vtep_tests::{
    fixture::{
        NEIGH_MAC, PORT_IANA, PORT_LEGACY, REMOTE_WL_MAC, TC_PASS, UL_MAC, VNI, WL0_MAC, WL1_MAC,
        test_run,
    },
    fixture6::{LOCAL_IP6, OTHER_IP6, REMOTE_IP6, outer6_from, standard_vxlan6, vxlan6_to_us},
    packet::{
        Csum6, ETH_P_ARP, ETH_P_IPV6, IPPROTO_UDP, Outer6, VXLAN_I, arp_reply, eth, ipv6, udp6,
        vxlan_header,
    },
};

use super::standard6;
use crate::{
    REMOTE_WL_IP, UNKNOWN_VNI, WL0_IP,
    checks::{check_decap, check_passed, check_refused},
    frames::{remote_udp_frame, remote_udp6_frame, standard_vxlan},
};

#[test]
fn decap6_delivers_checksummed_and_zero_checksum_packets() {
    standard6(false, |fx, dp| {
        for csum in [Csum6::Correct, Csum6::Zero] {
            for inner in [
                remote_udp_frame(WL0_MAC),
                remote_udp_frame(WL1_MAC),
                remote_udp6_frame(WL0_MAC),
                // A 42-byte ARP reply, as Linux senders put it into VXLAN.
                eth(
                    WL0_MAC,
                    REMOTE_WL_MAC,
                    ETH_P_ARP,
                    &arp_reply(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_MAC, WL0_IP),
                ),
            ] {
                check_decap(dp, fx, &standard_vxlan6(csum, &inner), &inner);
            }
        }
    });
}

#[test]
fn decap6_ignores_reserved_bits_and_uses_the_vnis_port() {
    standard6(false, |fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let v = VNI.to_be_bytes();
        let vx = [0xff, 0xff, 0xff, 0xff, v[1], v[2], v[3], 0xff];
        check_decap(
            dp,
            fx,
            &vxlan6_to_us(PORT_IANA, Csum6::Correct, vx, &inner),
            &inner,
        );
        // VNI 100 is on 4789 only.
        let pkt = vxlan6_to_us(
            PORT_LEGACY,
            Csum6::Correct,
            vxlan_header(VXLAN_I, VNI),
            &inner,
        );
        check_refused(dp, fx, &pkt, DropReason::UnknownVni, "VNI 100 on 8472");
    });
}

#[test]
fn decap6_drops_a_wrong_checksum() {
    standard6(false, |fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = standard_vxlan6(Csum6::Wrong, &inner);
        check_refused(
            dp,
            fx,
            &pkt,
            DropReason::VxlanBadChecksum,
            "field off by one",
        );
        // A payload bit flipped under a correct checksum.
        let mut pkt = standard_vxlan6(Csum6::Correct, &inner);
        *pkt.last_mut().unwrap() ^= 0x01;
        check_refused(
            dp,
            fx,
            &pkt,
            DropReason::VxlanBadChecksum,
            "payload changed",
        );
        // The pseudo-header: checksummed for another destination.
        let mut pkt = Outer6 {
            dst: OTHER_IP6,
            ..outer6_from(REMOTE_IP6, PORT_IANA)
        }
        .build(vxlan_header(VXLAN_I, VNI), &inner);
        pkt[38..54].copy_from_slice(&LOCAL_IP6.octets());
        check_refused(dp, fx, &pkt, DropReason::VxlanBadChecksum, "pseudo-header");
    });
}

#[test]
fn decap6_drops_unknown_vni_and_a_clear_i_flag() {
    standard6(false, |fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan6_to_us(
            PORT_IANA,
            Csum6::Correct,
            vxlan_header(VXLAN_I, UNKNOWN_VNI),
            &inner,
        );
        check_refused(dp, fx, &pkt, DropReason::UnknownVni, "VNI 200");
        let pkt = vxlan6_to_us(PORT_IANA, Csum6::Zero, vxlan_header(0, VNI), &inner);
        check_refused(dp, fx, &pkt, DropReason::VxlanBadFlags, "flags 0");
        let pkt = standard_vxlan6(Csum6::Correct, &remote_udp_frame(REMOTE_WL_MAC));
        check_refused(
            dp,
            fx,
            &pkt,
            DropReason::DecapToRemote,
            "to a remote station",
        );
    });
}

/// Bytes after the IPv6 packet (padding, an FCS) are not part of the inner frame: the IPv6
/// layer trims them, and so must decapsulation.
#[test]
fn decap6_trims_bytes_after_the_ipv6_packet() {
    standard6(false, |fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        for csum in [Csum6::Correct, Csum6::Zero] {
            let mut pkt = standard_vxlan6(csum, &inner);
            pkt.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
            check_decap(dp, fx, &pkt, &inner);
        }
    });
}

/// On an IPv6 underlay, VXLAN over IPv4 (even to an IPv4 address the host has) is not for us,
/// nor is VXLAN over IPv6 to another address, or other IPv6 traffic to us: all pass untouched.
#[test]
fn decap6_passes_what_is_not_vxlan_over_ipv6_for_us() {
    standard6(false, |fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let to = |dst| {
            Outer6 {
                dst,
                ..outer6_from(REMOTE_IP6, PORT_IANA)
            }
            .build(vxlan_header(VXLAN_I, VNI), &inner)
        };
        let udp_53 = eth(
            UL_MAC,
            NEIGH_MAC,
            ETH_P_IPV6,
            &ipv6(
                REMOTE_IP6,
                LOCAL_IP6,
                IPPROTO_UDP,
                &udp6(REMOTE_IP6, LOCAL_IP6, 54321, 53, b"a DNS query"),
            ),
        );
        let multicast: Ipv6Addr = "ff02::1".parse().unwrap();
        for (what, pkt) in [
            (
                "VXLAN over IPv4 to ul0's IPv4 address",
                standard_vxlan(&inner),
            ),
            ("VXLAN over IPv6 to another VTEP", to(OTHER_IP6)),
            ("VXLAN over IPv6 to ff02::1", to(multicast)),
            ("UDP over IPv6 to us, port 53", udp_53),
        ] {
            let run = |dp: &mut _| test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
            check_passed(dp, run, TC_PASS, &pkt, what);
        }
    });
}
