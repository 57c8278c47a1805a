//! The underlay: its MTU, a routed underlay, a link flap, and traffic that is not VXLAN.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{End, Lab, in_netns, ip, ping, sysctl},
    output::text,
};

use crate::{
    ADDR_A, ADDR_B, BULK, header,
    support::{S2, S2_A1, S2_B1, assert_ping, assert_ping_df, ns_read, s2},
};

/// The workload MTU is the underlay's minus 50, whatever the underlay's is, and a frame of that
/// size crosses.
#[test]
fn workload_mtu_follows_underlay() {
    let mut lab = Lab::new();
    let a = lab.host("a");
    let b = lab.host("b");
    lab.wire(
        End::new(&a, "eth0", "198.18.0.1/24"),
        End::new(&b, "eth0", "198.18.0.2/24"),
        2000,
    );
    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let cfg_a = header(&lab.name("va"), "")
        + &vni(7, 4789, &[ADDR_B])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(7, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_eq!(ns_read(&a1, "/sys/class/net/eth0/mtu"), "1950");
    assert_eq!(ns_read(&b1, "/sys/class/net/eth0/mtu"), "1950");
    assert_ping_df(&a1, "192.0.2.21", 1950);
    let got = lab.tcp_transfer(
        &b1,
        "192.0.2.21:5001".parse().unwrap(),
        &a1,
        8 * 1024 * 1024,
    );
    assert_eq!(got, 8 * 1024 * 1024);
}

/// The remote VTEP is not on-link: the underlay is routed through a third namespace (as
/// between racks). vtep follows the kernel's routes and the router's neighbour.
#[test]
fn routed_underlay() {
    let mut lab = Lab::new();
    let a = lab.host("a");
    let r = lab.host("r");
    let b = lab.host("b");
    lab.wire(
        End::new(&a, "eth0", "198.18.0.1/24"),
        End::new(&r, "eth0", "198.18.0.254/24"),
        1500,
    );
    lab.wire(
        End::new(&r, "eth1", "198.18.1.254/24"),
        End::new(&b, "eth0", "198.18.1.2/24"),
        1500,
    );
    sysctl(&r, &["net.ipv4.ip_forward=1"]);
    ip(&[
        "-n",
        &a,
        "route",
        "add",
        "198.18.1.0/24",
        "via",
        "198.18.0.254",
    ]);
    ip(&[
        "-n",
        &b,
        "route",
        "add",
        "198.18.0.0/24",
        "via",
        "198.18.1.254",
    ]);
    let addr_b = "198.18.1.2";
    assert_ping(&a, addr_b, 1);

    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let cfg_a = header(&name_a, "")
        + &vni(300, 4789, &[addr_b])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, addr_b);
    let cfg_b = header(&name_b, "")
        + &vni(300, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, ADDR_A);
    let va = lab.start_vtep(&a, &cfg_a);
    let vb = lab.start_vtep(&b, &cfg_b);

    // The hosts' neighbour caches as after a boot or a link flap: the router is not resolved.
    ip(&["-n", &a, "neigh", "flush", "all"]);
    ip(&["-n", &b, "neigh", "flush", "all"]);
    for (from, to) in [(&a1, "192.0.2.21"), (&b1, "192.0.2.11")] {
        if !ping(from, to, 3) {
            panic!(
                "ping {from} -> {to} over a routed underlay failed. Drops: host A {}, host B {}; \
                 neighbours: host A [{}], host B [{}]",
                lab.vtep(va).stats(&name_a)["drops"],
                lab.vtep(vb).stats(&name_b)["drops"],
                text(&ip(&["-n", &a, "neigh"]).stdout).trim(),
                text(&ip(&["-n", &b, "neigh"]).stdout).trim(),
            );
        }
    }
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 over a routed underlay");
}

/// The underlay link goes down and up again (a cable, a switch reboot) while vtep runs; the
/// overlay works again afterwards, also for frames that start with a broadcast (ARP).
#[test]
fn overlay_survives_underlay_link_flap() {
    let S2 {
        mut lab,
        a,
        b,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2();
    assert_ping(&a1, "192.0.2.21", 2);
    for host in [&a, &b] {
        ip(&["-n", host, "link", "set", "eth0", "down"]);
    }
    for host in [&a, &b] {
        ip(&["-n", host, "link", "set", "eth0", "up"]);
    }
    // Workloads' ARP caches as after a while: the next ping starts with a broadcast.
    ip(&["-n", &a1, "neigh", "flush", "all"]);
    ip(&["-n", &b1, "neigh", "flush", "all"]);
    let limit = Duration::from_secs(5);
    let deadline = Instant::now() + limit;
    while !ping(&a1, "192.0.2.21", 1) {
        if Instant::now() > deadline {
            panic!(
                "overlay a1 -> b1 dead {limit:?} after the underlay came back. Host A drops: {}; \
                 neighbours: [{}]",
                lab.vtep(va).stats(&name_a)["drops"],
                text(&ip(&["-n", &a, "neigh"]).stdout).trim()
            );
        }
    }
    assert_ping(&b1, "192.0.2.11", 2);
}

#[test]
fn underlay_non_vxlan_passes() {
    let S2 { lab, a, b, a1, .. } = s2();
    // vtep is attached on both hosts and working.
    assert_ping(&a1, "192.0.2.21", 2);

    assert_ping(&a, ADDR_B, 3);
    assert_ping(&b, ADDR_A, 3);
    let got = lab.tcp_transfer(&b, format!("{ADDR_B}:5001").parse().unwrap(), &a, BULK);
    assert_eq!(got, BULK, "TCP on the underlay A -> B");
    let got = lab.tcp_transfer(&a, format!("{ADDR_A}:5002").parse().unwrap(), &b, BULK);
    assert_eq!(got, BULK, "TCP on the underlay B -> A");

    // UDP that is not VXLAN for us: an ordinary port, and 8472 while only 4789 is configured.
    for port in [9999u16, 8472] {
        let server: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
        let sock = in_netns(&b, || UdpSocket::bind(server).expect("bind"));
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let payload: Vec<u8> = (0..1200u32).map(|i| (i * 7 + 3) as u8).collect();
        let sent = payload.clone();
        in_netns(&a, || {
            let c = UdpSocket::bind("198.18.0.1:0").expect("bind");
            for _ in 0..3 {
                c.send_to(&sent, server).expect("send");
            }
        });
        let mut buf = vec![0u8; 2048];
        let (n, from) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("UDP to port {port} on the underlay lost: {e}"));
        assert_eq!(&buf[..n], &payload[..], "UDP port {port}: payload changed");
        assert_eq!(from.ip().to_string(), ADDR_A);
    }
}
