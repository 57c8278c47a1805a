//! The ARP and neighbour discovery proxy (the kernel's `proxy`, `l3miss`): answers for known
//! addresses on the host, floods and reports the rest, learns from decapsulated replies.

use std::net::{Ipv4Addr, Ipv6Addr};

use vtep::datapath::loader::{Datapath, PROG_PORT};
use vtep_common::maps::{FDB_F_LEARNED, ProxyKey, VNI_F_L3MISS, VNI_F_PROXY};
use vtep_tests::{
    fixture::{
        Fixture, REMOTE_WL_MAC, TC_ACT_REDIRECT, TC_ACT_SHOT, VNI, WL0_MAC, load_changed, test_run,
    },
    packet::{
        BROADCAST, ETH_P_ARP, arp_reply, arp_request, eth, eth_source, nd_frame, solicitation,
    },
};

use crate::{
    REMOTE_WL_IP, REMOTE_WL_IP6, ROAMING_MAC, WL0_IP, WL0_IP6, checks::check_decap,
    frames::standard_vxlan, miss::miss_events,
};
use vtep_tests::counters::Counters;

/// The standard table with the proxy on (and `extra` flags), knowing REMOTE_WL_IP.
pub fn load_proxy(fx: &Fixture, extra: u32) -> Datapath {
    load_changed(fx, |table| {
        table.flags = VNI_F_PROXY | extra;
        table.proxy_entries = vec![(REMOTE_WL_IP.into(), REMOTE_WL_MAC)];
    })
}

/// WL0 asking, by broadcast, who has `target`.
fn wl0_arp_request(target: Ipv4Addr) -> Vec<u8> {
    eth(
        BROADCAST,
        WL0_MAC,
        ETH_P_ARP,
        &arp_request(WL0_MAC, WL0_IP, target),
    )
}

#[test]
fn proxy_answers_a_request_for_a_known_address_on_the_host() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, 0);
        let before = Counters::read(&mut dp);
        let ul_sent = fx.tx_packets("ul0");

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(REMOTE_WL_IP));

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent back to the asking port");
        let want = eth(
            WL0_MAC,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_reply(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_MAC, WL0_IP),
        );
        assert_eq!(run.out, want, "the reply, exactly");
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies + 1);
        assert_eq!(
            after.stats.flood_packets, before.stats.flood_packets,
            "not flooded"
        );
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets);
        assert_eq!(
            fx.tx_packets("ul0"),
            ul_sent,
            "no VXLAN packet left the host"
        );
    });
}

#[test]
fn proxy_floods_unknown_and_gratuitous_requests_and_reports_l3miss() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, VNI_F_L3MISS);
        let unknown = Ipv4Addr::new(10, 0, 0, 99);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(unknown));
        assert_eq!(run.verdict, TC_ACT_SHOT, "consumed by the flood");
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies);
        let events = miss_events(&mut dp);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((events[0].event, events[0].ip), ("l3miss", Some(unknown)));
        assert_eq!(events[0].port, "port0");

        // A gratuitous announcement of a known address is flooded, not answered.
        let garp = eth(
            BROADCAST,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, REMOTE_WL_IP, REMOTE_WL_IP),
        );
        let before = Counters::read(&mut dp);
        test_run(&mut dp, PROG_PORT, fx.port0, &garp);
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert!(
            miss_events(&mut dp).is_empty(),
            "no l3miss for an announcement"
        );
    });
}

#[test]
fn proxy_learns_addresses_from_arp_in_decapsulated_frames() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, 0);
        let roaming_ip = Ipv4Addr::new(10, 0, 0, 77);
        // A remote workload's reply to WL0 teaches where roaming_ip is.
        let inner = eth(
            WL0_MAC,
            ROAMING_MAC,
            ETH_P_ARP,
            &arp_reply(ROAMING_MAC, roaming_ip, WL0_MAC, WL0_IP),
        );
        let pkt = standard_vxlan(&inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let entry = dp
            .proxy()
            .unwrap()
            .get(
                &ProxyKey {
                    vni: VNI,
                    ip: roaming_ip.octets(),
                },
                0,
            )
            .expect("learned");
        assert_eq!((entry.mac, entry.flags), (ROAMING_MAC.0, FDB_F_LEARNED));

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(roaming_ip));
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        assert_eq!(
            eth_source(&run.out),
            Some(ROAMING_MAC),
            "answered with the learned MAC"
        );
    });
}

#[test]
fn without_proxy_requests_are_flooded_even_for_known_addresses() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.proxy_entries = vec![(REMOTE_WL_IP.into(), REMOTE_WL_MAC)];
        });
        let before = Counters::read(&mut dp);
        test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(REMOTE_WL_IP));
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(after.stats.proxy_replies, 0);
    });
}

/// WL0 soliciting `target` (to its solicited-node multicast address).
fn wl0_solicit(target: Ipv6Addr) -> Vec<u8> {
    solicitation(WL0_MAC, WL0_IP6, target)
}

#[test]
fn proxy_answers_a_neighbour_solicitation_for_a_known_ipv6_address() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.flags = VNI_F_PROXY;
            table.proxy_entries = vec![(REMOTE_WL_IP6.into(), REMOTE_WL_MAC)];
        });
        let ul_sent = fx.tx_packets("ul0");

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_solicit(REMOTE_WL_IP6));

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent back to the asking port");
        let want = nd_frame(
            136,
            WL0_MAC,
            REMOTE_WL_MAC,
            REMOTE_WL_IP6,
            WL0_IP6,
            REMOTE_WL_IP6,
            0x60,
            REMOTE_WL_MAC,
        );
        assert_eq!(
            run.out, want,
            "the advertisement, exactly (checksum included)"
        );
        assert_eq!(Counters::read(&mut dp).stats.proxy_replies, 1);
        assert_eq!(fx.tx_packets("ul0"), ul_sent, "nothing left the host");

        // Unknown targets and duplicate address detection (unspecified source) are flooded.
        let before = Counters::read(&mut dp);
        let unknown = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99);
        test_run(&mut dp, PROG_PORT, fx.port0, &wl0_solicit(unknown));
        let mut dad = wl0_solicit(REMOTE_WL_IP6);
        // The IPv6 source (bytes 8..24 of the IPv6 header) unspecified.
        dad[22..38].fill(0);
        test_run(&mut dp, PROG_PORT, fx.port0, &dad);
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 2);
    });
}

#[test]
fn proxy_learns_ipv6_addresses_from_decapsulated_advertisements() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.flags = VNI_F_PROXY;
        });
        let roaming = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x77);
        let advert = nd_frame(
            136,
            WL0_MAC,
            ROAMING_MAC,
            roaming,
            WL0_IP6,
            roaming,
            0x60,
            ROAMING_MAC,
        );
        let pkt = standard_vxlan(&advert);
        check_decap(&mut dp, &fx, &pkt, &advert);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_solicit(roaming));
        assert_eq!(
            run.verdict, TC_ACT_REDIRECT,
            "answered from what was learned"
        );
        assert_eq!(eth_source(&run.out), Some(ROAMING_MAC));
    });
}
