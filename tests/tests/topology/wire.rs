//! RFC 7348 on the wire, read with etherparse from captures of the underlay: every outer field,
//! the source port as a hash of the inner flow, and both VXLAN ports side by side.

use std::net::{Ipv4Addr, UdpSocket};

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{Lab, in_netns},
    packet::{Mac, mac, parse_vxlan},
};

use crate::{
    ADDR_A, ADDR_B, header,
    support::{S2_A1, S2_B1, assert_ping},
};

/// The interesting part of an inner frame carrying ICMP over IPv4.
#[derive(Debug, PartialEq, Eq)]
struct InnerIcmp {
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    /// 8 echo request, 0 echo reply.
    icmp_type: u8,
}

/// The ICMP over IPv4 in Ethernet frame `f`, if it carries that.
fn parse_inner_icmp(f: &[u8]) -> Option<InnerIcmp> {
    let p = SlicedPacket::from_ethernet(f).ok()?;
    let (
        Some(LinkSlice::Ethernet2(eth)),
        Some(NetSlice::Ipv4(ip)),
        Some(TransportSlice::Icmpv4(icmp)),
    ) = (p.link, p.net, p.transport)
    else {
        return None;
    };
    Some(InnerIcmp {
        dst_mac: Mac(eth.destination()),
        src_mac: Mac(eth.source()),
        src: ip.header().source_addr(),
        dst: ip.header().destination_addr(),
        icmp_type: icmp.type_u8(),
    })
}

/// Destination port of the UDP over IPv4 in Ethernet frame `f`, if it carries that.
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

#[test]
fn wire_format_on_underlay() {
    const VNI: u32 = 5_000_000;
    const TTL: u8 = 17;
    const SPORT: [u16; 2] = [40000, 40100];
    const DSTPORT: u16 = 4789;
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (w_a, w_b) = (lab.name("a1"), lab.name("b1"));
    let underlay = format!("ttl = {TTL}\nsrcport = [{}, {}]", SPORT[0], SPORT[1]);
    let cfg_a = header(&lab.name("va"), &underlay)
        + &vni(VNI, DSTPORT, &[ADDR_B])
        + &workload(&w_a, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, ADDR_B);
    let cfg_b = header(&lab.name("vb"), &underlay)
        + &vni(VNI, DSTPORT, &[ADDR_A])
        + &workload(&w_b, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    let cap = lab.capture(&a, "eth0", "udp");
    assert_ping(&w_a, "192.0.2.21", 5);
    let frames = cap.frames();
    assert!(!frames.is_empty(), "nothing captured on the underlay");

    let (mac_a, mac_b) = (mac(S2_A1), mac(S2_B1));
    let (ip_a, ip_b): (Ipv4Addr, Ipv4Addr) = (ADDR_A.parse().unwrap(), ADDR_B.parse().unwrap());
    let (wa, wb): (Ipv4Addr, Ipv4Addr) =
        ("192.0.2.11".parse().unwrap(), "192.0.2.21".parse().unwrap());
    let mut requests = Vec::new();
    let mut replies = 0;
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("frame {i} is not VXLAN: {e}: {f:02x?}"));
        let (src, dst, sport) = (v.src(), v.dst(), v.udp.source_port);
        assert!(
            (src, dst) == (ip_a, ip_b) || (src, dst) == (ip_b, ip_a),
            "frame {i}: outer {src} -> {dst} are not the VTEP addresses"
        );
        assert_eq!(
            v.udp.destination_port, DSTPORT,
            "frame {i}: UDP destination port"
        );
        assert!(
            (SPORT[0]..=SPORT[1]).contains(&sport),
            "frame {i}: UDP source port {sport} outside {SPORT:?}"
        );
        assert_eq!(v.flags(), 0x08, "frame {i}: VXLAN flags (only I set)");
        assert_eq!(v.reserved(), [0; 4], "frame {i}: VXLAN reserved bytes");
        assert_eq!(v.vni(), VNI, "frame {i}: VNI");
        assert_eq!(v.ip.time_to_live, TTL, "frame {i}: outer TTL");
        assert!(
            v.ip_checksum_ok(),
            "frame {i}: outer IPv4 header checksum wrong"
        );
        // RFC 7348: zero (SHOULD for IPv4), or correct over the whole packet.
        assert!(
            v.udp.checksum == 0 || v.udp_checksum_ok(),
            "frame {i}: UDP checksum {:#06x} is neither zero nor correct",
            v.udp.checksum
        );
        if let Some(icmp) = parse_inner_icmp(v.inner) {
            if icmp
                == (InnerIcmp {
                    dst_mac: mac_b,
                    src_mac: mac_a,
                    src: wa,
                    dst: wb,
                    icmp_type: 8,
                })
            {
                assert_eq!((src, dst), (ip_a, ip_b), "frame {i}: echo request");
                requests.push(sport);
            } else if icmp
                == (InnerIcmp {
                    dst_mac: mac_a,
                    src_mac: mac_b,
                    src: wb,
                    dst: wa,
                    icmp_type: 0,
                })
            {
                assert_eq!((src, dst), (ip_b, ip_a), "frame {i}: echo reply");
                replies += 1;
            } else {
                panic!("frame {i}: unexpected inner ICMP {icmp:?}");
            }
        }
    }
    assert_eq!(
        requests.len(),
        5,
        "echo requests a1 -> b1 seen on the underlay"
    );
    assert_eq!(replies, 5, "echo replies b1 -> a1 seen on the underlay");
    // The source port is a hash of the inner flow: one flow, one port.
    assert!(
        requests.iter().all(|p| *p == requests[0]),
        "one ICMP flow used several UDP source ports: {requests:?}"
    );

    // ...and different flows spread over the range (ECMP entropy): 16 inner UDP flows, each
    // sent twice, keep their port and do not all share one.
    let cap = lab.capture(&a, "eth0", &format!("udp and src host {ADDR_A}"));
    in_netns(&w_a, || {
        let sock = UdpSocket::bind("192.0.2.11:0").expect("bind");
        for _ in 0..2 {
            for port in 7000..7016u16 {
                sock.send_to(b"flow", ("192.0.2.21", port)).expect("send");
            }
        }
    });
    let mut ports = std::collections::BTreeMap::<u16, Vec<u16>>::new();
    for (i, f) in cap.frames().iter().enumerate() {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("UDP frame {i} is not VXLAN: {e}"));
        let sport = v.udp.source_port;
        assert!(
            (SPORT[0]..=SPORT[1]).contains(&sport),
            "UDP frame {i}: source port {sport} outside {SPORT:?}"
        );
        if let Some(dport) = inner_udp_dport(v.inner) {
            ports.entry(dport).or_default().push(sport);
        }
    }
    assert_eq!(ports.len(), 16, "inner UDP flows seen: {ports:?}");
    for (flow, sports) in &ports {
        assert!(
            sports.len() == 2 && sports[0] == sports[1],
            "inner flow to port {flow}: outer source ports {sports:?}"
        );
    }
    let distinct: std::collections::BTreeSet<u16> = ports.values().map(|p| p[0]).collect();
    assert!(
        distinct.len() >= 4,
        "16 inner flows got only outer source ports {distinct:?}"
    );
}

