//! Malformed VXLAN over IPv6 for us (vtep_tests::packet::Malformed6), each lie alone, with and
//! without a UDP checksum: lengths that disagree with the frame or with each other are dropped
//! as `vxlan_bad_length`, a packet too short for VXLAN and an inner Ethernet header as
//! `vxlan_truncated`; an extension header before UDP is the kernel's to handle, so the packet
//! passes untouched (TC_PASS / XDP_PASS), never half-parsed.

use vtep::datapath::loader::PROG_UNDERLAY;
use vtep_common::drop::DropReason;
use vtep_tests::{
    fixture::{PORT_IANA, TC_PASS, VNI, WL0_MAC, XDP_DROP, XDP_PASS, test_run, xdp_test_run},
    fixture6::{REMOTE_IP6, outer6_from},
    packet::{Csum6, Malformed6, VXLAN_I, vxlan_header},
};

use super::standard6;
use crate::{
    checks::{check_counted_drop, check_passed, check_refused},
    frames::remote_udp_frame,
};

/// What the datapath must do with `m`: drop it under a reason, or (None) pass it.
pub fn expected(m: Malformed6) -> Option<DropReason> {
    match m {
        Malformed6::ShortPayloadLength
        | Malformed6::LongPayloadLength
        | Malformed6::FarPayloadLength
        | Malformed6::ShortUdpLength
        | Malformed6::LongUdpLength
        | Malformed6::EmptyUdpLength => Some(DropReason::VxlanBadLength),
        Malformed6::TruncatedVxlanHeader | Malformed6::TruncatedInnerFrame => {
            Some(DropReason::VxlanTruncated)
        }
        Malformed6::ExtensionHeader => None,
    }
}

/// Every malformed variant with UDP checksum `csum`, each with its description.
pub fn malformed6(csum: Csum6) -> Vec<(Malformed6, String, Vec<u8>)> {
    let inner = remote_udp_frame(WL0_MAC);
    let outer = outer6_from(REMOTE_IP6, PORT_IANA).with_csum(csum);
    Malformed6::ALL
        .iter()
        .map(|m| {
            let pkt = outer.build_malformed(*m, vxlan_header(VXLAN_I, VNI), &inner);
            (*m, format!("{m:?} ({csum:?} checksum)"), pkt)
        })
        .collect()
}

#[test]
fn malformed6_outer_ipv6_is_dropped_under_its_reason_or_passed() {
    standard6(false, |fx, dp| {
        for csum in [Csum6::Correct, Csum6::Zero] {
            for (m, what, pkt) in malformed6(csum) {
                match expected(m) {
                    Some(reason) => check_refused(dp, fx, &pkt, reason, &what),
                    None => {
                        let run = |dp: &mut _| test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
                        check_passed(dp, run, TC_PASS, &pkt, &what);
                    }
                }
            }
        }
    });
}

#[test]
fn xdp6_malformed_outer_ipv6_is_dropped_under_tcs_reason_or_passed() {
    standard6(false, |_, dp| {
        for csum in [Csum6::Correct, Csum6::Zero] {
            for (m, what, pkt) in malformed6(csum) {
                let run = |dp: &mut _| xdp_test_run(dp, &pkt);
                match expected(m) {
                    Some(reason) => check_counted_drop(dp, run, XDP_DROP, reason, &what),
                    None => check_passed(dp, run, XDP_PASS, &pkt, &what),
                }
            }
        }
    });
}
