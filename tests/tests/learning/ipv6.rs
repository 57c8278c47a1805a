//! Flood-and-learn and a multicast group on an IPv6 underlay: remote stations are learned
//! behind IPv6 VTEPs, and a VNI's broadcasts go to an IPv6 group (`ff0e::…`, joined with MLD)
//! once each. The hosts keep IPv6 on their underlay (it is the underlay); their workloads are
//! quiet (`quiet_workload`).

use std::{
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use vtep_tests::{
    configs::{header, vni},
    lab::{Lab, ping},
    packet::{BROADCAST, arp_of, eth_destination, eth_source, mac, parse_vxlan6},
};

use crate::{
    IP, MAC, VNI,
    support::{assert_learned, quiet_workload, row},
};

const ADDR6: [&str; 3] = ["2001:db8::1", "2001:db8::2", "2001:db8::3"];
const GROUP: &str = "ff0e::100";

/// Host `i`'s config on the IPv6 underlay: its local address, VNI lines `vni_lines` (a flood
/// list, or a group), one quiet workload.
fn config6(lab: &Lab, i: usize, vni_lines: &str) -> String {
    header(
        &lab.name(&format!("v{i}")),
        "",
        &format!("local = \"{}\"", ADDR6[i]),
    ) + vni_lines
        + "\n"
        + &quiet_workload(lab, i)
}

#[test]
fn ipv6_three_hosts_learn_behind_ipv6_vteps() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts_ipv6();
    let mut ids = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        // Only flood lists: every station is learned.
        let remotes: Vec<&str> = (0..3).filter(|&j| j != i).map(|j| ADDR6[j]).collect();
        let cfg = config6(&lab, i, &vni(VNI, 4789, &remotes));
        ids.push(lab.start_vtep(h, &cfg));
    }
    let names: Vec<String> = (0..3).map(|i| lab.name(&format!("v{i}"))).collect();
    let w0 = lab.name("w0");
    assert!(ping(&w0, IP[1], 2), "ping a -> b");
    // a's ARP request was flooded to b and c; b's reply came back unicast.
    let fdb_a = lab.vtep(ids[0]).fdb(&names[0]);
    let fdb_b = lab.vtep(ids[1]).fdb(&names[1]);
    let fdb_c = lab.vtep(ids[2]).fdb(&names[2]);
    assert_learned(&fdb_a, MAC[1], ADDR6[1], "a");
    assert_learned(&fdb_b, MAC[0], ADDR6[0], "b");
    assert_learned(&fdb_c, MAC[0], ADDR6[0], "c (from the flooded request)");
    assert!(row(&fdb_c, MAC[1]).is_none(), "c saw nothing from b's");
    // Every pair, then every host knows every other workload behind its IPv6 VTEP.
    for (from, to) in [(1, 2), (2, 0)] {
        let ns = lab.name(&format!("w{from}"));
        assert!(ping(&ns, IP[to], 2), "ping w{from} -> w{to}");
    }
    for i in 0..3 {
        let rows = lab.vtep(ids[i]).fdb(&names[i]);
        for j in (0..3).filter(|&j| j != i) {
            assert_learned(&rows, MAC[j], ADDR6[j], &format!("host {i}"));
        }
    }
}

#[test]
fn ipv6_multicast_group_between_three_hosts() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts_ipv6();
    for (i, h) in hosts.iter().enumerate() {
        // No remotes: the group replaces the flood list.
        let lines = vni(VNI, 4789, &[]) + &format!("group = \"{GROUP}\"\n");
        let cfg = config6(&lab, i, &lines);
        lab.start_vtep(h, &cfg);
    }
    let w: Vec<String> = (0..3).map(|i| lab.name(&format!("w{i}"))).collect();
    // What w0 sends, and what host a sends on the underlay.
    let cap_w0 = lab.capture(&w[0], "eth0", "arp");
    let cap = lab.capture(
        &hosts[0],
        "eth0",
        &format!("ip6 and udp dst port 4789 and src host {}", ADDR6[0]),
    );
    // First contact: the other hosts learn a's VTEP from the group's traffic, so their first
    // answer may be lost and the workload's ARP retry gets through.
    for target in [IP[1], IP[2]] {
        let deadline = Instant::now() + Duration::from_secs(6);
        while !ping(&w[0], target, 1) {
            assert!(Instant::now() < deadline, "a -> {target} over the group");
        }
    }
    let requests_sent = cap_w0
        .frames()
        .iter()
        .filter(|f| eth_destination(f) == Some(BROADCAST) && eth_source(f) == Some(mac(MAC[0])))
        .count();
    let group: Ipv6Addr = GROUP.parse().unwrap();
    let frames = cap.frames();
    let mut arp_to_group = 0;
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan6(f).unwrap_or_else(|e| panic!("frame {i}: not VXLAN: {e}"));
        let flooded_arp = eth_destination(v.inner) == Some(BROADCAST) && arp_of(v.inner).is_some();
        if v.dst() == group {
            // 33:33 and the group's last 32 bits (RFC 2464 section 7); group_ttl 1.
            assert_eq!(
                v.dst_mac(),
                mac("33:33:00:00:01:00"),
                "frame {i}: group MAC"
            );
            assert_eq!(v.ip.hop_limit, 1, "frame {i}: hop limit of the group");
            assert_eq!(
                eth_destination(v.inner),
                Some(BROADCAST),
                "frame {i}: only broadcasts go to the group"
            );
            if flooded_arp {
                arp_to_group += 1;
            }
        } else {
            assert!(
                !flooded_arp,
                "frame {i}: a broadcast ARP went to VTEP {} instead of the group",
                v.dst()
            );
            assert!(
                ADDR6[1..].contains(&v.dst().to_string().as_str()),
                "frame {i}: unicast to {}, not a VTEP learned from the group",
                v.dst()
            );
        }
    }
    assert!(requests_sent >= 2, "w0 sent {requests_sent} ARP requests");
    assert_eq!(
        arp_to_group, requests_sent,
        "each of w0's ARP requests went to the group exactly once"
    );
    // Then every pair, both ways.
    for (from, to) in [(1, 0), (1, 2), (2, 0), (2, 1), (0, 1)] {
        let deadline = Instant::now() + Duration::from_secs(6);
        while !ping(&w[from], IP[to], 1) {
            assert!(Instant::now() < deadline, "w{from} -> w{to} over the group");
        }
    }
}
