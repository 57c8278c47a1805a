//! The XDP program on the underlay (`vtep_underlay_xdp`), on the packets the TC decap tests use:
//! known unicast to a port is decapsulated and redirected as exactly the inner frame; what is
//! not ours, what floods and what only an skb can judge passes untouched to TC; malformed and
//! unknown-VNI VXLAN is dropped and counted under TC's reasons; stations are learned.

use vtep::datapath::loader::Datapath;
use vtep_common::{
    drop::DropReason,
    maps::{FDB_F_LEARNED, FDB_REMOTE, vtep_addr_v4},
};
use vtep_tests::{
    counters::Counters,
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, PORT_LEGACY, REMOTE_IP, REMOTE_WL_MAC, UL_MAC,
        VNI, WL0_MAC, WL1_MAC, XDP_DROP, XDP_PASS, XDP_REDIRECT, load_changed, xdp_test_run,
    },
    packet::{
        BROADCAST, ETH_P_ARP, ETH_P_IP, IPPROTO_TCP, IPPROTO_UDP, Ipv4, VXLAN_I, arp_reply, eth,
        l4_pseudo_header_sum, l4_pseudo_header_sum6, tcp, udp_no_checksum, vxlan_header,
    },
};

use crate::{
    BIG_VNI, REMOTE_WL_IP, REMOTE_WL_IP6, ROAMING_MAC, UNKNOWN_MAC, UNKNOWN_VNI, WL0_IP, WL0_IP6,
    checks::{check_counted_drop, check_delivered, check_passed, standard},
    frames::{
        outer_ip_to, remote_udp_frame, remote_udp_frame_from, remote_udp6_frame, standard_vxlan,
        vxlan_to_us,
    },
    hardening::checksummed_vxlan,
    learn::fdb_entry,
    passthrough::not_vxlan_for_us,
    proxy::load_proxy,
};

/// Runs the XDP program on `pkt` (carrying `inner`) and checks it redirects exactly `inner`,
/// counted as one decapsulated packet and nothing else.
#[track_caller]
fn check_xdp_decap(dp: &mut Datapath, pkt: &[u8], inner: &[u8]) {
    let before = Counters::read(dp);
    check_delivered(dp, |dp| xdp_test_run(dp, pkt), XDP_REDIRECT, inner);
    // Counted as XDP's share too (`decap_by_xdp`), which TC's decapsulations never move.
    let after = Counters::read(dp);
    assert_eq!(after.stats.decap_by_xdp, before.stats.decap_by_xdp + 1);
}

/// TC's decapsulation of what XDP passed is not counted as XDP's.
#[test]
fn tc_decapsulation_is_not_counted_as_xdps() {
    standard(|fx, dp| {
        let pkt = standard_vxlan(&remote_udp_frame(WL0_MAC));
        let before = Counters::read(dp);
        let run =
            vtep_tests::fixture::test_run(dp, vtep::datapath::loader::PROG_UNDERLAY, fx.ul0, &pkt);
        assert_eq!(run.verdict, vtep_tests::fixture::TC_ACT_REDIRECT);
        let after = Counters::read(dp);
        assert_eq!(after.stats.decap_packets, before.stats.decap_packets + 1);
        assert_eq!(after.stats.decap_by_xdp, before.stats.decap_by_xdp);
    });
}

/// Runs the XDP program on `pkt` and checks it passes the packet to TC byte for byte, with no
/// counter moved (TC counts it when it handles it).
#[track_caller]
fn check_xdp_pass(dp: &mut Datapath, pkt: &[u8], what: &str) {
    check_passed(dp, |dp| xdp_test_run(dp, pkt), XDP_PASS, pkt, what);
}

/// Runs the XDP program on `pkt` and checks it is dropped, counted under `reason` only.
#[track_caller]
fn check_xdp_refused(dp: &mut Datapath, pkt: &[u8], reason: DropReason, what: &str) {
    check_counted_drop(dp, |dp| xdp_test_run(dp, pkt), XDP_DROP, reason, what);
}

