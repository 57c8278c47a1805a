//! Drops on the flood paths: each counted under its own reason by the one verdict path
//! (`verdict.rs`), whether it ends the program (nowhere to flood to) or only one copy of many (a
//! remote VTEP that cannot be reached while the others can).
//!
//! Not here, because no crafted packet reaches them under `BPF_PROG_TEST_RUN`:
//! `vlan_restore_failed` (the test run never puts an 802.1Q tag into the skb's metadata, and
//! restoring one fails only when the kernel cannot grow the frame) and `proxy_reply_failed` (the
//! request was parsed from the very bytes the answer overwrites, and the kernel grows a
//! solicitation to the advertisement's 86 bytes unless the skb is a tunnel's).

use crate::frames::wl0_arp_broadcast;
use std::net::Ipv4Addr;

use vtep::datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::drop::DropReason;
use vtep_tests::{
    fixture::{
        Fixture, REMOTE_IP, REMOTE_WL_MAC, TC_ACT_SHOT, UNRESOLVED_IP, UNROUTABLE_IP, load_changed,
        test_run,
    },
    packet::{BROADCAST, ETH_P_ARP, arp_request, eth},
};

use crate::{REMOTE_WL_IP, WL0_IP, frames::standard_vxlan};
use vtep_tests::counters::Counters;

/// Runs program `prog` on `pkt` as if it arrived on `ifindex` and checks that it is dropped as
/// `no_flood_target` and nothing else: no other drop, no traffic counter moved.
fn check_no_flood_target(dp: &mut Datapath, prog: &str, ifindex: u32, pkt: &[u8]) {
    let before = Counters::read(dp);
    let run = test_run(dp, prog, ifindex, pkt);
    let after = Counters::read(dp);
    assert_eq!(run.verdict, TC_ACT_SHOT);
    assert_eq!(
        after,
        before.with_drop(DropReason::NoFloodTarget),
        "counted as no_flood_target only, nothing sent, delivered or flooded; moved: {:?}",
        after.moved_drops(&before)
    );
}

#[test]
fn a_broadcast_from_the_only_port_of_a_vni_without_remotes_is_dropped_as_no_flood_target() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| {
            t.remotes.clear();
            t.ports.truncate(1);
        });
        check_no_flood_target(&mut dp, PROG_PORT, fx.port0, &wl0_arp_broadcast());
    });
}

#[test]
fn a_decapsulated_broadcast_for_a_vni_without_local_ports_is_dropped_as_no_flood_target() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| t.ports.clear());
        let inner = eth(
            BROADCAST,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_request(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP),
        );
        check_no_flood_target(&mut dp, PROG_UNDERLAY, fx.ul0, &standard_vxlan(&inner));
    });
}

/// Floods a broadcast from port0 in a VNI whose remote VTEPs are `unreachable` then REMOTE_IP,
/// and checks that the copy to `unreachable` is counted as `reason` while the copies to port1
/// and REMOTE_IP still go, and the original is consumed.
fn check_one_flood_copy_dropped(unreachable: Ipv4Addr, reason: DropReason) {
    let fx = Fixture::new();
    let (port1_tx, ul0_tx) = (fx.tx_packets("port1"), fx.tx_packets("ul0"));
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| {
            t.remotes = vec![unreachable.into(), REMOTE_IP.into()]
        });
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_broadcast());
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            after.drops,
            before.with_drop(reason).drops,
            "the copy to {unreachable} counted as {}, nothing else; moved: {:?}",
            reason.name(),
            after.moved_drops(&before)
        );
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(
            after.stats.encap_packets,
            before.stats.encap_packets + 1,
            "the copy to {REMOTE_IP} was sent"
        );
    });
    assert_eq!(
        fx.tx_packets("port1"),
        port1_tx + 1,
        "a raw copy out of port1"
    );
    assert_eq!(
        fx.tx_packets("ul0"),
        ul0_tx + 1,
        "one encapsulated copy out of ul0"
    );
}

#[test]
fn a_flood_copy_to_a_remote_without_a_resolved_neighbour_is_counted_and_the_others_go() {
    check_one_flood_copy_dropped(UNRESOLVED_IP, DropReason::NexthopUnresolved);
}

#[test]
fn a_flood_copy_to_a_remote_without_a_route_is_counted_and_the_others_go() {
    check_one_flood_copy_dropped(UNROUTABLE_IP, DropReason::NoRoute);
}
