//! VXLAN over IPv6 on the wire, read from captures of the underlay: every outer field of every
//! packet both vteps sent, and every UDP checksum judged over the IPv6 pseudo-header: valid and
//! non-zero by default, zero with `udp6_zero_csum_tx`. The inner traffic is ping (and the
//! workloads' ARP and ICMPv6), whose checksums are complete, so the outer checksum can be judged
//! over the captured bytes. And the source port and flow label each inner flow gets.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{Ipv6Addr, UdpSocket},
};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{Lab, in_netns, link},
    packet::{ETH_P_IPV6, IPPROTO_UDP, Mac, Udp6Checksum, VXLAN_I, mac, parse_vxlan6},
};

use super::{A6, B6, underlay6};
use crate::{
    header,
    support::{S2_A1, S2_B1, assert_ping},
};

/// The ICMP type of the ICMP over IPv4 in Ethernet frame `f` (8 request, 0 reply), if it
/// carries that.
fn inner_icmp_type(f: &[u8]) -> Option<u8> {
    match SlicedPacket::from_ethernet(f).ok()? {
        SlicedPacket {
            net: Some(NetSlice::Ipv4(_)),
            transport: Some(TransportSlice::Icmpv4(icmp)),
            ..
        } => Some(icmp.type_u8()),
        _ => None,
    }
}

/// Two vteps on an IPv6 underlay (VNI 5,000,000, TTL 17, a narrow source port range, and
/// `udp6_zero_csum_tx = zero`); five pings a1 -> b1 captured on host a's underlay; checks every
/// field of every VXLAN packet either vtep sent.
fn check_wire6(zero: bool) {
    const VNI: u32 = 5_000_000;
    const TTL: u8 = 17;
    const SPORT: [u16; 2] = [40000, 40100];
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (w_a, w_b) = (lab.name("a1"), lab.name("b1"));
    let extra = format!(
        "ttl = {TTL}\nsrcport = [{}, {}]\nudp6_zero_csum_tx = {zero}",
        SPORT[0], SPORT[1]
    );
    let cfg_a = header(&lab.name("va"), &underlay6(A6, &extra))
        + &vni(VNI, 4789, &[B6])
        + &workload(&w_a, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, B6);
    let cfg_b = header(&lab.name("vb"), &underlay6(B6, &extra))
        + &vni(VNI, 4789, &[A6])
        + &workload(&w_b, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, A6);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    let eth_mac = |ns: &str| mac(link(ns, "eth0")["address"].as_str().expect("a MAC"));
    let (mac_a, mac_b) = (eth_mac(&a), eth_mac(&b));
    let (ip_a, ip_b): (Ipv6Addr, Ipv6Addr) = (A6.parse().unwrap(), B6.parse().unwrap());

    let cap = lab.capture(&a, "eth0", "ip6 and udp port 4789");
    assert_ping(&w_a, "192.0.2.21", 5);
    let frames = cap.frames();
    assert!(!frames.is_empty(), "nothing captured on the underlay");
    let (mut requests, mut replies) = (0, 0);
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan6(f)
            .unwrap_or_else(|e| panic!("frame {i} is not VXLAN over IPv6: {e}: {f:02x?}"));
        let (src, dst) = (v.src(), v.dst());
        let from_a = (src, dst) == (ip_a, ip_b);
        assert!(
            from_a || (src, dst) == (ip_b, ip_a),
            "frame {i}: outer {src} -> {dst} are not the VTEP addresses"
        );
        let (src_mac, dst_mac): (Mac, Mac) = if from_a {
            (mac_a, mac_b)
        } else {
            (mac_b, mac_a)
        };
        assert_eq!(
            (v.src_mac(), v.dst_mac()),
            (src_mac, dst_mac),
            "frame {i}: outer MACs (the underlay interfaces')"
        );
        assert_eq!(v.eth.ether_type.0, ETH_P_IPV6, "frame {i}: ethertype");
        assert_eq!(v.version(), 6, "frame {i}: IP version");
        assert_eq!(v.traffic_class(), 0, "frame {i}: traffic class");
        assert_eq!(v.ip.next_header.0, IPPROTO_UDP, "frame {i}: next header");
        assert_eq!(v.ip.hop_limit, TTL, "frame {i}: hop limit (the ttl)");
        assert_eq!(v.trailing, 0, "frame {i}: bytes after the IPv6 packet");
        assert_eq!(
            usize::from(v.ip.payload_length),
            f.len() - 14 - 40,
            "frame {i}: payload length"
        );
        assert_eq!(
            v.udp.length, v.ip.payload_length,
            "frame {i}: UDP length = payload length"
        );
        assert_eq!(v.udp.destination_port, 4789, "frame {i}: UDP dport");
        let sport = v.udp.source_port;
        assert!(
            (SPORT[0]..=SPORT[1]).contains(&sport),
            "frame {i}: UDP source port {sport} outside {SPORT:?}"
        );
        assert_eq!(v.flags(), VXLAN_I, "frame {i}: VXLAN flags (only I set)");
        assert_eq!(v.reserved(), [0; 4], "frame {i}: VXLAN reserved bytes");
        assert_eq!(v.vni(), VNI, "frame {i}: VNI");
        let want = if zero {
            Udp6Checksum::Zero
        } else {
            Udp6Checksum::Valid
        };
        assert_eq!(
            v.checksum(),
            want,
            "frame {i} ({src} -> {dst}): UDP checksum; frame {f:02x?}"
        );
        match inner_icmp_type(v.inner) {
            Some(8) if from_a => requests += 1,
            Some(0) if !from_a => replies += 1,
            Some(t) => panic!("frame {i}: unexpected inner ICMP type {t} from {src}"),
            None => {}
        }
    }
    assert_eq!(requests, 5, "echo requests a1 -> b1 on the underlay");
    assert_eq!(replies, 5, "echo replies b1 -> a1 on the underlay");
}

