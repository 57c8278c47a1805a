//! Live: 802.1Q tags. BPF_PROG_TEST_RUN cannot show these: the kernel moves a received frame's
//! VLAN tag out of the packet into skb metadata (skb_vlan_untag) before TC ingress runs, and
//! test_run neither does that nor accepts vlan fields in the context. So these tests attach the
//! programs and send real frames between interfaces of the namespace, through AF_PACKET sockets.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use vtep_tests::{
    fixture::{Fixture, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, WL0_MAC, load_standard},
    packet::{eth_destination, eth_source, parse_vxlan, tagged},
    raw_socket::RawSocket,
};

use crate::frames::{remote_udp_frame, standard_vxlan, wl0_udp_frame};

/// True for a VXLAN packet to REMOTE_IP:4789, tagged in the packet or not.
fn is_vxlan_to_remote(f: &[u8]) -> bool {
    let Ok(p) = SlicedPacket::from_ethernet(f) else {
        return false;
    };
    match (p.net, p.transport) {
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp))) => {
            ip.header().destination_addr() == REMOTE_IP && udp.destination_port() == PORT_IANA
        }
        _ => false,
    }
}

/// The frame inside VXLAN packet `f`.
fn inner_of(f: &[u8]) -> &[u8] {
    parse_vxlan(f)
        .unwrap_or_else(|e| panic!("not VXLAN: {e}"))
        .inner
}

/// Regression: the port program ignored `skb->vlan_present`, so the inner frame lost its tag and
/// the outer frame left on the workload's VLAN.
#[test]
fn live_vlan_tag_of_a_workload_frame_does_not_reach_the_underlay() {
    let fx = Fixture::new();
    let (wl0, ul0p) = (fx.ifindex("wl0"), fx.ifindex("ul0p"));
    fx.run(|| {
        let mut dp = load_standard(&fx);
        dp.attach_port("port0", fx.ifindex("port0"))
            .expect("attaching to port0");
        let workload = RawSocket::open(wl0);
        let underlay = RawSocket::open(ul0p);

        // Control: an untagged frame comes out of ul0 encapsulated, untagged.
        let frame = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        workload.send(&frame);
        let got = underlay
            .recv(is_vxlan_to_remote)
            .expect("the untagged frame encapsulated on the underlay");
        assert_eq!(got.outer_vlan(), None);
        assert_eq!(inner_of(&got.frame), frame.as_slice());

        // The workload tags a frame with VLAN 5. The tag belongs to the overlay: it may travel
        // inside the VXLAN packet (as with the kernel's vxlan driver) or the frame may be
        // refused, but the underlay frame must not be put on VLAN 5.
        let frame5 = tagged(&frame, 5);
        workload.send(&frame5);
        if let Some(got) = underlay.recv(is_vxlan_to_remote) {
            assert_eq!(
                got.outer_vlan(),
                None,
                "the workload's VLAN tag is on the outer (underlay) frame"
            );
            assert_eq!(
                inner_of(&got.frame),
                frame5.as_slice(),
                "the inner frame lost its VLAN tag"
            );
        }
    });
}

/// Regression: the underlay program ignored `skb->vlan_present`, decapsulated VXLAN from any
/// VLAN, and the inner frame reached the workload with that tag.
#[test]
fn live_vxlan_tagged_on_the_underlay_does_not_reach_a_workload_tagged() {
    let fx = Fixture::new();
    let (wl0, ul0p) = (fx.ifindex("wl0"), fx.ifindex("ul0p"));
    fx.run(|| {
        let mut dp = load_standard(&fx);
        dp.attach_underlay("ul0", fx.ifindex("ul0"))
            .expect("attaching to ul0");
        let workload = RawSocket::open(wl0);
        let underlay = RawSocket::open(ul0p);
        let inner = remote_udp_frame(WL0_MAC);
        let is_inner =
            |f: &[u8]| (eth_destination(f), eth_source(f)) == (Some(WL0_MAC), Some(REMOTE_WL_MAC));

        // Control: untagged VXLAN to us is delivered to wl0 as the plain inner frame.
        let pkt = standard_vxlan(&inner);
        underlay.send(&pkt);
        let got = workload
            .recv(is_inner)
            .expect("the untagged packet decapsulated to wl0");
        assert_eq!(got.outer_vlan(), None);
        assert_eq!(got.frame, inner);

        // The same packet on underlay VLAN 7 (ul0 itself is untagged, so it is not addressed
        // to our VTEP on our network). Whatever happens to it, the workload must not receive
        // the inner frame tagged with the underlay's VLAN.
        underlay.send(&tagged(&pkt, 7));
        if let Some(got) = workload.recv(is_inner) {
            assert_eq!(
                got.outer_vlan(),
                None,
                "the underlay's VLAN tag reached the workload on the inner frame"
            );
        }
    });
}
