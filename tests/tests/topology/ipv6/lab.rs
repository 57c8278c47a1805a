//! The lab's IPv6 underlay with the kernel's vxlan driver on every host: unicast with checksums,
//! zero checksums (dropped unless the receiver has `udp6zerocsumrx`, which the zero-checksum
//! tests of `interop` rely on), and a multicast group through the three hosts' switch. These
//! test the lab, not vtep: when they pass, a failing vtep test here is vtep's.

use vtep_tests::{
    lab::{KernelOptions, KernelVtep, Lab, ip, must, ping_with},
    output::text,
};

use super::{A6, B6};

const ZERO_TX: KernelOptions = KernelOptions {
    remote: None,
    group: None,
    udp6_zero_csum_tx: true,
    udp6_zero_csum_rx: false,
};

/// Two IPv6 hosts, each with the kernel's VTEP (VNI 42, flooding to the other) and workload
/// `<prefix>w0`/`w1` (192.0.2.11, .21) behind it, `vx0` made with `opts[i]`. Returns the lab
/// and the workloads.
fn kernel_pair(opts: [KernelOptions; 2]) -> (Lab, [String; 2]) {
    let lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let w = [lab.host("w0"), lab.host("w1")];
    for (i, (host, local, peer)) in [(&a, A6, B6), (&b, B6, A6)].into_iter().enumerate() {
        let (mac, cidr) = [
            ("02:00:00:00:0a:01", "192.0.2.11/24"),
            ("02:00:00:00:0b:01", "192.0.2.21/24"),
        ][i];
        let kernel = KernelVtep {
            vni: 42,
            dstport: 4789,
            local,
            flood: &[peer],
            fdb: &[],
            workload: &w[i],
            mac,
            cidr,
        };
        assert_eq!(kernel.workload_mtu(), 1430, "70 bytes of IPv6 overhead");
        must(kernel.build_with(host, &opts[i]));
    }
    (lab, w)
}

#[test]
fn ipv6_lab_kernel_vteps_talk_over_the_ipv6_underlay() {
    let (lab, [w0, w1]) = kernel_pair([KernelOptions::default(); 2]);
    // The underlay addresses are usable at once (not tentative: nodad), and there is no IPv4.
    for host in [lab.name("a"), lab.name("b")] {
        let addrs = text(&ip(&["-n", &host, "addr", "show", "dev", "eth0"]).stdout);
        let global = addrs.lines().find(|l| l.contains("inet6 2001:db8::"));
        assert!(
            global.is_some_and(|l| !l.contains("tentative")),
            "{host}: {addrs}"
        );
        assert!(!addrs.contains("inet "), "{host} has IPv4 on eth0: {addrs}");
    }
    assert!(ping_with(&w0, "192.0.2.21", 3, "0.2", 2), "ping w0 -> w1");
    let len = 8 * 1024 * 1024;
    let got = lab.tcp_transfer(&w1, "192.0.2.21:5001".parse().unwrap(), &w0, len);
    assert_eq!(got, len, "TCP w0 -> w1 between kernel VTEPs over IPv6");
}

#[test]
fn ipv6_lab_kernel_drops_zero_checksums_unless_udp6zerocsumrx() {
    let (_lab, [w0, _]) = kernel_pair([ZERO_TX, KernelOptions::default()]);
    assert!(
        !ping_with(&w0, "192.0.2.21", 2, "0.2", 1),
        "a default kernel VTEP accepted zero UDP checksums over IPv6"
    );
    let rx = KernelOptions {
        udp6_zero_csum_rx: true,
        ..KernelOptions::default()
    };
    let (_lab, [w0, _]) = kernel_pair([ZERO_TX, rx]);
    assert!(
        ping_with(&w0, "192.0.2.21", 3, "0.2", 2),
        "zero checksums to a kernel VTEP with udp6zerocsumrx"
    );
}

/// Three kernel VTEPs in group ff0e::100 (no flood list) reach each other: the switch forwards
/// the group's packets to every host.
#[test]
fn ipv6_lab_kernel_group_between_three_hosts() {
    let lab = Lab::new();
    let hosts = lab.three_hosts_ipv6();
    let group = KernelOptions {
        group: Some("ff0e::100"),
        ..KernelOptions::default()
    };
    let locals = ["2001:db8::1", "2001:db8::2", "2001:db8::3"];
    let mut workloads = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let w = lab.host(&format!("w{i}"));
        let (mac, cidr) = (
            format!("02:00:00:00:0{i}:01"),
            format!("192.0.2.{}/24", 11 + i),
        );
        let kernel = KernelVtep {
            vni: 42,
            dstport: 4789,
            local: locals[i],
            flood: &[],
            fdb: &[],
            workload: &w,
            mac: &mac,
            cidr: &cidr,
        };
        must(kernel.build_with(host, &group));
        workloads.push(w);
    }
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        let addr = format!("192.0.2.{}", 11 + to);
        assert!(
            ping_with(&workloads[from], &addr, 2, "0.2", 2),
            "ping w{from} -> w{to} over group ff0e::100"
        );
    }
}
