//! The underlay next hop of encapsulated packets: the resolver's cache first, the kernel's fib
//! otherwise, and what happens when there is no route or no resolved neighbour.

use vtep::datapath::loader::PROG_PORT;
use vtep_common::drop::DropReason;
use vtep_tests::{
    fixture::{
        NEIGH_MAC, REMOTE_IP, REMOTE_WL_MAC, TC_ACT_REDIRECT, UL_MAC, UNRESOLVED_IP,
        UNRESOLVED_WL_MAC, UNROUTABLE_WL_MAC, WL0_MAC, cache_next_hop, test_run,
    },
    packet::{ETH_P_ARP, Mac, arp_request, eth, parse_vxlan},
};

use crate::{
    REMOTE_WL_IP, WL0_IP,
    checks::{Expect, check_encap, check_port_refuses, standard},
    frames::wl0_udp_frame,
};

/// `out` with the outer MACs set to those the kernel's fib gives for the remote VTEP.
fn with_fib_macs(out: &[u8]) -> Vec<u8> {
    let mut with_macs = out.to_vec();
    with_macs[0..6].copy_from_slice(&NEIGH_MAC.0);
    with_macs[6..12].copy_from_slice(&UL_MAC.0);
    with_macs
}

#[test]
fn encap_uses_the_cached_next_hop_over_the_fib() {
    standard(|fx, dp| {
        // What the resolver writes for a remote whose next hop it resolved; distinct MACs, so
        // the output shows they came from the cache and not from the kernel's neighbour table.
        let cached_dmac = Mac([0x02, 0xca, 0xce, 0x00, 0x00, 0x01]);
        let cached_smac = Mac([0x02, 0xca, 0xce, 0x00, 0x00, 0x02]);
        cache_next_hop(dp, REMOTE_IP, fx.ul0, cached_dmac, cached_smac);
        let inner = wl0_udp_frame(REMOTE_WL_MAC, 1000);

        let run = test_run(dp, PROG_PORT, fx.port0, &inner);

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent to the underlay");
        let v = parse_vxlan(&run.out).expect("VXLAN");
        assert_eq!(
            v.eth.destination, cached_dmac.0,
            "outer dst MAC from the cache"
        );
        assert_eq!(v.eth.source, cached_smac.0, "outer src MAC from the cache");
        // Everything after the MACs is as without the cache.
        check_encap(&with_fib_macs(&run.out), &inner, &Expect::standard());
    });
}

#[test]
fn encap_without_a_route_drops() {
    standard(|fx, dp| {
        // UNROUTABLE_WL is behind a VTEP the namespace has no route to.
        let frame = wl0_udp_frame(UNROUTABLE_WL_MAC, 1000);
        check_port_refuses(dp, fx.port0, &frame, DropReason::NoRoute);
    });
}

/// Regression: port.rs counted `Traffic::Encap` before it decided that the frame could not be
/// sent, so the drop also showed as an encapsulated packet (encap_packets +1).
#[test]
fn encap_non_ip_to_an_unresolved_neighbour_drops_without_counting_it_sent() {
    standard(|fx, dp| {
        // A non-IP frame cannot wait for the neighbour in the kernel (bpf_redirect_neigh takes
        // only IPv4 skbs), so it is dropped as nexthop_unresolved. It was not sent, so
        // encap_packets must not count it.
        let frame = eth(
            UNRESOLVED_WL_MAC,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
        );
        check_port_refuses(dp, fx.port0, &frame, DropReason::NexthopUnresolved);
    });
}

#[test]
fn encap_to_an_unresolved_neighbour_lets_the_kernel_resolve() {
    standard(|fx, dp| {
        // An IPv4 frame waits for neighbour resolution in the kernel (bpf_redirect_neigh): the
        // outer MACs stay zero for the kernel to fill; everything else is as usual.
        let inner = wl0_udp_frame(UNRESOLVED_WL_MAC, 1000);
        let run = test_run(dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        let v = parse_vxlan(&run.out).expect("VXLAN");
        assert_eq!(
            (v.eth.destination, v.eth.source),
            ([0; 6], [0; 6]),
            "outer MACs left to the kernel"
        );
        check_encap(
            &with_fib_macs(&run.out),
            &inner,
            &Expect {
                dst_ip: UNRESOLVED_IP,
                ..Expect::standard()
            },
        );
    });
}
