//! S2 over an IPv6 underlay: workloads on both hosts reach each other, full-size frames fit the
//! 70 bytes of IPv6 overhead, bulk TCP arrives intact both ways (segmented by the workloads, whose
//! GSO vtep turned off, when checksums are sent; in 64 KB GSO frames with zero checksums), and the
//! FDB names the remote VTEP by its IPv6 address. S1 (an overlay address on each host itself)
//! over IPv6 too.

use vtep::sys::ethtool;
use vtep_tests::{
    configs::{host_port, vni},
    lab::{Lab, in_netns, tcp_transfer},
    output::{fdb_row, vni_stat},
};

use super::{A6, B6, s2_ipv6, underlay6};
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
