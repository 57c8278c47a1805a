//! What the kernel would drop, the underlay program drops too (issue 9, item 5): outer lengths
//! that lie, wrong non-zero UDP checksums, inner frames too big for their port; and it trims
//! what follows the outer IPv4 packet, as the IP layer does.

use vtep::datapath::loader::PROG_UNDERLAY;
use vtep_common::drop::DropReason;
use vtep_tests::{
    counters::Counters,
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, REMOTE_IP, UL_MAC, VNI, WL0_MAC, load_standard,
        test_run,
    },
    packet::{ETH_P_IP, VXLAN_I, eth, parse_vxlan, udp, udp4_pseudo_header_sum, vxlan},
};

use crate::{
    UNKNOWN_MAC,
    checks::{check_decap, check_refused},
    frames::{outer_ip_to, remote_udp_frame, standard_vxlan},
};

/// A VXLAN packet from the remote VTEP to us whose outer UDP checksum is computed (RFC 768).
pub fn checksummed_vxlan(inner: &[u8]) -> Vec<u8> {
    eth(
        UL_MAC,
        NEIGH_MAC,
        ETH_P_IP,
        &outer_ip_to(LOCAL_IP).build(&udp(
            REMOTE_IP,
            LOCAL_IP,
            54321,
            PORT_IANA,
            &vxlan(VXLAN_I, VNI, inner),
        )),
    )
}

/// Regression: a VXLAN packet with a non-zero, wrong outer UDP checksum was delivered; the
/// kernel's UDP layer verifies it and drops the packet.
#[test]
fn decap_verifies_a_nonzero_udp_checksum() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        let good = checksummed_vxlan(&inner);
        let parsed = parse_vxlan(&good).expect("a VXLAN packet");
        assert!(parsed.udp.checksum != 0 && parsed.udp_checksum_ok());
        check_decap(&mut dp, &fx, &good, &inner);
        // One payload bit flipped under the checksum.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 0x01;
        check_refused(
            &mut dp,
            &fx,
            &bad,
            DropReason::VxlanBadChecksum,
            "payload changed under the checksum",
        );
        // The checksum field itself changed (bytes 40-41: Ethernet 14 + IPv4 20 + UDP 6).
        let mut bad = good.clone();
        bad[41] ^= 0x80;
        check_refused(
            &mut dp,
            &fx,
            &bad,
            DropReason::VxlanBadChecksum,
            "checksum field changed",
        );
        // Only the pseudo-header sum in the field: what a local sender leaves for an offload
        // (CHECKSUM_PARTIAL), which the kernel accepts too.
        let mut partial = standard_vxlan(&inner);
        let udp_len = (partial.len() - 34) as u16;
        partial[40..42]
            .copy_from_slice(&udp4_pseudo_header_sum(REMOTE_IP, LOCAL_IP, udp_len).to_be_bytes());
        check_decap(&mut dp, &fx, &partial, &inner);
    });
}

/// Regression: an outer IPv4 total length longer than the frame, and a UDP length of 8 (or any
/// that is not the IPv4 payload's), were delivered; the kernel's IP and UDP layers drop them.
#[test]
fn decap_drops_outer_lengths_that_lie() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let good = standard_vxlan(&remote_udp_frame(WL0_MAC));
        let tot_len = u16::from_be_bytes([good[16], good[17]]);
        // The IPv4 header checksum is fixed up, so only the length is wrong.
        let with_ip_len = |len: u16| {
            let mut p = good.clone();
            p[16..18].copy_from_slice(&len.to_be_bytes());
            let mut ip = parse_vxlan(&good).expect("a VXLAN packet").ip;
            ip.total_len = len;
            p[24..26].copy_from_slice(&ip.calc_header_checksum().to_be_bytes());
            p
        };
        for (len, what) in [
            (tot_len + 1, "IPv4 total length one byte past the frame"),
            (tot_len + 1000, "IPv4 total length far past the frame"),
        ] {
            check_refused(
                &mut dp,
                &fx,
                &with_ip_len(len),
                DropReason::VxlanBadLength,
                what,
            );
        }
        for udp_len in [8u16, tot_len - 20 - 1, tot_len - 20 + 1] {
            let mut p = good.clone();
            p[38..40].copy_from_slice(&udp_len.to_be_bytes());
            check_refused(
                &mut dp,
                &fx,
                &p,
                DropReason::VxlanBadLength,
                &format!("UDP length {udp_len}"),
            );
        }
    });
}

/// Regression: bytes after the outer IPv4 packet (an Ethernet FCS kept by `rx-fcs`, padding)
/// stayed on the inner frame; the kernel's IP layer trims them.
#[test]
fn decap_trims_bytes_after_the_outer_ipv4_packet() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        let mut pkt = standard_vxlan(&inner);
        pkt.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        check_decap(&mut dp, &fx, &pkt, &inner);
        // With a checksum too: it covers the UDP segment only, not what follows.
        let mut pkt = checksummed_vxlan(&inner);
        pkt.extend_from_slice(&[0x5a; 17]);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

/// Regression: inner frames of 2,042 bytes were delivered onto an MTU-1450 workload interface; a
/// veth or bridge drops what exceeds the MTU plus the Ethernet header and a VLAN tag.
#[test]
fn decap_drops_inner_frames_larger_than_the_port_mtu() {
    let fx = Fixture::new();
    fx.set_mtu("port0", 1450);
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // An inner frame of `len` bytes from the remote workload to `dst`.
        let frame = |dst, len: usize| {
            let mut f = remote_udp_frame(dst);
            f.resize(len, 0x5a);
            f
        };
        for len in [1450 + 14, 1450 + 14 + 4] {
            let inner = frame(WL0_MAC, len);
            check_decap(&mut dp, &fx, &standard_vxlan(&inner), &inner);
        }
        for len in [1450 + 14 + 5, 2042] {
            check_refused(
                &mut dp,
                &fx,
                &standard_vxlan(&frame(WL0_MAC, len)),
                DropReason::InnerTooBig,
                &format!("{len}-byte inner frame"),
            );
        }
        // Flooded (unknown destination): 1,510 bytes fit the MTU-1500 port1 but not port0.
        let pkt = standard_vxlan(&frame(UNKNOWN_MAC, 1510));
        let (port0_tx, port1_tx) = (fx.tx_packets("port0"), fx.tx_packets("port1"));
        let before = Counters::read(&mut dp);
        test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        let after = Counters::read(&mut dp);
        assert_eq!(
            after.drops,
            before.with_drop(DropReason::InnerTooBig).drops,
            "one copy counted too big, nothing else; moved: {:?}",
            after.moved_drops(&before)
        );
        assert_eq!(
            fx.tx_packets("port0"),
            port0_tx,
            "no copy onto the MTU-1450 port"
        );
        assert_eq!(
            fx.tx_packets("port1"),
            port1_tx + 1,
            "a copy onto the MTU-1500 port"
        );
    });
}
