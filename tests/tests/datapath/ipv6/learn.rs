//! Learning behind IPv6 VTEPs: a decapsulated frame teaches (VNI, source MAC) -> the outer IPv6
//! source, which is noted for userspace to resolve and then used to encapsulate; a station moves
//! with its VTEP; outer sources that cannot be a VTEP teach nothing.

use std::net::Ipv6Addr;

use vtep::datapath::loader::PROG_PORT;
use vtep_common::maps::{FDB_F_LEARNED, FDB_REMOTE};
use vtep_tests::{
    fixture::{PORT_IANA, TC_ACT_REDIRECT, VNI, WL0_MAC, test_run},
    fixture6::{LOCAL_IP6, OTHER_IP6, REMOTE_IP6, outer6_from},
    packet::{VXLAN_I, vxlan_header},
};

use super::{Expect6, check_encap6, standard6, wl0_icmp_frame};
use crate::{ROAMING_MAC, checks::check_decap, frames::remote_udp_frame_from, learn::fdb_entry};

/// A checksummed VXLAN packet from VTEP `from` to us carrying a frame from ROAMING_MAC to
/// WL0, and that frame.
pub fn roaming_from(from: Ipv6Addr) -> (Vec<u8>, Vec<u8>) {
    let inner = remote_udp_frame_from(ROAMING_MAC, WL0_MAC, b"learn me over IPv6");
    let pkt = outer6_from(from, PORT_IANA).build(vxlan_header(VXLAN_I, VNI), &inner);
    (pkt, inner)
}

#[test]
fn decap6_learns_the_inner_source_behind_the_ipv6_vtep() {
    standard6(false, |fx, dp| {
        assert!(fdb_entry(dp, ROAMING_MAC).is_none());
        let (pkt, inner) = roaming_from(REMOTE_IP6);
        check_decap(dp, fx, &pkt, &inner);
        let e = fdb_entry(dp, ROAMING_MAC).expect("learned");
        assert_eq!((e.kind, e.remote), (FDB_REMOTE, REMOTE_IP6.octets()));
        assert_eq!(e.flags, FDB_F_LEARNED);
        assert!(
            dp.dynamic_vteps()
                .unwrap()
                .get(&REMOTE_IP6.octets(), 0)
                .is_ok(),
            "the IPv6 VTEP is noted for userspace to resolve"
        );
        // Traffic to the station now goes to that VTEP, over IPv6.
        let out = wl0_icmp_frame(ROAMING_MAC);
        let run = test_run(dp, PROG_PORT, fx.port0, &out);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap6(&run.out, &out, &Expect6::standard(false));
    });
}

#[test]
fn learned6_mac_moves_to_another_ipv6_vtep() {
    standard6(false, |fx, dp| {
        let (pkt, inner) = roaming_from(REMOTE_IP6);
        check_decap(dp, fx, &pkt, &inner);
        let (pkt, inner) = roaming_from(OTHER_IP6);
        check_decap(dp, fx, &pkt, &inner);
        let e = fdb_entry(dp, ROAMING_MAC).expect("still known");
        assert_eq!(e.remote, OTHER_IP6.octets(), "moved with the station");
        assert_eq!(e.flags, FDB_F_LEARNED);
    });
}

/// Outer sources that are not a unicast VTEP: unspecified, loopback, multicast, an
/// IPv4-mapped address (an IPv4 VTEP is not on an IPv6 underlay), a link-local address (no
/// scope in a VTEP address; the config refuses one too: learning it was a gap the tests' review
/// found), and our own address. The frame is delivered, as over IPv4, but nothing is learned.
#[test]
fn a_forged_ipv6_outer_source_teaches_nothing() {
    standard6(false, |fx, dp| {
        for forged in [
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::LOCALHOST,
            "ff02::1".parse().unwrap(),
            "ff0e::100".parse().unwrap(),
            "::ffff:198.18.0.2".parse().unwrap(),
            "fe80::2".parse().unwrap(),
            LOCAL_IP6,
        ] {
            let (pkt, inner) = roaming_from(forged);
            check_decap(dp, fx, &pkt, &inner);
            assert_eq!(fdb_entry(dp, ROAMING_MAC), None, "learned behind {forged}");
        }
        assert!(dp.dynamic_vteps().unwrap().keys().next().is_none());
    });
}
