//! The XDP program on an IPv6 underlay: `generic` runs in the skb hook and the overlay works
//! (ping, bulk TCP both ways), and `native` decapsulates the known unicast itself, as over IPv4
//! (`topology::xdp`): the kernel's run counters show the XDP program took the echo replies, not
//! the TC program behind it.

use vtep_tests::{lab::link, output::vni_stat};

use super::s2_ipv6;
use crate::{
    BULK,
    support::{S2, assert_ping, ping_n, underlay_runs, xdp_prog},
};

#[test]
fn ipv6_xdp_generic_ping_and_bulk_tcp() {
    let S2 { lab, a, a1, b1, .. } = s2_ipv6("xdp = \"generic\"");
    // XDP_ATTACHED_SKB.
    assert_eq!(link(&a, "eth0")["xdp"]["mode"].as_u64(), Some(2));
    assert_ping(&a1, "192.0.2.21", 3);
    assert_ping(&b1, "192.0.2.11", 3);
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 over IPv6 with generic XDP");
    let got = lab.tcp_transfer(&a1, "192.0.2.11:5002".parse().unwrap(), &b1, BULK);
    assert_eq!(got, BULK, "TCP b1 -> a1 over IPv6 with generic XDP");
}

#[test]
fn ipv6_xdp_native_decapsulates_ipv6_in_xdp() {
    let S2 {
        mut lab,
        a,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2_ipv6("xdp = \"native\"");
    assert!(xdp_prog(&a, "eth0").is_some(), "{a}: no XDP program");
    assert_ping(&a1, "192.0.2.21", 2);
    let (xdp, tc) = underlay_runs(&a, || {
        assert!(ping_n(&a1, "192.0.2.21", 50, "0.01"), "50 pings a1 -> b1");
    });
    assert!(xdp >= 50, "XDP program ran {xdp} times for 50 echo replies");
    assert!(
        tc * 4 < xdp,
        "the TC program handled {tc} of {xdp} packets: XDP passed the IPv6 VXLAN on"
    );
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 over IPv6 with native XDP");
    let got = lab.tcp_transfer(&a1, "192.0.2.11:5002".parse().unwrap(), &b1, BULK);
    assert_eq!(got, BULK, "TCP b1 -> a1 over IPv6 with native XDP");
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 200, "decap_packets") >= 1000, "{stats}");
}