#[test]
fn ipv6_wire_format_on_underlay_with_valid_checksums() {
    check_wire6(false);
}

#[test]
fn ipv6_wire_format_on_underlay_with_zero_checksums() {
    check_wire6(true);
}

/// The UDP destination port of the UDP over IPv4 in Ethernet frame `f`, if it carries that.
fn inner_udp_dport(f: &[u8]) -> Option<u16> {
    match SlicedPacket::from_ethernet(f).ok()? {
        SlicedPacket {
            net: Some(NetSlice::Ipv4(_)),
            transport: Some(TransportSlice::Udp(udp)),
            ..
        } => Some(udp.destination_port()),
        _ => None,
    }
}

/// The outer UDP source port and the IPv6 flow label come from the inner flow: 16 inner UDP
/// flows, each sent twice, keep theirs (RFC 6438: one label per flow), and the flows spread
/// over several source ports (ECMP entropy).
#[test]
fn ipv6_wire_each_flow_keeps_its_source_port_and_flow_label() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (w_a, w_b) = (lab.name("a1"), lab.name("b1"));
    let cfg_a = header(&lab.name("va"), &underlay6(A6, ""))
        + &vni(100, 4789, &[B6])
        + &workload(&w_a, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, B6);
    let cfg_b = header(&lab.name("vb"), &underlay6(B6, ""))
        + &vni(100, 4789, &[A6])
        + &workload(&w_b, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, A6);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    // Three tries: a first ARP request may find the next hop to B6 not resolved yet (the
    // kernel sends no neighbour solicitation while the underlay's link-local address is
    // tentative, a second or two after the lab made it; README, known gaps).
    assert_ping(&w_a, "192.0.2.21", 3);
    let cap = lab.capture(&a, "eth0", &format!("ip6 and udp and src host {A6}"));
    in_netns(&w_a, || {
        let sock = UdpSocket::bind("192.0.2.11:0").expect("bind");
        for _ in 0..2 {
            for port in 7000..7016u16 {
                sock.send_to(b"flow", ("192.0.2.21", port)).expect("send");
            }
        }
    });
    let mut flows = BTreeMap::<u16, Vec<(u16, u32)>>::new();
    for (i, f) in cap.frames().iter().enumerate() {
        let v = parse_vxlan6(f).unwrap_or_else(|e| panic!("frame {i} is not VXLAN: {e}"));
        if let Some(dport) = inner_udp_dport(v.inner) {
            flows
                .entry(dport)
                .or_default()
                .push((v.udp.source_port, v.flow_label()));
        }
    }
    assert_eq!(flows.len(), 16, "inner UDP flows seen: {flows:?}");
    for (flow, outer) in &flows {
        assert!(
            outer.len() == 2 && outer[0] == outer[1],
            "inner flow to port {flow}: outer (source port, flow label) {outer:?}"
        );
    }
    let ports: BTreeSet<u16> = flows.values().map(|o| o[0].0).collect();
    assert!(ports.len() >= 4, "16 flows got only source ports {ports:?}");
}
