//! The XDP program on an IPv6 underlay, on the packets the TC decap tests use: known unicast with
//! a correct or a zero UDP checksum is decapsulated and redirected as exactly the inner frame;
//! a wrong non-zero checksum goes to TC (which alone knows whether a local sender left it to an
//! offload, as over IPv4); unknown VNIs are dropped under TC's reasons; the sending IPv6 VTEP is
//! learned. Malformed packets: `malformed::xdp6_*`.

use vtep_common::{
    drop::DropReason,
    maps::{FDB_F_LEARNED, FDB_REMOTE},
};
use vtep_tests::{
    fixture::{PORT_IANA, VNI, WL0_MAC, WL1_MAC, XDP_DROP, XDP_PASS, XDP_REDIRECT, xdp_test_run},
    fixture6::{REMOTE_IP6, standard_vxlan6, vxlan6_to_us},
    packet::{Csum6, VXLAN_I, vxlan_header},
};

use super::{learn::roaming_from, standard6};
use crate::{
    ROAMING_MAC, UNKNOWN_VNI,
    checks::{check_counted_drop, check_delivered, check_passed},
    frames::{remote_udp_frame, remote_udp6_frame},
    learn::fdb_entry,
};

#[test]
fn xdp6_decapsulates_checksummed_and_zero_checksum_packets() {
    standard6(false, |_, dp| {
        for csum in [Csum6::Correct, Csum6::Zero] {
            for inner in [
                remote_udp_frame(WL0_MAC),
                remote_udp_frame(WL1_MAC),
                remote_udp6_frame(WL0_MAC),
            ] {
                let pkt = standard_vxlan6(csum, &inner);
                let run = |dp: &mut _| xdp_test_run(dp, &pkt);
                check_delivered(dp, run, XDP_REDIRECT, &inner);
            }
        }
    });
}

#[test]
fn xdp6_passes_a_wrong_checksum_and_drops_unknown_vnis() {
    standard6(false, |_, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = standard_vxlan6(Csum6::Wrong, &inner);
        let run = |dp: &mut _| xdp_test_run(dp, &pkt);
        check_passed(dp, run, XDP_PASS, &pkt, "a wrong non-zero UDP checksum");
        let pkt = vxlan6_to_us(
            PORT_IANA,
            Csum6::Correct,
            vxlan_header(VXLAN_I, UNKNOWN_VNI),
            &inner,
        );
        let run = |dp: &mut _| xdp_test_run(dp, &pkt);
        check_counted_drop(dp, run, XDP_DROP, DropReason::UnknownVni, "VNI 200");
        let pkt = vxlan6_to_us(PORT_IANA, Csum6::Zero, vxlan_header(0, VNI), &inner);
        let run = |dp: &mut _| xdp_test_run(dp, &pkt);
        check_counted_drop(dp, run, XDP_DROP, DropReason::VxlanBadFlags, "I flag clear");
    });
}

#[test]
fn xdp6_learns_the_inner_source_behind_the_ipv6_vtep() {
    standard6(false, |_, dp| {
        let (pkt, inner) = roaming_from(REMOTE_IP6);
        let run = |dp: &mut _| xdp_test_run(dp, &pkt);
        check_delivered(dp, run, XDP_REDIRECT, &inner);
        let e = fdb_entry(dp, ROAMING_MAC).expect("learned from the XDP path");
        assert_eq!((e.kind, e.remote), (FDB_REMOTE, REMOTE_IP6.octets()));
        assert_ne!(e.flags & FDB_F_LEARNED, 0, "marked learned");
    });
}