#[test]
fn xdp_decapsulates_known_unicast_to_a_port() {
    standard(|_, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        check_xdp_decap(dp, &standard_vxlan(&inner), &inner);
        // To the other port, and an IPv6 inner frame.
        let inner = remote_udp_frame(WL1_MAC);
        check_xdp_decap(dp, &standard_vxlan(&inner), &inner);
        let inner = remote_udp6_frame(WL0_MAC);
        check_xdp_decap(dp, &standard_vxlan(&inner), &inner);
        // A unicast ARP reply of 42 bytes (under the Ethernet minimum, as Linux sends it).
        let inner = eth(
            WL0_MAC,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_reply(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_MAC, WL0_IP),
        );
        check_xdp_decap(dp, &standard_vxlan(&inner), &inner);
        // The shortest: a 20-byte LLC frame (TC's adjust_room needed padding for it).
        let inner = eth(WL0_MAC, REMOTE_WL_MAC, 6, &[0, 0, 0xaf, 0x81, 1, 0]);
        check_xdp_decap(dp, &standard_vxlan(&inner), &inner);
        // Reserved VXLAN bits are ignored (RFC 7348 section 5).
        let inner = remote_udp_frame(WL0_MAC);
        let v = VNI.to_be_bytes();
        let vx = [0xff, 0xff, 0xff, 0xff, v[1], v[2], v[3], 0xff];
        check_xdp_decap(dp, &vxlan_to_us(PORT_IANA, vx, &inner), &inner);
    });
}

#[test]
fn xdp_decap_uses_all_24_vni_bits_and_the_legacy_port() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| {
            t.id = BIG_VNI;
            t.dstport = PORT_LEGACY;
        });
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_LEGACY, vxlan_header(VXLAN_I, BIG_VNI), &inner);
        check_xdp_decap(&mut dp, &pkt, &inner);
    });
}

#[test]
fn xdp_checks_a_nonzero_udp_checksum_and_trims_what_follows_the_packet() {
    standard(|_, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let good = checksummed_vxlan(&inner);
        check_xdp_decap(dp, &good, &inner);
        let mut trailer = good.clone();
        trailer.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        check_xdp_decap(dp, &trailer, &inner);
        // Wrong: XDP cannot know whether a sender on this host left it to an offload
        // (CHECKSUM_PARTIAL, which the kernel accepts); TC knows, and drops or delivers.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 0x01;
        check_xdp_pass(dp, &bad, "a wrong non-zero UDP checksum");
    });
}

/// Regression: over a veth underlay, a frame whose TCP checksum the sender left to an offload
/// (CHECKSUM_PARTIAL: the field holds the pseudo-header sum) was redirected by XDP, which has no
/// skb to carry that state; the workload dropped it as corrupt and TCP connections between
/// two vtep hosts timed out while pings worked. Such frames go to TC.
#[test]
fn xdp_passes_inner_frames_whose_checksum_is_left_to_an_offload() {
    standard(|_, dp| {
        // Complete checksums: redirected.
        let tcp_frame = |check: Option<u16>| {
            let mut seg = tcp(REMOTE_WL_IP, WL0_IP, 40000, 5001, 0x18, b"left to offload");
            if let Some(c) = check {
                seg[16..18].copy_from_slice(&c.to_be_bytes());
            }
            eth(
                WL0_MAC,
                REMOTE_WL_MAC,
                ETH_P_IP,
                &Ipv4::new(REMOTE_WL_IP, WL0_IP, IPPROTO_TCP).build(&seg),
            )
        };
        let whole = tcp_frame(None);
        check_xdp_decap(dp, &standard_vxlan(&whole), &whole);
        let ipv6 = remote_udp6_frame(WL0_MAC);
        check_xdp_decap(dp, &standard_vxlan(&ipv6), &ipv6);
        // Pending: passed.
        let tcp_len = (whole.len() - 14 - 20) as u16;
        let sum = l4_pseudo_header_sum(REMOTE_WL_IP, WL0_IP, IPPROTO_TCP, tcp_len);
        let pending = standard_vxlan(&tcp_frame(Some(sum)));
        check_xdp_pass(dp, &pending, "IPv4 TCP with the pseudo-header sum");
        let mut udp6 = ipv6.clone();
        let (src, dst) = (REMOTE_WL_IP6, WL0_IP6);
        let udp_len = (udp6.len() - 14 - 40) as u16;
        let sum = l4_pseudo_header_sum6(src, dst, IPPROTO_UDP, udp_len);
        udp6[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&sum.to_be_bytes());
        check_xdp_pass(
            dp,
            &standard_vxlan(&udp6),
            "IPv6 UDP with the pseudo-header sum",
        );
    });
}

