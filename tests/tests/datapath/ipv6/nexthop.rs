//! The underlay next hop over IPv6: the resolver's cache (keyed by the 16-byte VTEP address)
//! first, the kernel's IPv6 fib otherwise; no route is a drop, an unresolved neighbour is left
//! to the kernel (`bpf_redirect_neigh`) for IP frames and dropped for the rest.

use vtep::datapath::loader::PROG_PORT;
use vtep_common::{drop::DropReason, maps::NextHopEntry};
use vtep_tests::{
    fixture::{
        NEIGH_MAC, REMOTE_WL_MAC, TC_ACT_REDIRECT, UL_MAC, UNRESOLVED_WL_MAC, UNROUTABLE_WL_MAC,
        WL0_MAC, test_run,
    },
    fixture6::{REMOTE_IP6, UNRESOLVED_IP6},
    packet::{ETH_P_ARP, Mac, arp_request, eth, parse_vxlan6},
};

use super::{Expect6, check_encap6, standard6, wl0_icmp_frame};
use crate::{REMOTE_WL_IP, WL0_IP, checks::check_port_refuses};

/// `out` with the outer MACs the kernel's fib gives for the remote VTEP.
fn with_fib_macs(out: &[u8]) -> Vec<u8> {
    let mut with_macs = out.to_vec();
    with_macs[0..6].copy_from_slice(&NEIGH_MAC.0);
    with_macs[6..12].copy_from_slice(&UL_MAC.0);
    with_macs
}

#[test]
fn encap6_uses_the_cached_next_hop_over_the_fib() {
    standard6(false, |fx, dp| {
        let cached_dmac = Mac([0x02, 0xca, 0xce, 0x00, 0x00, 0x01]);
        let cached_smac = Mac([0x02, 0xca, 0xce, 0x00, 0x00, 0x02]);
        let entry = NextHopEntry {
            ifindex: fx.ul0,
            dmac: cached_dmac.0,
            smac: cached_smac.0,
        };
        dp.nexthops()
            .expect("next-hop map")
            .insert(REMOTE_IP6.octets(), entry, 0)
            .expect("caching a next hop");
        let inner = wl0_icmp_frame(REMOTE_WL_MAC);
        let run = test_run(dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent to the underlay");
        let v = parse_vxlan6(&run.out).expect("VXLAN over IPv6");
        assert_eq!(v.dst_mac(), cached_dmac, "outer dst MAC from the cache");
        assert_eq!(v.src_mac(), cached_smac, "outer src MAC from the cache");
        check_encap6(&with_fib_macs(&run.out), &inner, &Expect6::standard(false));
    });
}

#[test]
fn encap6_without_a_route_drops() {
    standard6(false, |fx, dp| {
        let frame = wl0_icmp_frame(UNROUTABLE_WL_MAC);
        check_port_refuses(dp, fx.port0, &frame, DropReason::NoRoute);
    });
}

#[test]
fn encap6_to_an_unresolved_neighbour_lets_the_kernel_resolve_ip_frames() {
    standard6(false, |fx, dp| {
        let inner = wl0_icmp_frame(UNRESOLVED_WL_MAC);
        let run = test_run(dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        let v = parse_vxlan6(&run.out).expect("VXLAN over IPv6");
        assert_eq!(
            (v.dst_mac().0, v.src_mac().0),
            ([0; 6], [0; 6]),
            "outer MACs left to the kernel"
        );
        let want = Expect6 {
            dst: UNRESOLVED_IP6,
            ..Expect6::standard(false)
        };
        check_encap6(&with_fib_macs(&run.out), &inner, &want);
        // A non-IP frame cannot wait for the neighbour in the kernel.
        let arp = eth(
            UNRESOLVED_WL_MAC,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
        );
        check_port_refuses(dp, fx.port0, &arp, DropReason::NexthopUnresolved);
    });
}
