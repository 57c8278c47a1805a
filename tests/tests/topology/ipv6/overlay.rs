//! S2 over an IPv6 underlay: workloads on both hosts reach each other, full-size frames fit the
//! 70 bytes of IPv6 overhead, bulk TCP arrives intact both ways (segmented by the workloads, whose
//! GSO vtep turned off, when checksums are sent; in 64 KB GSO frames with zero checksums), and the
//! FDB names the remote VTEP by its IPv6 address. S1 (an overlay address on each host itself)
//! over IPv6 too, and an adopted port, whose GSO frames only its owner can prevent.

use std::{
    io::Write as _,
    net::{TcpListener, TcpStream},
    time::Duration,
};

use vtep::sys::ethtool;
use vtep_tests::{
    configs::{adopted_port, fdb, host_port, vni, workload},
    lab::{Lab, in_netns, ip, tcp_transfer},
    output::{fdb_row, vni_stat},
};

use super::{A6, B6, s2_ipv6, s2_ipv6_mtu, underlay6};
use crate::{
    BULK, header,
    support::{S2, S2_B1, S2_B2, assert_ping, assert_ping_df, ns_read},
};

/// Whether TSO or GSO is on for `eth0` in namespace `ns`.
fn segmentation(ns: &str) -> bool {
    in_netns(ns, || ethtool::segmentation("eth0")).unwrap_or_else(|e| panic!("{ns}: {e:#}"))
}

#[test]
fn ipv6_underlay_s2_ping_and_bulk_tcp_both_ways() {
    let S2 {
        mut lab,
        a1,
        a2,
        b1,
        b2,
        va,
        name_a,
        vb,
        name_b,
        ..
    } = s2_ipv6("");

    // The workload MTU leaves room for the 70 bytes of VXLAN over IPv6.
    for ns in [&a1, &a2, &b1, &b2] {
        assert_eq!(
            ns_read(ns, "/sys/class/net/eth0/mtu"),
            "1430",
            "MTU of eth0 in {ns}"
        );
    }
    for (from, to) in [
        (&a1, "192.0.2.21"),
        (&a1, "192.0.2.22"),
        (&a2, "192.0.2.21"),
        (&b1, "192.0.2.11"),
        (&b2, "192.0.2.12"),
    ] {
        assert_ping(from, to, 2);
    }
    for ns in [&a1, &a2, &b1, &b2] {
        assert!(
            !segmentation(ns),
            "{ns}: TSO/GSO still on with checksums sent"
        );
    }
    // A full-size frame (1430-byte IP packet, DF set) crosses: 1500 on the underlay.
    assert_ping_df(&a1, "192.0.2.21", 1430);
    assert_ping_df(&b2, "192.0.2.12", 1430);

    let rows = lab.vtep(va).fdb(&name_a);
    for mac in [S2_B1, S2_B2] {
        let row = fdb_row(&rows, mac, 200)
            .unwrap_or_else(|| panic!("{mac} missing from fdb show: {rows:?}"));
        assert_eq!(row["dst"], B6, "{mac} behind the IPv6 VTEP: {row}");
    }

    let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 over IPv6: bytes received intact");
    let got = tcp_transfer(&a2, "192.0.2.12:5002".parse().unwrap(), &b2, BULK);
    assert_eq!(got, BULK, "TCP b2 -> a2 over IPv6: bytes received intact");

    // vtep turned GSO off on its workloads' interfaces (a GSO frame's outer checksum cannot be
    // right per segment), so none was dropped for it.
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 200, "encap_packets") >= 1000, "{stats}");
    assert!(vni_stat(&stats, 200, "decap_packets") >= 1000, "{stats}");
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
    let stats = lab.vtep(vb).stats(&name_b);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// With zero checksums a GSO frame's outer UDP header is right for every segment, so vtep
