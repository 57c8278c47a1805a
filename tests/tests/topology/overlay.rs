//! Reachability over the overlay: S1 (an address on each host), S2 (workloads on a bridge across
//! hosts), IPv6 inside, and adopted ports.

use vtep_tests::{
    configs::{adopted_port, fdb, host_port, vni, workload},
    lab::{Lab, if_counter, ip, ns_exec},
    output::{fdb_row, text, vni_stat},
};

use crate::{
    ADDR_A, ADDR_B, BULK, header,
    support::{
        S2, S2_A1, S2_A2, S2_B1, S2_B2, assert_ping, assert_ping_df, neighbour_mac, ns_read,
        ping_n, s2,
    },
};

/// S1: an overlay address on each host itself; the hosts reach each other over VNI 1.
#[test]
fn s1_point_to_point() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let (if_a, if_b) = (lab.name("x"), lab.name("y"));
    let mac_a = "02:00:00:00:01:01";
    let cfg_a = header(&name_a, "")
        + &vni(1, 4789, &[ADDR_B])
        + &host_port(&if_a, "192.0.2.1/24")
        + &format!("mac = \"{mac_a}\"\n\n");
    let cfg_b = header(&name_b, "") + &vni(1, 4789, &[ADDR_A]) + &host_port(&if_b, "192.0.2.2/24");
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    assert_ping(&a, "192.0.2.2", 3);
    assert_ping(&b, "192.0.2.1", 3);
    // B resolved A's overlay address to the configured MAC of A's host interface.
    assert_eq!(neighbour_mac(&b, "192.0.2.1").as_deref(), Some(mac_a));
    // The address really is on the overlay interface vtep made, not reached some other way.
    let route = text(&ip(&["-n", &a, "route", "get", "192.0.2.2"]).stdout);
    assert!(route.contains(&format!("dev {if_a} ")), "{route}");
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 1, "encap_packets") >= 3, "{stats}");
    assert!(vni_stat(&stats, 1, "decap_packets") >= 3, "{stats}");

    let len = 8 * 1024 * 1024;
    let got = lab.tcp_transfer(&b, "192.0.2.2:5001".parse().unwrap(), &a, len);
    assert_eq!(got, len, "TCP A -> B over the overlay");
}

#[test]
fn s2_workloads_across_hosts() {
    let S2 {
        mut lab,
        a,
        a1,
        a2,
        b1,
        b2,
        va,
        name_a,
        ..
    } = s2();

    // Workload MTU leaves room for the 50 bytes of IPv4 VXLAN overhead.
    for ns in [&a1, &a2, &b1, &b2] {
        assert_eq!(
            ns_read(ns, "/sys/class/net/eth0/mtu"),
            "1450",
            "MTU of eth0 in {ns}"
        );
    }
    // The workloads got the configured MACs.
    assert_eq!(ns_read(&a1, "/sys/class/net/eth0/address"), S2_A1);
    assert_eq!(ns_read(&b2, "/sys/class/net/eth0/address"), S2_B2);

    // Every workload reaches every workload on the other host, both ways.
    for (from, to) in [
        (&a1, "192.0.2.21"),
        (&a1, "192.0.2.22"),
        (&a2, "192.0.2.21"),
        (&a2, "192.0.2.22"),
        (&b1, "192.0.2.11"),
        (&b1, "192.0.2.12"),
        (&b2, "192.0.2.11"),
        (&b2, "192.0.2.12"),
    ] {
        assert_ping(from, to, 2);
    }

    // A full-size frame (1450-byte IP packet, DF set) crosses: the MTU really fits.
    assert_ping_df(&a1, "192.0.2.21", 1450);

    // `vtep fdb show` lists the local workloads on their ports and the static remote entries.
    let rows = lab.vtep(va).fdb(&name_a);
    let row = |mac: &str| {
        fdb_row(&rows, mac, 200)
            .unwrap_or_else(|| panic!("{mac} missing from fdb show: {rows:?}"))
            .clone()
    };
    assert_eq!(row(S2_A1)["port"], format!("{a1}-h"));
    assert_eq!(row(S2_A2)["port"], format!("{a2}-h"));
    assert_eq!(row(S2_B1)["dst"], ADDR_B);
    assert_eq!(row(S2_B2)["dst"], ADDR_B);

    // Bulk TCP across hosts arrives complete and intact.
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1: bytes received intact");

    // Same-host traffic is switched on the host: it moves vtep's local counters, not the
    // underlay. One ping first so ARP (which is flooded to the remote VTEP) is done.
    assert_ping(&a1, "192.0.2.12", 1);
    let tx_before = if_counter(&a, "eth0", "tx_packets");
    let local_before = vni_stat(&lab.vtep(va).stats(&name_a), 200, "local_packets");
    assert!(
        ping_n(&a1, "192.0.2.12", 50, "0.02"),
        "ping a1 -> a2 failed"
    );
    let tx_after = if_counter(&a, "eth0", "tx_packets");
    let local_after = vni_stat(&lab.vtep(va).stats(&name_a), 200, "local_packets");
    // Allowance for unrelated frames (IPv6 router solicitations and MLD reports of the new
    // workloads are multicast and flooded to the remote VTEP; ARP refreshes of the underlay).
    assert!(
        tx_after - tx_before <= 10,
        "a1 -> a2 left through the underlay: eth0 tx_packets {tx_before} -> {tx_after}"
    );
    assert!(
        local_after - local_before >= 100,
        "50 echo requests + 50 replies between a1 and a2 not switched locally: local_packets \
         {local_before} -> {local_after}"
    );
}

