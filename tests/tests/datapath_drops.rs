//! Drops on the flood paths, through `BPF_PROG_TEST_RUN`: each one counted under its own reason
//! by the one verdict path (`verdict.rs`), whether it ends the program (nowhere to flood to) or
//! only one copy of many (a remote VTEP that cannot be reached while the others can).
//!
//! Not here, because no crafted packet reaches them under `BPF_PROG_TEST_RUN`:
//! `vlan_restore_failed` (the test run never puts an 802.1Q tag into the skb's metadata, and
//! restoring one fails only when the kernel cannot grow the frame) and `proxy_reply_failed` (the
//! request was parsed from the very bytes the answer overwrites, and the kernel grows a
//! solicitation to the advertisement's 86 bytes unless the skb is a tunnel's).
//!
//! Uses the namespace [`Fixture`] of the datapath tests. Run as root:
//! `cargo test -p vtep-tests --test datapath_drops -- --test-threads=1`.

use std::net::Ipv4Addr;

use vtep::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::{drop::DropReason, maps::VniStats};
use vtep_tests::{
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, SLOT, TC_ACT_SHOT,
        UL_MAC, UNRESOLVED_IP, UNROUTABLE_IP, VNI, WL0_MAC, load_changed, test_run,
    },
    packet::{
        BROADCAST, ETH_P_ARP, IPPROTO_UDP, Ipv4, VXLAN_I, arp_request, eth, vxlan_header,
        vxlan_packet,
    },
};

/// Overlay addresses of a workload behind port0 and of one it asks for.
const WL0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ASKED_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// The drop counters by reason and the standard VNI's traffic counters, summed over CPUs.
fn counters(dp: &mut Datapath) -> (Vec<u64>, VniStats) {
    let drops_map = dp.drops().expect("DROPS");
    let drops = DropReason::ALL
        .iter()
        .map(|r| {
            drops_map
                .get(&(*r as u32), 0)
                .expect("DROPS entry")
                .iter()
                .sum()
        })
        .collect();
    let mut stats = VniStats::default();
    for cpu in dp
        .vni_stats()
        .expect("VNI_STATS")
        .get(&SLOT, 0)
        .expect("VNI_STATS entry")
        .iter()
    {
        stats.accumulate(cpu);
    }
    (drops, stats)
}

/// The reasons whose counts went from `before` to `after`, with how many each.
fn moved(before: &[u64], after: &[u64]) -> Vec<(&'static str, u64)> {
    DropReason::ALL
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (b, a))| a != b)
        .map(|(r, (b, a))| (r.name(), a - b))
        .collect()
}

/// An ARP broadcast from the workload behind port0: a frame the port program floods.
fn broadcast_from_wl0() -> Vec<u8> {
    eth(
        BROADCAST,
        WL0_MAC,
        ETH_P_ARP,
        &arp_request(WL0_MAC, WL0_IP, ASKED_IP),
    )
}

/// Runs program `prog` on `pkt` as if it arrived on `ifindex` and checks that it is dropped as
/// `no_flood_target` and nothing else: no other drop, no traffic counter moved.
fn check_no_flood_target(dp: &mut Datapath, prog: &str, ifindex: u32, pkt: &[u8]) {
    let (drops, stats) = counters(dp);
    let run = test_run(dp, prog, ifindex, pkt);
    let (drops_after, stats_after) = counters(dp);
    assert_eq!(run.verdict, TC_ACT_SHOT);
    assert_eq!(
        moved(&drops, &drops_after),
        [(DropReason::NoFloodTarget.name(), 1)],
        "counted as no_flood_target only"
    );
    assert_eq!(stats_after, stats, "nothing was sent, delivered or flooded");
}

#[test]
fn a_broadcast_from_the_only_port_of_a_vni_without_remotes_is_dropped_as_no_flood_target() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| {
            t.remotes.clear();
            t.ports.truncate(1);
        });
        check_no_flood_target(&mut dp, PROG_PORT, fx.port0, &broadcast_from_wl0());
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
            &arp_request(REMOTE_WL_MAC, ASKED_IP, WL0_IP),
        );
        let pkt = vxlan_packet(
            UL_MAC,
            NEIGH_MAC,
            Ipv4::new(REMOTE_IP, LOCAL_IP, IPPROTO_UDP),
            54321,
            PORT_IANA,
            vxlan_header(VXLAN_I, VNI),
            &inner,
        );
        check_no_flood_target(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
    });
}

/// Floods a broadcast from port0 in a VNI whose remote VTEPs are `unreachable` then REMOTE_IP,
/// and checks that the copy to `unreachable` is counted as `reason` while the copies to port1
/// and REMOTE_IP still go, and the original is consumed.
fn check_one_flood_copy_dropped(unreachable: Ipv4Addr, reason: DropReason) {
    let fx = Fixture::new();
    let (port1_tx, ul0_tx) = (fx.tx_packets("port1"), fx.tx_packets("ul0"));
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| t.remotes = vec![unreachable, REMOTE_IP]);
        let (drops, stats) = counters(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &broadcast_from_wl0());
        let (drops_after, stats_after) = counters(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            moved(&drops, &drops_after),
            [(reason.name(), 1)],
            "the copy to {unreachable} counted as {}, nothing else",
            reason.name()
        );
        assert_eq!(stats_after.flood_packets, stats.flood_packets + 1);
        assert_eq!(
            stats_after.encap_packets,
            stats.encap_packets + 1,
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