#[test]
fn xdp_passes_what_is_not_vxlan_for_us() {
    standard(|_, dp| {
        for (what, pkt) in not_vxlan_for_us() {
            check_xdp_pass(dp, &pkt, what);
        }
    });
}

#[test]
fn xdp_passes_what_floods_without_learning_from_it() {
    standard(|_, dp| {
        // Broadcast and unknown unicast need clones: TC's. Learned there, once.
        for (dst, what) in [(BROADCAST, "broadcast"), (UNKNOWN_MAC, "unknown unicast")] {
            let inner = remote_udp_frame_from(ROAMING_MAC, dst, b"flood me");
            check_xdp_pass(dp, &standard_vxlan(&inner), what);
            assert!(
                fdb_entry(dp, ROAMING_MAC).is_none(),
                "{what}: nothing learned"
            );
        }
    });
}

#[test]
fn xdp_passes_a_port_it_cannot_redirect_to() {
    let fx = Fixture::new();
    fx.run(|| {
        // An adopted port: vtep did not make its peer ready for XDP frames.
        let mut dp = load_changed(&fx, |t| t.ports[0].xdp = false);
        let inner = remote_udp_frame(WL0_MAC);
        check_xdp_pass(
            &mut dp,
            &standard_vxlan(&inner),
            "to a port not in XDP_PORTS",
        );
        let inner = remote_udp_frame(WL1_MAC);
        check_xdp_decap(&mut dp, &standard_vxlan(&inner), &inner);
    });
}

#[test]
fn xdp_passes_multi_buffer_frames_untouched() {
    standard(|_, dp| {
        // Past one page the kernel hands the program a frame in fragments (xdp.frags), as a
        // jumbo-MTU driver does.
        let mut inner = remote_udp_frame(WL0_MAC);
        inner.resize(6000, 0x5a);
        check_xdp_pass(dp, &standard_vxlan(&inner), "a 6,050-byte VXLAN frame");
    });
}

#[test]
fn xdp_drops_malformed_and_unknown_vni_vxlan_under_tcs_reasons() {
    standard(|_, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, UNKNOWN_VNI), &inner);
        check_xdp_refused(dp, &pkt, DropReason::UnknownVni, "VNI 200");
        let pkt = vxlan_to_us(PORT_LEGACY, vxlan_header(VXLAN_I, VNI), &inner);
        check_xdp_refused(dp, &pkt, DropReason::UnknownVni, "VNI 100 on 8472");
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(0, VNI), &inner);
        check_xdp_refused(dp, &pkt, DropReason::VxlanBadFlags, "I flag clear");
        let pkt = eth(
            UL_MAC,
            NEIGH_MAC,
            ETH_P_IP,
            &outer_ip_to(LOCAL_IP).build(&udp_no_checksum(54321, PORT_IANA, &[VXLAN_I, 0, 0, 0])),
        );
        check_xdp_refused(
            dp,
            &pkt,
            DropReason::VxlanTruncated,
            "cut in the VXLAN header",
        );
        let pkt = standard_vxlan(&inner[..13]);
        check_xdp_refused(dp, &pkt, DropReason::VxlanTruncated, "13-byte inner frame");
        let mut pkt = standard_vxlan(&inner);
        pkt[38..40].copy_from_slice(&8u16.to_be_bytes());
        check_xdp_refused(dp, &pkt, DropReason::VxlanBadLength, "UDP length 8");
        let pkt = standard_vxlan(&remote_udp_frame(REMOTE_WL_MAC));
        check_xdp_refused(dp, &pkt, DropReason::DecapToRemote, "to a remote station");
    });
}

