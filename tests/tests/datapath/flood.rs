//! Flooding broadcast and unknown unicast: a clone to every other local port and one
//! encapsulated copy per remote VTEP (`bpf_clone_redirect` transmits for real, also under
//! `BPF_PROG_TEST_RUN`, so the copies show in the interfaces' counters).

use crate::frames::wl0_arp_broadcast;
use vtep::datapath::loader::{PROG_PORT, PROG_UNDERLAY};
use vtep_common::drop::DropReason;
use vtep_tests::{
    fixture::{Fixture, REMOTE_WL_MAC, TC_ACT_SHOT, load_standard, test_run},
    packet::{BROADCAST, ETH_P_ARP, arp_request, eth},
};

use crate::{
    REMOTE_WL_IP, UNKNOWN_MAC, WL0_IP,
    checks::{Expect, check_encap},
    frames::{standard_vxlan, wl0_udp_frame},
};
use vtep_tests::counters::Counters;

/// Packets port0, port1 and ul0 of `fx` have transmitted.
fn tx_counts(fx: &Fixture) -> [u64; 3] {
    ["port0", "port1", "ul0"].map(|ifname| fx.tx_packets(ifname))
}

/// Floods `frame` from port0 and checks: SHOT (the original is consumed, not dropped), no drop
/// counted, the flood counter moved, one clone went out of port1, one encapsulated clone out of
/// ul0 and none back out of port0. The original was the template of the encapsulated copy, so
/// the program leaves it encapsulated for REMOTE_IP.
fn check_flood_from_port0(frame: &[u8]) {
    let fx = Fixture::new();
    let [port0_tx, port1_tx, ul0_tx] = tx_counts(&fx);
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, frame);
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            after.drops,
            before.drops,
            "flooding is not a drop; moved: {:?}",
            after.moved_drops(&before)
        );
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(
            after.stats.encap_packets,
            before.stats.encap_packets + 1,
            "one encapsulated copy for the one remote"
        );
        check_encap(&run.out, frame, &Expect::standard());
    });
    let [port0, port1, ul0] = tx_counts(&fx);
    assert_eq!(port0, port0_tx, "no copy back to the sender's port");
    assert_eq!(port1, port1_tx + 1, "one raw copy out of port1");
    assert_eq!(ul0, ul0_tx + 1, "one encapsulated copy out of ul0");
}

#[test]
fn flood_broadcast_to_the_remote_and_the_other_port() {
    // An ARP broadcast, the most common flooded frame (non-IP: grows with change_head).
    check_flood_from_port0(&wl0_arp_broadcast());
}

#[test]
fn flood_unknown_unicast_to_the_remote_and_the_other_port() {
    // IPv4 to a MAC nobody knows (grows with adjust_room).
    check_flood_from_port0(&wl0_udp_frame(UNKNOWN_MAC, 1000));
}

#[test]
fn decap_broadcast_floods_to_the_local_ports() {
    let fx = Fixture::new();
    let [port0_tx, port1_tx, ul0_tx] = tx_counts(&fx);
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = eth(
            BROADCAST,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_request(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP),
        );
        let pkt = standard_vxlan(&inner);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            after.drops,
            before.drops,
            "not a drop; moved: {:?}",
            after.moved_drops(&before)
        );
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(after.stats.decap_packets, before.stats.decap_packets + 1);
        assert_eq!(run.out, inner, "the copies were made of the inner frame");
    });
    let [port0, port1, ul0] = tx_counts(&fx);
    assert_eq!(port0, port0_tx + 1, "a copy to port0");
    assert_eq!(port1, port1_tx + 1, "a copy to port1");
    assert_eq!(ul0, ul0_tx, "never back into the overlay");
}

/// The bug this pins (found by the IPv6 fuzzer): a decapsulated broadcast too big for every
/// local port (1,519 bytes against the ports' 1,500 plus 18) was counted as decapsulated and
/// flooded, though every copy was then dropped as too big. It is one `inner_too_big` drop now,
/// and no port transmits.
#[test]
fn decap_broadcast_too_big_for_every_port_is_dropped_not_counted_delivered() {
    let fx = Fixture::new();
    let [port0_tx, port1_tx, ul0_tx] = tx_counts(&fx);
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = eth(BROADCAST, REMOTE_WL_MAC, ETH_P_ARP, &[0x5a; 1519 - 14]);
        let pkt = standard_vxlan(&inner);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT);
        assert_eq!(
            after,
            before.with_drop(DropReason::InnerTooBig),
            "one drop, nothing counted as delivered"
        );
    });
    assert_eq!(tx_counts(&fx), [port0_tx, port1_tx, ul0_tx], "nothing sent");
}
