//! Decapsulation by the underlay program: what it delivers, and VXLAN for us that it refuses.

use vtep::datapath::loader::PROG_UNDERLAY;
use vtep_common::{
    drop::DropReason,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, PORT_LEGACY, REMOTE_WL_MAC, TC_ACT_SHOT, TTL,
        UL_MAC, VNI, WL0_MAC, config, load, test_run,
    },
    packet::{ETH_P_ARP, ETH_P_IP, VXLAN_I, arp_request, eth, udp_no_checksum, vxlan_header},
};

use crate::{
    BIG_VNI, REMOTE_WL_IP, UNKNOWN_VNI, WL0_IP,
    checks::{check_decap, check_refused, check_standard_decap, standard},
    frames::{outer_ip_to, remote_udp_frame, remote_udp6_frame, standard_vxlan, vxlan_to_us},
};
use vtep_tests::counters::Counters;

#[test]
fn decap_delivers_the_inner_frame() {
    check_standard_decap(&remote_udp_frame(WL0_MAC));
}

#[test]
fn decap_ignores_reserved_bits() {
    standard(|fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        // Every reserved bit set: flags other than I, the 24 bits after the flags and the last
        // byte. RFC 7348 section 5: reserved fields are ignored on receipt.
        let v = VNI.to_be_bytes();
        let vx = [0xff, 0xff, 0xff, 0xff, v[1], v[2], v[3], 0xff];
        let pkt = vxlan_to_us(PORT_IANA, vx, &inner);
        check_decap(dp, fx, &pkt, &inner);
    });
}

#[test]
fn decap_vni_uses_all_24_bits_and_the_legacy_port() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load(
            &config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX),
            &[fx.table(BIG_VNI, PORT_LEGACY, TTL)],
        );
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_LEGACY, vxlan_header(VXLAN_I, BIG_VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

#[test]
fn decap_arp_frame() {
    // A 42-byte ARP frame: not IP, and shorter than the 60-byte Ethernet minimum, as Linux
    // senders put it into VXLAN.
    check_standard_decap(&eth(
        WL0_MAC,
        REMOTE_WL_MAC,
        ETH_P_ARP,
        &arp_request(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP),
    ));
}

#[test]
fn decap_ipv6_inner_frame() {
    check_standard_decap(&remote_udp6_frame(WL0_MAC));
}

/// Regression: `bpf_skb_adjust_room` refuses to shrink when fewer than 20 bytes (an IPv4
/// header) would remain after the MAC header, so every inner frame of 14..=33 bytes was dropped
/// as decap_failed.
#[test]
fn decap_short_inner_frame() {
    // A 20-byte IEEE 802.2 LLC XID frame (length field 6: DSAP 0, SSAP 0, control 0xAF, 3 bytes
    // of XID information). It holds an Ethernet header, so it is no vxlan_truncated case, and
    // the kernel's vxlan driver delivers it; so must we.
    let inner = eth(
        WL0_MAC,
        REMOTE_WL_MAC,
        0x0006,
        &[0x00, 0x00, 0xaf, 0x81, 0x01, 0x00],
    );
    assert_eq!(inner.len(), 20);
    check_standard_decap(&inner);
}

#[test]
fn decap_to_a_remote_mac_is_dropped() {
    standard(|fx, dp| {
        // VTEPs do not send overlay traffic back into the overlay.
        let pkt = standard_vxlan(&remote_udp_frame(REMOTE_WL_MAC));
        let before = Counters::read(dp);
        let run = test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
        assert_eq!(run.verdict, TC_ACT_SHOT);
        assert_eq!(
            Counters::read(dp),
            before.with_drop(DropReason::DecapToRemote)
        );
    });
}

// VXLAN for us that is refused.

#[test]
fn decap_unknown_vni_is_dropped() {
    standard(|fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, UNKNOWN_VNI), &inner);
        check_refused(dp, fx, &pkt, DropReason::UnknownVni, "VNI 200");
        // VNI 100 is configured on 4789 only; on the other port we listen on it is unknown.
        let pkt = vxlan_to_us(PORT_LEGACY, vxlan_header(VXLAN_I, VNI), &inner);
        check_refused(dp, fx, &pkt, DropReason::UnknownVni, "VNI 100 on 8472");
    });
}

#[test]
fn decap_i_flag_clear_is_dropped() {
    standard(|fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(0, VNI), &inner);
        check_refused(dp, fx, &pkt, DropReason::VxlanBadFlags, "flags 0");
        // Every other flag bit set does not stand in for I.
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(!VXLAN_I, VNI), &inner);
        check_refused(dp, fx, &pkt, DropReason::VxlanBadFlags, "flags 0xf7");
    });
}

#[test]
fn decap_truncated_is_dropped() {
    standard(|fx, dp| {
        // Cut inside the VXLAN header: 4 of its 8 bytes (lengths consistent with the cut).
        let pkt = eth(
            UL_MAC,
            NEIGH_MAC,
            ETH_P_IP,
            &outer_ip_to(LOCAL_IP).build(&udp_no_checksum(54321, PORT_IANA, &[VXLAN_I, 0, 0, 0])),
        );
        let what = "cut in the VXLAN header";
        check_refused(dp, fx, &pkt, DropReason::VxlanTruncated, what);
        // A full VXLAN header but a 13-byte inner frame: no room for an Ethernet header.
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = standard_vxlan(&inner[..13]);
        let what = "13-byte inner frame";
        check_refused(dp, fx, &pkt, DropReason::VxlanTruncated, what);
    });
}