/// Inner frames are Ethernet, not only IPv4: IPv6 (neighbour discovery is multicast) works
/// between workloads across hosts.
#[test]
fn ipv6_between_workloads() {
    let S2 { lab, a1, b1, .. } = s2();
    for (ns, addr) in [(&a1, "2001:db8::11/64"), (&b1, "2001:db8::21/64")] {
        ip(&["-n", ns, "-6", "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    let out = ns_exec(
        &a1,
        "ping",
        &[
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-q",
            "2001:db8::21",
        ],
    );
    assert!(
        out.status.success(),
        "ping -6 a1 -> b1: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let got = lab.tcp_transfer(
        &b1,
        "[2001:db8::21]:5001".parse().unwrap(),
        &a1,
        8 * 1024 * 1024,
    );
    assert_eq!(got, 8 * 1024 * 1024, "TCP over IPv6 a1 -> b1");
}

/// Existing interfaces adopted with `[[vni.port]]` carry traffic: one whose veth peer is in
/// another namespace (a container made by someone else) and one whose peer is on the host.
#[test]
fn adopted_ports_carry_traffic() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (p1, p2, q2) = (lab.name("p1"), lab.name("p2"), lab.name("q2"));
    let pw = lab.host("pw");
    let b1 = lab.name("b1");
    let (m_pw, m_q2) = ("02:00:00:00:0c:01", "02:00:00:00:0c:02");
    ip(&[
        "-n", &a, "link", "add", &p1, "type", "veth", "peer", "name", "eth0", "netns", &pw,
    ]);
    ip(&[
        "-n", &pw, "link", "set", "eth0", "address", m_pw, "mtu", "1450", "up",
    ]);
    ip(&["-n", &pw, "addr", "add", "192.0.2.31/24", "dev", "eth0"]);
    ip(&[
        "-n", &a, "link", "add", &p2, "type", "veth", "peer", "name", &q2,
    ]);
    ip(&[
        "-n", &a, "link", "set", &q2, "address", m_q2, "mtu", "1450", "up",
    ]);
    ip(&["-n", &a, "addr", "add", "192.0.2.32/24", "dev", &q2]);
    for p in [&p1, &p2] {
        ip(&["-n", &a, "link", "set", p, "mtu", "1450", "up"]);
    }
    let cfg_a = header(&lab.name("va"), "")
        + &vni(100, 4789, &[ADDR_B])
        + &adopted_port(&p1)
        + &adopted_port(&p2)
        + &format!("[[vni.fdb]]\nmac = \"{m_pw}\"\nport = \"{p1}\"\n\n")
        + &format!("[[vni.fdb]]\nmac = \"{m_q2}\"\nport = \"{p2}\"\n\n")
        + &fdb(S2_B1, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &fdb(m_pw, ADDR_A)
        + &fdb(m_q2, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    assert_ping(&pw, "192.0.2.21", 3);
    assert_ping(&a, "192.0.2.21", 3);
    assert_ping(&pw, "192.0.2.32", 2);
    // B's broadcast reaches both adopted ports.
    ip(&["-n", &b1, "neigh", "flush", "all"]);
    assert_ping(&b1, "192.0.2.31", 2);
    ip(&["-n", &b1, "neigh", "flush", "all"]);
    assert_ping(&b1, "192.0.2.32", 2);
    let len = 8 * 1024 * 1024;
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &pw, len);
    assert_eq!(got, len, "TCP from the adopted port's namespace");
    let got = lab.tcp_transfer(&pw, "192.0.2.31:5002".parse().unwrap(), &b1, len);
    assert_eq!(got, len, "TCP to the adopted port's namespace");
}
