//! The outer UDP source port: a hash of the inner flow (ECMP entropy), in the configured range.

use vtep_common::{
    flow,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    fixture::{Fixture, PORT_IANA, TTL, VNI, config, load},
    packet::{ETH_P_IP, IPPROTO_UDP},
};

use crate::{
    REMOTE_WL_IP, WL0_IP,
    checks::{Expect, srcport_of, standard},
};

#[test]
fn encap_source_port_is_stable_per_flow_and_differs_between_flows() {
    standard(|fx, dp| {
        let want = Expect::standard();
        // One flow, one path: the same inner 5-tuple always gets the same outer source port.
        let first = srcport_of(dp, fx.port0, 1000, &want);
        for _ in 0..5 {
            assert_eq!(srcport_of(dp, fx.port0, 1000, &want), first);
        }
        // Different flows spread over ECMP links: 64 inner source ports cannot all hash to one
        // outer port unless the port ignores the flow.
        let mut ports: Vec<u16> = (2000..2064)
            .map(|sport| srcport_of(dp, fx.port0, sport, &want))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert!(ports.len() > 1, "64 flows all got source port {}", ports[0]);
    });
}

#[test]
fn encap_source_port_stays_in_a_narrow_range() {
    let fx = Fixture::new();
    fx.run(|| {
        let (min, max) = (50000, 50003);
        let mut dp = load(&config(min, max), &[fx.table(VNI, PORT_IANA, TTL)]);
        let want = Expect {
            srcport_min: min,
            srcport_max: max,
            ..Expect::standard()
        };
        // check_encap asserts every port is inside the range; 64 flows over 4 ports should
        // also reach both ends of it (an off-by-one in the scaling would miss `max`).
        let mut ports: Vec<u16> = (3000..3064)
            .map(|sport| srcport_of(&mut dp, fx.port0, sport, &want))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports, vec![50000, 50001, 50002, 50003]);
    });
}

#[test]
fn encap_source_port_is_the_hash_of_the_inner_addresses_protocol_and_ports() {
    standard(|fx, dp| {
        // A test-run skb has no hash of its own, so the datapath hashes the inner headers:
        // Ethernet type, both IPv4 addresses, the protocol, then both ports.
        let sport = 1234;
        let mut h = flow::mix(flow::SEED, u32::from(ETH_P_IP));
        h = flow::mix(h, u32::from_be_bytes(WL0_IP.octets()));
        h = flow::mix(h, u32::from_be_bytes(REMOTE_WL_IP.octets()));
        h = flow::mix(h, u32::from(IPPROTO_UDP));
        h = flow::mix(h, (u32::from(sport) << 16) | 7000);
        let want_port =
            flow::scale_to_port(flow::finish(h), DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
        assert_eq!(
            srcport_of(dp, fx.port0, sport, &Expect::standard()),
            want_port
        );
    });
}
