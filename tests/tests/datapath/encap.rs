//! Encapsulation by the port program: every outer header field, per-VNI send parameters, and
//! frames of every kind (IPv4, ARP, IPv6).

use vtep::datapath::loader::PROG_PORT;
use vtep_common::{
    maps::VniStats,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    fixture::{
        Fixture, PORT_IANA, PORT_LEGACY, REMOTE_WL_MAC, TC_ACT_REDIRECT, TTL, VNI, WL0_MAC, config,
        load, test_run,
    },
    packet::{ETH_P_ARP, arp_request, eth, parse_vxlan},
};

use crate::{
    BIG_VNI, REMOTE_WL_IP, WL0_IP,
    checks::{Expect, check_encap, standard},
    frames::{wl0_udp_frame, wl0_udp6_frame},
};
use vtep_tests::counters::Counters;

/// Sends `inner` from port0 with the standard datapath and checks that it leaves encapsulated
/// for the remote VTEP ([`check_encap`]), counted as one encapsulated packet of its size with
/// nothing dropped.
fn check_sent_to_the_remote(inner: &[u8]) {
    standard(|fx, dp| {
        let before = Counters::read(dp);

        let run = test_run(dp, PROG_PORT, fx.port0, inner);

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent to the underlay");
        check_encap(&run.out, inner, &Expect::standard());
        let encap = |s: &VniStats| (s.encap_packets, s.encap_bytes);
        Counters::read(dp).assert_one_packet_more(&before, encap, inner.len(), "encap");
    });
}

#[test]
fn encap_ipv4_udp_sets_every_outer_field() {
    check_sent_to_the_remote(&wl0_udp_frame(REMOTE_WL_MAC, 1000));
}

/// Encapsulates WL0's frame to the remote workload with the fixture's table for VNI `id` on
/// `dstport` with outer TTL `ttl`, checks it against `want` ([`check_encap`]) and returns it.
fn encap_with_table(id: u32, dstport: u16, ttl: u8, want: &Expect) -> Vec<u8> {
    let fx = Fixture::new();
    fx.run(|| {
        let cfg = config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
        let mut dp = load(&cfg, &[fx.table(id, dstport, ttl)]);
        let inner = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(&run.out, &inner, want);
        run.out
    })
}

#[test]
fn encap_vni_uses_all_24_bits() {
    let want = Expect {
        vni: BIG_VNI,
        ..Expect::standard()
    };
    let out = encap_with_table(BIG_VNI, PORT_IANA, TTL, &want);
    let v = parse_vxlan(&out).expect("VXLAN");
    assert_eq!(v.header[4..7], [0xAB, 0xCD, 0xEF]);
}

/// Per-VNI send parameters.
#[test]
fn encap_uses_the_vnis_dstport_and_ttl() {
    let want = Expect {
        dstport: PORT_LEGACY,
        ttl: 9,
        ..Expect::standard()
    };
    encap_with_table(VNI, PORT_LEGACY, 9, &want);
}

/// Non-IP frames grow at the head (bpf_skb_change_head) instead of with adjust_room.
#[test]
fn encap_arp_unicast_to_a_remote_mac() {
    // A unicast ARP request, as a workload sends to refresh its neighbour entry.
    check_sent_to_the_remote(&eth(
        REMOTE_WL_MAC,
        WL0_MAC,
        ETH_P_ARP,
        &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
    ));
}

#[test]
fn encap_ipv6_frame() {
    // IPv6 also grows with adjust_room, with the outer headers still IPv4.
    check_sent_to_the_remote(&wl0_udp6_frame(REMOTE_WL_MAC));
}