#[test]
fn xdp_drops_inner_frames_larger_than_the_port_mtu() {
    let fx = Fixture::new();
    fx.set_mtu("port0", 1450);
    fx.run(|| {
        let mut dp = load_changed(&fx, |_| {});
        let frame = |len: usize| {
            let mut f = remote_udp_frame(WL0_MAC);
            f.resize(len, 0x5a);
            f
        };
        let fits = frame(1450 + 14 + 4);
        check_xdp_decap(&mut dp, &standard_vxlan(&fits), &fits);
        let pkt = standard_vxlan(&frame(1450 + 14 + 5));
        check_xdp_refused(
            &mut dp,
            &pkt,
            DropReason::InnerTooBig,
            "1,469-byte inner frame",
        );
    });
}

#[test]
fn xdp_learns_the_inner_source_behind_the_sending_vtep() {
    standard(|_, dp| {
        assert!(fdb_entry(dp, ROAMING_MAC).is_none());
        let inner = remote_udp_frame_from(ROAMING_MAC, WL0_MAC, b"learn me over XDP");
        check_xdp_decap(dp, &standard_vxlan(&inner), &inner);
        let entry = fdb_entry(dp, ROAMING_MAC).expect("learned from the XDP path");
        assert_eq!(entry.kind, FDB_REMOTE);
        assert_eq!(entry.remote, vtep_addr_v4(REMOTE_IP.octets()));
        assert_ne!(entry.flags & FDB_F_LEARNED, 0, "marked learned");
    });
}

/// Bug (review of issue 10's merge): the XDP program learned proxy entries before it cut what
/// follows the outer IPv4 packet, so an ARP reply cut short by the outer length, its rest in
/// trailing bytes, taught the proxy an address TC would never have learned from it.
#[test]
fn xdp_learns_nothing_from_bytes_after_the_outer_packet() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, 0);
        let roaming_ip = std::net::Ipv4Addr::new(10, 0, 0, 77);
        let inner = eth(
            WL0_MAC,
            ROAMING_MAC,
            ETH_P_ARP,
            &arp_reply(ROAMING_MAC, roaming_ip, WL0_MAC, WL0_IP),
        );
        let whole = standard_vxlan(&inner);
        // The outer lengths end the inner frame 10 bytes into the ARP header: its sender
        // addresses only follow the packet.
        let cut = (inner.len() - 14 - 10) as u16;
        let mut pkt = whole.clone();
        let tot_len = u16::from_be_bytes([pkt[16], pkt[17]]) - cut;
        pkt[16..18].copy_from_slice(&tot_len.to_be_bytes());
        let udp_len = u16::from_be_bytes([pkt[38], pkt[39]]) - cut;
        pkt[38..40].copy_from_slice(&udp_len.to_be_bytes());
        pkt[24..26].copy_from_slice(&[0, 0]);
        let sum = (14..34)
            .step_by(2)
            .map(|i| u32::from(u16::from_be_bytes([pkt[i], pkt[i + 1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
        pkt[24..26].copy_from_slice(&sum.to_be_bytes());
        let learned = |dp: &mut Datapath| {
            dp.proxy()
                .unwrap()
                .get(
                    &vtep_common::maps::ProxyKey {
                        vni: VNI,
                        ip: roaming_ip.octets(),
                    },
                    0,
                )
                .is_ok()
        };
        let _ = xdp_test_run(&mut dp, &pkt);
        assert!(!learned(&mut dp), "XDP learned from the trailing bytes");
        // The whole reply does teach it: the test's frame is one the proxy learns from.
        let _ = xdp_test_run(&mut dp, &whole);
        assert!(learned(&mut dp), "XDP did not learn from the whole reply");
    });
}