/// VNI 10 on the legacy Linux port 8472 and VNI 20 on 4789, side by side (as in S4).
#[test]
fn dstport_4789_and_8472() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let [a10, b10, a20, b20] = ["a1", "b1", "a2", "b2"].map(|s| lab.name(s));
    let (m_a10, m_b10, m_a20, m_b20) = (
        "02:00:00:10:0a:01",
        "02:00:00:10:0b:01",
        "02:00:00:20:0a:01",
        "02:00:00:20:0b:01",
    );
    let cfg_a = header(&lab.name("va"), "")
        + &vni(10, 8472, &[ADDR_B])
        + &workload(&a10, "192.0.2.11/24", m_a10)
        + &fdb(m_b10, ADDR_B)
        + &vni(20, 4789, &[ADDR_B])
        + &workload(&a20, "198.51.100.11/24", m_a20)
        + &fdb(m_b20, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(10, 8472, &[ADDR_A])
        + &workload(&b10, "192.0.2.21/24", m_b10)
        + &fdb(m_a10, ADDR_A)
        + &vni(20, 4789, &[ADDR_A])
        + &workload(&b20, "198.51.100.21/24", m_b20)
        + &fdb(m_a20, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    let cap = lab.capture(&a, "eth0", "udp");
    assert_ping(&a10, "192.0.2.21", 3);
    assert_ping(&b20, "198.51.100.11", 3);
    let frames = cap.frames();

    let mut icmp_by_vni = std::collections::BTreeMap::<u32, usize>::new();
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("frame {i} is not VXLAN: {e}"));
        let want = match v.vni() {
            10 => 8472,
            20 => 4789,
            other => panic!("frame {i}: VNI {other} is not configured"),
        };
        assert_eq!(
            v.udp.destination_port,
            want,
            "frame {i}: UDP destination port of VNI {}",
            v.vni()
        );
        if parse_inner_icmp(v.inner).is_some() {
            *icmp_by_vni.entry(v.vni()).or_default() += 1;
        }
    }
    // 3 requests + 3 replies per VNI.
    assert_eq!(
        icmp_by_vni.get(&10),
        Some(&6),
        "ICMP frames per VNI: {icmp_by_vni:?}"
    );
    assert_eq!(
        icmp_by_vni.get(&20),
        Some(&6),
        "ICMP frames per VNI: {icmp_by_vni:?}"
    );
}
