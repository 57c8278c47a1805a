//! VXLAN over IPv6 sent onto the real underlay (an AF_PACKET socket on host a's `eth0`, so the
//! packets arrive at host b's vtep as any sender's would, with no checksum state): a checksummed
//! and a zero-checksum packet are delivered to b1; a wrong checksum, every length lie, a cut
//! packet and an unknown VNI are dropped and counted under their reasons in `vtep stats`; a
//! packet with an extension header before UDP is left to the kernel (not delivered, not
//! counted as a drop). Through TC, and through native XDP in front of it.

use std::net::Ipv4Addr;

use vtep_tests::{
    lab::{in_netns, link},
    packet::{
        Csum6, ETH_P_IP, IPPROTO_ICMP, Ipv4, Mac, Malformed6, Outer6, VXLAN_I, eth, eth_source,
        icmp_echo_request, mac, vxlan_header,
    },
    raw_socket::RawSocket,
};

use super::{A6, B6, s2_ipv6};
use crate::support::{S2, S2_B1};

/// An inner Ethernet/IPv4/ICMP echo request from `src_mac` (192.0.2.99) to b1.
fn crafted_echo(src_mac: Mac) -> Vec<u8> {
    let ip = Ipv4::new(
        Ipv4Addr::new(192, 0, 2, 99),
        Ipv4Addr::new(192, 0, 2, 21),
        IPPROTO_ICMP,
    );
    let icmp = icmp_echo_request(0x4242, 1, &[1, 2, 3, 4, 5, 6, 7, 8]);
    eth(mac(S2_B1), src_mac, ETH_P_IP, &ip.build(&icmp))
}

/// The drop reason `vtep stats` counts `m` under, or None for a packet left to the kernel.
fn reason(m: Malformed6) -> Option<&'static str> {
    match m {
        Malformed6::TruncatedVxlanHeader | Malformed6::TruncatedInnerFrame => {
            Some("vxlan_truncated")
        }
        Malformed6::ExtensionHeader => None,
        _ => Some("vxlan_bad_length"),
    }
}

#[test]
fn ipv6_malformed_vxlan_on_the_wire_is_dropped_and_counted() {
    check_malformed_on_the_wire("");
}

/// The same with the XDP program in front of TC on host b: it drops what it can judge, under
/// TC's reasons, and passes the rest (a wrong checksum, an extension header) to TC.
#[test]
fn ipv6_malformed_vxlan_on_the_wire_is_dropped_and_counted_with_native_xdp() {
    check_malformed_on_the_wire("xdp = \"native\"");
}

/// Sends every case from host a to host b of S2 over IPv6 (`underlay_extra` in both hosts'
/// `[underlay]`) and checks what b1 got and what b's vtep counted.
fn check_malformed_on_the_wire(underlay_extra: &str) {
    let S2 {
        mut lab,
        a,
        b,
        b1,
        vb,
        name_b,
        ..
    } = s2_ipv6(underlay_extra);
    let src = |n: usize| Mac([0x02, 0, 0, 0, 0xee, n as u8]);
    let eth_mac = |ns: &str| mac(link(ns, "eth0")["address"].as_str().expect("a MAC"));
    let outer = Outer6::new(
        eth_mac(&b),
        eth_mac(&a),
        A6.parse().unwrap(),
        B6.parse().unwrap(),
        40000,
        4789,
    );
    let vx = vxlan_header(VXLAN_I, 200);
    // (what, frame, delivered to b1, drop reason counted)
    let mut cases: Vec<(String, Vec<u8>, bool, Option<&str>)> = vec![
        (
            "checksummed".into(),
            outer.build(vx, &crafted_echo(src(0))),
            true,
            None,
        ),
        (
            "zero checksum".into(),
            outer
                .with_csum(Csum6::Zero)
                .build(vx, &crafted_echo(src(1))),
            true,
            None,
        ),
        (
            "wrong checksum".into(),
            outer
                .with_csum(Csum6::Wrong)
                .build(vx, &crafted_echo(src(2))),
            false,
            Some("vxlan_bad_checksum"),
        ),
        (
            "unknown VNI".into(),
            outer.build(vxlan_header(VXLAN_I, 201), &crafted_echo(src(3))),
            false,
            Some("unknown_vni"),
        ),
    ];
    for m in Malformed6::ALL {
        let n = cases.len();
        let frame = outer.build_malformed(m, vx, &crafted_echo(src(n)));
        cases.push((format!("{m:?}"), frame, false, reason(m)));
    }

    let drops_before = lab.vtep(vb).stats(&name_b)["drops"].clone();
    let cap = lab.capture(&b1, "eth0", "ether[6:4] = 0x02000000 and ether[10] = 0xee");
    let eth0 = link(&a, "eth0")["ifindex"].as_u64().expect("an ifindex") as u32;
    in_netns(&a, || {
        let sock = RawSocket::open(eth0);
        for (_, frame, ..) in &cases {
            sock.send(frame);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let frames = cap.frames();
    let drops_after = lab.vtep(vb).stats(&name_b)["drops"].clone();

    let mut problems = Vec::new();
    for (n, (what, _, delivered, _)) in cases.iter().enumerate() {
        let got = frames
            .iter()
            .filter(|f| eth_source(f) == Some(src(n)))
            .count();
        if got != usize::from(*delivered) {
            problems.push(format!("{what}: delivered to b1 {got} time(s)"));
        }
    }
    for r in [
        "vxlan_bad_checksum",
        "unknown_vni",
        "vxlan_bad_length",
        "vxlan_truncated",
    ] {
        let want = cases.iter().filter(|c| c.3 == Some(r)).count() as u64;
        let moved = drops_after[r].as_u64().expect(r) - drops_before[r].as_u64().expect(r);
        if moved != want {
            problems.push(format!("{r} moved by {moved}, expected {want}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n(drops before {drops_before}, after {drops_after})",
        problems.join("\n")
    );
}