/// leaves the workloads' GSO on, and bulk TCP crosses in GSO frames.
#[test]
fn ipv6_underlay_zero_checksums_keep_gso_and_carry_bulk_tcp() {
    let S2 {
        mut lab,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2_ipv6("udp6_zero_csum_tx = true");
    for ns in [&a1, &b1] {
        assert!(
            segmentation(ns),
            "{ns}: TSO/GSO turned off with zero checksums"
        );
    }
    let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 in GSO frames over IPv6");
    let got = tcp_transfer(&a1, "192.0.2.11:5002".parse().unwrap(), &b1, BULK);
    assert_eq!(got, BULK, "TCP b1 -> a1 in GSO frames over IPv6");
    let stats = lab.vtep(va).stats(&name_a);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// S1 over IPv6: an overlay address on each host's own interface (which vtep makes, and whose
/// GSO it turns off like a workload's); ping and bulk TCP between the hosts' stacks.
#[test]
fn ipv6_underlay_s1_point_to_point() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (if_a, if_b) = (lab.name("x"), lab.name("y"));
    let cfg_a = header(&lab.name("va"), &underlay6(A6, ""))
        + &vni(1, 4789, &[B6])
        + &host_port(&if_a, "192.0.2.1/24");
    let cfg_b = header(&lab.name("vb"), &underlay6(B6, ""))
        + &vni(1, 4789, &[A6])
        + &host_port(&if_b, "192.0.2.2/24");
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_eq!(ns_read(&a, &format!("/sys/class/net/{if_a}/mtu")), "1430");
    assert_ping(&a, "192.0.2.2", 3);
    assert_ping(&b, "192.0.2.1", 3);
    let got = tcp_transfer(&b, "192.0.2.2:5001".parse().unwrap(), &a, BULK);
    assert_eq!(got, BULK, "TCP a -> b between the hosts' overlay addresses");
    let got = tcp_transfer(&a, "192.0.2.1:5002".parse().unwrap(), &b, BULK);
    assert_eq!(got, BULK, "TCP b -> a between the hosts' overlay addresses");
    let name_a = lab.name("va");
    let stats = lab.vtep(va).stats(&name_a);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// An adopted port is not vtep's to change: the GSO frames its far end sends (TCP with TSO on,
/// a veth's default) cannot get a right outer checksum and are dropped, counted as
/// `gso_needs_checksum`; once its owner turns TSO and GSO off there, bulk TCP crosses.
#[test]
fn ipv6_adopted_port_gso_frames_are_counted_until_its_owner_turns_gso_off() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (port, pw, b1) = (lab.name("p"), lab.host("pw"), lab.name("b1"));
    let (m_pw, m_b1) = ("02:00:00:00:0c:01", S2_B1);
    ip(&[
        "-n", &a, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &pw,
    ]);
    ip(&["-n", &a, "link", "set", &port, "mtu", "1430", "up"]);
    ip(&[
        "-n", &pw, "link", "set", "eth0", "address", m_pw, "mtu", "1430", "up",
    ]);
    ip(&["-n", &pw, "addr", "add", "192.0.2.31/24", "dev", "eth0"]);
    let name_a = lab.name("va");
    let cfg_a = header(&name_a, &underlay6(A6, ""))
        + &vni(100, 4789, &[B6])
        + &adopted_port(&port)
        + &format!("[[vni.fdb]]\nmac = \"{m_pw}\"\nport = \"{port}\"\n\n")
        + &fdb(m_b1, B6);
    let cfg_b = header(&lab.name("vb"), &underlay6(B6, ""))
        + &vni(100, 4789, &[A6])
        + &workload(&b1, "192.0.2.21/24", m_b1)
        + &fdb(m_pw, A6);
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_ping(&pw, "192.0.2.21", 2);
    assert!(segmentation(&pw), "vtep changed the adopted port's far end");

    // One burst of TCP from the adopted port's side: its first flight is a GSO frame.
    let gso_drops = |lab: &mut Lab| {
        lab.vtep(va).stats(&name_a)["drops"]["gso_needs_checksum"]
            .as_u64()
            .expect("gso_needs_checksum counted")
    };
    let before = gso_drops(&mut lab);
    let listener = in_netns(&b1, || TcpListener::bind("192.0.2.21:5003")).expect("bind");
    let server = std::thread::spawn(move || listener.accept().map(drop));
    in_netns(&pw, || {
        let mut s =
            TcpStream::connect_timeout(&"192.0.2.21:5003".parse().unwrap(), Duration::from_secs(5))
                .expect("connect");
        s.set_nonblocking(true).unwrap();
        let _ = s.write(&vec![0x5a; 256 * 1024]);
        std::thread::sleep(Duration::from_millis(500));
    });
    server.join().unwrap().expect("accept");
    assert!(
        gso_drops(&mut lab) > before,
        "no GSO frame counted as gso_needs_checksum"
    );

    in_netns(&pw, || ethtool::set_segmentation("eth0", false)).expect("TSO and GSO off");
    let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &pw, BULK);
    assert_eq!(got, BULK, "TCP from the adopted port with GSO off");
}

/// A jumbo underlay (MTU 9000): workloads get 8930, full-size frames cross both ways (the outer
/// checksum of a 9,000-byte packet), and bulk TCP with them; also with the XDP program in front,
/// which hands multi-buffer frames to TC.
#[test]
fn ipv6_jumbo_underlay_mtu() {
    for extra in ["", "xdp = \"native\""] {
        let S2 {
            lab: _lab, a1, b1, ..
        } = s2_ipv6_mtu(extra, 9000);
        assert_eq!(ns_read(&a1, "/sys/class/net/eth0/mtu"), "8930", "{extra}");
        assert_ping_df(&a1, "192.0.2.21", 8930);
        assert_ping_df(&b1, "192.0.2.11", 8930);
        let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
        assert_eq!(got, BULK, "TCP a1 -> b1 at MTU 8930 ({extra})");
    }
}
