//! Encapsulation over IPv6 by the port program: every outer field and the exact bytes, the UDP
//! checksum valid over the IPv6 pseudo-header for inner ICMP, UDP, IPv6 and ARP frames (or zero
//! in zero-checksum mode), the VNI's port and hop limit, and flooded copies.

use crate::frames::wl0_arp_broadcast;
use vtep::datapath::loader::PROG_PORT;
use vtep_common::maps::VniStats;
use vtep_tests::{
    counters::Counters,
    fixture::{
        Fixture, PORT_LEGACY, REMOTE_WL_MAC, TC_ACT_REDIRECT, TC_ACT_SHOT, VNI, WL0_MAC, load,
        test_run,
    },
    fixture6::{config6, fixture6, table6},
    packet::{ETH_P_ARP, arp_request, eth},
};

use super::{Expect6, check_encap6, standard6, wl0_icmp_frame};
use crate::{
    REMOTE_WL_IP, WL0_IP,
    frames::{wl0_udp_frame, wl0_udp6_frame},
};

/// Sends `inner` from port0 (zero checksums with `zero_csum`) and checks it leaves
/// encapsulated over IPv6 for the remote VTEP ([`check_encap6`]), counted as one encapsulated
/// packet of its size with nothing dropped.
fn check_sent6(zero_csum: bool, inner: &[u8]) {
    standard6(zero_csum, |fx, dp| {
        let before = Counters::read(dp);
        let run = test_run(dp, PROG_PORT, fx.port0, inner);
        let after = Counters::read(dp);
        assert_eq!(
            run.verdict,
            TC_ACT_REDIRECT,
            "sent to the underlay; drops moved: {:?}",
            after.moved_drops(&before)
        );
        check_encap6(&run.out, inner, &Expect6::standard(zero_csum));
        let encap = |s: &VniStats| (s.encap_packets, s.encap_bytes);
        after.assert_one_packet_more(&before, encap, inner.len(), "encap");
    });
}

#[test]
fn encap6_inner_icmp_sets_every_outer_field_and_a_valid_checksum() {
    check_sent6(false, &wl0_icmp_frame(REMOTE_WL_MAC));
}

#[test]
fn encap6_inner_udp_sets_every_outer_field_and_a_valid_checksum() {
    check_sent6(false, &wl0_udp_frame(REMOTE_WL_MAC, 1000));
}

#[test]
fn encap6_inner_ipv6_and_arp_frames() {
    check_sent6(false, &wl0_udp6_frame(REMOTE_WL_MAC));
    // Non-IP: grows at the head, and has no inner checksum at all.
    check_sent6(
        false,
        &eth(
            REMOTE_WL_MAC,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
        ),
    );
}

#[test]
fn encap6_zero_checksum_mode_writes_zero() {
    check_sent6(true, &wl0_icmp_frame(REMOTE_WL_MAC));
    check_sent6(true, &wl0_udp_frame(REMOTE_WL_MAC, 1000));
}

/// Per-VNI send parameters: the VNI's UDP port, and its `ttl` as the hop limit.
#[test]
fn encap6_uses_the_vnis_dstport_and_hop_limit() {
    let fx = fixture6();
    fx.run(|| {
        let mut dp = load(&config6(false), &[table6(&fx, VNI, PORT_LEGACY, 9)]);
        let inner = wl0_icmp_frame(REMOTE_WL_MAC);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        let want = Expect6 {
            dstport: PORT_LEGACY,
            hop_limit: 9,
            ..Expect6::standard(false)
        };
        check_encap6(&run.out, &inner, &want);
    });
}

/// Head-end replication over IPv6: a broadcast from port0 goes raw to port1 and encapsulated
/// (checksummed) to the IPv6 remote out of ul0; the original became that encapsulated copy.
#[test]
fn flood6_broadcast_goes_to_the_ipv6_remote_with_a_valid_checksum() {
    let fx: Fixture = fixture6();
    let frame = wl0_arp_broadcast();
    let tx = |fx: &Fixture| ["port0", "port1", "ul0"].map(|i| fx.tx_packets(i));
    let [port0_tx, port1_tx, ul0_tx] = tx(&fx);
    fx.run(|| {
        let mut dp = load(&config6(false), &[table6(&fx, VNI, 4789, 64)]);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &frame);
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            after.drops,
            before.drops,
            "flooding is not a drop; moved: {:?}",
            after.moved_drops(&before)
        );
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        check_encap6(&run.out, &frame, &Expect6::standard(false));
    });
    // ul0 has IPv6 on and may send on its own (MLD): at least the copy.
    let [port0, port1, ul0] = tx(&fx);
    assert_eq!(port0, port0_tx, "no copy back to the sender's port");
    assert_eq!(port1, port1_tx + 1, "one raw copy out of port1");
    assert!(ul0 > ul0_tx, "no encapsulated copy out of ul0");
}
