//! The port program between local ports, and on an interface that is not a port.

use vtep::datapath::loader::PROG_PORT;
use vtep_common::{drop::DropReason, maps::VniStats};
use vtep_tests::{
    fixture::{REMOTE_WL_MAC, TC_ACT_REDIRECT, WL0_MAC, WL1_MAC, test_run},
    packet::{ETH_P_IP, IPPROTO_UDP, Ipv4, eth, udp},
};

use crate::{
    WL0_IP, WL1_IP,
    checks::{check_port_refuses, standard},
    frames::wl0_udp_frame,
};
use vtep_tests::counters::Counters;

#[test]
fn local_switching_redirects_unchanged() {
    standard(|fx, dp| {
        let frame = eth(
            WL1_MAC,
            WL0_MAC,
            ETH_P_IP,
            &Ipv4::new(WL0_IP, WL1_IP, IPPROTO_UDP).build(&udp(WL0_IP, WL1_IP, 1, 2, b"local")),
        );
        let before = Counters::read(dp);
        let run = test_run(dp, PROG_PORT, fx.port0, &frame);
        assert_eq!(run.verdict, TC_ACT_REDIRECT, "redirected to port1");
        assert_eq!(run.out, frame, "a switched frame is not modified");
        let after = Counters::read(dp);
        let local = |s: &VniStats| (s.local_packets, s.local_bytes);
        after.assert_one_packet_more(&before, local, frame.len(), "local");
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets);
    });
}

#[test]
fn port_program_on_an_unknown_port_drops() {
    standard(|fx, dp| {
        // The program run for an interface that has no port entry (ul0).
        let frame = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        check_port_refuses(dp, fx.ul0, &frame, DropReason::UnknownPort);
    });
}
