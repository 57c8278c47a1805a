//! VXLAN for us that is malformed or for an unknown VNI: dropped and counted, never delivered.

use std::{
    net::{Ipv4Addr, UdpSocket},
    time::Duration,
};

use vtep_tests::{
    lab::in_netns,
    packet::{
        ETH_P_IP, IPPROTO_ICMP, Ipv4, Mac, eth, eth_source, icmp_echo_request, mac, vxlan_raw,
    },
};

use crate::{
    ADDR_A, ADDR_B,
    support::{S2, S2_B1, s2},
};

/// An inner Ethernet/IPv4/ICMP echo request from `src_mac` (192.0.2.99) to b1 of [`s2`].
fn crafted_echo(src_mac: Mac) -> Vec<u8> {
    let ip = Ipv4 {
        id: 0x1234,
        frag: 0,
        ..Ipv4::new(
            Ipv4Addr::new(192, 0, 2, 99),
            Ipv4Addr::new(192, 0, 2, 21),
            IPPROTO_ICMP,
        )
    };
    let icmp = icmp_echo_request(0x4242, 1, &[1, 2, 3, 4, 5, 6, 7, 8]);
    eth(mac(S2_B1), src_mac, ETH_P_IP, &ip.build(&icmp))
}

/// VXLAN that is for us but malformed, or for a VNI we do not have, is dropped and counted,
/// never delivered; reserved bits are ignored on receive (RFC 7348).
#[test]
fn malformed_and_unknown_vni_vxlan_dropped_and_counted() {
    let S2 {
        mut lab,
        a,
        b1,
        vb,
        name_b,
        ..
    } = s2();
    let src = |n: u8| Mac([0x02, 0, 0, 0, 0xee, n]);
    let vxlan = |flags: u8, reserved: u8, vni: u32, inner: &[u8]| {
        let v = vni.to_be_bytes();
        let header = [
            flags, reserved, reserved, reserved, v[1], v[2], v[3], reserved,
        ];
        vxlan_raw(header, inner)
    };
    let datagrams: Vec<(&str, Vec<u8>)> = vec![
        ("valid", vxlan(0x08, 0, 200, &crafted_echo(src(1)))),
        (
            "reserved bits set",
            vxlan(0xff, 0xff, 200, &crafted_echo(src(2))),
        ),
        ("I flag clear", vxlan(0x00, 0, 200, &crafted_echo(src(3)))),
        ("unknown VNI", vxlan(0x08, 0, 201, &crafted_echo(src(4)))),
        (
            "truncated",
            vxlan(0x08, 0, 200, &crafted_echo(src(5))[..10]),
        ),
    ];

    let drops_before = lab.vtep(vb).stats(&name_b)["drops"].clone();
    let cap = lab.capture(&b1, "eth0", "ether[6:4] = 0x02000000 and ether[10] = 0xee");
    let to_send = datagrams.clone();
    in_netns(&a, || {
        let sock = UdpSocket::bind(format!("{ADDR_A}:0")).expect("bind");
        for (_, d) in &to_send {
            sock.send_to(d, format!("{ADDR_B}:4789")).expect("send");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let frames = cap.frames();
    let drops_after = lab.vtep(vb).stats(&name_b)["drops"].clone();

    let delivered = |n: u8| {
        frames
            .iter()
            .filter(|f| eth_source(f) == Some(src(n)))
            .count()
    };
    let delta = |reason: &str| {
        drops_after[reason].as_u64().expect(reason) - drops_before[reason].as_u64().expect(reason)
    };
    let mut problems = Vec::new();
    for (n, (what, _)) in datagrams.iter().enumerate() {
        let want = usize::from(n < 2);
        let got = delivered(n as u8 + 1);
        if got != want {
            problems.push(format!(
                "{what}: delivered to b1 {got} time(s), expected {want}"
            ));
        }
    }
    for reason in ["vxlan_bad_flags", "unknown_vni", "vxlan_truncated"] {
        if delta(reason) != 1 {
            problems.push(format!(
                "drop counter {reason} moved by {}, expected 1 (before {drops_before}, after \
                 {drops_after})",
                delta(reason)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
