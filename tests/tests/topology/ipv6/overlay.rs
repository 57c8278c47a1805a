//! S2 over an IPv6 underlay: workloads on both hosts reach each other, full-size frames fit the
//! 70 bytes of IPv6 overhead, bulk TCP arrives intact both ways, and the FDB names the remote
//! VTEP by its IPv6 address.

use vtep_tests::{
    lab::tcp_transfer,
    output::{fdb_row, vni_stat},
};

use super::{B6, s2_ipv6};
use crate::{
    BULK,
    support::{S2, S2_B1, S2_B2, assert_ping, assert_ping_df, ns_read},
};

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
